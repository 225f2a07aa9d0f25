// A generated model's required param (`style`) is a field without `Option`: leaving it out
// is a compile error, not a request FLORA refuses (issue 30).
use flora_build_mode::model_fixtures::T2iEveryParam;

fn main() {
    let _ = T2iEveryParam {
        prompt: "a cat".into(),
        aspect_ratio: None,
        image_urls: None,
        raw: None,
        steps: None,
        frames: None,
        seed: None,
        guidance: None,
        lora: None,
    };
}
