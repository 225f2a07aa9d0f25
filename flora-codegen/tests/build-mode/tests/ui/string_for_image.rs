use flora_api::techniques::CctvCam;

fn main() {
    let _ = CctvCam {
        input_image: String::from("https://example.com/face.png"),
    };
}
