//! `floret batch …`: the library's batches with a plan file, a progress bar, Ctrl-C that
//! stops submissions (twice: at once) and the exit codes of `floret run`.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

use super::args::{BatchCommand, BatchFlags};
use super::output::{Mode, Out, finish};
use super::report::{Exit, Failure};
use super::session::Session;
use super::shell::command;
use crate::batch::{Batch, BatchOptions, Event, StopReason, read_plan};
use crate::client::Client;

mod models;
mod report;

use report::{event_json, event_name, problems, say, summary_json, summary_line};

pub(crate) async fn dispatch(session: &Session, command: BatchCommand) -> ExitCode {
    match command {
        BatchCommand::Run {
            plan,
            technique,
            model,
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
                let run = Run {
                    plan: &plan,
                    journal: &journal,
                    schemas: schemas.as_deref(),
                    dry_run,
                    flags: &flags,
                };
                match (model, technique) {
                    (Some(model), _) => models::run(session, &out, &run, &model).await,
                    (None, Some(technique)) => run_technique(session, &out, &run, &technique).await,
                    (None, None) => Err(Failure::usage(
                        "say what the batch runs: --technique SLUG or --model MODEL",
                    )),
                }
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

/// What `batch run` was given, besides what it runs.
struct Run<'a> {
    plan: &'a Path,
    journal: &'a Path,
    schemas: Option<&'a Path>,
    dry_run: bool,
    flags: &'a BatchFlags,
}

/// The client, or none for a dry run reading its schema offline (`--schemas`) without a key.
fn client_for(session: &Session, run: &Run<'_>) -> Result<Option<Client>, Failure> {
    match (run.schemas, session.client(None)) {
        (_, Ok(c)) => Ok(Some(c)),
        (Some(_), Err(_)) if run.dry_run => Ok(None),
        (_, Err(e)) => Err(e),
    }
}

/// `batch run PLAN --technique SLUG`.
async fn run_technique(
    session: &Session,
    out: &Out,
    run: &Run<'_>,
    technique: &str,
) -> Result<(), Failure> {
    let items = read_plan(run.plan)?;
    // One client: the batch drives a retry-less copy of it (its window is its retry
    // strategy) and downloads outputs with the client's own retries.
    let client = client_for(session, run)?;
    let schema = session
        .schema(client.as_ref(), technique, run.schemas)
        .await?;
    let flags = run.flags;
    if run.dry_run {
        // Everything the real run refuses before sending, refused here too.
        crate::batch::validate(&schema, &items).await?;
        crate::batch::check_cost(schema.run_cost, items.len(), flags.max_cost)?;
        if let Some(spec) = &flags.download {
            crate::batch::check_download(spec, items.len())?;
        }
        let cost = crate::batch::estimate(schema.run_cost, items.len());
        let files = crate::batch::distinct_files(&schema, &items);
        out.document(&json!({"items": items.len(), "run_cost": schema.run_cost, "estimate": cost, "uploads": files}));
        out.line(&format!(
            "{} item(s) × {} = {} USD; {} distinct local file(s) to upload; nothing was sent",
            items.len(),
            schema
                .run_cost
                .map_or("unknown cost".to_owned(), |c| format!("{c} USD")),
            cost.map_or("unknown".to_owned(), |c| format!("{c:.2}")),
            files
        ));
        return Ok(());
    }
    let client = client.ok_or_else(|| Failure::usage("a batch run needs an API key"))?;
    let batch = Batch::create(&client, run.journal, &schema, &items, options(flags)).await?;
    // The journal holds the plan now: a plan of any size is not kept twice.
    drop(items);
    drive(session, batch, out, run.journal).await
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
