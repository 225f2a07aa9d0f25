//! Saved outputs as the journal records them, and what a resume finds of them on disk:
//! missing files are downloaded again, changed ones are kept (a batch never replaces a file
//! it did not write unless asked), intact ones are left alone without being downloaded.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::saving::{self, Saved};

/// One saved file in the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SavedFile {
    pub slot: String,
    pub index: usize,
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    /// Modification time when saved (unix ns): a file with the same size and time is taken as
    /// intact without hashing it again.
    #[serde(default)]
    pub modified: Option<u128>,
}

fn modified(path: &Path) -> Option<u128> {
    std::fs::symlink_metadata(path)
        .ok()?
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_nanos())
}

impl SavedFile {
    pub(crate) fn of(s: &Saved) -> SavedFile {
        SavedFile {
            slot: s.slot.clone(),
            index: s.index,
            path: s.path.clone(),
            bytes: s.bytes,
            sha256: s.sha256.clone(),
            modified: modified(&s.path),
        }
    }

    /// What became of the file since it was saved.
    fn state(&self) -> FileState {
        let Ok(meta) = std::fs::symlink_metadata(&self.path) else {
            return FileState::Missing;
        };
        if !meta.is_file() {
            return FileState::Changed;
        }
        if meta.len() == self.bytes
            && self.modified.is_some()
            && modified(&self.path) == self.modified
        {
            return FileState::Intact;
        }
        match saving::digest(&self.path) {
            Ok((bytes, sha)) if bytes == self.bytes && sha == self.sha256 => FileState::Intact,
            _ => FileState::Changed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum FileState {
    Intact,
    Missing,
    Changed,
}

/// A saved item's files now.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Check {
    /// Output indices whose file is gone.
    pub missing: Vec<usize>,
    /// Files changed since they were saved (by index, and where).
    pub changed: Vec<(usize, PathBuf)>,
}

impl Check {
    pub(crate) fn of(files: &[SavedFile]) -> Check {
        let mut c = Check::default();
        for f in files {
            match f.state() {
                FileState::Intact => {}
                FileState::Missing => c.missing.push(f.index),
                FileState::Changed => c.changed.push((f.index, f.path.clone())),
            }
        }
        c
    }
}

/// The journal's `saved` column.
pub(crate) fn parse(json: Option<&str>) -> Vec<SavedFile> {
    json.and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

/// The files after a (partial) save: the new ones replace the old at their index.
pub(crate) fn merge(old: Vec<SavedFile>, new: &[Saved]) -> Vec<SavedFile> {
    let mut files: Vec<SavedFile> = old
        .into_iter()
        .filter(|f| !new.iter().any(|n| n.index == f.index))
        .collect();
    files.extend(new.iter().map(SavedFile::of));
    files.sort_by_key(|f| f.index);
    files
}

/// A directory means `DIR/{key}-{slot}.{ext}`: every item's files apart.
pub(crate) fn template(spec: &str) -> String {
    if spec.contains('{') {
        spec.to_owned()
    } else {
        format!(
            "{}/{{key}}-{{slot}}.{{ext}}",
            spec.trim_end_matches(['/', '\\'])
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(dir: &Path, index: usize, text: &str) -> SavedFile {
        let path = dir.join(format!("{index}.txt"));
        std::fs::write(&path, text).unwrap();
        let (bytes, sha256) = saving::digest(&path).unwrap();
        SavedFile {
            slot: "out".into(),
            index,
            path: path.clone(),
            bytes,
            sha256,
            modified: modified(&path),
        }
    }

    #[test]
    fn missing_and_changed_files_are_told_apart_from_intact_ones() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            saved(dir.path(), 0, "a"),
            saved(dir.path(), 1, "b"),
            saved(dir.path(), 2, "c"),
            saved(dir.path(), 3, "d"),
        ];
        assert_eq!(Check::of(&files), Check::default());
        std::fs::remove_file(&files[1].path).unwrap();
        // Same size, other bytes.
        std::fs::write(&files[2].path, "C").unwrap();
        // Same bytes written again (a new time): still intact, by its digest.
        std::fs::write(&files[3].path, "d").unwrap();
        assert_eq!(
            Check::of(&files),
            Check {
                missing: vec![1],
                changed: vec![(2, files[2].path.clone())],
            }
        );
    }

    #[test]
    fn a_partial_save_replaces_only_its_indices() {
        let dir = tempfile::tempdir().unwrap();
        let old = vec![saved(dir.path(), 0, "a"), saved(dir.path(), 1, "b")];
        let new = Saved {
            slot: "out".into(),
            index: 1,
            path: dir.path().join("1.txt"),
            bytes: 1,
            sha256: "x".into(),
        };
        let merged = merge(old.clone(), &[new]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0], old[0]);
        assert_eq!(merged[1].sha256, "x");
    }

    #[test]
    fn a_directory_keeps_items_apart() {
        assert_eq!(template("out/"), "out/{key}-{slot}.{ext}");
        assert_eq!(template("o/{run_id}.{ext}"), "o/{run_id}.{ext}");
    }
}
