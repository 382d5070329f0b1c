//! The shared store conformance suite against PostgreSQL, when
//! `VOIDRUNNER_TEST_DATABASE_URL` is set (CI sets it); otherwise a skip line is printed and
//! every case returns early.

use std::io::Write as _;
use std::sync::Once;

/// The database URL the suite runs against, if configured.
fn database_url() -> Option<String> {
    static SKIP_NOTICE: Once = Once::new();
    let url = std::env::var("VOIDRUNNER_TEST_DATABASE_URL").ok();
    if url.is_none() {
        // Written to the real stderr (not captured by the test harness) so the skip is seen.
        SKIP_NOTICE.call_once(|| {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: PostgreSQL conformance suite (set VOIDRUNNER_TEST_DATABASE_URL to run it)"
            );
        });
    }
    url
}

voidrunner_store::conformance_tests!(async {
    let url = database_url()?;
    Some((
        voidrunner_store_postgres::testing::fresh_store(&url).await,
        (),
    ))
});
