//! `FakeFlora` with the codegen fixtures: the generated `FakeTechnique` impls
//! compile (with `test-util` on) and round-trip every media kind, optional inputs and raw
//! outputs through a run.
#![cfg(feature = "test-util")]

use std::path::Path;

#[test]
fn generated_fake_impls_round_trip_the_fixtures() {
    let fixtures =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../flora-codegen/tests/fixtures/valid");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "json") {
            let name = p.file_name().unwrap().to_str().unwrap().to_owned();
            files.push(flora_codegen::SchemaFile::new(
                format!("schemas/{name}"),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
    let generated = flora_codegen::generate(&files, &flora_codegen::Config::flora_api()).unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fake-fixtures");
    let gen_dir = dir.join("techniques");
    let _ = std::fs::remove_dir_all(&gen_dir);
    std::fs::create_dir_all(&gen_dir).unwrap();
    for (name, text) in &generated.files {
        std::fs::write(gen_dir.join(name), text).unwrap();
    }
    let main = format!(
        "#![deny(warnings)]\n#![allow(dead_code)]\n#[path = {:?}]\npub mod techniques;\n{ROUND_TRIP}",
        gen_dir.join("mod.rs")
    );
    let pass = dir.join("fake_round_trip.rs");
    std::fs::write(&pass, main).unwrap();
    trybuild::TestCases::new().pass(&pass);
}

const ROUND_TRIP: &str = r#"
use flora_api::testing::FakeFlora;
use flora_api::{AudioUrl, DocumentUrl, ImageUrl, MediaType, RawOutput, VideoUrl};
use techniques::*;

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let fake = FakeFlora::new();
    let client = fake.client();
    let full = AllMedia {
        image_camel: ImageUrl::parse("https://e.com/a.png").unwrap(),
        image_snake: Some(ImageUrl::parse("https://e.com/b.png").unwrap()),
        video_camel: VideoUrl::parse("https://e.com/a.mp4").unwrap(),
        video_snake: None,
        audio_camel: AudioUrl::parse("https://e.com/a.mp3").unwrap(),
        audio_snake: Some(AudioUrl::parse("https://e.com/b.mp3").unwrap()),
        document_camel: DocumentUrl::parse("https://e.com/a.pdf").unwrap(),
        document_snake: None,
        prompt: "a cat".to_owned(),
        negative_prompt: Some("no dogs".to_owned()),
    };
    let outputs = AllMediaOutputs {
        image: ImageUrl::parse("https://cdn.e.invalid/o.png").unwrap(),
        video: VideoUrl::parse("https://cdn.e.invalid/o.mp4").unwrap(),
        audio: AudioUrl::parse("https://cdn.e.invalid/o.mp3").unwrap(),
        document: DocumentUrl::parse("https://cdn.e.invalid/o.pdf").unwrap(),
        caption: "a sharp cat".to_owned(),
        mesh: RawOutput { kind: MediaType::Unknown("meshUrl".into()), value: "https://cdn.e.invalid/o.glb".to_owned() },
    };
    fake.technique::<AllMedia>().pending_polls(2).returns(outputs.clone());
    let done = full.run(&client).await.unwrap();
    assert_eq!(done.outputs, outputs);
    assert_eq!(fake.runs::<AllMedia>(), vec![full]);

    // Every optional input omitted, placeholder outputs.
    fake.technique::<OptionalOnly>().completes();
    let empty = OptionalOnly::default();
    let done = empty.run(&client).await.unwrap();
    assert!(done.outputs.output_image.as_str().contains(".invalid/"));
    let some = OptionalOnly { style: Some("noir".to_owned()), reference: None };
    some.run(&client).await.unwrap();
    assert_eq!(fake.runs::<OptionalOnly>(), vec![empty, some]);

    // No inputs, no outputs, keywords.
    fake.technique::<NoInputs>().completes();
    NoInputs {}.run(&client).await.unwrap();
    assert_eq!(fake.runs::<NoInputs>(), vec![NoInputs {}]);
    fake.technique::<Keywords>().completes();
    let k = Keywords { r#type: "t".into(), self_: "s".into(), r#gen: Some("g".into()), r#async: None, crate_: None, super_: None, r#fn: None, r#match: None };
    k.run(&client).await.unwrap();
    assert_eq!(fake.runs::<Keywords>(), vec![k]);
}
"#;
