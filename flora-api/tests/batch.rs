//! `floret batch` (the real binary) against `FakeFlora::serve`: crashes, resumes, lost
//! answers, plan checks, cost, and the journal's lock.
#![cfg(all(feature = "cli", feature = "techniques"))]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use flora_api::techniques::CctvCam;
use flora_api::testing::{FakeFlora, Fault, Served};
use serde_json::Value;

mod common;

fn floret(served: &Served, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = common::floret::floret(&served.base_url(), dir, Some("sk_test_batch"), args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Runs `cmd` to its end, killed after five minutes (a hang fails the test).
async fn output(cmd: Command) -> Output {
    common::floret::output(cmd, None, Duration::from_secs(300)).await
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `floret batch run PLAN --technique cctv-cam --journal j.db`, then `extra`.
fn run_args<'a>(plan: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "batch",
        "run",
        plan,
        "--technique",
        "cctv-cam",
        "--journal",
        "j.db",
    ];
    args.extend_from_slice(extra);
    args
}

/// [`run_args`] when no journal exists yet, else `floret batch resume --journal j.db`; then
/// `extra`.
fn run_or_resume<'a>(dir: &Path, plan: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    if !dir.join("j.db").exists() {
        return run_args(plan, extra);
    }
    let mut args = vec!["batch", "resume", "--journal", "j.db"];
    args.extend_from_slice(extra);
    args
}

/// `floret batch status --journal j.db --json`, parsed (it needs no server).
fn status(dir: &Path) -> Value {
    let args = ["batch", "status", "--journal", "j.db", "--json"];
    let o = common::floret::floret("http://127.0.0.1:9/unused", dir, None, &args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn plan(dir: &Path, n: usize) {
    let lines: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"key": "item-{i}", "input_image": "https://example.com/{i}.png"}}"#))
        .collect();
    std::fs::write(dir.join("plan.jsonl"), lines.join("\n")).unwrap();
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// How one crash test is run.
struct Crash {
    /// FLORA answers a repeated key with 409 (else it replays the first answer).
    conflict: bool,
    /// `--max-concurrency` of the runs that are killed, in turn.
    crashed_at: &'static [&'static str],
    /// `--max-concurrency` of the last resume (another than the crashed runs').
    finished_at: &'static str,
    /// How long each API answer takes: with it, creations sent together are in flight
    /// together.
    latency: Duration,
    /// The first two creations lose their answers (while both are in flight).
    lose_first_two_creates: bool,
    /// Every this many items names a local file.
    files_every: usize,
    /// About one answer in this many is lost while processes are killed.
    lose_every: usize,
}

/// What the plan's item `i` names: every `files_every`-th a local file `in/{i}.png` (its
/// bytes name the item), the rest a URL naming it.
fn crash_plan(dir: &Path, n: usize, files_every: usize) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    std::fs::create_dir_all(dir.join("moved")).unwrap();
    let lines: Vec<String> = (0..n)
        .map(|i| {
            let value = if i % files_every == 0 {
                std::fs::write(dir.join(format!("in/{i}.png")), file_bytes(i)).unwrap();
                format!("in/{i}.png")
            } else {
                format!("https://example.com/{i}.png")
            };
            format!(r#"{{"key": "item-{i}", "input_image": "{value}"}}"#)
        })
        .collect();
    std::fs::write(dir.join("plan.jsonl"), lines.join("\n")).unwrap();
}

/// A PNG signature, then the item's name: distinct bytes per item.
fn file_bytes(i: usize) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend_from_slice(format!("item-{i}").as_bytes());
    b
}

/// The keys of items whose POST left (the journal's `sent_at`) or whose run is known: their
/// body is fixed, and a run may exist. (An intent whose POST never left is sent afresh, its
/// files read again: a file moved away then fails that item, with nothing paid.)
fn sent_items(dir: &Path) -> std::collections::HashSet<String> {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("j.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare("SELECT key FROM items WHERE sent_at IS NOT NULL OR run_id IS NOT NULL")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// After a kill: each local file of an item whose POST left, not yet completed, is edited or
/// moved away, in turn; returns how many were (edited, moved).
fn touch_sent_files(dir: &Path, files_every: usize, turn: &mut usize) -> (usize, usize) {
    let (mut edited, mut moved) = (0, 0);
    let sent = sent_items(dir);
    for item in status(dir)["items"].as_array().unwrap() {
        let state = item["state"].as_str().unwrap();
        if !matches!(state, "submitting" | "created" | "completed")
            || !sent.contains(item["key"].as_str().unwrap())
        {
            continue;
        }
        let i: usize = item["key"].as_str().unwrap()["item-".len()..]
            .parse()
            .unwrap();
        let path = dir.join(format!("in/{i}.png"));
        if !i.is_multiple_of(files_every) || !path.exists() {
            continue;
        }
        *turn += 1;
        if (*turn).is_multiple_of(2) {
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend_from_slice(b" edited after its run was sent");
            std::fs::write(&path, bytes).unwrap();
            edited += 1;
        } else {
            std::fs::rename(&path, dir.join(format!("moved/{i}.png"))).unwrap();
            moved += 1;
        }
    }
    (edited, moved)
}

/// 200 items (a quarter of them local files), answers lost now and then, the process
/// SIGKILLed ten times after observed progress and resumed (at another concurrency at the
/// end); between kills the files of items already sent are edited or moved. Then: exactly one
/// run per item (never a second), each item's run is its own (its inputs name the item: no
/// wrong adoption), every output file is there with the journal's sha256 and the output
/// directory holds nothing else, and the ledger's total is what the server charged.
async fn crash_and_resume(c: Crash) -> Value {
    const N: usize = 200;
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    fake.duplicate_keys_conflict(c.conflict);
    fake.latency(c.latency);
    if c.conflict {
        // The workspace has older runs of the technique (someone else's, two hours before),
        // and the listing's `created_at` is an hour ahead of this machine, in milliseconds:
        // reconciling must tell the batch's runs from those without comparing the two
        // clocks or assuming the unit.
        fake.server_clock(-3600.0, true);
        let client = fake.client();
        for i in 0..3 {
            let input = flora_api::RunInput::new(
                "input_image",
                "imageUrl",
                format!("https://example.com/foreign-{i}.png"),
            );
            client
                .start_run("cctv-cam", vec![input], flora_api::StartOptions::default())
                .await
                .unwrap();
        }
        fake.server_clock(3600.0, true);
    }
    if c.lose_first_two_creates {
        fake.fail_next_creates(2, Fault::LostAnswer);
    }
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    crash_plan(dir.path(), N, c.files_every);
    // Lost answers: the request is handled, its answer lost (a 500), now and then.
    let done = Arc::new(AtomicBool::new(false));
    let chaos = {
        let fake = fake.clone();
        let lose_every = c.lose_every;
        let done = done.clone();
        tokio::spawn(async move {
            // Faults queue up: add one only after requests were made since the last one,
            // so about one in every few requests loses its answer, never a long streak.
            let mut seen = 0;
            while !done.load(Ordering::SeqCst) {
                let now = fake.request_count();
                if now >= seen + lose_every {
                    fake.fail_next(1, Fault::LostAnswer);
                    seen = now;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let common = |concurrency: &'static str| {
        [
            "--download",
            "out",
            "--poll-interval",
            "20ms",
            "--max-concurrency",
            concurrency,
        ]
    };
    let began = std::time::Instant::now();
    let mut rng = fastrand::Rng::with_seed(7);
    let (mut killed_mid_batch, mut edited, mut moved, mut turn) = (0, 0, 0, 0);
    for round in 0..10 {
        let extra = common(c.crashed_at[round % c.crashed_at.len()]);
        let args = run_or_resume(dir.path(), "plan.jsonl", &extra);
        let runs_before = fake.run_count();
        let mut child: Child = floret(&served, dir.path(), &args).spawn().unwrap();
        // Killed after observed progress (the server made a tenth of the runs since the
        // start), then a random moment more: never at a fixed time a loaded or fast machine
        // would miss, and most of the runs are made while answers are being lost.
        let started = std::time::Instant::now();
        while fake.run_count() < runs_before + N / 12
            && matches!(child.try_wait(), Ok(None))
            && started.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(0..80))).await;
        // SIGKILL; `try_wait` tells whether it was still working when killed.
        if matches!(child.try_wait(), Ok(None)) {
            killed_mid_batch += 1;
        }
        let _ = child.kill();
        let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        let (e, m) = touch_sent_files(dir.path(), c.files_every, &mut turn);
        edited += e;
        moved += m;
    }
    let runs_under_faults = fake.run_count();
    eprintln!(
        "killed mid-batch {killed_mid_batch} times in {:.1} s; {runs_under_faults} runs, {} \
         requests and {} repeated keys before the last resume; {edited} files edited and \
         {moved} moved after their item was sent",
        began.elapsed().as_secs_f64(),
        fake.request_count(),
        fake.repeated_key_count(),
    );
    assert!(
        killed_mid_batch >= 5,
        "the kills must land while work remains"
    );
    assert!(
        runs_under_faults >= N / 2,
        "most runs are made while answers are lost and processes killed"
    );
    assert!(
        fake.repeated_key_count() >= 1,
        "lost answers were retried under their key"
    );
    assert!(
        edited >= 1 && moved >= 1,
        "files of sent items were edited ({edited}) and moved ({moved})"
    );
    done.store(true, Ordering::SeqCst);
    chaos.await.unwrap();
    // The last resume runs to the end, at another concurrency.
    let args = run_or_resume(dir.path(), "plan.jsonl", &common(c.finished_at));
    let last = std::time::Instant::now();
    let o = output(floret(&served, dir.path(), &args)).await;
    eprintln!(
        "the last resume took {:.1} s ({:?}):\n{}",
        last.elapsed().as_secs_f64(),
        o.status,
        text(&o)
    );
    for item in status(dir.path())["items"].as_array().unwrap() {
        if item["state"] != "saved" && item["state"] != "needs_review" {
            eprintln!("not done: {item}");
        }
    }
    // Items that need review exit 1; everything else must be done.
    assert!(
        o.status.code().is_some_and(|code| code == 0 || code == 1),
        "{}",
        text(&o)
    );

    let foreign = if c.conflict { 3 } else { 0 };
    assert_eq!(
        fake.run_count(),
        N + foreign,
        "one run per item: never a second one"
    );
    let status = status(dir.path());
    let saved = status["summary"]["saved"].as_u64().unwrap();
    let review = status["summary"]["needs_review"].as_u64().unwrap();
    assert_eq!(saved + review, N as u64, "{}", status["summary"]);
    assert_eq!(o.status.code(), Some(if review > 0 { 1 } else { 0 }));
    let mut booked = 0.0;
    let mut charged_by_server = 0.0;
    let mut run_ids = std::collections::BTreeSet::new();
    let mut outputs = std::collections::BTreeSet::new();
    for item in status["items"].as_array().unwrap() {
        if item["state"] == "needs_review" {
            continue;
        }
        assert_eq!(item["state"], "saved", "{item}");
        let run_id = item["run_id"].as_str().unwrap();
        assert!(
            run_ids.insert(run_id.to_owned()),
            "one run, one item: {item}"
        );
        // The run is this item's: its input names the item (a URL, or an upload of the
        // file's bytes as they were when the item was sent).
        let i: usize = item["key"].as_str().unwrap()["item-".len()..]
            .parse()
            .unwrap();
        let inputs = fake.run_inputs(run_id).unwrap();
        let value = inputs[0].value.as_str();
        if i.is_multiple_of(c.files_every) {
            let uploaded = fake.media(value).unwrap_or_default();
            assert_eq!(
                uploaded.as_ref(),
                file_bytes(i),
                "{item}: run {run_id} is not its own"
            );
        } else {
            assert_eq!(
                value,
                format!("https://example.com/{i}.png"),
                "{item}: wrong run"
            );
        }
        booked += item["charged_cost"].as_f64().unwrap();
        charged_by_server += fake.charged(run_id).unwrap();
        for saved in item["saved"].as_array().unwrap() {
            let rel = saved["path"].as_str().unwrap();
            let path = dir.path().join(rel);
            assert_eq!(
                sha256_hex(&path),
                saved["sha256"].as_str().unwrap(),
                "{path:?}"
            );
            outputs.insert(path);
        }
    }
    assert!(
        (booked - charged_by_server).abs() < 1e-6,
        "booked {booked}, the server charged {charged_by_server}"
    );
    assert!((status["summary"]["charged"].as_f64().unwrap() - booked).abs() < 1e-6);
    // A finished batch leaves only its outputs (no partial downloads, no strays).
    let mut found = std::collections::BTreeSet::new();
    let mut stack = vec![dir.path().join("out")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.insert(path);
            }
        }
    }
    let extra: Vec<_> = found.difference(&outputs).collect();
    assert!(extra.is_empty(), "left in the output directory: {extra:?}");
    eprintln!("{}", status["summary"]);
    status["summary"].clone()
}

/// Replayed keys: killed ten times at concurrency 16 and 3, finished at 5. Every item
/// completes, one run each, its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_ten_times_and_resumed_never_pays_twice() {
    let summary = crash_and_resume(Crash {
        conflict: false,
        crashed_at: &["16", "3"],
        finished_at: "5",
        latency: Duration::from_millis(5),
        lose_first_two_creates: false,
        files_every: 4,
        lose_every: 3,
    })
    .await;
    assert_eq!(summary["saved"], 200, "{summary}");
}

/// 409 for a repeated key, killed at concurrency 1, finished at 8: every lost answer of a
/// submission sent alone is reconciled from the run listing, whatever the resume's
/// concurrency (with the server's clock an hour off and in milliseconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_409s_every_lost_answer_of_a_lone_submission_is_reconciled() {
    let summary = crash_and_resume(Crash {
        conflict: true,
        crashed_at: &["1"],
        finished_at: "8",
        latency: Duration::ZERO,
        lose_first_two_creates: false,
        files_every: 2,
        lose_every: 5,
    })
    .await;
    assert_eq!(summary["saved"], 200, "{summary}");
}

/// 409 for a repeated key, killed at concurrency 8 and 1, finished at 1 (a crash with
/// several in flight resumed one at a time), the first two creations losing their answers
/// while both are in flight: those cannot be told apart, so they need review; never a second
/// run, never another item's run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_409s_and_creations_in_flight_together_unclear_items_need_review() {
    let summary = crash_and_resume(Crash {
        conflict: true,
        crashed_at: &["8", "1"],
        finished_at: "1",
        latency: Duration::from_millis(15),
        lose_first_two_creates: true,
        files_every: 4,
        lose_every: 4,
    })
    .await;
    let review = summary["needs_review"].as_u64().unwrap();
    assert!(review >= 2, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_row_is_named_by_line_and_nothing_is_sent() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plan.jsonl"),
        [
            r#"{"input_image": "https://example.com/1.png"}"#,
            r#"{"input_image": "https://example.com/2.png"}"#,
            r#"{"input_imag": "https://example.com/3.png"}"#,
            r#"{"input_image": "https://example.com/4.png"}"#,
            r#"{"input_image": "missing.png"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let before = fake.request_count();
    let o = output(floret(&served, dir.path(), &run_args("plan.jsonl", &[]))).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("line 3: unknown input `input_imag`"), "{t}");
    assert!(
        t.contains("line 3: required input `input_image` is missing"),
        "{t}"
    );
    assert!(
        t.contains("line 5: input `input_image` = missing.png: no such file"),
        "{t}"
    );
    assert!(!dir.path().join("j.db").exists());
    assert_eq!(fake.run_count(), 0);
    assert!(
        fake.request_count() - before <= 1,
        "only the schema was read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prices_the_plan_and_max_cost_refuses_it() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Mixed rows: URLs and local files (two rows share one file).
    std::fs::write(dir.path().join("a.png"), common::png(256, 1)).unwrap();
    std::fs::write(
        dir.path().join("plan.csv"),
        "key,input_image\nx,https://example.com/x.png\ny,a.png\nz,a.png\nw,https://example.com/w.png\n",
    )
    .unwrap();
    let o = output(floret(
        &served,
        dir.path(),
        &run_args("plan.csv", &["--dry-run"]),
    ))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("4 item(s) × 0.05 USD = 0.20 USD"), "{t}");
    assert!(t.contains("1 distinct local file(s) to upload"), "{t}");
    assert_eq!(fake.run_count(), 0);
    assert!(!dir.path().join("j.db").exists());
    let o = output(floret(
        &served,
        dir.path(),
        &run_args("plan.csv", &["--max-cost", "0.1"]),
    ))
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("over --max-cost 0.1"), "{}", text(&o));
    assert_eq!(fake.run_count(), 0);
    // A dry run refuses what the run refuses, the same way.
    let o = output(floret(
        &served,
        dir.path(),
        &run_args("plan.csv", &["--dry-run", "--max-cost", "0.1"]),
    ))
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("over --max-cost 0.1"), "{}", text(&o));
    assert!(!dir.path().join("j.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_one_journal_is_refused() {
    let fake = FakeFlora::new();
    // Runs that take a long time: the first process keeps polling.
    fake.technique::<CctvCam>()
        .pending_polls(100_000)
        .completes();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    plan(dir.path(), 3);
    let mut first = floret(
        &served,
        dir.path(),
        &run_args("plan.jsonl", &["--poll-interval", "50ms"]),
    )
    .spawn()
    .unwrap();
    // Until the first one has made the journal and started.
    for _ in 0..100 {
        if fake.run_count() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let o = output(floret(
        &served,
        dir.path(),
        &["batch", "resume", "--journal", "j.db"],
    ))
    .await;
    // Readers are welcome meanwhile: `status` and `export` read a snapshot.
    let status = output(floret(
        &served,
        dir.path(),
        &["batch", "status", "--journal", "j.db", "--json"],
    ))
    .await;
    let export = output(floret(
        &served,
        dir.path(),
        &["batch", "export", "--journal", "j.db", "-"],
    ))
    .await;
    let _ = first.kill();
    let _ = tokio::task::spawn_blocking(move || first.wait()).await;
    assert!(!o.status.success());
    assert!(
        text(&o).contains("another process is driving this journal"),
        "{}",
        text(&o)
    );
    assert!(status.status.success(), "{}", text(&status));
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(doc["summary"]["runs_in_flight"], 3, "{}", doc["summary"]);
    assert!(export.status.success(), "{}", text(&export));
    assert_eq!(
        String::from_utf8_lossy(&export.stdout).lines().count(),
        3,
        "`-` is standard output"
    );
    assert!(!dir.path().join("-").exists());
}

/// Runs charged more than the technique lists (priced by their inputs): the plan's estimate
/// fits the limit, so it starts; the first run goes alone, its charge becomes the price, and
/// submissions stop before the charged total would pass the limit. A resume with a higher
/// limit finishes the plan, never paying for a run twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_cost_stops_submitting_before_the_charged_total_passes_it() {
    let fake = FakeFlora::new();
    // Listed at 0.05 USD; charged 0.20.
    fake.technique::<CctvCam>()
        .pending_polls(1)
        .charges(0.2)
        .completes();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    plan(dir.path(), 10);
    let run = |max: &'static str| {
        let extra = ["--max-cost", max, "--poll-interval", "20ms", "--jsonl"];
        let args = run_or_resume(dir.path(), "plan.jsonl", &extra);
        floret(&served, dir.path(), &args)
    };
    // 10 × 0.05 = 0.50 listed: under 1.00, so the plan starts.
    let o = output(run("1.0")).await;
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("--max-cost 1 USD reached"), "{t}");
    assert_eq!(fake.run_count(), 5, "5 runs × 0.20 = the limit; {t}");
    let s = status(dir.path())["summary"].clone();
    assert!((s["charged"].as_f64().unwrap() - 1.0).abs() < 1e-9, "{s}");
    assert_eq!(s["completed"], 5, "{s}");
    assert_eq!(s["planned"], 5, "{s}");
    // A resume without a limit keeps the journal's: nothing more is sent.
    let o = output(floret(
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
    ))
    .await;
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert_eq!(fake.run_count(), 5);
    // A higher limit finishes the plan: 10 runs, 2.00 USD.
    let o = output(run("2.0")).await;
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(fake.run_count(), 10);
    let s = status(dir.path())["summary"].clone();
    assert!((s["charged"].as_f64().unwrap() - 2.0).abs() < 1e-9, "{s}");
    assert_eq!(s["completed"], 10, "{s}");
}

/// Saving never replaces a file the batch did not write (unless `--overwrite`), and a resume
/// downloads again only saved files that are gone: changed ones are kept and reported,
/// intact ones are not downloaded again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_never_overwritten_unasked_and_only_missing_ones_come_back() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    plan(dir.path(), 3);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let file = |i: usize| out.join(format!("item-{i}-output_image.png"));
    std::fs::write(file(1), "mine").unwrap();
    let go = |extra: &[&str]| {
        let mut e = vec!["--download", "out", "--poll-interval", "20ms"];
        e.extend_from_slice(extra);
        let args: Vec<String> = run_or_resume(dir.path(), "plan.jsonl", &e)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        floret(&served, dir.path(), &args)
    };
    let o = output(go(&[])).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // Said as it happens, on stderr, and in the exit's message.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not saved item-1: out/item-1-output_image.png already exists"),
        "{err}"
    );
    assert!(err.contains("1 completed item(s) are not saved"), "{err}");
    assert_eq!(std::fs::read_to_string(file(1)).unwrap(), "mine");
    assert!(file(0).exists() && file(2).exists());
    // Asked: replaced.
    let o = output(go(&["--overwrite"])).await;
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(std::fs::read(file(1)).unwrap(), b"mine");
    assert_eq!(fake.run_count(), 3);

    // One file gone, one changed by hand: a resume brings back the first, keeps the second.
    std::fs::remove_file(file(0)).unwrap();
    std::fs::write(file(2), "edited").unwrap();
    let before = fake.request_count();
    let o = output(go(&["--jsonl"])).await;
    assert!(o.status.success(), "{}", text(&o));
    let events: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        events.iter().any(|e| e["event"] == "changed"
            && e["paths"][0]
                .as_str()
                .unwrap()
                .ends_with("item-2-output_image.png")),
        "{events:?}"
    );
    assert_eq!(std::fs::read_to_string(file(2)).unwrap(), "edited");
    assert_eq!(
        fake.request_count() - before,
        1,
        "one download, nothing else"
    );
    assert_eq!(fake.run_count(), 3);
    let status = status(dir.path());
    let saved0 = &status["items"][0]["saved"][0];
    assert_eq!(sha256_hex(&file(0)), saved0["sha256"].as_str().unwrap());

    // Gone again, and its download refused this time: the item is not saved any more (the
    // batch exits 1), and the next resume restores it.
    std::fs::remove_file(file(0)).unwrap();
    fake.fail_next(1, Fault::Status(404));
    let o = output(go(&[])).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("not saved item-0"), "{}", text(&o));
    let o = output(go(&[])).await;
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sha256_hex(&file(0)), saved0["sha256"].as_str().unwrap());
    assert_eq!(fake.run_count(), 3);
}

/// A crash after a file's upload reached FLORA but before the journal kept its URL: the
/// resume uploads it under the same key (FLORA replays the asset), so the run's inputs, its
/// key and its run are the same: no second asset, no second run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_the_journal_lost_is_replayed_not_repeated() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let png = common::png(512, 7);
    std::fs::write(dir.path().join("a.png"), &png).unwrap();
    std::fs::write(
        dir.path().join("plan.jsonl"),
        r#"{"key": "a", "input_image": "a.png"}"#,
    )
    .unwrap();
    let go = || {
        let args = run_or_resume(dir.path(), "plan.jsonl", &["--poll-interval", "20ms"]);
        floret(&served, dir.path(), &args)
    };
    let o = output(go()).await;
    assert!(o.status.success(), "{}", text(&o));
    let db = dir.path().join("j.db");
    let url = |db: &Path| -> String {
        let c = rusqlite::Connection::open(db).unwrap();
        c.query_row("SELECT url FROM uploads", [], |r| r.get(0))
            .unwrap()
    };
    let first = url(&db);
    // What a crash right after the upload leaves: the item `uploading`, no URL kept.
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "DELETE FROM uploads; UPDATE items SET state = 'uploading', idem = NULL, \
             intent_at = NULL, sent_at = NULL, run_id = NULL, answered_at = NULL, \
             charged = NULL, outputs = NULL;",
        )
        .unwrap();
    }
    let o = output(go()).await;
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(url(&db), first, "the same asset, replayed");
    assert_eq!(fake.run_count(), 1, "the same run, replayed");
}

/// A run that fails on FLORA's side: the batch goes on, exits 3, and `status` names the item
/// with FLORA's code and message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_runs_are_named_with_floras_reason() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    fake.technique::<CctvCam>()
        .when(|c: &CctvCam| c.input_image.as_str().ends_with("/1.png"))
        .fails(
            "safety_blocked",
            "The input was blocked by the safety filter.",
        );
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    plan(dir.path(), 3);
    let args = run_or_resume(dir.path(), "plan.jsonl", &["--poll-interval", "20ms"]);
    let o = output(floret(&served, dir.path(), &args)).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o)
            .contains("failed item-1: safety_blocked: The input was blocked by the safety filter."),
        "{}",
        text(&o)
    );
    let o = output(floret(
        &served,
        dir.path(),
        &["batch", "status", "--journal", "j.db"],
    ))
    .await;
    let t = text(&o);
    assert!(t.contains("2/3 completed, 1 failed"), "{t}");
    assert!(
        t.contains("  failed item-1: safety_blocked: The input was blocked"),
        "{t}"
    );
    // `run` again on the same journal: a usage slip, named, nothing sent.
    let runs = fake.run_count();
    let o = output(floret(&served, dir.path(), &run_args("plan.jsonl", &[]))).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("continue it with `floret batch resume --journal j.db`"),
        "{}",
        text(&o)
    );
    assert_eq!(fake.run_count(), runs);
    // retry-failed: the failed item back in the plan under a new attempt, so its resume makes
    // a new run on purpose (the fake fails it again); the completed ones are left alone.
    let first_key = status(dir.path())["items"][1]["idempotency_key"].clone();
    assert!(first_key.is_string(), "{first_key}");
    let o = output(floret(
        &served,
        dir.path(),
        &["batch", "retry-failed", "--journal", "j.db"],
    ))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("1 item(s) back in the plan"),
        "{}",
        text(&o)
    );
    let before = status(dir.path());
    assert_eq!(before["items"][1]["state"], "planned");
    assert_eq!(before["items"][1]["run_id"], Value::Null);
    let args = run_or_resume(dir.path(), "plan.jsonl", &["--poll-interval", "20ms"]);
    let o = output(floret(&served, dir.path(), &args)).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(
        fake.run_count(),
        runs + 1,
        "one new run, for the retried item only"
    );
    let after = status(dir.path());
    assert_eq!(after["items"][1]["state"], "failed");
    assert!(after["items"][1]["idempotency_key"].is_string());
    assert_ne!(after["items"][1]["idempotency_key"], first_key, "a new key");
    assert_eq!(after["items"][0]["state"], "completed");
}
