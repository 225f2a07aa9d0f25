use flora_api::techniques::CctvCam;

fn main() {
    let _ = CctvCam {};
}
