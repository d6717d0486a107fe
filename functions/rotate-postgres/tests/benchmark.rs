//! The benchmark's machinery (`scripts/bench`), run once on one function so it keeps working:
//! a single-user rotation by a warm process and by a fresh process per step, counted through
//! the proxies in front of moto and PostgreSQL. Times are never asserted here; the counts are
//! facts of the protocol.

use std::path::Path;

use rotation_tools::bench::lockout::measure_lockout;
use rotation_tools::bench::{measure, Runs, Subject};

#[tokio::test]
async fn the_benchmark_measures_a_single_user_rotation_through_its_proxies() {
    let binary = Path::new(env!("CARGO_BIN_EXE_rotate-postgres"));
    let figures = measure(Subject::PostgresSingleUser, binary, Runs::ONCE)
        .await
        .unwrap_or_else(|error| panic!("the benchmark ran: {error}"));

    assert_eq!(figures.subject, "rotate-postgres/single-user");
    assert_eq!(figures.steps.len(), 4);
    for step in &figures.steps {
        assert_eq!(
            step.secrets_manager_calls.get("DescribeSecret"),
            Some(&1),
            "{}: the preamble describes the secret once",
            step.step
        );
        assert!(step.warm_ms.n == 1 && step.cold_ms.n == 1, "{step:?}");
    }
    assert_eq!(
        figures
            .secrets_manager_calls_by_operation
            .get("PutSecretValue"),
        Some(&1)
    );
    assert!(
        figures.secrets_manager_calls < figures.secrets_manager_calls_cold,
        "a warm process reuses what earlier steps read: {} warm, {} cold",
        figures.secrets_manager_calls,
        figures.secrets_manager_calls_cold
    );
    assert_eq!(
        figures.database_connections, 2,
        "setSecret logs in as current, testSecret as pending"
    );
    assert_eq!(figures.database_connections_left_open, 0);
    assert!(figures.warm_peak_rss_kib > 0 && figures.cold_peak_rss_kib > 0);
    assert_eq!(figures.init_ms.n, 5, "one warm process and four cold ones");
}

#[tokio::test]
async fn the_lockout_client_is_let_in_again_after_every_single_user_rotation() {
    let binary = Path::new(env!("CARGO_BIN_EXE_rotate-postgres"));
    // measure_lockout fails when the client is still refused 10 s after a rotation ended.
    let figures = measure_lockout(Subject::PostgresSingleUser, binary, Runs::ONCE)
        .await
        .unwrap_or_else(|error| panic!("the lock-out window was measured: {error}"));

    assert_eq!(figures.subject, "rotate-postgres/single-user");
    assert_eq!(figures.warm_window_ms.n, 1, "{figures:?}");
    assert_eq!(figures.cold_window_ms.n, 1, "{figures:?}");
    assert!(
        figures.login_ms.n >= 2 && figures.login_ms.median > 0.0,
        "the client logged in before and after each rotation: {figures:?}"
    );
    for (at_least, at_most) in [
        (&figures.warm_at_least_ms, &figures.warm_at_most_ms),
        (&figures.cold_at_least_ms, &figures.cold_at_most_ms),
    ] {
        assert!(
            at_most.n == 1 && at_most.median > 0.0 && at_least.median <= at_most.median,
            "the steps' times bound the window: {figures:?}"
        );
    }
}
