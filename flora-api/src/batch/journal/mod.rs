//! The journal: one SQLite file, the batch's only state. WAL with `synchronous=FULL`, every
//! state change in its own transaction, guarded (an item moves only from the states it may
//! move from, exactly one row changes), schema changes as numbered migrations
//! (`PRAGMA user_version`, never removed), one writing process at a time (a lock file
//! beside it), and readers welcome at any time (`status`, `export`).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::plan::PlanItem;
pub use super::state::ItemState;
use crate::error::Error;
pub(crate) use meta::Meta;
#[cfg(any(test, feature = "models"))]
pub(crate) use meta::ModelMeta;

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
    /// For a failed run: what to do about it (`RetryClass::as_str`).
    pub retry_class: Option<String>,
    pub outputs: Option<String>,
    pub saved: Option<String>,
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
    // 4: what to do about a failed run (`RetryClass`, from its code and message), so
    // `retry-failed --transient` resubmits only what a new run may cure.
    "ALTER TABLE items ADD COLUMN retry_class TEXT;",
    // 5: a batch of generations (`POST /generate`) names its model, the model's type, the
    // project and workspace its runs land in, and the catalog entry its rows are read by
    // (so a resume sends what the first run checked). No row: a batch of `meta`'s technique.
    // Older florets refuse this version instead of sending a model's rows to a technique.
    "CREATE TABLE model (
         one INTEGER PRIMARY KEY CHECK (one = 1), model_id TEXT NOT NULL,
         model_type TEXT NOT NULL, project_id TEXT NOT NULL, workspace_id TEXT NOT NULL,
         catalog TEXT NOT NULL);",
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
            meta::write(&tx, meta).map_err(e)?;
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
}

mod changes;
mod meta;
mod reads;
#[cfg(test)]
mod tests;
