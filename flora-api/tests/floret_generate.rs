//! `floret generate`, `models` and `show-model` against `FakeFlora::serve` on loopback: a
//! value outside the catalog is exit 2 naming the allowed values with nothing sent; a good
//! one generates, saves and reports the settled charge.
#![cfg(feature = "cli")]

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use flora_api::testing::{FakeFlora, Served};
use serde_json::{Value, json};

mod common;

use common::floret::{code, stderr, stdout};
use common::models::flux;

const KEY: &str = "sk_test_floret_generate_key";

async fn floret(served: &Served, dir: &Path, args: &[&str]) -> Output {
    let cmd = common::floret::floret(&served.base_url(), dir, Some(KEY), args);
    common::floret::output(cmd, None, Duration::from_secs(60)).await
}

async fn serve_flux() -> (FakeFlora, Served, tempfile::TempDir) {
    let fake = FakeFlora::new();
    fake.model_schema(&flux())
        .quotes(0.004)
        .charges(0.009)
        .completes();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    (fake, served, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banana_aspect_ratio_exits_2_listing_the_allowed_values_with_nothing_sent() {
    let (fake, served, dir) = serve_flux().await;
    let before = fake.request_count();
    let o = floret(
        &served,
        dir.path(),
        &[
            "generate",
            "t2i-flux-2-pro",
            "--prompt",
            "a cat",
            "--aspect-ratio",
            "banana_9_9",
        ],
    )
    .await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("banana_9_9") && err.contains("square_1_1") && err.contains("landscape_16_9"),
        "{err}"
    );
    let counts = fake.request_counts();
    assert_eq!(counts.get("POST /generate"), None, "{counts:?}");
    // Only the free catalog read.
    assert_eq!(fake.request_count() - before, 1, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_range_number_exits_2_naming_the_range_with_nothing_sent() {
    let (fake, served, dir) = serve_flux().await;
    let o = floret(
        &served,
        dir.path(),
        &[
            "generate",
            "t2i-flux-2-pro",
            "--prompt",
            "a cat",
            "--steps",
            "51",
            "--json",
        ],
    )
    .await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err: Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    let message = err["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("`steps` is 51, not from 1 to 50"), "{err}");
    assert_eq!(fake.request_counts().get("POST /generate"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_is_saved_and_its_settled_charge_reported_in_json() {
    let (fake, served, dir) = serve_flux().await;
    let o = floret(
        &served,
        dir.path(),
        &[
            "generate",
            "t2i-flux-2-pro",
            "--project-id",
            "prj_fake",
            "--prompt",
            "a cat",
            "--aspect-ratio",
            "landscape_16_9",
            "--download",
            "out",
            "--json",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["charge"]["settled"], 0.009, "{doc}");
    let saved = doc["saved"][0]["path"].as_str().unwrap();
    let bytes = std::fs::read(dir.path().join(saved))
        .or_else(|_| std::fs::read(saved))
        .unwrap();
    let url = doc["outputs"][0]["value"].as_str().unwrap();
    assert_eq!(
        Some(bytes.into()),
        fake.media(url),
        "the saved file is what the fake serves"
    );
    let sent = fake.generations();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].params, json!({"aspect_ratio": "landscape_16_9"}));
    assert!(!stdout(&o).contains(KEY) && !stderr(&o).contains(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_help_lists_the_choices_with_labels_and_show_model_its_params() {
    let (_fake, served, dir) = serve_flux().await;
    let o = floret(
        &served,
        dir.path(),
        &["generate", "t2i-flux-2-pro", "--help"],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let help = stdout(&o);
    assert!(
        help.contains("--aspect-ratio")
            && help.contains("landscape_16_9")
            && help.contains("Landscape 16:9"),
        "{help}"
    );
    assert!(help.contains("from 1 to 50"), "{help}");
    assert!(
        !help.contains("--hologram"),
        "a param of an unknown type is not offered: {help}"
    );
    let o = floret(&served, dir.path(), &["show-model", "t2i-flux-2-pro"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("square_1_1"), "{}", stdout(&o));
    assert!(stderr(&o).contains("hologram"), "{}", stderr(&o));
    let o = floret(
        &served,
        dir.path(),
        &["models", "--type", "image", "--json"],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["models"][0]["model_id"], "t2i-flux-2-pro");
}
