//! `floret` tried as a careful user and a hostile server would: the real binary against a
//! fake FLORA on loopback that echoes the key, answers late or never, and sends hostile
//! text. One test per behaviour, named by what it pins.
#![cfg(all(feature = "cli", feature = "techniques"))]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::floret::{code, floret, interrupted, output, stderr, stdout};
use common::hostile::{self, Reply, Seen};
use flora_api::testing::FakeFlora;
use serde_json::{Value, json};

const KEY: &str = "sk_live_TRUSTSECRET_42";
const LIMIT: Duration = Duration::from_secs(60);

fn png() -> Vec<u8> {
    common::png(512, 7)
}

fn dir_with_face() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("face.png"), png()).unwrap();
    dir
}

/// A technique schema: one image input, a text input `prompt` (optional), and `outputs`.
fn schema(slug: &str, outputs: &[(&str, &str)]) -> Value {
    json!({
        "technique_id": format!("tech_{slug}"), "slug": slug, "name": "T", "run_cost": 0.05,
        "inputs": [
            {"id": "input_image", "name": "Image", "type": "imageUrl"},
            {"id": "prompt", "name": "Prompt", "type": "text", "optional": true}
        ],
        "outputs": outputs.iter().map(|(id, t)| json!({"id": id, "name": id, "type": t})).collect::<Vec<_>>()
    })
}

/// FakeFlora serving `schema`, on loopback.
async fn fake_serving(schema: &Value) -> (FakeFlora, flora_api::testing::Served) {
    let fake = FakeFlora::new();
    fake.completes_untyped(&serde_json::from_value(schema.clone()).unwrap());
    let served = fake.serve().await.unwrap();
    (fake, served)
}

fn not_found() -> Reply {
    Reply::json(
        404,
        &json!({"error": {"code": "not_found", "message": "?"}}),
    )
}

/// The `Authorization` header a request carried, echoed back as a hostile proxy would.
fn echo(req: &Seen) -> String {
    format!(
        "you sent Authorization: {}",
        req.header("authorization").unwrap_or_default()
    )
}

/// A server that serves `cctv`'s schema and answers everything else 401 with the key echoed.
async fn echoing_401() -> hostile::Hostile {
    let schema = schema("cctv", &[("output_image", "imageUrl")]);
    hostile::serve(move |req| match (req.method.as_str(), req.path()) {
        ("GET", "/techniques/cctv") => Reply::json(200, &schema),
        _ => Reply::json(
            401,
            &json!({"error": {"code": "invalid_api_key", "message": echo(req)}}),
        ),
    })
    .await
}

fn assert_no_key(o: &std::process::Output) {
    for text in [stdout(o), stderr(o)] {
        assert!(!text.contains("TRUSTSECRET"), "the key was printed: {text}");
    }
}

// --- Secrets ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_given_on_stdin_is_redacted_from_an_echoing_error_and_named_as_its_source() {
    let server = echoing_401().await;
    let dir = dir_with_face();
    for format in [None, Some("--json")] {
        let mut args = vec![
            "run",
            "cctv",
            "--input-image",
            "https://e.com/a.png",
            "--api-key-stdin",
        ];
        args.extend(format);
        let cmd = floret(&server.root(), dir.path(), None, &args);
        let o = output(cmd, Some(format!("{KEY}\n")), LIMIT).await;
        assert_eq!(code(&o), 4, "{}", stderr(&o));
        assert_no_key(&o);
        assert!(
            stderr(&o).contains("you sent Authorization: Bearer [redacted]"),
            "{}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains("--api-key-stdin"),
            "the key's source: {}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("FLORA_API_KEY)"), "{}", stderr(&o));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_with_trailing_whitespace_in_the_environment_is_redacted_as_sent() {
    let server = echoing_401().await;
    let dir = dir_with_face();
    let key = format!("{KEY} \r\n");
    let cmd = floret(
        &server.root(),
        dir.path(),
        Some(&key),
        &["run", "cctv", "--input-image", "https://e.com/a.png"],
    );
    let o = output(cmd, None, LIMIT).await;
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert_no_key(&o);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_logs_never_print_the_key_the_server_echoes() {
    let schema = schema("cctv", &[("output_image", "imageUrl")]);
    let server = hostile::serve(move |req| match (req.method.as_str(), req.path()) {
        ("GET", "/techniques/cctv") => Reply::json(200, &schema),
        // Retried (logged at DEBUG with the error), then refused.
        ("POST", _) if req.n < 4 => Reply::bytes(502, "text/plain", req.head.clone().into_bytes()),
        _ => Reply::json(
            401,
            &json!({"error": {"code": "invalid_api_key", "message": echo(req)}}),
        ),
    })
    .await;
    let dir = dir_with_face();
    for verbosity in ["-v", "-vv"] {
        let cmd = floret(
            &server.root(),
            dir.path(),
            Some(KEY),
            &[
                "run",
                "cctv",
                "--input-image",
                "https://e.com/a.png",
                verbosity,
            ],
        );
        let o = output(cmd, None, LIMIT).await;
        assert_no_key(&o);
        assert!(
            stderr(&o).contains("[redacted]"),
            "{verbosity}: {}",
            stderr(&o)
        );
    }
}

// --- Money ------------------------------------------------------------------------------

/// Ctrl-C while the POST that creates the run is in flight (the server has it and never
/// answers): exit 130, the key, and the exact command that gets the run back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_the_create_prints_the_key_and_the_command_that_resumes() {
    let schema = schema("cctv", &[("output_image", "imageUrl")]);
    let posted = Arc::new(AtomicUsize::new(0));
    let seen = posted.clone();
    let server = hostile::serve(move |req| match (req.method.as_str(), req.path()) {
        ("GET", "/techniques/cctv") => Reply::json(200, &schema),
        ("POST", "/techniques/cctv/runs") => {
            seen.fetch_add(1, Ordering::SeqCst);
            Reply::Hang
        }
        _ => not_found(),
    })
    .await;
    let dir = dir_with_face();
    let cmd = floret(
        &server.root(),
        dir.path(),
        Some(KEY),
        &[
            "run",
            "cctv",
            "--input-image",
            "https://e.com/a.png",
            "--prompt",
            "it's a cat",
        ],
    );
    let (o, took) = interrupted(cmd, move || posted.load(Ordering::SeqCst) > 0, LIMIT).await;
    assert_eq!(code(&o), 130, "{}", stderr(&o));
    assert!(took < Duration::from_secs(10), "{took:?}");
    let err = stderr(&o);
    let sent = server
        .seen()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    let key = sent.header("idempotency-key").unwrap();
    assert!(err.contains("may have created it"), "{err}");
    assert!(
        err.contains(&format!(
            "floret run cctv --input-image https://e.com/a.png --prompt 'it'\\''s a cat' \
             --idempotency-key {key}"
        )),
        "the exact, quoted command: {err}"
    );
}

/// `--idempotency-key K` repeated with a local file: the upload goes under a key of the run's
/// key and the file's content, so the second invocation sends the same body and FLORA
/// replays the run instead of refusing the key (or billing another).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_with_a_local_file_sends_the_same_body_and_pays_once() {
    let (fake, served) = fake_serving(&schema("cctv", &[("output_image", "imageUrl")])).await;
    let dir = dir_with_face();
    let args = [
        "run",
        "cctv",
        "--input-image",
        "face.png",
        "--idempotency-key",
        "order-42",
        "--json",
    ];
    let mut ids = Vec::new();
    for _ in 0..2 {
        let o = output(
            floret(&served.base_url(), dir.path(), Some(KEY), &args),
            None,
            LIMIT,
        )
        .await;
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
        ids.push(doc["run_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids[0], ids[1], "the same run");
    assert_eq!(fake.run_count(), 1, "paid once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_whose_names_clean_to_one_file_get_distinct_names_in_a_directory() {
    let (fake, served) =
        fake_serving(&schema("cctv", &[("a b", "imageUrl"), ("a?b", "imageUrl")])).await;
    let dir = dir_with_face();
    let cmd = floret(
        &served.base_url(),
        dir.path(),
        Some(KEY),
        &[
            "run",
            "cctv",
            "--input-image",
            "https://e.com/a.png",
            "--download",
            "out/",
        ],
    );
    let o = output(cmd, None, LIMIT).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fake.run_count(), 1);
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.ends_with(".png")), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_giving_two_outputs_one_file_is_refused_before_the_run() {
    let (fake, served) = fake_serving(&schema(
        "cctv",
        &[("first", "imageUrl"), ("second", "imageUrl")],
    ))
    .await;
    let dir = dir_with_face();
    for template in ["D/x.{ext}", "D/{run_id}.{ext}"] {
        let cmd = floret(
            &served.base_url(),
            dir.path(),
            Some(KEY),
            &[
                "run",
                "cctv",
                "--input-image",
                "https://e.com/a.png",
                "--download",
                template,
            ],
        );
        let o = output(cmd, None, LIMIT).await;
        assert_eq!(code(&o), 2, "{template}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("`first` and `second`"),
            "{}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("nothing was run"), "{}", stderr(&o));
    }
    assert_eq!(fake.run_count(), 0, "nothing paid");
}

/// A run whose output URL is not https completes and is paid: the failure to save it is
/// exit 7 with the run id and the command that saves again, never exit 2 ("nothing sent").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_that_cannot_be_saved_after_the_run_is_exit_7_with_the_run_and_the_save_command()
{
    let schema = schema("cctv", &[("output_image", "imageUrl")]);
    let server = hostile::serve(move |req| match (req.method.as_str(), req.path()) {
        ("GET", "/techniques/cctv") => Reply::json(200, &schema),
        ("POST", "/techniques/cctv/runs") => Reply::json(
            201,
            &json!({"run_id": "run_paid", "status": "completed", "progress": 100, "created_at": 1,
                    "charged_cost": 0.05,
                    "outputs": [{"output_id": "output_image", "type": "imageUrl",
                                 "url": "http://media.example.com/o.png"}]}),
        ),
        _ => not_found(),
    })
    .await;
    let dir = dir_with_face();
    let cmd = floret(
        &server.root(),
        dir.path(),
        Some(KEY),
        &[
            "run",
            "cctv",
            "--input-image",
            "https://e.com/a.png",
            "--download",
            "out",
        ],
    );
    let o = output(cmd, None, LIMIT).await;
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("run_paid"), "{err}");
    assert!(
        err.contains("floret wait run_paid --technique cctv --download out"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_that_cannot_be_written_are_refused_before_the_run() {
    let (fake, served) = fake_serving(&schema("cctv", &[("output_image", "imageUrl")])).await;
    let dir = dir_with_face();
    std::fs::write(dir.path().join("a-file"), "mine").unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    // An output served as another type than its slot suggests gets `.bin`: checked too.
    std::fs::write(dir.path().join("out").join("output_image.bin"), "mine").unwrap();
    for (download, why) in [
        ("a-file", "is a file"),
        ("a-file/sub/", "is a file"),
        ("a-file/{slot}.{ext}", "is a file"),
        ("out", "already exists"),
    ] {
        let cmd = floret(
            &served.base_url(),
            dir.path(),
            Some(KEY),
            &[
                "run",
                "cctv",
                "--input-image",
                "https://e.com/a.png",
                "--download",
                download,
            ],
        );
        let o = output(cmd, None, LIMIT).await;
        assert_eq!(code(&o), 2, "{download}: {}", stderr(&o));
        assert!(stderr(&o).contains(why), "{download}: {}", stderr(&o));
    }
    assert_eq!(fake.run_count(), 0, "nothing paid");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a-file")).unwrap(),
        "mine"
    );
}

// --- Terminal and shell safety ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_text_reaches_the_terminal_without_escapes_or_bidi_and_commands_are_quoted() {
    let schema = schema("cctv", &[("output_image", "imageUrl")]);
    let hostile_id = "run_1; touch /tmp/floret-pwned #\u{1b}[2J\u{202E}";
    let server = hostile::serve(move |req| match (req.method.as_str(), req.path()) {
        ("GET", "/techniques/cctv") => Reply::json(200, &schema),
        ("POST", "/techniques/cctv/runs") => Reply::json(
            201,
            &json!({"run_id": hostile_id, "status": "pending", "progress": 0, "created_at": 1}),
        ),
        ("GET", _) => Reply::json(
            200,
            &json!({"run_id": hostile_id, "status": "failed", "progress": 100, "created_at": 1,
                    "error_code": "safety_blocked\u{1b}]8;;https://evil\u{7}",
                    "error_message": "no\u{1b}[31m \u{202E}gpj.exe"}),
        ),
        _ => not_found(),
    })
    .await;
    let dir = dir_with_face();
    for extra in [&["--no-wait"][..], &[], &["--json"], &["--jsonl"]] {
        let mut args = vec!["run", "cctv", "--input-image", "https://e.com/a.png"];
        args.extend(extra);
        let o = output(
            floret(&server.root(), dir.path(), Some(KEY), &args),
            None,
            LIMIT,
        )
        .await;
        for text in [stdout(&o), stderr(&o)] {
            assert!(
                !text.contains('\u{1b}'),
                "{extra:?}: escape printed: {text:?}"
            );
            assert!(
                !text.contains('\u{202E}'),
                "{extra:?}: bidi printed: {text:?}"
            );
            assert!(!text.contains('\u{7}'), "{extra:?}: BEL printed: {text:?}");
        }
        if extra == ["--no-wait"] {
            assert!(
                stderr(&o).contains("floret wait 'run_1; touch /tmp/floret-pwned #"),
                "quoted: {}",
                stderr(&o)
            );
        }
    }
}

// --- Exit codes, JSON, signals, bounds ----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_in_json_mode_are_one_json_object() {
    let (_fake, served) = fake_serving(&schema("cctv", &[("output_image", "imageUrl")])).await;
    let dir = dir_with_face();
    for args in [
        &["run", "cctv", "--json"][..],
        &[
            "run",
            "cctv",
            "--json",
            "--input-image",
            "face.png",
            "--bogus",
        ],
        &[
            "run",
            "cctv",
            "--json",
            "--input-image",
            "a.png",
            "--input-image",
            "b.png",
        ],
        &["techniques", "--json", "--bogus"],
    ] {
        let o = output(
            floret(&served.base_url(), dir.path(), Some(KEY), args),
            None,
            LIMIT,
        )
        .await;
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        let err: Value = serde_json::from_str(stderr(&o).trim())
            .unwrap_or_else(|e| panic!("{args:?}: not one JSON object ({e}): {}", stderr(&o)));
        assert_eq!(err["exit"], 2);
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
}

/// Ctrl-C while an output downloads: floret stops at once, exit 130, no partial file, and
/// the command that saves the outputs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_a_download_stops_promptly_and_leaves_no_partial_file() {
    let schema = schema("cctv", &[("output_image", "imageUrl")]);
    let media = hostile::serve(|_| Reply::Stall {
        head: "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000".to_owned(),
        body: png(),
    })
    .await;
    let media_url = format!("{}/o.png", media.base);
    let server = hostile::serve(move |req| match (req.method.as_str(), req.path()) {
        ("GET", "/techniques/cctv") => Reply::json(200, &schema),
        ("POST", "/techniques/cctv/runs") => Reply::json(
            201,
            &json!({"run_id": "run_9", "status": "completed", "progress": 100, "created_at": 1,
                    "outputs": [{"output_id": "output_image", "type": "imageUrl", "url": media_url}]}),
        ),
        _ => not_found(),
    })
    .await;
    let dir = dir_with_face();
    let cmd = floret(
        &server.root(),
        dir.path(),
        Some(KEY),
        &[
            "run",
            "cctv",
            "--input-image",
            "https://e.com/a.png",
            "--download",
            "out",
        ],
    );
    let started = Arc::new(media);
    let m = started.clone();
    let (o, took) = interrupted(cmd, move || !m.seen().is_empty(), LIMIT).await;
    assert_eq!(code(&o), 130, "{}", stderr(&o));
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        stderr(&o).contains("floret wait run_9 --technique cctv --download out"),
        "{}",
        stderr(&o)
    );
    let left: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_into_a_closed_pipe_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = floret(
        "http://127.0.0.1:9",
        dir.path(),
        None,
        &["completions", "bash"],
    );
    let o = tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Like `| head -1`: the reader goes away at once.
        drop(child.stdout.take());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_ne!(code(&o), 101, "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

/// `--timeout` bounds the whole command: a create the server never answers ends at the
/// timeout (exit 6) with the key and the command that resumes, in floret's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_bounds_a_create_that_never_answers() {
    let schema = schema("cctv", &[("output_image", "imageUrl")]);
    let server = hostile::serve(move |req| match (req.method.as_str(), req.path()) {
        ("GET", "/techniques/cctv") => Reply::json(200, &schema),
        ("POST", _) => Reply::Hang,
        _ => not_found(),
    })
    .await;
    let dir = dir_with_face();
    let started = std::time::Instant::now();
    let cmd = floret(
        &server.root(),
        dir.path(),
        Some(KEY),
        &[
            "run",
            "cctv",
            "--input-image",
            "https://e.com/a.png",
            "--timeout",
            "2s",
        ],
    );
    let o = output(cmd, None, LIMIT).await;
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let err = stderr(&o);
    assert!(err.contains("--idempotency-key"), "{err}");
    assert!(!err.contains("ClientBuilder"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_after_the_slug_logs_requests() {
    let (_fake, served) = fake_serving(&schema("cctv", &[("output_image", "imageUrl")])).await;
    let dir = dir_with_face();
    let cmd = floret(
        &served.base_url(),
        dir.path(),
        Some(KEY),
        &["run", "cctv", "--input-image", "https://e.com/a.png", "-v"],
    );
    let o = output(cmd, None, LIMIT).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("run started"), "{}", stderr(&o));
    assert!(stderr(&o).contains("timings"), "{}", stderr(&o));
}

/// Messages speak floret (flags and commands), never the library (`ClientBuilder::…`,
/// `Upload::bytes`, "pass None", `cargo xtask`, `client.…`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_speak_floret_not_the_library() {
    let (fake, served) = fake_serving(&schema("cctv", &[("output_image", "imageUrl")])).await;
    let dir = dir_with_face();
    std::fs::write(dir.path().join("notes.png"), "not a picture").unwrap();
    let cases: [&[&str]; 4] = [
        &[
            "run",
            "cctv",
            "--input-image",
            "face.png",
            "--idempotency-key",
            "",
        ],
        &["run", "cctv", "--input-image", "notes.png"],
        &["run", "no-such-tech", "--input-image", "face.png"],
        &["wait", "run_nope", "--technique", "cctv"],
    ];
    for args in cases {
        let o = output(
            floret(&served.base_url(), dir.path(), Some(KEY), args),
            None,
            LIMIT,
        )
        .await;
        let err = stderr(&o);
        for library in [
            "::",
            "client.",
            "cargo xtask",
            "pass None",
            "UploadOptions",
            "FakeFlora",
        ] {
            assert!(!err.contains(library), "{args:?} says `{library}`: {err}");
        }
        match args[1] {
            "no-such-tech" => {
                assert_eq!(code(&o), 2, "{err}");
                assert!(err.contains("floret techniques"), "{err}");
            }
            "run_nope" => {
                assert_eq!(code(&o), 1, "{err}");
                assert!(err.contains("does not exist"), "{err}");
                assert!(!err.contains("resume"), "a 404 is final: {err}");
            }
            _ => assert_eq!(code(&o), 2, "{args:?}: {err}"),
        }
        if args[3] == "notes.png" {
            assert_eq!(
                err.matches("notes.png").count(),
                2,
                "named once as given, once as read: {err}"
            );
        }
    }
    assert_eq!(fake.run_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_values_may_start_with_a_dash_and_a_flag_given_as_a_value_is_named() {
    let (fake, served) = fake_serving(&schema("cctv", &[("output_image", "imageUrl")])).await;
    let dir = dir_with_face();
    let base = [
        "run",
        "cctv",
        "--input-image",
        "https://e.com/a.png",
        "--prompt",
    ];
    for (value, ok) in [("-5", true), ("-blurry hands", true), ("--json", false)] {
        let mut args = base.to_vec();
        args.push(value);
        let o = output(
            floret(&served.base_url(), dir.path(), Some(KEY), &args),
            None,
            LIMIT,
        )
        .await;
        if ok {
            assert_eq!(code(&o), 0, "{value}: {}", stderr(&o));
        } else {
            assert_eq!(code(&o), 2, "{value}: {}", stderr(&o));
            assert!(stderr(&o).contains("--prompt=--json"), "{}", stderr(&o));
        }
    }
    assert_eq!(fake.run_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_repeats_one_page_under_new_cursors_ends_promptly() {
    let server = hostile::serve(|req| match req.path() {
        "/techniques" => Reply::json(
            200,
            &json!({"techniques": [schema("same", &[("o", "imageUrl")])],
                    "meta": {"next_cursor": format!("c{}", req.n)}}),
        ),
        _ => not_found(),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let o = output(
        floret(&server.root(), dir.path(), Some(KEY), &["techniques"]),
        None,
        LIMIT,
    )
    .await;
    assert_ne!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("does not seem to end"),
        "{}",
        stderr(&o)
    );
    assert!(server.seen().len() <= 5, "{} pages", server.seen().len());
}

// --- Also seen ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upper_case_https_url_is_a_url_not_a_local_path() {
    let (fake, served) = fake_serving(&schema("cctv", &[("output_image", "imageUrl")])).await;
    let dir = dir_with_face();
    let cmd = floret(
        &served.base_url(),
        dir.path(),
        Some(KEY),
        &["run", "cctv", "--input-image", "HTTPS://e.com/a.png"],
    );
    let o = output(cmd, None, LIMIT).await;
    assert!(!stderr(&o).contains("no such file"), "{}", stderr(&o));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fake.run_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_whose_ids_only_look_alike_cannot_hide_behind_two_flags() {
    let mut s = schema("cctv", &[("output_image", "imageUrl")]);
    // `prompt` in Latin letters and with a Cyrillic `о`.
    s["inputs"] = json!([
        {"id": "prompt", "type": "text"},
        {"id": "pr\u{43e}mpt", "type": "text"}
    ]);
    let (fake, served) = fake_serving(&s).await;
    let dir = dir_with_face();
    let o = output(
        floret(
            &served.base_url(),
            dir.path(),
            Some(KEY),
            &["run", "cctv", "--help"],
        ),
        None,
        LIMIT,
    )
    .await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("would both be the flag --prompt"),
        "{}",
        stderr(&o)
    );
    assert_eq!(fake.run_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_killed_save_are_cleaned_at_the_next_run() {
    let (_fake, served) = fake_serving(&schema("cctv", &[("output_image", "imageUrl")])).await;
    let dir = dir_with_face();
    let out = dir.path().join("out");
    let stale = out.join(".flora-save-dead");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join(".flora-download-x.part"), "half").unwrap();
    let fresh = out.join(".flora-save-live");
    std::fs::create_dir_all(&fresh).unwrap();
    // An hour old: a killed process's.
    for p in [&stale.join(".flora-download-x.part"), &stale] {
        let ok = std::process::Command::new("touch")
            .args(["-d", "2 hours ago"])
            .arg(p)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let cmd = floret(
        &served.base_url(),
        dir.path(),
        Some(KEY),
        &[
            "run",
            "cctv",
            "--input-image",
            "https://e.com/a.png",
            "--download",
            "out",
        ],
    );
    let o = output(cmd, None, LIMIT).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stale.exists(), "the old leftover is gone");
    assert!(
        fresh.exists(),
        "a fresh one (maybe another floret's, working) is kept"
    );
    assert!(Path::new(&out.join("output_image.png")).exists());
}

/// README's exit-code table is `floret --help`'s, line for line (both come from one table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_exit_codes_are_the_help_text() {
    let dir = tempfile::tempdir().unwrap();
    let o = output(
        floret("http://127.0.0.1:9", dir.path(), None, &["--help"]),
        None,
        LIMIT,
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let help = stdout(&o);
    let section: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Exit codes:"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(section.len() > 5, "{help}");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    assert!(
        readme.contains(&section.join("\n")),
        "README lacks the exit codes as `floret --help` prints them:\n{}",
        section.join("\n")
    );
}
