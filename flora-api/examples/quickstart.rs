//! The README's usage example; `cargo test` builds it, so it cannot rot.
//! Run it with `FLORA_API_KEY=sk_… cargo run -p flora-api --example quickstart` (costs a run).

use std::process::ExitCode;

use flora_api::{Client, ImageUrl, techniques::CctvCam};

#[tokio::main]
async fn main() -> ExitCode {
    // `Display`, not the `Debug` dump `main() -> Result` would print: what failed, where, the
    // root cause and the fix, in one message.
    match quickstart().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn quickstart() -> Result<(), flora_api::Error> {
    let client = Client::from_env()?; // FLORA_API_KEY; optional FLORA_BASE_URL
    let done = CctvCam {
        input_image: ImageUrl::parse("https://example.com/face.png")?,
    }
    .run(&client) // start + wait
    .await?;
    let image: &ImageUrl = &done.outputs.output_image;
    let cost = done.charged_cost.unwrap_or(0.0);
    println!("{image} cost {cost} USD");

    // Start only, wait later (or elsewhere):
    let mut handle = CctvCam {
        input_image: image.clone(),
    }
    .start(&client)
    .await?;
    let again = handle
        .wait_with(|run| println!("{} {:?}", run.status, run.progress))
        .await?;
    println!("{}", again.outputs.output_image);
    Ok(())
}
