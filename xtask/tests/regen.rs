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
    assert_eq!(o.source, "Fetched 3 technique schema(s) from FLORA.");
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

/// A server answering `techniques` with full objects (each also retrievable).
async fn serving(list: Vec<Value>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"techniques": list.clone()})))
        .mount(&server)
        .await;
    for t in &list {
        retrievable(&server, t, 1..=100).await;
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
