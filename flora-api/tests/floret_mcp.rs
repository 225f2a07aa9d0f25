//! `floret mcp` driven as an MCP client drives it: JSON-RPC lines on its stdin and stdout,
//! against `FakeFlora::serve` on loopback. Every technique is a tool whose input schema is
//! its inputs; a call is checked before anything is sent, uploads each file once, runs once
//! (an identical call in flight joins it), reports progress, saves what the fake serves,
//! holds the session's cost limit, and never shows the key.
#![cfg(feature = "mcp")]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flora_api::techniques::CctvCam;
use flora_api::testing::FakeFlora;
use serde_json::{Value, json};

mod common;

const KEY: &str = "sk_test_floret_mcp_key_4f2a9";

/// A running `floret mcp` and everything it wrote to stdout, line by line.
struct Mcp {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Every line read so far (for the key check).
    seen: Vec<String>,
    /// Answers read while waiting for another.
    early: Vec<Value>,
    /// The roots this client declares (`file://` URIs), answered to `roots/list`.
    roots: Option<Vec<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Mcp {
    fn start(base: &str, dir: &Path, args: &[&str]) -> Mcp {
        Mcp::start_with_roots(base, dir, args, None)
    }

    fn start_with_roots(base: &str, dir: &Path, args: &[&str], roots: Option<Vec<String>>) -> Mcp {
        Mcp::start_with(base, dir, args, roots, json!({}))
    }

    /// Started by a client declaring `roots` (answered with these) and `capabilities`.
    fn start_with(
        base: &str,
        dir: &Path,
        args: &[&str],
        roots: Option<Vec<String>>,
        mut capabilities: Value,
    ) -> Mcp {
        let mut all = vec!["mcp"];
        all.extend_from_slice(args);
        let mut cmd = common::floret::floret(base, dir, Some(KEY), &all);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("floret mcp starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let stdin = child.stdin.take();
        let mut mcp = Mcp {
            child,
            stdin,
            lines: rx,
            seen: Vec::new(),
            early: Vec::new(),
            roots,
            stderr,
        };
        if mcp.roots.is_some() {
            capabilities["roots"] = json!({"listChanged": false});
        }
        mcp.send(json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": capabilities,
                "clientInfo": {"name": "floret-test", "version": "0"}
            }
        }));
        let (init, _) = mcp.answer(0);
        assert!(init.get("result").is_some(), "{init}");
        mcp.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        mcp
    }

    fn send(&mut self, message: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{message}").expect("written");
        stdin.flush().expect("flushed");
    }

    /// The answer to request `id`, with the notifications that came before it.
    fn answer(&mut self, id: u64) -> (Value, Vec<Value>) {
        if let Some(i) = self.early.iter().position(|v| v["id"] == json!(id)) {
            return (self.early.remove(i), Vec::new());
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut notes = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no answer to {id}; stderr:\n{}",
                    self.stderr.lock().unwrap()
                )
            });
            self.seen.push(line.clone());
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carries only JSON-RPC: {e}: {line}"));
            if v["method"] == "roots/list" {
                let roots: Vec<Value> = self
                    .roots
                    .iter()
                    .flatten()
                    .map(|uri| json!({"uri": uri, "name": "root"}))
                    .collect();
                let reply = json!({"jsonrpc": "2.0", "id": v["id"], "result": {"roots": roots}});
                self.send(reply);
                notes.push(v);
                continue;
            }
            if v.get("method").is_none() {
                if v["id"] == json!(id) {
                    return (v, notes);
                }
                self.early.push(v);
                continue;
            }
            notes.push(v);
        }
    }

    fn call(&mut self, id: u64, tool: &str, arguments: Value) -> (Value, Vec<Value>) {
        self.send(call(id, tool, arguments));
        self.answer(id)
    }

    /// Closes stdin (EOF) and waits for the exit.
    fn close(mut self) -> (std::process::ExitStatus, Vec<String>, String) {
        drop(self.stdin.take());
        let started = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "floret mcp did not end after EOF"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        let err = self.stderr.lock().unwrap().clone();
        (status, self.seen, err)
    }
}

fn call(id: u64, tool: &str, arguments: Value) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": {"progressToken": format!("p{id}")}}
    })
}

/// The text of a tool result, and whether it is an error.
fn result(answer: &Value) -> (String, bool) {
    let r = &answer["result"];
    let text = r["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (text, r["isError"] == json!(true))
}

/// A directory with the repository's cctv-cam schema, an `inputs/` folder with a PNG and a
/// `private/` folder outside what floret may read.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let schemas = dir.path().join("schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    let cctv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/cctv-cam.json");
    std::fs::copy(cctv, schemas.join("cctv-cam.json")).unwrap();
    std::fs::create_dir_all(dir.path().join("inputs")).unwrap();
    std::fs::create_dir_all(dir.path().join("private")).unwrap();
    std::fs::write(dir.path().join("inputs/face.png"), common::png(64, 3)).unwrap();
    std::fs::write(dir.path().join("private/face.png"), common::png(64, 4)).unwrap();
    dir
}

fn args() -> Vec<&'static str> {
    vec![
        "--schemas",
        "schemas",
        "--allow-dir",
        "inputs",
        "--download",
        "out",
    ]
}

fn runs(fake: &FakeFlora) -> usize {
    fake.request_counts()
        .get("POST /techniques/{slug}/runs")
        .copied()
        .unwrap_or(0)
}

fn uploads(fake: &FakeFlora) -> usize {
    fake.request_counts()
        .get("POST /assets")
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_offers_each_technique_with_its_inputs_as_a_json_schema() {
    let fake = FakeFlora::new();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let schemas = dir.path().join("schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    let every_slot = json!({
        "technique_id": "tech_every", "slug": "every-slot", "name": "Every slot",
        "description": "One input of each type.", "run_cost": 0.25,
        "inputs": [
            {"id": "photo", "name": "Photo", "type": "imageUrl"},
            {"id": "clip", "name": "Clip", "type": "videoUrl", "optional": true},
            {"id": "voice", "name": "Voice", "type": "audioUrl", "optional": true},
            {"id": "brief", "name": "Brief", "type": "documentUrl", "optional": true},
            {"id": "prompt", "name": "Prompt", "type": "text", "description": "What to make"},
            {"id": "refs", "name": "References", "type": "imageUrl", "optional": true, "allow_multiple": true}
        ],
        "outputs": [{"id": "out", "name": "Out", "type": "imageUrl"}]
    });
    std::fs::write(schemas.join("every-slot.json"), every_slot.to_string()).unwrap();
    std::fs::create_dir_all(schemas.join("models")).unwrap();
    std::fs::write(
        schemas.join("models/t2i-every.json"),
        every_param_model().to_string(),
    )
    .unwrap();
    let listed = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start(&served, &dir, &["--schemas", "schemas"]);
            mcp.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
            let (answer, _) = mcp.answer(1);
            mcp.close();
            answer
        }
    })
    .await
    .unwrap();
    let tools = &listed["result"]["tools"];
    insta::assert_snapshot!(serde_json::to_string_pretty(tools).unwrap());
    assert_eq!(
        fake.request_count(),
        0,
        "listing tools is offline with --schemas"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_a_local_file_uploads_once_runs_once_reports_progress_and_saves_the_bytes() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(2).completes();
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let (answer, notes, seen, err) = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start(&served, &root, &args());
            let face = root.join("inputs/face.png").display().to_string();
            let (answer, notes) = mcp.call(1, "run_cctv-cam", json!({"input_image": face}));
            let (_, seen, err) = mcp.close();
            (answer, notes, seen, err)
        }
    })
    .await
    .unwrap();
    let (text, is_error) = result(&answer);
    assert!(!is_error, "{text}\n{err}");
    assert_eq!(uploads(&fake), 1, "{:?}", fake.request_counts());
    assert_eq!(runs(&fake), 1);
    let out: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(out["status"], "completed", "{out}");
    let url = out["outputs"][0]["url"].as_str().unwrap();
    let path = out["outputs"][0]["path"].as_str().unwrap();
    assert_eq!(
        std::fs::read(path).unwrap(),
        fake.media(url).unwrap().to_vec(),
        "the saved file is what the fake serves"
    );
    assert!(path.contains("out"), "saved under --download: {path}");
    let links: Vec<&Value> = answer["result"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "resource_link")
        .collect();
    assert_eq!(links.len(), 1, "{answer}");
    assert!(links[0]["uri"].as_str().unwrap().starts_with("file://"));
    let progress: Vec<&Value> = notes
        .iter()
        .filter(|n| n["method"] == "notifications/progress")
        .collect();
    assert!(!progress.is_empty(), "progress notifications: {notes:?}");
    assert!(
        progress
            .iter()
            .all(|n| n["params"]["progressToken"] == "p1")
    );
    assert!(seen.iter().all(|l| !l.contains(KEY)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_call_sent_twice_at_once_is_one_run_and_a_later_one_is_a_new_run() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(3).completes();
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let (a, b, c) = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start(&served, &root, &args());
            let arguments = json!({"input_image": "https://example.com/face.png"});
            // An agent that timed out on its side sends the call again.
            mcp.send(call(1, "run_cctv-cam", arguments.clone()));
            mcp.send(call(2, "run_cctv-cam", arguments.clone()));
            let (a, _) = mcp.answer(1);
            let (b, _) = mcp.answer(2);
            let (c, _) = mcp.call(3, "run_cctv-cam", arguments);
            mcp.close();
            (a, b, c)
        }
    })
    .await
    .unwrap();
    let id = |v: &Value| {
        let (text, is_error) = result(v);
        assert!(!is_error, "{text}");
        serde_json::from_str::<Value>(&text).unwrap()["run_id"].clone()
    };
    assert_eq!(id(&a), id(&b), "the second call joined the first");
    assert_ne!(id(&a), id(&c), "a call after the first ended is a new run");
    let path = |v: &Value| {
        let out: Value = serde_json::from_str(&result(v).0).unwrap();
        assert!(out.get("not_saved").is_none(), "{out}");
        out["outputs"][0]["path"].as_str().unwrap().to_owned()
    };
    assert_ne!(
        path(&a),
        path(&c),
        "a second run never meets the first's file"
    );
    assert!(Path::new(&path(&a)).exists() && Path::new(&path(&c)).exists());
    assert_eq!(runs(&fake), 2, "{:?}", fake.request_counts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_and_paths_outside_the_allowed_dirs_are_tool_errors_with_nothing_sent() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let answers = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start(&served, &root, &args());
            let outside = root.join("private/face.png").display().to_string();
            let sneaky = root
                .join("inputs/../private/face.png")
                .display()
                .to_string();
            let answers = vec![
                mcp.call(1, "run_cctv-cam", json!({})).0,
                mcp.call(2, "run_cctv-cam", json!({"input_image": "x", "nope": 1}))
                    .0,
                mcp.call(3, "run_cctv-cam", json!({"input_image": outside}))
                    .0,
                mcp.call(4, "run_cctv-cam", json!({"input_image": sneaky}))
                    .0,
                mcp.call(5, "run_cctv-cam", json!({"input_image": 42})).0,
            ];
            mcp.close();
            answers
        }
    })
    .await
    .unwrap();
    for (i, a) in answers.iter().enumerate() {
        let (text, is_error) = result(a);
        assert!(is_error, "call {i}: {text}");
        assert!(text.contains("nothing was sent"), "call {i}: {text}");
    }
    assert!(result(&answers[0]).0.contains("`input_image` is required"));
    assert!(result(&answers[1]).0.contains("`nope` is not an input"));
    assert!(result(&answers[2]).0.contains("outside the directories"));
    assert!(result(&answers[3]).0.contains("outside the directories"));
    assert_eq!(runs(&fake), 0);
    assert_eq!(uploads(&fake), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_echoed_by_the_server_never_reaches_the_agent_or_the_log() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().fails(
        "safety_blocked",
        format!("refused for key {KEY} (Bearer {KEY})"),
    );
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let (answer, seen, err) = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start(&served, &root, &args());
            let (answer, _) = mcp.call(
                1,
                "run_cctv-cam",
                json!({"input_image": "https://example.com/face.png"}),
            );
            let (_, seen, err) = mcp.close();
            (answer, seen, err)
        }
    })
    .await
    .unwrap();
    let (text, is_error) = result(&answer);
    assert!(is_error, "{text}");
    assert!(text.contains("retry_class"), "{text}");
    assert!(
        text.contains("refused for key"),
        "FLORA's message is kept: {text}"
    );
    for line in seen.iter().chain(std::iter::once(&err)) {
        assert!(!line.contains(KEY), "the key leaked: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_cost_holds_across_calls_and_eof_ends_the_server_cleanly() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let mut with_limit = args();
    // cctv-cam lists 0.05 USD a run: one run fits, a second does not.
    with_limit.extend(["--max-cost", "0.08"]);
    let (first, second, cost, status) = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start(&served, &root, &with_limit);
            let (first, _) = mcp.call(
                1,
                "run_cctv-cam",
                json!({"input_image": "https://example.com/a.png"}),
            );
            let (second, _) = mcp.call(
                2,
                "run_cctv-cam",
                json!({"input_image": "https://example.com/b.png"}),
            );
            let (cost, _) = mcp.call(3, "cost_so_far", json!({}));
            let (status, _, _) = mcp.close();
            (first, second, cost, status)
        }
    })
    .await
    .unwrap();
    assert!(!result(&first).1, "{}", result(&first).0);
    let (text, is_error) = result(&second);
    assert!(is_error && text.contains("--max-cost"), "{text}");
    assert_eq!(runs(&fake), 1);
    let cost: Value = serde_json::from_str(&result(&cost).0).unwrap();
    assert_eq!(cost["max_cost_usd"], json!(0.08));
    assert!(cost["charged_usd"].as_f64().unwrap() > 0.0, "{cost}");
    assert!(
        status.success(),
        "EOF on stdin ends floret mcp with 0: {status:?}"
    );
    // The failed-over second call left no file, and no temporary file is left anywhere.
    let out = dir.path().join("out");
    let files: Vec<String> = std::fs::read_dir(&out)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files.iter().all(|f| !f.starts_with('.')), "{files:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_allow_dir_the_clients_roots_say_where_files_may_be_read() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let (inside, outside, notes) = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let inputs = url::Url::from_directory_path(root.join("inputs").canonicalize().unwrap())
                .unwrap()
                .to_string();
            let mut mcp = Mcp::start_with_roots(
                &served,
                &root,
                &["--schemas", "schemas", "--download", "out"],
                Some(vec![inputs]),
            );
            let private = root.join("private/face.png").display().to_string();
            let (outside, notes) = mcp.call(1, "run_cctv-cam", json!({"input_image": private}));
            let face = root.join("inputs/face.png").display().to_string();
            let (inside, _) = mcp.call(2, "run_cctv-cam", json!({"input_image": face}));
            mcp.close();
            (inside, outside, notes)
        }
    })
    .await
    .unwrap();
    assert!(
        notes.iter().any(|n| n["method"] == "roots/list"),
        "the server asked for the roots: {notes:?}"
    );
    let (text, is_error) = result(&outside);
    assert!(
        is_error && text.contains("outside the directories"),
        "{text}"
    );
    let (text, is_error) = result(&inside);
    assert!(!is_error, "{text}");
    assert_eq!(runs(&fake), 1);
}

/// A model with a param of every type the catalog has.
fn every_param_model() -> Value {
    json!({
        "model_id": "t2i-every", "name": "Every param", "type": "image", "provider": "Test",
        "capabilities": [], "estimated_credits": 4, "estimated_seconds": 5,
        "params": [
            {"name": "aspect_ratio", "type": "string", "default": "square_1_1",
             "options": [{"label": "Square", "value": "square_1_1"},
                         {"label": "Landscape 16:9", "value": "landscape_16_9"}]},
            {"name": "style", "type": "string", "required": true},
            {"name": "image_urls", "type": "string[]"},
            {"name": "raw", "type": "bool"},
            {"name": "steps", "type": "int", "min": 1, "max": 50},
            {"name": "frames", "type": "int?", "min": 1},
            {"name": "seed", "type": "seed"},
            {"name": "guidance", "type": "float", "min": 0, "max": 10},
            {"name": "lora", "type": "dict", "properties": {"scale": {"min": 0.5, "max": 4, "default": 1}}},
            {"name": "hologram", "type": "matrix"}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_tool_refuses_a_value_outside_the_catalog_and_generates_a_valid_one() {
    let fake = FakeFlora::new();
    let model: flora_api::ModelSchema = serde_json::from_value(every_param_model()).unwrap();
    fake.model_schema(&model).charges(0.004).completes();
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    std::fs::create_dir_all(dir.path().join("schemas/models")).unwrap();
    std::fs::write(
        dir.path().join("schemas/models/t2i-every.json"),
        every_param_model().to_string(),
    )
    .unwrap();
    let root = dir.path().to_path_buf();
    let (banana, good) = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut with_project = args();
            with_project.extend(["--project-id", "prj_fake"]);
            let mut mcp = Mcp::start(&served, &root, &with_project);
            let (banana, _) = mcp.call(
                1,
                "generate_t2i-every",
                json!({"prompt": "a cat", "style": "noir", "aspect_ratio": "banana_9_9"}),
            );
            let (good, _) = mcp.call(
                2,
                "generate_t2i-every",
                json!({"prompt": "a cat", "style": "noir", "aspect_ratio": "landscape_16_9",
                       "steps": 30, "lora": {"scale": 2.0}}),
            );
            mcp.close();
            (banana, good)
        }
    })
    .await
    .unwrap();
    let (text, is_error) = result(&banana);
    assert!(is_error, "{text}");
    assert!(
        text.contains("banana_9_9") && text.contains("square_1_1"),
        "{text}"
    );
    let (text, is_error) = result(&good);
    assert!(!is_error, "{text}");
    let out: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(out["charge"], "0.004 USD", "{out}");
    let path = out["outputs"][0]["path"].as_str().unwrap();
    let url = out["outputs"][0]["url"].as_str().unwrap();
    assert_eq!(
        std::fs::read(path).unwrap(),
        fake.media(url).unwrap().to_vec()
    );
    assert_eq!(
        fake.request_counts()["POST /generate"],
        1,
        "the refused value sent nothing"
    );
    let sent = fake.generations();
    assert_eq!(sent[0].params["aspect_ratio"], "landscape_16_9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_file_spelled_two_ways_at_once_is_one_upload_and_one_run() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(2).completes();
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let (a, b) = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start(&served, &root, &args());
            let absolute = root.join("inputs/face.png").display().to_string();
            mcp.send(call(
                1,
                "run_cctv-cam",
                json!({"input_image": "inputs/face.png"}),
            ));
            mcp.send(call(2, "run_cctv-cam", json!({"input_image": absolute})));
            let (a, _) = mcp.answer(1);
            let (b, _) = mcp.answer(2);
            mcp.close();
            (a, b)
        }
    })
    .await
    .unwrap();
    assert!(!result(&a).1 && !result(&b).1, "{a} {b}");
    assert_eq!(runs(&fake), 1, "{:?}", fake.request_counts());
    assert_eq!(uploads(&fake), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_timed_out_is_answered_again_from_its_run_not_paid_twice() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(2).completes();
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let mut quick = args();
    quick.extend(["--call-timeout", "1"]);
    let (first, again) = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start(&served, &root, &quick);
            let arguments = json!({"input_image": "https://example.com/face.png"});
            let (first, _) = mcp.call(1, "run_cctv-cam", arguments.clone());
            // The agent asks again once the run has ended.
            std::thread::sleep(Duration::from_secs(8));
            let (again, _) = mcp.call(2, "run_cctv-cam", arguments);
            mcp.close();
            (first, again)
        }
    })
    .await
    .unwrap();
    let first: Value = serde_json::from_str(&result(&first).0).unwrap();
    assert_eq!(first["status"], "running", "{first}");
    let (text, is_error) = result(&again);
    assert!(!is_error, "{text}");
    let again: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(again["run_id"], first["run_id"], "{again}");
    assert_eq!(again["status"], "completed");
    assert_eq!(runs(&fake), 1, "{:?}", fake.request_counts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_that_do_not_exist_never_widen_reading_to_the_current_directory() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let answer = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start_with_roots(
                &served,
                &root,
                &["--schemas", "schemas", "--download", "out"],
                Some(vec!["file:///nonexistent/floret-root".to_owned()]),
            );
            let (answer, _) =
                mcp.call(1, "run_cctv-cam", json!({"input_image": "inputs/face.png"}));
            mcp.close();
            answer
        }
    })
    .await
    .unwrap();
    let (text, is_error) = result(&answer);
    assert!(
        is_error && text.contains("outside the directories"),
        "{text}"
    );
    assert_eq!(runs(&fake), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_split_by_an_escape_in_a_schema_never_reaches_tools_list() {
    let fake = FakeFlora::new();
    let served = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let schemas = dir.path().join("schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    let (head, tail) = KEY.split_at(10);
    let split = format!("{head}\u{1b}[m{tail}");
    let hostile = json!({
        "technique_id": "tech_h", "slug": "hostile", "name": format!("Name {split}"),
        "description": format!("desc {split}"), "run_cost": 0.1,
        "inputs": [{"id": "photo", "name": format!("Photo {split}"), "type": "imageUrl"}],
        "outputs": []
    });
    std::fs::write(schemas.join("hostile.json"), hostile.to_string()).unwrap();
    let (listed, seen, err) = tokio::task::spawn_blocking({
        let served = served.base_url();
        let dir = dir.path().to_path_buf();
        move || {
            let mut mcp = Mcp::start(&served, &dir, &["--schemas", "schemas"]);
            mcp.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
            let (answer, _) = mcp.answer(1);
            let (_, seen, err) = mcp.close();
            (answer, seen, err)
        }
    })
    .await
    .unwrap();
    let text = listed.to_string();
    assert!(text.contains("run_hostile"), "{text}");
    assert!(
        text.contains(flora_api::REDACTED),
        "the key, whole once the escape is stripped, is redacted: {text}"
    );
    let decoded = |s: &str| {
        s.replace("\\u001b[m", "")
            .replace('\u{1b}', "")
            .replace("[m", "")
    };
    for line in seen.iter().chain([&err, &text]) {
        assert!(!decoded(line).contains(KEY), "the key leaked: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_that_reports_a_charge_is_booked_in_cost_so_far() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>()
        .charges(0.03)
        .fails("model_timeout", "the model timed out");
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let (failed, cost) = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start(&served, &root, &args());
            let (failed, _) = mcp.call(
                1,
                "run_cctv-cam",
                json!({"input_image": "https://example.com/face.png"}),
            );
            let (cost, _) = mcp.call(2, "cost_so_far", json!({}));
            mcp.close();
            (failed, cost)
        }
    })
    .await
    .unwrap();
    let (text, is_error) = result(&failed);
    assert!(is_error && text.contains("model_timeout"), "{text}");
    let cost: Value = serde_json::from_str(&result(&cost).0).unwrap();
    assert_eq!(cost["charged_usd"], json!(0.03), "{cost}");
    assert_eq!(cost["in_flight_usd"], json!(0.0), "{cost}");
}

/// What a client that takes MCP tasks (SEP-2663) declares.
fn takes_tasks() -> Value {
    json!({"extensions": {"io.modelcontextprotocol/tasks": {}}})
}

/// Polls `tasks/get` for `task_id` until the task is terminal; the last answer.
fn poll_task(mcp: &mut Mcp, mut id: u64, task_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        id += 1;
        mcp.send(json!({
            "jsonrpc": "2.0", "id": id, "method": "tasks/get", "params": {"taskId": task_id}
        }));
        let (answer, _) = mcp.answer(id);
        let status = answer["result"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if ["completed", "failed", "cancelled"].contains(&status.as_str()) {
            return answer;
        }
        assert_eq!(status, "working", "{answer}");
        assert!(Instant::now() < deadline, "the task never ended: {answer}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_takes_tasks_gets_a_task_at_once_and_polls_it_to_the_saved_result() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(3).completes();
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let (created, done, seen) = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start_with(&served, &root, &args(), None, takes_tasks());
            let face = root.join("inputs/face.png").display().to_string();
            let (created, _) = mcp.call(1, "run_cctv-cam", json!({"input_image": face}));
            let task_id = created["result"]["taskId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let done = poll_task(&mut mcp, 100, &task_id);
            let (_, seen, _) = mcp.close();
            (created, done, seen)
        }
    })
    .await
    .unwrap();
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    assert_eq!(created["result"]["status"], "working", "{created}");
    let done = &done["result"];
    assert_eq!(done["status"], "completed", "{done}");
    let text = done["result"]["content"][0]["text"].as_str().unwrap();
    assert_ne!(done["result"]["isError"], json!(true), "{text}");
    let out: Value = serde_json::from_str(text).unwrap();
    assert_eq!(out["status"], "completed", "{out}");
    let (url, path) = (
        out["outputs"][0]["url"].as_str().unwrap(),
        out["outputs"][0]["path"].as_str().unwrap(),
    );
    assert_eq!(
        std::fs::read(path).unwrap(),
        fake.media(url).unwrap().to_vec()
    );
    assert_eq!(
        (uploads(&fake), runs(&fake)),
        (1, 1),
        "{:?}",
        fake.request_counts()
    );
    assert!(seen.iter().all(|l| !l.contains(KEY)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_task_leaves_its_run_going_and_the_same_call_again_gets_it_unpaid() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(2).completes();
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let (cancelled, again) = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start_with(&served, &root, &args(), None, takes_tasks());
            let arguments = json!({"input_image": "https://example.com/face.png"});
            let (created, _) = mcp.call(1, "run_cctv-cam", arguments.clone());
            let task_id = created["result"]["taskId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            mcp.send(json!({
                "jsonrpc": "2.0", "id": 2, "method": "tasks/cancel", "params": {"taskId": task_id}
            }));
            let (ack, _) = mcp.answer(2);
            assert!(ack.get("result").is_some(), "{ack}");
            let cancelled = poll_task(&mut mcp, 10, &task_id);
            // The run goes on; the agent asks again once it has ended.
            std::thread::sleep(Duration::from_secs(8));
            let (created, _) = mcp.call(50, "run_cctv-cam", arguments);
            let again = match created["result"]["taskId"].as_str() {
                Some(t) => {
                    let t = t.to_owned();
                    poll_task(&mut mcp, 60, &t)["result"]["result"].clone()
                }
                None => created["result"].clone(),
            };
            mcp.close();
            (cancelled, again)
        }
    })
    .await
    .unwrap();
    assert_eq!(cancelled["result"]["status"], "cancelled", "{cancelled}");
    let text = again["content"][0]["text"].as_str().unwrap_or_default();
    let out: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {again}"));
    assert_eq!(out["status"], "completed", "{out}");
    assert!(std::path::Path::new(out["outputs"][0]["path"].as_str().unwrap()).exists());
    assert_eq!(runs(&fake), 1, "{:?}", fake.request_counts());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_or_sigterm_ends_an_idle_server_with_stdin_still_open() {
    for signal in ["-INT", "-TERM"] {
        ends_on(signal).await;
    }
}

#[cfg(unix)]
async fn ends_on(signal: &'static str) {
    let fake = FakeFlora::new();
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let (status, waited) = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start(&served, &root, &args());
            let pid = mcp.child.id().to_string();
            let sent = std::process::Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap();
            assert!(sent.success());
            let started = Instant::now();
            let status = loop {
                if let Some(s) = mcp.child.try_wait().unwrap() {
                    break Some(s);
                }
                if started.elapsed() > Duration::from_secs(15) {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let _ = mcp.child.kill();
            (status, started.elapsed())
        }
    })
    .await
    .unwrap();
    let status = status.unwrap_or_else(|| panic!("still running {waited:?} after {signal}"));
    assert_eq!(status.code(), Some(130), "{signal}: {status:?}");
}

/// The task id of a `tools/call` answered as a task.
fn task_id(created: &Value) -> String {
    created["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("not a task: {created}"))
        .to_owned()
}

/// The run id in a tool result (a `tools/call` answer's or a completed task's `result`).
fn run_id_of(result: &Value) -> String {
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {result}"));
    v["run_id"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_one_task_received_is_not_given_again_when_another_was_cancelled() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(2).completes();
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let (first, later) = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start_with(&served, &root, &args(), None, takes_tasks());
            let arguments = json!({"input_image": "https://example.com/face.png"});
            let (a, _) = mcp.call(1, "run_cctv-cam", arguments.clone());
            let (b, _) = mcp.call(2, "run_cctv-cam", arguments.clone());
            let (a, b) = (task_id(&a), task_id(&b));
            mcp.send(json!({
                "jsonrpc": "2.0", "id": 3, "method": "tasks/cancel", "params": {"taskId": a}
            }));
            mcp.answer(3);
            let done = poll_task(&mut mcp, 10, &b);
            assert_eq!(done["result"]["status"], "completed", "{done}");
            let first = run_id_of(&done["result"]["result"]);
            // B received the result: the same call now is a new run, on purpose.
            let (c, _) = mcp.call(50, "run_cctv-cam", arguments);
            let later = poll_task(&mut mcp, 60, &task_id(&c));
            mcp.close();
            (first, run_id_of(&later["result"]["result"]))
        }
    })
    .await
    .unwrap();
    assert_ne!(
        first, later,
        "a new call after a delivered result is a new run"
    );
    assert_eq!(runs(&fake), 2, "{:?}", fake.request_counts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_edited_after_a_cancelled_call_is_uploaded_and_run_again() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(1).completes();
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start_with(&served, &root, &args(), None, takes_tasks());
            let face = root.join("inputs/face.png");
            let arguments = json!({"input_image": face.display().to_string()});
            let (a, _) = mcp.call(1, "run_cctv-cam", arguments.clone());
            let a = task_id(&a);
            mcp.send(json!({
                "jsonrpc": "2.0", "id": 2, "method": "tasks/cancel", "params": {"taskId": a}
            }));
            mcp.answer(2);
            std::fs::write(&face, common::png(64, 9)).unwrap();
            // The first run ends meanwhile; its result is kept for the unedited file only.
            std::thread::sleep(Duration::from_secs(6));
            let (b, _) = mcp.call(10, "run_cctv-cam", arguments);
            let done = poll_task(&mut mcp, 20, &task_id(&b));
            assert_eq!(done["result"]["status"], "completed", "{done}");
            mcp.close();
        }
    })
    .await
    .unwrap();
    assert_eq!(uploads(&fake), 2, "{:?}", fake.request_counts());
    assert_eq!(runs(&fake), 2, "{:?}", fake.request_counts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_id_that_is_the_key_is_never_echoed_back() {
    let fake = FakeFlora::new();
    let served = fake.serve().await.unwrap();
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let (answer, seen) = tokio::task::spawn_blocking({
        let served = served.base_url();
        move || {
            let mut mcp = Mcp::start_with(&served, &root, &args(), None, takes_tasks());
            mcp.send(json!({
                "jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"taskId": KEY}
            }));
            let (answer, _) = mcp.answer(1);
            let (_, seen, _) = mcp.close();
            (answer, seen)
        }
    })
    .await
    .unwrap();
    assert!(answer.get("error").is_some(), "{answer}");
    assert!(seen.iter().all(|l| !l.contains(KEY)), "{seen:?}");
}
