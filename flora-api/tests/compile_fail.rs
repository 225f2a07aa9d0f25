//! Misusing a generated technique is a compile error, with the message pinned here.
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p flora-api --test compile_fail`.

#[test]
fn misuse_of_generated_techniques_does_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
