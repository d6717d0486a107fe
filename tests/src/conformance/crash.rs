//! The crash matrix and load: for each strategy and each side effect a rotation makes, a test
//! build of the binary aborts right after it, and the rotation retried as Secrets Manager would
//! must converge with the current or the pending credentials working at every moment; and
//! applications logging in all through back-to-back rotations are never locked out.

use std::time::Duration;

use rotation::crash::points;
use rotation_database::crash_points as database_points;

use super::{environment, template_secret, Alternating, DatabaseUnderTest, Logins, User};
use crate::crash_matrix::{crash_then_converge, duplicate_steps_converge};
use crate::load::{logins_during, ROTATION_PAUSE};
use crate::orchestrator::Orchestrator;
use crate::runtime_api::{FunctionSpec, LambdaFunction};
use crate::secrets_manager::MotoSecretsManager;
use crate::stack;

async fn moto() -> MotoSecretsManager {
    MotoSecretsManager::connect(&stack::moto().await.endpoint()).await
}

pub async fn single_user_converges_after_a_crash_at_every_point(database: &dyn DatabaseUnderTest) {
    let moto = moto().await;
    let env = environment(database, &moto, &[("ROTATION_STRATEGY", "single-user")]).await;
    for point in [
        points::PENDING_STORED,
        database_points::PASSWORD_SET,
        points::CURRENT_MOVED,
        points::PENDING_REMOVED,
    ] {
        let user = User::create(database, "crash").await;
        let secret =
            template_secret(database, database.engines()[0], &user.name, &user.password).await;
        let arn = moto
            .create_secret(&super::unique("db-crash"), &secret.to_string())
            .await;
        let output = crash_then_converge(
            &moto,
            database.binary(),
            &env,
            &arn,
            point,
            &Logins(database),
        )
        .await;
        let passwords = moto.field_values(&arn, "password").await;
        database.assert_no_secret_in(&output, &passwords, point);
        user.drop(database).await;
    }
    crate::leaks::assert_no_known_secret_in(&database.server_log().await, "the server's log");
}

pub async fn alternating_users_converge_after_a_crash_at_every_point(
    database: &dyn DatabaseUnderTest,
) {
    let moto = moto().await;
    let env = environment(
        database,
        &moto,
        &[("ROTATION_STRATEGY", "alternating-users")],
    )
    .await;
    for point in database.alternating_crash_points() {
        let alternating = Alternating::create(database, &moto, "crash_alt").await;
        let arn = alternating.arn.clone();
        let logins = Logins(database);
        let binary = database.binary();
        let mut output = crash_then_converge(&moto, binary, &env, &arn, point, &logins).await;
        // The next rotation, back to the original user, passes every point but the alternate
        // user's creation.
        if *point != database_points::CLONE_CREATED {
            output.push_str(&crash_then_converge(&moto, binary, &env, &arn, point, &logins).await);
        }
        let mut secrets = moto.field_values(&arn, "password").await;
        secrets.push(alternating.master_password.clone());
        database.assert_no_secret_in(&output, &secrets, point);
        alternating.drop(database).await;
    }
    crate::leaks::assert_no_known_secret_in(&database.server_log().await, "the server's log");
}

pub async fn duplicate_invocations_of_every_step_leave_one_correct_end_state(
    database: &dyn DatabaseUnderTest,
) {
    let moto = moto().await;
    for strategy in ["single-user", "alternating-users"] {
        let env = environment(database, &moto, &[("ROTATION_STRATEGY", strategy)]).await;
        let alternating = Alternating::create(database, &moto, "dup").await;
        for _ in 0..2 {
            duplicate_steps_converge(
                &moto,
                database.binary(),
                &env,
                &alternating.arn,
                &Logins(database),
            )
            .await;
        }
        alternating.drop(database).await;
    }
}

/// Applications keep logging in while 50 alternating-users rotations run back to back: a login
/// that fails with cached credentials succeeds after one re-read of `AWSCURRENT`, every time.
pub async fn fifty_alternating_rotations_under_load_fail_no_login_after_a_re_read(
    database: &dyn DatabaseUnderTest,
) {
    let moto = moto().await;
    let env = environment(
        database,
        &moto,
        &[("ROTATION_STRATEGY", "alternating-users")],
    )
    .await;
    let alternating = Alternating::create(database, &moto, "load").await;
    let function = LambdaFunction::start(FunctionSpec::new(database.binary()).env(env))
        .await
        .expect("the function starts");
    let orchestrator = Orchestrator {
        moto: &moto,
        function: &function,
    };
    let rotations = async {
        for _ in 0..50 {
            orchestrator.rotate(&alternating.arn).await.expect_success();
            tokio::time::sleep(ROTATION_PAUSE).await;
        }
    };
    let ((), report) = logins_during(
        &moto,
        &alternating.arn,
        &Logins(database),
        Duration::from_millis(5),
        rotations,
    )
    .await;
    eprintln!("{} under 50 rotations: {report:?}", database.function());
    assert_eq!(report.failed_after_re_read, 0, "{report:?}");
    assert!(
        report.logins >= 50,
        "the client kept logging in: {report:?}"
    );
    assert!(
        report.re_reads > 0,
        "cached credentials did go stale: {report:?}"
    );
    function.stop().await;
    alternating.drop(database).await;
}
