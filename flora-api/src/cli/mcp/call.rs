//! One technique call: every argument checked before anything is sent (the same checks as
//! `floret run`, and local paths inside the allowed directories), the session's cost limit
//! held, then joined to an identical call in flight or started as a job of its own that
//! uploads, runs under one idempotency key, follows the run and saves its outputs. The job
//! outlives the call: a call that stops waiting (its timeout, a cancel) leaves the run
//! followed, charged and saved.

use rmcp::RoleServer;
use rmcp::model::CallToolResponse;
use rmcp::service::RequestContext;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::super::inputs;
use super::job::{Ended, Progress, error_json, may_exist, run_json, save_outputs};
use super::tools::TechniqueTool;
use super::{Inner, Server};
use crate::endpoints::StartOptions;
use crate::error::Error;
use crate::technique::RunInput;
use crate::values::{InputValue, file_digest};
use crate::wire::Run;
use crate::{Upload, UploadOptions};

/// The most values one input takes in a call: each is a run, and a run is paid.
const MAX_VALUES: usize = 100;

impl Server {
    /// A `run_<slug>` call, answered as a tool result (errors included: the agent reads them)
    /// or as a task the client polls.
    pub(super) async fn run(
        &self,
        t: &TechniqueTool,
        args: &Map<String, Value>,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let allowed = self.allowed(context).await;
        let planned = match self.checked(t, args, &allowed).await {
            Ok(p) => p,
            Err(problems) => {
                return self
                    .error(json!({
                        "error": "invalid input; nothing was sent",
                        "problems": problems,
                        "retry_class": "change_input",
                    }))
                    .into();
            }
        };
        // Each local file read once: its digest is the call's identity and the upload's.
        let digests = digests_of(&planned).await;
        // Identity by what would be sent: the same file spelled two ways is one call.
        let fingerprint = fingerprint_of(&t.name, &t.flags, &planned, &digests);
        // `allow_multiple`: one run per value, so the guard counts each.
        let runs = planned_runs(&t.flags, &planned);
        let cost = t.schema.run_cost.map(|c| c * runs as f64);
        let tool = t.clone();
        self.join_or_start(
            t.schema.slug_or_derived(),
            fingerprint,
            cost,
            move |inner, key, progress| async move {
                let cost = cost.unwrap_or(0.0);
                execute(&inner, &tool, planned, digests, cost, &key, &progress).await
            },
            context,
        )
        .await
    }

    /// Every argument checked against its input; all problems at once.
    async fn checked(
        &self,
        t: &TechniqueTool,
        args: &Map<String, Value>,
        allowed: &super::paths::Allowed,
    ) -> Result<Vec<(usize, InputValue)>, Vec<String>> {
        let mut problems = Vec::new();
        let mut planned = Vec::new();
        for key in args.keys() {
            if !t.flags.iter().any(|f| &f.id == key) {
                problems.push(format!(
                    "`{}` is not an input of {}; its inputs: {}",
                    crate::safe_text::plain_text(key, 80),
                    t.schema.slug_or_derived(),
                    t.flags
                        .iter()
                        .map(|f| f.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        for (i, f) in t.flags.iter().enumerate() {
            let values: Vec<&Value> = match args.get(&f.id) {
                None if f.slot.optional => continue,
                None => {
                    problems.push(format!("`{}` is required", f.id));
                    continue;
                }
                Some(Value::Array(items)) if f.multiple && items.is_empty() && !f.slot.optional => {
                    problems.push(format!("`{}` is required: give at least one value", f.id));
                    continue;
                }
                Some(Value::Array(items)) if f.multiple && items.len() > MAX_VALUES => {
                    problems.push(format!(
                        "`{}` has {} values; at most {MAX_VALUES} a call (each is a paid run)",
                        f.id,
                        items.len()
                    ));
                    continue;
                }
                Some(Value::Array(items)) if f.multiple => items.iter().collect(),
                Some(Value::Array(_)) => {
                    problems.push(format!("`{}` takes one value, not a list", f.id));
                    continue;
                }
                Some(v) => vec![v],
            };
            for v in values {
                let Some(text) = v.as_str() else {
                    problems.push(format!("`{}` must be a string", f.id));
                    continue;
                };
                // A local path is judged where it really leads before it is opened.
                let is_url = text.starts_with("https://") || text.starts_with("http://");
                let given = if f.slot.kind.media_kind().is_some() && !is_url {
                    match allowed.check(text) {
                        Ok(real) => real.display().to_string(),
                        Err(why) => {
                            problems.push(format!("`{}`: {why}", f.id));
                            continue;
                        }
                    }
                } else {
                    text.to_owned()
                };
                match inputs::check(f, &given).await {
                    Ok(value) => planned.push((i, value)),
                    Err(why) => problems.push(why.replacen(
                        &format!("--{} ", f.flag),
                        &format!("`{}`: ", f.id),
                        1,
                    )),
                }
            }
        }
        if problems.is_empty() {
            Ok(planned)
        } else {
            Err(problems)
        }
    }

    /// Reserves `listed` (a run's listed or estimated cost) against the session's limit.
    pub(super) fn reserve_cost(&self, what: &str, listed: Option<f64>) -> Result<(), Value> {
        let mut l = self.ledger();
        let cost = listed.unwrap_or(0.0);
        if let Some(limit) = self.inner.max_cost {
            if listed.is_none() {
                return Err(json!({
                    "error": format!(
                        "{what} lists no cost per run, so --max-cost {limit} cannot be held for \
                         it; nothing was sent"
                    ),
                    "retry_class": "not_retryable",
                }));
            }
            if l.charged + l.reserved + cost > limit + 1e-9 {
                return Err(json!({
                    "error": format!(
                        "this run ({cost} USD) would take the session past --max-cost {limit} USD \
                         (charged {:.4}, in flight {:.4}); nothing was sent",
                        l.charged, l.reserved
                    ),
                    "retry_class": "not_retryable",
                }));
            }
        }
        l.reserved += cost;
        Ok(())
    }
}

/// The content digest of each planned local file (`None` for other values, and for a file
/// that cannot be read now: its upload says why).
async fn digests_of(planned: &[(usize, InputValue)]) -> Vec<Option<String>> {
    let mut out = Vec::with_capacity(planned.len());
    for (_, v) in planned {
        out.push(match v {
            InputValue::File(p, _) => file_digest(p).await.ok(),
            _ => None,
        });
    }
    out
}

/// The identity of a technique call: its tool and the checked values, files by their real
/// path and content (`a.png`, `./a.png` and its absolute path are one call; the same path
/// after the file was edited is another).
fn fingerprint_of(
    tool: &str,
    flags: &[super::super::inputs::InputFlag],
    planned: &[(usize, InputValue)],
    digests: &[Option<String>],
) -> String {
    let mut text = String::from(tool);
    for ((i, v), digest) in planned.iter().zip(digests) {
        let value = match v {
            InputValue::Text(t) => format!("text:{t}"),
            InputValue::Url(u) => format!("url:{u}"),
            InputValue::File(p, _) => {
                let digest = digest.as_deref().unwrap_or_default();
                format!("file:{}:{digest}", p.display())
            }
        };
        text.push_str(&format!("\n{}={value}", flags[*i].id));
    }
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// How many runs a call makes: one per value of an input that takes several (FLORA runs
/// each), else one.
fn planned_runs(
    flags: &[super::super::inputs::InputFlag],
    planned: &[(usize, InputValue)],
) -> usize {
    flags
        .iter()
        .enumerate()
        .filter(|(_, f)| f.multiple)
        .map(|(i, _)| planned.iter().filter(|(j, _)| *j == i).count())
        .max()
        .unwrap_or(1)
        .max(1)
}

async fn execute(
    inner: &Inner,
    t: &TechniqueTool,
    planned: Vec<(usize, InputValue)>,
    digests: Vec<Option<String>>,
    cost: f64,
    key: &str,
    progress: &watch::Sender<Progress>,
) -> Ended {
    let release = |charged: Option<f64>, ran: bool| inner.release(cost, charged, ran);
    let inputs = match upload_all(inner, t, planned, digests).await {
        Ok(i) => i,
        Err(e) => {
            release(None, false);
            return Err(error_json(&e, None));
        }
    };
    let slug = t.schema.slug_or_derived();
    let mut handle = match inner
        .client
        .start_run(slug, inputs, StartOptions::idempotency_key(key))
        .await
    {
        Ok(h) => h,
        Err(e) => {
            // A run may exist when the answer was lost: counted as spent to be safe.
            release(None, may_exist(&e));
            return Err(error_json(&e, None));
        }
    };
    let run_id = handle.run_id().to_owned();
    progress.send_modify(|p| {
        p.run_id = Some(run_id.clone());
        p.status = "pending".into();
    });
    let waited = handle
        .wait_run_with(|run: &Run| {
            progress.send_modify(|p| {
                p.status = run.status.as_str().to_owned();
                p.percent = run.progress.or(p.percent);
            });
        })
        .await;
    let run = match waited {
        Ok(run) => run,
        Err(e) => {
            // A failed run is free unless it says otherwise: what it reports is booked.
            let charged = match &e {
                Error::RunFailed { .. } => Some(
                    handle
                        .last_seen()
                        .and_then(|r| r.charged_cost)
                        .unwrap_or(0.0),
                ),
                _ => None,
            };
            release(charged, true);
            return Err(error_json(&e, Some(&run_id)));
        }
    };
    release(run.charged_cost, true);
    let mut result = run_json(&run);
    save_outputs(inner, &run.run_id, &run.outputs, &mut result).await;
    Ok(result)
}

/// The run's inputs, each local file uploaded once a session per (content, kind), under a
/// key of its content (FLORA replays a repeated upload). `digests` are `digests_of(planned)`.
async fn upload_all(
    inner: &Inner,
    t: &TechniqueTool,
    planned: Vec<(usize, InputValue)>,
    digests: Vec<Option<String>>,
) -> Result<Vec<RunInput>, Error> {
    let mut out = Vec::with_capacity(planned.len());
    for ((i, value), digest) in planned.into_iter().zip(digests) {
        let f = &t.flags[i];
        let wire_type = f.slot.kind.as_str().to_owned();
        let sent = match value {
            InputValue::Text(v) | InputValue::Url(v) => v,
            InputValue::File(path, kind) => {
                // Unreadable when the call was checked: read again, for the error.
                let digest = match digest {
                    Some(d) => d,
                    None => file_digest(&path).await?,
                };
                let cell = inner
                    .uploads
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry((digest.clone(), kind.wire()))
                    .or_default()
                    .clone();
                // One upload per content at a time: a second call with the same file waits
                // for the first's URL instead of uploading again.
                let mut url = cell.lock().await;
                match url.as_ref() {
                    Some(u) => u.clone(),
                    None => {
                        let key = format!(
                            "floret-mcp-{}:upload:{wire_type}:{}",
                            inner.session_id,
                            digest.get(..32).unwrap_or(&digest)
                        );
                        let made = inner
                            .client
                            .upload_for_slot(
                                Upload::path(&path),
                                kind,
                                UploadOptions::default().idempotency_key(key),
                            )
                            .await?;
                        *url = Some(made.clone());
                        made
                    }
                }
            }
        };
        out.push(RunInput::new(f.id.clone(), wire_type, sent));
    }
    Ok(out)
}
