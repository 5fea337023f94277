//! Fault points for tests of killed and failed runs, set from the
//! environment: `CIVICA_PAUSE_AT` stops a run at a named point until it is
//! killed, `CIVICA_FAIL_AT` makes the store operation at a point fail.
//! Without them set, both are no-ops. See ARCHITECTURE.md for the points.

/// A pause for tests of killed runs: with `CIVICA_PAUSE_AT=<point>` in the
/// environment the run stops at that point (`writing:<table>` after the
/// first batch of an output is written, `publishing:<n>` after `n`
/// outputs are published), says so on stderr, and waits to be killed.
pub async fn pause_point(point: &str) {
    if std::env::var("CIVICA_PAUSE_AT").is_ok_and(|p| p == point) {
        eprintln!("civica: paused at {point}");
        // Waits on the runtime's timer, not on one of its threads.
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    }
}

/// A failure for tests of failed publishes: with `CIVICA_FAIL_AT=<point>`
/// in the environment, the store operation at that point fails
/// (`publishing:<n>` the publish of output `n`, counted from 0;
/// `recovering` the completion of a dead run's publish).
pub(crate) fn fail_point(point: &str) -> Result<(), object_store::Error> {
    if std::env::var("CIVICA_FAIL_AT").is_ok_and(|p| p == point) {
        return Err(object_store::Error::Generic {
            store: "civica",
            source: format!("failure injected at {point} (CIVICA_FAIL_AT)").into(),
        });
    }
    Ok(())
}
