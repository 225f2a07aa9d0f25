//! A big upload over a slow link, measured: a video of N MiB through `upload_video` against
//! `FakeFlora::serve`, every byte through a loopback throttle, with a per-attempt timeout far
//! shorter than the transfer. Prints the client's wall time and memory growth (RSS, Linux).
//!
//! ```text
//! cargo run --release -p flora-api --features test-util --example throttled_upload -- 300 20 2
//! #                                                      MiB, link MiB/s, timeout s ^^^^^^^^
//! ```
//!
//! This process holds the fake and the throttle; the client runs in a child process (the
//! throttle is its `HTTP_PROXY`), so the RSS figures are the client's alone. The fake keeps
//! every uploaded byte in memory, as `FakeFlora::media` returns them.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A field of `/proc/self/status` in KiB (0 where there is no such file).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Copies one direction of a connection at no more than `rate` bytes per second.
async fn pump(mut r: impl AsyncReadExt + Unpin, mut w: impl AsyncWriteExt + Unpin, rate: f64) {
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let mut sent = 0u64;
    while let Ok(n @ 1..) = r.read(&mut buf).await {
        sent += n as u64;
        let due = Duration::from_secs_f64(sent as f64 / rate);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
}

/// A loopback proxy that forwards every connection to `to`, throttled both ways. It works as
/// an HTTP proxy for plain `http://` because the fake reads absolute-form request targets.
async fn throttle(rate: f64, to: std::net::SocketAddr) -> Res<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = tokio::net::TcpStream::connect(to).await else {
                continue;
            };
            let (ir, iw) = inbound.into_split();
            let (or, ow) = outbound.into_split();
            tokio::spawn(pump(ir, ow, rate));
            tokio::spawn(pump(or, iw, rate));
        }
    });
    Ok(addr)
}

async fn client(base_url: &str, path: &str, timeout_s: u64) -> Res<()> {
    let client = flora_api::Client::builder()
        .api_key("sk_test")
        .base_url(base_url)
        .timeout(Duration::from_secs(timeout_s))
        .build()?;
    let rss_before = status_kib("VmRSS:");
    let started = Instant::now();
    let asset = client.upload_video(path).await?;
    let wall = started.elapsed();
    let peak = status_kib("VmHWM:");
    println!(
        "uploaded to {asset}\nclient: wall {:.2} s, RSS before {} MiB, peak {} MiB, growth {:.1} MiB",
        wall.as_secs_f64(),
        rss_before / 1024,
        peak / 1024,
        peak.saturating_sub(rss_before) as f64 / 1024.0
    );
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--client") {
        let [_, base, path, timeout] = &args[..] else {
            return Err("usage: --client BASE_URL FILE TIMEOUT_S".into());
        };
        return client(base, path, timeout.parse()?).await;
    }
    let number = |i: usize, default: u64| -> Res<u64> {
        Ok(args
            .get(i)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let (mib, link_mib_s, timeout_s) = (number(0, 300)?, number(1, 20)?, number(2, 2)?);

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("clip.mp4");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    file.write_all(b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom")?; // an MP4 signature
    let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    for _ in 0..mib {
        file.write_all(&chunk)?;
    }
    file.flush()?;
    drop(file);

    let fake = flora_api::testing::FakeFlora::new();
    let served = fake.serve().await?;
    let proxy = throttle((link_mib_s << 20) as f64, served.addr()).await?;
    println!("{mib} MiB, link {link_mib_s} MiB/s, per-attempt timeout {timeout_s} s");
    let mut child = Command::new(std::env::current_exe()?);
    child
        .arg("--client")
        .arg(served.base_url())
        .arg(&path)
        .arg(timeout_s.to_string())
        .env("HTTP_PROXY", format!("http://{proxy}"))
        .env("http_proxy", format!("http://{proxy}"))
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .stdin(Stdio::null());
    // Waited for on a blocking thread: the fake and the throttle run on this runtime.
    let status = tokio::task::spawn_blocking(move || child.status()).await??;
    println!(
        "fake (this process): peak RSS {} MiB",
        status_kib("VmHWM:") / 1024
    );
    if !status.success() {
        return Err(format!("the client failed: {status}").into());
    }
    Ok(())
}
