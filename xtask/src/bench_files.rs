//! Bench 7: a large file uploaded through the signed path and downloaded back over loopback,
//! against curl doing the same transfers, with the client's peak RSS growth measured in a
//! process of its own (`xtask bench-files-client`).
//!
//! The server is a small hyper service in the bench process that streams every body (a
//! buffering mock would hold the whole file in memory): it answers the asset endpoints,
//! counts the bytes of the multipart upload, and serves the file's bytes for the download.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use serde_json::json;

type Body = BoxBody<Bytes, Infallible>;

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

fn asset(base: &str, status: &str, upload: bool) -> Bytes {
    let mut a = json!({
        "asset_id": "asset_bench", "status": status, "workspace_id": "ws_bench",
        "url": format!("{base}/media/big.png"), "uploaded_via": "signed_url",
    });
    if upload {
        a["upload"] = json!({
            "url": format!("{base}/upload"), "method": "POST", "file_field": "file",
            "form_fields": {"key": "bench/big.png", "policy": "p", "signature": "s"}
        });
    }
    Bytes::from(a.to_string())
}

/// Bytes `0..len` of the bench file: a PNG signature, then a repeating pattern.
fn pattern_chunk(offset: u64, len: usize) -> Bytes {
    const HEAD: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    let mut v: Vec<u8> = (0..len as u64)
        .map(|i| ((offset + i) % 251) as u8)
        .collect();
    if offset == 0 {
        let n = HEAD.len().min(len);
        v[..n].copy_from_slice(&HEAD[..n]);
    }
    Bytes::from(v)
}

async fn handle(
    req: Request<Incoming>,
    base: Arc<String>,
    size: u64,
    received: Arc<AtomicU64>,
) -> Result<Response<Body>, Infallible> {
    let json_resp = |status: u16, body: Bytes| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(full(body))
            .unwrap_or_else(|_| Response::new(full(Bytes::new())))
    };
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let mut body = req.into_body();
    // Drain (and count) every request body without keeping it.
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    n += d.len() as u64;
                }
            }
            Err(_) => break,
        }
    }
    let resp = match (method.as_str(), path.as_str()) {
        ("POST", "/api/v1/assets") => json_resp(201, asset(&base, "pending_upload", true)),
        ("POST", "/upload") => {
            received.store(n, Ordering::SeqCst);
            json_resp(204, Bytes::new())
        }
        ("POST", "/api/v1/assets/asset_bench/complete") => {
            json_resp(200, asset(&base, "pending_upload", false))
        }
        ("GET", "/api/v1/assets/asset_bench") => json_resp(200, asset(&base, "ready", false)),
        ("GET", "/media/big.png") => {
            const CHUNK: u64 = 256 * 1024;
            let stream = futures_util::stream::unfold(0u64, move |off| async move {
                if off >= size {
                    return None;
                }
                let len = CHUNK.min(size - off);
                Some((
                    Ok::<_, Infallible>(Frame::data(pattern_chunk(off, len as usize))),
                    off + len,
                ))
            });
            Response::builder()
                .header("content-type", "image/png")
                .header("content-length", size)
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap_or_else(|_| Response::new(full(Bytes::new())))
        }
        _ => json_resp(
            404,
            Bytes::from_static(b"{\"error\":{\"code\":\"not_found\"}}"),
        ),
    };
    Ok(resp)
}

/// Serves on loopback until the process ends; returns the base URL and the upload counter.
async fn serve(size: u64) -> Result<(String, Arc<AtomicU64>), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let received = Arc::new(AtomicU64::new(0));
    let (b, r) = (Arc::new(base.clone()), received.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (b, r) = (b.clone(), r.clone());
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req| handle(req, b.clone(), size, r.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok((base, received))
}

fn write_file(path: &Path, size: u64) -> Result<(), String> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| e.to_string())?);
    let mut off = 0u64;
    while off < size {
        let len = (1u64 << 20).min(size - off);
        f.write_all(&pattern_chunk(off, len as usize))
            .map_err(|e| e.to_string())?;
        off += len;
    }
    f.flush().map_err(|e| e.to_string())
}

async fn curl(args: &[&str]) -> Result<Duration, String> {
    let t = Instant::now();
    let status = tokio::process::Command::new("curl")
        .args(["-sS", "--fail"])
        .args(args)
        .stdout(Stdio::null())
        .status()
        .await
        .map_err(|e| format!("cannot run curl: {e}"))?;
    if !status.success() {
        return Err(format!("curl {args:?} failed"));
    }
    Ok(t.elapsed())
}

fn mib_s(size: u64, d: Duration) -> f64 {
    size as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

/// The client side, in a fresh process: upload, then download, each with its peak RSS
/// growth. Prints `upload_s download_s upload_growth_kib download_growth_kib`.
pub async fn client_side(base: &str, file: &Path, out: &Path) -> Result<String, String> {
    let client = flora_api::Client::builder()
        .api_key("sk_bench")
        .base_url(format!("{base}/api/v1"))
        .workspace_id("ws_bench")
        .build()
        .map_err(|e| e.to_string())?;
    let measure = || -> Result<u64, String> {
        // Resets VmHWM to the current RSS (Linux >= 4.0), so each phase has its own peak.
        std::fs::write("/proc/self/clear_refs", "5").map_err(|e| e.to_string())?;
        rss("VmRSS:").ok_or_else(|| "no /proc/self/status".to_owned())
    };
    let before = measure()?;
    let t = Instant::now();
    let asset = client
        .upload(
            flora_api::Upload::path(file),
            flora_api::UploadOptions::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let up = t.elapsed();
    let up_peak = rss("VmHWM:").unwrap_or(0);
    let url = asset.url.ok_or("no url")?;
    let before_dl = measure()?;
    let t = Instant::now();
    client
        .download(&url, out)
        .await
        .map_err(|e| e.to_string())?;
    let down = t.elapsed();
    let down_peak = rss("VmHWM:").unwrap_or(0);
    Ok(format!(
        "{} {} {} {}",
        up.as_secs_f64(),
        down.as_secs_f64(),
        up_peak.saturating_sub(before),
        down_peak.saturating_sub(before_dl)
    ))
}

fn rss(key: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs bench 7 and returns its Markdown section.
pub async fn run(quick: bool) -> Result<String, String> {
    let size: u64 = if quick { 64 << 20 } else { 1 << 30 };
    let dir = crate::workspace_root().join("target").join("bench-files");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join("big.png");
    let out: PathBuf = dir.join("downloaded.png");
    write_file(&file, size)?;
    let (base, received) = serve(size).await?;

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    let runs = if quick { 1 } else { 3 };
    for _ in 0..runs {
        let child = tokio::process::Command::new(&exe)
            .args(["bench-files-client", "--base-url", &base])
            .arg("--file")
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .stderr(Stdio::inherit())
            .output()
            .await
            .map_err(|e| format!("cannot start the files bench client: {e}"))?;
        if !child.status.success() {
            return Err("the files bench client failed".to_owned());
        }
        let line = String::from_utf8_lossy(&child.stdout).trim().to_owned();
        let v: Vec<f64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() != 4 {
            return Err(format!("files bench client printed {line:?}"));
        }
        let got = received.load(Ordering::SeqCst);
        if got < size {
            return Err(format!("the upload host received {got} of {size} bytes"));
        }
        let downloaded = std::fs::metadata(&out).map_err(|e| e.to_string())?.len();
        if downloaded != size {
            return Err(format!("downloaded {downloaded} of {size} bytes"));
        }
        // curl, the same transfers: a multipart POST with the same fields, a GET to a file.
        let file_arg = format!("file=@{};type=image/png", file.display());
        let curl_up = curl(&[
            "-o",
            "/dev/null",
            "-F",
            "key=bench/big.png",
            "-F",
            "policy=p",
            "-F",
            "signature=s",
            "-F",
            &file_arg,
            &format!("{base}/upload"),
        ])
        .await;
        let curl_down = curl(&[
            "-o",
            &out.display().to_string(),
            &format!("{base}/media/big.png"),
        ])
        .await;
        rows.push((v, curl_up, curl_down));
    }
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&out);

    let median = |mut xs: Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs.get(xs.len() / 2).copied().unwrap_or(0.0)
    };
    let col = |i: usize| median(rows.iter().map(|(v, _, _)| v[i]).collect());
    let curl_col = |up: bool| -> Option<f64> {
        let xs: Option<Vec<f64>> = rows
            .iter()
            .map(|(_, u, d)| {
                let r = if up { u } else { d };
                r.as_ref().ok().map(Duration::as_secs_f64)
            })
            .collect();
        xs.map(median)
    };
    let (up, down) = (col(0), col(1));
    let (up_kib, down_kib) = (col(2), col(3));
    let mut s = format!(
        "## 7. Files: {} MiB through the signed upload path and back (loopback, median of {runs})\n\n\
         | transfer | flora-api | MiB/s | peak RSS growth | curl | ratio (curl time / ours) |\n\
         |---|---:|---:|---:|---:|---:|\n",
        size >> 20
    );
    for (name, ours, kib, theirs) in [
        (
            "upload (reserve + multipart POST + complete + poll)",
            up,
            up_kib,
            curl_col(true),
        ),
        (
            "download (temp file + rename)",
            down,
            down_kib,
            curl_col(false),
        ),
    ] {
        let (c, ratio) = match theirs {
            Some(t) => (format!("{t:.2} s"), format!("{:.2}×", t / ours)),
            None => ("curl failed or missing".to_owned(), "–".to_owned()),
        };
        let _ = writeln!(
            s,
            "| {name} | {ours:.2} s | {:.0} | {:.1} MiB | {c} | {ratio} |",
            mib_s(size, Duration::from_secs_f64(ours)),
            kib / 1024.0
        );
    }
    s.push_str("\nBudgets: peak RSS growth < 32 MiB each; throughput ≥ 0.8× curl.\n\n");
    Ok(s)
}
