//! `floret run SLUG --<input> VALUE …`: checks every input and every destination, uploads
//! local files (under keys derived from the run's key and the file's content, so the same
//! command with the same key sends the same body), starts the run under one idempotency
//! key, waits and saves. Exit 2 only ever means nothing was sent; from the create on, every
//! way out (an error, `--timeout`, Ctrl-C) prints what exists and the command that resumes
//! without paying twice.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::FromArgMatches;

use serde_json::json;

use super::super::args::RunFlags;
use super::super::inputs::{self, InputFlag};
use super::super::output::{Mode, Out};
use super::super::output::{finish, init_logging};
use super::super::report::{Exit, Failure, floret_terms};
use super::super::session::Session;
use super::super::shell::{command, with_flag};
use super::wait::{bounded, report_done, resume_wait, wait_and_save};
use crate::client::Client;
use crate::endpoints::StartOptions;
use crate::kinds::MediaKind;
use crate::saving as save;
use crate::technique::RunInput;
use crate::values::{InputValue, UploadOnce, file_digest};
use crate::wire::TechniqueSchema;
use crate::{ENV_API_KEY, Upload, UploadOptions};

/// `run`: `rest` are the arguments after the slug; `args` the whole command line after the
/// program name (for the commands it prints).
pub(super) async fn run(
    session: Session,
    slug: String,
    rest: Vec<OsString>,
    args: Vec<OsString>,
) -> ExitCode {
    let began = Instant::now();
    // What is needed before the schema: where it is, how long to take, how to print.
    let given = match inputs::early_flags(&rest) {
        Ok(given) => given,
        Err(e) => return super::super::clap_exit(e, Mode::for_usage_errors(&rest)),
    };
    let early = session.out(mode(&given));
    let dir = given.schema_dir.schemas;
    let timeout = given.deadline.timeout;
    // `--timeout` bounds the whole command, from here.
    let deadline = timeout.map(|t| began + t);
    let prepared = async {
        let client = match (&dir, session.client(timeout)) {
            (_, Ok(c)) => Some(c),
            // Offline `--help` and checks work without a key; a run needs one later.
            (Some(_), Err(_)) => None,
            (None, Err(mut e)) => {
                e.message
                    .push_str(" (or read the schema offline with --schemas DIR)");
                return Err(e);
            }
        };
        let schema = session
            .schema(client.as_ref(), &slug, dir.as_deref())
            .await?;
        let flags = inputs::flags(&schema).map_err(Failure::usage)?;
        Ok((client, schema, flags))
    };
    let (client, schema, flags) = match bounded(&session, deadline, prepared).await {
        Ok(Ok(p)) => p,
        Ok(Err(f)) => return finish(&early, Err(f)),
        Err(timed_out) => return finish(&early, Err(before_run(timed_out, "reading the schema"))),
    };
    let schema_time = began.elapsed();
    let mut argv: Vec<OsString> = vec![OsString::from("run")];
    argv.extend(rest.iter().cloned());
    let matches = match inputs::run_command(&schema, &flags).try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => return super::super::clap_exit(e, early.mode),
    };
    let given = match RunFlags::from_arg_matches(&matches) {
        Ok(given) => given,
        Err(e) => return super::super::clap_exit(e, early.mode),
    };
    let out = session.out(mode(&given));
    let verbose = session.global.verbose + given.global.verbose;
    init_logging(verbose, &out);
    let ctx = Ctx {
        session: &session,
        out: &out,
        schema: &schema,
        flags: &flags,
        given: &given,
        matches: &matches,
        rest: &rest,
        args: &args,
        deadline,
    };
    let result = ctx.run(client, verbose, schema_time).await;
    finish(&out, result)
}

/// How `run` prints, from its flags.
fn mode(given: &RunFlags) -> Mode {
    let f = &given.format;
    Mode::of(f.json, f.jsonl, f.quiet)
}

/// A failure before anything paid was sent: exit 130 for Ctrl-C, 6 for `--timeout`.
fn before_run(timed_out: bool, while_doing: &str) -> Failure {
    if timed_out {
        Failure::new(
            Exit::TimedOut,
            "timeout",
            format!("--timeout passed while {while_doing}; nothing was run"),
        )
    } else {
        Failure::new(
            Exit::Interrupted,
            "interrupted",
            format!("interrupted while {while_doing}; nothing was run"),
        )
    }
}

/// One checked invocation.
struct Ctx<'a> {
    session: &'a Session,
    out: &'a Out,
    schema: &'a TechniqueSchema,
    flags: &'a [InputFlag],
    given: &'a RunFlags,
    matches: &'a clap::ArgMatches,
    rest: &'a [OsString],
    args: &'a [OsString],
    deadline: Option<Instant>,
}

impl Ctx<'_> {
    async fn run(
        &self,
        client: Option<Client>,
        verbose: u8,
        schema_time: Duration,
    ) -> Result<(), Failure> {
        let slug = self.schema.slug_or_derived().to_owned();
        let checks_began = Instant::now();
        // 1. Every value and every destination checked, every problem reported, before
        // anything is sent.
        let planned = self.checked_inputs().await?;
        let client = client.ok_or_else(|| {
            Failure::usage(format!(
                "no API key: set {ENV_API_KEY} (or --api-key-stdin) to run `{slug}`"
            ))
        })?;
        let key = match &self.given.idempotency_key {
            Some(k) => crate::endpoints::idempotency_key(Some(k))
                .map_err(|e| Failure::usage(floret_terms(&format!("--idempotency-key: {e}"))))?,
            None => uuid::Uuid::new_v4().to_string(),
        };
        let saving = self.given.saving.clone();
        if let Some(spec) = &saving.download {
            let declared: Vec<crate::wire::Slot> = self.schema.outputs.clone().unwrap_or_default();
            save::precheck(spec, &declared, "", saving.overwrite)
                .map_err(|e| Failure::usage(floret_terms(&e.to_string())))?;
        }
        let checks_time = checks_began.elapsed();
        // 2. Local files uploaded, each distinct file once, under keys of this run's key.
        let started = Instant::now();
        let uploading = self.upload_all(&client, planned, &key);
        let run_inputs = match bounded(self.session, self.deadline, uploading).await {
            Ok(inputs) => inputs?,
            Err(timed_out) => return Err(before_run(timed_out, "uploading the input files")),
        };
        let upload_time = started.elapsed();
        // 3. The run, under one idempotency key per invocation.
        let again = command(&with_flag(self.args, "idempotency-key", &key));
        let starting = client.start_run(
            &slug,
            run_inputs,
            StartOptions::idempotency_key(key.clone()),
        );
        let handle = match bounded(self.session, self.deadline, starting).await {
            Ok(Ok(handle)) => handle,
            Ok(Err(e)) => {
                let may_exist = e.idempotency_key().is_some();
                let mut f = Failure::from(e);
                if may_exist {
                    f.idempotency_key = Some(key.clone());
                    f = f
                        .after_run(Exit::Other)
                        .resume(format!("resume without paying twice: {again}"));
                }
                return Err(f);
            }
            Err(timed_out) => {
                let (exit, code, why) = if timed_out {
                    (Exit::TimedOut, "timeout", "--timeout passed")
                } else {
                    (Exit::Interrupted, "interrupted", "interrupted")
                };
                let mut f = Failure::new(
                    exit,
                    code,
                    format!(
                        "{why} while the run was being started: FLORA may have created it (and \
                         will bill it)"
                    ),
                )
                .resume(format!("resume without paying twice: {again}"));
                f.idempotency_key = Some(key.clone());
                return Err(f);
            }
        };
        let run_id = handle.run_id().to_owned();
        self.out.note(&format!(
            "started {run_id} (idempotency key {key}: the same command with `--idempotency-key \
             {}` gets this run back without paying twice)",
            super::super::shell::quote(&key)
        ));
        self.out.event(
            "created",
            json!({"run_id": run_id, "technique": slug, "idempotency_key": key}),
        );
        let run_began = Instant::now();
        if self.given.no_wait {
            self.out.document(&json!({
                "run_id": run_id, "technique": slug, "status": "started", "idempotency_key": key,
            }));
            self.out.line(&run_id);
            self.out.note(&format!(
                "wait for it with: {}",
                resume_wait(&run_id, &slug, &saving)
            ));
            return Ok(());
        }
        let waited = wait_and_save(
            self.session,
            &client,
            self.out,
            handle,
            &slug,
            &saving,
            self.deadline,
        )
        .await?;
        report_done(self.out, &waited, Some(&key));
        if verbose > 0 {
            // Where the time went (start-up is what precedes `schema`); the bench reads this.
            self.out.always(&format!(
                "floret: timings: schema {:.1} ms, checks {:.1} ms, upload {:.1} ms, run {:.1} ms",
                ms(schema_time),
                ms(checks_time),
                ms(upload_time),
                ms(run_began.elapsed())
            ));
        }
        Ok(())
    }

    /// Every given value checked against its slot; all problems at once.
    async fn checked_inputs(&self) -> Result<Vec<(&InputFlag, InputValue)>, Failure> {
        let mut planned = Vec::new();
        let mut problems = inputs::flags_taken_as_values(self.rest, self.flags, self.matches);
        for (i, values) in inputs::values(self.matches, self.flags) {
            for v in values {
                match inputs::check(&self.flags[i], &v).await {
                    Ok(value) => planned.push((&self.flags[i], value)),
                    Err(p) => problems.push(p),
                }
            }
        }
        if problems.is_empty() {
            Ok(planned)
        } else {
            Err(Failure::usage(format!(
                "{}\nnothing was uploaded or run",
                problems.join("\n")
            )))
        }
    }

    /// The run's inputs, local files uploaded once per (content, kind). Each upload's key is
    /// derived from the run's key and the file's SHA-256: the same command with the same key
    /// makes the same uploads (FLORA replays them), so the run's body is the same too.
    async fn upload_all(
        &self,
        client: &Client,
        planned: Vec<(&InputFlag, InputValue)>,
        key: &str,
    ) -> Result<Vec<RunInput>, Failure> {
        let uploads = UploadOnce::<Failure>::new();
        let mut run_inputs = Vec::new();
        for (f, value) in planned {
            let wire_type = f.slot.kind.as_str().to_owned();
            let sent = match value {
                InputValue::Text(t) | InputValue::Url(t) => t,
                InputValue::File(path, kind) => {
                    let digest = file_digest(&path).await.map_err(Failure::from)?;
                    let upload_key = format!("{key}:upload:{wire_type}:{}", &digest[..32]);
                    let upload = || async {
                        let url = upload_for(client, self.out, &path, kind, upload_key).await?;
                        self.out.event(
                            "uploaded",
                            json!({"input": f.id, "path": path.display().to_string(), "url": url}),
                        );
                        Ok(url)
                    };
                    uploads.url(&digest, kind, upload).await?
                }
            };
            run_inputs.push(RunInput::new(f.id.clone(), wire_type, sent));
        }
        Ok(run_inputs)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn upload_for(
    client: &Client,
    out: &Out,
    path: &Path,
    kind: MediaKind,
    key: String,
) -> Result<String, Failure> {
    let bar = if out.draws_progress() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "uploading {msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(out.clean(&path.display().to_string()));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let shown = bar.clone();
    let options = UploadOptions::default()
        .idempotency_key(key)
        .progress(move |done, total| {
            if let Some(t) = total {
                shown.set_length(t);
            }
            shown.set_position(done);
        });
    let url = client
        .upload_for_slot(Upload::path(path), kind, options)
        .await;
    bar.finish_and_clear();
    url.map_err(|e| Failure::from(e).after_run(Exit::Other))
}
