//! The journal: one SQLite file, the batch's only state. WAL with `synchronous=FULL`, every
//! state change in its own transaction, and an exclusive lock held while a process drives it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::plan::PlanItem;
use crate::error::Error;

/// Where an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ItemState {
    /// Not sent yet.
    Planned,
    /// Its local files are being uploaded (each distinct file once; a resume reuses the
    /// uploads the journal kept).
    Uploading,
    /// The intent to create its run is committed; the answer may not have arrived.
    Submitting,
    /// Its run exists.
    Created,
    /// The run completed (outputs not saved yet, or no saving asked).
    Completed,
    /// The run failed, or the item was refused.
    Failed,
    /// The outputs are saved.
    Saved,
    /// The run may exist but could not be identified: never resubmitted on its own.
    NeedsReview,
}

impl ItemState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ItemState::Planned => "planned",
            ItemState::Uploading => "uploading",
            ItemState::Submitting => "submitting",
            ItemState::Created => "created",
            ItemState::Completed => "completed",
            ItemState::Failed => "failed",
            ItemState::Saved => "saved",
            ItemState::NeedsReview => "needs_review",
        }
    }

    fn parse(s: &str) -> ItemState {
        match s {
            "uploading" => ItemState::Uploading,
            "submitting" => ItemState::Submitting,
            "created" => ItemState::Created,
            "completed" => ItemState::Completed,
            "failed" => ItemState::Failed,
            "saved" => ItemState::Saved,
            "needs_review" => ItemState::NeedsReview,
            _ => ItemState::Planned,
        }
    }
}

/// One item as the journal holds it.
#[derive(Debug, Clone)]
pub(crate) struct ItemRow {
    pub pos: i64,
    pub key: String,
    pub values: BTreeMap<String, Vec<String>>,
    pub state: ItemState,
    pub attempt: i64,
    pub idem: Option<String>,
    pub intent_at: Option<f64>,
    pub sent_at: Option<f64>,
    pub run_id: Option<String>,
    pub charged: Option<f64>,
    pub error: Option<String>,
    pub outputs: Option<String>,
    pub saved: Option<String>,
}

/// The batch's settings, fixed when it is created.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub batch_id: String,
    pub slug: String,
    pub technique_id: String,
    pub run_cost: Option<f64>,
    pub schema: Value,
    pub download: Option<String>,
    /// The cost limit last given: a resume without one keeps it.
    pub max_cost: Option<f64>,
}

pub(crate) struct Journal {
    conn: Connection,
    path: PathBuf,
}

fn journal_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Journal {
        path: path.to_path_buf(),
        problem: e.to_string(),
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    pos INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    vals TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    idem TEXT,
    intent_at REAL,
    sent_at REAL,
    run_id TEXT,
    charged REAL,
    error TEXT,
    outputs TEXT,
    saved TEXT,
    answered_at REAL
);
CREATE TABLE IF NOT EXISTS uploads (
    sha256 TEXT NOT NULL, kind TEXT NOT NULL, url TEXT NOT NULL, PRIMARY KEY (sha256, kind)
);";

/// Back to planned under a new attempt: everything of the earlier attempt's run forgotten.
const REPLAN: &str = "state = 'planned', attempt = attempt + 1, idem = NULL, intent_at = NULL, \
                      sent_at = NULL, run_id = NULL, answered_at = NULL";

impl Journal {
    /// Opens (or creates) the file and takes its lock: a second process gets a clear error.
    fn connect(path: &Path) -> Result<Journal, Error> {
        let conn = Connection::open(path).map_err(|e| journal_error(path, e))?;
        let locked = |e: rusqlite::Error| {
            if is_busy(&e) {
                journal_error(
                    path,
                    "another process is driving this journal (a `floret batch` still running?); \
                     wait for it to finish or stop it, then resume",
                )
            } else {
                journal_error(path, e)
            }
        };
        conn.busy_timeout(std::time::Duration::ZERO)
            .map_err(locked)?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .map_err(locked)?;
        let _mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(locked)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(locked)?;
        // The first write takes the exclusive lock, held until the connection closes.
        conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;")
            .map_err(locked)?;
        conn.execute_batch(SCHEMA).map_err(locked)?;
        // Journals written before `answered_at` existed gain it (empty: no anchors yet).
        let has_answered: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('items') WHERE name = 'answered_at'")
            .and_then(|mut s| s.exists([]))
            .map_err(locked)?;
        if !has_answered {
            conn.execute_batch("ALTER TABLE items ADD COLUMN answered_at REAL")
                .map_err(locked)?;
        }
        Ok(Journal {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// A new journal for `items`; refuses a file that exists (resume it instead).
    pub(crate) fn create(path: &Path, meta: &Meta, items: &[PlanItem]) -> Result<Journal, Error> {
        if path.exists() {
            return Err(journal_error(
                path,
                format!(
                    "the journal exists already; continue it with `floret batch resume \
                     --journal {}` (`Batch::open` in code), or pick a new file for a new batch",
                    path.display()
                ),
            ));
        }
        let mut j = Journal::connect(path)?;
        let e = |e: rusqlite::Error| journal_error(path, e);
        let tx = j.conn.transaction().map_err(e)?;
        for (name, value) in [
            ("batch_id", meta.batch_id.clone()),
            ("slug", meta.slug.clone()),
            ("technique_id", meta.technique_id.clone()),
            (
                "run_cost",
                meta.run_cost.map(|c| c.to_string()).unwrap_or_default(),
            ),
            ("schema", meta.schema.to_string()),
            ("download", meta.download.clone().unwrap_or_default()),
            (
                "max_cost",
                meta.max_cost.map(|c| c.to_string()).unwrap_or_default(),
            ),
        ] {
            tx.execute(
                "INSERT INTO meta (name, value) VALUES (?1, ?2)",
                params![name, value],
            )
            .map_err(e)?;
        }
        for (i, item) in items.iter().enumerate() {
            let vals = serde_json::to_string(&item.values).unwrap_or_default();
            tx.execute(
                "INSERT INTO items (pos, key, vals, state) VALUES (?1, ?2, ?3, 'planned')",
                params![i as i64, item.key, vals],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(j)
    }

    /// An existing journal, locked.
    pub(crate) fn open(path: &Path) -> Result<(Journal, Meta), Error> {
        if !path.exists() {
            return Err(journal_error(path, "no such journal"));
        }
        let j = Journal::connect(path)?;
        let meta = j.meta()?;
        Ok((j, meta))
    }

    fn meta(&self) -> Result<Meta, Error> {
        let e = |e: rusqlite::Error| journal_error(&self.path, e);
        let mut stmt = self
            .conn
            .prepare("SELECT name, value FROM meta")
            .map_err(e)?;
        let pairs: BTreeMap<String, String> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(e)?
            .collect::<Result<_, _>>()
            .map_err(e)?;
        let get = |k: &str| pairs.get(k).cloned().unwrap_or_default();
        if get("batch_id").is_empty() {
            return Err(journal_error(&self.path, "not a floret batch journal"));
        }
        Ok(Meta {
            batch_id: get("batch_id"),
            slug: get("slug"),
            technique_id: get("technique_id"),
            run_cost: get("run_cost").parse().ok(),
            schema: serde_json::from_str(&get("schema")).unwrap_or(Value::Null),
            download: Some(get("download")).filter(|d| !d.is_empty()),
            max_cost: get("max_cost").parse().ok(),
        })
    }

    pub(crate) fn items(&self) -> Result<Vec<ItemRow>, Error> {
        let e = |e: rusqlite::Error| journal_error(&self.path, e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT pos, key, vals, state, attempt, idem, intent_at, run_id, charged, error, \
                 outputs, saved, sent_at FROM items ORDER BY pos",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                let vals: String = r.get(2)?;
                let state: String = r.get(3)?;
                Ok(ItemRow {
                    pos: r.get(0)?,
                    key: r.get(1)?,
                    values: serde_json::from_str(&vals).unwrap_or_default(),
                    state: ItemState::parse(&state),
                    attempt: r.get(4)?,
                    idem: r.get(5)?,
                    intent_at: r.get(6)?,
                    run_id: r.get(7)?,
                    charged: r.get(8)?,
                    error: r.get(9)?,
                    outputs: r.get(10)?,
                    saved: r.get(11)?,
                    sent_at: r.get(12)?,
                })
            })
            .map_err(e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(e)?;
        Ok(rows)
    }

    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> Result<(), Error> {
        self.conn
            .execute(sql, p)
            .map(|_| ())
            .map_err(|e| journal_error(&self.path, e))
    }

    /// Committed before the POST: the key a resume re-sends.
    pub(crate) fn submitting(&self, pos: i64, idem: &str, at: f64) -> Result<(), Error> {
        self.exec(
            "UPDATE items SET state = 'submitting', idem = ?2, intent_at = ?3 WHERE pos = ?1",
            params![pos, idem, at],
        )
    }

    /// The moment the item's first POST leaves (kept across resumes): its run, if any, was
    /// created after it.
    pub(crate) fn sending(&self, pos: i64, at: f64) -> Result<(), Error> {
        self.exec(
            "UPDATE items SET sent_at = ?2 WHERE pos = ?1 AND sent_at IS NULL",
            params![pos, at],
        )
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

    /// The run id is known (created, replayed or reconciled), at `at`.
    pub(crate) fn created(&self, pos: i64, run_id: &str, at: f64) -> Result<(), Error> {
        self.exec(
            "UPDATE items SET state = 'created', run_id = ?2, answered_at = ?3 WHERE pos = ?1",
            params![pos, run_id, at],
        )
    }

    /// The terminal poll: state, cost and outputs in one transaction.
    pub(crate) fn finished(
        &self,
        pos: i64,
        state: ItemState,
        charged: Option<f64>,
        outputs: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), Error> {
        self.exec(
            "UPDATE items SET state = ?2, charged = ?3, outputs = ?4, error = ?5 WHERE pos = ?1",
            params![pos, state.as_str(), charged, outputs, error],
        )
    }

    pub(crate) fn saved(&self, pos: i64, saved: &str) -> Result<(), Error> {
        self.exec(
            "UPDATE items SET state = 'saved', saved = ?2 WHERE pos = ?1",
            params![pos, saved],
        )
    }

    pub(crate) fn review(&self, pos: i64, why: &str) -> Result<(), Error> {
        self.exec(
            "UPDATE items SET state = 'needs_review', error = ?2 WHERE pos = ?1",
            params![pos, why],
        )
    }

    /// Failed (and, with `unclear`, needs-review) items back to planned under a new attempt,
    /// so their next run gets a new key. Returns how many.
    pub(crate) fn retry(&self, unclear: bool) -> Result<usize, Error> {
        let states = if unclear {
            "('failed', 'needs_review')"
        } else {
            "('failed')"
        };
        self.conn
            .execute(
                &format!(
                    "UPDATE items SET {REPLAN}, charged = NULL, error = NULL, outputs = NULL, \
                     saved = NULL WHERE state IN {states}"
                ),
                [],
            )
            .map_err(|e| journal_error(&self.path, e))
    }

    /// One item back to planned under a new attempt (a new key).
    pub(crate) fn replan(&self, pos: i64) -> Result<(), Error> {
        self.exec(
            &format!("UPDATE items SET {REPLAN} WHERE pos = ?1"),
            params![pos],
        )
    }

    /// Its outputs are not (all) on disk: back to completed, so a resume saves them.
    pub(crate) fn unsaved(&self, pos: i64) -> Result<(), Error> {
        self.exec(
            "UPDATE items SET state = 'completed' WHERE pos = ?1 AND state = 'saved'",
            params![pos],
        )
    }

    /// A new cost limit, kept for later resumes.
    pub(crate) fn set_max_cost(&self, max: f64) -> Result<(), Error> {
        self.exec(
            "INSERT INTO meta (name, value) VALUES ('max_cost', ?1) \
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            params![max.to_string()],
        )
    }

    /// The item's files are being uploaded (from planned only).
    pub(crate) fn uploading(&self, pos: i64) -> Result<(), Error> {
        self.exec(
            "UPDATE items SET state = 'uploading' WHERE pos = ?1 AND state = 'planned'",
            params![pos],
        )
    }

    /// An item whose POST never left goes back to planned (same attempt: the same key when it
    /// is sent). Nothing changes once its POST may have left.
    pub(crate) fn unsent(&self, pos: i64) -> Result<(), Error> {
        self.exec(
            "UPDATE items SET state = 'planned', idem = NULL, intent_at = NULL \
             WHERE pos = ?1 AND state = 'submitting' AND sent_at IS NULL",
            params![pos],
        )
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
    }

    /// Run ids already owned by items (a reconciled run is never adopted twice).
    /// Every run id an item holds.
    pub(crate) fn owned_runs(&self) -> Result<std::collections::HashSet<String>, Error> {
        Ok(self
            .run_ids("SELECT run_id FROM items WHERE run_id IS NOT NULL", [])?
            .into_iter()
            .collect())
    }
}
