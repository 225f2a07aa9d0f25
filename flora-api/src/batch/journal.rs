//! The journal: one SQLite file, the batch's only state. WAL with `synchronous=FULL`, every
//! state change in its own transaction, guarded (an item moves only from the states it may
//! move from, exactly one row changes), schema changes as numbered migrations
//! (`PRAGMA user_version`, never removed), one writing process at a time (a lock file
//! beside it), and readers welcome at any time (`status`, `export`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::Value;

use super::plan::PlanItem;
pub use super::state::ItemState;
use crate::error::Error;

/// One item as the journal holds it.
#[derive(Debug, Clone)]
pub(crate) struct ItemRow {
    pub pos: i64,
    pub key: String,
    /// `{key}` in the output template: the key as a file name, distinct from every other
    /// item's (decided when the journal was made).
    pub name: String,
    pub values: super::plan::PlanValues,
    pub state: ItemState,
    pub attempt: i64,
    pub idem: Option<String>,
    /// The exact inputs (JSON) sent under `idem`: a resume sends these again, never
    /// re-reading a file that may have changed or moved since.
    pub body: Option<String>,
    pub intent_at: Option<f64>,
    pub sent_at: Option<f64>,
    /// The POST left while no other submission was in flight, so items sent after it were
    /// sent after its run was created.
    pub solo: bool,
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
    /// Held while this process drives the journal (released when dropped).
    _lock: Option<std::fs::File>,
}

fn journal_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Journal {
        path: path.to_path_buf(),
        problem: e.to_string(),
    }
}

/// The schema's history. Each step runs once, in order, in one transaction with the version
/// it brings; a step is never removed or changed (a journal of any earlier floret opens).
const MIGRATIONS: &[&str] = &[
    // 1: the journal as floret 0.1 wrote it (`answered_at` is added below when missing).
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS items (
         pos INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, vals TEXT NOT NULL,
         state TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, idem TEXT, intent_at REAL,
         sent_at REAL, run_id TEXT, charged REAL, error TEXT, outputs TEXT, saved TEXT,
         answered_at REAL);
     CREATE TABLE IF NOT EXISTS uploads (
         sha256 TEXT NOT NULL, kind TEXT NOT NULL, url TEXT NOT NULL,
         PRIMARY KEY (sha256, kind));",
    // 2: the exact body sent under each key, how it was sent, the name its outputs are saved
    // under (decided with the plan), and the ledger of every run's charge (nothing ever
    // subtracts what FLORA took; `retry-failed` adds runs).
    "ALTER TABLE items ADD COLUMN body TEXT;
     ALTER TABLE items ADD COLUMN solo INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE items ADD COLUMN name TEXT;
     CREATE TABLE ledger (
         run_id TEXT PRIMARY KEY, pos INTEGER NOT NULL, attempt INTEGER NOT NULL,
         charged REAL, settled INTEGER NOT NULL DEFAULT 0);
     INSERT OR IGNORE INTO ledger (run_id, pos, attempt, charged, settled)
         SELECT run_id, pos, attempt, charged, charged IS NOT NULL FROM items
         WHERE run_id IS NOT NULL;",
    // 3: the folders outputs are staged in, journaled before a save starts there: what a
    // killed save left is found and removed by the next run of the batch.
    "CREATE TABLE staging (dir TEXT PRIMARY KEY);",
];

/// The journal version this floret writes.
const LATEST: i64 = MIGRATIONS.len() as i64;

/// The version a journal is at.
fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Whether the file holds a floret journal (its `meta` names a batch), or nothing yet.
fn identity(conn: &Connection) -> rusqlite::Result<Identity> {
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    if tables == 0 {
        return Ok(Identity::Empty);
    }
    let has_meta: bool = conn
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")?
        .exists([])?;
    if !has_meta {
        return Ok(Identity::Foreign);
    }
    let id: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE name = 'batch_id'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(match id {
        Some(id) if !id.is_empty() => Identity::Journal,
        _ => Identity::Foreign,
    })
}

#[derive(Debug, PartialEq)]
enum Identity {
    Empty,
    Journal,
    Foreign,
}

const NOT_A_JOURNAL: &str = "not a floret batch journal (nothing in it was changed); pass the file `floret batch run` \
     made";

/// The lock file beside a journal: one writing process at a time.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

impl Journal {
    /// Takes the journal's lock (a second process gets a clear error), opens it for writing
    /// and brings it to the latest version. A file that is not a journal is left untouched.
    fn connect(path: &Path) -> Result<Journal, Error> {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(path))
            .map_err(|e| journal_error(path, format!("cannot create its lock file: {e}")))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(journal_error(
                    path,
                    "another process is driving this journal (a `floret batch` still running?); \
                     wait for it to finish or stop it, then resume",
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(journal_error(path, format!("cannot lock it: {e}")));
            }
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| journal_error(path, e))?;
        let e = |e: rusqlite::Error| journal_error(path, e);
        if identity(&conn).map_err(e)? == Identity::Foreign {
            return Err(journal_error(path, NOT_A_JOURNAL));
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(e)?;
        let _mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(e)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        let mut j = Journal {
            conn,
            path: path.to_path_buf(),
            _lock: Some(lock),
        };
        j.migrate()?;
        Ok(j)
    }

    /// Runs every migration the journal lacks, each with its version in one transaction.
    fn migrate(&mut self) -> Result<(), Error> {
        let path = self.path.clone();
        let e = |e: rusqlite::Error| journal_error(&path, e);
        let at = version(&self.conn).map_err(e)?;
        if at > LATEST {
            return Err(journal_error(
                &path,
                format!(
                    "it is journal version {at}, written by a newer floret (this one knows up to \
                     {LATEST}); resume it with that version"
                ),
            ));
        }
        for (i, step) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(at).unwrap_or(0))
        {
            let tx = self.conn.transaction().map_err(e)?;
            tx.execute_batch(step).map_err(e)?;
            if i == 0 {
                // Journals written before `answered_at` existed gain it.
                let has: bool = tx
                    .prepare("SELECT 1 FROM pragma_table_info('items') WHERE name = 'answered_at'")
                    .and_then(|mut s| s.exists([]))
                    .map_err(e)?;
                if !has {
                    tx.execute_batch("ALTER TABLE items ADD COLUMN answered_at REAL")
                        .map_err(e)?;
                }
            }
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(e)?;
            tx.commit().map_err(e)?;
        }
        Ok(())
    }

    /// A new journal for `items`, made whole or not at all: written to a temporary file
    /// beside `path`, then moved there only when complete (a kill while creating leaves no
    /// half-made journal at `path`). Refuses a file that exists (resume it instead).
    pub(crate) fn create(
        path: &Path,
        meta: &Meta,
        items: &[PlanItem],
        names: &[String],
    ) -> Result<Journal, Error> {
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(journal_error(
                path,
                format!(
                    "the journal exists already; continue it with `floret batch resume \
                     --journal {}` (`Batch::open` in code), or pick a new file for a new batch",
                    crate::safe_text::plain_text(&path.display().to_string(), 200)
                ),
            ));
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".flora-journal-")
            .tempfile_in(&dir)
            .map_err(|e| journal_error(path, format!("cannot create it: {e}")))?;
        {
            let mut conn = Connection::open(tmp.path()).map_err(|e| journal_error(path, e))?;
            let e = |e: rusqlite::Error| journal_error(path, e);
            // Written in one go with the rollback journal; the real one switches to WAL.
            let mut fresh = Journal {
                conn,
                path: tmp.path().to_path_buf(),
                _lock: None,
            };
            fresh.migrate()?;
            conn = fresh.conn;
            let tx = conn.transaction().map_err(e)?;
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
            {
                let mut insert = tx
                    .prepare(
                        "INSERT INTO items (pos, key, vals, state, name) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(e)?;
                for (i, item) in items.iter().enumerate() {
                    let vals = serde_json::to_string(&item.values).unwrap_or_default();
                    let name = names.get(i).unwrap_or(&item.key);
                    insert
                        .execute(params![i as i64, item.key, vals, ItemState::Planned, name])
                        .map_err(e)?;
                }
            }
            tx.commit().map_err(e)?;
            conn.close().map_err(|(_, e)| journal_error(path, e))?;
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| journal_error(path, format!("cannot write it: {e}")))?;
        tmp.persist_noclobber(path)
            .map_err(|e| journal_error(path, format!("cannot put it in place: {}", e.error)))?;
        Journal::connect(path)
    }

    /// An existing journal, locked for this process.
    pub(crate) fn open(path: &Path) -> Result<(Journal, Meta), Error> {
        if std::fs::symlink_metadata(path).is_err() {
            return Err(journal_error(path, "no such journal"));
        }
        let j = Journal::connect(path)?;
        let meta = j.meta()?;
        Ok((j, meta))
    }

    #[cfg(any(test, feature = "cli"))]
    /// An existing journal, read-only, while another process may be driving it: a consistent
    /// snapshot, nothing written, a file that is not a journal left as it is.
    pub(crate) fn read(path: &Path) -> Result<(Journal, Meta), Error> {
        if std::fs::symlink_metadata(path).is_err() {
            return Err(journal_error(path, "no such journal"));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| journal_error(path, e))?;
        let e = |e: rusqlite::Error| journal_error(path, e);
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(e)?;
        if identity(&conn).map_err(e)? != Identity::Journal {
            return Err(journal_error(path, NOT_A_JOURNAL));
        }
        let at = version(&conn).map_err(e)?;
        if at != LATEST {
            return Err(journal_error(
                path,
                if at > LATEST {
                    format!(
                        "it is journal version {at}, written by a newer floret (this one knows \
                         up to {LATEST}); read it with that version"
                    )
                } else {
                    format!(
                        "it is journal version {at}, written by an earlier floret: `floret \
                         batch resume` brings it up to date (or `floret batch status` once it \
                         is not running)"
                    )
                },
            ));
        }
        let j = Journal {
            conn,
            path: path.to_path_buf(),
            _lock: None,
        };
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
            return Err(journal_error(&self.path, NOT_A_JOURNAL));
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
        self.select("", &[])
    }

    /// The item at `pos`.
    pub(crate) fn item(&self, pos: i64) -> Result<Option<ItemRow>, Error> {
        Ok(self.select("WHERE pos = ?1", &[&pos])?.pop())
    }

    /// Items in these states, in plan order.
    pub(crate) fn items_in(&self, states: &[ItemState]) -> Result<Vec<ItemRow>, Error> {
        let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
        self.select(&format!("WHERE state IN ({})", names.join(", ")), &[])
    }

    /// Up to `n` items after position `after` in these states: a plan of any size read a page
    /// at a time, never whole.
    pub(crate) fn page_in(
        &self,
        states: &[ItemState],
        after: i64,
        n: i64,
    ) -> Result<Vec<ItemRow>, Error> {
        let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
        self.select(
            &format!(
                "WHERE state IN ({}) AND pos > ?1 ORDER BY pos LIMIT ?2",
                names.join(", ")
            ),
            &[&after, &n],
        )
    }

    /// Items in flight at FLORA: created, or their POST sent.
    pub(crate) fn flying(&self) -> Result<u32, Error> {
        self.conn
            .query_row(
                "SELECT count(*) FROM items WHERE state = 'created' \
                 OR (state = 'submitting' AND sent_at IS NOT NULL)",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .map_err(|e| journal_error(&self.path, e))
    }

    /// Intents whose POST never left: no run can exist, back to planned (the same key and
    /// body when they are sent).
    pub(crate) fn unsend_unsent(&self) -> Result<(), Error> {
        self.exec(
            "UPDATE items SET state = 'planned', idem = NULL, body = NULL, intent_at = NULL, \
             solo = 0 WHERE state = 'submitting' AND sent_at IS NULL",
            [],
        )
        .map(drop)
    }

    fn select(&self, tail: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<ItemRow>, Error> {
        let e = |e: rusqlite::Error| journal_error(&self.path, e);
        let order = if tail.contains("ORDER BY") {
            ""
        } else {
            " ORDER BY pos"
        };
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT pos, key, vals, state, attempt, idem, intent_at, run_id, charged, error, \
                 outputs, saved, sent_at, body, solo, COALESCE(name, key) FROM items {tail}{order}"
            ))
            .map_err(e)?;
        let rows = stmt
            .query_map(args, |r| {
                let vals: String = r.get(2)?;
                Ok(ItemRow {
                    pos: r.get(0)?,
                    key: r.get(1)?,
                    values: serde_json::from_str(&vals).unwrap_or_default(),
                    state: r.get(3)?,
                    attempt: r.get(4)?,
                    idem: r.get(5)?,
                    intent_at: r.get(6)?,
                    run_id: r.get(7)?,
                    charged: r.get(8)?,
                    error: r.get(9)?,
                    outputs: r.get(10)?,
                    saved: r.get(11)?,
                    sent_at: r.get(12)?,
                    body: r.get(13)?,
                    solo: r.get::<_, i64>(14)? != 0,
                    name: r.get(15)?,
                })
            })
            .map_err(e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(e)?;
        Ok(rows)
    }

    /// Moves item `pos` from one of `from` to `to`, with `assignments` (more `col = ?n`, from
    /// `?3` on) in the same statement; exactly one row must change, or the journal is not
    /// what this process believes and nothing more is sent for it.
    fn transition(
        &self,
        pos: i64,
        from: &[ItemState],
        to: ItemState,
        assignments: &str,
        more: &[&dyn rusqlite::ToSql],
    ) -> Result<(), Error> {
        let states: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
        let set = if assignments.is_empty() {
            String::new()
        } else {
            format!(", {assignments}")
        };
        let sql = format!(
            "UPDATE items SET state = ?2{set} WHERE pos = ?1 AND state IN ({})",
            states.join(", ")
        );
        let mut args: Vec<&dyn rusqlite::ToSql> = vec![&pos, &to];
        args.extend_from_slice(more);
        let changed = self
            .conn
            .execute(&sql, args.as_slice())
            .map_err(|e| journal_error(&self.path, e))?;
        if changed != 1 {
            return Err(journal_error(
                &self.path,
                format!(
                    "item {pos} was not {} when it was to become {to}; the journal changed under \
                     this process (another one driving it?)",
                    from.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            ));
        }
        Ok(())
    }

    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> Result<usize, Error> {
        self.conn
            .execute(sql, p)
            .map_err(|e| journal_error(&self.path, e))
    }

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
        error: Option<&str>,
    ) -> Result<(), Error> {
        let path = self.path.clone();
        let e = |e: rusqlite::Error| journal_error(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        let changed = tx
            .execute(
                "UPDATE items SET state = ?2, charged = ?3, outputs = ?4, error = ?5 \
                 WHERE pos = ?1 AND state IN ('created', 'planned', 'uploading', 'submitting')",
                params![pos, state, charged, outputs, error],
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
    /// so their next run gets a new key; their runs' charges stay in the ledger. Returns how
    /// many.
    pub(crate) fn retry(&self, unclear: bool) -> Result<usize, Error> {
        let states = if unclear {
            "('failed', 'needs_review')"
        } else {
            "('failed')"
        };
        self.exec(
            &format!(
                "UPDATE items SET {REPLAN}, charged = NULL, error = NULL, outputs = NULL, \
                 saved = NULL WHERE state IN {states}"
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

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            batch_id: "b1".into(),
            slug: "t".into(),
            technique_id: "tech_t".into(),
            run_cost: Some(0.5),
            schema: Value::Null,
            download: None,
            max_cost: None,
        }
    }

    fn plan(n: usize) -> Vec<PlanItem> {
        (0..n)
            .map(|i| PlanItem::new(format!("k{i}"), BTreeMap::new()))
            .collect()
    }

    #[test]
    fn a_state_change_from_the_wrong_state_changes_nothing_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let j = Journal::create(&path, &meta(), &plan(2), &[]).unwrap();
        // `saved` needs `completed`: a planned item is not saved by mistake.
        let err = j.saved(0, "[]").unwrap_err().to_string();
        assert!(err.contains("item 0 was not completed or saved"), "{err}");
        assert_eq!(j.items().unwrap()[0].state, ItemState::Planned);
        j.submitting(1, "key", "[]", 1.0).unwrap();
        let err = j.submitting(1, "key", "[]", 1.0).unwrap_err().to_string();
        assert!(err.contains("was not planned or uploading"), "{err}");
    }

    #[test]
    fn an_unknown_stored_state_is_an_error_never_planned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let j = Journal::create(&path, &meta(), &plan(1), &[]).unwrap();
        j.exec("UPDATE items SET state = 'cancelled_by_v9'", [])
            .unwrap();
        let err = j.items().unwrap_err().to_string();
        assert!(err.contains("newer floret"), "{err}");
        assert!(err.contains("j.db"), "names the journal: {err}");
    }

    #[test]
    fn a_journal_of_a_newer_floret_is_refused_by_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let j = Journal::create(&path, &meta(), &plan(1), &[]).unwrap();
        j.conn
            .pragma_update(None, "user_version", LATEST + 1)
            .unwrap();
        drop(j);
        let err = Journal::open(&path).err().unwrap().to_string();
        assert!(
            err.contains(&format!("journal version {}", LATEST + 1)),
            "{err}"
        );
    }

    #[test]
    fn a_foreign_sqlite_file_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('mine');")
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        for err in [
            Journal::open(&path).err().unwrap(),
            Journal::read(&path).err().unwrap(),
        ] {
            assert!(
                err.to_string().contains("not a floret batch journal"),
                "{err}"
            );
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "not one byte changed"
        );
        assert!(!dir.path().join("other.db-wal").exists());
    }

    #[test]
    fn a_second_writer_is_refused_while_readers_see_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let j = Journal::create(&path, &meta(), &plan(3), &[]).unwrap();
        let err = Journal::open(&path).err().unwrap().to_string();
        assert!(err.contains("another process is driving"), "{err}");
        let (reader, _) = Journal::read(&path).unwrap();
        assert_eq!(reader.items().unwrap().len(), 3);
        drop(j);
        Journal::open(&path).unwrap();
    }

    #[test]
    fn a_journal_is_made_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        // Two items with one key fail halfway through the writing: nothing is left at `path`
        // to be taken for a journal, and no temporary file either.
        let items = [
            PlanItem::new("same", BTreeMap::new()),
            PlanItem::new("same", BTreeMap::new()),
        ];
        assert!(Journal::create(&path, &meta(), &items, &[]).is_err());
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        Journal::create(&path, &meta(), &plan(2), &[]).unwrap();
    }

    #[test]
    fn the_ledger_keeps_every_charge_across_retries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let mut j = Journal::create(&path, &meta(), &plan(1), &[]).unwrap();
        j.submitting(0, "k", "[]", 1.0).unwrap();
        j.created(0, "run_1", 2.0).unwrap();
        j.finished(0, ItemState::Failed, Some(0.5), None, Some("x"))
            .unwrap();
        assert_eq!(j.retry(false).unwrap(), 1);
        j.submitting(0, "k2", "[]", 3.0).unwrap();
        j.created(0, "run_2", 4.0).unwrap();
        j.finished(0, ItemState::Completed, Some(0.5), None, None)
            .unwrap();
        assert!(
            (j.charged_total().unwrap() - 1.0).abs() < 1e-9,
            "both runs' charges"
        );
        assert_eq!(j.owned_runs().unwrap().len(), 2);
    }
}
