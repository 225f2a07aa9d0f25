//! The README's set-up for testing your own techniques with `FakeFlora` works with plain
//! `cargo test`: `Build::test_util_feature("test-util")`, the feature declared as
//! `test-util = ["flora-api/test-util"]`, and the crate as its own dev-dependency with it.

use flora_api::ImageUrl;
use flora_api::testing::FakeFlora;
use flora_build_mode::techniques::{StickerMaker, StickerMakerOutputs};

#[tokio::test(start_paused = true)]
async fn the_teams_function_runs_against_the_fake() {
    let fake = FakeFlora::new();
    let sticker = ImageUrl::parse("https://cdn.example.invalid/sticker.png").unwrap();
    fake.technique::<StickerMaker>()
        .pending_polls(2)
        .returns(StickerMakerOutputs {
            sticker: sticker.clone(),
        });
    let photo = ImageUrl::parse("https://example.com/me.png").unwrap();
    let out = flora_build_mode::sticker(&fake.client(), photo.clone())
        .await
        .unwrap();
    assert_eq!(out.sticker, sticker);
    assert_eq!(
        fake.runs::<StickerMaker>(),
        vec![StickerMaker {
            photo,
            outline: Some("white".to_owned()),
        }]
    );
}
