//! Hostile servers, hostile configuration and edge values: none may panic the client or break
//! its limits. Each test pins one defect found in review (issue "Runtime hardening").

mod common;

use std::time::{Duration, Instant};

use common::*;
use flora_api::{Client, Error, PollPolicy, RunHandle, RunStatus, StartOptions, Untyped};
use futures_util::TryStreamExt;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn request_count(server: &MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}

fn technique_json() -> serde_json::Value {
    json!({"technique_id": "tech_a", "name": "A", "inputs": [], "outputs": []})
}

/// Defect 1, and the decision on long hints: a `Retry-After` beyond what the client sleeps
/// through (60 s) ends the call at once, without panicking, with the hint in the error.
#[tokio::test]
async fn huge_or_long_retry_after_fails_fast_with_the_hint() {
    for (name, value, secs) in [
        ("retry-after", "99999999999999999999", None),
        ("retry-after-ms", "1e30", None),
        ("retry-after", "120", Some(120)),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(503)
                    .insert_header(name, value)
                    .set_body_json(error_json("service_unavailable", "busy")),
            )
            .mount(&server)
            .await;
        let client = fast(&server.uri()).build().unwrap();
        let t = Instant::now();
        let err = client.technique("a").await.unwrap_err();
        // Not slept through (a minute or more): answered at once.
        assert!(t.elapsed() < Duration::from_secs(30), "{name}: {value}");
        assert_eq!(request_count(&server).await, 1, "{name}: {value}");
        assert_eq!(err.status(), Some(503));
        let hint = err.retry_after().unwrap();
        assert!(hint > Duration::from_secs(60), "{hint:?}");
        if let Some(secs) = secs {
            assert_eq!(hint, Duration::from_secs(secs));
            assert!(err.to_string().contains("retry after 120 s"), "{err}");
        }
        assert!(err.is_retryable());
    }
}

/// A hint within the cap is honoured exactly.
#[tokio::test]
async fn short_retry_after_is_slept_then_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after-ms", "150")
                .set_body_json(error_json("rate_limited", "slow")),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(technique_json()))
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let t = Instant::now();
    client.technique("a").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(request_count(&server).await, 2);
}

fn deadline_client(server: &MockServer, deadline: Duration) -> Client {
    fast(&server.uri())
        .poll_policy(
            PollPolicy::default()
                .initial_delay(Duration::from_millis(5))
                .interval(Duration::from_millis(5))
                .deadline(deadline),
        )
        .build()
        .unwrap()
}

/// Defect 2: the deadline bounds the whole wait, poll requests and their retries included,
/// and the handle stays usable afterwards.
#[tokio::test]
async fn wait_deadline_bounds_polls_and_their_retries() {
    // A poll answered 503 + Retry-After: 30 (the retry would sleep half a minute).
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("retry-after", "30")
                .set_body_json(error_json("service_unavailable", "x")),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completed_json("run_1")))
        .mount(&server)
        .await;
    let client = deadline_client(&server, Duration::from_millis(100));
    let mut handle = RunHandle::<Upscale>::attach(&client, "upscale", "run_1");
    let t = Instant::now();
    let err = handle.wait().await.unwrap_err();
    let took = t.elapsed();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err}");
    // The 0.1 s deadline, not the server's 30 s: generous for a loaded machine.
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(err.to_string().contains("keeps running"), "{err}");
    // The handle is still usable: the run is polled again and completes.
    let done = handle.poll().await.unwrap();
    assert_eq!(done.status, RunStatus::Completed);

    // A poll whose answer is slow.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(run_json("run_1", "running"))
                .set_delay(Duration::from_secs(60)),
        )
        .mount(&server)
        .await;
    let client = deadline_client(&server, Duration::from_millis(100));
    let mut handle = RunHandle::<Upscale>::attach(&client, "upscale", "run_1");
    let t = Instant::now();
    let err = handle.wait().await.unwrap_err();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err}");
    // The 0.1 s deadline, not the server's minute.
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
}

/// Defect 9: a deadline too far away to represent means "no deadline"; huge intervals do
/// not panic.
#[tokio::test]
async fn poll_policy_with_huge_values_does_not_panic() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completed_json("run_1")))
        .mount(&server)
        .await;
    let client = fast(&server.uri())
        .poll_policy(
            PollPolicy::default()
                .initial_delay(Duration::from_millis(1))
                .deadline(Duration::MAX),
        )
        .build()
        .unwrap();
    let mut handle = RunHandle::<Upscale>::attach(&client, "upscale", "run_1");
    assert_eq!(handle.wait().await.unwrap().run_id, "run_1");

    let p = PollPolicy::default()
        .initial_delay(Duration::MAX)
        .interval(Duration::MAX)
        .max_interval(Duration::MAX)
        .multiplier(f64::MAX);
    let d: Vec<_> = p.delays().take(5).collect();
    assert_eq!(d, vec![Duration::MAX; 5]);
}

/// Decision: an unknown status is polled through (it may be a new intermediate state);
/// one that reports `completed_at` has ended and is reported as such.
#[tokio::test]
async fn unknown_run_statuses() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(run_json("run_1", "queued")))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completed_json("run_1")))
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let mut handle = RunHandle::<Upscale>::attach(&client, "upscale", "run_1");
    assert_eq!(handle.wait().await.unwrap().run_id, "run_1");
    assert_eq!(request_count(&server).await, 3);

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"run_id": "run_1", "status": "cancelled", "completed_at": 5}),
            ),
        )
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let mut handle = RunHandle::<Upscale>::attach(&client, "upscale", "run_1");
    match handle.wait().await.unwrap_err() {
        Error::RunEnded { run_id, status } => {
            assert_eq!(run_id, "run_1");
            assert_eq!(status, RunStatus::Unknown("cancelled".into()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(request_count(&server).await, 1);
}

/// Defect 4: any cursor seen before in the same listing stops it (A → B → A).
#[tokio::test]
async fn cursor_cycle_is_detected() {
    let server = MockServer::start().await;
    let page = |next: &str| {
        ResponseTemplate::new(200)
            .set_body_json(json!({"techniques": [technique_json()], "meta": {"next_cursor": next}}))
    };
    for (cursor, next) in [("A", "B"), ("B", "A")] {
        Mock::given(method("GET"))
            .and(path("/techniques"))
            .and(query_param("cursor", cursor))
            .respond_with(page(next))
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/techniques"))
        .respond_with(page("A"))
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let err = client
        .techniques(Default::default())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"A\" a second time"), "{err}");
    assert_eq!(request_count(&server).await, 3);
}

/// Issue "Codegen and regen hardening", defect 1 (runtime part): a list answer without a
/// `techniques` array is an error, never an empty list; empty pages with a cursor are
/// followed.
#[tokio::test]
async fn malformed_list_answers_are_errors_and_empty_pages_are_followed() {
    for body in [
        json!({}),
        json!({"techniques": null}),
        json!({"data": [technique_json()]}),
        json!({"techniques": {"a": 1}}),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body.clone()))
            .mount(&server)
            .await;
        let client = fast(&server.uri()).build().unwrap();
        let err = client
            .techniques(Default::default())
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("GET /techniques"), "{body}: {msg}");
        assert!(msg.contains("no `techniques` array"), "{body}: {msg}");
    }

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param("cursor", "c1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"techniques": [], "meta": {"next_cursor": "c2"}})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(query_param("cursor", "c2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"techniques": [technique_json()]})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"techniques": [], "meta": {"next_cursor": "c1"}})),
        )
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let all: Vec<_> = client
        .techniques(Default::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(request_count(&server).await, 3);
}

/// Defect 5: an idempotency key that is not a valid header value is refused before any
/// request, not retried as a connection failure.
#[tokio::test]
async fn invalid_idempotency_key_is_invalid_input_before_any_request() {
    let server = MockServer::start().await;
    let client = fast(&server.uri()).build().unwrap();
    for key in ["order-1\n", "a\rb", " padded ", "k\u{7f}"] {
        let err = client
            .start_with(&upscale(), StartOptions::idempotency_key(key))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{key:?}: {err}");
        assert!(err.to_string().contains("idempotency_key"), "{err}");
        assert!(!err.is_retryable());
    }
    assert_eq!(request_count(&server).await, 0);
}

/// Defect 6: headers the client owns cannot be duplicated through custom headers.
#[test]
fn owned_headers_are_refused_as_custom_headers() {
    for name in [
        "Authorization",
        "Idempotency-Key",
        "idempotency-key",
        "Content-Type",
        "User-Agent",
        "Accept",
    ] {
        let err = fast("http://127.0.0.1:9")
            .header(name, "x")
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{name}: {err}");
    }
    assert!(
        fast("http://127.0.0.1:9")
            .header("X-Team", "a")
            .build()
            .is_ok()
    );
    // An invalid name is refused without being quoted back (it may hold a token).
    let err = fast("http://127.0.0.1:9")
        .header("Authorization=Bearer sk_live_LEAK", "x")
        .build()
        .unwrap_err();
    assert!(!err.to_string().contains("LEAK"), "{err}");
}

/// Defect 10: `.` and `..` never become path segments.
#[tokio::test]
async fn dot_segments_are_refused_as_ids() {
    let server = MockServer::start().await;
    let client = fast(&server.uri()).build().unwrap();
    for id in [".", ".."] {
        let e = client.technique(id).await.unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e}");
        let e = client
            .start_run(id, vec![], StartOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e}");
        let e = client.get_run(id, "run_1").await.unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    }
    let mut h = RunHandle::<Untyped>::attach(&client, "..", "run_1");
    assert!(matches!(h.poll().await, Err(Error::InvalidInput(_))));
    assert_eq!(request_count(&server).await, 0);
}

/// Open question: response bodies are read up to a cap. A huge success body is refused
/// without decoding; a huge error body is kept bounded.
#[tokio::test]
async fn response_bodies_are_capped() {
    let server = MockServer::start().await;
    let big = "x".repeat(33 * 1024 * 1024);
    Mock::given(method("GET"))
        .and(path("/techniques/big"))
        .respond_with(ResponseTemplate::new(200).set_body_string(big.clone()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/techniques/bigerr"))
        .respond_with(ResponseTemplate::new(400).set_body_string(big))
        .mount(&server)
        .await;
    let client = fast(&server.uri()).build().unwrap();
    let err = client.technique("big").await.unwrap_err();
    assert!(matches!(err, Error::ResponseTooLarge { .. }), "{err}");
    assert!(!err.is_retryable());
    let err = client.technique("bigerr").await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.api().unwrap().body.len() < 4096);
    assert!(err.to_string().len() < 8192);
}

/// Nothing from configuration panics a request: every duration at its maximum.
#[tokio::test]
async fn maximal_configuration_values_do_not_panic() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(technique_json()))
        .mount(&server)
        .await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(root(&server.uri()))
        .timeout(Duration::MAX)
        .retry_backoff(Duration::MAX, Duration::MAX)
        .max_retries(u32::MAX)
        .poll_policy(
            PollPolicy::default()
                .deadline(Duration::MAX)
                .multiplier(f64::INFINITY),
        )
        .build()
        .unwrap();
    assert_eq!(client.technique("a").await.unwrap().technique_id, "tech_a");
}
