//! Misusing generated techniques is a compile error, with the message pinned in
//! `tests/ui/*.stderr`: this crate's build.rs-generated ones and `flora_api::techniques`
//! (missing or unknown inputs, a `String` or a video where an image belongs, stale generated
//! code, `FakeFlora` without the test impls), and the generated model fixture
//! (`flora_build_mode::model_fixtures`: a misspelled option, a required param left out).
//! Every compile-fail case of the workspace is here, so one trybuild project checks them
//! all. Regenerate the expected output with
//! `TRYBUILD=overwrite cargo test -p flora-build-mode --test misuse`, and read the diff.

#[test]
fn misuse_is_a_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
