//! Runs in flight watched through the run history: requests counted per route.

use super::*;

#[tokio::test(start_paused = true)]
async fn runs_in_flight_are_watched_through_one_listing_not_a_poll_each() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(3).completes();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<PlanItem> = (0..40).map(|i| url_item(&format!("k{i}"))).collect();
    let options = BatchOptions {
        max_concurrency: 64,
        ..fast()
    };
    let schema = schema(&client).await;
    let before = fake.request_count();
    let batch = Batch::create(&client, &dir.path().join("j.db"), &schema, &items, options)
        .await
        .unwrap();
    let summary = batch.run().await.unwrap();
    assert_eq!(summary.completed, 40, "{summary:?}");
    let requests = fake.request_count() - before;
    // 40 creates; polling each run would add 4 looks each (160 requests).
    assert!(requests < 40 + 20, "{requests} requests for 40 runs");
}

/// Hundreds of runs made and ended in a burst, more than a page of the run history: every
/// run is found through the listing, none read alone. (Bench 11 shows the case this guards
/// most: under a rate limit the list grows at its top between two pages of one round.)
#[tokio::test(start_paused = true)]
async fn runs_ending_in_a_burst_are_found_through_the_listing_without_reading_each() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(3).completes();
    fake.latency(Duration::from_millis(1));
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<PlanItem> = (0..400).map(|i| url_item(&format!("k{i}"))).collect();
    let options = BatchOptions {
        max_concurrency: 400,
        ..fast()
    };
    let batch = create(&client, dir.path(), &items, options).await;
    let summary = batch.run().await.unwrap();
    assert_eq!(summary.completed, 400, "{summary:?}");
    let routes = fake.request_counts();
    assert_eq!(routes.get("POST /techniques/{slug}/runs"), Some(&400));
    assert_eq!(
        routes.get("GET /techniques/{slug}/runs/{id}"),
        None,
        "no run read alone: {routes:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_charge_the_listing_reports_late_is_read_from_the_run_itself() {
    let fake = fake();
    // The list never shows a charge: the settled one comes from reading each run.
    fake.charge_settles_after(u32::MAX);
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<PlanItem> = (0..5).map(|i| url_item(&format!("k{i}"))).collect();
    let batch = create(&client, dir.path(), &items, fast()).await;
    let summary = batch.run().await.unwrap();
    assert_eq!(summary.completed, 5, "{summary:?}");
    assert!((summary.charged - 0.25).abs() < 1e-9, "{summary:?}");
}

/// A wild estimate (`estimated_seconds` of 30,000: milliseconds sent as seconds) never parks
/// an item: it is looked at by half the poll deadline at the latest, and a listing that sees
/// it ended delivers it at once.
#[tokio::test(start_paused = true)]
async fn a_wild_estimate_never_parks_an_item_past_half_the_deadline() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>()
        .estimated_seconds(30_000.0)
        .completes();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<PlanItem> = (0..3).map(|i| url_item(&format!("k{i}"))).collect();
    let options = BatchOptions {
        poll: Some(
            crate::PollPolicy::default()
                .initial_delay(Duration::from_millis(5))
                .interval(Duration::from_millis(5))
                .deadline(Duration::from_secs(60)),
        ),
        ..BatchOptions::default()
    };
    let batch = create(&client, dir.path(), &items, options).await;
    let started = tokio::time::Instant::now();
    let summary = batch.run().await.unwrap();
    assert_eq!(summary.completed, 3, "{summary:?}");
    assert!(
        started.elapsed() <= Duration::from_secs(31),
        "{:?} on a paused clock",
        started.elapsed()
    );
}

/// The run history answers 429 with a minute's `Retry-After` again and again: `stop()`
/// still ends `run()` at once (the round, its page and the cool-down all give way).
#[tokio::test(start_paused = true)]
async fn stop_ends_the_run_while_every_listing_is_throttled() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(1_000).completes();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<PlanItem> = (0..3).map(|i| url_item(&format!("k{i}"))).collect();
    let batch = create(&client, dir.path(), &items, fast()).await;
    let stopped_at = std::sync::Mutex::new(None);
    let stopper = async {
        while fake.run_count() < 3 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        fake.fail_next(
            10_000,
            Fault::RateLimited {
                retry_after: Duration::from_secs(60),
            },
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        *stopped_at.lock().unwrap() = Some(tokio::time::Instant::now());
        batch.stop("enough");
    };
    let (summary, ()) = tokio::join!(batch.run(), stopper);
    summary.unwrap();
    let stopped_at = stopped_at.lock().unwrap().unwrap();
    assert!(
        stopped_at.elapsed() < Duration::from_secs(1),
        "run() returned {:?} after the stop (paused clock)",
        stopped_at.elapsed()
    );
    assert!(fake.rate_limited_count() > 0 || fake.request_count() > 4);
}

/// A server without the run history (404 on every listing): after three refusals in a row
/// the batch reads each run alone and finishes; it never gives the history up on one.
#[tokio::test(start_paused = true)]
async fn without_a_run_history_runs_are_read_alone_after_three_refusals() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(2).completes();
    fake.without_run_history();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<PlanItem> = (0..4).map(|i| url_item(&format!("k{i}"))).collect();
    let batch = create(&client, dir.path(), &items, fast()).await;
    let summary = batch.run().await.unwrap();
    assert_eq!(summary.completed, 4, "{summary:?}");
    let routes = fake.request_counts();
    assert_eq!(routes.get("GET /technique-runs"), Some(&3), "{routes:?}");
    assert!(
        routes
            .get("GET /techniques/{slug}/runs/{id}")
            .is_some_and(|n| *n >= 4),
        "{routes:?}"
    );
}
