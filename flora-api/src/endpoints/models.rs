//! The other half of the API (feature `models`): the model catalog (`GET /models`),
//! projects (`GET /projects`, where generations land) and generation history
//! (`GET /generations`).

use crate::catalog::{ModelSchema, Project};
use crate::client::Client;
use crate::error::Error;
use crate::pages::{ListRequest, Page};
use crate::reconcile::Known;
use crate::wire::{Run, RunStatus};

use super::push_opt;

/// Filters for listing generations (`GET /generations`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListGenerations {
    /// Page size, 1–100.
    pub limit: Option<u32>,
    /// Start from this cursor.
    pub cursor: Option<String>,
    /// Only generations of this project (`prj_…`).
    pub project_id: Option<String>,
    /// Only generations with this status.
    pub status: Option<RunStatus>,
    /// Only these runs (`run_…`).
    pub run_ids: Vec<String>,
    /// Workspace (`ws_…`); defaults to the client's.
    pub workspace_id: Option<String>,
}

/// The model id a listed generation names (`model: {model_id}` or `model: "…"`), if any.
pub(crate) fn model_of(run: &Run) -> Option<&str> {
    match run.extra.get("model")? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Object(m) => m.get("model_id").and_then(|v| v.as_str()),
        _ => None,
    }
}

/// # Models, projects and generations (feature `models`)
impl Client {
    /// Every model of the catalog (`GET /models`, all pages), of one type (`image`, `video`,
    /// `audio`, `text`) or all.
    ///
    /// ```no_run
    /// # async fn demo(client: flora_api::Client) -> Result<(), flora_api::Error> {
    /// for m in client.models(Some("image")).await? {
    ///     println!("{} ({} params)", m.model_id, m.params.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn models(&self, kind: Option<&str>) -> Result<Vec<ModelSchema>, Error> {
        let mut query = vec![("limit", "100".to_owned())];
        push_opt(&mut query, "type", kind.map(str::to_owned));
        let req = ListRequest {
            segments: vec!["models"],
            query,
            items_key: "models",
        };
        futures_util::TryStreamExt::try_collect(self.paginate(req, None)).await
    }

    /// One model of the catalog, by id (read from the catalog: FLORA has no per-model route).
    pub async fn model(&self, model_id: &str) -> Result<ModelSchema, Error> {
        let all = self.models(None).await?;
        let found = all.iter().position(|m| m.model_id == model_id);
        match found {
            Some(i) => Ok(all.into_iter().nth(i).ok_or_else(|| {
                Error::Config(format!("model `{model_id}` vanished from the catalog"))
            })?),
            None => {
                let mut ids: Vec<&str> = all.iter().map(|m| m.model_id.as_str()).collect();
                ids.sort_unstable();
                Err(Error::InvalidInput(format!(
                    "model `{model_id}` is not in the catalog the key sees; it has: {}",
                    if ids.is_empty() {
                        "no model".to_owned()
                    } else {
                        ids.join(", ")
                    }
                )))
            }
        }
    }

    /// Every project the key sees (`GET /projects`, all pages).
    pub async fn projects(&self) -> Result<Vec<Project>, Error> {
        let mut query = vec![("limit", "100".to_owned())];
        push_opt(&mut query, "workspace_id", self.inner.workspace_id.clone());
        let req = ListRequest {
            segments: vec!["projects"],
            query,
            items_key: "projects",
        };
        futures_util::TryStreamExt::try_collect(self.paginate(req, None)).await
    }

    /// One page of generation history (`GET /generations`), newest first.
    pub async fn list_generations(&self, q: &ListGenerations) -> Result<Page<Run>, Error> {
        let mut query = Vec::new();
        push_opt(&mut query, "limit", q.limit.map(|l| l.to_string()));
        push_opt(&mut query, "project_id", q.project_id.clone());
        push_opt(
            &mut query,
            "status",
            q.status.as_ref().map(|s| s.to_string()),
        );
        if !q.run_ids.is_empty() {
            query.push(("run_ids", q.run_ids.join(",")));
        }
        push_opt(
            &mut query,
            "workspace_id",
            q.workspace_id
                .clone()
                .or_else(|| self.inner.workspace_id.clone()),
        );
        let req = ListRequest {
            segments: vec!["generations"],
            query,
            items_key: "generations",
        };
        self.page(&req, q.cursor.as_deref()).await
    }

    /// A project's generations of one model, newest first, back to the fallback bound of
    /// `known`: where a lost `/generate` answer's run is.
    pub(crate) async fn generations_since(
        &self,
        project_id: &str,
        model_id: &str,
        known: &Known<'_>,
    ) -> Result<Vec<Run>, Error> {
        let mut runs = super::recover::read_back(known, |cursor| {
            let q = ListGenerations {
                limit: Some(100),
                cursor,
                project_id: Some(project_id.to_owned()),
                ..ListGenerations::default()
            };
            async move { self.list_generations(&q).await }
        })
        .await?;
        // A listed generation that names another model is not this one; one that names none
        // stays a candidate (unclear, never wrongly excluded).
        runs.retain(|r| model_of(r).is_none_or(|m| m == model_id));
        Ok(runs)
    }
}
