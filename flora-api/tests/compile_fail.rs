//! Misusing a generated technique is a compile error, with the message pinned here.
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p flora-api --test compile_fail`.
// The cases misuse the generated techniques, which exist only with the `techniques` feature.
#![cfg(feature = "techniques")]

#[test]
fn misuse_of_generated_techniques_does_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

/// `FakeFlora` with a technique that has no fake impls: the message names the feature.
#[cfg(feature = "test-util")]
#[test]
fn fake_flora_without_the_test_impls_names_the_feature() {
    trybuild::TestCases::new().compile_fail("tests/ui-fake/*.rs");
}
