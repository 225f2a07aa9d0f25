use std::collections::BTreeMap;

use serde_json::Value;

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
        model: None,
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
    j.finished(0, ItemState::Failed, Some(0.5), None, Some(("x", None)))
        .unwrap();
    assert_eq!(j.retry(false, false).unwrap(), 1);
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

#[test]
fn a_model_batch_keeps_its_model_and_an_older_journal_opens_as_a_technique_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let model = ModelMeta {
        model_id: "t2i-x".into(),
        model_type: "image".into(),
        project_id: "prj_1".into(),
        workspace_id: "ws_1".into(),
        catalog: serde_json::json!({"model_id": "t2i-x"}),
    };
    let j = Journal::create(
        &path,
        &Meta {
            model: Some(model.clone()),
            ..meta()
        },
        &plan(1),
        &[],
    )
    .unwrap();
    drop(j);
    let (j, read) = Journal::open(&path).unwrap();
    assert_eq!(read.model, Some(model));
    assert_eq!(read.target_id(), "t2i-x");
    // As version 4 left it: no model table. Opening brings it to the latest version, as
    // the batch of a technique it was.
    j.conn
        .execute_batch("DROP TABLE model; PRAGMA user_version = 4;")
        .unwrap();
    drop(j);
    let (_, read) = Journal::open(&path).unwrap();
    assert_eq!(read.model, None);
    assert_eq!(read.target_id(), "tech_t");
    let (reader, _) = Journal::read(&path).unwrap();
    assert_eq!(version(&reader.conn).unwrap(), LATEST);
}
