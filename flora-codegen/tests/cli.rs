//! The `flora-codegen` binary (feature `cli`) against a wiremock FLORA on loopback.
#![cfg(feature = "cli")]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn technique(slug: &str, input_type: &str) -> Value {
    json!({
        "technique_id": format!("tech_{slug}"), "slug": slug, "name": slug, "run_cost": 0.05,
        "inputs": [{"id": "photo", "name": "Photo", "type": input_type}],
        "outputs": [{"id": "result", "name": "Result", "type": "imageUrl"}]
    })
}

async fn server(techniques: &[Value]) -> MockServer {
    let server = MockServer::start().await;
    let summaries: Vec<Value> = techniques
        .iter()
        .map(|t| json!({"technique_id": t["technique_id"], "slug": t["slug"], "name": t["name"]}))
        .collect();
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"techniques": summaries})))
        .mount(&server)
        .await;
    for t in techniques {
        Mock::given(method("GET"))
            .and(path(format!(
                "/techniques/{}",
                t["technique_id"].as_str().unwrap()
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(t.clone()))
            .mount(&server)
            .await;
    }
    server
}

fn run(dir: &Path, args: &[&str], server: Option<&MockServer>) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_flora-codegen"));
    cmd.current_dir(dir).args(args).env_remove("FLORA_BASE_URL");
    match server {
        Some(s) => cmd
            .env("FLORA_API_KEY", "sk_test_cli")
            .env("FLORA_BASE_URL", format!("{}/", s.uri())),
        None => cmd.env_remove("FLORA_API_KEY"),
    };
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let p = e.unwrap().path();
            if p.is_file() {
                out.insert(
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[tokio::test]
async fn fetch_into_a_fresh_directory_then_check_and_generate() {
    let tmp = tempfile::tempdir().unwrap();
    let s = server(&[
        technique("sticker-maker", "imageUrl"),
        technique("clip", "videoUrl"),
    ])
    .await;
    let o = run(
        tmp.path(),
        &["fetch", "--schemas", "flora-schemas"],
        Some(&s),
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("Fetched 2 technique schema(s)"), "{out}");
    assert!(out.contains("2 added"), "{out}");
    assert!(
        out.contains("wrote flora-schemas/sticker-maker.json"),
        "{out}"
    );
    let schemas = tree(&tmp.path().join("flora-schemas"));
    assert_eq!(schemas.len(), 2);

    // Up to date: --check passes. After an upstream change, --check fails with a diff and
    // writes nothing.
    let o = run(
        tmp.path(),
        &["fetch", "--schemas", "flora-schemas", "--check"],
        Some(&s),
    );
    assert!(o.status.success(), "{}", text(&o));
    let changed = server(&[
        technique("sticker-maker", "videoUrl"),
        technique("clip", "videoUrl"),
    ])
    .await;
    let o = run(
        tmp.path(),
        &["fetch", "--schemas", "flora-schemas", "--check"],
        Some(&changed),
    );
    assert!(!o.status.success());
    let out = text(&o);
    assert!(
        out.contains("BREAKING sticker-maker: input `photo` type changed: ImageUrl -> VideoUrl"),
        "{out}"
    );
    assert!(
        out.contains("+++ b/flora-schemas/sticker-maker.json"),
        "{out}"
    );
    assert!(
        out.contains("run `flora-codegen fetch --schemas flora-schemas`"),
        "{out}"
    );
    assert_eq!(tree(&tmp.path().join("flora-schemas")), schemas);

    // Committed code: generate, then --check.
    let gen_args = [
        "generate",
        "--schemas",
        "flora-schemas",
        "--out",
        "src/techniques",
    ];
    let o = run(tmp.path(), &gen_args, None);
    assert!(o.status.success(), "{}", text(&o));
    let code = tree(&tmp.path().join("src/techniques"));
    assert_eq!(
        code.keys().collect::<Vec<_>>(),
        ["clip.rs", "mod.rs", "sticker_maker.rs"]
    );
    assert!(code["sticker_maker.rs"].contains("pub photo: ::flora_api::ImageUrl"));
    let o = run(tmp.path(), &[&gen_args[..], &["--check"]].concat(), None);
    assert!(o.status.success(), "{}", text(&o));
    let clip = tmp.path().join("src/techniques/clip.rs");
    std::fs::write(&clip, format!("{}// edited\n", code["clip.rs"])).unwrap();
    let o = run(tmp.path(), &[&gen_args[..], &["--check"]].concat(), None);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--- a/src/techniques/clip.rs"),
        "{}",
        text(&o)
    );
    // Without its `@generated` header the file is the user's: refused, not overwritten.
    std::fs::write(&clip, "// mine now\n").unwrap();
    let o = run(tmp.path(), &gen_args, None);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("refusing to overwrite src/techniques/clip.rs"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read_to_string(&clip).unwrap(), "// mine now\n");
}

#[tokio::test]
async fn a_bad_schema_leaves_the_directory_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let good = server(&[technique("sticker-maker", "imageUrl")]).await;
    assert!(
        run(tmp.path(), &["fetch", "--schemas", "s"], Some(&good))
            .status
            .success()
    );
    let before = tree(&tmp.path().join("s"));
    let mut bad = technique("sticker-maker", "imageUrl");
    bad["inputs"] = json!([{"id": "a-b", "type": "text"}, {"id": "a_b", "type": "text"}]);
    let bad_server = server(&[bad]).await;
    let o = run(tmp.path(), &["fetch", "--schemas", "s"], Some(&bad_server));
    assert!(!o.status.success());
    let out = text(&o);
    assert!(out.contains("s/sticker-maker.json#/inputs/1/id"), "{out}");
    assert!(out.contains("no file was changed"), "{out}");
    assert_eq!(tree(&tmp.path().join("s")), before);
}

#[test]
fn fetch_without_a_key_says_what_to_set() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(tmp.path(), &["fetch", "--schemas", "s"], None);
    assert!(!o.status.success());
    assert!(text(&o).contains("FLORA_API_KEY"), "{}", text(&o));
    assert!(!tmp.path().join("s").exists());
}
