//! What a hostile server or a careless setting does to the retry policy, deadlines and the
//! key's redaction (found by a review of issue 34; each test pins the fixed behaviour).
#![cfg(all(feature = "test-util", feature = "techniques", feature = "batch"))]

mod common;

use std::time::Duration;

use common::*;
use flora_api::techniques::CctvCam;
use flora_api::testing::{FakeFlora, Fault};
use flora_api::{ImageUrl, RetryPolicy, StartOptions};
use serde_json::json;

fn face() -> ImageUrl {
    ImageUrl::parse("https://example.com/face.png").unwrap()
}

// ---------------------------------------------------------------- area 2: Instant overflow

async fn start_with_policy(fault: Fault, policy: RetryPolicy) -> String {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    fake.fail_next_creates(1, fault);
    let client = fake.client();
    let joined = tokio::spawn(async move {
        let t = CctvCam {
            input_image: face(),
        };
        client
            .start_with(&t, StartOptions::with_new_key().retry(policy))
            .await
            .map(|h| h.run_id().to_owned())
    })
    .await;
    match joined {
        Ok(r) => format!("returned {r:?}"),
        Err(e) => format!("PANICKED: {e}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_huge_retry_after_under_a_deadline_ends_the_call_without_a_panic() {
    let out = start_with_policy(
        Fault::RateLimited {
            retry_after: Duration::MAX,
        },
        RetryPolicy::default()
            .max_retry_after(Duration::MAX)
            .deadline(Duration::from_secs(30)),
    )
    .await;
    assert!(!out.starts_with("PANICKED"), "{out}");
}

#[tokio::test(start_paused = true)]
async fn a_huge_rate_limit_wait_under_a_deadline_ends_the_call_without_a_panic() {
    let out = start_with_policy(
        Fault::Status(429),
        RetryPolicy::default()
            .rate_limit_wait(Duration::MAX)
            .deadline(Duration::from_secs(30)),
    )
    .await;
    assert!(!out.starts_with("PANICKED"), "{out}");
}

#[tokio::test(start_paused = true)]
async fn a_huge_backoff_under_a_deadline_ends_the_call_without_a_panic() {
    let out = start_with_policy(
        Fault::Status(503),
        RetryPolicy::default()
            .backoff(Duration::MAX, Duration::MAX)
            .deadline(Duration::from_secs(30)),
    )
    .await;
    assert!(!out.starts_with("PANICKED"), "{out}");
}

/// The batch's shared cool-down after a `Retry-After` too long to represent: no panic, the
/// item still completes.
#[tokio::test(start_paused = true)]
async fn a_batch_cools_down_through_a_huge_retry_after_without_a_panic() {
    use flora_api::batch::{Batch, BatchOptions};
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    fake.fail_next_creates(
        1,
        Fault::RateLimited {
            retry_after: Duration::MAX,
        },
    );
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j");
    let defaults = BatchOptions::default();
    let options = BatchOptions {
        retry: defaults.retry.max_retry_after(Duration::MAX),
        ..defaults
    };
    let mut batch = Batch::new(&client, "cctv-cam", &journal);
    batch
        .push(
            "a",
            &CctvCam {
                input_image: face(),
            },
        )
        .options(options);
    let summary = batch.start().await.unwrap().run().await.unwrap();
    assert_eq!(summary.completed, 1, "{summary:?}");
}

// ---------------------------------------------------------------- area 2: deadline exceeded

/// A call with a 500 ms deadline whose in-flight permit is held by another call ends at its
/// deadline, and its request never leaves late.
#[tokio::test]
async fn a_deadline_bounds_the_wait_for_an_in_flight_permit() {
    use common::hostile::{self, Reply};
    let server = hostile::serve(|req| {
        if req.path().ends_with("/slow") {
            Reply::Hang
        } else {
            Reply::json(
                404,
                &json!({"error": {"code": "not_found", "message": "?"}}),
            )
        }
    })
    .await;
    // The busy call holds the only permit for up to 30 s: the failure mode is far from the
    // bound asserted below, whatever the machine's load.
    let client = fast(&server.base)
        .max_in_flight(1)
        .max_retries(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let busy = {
        let c = client.clone();
        tokio::spawn(async move { c.technique("slow").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let bounded =
        client.with_retry_policy(RetryPolicy::none().deadline(Duration::from_millis(500)));
    let started = std::time::Instant::now();
    let r = bounded.technique("fast").await;
    let took = started.elapsed();
    busy.abort();
    assert!(
        took < Duration::from_secs(10),
        "deadline 500 ms, the call took {took:?}: {:?}",
        r.map(|s| s.technique_id)
    );
}

/// A streamed download under a client deadline of 1 s from a host that trickles a byte every
/// 200 ms (never idle) ends at the deadline: it bounds the transfer in total, not only idleness.
#[tokio::test]
async fn a_deadline_bounds_a_streamed_download_in_total() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = common::png(60, 0);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                for b in body {
                    if sock.write_all(&[b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        }
    });
    let client = fast(&base)
        .retry_policy(RetryPolicy::none().deadline(Duration::from_secs(1)))
        .max_retries(0)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    // 60 bytes at one per 200 ms: 12 s if the deadline did not hold.
    let r = tokio::time::timeout(
        Duration::from_secs(11),
        client.download(format!("{base}/o.png"), dir.path().join("o.png")),
    )
    .await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "deadline 1 s, the download took {took:?}: {r:?}"
    );
}

// ---------------------------------------------------------------- area 1: secrets

/// A lower-case key (the documented shape, `sk_live_abc123`) written in a host in upper
/// case, percent-escaped or in full-width letters (which the URL parser turns into the key)
/// never reaches a typed output.
#[tokio::test]
async fn a_key_in_a_host_in_another_case_or_encoding_never_reaches_a_typed_output() {
    use common::hostile::{self, Reply};
    const LOWER_KEY: &str = "sk_live_abc123";
    let hosts = [
        "SK_LIVE_ABC123.example.com",
        "%73k_live_abc123.example.com",
        "\u{ff53}\u{ff4b}\u{ff3f}\u{ff4c}\u{ff49}\u{ff56}\u{ff45}\u{ff3f}\u{ff41}\u{ff42}\u{ff43}\u{ff11}\u{ff12}\u{ff13}.example.com",
    ];
    let mut leaks = Vec::new();
    for host in hosts {
        let url = format!("https://{host}/o.png");
        let body = json!({
            "run_id": "run_1", "status": "completed", "progress": 100, "created_at": 1,
            "outputs": [
                {"output_id": "output_image", "type": "imageUrl", "url": url},
                {"output_id": "caption", "type": "text", "url": "ok"}
            ]
        })
        .to_string();
        assert!(
            !body.contains('\\') && !body.contains(LOWER_KEY),
            "fast path: {body}"
        );
        let server = hostile::serve(move |req| match req.method.as_str() {
            "POST" => Reply::bytes(201, "application/json", body.clone().into_bytes()),
            _ => Reply::json(
                404,
                &json!({"error": {"code": "not_found", "message": "?"}}),
            ),
        })
        .await;
        let client = fast(&server.base).api_key(LOWER_KEY).build().unwrap();
        match client.run(&upscale()).await {
            Ok(done) => {
                let shown = format!("{} / {:?}", done.outputs.image, done.outputs);
                if shown.contains(LOWER_KEY) {
                    leaks.push(format!("{host} -> {shown}"));
                }
            }
            Err(e) => println!("{host}: refused: {e}"),
        }
    }
    assert!(
        leaks.is_empty(),
        "key in decoded values:\n{}",
        leaks.join("\n")
    );
}

/// A key split by an escaped tab in a `poll_url` (which the URL parser drops, making the key
/// whole) appears in no handle `Debug`, error or log.
#[tokio::test]
async fn a_key_split_by_an_escaped_tab_in_a_poll_url_never_comes_back_whole() {
    use common::hostile::{self, Reply};
    let (capture, _guard) = Logs::capture();

    let split = format!("{}\\t{}", &KEY[..10], &KEY[10..]);
    let server = hostile::serve(move |req| {
        let port = req.header("host").unwrap_or_default();
        match req.method.as_str() {
            "POST" => Reply::bytes(
                201,
                "application/json",
                format!(
                    r#"{{"run_id":"run_1","status":"pending","progress":0,"created_at":1,"poll_url":"http://{port}/runs/{split}"}}"#
                )
                .into_bytes(),
            ),
            _ => Reply::json(404, &json!({"error": {"code": "not_found", "message": "gone"}})),
        }
    })
    .await;
    let client = fast(&server.base).max_retries(0).build().unwrap();
    let mut handle = client.start(&upscale()).await.unwrap();
    let debug = format!("{handle:?}");
    let err = handle.wait().await.unwrap_err();
    let logs = capture.text();
    let mut leaks = Vec::new();
    for (what, text) in [
        ("handle Debug", debug),
        ("error Display", err.to_string()),
        ("error Debug", format!("{err:?}")),
        ("logs", logs),
    ] {
        if text.contains(KEY) {
            let at = text.find(KEY).unwrap();
            leaks.push(format!(
                "{what}: …{}…",
                &text[at.saturating_sub(60)..(at + KEY.len() + 10).min(text.len())]
            ));
        }
    }
    assert!(leaks.is_empty(), "key leaked:\n{}", leaks.join("\n"));
}

/// A throttled request never runs out of retries in a batch (`BatchOptions::retry`), even
/// under a policy of no retries: one 429 is outlasted and the item completes.
#[tokio::test(start_paused = true)]
async fn a_batch_with_a_no_retry_policy_still_outlasts_a_429() {
    use flora_api::batch::{Batch, BatchOptions};
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    fake.fail_next_creates(
        1,
        Fault::RateLimited {
            retry_after: Duration::from_secs(1),
        },
    );
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let mut batch = Batch::new(&client, "cctv-cam", dir.path().join("j"));
    batch
        .push(
            "a",
            &CctvCam {
                input_image: face(),
            },
        )
        .options(BatchOptions {
            retry: RetryPolicy::none(),
            ..BatchOptions::default()
        });
    let summary = batch.start().await.unwrap().run().await;
    let summary = format!("{summary:?}");
    assert!(summary.contains("completed: 1"), "{summary}");
}
