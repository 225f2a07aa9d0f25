//! One file per command; `dispatch` picks it. Every command stands on the session (key,
//! client, schema, the one redacting output, Ctrl-C) and reports through the exit-code table.

mod completions;
mod generate;
mod get;
mod models;
mod run;
mod runs;
mod sandbox;
mod show;
mod techniques;
mod upload;
mod wait;

use std::ffi::OsString;
use std::process::ExitCode;

use super::args::{Command, Format};
use super::output::{Mode, Out, finish, init_logging};
use super::report::{Exit, Failure};
use super::session::Session;

/// Runs the command. `args` are the arguments after the program name, as given (for the
/// commands floret prints to resume).
pub(crate) async fn dispatch(command: Command, session: Session, args: Vec<OsString>) -> ExitCode {
    if !matches!(command, Command::Run { .. } | Command::Generate { .. }) {
        // `run` sets its logging up once its own `-v` flags are read.
        init_logging(session.global.verbose, &session.out(Mode::Human));
    }
    match command {
        Command::Run { slug, rest } => run::run(session, slug, rest, args).await,
        Command::Techniques { format } => {
            let out = out_for(&session, &format);
            finish(
                &out,
                interruptible(&session, techniques::techniques(&session, &out)).await,
            )
        }
        Command::Show {
            slug,
            schema_dir,
            format,
        } => {
            let out = out_for(&session, &format);
            let shown = show::show(&session, &out, &slug, schema_dir.schemas.as_deref());
            finish(&out, interruptible(&session, shown).await)
        }
        Command::Generate { model, rest } => generate::generate(session, model, rest).await,
        Command::Models { kind, format } => {
            let out = out_for(&session, &format);
            let listed = models::models(&session, &out, kind.as_deref());
            finish(&out, interruptible(&session, listed).await)
        }
        Command::ShowModel {
            model,
            schemas,
            format,
        } => {
            let out = out_for(&session, &format);
            let shown = models::show_model(&session, &out, &model, schemas.as_deref());
            finish(&out, interruptible(&session, shown).await)
        }
        Command::Runs {
            slug,
            limit,
            format,
        } => {
            let out = out_for(&session, &format);
            finish(
                &out,
                interruptible(&session, runs::runs(&session, &out, &slug, limit)).await,
            )
        }
        Command::Get {
            run_id,
            technique,
            format,
        } => {
            let out = out_for(&session, &format);
            let got = get::get(&session, &out, &technique, &run_id);
            finish(&out, interruptible(&session, got).await)
        }
        Command::Wait {
            run_id,
            technique,
            deadline,
            saving,
            format,
        } => {
            let out = out_for(&session, &format);
            let waited = wait::wait(
                &session,
                &out,
                &run_id,
                &technique,
                deadline.timeout,
                &saving,
            );
            finish(&out, waited.await)
        }
        Command::Upload { paths, format } => {
            let out = out_for(&session, &format);
            finish(
                &out,
                interruptible(&session, upload::upload(&session, &out, &paths)).await,
            )
        }
        Command::Completions { shell } => {
            completions::completions(&session.out(Mode::Human), shell);
            ExitCode::SUCCESS
        }
        Command::Batch { command } => super::batch::dispatch(&session, command).await,
        Command::Sandbox { schemas, port } => {
            let out = session.out(Mode::Human);
            finish(
                &out,
                sandbox::sandbox(&session, &out, schemas.as_deref(), port).await,
            )
        }
        #[cfg(feature = "mcp")]
        Command::Mcp(args) => super::mcp::serve(session, args).await,
    }
}

fn out_for(session: &Session, format: &Format) -> Out {
    session.out(Mode::of(format.json, format.jsonl, format.quiet))
}

/// A command that sends nothing paid: Ctrl-C ends it at once, saying so.
async fn interruptible(
    session: &Session,
    work: impl std::future::Future<Output = Result<(), Failure>>,
) -> Result<(), Failure> {
    tokio::select! {
        r = work => r,
        () = session.interrupt.cancelled() => Err(Failure::new(
            Exit::Interrupted,
            "interrupted",
            "interrupted; nothing paid was started",
        )),
    }
}
