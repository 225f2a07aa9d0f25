//! The journal's state changes: each one transaction, guarded by the states an item may
//! move from (see `transition`).

use std::path::Path;

use rusqlite::{OptionalExtension, params};

use super::{ItemState, Journal, journal_error};
use crate::error::Error;

impl Journal {
    /// Committed while the item holds its place to send, right before the POST: the key and
    /// the exact body a resume sends again.
    pub(crate) fn submitting(
        &self,
        pos: i64,
        idem: &str,
        body: &str,
        at: f64,
    ) -> Result<(), Error> {
        self.transition(
            pos,
            &[ItemState::Planned, ItemState::Uploading],
            ItemState::Submitting,
            "idem = ?3, body = ?4, intent_at = ?5",
            &[&idem, &body, &at],
        )
    }

    /// The moment the item's first POST leaves (kept across resumes; its run, if any, was
    /// created after it).
    pub(crate) fn sending(&self, pos: i64, at: f64) -> Result<(), Error> {
        self.exec(
            "UPDATE items SET sent_at = ?2 WHERE pos = ?1 AND sent_at IS NULL",
            params![pos, at],
        )
        .map(drop)
    }

    /// The item's first POST was alone from start to end (no other submission overlapped
    /// it), so any item sent after it was sent after its run was created: the upper bound of
    /// a later reconciliation holds.
    pub(crate) fn solo(&self, pos: i64) -> Result<(), Error> {
        self.exec("UPDATE items SET solo = 1 WHERE pos = ?1", params![pos])
            .map(drop)
    }

    pub(crate) fn sent_at(&self, pos: i64) -> Result<Option<f64>, Error> {
        self.conn
            .query_row(
                "SELECT sent_at FROM items WHERE pos = ?1",
                params![pos],
                |r| r.get(0),
            )
            .map_err(|e| journal_error(&self.path, e))
    }

    /// Runs whose ids were known before `at` (this machine's clock on both sides), latest
    /// first: each was created before any POST sent after `at`.
    pub(crate) fn runs_known_before(&self, at: f64) -> Result<Vec<String>, Error> {
        self.run_ids(
            "SELECT run_id FROM items WHERE run_id IS NOT NULL AND answered_at < ?1 \
             ORDER BY answered_at DESC LIMIT 64",
            params![at],
        )
    }

    /// Runs of other items whose first POST left after `at`, earliest first.
    pub(crate) fn runs_sent_after(&self, pos: i64, at: f64) -> Result<Vec<String>, Error> {
        self.run_ids(
            "SELECT run_id FROM items WHERE run_id IS NOT NULL AND pos != ?2 AND sent_at > ?1 \
             ORDER BY sent_at ASC LIMIT 64",
            params![at, pos],
        )
    }

    fn run_ids(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<String>, Error> {
        let e = |e: rusqlite::Error| journal_error(&self.path, e);
        let mut stmt = self.conn.prepare(sql).map_err(e)?;
        stmt.query_map(params, |r| r.get(0))
            .map_err(e)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(e)
    }

    /// The run id is known (created, replayed or reconciled), at `at`: the item's run, and a
    /// line in the ledger, in one transaction.
    pub(crate) fn created(&mut self, pos: i64, run_id: &str, at: f64) -> Result<(), Error> {
        let path = self.path.clone();
        let e = |e: rusqlite::Error| journal_error(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        let changed = tx
            .execute(
                "UPDATE items SET state = ?2, run_id = ?3, answered_at = ?4 \
                 WHERE pos = ?1 AND state IN ('submitting', 'needs_review')",
                params![pos, ItemState::Created, run_id, at],
            )
            .map_err(e)?;
        if changed != 1 {
            return Err(journal_error(
                &path,
                format!("item {pos} was not submitting when its run {run_id} became known"),
            ));
        }
        tx.execute(
            "INSERT OR IGNORE INTO ledger (run_id, pos, attempt, charged, settled) \
             SELECT ?1, pos, attempt, NULL, 0 FROM items WHERE pos = ?2",
            params![run_id, pos],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    /// The terminal poll: state, cost and outputs, and the run's charge in the ledger, in one
    /// transaction.
    pub(crate) fn finished(
        &mut self,
        pos: i64,
        state: ItemState,
        charged: Option<f64>,
        outputs: Option<&str>,
        error: Option<(&str, Option<crate::RetryClass>)>,
    ) -> Result<(), Error> {
        let path = self.path.clone();
        let e = |e: rusqlite::Error| journal_error(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        let (error, class) = match error {
            Some((why, class)) => (Some(why), class.map(crate::RetryClass::as_str)),
            None => (None, None),
        };
        let changed = tx
            .execute(
                "UPDATE items SET state = ?2, charged = ?3, outputs = ?4, error = ?5, \
                 retry_class = ?6 \
                 WHERE pos = ?1 AND state IN ('created', 'planned', 'uploading', 'submitting')",
                params![pos, state, charged, outputs, error, class],
            )
            .map_err(e)?;
        if changed != 1 {
            return Err(journal_error(
                &path,
                format!("item {pos} could not become {state}: it had ended already"),
            ));
        }
        tx.execute(
            "UPDATE ledger SET charged = ?2, settled = ?2 IS NOT NULL WHERE run_id = \
             (SELECT run_id FROM items WHERE pos = ?1)",
            params![pos, charged],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    pub(crate) fn saved(&self, pos: i64, saved: &str) -> Result<(), Error> {
        self.transition(
            pos,
            &[ItemState::Completed, ItemState::Saved],
            ItemState::Saved,
            "saved = ?3",
            &[&saved],
        )
    }

    pub(crate) fn review(&self, pos: i64, why: &str) -> Result<(), Error> {
        self.transition(
            pos,
            &[ItemState::Submitting],
            ItemState::NeedsReview,
            "error = ?3",
            &[&why],
        )
    }

    /// Failed (and, with `unclear`, needs-review) items back to planned under a new attempt,
    /// so their next run gets a new key; their runs' charges stay in the ledger. With
    /// `transient`, only failed runs a new run may cure (retry now or later). Returns how
    /// many.
    pub(crate) fn retry(&self, unclear: bool, transient: bool) -> Result<usize, Error> {
        let failed = if transient {
            "(state = 'failed' AND retry_class IN ('retry_now', 'retry_later'))"
        } else {
            "state = 'failed'"
        };
        let unclear = if unclear {
            " OR state = 'needs_review'"
        } else {
            ""
        };
        self.exec(
            &format!(
                "UPDATE items SET {REPLAN}, charged = NULL, error = NULL, outputs = NULL, \
                 saved = NULL, retry_class = NULL WHERE {failed}{unclear}"
            ),
            [],
        )
    }

    /// One item back to planned under a new attempt (a new key).
    pub(crate) fn replan(&self, pos: i64) -> Result<(), Error> {
        self.exec(
            &format!("UPDATE items SET {REPLAN} WHERE pos = ?1"),
            params![pos],
        )
        .map(drop)
    }

    /// Its outputs are not (all) on disk: back to completed, so a resume saves them.
    pub(crate) fn unsaved(&self, pos: i64) -> Result<(), Error> {
        self.exec(
            "UPDATE items SET state = 'completed' WHERE pos = ?1 AND state = 'saved'",
            params![pos],
        )
        .map(drop)
    }

    /// A new cost limit, kept for later resumes.
    pub(crate) fn set_max_cost(&self, max: f64) -> Result<(), Error> {
        self.exec(
            "INSERT INTO meta (name, value) VALUES ('max_cost', ?1) \
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            params![max.to_string()],
        )
        .map(drop)
    }

    /// The item's files are being uploaded (from planned only).
    pub(crate) fn uploading(&self, pos: i64) -> Result<(), Error> {
        self.exec(
            "UPDATE items SET state = 'uploading' WHERE pos = ?1 AND state = 'planned'",
            params![pos],
        )
        .map(drop)
    }

    /// Its upload failed for now: back to planned, so a resume tries again.
    pub(crate) fn unuploaded(&self, pos: i64) -> Result<(), Error> {
        self.exec(
            "UPDATE items SET state = 'planned' WHERE pos = ?1 AND state = 'uploading'",
            params![pos],
        )
        .map(drop)
    }

    /// An item whose POST never left, or was refused outright (no run can exist), goes back
    /// to planned: the same attempt, so the same key and body when it is sent.
    pub(crate) fn unsent(&self, pos: i64) -> Result<(), Error> {
        self.exec(
            "UPDATE items SET state = 'planned', idem = NULL, body = NULL, intent_at = NULL, \
             sent_at = NULL, solo = 0 WHERE pos = ?1 AND state = 'submitting'",
            params![pos],
        )
        .map(drop)
    }

    /// Notes a folder outputs are staged in (before the save starts there).
    pub(crate) fn staging_in(&self, dir: &Path) -> Result<(), Error> {
        self.exec(
            "INSERT OR IGNORE INTO staging (dir) VALUES (?1)",
            params![dir.to_string_lossy()],
        )
        .map(drop)
    }

    /// Every folder outputs were ever staged in.
    pub(crate) fn staging_dirs(&self) -> Result<Vec<std::path::PathBuf>, Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT dir FROM staging ORDER BY dir")
            .map_err(|e| journal_error(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| journal_error(&self.path, e))?;
        rows.map(|r| r.map(std::path::PathBuf::from))
            .collect::<Result<_, _>>()
            .map_err(|e| journal_error(&self.path, e))
    }

    pub(crate) fn upload_url(&self, sha256: &str, kind: &str) -> Result<Option<String>, Error> {
        self.conn
            .query_row(
                "SELECT url FROM uploads WHERE sha256 = ?1 AND kind = ?2",
                params![sha256, kind],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| journal_error(&self.path, e))
    }

    pub(crate) fn put_upload(&self, sha256: &str, kind: &str, url: &str) -> Result<(), Error> {
        self.exec(
            "INSERT OR REPLACE INTO uploads (sha256, kind, url) VALUES (?1, ?2, ?3)",
            params![sha256, kind, url],
        )
        .map(drop)
    }

    /// Every run id an item holds (a reconciled run is never adopted twice), and every run
    /// of the ledger (earlier attempts' too).
    pub(crate) fn owned_runs(&self) -> Result<std::collections::HashSet<String>, Error> {
        Ok(self
            .run_ids(
                "SELECT run_id FROM items WHERE run_id IS NOT NULL \
                 UNION SELECT run_id FROM ledger",
                [],
            )?
            .into_iter()
            .collect())
    }

    /// Every run's charge the ledger holds (settled or not), with whether its run completed:
    /// what FLORA took, whatever became of the item since.
    pub(crate) fn charges(&self) -> Result<Vec<(f64, bool)>, Error> {
        let e = |e: rusqlite::Error| journal_error(&self.path, e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT l.charged, i.state IN ('completed', 'saved') AND i.run_id = l.run_id \
                 FROM ledger l JOIN items i ON i.pos = l.pos WHERE l.charged IS NOT NULL",
            )
            .map_err(e)?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(e)
    }

    /// The ledger's total: every charge FLORA reported for a run of this batch.
    pub(crate) fn charged_total(&self) -> Result<f64, Error> {
        self.conn
            .query_row("SELECT COALESCE(SUM(charged), 0) FROM ledger", [], |r| {
                r.get(0)
            })
            .map_err(|e| journal_error(&self.path, e))
    }

    /// Runs that ended without a charge known yet (FLORA reports some late): the total is
    /// then a floor.
    pub(crate) fn unsettled(&self) -> Result<usize, Error> {
        self.conn
            .query_row(
                "SELECT count(*) FROM ledger l JOIN items i ON i.run_id = l.run_id \
                 WHERE l.settled = 0 AND i.state IN ('completed', 'saved', 'failed')",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(|e| journal_error(&self.path, e))
    }
}

/// Back to planned under a new attempt: everything of the earlier attempt's run forgotten by
/// the item (the ledger keeps its charge).
const REPLAN: &str = "state = 'planned', attempt = attempt + 1, idem = NULL, body = NULL, \
                      intent_at = NULL, sent_at = NULL, solo = 0, run_id = NULL, \
                      answered_at = NULL";
