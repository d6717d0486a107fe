//! Faults on the way to Secrets Manager and to PostgreSQL: proxies in front of moto and the
//! server return errors, answer late, drop or cut connections. Each fault must give a clear,
//! classified error within the step's time bound, and the rotation retried as Secrets Manager
//! would must finish it.

mod support;

use std::time::{Duration, Instant};

use rotation_tests::orchestrator::{Orchestrator, RotationRecord};
use rotation_tests::proxy::{ConnectionFault, Proxy, RequestFault};
use rotation_tests::runtime_api::{FunctionSpec, LambdaFunction};
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack;
use serde_json::json;
use support::{login, postgres, template_secret, unique, AppRole, Login, BINARY};

/// Far inside the 30 s Lambda timeout the template sets, and above every timeout in the code.
const STEP_BOUND: Duration = Duration::from_secs(28);

/// The role, its secret (its host and port as given), and the function talking to Secrets
/// Manager through `secrets_manager` (an endpoint URL).
async fn start(
    role: &AppRole,
    host_port: Option<u16>,
    ssl: bool,
    secrets_manager: &str,
    extra_env: &[(&str, &str)],
) -> (MotoSecretsManager, LambdaFunction, String) {
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    let mut secret = template_secret(&role.name, &role.password).await;
    if let Some(port) = host_port {
        secret["port"] = json!(port);
    }
    if !ssl {
        secret["ssl"] = json!(false);
    }
    let arn = moto
        .create_secret(
            &MotoSecretsManager::unique_name("pg-faults"),
            &secret.to_string(),
        )
        .await;
    let mut env: Vec<(String, String)> = moto
        .function_environment()
        .into_iter()
        .filter(|(name, _)| name != "AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .collect();
    env.push((
        "AWS_ENDPOINT_URL_SECRETS_MANAGER".to_owned(),
        secrets_manager.to_owned(),
    ));
    env.push((
        "CA_BUNDLE".to_owned(),
        postgres().await.ca_cert_path().display().to_string(),
    ));
    for (name, value) in extra_env {
        env.push(((*name).to_owned(), (*value).to_owned()));
    }
    let function = LambdaFunction::start(FunctionSpec::new(BINARY).env(env))
        .await
        .expect("the function starts");
    (moto, function, arn)
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

#[tokio::test]
async fn secrets_manager_errors_are_retryable_and_the_retry_finishes_the_rotation() {
    let proxy = Proxy::aws_json(([127, 0, 0, 1], stack::moto().await.port()).into())
        .await
        .expect("a proxy in front of moto");
    let role = AppRole::create(&unique("sm_faults"), "initial-Passw0rd-smf").await;
    let (moto, function, arn) = start(&role, None, true, &proxy.endpoint(), &[]).await;
    let orchestrator = Orchestrator {
        moto: &moto,
        function: &function,
    };
    // Three in a row: the SDK's own retries (three attempts) all meet the fault.
    for (operation, fault) in [
        ("PutSecretValue", RequestFault::ServerError),
        ("DescribeSecret", RequestFault::Throttling),
        ("UpdateSecretVersionStage", RequestFault::Drop),
        ("GetSecretValue", RequestFault::ServerError),
    ] {
        proxy.fail_requests(Some(operation), 3, fault);
        let record = orchestrator.rotate(&arn).await;
        let (error_type, message) = failure(&record);
        assert_eq!(
            error_type, "SecretsManagerUnavailable",
            "{operation} {fault:?}: {message}"
        );
        assert!(message.contains(operation), "{operation}: {message}");
        let retried = orchestrator.run_steps(&arn, record.token.clone()).await;
        retried.expect_success();
        let password = moto.value_at(&arn, "AWSCURRENT").await.expect("current")["password"]
            .as_str()
            .expect("a password")
            .to_owned();
        assert_eq!(login(&role.name, &password).await, Login::Ok, "{operation}");
    }
    function.stop().await;
    role.drop().await;
}

#[tokio::test]
async fn a_secrets_manager_that_answers_too_late_fails_the_step_within_its_bound() {
    let proxy = Proxy::aws_json(([127, 0, 0, 1], stack::moto().await.port()).into())
        .await
        .expect("a proxy in front of moto");
    let role = AppRole::create(&unique("sm_slow"), "initial-Passw0rd-sms").await;
    let (moto, function, arn) = start(&role, None, true, &proxy.endpoint(), &[]).await;
    let orchestrator = Orchestrator {
        moto: &moto,
        function: &function,
    };
    proxy.fail_requests(
        Some("DescribeSecret"),
        3,
        RequestFault::Slow(Duration::from_secs(6)),
    );
    let started = Instant::now();
    let record = orchestrator.rotate(&arn).await;
    let (error_type, message) = failure(&record);
    assert_eq!(error_type, "SecretsManagerUnavailable", "{message}");
    assert!(message.contains("DescribeSecret"), "{message}");
    assert!(started.elapsed() < STEP_BOUND);
    orchestrator
        .run_steps(&arn, record.token.clone())
        .await
        .expect_success();
    function.stop().await;
    role.drop().await;
}

#[tokio::test]
async fn database_faults_are_classified_and_the_retry_finishes_the_rotation() {
    let pg = postgres().await;
    let proxy = Proxy::tcp(([127, 0, 0, 1], pg.port()).into())
        .await
        .expect("a proxy in front of PostgreSQL");
    let role = AppRole::create(&unique("db_faults"), "initial-Passw0rd-dbf").await;
    let endpoint = stack::moto().await.endpoint();
    let (moto, function, arn) = start(
        &role,
        Some(proxy.port()),
        true,
        &endpoint,
        &[("CONNECT_TIMEOUT_SECONDS", "1")],
    )
    .await;
    let orchestrator = Orchestrator {
        moto: &moto,
        function: &function,
    };
    let mut current_password = role.password.clone();

    for (what, fault) in [
        ("refused", ConnectionFault::Refuse),
        ("slow", ConnectionFault::Delay(Duration::from_secs(3))),
    ] {
        proxy.fail_connections(100, fault);
        let token = moto.start_rotation(&arn).await;
        let created = orchestrator.invoke(&arn, &token, "createSecret").await;
        assert!(created.invocation.clone().succeeded().is_ok(), "{what}");
        let set = orchestrator.invoke(&arn, &token, "setSecret").await;
        assert!(set.duration < STEP_BOUND, "{what}: {:?}", set.duration);
        let (error_type, message) = set.invocation.failed().expect("setSecret fails");
        assert_eq!(error_type, "TargetUnreachable", "{what}: {message}");
        assert!(
            message.contains(&format!("localhost:{}", proxy.port())),
            "{what}: names the server: {message}"
        );
        assert_eq!(
            login(&role.name, &current_password).await,
            Login::Ok,
            "{what}: unchanged"
        );
        proxy.heal();
        orchestrator.run_steps(&arn, token).await.expect_success();
        let password = moto.value_at(&arn, "AWSCURRENT").await.expect("current")["password"]
            .as_str()
            .expect("a password")
            .to_owned();
        assert_eq!(login(&role.name, &password).await, Login::Ok);
        current_password = password;
    }
    function.stop().await;
    role.drop().await;
}

/// The connection is cut right after `ALTER ROLE … PASSWORD` went to the server: the password
/// may have changed without the function hearing of it. (TLS is off for this secret so the proxy
/// can see the statement.)
#[tokio::test]
async fn a_connection_cut_mid_statement_is_finished_by_the_retry() {
    let pg = postgres().await;
    let proxy = Proxy::tcp(([127, 0, 0, 1], pg.port()).into())
        .await
        .expect("a proxy in front of PostgreSQL");
    let role = AppRole::create(&unique("db_cut"), "initial-Passw0rd-cut").await;
    let endpoint = stack::moto().await.endpoint();
    let (moto, function, arn) = start(&role, Some(proxy.port()), false, &endpoint, &[]).await;
    let orchestrator = Orchestrator {
        moto: &moto,
        function: &function,
    };
    proxy.fail_connections(100, ConnectionFault::CutAfter("ALTER ROLE".to_owned()));
    let token = moto.start_rotation(&arn).await;
    let created = orchestrator.invoke(&arn, &token, "createSecret").await;
    assert!(created.invocation.clone().succeeded().is_ok());
    let set = orchestrator.invoke(&arn, &token, "setSecret").await;
    assert!(set.duration < STEP_BOUND, "{:?}", set.duration);
    let (error_type, message) = set.invocation.failed().expect("setSecret fails");
    assert_eq!(error_type, "TargetUnreachable", "{message}");
    proxy.heal();
    orchestrator.run_steps(&arn, token).await.expect_success();
    let password = moto.value_at(&arn, "AWSCURRENT").await.expect("current")["password"]
        .as_str()
        .expect("a password")
        .to_owned();
    assert_eq!(login(&role.name, &password).await, Login::Ok);
    assert_eq!(login(&role.name, &role.password).await, Login::Rejected);
    function.stop().await;
    role.drop().await;
}
