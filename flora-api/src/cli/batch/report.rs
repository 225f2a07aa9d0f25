//! What `floret batch` prints: the summary, the items a person must look at, and each
//! event (a line on stderr as it happens, a JSON line with `--jsonl`).

use serde_json::json;

use super::super::output::Out;
use crate::batch::{Event, StopReason, Summary};

/// The items a person must look at (failed, needs review), one line each, at most 20.
pub(super) fn problems(items: &[serde_json::Value]) -> Vec<String> {
    let listed: Vec<String> = items
        .iter()
        .filter(|i| matches!(i["state"].as_str(), Some("failed" | "needs_review")))
        .map(|i| {
            format!(
                "  {} {}: {}",
                i["state"].as_str().unwrap_or_default().replace('_', " "),
                crate::values::shorten(i["key"].as_str().unwrap_or_default()),
                i["error"].as_str().unwrap_or("(no error recorded)")
            )
        })
        .collect();
    let n = listed.len();
    let mut lines: Vec<String> = listed.into_iter().take(20).collect();
    if n > 20 {
        lines.push(format!("  … and {} more (--json lists every item)", n - 20));
    }
    lines
}

pub(super) fn summary_json(s: &Summary) -> serde_json::Value {
    json!({
        "total": s.total, "planned": s.planned, "in_flight": s.in_flight, "completed": s.completed,
        "saved": s.saved, "unsaved": s.unsaved, "failed": s.failed, "needs_review": s.needs_review,
        "runs_in_flight": s.runs_in_flight, "unsettled": s.unsettled,
        "charged": s.charged, "throttled": s.throttled,
        "stopped": s.stopped.as_ref().map(ToString::to_string),
    })
}

pub(super) fn summary_line(s: &Summary) -> String {
    let not_done = s.planned + s.in_flight;
    let runs = if s.runs_in_flight > 0 {
        format!(
            " ({} with a run at FLORA: a resume polls them, never starts them again)",
            s.runs_in_flight
        )
    } else {
        String::new()
    };
    let floor = if s.unsettled > 0 { "≥ " } else { "" };
    let mut line = format!(
        "{}/{} completed{}, {} failed, {} needs review, {} not done{runs}; {floor}{} USD charged",
        s.completed,
        s.total,
        if s.saved + s.unsaved > 0 {
            format!(" ({} saved)", s.saved)
        } else {
            String::new()
        },
        s.failed,
        s.needs_review,
        not_done,
        // Every digit a charge has (0.016, not 0.02): what was paid is never rounded away.
        crate::batch::usd(s.charged)
    );
    if s.needs_review > 0 {
        line.push_str(
            "\nneeds review: a run's first answer was lost and the listing could not tell which \
             run was the item's (runs carry no inputs); check them, then `retry-failed \
             --include-unclear` or leave them",
        );
    }
    if s.unsettled > 0 {
        line.push_str(&format!(
            "\n{} run(s) ended without their charge reported yet: the total is a floor",
            s.unsettled
        ));
    }
    if let Some(why) = &s.stopped {
        line.push_str(&format!("\nstopped submitting: {why}"));
    }
    line
}
/// Lines on stderr for an event a person must know of (the bar is redrawn below them).
pub(super) fn say(bar: &indicatif::ProgressBar, out: &Out, e: &Event) {
    let key = |k: &str| crate::values::shorten(k);
    let lines = match e {
        Event::Failed { key: k, error } => vec![format!("failed {}: {error}", key(k))],
        Event::NotSaved { key: k, error } => vec![format!("not saved {}: {error}", key(k))],
        Event::NeedsReview { key: k, why } => vec![format!("needs review {}: {why}", key(k))],
        Event::Deferred { key: k, why } => vec![format!("not sent now {}: {why}", key(k))],
        Event::Changed { paths, .. } => paths
            .iter()
            .map(|p| {
                format!(
                    "kept {}: changed since the batch saved it (--overwrite replaces it with \
                     FLORA's output)",
                    p.display()
                )
            })
            .collect(),
        // Ctrl-C says so itself.
        Event::Stopped {
            reason: StopReason::Requested(_),
        } => return,
        Event::Stopped { reason } => vec![format!("stopping submissions: {reason}")],
        _ => return,
    };
    bar.suspend(|| {
        for line in &lines {
            out.always(line);
        }
    });
}

pub(super) fn event_name(e: &Event) -> &'static str {
    match e {
        Event::Uploaded { .. } => "uploaded",
        Event::Created { .. } => "created",
        Event::Completed { .. } => "completed",
        Event::Failed { .. } => "failed",
        Event::Saved { .. } => "saved",
        Event::NotSaved { .. } => "not_saved",
        Event::Changed { .. } => "changed",
        Event::NeedsReview { .. } => "needs_review",
        Event::Deferred { .. } => "deferred",
        Event::Stopped { .. } => "stopped",
    }
}

pub(super) fn event_json(e: &Event) -> serde_json::Value {
    match e {
        Event::Uploaded { key, path } => json!({"key": key, "path": path.display().to_string()}),
        Event::Created { key, run_id } => json!({"key": key, "run_id": run_id}),
        Event::Completed {
            key,
            run_id,
            charged,
        } => json!({"key": key, "run_id": run_id, "charged_cost": charged}),
        Event::Failed { key, error } => json!({"key": key, "error": error}),
        Event::Saved { key, paths } => {
            json!({"key": key, "paths": paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()})
        }
        Event::NotSaved { key, error } => json!({"key": key, "error": error}),
        Event::Changed { key, paths } => {
            json!({"key": key, "paths": paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(), "kept": true})
        }
        Event::NeedsReview { key, why } => json!({"key": key, "why": why}),
        Event::Deferred { key, why } => json!({"key": key, "why": why}),
        Event::Stopped { reason } => json!({"why": reason.to_string()}),
    }
}
