//! The shared store conformance suite against SQLite (always runs).

voidrunner_store::conformance_tests!(async {
    Some(voidrunner_store_sqlite::testing::fresh_store().await)
});
