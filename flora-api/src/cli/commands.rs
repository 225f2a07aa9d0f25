//! The commands.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use super::args::{Cli, Command, Format, Global, Saving};
use super::inputs::{self, InputFlag};
use super::report::{Exit, Failure, Mode, Out};
use super::{clap_exit, finish};
use crate::client::Client;
use crate::endpoints::{ListRuns, ListTechniques, StartOptions};
use crate::policy::PollPolicy;
use crate::poll::RunHandle;
use crate::saving::{self as save, Names, SaveError, Saved};
use crate::technique::{RunInput, Untyped};
use crate::values::InputValue;
use crate::wire::{MediaType, Run, RunStatus, TechniqueSchema};
use crate::{ENV_API_KEY, Upload, UploadOptions};

/// How long `run` and `wait` wait by default.
const DEFAULT_WAIT: Duration = Duration::from_secs(600);

pub(crate) async fn dispatch(cli: Cli) -> ExitCode {
    let Cli { global, command } = cli;
    init_logging(global.verbose);
    match command {
        Command::Run { slug, rest } => run(global, slug, rest).await,
        Command::Techniques { format } => {
            let out = out_for(&format, &global);
            finish(&out, techniques(&global, &out).await)
        }
        Command::Show {
            slug,
            schemas,
            format,
        } => {
            let out = out_for(&format, &global);
            finish(&out, show(&global, &out, &slug, schemas.as_deref()).await)
        }
        Command::Runs {
            slug,
            limit,
            format,
        } => {
            let out = out_for(&format, &global);
            finish(&out, runs(&global, &out, &slug, limit).await)
        }
        Command::Get {
            run_id,
            technique,
            format,
        } => {
            let out = out_for(&format, &global);
            finish(&out, get(&global, &out, &technique, &run_id).await)
        }
        Command::Wait {
            run_id,
            technique,
            timeout,
            saving,
            format,
        } => {
            let out = out_for(&format, &global);
            let result = async {
                let client = client(&global, timeout)?;
                let handle = RunHandle::<Untyped>::attach(&client, &technique, &run_id);
                let waited = wait_and_save(&client, &out, handle, &technique, &saving).await?;
                report_done(&out, &waited, None);
                Ok(())
            }
            .await;
            finish(&out, result)
        }
        Command::Upload { paths, format } => {
            let out = out_for(&format, &global);
            finish(&out, upload(&global, &out, &paths).await)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "floret", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Batch { command } => super::batch::dispatch(global, command).await,
        Command::Sandbox { schemas, port } => {
            let out = Out::new(Mode::Human, None);
            finish(&out, sandbox(schemas.as_deref(), port).await)
        }
    }
}

fn init_logging(verbose: u8) {
    if verbose == 0 {
        return;
    }
    let level = if verbose == 1 {
        "flora_api=info"
    } else {
        "flora_api=debug"
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .try_init();
}

/// The API key: `--api-key-stdin`'s first line, else FLORA_API_KEY.
fn api_key(global: &Global) -> Result<String, Failure> {
    let key = if global.api_key_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| Failure::usage(format!("--api-key-stdin: cannot read stdin: {e}")))?;
        line.trim().to_owned()
    } else {
        std::env::var(ENV_API_KEY)
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    if key.is_empty() {
        return Err(Failure::usage(format!(
            "no API key: set {ENV_API_KEY} (or pipe it in with --api-key-stdin); to try floret \
             without a key, run `floret sandbox` and export what it prints"
        )));
    }
    Ok(key)
}

/// The key as the output should redact it (never read twice from stdin).
fn known_key(global: &Global) -> Option<String> {
    (!global.api_key_stdin)
        .then(|| std::env::var(ENV_API_KEY).ok())
        .flatten()
}

pub(super) fn known_key_of(global: &Global) -> Option<String> {
    known_key(global)
}

fn out_for(format: &Format, global: &Global) -> Out {
    Out::new(
        Mode::of(format.json, format.jsonl, format.quiet),
        known_key(global).as_deref(),
    )
}

pub(super) fn client(global: &Global, wait: Option<Duration>) -> Result<Client, Failure> {
    client_with(global, wait, None)
}

/// A client; `retries` overrides the default (a batch retries itself, so its window sees
/// every 429).
pub(super) fn client_with(
    global: &Global,
    wait: Option<Duration>,
    retries: Option<u32>,
) -> Result<Client, Failure> {
    let mut b = Client::builder()
        .api_key(api_key(global)?)
        .poll_policy(PollPolicy::default().deadline(wait.unwrap_or(DEFAULT_WAIT)));
    if let Some(url) = global.base_url.as_deref().filter(|u| !u.trim().is_empty()) {
        b = b.base_url(url);
    }
    if let Some(ws) = global
        .workspace_id
        .as_deref()
        .filter(|w| !w.trim().is_empty())
    {
        b = b.workspace_id(ws);
    }
    if let Some(r) = retries {
        b = b.max_retries(r);
    }
    b.build().map_err(Failure::from)
}

/// A schema from `DIR/<slug>.json`, or from the API.
pub(super) async fn schema(
    client: Option<&Client>,
    slug: &str,
    dir: Option<&Path>,
) -> Result<TechniqueSchema, Failure> {
    if let Some(dir) = dir {
        let path = dir.join(format!("{slug}.json"));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Failure::usage(format!("--schemas: cannot read {}: {e}", path.display()))
        })?;
        return serde_json::from_str(&text).map_err(|e| {
            Failure::usage(format!(
                "--schemas: {} is not a technique schema: {e}",
                path.display()
            ))
        });
    }
    match client {
        Some(c) => c.technique(slug).await.map_err(Failure::from),
        None => Err(Failure::usage("no schema source")),
    }
}

fn inputs_short(schema: &TechniqueSchema) -> String {
    match &schema.inputs {
        None => "-".to_owned(),
        Some(slots) => slots
            .iter()
            .map(|s| {
                format!(
                    "{}:{}{}",
                    inputs::plain(&s.id),
                    inputs::plain(s.kind.as_str()),
                    if s.optional { "?" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

async fn techniques(global: &Global, out: &Out) -> Result<(), Failure> {
    let client = client(global, None)?;
    let list: Vec<TechniqueSchema> = client
        .techniques(ListTechniques::default())
        .try_collect()
        .await?;
    let rows: Vec<Value> = list
        .iter()
        .map(|t| {
            json!({
                "slug": t.slug_or_derived(),
                "technique_id": t.technique_id,
                "name": t.name,
                "run_cost": t.run_cost,
                "inputs": t.inputs.as_ref().map(|s| s.iter().map(|s| json!({
                    "id": s.id, "type": s.kind.as_str(), "optional": s.optional,
                })).collect::<Vec<_>>()),
            })
        })
        .collect();
    out.document(&Value::Array(rows.clone()));
    for row in &rows {
        out.event("technique", row.clone());
    }
    for t in &list {
        out.line(&format!(
            "{:<28} {:<32} {:>8}  {}",
            inputs::plain(t.slug_or_derived()),
            inputs::plain(&t.name),
            t.run_cost.map_or("-".to_owned(), |c| format!("{c} USD")),
            inputs_short(t)
        ));
    }
    Ok(())
}

async fn show(global: &Global, out: &Out, slug: &str, dir: Option<&Path>) -> Result<(), Failure> {
    let client = match dir {
        Some(_) => None,
        None => Some(client(global, None)?),
    };
    let schema = schema(client.as_ref(), slug, dir).await?;
    let flags = inputs::flags(&schema).map_err(Failure::usage)?;
    let doc = json!({
        "slug": schema.slug_or_derived(),
        "technique_id": schema.technique_id,
        "name": schema.name,
        "description": schema.description,
        "run_cost": schema.run_cost,
        "inputs": flags.iter().map(|f| json!({
            "id": f.id, "type": f.slot.kind.as_str(), "flag": format!("--{}", f.flag),
            "optional": f.slot.optional, "multiple": f.multiple,
            "name": f.slot.name, "description": f.slot.description,
        })).collect::<Vec<_>>(),
        "outputs": schema.outputs.iter().flatten().map(|s| json!({
            "id": s.id, "type": s.kind.as_str(), "name": s.name,
        })).collect::<Vec<_>>(),
    });
    out.document(&doc);
    out.event("technique", doc.clone());
    let slug_shown = inputs::plain(schema.slug_or_derived());
    out.line(&format!(
        "{} ({}), {}",
        slug_shown,
        inputs::plain(&schema.name),
        schema
            .run_cost
            .map_or("cost unknown".to_owned(), |c| format!("{c} USD per run"))
    ));
    if let Some(d) = &schema.description {
        out.line(&format!("  {}", inputs::plain(d)));
    }
    out.line(&format!("\nInputs (floret run {slug_shown} ...):"));
    for f in &flags {
        out.line(&format!(
            "  --{:<24} {:<12} {}{}{}",
            f.flag,
            inputs::plain(f.slot.kind.as_str()),
            if f.slot.optional {
                "optional"
            } else {
                "required"
            },
            if f.multiple { ", repeatable" } else { "" },
            f.slot
                .description
                .as_deref()
                .map(|d| format!("  {}", inputs::plain(d)))
                .unwrap_or_default()
        ));
    }
    out.line("\nOutputs:");
    for s in schema.outputs.iter().flatten() {
        out.line(&format!(
            "  {:<26} {}",
            inputs::plain(&s.id),
            inputs::plain(s.kind.as_str())
        ));
    }
    Ok(())
}

/// Reads `--flag VALUE` / `--flag=VALUE` from raw arguments, before the full command line
/// can be built (the schema decides the rest).
fn peek(rest: &[OsString], flag: &str) -> Option<String> {
    let long = format!("--{flag}");
    let mut it = rest.iter().map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        if a == "--" {
            return None;
        }
        if a == long {
            return it.next().map(|v| v.into_owned());
        }
        if let Some(v) = a.strip_prefix(&format!("{long}=")) {
            return Some(v.to_owned());
        }
    }
    None
}

fn has(rest: &[OsString], flag: &str) -> bool {
    rest.iter()
        .any(|a| a.to_string_lossy() == format!("--{flag}"))
}

async fn run(mut global: Global, slug: String, rest: Vec<OsString>) -> ExitCode {
    let began = Instant::now();
    // The flags that say where the schema comes from are read first.
    if let Some(url) = peek(&rest, "base-url") {
        global.base_url = Some(url);
    }
    if let Some(ws) = peek(&rest, "workspace-id") {
        global.workspace_id = Some(ws);
    }
    global.api_key_stdin |= has(&rest, "api-key-stdin");
    let early = Out::new(
        Mode::of(
            has(&rest, "json"),
            has(&rest, "jsonl"),
            has(&rest, "quiet") || has(&rest, "q"),
        ),
        known_key(&global).as_deref(),
    );
    let dir = peek(&rest, "schemas").map(PathBuf::from);
    let wait = peek(&rest, "timeout").and_then(|t| super::args::parse_duration(&t).ok());
    let prepared = async {
        let client = match (&dir, client(&global, wait)) {
            (_, Ok(c)) => Some(c),
            // Offline `--help` and checks work without a key; a run needs one later.
            (Some(_), Err(_)) => None,
            (None, Err(mut e)) => {
                e.message
                    .push_str(" (or read the schema offline with --schemas DIR)");
                return Err(e);
            }
        };
        let schema = schema(client.as_ref(), &slug, dir.as_deref()).await?;
        let flags = inputs::flags(&schema).map_err(Failure::usage)?;
        Ok((client, schema, flags))
    }
    .await;
    let (client, schema, flags) = match prepared {
        Ok(p) => p,
        Err(f) => return finish(&early, Err(f)),
    };
    let schema_time = began.elapsed();
    let mut argv: Vec<OsString> = vec![OsString::from("run")];
    argv.extend(rest);
    let matches = match inputs::run_command(&schema, &flags).try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => return clap_exit(e),
    };
    let out = Out::new(
        Mode::of(
            matches.get_flag("json"),
            matches.get_flag("jsonl"),
            matches.get_flag("quiet"),
        ),
        known_key(&global).as_deref(),
    );
    let verbose = global.verbose + matches.get_count("verbose");
    let result = run_checked(
        client,
        &out,
        &schema,
        &flags,
        &matches,
        verbose,
        schema_time,
    )
    .await;
    finish(&out, result)
}

async fn run_checked(
    client: Option<Client>,
    out: &Out,
    schema: &TechniqueSchema,
    flags: &[InputFlag],
    matches: &clap::ArgMatches,
    verbose: u8,
    schema_time: Duration,
) -> Result<(), Failure> {
    let slug = schema.slug_or_derived().to_owned();
    let checks_began = Instant::now();
    // 1. Every value checked, every problem reported, before anything is sent.
    let mut planned: Vec<(&InputFlag, InputValue)> = Vec::new();
    let mut problems = Vec::new();
    for (i, values) in inputs::values(matches, flags) {
        for v in values {
            match inputs::check(&flags[i], &v).await {
                Ok(value) => planned.push((&flags[i], value)),
                Err(p) => problems.push(p),
            }
        }
    }
    if !problems.is_empty() {
        return Err(Failure::usage(format!(
            "{}\nnothing was uploaded or run",
            problems.join("\n")
        )));
    }
    let client = client.ok_or_else(|| {
        Failure::usage(format!(
            "no API key: set {ENV_API_KEY} (or --api-key-stdin) to run `{slug}`"
        ))
    })?;
    let saving = Saving {
        download: matches.get_one::<String>("download").cloned(),
        overwrite: matches.get_flag("overwrite"),
    };
    if let Some(spec) = &saving.download {
        let declared: Vec<crate::wire::Slot> = schema.outputs.clone().unwrap_or_default();
        save::precheck(spec, &declared, "", saving.overwrite).map_err(save_failure)?;
    }
    let checks_time = checks_began.elapsed();
    // 2. Local files uploaded, each distinct file once.
    let started = Instant::now();
    let mut uploaded: BTreeMap<(PathBuf, String), String> = BTreeMap::new();
    let mut run_inputs = Vec::new();
    for (f, value) in planned {
        let wire_type = f.slot.kind.as_str().to_owned();
        let sent = match value {
            InputValue::Text(t) | InputValue::Url(t) => t,
            InputValue::File(path) => {
                let key = (path.clone(), wire_type.clone());
                match uploaded.get(&key) {
                    Some(url) => url.clone(),
                    None => {
                        let url = upload_for(&client, out, &path, &f.slot.kind).await?;
                        out.event(
                            "uploaded",
                            json!({"input": f.id, "path": path.display().to_string(), "url": url}),
                        );
                        uploaded.insert(key, url.clone());
                        url
                    }
                }
            }
        };
        run_inputs.push(RunInput::new(f.id.clone(), wire_type, sent));
    }
    let upload_time = started.elapsed();
    // 3. The run, under one idempotency key per invocation.
    let key = matches
        .get_one::<String>("idempotency-key")
        .cloned()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let handle = client
        .start_run(
            &slug,
            run_inputs,
            StartOptions::idempotency_key(key.clone()),
        )
        .await
        .map_err(|e| {
            let mut f = Failure::from(e);
            f.message.push_str(&format!(
                "\nto retry without paying twice: floret run {slug} ... --idempotency-key {key}"
            ));
            f
        })?;
    let run_id = handle.run_id().to_owned();
    out.note(&format!(
        "started {run_id} (idempotency key {key}; `--idempotency-key {key}` retries this run \
         without paying twice)"
    ));
    out.event(
        "created",
        json!({"run_id": run_id, "technique": slug, "idempotency_key": key}),
    );
    let run_began = Instant::now();
    if matches.get_flag("no-wait") {
        out.document(&json!({
            "run_id": run_id, "technique": slug, "status": "started", "idempotency_key": key,
        }));
        out.line(&run_id);
        out.note(&format!(
            "wait for it with: floret wait {run_id} --technique {slug}"
        ));
        return Ok(());
    }
    let waited = wait_and_save(&client, out, handle, &slug, &saving).await?;
    report_done(out, &waited, Some(&key));
    if verbose > 0 {
        // Where the time went (start-up is what precedes `schema`); the bench reads this.
        eprintln!(
            "floret: timings: schema {:.1} ms, checks {:.1} ms, upload {:.1} ms, run {:.1} ms",
            ms(schema_time),
            ms(checks_time),
            ms(upload_time),
            ms(run_began.elapsed())
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn upload_for(
    client: &Client,
    out: &Out,
    path: &Path,
    kind: &MediaType,
) -> Result<String, Failure> {
    let bar = if out.draws_progress() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "uploading {msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(path.display().to_string());
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let shown = bar.clone();
    let options = UploadOptions::default().progress(move |done, total| {
        if let Some(t) = total {
            shown.set_length(t);
        }
        shown.set_position(done);
    });
    let url = client
        .upload_for_slot(Upload::path(path), kind, options)
        .await;
    bar.finish_and_clear();
    url.map_err(Failure::from)
}

/// A completed run and what was saved of it.
struct Waited {
    run: Run,
    technique: String,
    saved: Vec<Saved>,
}

/// Waits (with progress; Ctrl-C ends the wait, not the run), then saves the outputs.
async fn wait_and_save(
    client: &Client,
    out: &Out,
    mut handle: RunHandle<Untyped>,
    technique: &str,
    saving: &Saving,
) -> Result<Waited, Failure> {
    let run_id = handle.run_id().to_owned();
    let resume = format!("floret wait {run_id} --technique {technique}");
    let bar = if out.draws_progress() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(format!("{run_id} pending"));
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
        shown.set_message(format!("{} {}", run.run_id, run.status));
        events.event(
            "progress",
            json!({"run_id": run.run_id, "status": run.status.as_str(), "progress": run.progress}),
        );
    };
    let waited = tokio::select! {
        r = handle.wait_run_with(on_update) => r,
        _ = tokio::signal::ctrl_c() => {
            bar.finish_and_clear();
            return Err(Failure::new(
                Exit::Interrupted,
                "interrupted",
                format!("stopped waiting; {run_id} keeps running on FLORA. Resume with: {resume}"),
            )
            .run_id(&run_id));
        }
    };
    bar.finish_and_clear();
    let run = match waited {
        Ok(run) => run,
        Err(e) => {
            let mut f = Failure::from(e).run_id(&run_id);
            match f.exit {
                Exit::TimedOut | Exit::Other => {
                    f.message
                        .push_str(&format!("\nnothing is lost; resume with: {resume}"));
                }
                Exit::RunFailed => {
                    out.event(
                        "failed",
                        json!({"run_id": run_id, "code": f.code, "message": f.message}),
                    );
                }
                _ => {}
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
            let saved = save::save_all(client, names, &run.outputs, spec, &options, None)
                .await
                .map_err(|e| save_failure(e).run_id(&run_id))?;
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

/// A saving problem as the command line reports it.
fn save_failure(e: SaveError) -> Failure {
    match e {
        SaveError::Refused(m) => Failure::usage(m),
        SaveError::Exists(_) => Failure::new(Exit::Other, "file_exists", e.to_string()),
        SaveError::Failed(e) => Failure::from(e),
    }
}

fn outputs_json(run: &Run) -> Vec<Value> {
    run.outputs
        .iter()
        .map(|o| json!({"id": o.output_id, "type": o.kind.as_str(), "url": o.url}))
        .collect()
}

fn report_done(out: &Out, w: &Waited, key: Option<&str>) {
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
        out.line(&format!(
            "{}\t{}",
            inputs::plain(&o.output_id),
            inputs::plain(&o.url)
        ));
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

async fn runs(global: &Global, out: &Out, slug: &str, limit: u32) -> Result<(), Failure> {
    let client = client(global, None)?;
    let technique = client.technique(slug).await?;
    let mut list: Vec<Run> = client
        .runs(ListRuns {
            limit: Some(limit.clamp(1, 100)),
            technique_id: Some(technique.technique_id.clone()),
            ..ListRuns::default()
        })
        .take(limit as usize)
        .try_collect()
        .await?;
    list.sort_by(|a, b| {
        b.created_at
            .partial_cmp(&a.created_at)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let rows: Vec<Value> = list.iter().map(run_json).collect();
    out.document(&Value::Array(rows.clone()));
    for r in rows {
        out.event("run", r);
    }
    for r in &list {
        out.line(&run_line(r));
    }
    Ok(())
}

fn run_json(r: &Run) -> Value {
    json!({
        "run_id": r.run_id, "status": r.status.as_str(), "progress": r.progress,
        "created_at": r.created_at, "charged_cost": r.charged_cost,
        "error_code": r.error_code.as_ref().map(|c| c.as_str().to_owned()),
        "outputs": outputs_json(r),
    })
}

fn run_line(r: &Run) -> String {
    format!(
        "{:<28} {:<10} {:>5} {}",
        r.run_id,
        r.status.as_str(),
        r.progress.map_or(String::new(), |p| format!("{p:.0}%")),
        r.error_code.as_ref().map_or("", |c| c.as_str())
    )
}

async fn get(global: &Global, out: &Out, technique: &str, run_id: &str) -> Result<(), Failure> {
    let client = client(global, None)?;
    let run = client.get_run(technique, run_id).await?;
    out.document(&run_json(&run));
    out.event("run", run_json(&run));
    out.line(&run_line(&run));
    for o in &run.outputs {
        out.line(&format!(
            "  {}\t{}",
            inputs::plain(&o.output_id),
            inputs::plain(&o.url)
        ));
    }
    Ok(())
}

async fn upload(global: &Global, out: &Out, paths: &[PathBuf]) -> Result<(), Failure> {
    // Every file checked before the first is sent.
    for p in paths {
        let meta =
            std::fs::metadata(p).map_err(|e| Failure::usage(format!("{}: {e}", p.display())))?;
        if !meta.is_file() {
            return Err(Failure::usage(format!(
                "{} is not a regular file",
                p.display()
            )));
        }
    }
    let client = client(global, None)?;
    let mut rows = Vec::new();
    for p in paths {
        let asset = client
            .upload(Upload::path(p), UploadOptions::default())
            .await?;
        let url = asset.url.clone().unwrap_or_default();
        out.line(&url);
        let row = json!({"path": p.display().to_string(), "asset_id": asset.asset_id, "url": url});
        out.event("uploaded", row.clone());
        rows.push(row);
    }
    out.document(&Value::Array(rows));
    Ok(())
}

async fn sandbox(dir: Option<&Path>, port: u16) -> Result<(), Failure> {
    let fake = crate::testing::FakeFlora::new();
    let default = Path::new("schemas");
    let (n, from) = match dir {
        Some(dir) => (serve_schemas(&fake, dir)?, dir.display().to_string()),
        None if default.is_dir() => (serve_schemas(&fake, default)?, "schemas".to_owned()),
        None => (builtin(&fake)?, "floret's built-in techniques".to_owned()),
    };
    let served = fake.serve_on(port).await?;
    println!("export FLORA_BASE_URL={}", served.base_url());
    println!("export FLORA_API_KEY=sk_sandbox");
    eprintln!(
        "floret sandbox: {n} technique(s) from {from} on {}; no key, no bill. Ctrl-C stops it.",
        served.base_url()
    );
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
}

/// Serves every `<slug>.json` of `dir`; how many.
fn serve_schemas(fake: &crate::testing::FakeFlora, dir: &Path) -> Result<usize, Failure> {
    let files = std::fs::read_dir(dir).map_err(|e| {
        Failure::usage(format!(
            "--schemas {}: {e}. The sandbox serves technique schema files: pass --schemas DIR, a \
             directory of <slug>.json (flora-codegen's `schemas/`, or one `flora-codegen fetch` \
             wrote)",
            dir.display()
        ))
    })?;
    let mut paths: Vec<PathBuf> = files
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in &paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        let schema: TechniqueSchema = serde_json::from_str(&text).map_err(|e| {
            Failure::usage(format!("{} is not a technique schema: {e}", path.display()))
        })?;
        fake.completes_untyped(&schema);
    }
    Ok(paths.len())
}

/// The techniques generated into flora-api (its `techniques` feature).
#[cfg(feature = "techniques")]
fn builtin(fake: &crate::testing::FakeFlora) -> Result<usize, Failure> {
    for info in crate::techniques::TECHNIQUES {
        fake.completes_technique(info);
    }
    Ok(crate::techniques::TECHNIQUES.len())
}

#[cfg(not(feature = "techniques"))]
fn builtin(_: &crate::testing::FakeFlora) -> Result<usize, Failure> {
    Err(Failure::usage(
        "no ./schemas here and this floret has no built-in techniques (built without the \
         `techniques` feature): pass --schemas DIR, a directory of <slug>.json",
    ))
}
