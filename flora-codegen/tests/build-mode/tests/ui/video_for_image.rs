use flora_api::{VideoUrl, techniques::CctvCam};

fn main() {
    let _ = CctvCam {
        input_image: VideoUrl::parse("https://example.com/clip.mp4").unwrap(),
    };
}
