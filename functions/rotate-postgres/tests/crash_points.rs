//! The crash matrix for `rotate-postgres`: for each strategy and each side effect a rotation
//! makes, a test build of the binary aborts right after it; the rotation retried as Secrets
//! Manager would must converge, with the current or the pending credentials working at every
//! moment in between.

mod support;

use async_trait::async_trait;
use rotate_postgres::sql::{quote_identifier, quote_literal, scram_verifier};
use rotation::crash::points;
use rotation_database::crash_points as database_points;
use rotation_tests::crash_matrix::{crash_then_converge, duplicate_steps_converge, Credentials};
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use support::{
    assert_no_secret_in, login, postgres, run_as_superuser, template_secret, unique, AppRole,
    Login, BINARY,
};

struct PostgresLogins;

#[async_trait]
impl Credentials for PostgresLogins {
    async fn work(&self, secret: &Value) -> bool {
        let (Some(user), Some(password)) =
            (secret["username"].as_str(), secret["password"].as_str())
        else {
            return false;
        };
        login(user, password).await == Login::Ok
    }
}

async fn environment(moto: &MotoSecretsManager, strategy: &str) -> Vec<(String, String)> {
    let mut env = moto.function_environment();
    env.push((
        "CA_BUNDLE".to_owned(),
        postgres().await.ca_cert_path().display().to_string(),
    ));
    env.push(("ROTATION_STRATEGY".to_owned(), strategy.to_owned()));
    env
}

#[tokio::test]
async fn single_user_converges_after_a_crash_at_every_point() {
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    let env = environment(&moto, "single-user").await;
    for point in [
        points::PENDING_STORED,
        database_points::PASSWORD_SET,
        points::CURRENT_MOVED,
        points::PENDING_REMOVED,
    ] {
        let role = AppRole::create(&unique("crash"), "initial-Passw0rd-crash").await;
        let arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("pg-crash"),
                &template_secret(&role.name, &role.password)
                    .await
                    .to_string(),
            )
            .await;
        let output = crash_then_converge(&moto, BINARY, &env, &arn, point, &PostgresLogins).await;
        assert_no_secret_in(&output, &moto.field_values(&arn, "password").await, point);
        role.drop().await;
    }
    support::assert_no_known_secret_in_server_log().await;
}

#[tokio::test]
async fn alternating_users_converge_after_a_crash_at_every_point() {
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    let env = environment(&moto, "alternating-users").await;
    for point in [
        points::PENDING_STORED,
        database_points::PASSWORD_SET,
        points::CURRENT_MOVED,
        points::PENDING_REMOVED,
    ] {
        let role = AppRole::create(&unique("crash_alt"), "initial-Passw0rd-alt").await;
        let master = unique("crash_master");
        let master_password = format!("master-{master}-Pw");
        let verifier = scram_verifier(&SecretString::from(master_password.clone()));
        run_as_superuser(&format!(
            "CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}; GRANT {} TO {} WITH ADMIN OPTION;",
            quote_identifier(&master),
            quote_literal(verifier.expose_secret()),
            quote_identifier(&role.name),
            quote_identifier(&master),
        ))
        .await;
        let master_arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("pg-crash-master"),
                &template_secret(&master, &master_password).await.to_string(),
            )
            .await;
        let mut secret = template_secret(&role.name, &role.password).await;
        secret["masterarn"] = json!(master_arn);
        let arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("pg-crash-alt"),
                &secret.to_string(),
            )
            .await;

        let mut output =
            crash_then_converge(&moto, BINARY, &env, &arn, point, &PostgresLogins).await;
        // The next rotation, back to the original user, is unaffected by the crash.
        output.push_str(
            &crash_then_converge(&moto, BINARY, &env, &arn, point, &PostgresLogins).await,
        );
        let mut secrets = moto.field_values(&arn, "password").await;
        secrets.push(master_password.clone());
        assert_no_secret_in(&output, &secrets, point);

        let clone = format!("{}_clone", role.name);
        run_as_superuser(&format!(
            "DROP ROLE IF EXISTS {}; DROP ROLE IF EXISTS {};",
            quote_identifier(&clone),
            quote_identifier(&master)
        ))
        .await;
        role.drop().await;
    }
    support::assert_no_known_secret_in_server_log().await;
}

#[tokio::test]
async fn duplicate_invocations_of_every_step_leave_one_correct_end_state() {
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    for strategy in ["single-user", "alternating-users"] {
        let env = environment(&moto, strategy).await;
        let role = AppRole::create(&unique("dup"), "initial-Passw0rd-dup").await;
        let master = unique("dup_master");
        let master_password = format!("master-{master}-Pw");
        let verifier = scram_verifier(&SecretString::from(master_password.clone()));
        run_as_superuser(&format!(
            "CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}; GRANT {} TO {} WITH ADMIN OPTION;",
            quote_identifier(&master),
            quote_literal(verifier.expose_secret()),
            quote_identifier(&role.name),
            quote_identifier(&master),
        ))
        .await;
        let master_arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("pg-dup-master"),
                &template_secret(&master, &master_password).await.to_string(),
            )
            .await;
        let mut secret = template_secret(&role.name, &role.password).await;
        secret["masterarn"] = json!(master_arn);
        let arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("pg-dup"),
                &secret.to_string(),
            )
            .await;
        for _ in 0..2 {
            duplicate_steps_converge(&moto, BINARY, &env, &arn, &PostgresLogins).await;
        }
        run_as_superuser(&format!(
            "DROP ROLE IF EXISTS {}; DROP ROLE IF EXISTS {};",
            quote_identifier(&format!("{}_clone", role.name)),
            quote_identifier(&master)
        ))
        .await;
        role.drop().await;
    }
}

/// Applications keep logging in while 50 alternating-users rotations run back to back: a login
/// that fails with cached credentials succeeds after one re-read of `AWSCURRENT`, every time.
#[tokio::test]
async fn fifty_alternating_rotations_under_load_fail_no_login_after_a_re_read() {
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    let env = environment(&moto, "alternating-users").await;
    let role = AppRole::create(&unique("load"), "initial-Passw0rd-load").await;
    let master = unique("load_master");
    let master_password = format!("master-{master}-Pw");
    let verifier = scram_verifier(&SecretString::from(master_password.clone()));
    run_as_superuser(&format!(
        "CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}; GRANT {} TO {} WITH ADMIN OPTION;",
        quote_identifier(&master),
        quote_literal(verifier.expose_secret()),
        quote_identifier(&role.name),
        quote_identifier(&master),
    ))
    .await;
    let master_arn = moto
        .create_secret(
            &MotoSecretsManager::unique_name("pg-load-master"),
            &template_secret(&master, &master_password).await.to_string(),
        )
        .await;
    let mut secret = template_secret(&role.name, &role.password).await;
    secret["masterarn"] = json!(master_arn);
    let arn = moto
        .create_secret(
            &MotoSecretsManager::unique_name("pg-load"),
            &secret.to_string(),
        )
        .await;

    let function = rotation_tests::runtime_api::LambdaFunction::start(
        rotation_tests::runtime_api::FunctionSpec::new(BINARY).env(env),
    )
    .await
    .expect("the function starts");
    let orchestrator = rotation_tests::orchestrator::Orchestrator {
        moto: &moto,
        function: &function,
    };
    let rotations = async {
        for _ in 0..50 {
            orchestrator.rotate(&arn).await.expect_success();
            tokio::time::sleep(rotation_tests::load::ROTATION_PAUSE).await;
        }
    };
    let ((), report) = rotation_tests::load::logins_during(
        &moto,
        &arn,
        &PostgresLogins,
        std::time::Duration::from_millis(5),
        rotations,
    )
    .await;
    eprintln!("PostgreSQL under 50 rotations: {report:?}");
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
    run_as_superuser(&format!(
        "DROP ROLE IF EXISTS {}; DROP ROLE IF EXISTS {};",
        quote_identifier(&format!("{}_clone", role.name)),
        quote_identifier(&master)
    ))
    .await;
    role.drop().await;
}
