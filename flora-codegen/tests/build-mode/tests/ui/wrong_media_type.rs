use flora_build_mode::techniques::StickerMaker;

fn main() {
    let _ = StickerMaker {
        photo: flora_api::VideoUrl::parse("https://e.com/a.mp4").unwrap(),
        outline: None,
    };
}
