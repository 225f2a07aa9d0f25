//! The API key never shows up in Debug, Display, errors or tracing output.

mod common;

use common::*;
use flora_api::Client;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn key_never_appears_in_debug_errors_or_traces() {
    let (capture, _guard) = Logs::capture();

    let server = MockServer::start().await;
    // Every error answer echoes the Authorization header it got.
    let echo = |req: &wiremock::Request| format!("{:?}", req.headers.get("authorization"));
    Mock::given(method("POST"))
        .respond_with(move |req: &wiremock::Request| {
            ResponseTemplate::new(500).set_body_json(error_json("internal_error", &echo(req)))
        })
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(run_json("run_1", "pending")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(move |req: &wiremock::Request| {
            ResponseTemplate::new(401).set_body_json(error_json("invalid_api_key", &echo(req)))
        })
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

    let logs = capture.text();
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

/// A server that echoes every request it gets, `Authorization` header included, in error
/// bodies (JSON envelopes, HTML pages), in an undecodable 2xx, in a failed run's message,
/// and a storage host that quotes the signed query: the key (and the signature) never reach
/// an error's `Display` or `Debug`, nor a DEBUG log line, whatever the path.
#[tokio::test]
async fn the_key_never_appears_in_errors_or_logs_whatever_the_server_echoes() {
    use common::hostile::{self, Reply};

    let (capture, _guard) = Logs::capture();

    let polls = std::sync::atomic::AtomicUsize::new(0);
    let server = hostile::serve(move |req| {
        let echo = req.head.clone();
        let auth = req.header("authorization").unwrap_or_default();
        let poll = || polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match (req.method.as_str(), req.path()) {
            ("GET", "/techniques/envelope") => Reply::json(
                401,
                &json!({"error": {"code": "invalid_api_key", "message": format!("bad key {auth}"),
                        "fields": [{"field": auth.clone(), "message": echo}]}}),
            ),
            ("GET", "/techniques/page") => {
                Reply::bytes(502, "text/html", format!("<pre>{echo}</pre>").into_bytes())
            }
            ("POST", "/techniques/upscale/runs") if req.body.windows(7).any(|w| w == b"garbled") => {
                Reply::bytes(201, "application/json", format!("not json {echo}").into_bytes())
            }
            ("POST", "/techniques/upscale/runs") => Reply::json(
                201,
                &json!({"run_id": "run_1", "status": "pending", "progress": 0, "created_at": 1}),
            ),
            // One poll's three attempts fail (logged as a failed poll), the next ends the run.
            ("GET", "/techniques/upscale/runs/run_1") if poll() < 3 => {
                Reply::bytes(503, "text/plain", echo.into_bytes())
            }
            ("GET", "/techniques/upscale/runs/run_1") => Reply::json(
                200,
                &json!({"run_id": "run_1", "status": "failed", "progress": 100, "created_at": 1,
                        "error_code": "safety_blocked", "error_message": format!("refused {auth}")}),
            ),
            ("POST", "/assets") if req.header("content-type").is_some_and(|c| c.starts_with("multipart")) => {
                Reply::json(415, &json!({"error": {"code": "unsupported", "message": echo}}))
            }
            ("POST", "/assets") => {
                let port = req.header("host").unwrap_or_default();
                Reply::json(201, &json!({"asset_id": "asset_1", "status": "pending_upload",
                    "upload_url": format!("http://{port}/upload/a?X-Sig=SIGSECRET_abcdef")}))
            }
            ("PUT", "/upload/a") => Reply::bytes(500, "application/xml",
                format!("<Error><Request>{echo}</Request><Auth>{auth}</Auth></Error>").into_bytes()),
            _ => Reply::json(404, &json!({"error": {"code": "not_found", "message": echo}})),
        }
    })
    .await;
    let client = fast(&server.base).workspace_id("ws_1").build().unwrap();
    let mut errors = Vec::new();
    errors.push(client.technique("envelope").await.unwrap_err());
    errors.push(client.technique("page").await.unwrap_err());
    let garbled = Upscale {
        prompt: Some("garbled".into()),
        ..upscale()
    };
    errors.push(client.run(&garbled).await.unwrap_err());
    errors.push(client.run(&upscale()).await.unwrap_err());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("face.png");
    std::fs::write(&file, common::png(64, 0)).unwrap();
    errors.push(client.upload_image(&file).await.unwrap_err());

    // Each path was taken: the server echoed, and the client kept (redacted) text of it.
    assert!(
        matches!(errors[0], flora_api::Error::Api(_)),
        "{:?}",
        errors[0]
    );
    assert!(
        errors[1].to_string().contains("unexpected body"),
        "{}",
        errors[1]
    );
    assert!(
        matches!(&errors[2], flora_api::Error::RunMayExist { cause, .. } if matches!(**cause, flora_api::Error::Decode { .. })),
        "{:?}",
        errors[2]
    );
    assert!(
        matches!(errors[3], flora_api::Error::RunFailed { .. }),
        "{:?}",
        errors[3]
    );
    assert!(
        matches!(errors[4], flora_api::Error::UploadHost { .. }),
        "{:?}",
        errors[4]
    );
    let logs = capture.text();
    assert!(logs.contains("retrying"), "the retries were logged: {logs}");
    assert!(
        logs.contains("poll failed"),
        "the failed polls were logged: {logs}"
    );
    let mut texts: Vec<String> = errors
        .iter()
        .flat_map(|e| [e.to_string(), format!("{e:?}")])
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("[redacted]")),
        "the echoes reached the errors, redacted: {texts:?}"
    );
    texts.push(logs);
    for t in &texts {
        assert!(!t.contains("SUPERSECRET"), "key leaked in: {t}");
        assert!(!t.contains("SIGSECRET"), "signature leaked in: {t}");
    }
}

/// The key in an error's code, straddling the point where a body is cut short, or escaped in
/// JSON (`\u0073k_…`) in a failed run's message or status: still never shown.
#[tokio::test]
async fn the_key_never_appears_escaped_cut_short_or_as_an_error_code() {
    use common::hostile::{self, Reply};
    let escaped = format!("\\u0073{}", &KEY[1..]);
    let server = hostile::serve(move |req| {
        let (escaped, key) = (escaped.clone(), KEY);
        match (req.method.as_str(), req.path()) {
            ("GET", "/techniques/code") => Reply::json(
                401,
                &json!({"error": {"code": key, "message": "x"}}),
            ),
            ("GET", "/techniques/long") => {
                let mut body = "x".repeat(2048 - 17);
                body.push_str(key);
                body.push_str(&"y".repeat(100));
                Reply::bytes(400, "text/plain", body.into_bytes())
            }
            ("GET", "/techniques/escaped") => Reply::bytes(
                400,
                "application/json",
                format!(r#"{{"error":{{"code":"bad","message":"{escaped}"}}}}"#).into_bytes(),
            ),
            ("POST", "/techniques/upscale/runs") => Reply::json(
                201,
                &json!({"run_id": "run_1", "status": "pending", "progress": 0, "created_at": 1}),
            ),
            ("GET", "/techniques/upscale/runs/run_1") => Reply::bytes(
                200,
                "application/json",
                format!(
                    r#"{{"run_id":"run_1","status":"failed","progress":100,"created_at":1,"error_message":"{escaped}"}}"#
                )
                .into_bytes(),
            ),
            _ => Reply::json(404, &json!({"error": {"code": "not_found", "message": "?"}})),
        }
    })
    .await;
    let client = fast(&server.base).build().unwrap();
    let errors = [
        client.technique("code").await.unwrap_err(),
        client.technique("long").await.unwrap_err(),
        client.technique("escaped").await.unwrap_err(),
        client.run(&upscale()).await.unwrap_err(),
    ];
    for e in &errors {
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains("SUPERSECRET"), "key leaked in: {text}");
            assert!(
                !text.contains("sk_test_SUPERSECRE"),
                "part of the key in: {text}"
            );
            assert!(!text.contains("\\u0073k_test"), "escaped key in: {text}");
        }
    }
    assert!(
        matches!(errors[3], flora_api::Error::RunFailed { .. }),
        "{:?}",
        errors[3]
    );
}

/// Redaction takes the key out of successful answers, and nothing else: an output that
/// merely reads like a token (`Bearer bonds`) and a field named `authorization` are the
/// answer's own data and arrive as sent.
#[tokio::test]
async fn a_successful_answer_keeps_its_own_words() {
    use common::hostile::{self, Reply};
    let server = hostile::serve(|req| match (req.method.as_str(), req.path()) {
        ("POST", "/techniques/upscale/runs") => Reply::json(
            201,
            &json!({
                "run_id": "run_1", "status": "completed", "progress": 100, "created_at": 1,
                "authorization": null,
                "outputs": [
                    {"output_id": "output_image", "type": "imageUrl", "url": "https://media.flora.ai/o.png"},
                    {"output_id": "caption", "type": "text", "url": "Bearer bonds pay 5% (Authorization: none)"}
                ]
            }),
        ),
        _ => Reply::json(404, &json!({"error": {"code": "not_found", "message": "?"}})),
    })
    .await;
    let client = fast(&server.base).build().unwrap();
    let done = client.run(&upscale()).await.unwrap();
    assert_eq!(
        done.outputs.caption,
        "Bearer bonds pay 5% (Authorization: none)"
    );
}
