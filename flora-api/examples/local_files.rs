//! Files in, files out, in three calls: upload a local image, run `CctvCam` on it, save every
//! output. `FLORA_API_KEY=sk_… cargo run -p flora-api --example local_files -- face.png out/`
//! (costs a run). The upload shows an indicatif progress bar.

use flora_api::{Client, UploadOptions, techniques::CctvCam};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Errors print through `Display` (what, where, root cause, fix), not as a `Debug` dump.
    match local_files().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn local_files() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let input = args
        .next()
        .ok_or("usage: local_files <image file> [output dir]")?;
    let out_dir = args.next().unwrap_or_else(|| "out".to_owned());
    let client = Client::from_env()?; // FLORA_API_KEY; FLORA_WORKSPACE_ID if the key sees several

    let bar = indicatif::ProgressBar::new(0);
    let shown = bar.clone();
    let progress = UploadOptions::default().progress(move |done, total| {
        if let Some(total) = total {
            shown.set_length(total);
        }
        shown.set_position(done);
    });
    // 1. Local file -> FLORA asset URL (typed: a video here would be refused before upload).
    let face = client.upload_image_with(input.as_str(), progress).await?;
    bar.finish_and_clear();

    // 2. Run the technique.
    let done = CctvCam { input_image: face }.run(&client).await?;

    // 3. Every output to disk (`output_image.png`, ...), atomically.
    for path in done.save_outputs(&client, &out_dir).await? {
        println!("saved {}", path.display());
    }
    Ok(())
}
