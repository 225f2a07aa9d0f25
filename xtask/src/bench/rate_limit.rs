//! Bench 11: a batch against a rate-limited fake, under three limiter shapes (fixed window,
//! token bucket, sliding window). `floret batch run` watching runs through the run history,
//! the same polling each run alone (`--poll-each-run`, as before), and a naive loop (a fixed
//! 16 in flight, the client's own retries), side by side: runs completed per second as a
//! share of the limit R, the share of requests answered 429, peak RSS of the batch process,
//! and journal size per item. Then a 100,000-item plan: time to the first POST, peak RSS.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use flora_api::techniques::CctvCam;
use flora_api::testing::{FakeFlora, Limiter};
use flora_api::{Client, PollPolicy, RunInput, StartOptions};
use futures_util::StreamExt;

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct Outcome {
    wall: Duration,
    requests: usize,
    limited: usize,
    /// Requests per route (creates, listings, single reads).
    routes: std::collections::BTreeMap<&'static str, usize>,
    rss_kib: Option<u64>,
    journal_bytes: Option<u64>,
}

fn fake(rate: u32, shape: Limiter) -> FakeFlora {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(3).completes();
    fake.rate_limit_shaped(rate, shape);
    fake
}

async fn with_floret(
    floret: &Path,
    n: usize,
    rate: u32,
    poll: &str,
    shape: Limiter,
    each_run: bool,
) -> Result<Outcome, String> {
    let fake = fake(rate, shape);
    let served = fake.serve().await.map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let plan: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"input_image": "https://example.com/{i}.png"}}"#))
        .collect();
    std::fs::write(dir.path().join("plan.jsonl"), plan.join("\n")).map_err(|e| e.to_string())?;
    // Its stderr goes to a file (a pipe nobody reads would block it once full), shown when
    // it fails; `BENCH11_LOG=DIR` keeps a copy with floret's debug log, to tune.
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let keep = std::env::var_os("BENCH11_LOG");
    let mut child = std::process::Command::new(floret)
        .current_dir(dir.path())
        .args(keep.is_some().then_some("-vv"))
        .args([
            "batch",
            "run",
            "plan.jsonl",
            "--technique",
            "cctv-cam",
            "--journal",
            "j.db",
            "--poll-interval",
            poll,
            "--max-concurrency",
            "64",
        ])
        .args(each_run.then_some("--poll-each-run"))
        .env("FLORA_BASE_URL", served.base_url())
        .env("FLORA_API_KEY", "sk_bench")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = child.id();
    let t = Instant::now();
    let mut rss = None;
    loop {
        if let Some(r) = peak_rss_kib(pid) {
            rss = Some(r);
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if !status.success() {
                let said = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = said.lines().rev().take(20).collect();
                return Err(format!(
                    "floret batch failed: {status}; it said (last lines):\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = t.elapsed();
    if let Some(keep) = keep {
        let name = format!(
            "{shape:?}-{}.log",
            if each_run { "each" } else { "history" }
        );
        let _ = std::fs::copy(&log_path, Path::new(&keep).join(name));
    }
    let journal_bytes = ["j.db", "j.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
        .map(|m| m.len())
        .reduce(|a, b| a + b);
    Ok(Outcome {
        wall,
        requests: fake.request_count(),
        limited: fake.rate_limited_count(),
        routes: fake.request_counts(),
        rss_kib: rss,
        journal_bytes,
    })
}

async fn naive(n: usize, rate: u32, poll: Duration, shape: Limiter) -> Result<Outcome, String> {
    let fake = fake(rate, shape);
    let served = fake.serve().await.map_err(|e| e.to_string())?;
    let client = Client::builder()
        .api_key("sk_bench")
        .base_url(served.base_url())
        .poll_policy(
            PollPolicy::default()
                .initial_delay(poll)
                .interval(poll)
                .max_interval(poll),
        )
        .max_retries(5)
        .build()
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    let results: Vec<Result<(), String>> = futures_util::stream::iter(0..n)
        .map(|i| {
            let client = &client;
            async move {
                let input = RunInput::new(
                    "input_image",
                    "imageUrl",
                    format!("https://example.com/{i}.png"),
                );
                // The loop people write: retry a failed create or wait a few times.
                for _ in 0..20 {
                    let started = client
                        .start_run(
                            "cctv-cam",
                            vec![input.clone()],
                            StartOptions::idempotency_key(format!("naive-{i}")),
                        )
                        .await;
                    let Ok(mut handle) = started else {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    };
                    for _ in 0..20 {
                        if handle.wait_run().await.is_ok() {
                            return Ok(());
                        }
                    }
                }
                Err(format!("item {i} never completed"))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let wall = t.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    if failed > 0 {
        return Err(format!("naive loop: {failed} items never completed"));
    }
    Ok(Outcome {
        wall,
        requests: fake.request_count(),
        limited: fake.rate_limited_count(),
        routes: fake.request_counts(),
        rss_kib: None,
        journal_bytes: None,
    })
}

pub async fn run(quick: bool) -> Result<String, String> {
    let root = crate::workspace_root();
    let floret = super::floret_cli::build_floret(&root)?;
    let (mut n, rate) = if quick { (100, 100) } else { (2000, 200) };
    // For tuning: fewer items, one shape, no baselines (`BENCH11_ITEMS=500`).
    let tuning = std::env::var("BENCH11_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok());
    if let Some(items) = tuning {
        n = items;
    }
    let poll = Duration::from_millis(100);
    let mut out = format!(
        "## 11. Batch under a rate limit ({n} items, limit R = {rate} requests/s, runs complete \
         after 3 looks, 100 ms poll interval)\n\n| limiter | | wall | runs/s ÷ R | requests | \
         429 share | peak RSS | journal per item |\n|---|---|---:|---:|---:|---:|---:|---:|\n"
    );
    let mut breakdown = Vec::new();
    for (shape_name, shape) in [
        ("fixed window", Limiter::FixedWindow),
        ("token bucket", Limiter::TokenBucket),
        ("sliding window", Limiter::SlidingWindow),
    ] {
        if std::env::var("BENCH11_SHAPE").is_ok_and(|only| !shape_name.starts_with(&only)) {
            continue;
        }
        let listing = with_floret(&floret, n, rate, "100ms", shape, false).await?;
        let mut rows = vec![("`floret batch` (run history)", listing)];
        if tuning.is_none() {
            let each = with_floret(&floret, n, rate, "100ms", shape, true).await?;
            let theirs = naive(n, rate, poll, shape).await?;
            rows.push(("`floret batch --poll-each-run`", each));
            rows.push(("naive loop (16 in flight, client retries)", theirs));
        }
        for (name, o) in &rows {
            let runs_per_second = n as f64 / o.wall.as_secs_f64();
            let _ = writeln!(
                out,
                "| {shape_name} | {name} | {:.1} s | {:.2} | {} | {:.1} % | {} | {} |",
                o.wall.as_secs_f64(),
                runs_per_second / f64::from(rate),
                o.requests,
                100.0 * o.limited as f64 / o.requests.max(1) as f64,
                o.rss_kib.map_or("–".to_owned(), |k| format!(
                    "{:.1} MiB",
                    k as f64 / 1024.0
                )),
                o.journal_bytes
                    .map_or("–".to_owned(), |b| format!("{} B", b / n as u64)),
            );
        }
        let routes: Vec<String> = rows[0]
            .1
            .routes
            .iter()
            .map(|(route, count)| format!("{route}: {count}"))
            .collect();
        breakdown.push(format!("- {shape_name}: {}", routes.join(", ")));
    }
    let _ = writeln!(
        out,
        "\nWhere `floret batch` (run history) sent its requests:\n{}",
        breakdown.join("\n")
    );
    let _ = writeln!(
        out,
        "\nRuns/s ÷ R: runs completed per second as a share of the request limit (1.0 would be \
         one request per run).\n"
    );
    if tuning.is_none() {
        out += &big_plan(&floret, if quick { 5_000 } else { 100_000 }).await?;
    }
    Ok(out)
}

/// A plan of `n` items: time from start to the first POST, and the batch process's peak RSS
/// while it runs (stopped once a few hundred runs exist).
async fn big_plan(floret: &Path, n: usize) -> Result<String, String> {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(3).completes();
    let served = fake.serve().await.map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let plan: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"input_image": "https://example.com/{i}.png"}}"#))
        .collect();
    std::fs::write(dir.path().join("plan.jsonl"), plan.join("\n")).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let mut child = std::process::Command::new(floret)
        .current_dir(dir.path())
        .args([
            "batch",
            "run",
            "plan.jsonl",
            "--technique",
            "cctv-cam",
            "--journal",
            "j.db",
            "--poll-interval",
            "50ms",
            "--max-concurrency",
            "64",
        ])
        .env("FLORA_BASE_URL", served.base_url())
        .env("FLORA_API_KEY", "sk_bench")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = child.id();
    let mut first_post = None;
    let mut rss = None;
    let stop_at = (n / 20).clamp(200, 5_000);
    while t.elapsed() < Duration::from_secs(300) {
        if let Some(r) = peak_rss_kib(pid) {
            rss = Some(r);
        }
        let runs = fake.run_count();
        if runs > 0 && first_post.is_none() {
            first_post = Some(t.elapsed());
        }
        if runs >= stop_at || child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let journal = std::fs::metadata(dir.path().join("j.db")).map_or(0, |m| m.len());
    Ok(format!(
        "A {n}-item plan: first POST after {}, peak RSS {} (until {stop_at} runs existed), \
         journal {} B per item.\n\n",
        first_post.map_or("never".to_owned(), |d| format!("{:.2} s", d.as_secs_f64())),
        rss.map_or("–".to_owned(), |k| format!(
            "{:.1} MiB",
            k as f64 / 1024.0
        )),
        journal / n as u64
    ))
}
