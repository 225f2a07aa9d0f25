//! The real `floret` binary, as a person runs it: arguments, environment, stdin, and signals.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A `floret` invocation against `base` (an API base URL) in `dir`, with `key` in
/// `FLORA_API_KEY` (unless `None`).
pub fn floret(base: &str, dir: &Path, key: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_floret"));
    cmd.current_dir(dir)
        .args(args)
        .env("FLORA_BASE_URL", base)
        .env_remove("FLORA_WORKSPACE_ID")
        .env_remove("FLORA_API_KEY")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    if let Some(k) = key {
        cmd.env("FLORA_API_KEY", k);
    }
    cmd
}

/// Runs `cmd` off the async runtime (the servers it talks to answer on it), killing it after
/// `limit` (a test that hangs fails instead).
pub async fn output(mut cmd: Command, stdin: Option<String>, limit: Duration) -> Output {
    tokio::task::spawn_blocking(move || {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("floret starts");
        if let Some(text) = stdin {
            use std::io::Write;
            let mut input = child.stdin.take().expect("stdin");
            input.write_all(text.as_bytes()).expect("stdin written");
        }
        let started = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if started.elapsed() > limit {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("output")
    })
    .await
    .expect("joined")
}

/// Starts `cmd`, waits until `ready()` says the moment has come, sends it SIGINT (Ctrl-C),
/// and returns what it printed and how long it took to end after the signal.
pub async fn interrupted(
    mut cmd: Command,
    ready: impl Fn() -> bool + Send + 'static,
    limit: Duration,
) -> (Output, Duration) {
    tokio::task::spawn_blocking(move || {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("floret starts");
        let started = Instant::now();
        while !ready() && started.elapsed() < limit {
            if child.try_wait().expect("wait").is_some() {
                // Ended before the moment came: nothing to interrupt.
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let signalled = Instant::now();
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        while child.try_wait().expect("wait").is_none() {
            if signalled.elapsed() > limit {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let took = signalled.elapsed();
        (child.wait_with_output().expect("output"), took)
    })
    .await
    .expect("joined")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}
