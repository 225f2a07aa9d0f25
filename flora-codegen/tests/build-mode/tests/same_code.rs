//! The build.rs mode, the `flora-codegen generate` CLI and `cargo xtask regen` emit the same
//! code for the same schemas.

use std::path::Path;

fn schema_files(dir: &Path, shown: &str) -> Vec<flora_codegen::SchemaFile> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            flora_codegen::SchemaFile::new(
                format!("{shown}/{name}"),
                std::fs::read_to_string(p).unwrap(),
            )
        })
        .collect()
}

/// What this crate's build script wrote is the generator's output for `flora-schemas/`, and
/// each technique in it is byte for byte the file the CLI writes for the same schemas.
#[test]
fn build_mode_output_is_the_generated_files() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let included =
        std::fs::read_to_string(concat!(env!("OUT_DIR"), "/flora_techniques.rs")).unwrap();
    let generated = flora_codegen::generate(
        &schema_files(&manifest.join("flora-schemas"), "flora-schemas"),
        &flora_codegen::Config::new()
            .test_util_feature("test-util")
            .module_path("flora_build_mode::techniques"),
    )
    .unwrap();
    assert_eq!(included, generated.single_file());
    for (name, text) in &generated.files {
        if name != "mod.rs" {
            assert!(included.contains(text.as_str()), "{name} differs");
        }
    }
}

/// The committed `flora-api/src/techniques/` (written by `cargo xtask regen`) equals what
/// the build.rs mode generates for `schemas/` with the same options (module path, test-util
/// feature), except the header line naming the schema directory.
#[test]
fn build_mode_and_xtask_regen_emit_the_same_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    let out = tempfile_dir();
    let path = flora_codegen::Build::new()
        .schemas_dir(root.join("schemas"))
        .module_path("flora_api::techniques")
        .test_util_feature("test-util")
        .out_dir(&out)
        .generate_to(&mut Vec::new())
        .unwrap();
    let single = std::fs::read_to_string(path).unwrap();
    let committed = root.join("flora-api/src/techniques");
    let without_headers = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("// @generated"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for entry in std::fs::read_dir(&committed).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().unwrap() == "mod.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            without_headers(&single).contains(&without_headers(&text)),
            "{} differs from the build.rs output",
            p.display()
        );
    }
    let _ = std::fs::remove_dir_all(out);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("flora-build-mode-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The generated code runs through the real client (its `send`, retries and polling, with
/// `FakeFlora` as the connector): the typed input goes out as sent, optional inputs left
/// out, and the typed outputs come back; a URL the type refuses never becomes an input.
#[tokio::test(start_paused = true)]
async fn generated_techniques_run_through_the_real_client() {
    use flora_api::Technique;
    use flora_build_mode::techniques::{ClipTeaser, StickerMaker};
    assert_eq!(StickerMaker::SLUG, "sticker-maker");
    assert_eq!(<ClipTeaser as Technique>::INPUTS.len(), 2);
    let t = ClipTeaser {
        clip: flora_api::VideoUrl::parse("https://e.com/a.mp4").unwrap(),
        voice: None,
    };
    assert_eq!(t.inputs().len(), 1, "the optional input is left out");
    let fake = flora_api::testing::FakeFlora::new();
    fake.technique::<ClipTeaser>().pending_polls(1).completes();
    let done = t.run(&fake.client()).await.unwrap();
    assert_eq!(fake.runs::<ClipTeaser>(), vec![t]);
    assert!(!done.run_id.is_empty());
    assert!(flora_api::VideoUrl::parse("http://e.com/a.mp4").is_err());
}

/// The facade build names the runtime only through `::my_facade::flora`.
#[test]
fn the_facade_build_names_only_the_facade() {
    let text = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/facade_techniques.rs")).unwrap();
    assert!(!text.contains("flora_api"), "{text}");
    assert!(text.contains("impl ::my_facade::flora::Technique for StickerMaker"));
}
