use flora_api::{ImageUrl, techniques::CctvCam};

fn main() {
    let _ = CctvCam {
        input_imge: ImageUrl::parse("https://example.com/face.png").unwrap(),
    };
}
