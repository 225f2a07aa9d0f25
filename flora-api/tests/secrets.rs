//! The API key never shows up in Debug, Display, errors or tracing output.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use flora_api::Client;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn key_never_appears_in_debug_errors_or_traces() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_json(error_json("internal_error", "x")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(run_json("run_1", "pending")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(error_json("invalid_api_key", "Invalid API key.")),
        )
        .mount(&server)
        .await;

    let builder = fast(&server.uri());
    let mut texts = vec![format!("{builder:?}")];
    let client = builder.build().unwrap();
    texts.push(format!("{client:?}"));
    let handle = client.start(&upscale()).await.unwrap();
    texts.push(format!("{handle:?}"));
    let err = client.run(&upscale()).await.unwrap_err();
    texts.push(format!("{err}"));
    texts.push(format!("{err:?}"));
    let err = Client::builder()
        .api_key(format!("{KEY}\n"))
        .build()
        .unwrap_err();
    texts.push(format!("{err} {err:?}"));

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("flora.request"),
        "spans were captured: {logs}"
    );
    assert!(logs.contains("attempt=2"), "the retry was traced: {logs}");
    texts.push(logs);
    for t in &texts {
        assert!(!t.contains("SUPERSECRET"), "key leaked in: {t}");
    }
    // The key did go out, in the header, to the configured server.
    let sent = server.received_requests().await.unwrap();
    assert!(
        sent.iter()
            .all(|r| r.headers["authorization"] == format!("Bearer {KEY}").as_str())
    );
    let _ = json!({});
}

#[test]
fn from_env_reads_and_checks_variables() {
    // The only test in this binary that touches the environment.
    // SAFETY: no other thread of this test binary reads or writes these variables.
    unsafe {
        std::env::remove_var("FLORA_API_KEY");
        std::env::remove_var("FLORA_BASE_URL");
        std::env::remove_var("FLORA_CUSTOM_HEADERS");
    }
    let err = Client::from_env().unwrap_err().to_string();
    assert!(err.contains("FLORA_API_KEY"), "{err}");
    unsafe { std::env::set_var("FLORA_API_KEY", "") };
    assert!(
        Client::from_env()
            .unwrap_err()
            .to_string()
            .contains("FLORA_API_KEY")
    );
    unsafe { std::env::set_var("FLORA_API_KEY", KEY) };
    let c = Client::from_env().unwrap();
    assert_eq!(c.base_url().as_str(), "https://app.flora.ai/api/v1");
    unsafe { std::env::set_var("FLORA_BASE_URL", "http://127.0.0.1:9/api/v1") };
    let c = Client::from_env().unwrap();
    assert_eq!(c.base_url().as_str(), "http://127.0.0.1:9/api/v1");
    unsafe { std::env::set_var("FLORA_BASE_URL", "http://example.com/api/v1") };
    let err = Client::from_env().unwrap_err().to_string();
    assert!(err.contains("https://"), "{err}");
    unsafe {
        std::env::remove_var("FLORA_BASE_URL");
        std::env::set_var("FLORA_CUSTOM_HEADERS", "X-A: 1\nbroken");
    }
    let err = Client::from_env().unwrap_err().to_string();
    // Named by line number; the line itself may hold a token and is never echoed.
    assert!(err.contains("line 2"), "{err}");
    assert!(!err.contains("broken"), "{err}");
    assert!(!err.contains("SUPERSECRET"));
    unsafe { std::env::remove_var("FLORA_CUSTOM_HEADERS") };
}
