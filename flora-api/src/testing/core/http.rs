//! The fake's HTTP face: requests and answers, routing, and the in-process connector.

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};

use super::super::Fault;
use super::Core;
use crate::connector::{Connector, Origin, Sending};
use crate::error::code_for_status;

/// A request as the fake sees it.
pub(crate) struct FakeRequest {
    pub method: String,
    pub path: String,
    /// The query string (without `?`), or `""`.
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl FakeRequest {
    /// The `Content-Type` header, or `""`.
    pub(super) fn content_type(&self) -> String {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }
}

/// An answer, or a broken connection.
pub(crate) enum FakeResponse {
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
    },
    Broken,
}

pub(super) fn json_answer(status: u16, v: &Value) -> FakeResponse {
    FakeResponse::Answer {
        status,
        headers: vec![("content-type", "application/json".to_owned())],
        body: Bytes::from(v.to_string()),
    }
}

pub(super) fn error(
    status: u16,
    code: &str,
    message: &str,
    fields: &[(String, String)],
) -> FakeResponse {
    let mut e = json!({"error": {"code": code, "message": message}});
    if !fields.is_empty() {
        e["error"]["fields"] = Value::Array(
            fields
                .iter()
                .map(|(f, m)| json!({"field": f, "message": m}))
                .collect(),
        );
    }
    json_answer(status, &e)
}

impl Core {
    /// Answers one request, with a `Date` on the fake's clock (`FakeFlora::server_clock`), as
    /// any HTTP server sends.
    pub fn respond(&self, req: FakeRequest) -> FakeResponse {
        let mut answer = self.respond_undated(req);
        if let FakeResponse::Answer { headers, .. } = &mut answer {
            let offset = self.with(|st| st.clock.0);
            let now = std::time::SystemTime::now();
            let at = if offset >= 0.0 {
                now.checked_add(crate::durations::from_secs_saturating(offset))
            } else {
                now.checked_sub(crate::durations::from_secs_saturating(-offset))
            };
            if let Some(at) = at {
                headers.push(("date", httpdate::fmt_http_date(at)));
            }
        }
        answer
    }

    fn respond_undated(&self, req: FakeRequest) -> FakeResponse {
        let create = req.method == "POST"
            && ((req.path.starts_with("/api/v1/techniques/") && req.path.ends_with("/runs"))
                || req.path == "/api/v1/generate");
        let route = route_of(&req.method, &req.path);
        let fault = self.with(|st| {
            st.requests += 1;
            *st.by_route.entry(route).or_default() += 1;
            match st.faults.pop_front() {
                Some(f) => Some(f),
                None if create => st.create_faults.pop_front(),
                None => None,
            }
        });
        match fault {
            Some(Fault::Status(s)) => {
                return error(s, code_for_status(s), "injected by FakeFlora", &[]);
            }
            Some(Fault::RateLimited { retry_after }) => {
                return FakeResponse::Answer {
                    status: 429,
                    headers: vec![
                        ("content-type", "application/json".to_owned()),
                        ("retry-after-ms", retry_after.as_millis().to_string()),
                    ],
                    body: Bytes::from_static(
                        br#"{"error":{"code":"rate_limited","message":"injected by FakeFlora"}}"#,
                    ),
                };
            }
            Some(Fault::Connection) => return FakeResponse::Broken,
            Some(Fault::LostAnswer) => {
                let _ = self.route(req);
                return error(
                    500,
                    "internal_error",
                    "answer lost (injected by FakeFlora)",
                    &[],
                );
            }
            None => {}
        }
        self.route(req)
    }

    fn route(&self, req: FakeRequest) -> FakeResponse {
        // Keep in step with `route_of`, which names these routes for `request_counts`.
        let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        // The per-workspace limit counts API requests (creates, polls, listings), as FLORA's.
        if let ["api", ..] = &segs[..]
            && let Some(retry_after) = self.over_limit()
        {
            return FakeResponse::Answer {
                status: 429,
                headers: vec![
                    ("content-type", "application/json".to_owned()),
                    retry_after,
                ],
                body: Bytes::from_static(
                    br#"{"error":{"code":"rate_limited","message":"rate limit exceeded (FakeFlora::rate_limit)"}}"#,
                ),
            };
        }
        // The API checks the key (when the test asked for one); the media host never sees it.
        if let (Some(wanted), ["api", ..]) = (self.with(|st| st.required_key.clone()), &segs[..]) {
            let sent = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if sent != Some(wanted.as_str()) {
                return error(401, "unauthorized", "invalid or missing API key", &[]);
            }
        }
        let key = req
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match (req.method.as_str(), segs.as_slice()) {
            (_, ["media", "upload", id]) => self.receive_upload(id, &req),
            ("GET", ["media", ..]) => self.serve_media(&req.path),
            ("GET", ["api", "v1", "techniques"]) => self.list_techniques(),
            ("GET", ["api", "v1", "techniques", slug]) => self.schema(slug),
            ("POST", ["api", "v1", "techniques", slug, "runs"]) => self.start(slug, &req.body, key),
            ("GET", ["api", "v1", "techniques", _, "runs", id] | ["api", "v1", "runs", id]) => {
                self.poll(id)
            }
            ("GET", ["api", "v1", "technique-runs"]) if self.has_run_history() => {
                self.history(&req.query)
            }
            ("GET", ["api", "v1", "models"]) => self.list_models(&req.query),
            ("GET", ["api", "v1", "projects"]) => self.list_projects(),
            ("POST", ["api", "v1", "generate"]) => self.generate(&req.body, key),
            ("GET", ["api", "v1", "generations"]) => self.list_generations(&req.query),
            ("GET", ["api", "v1", "workspaces"]) => json_answer(
                200,
                &json!({"workspaces": [{"workspace_id": super::super::FAKE_WORKSPACE_ID, "name": "Fake"}]}),
            ),
            ("POST", ["api", "v1", "assets"]) => self.create_asset(&req, key),
            ("GET", ["api", "v1", "assets", id]) => self.asset(id),
            ("POST", ["api", "v1", "assets", id, "complete"]) => self.complete_asset(id),
            ("POST", ["api", "v1", "assets", id, "retry"]) => self.renew_target(id),
            _ => error(
                404,
                "not_found",
                &format!("FakeFlora does not serve {} {}", req.method, req.path),
                &[],
            ),
        }
    }
}

pub(super) fn to_reqwest(resp: FakeResponse) -> reqwest::Response {
    let built = match resp {
        FakeResponse::Answer {
            status,
            headers,
            body,
        } => {
            let mut b = http::Response::builder().status(status);
            b = b.header("content-length", body.len());
            for (k, v) in headers {
                b = b.header(k, v);
            }
            b.body(reqwest::Body::from(body))
        }
        FakeResponse::Broken => {
            // The only way to hand the client a transport error: a body that fails to read,
            // which the client treats like a dropped connection.
            let stream = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection reset (injected by FakeFlora)",
                ))
            });
            http::Response::builder()
                .status(200)
                .body(reqwest::Body::wrap_stream(stream))
        }
    };
    match built {
        Ok(r) => reqwest::Response::from(r),
        Err(_) => reqwest::Response::from(http::Response::new(reqwest::Body::from(Bytes::new()))),
    }
}

/// The in-process seam: the client sends every request, of every origin, here. A host the
/// fake does not serve (neither its API nor its media host) is unreachable, as in production.
impl Connector for Core {
    fn send(&self, request: reqwest::Request, _origin: Origin) -> Sending<'_> {
        Box::pin(async move {
            if !self.serves(request.url()) {
                return Ok(to_reqwest(FakeResponse::Broken));
            }
            Ok(self.handle(request).await)
        })
    }

    /// Answers come at once; a timer under a paused test clock would only fire spuriously.
    fn timeouts_apply(&self) -> bool {
        false
    }
}

/// A request's route as the API reference writes it (ids as placeholders), for
/// `FakeFlora::request_counts`; the routes `Core::route` serves.
pub(super) fn route_of(method: &str, path: &str) -> &'static str {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (method, segs.as_slice()) {
        (_, ["media", "upload", _]) => "upload to a signed target",
        ("GET", ["media", ..]) => "GET media",
        ("GET", ["api", "v1", "techniques"]) => "GET /techniques",
        ("GET", ["api", "v1", "techniques", _]) => "GET /techniques/{slug}",
        ("POST", ["api", "v1", "techniques", _, "runs"]) => "POST /techniques/{slug}/runs",
        ("GET", ["api", "v1", "techniques", _, "runs", _]) => "GET /techniques/{slug}/runs/{id}",
        ("GET", ["api", "v1", "runs", _]) => "GET /runs/{id}",
        ("GET", ["api", "v1", "technique-runs"]) => "GET /technique-runs",
        ("GET", ["api", "v1", "workspaces"]) => "GET /workspaces",
        ("GET", ["api", "v1", "models"]) => "GET /models",
        ("GET", ["api", "v1", "projects"]) => "GET /projects",
        ("POST", ["api", "v1", "generate"]) => "POST /generate",
        ("GET", ["api", "v1", "generations"]) => "GET /generations",
        ("POST", ["api", "v1", "assets"]) => "POST /assets",
        ("GET", ["api", "v1", "assets", _]) => "GET /assets/{id}",
        ("POST", ["api", "v1", "assets", _, "complete"]) => "POST /assets/{id}/complete",
        ("POST", ["api", "v1", "assets", _, "retry"]) => "POST /assets/{id}/retry",
        _ => "other",
    }
}
