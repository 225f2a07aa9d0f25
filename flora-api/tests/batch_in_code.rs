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
            "item \"a\" holds inputs of technique `cctv-cam`, but this batch runs `other`"
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

/// A batch's first poll of each run waits for FLORA's `estimated_seconds`: before it, only
/// the schema read and the creates are sent.
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
    assert_eq!(fake.request_count(), 7, "one poll per run, at the estimate");
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
