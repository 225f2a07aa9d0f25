//! Batches of generations (feature `models`) on the one batch engine: made from a plan
//! checked row by row against the model's catalog entry, and watched through the project's
//! `GET /generations`. FLORA answers a repeated generation key with 409 and no run, so a
//! resumed item whose answer was lost is found again there (`Batch::reconcile`), never sent
//! under a new key.

use std::path::Path;

use serde_json::Value;

use super::journal::{Journal, Meta, ModelMeta};
use super::model::{ModelTarget, run_cost, validate_generations};
use super::options::BatchOptions;
use super::plan::PlanItem;
use super::runner::Batch;
use super::target::Target;
use super::validate;
use crate::catalog::ModelSchema;
use crate::client::Client;
use crate::error::Error;

impl Batch {
    /// A new batch of generations of `model`: every row read by the model's param types and
    /// checked (nothing is sent when one is wrong), the estimate held against `max_cost`,
    /// the project (the client's, else an error listing those the key sees) and workspace
    /// fixed, and the journal written at `path` (whole or not at all).
    ///
    /// ```no_run
    /// # async fn demo(client: flora_api::Client) -> Result<(), flora_api::Error> {
    /// use flora_api::batch::{Batch, BatchOptions, read_plan};
    /// let model = client.model("t2i-flux-2-pro").await?;
    /// // {"prompt": "a cat", "aspect_ratio": "square_1_1", "key": "cat"} per line
    /// let items = read_plan("prompts.jsonl".as_ref())?;
    /// let batch =
    ///     Batch::create_generations(&client, "prompts.journal".as_ref(), &model, &items, BatchOptions::default())
    ///         .await?;
    /// let summary = batch.run().await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_generations(
        client: &Client,
        path: &Path,
        model: &ModelSchema,
        items: &[PlanItem],
        options: BatchOptions,
    ) -> Result<Batch, Error> {
        options.check()?;
        validate_generations(model, items)?;
        validate::check_cost(run_cost(model), items.len(), options.max_cost)?;
        if let Some(spec) = &options.download {
            validate::check_download(spec, items.len())?;
        }
        // Free requests at most (`GET /projects` for the error, `GET /workspaces`).
        let project_id = client.generation_project(None).await?;
        let workspace_id = client
            .resolved_workspace(None, "a batch of generations")
            .await?;
        let meta = Meta {
            batch_id: uuid::Uuid::new_v4().to_string(),
            slug: model.model_id.clone(),
            technique_id: String::new(),
            run_cost: run_cost(model),
            schema: Value::Null,
            download: options.download.clone(),
            max_cost: options.max_cost,
            model: Some(ModelMeta {
                model_id: model.model_id.clone(),
                model_type: model.kind.clone(),
                project_id: project_id.clone(),
                workspace_id: workspace_id.clone(),
                catalog: serde_json::to_value(model).unwrap_or(Value::Null),
            }),
        };
        let names = validate::output_names(items);
        let journal = Journal::create(path, &meta, items, &names)?;
        let target = Target::Model(ModelTarget {
            schema: model.clone(),
            project_id,
            workspace_id,
        });
        Ok(Batch::with(client, journal, meta, target, options))
    }

    /// One round's listing of the generations in flight: `GET /generations` of the project
    /// narrowed to their ids, 100 a request (FLORA measured one list of 100 at 265 ms, 20
    /// single reads at 6.2 s). Ended ones are delivered; a completed one listed without its
    /// charge is read alone (`GET /runs/{id}`) for it. A failed listing ends the round's
    /// listing (the next round lists again).
    pub(super) async fn list_generations_ended(
        &self,
        model: &ModelTarget,
        alone: &mut Vec<String>,
    ) {
        for ids in self.watcher.waited().chunks(100) {
            if self.abort.is_cancelled() {
                return;
            }
            let query = crate::endpoints::models::ListGenerations {
                limit: Some(100),
                project_id: Some(model.project_id.clone()),
                run_ids: ids.to_vec(),
                ..Default::default()
            };
            let page = match self.windowed(|| self.client.list_generations(&query)).await {
                Ok(page) => page,
                Err(e) => {
                    self.listing_failed(&e);
                    return;
                }
            };
            self.listing_answered();
            for run in page.items {
                if !self.watcher.is_waited(&run.run_id) || !crate::poll::has_ended(&run) {
                    continue;
                }
                if run.status == crate::wire::RunStatus::Completed && run.charged_cost.is_none() {
                    alone.push(run.run_id);
                } else {
                    self.watcher.deliver(run);
                }
            }
        }
    }
}
