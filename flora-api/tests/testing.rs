//! `flora_api::testing::FakeFlora` through the public API only.
#![cfg(all(feature = "test-util", feature = "techniques"))]

use std::time::{Duration, Instant};

use flora_api::techniques::{CctvCam, CctvCamOutputs};
use flora_api::testing::{FakeFlora, Fault};
use flora_api::{Error, ImageUrl, RunInput, StartOptions};

mod common;

fn face() -> ImageUrl {
    ImageUrl::parse("https://example.com/face.png").unwrap()
}

fn other_face() -> ImageUrl {
    ImageUrl::parse("https://example.com/other.png").unwrap()
}

fn out(url: &str) -> CctvCamOutputs {
    CctvCamOutputs {
        output_image: ImageUrl::parse(url).unwrap(),
    }
}

/// The user's code under test.
async fn my_pipeline(client: &flora_api::Client, face: ImageUrl) -> Result<ImageUrl, Error> {
    Ok(CctvCam { input_image: face }
        .run(client)
        .await?
        .outputs
        .output_image)
}

#[tokio::test(start_paused = true)]
async fn a_multi_poll_run_with_the_default_policy_is_instant() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>()
        .pending_polls(3)
        .returns(out("https://cdn.example.invalid/o.png"));
    let client = fake.client();
    assert_eq!(client.poll_policy(), &flora_api::PollPolicy::default());
    let wall = Instant::now();
    let got = my_pipeline(&client, face()).await.unwrap();
    let took = wall.elapsed();
    assert_eq!(got.as_str(), "https://cdn.example.invalid/o.png");
    assert!(took < Duration::from_millis(100), "{took:?}");
    assert_eq!(
        fake.runs::<CctvCam>(),
        vec![CctvCam {
            input_image: face()
        }]
    );
    // One create and 4 polls (3 pending/running, then completed).
    assert_eq!(fake.request_count(), 5);
}

#[tokio::test(start_paused = true)]
async fn later_rules_win_and_when_selects_by_typed_input() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>()
        .returns(out("https://cdn.example.invalid/any.png"));
    fake.technique::<CctvCam>()
        .when(|i: &CctvCam| i.input_image.as_str().ends_with("other.png"))
        .returns(out("https://cdn.example.invalid/other.png"));
    let client = fake.client();
    assert!(
        my_pipeline(&client, face())
            .await
            .unwrap()
            .as_str()
            .ends_with("any.png")
    );
    assert!(
        my_pipeline(&client, other_face())
            .await
            .unwrap()
            .as_str()
            .ends_with("other.png")
    );
    // A later catch-all now wins over both.
    fake.technique::<CctvCam>()
        .returns(out("https://cdn.example.invalid/last.png"));
    assert!(
        my_pipeline(&client, other_face())
            .await
            .unwrap()
            .as_str()
            .ends_with("last.png")
    );
    assert_eq!(
        fake.runs::<CctvCam>(),
        vec![
            CctvCam {
                input_image: face()
            },
            CctvCam {
                input_image: other_face()
            },
            CctvCam {
                input_image: other_face()
            }
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn fails_and_completes() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>()
        .fails("safety_blocked", "no faces today");
    let client = fake.client();
    match my_pipeline(&client, face()).await.unwrap_err() {
        Error::RunFailed { code, message, .. } => {
            assert_eq!(code.unwrap().as_str(), "safety_blocked");
            assert_eq!(message.as_deref(), Some("no faces today"));
        }
        other => panic!("{other:?}"),
    }
    fake.technique::<CctvCam>().completes();
    let url = my_pipeline(&client, face()).await.unwrap();
    assert!(url.as_str().contains(".invalid/"), "{url}");
    // Placeholder media is served by the fake, so downloads work in tests.
    let dir = tempfile::tempdir().unwrap();
    let path = client.download(&url, dir.path()).await.unwrap();
    assert_eq!(path.extension().unwrap(), "png");
    assert!(std::fs::read(&path).unwrap().starts_with(b"\x89PNG"));
}

#[tokio::test(start_paused = true)]
async fn without_a_rule_runs_are_refused_naming_the_rule_to_add() {
    let fake = FakeFlora::new();
    let err = my_pipeline(&fake.client(), face())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("`cctv-cam`"), "{err}");
    assert!(err.contains("fake.technique::<"), "{err}");
    assert_eq!(fake.run_count(), 0);

    fake.technique::<CctvCam>().when(|_| false).completes();
    let err = my_pipeline(&fake.client(), face())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no rule of technique `cctv-cam` matches"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn inputs_are_validated_like_the_real_api() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let client = fake.client();
    let err = client
        .start_run(
            "cctv-cam",
            vec![
                RunInput::new("input_imag", "imageUrl", "https://e.com/a.png"),
                RunInput::new("extra", "videoUrl", "https://e.com/a.mp4"),
            ],
            StartOptions::default(),
        )
        .await
        .unwrap_err();
    let api = err.api().unwrap();
    assert_eq!(api.status, 400);
    assert_eq!(api.code.as_str(), "input_validation_error");
    let fields: Vec<&str> = api.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(
        fields,
        ["inputs.0.id", "inputs.1.id", "input_image"],
        "{err}"
    );
    let err = client
        .start_run(
            "cctv-cam",
            vec![RunInput::new(
                "input_image",
                "videoUrl",
                "https://e.com/a.mp4",
            )],
            StartOptions::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("input `input_image` is `imageUrl`, not `videoUrl`"),
        "{err}"
    );
    assert_eq!(fake.run_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_is_replayed_by_key_and_makes_one_run() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(1).completes();
    fake.fail_next(1, Fault::LostAnswer);
    let client = fake.client();
    my_pipeline(&client, face()).await.unwrap();
    assert_eq!(fake.run_count(), 1);
    assert_eq!(fake.runs::<CctvCam>().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn injected_rate_limits_errors_and_broken_connections_are_survived() {
    for fault in [
        Fault::RateLimited {
            retry_after: Duration::from_secs(3),
        },
        Fault::Status(503),
        Fault::Connection,
    ] {
        let fake = FakeFlora::new();
        fake.technique::<CctvCam>().completes();
        fake.fail_next(2, fault.clone());
        let client = fake.client();
        my_pipeline(&client, face()).await.unwrap();
        assert_eq!(fake.run_count(), 1, "{fault:?}");
    }
    // More failures than the client retries: the error reaches the caller. A 500 may come
    // after the server created the run, so the error carries the key, and retrying with it
    // (not with a new one) is safe: here no run existed, so exactly one is made.
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    fake.fail_next(3, Fault::Status(500));
    let client = fake.client();
    let err = my_pipeline(&client, face()).await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert!(matches!(err, Error::RunMayExist { .. }), "{err:?}");
    assert_eq!(fake.run_count(), 0);
    let key = err.idempotency_key().unwrap().to_owned();
    client
        .run_with(
            &CctvCam {
                input_image: face(),
            },
            StartOptions::idempotency_key(key),
        )
        .await
        .unwrap();
    assert_eq!(fake.run_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_dynamic_layer_works_against_the_fake() {
    use futures_util::TryStreamExt;
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().pending_polls(2).completes();
    let client = fake.client();
    let schema = client.technique("cctv-cam").await.unwrap();
    assert_eq!(schema.technique_id, "tech_cctv-cam");
    let all: Vec<_> = client
        .techniques(Default::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    client.verify::<CctvCam>().await.unwrap();
    let mut handle = client
        .start_run(
            "cctv-cam",
            vec![RunInput::new("input_image", "imageUrl", face().as_str())],
            StartOptions::default(),
        )
        .await
        .unwrap();
    let first = client.get_run("cctv-cam", handle.run_id()).await.unwrap();
    assert_eq!(first.status.as_str(), "pending");
    let done = handle.wait_run().await.unwrap();
    assert_eq!(done.outputs[0].output_id, "output_image");
    assert_eq!(
        fake.runs::<CctvCam>(),
        vec![CctvCam {
            input_image: face()
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn uploads_and_downloads_keep_bytes_in_memory() {
    let fake = FakeFlora::new();
    let client = fake.client();
    let png = common::png(5 * 1024 * 1024, 7); // > 4 MiB: the signed path
    let big = client
        .upload_image(flora_api::Upload::bytes(png.clone(), "big.png"))
        .await
        .unwrap();
    assert_eq!(fake.media(big.as_str()).unwrap(), png);
    let small = client
        .upload_image(flora_api::Upload::bytes(png[..1000].to_vec(), "small.png"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = client
        .download(&small, dir.path().join("back.png"))
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), &png[..1000]);
}

#[tokio::test]
async fn serve_answers_on_a_real_socket() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let served = fake.serve().await.unwrap();
    assert!(served.base_url().starts_with("http://127.0.0.1:"));
    let body: serde_json::Value =
        reqwest::get(format!("{}/techniques/cctv-cam", served.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(body["technique_id"], "tech_cctv-cam");
    // A real client over the socket, fast polling.
    let client = flora_api::Client::builder()
        .api_key("sk_any")
        .base_url(served.base_url())
        .poll_policy(
            flora_api::PollPolicy::default()
                .initial_delay(Duration::from_millis(5))
                .interval(Duration::from_millis(5)),
        )
        .build()
        .unwrap();
    let url = my_pipeline(&client, face()).await.unwrap();
    assert!(url.as_str().starts_with("http://127.0.0.1:"), "{url}");
    let bytes = reqwest::get(url.as_str())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
}

/// Issue 19, defect 20: dropping `Served` closes the connections already open (a pooled
/// keep-alive one included), so a "server went away" test sees the server go away.
// Was `defect_20` in its issue.
#[tokio::test]
async fn dropping_served_closes_open_connections() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let served = fake.serve().await.unwrap();
    let url = format!("{}/techniques/cctv-cam", served.base_url());
    flora_api::install_crypto_provider();
    // One client, so the second request would reuse the first one's pooled connection.
    let http = reqwest::Client::new();
    let first = http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    first.bytes().await.unwrap();
    drop(served);
    let second = http.get(&url).send().await;
    assert!(
        second.is_err(),
        "a dropped server still answered: {:?}",
        second.map(|r| r.status())
    );
}

/// Issue 19, defect 15: one idempotency key with two different run bodies is refused with
/// FLORA's 422 `idempotency_conflict`; the same body is replayed as one run.
// Was `defect_15` in its issue.
#[tokio::test(start_paused = true)]
async fn one_key_for_two_bodies_is_an_idempotency_conflict() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    let client = fake.client();
    let start = |image: ImageUrl| {
        let client = client.clone();
        async move {
            client
                .start_run(
                    "cctv-cam",
                    vec![RunInput::new("input_image", "imageUrl", image.as_str())],
                    StartOptions::idempotency_key("order-1"),
                )
                .await
        }
    };
    let first = start(face()).await.unwrap();
    let again = start(face()).await.unwrap();
    assert_eq!(first.run_id(), again.run_id());
    let err = start(other_face()).await.unwrap_err();
    assert!(matches!(err, Error::Idempotency { .. }), "{err:?}");
    let api = err.api().unwrap();
    assert_eq!(
        (api.status, api.code.as_str()),
        (422, "idempotency_conflict")
    );
    assert_eq!(fake.run_count(), 1);
    assert_eq!(
        fake.runs::<CctvCam>(),
        vec![CctvCam {
            input_image: face()
        }]
    );
}

/// Issue 19, defect 22: through `fake.client()`, a host the fake does not serve is
/// unreachable (a connection error), not a 404 "the URL may have expired".
// Was `defect_22` in its issue.
#[tokio::test(start_paused = true)]
async fn a_host_the_fake_does_not_serve_is_unreachable() {
    let fake = FakeFlora::new();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let err = client
        .download(
            "https://cdn.elsewhere.invalid/o.png",
            dir.path().join("o.png"),
        )
        .await
        .unwrap_err();
    assert!(!matches!(err, Error::MediaGone { .. }), "{err:?}");
    assert!(matches!(err, Error::Download { .. }), "{err:?}");
    assert!(err.to_string().contains("connection"), "{err}");
    // The fake's own hosts still answer.
    let small = client
        .upload_image(flora_api::Upload::bytes(common::PNG_HEAD.to_vec(), "s.png"))
        .await
        .unwrap();
    client
        .download(&small, dir.path().join("back.png"))
        .await
        .unwrap();
}

/// Issue 19, defect 13: a lost answer on a signed reserve is replayed as it was, upload
/// target included, so the client's retry can upload.
// Was `defect_13` in its issue.
#[tokio::test(start_paused = true)]
async fn a_replayed_reserve_keeps_its_upload_target() {
    let fake = FakeFlora::new();
    let client = fake.client();
    let png = common::png(5 * 1024 * 1024, 7); // > 4 MiB: the signed path
    fake.fail_next(1, Fault::LostAnswer);
    let url = client
        .upload_image(flora_api::Upload::bytes(png.clone(), "big.png"))
        .await
        .unwrap();
    assert_eq!(fake.media(url.as_str()).unwrap(), png);
}

/// Issue 19, defect 19: the fake stores only the types FLORA accepts; others are refused as
/// FLORA refuses them (also when the client's own check was skipped with an explicit type).
// Was `defect_19` in its issue.
#[tokio::test(start_paused = true)]
async fn the_fake_refuses_types_flora_refuses() {
    let fake = FakeFlora::new();
    let client = fake.client();
    for len in [1_000, 5 * 1024 * 1024] {
        let mut bmp = b"BM".to_vec();
        bmp.resize(len, 0);
        let err = client
            .upload(
                flora_api::Upload::bytes(bmp, "x.bmp"),
                flora_api::UploadOptions::default().content_type("image/bmp"),
            )
            .await
            .unwrap_err();
        let api = err.api().unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!(api.status, 400, "{len}: {err}");
        assert_eq!(api.code.as_str(), "input_validation_error");
        assert!(err.to_string().contains("image/bmp"), "{err}");
    }
}

/// Issue 19, defect 17: asset URLs carry the file name percent-encoded: valid `ImageUrl`s
/// that `fake.media(url)` and downloads resolve, for names with spaces or `#`.
// Was `defect_17` in its issue.
#[tokio::test(start_paused = true)]
async fn asset_urls_percent_encode_file_names() {
    let fake = FakeFlora::new();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let png = common::PNG_HEAD.to_vec();
    for (i, (name, len)) in [
        ("IMG 0001.png", 1000),
        ("a#b.png", 1000),
        ("big one.png", 5 << 20),
    ]
    .into_iter()
    .enumerate()
    {
        let mut bytes = png.clone();
        bytes.resize(len, 9);
        let url = client
            .upload_image(flora_api::Upload::bytes(bytes.clone(), name))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!url.as_str().contains(' '), "{url}");
        assert_eq!(fake.media(url.as_str()).unwrap(), bytes, "{name}");
        let saved = client
            .download(&url, dir.path().join(format!("{i}.png")))
            .await
            .unwrap();
        assert_eq!(std::fs::read(saved).unwrap(), bytes, "{name}");
    }
}

/// Issue 19, defect 23: a registered schema is served as given: a hand-written name and
/// description (and fields the fake does not model) survive a fetch from the fake.
// Was `defect_23` in its issue.
#[tokio::test(start_paused = true)]
async fn a_registered_schema_is_served_as_given() {
    let fake = FakeFlora::new();
    let schema: flora_api::TechniqueSchema = serde_json::from_value(serde_json::json!({
        "technique_id": "tech_vd", "slug": "video-dub", "name": "Video Dub",
        "description": "Dubs a video. Written by hand.", "run_cost": 0.5,
        "category": "video",
        "inputs": [{"id": "video", "name": "Video", "type": "videoUrl", "optional": false}],
        "outputs": [{"id": "dubbed", "name": "Dubbed", "type": "videoUrl"}]
    }))
    .unwrap();
    fake.completes_untyped(&schema);
    let client = fake.client();
    let live = client.technique("video-dub").await.unwrap();
    assert_eq!(live.name, "Video Dub");
    assert_eq!(
        live.description.as_deref(),
        Some("Dubs a video. Written by hand.")
    );
    assert_eq!(live.raw()["category"], "video");
    assert_eq!(live.inputs.unwrap()[0].name.as_deref(), Some("Video"));
}

/// Issue 19, defect 21: a fake can require a key and answers others with FLORA's 401
/// `unauthorized`; an injected status carries the code FLORA sends with it.
// Was `defect_21` in its issue.
#[tokio::test(start_paused = true)]
async fn a_wrong_key_and_injected_statuses_look_like_flora() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    fake.require_key("sk_right");
    let err = fake.client().technique("cctv-cam").await.unwrap_err();
    let api = err.api().unwrap_or_else(|| panic!("{err:?}"));
    assert_eq!((api.status, api.code.as_str()), (401, "unauthorized"));
    let right = fake.client_builder().api_key("sk_right").build().unwrap();
    right.technique("cctv-cam").await.unwrap();
    for (status, code) in [
        (401, "unauthorized"),
        (402, "insufficient_credits"),
        (403, "forbidden"),
        (404, "not_found"),
        (429, "rate_limited"),
        (500, "internal_error"),
        (503, "service_unavailable"),
    ] {
        // Retryable statuses are tried three times (two retries), the others once.
        let attempts = if matches!(status, 429 | 500 | 503) {
            3
        } else {
            1
        };
        fake.fail_next(attempts, Fault::Status(status));
        let err = right.technique("cctv-cam").await.unwrap_err();
        let api = err.api().unwrap_or_else(|| panic!("{status}: {err:?}"));
        assert_eq!((api.status, api.code.as_str()), (status, code), "{err}");
        right.technique("cctv-cam").await.unwrap();
    }
}

/// FLORA's `estimated_seconds` in the create answer: the first poll waits for it (polls
/// before it would only spend the workspace's rate limit), then the usual schedule.
#[tokio::test(start_paused = true)]
async fn the_first_poll_waits_for_floras_estimate() {
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>()
        .estimated_seconds(40.0)
        .pending_polls(1)
        .returns(out("https://cdn.example.invalid/o.png"));
    let client = fake.client();
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move { my_pipeline(&client, face()).await })
    };
    tokio::time::sleep(Duration::from_secs(39)).await;
    assert_eq!(
        fake.request_count(),
        1,
        "only the create before the estimate"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fake.request_count(), 2, "the first poll at the estimate");
    // Then the usual 2 s schedule: completed on the next poll.
    assert!(waiting.await.unwrap().is_ok());
    assert_eq!(fake.request_count(), 3);
}

/// A start's own retry policy replaces the client's for that request only: `none()` sends
/// the creation once, a policy with more retries outlasts failures the client's would not.
#[tokio::test(start_paused = true)]
async fn a_start_retries_as_its_own_policy_says_not_as_the_clients() {
    use flora_api::RetryPolicy;
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    fake.fail_next_creates(5, Fault::Status(503));
    let client = fake.client(); // 2 retries of its own
    let creates = || fake.request_counts()["POST /techniques/{slug}/runs"];
    let t = CctvCam {
        input_image: face(),
    };

    let once = StartOptions::with_new_key().retry(RetryPolicy::none());
    let err = client.start_with(&t, once).await.unwrap_err();
    assert_eq!(err.class(), flora_api::ErrorClass::Throttled, "{err}");
    assert_eq!(creates(), 1, "one attempt, no retry");

    // Four failures left: the client's 3 attempts would not outlast them, 5 attempts do.
    let patient = StartOptions::with_new_key().retry(RetryPolicy::default().max_retries(4));
    let handle = client.start_with(&t, patient).await.unwrap();
    assert_eq!(creates(), 6);
    assert_eq!(fake.run_count(), 1);
    assert!(!handle.run_id().is_empty());
}

/// A policy's deadline bounds every attempt and every wait between them: with `Retry-After:
/// 5` on each answer and 12 s in all, the attempts go at 0, 5 and 10 s, and no fourth starts.
#[tokio::test(start_paused = true)]
async fn a_deadline_bounds_all_attempts_and_the_waits_between_them() {
    use flora_api::RetryPolicy;
    let fake = FakeFlora::new();
    fake.technique::<CctvCam>().completes();
    fake.fail_next_creates(
        20,
        Fault::RateLimited {
            retry_after: Duration::from_secs(5),
        },
    );
    let client = fake
        .client_builder()
        .retry_policy(
            RetryPolicy::default()
                .max_retries(10)
                .deadline(Duration::from_secs(12)),
        )
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let err = CctvCam {
        input_image: face(),
    }
    .start(&client)
    .await
    .unwrap_err();
    assert_eq!(err.class(), flora_api::ErrorClass::Throttled, "{err}");
    assert_eq!(fake.request_counts()["POST /techniques/{slug}/runs"], 3);
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(fake.run_count(), 0);
}
