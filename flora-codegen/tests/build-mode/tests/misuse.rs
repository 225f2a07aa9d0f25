//! Misuse of build.rs-generated techniques fails to compile, as in `flora_api::techniques`.

#[test]
fn misuse_is_a_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
