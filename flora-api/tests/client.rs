//! The client against a wiremock server on loopback.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use flora_api::{ApiErrorCode, Error, ListRuns, ListTechniques, RunInput, RunStatus, StartOptions};
use futures_util::TryStreamExt;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

async fn requests_to(server: &MockServer, p: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == p)
        .collect()
}

#[tokio::test]
async fn sends_auth_accept_and_user_agent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/techniques/cctv-cam"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("accept", "application/json"))
        .and(header(
            "user-agent",
            concat!("flora-api-rust/", env!("CARGO_PKG_VERSION")),
        ))
        .and(header("x-extra", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "technique_id": "tech_cctv-cam", "name": "CCTV Cam", "run_cost": 0.05,
            "inputs": [{"id": "input_image", "name": "Input Image", "type": "imageUrl"}],
            "outputs": []
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = fast(&server.uri()).header("X-Extra", "1").build().unwrap();
    let t = client.technique("cctv-cam").await.unwrap();
    assert_eq!(t.name, "CCTV Cam");
    assert_eq!(t.inputs.unwrap()[0].id, "input_image");
}

#[tokio::test]
async fn pagination_follows_next_cursor_across_three_pages() {
    let server = MockServer::start().await;
    let tech = |i: u32| json!({"technique_id": format!("tech_t{i}"), "name": format!("T{i}"), "run_cost": 0, "inputs": [], "outputs": []});
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .and(query_param("cursor", "c2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"techniques": [tech(3), tech(4)], "meta": {"next_cursor": "c3"}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .and(query_param("cursor", "c3"))
        // Last page: no meta at all.
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"techniques": [tech(5)]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .and(query_param("limit", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"techniques": [tech(1), tech(2)], "meta": {"next_cursor": "c2", "total_estimate": 5}}),
        ))
        .with_priority(10)
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let all: Vec<_> = client
        .techniques(ListTechniques {
            limit: Some(2),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<_> = all.iter().map(|t| t.technique_id.as_str()).collect();
    assert_eq!(ids, ["tech_t1", "tech_t2", "tech_t3", "tech_t4", "tech_t5"]);
    assert_eq!(requests_to(&server, "/techniques").await.len(), 3);
}

#[tokio::test]
async fn repeated_cursor_stops_with_an_error_instead_of_looping() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"techniques": [{"technique_id": "tech_a", "name": "A", "inputs": [], "outputs": []}], "meta": {"next_cursor": "same"}}),
        ))
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let res: Result<Vec<_>, _> = client.techniques(Default::default()).try_collect().await;
    assert!(res.unwrap_err().to_string().contains("a second time"));
    assert!(requests_to(&server, "/techniques").await.len() <= 3);
}

#[tokio::test]
async fn retries_500_500_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/workspaces"))
        .respond_with(ResponseTemplate::new(500).set_body_json(error_json("internal_error", "x")))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/workspaces"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"workspaces": [
                {"workspace_id": "ws_1", "name": "Main", "created_at": null, "role": "owner"}
            ]})),
        )
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let ws = client.workspaces().await.unwrap();
    assert_eq!(ws[0].workspace_id, "ws_1");
    assert_eq!(requests_to(&server, "/workspaces").await.len(), 3);
}

#[tokio::test]
async fn gives_up_after_max_retries_with_the_last_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("request-id", "req_42")
                .set_body_json(error_json("service_unavailable", "busy")),
        )
        .mount(&server)
        .await;
    let client = fast(&server.uri()).max_retries(1).build().unwrap();
    let err = client.workspaces().await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(err.is_retryable());
    let api = err.api().unwrap();
    assert_eq!(api.request_id.as_deref(), Some("req_42"));
    assert_eq!(api.code, ApiErrorCode::ServiceUnavailable);
    assert_eq!(requests_to(&server, "/workspaces").await.len(), 2);
}

#[tokio::test]
async fn rate_limit_honours_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after-ms", "300")
                .set_body_json(error_json("rate_limited", "slow down")),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"workspaces": []})))
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let t = Instant::now();
    client.workspaces().await.unwrap();
    // Our own backoff is at most 5 ms here, so 300 ms can only come from the header.
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(requests_to(&server, "/workspaces").await.len(), 2);
}

#[tokio::test]
async fn rate_limit_without_retry_after_waits_at_least_a_second() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).set_body_json(error_json("rate_limited", "x")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"workspaces": []})))
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let t = Instant::now();
    client.workspaces().await.unwrap();
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(requests_to(&server, "/workspaces").await.len(), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for (status, code) in [
        (400, "input_validation_error"),
        (401, "invalid_api_key"),
        (402, "insufficient_credits"),
        (403, "forbidden"),
        (404, "not_found"),
        (422, "idempotency_conflict"),
    ] {
        let server = MockServer::start().await;
        // The server echoes the Authorization header it got, as a hostile proxy might.
        Mock::given(method("POST"))
            .respond_with(move |req: &wiremock::Request| {
                let echo = format!("nope; you sent {:?}", req.headers.get("authorization"));
                ResponseTemplate::new(status).set_body_json(error_json(code, &echo))
            })
            .mount(&server)
            .await;
        let client = fast(&server.uri()).build().unwrap();
        let err = client.start(&upscale()).await.unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert!(!err.is_retryable(), "{status}");
        let n = server.received_requests().await.unwrap().len();
        assert_eq!(n, 1, "HTTP {status} must not be retried");
        let msg = err.to_string();
        assert!(!msg.contains(KEY), "{msg}");
        assert!(
            msg.contains("you sent"),
            "the echo was kept, redacted: {msg}"
        );
        match status {
            400 => assert!(msg.contains("cargo xtask regen"), "{msg}"),
            401 => assert!(msg.contains("FLORA_API_KEY"), "{msg}"),
            402 => assert!(msg.contains("top up"), "{msg}"),
            422 => assert!(matches!(err, Error::Idempotency { .. }), "{err:?}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn idempotency_duplicate_is_terminal_and_carries_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(409).set_body_json(error_json("idempotency_duplicate", "dup")),
        )
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let err = client
        .start_with(&upscale(), StartOptions::idempotency_key("job-7"))
        .await
        .unwrap_err();
    match &err {
        Error::Idempotency { key, api } => {
            assert_eq!(key, "job-7");
            assert_eq!(api.code, ApiErrorCode::IdempotencyDuplicate);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("job-7"));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

/// A FLORA-like server: creates a run per new idempotency key and replays it for a known
/// key. Its first answer to each creation is lost (500 or too slow), as over a bad network.
struct IdempotentServer {
    runs: Mutex<HashMap<String, String>>,
    creates_seen: Mutex<Vec<String>>,
}

impl IdempotentServer {
    fn respond(&self, req: &Request, lose_first_with: &ResponseTemplate) -> ResponseTemplate {
        let header_key = req
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body["idempotency_key"], header_key,
            "body and header keys differ"
        );
        self.creates_seen.lock().unwrap().push(header_key.clone());
        let mut runs = self.runs.lock().unwrap();
        if let Some(id) = runs.get(&header_key) {
            return ResponseTemplate::new(200)
                .insert_header("idempotent-replayed", "true")
                .set_body_json(run_json(id, "pending"));
        }
        let id = format!("run_{}", runs.len() + 1);
        runs.insert(header_key, id);
        lose_first_with.clone()
    }
}

async fn one_run_despite(lost: ResponseTemplate) {
    let server = MockServer::start().await;
    let state = Arc::new(IdempotentServer {
        runs: Mutex::new(HashMap::new()),
        creates_seen: Mutex::new(Vec::new()),
    });
    let s = state.clone();
    Mock::given(method("POST"))
        .and(path("/techniques/upscale/runs"))
        .respond_with(move |req: &Request| s.respond(req, &lost))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/techniques/upscale/runs/run_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completed_json("run_1")))
        .mount(&server)
        .await;
    // Long enough that a loaded machine's ordinary answer never times out (which would add
    // attempts), short beside the lost answer's delay.
    let client = fast(&server.uri())
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let done = client.run(&upscale()).await.unwrap();
    assert_eq!(done.run_id, "run_1");
    assert_eq!(
        state.runs.lock().unwrap().len(),
        1,
        "exactly one run created"
    );
    let seen = state.creates_seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one lost attempt and one replay");
    assert_eq!(seen[0], seen[1], "the retry reuses the key");
    assert!(uuid_like(&seen[0]), "{}", seen[0]);
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test]
async fn create_that_succeeds_server_side_then_500s_ends_with_one_run() {
    one_run_despite(ResponseTemplate::new(500).set_body_json(error_json("internal_error", "oops")))
        .await;
}

#[tokio::test]
async fn create_whose_response_is_lost_to_a_timeout_ends_with_one_run() {
    one_run_despite(
        ResponseTemplate::new(201)
            .set_body_json(run_json("run_1", "pending"))
            .set_delay(Duration::from_secs(30)),
    )
    .await;
}

#[tokio::test]
async fn two_logical_runs_get_two_keys() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(run_json("run_1", "pending")))
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    client.start(&upscale()).await.unwrap();
    client.start(&upscale()).await.unwrap();
    let keys: Vec<_> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.headers["idempotency-key"].to_str().unwrap().to_owned())
        .collect();
    assert_ne!(keys[0], keys[1]);
}

#[tokio::test]
async fn nested_create_sends_documented_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/techniques/upscale/runs"))
        .and(header("idempotency-key", "k-1"))
        .and(body_partial_json(json!({
            "inputs": [{"id": "input_image", "type": "imageUrl", "value": "https://example.com/in.png"},
                       {"id": "prompt", "type": "text", "value": "sharper"}],
            "mode": "async", "idempotency_key": "k-1", "callback_url": "https://hooks.example/f"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(run_json("run_9", "pending")))
        .expect(1)
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let mut t = upscale();
    t.prompt = Some("sharper".into());
    let h = client
        .start_with(
            &t,
            StartOptions {
                idempotency_key: Some("k-1".into()),
                callback_url: Some("https://hooks.example/f".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(h.run_id(), "run_9");
    let err = client
        .start_with(
            &t,
            StartOptions {
                callback_url: Some("http://hooks.example/f".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
}

#[tokio::test]
async fn polls_pending_running_completed_into_typed_outputs() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/techniques/upscale/runs"))
        .respond_with(ResponseTemplate::new(201).set_body_json(run_json("run_1", "pending")))
        .mount(&server)
        .await;
    let polls = Arc::new(Mutex::new(0));
    let p = polls.clone();
    Mock::given(method("GET"))
        .and(path("/techniques/upscale/runs/run_1"))
        .respond_with(move |_: &Request| {
            let mut n = p.lock().unwrap();
            *n += 1;
            match *n {
                1 => ResponseTemplate::new(200).set_body_json(run_json("run_1", "pending")),
                2 => ResponseTemplate::new(200).set_body_json(
                    // camelCase while running: the server has used both.
                    json!({"runId": "run_1", "status": "running", "progress": 40, "createdAt": 1}),
                ),
                _ => ResponseTemplate::new(200).set_body_json(completed_json("run_1")),
            }
        })
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let mut handle = client.start(&upscale()).await.unwrap();
    let mut seen = Vec::new();
    let done = handle
        .wait_with(|r| seen.push(r.status.clone()))
        .await
        .unwrap();
    assert_eq!(
        seen,
        [RunStatus::Pending, RunStatus::Running, RunStatus::Completed]
    );
    assert_eq!(done.outputs.image.as_str(), "https://media.flora.ai/o.png");
    assert_eq!(done.outputs.caption, "a sharp cat");
    assert_eq!(done.charged_cost, Some(0.05));
    assert_eq!(done.extra_outputs.len(), 1, "extra outputs are kept");
    assert_eq!(done.extra_outputs[0].output_id, "bonus");
}

#[tokio::test]
async fn missing_output_names_the_output_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "run_id": "run_1", "status": "completed", "progress": 100, "created_at": 1,
            "outputs": [{"output_id": "output_image", "type": "imageUrl", "url": "https://m/o.png"}]
        })))
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let err = client.run(&upscale()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`caption` is missing"), "{msg}");
    assert!(msg.contains("cargo xtask regen"), "{msg}");
}

#[tokio::test]
async fn failed_run_is_an_error_with_its_code() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(run_json("run_1", "pending")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "run_id": "run_1", "status": "failed", "progress": 0, "created_at": 1,
            "error_code": "safety_blocked", "error_message": "Blocked by the safety filter."
        })))
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    match client.run(&upscale()).await.unwrap_err() {
        Error::RunFailed {
            run_id,
            code,
            message,
        } => {
            assert_eq!(run_id, "run_1");
            assert_eq!(code, Some(flora_api::RunErrorCode::SafetyBlocked));
            assert_eq!(message.as_deref(), Some("Blocked by the safety filter."));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn wait_gives_up_at_the_deadline() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(run_json("run_1", "pending")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(run_json("run_1", "running")))
        .mount(&server)
        .await;
    let client = fast(&server.uri())
        .poll_policy(
            flora_api::PollPolicy::default()
                .initial_delay(Duration::from_millis(10))
                .interval(Duration::from_millis(10))
                .max_interval(Duration::from_millis(20))
                .deadline(Duration::from_millis(200)),
        )
        .build()
        .unwrap();
    let t = Instant::now();
    match client.run(&upscale()).await.unwrap_err() {
        Error::WaitTimeout {
            run_id,
            last_status,
            ..
        } => {
            assert_eq!(run_id, "run_1");
            assert_eq!(last_status, RunStatus::Running);
        }
        other => panic!("{other:?}"),
    }
    // The 0.2 s deadline ended it (without one it would poll forever).
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    let polls = requests_to(&server, "/techniques/upscale/runs/run_1")
        .await
        .len();
    assert!((2..=25).contains(&polls), "{polls} polls");
}

#[tokio::test]
async fn foreign_origin_poll_url_never_receives_the_key() {
    let server = MockServer::start().await;
    let foreign = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(completed_json("run_1")))
        .mount(&foreign)
        .await;
    let mut created = run_json("run_1", "pending");
    created["poll_url"] = json!(format!("{}/steal/run_1", foreign.uri()));
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/techniques/upscale/runs/run_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completed_json("run_1")))
        .expect(1)
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    client.run(&upscale()).await.unwrap();
    assert!(foreign.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn same_origin_poll_url_is_followed() {
    let server = MockServer::start().await;
    let mut created = run_json("run_1", "pending");
    created["pollUrl"] = json!(format!("{}/custom/poll/run_1", server.uri()));
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/custom/poll/run_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completed_json("run_1")))
        .expect(1)
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    client.run(&upscale()).await.unwrap();
}

#[tokio::test]
async fn top_level_route_checks_ids_and_sends_key_in_header_only() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/runs/technique"))
        .and(header("idempotency-key", "tl-1"))
        .respond_with(move |req: &Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
            assert_eq!(
                keys,
                ["inputs", "technique_id", "workspace_id"],
                "no extra fields"
            );
            assert_eq!(body["inputs"]["input_image"], "https://example.com/in.png");
            ResponseTemplate::new(201).set_body_json(json!({
                "run_id": "run_7", "type": "technique", "estimated_seconds": 0.3,
                "charged_cost": 0, "poll_url": null,
                "technique": {"technique_id": "tech_upscale", "name": "Upscale"}
            }))
        })
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/runs/run_7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completed_json("run_7")))
        .expect(1)
        .mount(&server)
        .await;
    let client = fast(&server.uri()).workspace_id("ws_main").build().unwrap();
    let inputs = BTreeMap::from([(
        "input_image".to_owned(),
        "https://example.com/in.png".to_owned(),
    )]);
    for (tech, ws) in [("upscale", "ws_main"), ("tech_upscale", "main")] {
        let err = client
            .start_top_level(tech, inputs.clone(), Some(ws), Default::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
    let (created, mut handle) = client
        .start_top_level(
            "tech_upscale",
            inputs,
            None,
            StartOptions::idempotency_key("tl-1"),
        )
        .await
        .unwrap();
    assert_eq!(created.estimated_seconds, Some(0.3));
    // The first poll waits for the estimate.
    let asked = std::time::Instant::now();
    let run = handle.wait_run().await.unwrap();
    assert!(asked.elapsed() >= std::time::Duration::from_millis(250));
    assert_eq!(run.outputs.len(), 3);
}

#[tokio::test]
async fn run_history_streams_and_dynamic_runs_work() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/technique-runs"))
        .and(query_param("status", "completed"))
        .and(query_param("workspace_id", "ws_main"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "technique_runs": [{"technique_run_id": "run_a", "status": "completed", "progress": 100,
                "created_at": 1, "workspace_id": "ws_main", "project_id": "prj_1",
                "technique": {"technique_id": "tech_x", "name": "X"}}],
            "meta": {"next_cursor": null}
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/techniques/tech_x/runs"))
        .and(body_partial_json(
            json!({"inputs": [{"id": "p", "type": "text", "value": "hi"}]}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(completed_json("run_b")))
        .mount(&server)
        .await;
    let client = fast(&server.uri()).workspace_id("ws_main").build().unwrap();
    let runs: Vec<_> = client
        .runs(ListRuns {
            status: Some(RunStatus::Completed),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(runs[0].run_id, "run_a");
    assert_eq!(runs[0].extra["project_id"], "prj_1");
    let mut h = client
        .start_run(
            "tech_x",
            vec![RunInput::new("p", "text", "hi")],
            Default::default(),
        )
        .await
        .unwrap();
    // Completed at creation: no poll needed.
    assert_eq!(h.wait_run().await.unwrap().run_id, "run_b");
    assert_eq!(
        requests_to(&server, "/techniques/tech_x/runs/run_b")
            .await
            .len(),
        0
    );
}

#[tokio::test]
async fn connection_errors_are_retried_then_reported() {
    // Bind and drop a listener to get a loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = fast(&format!("http://127.0.0.1:{port}")).build().unwrap();
    let err = client.workspaces().await.unwrap_err();
    match &err {
        Error::Connection { attempts, .. } => assert_eq!(*attempts, 3),
        other => panic!("{other:?}"),
    }
    assert!(err.is_retryable());
    assert!(!format!("{err} {err:?}").contains(KEY));
}

#[tokio::test]
async fn decode_errors_keep_a_bounded_snippet() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(format!("{{\"oops\": \"{}\"", "x".repeat(10_000))),
        )
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let err = client.technique("x").await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Decode { .. }));
    assert!(msg.contains("GET /techniques/x"), "{msg}");
    assert!(msg.len() < 3_000, "{}", msg.len());
}

#[tokio::test]
async fn max_in_flight_bounds_concurrent_requests() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"workspaces": []}))
                .set_delay(Duration::from_millis(150)),
        )
        .mount(&server)
        .await;
    let client = fast(&server.uri()).max_in_flight(2).build().unwrap();
    let t = Instant::now();
    let calls = (0..6).map(|_| client.workspaces());
    for r in futures_util::future::join_all(calls).await {
        r.unwrap();
    }
    // Six 150 ms requests, two at a time: at least three rounds.
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "{:?}",
        t.elapsed()
    );
    assert!(fast(&server.uri()).max_in_flight(0).build().is_err());
}

#[tokio::test]
async fn wait_survives_transient_poll_failures() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(run_json("run_1", "pending")))
        .mount(&server)
        .await;
    // Five 503s: more than one poll's retries (3 attempts) can absorb.
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(503).set_body_json(error_json("service_unavailable", "x")),
        )
        .up_to_n_times(5)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completed_json("run_1")))
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let done = client.run(&upscale()).await.unwrap();
    assert_eq!(done.run_id, "run_1");
    assert_eq!(
        requests_to(&server, "/techniques/upscale/runs/run_1")
            .await
            .len(),
        6
    );
}

#[tokio::test]
async fn wait_reports_a_non_retryable_poll_error_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(run_json("run_1", "pending")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(error_json("not_found", "gone")))
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let err = client.run(&upscale()).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(
        requests_to(&server, "/techniques/upscale/runs/run_1")
            .await
            .len(),
        1
    );
}

#[test]
fn client_and_handles_are_send_sync_and_clone() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    assert_send_sync_clone::<flora_api::Client>();
    assert_send_sync_clone::<flora_api::RunHandle<Upscale>>();
    assert_send_sync_clone::<flora_api::RunHandle<flora_api::Untyped>>();
    fn assert_send<T: Send>(_: &T) {}
    let client = fast("http://127.0.0.1:9").build().unwrap();
    let t = upscale();
    assert_send(&client.run(&t));
    assert_send(&client.start(&t));
}
