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

// A facade, as a team's shared crate would be: it re-exports the runtime, and its users
// name only the facade. (`extern crate self` lets this one crate play both parts.)
extern crate self as my_facade;
/// The runtime, re-exported.
pub use flora_api as flora;

/// The techniques generated with `Build::runtime_path("::my_facade::flora")`.
pub mod via_facade {
    crate::flora::include_techniques!("facade_techniques.rs");
}

/// The facade's techniques are the same types in every respect but the path they name.
pub async fn sticker_via_facade(
    client: &my_facade::flora::Client,
    photo: my_facade::flora::ImageUrl,
) -> Result<via_facade::StickerMakerOutputs, my_facade::flora::Error> {
    let done = via_facade::StickerMaker {
        photo,
        outline: None,
    }
    .run(client)
    .await?;
    Ok(done.outputs)
}
