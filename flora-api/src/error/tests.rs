use super::*;
use api::MAX_SNIPPET;

#[test]
fn envelope_is_read_and_hint_added() {
    let e = ApiError::from_response(
        "POST /techniques/x/runs".into(),
        400,
        Some("req_1".into()),
        r#"{"error":{"code":"input_validation_error","message":"prompt: Required","fields":[{"field":"prompt","message":"Required"}]}}"#,
    );
    assert_eq!(e.code, ApiErrorCode::InputValidationError);
    assert_eq!(e.fields.len(), 1);
    let s = Error::Api(Box::new(e)).to_string();
    assert!(s.contains("cargo xtask regen"), "{s}");
    assert!(s.contains("req_1"), "{s}");
    assert!(s.contains("prompt: Required"), "{s}");
}

#[test]
fn non_envelope_body_is_kept_bounded() {
    let body = "<html>".repeat(2000);
    let e = ApiError::from_response("GET /x".into(), 502, None, &body);
    assert!(e.body.len() < MAX_SNIPPET + 64);
    assert!(e.message.starts_with("unexpected body"));
    assert!(Error::Api(Box::new(e)).is_retryable());
}

#[test]
fn unknown_code_round_trips() {
    let e = ApiError::from_response(
        "GET /x".into(),
        418,
        None,
        r#"{"error":{"code":"teapot","message":"short and stout"}}"#,
    );
    assert_eq!(e.code, ApiErrorCode::Other("teapot".into()));
    assert_eq!(String::from(e.code), "teapot");
}
