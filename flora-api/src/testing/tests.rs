//! The client's one `send` seen through the fake: connectors that wrap the fake's core to
//! slow a host down or count what is open, with a paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::core::Core;
use super::{FAKE_BASE_URL, FAKE_WORKSPACE_ID};
use crate::connector::{Connector, Origin, Sending};
use crate::{Client, Error, Upload, UploadOptions};

/// A storage host that takes the bytes of a signed upload slowly: one body chunk every
/// `per_chunk`, and once it holds `stall_after` bytes none at all; then, with the whole body,
/// it takes `answer_after` to answer (the OS took the body at once, the host reads on).
/// Everything else is the fake's.
struct SlowUploadHost {
    core: Core,
    per_chunk: Duration,
    stall_after: Option<u64>,
    answer_after: Duration,
    upload_attempts: AtomicUsize,
    /// Bytes taken in the latest attempt.
    taken: AtomicU64,
}

impl SlowUploadHost {
    fn new(per_chunk: Duration, stall_after: Option<u64>) -> Self {
        SlowUploadHost {
            core: Core::new(),
            per_chunk,
            stall_after,
            answer_after: Duration::ZERO,
            upload_attempts: AtomicUsize::new(0),
            taken: AtomicU64::new(0),
        }
    }
}

impl Connector for SlowUploadHost {
    fn send(&self, mut request: reqwest::Request, origin: Origin) -> Sending<'_> {
        Box::pin(async move {
            if origin == Origin::Foreign && request.url().path().starts_with("/media/upload/") {
                self.upload_attempts.fetch_add(1, Ordering::SeqCst);
                let mut body = request.body_mut().take().unwrap_or_default();
                let mut received = Vec::new();
                while let Some(frame) = body.frame().await {
                    let frame = frame?;
                    if let Ok(data) = frame.into_data() {
                        received.extend_from_slice(&data);
                        self.taken.store(received.len() as u64, Ordering::SeqCst);
                    }
                    if self.stall_after.is_some_and(|n| received.len() as u64 >= n) {
                        std::future::pending::<()>().await;
                    }
                    tokio::time::sleep(self.per_chunk).await;
                }
                tokio::time::sleep(self.answer_after).await;
                *request.body_mut() = Some(reqwest::Body::from(received));
            }
            Ok(self.core.handle(request).await)
        })
    }
}

fn client_with(connector: Arc<dyn Connector>, timeout: Duration, max_in_flight: usize) -> Client {
    Client::builder()
        .api_key("sk_fake_flora")
        .base_url(FAKE_BASE_URL)
        .workspace_id(FAKE_WORKSPACE_ID)
        .timeout(timeout)
        .max_in_flight(max_in_flight)
        .connector(connector)
        .build()
        .unwrap()
}

/// A 6 MiB image: over the direct-upload limit, so it takes the signed path in 12 chunks.
fn big_png() -> Upload {
    let mut bytes = vec![0u8; 6 * 1024 * 1024];
    bytes[..8].copy_from_slice(b"\x89PNG\r\n\x1a\n");
    Upload::bytes(bytes, "big.png")
}

// Was `defect_01` in its issue.
#[tokio::test(start_paused = true)]
async fn a_steady_signed_upload_longer_than_the_timeout_succeeds_in_one_attempt() {
    let host = Arc::new(SlowUploadHost::new(Duration::from_millis(400), None));
    let client = client_with(host.clone(), Duration::from_secs(1), 64);
    let start = Instant::now();
    let asset = client
        .upload(big_png(), UploadOptions::default())
        .await
        .unwrap();
    // 12 chunks (and the multipart frames) at 0.4 s each: over 5 s in all, five times the
    // per-attempt timeout, and never 1 s without a byte.
    assert!(
        start.elapsed() >= Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(host.upload_attempts.load(Ordering::SeqCst), 1);
    let url = asset.url.unwrap();
    assert_eq!(host.core.media(&url).unwrap().len(), 6 * 1024 * 1024);
}

/// An 8 MiB signed upload handed over at once (as the OS buffers it), whose host reads on
/// for 40 s before it answers, with a 20 s idle timeout: one attempt, not a stall. A host
/// that never answers fails once the answer timeout passed, naming that wait.
#[tokio::test(start_paused = true)]
async fn the_wait_for_an_uploads_answer_after_its_last_byte_is_not_a_stall() {
    let mut host = SlowUploadHost::new(Duration::ZERO, None);
    host.answer_after = Duration::from_secs(40);
    let host = Arc::new(host);
    let client = client_with(host.clone(), Duration::from_secs(20), 64);
    let mut bytes = vec![0u8; 8 * 1024 * 1024];
    bytes[..8].copy_from_slice(b"\x89PNG\r\n\x1a\n");
    let asset = client
        .upload(
            Upload::bytes(bytes.clone(), "big.png"),
            UploadOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(host.upload_attempts.load(Ordering::SeqCst), 1);
    assert_eq!(
        host.core.media(&asset.url.unwrap()).unwrap().len(),
        bytes.len()
    );

    let mut host = SlowUploadHost::new(Duration::ZERO, None);
    host.answer_after = Duration::from_secs(3600);
    let host = Arc::new(host);
    let client = Client::builder()
        .api_key("sk_fake_flora")
        .base_url(FAKE_BASE_URL)
        .workspace_id(FAKE_WORKSPACE_ID)
        .timeout(Duration::from_secs(20))
        .answer_timeout(Duration::from_secs(90))
        .max_retries(0)
        .connector(host.clone())
        .build()
        .unwrap();
    let start = Instant::now();
    let err = client
        .upload(Upload::bytes(bytes, "big.png"), UploadOptions::default())
        .await
        .unwrap_err();
    let Error::Stalled { idle, bytes, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*idle, Duration::from_secs(90), "{err}");
    assert!(*bytes >= 8 * 1024 * 1024, "{err}");
    assert!(
        start.elapsed() >= Duration::from_secs(90),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_signed_upload_fails_after_the_timeout_naming_the_host_and_bytes() {
    // The multipart head and two chunks of the file, then nothing.
    let host = Arc::new(SlowUploadHost::new(
        Duration::from_millis(100),
        Some(2 * 512 * 1024),
    ));
    let client = Client::builder()
        .api_key("sk_fake_flora")
        .base_url(FAKE_BASE_URL)
        .workspace_id(FAKE_WORKSPACE_ID)
        .timeout(Duration::from_secs(1))
        .max_retries(1)
        .connector(host.clone())
        .build()
        .unwrap();
    let start = Instant::now();
    let err = client
        .upload(big_png(), UploadOptions::default())
        .await
        .unwrap_err();
    let Error::Stalled {
        host: h,
        bytes,
        attempts,
        idle,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(h, "media.fake.invalid:443");
    assert_eq!(*attempts, 2);
    assert_eq!(*idle, Duration::from_secs(1));
    // Exactly what the host took: the multipart head and two 512 KiB chunks of the file.
    let taken = host.taken.load(Ordering::SeqCst);
    assert!(
        taken > 2 * 512 * 1024 && taken < 2 * 512 * 1024 + 1024,
        "{taken}"
    );
    assert_eq!(*bytes, taken);
    assert_eq!(host.upload_attempts.load(Ordering::SeqCst), 2);
    let text = err.to_string();
    assert!(text.contains("media.fake.invalid:443"), "{text}");
    assert!(text.contains(&format!("{taken} bytes")), "{text}");
    assert!(
        !text.contains("/media/upload/"),
        "no signed URL in messages: {text}"
    );
    // Each attempt ends one timeout after its last byte; no attempt is cut while moving.
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(err.is_retryable());
}

/// Counts requests from the moment they are sent until their answer's body is dropped.
struct CountOpen {
    core: Core,
    open: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    sent: AtomicUsize,
}

/// Decrements the open count when the answer's body is done with.
struct Closes(Arc<AtomicUsize>);

impl Drop for Closes {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Connector for CountOpen {
    fn send(&self, request: reqwest::Request, _origin: Origin) -> Sending<'_> {
        Box::pin(async move {
            let now = self.open.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            self.sent.fetch_add(1, Ordering::SeqCst);
            let closes = Closes(self.open.clone());
            // Take some time, so that requests overlap if nothing stops them.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let answer = http::Response::from(self.core.handle(request).await);
            let (head, body) = answer.into_parts();
            let body = body.into_data_stream().map(move |chunk| {
                let _held = &closes;
                chunk
            });
            Ok(reqwest::Response::from(http::Response::from_parts(
                head,
                reqwest::Body::wrap_stream(body),
            )))
        })
    }
}

// Was `defect_03` in its issue.
#[tokio::test(start_paused = true)]
async fn max_in_flight_bounds_every_request_uploads_and_downloads_included() {
    let counter = Arc::new(CountOpen {
        core: Core::new(),
        open: Arc::new(AtomicUsize::new(0)),
        most: Arc::new(AtomicUsize::new(0)),
        sent: AtomicUsize::new(0),
    });
    let client = client_with(counter.clone(), Duration::from_secs(60), 2);
    let uploads = (0..8).map(|_| client.upload(big_png(), UploadOptions::default()));
    let assets = futures_util::future::try_join_all(uploads).await.unwrap();
    // Each signed upload is four requests: create, bytes, complete, asset check.
    assert!(counter.sent.load(Ordering::SeqCst) >= 8 * 4);
    assert_eq!(
        counter.most.load(Ordering::SeqCst),
        2,
        "at most 2 open, and 2 used"
    );

    counter.most.store(0, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let downloads = assets.iter().enumerate().map(|(i, a)| {
        let url = a.url.clone().unwrap();
        let dest = dir.path().join(format!("{i}.png"));
        let client = client.clone();
        async move { client.download(url, dest).await }
    });
    futures_util::future::try_join_all(downloads).await.unwrap();
    assert_eq!(counter.most.load(Ordering::SeqCst), 2);
    assert_eq!(
        counter.open.load(Ordering::SeqCst),
        0,
        "every answer was consumed"
    );
    let saved = std::fs::read(dir.path().join("7.png")).unwrap();
    assert_eq!(saved.len(), 6 * 1024 * 1024);
}

/// A storage host that refuses the bytes with an endless error body, counting what is read.
struct EndlessRefusal {
    core: Core,
    served: Arc<AtomicU64>,
}

impl Connector for EndlessRefusal {
    fn send(&self, request: reqwest::Request, origin: Origin) -> Sending<'_> {
        Box::pin(async move {
            if origin != Origin::Foreign || !request.url().path().starts_with("/media/upload/") {
                return Ok(self.core.handle(request).await);
            }
            let served = self.served.clone();
            let endless = futures_util::stream::repeat_with(move || {
                served.fetch_add(1024, Ordering::SeqCst);
                Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 1024]))
            });
            let answer = http::Response::builder()
                .status(400)
                .body(reqwest::Body::wrap_stream(endless))
                .unwrap();
            Ok(reqwest::Response::from(answer))
        })
    }
}

/// Issue 19, defect 2: a refusing upload host's error body is read a few KiB at most, then the
/// connection is dropped (here: an endless body, which a whole read would never finish).
// Was `defect_02` in its issue.
#[tokio::test]
async fn an_upload_hosts_error_body_is_read_bounded() {
    let served = Arc::new(AtomicU64::new(0));
    let host = Arc::new(EndlessRefusal {
        core: Core::new(),
        served: served.clone(),
    });
    let client = client_with(host, Duration::from_secs(60), 64);
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        client.upload(big_png(), UploadOptions::default()),
    )
    .await
    .expect("an endless error body must not be read to its end")
    .unwrap_err();
    let Error::UploadHost { status, body, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*status, 400);
    assert!(body.len() <= 500 && body.starts_with("xxx"), "{body}");
    // The refusal is not retried (400), and renewing the target once reads one more: two
    // bodies, each cut at 4 KiB (a chunk or two of read-ahead at most).
    let read = served.load(Ordering::SeqCst);
    assert!(read <= 2 * 8 * 1024, "{read} bytes of error body read");
}

/// Issue 19, defect 16: `pending_polls(u32::MAX)` runs (and the user's wait times out), never
/// an overflow panic.
// Was `defect_16` in its issue.
#[tokio::test(start_paused = true)]
async fn pending_polls_u32_max_does_not_overflow() {
    use crate::PollPolicy;
    let fake = super::FakeFlora::new();
    let schema: crate::TechniqueSchema = serde_json::from_value(serde_json::json!({
        "technique_id": "t_1", "slug": "slow", "name": "Slow", "run_cost": 0.0,
        "inputs": [], "outputs": [{"id": "o", "type": "text"}]
    }))
    .unwrap();
    fake.completes_untyped(&schema);
    fake.core
        .add_rule("slow", super::core::Rule::completes(u32::MAX));
    let client = fake
        .client_builder()
        .poll_policy(PollPolicy::default().deadline(Duration::from_secs(20)))
        .build()
        .unwrap();
    let mut handle = client
        .start_run("slow", Vec::new(), crate::StartOptions::default())
        .await
        .unwrap();
    let err = handle.wait_run().await.unwrap_err();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err:?}");
}

/// A storage host that refuses the first `refusals` uploads with 403 (an expired target).
struct ExpiringHost {
    core: Core,
    refusals: AtomicUsize,
}

impl Connector for ExpiringHost {
    fn send(&self, request: reqwest::Request, origin: Origin) -> Sending<'_> {
        Box::pin(async move {
            let upload =
                origin == Origin::Foreign && request.url().path().starts_with("/media/upload/");
            if upload
                && self
                    .refusals
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                let answer = http::Response::builder()
                    .status(403)
                    .body(reqwest::Body::from("Request has expired"))
                    .unwrap();
                return Ok(reqwest::Response::from(answer));
            }
            Ok(self.core.handle(request).await)
        })
    }
}

/// Issue 19, defect 14: `POST /assets/{id}/retry` gives a fresh upload target, so a client
/// whose target expired uploads again and succeeds.
// Was `defect_14` in its issue.
#[tokio::test]
async fn a_renewed_target_is_fresh_and_usable() {
    let host = Arc::new(ExpiringHost {
        core: Core::new(),
        refusals: AtomicUsize::new(1),
    });
    let client = client_with(host.clone(), Duration::from_secs(60), 64);
    let asset = client
        .upload(big_png(), UploadOptions::default())
        .await
        .unwrap();
    assert_eq!(
        host.core.media(&asset.url.unwrap()).unwrap().len(),
        6 * 1024 * 1024
    );
    // A second expiry after the renewal is the caller's error to see (renewed once only).
    let host = Arc::new(ExpiringHost {
        core: Core::new(),
        refusals: AtomicUsize::new(2),
    });
    let client = client_with(host, Duration::from_secs(60), 64);
    let err = client
        .upload(big_png(), UploadOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UploadHost { status: 403, .. }),
        "{err:?}"
    );
}
