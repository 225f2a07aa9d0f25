//! Bench 10: `floret run` against an in-process fake, split into start-up, schema retrieval,
//! checks, upload and run, beside the same work through the library in one process. The
//! difference is the command line's own overhead.
//!
//! Both sides pay the same first poll delay (the default poll policy waits 2 s before the
//! first poll, and the fake completes the run on that poll), so compare the phases, and the
//! totals as a difference.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flora_api::techniques::CctvCam;
use flora_api::testing::FakeFlora;
use flora_api::{Client, MediaType, RunInput, StartOptions, Upload};

use super::{median, ms};

fn png() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.resize(64 * 1024, 7);
    png
}

/// The phases of one run, in milliseconds.
#[derive(Debug, Default, Clone, Copy)]
struct Phases {
    startup: f64,
    schema: f64,
    checks: f64,
    upload: f64,
    run: f64,
    total: f64,
}

/// `floret: timings: schema 3.1 ms, checks 0.5 ms, upload 2.0 ms, run 2004.1 ms`
fn parse_timings(stderr: &str) -> Option<[f64; 4]> {
    let line = stderr.lines().find(|l| l.starts_with("floret: timings:"))?;
    let mut out = [0.0; 4];
    for (i, name) in ["schema", "checks", "upload", "run"].iter().enumerate() {
        let at = line.find(&format!("{name} "))? + name.len() + 1;
        let rest = &line[at..];
        out[i] = rest.split(' ').next()?.parse().ok()?;
    }
    Some(out)
}

pub(super) fn build_floret(root: &Path) -> Result<PathBuf, String> {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let mut args = vec![
        "build",
        "--quiet",
        "-p",
        "flora-api",
        "--features",
        "cli",
        "--bin",
        "floret",
    ];
    if profile == "release" {
        args.push("--release");
    }
    crate::scratch::cargo(root, &root.join("target"), &args, &[])?;
    Ok(root.join("target").join(profile).join("floret"))
}

async fn cli_once(floret: &Path, base: &str, dir: &Path) -> Result<Phases, String> {
    let t = Instant::now();
    let status = std::process::Command::new(floret)
        .arg("--version")
        .output()
        .map_err(|e| e.to_string())?;
    let startup = ms(t.elapsed());
    if !status.status.success() {
        return Err("floret --version failed".into());
    }
    let mut cmd = std::process::Command::new(floret);
    cmd.current_dir(dir)
        .args(["run", "cctv-cam", "--input-image", "face.png", "-q", "-v"])
        .env("FLORA_BASE_URL", base)
        .env("FLORA_API_KEY", "sk_bench");
    let t = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let total = ms(t.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("floret run failed: {stderr}"));
    }
    let [schema, checks, upload, run] =
        parse_timings(&stderr).ok_or_else(|| format!("no timings in: {stderr}"))?;
    Ok(Phases {
        startup,
        schema,
        checks,
        upload,
        run,
        total,
    })
}

/// The same work in this process, a fresh client each time (as each `floret` has).
async fn library_once(base: &str, dir: &Path) -> Result<Phases, String> {
    let e = |e: flora_api::Error| e.to_string();
    let began = Instant::now();
    let t = Instant::now();
    let client = Client::builder()
        .api_key("sk_bench")
        .base_url(base)
        .build()
        .map_err(e)?;
    let client = &client;
    let schema = client.technique("cctv-cam").await.map_err(e)?;
    let schema_ms = ms(t.elapsed());
    let t = Instant::now();
    let path = dir.join("face.png");
    Upload::path(&path)
        .check(&MediaType::ImageUrl)
        .await
        .map_err(e)?;
    let checks = ms(t.elapsed());
    let t = Instant::now();
    let url = client.upload_image(path.as_path()).await.map_err(e)?;
    let upload = ms(t.elapsed());
    let t = Instant::now();
    let id = schema
        .inputs
        .iter()
        .flatten()
        .next()
        .map(|s| s.id.clone())
        .unwrap_or_default();
    let mut handle = client
        .start_run(
            "cctv-cam",
            vec![RunInput::new(id, "imageUrl", url.as_str().to_owned())],
            StartOptions::default(),
        )
        .await
        .map_err(e)?;
    handle.wait_run().await.map_err(e)?;
    let run = ms(t.elapsed());
    Ok(Phases {
        startup: 0.0,
        schema: schema_ms,
        checks,
        upload,
        run,
        total: ms(began.elapsed()),
    })
}

fn med(v: &[Phases], f: impl Fn(&Phases) -> f64) -> f64 {
    let d: Vec<Duration> = v
        .iter()
        .map(|p| Duration::from_secs_f64(f(p) / 1e3))
        .collect();
    ms(median(d))
}

pub async fn run(quick: bool) -> Result<String, String> {
    let root = crate::workspace_root();
    let floret = build_floret(&root)?;
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let served = fake.serve().await.map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("face.png"), png()).map_err(|e| e.to_string())?;
    let n = if quick { 1 } else { 5 };
    let (mut cli, mut lib) = (Vec::new(), Vec::new());
    for _ in 0..n {
        cli.push(cli_once(&floret, &served.base_url(), dir.path()).await?);
        lib.push(library_once(&served.base_url(), dir.path()).await?);
    }
    let mut out = format!(
        "## 10. `floret run` vs the library (median of {n}, in turns; 64 KiB PNG, run completes \
         on the first poll)\n\n| phase | floret | library | floret − library |\n|---|---:|---:|---:|\n"
    );
    type Phase = fn(&Phases) -> f64;
    let rows: [(&str, Phase); 6] = [
        ("start-up (`floret --version`)", |p| p.startup),
        (
            "client and schema (process start / client build to schema)",
            |p| p.schema,
        ),
        ("checks", |p| p.checks),
        ("upload", |p| p.upload),
        ("run (start + wait; 2 s first poll delay)", |p| p.run),
        ("total, wall", |p| p.total),
    ];
    for (name, f) in rows {
        let (c, l) = (med(&cli, f), med(&lib, f));
        let _ = writeln!(out, "| {name} | {c:.1} ms | {l:.1} ms | {:+.1} ms |", c - l);
    }
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_are_read_from_floret_v() {
        let t = parse_timings(
            "x\nfloret: timings: schema 3.1 ms, checks 0.5 ms, upload 2.0 ms, run 2004.1 ms\n",
        );
        assert_eq!(t, Some([3.1, 0.5, 2.0, 2004.1]));
    }
}
