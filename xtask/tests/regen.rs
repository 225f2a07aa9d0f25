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
        api_key: Some("sk_test_key".into()),
        base_url: Some(server.uri()),
        ..Options::default()
    }
}

/// Three pages: a changed `cctv-cam`, a list item without slots (retrieved on its own),
/// and one more new technique. `old-one` is gone upstream.
async fn catalog_server(retrieves: u64) -> MockServer {
    let server = MockServer::start().await;
    let cctv = technique(
        "cctv-cam",
        json!([
            {"id": "input_image", "name": "Input Image", "type": "videoUrl"},
            {"id": "prompt", "name": "Prompt", "type": "text", "optional": true}
        ]),
    );
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .and(query_param("limit", "100"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"techniques": [cctv], "meta": {"next_cursor": "p2"}})),
        )
        .with_priority(10)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .and(query_param("cursor", "p2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "techniques": [{"technique_id": "tech_sparse", "name": "Sparse", "slug": "sparse-one", "run_cost": 0}],
            "meta": {"next_cursor": "p3"}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .and(query_param("cursor", "p3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "techniques": [technique("brand-new", json!([image_input("photo")]))],
            "meta": {"next_cursor": null}
        })))
        .mount(&server)
        .await;
    let mut sparse = technique("sparse", json!([image_input("source")]));
    sparse["slug"] = json!("sparse-one");
    sparse["extra_field"] = json!({"kept": true});
    Mock::given(method("GET"))
        .and(path("/techniques/tech_sparse"))
        .respond_with(ResponseTemplate::new(200).set_body_json(sparse))
        .expect(retrieves)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn fetch_paginates_prunes_reports_and_is_idempotent() {
    let dir = workspace().await;
    // Once per regen run below: the list item lacks slots, so it is retrieved on its own.
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
    assert_eq!(o.source, "Fetched 3 technique schema(s) from FLORA.");
    let report = &o.report;
    assert!(
        report.starts_with("3 technique(s): 2 added, 1 removed, 1 changed"),
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
        report.contains("BREAKING old-one: removed upstream"),
        "{report}"
    );
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
    // `sparse-one` is filtered out before it would be retrieved.
    let server = catalog_server(0).await;
    let mut opts = online(&server);
    opts.only = vec!["brand-new".into()];
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

#[tokio::test]
async fn a_bad_schema_leaves_the_tree_untouched() {
    let dir = workspace().await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"techniques": [
                technique("cctv-cam", json!([{"id": "x", "name": "X", "type": "hologramUrl"}])),
                technique("fine", json!([]))
            ]})),
        )
        .mount(&server)
        .await;
    let before = tree(dir.path());
    let err = regen(dir.path(), &online(&server)).await.unwrap_err();
    assert!(
        err.contains("schemas/cctv-cam.json#/inputs/0/type"),
        "{err}"
    );
    assert!(err.contains("unknown media type `hologramUrl`"), "{err}");
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
