//! Where an item is: one enum, stored by name, read back strictly. A state this version does
//! not know (a journal a newer floret wrote) is an error naming the journal, never taken for
//! `planned` (which would send the item again).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// Where an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ItemState {
    /// Not sent yet.
    Planned,
    /// Its local files are being uploaded (each distinct file once; a resume reuses the
    /// uploads the journal kept).
    Uploading,
    /// The intent to create its run is committed, with the exact body and key; the POST may
    /// have left and its answer may not have arrived.
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
    /// Every state, in the order an item moves through them.
    pub(crate) const ALL: [ItemState; 8] = [
        ItemState::Planned,
        ItemState::Uploading,
        ItemState::Submitting,
        ItemState::Created,
        ItemState::Completed,
        ItemState::Failed,
        ItemState::Saved,
        ItemState::NeedsReview,
    ];

    /// The name stored in the journal.
    pub fn as_str(self) -> &'static str {
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

    /// The state of a stored name, if this version knows it.
    pub(crate) fn parse(s: &str) -> Option<ItemState> {
        ItemState::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

impl std::fmt::Display for ItemState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for ItemState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for ItemState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        ItemState::parse(text).ok_or_else(|| {
            FromSqlError::Other(
                format!(
                    "item state `{text}` is not one this version of floret knows: the journal \
                     was written by a newer floret; resume it with that version"
                )
                .into(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_is_stored_and_read_back_by_its_name() {
        for state in ItemState::ALL {
            assert_eq!(ItemState::parse(state.as_str()), Some(state));
        }
        assert_eq!(ItemState::parse("cancelled"), None);
        assert_eq!(ItemState::parse(""), None);
    }
}
