//! A run creation whose answer was lost: the run found again in run history (with the pure
//! span of `reconcile.rs`), or the error that carries its key, never one that invites a
//! second paid run.

use crate::client::{Call, Client};
use crate::error::Error;
use crate::reconcile::{Known, Span, candidates, unix_now};
use crate::wire::Run;

use super::ListRuns;

/// Pages of run history read at most to find a lost run (newest first, 100 a page).
const MAX_PAGES: usize = 10;

/// Where a lost creation's run would be listed.
pub(crate) enum History<'a> {
    /// A technique's run history: the `tech_…` id, or the slug to look it up by.
    Technique(&'a str),
    /// `GET /generations` of a project, narrowed to one model.
    #[cfg_attr(not(feature = "models"), allow(dead_code))]
    Generations {
        project_id: &'a str,
        model_id: &'a str,
    },
}

/// A run creation whose outcome is in doubt.
pub(crate) struct LostCreate<'a> {
    /// The key it was sent under.
    pub key: &'a str,
    /// Where its run would be listed.
    pub history: History<'a>,
    /// This machine's unix seconds when its first attempt left.
    pub first_sent: f64,
}

impl Client {
    /// After a run creation failed: the run, when the failure was a lost answer whose run the
    /// history singles out; else the error to report, which carries the key (and the
    /// candidates) whenever a run may exist, so no caller is told to start a second one.
    pub(crate) async fn recover_create(
        &self,
        call: &Call,
        error: Error,
        lost: LostCreate<'_>,
    ) -> Result<Run, Error> {
        let may_exist = |cause: Error, candidates: Vec<String>| Error::RunMayExist {
            idempotency_key: lost.key.to_owned(),
            candidates,
            cause: Box::new(cause),
        };
        // A 2xx that could not be read: the run was created; its id is in that answer.
        if matches!(error, Error::Decode { .. } | Error::ResponseTooLarge { .. }) {
            return Err(may_exist(error, Vec::new()));
        }
        // Every answer was a refusal: nothing was created by this call (a 409 then means the
        // key was used by an earlier call, which `Error::Idempotency` says).
        if !call.maybe_handled {
            return Err(error);
        }
        let duplicate = matches!(&error, Error::Idempotency { api, .. } if api.status == 409);
        if !duplicate {
            // Answers lost to the end: the key replays the run, so it is what to retry with.
            return Err(may_exist(error, Vec::new()));
        }
        // Runs this client created are someone else's; those created before this one's first
        // attempt bound its span from below, in FLORA's own clock.
        let created = self.inner.created.all();
        let known = Known {
            before: created
                .iter()
                .filter(|(_, at)| *at <= lost.first_sent)
                .map(|(id, _)| id.as_str())
                .collect(),
            sent_at: Some(lost.first_sent),
            over_at: Some(unix_now()),
            clock_skew: call.server_clock.map(|(server, local)| server - local),
            ..Known::default()
        };
        let owned = |id: &str| created.iter().any(|(c, _)| c == id);
        let listed = match lost.history {
            History::Technique(technique) => self.history_since(technique, &known).await,
            #[cfg(feature = "models")]
            History::Generations {
                project_id,
                model_id,
            } => self.generations_since(project_id, model_id, &known).await,
            #[cfg(not(feature = "models"))]
            History::Generations { .. } => Ok(Vec::new()),
        };
        match listed {
            Ok(runs) => {
                let span = Span::of(&runs, &known);
                let found: Vec<String> = candidates(&runs, span, owned)
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                if let [only] = found.as_slice()
                    && let Some(run) = runs.into_iter().find(|r| r.run_id == *only)
                {
                    tracing::info!(run_id = %only, "a lost answer's run was found in run history");
                    return Ok(run);
                }
                Err(may_exist(error, found))
            }
            Err(listing) => {
                tracing::warn!(error = %listing, "run history could not be read to find a lost run");
                Err(may_exist(error, Vec::new()))
            }
        }
    }

    /// The technique's run history, newest first, back to the fallback bound of `known` (at
    /// most [`MAX_PAGES`] pages).
    pub(crate) async fn history_since(
        &self,
        technique: &str,
        known: &Known<'_>,
    ) -> Result<Vec<Run>, Error> {
        let technique_id = if technique.starts_with("tech_") {
            technique.to_owned()
        } else {
            self.technique(technique).await?.technique_id
        };
        let query = ListRuns {
            technique_id: Some(technique_id),
            limit: Some(100),
            ..ListRuns::default()
        };
        read_back(known, |cursor| {
            let q = ListRuns {
                cursor,
                ..query.clone()
            };
            async move { self.list_runs(&q).await }
        })
        .await
    }
}

/// A listing's pages, newest first, read until one reaches back past the fallback bound of
/// `known` (at most [`MAX_PAGES`]): where a lost creation's run is, whichever listing
/// (technique runs, generations) it is in.
pub(crate) async fn read_back<F, Fut>(known: &Known<'_>, mut page: F) -> Result<Vec<Run>, Error>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<crate::pages::Page<Run>, Error>>,
{
    let mut runs: Vec<Run> = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let page = page(cursor.take()).await?;
        runs.extend(page.items);
        let from = Span::of(&runs, known).from;
        let older = runs
            .last()
            .and_then(|r| r.created_at)
            .zip(from)
            .is_some_and(|(c, f)| c < f);
        match page.next_cursor {
            Some(next) if !older => cursor = Some(next),
            _ => break,
        }
    }
    Ok(runs)
}
