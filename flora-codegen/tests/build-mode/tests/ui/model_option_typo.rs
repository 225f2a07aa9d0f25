// A misspelled option of a generated model is a compile error naming the variant, not a
// string FLORA would bill with its default (issue 30).
use flora_build_mode::model_fixtures::{T2iEveryParam, T2iEveryParamAspectRatio};

fn main() {
    let _ = T2iEveryParam {
        prompt: "a cat".into(),
        aspect_ratio: Some(T2iEveryParamAspectRatio::Sqaure11),
        style: "noir".into(),
        image_urls: None,
        raw: None,
        steps: None,
        frames: None,
        seed: None,
        guidance: None,
        lora: None,
    };
}
