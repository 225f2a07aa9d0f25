//! What a killed save leaves, and who removes it.

use super::*;

/// A kill in the middle of a save leaves the batch's staging folder (and its partial
/// download) beside the outputs; the next run of the batch removes it at once, whatever its
/// age, and leaves every other file alone: a finished batch leaves only its outputs.
#[tokio::test(start_paused = true)]
async fn a_killed_saves_staging_is_removed_by_the_next_run_and_nothing_else() {
    let fake = fake();
    let client = fake.client();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let options = BatchOptions {
        download: Some(out.to_string_lossy().into_owned()),
        ..fast()
    };
    let path = dir.path().join("j.db");
    let batch = Batch::create(
        &client,
        &path,
        &schema(&client).await,
        &[url_item("a")],
        options.clone(),
    )
    .await
    .unwrap();
    assert_eq!(batch.run().await.unwrap().saved, 1);
    let id = batch.meta.batch_id.clone();
    drop(batch);
    // What a kill leaves: this batch's staging folder with a partial download, and beside it
    // another batch's (live, maybe) and the user's own files.
    let ours = out.join(format!(".flora-save-{id}-x1y2"));
    std::fs::create_dir_all(&ours).unwrap();
    std::fs::write(ours.join(".flora-download-abc.part"), b"half").unwrap();
    let theirs = out.join(".flora-save-00000000-0000-0000-0000-000000000000-z9");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    let batch = Batch::open(&client, &path, options).await.unwrap();
    batch.run().await.unwrap();
    assert!(!ours.exists(), "the batch's own leftover is removed");
    assert!(theirs.exists(), "another batch's staging is not touched");
    assert_eq!(std::fs::read(out.join("notes.txt")).unwrap(), b"mine");
}
