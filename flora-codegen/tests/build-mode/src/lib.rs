//! A crate with its own techniques, typed through `flora_codegen::Build` in `build.rs`.

/// The techniques of `flora-schemas/`, generated into `OUT_DIR` at build time.
pub mod techniques {
    flora_api::include_techniques!();
}

use flora_api::{Client, Error, ImageUrl};
use techniques::{StickerMaker, StickerMakerOutputs};

/// Makes a sticker from a photo: the kind of function a team writes around its technique.
pub async fn sticker(client: &Client, photo: ImageUrl) -> Result<StickerMakerOutputs, Error> {
    let done = StickerMaker {
        photo,
        outline: Some("white".to_owned()),
    }
    .run(client)
    .await?;
    Ok(done.outputs)
}
