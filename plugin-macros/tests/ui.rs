//! Compile-fail tests: each file under `ui/` must fail to build with exactly the error in its
//! `.stderr` file (run with `TRYBUILD=overwrite` to regenerate after a deliberate change, then
//! review the diff).

#[test]
fn macro_errors_point_at_the_offending_tokens() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
