//! The harness proven end to end: a real function binary (the test-only credential-file target)
//! runs under the Lambda Runtime API emulator, moto plays Secrets Manager's store, and the
//! orchestrator drives whole rotations as the service would.

use std::path::{Path, PathBuf};

use rotation_tests::orchestrator::{Orchestrator, STEPS};
use rotation_tests::runtime_api::{FunctionSpec, Invocation, LambdaFunction};
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack;
use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_rotate-credential-file");

struct Fixture {
    moto: MotoSecretsManager,
    function: LambdaFunction,
    file: PathBuf,
    arn: String,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new(extra_env: &[(&str, &str)]) -> Fixture {
        let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("credential.json");
        let initial = json!({
            "engine": "file",
            "username": "app",
            "password": "initial-password",
            "port": "5432",
            "owner": {"team": "payments"}
        });
        write_credential(&file, "initial-password");
        let arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("file"),
                &initial.to_string(),
            )
            .await;
        let mut env = moto.function_environment();
        env.push(("CREDENTIAL_FILE".to_owned(), file.display().to_string()));
        for (name, value) in extra_env {
            env.push(((*name).to_owned(), (*value).to_owned()));
        }
        let spec = FunctionSpec::new(BINARY).env(env).log_format("JSON");
        let function = LambdaFunction::start(spec)
            .await
            .expect("the function starts");
        Fixture {
            moto,
            function,
            file,
            arn,
            _dir: dir,
        }
    }

    fn orchestrator(&self) -> Orchestrator<'_> {
        Orchestrator {
            moto: &self.moto,
            function: &self.function,
        }
    }

    fn held_password(&self) -> String {
        let text = std::fs::read_to_string(&self.file).expect("credential file");
        let held: Value = serde_json::from_str(&text).expect("credential JSON");
        held["password"].as_str().expect("password").to_owned()
    }
}

/// Lambda's JSON log format: every step of every rotation wrote exactly one line carrying the
/// step, the secret, the version, the outcome and the duration.
fn assert_one_json_line_per_step(output: &str, rotations: usize) {
    let step_lines: Vec<Value> = output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["outcome"].is_string())
        .collect();
    for step in STEPS {
        let lines: Vec<&Value> = step_lines
            .iter()
            .filter(|line| line["fields"]["step"] == json!(step))
            .collect();
        assert_eq!(lines.len(), rotations, "{step}: {output}");
        for line in lines {
            let fields = &line["fields"];
            assert!(
                fields["secret_arn"]
                    .as_str()
                    .is_some_and(|arn| arn.starts_with("arn:aws:secretsmanager:")),
                "{line}"
            );
            assert!(fields["version_id"].is_string(), "{line}");
            assert!(fields["duration_ms"].is_u64(), "{line}");
            assert_eq!(line["level"], json!("INFO"), "{line}");
        }
    }
}

fn write_credential(path: &Path, password: &str) {
    let body = json!({"username": "app", "password": password}).to_string();
    std::fs::write(path, body).expect("write credential file");
}

#[tokio::test]
async fn three_rotations_through_the_runtime_api_move_the_labels_and_the_credential() {
    let fixture = Fixture::new(&[]).await;
    let mut seen_passwords = vec!["initial-password".to_owned()];
    let mut previous_token = fixture
        .moto
        .labels(&fixture.arn)
        .await
        .into_iter()
        .find(|(_, labels)| labels.contains(&"AWSCURRENT".to_owned()))
        .map(|(id, _)| id)
        .expect("a current version");

    for round in 1..=3 {
        let record = fixture.orchestrator().rotate(&fixture.arn).await;
        record.expect_success();

        let labels = fixture.moto.labels(&fixture.arn).await;
        assert_eq!(labels[&record.token], vec!["AWSCURRENT"], "round {round}");
        assert_eq!(
            labels[&previous_token],
            vec!["AWSPREVIOUS"],
            "round {round}"
        );
        assert!(
            labels
                .values()
                .all(|l| !l.contains(&"AWSPENDING".to_owned())),
            "no AWSPENDING left after round {round}: {labels:?}"
        );

        let current = fixture
            .moto
            .value_at(&fixture.arn, "AWSCURRENT")
            .await
            .expect("current value");
        let password = current["password"].as_str().expect("password").to_owned();
        assert_eq!(
            fixture.held_password(),
            password,
            "the file holds AWSCURRENT"
        );
        assert!(
            !seen_passwords.contains(&password),
            "a new password each round"
        );
        assert_eq!(password.len(), 32, "the default password length");
        assert_eq!(
            current["port"],
            json!("5432"),
            "a string port stays a string"
        );
        assert_eq!(current["owner"], json!({"team": "payments"}));
        seen_passwords.push(password);
        previous_token = record.token;
    }

    // One warm process served all twelve invocations, and nothing secret reached its output.
    let output = fixture.function.stop().await;
    for password in &seen_passwords {
        assert!(
            !output.contains(password.as_str()),
            "a password leaked into the logs"
        );
    }
    assert_one_json_line_per_step(&output, 3);
}

#[tokio::test]
async fn no_password_or_rotation_token_reaches_the_log_even_at_trace_level() {
    let fixture = Fixture::new(&[("AWS_LAMBDA_LOG_LEVEL", "TRACE")]).await;
    let mut records = Vec::new();
    let mut passwords = vec!["initial-password".to_owned()];
    for _ in 0..2 {
        let record = fixture.orchestrator().rotate(&fixture.arn).await;
        record.expect_success();
        let current = fixture
            .moto
            .value_at(&fixture.arn, "AWSCURRENT")
            .await
            .expect("current value");
        passwords.push(current["password"].as_str().expect("password").to_owned());
        records.push(record);
    }
    let output = fixture.function.stop().await;
    // Held at DEBUG, the libraries still log in detail: the test looks at real verbose output.
    assert!(
        output.contains("DEBUG"),
        "the function logged verbosely: {output}"
    );
    for password in &passwords {
        assert!(
            !output.contains(password.as_str()),
            "a password leaked into the log"
        );
    }
    for step in records.iter().flat_map(|record| &record.steps) {
        assert!(
            !output.contains(&step.rotation_token),
            "the RotationToken of {} leaked into the log",
            step.step
        );
    }
}

#[tokio::test]
async fn a_failing_step_stops_the_rotation_with_a_stable_error_type_and_a_retry_finishes_it() {
    let fixture = Fixture::new(&[]).await;
    // The credential drifted: the file holds a password no version knows.
    write_credential(&fixture.file, "changed-by-hand");
    let record = fixture.orchestrator().rotate(&fixture.arn).await;
    let failed = record.failure().expect("the rotation fails");
    assert_eq!(failed.step, "setSecret");
    let Invocation::Failed {
        error_type,
        error_message,
    } = &failed.invocation
    else {
        panic!("expected a function error, got {:?}", failed.invocation);
    };
    assert_eq!(error_type, "TargetRejected");
    assert!(error_message.contains("holds none of"), "{error_message}");
    assert_eq!(
        record.steps.len(),
        2,
        "the orchestrator stopped at the failure"
    );

    // The operator repairs the drift; Secrets Manager's retry reuses the pending version.
    write_credential(&fixture.file, "initial-password");
    let retry = fixture
        .orchestrator()
        .run_steps(&fixture.arn, record.token.clone())
        .await;
    retry.expect_success();
    let labels = fixture.moto.labels(&fixture.arn).await;
    assert_eq!(labels[&record.token], vec!["AWSCURRENT"]);
    fixture.function.stop().await;
}

#[tokio::test]
async fn an_invalid_configuration_fails_every_invocation_with_a_message_naming_the_variable() {
    let fixture = Fixture::new(&[("PASSWORD_LENGTH", "lots")]).await;
    let before = fixture.moto.labels(&fixture.arn).await;
    let record = fixture.orchestrator().rotate(&fixture.arn).await;
    let failed = record
        .failure()
        .expect("a misconfigured function must not rotate");
    assert_eq!(failed.step, "createSecret");
    let Invocation::Failed {
        error_type,
        error_message,
    } = &failed.invocation
    else {
        panic!("expected a function error, got {:?}", failed.invocation);
    };
    assert_eq!(error_type, "InvalidConfiguration");
    assert!(error_message.contains("PASSWORD_LENGTH"), "{error_message}");
    let after = fixture.moto.labels(&fixture.arn).await;
    assert_eq!(
        after.len(),
        before.len() + 1,
        "only the service's placeholder was added"
    );
    assert_eq!(after[&record.token], vec!["AWSPENDING"]);
    fixture.function.stop().await;
}

#[tokio::test]
async fn an_event_for_an_unknown_secret_fails_with_the_secrets_manager_error() {
    let fixture = Fixture::new(&[]).await;
    let record = fixture
        .orchestrator()
        .invoke(
            "no-such-secret",
            "00000000-0000-4000-8000-000000000000",
            "createSecret",
        )
        .await;
    let Invocation::Failed {
        error_type,
        error_message,
    } = record.invocation
    else {
        panic!("expected a function error");
    };
    assert_eq!(error_type, "SecretsManager");
    assert!(error_message.contains("DescribeSecret"), "{error_message}");
    assert!(
        error_message.contains("ResourceNotFoundException"),
        "{error_message}"
    );
    fixture.function.stop().await;
}
