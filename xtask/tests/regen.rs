//! `cargo xtask regen`: the committed tree is fresh, and the fetch path against wiremock.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};
use xtask::regen::{Options, regen};

/// The stale test: regenerating from `schemas/` in memory must give the committed files.
#[tokio::test]
async fn committed_generated_code_is_up_to_date() {
    let opts = Options {
        offline: true,
        check: true,
        ..Options::default()
    };
    let outcome = regen(&xtask::workspace_root(), &opts).await.unwrap();
    assert!(
        outcome.up_to_date(),
        "generated code is stale:\n{}\n{:?}\nrun `cargo xtask regen --offline` and commit the result",
        outcome.diff,
        outcome.changed_files
    );
}

fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for dir in ["schemas", "flora-api/src/techniques"] {
        let Ok(entries) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                continue;
            }
            out.insert(
                format!("{dir}/{}", p.file_name().unwrap().to_str().unwrap()),
                fs::read_to_string(&p).unwrap(),
            );
        }
    }
    out
}

fn technique(slug: &str, inputs: Value) -> Value {
    json!({
        "technique_id": format!("tech_{slug}"), "name": slug, "run_cost": 0.05,
        "inputs": inputs,
        "outputs": [{"id": "output_image", "name": "Output Image", "type": "imageUrl"}]
    })
}

fn image_input(id: &str) -> Value {
    json!({"id": id, "name": id, "type": "imageUrl"})
}

/// A workspace with `cctv-cam` (one image input) and `old-one`, generated offline.
async fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("schemas")).unwrap();
    for (slug, t) in [
        (
            "cctv-cam",
            technique("cctv-cam", json!([image_input("input_image")])),
        ),
        ("old-one", technique("old-one", json!([]))),
    ] {
        fs::write(
            dir.path().join(format!("schemas/{slug}.json")),
            xtask::regen::schema_text(&t).unwrap(),
        )
        .unwrap();
    }
    let opts = Options {
        offline: true,
        ..Options::default()
    };
    let o = regen(dir.path(), &opts).await.unwrap();
    assert!(o.source.starts_with("Offline (--offline)"), "{}", o.source);
    assert!(
        dir.path()
            .join("flora-api/src/techniques/old_one.rs")
            .exists()
    );
    dir
}

fn online(server: &MockServer) -> Options {
    Options {
        fetch: flora_codegen::cli::FetchOptions {
            api_key: "sk_test_key".into(),
            base_url: Some(format!("{}/", server.uri())),
            ..Default::default()
        },
        ..Options::default()
    }
}

/// Mounts `GET /techniques/{id}` for a full technique object.
async fn retrievable(server: &MockServer, t: &Value, times: impl Into<wiremock::Times>) {
    let id = t["technique_id"].as_str().unwrap();
    Mock::given(method("GET"))
        .and(path(format!("/techniques/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(t.clone()))
        .expect(times)
        .mount(server)
        .await;
}

/// The list item the docs show: id, slug and name only.
fn summary(t: &Value) -> Value {
    let slug = t.get("slug").cloned().unwrap_or_else(|| {
        json!(
            t["technique_id"]
                .as_str()
                .unwrap()
                .trim_start_matches("tech_")
        )
    });
    json!({"technique_id": t["technique_id"], "slug": slug, "name": t["name"]})
}

/// Three pages: a changed `cctv-cam` (listed in full), a summary item, and a new technique
/// listed with `inputs: []` filler. Every one is retrieved `retrieves` times. `old-one` is
/// gone upstream.
async fn catalog_server(retrieves: u64) -> MockServer {
    let server = MockServer::start().await;
    let cctv = technique(
        "cctv-cam",
        json!([
            {"id": "input_image", "name": "Input Image", "type": "videoUrl"},
            {"id": "prompt", "name": "Prompt", "type": "text", "optional": true}
        ]),
    );
    let mut sparse = technique("sparse", json!([image_input("source")]));
    sparse["slug"] = json!("sparse-one");
    sparse["extra_field"] = json!({"kept": true});
    let brand_new = technique("brand-new", json!([image_input("photo")]));
    let mut filler = brand_new.clone();
    filler["inputs"] = json!([]);
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .and(query_param("limit", "100"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"techniques": [cctv.clone()], "meta": {"next_cursor": "p2"}}),
            ),
        )
        .with_priority(10)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .and(query_param("cursor", "p2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "techniques": [summary(&sparse)],
            "meta": {"next_cursor": "p3"}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .and(query_param("cursor", "p3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "techniques": [filler],
            "meta": {"next_cursor": null}
        })))
        .mount(&server)
        .await;
    for t in [&cctv, &sparse, &brand_new] {
        retrievable(&server, t, retrieves).await;
    }
    server
}

#[tokio::test]
async fn fetch_paginates_prunes_reports_and_is_idempotent() {
    let dir = workspace().await;
    // Every listed technique is retrieved once per regen run below.
    let server = catalog_server(3).await;

    let mut check = online(&server);
    check.check = true;
    let before = tree(dir.path());
    let o = regen(dir.path(), &check).await.unwrap();
    assert!(!o.up_to_date());
    assert!(
        o.diff.contains("+++ b/schemas/brand-new.json"),
        "{}",
        o.diff
    );
    assert_eq!(tree(dir.path()), before, "--check writes nothing");

    let o = regen(dir.path(), &online(&server)).await.unwrap();
    assert!(
        o.source
            .starts_with("Fetched 3 technique schema(s) from FLORA."),
        "{}",
        o.source
    );
    let report = &o.report;
    assert!(
        report.starts_with("3 technique(s): 2 added, 1 removed, 1 changed, 0 warning(s)"),
        "{report}"
    );
    assert!(
        report
            .contains("BREAKING cctv-cam: input `input_image` type changed: ImageUrl -> VideoUrl"),
        "{report}"
    );
    assert!(
        report.contains("BREAKING cctv-cam: input `prompt` added (Option<String>)"),
        "{report}"
    );
    assert!(
        report.contains("BREAKING old-one: removed (struct `OldOne` and its module deleted)"),
        "{report}"
    );
    assert_eq!(o.absent_upstream, ["old-one"]);
    assert!(o.removed_files.contains(&"schemas/old-one.json".to_owned()));
    assert!(
        report.contains("sparse-one: added as `SparseOne`"),
        "{report}"
    );

    let t = tree(dir.path());
    assert!(!t.contains_key("schemas/old-one.json"));
    assert!(!t.contains_key("flora-api/src/techniques/old_one.rs"));
    assert!(!t["flora-api/src/techniques/mod.rs"].contains("old_one"));
    assert!(t.contains_key("flora-api/src/techniques/sparse_one.rs"));
    assert!(
        t["flora-api/src/techniques/cctv_cam.rs"]
            .contains("pub input_image: ::flora_api::VideoUrl")
    );
    // The list carried `inputs: []` filler; the retrieved schema has the real input.
    assert!(
        t["flora-api/src/techniques/brand_new.rs"].contains("pub photo: ::flora_api::ImageUrl"),
        "{}",
        t["flora-api/src/techniques/brand_new.rs"]
    );
    // Exactly the API's object: unknown fields kept, keys sorted, trailing newline.
    let sparse = &t["schemas/sparse-one.json"];
    assert!(
        sparse.contains("\"extra_field\": {\n    \"kept\": true\n  }"),
        "{sparse}"
    );
    assert!(sparse.ends_with("}\n"));
    let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, Value>>(sparse)
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    let again = regen(dir.path(), &online(&server)).await.unwrap();
    assert!(again.up_to_date(), "{:?}", again.changed_files);
    assert_eq!(tree(dir.path()), t, "running regen twice changes nothing");
}

#[tokio::test]
async fn only_updates_the_named_slugs() {
    let dir = workspace().await;
    // Only `brand-new` is retrieved.
    let server = MockServer::start().await;
    let brand_new = technique("brand-new", json!([image_input("photo")]));
    let other = technique("sparse-one", json!([]));
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"techniques": [summary(&brand_new), summary(&other)]})),
        )
        .mount(&server)
        .await;
    retrievable(&server, &brand_new, 1).await;
    retrievable(&server, &other, 0).await;
    let mut opts = online(&server);
    opts.fetch.only = vec!["brand-new".into()];
    let o = regen(dir.path(), &opts).await.unwrap();
    let t = tree(dir.path());
    assert!(t.contains_key("schemas/brand-new.json"));
    assert!(
        t.contains_key("schemas/old-one.json"),
        "others stay as committed"
    );
    assert!(!t.contains_key("schemas/sparse-one.json"));
    assert!(!o.breaking, "{}", o.report);
}

/// A server answering `techniques` with full objects (each also retrievable).
async fn serving(list: Vec<Value>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"techniques": list.clone()})))
        .mount(&server)
        .await;
    for t in &list {
        retrievable(&server, t, 0..=100).await;
    }
    server
}

#[tokio::test]
async fn a_bad_schema_leaves_the_tree_untouched() {
    let dir = workspace().await;
    let server = serving(vec![
        technique("cctv-cam", json!([image_input("a-b"), image_input("a_b")])),
        technique("fine", json!([])),
    ])
    .await;
    let before = tree(dir.path());
    let err = regen(dir.path(), &online(&server)).await.unwrap_err();
    assert!(err.contains("schemas/cctv-cam.json#/inputs/1/id"), "{err}");
    assert!(err.contains("collides"), "{err}");
    assert_eq!(tree(dir.path()), before);
}

#[tokio::test]
async fn unauthorized_names_the_variable() {
    let dir = workspace().await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": {"code": "invalid_api_key", "message": "Invalid API key."}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let before = tree(dir.path());
    let err = regen(dir.path(), &online(&server)).await.unwrap_err();
    assert!(err.contains("FLORA_API_KEY"), "{err}");
    assert!(err.contains("--offline"), "{err}");
    assert!(!err.contains("sk_test_key"), "{err}");
    assert_eq!(tree(dir.path()), before);
}

#[tokio::test]
async fn unsafe_slugs_are_refused() {
    let dir = workspace().await;
    let server = MockServer::start().await;
    let mut t = technique("x", json!([]));
    t["slug"] = json!("../escape");
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"techniques": [t]})))
        .mount(&server)
        .await;
    let err = regen(dir.path(), &online(&server)).await.unwrap_err();
    assert!(err.contains("cannot be used as a file name"), "{err}");
    assert!(!dir.path().join("escape.json").exists());
}

fn push(list: &mut Value, item: Value) {
    list.as_array_mut().unwrap().push(item);
}

/// A server whose list endpoint answers `body` (and retrieves nothing).
async fn listing(body: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn malformed_catalog_answers_delete_nothing() {
    let dir = workspace().await;
    let before = tree(dir.path());
    for body in [
        json!({}),
        json!({"techniques": null}),
        json!({"data": [technique("x", json!([]))]}),
        json!({"techniques": "all of them"}),
    ] {
        let server = listing(body.clone()).await;
        let err = regen(dir.path(), &online(&server)).await.unwrap_err();
        assert!(err.contains("GET /techniques"), "{body}: {err}");
        assert!(err.contains("no `techniques` array"), "{body}: {err}");
        assert_eq!(tree(dir.path()), before, "{body}");
    }
}

#[tokio::test]
async fn an_empty_catalog_needs_allow_mass_removal() {
    let dir = workspace().await;
    let before = tree(dir.path());
    let server = listing(json!({"techniques": []})).await;
    let err = regen(dir.path(), &online(&server)).await.unwrap_err();
    assert!(err.contains("--allow-mass-removal"), "{err}");
    assert!(err.contains("cctv-cam") && err.contains("old-one"), "{err}");
    assert_eq!(tree(dir.path()), before);

    let mut opts = online(&server);
    opts.allow_mass_removal = true;
    let o = regen(dir.path(), &opts).await.unwrap();
    assert!(
        o.report.starts_with("0 technique(s): 0 added, 2 removed"),
        "{}",
        o.report
    );
    let t = tree(dir.path());
    assert!(!t.contains_key("schemas/cctv-cam.json"));
    assert_eq!(t.len(), 1, "only mod.rs is left: {:?}", t.keys());
}

#[tokio::test]
async fn removing_more_than_half_needs_the_flag_but_keep_local_keeps() {
    let dir = workspace().await;
    // Three local techniques, the server lists only one: two of three would go.
    fs::write(
        dir.path().join("schemas/third.json"),
        xtask::regen::schema_text(&technique("third", json!([]))).unwrap(),
    )
    .unwrap();
    let server = serving(vec![technique(
        "cctv-cam",
        json!([image_input("input_image")]),
    )])
    .await;
    let before = tree(dir.path());
    let err = regen(dir.path(), &online(&server)).await.unwrap_err();
    assert!(err.contains("2 of the 3"), "{err}");
    assert_eq!(tree(dir.path()), before);

    let mut opts = online(&server);
    opts.keep_local = true;
    let o = regen(dir.path(), &opts).await.unwrap();
    assert_eq!(o.absent_upstream, ["old-one", "third"]);
    let t = tree(dir.path());
    assert!(t.contains_key("schemas/old-one.json"));
    assert!(t.contains_key("flora-api/src/techniques/third.rs"));
}

#[tokio::test]
async fn empty_pages_with_a_cursor_are_followed() {
    let dir = workspace().await;
    let server = MockServer::start().await;
    let cctv = technique("cctv-cam", json!([image_input("input_image")]));
    let old = technique("old-one", json!([]));
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .and(query_param("cursor", "c1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"techniques": [], "meta": {"next_cursor": "c2"}})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .and(query_param("cursor", "c2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"techniques": [summary(&cctv), summary(&old)]})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"techniques": [], "meta": {"next_cursor": "c1"}})),
        )
        .mount(&server)
        .await;
    retrievable(&server, &cctv, 1).await;
    retrievable(&server, &old, 1).await;
    let o = regen(dir.path(), &online(&server)).await.unwrap();
    assert!(o.up_to_date(), "{:?}\n{}", o.changed_files, o.report);
    assert!(o.absent_upstream.is_empty());
}

#[tokio::test]
async fn only_with_an_unknown_slug_fails_and_names_it() {
    let dir = workspace().await;
    let server = serving(vec![technique("cctv-cam", json!([]))]).await;
    let mut opts = online(&server);
    opts.fetch.only = vec!["cctv-cam".into(), "nope".into()];
    let before = tree(dir.path());
    let err = regen(dir.path(), &opts).await.unwrap_err();
    assert!(err.contains("`nope`"), "{err}");
    assert!(!err.contains("`cctv-cam`"), "{err}");
    assert!(err.contains("the key sees: cctv-cam"), "{err}");
    assert_eq!(tree(dir.path()), before);
}

#[tokio::test]
async fn slugs_differing_only_by_case_are_refused() {
    let dir = workspace().await;
    let mut a = technique("x", json!([]));
    a["slug"] = json!("Sticker");
    let mut b = technique("y", json!([]));
    b["slug"] = json!("sticker");
    let server = serving(vec![a, b]).await;
    let err = regen(dir.path(), &online(&server)).await.unwrap_err();
    assert!(err.contains("differ only by case"), "{err}");
    for bad in ["C:evil", "con", "nul.txt", "a\u{202e}b"] {
        let mut t = technique("z", json!([]));
        t["slug"] = json!(bad);
        let server = serving(vec![t]).await;
        let err = regen(dir.path(), &online(&server)).await.unwrap_err();
        assert!(
            err.contains("cannot be used as a file name"),
            "{bad:?}: {err}"
        );
    }
}

#[tokio::test]
async fn unknown_slot_types_warn_and_deny_warnings_refuses() {
    let dir = workspace().await;
    let mut t = technique("cctv-cam", json!([image_input("input_image")]));
    push(
        &mut t["inputs"],
        json!({"id": "steps", "name": "Steps", "type": "number"}),
    );
    push(
        &mut t["outputs"],
        json!({"id": "mesh", "name": "Mesh", "type": "meshUrl"}),
    );
    let server = serving(vec![t, technique("old-one", json!([]))]).await;

    let mut strict = xtask::regen::Layout::workspace(dir.path());
    strict.codegen = flora_codegen::Config::flora_api().deny_warnings(true);
    let before = tree(dir.path());
    let err = flora_codegen::cli::regen(&strict, &online(&server))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), flora_codegen::cli::RegenErrorKind::Schema);
    let err = err.to_string();
    assert!(err.contains("denied by --deny-warnings"), "{err}");
    assert!(
        err.contains("schemas/cctv-cam.json#/inputs/1/type"),
        "{err}"
    );
    assert_eq!(tree(dir.path()), before);

    let o = regen(dir.path(), &online(&server)).await.unwrap();
    let r = &o.report;
    assert!(r.contains("1 changed, 2 warning(s)"), "{r}");
    assert!(
        r.contains("BREAKING cctv-cam: input `steps` added (String)"),
        "{r}"
    );
    assert!(
        r.contains("BREAKING cctv-cam: output `mesh` added (RawOutput)"),
        "{r}"
    );
    assert!(
        r.contains(
            "warning: schemas/cctv-cam.json#/inputs/1/type: input `steps` has type `number`"
        ),
        "{r}"
    );
    let code = &tree(dir.path())["flora-api/src/techniques/cctv_cam.rs"];
    assert!(code.contains("pub steps: ::std::string::String"), "{code}");
    assert!(code.contains(r#""steps", "number""#), "{code}");
}

#[tokio::test]
async fn report_follows_the_rust_surface() {
    let dir = workspace().await;
    // `input_image` -> `inputImage` keeps the field; the id changes; a new output appears.
    let mut t = technique("cctv-cam", json!([image_input("inputImage")]));
    t["technique_id"] = json!("tech_cctv-cam-v2");
    t["slug"] = json!("cctv-cam");
    push(
        &mut t["outputs"],
        json!({"id": "caption", "name": "Caption", "type": "text"}),
    );
    let mut old = technique("old-one", json!([]));
    old["slug"] = json!("old_one");
    let server = serving(vec![t, old]).await;
    let mut opts = online(&server);
    opts.allow_mass_removal = true;
    let o = regen(dir.path(), &opts).await.unwrap();
    let r = &o.report;
    assert!(
        r.contains("  cctv-cam: input wire id `input_image` -> `inputImage` (Rust field `input_image` unchanged)"),
        "{r}"
    );
    assert!(
        r.contains("  cctv-cam: technique id `tech_cctv-cam` -> `tech_cctv-cam-v2`"),
        "{r}"
    );
    assert!(
        r.contains("BREAKING cctv-cam: output `caption` added (String)"),
        "{r}"
    );
    // `old-one` -> `old_one`: same module and struct, so only the slug note.
    assert!(
        r.contains("  old_one: slug `old-one` -> `old_one` (same struct and module)"),
        "{r}"
    );
    assert!(!r.contains("BREAKING old"), "{r}");
    assert!(!r.contains("input `input_image` removed"), "{r}");
}

#[tokio::test]
async fn offline_reports_and_normalises_hand_written_schemas() {
    let dir = workspace().await;
    // A hand-written schema: keys unsorted, no trailing newline.
    fs::write(
        dir.path().join("schemas/hand-made.json"),
        r#"{"technique_id":"tech_hand-made","run_cost":0,"name":"Hand","outputs":[],"inputs":[]}"#,
    )
    .unwrap();
    fs::remove_file(dir.path().join("schemas/old-one.json")).unwrap();
    let check = Options {
        offline: true,
        check: true,
        ..Options::default()
    };
    let o = regen(dir.path(), &check).await.unwrap();
    assert!(
        o.changed_files
            .contains(&"schemas/hand-made.json".to_owned()),
        "{:?}",
        o.changed_files
    );
    assert!(
        o.diff.contains("+++ b/schemas/hand-made.json"),
        "{}",
        o.diff
    );
    assert!(
        o.report
            .starts_with("2 technique(s): 1 added, 1 removed, 0 changed"),
        "{}",
        o.report
    );
    assert!(
        o.report.contains("hand-made: added as `HandMade`"),
        "{}",
        o.report
    );
    assert!(
        o.report.contains("BREAKING old-one: removed"),
        "{}",
        o.report
    );
    assert_eq!(
        o.removed_files,
        ["flora-api/src/techniques/old_one.rs".to_owned()]
    );

    let write = Options {
        offline: true,
        ..Options::default()
    };
    regen(dir.path(), &write).await.unwrap();
    let text = &tree(dir.path())["schemas/hand-made.json"];
    assert!(text.starts_with("{\n  \"inputs\": [],\n"), "{text}");
    assert!(text.ends_with("}\n"));
    assert!(regen(dir.path(), &check).await.unwrap().up_to_date());
}

#[tokio::test]
async fn check_flags_leftover_temporary_files_and_a_write_removes_them() {
    let dir = workspace().await;
    let check = Options {
        offline: true,
        check: true,
        ..Options::default()
    };
    let tmp = dir
        .path()
        .join("flora-api/src/techniques/cctv_cam.rs.regen-tmp");
    fs::write(&tmp, "half").unwrap();
    let o = regen(dir.path(), &check).await.unwrap();
    assert_eq!(
        o.changed_files,
        ["flora-api/src/techniques/cctv_cam.rs.regen-tmp".to_owned()]
    );
    // A write run cleans it up.
    regen(
        dir.path(),
        &Options {
            offline: true,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    assert!(!tmp.exists());
    // Staging and swap failures (all-or-nothing) are `flora_codegen`'s own unit tests
    // (`cli::write`): staging now uses fresh random names, so no path here can block it.
}

/// The example in flora-codegen's schema format docs is a valid schema that generates what
/// the text says.
#[test]
fn the_documented_schema_example_generates() {
    let readme =
        fs::read_to_string(xtask::workspace_root().join("flora-codegen/src/schema_format.md"))
            .unwrap();
    let json = readme
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let out = flora_codegen::generate(
        &[flora_codegen::SchemaFile::new(
            "schemas/sticker-maker.json",
            json,
        )],
        &flora_codegen::Config::flora_api(),
    )
    .unwrap();
    assert!(out.warnings.is_empty());
    let code = &out.files["sticker_maker.rs"];
    assert!(code.contains("pub photo: ::flora_api::ImageUrl,"), "{code}");
    assert!(
        code.contains("pub outline: ::core::option::Option<::std::string::String>,"),
        "{code}"
    );
    assert!(
        code.contains("pub sticker: ::flora_api::ImageUrl,"),
        "{code}"
    );
}

fn model(id: &str, params: Value) -> Value {
    json!({
        "model_id": id, "name": id, "type": "image", "provider": "Test",
        "capabilities": ["text-to-image"], "estimated_credits": 4, "estimated_seconds": 25,
        "params": params
    })
}

/// A server with one technique and a model catalog of two pages.
async fn models_server(pages: [Vec<Value>; 2]) -> MockServer {
    let server = serving(vec![technique(
        "cctv-cam",
        json!([image_input("input_image")]),
    )])
    .await;
    let [first, second] = pages;
    Mock::given(method("GET"))
        .and(path("/models"))
        .and(query_param("limit", "100"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"models": first, "meta": {"next_cursor": "m2"}})),
        )
        .with_priority(10)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/models"))
        .and(query_param("cursor", "m2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"models": second, "meta": {"next_cursor": null}})),
        )
        .with_priority(5)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn the_model_catalog_is_fetched_generated_and_its_breaking_changes_marked() {
    let dir = workspace().await;
    let ratio = |values: &[&str]| {
        json!({"name": "aspect_ratio", "type": "string", "options": values.iter()
            .map(|v| json!({"label": v, "value": v})).collect::<Vec<_>>()})
    };
    let first = models_server([
        vec![model(
            "t2i-a",
            json!([ratio(&["square_1_1", "landscape_16_9"]), {"name": "steps", "type": "int", "min": 1, "max": 50}]),
        )],
        vec![model(
            "t2i-b",
            json!([{"name": "grid", "type": "tensor"}]),
        )],
    ])
    .await;
    let outcome = regen(dir.path(), &online(&first)).await.unwrap();
    assert!(
        outcome.source.contains("Fetched 2 model(s)"),
        "{}",
        outcome.source
    );
    let a = fs::read_to_string(dir.path().join("schemas/models/t2i-a.json")).unwrap();
    assert_eq!(
        a,
        xtask::regen::schema_text(&serde_json::from_str(&a).unwrap()).unwrap()
    );
    let code = fs::read_to_string(dir.path().join("flora-api/src/models/t2i_a.rs")).unwrap();
    assert!(code.contains("pub const Landscape169"), "{code}");
    assert!(
        outcome.report.contains("t2i-b.json#/params/0/type")
            && outcome.report.contains("\"tensor\""),
        "an unknown param type warns, never blocks: {}",
        outcome.report
    );
    assert!(
        !outcome.report.contains("BREAKING t2i"),
        "{}",
        outcome.report
    );

    // The catalog changes: a value removed, a range narrowed, a model gone.
    let second = models_server([
        vec![model(
            "t2i-a",
            json!([ratio(&["square_1_1", "portrait_9_16"]), {"name": "steps", "type": "int", "min": 1, "max": 30}]),
        )],
        vec![model("t2i-c", json!([]))],
    ])
    .await;
    let outcome = regen(dir.path(), &online(&second)).await.unwrap();
    for line in [
        "BREAKING t2i-a: param `aspect_ratio` no longer allows `landscape_16_9`",
        "  t2i-a: param `aspect_ratio` now also allows `portrait_9_16`",
        "BREAKING t2i-a: param `steps` range 1..=50 → 1..=30",
        "BREAKING t2i-b: model removed",
        "  t2i-c: model added",
    ] {
        assert!(
            outcome.report.contains(line),
            "{line:?} in:\n{}",
            outcome.report
        );
    }
    assert!(outcome.breaking);
    assert!(!dir.path().join("schemas/models/t2i-b.json").exists());
    assert!(!dir.path().join("flora-api/src/models/t2i_b.rs").exists());
    assert!(dir.path().join("flora-api/src/models/t2i_c.rs").exists());
}

#[tokio::test]
async fn a_server_without_a_model_catalog_leaves_the_local_models_alone() {
    let dir = workspace().await;
    fs::create_dir_all(dir.path().join("schemas/models")).unwrap();
    let entry = xtask::regen::schema_text(&model("t2i-a", json!([]))).unwrap();
    fs::write(dir.path().join("schemas/models/t2i-a.json"), &entry).unwrap();
    let server = serving(vec![technique(
        "cctv-cam",
        json!([image_input("input_image")]),
    )])
    .await;
    let outcome = regen(dir.path(), &online(&server)).await.unwrap();
    assert!(
        outcome.source.contains("no model catalog"),
        "{}",
        outcome.source
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("schemas/models/t2i-a.json")).unwrap(),
        entry
    );
    assert!(dir.path().join("flora-api/src/models/t2i_a.rs").exists());
}
