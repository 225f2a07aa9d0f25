//! `floret wait RUN_ID --technique SLUG`: waits for a run started earlier (after `--no-wait`,
//! a timeout or Ctrl-C), then saves its outputs; `run` ends with the same wait. Whatever
//! stops it (Ctrl-C, `--timeout`, a save that fails) prints the command that picks it up.

use std::time::{Duration, Instant};

use serde_json::json;

use super::super::args::Saving;
use super::super::output::Out;
use super::super::report::{Exit, Failure};
use super::super::session::Session;
use super::super::shell::command;
use super::runs::outputs_json;
use crate::client::Client;
use crate::error::Error;
use crate::poll::RunHandle;
use crate::saving::{self as save, Names, SaveError, Saved};
use crate::technique::Untyped;
use crate::wire::{Run, RunStatus};

/// A completed run and what was saved of it.
pub(super) struct Waited {
    pub run: Run,
    pub technique: String,
    pub saved: Vec<Saved>,
}

pub(super) async fn wait(
    session: &Session,
    out: &Out,
    run_id: &str,
    technique: &str,
    timeout: Option<Duration>,
    saving: &Saving,
) -> Result<(), Failure> {
    let client = session.client(timeout)?;
    let handle = RunHandle::<Untyped>::attach(&client, technique, run_id);
    let deadline = timeout.map(|t| Instant::now() + t);
    let waited = wait_and_save(session, &client, out, handle, technique, saving, deadline).await?;
    report_done(out, &waited, None);
    Ok(())
}

/// The command that waits for `run_id` again, saving as asked.
pub(super) fn resume_wait(run_id: &str, technique: &str, saving: &Saving) -> String {
    let mut words = vec!["wait", run_id, "--technique", technique];
    if let Some(spec) = &saving.download {
        words.extend(["--download", spec]);
        if saving.overwrite {
            words.push("--overwrite");
        }
    }
    command(&words)
}

/// A run the server does not know is final: no resume line.
pub(super) fn not_found(e: Error, run_id: &str, technique: &str) -> Failure {
    if e.status() == Some(404) {
        return Failure::new(
            Exit::Other,
            "not_found",
            format!(
                "run {} does not exist for this key on technique `{}` (check the run id, the \
                 technique, and that the key is of the run's workspace)",
                crate::safe_text::plain_text(run_id, 80),
                crate::safe_text::plain_text(technique, 80)
            ),
        )
        .run_id(run_id);
    }
    Failure::from(e)
}

/// How long is left before `deadline`, as a `tokio` instant.
fn until(deadline: Option<Instant>) -> Option<tokio::time::Instant> {
    deadline.map(tokio::time::Instant::from_std)
}

/// Runs `work` until it ends, the deadline passes (`Err(true)`) or Ctrl-C (`Err(false)`).
pub(super) async fn bounded<T>(
    session: &Session,
    deadline: Option<Instant>,
    work: impl std::future::Future<Output = T>,
) -> Result<T, bool> {
    let timed = async {
        match until(deadline) {
            Some(at) => tokio::time::timeout_at(at, work).await.map_err(|_| true),
            None => Ok(work.await),
        }
    };
    tokio::select! {
        r = timed => r,
        () = session.interrupt.cancelled() => Err(false),
    }
}

/// Waits (with progress), then saves the outputs.
pub(super) async fn wait_and_save(
    session: &Session,
    client: &Client,
    out: &Out,
    mut handle: RunHandle<Untyped>,
    technique: &str,
    saving: &Saving,
    deadline: Option<Instant>,
) -> Result<Waited, Failure> {
    let run_id = handle.run_id().to_owned();
    let resume = resume_wait(&run_id, technique, saving);
    let bar = if out.draws_progress() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(out.clean(&format!("{run_id} pending")));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let shown = bar.clone();
    let events = out.clone();
    let mut last: Option<(RunStatus, Option<f64>)> = None;
    let on_update = move |run: &Run| {
        let now = (run.status.clone(), run.progress);
        if last.as_ref() == Some(&now) {
            return;
        }
        last = Some(now);
        if let Some(p) = run.progress {
            if shown.length().is_none() {
                shown.set_style(
                    indicatif::ProgressStyle::with_template("{msg} {bar:30} {pos}%")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                shown.set_length(100);
            }
            shown.set_position(p.clamp(0.0, 100.0) as u64);
        }
        shown.set_message(events.clean(&crate::safe_text::plain_text(
            &format!("{} {}", run.run_id, run.status),
            80,
        )));
        events.event(
            "progress",
            json!({"run_id": run.run_id, "status": run.status.as_str(), "progress": run.progress}),
        );
    };
    let waited = bounded(session, deadline, handle.wait_run_with(on_update)).await;
    bar.finish_and_clear();
    let run = match waited {
        Ok(Ok(run)) => run,
        Err(timed_out) => {
            let (exit, code, why) = if timed_out {
                (Exit::TimedOut, "timeout", "--timeout passed")
            } else {
                (Exit::Interrupted, "interrupted", "interrupted")
            };
            return Err(Failure::new(
                exit,
                code,
                format!("{why}; stopped waiting, and {run_id} keeps running on FLORA"),
            )
            .run_id(&run_id)
            .resume(format!("resume with: {resume}")));
        }
        Ok(Err(e)) if e.status() == Some(404) => return Err(not_found(e, &run_id, technique)),
        Ok(Err(e)) => {
            let mut f = Failure::from(e).run_id(&run_id).after_run(Exit::Other);
            match f.exit {
                Exit::RunFailed => {
                    out.event(
                        "failed",
                        json!({"run_id": run_id, "code": f.code, "message": f.message}),
                    );
                }
                Exit::Auth | Exit::Limited => {}
                _ => f = f.resume(format!("resume with: {resume}")),
            }
            return Err(f);
        }
    };
    out.event(
        "completed",
        json!({"run_id": run.run_id, "charged_cost": run.charged_cost, "outputs": outputs_json(&run)}),
    );
    let saved = match &saving.download {
        Some(spec) => {
            let names = Names {
                run_id: &run_id,
                key: "",
            };
            let options = save::SaveOptions::default().overwrite(saving.overwrite);
            let saving_all = save::save_all(client, names, &run.outputs, spec, &options, None);
            let saved = match bounded(session, deadline, saving_all).await {
                Ok(saved) => saved.map_err(|e| {
                    not_saved(e, &run_id).resume(format!("save them with: {resume}"))
                })?,
                Err(timed_out) => {
                    let (exit, code) = if timed_out {
                        (Exit::TimedOut, "timeout")
                    } else {
                        (Exit::Interrupted, "interrupted")
                    };
                    return Err(Failure::new(
                        exit,
                        code,
                        format!(
                            "stopped while saving the outputs of {run_id} (it completed; no \
                             partial file is left)"
                        ),
                    )
                    .run_id(&run_id)
                    .resume(format!("save them with: {resume}")));
                }
            };
            for s in &saved {
                out.event("saved", s.json());
            }
            saved
        }
        None => Vec::new(),
    };
    Ok(Waited {
        run,
        technique: technique.to_owned(),
        saved,
    })
}

/// A save that failed after the run completed (exit 7: the run is paid; saving again is the
/// fix).
fn not_saved(e: SaveError, run_id: &str) -> Failure {
    let message = match &e {
        SaveError::Exists(_) => format!("{e}; the run completed, its outputs were not all saved"),
        _ => format!(
            "the run completed but its outputs could not be saved: {}",
            super::super::report::floret_terms(&e.to_string())
        ),
    };
    Failure::new(Exit::NotSaved, "not_saved", message).run_id(run_id)
}

pub(super) fn report_done(out: &Out, w: &Waited, key: Option<&str>) {
    let run = &w.run;
    out.document(&json!({
        "run_id": run.run_id,
        "technique": w.technique,
        "status": run.status.as_str(),
        "idempotency_key": key,
        "charged_cost": run.charged_cost,
        "outputs": outputs_json(run),
        "saved": w.saved.iter().map(Saved::json).collect::<Vec<_>>(),
    }));
    for o in &run.outputs {
        out.line(&format!("{}\t{}", o.output_id, o.url));
    }
    for s in &w.saved {
        out.line(&format!(
            "saved {} ({} bytes, sha256 {})",
            s.path.display(),
            s.bytes,
            s.sha256
        ));
    }
    if let Some(c) = run.charged_cost {
        out.note(&format!("{} completed, charged {c} USD", run.run_id));
    }
}
