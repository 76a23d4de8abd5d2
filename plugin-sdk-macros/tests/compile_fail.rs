//! What `#[derive(FromRow)]` refuses, and the message it refuses with. Each case under
//! `tests/ui/` stops at the derive's `compile_error!`, so none needs the SDK itself.
//! After changing a message, `TRYBUILD=overwrite cargo test -p kirana-sdk-macros`
//! rewrites the `.stderr` files; read the diff before committing it.

#[test]
fn refusals() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
