//! `floret batch …`: the library's batches with a plan file, a progress bar, Ctrl-C that
//! stops submissions (twice: at once) and the exit codes of `floret run`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

use super::args::{BatchCommand, BatchFlags};
use super::output::{Mode, Out, finish};
use super::report::{Exit, Failure};
use super::session::Session;
use super::shell::command;
use crate::batch::{Batch, BatchOptions, Event, StopReason, Summary, read_plan};

pub(crate) async fn dispatch(session: &Session, command: BatchCommand) -> ExitCode {
    match command {
        BatchCommand::Run {
            plan,
            technique,
            journal,
            schema_dir: super::args::SchemaDir { schemas },
            dry_run,
            flags,
        } => {
            let out = session.out(mode(&flags));
            let result = async {
                // Checked first: a second `run` on one journal is a slip for `resume`.
                if journal.exists() && !dry_run {
                    return Err(Failure::usage(format!(
                        "{} exists already: it is a batch journal; continue it with `{}`, or \
                         pick a new file for a new batch",
                        journal.display(),
                        resume_command(&journal)
                    )));
                }
                let items = read_plan(&plan)?;
                // One client: the batch drives a retry-less copy of it (its window is its
                // retry strategy) and downloads outputs with the client's own retries.
                let client = session.client(None);
                let client = match (&schemas, client) {
                    (_, Ok(c)) => Some(c),
                    (Some(_), Err(_)) if dry_run => None,
                    (_, Err(e)) => return Err(e),
                };
                let schema = session.schema(client.as_ref(), &technique, schemas.as_deref()).await?;
                if dry_run {
                    // Everything the real run refuses before sending, refused here too.
                    crate::batch::validate(&schema, &items).await?;
                    crate::batch::check_cost(&schema, items.len(), flags.max_cost)?;
                    if let Some(spec) = &flags.download {
                        crate::batch::check_download(spec, items.len())?;
                    }
                    let cost = crate::batch::estimate(&schema, items.len());
                    let files = crate::batch::distinct_files(&schema, &items);
                    out.document(&json!({"items": items.len(), "run_cost": schema.run_cost, "estimate": cost, "uploads": files}));
                    out.line(&format!(
                        "{} item(s) × {} = {} USD; {} distinct local file(s) to upload; nothing was sent",
                        items.len(),
                        schema.run_cost.map_or("unknown cost".to_owned(), |c| format!("{c} USD")),
                        cost.map_or("unknown".to_owned(), |c| format!("{c:.2}")),
                        files
                    ));
                    return Ok(());
                }
                let client = client.ok_or_else(|| Failure::usage("a batch run needs an API key"))?;
                let batch = Batch::create(&client, &journal, &schema, &items, options(&flags)).await?;
                // The journal holds the plan now: a plan of any size is not kept twice.
                drop(items);
                drive(session, batch, &out, &journal).await
            }
            .await;
            finish(&out, result)
        }
        BatchCommand::Resume { journal, flags } => {
            let out = session.out(mode(&flags));
            let result = async {
                let client = session.client(None)?;
                let batch = Batch::open(&client, &journal, options(&flags)).await?;
                drive(session, batch, &out, &journal).await
            }
            .await;
            finish(&out, result)
        }
        BatchCommand::Status { journal, json } => {
            let out = session.out(if json { Mode::Json } else { Mode::Human });
            let result = crate::batch::journal_items(&journal)
                .map(|(summary, items)| {
                    out.document(&json!({"summary": summary_json(&summary), "items": items}));
                    out.line(&summary_line(&summary));
                    for line in problems(&items) {
                        out.line(&line);
                    }
                })
                .map_err(Failure::from);
            finish(&out, result)
        }
        BatchCommand::Export { journal, out: file } => {
            let out = session.out(Mode::Human);
            let result = crate::batch::journal_items(&journal)
                .map_err(Failure::from)
                .and_then(|(_, items)| {
                    let mut text = String::new();
                    for item in items {
                        text.push_str(&item.to_string());
                        text.push('\n');
                    }
                    let text = out.clean(&text);
                    // `-` is standard output, as everywhere on the command line.
                    if file.as_os_str() == "-" {
                        out.raw(&text);
                        return Ok(());
                    }
                    std::fs::write(&file, text).map_err(|e| {
                        Failure::new(
                            Exit::Other,
                            "io",
                            format!("cannot write {}: {e}", file.display()),
                        )
                    })
                });
            finish(&out, result)
        }
        BatchCommand::RetryFailed {
            journal,
            include_unclear,
            transient,
        } => {
            let out = session.out(Mode::Human);
            let result = crate::batch::journal_retry(&journal, include_unclear, transient)
                .map(|n| {
                    out.line(&format!(
                        "{n} item(s) back in the plan; `{}` runs them",
                        resume_command(&journal)
                    ))
                })
                .map_err(Failure::from);
            finish(&out, result)
        }
    }
}

fn mode(flags: &BatchFlags) -> Mode {
    if flags.jsonl {
        Mode::Jsonl
    } else {
        Mode::Human
    }
}

fn options(flags: &BatchFlags) -> BatchOptions {
    let mut o = BatchOptions {
        max_concurrency: flags.max_concurrency.max(1),
        max_cost: flags.max_cost,
        download: flags.download.clone(),
        overwrite: flags.overwrite,
        resubmit_unclear: flags.resubmit_unclear,
        poll_each_run: flags.poll_each_run,
        ..BatchOptions::default()
    };
    if let Some(d) = flags.poll_interval {
        o.poll = Some(
            crate::PollPolicy::default()
                .initial_delay(d)
                .interval(d)
                .max_interval(d.max(std::time::Duration::from_secs(5))),
        );
    }
    o
}

/// The items a person must look at (failed, needs review), one line each, at most 20.
fn problems(items: &[serde_json::Value]) -> Vec<String> {
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

fn summary_json(s: &Summary) -> serde_json::Value {
    json!({
        "total": s.total, "planned": s.planned, "in_flight": s.in_flight, "completed": s.completed,
        "saved": s.saved, "unsaved": s.unsaved, "failed": s.failed, "needs_review": s.needs_review,
        "runs_in_flight": s.runs_in_flight, "unsettled": s.unsettled,
        "charged": s.charged, "throttled": s.throttled,
        "stopped": s.stopped.as_ref().map(ToString::to_string),
    })
}

fn summary_line(s: &Summary) -> String {
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
        "{}/{} completed{}, {} failed, {} needs review, {} not done{runs}; {floor}{:.2} USD charged",
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
        s.charged
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

/// `floret batch resume --journal J`, quoted for pasting.
fn resume_command(journal: &std::path::Path) -> String {
    command(&[
        "batch",
        "resume",
        "--journal",
        &journal.display().to_string(),
    ])
}

/// Runs the batch with progress and Ctrl-C handling; the exit code follows the outcome.
async fn drive(
    session: &Session,
    batch: Batch,
    out: &Out,
    journal: &std::path::Path,
) -> Result<(), Failure> {
    let resume = resume_command(journal);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let batch = Arc::new(batch.events(tx));
    let total = batch.summary()?.total as u64;
    let bar = if out.draws_progress() {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        // Redrawn every second: the ETA moves while runs are pending and no event comes.
        bar.enable_steady_tick(std::time::Duration::from_secs(1));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let ui = {
        // Weak: the events end when the batch (their sender) is dropped.
        let batch = Arc::downgrade(&batch);
        let bar = bar.clone();
        let out = out.clone();
        tokio::spawn(async move {
            let mut done = 0u64;
            let mut failed = 0u64;
            let mut charged = 0.0;
            while let Some(e) = rx.recv().await {
                match &e {
                    Event::Completed { charged: c, .. } => {
                        done += 1;
                        charged += c.unwrap_or(0.0);
                    }
                    Event::Failed { .. } | Event::NeedsReview { .. } => failed += 1,
                    _ => {}
                }
                // On a terminal or a plain log, say what went wrong as it happens.
                if out.mode == Mode::Human {
                    say(&bar, &out, &e);
                }
                let p = batch.upgrade().map(|b| b.progress()).unwrap_or_default();
                bar.set_position(done + failed);
                bar.set_message(format!(
                    "{failed} failed, {} running, window {}, {}×429, {charged:.2} USD",
                    p.runs_in_flight, p.window, p.throttled
                ));
                out.event(event_name(&e), event_json(&e));
            }
        })
    };
    // The first Ctrl-C drains (a second one exits at once: the session's listener).
    let interrupt = {
        let batch = Arc::downgrade(&batch);
        let (token, out) = (session.interrupt.clone(), out.clone());
        tokio::spawn(async move {
            token.cancelled().await;
            out.always(
                "stopping submissions; in-flight runs are polled to their end (Ctrl-C again \
                 exits at once; the journal stays consistent)",
            );
            if let Some(b) = batch.upgrade() {
                b.drain("interrupted");
            }
        })
    };
    let result = batch.run().await;
    interrupt.abort();
    drop(batch);
    let _ = ui.await;
    bar.finish_and_clear();
    let summary = result?;
    out.event("summary", summary_json(&summary));
    if std::io::stdout().is_terminal() || out.mode == Mode::Human {
        out.line(&summary_line(&summary));
    }
    if let Some(reason) = &summary.stopped {
        let why = reason.to_string();
        return Err(match reason {
            StopReason::Requested(_) => Failure::new(
                Exit::Interrupted,
                "interrupted",
                format!("interrupted; resume with `{resume}`"),
            ),
            StopReason::Unauthorized(_) => Failure::new(Exit::Auth, "unauthorized", why),
            StopReason::InsufficientCredits(_) => {
                Failure::new(Exit::Limited, "insufficient_credits", why)
            }
            StopReason::MaxCost { .. } => Failure::new(
                Exit::Limited,
                "max_cost",
                format!("{why}; raise it with `{resume} --max-cost USD`"),
            ),
        });
    }
    if summary.failed > 0 {
        return Err(Failure::new(
            Exit::RunFailed,
            "items_failed",
            format!("{} item(s) failed", summary.failed),
        ));
    }
    if summary.unsaved > 0 && summary.planned == 0 && summary.in_flight == 0 {
        return Err(Failure::new(
            Exit::Other,
            "not_saved",
            format!(
                "{} completed item(s) are not saved (see the errors above); `{resume}` saves \
                 them (--overwrite replaces files in the way)",
                summary.unsaved
            ),
        ));
    }
    if !summary.finished() {
        return Err(Failure::new(
            Exit::Other,
            "unfinished",
            format!("some items are not done; `{resume}` continues them"),
        ));
    }
    if summary.needs_review > 0 {
        let status = command(&[
            "batch",
            "status",
            "--journal",
            &journal.display().to_string(),
        ]);
        return Err(Failure::new(
            Exit::Other,
            "needs_review",
            format!(
                "{} item(s) need review: `{status}` lists them and why",
                summary.needs_review
            ),
        ));
    }
    Ok(())
}

/// Lines on stderr for an event a person must know of (the bar is redrawn below them).
fn say(bar: &indicatif::ProgressBar, out: &Out, e: &Event) {
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

fn event_name(e: &Event) -> &'static str {
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

fn event_json(e: &Event) -> serde_json::Value {
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
