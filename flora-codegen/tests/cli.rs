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

const SCHEMA: &str = r#"{"technique_id": "tech_sticker-maker", "name": "Sticker Maker",
  "run_cost": 0.05, "inputs": [{"id": "photo", "type": "imageUrl"}],
  "outputs": [{"id": "result", "type": "imageUrl"}]}"#;

/// A crate-like directory with `s/sticker-maker.json`.
fn project() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("s")).unwrap();
    std::fs::create_dir_all(tmp.path().join("src")).unwrap();
    std::fs::write(tmp.path().join("s/sticker-maker.json"), SCHEMA).unwrap();
    tmp
}

/// Issue 20, defect 1: only files with the `@generated` header are replaced or deleted; a
/// run that would overwrite one of the user's is refused naming it.
// Was `defect_01` in its issue.
#[test]
fn files_without_the_generated_header_are_never_touched() {
    let tmp = project();
    let main = "fn main() {}\n";
    std::fs::write(tmp.path().join("src/main.rs"), main).unwrap();
    let o = run(
        tmp.path(),
        &["generate", "--schemas", "s", "--out", "src"],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("src/main.rs")).unwrap(),
        main
    );
    assert!(tmp.path().join("src/sticker_maker.rs").exists());

    // A hand-written helper beside generated files survives a run that removes a technique.
    let out = ["generate", "--schemas", "s", "--out", "src/techniques"];
    assert!(run(tmp.path(), &out, None).status.success());
    let helpers = tmp.path().join("src/techniques/helpers.rs");
    std::fs::write(&helpers, "pub fn help() {}\n").unwrap();
    std::fs::remove_file(tmp.path().join("s/sticker-maker.json")).unwrap();
    let o = run(tmp.path(), &out, None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!tmp.path().join("src/techniques/sticker_maker.rs").exists());
    assert!(helpers.exists(), "{}", text(&o));

    // A hand-written mod.rs is refused by name, exit 1, and left as it was.
    std::fs::write(tmp.path().join("s/sticker-maker.json"), SCHEMA).unwrap();
    let dir = tmp.path().join("src/mine");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("mod.rs"), "pub mod helpers;\n").unwrap();
    let o = run(
        tmp.path(),
        &["generate", "--schemas", "s", "--out", "src/mine"],
        None,
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("refusing to overwrite src/mine/mod.rs"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("mod.rs")).unwrap(),
        "pub mod helpers;\n"
    );
    assert!(!dir.join("sticker_maker.rs").exists());
}

/// Issue 20, defect 3: a schema directory that does not exist is an error, not an empty
/// catalog that deletes every generated file.
// Was `defect_03` in its issue.
#[test]
fn a_missing_schema_directory_is_an_error() {
    let tmp = project();
    let out = ["generate", "--schemas", "s", "--out", "src/techniques"];
    assert!(run(tmp.path(), &out, None).status.success());
    let before = tree(&tmp.path().join("src/techniques"));
    let o = run(
        tmp.path(),
        &["generate", "--schemas", "typo", "--out", "src/techniques"],
        None,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("typo does not exist"), "{}", text(&o));
    assert_eq!(tree(&tmp.path().join("src/techniques")), before);
}

/// Issue 20, defect 4: the bytes depend on the schemas and options only, not on how the
/// schema directory was typed.
// Was `defect_04` in its issue.
#[test]
fn headers_do_not_depend_on_how_the_path_was_typed() {
    let tmp = project();
    let out = ["--out", "src/techniques"];
    let o = run(
        tmp.path(),
        &[&["generate", "--schemas", "s"], &out[..]].concat(),
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let code = tree(&tmp.path().join("src/techniques"));
    assert!(
        code["sticker_maker.rs"]
            .starts_with("// @generated by flora-codegen from s/sticker-maker.json."),
        "{}",
        code["sticker_maker.rs"]
    );
    let absolute = tmp.path().join("s").display().to_string();
    for typed in ["./s", "s/", absolute.as_str()] {
        let o = run(
            tmp.path(),
            &[&["generate", "--schemas", typed], &out[..], &["--check"]].concat(),
            None,
        );
        assert!(o.status.success(), "{typed}: {}", text(&o));
    }
    assert!(!code.values().any(|t| t.contains(&absolute)));
}

/// Issue 20, defect 5: a retrieved technique that is not the listed one is refused.
// Was `defect_05` in its issue.
#[tokio::test]
async fn a_retrieved_schema_must_be_the_listed_technique() {
    let tmp = tempfile::tempdir().unwrap();
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"techniques": [{"technique_id": "tech_alpha", "slug": "alpha", "name": "A"}]}),
        ))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/techniques/tech_alpha"))
        .respond_with(ResponseTemplate::new(200).set_body_json(technique("beta", "imageUrl")))
        .mount(&s)
        .await;
    let o = run(tmp.path(), &["fetch", "--schemas", "s"], Some(&s));
    assert!(!o.status.success());
    let out = text(&o);
    assert!(out.contains("answered with technique `tech_beta`"), "{out}");
    assert!(out.contains("refusing to store it as alpha.json"), "{out}");
    assert!(!tmp.path().join("s").exists());
}

/// Pages that never end: no items, a new cursor each time.
struct EndlessEmptyPages(std::sync::atomic::AtomicUsize);

impl wiremock::Respond for EndlessEmptyPages {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ResponseTemplate::new(200)
            .set_body_json(json!({"techniques": [], "meta": {"next_cursor": format!("c{n}")}}))
    }
}

/// Issue 20, defect 6: a listing of endless empty pages with ever-new cursors ends with an
/// error after a bound, and nothing is written.
// Was `defect_06` in its issue.
#[tokio::test]
async fn endless_empty_pages_end_with_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let s = MockServer::start().await;
    let endless = EndlessEmptyPages(std::sync::atomic::AtomicUsize::new(0));
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .respond_with(endless)
        .mount(&s)
        .await;
    let o = run(tmp.path(), &["fetch", "--schemas", "s"], Some(&s));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("100 empty pages in a row"),
        "{}",
        text(&o)
    );
    assert!(!tmp.path().join("s").exists());
    assert_eq!(s.received_requests().await.unwrap().len(), 100);
}

/// Issue 20, defect 9: an error body that echoes the `Authorization` header does not put the
/// key on the terminal.
// Was `defect_09` in its issue.
#[tokio::test]
async fn the_api_key_is_redacted_from_everything_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "code": "bad_request",
            "message": "proxy says: got header Authorization: Bearer sk_test_cli"
        }})))
        .mount(&s)
        .await;
    let o = run(tmp.path(), &["fetch", "--schemas", "s"], Some(&s));
    assert!(!o.status.success());
    let out = text(&o);
    assert!(out.contains("HTTP 400"), "{out}");
    assert!(out.contains("Bearer [redacted]"), "{out}");
    assert!(!out.contains("sk_test_cli"), "{out}");
}

/// Issue 20, defect 11: `generate` speaks of itself and its own flags.
// Was `defect_11` in its issue.
#[test]
fn messages_name_the_running_command() {
    let tmp = project();
    let o = run(
        tmp.path(),
        &["generate", "--schemas", "s", "--out", "src/techniques"],
        None,
    );
    let out = text(&o);
    assert!(
        out.contains("Generating code from the 1 schema(s) in s/."),
        "{out}"
    );
    assert!(
        !out.contains("--offline") && !out.contains("Offline"),
        "{out}"
    );
    // A name clash: the failure names `flora-codegen generate`, the hint no other tool.
    std::fs::write(
        tmp.path().join("s/sticker_maker.json"),
        SCHEMA.replace("tech_sticker-maker", "tech_sticker_maker"),
    )
    .unwrap();
    let o = run(
        tmp.path(),
        &["generate", "--schemas", "s", "--out", "src/techniques"],
        None,
    );
    assert!(!o.status.success());
    let out = text(&o);
    assert!(out.contains("flora-codegen generate failed"), "{out}");
    assert!(!out.contains("regen"), "{out}");
    assert!(!out.contains("xtask"), "{out}");
}

/// Issue 20, defect 12: slugs unsafe as file names on Windows or macOS, in all six shapes,
/// are refused with a diagnostic naming the file, and nothing is written.
// Was `defect_12` in its issue.
#[test]
fn unsafe_slugs_are_refused_in_every_shape() {
    let shapes: [&[&str]; 6] = [
        &["con.json"],
        &["COM1.json"],
        &["nul.txt.json"],
        &["C:evil.json"],
        &["Cctv-Cam.json", "cctv-cam.json"],
        &["FooBar.json", "foobar.json"],
    ];
    for files in shapes {
        let tmp = tempfile::tempdir().unwrap();
        let s = tmp.path().join("s");
        std::fs::create_dir_all(&s).unwrap();
        for name in files {
            std::fs::write(s.join(name), SCHEMA).unwrap();
        }
        let o = run(
            tmp.path(),
            &["generate", "--schemas", "s", "--out", "out"],
            None,
        );
        let out = text(&o);
        assert!(!o.status.success(), "{files:?} passed: {out}");
        assert!(out.contains(&format!("s/{}", files[0])), "{files:?}: {out}");
        assert!(!tmp.path().join("out").exists(), "{files:?}: wrote files");
    }
}
