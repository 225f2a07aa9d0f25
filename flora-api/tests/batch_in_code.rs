//! Batches built in code (`Batch::new` + `push`), against the in-process FakeFlora.
#![cfg(all(feature = "batch", feature = "test-util", feature = "techniques"))]

use flora_api::batch::{Batch, BatchOptions, Event};
use flora_api::techniques::CctvCam;
use flora_api::testing::FakeFlora;

fn face(i: usize) -> CctvCam {
    CctvCam {
        input_image: format!("https://example.com/{i}.png").parse().unwrap(),
    }
}

fn options() -> BatchOptions {
    BatchOptions {
        poll: Some(
            flora_api::PollPolicy::default()
                .initial_delay(std::time::Duration::from_millis(10))
                .interval(std::time::Duration::from_millis(10)),
        ),
        ..BatchOptions::default()
    }
}

#[tokio::test]
async fn typed_items_run_and_the_same_plan_resumes_without_a_second_run() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(1).completes();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("faces.journal");

    let plan = || {
        let mut batch = Batch::new(&client, "cctv-cam", &journal);
        for i in 0..3 {
            batch.push::<CctvCam>(format!("face-{i}"), &face(i));
        }
        batch.options(options());
        batch
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let batch = plan().start().await.unwrap().events(tx);
    let summary = batch.run().await.unwrap();
    assert_eq!(summary.completed, 3, "{summary:?}");
    assert!((summary.charged - 0.15).abs() < 1e-9, "{summary:?}");
    drop(batch);
    let mut completed = 0;
    while let Ok(e) = rx.try_recv() {
        completed += usize::from(matches!(e, Event::Completed { .. }));
    }
    assert_eq!(completed, 3);
    assert_eq!(fake.run_count(), 3);
    assert_eq!(
        fake.runs::<CctvCam>(),
        vec![face(0), face(1), face(2)],
        "the typed inputs went out as they were pushed"
    );

    // The program runs again (say after a crash): the same plan resumes, sending nothing new.
    let summary = plan().start().await.unwrap().run().await.unwrap();
    assert_eq!(summary.completed, 3);
    assert_eq!(fake.run_count(), 3, "never a second run");

    // Another plan on that journal is refused, by what differs.
    let mut other = Batch::new(&client, "cctv-cam", &journal);
    other.push("face-0", &face(0)).push("face-1", &face(7));
    let err = other.start().await.unwrap_err().to_string();
    assert!(
        err.contains("it holds another plan (3 items, not 2)"),
        "{err}"
    );
    let mut other = Batch::new(&client, "cctv-cam", &journal);
    for i in 0..3 {
        other.push(format!("face-{i}"), &face(i + usize::from(i == 2)));
    }
    let err = other.start().await.unwrap_err().to_string();
    assert!(err.contains("item \"face-2\" has other inputs"), "{err}");
}

#[tokio::test]
async fn a_wrong_plan_sends_nothing_and_says_why() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j");

    let mut batch = Batch::new(&client, "cctv-cam", &journal);
    batch.push("a", &face(1)).push("a", &face(2));
    let err = batch.start().await.unwrap_err().to_string();
    assert!(err.contains("key \"a\" is used by two items"), "{err}");

    let mut batch = Batch::new(&client, "cctv-cam", &journal);
    batch
        .push_values("u", [("input_image", "no-such-file.png")])
        .push_values("v", [("input_imag", "https://example.com/x.png")]);
    let err = batch.start().await.unwrap_err().to_string();
    assert!(
        err.contains("input `input_image` = no-such-file.png: no such file"),
        "{err}"
    );
    assert!(err.contains("unknown input `input_imag`"), "{err}");

    // A typed item of another technique.
    let other: flora_api::TechniqueSchema = serde_json::from_value(serde_json::json!({
        "technique_id": "tech_other", "slug": "other", "name": "Other", "run_cost": 0.01,
        "inputs": [{"id": "input_image", "name": "Image", "type": "imageUrl"}],
        "outputs": [{"id": "out", "name": "Out", "type": "imageUrl"}]
    }))
    .unwrap();
    fake.completes_untyped(&other);
    let mut batch = Batch::new(&client, "other", &journal);
    batch.push("a", &face(1));
    let err = batch.start().await.unwrap_err().to_string();
    assert!(
        err.contains(
            "item \"a\" holds inputs of technique `cctv-cam` (tech_cctv-cam), but this batch \
             runs `other`"
        ),
        "{err}"
    );

    let empty = Batch::new(&client, "cctv-cam", &journal);
    let err = empty.start().await.unwrap_err().to_string();
    assert!(err.contains("the plan has no items"), "{err}");

    assert_eq!(fake.run_count(), 0);
    assert!(
        !journal.exists(),
        "no journal for a plan that did not start"
    );
}

/// A batch's first look at each run waits for FLORA's `estimated_seconds`: before it, only
/// the schema read and the creates are sent; then one round (the lists of completed and of
/// failed runs) tells all three runs' ends.
#[tokio::test(start_paused = true)]
async fn polls_wait_for_floras_estimate() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>()
        .estimated_seconds(30.0)
        .completes();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let mut batch = Batch::new(&client, "cctv-cam", dir.path().join("j"));
    for i in 0..3 {
        batch.push(format!("face-{i}"), &face(i));
    }
    batch.options(options());
    let batch = batch.start().await.unwrap();
    let check = async {
        tokio::time::sleep(std::time::Duration::from_secs(29)).await;
        // The schema read and three creates; no poll yet.
        assert_eq!(fake.request_count(), 4);
    };
    let (summary, ()) = tokio::join!(batch.run(), check);
    let summary = summary.unwrap();
    assert_eq!(summary.completed, 3, "{summary:?}");
    assert_eq!(
        fake.request_count(),
        6,
        "one round of two listings for the three runs, at the estimate"
    );
}

#[tokio::test]
async fn impossible_options_are_refused_by_name() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    for (options, says) in [
        (
            BatchOptions {
                max_cost: Some(f64::NAN),
                ..options()
            },
            "BatchOptions::max_cost is NaN",
        ),
        (
            BatchOptions {
                max_cost: Some(-1.0),
                ..options()
            },
            "BatchOptions::max_cost is -1",
        ),
        (
            BatchOptions {
                max_concurrency: 0,
                ..options()
            },
            "BatchOptions::max_concurrency is 0",
        ),
    ] {
        let mut batch = Batch::new(&client, "cctv-cam", dir.path().join("j"));
        batch.push("a", &face(1)).options(options);
        let err = batch.start().await.unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
    }
    assert_eq!(fake.run_count(), 0);
}

mod common;

/// A run that ends with a status this version does not know (`cancelled`, with
/// `completed_at`) ends its item, as a single run's wait does: `run()` returns.
#[tokio::test]
async fn a_run_ended_with_an_unknown_status_ends_its_item_and_the_batch_returns() {
    use common::hostile::{self, Reply};
    let schema = serde_json::json!({
        "technique_id": "tech_cctv-cam", "name": "CCTV Cam", "run_cost": 0.05,
        "inputs": [{"id": "input_image", "name": "Input Image", "type": "imageUrl"}],
        "outputs": [{"id": "output_image", "name": "Output Image", "type": "imageUrl"}]
    });
    let server = hostile::serve(move |req| match (req.method.as_str(), req.path()) {
        ("GET", "/techniques/cctv-cam") => Reply::json(200, &schema),
        ("POST", "/techniques/cctv-cam/runs") => Reply::json(
            201,
            &serde_json::json!({"run_id": "run_1", "status": "pending", "progress": 0, "created_at": 1}),
        ),
        ("GET", "/techniques/cctv-cam/runs/run_1") => Reply::json(
            200,
            &serde_json::json!({"run_id": "run_1", "status": "cancelled", "progress": 40,
                                 "created_at": 1, "completed_at": 2}),
        ),
        _ => Reply::json(404, &serde_json::json!({"error": {"code": "not_found", "message": "?"}})),
    })
    .await;
    let client = common::fast(&server.base).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut batch = Batch::new(&client, "cctv-cam", dir.path().join("j.db"));
    batch.push::<CctvCam>("a", &face(1));
    batch.options(options());
    let summary = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        batch.start().await.unwrap().run(),
    )
    .await
    .expect("run() returned")
    .unwrap();
    assert_eq!(summary.failed, 1, "{summary:?}");
    assert_eq!(
        server.count("GET", "/runs/run_1"),
        1,
        "polled once, not forever"
    );
}

/// A batch's polls end at the poll deadline, and at once on `stop()`: `run()` returns, the
/// run stays journaled (a resume polls it, never starts it again).
#[tokio::test(start_paused = true)]
async fn polls_end_at_the_deadline_and_on_stop() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>()
        .pending_polls(u32::MAX)
        .completes();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();

    let mut batch = Batch::new(&client, "cctv-cam", dir.path().join("deadline.db"));
    batch.push::<CctvCam>("a", &face(1));
    batch.options(BatchOptions {
        poll: Some(flora_api::PollPolicy::default().deadline(std::time::Duration::from_secs(60))),
        ..BatchOptions::default()
    });
    let hour = std::time::Duration::from_secs(3600);
    let running = batch.start().await.unwrap();
    let summary = tokio::time::timeout(hour, running.run())
        .await
        .expect("the deadline ended the polls")
        .unwrap();
    assert_eq!(summary.in_flight, 1, "{summary:?}");
    assert_eq!(fake.run_count(), 1);

    let mut batch = Batch::new(&client, "cctv-cam", dir.path().join("stop.db"));
    batch.push::<CctvCam>("b", &face(2));
    batch.options(options());
    let batch = batch.start().await.unwrap();
    let running = batch.run();
    let stopper = async {
        while fake.run_count() < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        batch.stop("enough");
    };
    let (summary, ()) = tokio::join!(tokio::time::timeout(hour, running), stopper);
    let summary = summary.expect("stop() ended the polls").unwrap();
    assert_eq!(summary.in_flight, 1, "{summary:?}");
    assert!(summary.stopped.is_some());
    assert_eq!(fake.run_count(), 2, "no run was started again");
}

/// `Batch::new` with an ordinary client (its own retries on): every 429 the server sends
/// reaches the batch's adaptive window (none is absorbed by a retry sleeping inside a slot).
#[tokio::test]
async fn a_library_batch_sees_every_429_whatever_client_it_is_given() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    // 3 a second, not 10: on a loaded machine 10 requests may never fall in one second.
    fake.rate_limit(3);
    let client = fake.client(); // two retries of its own
    let dir = tempfile::tempdir().unwrap();
    let mut batch = Batch::new(&client, "cctv-cam", dir.path().join("j.db"));
    for i in 0..12 {
        batch.push::<CctvCam>(format!("face-{i}"), &face(i));
    }
    batch.options(BatchOptions {
        max_concurrency: 8,
        ..options()
    });
    let summary = batch.start().await.unwrap().run().await.unwrap();
    assert_eq!(summary.completed, 12, "{summary:?}");
    assert!(fake.rate_limited_count() > 0, "the limit was hit");
    assert_eq!(
        summary.throttled as usize,
        fake.rate_limited_count(),
        "every 429 reached the window"
    );
}
