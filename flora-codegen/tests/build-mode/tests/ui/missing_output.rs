use flora_api::{Client, ImageUrl, techniques::CctvCam};

async fn use_output(client: &Client) -> Result<(), flora_api::Error> {
    let done = CctvCam { input_image: ImageUrl::parse("https://example.com/face.png")? }
        .run(client)
        .await?;
    let _ = done.outputs.output_video;
    Ok(())
}

fn main() {
    let _ = use_output;
}
