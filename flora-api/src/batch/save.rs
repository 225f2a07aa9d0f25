//! A completed item's outputs saved where the batch's template says, staging folders
//! journaled first, the files journaled with their sha256.

use super::journal::ItemRow;
use super::options::Event;
use super::outputs;
use super::runner::Batch;
use crate::error::Error;
use crate::saving::{self, Names};

impl Batch {
    /// Saves the item's outputs (`only`: those at these indices, the others kept as
    /// journaled), retrying transient failures; journals the files with their sha256.
    pub(crate) async fn save(
        &self,
        row: &ItemRow,
        template: &str,
        only: Option<&[usize]>,
    ) -> Result<(), Error> {
        let run_outputs: Vec<crate::RunOutput> = row
            .outputs
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or_default();
        let run_id = row.run_id.clone().unwrap_or_default();
        // `{key}` is the item's output name, decided with the plan: distinct from every
        // other item's, so no item ever writes (or overwrites) another's files.
        let names = Names {
            run_id: &run_id,
            key: &row.name,
        };
        let save_options = saving::SaveOptions::default()
            .overwrite(self.options.overwrite)
            .staging_tag(&self.meta.batch_id);
        // The staging folders are journaled before anything is staged there: a kill in the
        // middle leaves nothing the next run of the batch does not find.
        for dir in saving::staging_dirs(names, &run_outputs, template) {
            let new = self
                .saved_into
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(dir.clone());
            if new {
                self.journal().staging_in(&dir)?;
            }
        }
        // An interrupted save left some files: those with the very bytes are kept. Each
        // download is retried by the saver's policy (the batch's), not by a loop here.
        let saving = saving::save_all(
            &self.saver,
            names,
            &run_outputs,
            template,
            &save_options,
            only,
        );
        match saving.await {
            Ok(saved) => {
                let old = if only.is_some() {
                    outputs::parse(row.saved.as_deref())
                } else {
                    Vec::new()
                };
                let files = outputs::merge(old, &saved);
                let json = serde_json::to_string(&files).unwrap_or_default();
                self.journal().saved(row.pos, &json)?;
                self.emit(Event::Saved {
                    key: row.key.clone(),
                    paths: saved.into_iter().map(|s| s.path).collect(),
                });
            }
            Err(e) => {
                // A saved item whose files could not be restored is not saved any more.
                self.journal().unsaved(row.pos)?;
                self.emit(Event::NotSaved {
                    key: row.key.clone(),
                    error: e.to_string(),
                });
            }
        }
        Ok(())
    }
}
