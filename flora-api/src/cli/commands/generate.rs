//! `floret generate MODEL --prompt … --<param> VALUE …`: every param checked against the
//! model's catalog entry before anything is sent (FLORA itself bills an unknown value with
//! its default), one generation under one idempotency key, waited on with progress, outputs
//! saved atomically, and the settled charge reported (or a floor, said to be one).

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Instant;

use clap::FromArgMatches;
use serde_json::json;

use super::super::args::RunFlags;
use super::super::output::{Mode, Out, finish, init_logging};
use super::super::params;
use super::super::report::{Exit, Failure};
use super::super::session::Session;
use super::wait::bounded;
use crate::catalog::ModelSchema;
use crate::client::Client;
use crate::generation::{Charge, GenerateOptions};
use crate::saving as save;
use crate::saving::Names;
use crate::wire::Run;

/// `generate`: `rest` are the arguments after the model id.
pub(super) async fn generate(session: Session, model_id: String, rest: Vec<OsString>) -> ExitCode {
    let began = Instant::now();
    let given = match super::super::inputs::early_flags(&rest) {
        Ok(given) => given,
        Err(e) => return super::super::clap_exit(e, Mode::for_usage_errors(&rest)),
    };
    let early = session.out(mode(&given));
    let dir = given.schema_dir.schemas.clone();
    let deadline = given.deadline.timeout.map(|t| began + t);
    let client = match (&dir, session.client(given.deadline.timeout)) {
        (_, Ok(c)) => Some(c),
        (Some(_), Err(_)) => None,
        (None, Err(mut e)) => {
            e.message
                .push_str(" (or read the model offline with --schemas DIR: DIR/models/MODEL.json)");
            return finish(&early, Err(e));
        }
    };
    let model = match bounded(
        &session,
        deadline,
        session.model(client.as_ref(), &model_id, dir.as_deref()),
    )
    .await
    {
        Ok(Ok(m)) => m,
        Ok(Err(f)) => return finish(&early, Err(f)),
        Err(_) => {
            let f = Failure::new(
                Exit::Interrupted,
                "interrupted",
                "stopped while reading the model; nothing was sent",
            );
            return finish(&early, Err(f));
        }
    };
    let flags = match params::flags(&model) {
        Ok(f) => f,
        Err(e) => return finish(&early, Err(Failure::usage(e))),
    };
    let mut argv: Vec<OsString> = vec![OsString::from("generate")];
    argv.extend(rest.iter().cloned());
    let matches = match params::command(&model, &flags).try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => return super::super::clap_exit(e, early.mode),
    };
    let given = match RunFlags::from_arg_matches(&matches) {
        Ok(given) => given,
        Err(e) => return super::super::clap_exit(e, early.mode),
    };
    let out = session.out(mode(&given));
    init_logging(session.global.verbose + given.global.verbose, &out);
    let result = go(
        &session, &out, client, &model, &flags, &matches, &given, deadline,
    )
    .await;
    finish(&out, result)
}

fn mode(given: &RunFlags) -> Mode {
    let f = &given.format;
    Mode::of(f.json, f.jsonl, f.quiet)
}

#[allow(clippy::too_many_arguments)]
async fn go(
    session: &Session,
    out: &Out,
    client: Option<Client>,
    model: &ModelSchema,
    flags: &[params::ParamFlag],
    matches: &clap::ArgMatches,
    given: &RunFlags,
    deadline: Option<Instant>,
) -> Result<(), Failure> {
    let prompt = matches
        .get_one::<String>("prompt")
        .cloned()
        .unwrap_or_default();
    let values = params::values(model, flags, matches).map_err(Failure::usage)?;
    // The one check, before a key is even needed: a bad value is exit 2, nothing sent.
    crate::model::check_params(&model.model_id, &prompt, &model.rules(), &values)
        .map_err(Failure::from)?;
    if let Some(spec) = &given.saving.download {
        // One output of the model's type, as a generation makes (FLORA may send more: they
        // are then named by their index, never refused after paying).
        let kind = crate::kinds::MediaKind::named(&model.kind)
            .map_or("text", crate::kinds::MediaKind::wire);
        let declared: Vec<crate::wire::Slot> =
            serde_json::from_value(json!([{"id": "output1", "type": kind}])).unwrap_or_default();
        save::precheck(spec, &declared, "", given.saving.overwrite)
            .map_err(|e| Failure::usage(e.to_string()))?;
    }
    let Some(client) = client else {
        return Err(Failure::new(
            Exit::Auth,
            "no_key",
            format!(
                "the params are valid; to generate, set {}",
                crate::ENV_API_KEY
            ),
        ));
    };
    let options = GenerateOptions {
        idempotency_key: given.idempotency_key.clone(),
        ..GenerateOptions::default()
    };
    let started = client.start_generation_untyped(model, &prompt, values, options);
    let mut handle = match bounded(session, deadline, started).await {
        Ok(h) => h.map_err(Failure::from)?,
        Err(_) => {
            return Err(Failure::new(
                Exit::Interrupted,
                "interrupted",
                "stopped while starting; if FLORA started the generation, `floret generations` \
                 lists it",
            ));
        }
    };
    let run_id = handle.run_id().to_owned();
    let key = handle.idempotency_key();
    out.event(
        "created",
        json!({"run_id": run_id, "model": model.model_id, "idempotency_key": key, "quote": handle.quote()}),
    );
    out.note(&format!(
        "{run_id} started ({}; its quote {}, not the charge)",
        model.model_id,
        handle
            .quote()
            .map_or("unknown".to_owned(), |q| format!("{q} USD"))
    ));
    if given.no_wait {
        out.document(&json!({"run_id": run_id, "model": model.model_id, "idempotency_key": key, "status": "started"}));
        out.line(&run_id);
        return Ok(());
    }
    let events = out.clone();
    let on_update = move |run: &Run| {
        events.event(
            "progress",
            json!({"run_id": run.run_id, "status": run.status.as_str(), "progress": run.progress}),
        );
    };
    let waited = bounded(session, deadline, handle.wait_with(on_update)).await;
    let done = match waited {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return Err(Failure::from(e).run_id(&run_id).after_run(Exit::Other)),
        Err(timed_out) => {
            let (exit, code) = if timed_out {
                (Exit::TimedOut, "timeout")
            } else {
                (Exit::Interrupted, "interrupted")
            };
            return Err(Failure::new(
                exit,
                code,
                format!("stopped waiting; {run_id} keeps running on FLORA"),
            )
            .run_id(&run_id));
        }
    };
    let saved = match &given.saving.download {
        Some(spec) => {
            let names = Names {
                run_id: &run_id,
                key: "",
            };
            let outputs: Vec<crate::wire::RunOutput> = done
                .outputs
                .iter()
                .enumerate()
                .map(|(i, o)| crate::wire::RunOutput {
                    output_id: format!("output{}", i + 1),
                    kind: o.kind.clone(),
                    url: o.value.clone(),
                    extra: Default::default(),
                })
                .collect();
            let options = save::SaveOptions::default().overwrite(given.saving.overwrite);
            let saving = save::save_all(&client, names, &outputs, spec, &options, None);
            match bounded(session, deadline, saving).await {
                Ok(Ok(saved)) => saved,
                Ok(Err(e)) => {
                    return Err(Failure::new(
                        Exit::NotSaved,
                        "not_saved",
                        format!("the generation completed but its outputs were not saved: {e}"),
                    )
                    .run_id(&run_id));
                }
                Err(_) => {
                    return Err(Failure::new(
                        Exit::NotSaved,
                        "not_saved",
                        "stopped while saving (the generation completed; no partial file is left)",
                    )
                    .run_id(&run_id));
                }
            }
        }
        None => Vec::new(),
    };
    let charge = match done.charge {
        Charge::Settled(c) => json!({"settled": c}),
        Charge::Unsettled { quote, waited } => {
            json!({"settled": null, "floor": 0.0, "quote": quote, "waited_s": waited.as_secs()})
        }
    };
    out.document(&json!({
        "run_id": run_id,
        "model": model.model_id,
        "status": "completed",
        "idempotency_key": key,
        "outputs": done.outputs.iter().map(|o| json!({"type": o.kind.as_str(), "value": o.value})).collect::<Vec<_>>(),
        "charge": charge,
        "saved": saved.iter().map(save::Saved::json).collect::<Vec<_>>(),
    }));
    for o in &done.outputs {
        out.line(&o.value);
    }
    for s in &saved {
        out.line(&format!("saved {} ({} bytes)", s.path.display(), s.bytes));
    }
    out.note(&format!("{run_id} completed, charged {}", done.charge));
    Ok(())
}
