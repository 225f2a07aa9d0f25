//! Generations as FLORA was measured to run them: every param checked before any request
//! (FLORA bills an unknown value), a lost answer answered 409 found again in
//! `GET /generations` (never sent under a new key), a failed run retried under a new key,
//! and the settled charge (never the create quote) reported, or a floor said to be one.
#![cfg(all(feature = "test-util", feature = "models"))]

use std::time::Duration;

use flora_api::testing::{FakeFlora, Fault};
use flora_api::{Charge, Error, GenerateOptions, Model, ModelSchema, RetryClass};
use serde_json::json;

mod common;

use common::models::Flux;

fn cat() -> Flux {
    Flux {
        prompt: "a cat in a teacup".into(),
        aspect_ratio: Some("square_1_1".into()),
        ..Flux::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_generation_returns_typed_outputs_and_the_settled_charge_not_the_quote() {
    let fake = FakeFlora::new();
    fake.model::<Flux>()
        .quotes(0.253)
        .charges(0.873)
        .pending_polls(2)
        .completes();
    let client = fake.client();
    let mut handle = client.start_generation(&cat()).await.unwrap();
    assert_eq!(
        handle.quote(),
        Some(0.253),
        "the create answer's quote is kept"
    );
    let done = handle.wait().await.unwrap();
    assert_eq!(done.charge, Charge::Settled(0.873));
    assert_eq!(done.outputs.len(), 1);
    let bytes = fake
        .media(done.outputs[0].as_str())
        .expect("the fake serves the output");
    assert!(!bytes.is_empty());
    let sent = fake.generations();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].model_id, "t2i-flux-2-pro");
    assert_eq!(sent[0].params, json!({"aspect_ratio": "square_1_1"}));
}

#[tokio::test(start_paused = true)]
async fn a_value_outside_the_catalog_is_an_error_with_no_request_sent() {
    let fake = FakeFlora::new();
    fake.model::<Flux>().completes();
    let client = fake.client();
    let too_many = Flux {
        steps: Some(51),
        ..cat()
    };
    let e = too_many.clone().prompt_owned(&client).await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("`steps` is 51, not from 1 to 50")
            && text.contains("t2i-flux-2-pro")
            && text.contains("nothing was sent"),
        "{text}"
    );
    let banana = Flux {
        aspect_ratio: Some("banana_9_9".into()),
        ..cat()
    };
    let text = client.generate(&banana).await.unwrap_err().to_string();
    assert!(text.contains("square_1_1, landscape_16_9"), "{text}");
    let empty = Flux {
        prompt: "  ".into(),
        ..cat()
    };
    assert!(client.start_generation(&empty).await.is_err());
    assert_eq!(fake.request_count(), 0, "{:?}", fake.request_counts());
}

/// `generate` on a borrowed struct, as user code calls it.
trait GenerateOwned {
    async fn prompt_owned(self, client: &flora_api::Client) -> Result<(), Error>;
}
impl GenerateOwned for Flux {
    async fn prompt_owned(self, client: &flora_api::Client) -> Result<(), Error> {
        client.generate(&self).await.map(|_| ())
    }
}

#[tokio::test(start_paused = true)]
async fn a_live_catalog_entry_checks_values_the_same_way_before_sending() {
    let fake = FakeFlora::new();
    let schema = Flux::INFO.schema().unwrap();
    fake.model_schema(&schema).completes();
    let client = fake.client();
    let params = json!({"aspect_ratio": "banana_9_9"});
    let e = client
        .start_generation_untyped(
            &schema,
            "a cat",
            params.as_object().unwrap().clone(),
            GenerateOptions::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not one of square_1_1, landscape_16_9"), "{e}");
    let params = json!({"steps": 2.5});
    let e = client
        .start_generation_untyped(
            &schema,
            "a cat",
            params.as_object().unwrap().clone(),
            GenerateOptions::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("`steps` must be a whole number"), "{e}");
    assert_eq!(fake.request_count(), 0);
    let ok = json!({"steps": 20});
    let mut h = client
        .start_generation_untyped(
            &schema,
            "a cat",
            ok.as_object().unwrap().clone(),
            GenerateOptions::default(),
        )
        .await
        .unwrap();
    h.wait().await.unwrap();
    assert_eq!(fake.generations().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_then_409_ends_with_the_one_run_found_in_generations() {
    let fake = FakeFlora::new();
    fake.model::<Flux>().completes();
    // The first POST creates the run, then its answer is lost; the retry (same key) is 409
    // with no run, as FLORA answers a repeated key.
    fake.fail_next_creates(1, Fault::LostAnswer);
    let client = fake.client();
    let done = client.generate(&cat()).await.unwrap();
    assert_eq!(fake.run_count(), 1, "exactly one run");
    assert_eq!(fake.generations().len(), 1);
    assert_eq!(fake.repeated_key_count(), 1, "the retry reused the key");
    let counts = fake.request_counts();
    assert_eq!(counts["POST /generate"], 2, "{counts:?}");
    assert!(counts["GET /generations"] >= 1, "{counts:?}");
    assert!(done.run_id.starts_with("run_fakegen"), "{}", done.run_id);
}

#[tokio::test(start_paused = true)]
async fn a_request_refused_before_it_ran_is_sent_again_under_the_same_key() {
    let fake = FakeFlora::new();
    fake.model::<Flux>().completes();
    // A 503 handled nothing: FLORA releases the key, so the same key starts the run.
    fake.fail_next_creates(2, Fault::Status(503));
    let client = fake.client();
    client.generate(&cat()).await.unwrap();
    assert_eq!(fake.run_count(), 1);
    assert_eq!(fake.repeated_key_count(), 0);
    assert_eq!(fake.request_counts()["POST /generate"], 3);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_a_failed_run_is_a_new_run_under_a_new_key() {
    let fake = FakeFlora::new();
    fake.model::<Flux>().completes();
    fake.model::<Flux>()
        .times(1)
        .fails("GPU_PROVIDER_ERROR", "the provider failed");
    let client = fake.client();
    let mut first = client
        .start_generation_with(&cat(), GenerateOptions::idempotency_key("cat-1"))
        .await
        .unwrap();
    let e = first.wait().await.unwrap_err();
    assert_eq!(e.retry_class(), Some(RetryClass::RetryNow), "{e}");
    let failed = first.last_seen().unwrap();
    assert_eq!(
        failed.progress,
        Some(100.0),
        "failed runs report progress 100"
    );
    let mut second = first.retry().await.unwrap();
    assert_eq!(second.idempotency_key().as_deref(), Some("cat-1~retry2"));
    second.wait().await.unwrap();
    assert_eq!(fake.run_count(), 2);
    assert_eq!(
        fake.repeated_key_count(),
        0,
        "the burned key was not sent again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_repeated_key_is_refused_409_and_starts_nothing() {
    let fake = FakeFlora::new();
    fake.model::<Flux>().completes();
    let client = fake.client();
    let options = GenerateOptions::idempotency_key("once");
    client.generate_with(&cat(), options.clone()).await.unwrap();
    let e = client.generate_with(&cat(), options).await.unwrap_err();
    assert!(matches!(e, Error::Idempotency { .. }), "{e}");
    assert_eq!(fake.run_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_charge_that_settles_late_is_read_again_until_it_does() {
    let fake = FakeFlora::new();
    fake.model::<Flux>()
        .charges(0.5)
        .charge_settles_after(3)
        .completes();
    let done = fake.client().generate(&cat()).await.unwrap();
    assert_eq!(done.charge, Charge::Settled(0.5));
}

#[tokio::test(start_paused = true)]
async fn a_charge_that_never_settles_is_reported_as_a_floor_and_said_so() {
    let fake = FakeFlora::new();
    fake.model::<Flux>()
        .quotes(0.25)
        .charge_settles_after(u32::MAX)
        .completes();
    let options = GenerateOptions {
        settle_for: Some(Duration::from_secs(20)),
        ..GenerateOptions::default()
    };
    let done = fake.client().generate_with(&cat(), options).await.unwrap();
    assert!(
        matches!(done.charge, Charge::Unsettled { quote: Some(q), .. } if q == 0.25),
        "{:?}",
        done.charge
    );
    assert_eq!(done.charge.floor(), 0.0);
    let said = done.charge.to_string();
    assert!(
        said.starts_with("≥ 0 USD") && said.contains("not the charge"),
        "{said}"
    );
}

#[tokio::test]
async fn a_generation_without_a_project_is_refused_listing_the_projects() {
    let fake = FakeFlora::new();
    fake.model::<Flux>().completes();
    let served = fake.serve().await.unwrap();
    // A client as a user builds one, with no project set.
    let client = flora_api::Client::builder()
        .api_key("sk_fake")
        .base_url(served.base_url())
        .workspace_id(flora_api::testing::FAKE_WORKSPACE_ID)
        .build()
        .unwrap();
    let e = client.generate(&cat()).await.unwrap_err().to_string();
    assert!(
        e.contains("FLORA_PROJECT_ID") && e.contains("prj_fake (Fake project)"),
        "{e}"
    );
    assert_eq!(fake.request_counts().get("POST /generate"), None);
    assert_eq!(fake.request_counts()["GET /projects"], 1);
}

#[tokio::test]
async fn verify_model_is_ok_for_the_catalog_the_struct_came_from_and_lists_every_drift() {
    let fake = FakeFlora::new();
    fake.model::<Flux>().completes();
    let client = fake.client();
    client.verify_model::<Flux>().await.unwrap();

    // The live entry changes: a value gone, a range narrowed, a param added as required.
    let drifted = FakeFlora::new();
    let live: ModelSchema = serde_json::from_value(json!({
        "model_id": "t2i-flux-2-pro", "name": "Flux", "type": "image",
        "params": [
            {"name": "aspect_ratio", "type": "string", "options": [{"label": "S", "value": "square_1_1"}]},
            {"name": "steps", "type": "int", "min": 1, "max": 30},
            {"name": "seed", "type": "seed"},
            {"name": "style", "type": "string", "required": true}
        ]
    }))
    .unwrap();
    drifted.model_schema(&live).completes();
    let err = drifted.client().verify_model::<Flux>().await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::ModelDrift { .. }), "{err:?}");
    for part in [
        "model `t2i-flux-2-pro` changed",
        "param `aspect_ratio` no longer allows `landscape_16_9`",
        "param `steps` range changed: from 1 to 50 -> from 1 to 30",
        "param `style` added (string, required)",
        "cargo xtask regen",
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
    assert_eq!(
        drifted.generations().len(),
        0,
        "a drift check never generates"
    );
}
