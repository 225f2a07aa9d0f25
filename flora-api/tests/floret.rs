//! The `floret` binary (feature `cli`) against `FakeFlora::serve` on loopback: what a person
//! types, checked by exit code, stdout, stderr and what the fake saw.
#![cfg(all(feature = "cli", feature = "techniques"))]

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use flora_api::ImageUrl;
use flora_api::techniques::{CctvCam, CctvCamOutputs};
use flora_api::testing::{FakeFlora, Fault, Served};
use serde_json::Value;

mod common;

use common::floret::{code, stderr, stdout};

const KEY: &str = "sk_test_floret_key";

fn png() -> Vec<u8> {
    common::png(512, 7)
}

/// Runs `floret` with `args` against `served` (off the runtime: the fake answers on it),
/// killed after a minute (a hang fails the test instead of stalling the suite).
async fn floret(served: &Served, dir: &Path, args: &[&str]) -> Output {
    let cmd = common::floret::floret(&served.base_url(), dir, Some(KEY), args);
    common::floret::output(cmd, None, Duration::from_secs(60)).await
}

async fn fake_with_cctv() -> (FakeFlora, Served, tempfile::TempDir) {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().returns(CctvCamOutputs {
        output_image: ImageUrl::parse("https://cdn.example.invalid/o.png").unwrap(),
    });
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("face.png"), png()).unwrap();
    (fake, served, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_png_is_uploaded_run_and_downloaded_with_json() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("face.png"), png()).unwrap();
    let o = floret(
        &served,
        dir.path(),
        &[
            "run",
            "cctv-cam",
            "--input-image",
            "face.png",
            "--json",
            "--download",
            "out",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["technique"], "cctv-cam");
    assert!(doc["run_id"].as_str().unwrap().starts_with("run_"));
    assert!(
        doc["idempotency_key"]
            .as_str()
            .is_some_and(|k| !k.is_empty())
    );
    // The input the run got is the uploaded asset.
    let runs = fake.runs::<CctvCam>();
    assert_eq!(runs.len(), 1);
    let asset = fake.media(runs[0].input_image.as_str()).unwrap();
    assert_eq!(&asset[..], &png()[..]);
    // The saved file is byte for byte what the fake serves for the output.
    let url = doc["outputs"][0]["url"].as_str().unwrap();
    let served_bytes = fake.media(url).unwrap();
    let saved = &doc["saved"][0];
    let path = Path::new(saved["path"].as_str().unwrap());
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.path().join(path)
    };
    assert_eq!(std::fs::read(&path).unwrap(), &served_bytes[..]);
    assert_eq!(saved["bytes"], served_bytes.len());
    assert_eq!(saved["sha256"].as_str().unwrap().len(), 64);
    assert!(!stdout(&o).contains(KEY) && !stderr(&o).contains(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_exits_2_before_any_upload_or_run() {
    let (fake, served, dir) = fake_with_cctv().await;
    std::fs::write(dir.path().join("notes.png"), "just text").unwrap();
    std::fs::write(
        dir.path().join("clip.mp4"),
        b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom",
    )
    .unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["--input-imag", "face.png"], "--input-image"),
        (&[], "--input-image"),
        (&["--input-image", "missing.png"], "no such file"),
        (&["--input-image", "."], "directory"),
        (
            &["--input-image", "notes.png"],
            "not an image FLORA accepts",
        ),
        (&["--input-image", "clip.mp4"], "--input-image clip.mp4"),
        (&["--input-image", ""], "--input-image"),
    ];
    for (args, says) in cases {
        let before = fake.request_count();
        let mut all = vec!["run", "cctv-cam"];
        all.extend_from_slice(args);
        let o = floret(&served, dir.path(), &all).await;
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        // Only the schema was read: no upload, no run.
        assert!(fake.request_count() - before <= 1, "{args:?}");
    }
    assert_eq!(fake.run_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_exits_3_with_its_code() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().fails("safety_blocked", "no");
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let o = floret(
        &served,
        dir.path(),
        &[
            "run",
            "cctv-cam",
            "--input-image",
            "https://example.com/face.png",
            "--jsonl",
        ],
    )
    .await;
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let err: Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    assert_eq!(err["code"], "safety_blocked");
    let events: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "created");
    assert_eq!(events.last().unwrap()["event"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_exits_4_and_rate_limits_exit_5() {
    let (fake, served, dir) = fake_with_cctv().await;
    fake.require_key("sk_the_right_one");
    let o = floret(&served, dir.path(), &["techniques"]).await;
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(!stderr(&o).contains(KEY), "{}", stderr(&o));

    let (fake, served, dir) = fake_with_cctv().await;
    // A Retry-After beyond what the client sleeps through ends the retries at once.
    fake.fail_next(
        5,
        Fault::RateLimited {
            retry_after: Duration::from_secs(600),
        },
    );
    let o = floret(&served, dir.path(), &["techniques", "--json"]).await;
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    let err: Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    assert_eq!(err["code"], "rate_limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_wait_then_wait_completes_the_same_run() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(2).completes();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let o = floret(
        &served,
        dir.path(),
        &[
            "run",
            "cctv-cam",
            "--input-image",
            "https://example.com/face.png",
            "--no-wait",
            "--json",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let started: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let run_id = started["run_id"].as_str().unwrap().to_owned();
    let o = floret(
        &served,
        dir.path(),
        &["wait", &run_id, "--technique", "cctv-cam", "--json"],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let done: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(done["run_id"], run_id.as_str());
    assert_eq!(done["status"], "completed");
    assert_eq!(fake.run_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_never_replaces_an_existing_file() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out/output_image.png"), "mine").unwrap();
    let args = [
        "run",
        "cctv-cam",
        "--input-image",
        "https://example.com/face.png",
        "--download",
        "out",
    ];
    let o = floret(&served, dir.path(), &args).await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(fake.run_count(), 0, "refused before the run");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/output_image.png")).unwrap(),
        "mine"
    );
    // With --overwrite it is replaced.
    let o = floret(&served, dir.path(), &[&args[..], &["--overwrite"]].concat()).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_ne!(
        std::fs::read(dir.path().join("out/output_image.png")).unwrap(),
        b"mine"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_help_lists_the_techniques_inputs_and_completions_exist() {
    let (_fake, served, dir) = fake_with_cctv().await;
    let o = floret(&served, dir.path(), &["run", "cctv-cam", "--help"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let help = stdout(&o);
    assert!(help.contains("--input-image <IMAGE>"), "{help}");
    assert!(help.contains("Inputs:"), "{help}");
    assert!(help.contains("Exit codes:"), "{help}");
    let o = floret(&served, dir.path(), &["completions", "bash"]).await;
    assert_eq!(code(&o), 0);
    assert!(
        stdout(&o).contains("floret"),
        "bash completions are generated"
    );
}

/// `floret sandbox` where there is no `./schemas` (an installed floret, anywhere): it serves
/// the techniques built into floret, and a run against it completes.
#[test]
fn the_sandbox_serves_built_in_techniques_without_a_schemas_dir() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut sandbox = std::process::Command::new(env!("CARGO_BIN_EXE_floret"))
        .current_dir(dir.path())
        .arg("sandbox")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(sandbox.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .strip_prefix("export FLORA_BASE_URL=")
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_floret"))
        .current_dir(dir.path())
        .args([
            "run",
            "cctv-cam",
            "--input-image",
            "https://example.com/a.png",
            "--json",
        ])
        .env("FLORA_BASE_URL", &base)
        .env("FLORA_API_KEY", "sk_sandbox")
        .env_remove("FLORA_WORKSPACE_ID")
        .output()
        .unwrap();
    let _ = sandbox.kill();
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut sandbox.stderr.take().unwrap(), &mut err);
    let _ = sandbox.wait();
    assert!(err.contains("floret's built-in techniques"), "{err}");
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let doc: Value = serde_json::from_str(&stdout(&run)).unwrap();
    assert_eq!(doc["status"], "completed", "{doc}");
}
