//! Reading items: one, a page, by state, and what is in flight.

use super::{ItemRow, ItemState, Journal, journal_error};
use crate::error::Error;

impl Journal {
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
                 outputs, saved, sent_at, body, solo, COALESCE(name, key), retry_class \
                 FROM items {tail}{order}"
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
                    retry_class: r.get(16)?,
                })
            })
            .map_err(e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(e)?;
        Ok(rows)
    }
}
