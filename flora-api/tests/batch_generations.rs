//! `floret batch run PLAN --model MODEL` against `FakeFlora`: batches of generations on the
//! batch engine. Every row is checked against the catalog before anything is paid, a
//! resumed item whose answer was lost is found again (FLORA answers its repeated key with 409
//! and no run) instead of paid twice, and the summary books the settled charges.
#![cfg(all(feature = "cli", feature = "models"))]

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use flora_api::batch::{Batch, BatchOptions, read_plan};
use flora_api::testing::{FakeFlora, Fault, Served};
use serde_json::{Value, json};

mod common;

use common::floret::{code, stderr, stdout};
use common::models::{Flux, flux};

const KEY: &str = "sk_test_batch_generations";
const MODEL: &str = "t2i-flux-2-pro";

/// Three good rows: two in JSON, their params typed by the catalog.
const PLAN: &str = r#"{"key": "cat", "prompt": "a cat", "aspect_ratio": "square_1_1", "steps": 20}
{"key": "dog", "prompt": "a dog", "aspect_ratio": "landscape_16_9"}
{"key": "owl", "prompt": "an owl", "steps": "7"}
"#;

async fn floret(served: &Served, dir: &Path, args: &[&str]) -> Output {
    let cmd = common::floret::floret(&served.base_url(), dir, Some(KEY), args);
    common::floret::output(cmd, None, Duration::from_secs(120)).await
}

fn text(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// `floret batch run plan.jsonl --model t2i-flux-2-pro --journal j.db`, then `extra`.
fn run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "batch",
        "run",
        "plan.jsonl",
        "--model",
        MODEL,
        "--journal",
        "j.db",
        "--poll-interval",
        "20ms",
    ];
    args.extend_from_slice(extra);
    args
}

/// `floret batch status --journal j.db --json`, parsed.
async fn status(served: &Served, dir: &Path) -> Value {
    let o = floret(
        served,
        dir,
        &["batch", "status", "--journal", "j.db", "--json"],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn item<'a>(status: &'a Value, key: &str) -> &'a Value {
    status["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == key)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_of_three_prompts_makes_three_runs_saves_their_files_and_sums_their_charges() {
    let fake = FakeFlora::new();
    // Three charges, one per generation (the latest rule with uses left decides), none of
    // them the create answer's quote.
    let rule = || fake.model_schema(&flux()).quotes(0.004).pending_polls(2);
    rule().charges(0.005).completes();
    rule().charges(0.007).times(1).completes();
    rule().charges(0.011).times(1).completes();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.jsonl"), PLAN).unwrap();
    let o = floret(
        &served,
        dir.path(),
        &run_args(&["--project-id", "prj_fake", "--download", "out"]),
    )
    .await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(!text(&o).contains(KEY), "the key is never printed");
    let counts = fake.request_counts();
    assert_eq!(counts.get("POST /generate"), Some(&3), "{counts:?}");
    // Watched through the project's listing narrowed to the batch's ids, not run by run.
    assert!(counts.contains_key("GET /generations"), "{counts:?}");
    assert_eq!(counts.get("GET /runs/{id}"), None, "{counts:?}");
    let sent = fake.generations();
    assert_eq!(sent.len(), 3, "{sent:?}");
    let cat = sent.iter().find(|g| g.prompt == "a cat").unwrap();
    assert_eq!(cat.model_id, MODEL);
    assert_eq!(
        cat.params,
        json!({"aspect_ratio": "square_1_1", "steps": 20}),
        "values typed by the catalog: steps is a number"
    );
    let owl = sent.iter().find(|g| g.prompt == "an owl").unwrap();
    assert_eq!(owl.params, json!({"steps": 7}));
    let s = status(&served, dir.path()).await;
    let mut charged = 0.0;
    let mut runs = std::collections::BTreeSet::new();
    for key in ["cat", "dog", "owl"] {
        let it = item(&s, key);
        assert_eq!(it["state"], "saved", "{it}");
        let run_id = it["run_id"].as_str().unwrap();
        runs.insert(run_id.to_owned());
        charged += fake.charged(run_id).unwrap();
        assert_eq!(
            it["charged_cost"].as_f64(),
            fake.charged(run_id),
            "the run's settled charge, not the quote"
        );
        let url = it["outputs"][0]["url"].as_str().unwrap();
        let path = it["saved"][0]["path"].as_str().unwrap();
        let bytes = std::fs::read(dir.path().join(path))
            .or_else(|_| std::fs::read(path))
            .unwrap();
        assert_eq!(
            Some(bytes.into()),
            fake.media(url),
            "{key}: the saved file is what the fake serves"
        );
    }
    assert_eq!(runs.len(), 3, "one run per row");
    let total = s["summary"]["charged"].as_f64().unwrap();
    assert!((total - 0.023).abs() < 1e-9, "{}", s["summary"]);
    assert!((total - charged).abs() < 1e-9, "what the fake charged");
    assert_eq!(s["summary"]["unsettled"], 0);
    // The export is the same rows, one JSON object a line.
    let o = floret(
        &served,
        dir.path(),
        &["batch", "export", "--journal", "j.db", "results.jsonl"],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    let exported = std::fs::read_to_string(dir.path().join("results.jsonl")).unwrap();
    assert_eq!(exported.lines().count(), 3);
    assert!(exported.contains("\"prompt\":[\"a cat\"]"), "{exported}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_exit_2_each_named_with_its_param_and_nothing_is_sent() {
    let fake = FakeFlora::new();
    fake.model_schema(&flux()).completes();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plan.jsonl"),
        concat!(
            "{\"key\": \"good\", \"prompt\": \"a cat\", \"steps\": 20}\n",
            "{\"key\": \"too-many-steps\", \"prompt\": \"a dog\", \"steps\": 51}\n",
            "{\"key\": \"banana\", \"prompt\": \"an owl\", \"aspect_ratio\": \"banana_9_9\"}\n",
        ),
    )
    .unwrap();
    let o = floret(
        &served,
        dir.path(),
        &run_args(&["--project-id", "prj_fake"]),
    )
    .await;
    assert_eq!(code(&o), 2, "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains("\"too-many-steps\" (line 2)")
            && err.contains("`steps` is 51, not from 1 to 50"),
        "{err}"
    );
    assert!(
        err.contains("\"banana\" (line 3)")
            && err.contains("banana_9_9")
            && err.contains("square_1_1"),
        "{err}"
    );
    assert!(!err.contains("\"good\""), "a good row is not listed: {err}");
    assert_eq!(fake.request_counts().get("POST /generate"), None);
    assert!(fake.generations().is_empty());
    assert!(
        !dir.path().join("j.db").exists(),
        "no journal for a refused plan"
    );
}

/// The first generation's answer is lost (FLORA made the run) and the process stops with
/// the item journaled `submitting`; the resume sends the same key and body again, FLORA
/// answers 409 with no run, and the item is found again in `GET /generations`: one run per
/// row in all, each the row's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_resumed_after_a_stop_is_reconciled_to_its_one_run() {
    let fake = FakeFlora::new();
    fake.model_schema(&flux()).charges(0.009).completes();
    fake.fail_next_creates(1, Fault::LostAnswer);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.db");
    std::fs::write(dir.path().join("plan.jsonl"), PLAN).unwrap();
    let items = read_plan(&dir.path().join("plan.jsonl")).unwrap();
    // One at a time, and no retry in this process: the lost answer leaves its item
    // `submitting`, as a crash right after the POST would.
    let options = BatchOptions {
        max_concurrency: 1,
        retry: flora_api::RetryPolicy::none(),
        poll: Some(
            flora_api::PollPolicy::default()
                .initial_delay(Duration::from_millis(5))
                .interval(Duration::from_millis(5)),
        ),
        ..BatchOptions::default()
    };
    let client = fake.client();
    let batch = Batch::create_generations(&client, &journal, &flux(), &items, options)
        .await
        .unwrap();
    let summary = batch.run().await.unwrap();
    assert_eq!(summary.completed, 2, "{summary:?}");
    assert_eq!(summary.runs_in_flight, 1, "{summary:?}");
    let before = batch.items_json().unwrap();
    let caught = before.iter().find(|i| i["key"] == "cat").unwrap();
    assert_eq!(caught["state"], "submitting", "{caught}");
    let key = caught["idempotency_key"].as_str().unwrap().to_owned();
    drop(batch);
    assert_eq!(fake.generations().len(), 3, "the lost answer's run exists");

    let served = fake.serve().await.unwrap();
    let o = floret(
        &served,
        dir.path(),
        &[
            "batch",
            "resume",
            "--journal",
            "j.db",
            "--poll-interval",
            "20ms",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(fake.repeated_key_count(), 1, "the same key was sent again");
    assert_eq!(
        fake.generations().len(),
        3,
        "exactly one run per row, never a second"
    );
    let s = status(&served, dir.path()).await;
    assert_eq!(s["summary"]["completed"], 3, "{}", s["summary"]);
    assert_eq!(s["summary"]["needs_review"], 0, "{}", s["summary"]);
    let cat = item(&s, "cat");
    assert_eq!(cat["idempotency_key"], key.as_str(), "the journaled key");
    // Each item's run is its own: the run's prompt is the row's.
    let mut runs = std::collections::BTreeSet::new();
    for (key, prompt) in [("cat", "a cat"), ("dog", "a dog"), ("owl", "an owl")] {
        let run_id = item(&s, key)["run_id"].as_str().unwrap().to_owned();
        let run = client.get_run_by_id(&run_id).await.unwrap();
        assert_eq!(run.extra["prompt"], prompt, "{key}");
        runs.insert(run_id);
    }
    assert_eq!(runs.len(), 3);
    assert!((s["summary"]["charged"].as_f64().unwrap() - 0.027).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_max_cost_below_one_rows_estimate_refuses_before_paying() {
    let fake = FakeFlora::new();
    fake.model_schema(&flux()).completes();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.jsonl"), PLAN).unwrap();
    // The dry run prices the plan by the catalog's credits.
    let o = floret(
        &served,
        dir.path(),
        &run_args(&["--project-id", "prj_fake", "--dry-run"]),
    )
    .await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        stdout(&o).contains("3 row(s) × 4 credits (0.004 USD) = 0.012 USD"),
        "{}",
        text(&o)
    );
    // Offline too, without a key: the catalog entry from `--schemas DIR/models/MODEL.json`.
    std::fs::create_dir_all(dir.path().join("schemas/models")).unwrap();
    std::fs::write(
        dir.path().join(format!("schemas/models/{MODEL}.json")),
        serde_json::to_string(&flux()).unwrap(),
    )
    .unwrap();
    let offline = common::floret::floret(
        "http://127.0.0.1:9/unused",
        dir.path(),
        None,
        &run_args(&["--dry-run", "--schemas", "schemas"]),
    );
    let o = common::floret::output(offline, None, Duration::from_secs(60)).await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(stdout(&o).contains("= 0.012 USD"), "{}", text(&o));
    for extra in [&["--dry-run"][..], &[]] {
        let mut args = vec!["--project-id", "prj_fake", "--max-cost", "0.003"];
        args.extend_from_slice(extra);
        let o = floret(&served, dir.path(), &run_args(&args)).await;
        assert_eq!(code(&o), 2, "{}", text(&o));
        assert!(
            stderr(&o).contains("0.012 USD (3 items × 0.004 USD), over --max-cost 0.003"),
            "{}",
            text(&o)
        );
    }
    assert_eq!(fake.request_counts().get("POST /generate"), None);
    assert!(!dir.path().join("j.db").exists());
    // Without a project, nothing is sent either: the error lists the projects the key sees.
    let o = floret(&served, dir.path(), &run_args(&[])).await;
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(stderr(&o).contains("prj_fake"), "{}", text(&o));
    assert!(
        stderr(&o).contains("--project-id") && !stderr(&o).contains("ClientBuilder"),
        "said in floret's terms: {}",
        text(&o)
    );
    assert_eq!(fake.request_counts().get("POST /generate"), None);
}

/// A generation failed with a code FLORA says to retry later: `retry-failed --transient`
/// puts it back under a new key (FLORA burns a failed run's key), and the resume pays for
/// exactly one more run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_under_a_new_key_with_one_more_run() {
    let fake = FakeFlora::new();
    fake.model_schema(&flux()).charges(0.009).completes();
    fake.model_schema(&flux())
        .times(1)
        .fails("GENERATION_QUEUE_TOO_LARGE", "the queue is full");
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plan.csv"),
        "key,prompt,steps\nonly,a cat,20\n",
    )
    .unwrap();
    let mut args = run_args(&["--project-id", "prj_fake"]);
    args[2] = "plan.csv";
    let o = floret(&served, dir.path(), &args).await;
    assert_eq!(code(&o), 3, "{}", text(&o));
    assert!(
        text(&o).contains("GENERATION_QUEUE_TOO_LARGE"),
        "{}",
        text(&o)
    );
    let first = status(&served, dir.path()).await;
    let first_key = item(&first, "only")["idempotency_key"].clone();
    let o = floret(
        &served,
        dir.path(),
        &["batch", "retry-failed", "--journal", "j.db", "--transient"],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        stdout(&o).contains("1 item(s) back in the plan"),
        "{}",
        text(&o)
    );
    let o = floret(
        &served,
        dir.path(),
        &[
            "batch",
            "resume",
            "--journal",
            "j.db",
            "--poll-interval",
            "20ms",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(fake.generations().len(), 2);
    assert_eq!(fake.repeated_key_count(), 0, "the retry is a new key");
    let s = status(&served, dir.path()).await;
    let only = item(&s, "only");
    assert_eq!(only["state"], "completed");
    assert_ne!(only["idempotency_key"], first_key);
    assert_eq!(fake.generations()[1].params, json!({"steps": 20}));
}

/// FLORA reports a terminal run's charge late, or (here) not at all: the item completes, its
/// charge stays unknown and the total is said to be a floor, never the create quote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_never_reported_stays_unknown_never_the_quote() {
    let fake = FakeFlora::new();
    fake.model_schema(&flux())
        .quotes(0.004)
        .charge_settles_after(1_000)
        .completes();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.jsonl"), PLAN).unwrap();
    let o = floret(
        &served,
        dir.path(),
        &run_args(&["--project-id", "prj_fake"]),
    )
    .await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(stdout(&o).contains("≥ 0.00 USD charged"), "{}", text(&o));
    let s = status(&served, dir.path()).await;
    assert_eq!(s["summary"]["completed"], 3, "{}", s["summary"]);
    assert_eq!(s["summary"]["unsettled"], 3, "{}", s["summary"]);
    assert_eq!(s["summary"]["charged"], 0.0, "{}", s["summary"]);
    for key in ["cat", "dog", "owl"] {
        assert_eq!(item(&s, key)["charged_cost"], Value::Null, "{key}");
    }
}

/// Two generations lose their answers: the span alone cannot single either out (each holds
/// both lost runs), but the listing shows each run's prompt, and a run listed with another
/// prompt than the item's journaled body is not the item's. Both are found, none paid twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_lost_answers_are_told_apart_by_their_listed_prompts() {
    let fake = FakeFlora::new();
    fake.model_schema(&flux()).completes();
    fake.fail_next_creates(2, Fault::LostAnswer);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.db");
    std::fs::write(dir.path().join("plan.jsonl"), PLAN).unwrap();
    let items = read_plan(&dir.path().join("plan.jsonl")).unwrap();
    let fast = flora_api::PollPolicy::default()
        .initial_delay(Duration::from_millis(5))
        .interval(Duration::from_millis(5));
    let client = fake.client();
    let stopped = BatchOptions {
        retry: flora_api::RetryPolicy::none(),
        poll: Some(fast.clone()),
        ..BatchOptions::default()
    };
    let batch = Batch::create_generations(&client, &journal, &flux(), &items, stopped)
        .await
        .unwrap();
    let summary = batch.run().await.unwrap();
    assert_eq!(
        (summary.completed, summary.runs_in_flight),
        (1, 2),
        "{summary:?}"
    );
    drop(batch);
    let resumed = BatchOptions {
        poll: Some(fast),
        ..BatchOptions::default()
    };
    let batch = Batch::open(&client, &journal, resumed).await.unwrap();
    let summary = batch.run().await.unwrap();
    assert_eq!(
        (summary.completed, summary.needs_review),
        (3, 0),
        "{summary:?}"
    );
    assert_eq!(fake.repeated_key_count(), 2);
    assert_eq!(fake.generations().len(), 3, "one run per row");
    for item in batch.items_json().unwrap() {
        let run = client
            .get_run_by_id(item["run_id"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(run.extra["prompt"], item["inputs"]["prompt"][0], "{item}");
    }
}

/// Typed model values pushed into a batch in code: a wrong value is refused when the item
/// is made (nothing sent), and each row sends exactly its value's params, one generation a
/// row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_model_values_make_batch_rows_that_send_their_own_params() {
    use flora_api::batch::PlanItem;
    let fake = FakeFlora::new();
    fake.model_schema(&flux()).completes();
    let client = fake.client();
    let values = [
        Flux {
            prompt: "a cat".into(),
            aspect_ratio: Some("landscape_16_9".into()),
            steps: Some(20),
            seed: None,
        },
        Flux {
            prompt: "a dog".into(),
            ..Flux::default()
        },
    ];
    let items: Vec<PlanItem> = values
        .iter()
        .map(|v| PlanItem::generation(v.prompt.replace(' ', "-"), v).unwrap())
        .collect();
    let e = PlanItem::generation(
        "bad",
        &Flux {
            steps: Some(99),
            ..values[0].clone()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("`steps` is 99, not from 1 to 50"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let options = BatchOptions {
        poll: Some(
            flora_api::PollPolicy::default()
                .initial_delay(Duration::from_millis(5))
                .interval(Duration::from_millis(5)),
        ),
        ..BatchOptions::default()
    };
    let batch =
        Batch::create_generations(&client, &dir.path().join("j.db"), &flux(), &items, options)
            .await
            .unwrap();
    let summary = batch.run().await.unwrap();
    assert_eq!(summary.completed, 2, "{summary:?}");
    let sent = fake.generations();
    assert_eq!(sent.len(), 2, "one generation a row");
    for v in &values {
        let row = sent.iter().find(|g| g.prompt == v.prompt).unwrap();
        let want = serde_json::Value::Object(flora_api::checked_params(v).unwrap());
        assert_eq!(row.params, want, "{}", v.prompt);
    }
}
