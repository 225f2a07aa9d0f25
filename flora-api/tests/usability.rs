//! What a new user hits first: errors that name their cause, the base URL rule, and the
//! run-time drift check.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use flora_api::{Client, Drift, Error};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn connection_refused_names_host_and_cause() {
    // Bind then drop a listener: the port is free and nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::builder()
        .api_key(KEY)
        .base_url(format!("http://127.0.0.1:{port}"))
        .max_retries(0)
        .build()
        .unwrap();
    let err = client.technique("cctv-cam").await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Connection { .. }), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
    assert!(!msg.contains(KEY), "{msg}");
}

/// A resolver that knows no host: DNS failure without touching the network.
struct NoDns;

impl flora_api::reqwest::dns::Resolve for NoDns {
    fn resolve(&self, name: flora_api::reqwest::dns::Name) -> flora_api::reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let e: Box<dyn std::error::Error + Send + Sync> =
                format!("no such host {host} (test resolver)").into();
            Err::<Box<dyn Iterator<Item = SocketAddr> + Send>, _>(e)
        })
    }
}

#[tokio::test]
async fn dns_failure_names_host_and_cause() {
    // A reqwest client of one's own needs the TLS provider first, as the docs say.
    flora_api::install_crypto_provider();
    let http = flora_api::reqwest::Client::builder()
        .dns_resolver(Arc::new(NoDns))
        .build()
        .unwrap();
    let client = Client::builder()
        .api_key(KEY)
        .base_url("https://api.nowhere.test")
        .http_client(http)
        .max_retries(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let msg = client.technique("cctv-cam").await.unwrap_err().to_string();
    assert!(msg.contains("api.nowhere.test:443"), "{msg}");
    assert!(msg.contains("dns error"), "{msg}");
    assert!(msg.contains("no such host api.nowhere.test"), "{msg}");
}

#[tokio::test]
async fn a_404_under_a_base_url_without_api_v1_points_at_the_base_url() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_string("Not Found"))
        .mount(&server)
        .await;
    // `http://127.0.0.1:PORT/` (root): the path does not end in /api/v1.
    let err = fast(&server.uri())
        .build()
        .unwrap()
        .technique("cctv-cam")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not end in /api/v1"), "{err}");
    assert!(err.contains("FLORA_BASE_URL"), "{err}");
    assert!(!err.contains("check the technique slug"), "{err}");

    // With no path at all, `/api/v1` is appended, and a 404 blames the slug.
    let client = Client::builder()
        .api_key(KEY)
        .base_url(server.uri())
        .build()
        .unwrap();
    assert!(client.base_url().as_str().ends_with("/api/v1"));
    let err = client.technique("nope").await.unwrap_err().to_string();
    assert!(err.contains("check the technique slug"), "{err}");
    let seen = server.received_requests().await.unwrap();
    assert_eq!(seen.last().unwrap().url.path(), "/api/v1/techniques/nope");
}

#[tokio::test]
async fn a_401_reads_as_one_sentence() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": {"code": "invalid_api_key", "message": "Invalid API key."}}),
        ))
        .mount(&server)
        .await;
    let err = fast(&server.uri())
        .build()
        .unwrap()
        .technique("x")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Invalid API key; check the API key (FLORA_API_KEY)"),
        "{err}"
    );
    assert!(!err.contains(".;"), "{err}");
}

async fn schema_server(schema: serde_json::Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/techniques/upscale"))
        .respond_with(ResponseTemplate::new(200).set_body_json(schema))
        .expect(1)
        .mount(&server)
        .await;
    server
}

fn upscale_schema() -> serde_json::Value {
    json!({
        "technique_id": "tech_upscale", "name": "Upscale", "run_cost": 0.05,
        "inputs": [
            {"id": "input_image", "name": "Image", "type": "image_url"},
            {"id": "prompt", "name": "Prompt", "type": "text", "optional": true}
        ],
        "outputs": [
            {"id": "output_image", "name": "Out", "type": "imageUrl"},
            {"id": "caption", "name": "Caption", "type": "text"}
        ]
    })
}

#[tokio::test]
async fn verify_accepts_an_unchanged_schema() {
    let server = schema_server(upscale_schema()).await;
    let client = fast(&server.uri()).build().unwrap();
    client.verify::<Upscale>().await.unwrap();
}

#[tokio::test]
async fn verify_lists_every_kind_of_drift() {
    let mut s = upscale_schema();
    s["inputs"] = json!([
        {"id": "input_image", "type": "videoUrl"},
        {"id": "prompt", "type": "text", "optional": false},
        {"id": "strength", "type": "text", "optional": true}
    ]);
    s["outputs"] = json!([
        {"id": "output_image", "type": "imageUrl"},
        {"id": "mask", "type": "imageUrl"}
    ]);
    let server = schema_server(s).await;
    let client = fast(&server.uri()).build().unwrap();
    let err = client.verify::<Upscale>().await.unwrap_err();
    let Error::SchemaDrift {
        technique,
        differences,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(technique, "upscale");
    assert_eq!(differences.len(), 5, "{differences:?}");
    assert!(matches!(
        &differences[0],
        Drift::TypeChanged { id, live, .. } if id == "input_image" && live == "videoUrl"
    ));
    assert!(matches!(
        &differences[1],
        Drift::OptionalityChanged { id, now_optional: false } if id == "prompt"
    ));
    assert!(matches!(&differences[2], Drift::InputAdded { id, .. } if id == "strength"));
    assert!(matches!(&differences[3], Drift::OutputRemoved { id } if id == "caption"));
    assert!(matches!(&differences[4], Drift::OutputAdded { id, .. } if id == "mask"));
    let msg = err.to_string();
    assert!(msg.contains("cargo xtask regen"), "{msg}");
    assert!(
        msg.contains("input `strength` added (text, optional)"),
        "{msg}"
    );

    // And an input removed upstream.
    let mut s = upscale_schema();
    s["inputs"] = json!([{"id": "input_image", "type": "imageUrl"}]);
    let server = schema_server(s).await;
    let client = fast(&server.uri()).build().unwrap();
    let msg = client.verify::<Upscale>().await.unwrap_err().to_string();
    assert!(msg.contains("input `prompt` removed"), "{msg}");
}

#[tokio::test]
async fn a_validation_error_on_a_typed_run_points_at_verify_and_regen() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": {"code": "input_validation_error", "message": "prompt: Required"}}),
        ))
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let msg = client.run(&upscale()).await.unwrap_err().to_string();
    assert!(msg.contains("cargo xtask regen"), "{msg}");
    assert!(msg.contains("verify"), "{msg}");
}

#[test]
fn media_urls_parse_from_str() {
    let u: flora_api::ImageUrl = "https://example.com/a.png".parse().unwrap();
    assert_eq!(u.as_str(), "https://example.com/a.png");
    let v = flora_api::VideoUrl::try_from("https://example.com/a.mp4").unwrap();
    assert_eq!(v.to_string(), "https://example.com/a.mp4");
}
