//! Files in, files out: uploads through FLORA's three paths and streamed, atomic downloads.
//! The API, the upload host and the media host are separate loopback servers.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use flora_api::{DownloadOptions, Error, ImageUrl, Upload, UploadOptions};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use common::PNG_HEAD;
const MP4_HEAD: &[u8] = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom";

/// A PNG-looking file of exactly `len` bytes (magic bytes, then a pattern).
fn png_bytes(len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    v[..PNG_HEAD.len()].copy_from_slice(PNG_HEAD);
    v
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn asset(id: &str, status: &str, url: &str) -> Value {
    json!({"asset_id": id, "status": status, "url": url, "workspace_id": "ws_test",
           "uploaded_via": "direct", "visibility": "workspace"})
}

/// The FLORA API: `GET /assets/{id}` answers `pending_upload` `pending` times, then `ready`.
async fn api_with_ready_asset(id: &str, pending: u64) -> MockServer {
    let server = MockServer::start().await;
    let ready_url = format!("https://ik.imagekit.io/flora/{id}.png");
    if pending > 0 {
        Mock::given(method("GET"))
            .and(path(format!("/assets/{id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(asset(
                id,
                "pending_upload",
                &ready_url,
            )))
            .up_to_n_times(pending)
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(format!("/assets/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(asset(id, "ready", &ready_url)))
        .mount(&server)
        .await;
    server
}

fn client(api: &MockServer) -> flora_api::Client {
    fast(&api.uri())
        .workspace_id("ws_test")
        .header("X-Team-Token", "team-secret")
        .build()
        .unwrap()
}

async fn requests(server: &MockServer, method_: &str, p: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == method_ && r.url.path() == p)
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn assert_no_flora_credentials(r: &Request) {
    assert!(r.headers.get("authorization").is_none(), "{:?}", r.headers);
    assert!(r.headers.get("x-team-token").is_none(), "{:?}", r.headers);
    assert!(
        r.headers.get("idempotency-key").is_none(),
        "{:?}",
        r.headers
    );
}

#[tokio::test]
async fn a_url_is_rehosted_with_a_json_create() {
    let api = api_with_ready_asset("asset_u", 1).await;
    Mock::given(method("POST"))
        .and(path("/assets"))
        .respond_with(ResponseTemplate::new(201).set_body_json(asset(
            "asset_u",
            "pending_upload",
            "https://ik.imagekit.io/flora/asset_u.png",
        )))
        .expect(1)
        .mount(&api)
        .await;
    let c = client(&api);
    let url: ImageUrl = c
        .upload_image(Upload::url("https://example.com/pics/face.png?sig=abc").unwrap())
        .await
        .unwrap();
    assert_eq!(url.as_str(), "https://ik.imagekit.io/flora/asset_u.png");
    let create = &requests(&api, "POST", "/assets").await[0];
    let body: Value = serde_json::from_slice(&create.body).unwrap();
    assert_eq!(body["source"], "https://example.com/pics/face.png?sig=abc");
    assert_eq!(body["workspace_id"], "ws_test");
    assert_eq!(body["file_name"], "face.png");
    assert!(create.headers.get("idempotency-key").is_some());
    assert_eq!(requests(&api, "GET", "/assets/asset_u").await.len(), 2);
}

/// A URL given where a path is expected is refused, never guessed.
#[tokio::test]
async fn a_url_string_is_not_a_path() {
    let api = MockServer::start().await;
    let err = client(&api)
        .upload_image("https://example.com/a.png")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Upload::url"), "{err}");
    assert!(api.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn files_up_to_4_mib_go_in_one_multipart_create() {
    let dir = tempfile::tempdir().unwrap();
    let exactly = png_bytes(4 * 1024 * 1024);
    let file = write_file(dir.path(), "face.png", &exactly);
    let api = api_with_ready_asset("asset_d", 0).await;
    Mock::given(method("POST"))
        .and(path("/assets"))
        .respond_with(ResponseTemplate::new(201).set_body_json(asset(
            "asset_d",
            "ready",
            "https://ik.imagekit.io/flora/asset_d.png",
        )))
        .expect(1)
        .mount(&api)
        .await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let c = client(&api);
    let url = c
        .upload_image_with(
            &file,
            UploadOptions::default()
                .progress(move |done, total| seen2.lock().unwrap().push((done, total))),
        )
        .await
        .unwrap();
    assert_eq!(url.as_str(), "https://ik.imagekit.io/flora/asset_d.png");
    let create = &requests(&api, "POST", "/assets").await[0];
    let ct = create
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(ct.starts_with("multipart/form-data"), "{ct}");
    let body = &create.body;
    assert!(find(body, b"name=\"workspace_id\"").is_some());
    assert!(
        find(body, b"name=\"source\"").is_none(),
        "no source on the direct path"
    );
    assert!(find(body, b"name=\"file\"; filename=\"face.png\"").is_some());
    assert!(find(body, b"Content-Type: image/png").is_some());
    assert!(find(body, &exactly[..64]).is_some());
    assert!(create.headers.get("authorization").is_some());
    let last = *seen.lock().unwrap().last().unwrap();
    assert_eq!(last, (exactly.len() as u64, Some(exactly.len() as u64)));
}

/// The signed path: reserve (JSON), send to the upload host (form fields first, then the
/// file, with a Content-Length), complete, poll.
struct SignedSetup {
    api: MockServer,
    host: MockServer,
}

async fn signed_setup(upload: Value, host_status: u16) -> SignedSetup {
    let host = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/upload"))
        .respond_with(ResponseTemplate::new(host_status))
        .mount(&host)
        .await;
    Mock::given(method("PUT"))
        .and(path("/put"))
        .respond_with(ResponseTemplate::new(host_status))
        .mount(&host)
        .await;
    let api = api_with_ready_asset("asset_s", 1).await;
    let mut reserved = asset(
        "asset_s",
        "pending_upload",
        "https://ik.imagekit.io/flora/asset_s.png",
    );
    for (k, v) in upload.as_object().unwrap() {
        reserved[k] = json!(
            v.as_str()
                .map(|s| s.replace("HOST", &host.uri()))
                .map_or(v.clone(), Value::String)
        );
    }
    if let Some(u) = reserved.get_mut("upload") {
        u["url"] = json!(format!("{}/upload", host.uri()));
    }
    Mock::given(method("POST"))
        .and(path("/assets"))
        .respond_with(ResponseTemplate::new(201).set_body_json(reserved))
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path("/assets/asset_s/complete"))
        .respond_with(ResponseTemplate::new(200).set_body_json(asset(
            "asset_s",
            "pending_upload",
            "https://ik.imagekit.io/flora/asset_s.png",
        )))
        .mount(&api)
        .await;
    SignedSetup { api, host }
}

#[tokio::test]
async fn larger_files_take_the_signed_path_with_fields_first_and_a_length() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = png_bytes(4 * 1024 * 1024 + 1);
    let file = write_file(dir.path(), "big.png", &bytes);
    let s = signed_setup(
        json!({"upload": {"url": "x", "method": "POST", "formFields": {"key": "k1", "policy": "p1"},
                          "fileField": "blob"}}),
        204,
    )
    .await;
    let url = client(&s.api).upload_image(file.as_path()).await.unwrap();
    assert_eq!(url.as_str(), "https://ik.imagekit.io/flora/asset_s.png");

    let reserve = &requests(&s.api, "POST", "/assets").await[0];
    let body: Value = serde_json::from_slice(&reserve.body).unwrap();
    assert_eq!(body["source"], "signed-url");
    assert_eq!(body["content_type"], "image/png");
    assert_eq!(body["file_name"], "big.png");
    let complete = &requests(&s.api, "POST", "/assets/asset_s/complete").await[0];
    let (k1, k2) = (
        reserve.headers.get("idempotency-key").unwrap(),
        complete.headers.get("idempotency-key").unwrap(),
    );
    assert_ne!(k1, k2, "each mutating call has its own key");

    let up = &requests(&s.host, "POST", "/upload").await;
    assert_eq!(up.len(), 1);
    let up = &up[0];
    assert_no_flora_credentials(up);
    let len: usize = up
        .headers
        .get("content-length")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(len, up.body.len());
    assert!(up.headers.get("transfer-encoding").is_none());
    let key = find(&up.body, b"name=\"key\"").unwrap();
    let policy = find(&up.body, b"name=\"policy\"").unwrap();
    let file_part = find(&up.body, b"name=\"blob\"; filename=\"big.png\"").unwrap();
    assert!(key < policy && policy < file_part, "fields before the file");
    let start = find(&up.body, &bytes[..64]).unwrap();
    assert_eq!(&up.body[start..start + bytes.len()], &bytes[..]);
}

#[tokio::test]
async fn an_upload_url_without_an_upload_object_is_a_put_of_the_raw_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = png_bytes(4 * 1024 * 1024 + 100);
    let file = write_file(dir.path(), "big.png", &bytes);
    let s = signed_setup(json!({"upload_url": "HOST/put"}), 200).await;
    client(&s.api).upload_image(&file).await.unwrap();
    let put = &requests(&s.host, "PUT", "/put").await[0];
    assert_no_flora_credentials(put);
    assert_eq!(
        put.headers.get("content-length").unwrap().to_str().unwrap(),
        bytes.len().to_string()
    );
    assert!(put.headers.get("transfer-encoding").is_none());
    assert_eq!(put.headers.get("content-type").unwrap(), "image/png");
    assert_eq!(put.body, bytes);
}

#[tokio::test]
async fn an_expired_target_is_renewed_once_with_retry() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "big.png", &png_bytes(4 * 1024 * 1024 + 1));
    let host = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/expired"))
        .respond_with(ResponseTemplate::new(403).set_body_string("Request has expired"))
        .expect(1)
        .mount(&host)
        .await;
    Mock::given(method("PUT"))
        .and(path("/fresh"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&host)
        .await;
    let api = api_with_ready_asset("asset_s", 0).await;
    let mut reserved = asset(
        "asset_s",
        "pending_upload",
        "https://ik.imagekit.io/flora/asset_s.png",
    );
    reserved["upload_url"] = json!(format!("{}/expired", host.uri()));
    Mock::given(method("POST"))
        .and(path("/assets"))
        .respond_with(ResponseTemplate::new(201).set_body_json(reserved.clone()))
        .mount(&api)
        .await;
    reserved["upload_url"] = json!(format!("{}/fresh", host.uri()));
    Mock::given(method("POST"))
        .and(path("/assets/asset_s/retry"))
        .respond_with(ResponseTemplate::new(200).set_body_json(reserved))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path("/assets/asset_s/complete"))
        .respond_with(ResponseTemplate::new(200).set_body_json(asset(
            "asset_s",
            "ready",
            "https://ik.imagekit.io/flora/asset_s.png",
        )))
        .mount(&api)
        .await;
    client(&api).upload_image(&file).await.unwrap();
}

#[tokio::test]
async fn a_409_on_complete_means_look_at_the_asset() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "big.png", &png_bytes(4 * 1024 * 1024 + 1));
    let host = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&host)
        .await;
    let api = api_with_ready_asset("asset_s", 0).await;
    let mut reserved = asset(
        "asset_s",
        "pending_upload",
        "https://ik.imagekit.io/flora/asset_s.png",
    );
    reserved["upload_url"] = json!(format!("{}/put", host.uri()));
    Mock::given(method("POST"))
        .and(path("/assets"))
        .respond_with(ResponseTemplate::new(201).set_body_json(reserved))
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path("/assets/asset_s/complete"))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_json(error_json("conflict", "asset already complete")),
        )
        .mount(&api)
        .await;
    let url = client(&api).upload_image(&file).await.unwrap();
    assert_eq!(url.as_str(), "https://ik.imagekit.io/flora/asset_s.png");
}

/// The create succeeds server-side, but its answer is a 500: the retry carries the same key
/// and the server (which dedupes by key) creates one asset.
#[tokio::test]
async fn a_lost_create_answer_is_retried_with_the_same_key_and_makes_one_asset() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "face.png", &png_bytes(1000));
    let api = api_with_ready_asset("asset_1", 0).await;
    let by_key: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let created = Arc::new(AtomicUsize::new(0));
    let (by_key2, created2) = (by_key.clone(), created.clone());
    Mock::given(method("POST"))
        .and(path("/assets"))
        .respond_with(move |r: &Request| {
            let key = r
                .headers
                .get("idempotency-key")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let mut m = by_key2.lock().unwrap();
            let seen = m.entry(key).or_insert(0);
            *seen += 1;
            if *seen == 1 {
                created2.fetch_add(1, Ordering::SeqCst);
                ResponseTemplate::new(500).set_body_json(error_json("internal_error", "lost"))
            } else {
                ResponseTemplate::new(201).set_body_json(asset(
                    "asset_1",
                    "ready",
                    "https://ik.imagekit.io/flora/asset_1.png",
                ))
            }
        })
        .mount(&api)
        .await;
    client(&api).upload_image(&file).await.unwrap();
    assert_eq!(created.load(Ordering::SeqCst), 1, "one asset");
    let keys = by_key.lock().unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(*keys.values().next().unwrap(), 2, "two attempts, one key");
}

async fn direct_api(final_asset: Value) -> MockServer {
    let api = MockServer::start().await;
    let id = final_asset["asset_id"].as_str().unwrap().to_owned();
    Mock::given(method("POST"))
        .and(path("/assets"))
        .respond_with(ResponseTemplate::new(201).set_body_json(asset(
            &id,
            "pending_upload",
            "https://x/y.png",
        )))
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/assets/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(final_asset))
        .mount(&api)
        .await;
    api
}

#[tokio::test]
async fn a_failed_asset_is_a_typed_error_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "face.png", &png_bytes(1000));
    let mut failed = asset("asset_f", "failed", "https://x/y.png");
    failed["failure_message"] = json!("image is larger than 150 MP");
    let api = direct_api(failed).await;
    match client(&api).upload_image(&file).await.unwrap_err() {
        Error::AssetFailed { asset_id, message } => {
            assert_eq!(asset_id, "asset_f");
            assert_eq!(message.as_deref(), Some("image is larger than 150 MP"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_poll_timeout_names_the_last_status() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "face.png", &png_bytes(1000));
    let api = direct_api(asset("asset_t", "pending_upload", "https://x/y.png")).await;
    let err = client(&api)
        .upload_image_with(
            &file,
            UploadOptions::default().poll_deadline(Duration::from_millis(1500)),
        )
        .await
        .unwrap_err();
    match &err {
        Error::AssetTimeout {
            asset_id,
            last_status,
            ..
        } => {
            assert_eq!(asset_id, "asset_t");
            assert_eq!(last_status.as_str(), "pending_upload");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("client.asset(\"asset_t\")"),
        "{err}"
    );
    // Checked at once, then about every second.
    let polls = requests(&api, "GET", "/assets/asset_t").await.len();
    assert!((2..=3).contains(&polls), "{polls}");
}

#[tokio::test]
async fn local_problems_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let api = MockServer::start().await;
    let c = client(&api);
    let video = write_file(dir.path(), "clip.png", &[MP4_HEAD, &[0u8; 100]].concat());
    let err = c.upload_image(&video).await.unwrap_err().to_string();
    assert!(err.contains("`video/mp4`, not an image"), "{err}");
    assert!(err.contains("image/png"), "{err}");
    let missing = dir.path().join("nope.png");
    let err = c.upload_image(&missing).await.unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("nope.png"), "{err}");
    let empty = write_file(dir.path(), "empty.png", b"");
    let err = c.upload_image(&empty).await.unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
    let err = c.upload_image(dir.path()).await.unwrap_err().to_string();
    assert!(err.contains("is a directory"), "{err}");
    let text = write_file(dir.path(), "notes.txt", b"hello");
    let err = c.upload_document(&text).await.unwrap_err().to_string();
    assert!(err.contains("text/plain"), "{err}");
    let err = c
        .upload_image(Upload::bytes(vec![1, 2, 3], "blob"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("UploadOptions::content_type"), "{err}");
    assert!(api.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_workspace_is_asked_once_when_the_key_sees_one() {
    let api = direct_api(asset(
        "asset_w",
        "ready",
        "https://ik.imagekit.io/flora/w.png",
    ))
    .await;
    Mock::given(method("GET"))
        .and(path("/workspaces"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"workspaces": [{"workspace_id": "ws_only", "name": "Only"}]}),
            ),
        )
        .expect(1)
        .mount(&api)
        .await;
    let c = fast(&api.uri()).build().unwrap();
    for _ in 0..2 {
        c.upload_image(Upload::bytes(png_bytes(100), "a.png"))
            .await
            .unwrap();
    }
    let creates = requests(&api, "POST", "/assets").await;
    assert!(find(&creates[1].body, b"ws_only").is_some());

    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/workspaces"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"workspaces": [
            {"workspace_id": "ws_a", "name": "A"}, {"workspace_id": "ws_b"}]})),
        )
        .mount(&api)
        .await;
    let err = fast(&api.uri())
        .build()
        .unwrap()
        .upload_image(Upload::bytes(png_bytes(100), "a.png"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ws_a (A), ws_b"), "{err}");
    assert!(err.contains("FLORA_WORKSPACE_ID"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Downloads

async fn media_host(bytes: Vec<u8>) -> MockServer {
    let host = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/o/result.png"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "image/png")
                .set_body_bytes(bytes),
        )
        .mount(&host)
        .await;
    Mock::given(method("GET"))
        .and(path("/o/gone.png"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&host)
        .await;
    host
}

#[tokio::test]
async fn download_streams_to_the_destination_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = png_bytes(300_000);
    let host = media_host(bytes.clone()).await;
    let api = MockServer::start().await;
    let c = client(&api);
    let url = format!("{}/o/result.png?token=t", host.uri());
    let dest = dir.path().join("out").join("result.png");
    let got = c.download(&url, &dest).await.unwrap();
    assert_eq!(got, dest);
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "an ordinary file, not owner-only");
    }
    for r in host.received_requests().await.unwrap() {
        assert_no_flora_credentials(&r);
    }
    // Into a directory: the name comes from the URL, the extension from the content type.
    let got = c.download(&url, dir.path()).await.unwrap();
    assert_eq!(got, dir.path().join("result.png"));
    // Nothing but the two files: no temporary file left.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["out", "result.png"]);
}

#[tokio::test]
async fn a_404_is_media_gone_and_never_clobbers_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let host = media_host(vec![]).await;
    let dest = write_file(dir.path(), "keep.png", b"precious");
    let err = client(&MockServer::start().await)
        .download_with(
            format!("{}/o/gone.png?sig=SECRET", host.uri()),
            &dest,
            DownloadOptions::default().overwrite(true),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MediaGone { status: 404, .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("may have expired"), "{msg}");
    assert!(msg.contains("run the technique again"), "{msg}");
    assert!(!msg.contains("SECRET"), "{msg}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"precious");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn only_https_or_loopback_http_is_downloaded() {
    let c = client(&MockServer::start().await);
    for bad in [
        "http://example.com/a.png",
        "ftp://127.0.0.1/a.png",
        "file:///etc/passwd",
    ] {
        let err = c.download(bad, "/tmp/x.png").await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{bad}: {err}");
    }
}

/// A host on the shared raw loopback server. `answer(n, head)` gives the head (status line
/// and headers, without the blank line) and the body for the `n`-th request (from 1). The
/// connection is closed after it, so a body shorter than its `Content-Length` is a cut
/// transfer. Returns the base URL and every request head, as received.
async fn raw_host(
    answer: impl Fn(usize, &str) -> (String, Vec<u8>) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let log2 = log.clone();
    let server = common::hostile::serve(move |req| {
        log2.lock().unwrap().push(req.head.clone());
        let (head, body) = answer(req.n, &req.head);
        common::hostile::Reply::Full { head, body }
    })
    .await;
    (server.base.clone(), log)
}

/// The value of header `name` (lowercase, with its colon) in a request head.
fn head_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix(name)
            .map(|v| v.trim().to_owned())
    })
}

/// A media host on a raw socket: the first answer is cut after half the body; later ones
/// honour `Range` (when `ranges`) or send everything again. With `etag`, answers name their
/// version.
async fn flaky_host(data: Vec<u8>, ranges: bool, etag: bool) -> (String, Arc<Mutex<Vec<String>>>) {
    raw_host(move |n, head| {
        let len = data.len();
        let accept = if ranges { "\r\nAccept-Ranges: bytes" } else { "" };
        let etag = if etag { "\r\nETag: \"v1\"" } else { "" };
        let full = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: image/png{accept}{etag}"
        );
        if n == 1 {
            return (full, data[..len / 2].to_vec());
        }
        let start = head_value(head, "range: bytes=")
            .and_then(|v| v.trim_end_matches('-').parse::<usize>().ok());
        match start {
            Some(start) if ranges => (
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{len}\r\nContent-Length: {}\r\nContent-Type: image/png{etag}",
                    len - 1,
                    len - start
                ),
                data[start..].to_vec(),
            ),
            _ => (full, data.clone()),
        }
    })
    .await
}

/// A resume continues only the same version: without an ETag or Last-Modified in the first
/// answer (nothing to send `If-Range` with), a cut download starts over instead of appending
/// whatever the host sends next.
#[tokio::test]
async fn a_download_cut_mid_body_leaves_no_partial_file_and_resumes_only_with_a_validator() {
    for (ranges, etag) in [(true, true), (true, false), (false, true)] {
        let dir = tempfile::tempdir().unwrap();
        let data = png_bytes(200_000);
        let (base, log) = flaky_host(data.clone(), ranges, etag).await;
        let dest = write_file(dir.path(), "result.png", b"old version");
        let got = client(&MockServer::start().await)
            .download_with(
                format!("{base}/o.png"),
                &dest,
                DownloadOptions::default().overwrite(true),
            )
            .await
            .unwrap();
        assert_eq!(std::fs::read(&got).unwrap(), data, "ranges: {ranges}");
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 2, "{log:?}");
        let resumed = log[1].to_ascii_lowercase().contains("range: bytes=100000-");
        assert_eq!(resumed, ranges && etag, "{}", log[1]);
        if resumed {
            assert!(log[1].to_ascii_lowercase().contains("if-range: \"v1\""));
        }
        assert!(!log[0].to_ascii_lowercase().contains("authorization"));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}

#[tokio::test]
async fn a_download_that_keeps_failing_leaves_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let host = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&host)
        .await;
    let dest = write_file(dir.path(), "result.png", b"old version");
    let err = client(&MockServer::start().await)
        .download_with(
            format!("{}/o.png", host.uri()),
            &dest,
            DownloadOptions::default().overwrite(true),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HTTP 503"), "{err}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"old version");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert_eq!(host.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn save_outputs_writes_media_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let host = media_host(png_bytes(5_000)).await;
    let api = MockServer::start().await;
    let mut done = completed_json("run_1");
    done["outputs"] = json!([
        {"output_id": "output_image", "type": "imageUrl", "url": format!("{}/o/result.png", host.uri())},
        {"output_id": "caption", "type": "text", "url": "a sharp cat"},
        {"output_id": "../escape", "type": "text", "url": "no traversal"}
    ]);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(done))
        .mount(&api)
        .await;
    let c = client(&api);
    let run = c.run(&upscale()).await.unwrap();
    let out = dir.path().join("out");
    let saved = run.save_outputs(&c, &out).await.unwrap();
    assert_eq!(
        saved,
        [
            out.join("output_image.png"),
            out.join("caption.txt"),
            out.join("_escape.txt")
        ]
    );
    assert_eq!(std::fs::read(&saved[0]).unwrap(), png_bytes(5_000));
    assert_eq!(std::fs::read_to_string(&saved[1]).unwrap(), "a sharp cat");
    assert!(!dir.path().join("escape.txt").exists());
}

// ---------------------------------------------------------------------------------------
// Issue 19: regressions, each named after its defect.

fn key_of(r: &Request) -> String {
    r.headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Defect 4: a refused direct create falls back to the signed reserve, another body, so it
/// goes under another idempotency key; retries of one request keep theirs.
// Was `defect_04` in its issue.
#[tokio::test]
async fn the_signed_fallback_has_its_own_idempotency_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "face.png", &png_bytes(1024 * 1024));
    let s = signed_setup(json!({"upload": {"url": "x", "form_fields": {}}}), 204).await;
    Mock::given(method("POST"))
        .and(path("/assets"))
        .and(wiremock::matchers::header_regex(
            "content-type",
            "^multipart/form-data",
        ))
        .respond_with(
            ResponseTemplate::new(413).set_body_json(
                json!({"error": {"code": "payload_too_large", "message": "over 4 MB"}}),
            ),
        )
        .with_priority(1)
        .mount(&s.api)
        .await;
    // The reserve is lost once (503), so it is retried: with the same key.
    Mock::given(method("POST"))
        .and(path("/assets"))
        .and(wiremock::matchers::header(
            "content-type",
            "application/json",
        ))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&s.api)
        .await;
    let c = client(&s.api);
    c.upload_image_with(&file, UploadOptions::default().idempotency_key("up-1"))
        .await
        .unwrap();
    let creates = requests(&s.api, "POST", "/assets").await;
    let keys: Vec<String> = creates.iter().map(key_of).collect();
    assert_eq!(
        keys,
        ["up-1:create", "up-1:create-signed", "up-1:create-signed"],
        "direct create, then the signed reserve and its retry"
    );
    assert!(find(&creates[0].body, b"name=\"file\"").is_some());
    let reserve: Value = serde_json::from_slice(&creates[2].body).unwrap();
    assert_eq!(reserve["source"], "signed-url");
}

/// Defect 5: every create carries the checked, normalised name and type, never the caller's
/// raw spelling beside them.
// Was `defect_05` in its issue.
#[tokio::test]
async fn creates_send_the_checked_content_type_and_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = [&b"\xff\xd8\xff\xe0\0\x10JFIF\0"[..], &[7u8; 2048]].concat();
    let file = write_file(dir.path(), "face", &jpeg);
    let api = api_with_ready_asset("asset_d", 0).await;
    Mock::given(method("POST"))
        .and(path("/assets"))
        .respond_with(ResponseTemplate::new(201).set_body_json(asset(
            "asset_d",
            "ready",
            "https://ik.imagekit.io/flora/asset_d.jpg",
        )))
        .mount(&api)
        .await;
    let c = client(&api);
    let options = UploadOptions::default()
        .content_type("image/jpg")
        .file_name("face");
    c.upload_image_with(&file, options.clone()).await.unwrap();
    let direct = &requests(&api, "POST", "/assets").await[0];
    let body = &direct.body;
    assert!(
        find(body, b"name=\"content_type\"\r\n\r\nimage/jpeg\r\n").is_some(),
        "{}",
        String::from_utf8_lossy(&body[..400.min(body.len())])
    );
    assert!(find(body, b"name=\"file_name\"\r\n\r\nface.jpg\r\n").is_some());
    assert!(
        find(body, b"image/jpg\r\n").is_none(),
        "no raw type anywhere"
    );
    assert!(
        find(body, b"\r\n\r\nface\r\n").is_none(),
        "no raw name anywhere"
    );
    assert!(find(body, b"filename=\"face.jpg\"").is_some());

    // The URL create: the same rules in JSON.
    c.upload_image_with(
        Upload::url("https://example.com/pics/face").unwrap(),
        options,
    )
    .await
    .unwrap();
    let url_create: Value =
        serde_json::from_slice(&requests(&api, "POST", "/assets").await[1].body).unwrap();
    assert_eq!(url_create["content_type"], "image/jpeg");
    assert_eq!(url_create["file_name"], "face.jpg");
}

/// Defect 6: a FIFO (or any non-regular file) is refused at once, before it is opened.
// Was `defect_06` in its issue.
#[cfg(unix)]
#[tokio::test]
async fn a_fifo_is_refused_promptly_not_read_forever() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.png");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let api = MockServer::start().await;
    let c = client(&api);
    let err = tokio::time::timeout(Duration::from_secs(10), c.upload_image(&fifo))
        .await
        .expect("a FIFO upload must not hang")
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert!(api.received_requests().await.unwrap().is_empty());
}

/// A media host whose resource changes from `v1` to `v2` after the first answer (cut in the
/// middle). `honours_if_range`: a range asked with a stale `If-Range` gets all of `v2`;
/// otherwise the host ignores `If-Range` and sends the range of `v2` (with its new ETag).
async fn changing_host(
    v1: Vec<u8>,
    v2: Vec<u8>,
    honours_if_range: bool,
) -> (String, Arc<Mutex<Vec<String>>>) {
    raw_host(move |n, head| {
        let common = "Accept-Ranges: bytes\r\nContent-Type: image/png";
        if n == 1 {
            let len = v1.len();
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nETag: \"v1\"\r\n{common}");
            return (head, v1[..len / 2].to_vec());
        }
        let len = v2.len();
        let start = head_value(head, "range: bytes=")
            .and_then(|v| v.trim_end_matches('-').parse::<usize>().ok());
        let stale = head_value(head, "if-range:").is_some_and(|v| v != "\"v2\"");
        let (status, body, range) = match start {
            Some(s) if !(honours_if_range && stale) => (
                "206 Partial Content",
                &v2[s..],
                format!("Content-Range: bytes {s}-{}/{len}\r\n", len - 1),
            ),
            _ => ("200 OK", &v2[..], String::new()),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{range}ETag: \"v2\"\r\n{common}",
            body.len()
        );
        (head, body.to_vec())
    })
    .await
}

/// Defect 8: a resumed range must be of the same version: `If-Range` with the first answer's
/// ETag, and a 206 of another version restarts from byte 0. Never v1's half glued to v2's.
// Was `defect_08` in its issue.
#[tokio::test]
async fn a_resume_never_splices_two_versions() {
    for honours in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let v1 = png_bytes(200_000);
        let v2: Vec<u8> = v1.iter().map(|b| b.wrapping_add(1)).collect();
        let (base, log) = changing_host(v1, v2.clone(), honours).await;
        let got = client(&MockServer::start().await)
            .download(format!("{base}/o.png"), dir.path().join("o.png"))
            .await
            .unwrap();
        assert!(
            std::fs::read(&got).unwrap() == v2,
            "honours If-Range: {honours}"
        );
        let log = log.lock().unwrap();
        let second = log[1].to_ascii_lowercase();
        assert!(second.contains("range: bytes=100000-"), "{second}");
        assert!(second.contains("if-range: \"v1\""), "{second}");
        // A host that ignores If-Range sent v2's range: refused, then all of v2 from byte 0.
        assert_eq!(log.len(), if honours { 2 } else { 3 }, "{log:?}");
    }
}

/// Defect 9: only a 200 answers a plain GET; a 206 to it is never saved as the whole file.
// Was `defect_09` in its issue.
#[tokio::test]
async fn a_206_to_a_plain_get_is_not_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let host = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(206)
                .insert_header("content-range", "bytes 0-99/1000")
                .insert_header("content-type", "image/png")
                .set_body_bytes(png_bytes(100)),
        )
        .mount(&host)
        .await;
    let dest = dir.path().join("o.png");
    let err = client(&MockServer::start().await)
        .download(format!("{}/o.png", host.uri()), &dest)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Download { .. }), "{err:?}");
    assert!(err.to_string().contains("206"), "{err}");
    assert!(!dest.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Defect 10: downloads ask for `identity`, and encoded bytes are refused, never saved as
/// the media.
// Was `defect_10` in its issue.
#[tokio::test]
async fn downloads_ask_for_identity_and_refuse_encoded_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let host = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-encoding", "gzip")
                .insert_header("content-type", "image/png")
                .set_body_bytes(b"\x1f\x8b\x08\0\0\0\0\0".to_vec()),
        )
        .mount(&host)
        .await;
    let dest = dir.path().join("o.png");
    let err = client(&MockServer::start().await)
        .download(format!("{}/o.png", host.uri()), &dest)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`gzip`-encoded"), "{err}");
    assert!(!dest.exists());
    let asked = &host.received_requests().await.unwrap()[0];
    assert_eq!(asked.headers.get("accept-encoding").unwrap(), "identity");
}

/// Defect 7: the asset wait behaves like the run wait. Transient errors while checking (here
/// 503s that outlast `send`'s own retries) are tried again until the deadline, and the
/// deadline bounds a check that hangs.
// Was `defect_07` in its issue.
#[tokio::test]
async fn the_asset_wait_retries_transient_errors_and_its_deadline_bounds_checks() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "face.png", &png_bytes(1000));
    let api = direct_api(asset("asset_w", "ready", "https://x/y.png")).await;
    // Four 503s: more than one check's three attempts (`fast` has 2 retries).
    Mock::given(method("GET"))
        .and(path("/assets/asset_w"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(4)
        .with_priority(1)
        .mount(&api)
        .await;
    let url = client(&api).upload_image(&file).await.unwrap();
    assert_eq!(url.as_str(), "https://x/y.png");
    assert_eq!(requests(&api, "GET", "/assets/asset_w").await.len(), 5);

    // A check that takes 4 s (within the 5 s per-attempt timeout) against a 0.5 s deadline.
    let api = direct_api(asset("asset_h", "ready", "https://x/y.png")).await;
    Mock::given(method("GET"))
        .and(path("/assets/asset_h"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(asset("asset_h", "ready", "https://x/y.png"))
                .set_delay(Duration::from_secs(60)),
        )
        .with_priority(1)
        .mount(&api)
        .await;
    let started = std::time::Instant::now();
    let err = client(&api)
        .upload_image_with(
            &file,
            UploadOptions::default().poll_deadline(Duration::from_millis(500)),
        )
        .await
        .unwrap_err();
    // Bounded by the 0.5 s deadline, not the host's minute: generous for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    match &err {
        Error::AssetTimeout { last_status, .. } => {
            assert_eq!(
                last_status.as_str(),
                "pending_upload",
                "the create's status"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// A media host serving `bytes` at each `(path, content type)`.
async fn typed_media_host(files: &[(&str, &str)], bytes: Vec<u8>) -> MockServer {
    let host = MockServer::start().await;
    for (p, ct) in files {
        Mock::given(method("GET"))
            .and(path(*p))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", *ct)
                    .set_body_bytes(bytes.clone()),
            )
            .mount(&host)
            .await;
    }
    host
}

/// A run of `upscale()` whose outputs are `outputs` and its own two (`output_image` from
/// `image_url`, and `caption`), saved into `dir/out`.
async fn save(outputs: Value, image_url: String, dir: &Path) -> Vec<PathBuf> {
    let api = MockServer::start().await;
    let mut done = completed_json("run_1");
    let mut outputs = outputs;
    outputs
        .as_array_mut()
        .unwrap()
        .push(json!({"output_id": "output_image", "type": "imageUrl", "url": image_url}));
    outputs
        .as_array_mut()
        .unwrap()
        .push(json!({"output_id": "caption", "type": "text", "url": "a caption"}));
    done["outputs"] = outputs;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(done))
        .mount(&api)
        .await;
    let c = client(&api);
    let run = c.run(&upscale()).await.unwrap();
    run.save_outputs(&c, dir.join("out")).await.unwrap()
}

/// Defect 11: no two outputs map to one path, also when the clash appears only with the
/// extensions (a text output `notes` and a document output `notes` served as text).
// Was `defect_11` in its issue.
#[tokio::test]
async fn no_two_outputs_are_saved_to_one_path() {
    let dir = tempfile::tempdir().unwrap();
    let host = typed_media_host(
        &[("/notes", "text/plain"), ("/img", "image/png")],
        b"the document".to_vec(),
    )
    .await;
    let saved = save(
        json!([
            {"output_id": "notes", "type": "text", "url": "the text"},
            {"output_id": "notes", "type": "documentUrl", "url": format!("{}/notes", host.uri())},
            {"output_id": "Notes", "type": "text", "url": "more text"}
        ]),
        format!("{}/img", host.uri()),
        dir.path(),
    )
    .await;
    let unique: std::collections::HashSet<String> = saved
        .iter()
        .map(|p| p.to_string_lossy().to_ascii_lowercase())
        .collect();
    assert_eq!(unique.len(), 5, "{saved:?}");
    assert_eq!(std::fs::read_to_string(&saved[0]).unwrap(), "the text");
    assert_eq!(std::fs::read(&saved[1]).unwrap(), b"the document");
    assert_eq!(std::fs::read_to_string(&saved[2]).unwrap(), "more text");
    // Names that clash (also ignoring case) make every file carry its index.
    assert_eq!(saved[0].file_name().unwrap(), "notes-0.txt");
    assert_eq!(saved[2].file_name().unwrap(), "Notes-2.txt");
}

/// Defect 12: a saved output's extension is one of its kind's media extensions or `.bin`,
/// never what a host's content type would make executable or a page.
// Was `defect_12` in its issue.
#[tokio::test]
async fn an_outputs_extension_never_comes_from_a_hostile_content_type() {
    let dir = tempfile::tempdir().unwrap();
    let host = typed_media_host(
        &[
            ("/a", "application/x-msdownload"),
            ("/b", "application/hta"),
            ("/c", "text/html"),
            ("/d", "image/webp"),
            ("/e", "video/mp4"),
            ("/img", "image/png"),
        ],
        png_bytes(100),
    )
    .await;
    let u = |p: &str| format!("{}{p}", host.uri());
    let saved = save(
        json!([
            {"output_id": "a", "type": "imageUrl", "url": u("/a")},
            {"output_id": "b", "type": "imageUrl", "url": u("/b")},
            {"output_id": "c", "type": "documentUrl", "url": u("/c")},
            {"output_id": "d", "type": "imageUrl", "url": u("/d")},
            {"output_id": "e", "type": "imageUrl", "url": u("/e")}
        ]),
        u("/img"),
        dir.path(),
    )
    .await;
    let names: Vec<String> = saved
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // A video type for an image output is not the image's: neutral, too.
    assert_eq!(
        names,
        [
            "a.bin",
            "b.bin",
            "c.bin",
            "d.webp",
            "e.bin",
            "output_image.png",
            "caption.txt"
        ]
    );

    // A plain download into a directory: FLORA's media types, text, else `.bin`.
    let c = client(&MockServer::start().await);
    let got = c
        .download(u("/a"), dir.path().join("plain/"))
        .await
        .unwrap();
    assert_eq!(got.file_name().unwrap(), "a.bin");
}

/// Defect 24: a typed upload needs bytes that match an accepted type of its kind: a text file
/// named `face.png` is refused before any request, and `content_type` is the way out.
// Was `defect_24` in its issue.
#[tokio::test]
async fn a_typed_upload_needs_matching_bytes_not_just_an_extension() {
    let dir = tempfile::tempdir().unwrap();
    let api = MockServer::start().await;
    let c = client(&api);
    let text = write_file(dir.path(), "face.png", b"hello, I am not an image at all");
    let err = c.upload_image(&text).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("face.png"), "{msg}");
    assert!(msg.contains("not an image"), "{msg}");
    assert!(msg.contains("UploadOptions::content_type"), "{msg}");
    let err = c
        .upload_audio(Upload::bytes(b"not audio".to_vec(), "a.mp3"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("audio/mpeg"), "{err}");
    assert!(api.received_requests().await.unwrap().is_empty());
}

/// A download that stops moving fails with `Stalled`, naming the path and the host once each.
#[tokio::test]
async fn a_stalled_download_names_its_path_and_host_once() {
    // A head and four bytes of a promised thousand, then nothing: the connection stays idle.
    let server = common::hostile::serve(|_| common::hostile::Reply::Stall {
        head: "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000".to_owned(),
        body: b"\x89PNG".to_vec(),
    })
    .await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let client = fast("http://127.0.0.1:9")
        .timeout(Duration::from_millis(200))
        .max_retries(0)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = client
        .download(
            format!("http://{addr}/media/o.png?sig=secret"),
            dir.path().join("o.png"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Stalled { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("GET /media/o.png on {addr} made no progress")),
        "{msg}"
    );
    assert_eq!(msg.matches(&addr.to_string()).count(), 1, "{msg}");
    assert!(!msg.contains("secret"), "{msg}");
    assert!(!dir.path().join("o.png").exists());
}

// ---------------------------------------------------------------------------------------
// The library keeps the promises floret makes: bytes under a key, bounded downloads, no
// file replaced unasked.

/// A direct upload whose answer was lost is retried with the very same bytes (the multipart
/// form is encoded once: a new random boundary would be another body under the same key,
/// which FLORA refuses with `idempotency_conflict`).
#[tokio::test]
async fn a_retried_direct_upload_sends_the_very_same_bytes_under_its_key() {
    use common::hostile::{self, Reply};
    let server = hostile::serve(|req| match (req.method.as_str(), req.path()) {
        ("POST", "/assets") if req.n == 1 => Reply::Drop,
        ("POST", "/assets") | ("GET", "/assets/asset_1") => Reply::json(
            201,
            &asset(
                "asset_1",
                "ready",
                "https://ik.imagekit.io/flora/asset_1.png",
            ),
        ),
        _ => Reply::json(
            404,
            &json!({"error": {"code": "not_found", "message": "?"}}),
        ),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "face.png", &png_bytes(10_000));
    let c = fast(&server.base).workspace_id("ws_test").build().unwrap();
    let url = c.upload_image(&file).await.unwrap();
    assert_eq!(url.as_str(), "https://ik.imagekit.io/flora/asset_1.png");
    let posts: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2, "the lost answer was retried");
    assert_eq!(
        posts[0].header("idempotency-key"),
        posts[1].header("idempotency-key")
    );
    assert_eq!(
        posts[0].header("content-type"),
        posts[1].header("content-type")
    );
    assert!(posts[0].body.len() > 10_000);
    assert!(
        posts[0].body == posts[1].body,
        "another body under the same key"
    );
}

/// A host that sends a body that never ends (chunked, no length) is cut at
/// `DownloadOptions::max_bytes`, or at `deadline`: the disk is never filled, and no partial
/// file is left.
#[tokio::test]
async fn a_download_that_never_ends_is_cut_at_its_limit_and_leaves_nothing() {
    use common::hostile::{self, Reply};
    let server = hostile::serve(|_| Reply::Endless {
        head: "HTTP/1.1 200 OK\r\nContent-Type: image/png".to_owned(),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&MockServer::start().await);
    let url = format!("{}/o.png", server.base);
    let err = c
        .download_with(
            &url,
            dir.path().join("o.png"),
            DownloadOptions::default().max_bytes(1 << 20),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("more than 1048576 bytes"), "{err}");
    assert!(err.to_string().contains("max_bytes"), "{err}");
    let err = c
        .download_with(
            &url,
            dir.path().join("o.png"),
            DownloadOptions::default().deadline(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("did not finish within 300 ms"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing left"
    );
    assert_eq!(server.seen().len(), 2, "not retried: the limit is final");
}

#[tokio::test]
async fn a_download_never_replaces_a_file_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let host = media_host(png_bytes(5_000)).await;
    let dest = write_file(dir.path(), "result.png", b"mine");
    let c = client(&MockServer::start().await);
    let url = format!("{}/o/result.png", host.uri());
    let err = c.download(&url, &dest).await.unwrap_err();
    assert!(matches!(err, Error::FileExists { .. }), "{err:?}");
    assert!(
        err.to_string().contains("never replaced unless asked"),
        "{err}"
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"mine");
    assert!(
        host.received_requests().await.unwrap().is_empty(),
        "known before fetching"
    );
    // Into a directory: the name is known only from the answer; still never replaced.
    let err = c.download(&url, dir.path()).await.unwrap_err();
    assert!(matches!(err, Error::FileExists { .. }), "{err:?}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"mine");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
    // Asked: replaced.
    c.download_with(&url, &dest, DownloadOptions::default().overwrite(true))
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), png_bytes(5_000));
}

#[tokio::test]
async fn save_outputs_never_replaces_a_file_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let host = media_host(png_bytes(5_000)).await;
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mine = write_file(&out, "output_image.png", b"my own picture");
    let api = MockServer::start().await;
    let mut done = completed_json("run_1");
    done["outputs"] = json!([
        {"output_id": "output_image", "type": "imageUrl", "url": format!("{}/o/result.png", host.uri())},
        {"output_id": "caption", "type": "text", "url": "a sharp cat"},
    ]);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(done))
        .mount(&api)
        .await;
    let c = client(&api);
    let run = c.run(&upscale()).await.unwrap();
    let err = run.save_outputs(&c, &out).await.unwrap_err();
    assert!(
        matches!(&err, Error::FileExists { path } if *path == mine),
        "{err:?}"
    );
    assert_eq!(std::fs::read(&mine).unwrap(), b"my own picture");
    let saved = run
        .save_outputs_with(
            &c,
            out.to_str().unwrap(),
            flora_api::SaveOptions::default().overwrite(true),
        )
        .await
        .unwrap();
    assert_eq!(
        saved,
        [out.join("output_image.png"), out.join("caption.txt")]
    );
    assert_eq!(std::fs::read(&mine).unwrap(), png_bytes(5_000));
}
