//! Batches against the in-process fake, including journals left as a kill leaves them: each
//! test is named by the behaviour it pins (issue 33's defects).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::journal::Journal;
use super::{Batch, BatchOptions, ItemState, PlanItem, StopReason, keys};
use crate::techniques::CctvCam;
use crate::testing::{FakeFlora, Fault};
use crate::wire::TechniqueSchema;
use crate::{Client, RunInput, StartOptions};

/// CCTV Cam as the fake serves it (0.05 USD a run).
async fn schema(client: &Client) -> TechniqueSchema {
    client.technique("cctv-cam").await.unwrap()
}

/// A new batch of `items`, journaled at `dir/j.db`, checked against the fake's CCTV Cam.
async fn create(client: &Client, dir: &Path, items: &[PlanItem], options: BatchOptions) -> Batch {
    Batch::create(
        client,
        &dir.join("j.db"),
        &schema(client).await,
        items,
        options,
    )
    .await
    .unwrap()
}

/// A fake whose CCTV Cam runs complete.
fn fake() -> FakeFlora {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    fake
}

fn item(key: &str, value: &str) -> PlanItem {
    PlanItem::new(
        key,
        BTreeMap::from([("input_image".to_owned(), vec![value.to_owned()])]),
    )
}

fn url_item(key: &str) -> PlanItem {
    item(key, &format!("https://example.com/{key}.png"))
}

fn fast() -> BatchOptions {
    BatchOptions {
        poll: Some(
            crate::PollPolicy::default()
                .initial_delay(Duration::from_millis(5))
                .interval(Duration::from_millis(5)),
        ),
        ..BatchOptions::default()
    }
}

fn png(path: &Path, tail: u8) {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.resize(256, tail);
    std::fs::write(path, bytes).unwrap();
}

/// What a batch would send for an item: its inputs, body and key.
fn intent(batch_id: &str, key: &str, url: &str) -> (Vec<RunInput>, String, String) {
    let inputs = vec![RunInput::new("input_image", "imageUrl", url.to_owned())];
    let body = serde_json::to_string(&inputs).unwrap();
    let idem = keys::run_key(batch_id, key, 0, "tech_cctv-cam", &body);
    (inputs, body, idem)
}

/// A journal as a kill leaves it: `item`'s intent journaled and its POST sent; when `made`,
/// the server created the run too (its answer lost), whose id is returned.
async fn sent(
    batch: &Batch,
    client: &Client,
    (pos, key, url): (i64, &str, &str),
    made: bool,
) -> Option<String> {
    let (inputs, body, idem) = intent(&batch.meta.batch_id, key, url);
    {
        let journal: std::sync::MutexGuard<'_, Journal> = batch.journal();
        journal.submitting(pos, &idem, &body, 1.0).unwrap();
        journal.sending(pos, crate::reconcile::unix_now()).unwrap();
    }
    if !made {
        return None;
    }
    let handle = client
        .start_run("cctv-cam", inputs, StartOptions::idempotency_key(idem))
        .await
        .unwrap();
    Some(handle.run_id().to_owned())
}

#[tokio::test(start_paused = true)]
async fn a_resume_never_adopts_another_items_run_whatever_its_concurrency() {
    let fake = fake();
    fake.duplicate_keys_conflict(true);
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let items = [url_item("a"), url_item("b"), url_item("c")];
    let schema = schema(&client).await;
    let runs_made = {
        let options = BatchOptions {
            max_concurrency: 3,
            ..fast()
        };
        let batch = Batch::create(&client, &path, &schema, &items, options)
            .await
            .unwrap();
        // Killed while A, C and B were in flight together: A's and C's runs were made, their
        // answers lost; B's POST never reached FLORA.
        let a = sent(&batch, &client, (0, "a", "https://example.com/a.png"), true).await;
        let c = sent(&batch, &client, (2, "c", "https://example.com/c.png"), true).await;
        sent(
            &batch,
            &client,
            (1, "b", "https://example.com/b.png"),
            false,
        )
        .await;
        [a.unwrap(), c.unwrap()]
    };
    // Resumed one at a time: that is not how they were sent, so no upper bound holds.
    let options = BatchOptions {
        max_concurrency: 1,
        ..fast()
    };
    let batch = Batch::open(&client, &path, options).await.unwrap();
    let summary = batch.run().await.unwrap();
    let rows = batch.journal().items().unwrap();
    for r in &rows {
        if let (Some(run), "a") = (&r.run_id, r.key.as_str()) {
            assert_eq!(run, &runs_made[0], "A got another item's run");
        }
        if let (Some(run), "c") = (&r.run_id, r.key.as_str()) {
            assert_eq!(run, &runs_made[1], "C got another item's run");
        }
    }
    assert!(
        summary.needs_review >= 1,
        "the unclear ones say so: {summary:?}"
    );
    assert_eq!(fake.run_count(), 3, "B's run made once, nobody paid twice");
}

#[tokio::test(start_paused = true)]
async fn a_file_changed_or_moved_after_a_kill_is_never_read_again_for_that_attempt() {
    let fake = fake();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let (f1, f2) = (dir.path().join("x1.png"), dir.path().join("x2.png"));
    png(&f1, 1);
    png(&f2, 2);
    let path = dir.path().join("j.db");
    let items = [
        item("x1", f1.to_str().unwrap()),
        item("x2", f2.to_str().unwrap()),
    ];
    {
        let schema = schema(&client).await;
        let batch = Batch::create(&client, &path, &schema, &items, fast())
            .await
            .unwrap();
        // The uploads were done and journaled, both runs made, both answers lost to a kill.
        for (pos, (key, file)) in [("x1", &f1), ("x2", &f2)].into_iter().enumerate() {
            let url = client
                .upload_image(file.as_path())
                .await
                .unwrap()
                .to_string();
            let (_, hash) = crate::saving::digest(file).unwrap();
            batch.journal().put_upload(&hash, "imageUrl", &url).unwrap();
            sent(&batch, &client, (pos as i64, key, &url), true).await;
        }
    }
    let assets = fake.asset_count();
    // Then one file is edited and the other moved away.
    png(&f1, 9);
    std::fs::rename(&f2, dir.path().join("elsewhere.png")).unwrap();
    let batch = Batch::open(&client, &path, fast()).await.unwrap();
    let summary = batch.run().await.unwrap();
    assert_eq!(summary.completed, 2, "{summary:?}");
    assert_eq!(
        fake.run_count(),
        2,
        "the journaled bodies replayed the runs"
    );
    assert_eq!(
        fake.asset_count(),
        assets,
        "no file was read or uploaded again"
    );
}

#[tokio::test(start_paused = true)]
async fn nothing_is_sent_after_a_stop_and_nothing_is_left_half_sent() {
    let fake = fake();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<PlanItem> = (0..40).map(|i| url_item(&format!("k{i}"))).collect();
    let options = BatchOptions {
        max_concurrency: 8,
        ..fast()
    };
    let batch = create(&client, dir.path(), &items, options).await;
    let at_stop = Arc::new(AtomicUsize::new(usize::MAX));
    let stopper = async {
        while fake.run_count() < 3 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        at_stop.store(fake.run_count(), Ordering::SeqCst);
        batch.drain("enough");
    };
    let (summary, ()) = tokio::join!(batch.run(), stopper);
    let summary = summary.unwrap();
    let stopped_at = at_stop.load(Ordering::SeqCst);
    assert!(
        fake.run_count() <= stopped_at + 8,
        "{} runs, {stopped_at} at the stop",
        fake.run_count()
    );
    let rows = batch.journal().items().unwrap();
    assert!(
        rows.iter().all(|r| r.state != ItemState::Submitting),
        "an item refused or not sent goes back to planned"
    );
    assert_eq!(summary.planned, 40 - fake.run_count(), "{summary:?}");
}

#[tokio::test(start_paused = true)]
async fn a_402_puts_refused_items_back_to_planned_and_a_resume_finishes_them() {
    let fake = fake();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let items: Vec<PlanItem> = (0..5).map(|i| url_item(&format!("k{i}"))).collect();
    {
        let schema = schema(&client).await;
        let batch = Batch::create(&client, &path, &schema, &items, fast())
            .await
            .unwrap();
        fake.fail_next(1, Fault::Status(402));
        let summary = batch.run().await.unwrap();
        assert!(
            matches!(summary.stopped, Some(StopReason::InsufficientCredits(_))),
            "{summary:?}"
        );
        assert_eq!(summary.in_flight, 0, "nothing left in flight: {summary:?}");
        assert_eq!(summary.planned + summary.completed, 5, "{summary:?}");
    }
    let batch = Batch::open(&client, &path, fast()).await.unwrap();
    let summary = batch.run().await.unwrap();
    assert_eq!(summary.completed, 5, "{summary:?}");
    assert_eq!(fake.run_count(), 5);
}

#[tokio::test(start_paused = true)]
async fn retry_failed_keeps_what_was_charged() {
    let fake = FakeFlora::new();
    // Every run fails and is charged (some failures are billed).
    fake.technique::<CctvCam>()
        .charges(0.5)
        .fails("provider_error", "the provider failed");
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<PlanItem> = (0..3).map(|i| url_item(&format!("k{i}"))).collect();
    let batch = create(&client, dir.path(), &items, fast()).await;
    let first = batch.run().await.unwrap();
    assert_eq!(first.failed, 3);
    assert!((first.charged - 1.5).abs() < 1e-9, "{first:?}");
    assert_eq!(batch.retry_failed(false).unwrap(), 3);
    assert!(
        (batch.summary().unwrap().charged - 1.5).abs() < 1e-9,
        "nothing subtracted"
    );
    let second = batch.run().await.unwrap();
    assert!((second.charged - 3.0).abs() < 1e-9, "{second:?}");
    assert_eq!(fake.run_count(), 6);
}

/// `retry-failed --transient`: only runs a new run may cure go back in the plan. A queue
/// that was full and a model timeout do; a safety refusal reported under a "retry now"
/// provider code, and a code this version does not know, stay failed.
#[tokio::test(start_paused = true)]
async fn retry_transient_resubmits_only_runs_a_new_run_may_cure() {
    let fake = FakeFlora::new();
    let fails = |key: &'static str, code: &str, message: &str| {
        fake.technique::<CctvCam>()
            .when(move |t| t.input_image.as_str().ends_with(&format!("/{key}.png")))
            .fails(code, message);
    };
    fails("queue", "GENERATION_QUEUE_TOO_LARGE", "the queue is full");
    fails("timeout", "model_timeout", "the model timed out");
    fails(
        "safety",
        "GPU_PROVIDER_ERROR",
        "rejected by the safety system",
    );
    fails("new", "SOMETHING_NEW", "?");
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<PlanItem> = ["queue", "timeout", "safety", "new"]
        .iter()
        .map(|k| url_item(k))
        .collect();
    let batch = create(&client, dir.path(), &items, fast()).await;
    assert_eq!(batch.run().await.unwrap().failed, 4);
    assert_eq!(batch.retry_transient(false).unwrap(), 2);
    let rows = batch.items_json().unwrap();
    let row = |key: &str| rows.iter().find(|r| r["key"] == key).unwrap().clone();
    assert_eq!(row("queue")["state"], "planned");
    assert_eq!(row("timeout")["state"], "planned");
    assert_eq!(row("safety")["state"], "failed");
    assert_eq!(
        row("safety")["retry_class"],
        "change_input",
        "export says why"
    );
    assert_eq!(row("new")["state"], "failed");
    assert_eq!(row("new")["retry_class"], "not_retryable");
    // The rest can still be sent again on purpose.
    assert_eq!(batch.retry_failed(false).unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_shared_local_file_is_uploaded_once_per_batch() {
    let fake = fake();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let face = dir.path().join("face.png");
    png(&face, 3);
    let items: Vec<PlanItem> = (0..6)
        .map(|i| item(&format!("k{i}"), face.to_str().unwrap()))
        .collect();
    let options = BatchOptions {
        max_concurrency: 6,
        ..fast()
    };
    let batch = create(&client, dir.path(), &items, options).await;
    let summary = batch.run().await.unwrap();
    assert_eq!(summary.completed, 6, "{summary:?}");
    assert_eq!(fake.asset_count(), 1, "one upload for one file");
}

#[tokio::test(start_paused = true)]
async fn a_refused_upload_fails_its_items_naming_the_file_and_the_reason_once() {
    let fake = fake();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let face = dir.path().join("face.png");
    png(&face, 4);
    let items: Vec<PlanItem> = (0..3)
        .map(|i| item(&format!("k{i}"), face.to_str().unwrap()))
        .collect();
    let batch = create(&client, dir.path(), &items, fast()).await;
    fake.fail_next(1, Fault::Status(400));
    let before = fake.request_count();
    let summary = batch.run().await.unwrap();
    assert_eq!(summary.failed, 3, "{summary:?}");
    let rows = batch.journal().items().unwrap();
    let why = rows[0].error.clone().unwrap_or_default();
    assert!(why.contains("face.png") && why.contains("400"), "{why}");
    assert_eq!(fake.request_count() - before, 1, "a 400 is not tried again");
}

#[tokio::test(start_paused = true)]
async fn two_items_whose_keys_clean_to_one_name_never_share_a_file() {
    let fake = fake();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let items = [url_item("a/b"), url_item("a_b"), url_item("A_B")];
    let options = BatchOptions {
        download: Some(out.to_string_lossy().into_owned()),
        ..fast()
    };
    let batch = create(&client, dir.path(), &items, options).await;
    let summary = batch.run().await.unwrap();
    assert_eq!(summary.saved, 3, "{summary:?}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 3, "three files");
}

/// The guarantee `--max-cost` states: once a run is charged more than the price the guard
/// used, the price rises at once, so the limit is passed by no more than the runs already in
/// flight at that moment, each by the rise.
#[tokio::test(start_paused = true)]
async fn rising_prices_pass_the_limit_by_no_more_than_the_runs_in_flight_when_they_rose() {
    for concurrency in [1usize, 4] {
        let fake = FakeFlora::new();
        // The first run is charged 1, every later one 2.
        fake.technique::<CctvCam>().charges(2.0).completes();
        let first = Arc::new(AtomicUsize::new(0));
        let seen = first.clone();
        fake.technique::<CctvCam>()
            .when(move |_| seen.fetch_add(1, Ordering::SeqCst) == 0)
            .charges(1.0)
            .completes();
        let client = fake.client();
        let dir = tempfile::tempdir().unwrap();
        let items: Vec<PlanItem> = (0..30).map(|i| url_item(&format!("k{i}"))).collect();
        let options = BatchOptions {
            max_concurrency: concurrency,
            max_cost: Some(10.0),
            ..fast()
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let schema = schema(&client).await;
        let batch = Batch::create(&client, &dir.path().join("j.db"), &schema, &items, options)
            .await
            .unwrap()
            .events(tx);
        let summary = batch.run().await.unwrap();
        drop(batch);
        assert!(
            matches!(summary.stopped, Some(StopReason::MaxCost { .. })),
            "{summary:?}"
        );
        // Runs in flight when the first charge above 1 arrived.
        let (mut flying, mut at_rise) = (0u32, None);
        while let Ok(e) = rx.try_recv() {
            match e {
                super::Event::Created { .. } => flying += 1,
                super::Event::Completed { charged, .. } => {
                    if charged.unwrap_or(0.0) > 1.0 && at_rise.is_none() {
                        at_rise = Some(flying);
                    }
                    flying -= 1;
                }
                _ => {}
            }
        }
        let at_rise = f64::from(at_rise.expect("the price rose"));
        assert!(
            summary.charged <= 10.0 + at_rise * 1.0 + 1e-9,
            "concurrency {concurrency}: {} USD with {at_rise} runs in flight at the rise",
            summary.charged
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_max_cost_batch_killed_during_its_first_run_resumes() {
    let fake = fake();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let items: Vec<PlanItem> = (0..4).map(|i| url_item(&format!("k{i}"))).collect();
    let options = BatchOptions {
        max_cost: Some(100.0),
        ..fast()
    };
    {
        let schema = schema(&client).await;
        let batch = Batch::create(&client, &path, &schema, &items, options.clone())
            .await
            .unwrap();
        // Killed while the first run (the price probe) was running: its run exists; the
        // others' intents may have been journaled (an earlier floret wrote them early).
        let run = sent(
            &batch,
            &client,
            (0, "k0", "https://example.com/k0.png"),
            true,
        )
        .await;
        batch.journal().created(0, &run.unwrap(), 2.0).unwrap();
        for (pos, key) in [(1, "k1"), (2, "k2")] {
            let url = format!("https://example.com/{key}.png");
            let (_, body, idem) = intent(&batch.meta.batch_id, key, &url);
            batch.journal().submitting(pos, &idem, &body, 3.0).unwrap();
        }
    }
    let batch = Batch::open(&client, &path, options).await.unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(3600), batch.run())
        .await
        .expect("the resume finishes")
        .unwrap();
    assert_eq!(summary.completed, 4, "{summary:?}");
    assert_eq!(fake.run_count(), 4);
}

mod staging;
mod watching;
