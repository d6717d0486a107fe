//! Faults on the way to Secrets Manager and to the database: proxies in front of moto and the
//! server return errors, answer late, refuse or cut connections. Each fault must give a clear,
//! classified error within the step's time bound, and the rotation retried as Secrets Manager
//! would must finish it.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{environment, template_secret, DatabaseUnderTest, Fixture, User};
use crate::login::Login;
use crate::orchestrator::RotationRecord;
use crate::proxy::{ConnectionFault, Proxy, RequestFault};
use crate::secrets_manager::MotoSecretsManager;
use crate::stack;

/// Far inside the 30 s Lambda timeout the template sets, and above every timeout in the code.
const STEP_BOUND: Duration = Duration::from_secs(28);

/// The function for `user`'s secret, talking to Secrets Manager through a proxy in front of
/// moto.
async fn behind_a_secrets_manager_proxy<'d>(
    database: &'d dyn DatabaseUnderTest,
    user: &User,
) -> (Fixture<'d>, Proxy) {
    let proxy = Proxy::aws_json(([127, 0, 0, 1], stack::moto().await.port()).into())
        .await
        .expect("a proxy in front of moto");
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    let secret = template_secret(database, database.engines()[0], &user.name, &user.password).await;
    let arn = moto
        .create_secret(&super::unique("db-faults"), &secret.to_string())
        .await;
    let mut env: Vec<(String, String)> = environment(database, &moto, &[])
        .await
        .into_iter()
        .filter(|(name, _)| name != "AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .collect();
    env.push((
        "AWS_ENDPOINT_URL_SECRETS_MANAGER".to_owned(),
        proxy.endpoint(),
    ));
    (Fixture::launch(database, moto, arn, env).await, proxy)
}

/// The failed step's error type and message, checking it ended within the bound.
fn failure(record: &RotationRecord) -> (String, String) {
    let failed = record.failure().expect("a step failed");
    assert!(
        failed.duration < STEP_BOUND,
        "{} took {:?}",
        failed.step,
        failed.duration
    );
    failed
        .invocation
        .clone()
        .failed()
        .unwrap_or_else(|other| panic!("{}: an error answer, got {other}", failed.step))
}

pub async fn secrets_manager_errors_are_retryable_and_the_retry_finishes_the_rotation(
    database: &dyn DatabaseUnderTest,
) {
    let user = User::create(database, "sm_faults").await;
    let (fixture, proxy) = behind_a_secrets_manager_proxy(database, &user).await;
    let orchestrator = fixture.orchestrator();
    // Three in a row: the SDK's own retries (three attempts) all meet the fault.
    for (operation, fault) in [
        ("PutSecretValue", RequestFault::ServerError),
        ("DescribeSecret", RequestFault::Throttling),
        ("UpdateSecretVersionStage", RequestFault::Drop),
        ("GetSecretValue", RequestFault::ServerError),
    ] {
        proxy.fail_requests(Some(operation), 3, fault);
        let record = orchestrator.rotate(&fixture.arn).await;
        let (error_type, message) = failure(&record);
        assert_eq!(
            error_type, "SecretsManagerUnavailable",
            "{operation} {fault:?}: {message}"
        );
        assert!(message.contains(operation), "{operation}: {message}");
        let retried = orchestrator
            .run_steps(&fixture.arn, record.token.clone())
            .await;
        retried.expect_success();
        let password = fixture.password_at("AWSCURRENT").await;
        assert_eq!(
            database.login(&user.name, &password).await,
            Login::Ok,
            "{operation}"
        );
    }
    fixture.stop().await;
    user.drop(database).await;
}

pub async fn a_secrets_manager_that_answers_too_late_fails_the_step_within_its_bound(
    database: &dyn DatabaseUnderTest,
) {
    let user = User::create(database, "sm_slow").await;
    let (fixture, proxy) = behind_a_secrets_manager_proxy(database, &user).await;
    let orchestrator = fixture.orchestrator();
    proxy.fail_requests(
        Some("DescribeSecret"),
        3,
        RequestFault::Slow(Duration::from_secs(6)),
    );
    let started = Instant::now();
    let record = orchestrator.rotate(&fixture.arn).await;
    let (error_type, message) = failure(&record);
    assert_eq!(error_type, "SecretsManagerUnavailable", "{message}");
    assert!(message.contains("DescribeSecret"), "{message}");
    assert!(started.elapsed() < STEP_BOUND);
    orchestrator
        .run_steps(&fixture.arn, record.token.clone())
        .await
        .expect_success();
    fixture.stop().await;
    user.drop(database).await;
}

/// Runs createSecret, then setSecret through `proxy` failing every connection with `fault`:
/// setSecret must fail as `TargetUnreachable` within the bound, naming the server; the rotation
/// retried once the proxy heals must finish, and the new password must be the one that works.
async fn fault_then_retry(
    database: &dyn DatabaseUnderTest,
    proxy: &Proxy,
    what: &str,
    ssl: bool,
    fault: ConnectionFault,
) {
    let user = User::create(database, "db_faults").await;
    let mut secret =
        template_secret(database, database.engines()[0], &user.name, &user.password).await;
    secret["port"] = json!(proxy.port());
    if !ssl {
        secret["ssl"] = json!(false);
    }
    let fixture = Fixture::start(database, &secret, &[("CONNECT_TIMEOUT_SECONDS", "1")]).await;
    let orchestrator = fixture.orchestrator();
    // A refused or delayed connection never reaches the server: the password cannot change.
    let never_reaches_the_server =
        matches!(fault, ConnectionFault::Refuse | ConnectionFault::Delay(_));
    proxy.fail_connections(100, fault);
    let token = fixture.moto.start_rotation(&fixture.arn).await;
    let created = orchestrator
        .invoke(&fixture.arn, &token, "createSecret")
        .await;
    assert!(created.invocation.clone().succeeded().is_ok(), "{what}");
    let set = orchestrator.invoke(&fixture.arn, &token, "setSecret").await;
    assert!(set.duration < STEP_BOUND, "{what}: {:?}", set.duration);
    let (error_type, message) = set.invocation.failed().expect("setSecret fails");
    assert_eq!(error_type, "TargetUnreachable", "{what}: {message}");
    let server = database.server().await;
    assert!(
        message.contains(&format!("{}:{}", server.host, proxy.port())),
        "{what}: names the server: {message}"
    );
    if never_reaches_the_server {
        assert_eq!(
            database.login(&user.name, &user.password).await,
            Login::Ok,
            "{what}: the password is unchanged"
        );
    }
    proxy.heal();
    orchestrator
        .run_steps(&fixture.arn, token)
        .await
        .expect_success();
    let password = fixture.password_at("AWSCURRENT").await;
    assert_eq!(
        database.login(&user.name, &password).await,
        Login::Ok,
        "{what}"
    );
    assert_eq!(
        database.login(&user.name, &user.password).await,
        Login::Rejected,
        "{what}"
    );
    fixture.stop().await;
    user.drop(database).await;
}

async fn database_proxy(database: &dyn DatabaseUnderTest) -> Proxy {
    Proxy::tcp(([127, 0, 0, 1], database.server().await.port).into())
        .await
        .expect("a proxy in front of the server")
}

pub async fn refused_and_slow_connections_are_classified_and_the_retry_finishes_the_rotation(
    database: &dyn DatabaseUnderTest,
) {
    let proxy = database_proxy(database).await;
    fault_then_retry(database, &proxy, "refused", true, ConnectionFault::Refuse).await;
    let slow = ConnectionFault::Delay(Duration::from_secs(3));
    fault_then_retry(database, &proxy, "slow", true, slow).await;
}

/// The connection is cut right after the password statement went to the server: the password
/// may have changed without the function hearing of it. (TLS is off for this secret so the proxy
/// can see the statement.)
pub async fn a_connection_cut_after_the_password_statement_is_finished_by_the_retry(
    database: &dyn DatabaseUnderTest,
) {
    let proxy = database_proxy(database).await;
    let cut = ConnectionFault::CutAfter(database.password_statement().to_owned());
    fault_then_retry(database, &proxy, "cut mid-statement", false, cut).await;
}

/// testSecret cannot reach the database in time (a slow or overloaded server): that says
/// nothing about the pending password, so nothing is rolled back. `AWSPENDING` and the database
/// stay as setSecret left them, and Secrets Manager's retry of testSecret finishes the
/// rotation. (A rejected password is rolled back: the single-user suite shows it.)
pub async fn a_test_secret_that_times_out_rolls_nothing_back_and_the_retry_finishes_the_rotation(
    database: &dyn DatabaseUnderTest,
) {
    let proxy = database_proxy(database).await;
    let user = User::create(database, "db_slow_test").await;
    let mut secret =
        template_secret(database, database.engines()[0], &user.name, &user.password).await;
    secret["port"] = json!(proxy.port());
    let fixture = Fixture::start(database, &secret, &[("CONNECT_TIMEOUT_SECONDS", "1")]).await;
    let orchestrator = fixture.orchestrator();
    let token = fixture.moto.start_rotation(&fixture.arn).await;
    for step in ["createSecret", "setSecret"] {
        let record = orchestrator.invoke(&fixture.arn, &token, step).await;
        assert!(record.invocation.clone().succeeded().is_ok(), "{step}");
    }
    let pending = fixture.password_at("AWSPENDING").await;

    proxy.fail_connections(100, ConnectionFault::Delay(Duration::from_secs(3)));
    let tested = orchestrator
        .invoke(&fixture.arn, &token, "testSecret")
        .await;
    assert!(tested.duration < STEP_BOUND, "{:?}", tested.duration);
    let (error_type, message) = tested.invocation.failed().expect("testSecret fails");
    assert_eq!(error_type, "TargetUnreachable", "{message}");
    assert!(message.contains("nothing rolled back"), "{message}");
    proxy.heal();

    assert_eq!(
        fixture.version_with("AWSPENDING").await.as_deref(),
        Some(token.as_str()),
        "AWSPENDING is still the rotation's"
    );
    assert_eq!(
        database.login(&user.name, &pending).await,
        Login::Ok,
        "the database still holds the pending password"
    );
    assert_eq!(
        database.login(&user.name, &user.password).await,
        Login::Rejected
    );
    let old_token = fixture.version_with("AWSCURRENT").await.expect("current");
    for step in ["testSecret", "finishSecret"] {
        let record = orchestrator.invoke(&fixture.arn, &token, step).await;
        assert!(
            record.invocation.clone().succeeded().is_ok(),
            "retried {step}"
        );
    }
    super::assert_rotated(&fixture.labels().await, &token, &old_token);
    assert_eq!(fixture.password_at("AWSCURRENT").await, pending);
    fixture.stop().await;
    user.drop(database).await;
}
