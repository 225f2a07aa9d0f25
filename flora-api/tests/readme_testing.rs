//! README's "Testing your code" example, as a user pastes it: a test file of its own. The
//! last test checks that README still shows exactly this code.
#![cfg(all(feature = "test-util", feature = "techniques"))]

use flora_api::techniques::{CctvCam, CctvCamOutputs};
use flora_api::testing::FakeFlora;
use flora_api::{Client, Error, ImageUrl};

/// The code under test: your pipeline.
async fn my_pipeline(client: &Client, face: ImageUrl) -> Result<ImageUrl, Error> {
    Ok(CctvCam { input_image: face }
        .run(client)
        .await?
        .outputs
        .output_image)
}

fn face() -> ImageUrl {
    ImageUrl::parse("https://example.com/face.png").unwrap()
}

#[tokio::test(start_paused = true)]
async fn my_pipeline_uses_the_cctv_output() {
    let fake = FakeFlora::new();
    let output_image = ImageUrl::parse("https://cdn.example.invalid/o.png").unwrap();
    fake.technique::<CctvCam>()
        .pending_polls(2)
        .returns(CctvCamOutputs {
            output_image: output_image.clone(),
        });
    let client = fake.client(); // a real Client, default poll policy
    let out = my_pipeline(&client, face()).await.unwrap();
    assert_eq!(out, output_image);
    assert_eq!(
        fake.runs::<CctvCam>(),
        vec![CctvCam {
            input_image: face()
        }]
    );
}

#[test]
fn the_readme_shows_this_example() {
    let readme = include_str!("../../README.md");
    let this = include_str!("readme_testing.rs");
    let example = this
        .split_once("\n\n")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split_once("\n#[test]\nfn the_readme_shows_this_example"))
        .map(|(code, _)| code)
        .unwrap();
    assert!(
        readme.contains(&format!("```rust\n{example}```")),
        "README's testing example differs from tests/readme_testing.rs"
    );
}
