use flora_build_mode::techniques::StickerMaker;

fn main() {
    let _ = StickerMaker {
        image: flora_api::ImageUrl::parse("https://e.com/a.png").unwrap(),
        outline: None,
    };
}
