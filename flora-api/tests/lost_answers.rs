//! A run FLORA created is never lost to the caller and never paid twice: a lost answer is
//! found again (run history) or reported with the key that gets it back; a failed run is
//! retried under a new key; a cancelled wait can be resumed by a key kept beforehand.
#![cfg(all(feature = "test-util", feature = "techniques"))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::hostile::{self, Reply};
use flora_api::techniques::CctvCam;
use flora_api::testing::{FakeFlora, Fault};
use flora_api::{Client, Error, ImageUrl, StartOptions};
use serde_json::json;

fn face() -> CctvCam {
    CctvCam {
        input_image: ImageUrl::parse("https://example.com/face.png").unwrap(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_start_whose_answer_was_lost_then_refused_409_returns_the_one_run_from_history() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    // The spec's behaviour: a repeated key is 409 without the run id.
    fake.duplicate_keys_conflict(true);
    fake.fail_next(1, Fault::LostAnswer);
    let client = fake.client();
    let done = client.run(&face()).await.unwrap();
    assert_eq!(fake.run_count(), 1, "one run, paid once");
    assert_eq!(done.run_id, "run_fake0001");

    // Through `start` too: the handle polls the found run.
    fake.fail_next(1, Fault::LostAnswer);
    let mut handle = client.start(&face()).await.unwrap();
    assert_eq!(fake.run_count(), 2);
    assert_eq!(handle.run_id(), "run_fake0002");
    handle.wait().await.unwrap();
}

/// The top-level route (`POST /runs/technique`) against a server that drops the first answer
/// after creating the run and refuses the repeat with 409: the created run comes back from
/// `GET /technique-runs`; with two candidates the error names both and the key.
#[tokio::test]
async fn the_top_level_route_recovers_a_lost_answer_or_names_the_candidates() {
    for candidates in [1, 2] {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let server = hostile::serve(move |req| match (req.method.as_str(), req.path()) {
            ("POST", "/runs/technique") if req.n == 1 => Reply::Drop,
            ("POST", "/runs/technique") => Reply::json(
                409,
                &json!({"error": {"code": "idempotency_duplicate", "message": "key used"}}),
            ),
            ("GET", "/technique-runs") => {
                let runs: Vec<_> = (0..candidates)
                    .map(|i| {
                        json!({"run_id": format!("run_lost{i}"), "status": "running",
                               "progress": 10, "created_at": now + f64::from(i)})
                    })
                    .collect();
                Reply::json(200, &json!({"technique_runs": runs, "meta": {}}))
            }
            _ => Reply::json(
                404,
                &json!({"error": {"code": "not_found", "message": "?"}}),
            ),
        })
        .await;
        let client = common::fast(&server.base).build().unwrap();
        let started = client
            .start_top_level(
                "tech_x",
                [("input_image".to_owned(), "https://e.com/a.png".to_owned())].into(),
                Some("ws_1"),
                StartOptions::idempotency_key("order-42"),
            )
            .await;
        let posts = server.count("POST", "/runs/technique");
        assert_eq!(posts, 2, "the lost answer was retried under the same key");
        match candidates {
            1 => {
                let (created, handle) = started.unwrap();
                assert_eq!(created.run_id, "run_lost0");
                assert_eq!(handle.run_id(), "run_lost0");
            }
            _ => {
                let err = started.unwrap_err();
                assert!(!err.is_retryable(), "{err}");
                assert_eq!(err.idempotency_key(), Some("order-42"));
                let Error::RunMayExist { candidates, .. } = &err else {
                    panic!("{err:?}")
                };
                assert_eq!(candidates, &["run_lost0", "run_lost1"]);
                let msg = err.to_string();
                assert!(msg.contains("run_lost0, run_lost1"), "{msg}");
                assert!(msg.contains("\"order-42\""), "{msg}");
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn every_answer_lost_is_an_error_that_carries_the_key_and_is_not_retryable() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    // Three attempts (two retries): every answer lost after the run was created.
    fake.fail_next(3, Fault::LostAnswer);
    let client = fake.client();
    let err = client.run(&face()).await.unwrap_err();
    assert_eq!(fake.run_count(), 1, "a run exists");
    assert!(matches!(err, Error::RunMayExist { .. }), "{err:?}");
    assert!(!err.is_retryable(), "a fresh start would pay twice: {err}");
    let key = err.idempotency_key().expect("the key").to_owned();
    assert!(err.to_string().contains(&key), "{err}");
    // Retried as told: the same key gives back the same run.
    let done = client
        .run_with(&face(), StartOptions::idempotency_key(key))
        .await
        .unwrap();
    assert_eq!(done.run_id, "run_fake0001");
    assert_eq!(fake.run_count(), 1, "never a second run");
}

#[tokio::test(start_paused = true)]
async fn a_refusal_at_the_first_attempt_is_not_taken_for_a_lost_answer() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    fake.fail_next(1, Fault::Status(402));
    let err = fake.client().run(&face()).await.unwrap_err();
    assert_eq!(err.status(), Some(402), "{err}");
    assert_eq!(err.idempotency_key(), None);
    assert_eq!(fake.run_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_run_is_retried_as_a_new_run_under_a_derived_key() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let first = Arc::new(AtomicUsize::new(0));
    let seen = first.clone();
    fake.technique::<CctvCam>()
        .when(move |_| seen.fetch_add(1, Ordering::SeqCst) == 0)
        .fails("model_timeout", "the model timed out");
    let client = fake.client();
    let mut handle = client
        .start_with(&face(), StartOptions::idempotency_key("job-7"))
        .await
        .unwrap();
    assert_eq!(handle.idempotency_key().as_deref(), Some("job-7"));

    // Not failed yet (only created): a retry would pay for a second run, so it is refused.
    let before = fake.request_count();
    let err = handle.retry().await.unwrap_err();
    assert!(err.to_string().contains("for a run that failed"), "{err}");
    assert_eq!(fake.request_count(), before, "nothing sent");

    let err = handle.wait().await.unwrap_err();
    assert!(
        err.is_retryable(),
        "model_timeout is worth a new run: {err}"
    );
    // The old key answers with the failed run again: a retry needs a new one.
    let again = client
        .start_with(&face(), StartOptions::idempotency_key("job-7"))
        .await
        .unwrap();
    assert_eq!(again.run_id(), handle.run_id());
    assert_eq!(fake.run_count(), 1);

    let mut retried = handle.retry().await.unwrap();
    assert_eq!(retried.idempotency_key().as_deref(), Some("job-7~retry2"));
    assert_ne!(retried.run_id(), handle.run_id());
    retried.wait().await.unwrap();
    assert_eq!(fake.run_count(), 2, "exactly one new run");
}

#[tokio::test(start_paused = true)]
async fn a_run_cut_by_a_timeout_is_resumed_by_the_key_kept_before_awaiting() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(1000).completes();
    let client: Client = fake.client();
    let options = StartOptions::with_new_key();
    let key = options.idempotency_key.clone().unwrap();
    let cut =
        tokio::time::timeout(Duration::from_secs(30), client.run_with(&face(), options)).await;
    assert!(cut.is_err(), "the wait was cut");
    assert_eq!(fake.run_count(), 1, "the run goes on");
    let handle = client
        .start_with(&face(), StartOptions::idempotency_key(key))
        .await
        .unwrap();
    assert_eq!(handle.run_id(), "run_fake0001");
    assert_eq!(fake.run_count(), 1, "and is not paid twice");
}

/// A 409 for a key this call did not use first (used an hour ago) is never matched to
/// another process's run: after a refusal (503) it is reported as a used key; after a 500
/// (which may come after handling) the run history is read in a span of seconds around
/// this call (FLORA's clock from its `Date`), which another process's run from ten seconds
/// before does not fall in.
#[tokio::test]
async fn a_key_used_before_is_never_matched_to_another_processs_run() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    fake.server_clock(-3600.0, false);
    let hour_ago = fake
        .client()
        .start_with(&face(), StartOptions::idempotency_key("job-7"))
        .await
        .unwrap();
    fake.server_clock(-10.0, false);
    let other = CctvCam {
        input_image: ImageUrl::parse("https://example.com/other.png").unwrap(),
    };
    let foreign = fake.client().start(&other).await.unwrap();
    fake.server_clock(0.0, false);
    fake.duplicate_keys_conflict(true);
    for fault in [Fault::Status(503), Fault::Status(500)] {
        fake.fail_next(1, fault.clone());
        let err = fake
            .client()
            .start_with(&face(), StartOptions::idempotency_key("job-7"))
            .await
            .unwrap_err();
        assert_eq!(err.idempotency_key(), Some("job-7"), "{fault:?}: {err}");
        assert!(!err.is_retryable(), "{fault:?}: {err}");
        let msg = err.to_string();
        assert!(!msg.contains(foreign.run_id()), "{fault:?}: {msg}");
        assert!(!msg.contains(hour_ago.run_id()), "{fault:?}: {msg}");
    }
    assert_eq!(fake.run_count(), 2, "no run was made or adopted");
}
