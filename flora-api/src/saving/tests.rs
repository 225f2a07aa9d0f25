use super::*;

#[test]
fn directories_and_templates_name_each_output() {
    assert_eq!(template("out/", &["image"]), "out/{slot}.{ext}");
    assert_eq!(
        template("out", &["frame", "frame"]),
        "out/{slot}-{index}.{ext}"
    );
    let names = Names {
        run_id: "run_1",
        key: "row 7",
    };
    assert_eq!(
        fill("o/{run_id}-{key}-{slot}.{ext}", "a/../b", 0, names, "png"),
        PathBuf::from("o/run_1-row_7-a_.._b.png")
    );
    // Keys come from plans: a device name or a very long key is made safe too.
    let long = "k".repeat(300);
    for (key, part) in [("con", "_con".to_owned()), (long.as_str(), "k".repeat(100))] {
        let names = Names { run_id: "r", key };
        assert_eq!(
            fill("{key}.{ext}", "s", 0, names, "png"),
            PathBuf::from(format!("{part}.png"))
        );
    }
}

#[test]
fn place_never_replaces_without_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("t");
    let dest = dir.path().join("d");
    std::fs::write(&tmp, "new").unwrap();
    std::fs::write(&dest, "mine").unwrap();
    let err = place(&tmp, &dest, false).unwrap_err();
    assert!(matches!(err, SaveError::Exists(_)), "{err}");
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "mine");
    place(&tmp, &dest, true).unwrap();
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "new");
}

#[test]
fn the_same_bytes_already_in_place_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("t");
    let dest = dir.path().join("d");
    std::fs::write(&tmp, "same").unwrap();
    std::fs::write(&dest, "same").unwrap();
    place(&tmp, &dest, false).unwrap();
    // Same size, other bytes: refused.
    std::fs::write(&dest, "SAME").unwrap();
    assert!(matches!(
        place(&tmp, &dest, false),
        Err(SaveError::Exists(_))
    ));
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "SAME");
}
