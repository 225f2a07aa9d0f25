//! Bench 11: a batch against a rate-limited fake. `floret batch run` (its adaptive window)
//! beside a naive loop (a fixed 16 in flight, the client's own retries): throughput as a
//! fraction of what the limit allows, the share of requests answered 429, peak RSS of the
//! batch process, and journal size per item.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use flora_api::techniques::CctvCam;
use flora_api::testing::FakeFlora;
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
    rss_kib: Option<u64>,
    journal_bytes: Option<u64>,
}

fn fake(rate: u32) -> FakeFlora {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(3).completes();
    fake.rate_limit(rate);
    fake
}

async fn with_floret(floret: &Path, n: usize, rate: u32, poll: &str) -> Result<Outcome, String> {
    let fake = fake(rate);
    let served = fake.serve().await.map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let plan: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"input_image": "https://example.com/{i}.png"}}"#))
        .collect();
    std::fs::write(dir.path().join("plan.jsonl"), plan.join("\n")).map_err(|e| e.to_string())?;
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
            poll,
            "--max-concurrency",
            "64",
        ])
        .env("FLORA_BASE_URL", served.base_url())
        .env("FLORA_API_KEY", "sk_bench")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
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
                return Err(format!("floret batch failed: {status}"));
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = t.elapsed();
    let journal_bytes = ["j.db", "j.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
        .map(|m| m.len())
        .reduce(|a, b| a + b);
    Ok(Outcome {
        wall,
        requests: fake.request_count(),
        limited: fake.rate_limited_count(),
        rss_kib: rss,
        journal_bytes,
    })
}

async fn naive(n: usize, rate: u32, poll: Duration) -> Result<Outcome, String> {
    let fake = fake(rate);
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
        rss_kib: None,
        journal_bytes: None,
    })
}

pub async fn run(quick: bool) -> Result<String, String> {
    let root = crate::workspace_root();
    let floret = super::floret_cli::build_floret(&root)?;
    let (n, rate) = if quick { (100, 100) } else { (2000, 200) };
    let poll = Duration::from_millis(100);
    let ours = with_floret(&floret, n, rate, "100ms").await?;
    let theirs = naive(n, rate, poll).await?;
    // The least possible time: every request the work needs (a create and four polls per
    // item, runs completing after 3 pending polls), at the limit.
    let needed = n * 5;
    let ideal = needed as f64 / f64::from(rate);
    let mut out = format!(
        "## 11. Batch under a rate limit ({n} items, limit {rate} requests/s, runs complete after \
         3 polls, 100 ms poll interval)\n\n| | wall | throughput / limit | requests | 429 share | \
         peak RSS | journal per item |\n|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for (name, o) in [
        ("`floret batch` (adaptive window)", &ours),
        ("naive loop (16 in flight, client retries)", &theirs),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {:.1} s | {:.2} | {} | {:.1} % | {} | {} |",
            o.wall.as_secs_f64(),
            ideal / o.wall.as_secs_f64(),
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
    let _ = writeln!(
        out,
        "\nThroughput / limit: the least possible time ({needed} requests at {rate}/s = {ideal:.1} s) \
         over the wall time.\n"
    );
    Ok(out)
}
