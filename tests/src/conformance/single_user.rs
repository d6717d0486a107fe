//! The single-user strategy: the user changes its own password.

use serde_json::{json, Value};

use super::{
    assert_no_pending, assert_rotated, rotate_and_check, template_secret, unique,
    DatabaseUnderTest, Fixture, User,
};
use crate::login::Login;
use crate::orchestrator::STEPS;
use crate::runtime_api::Invocation;

/// Three rotations with each `engine` the server answers to: labels, passwords and privileges
/// after each, the secret's other fields kept in their types, the AWS templates' log lines.
pub async fn three_consecutive_rotations_retire_each_old_password_and_keep_the_rest(
    database: &dyn DatabaseUnderTest,
) {
    let port = database.server().await.port;
    for engine in database.engines() {
        let user = User::create(database, "app").await;
        let mut secret = template_secret(database, engine, &user.name, &user.password).await;
        secret["dbClusterIdentifier"] = json!("kept-as-is");
        let fixture = Fixture::start(database, &secret, &[]).await;

        let passwords = rotate_and_check(&fixture, &user, 3).await;

        let current = fixture.value_at("AWSCURRENT").await;
        assert_eq!(current["engine"], json!(engine));
        assert_eq!(current["port"], json!(port), "a number port stays a number");
        assert_eq!(current["dbClusterIdentifier"], json!("kept-as-is"));
        assert_eq!(current["username"], json!(user.name));
        let output = fixture.output();
        let set = format!(
            "setSecret: Successfully set password for user {} in {} DB",
            user.name,
            database.database_name(engine)
        );
        assert!(output.contains(&set), "{engine}: {set}: {output}");
        let tested = format!(
            "testSecret: Successfully signed into {} DB",
            database.test_database_name()
        );
        assert!(output.contains(&tested), "{engine}: {tested}: {output}");
        database.assert_no_secret_in(&output, &passwords, "the function's output");
        assert_eq!(fixture.function.cold_starts(), 1, "one warm process");
        fixture.stop().await;
        user.drop(database).await;
    }
}

pub async fn every_single_user_step_invoked_twice_leaves_the_same_end_state(
    database: &dyn DatabaseUnderTest,
) {
    for engine in database.engines() {
        let user = User::create(database, "retry").await;
        let secret = template_secret(database, engine, &user.name, &user.password).await;
        let fixture = Fixture::start(database, &secret, &[]).await;
        let old_token = fixture.version_with("AWSCURRENT").await.expect("current");

        let token = fixture.moto.start_rotation(&fixture.arn).await;
        let mut pending_passwords = Vec::new();
        for step in STEPS {
            for attempt in 1..=2 {
                let record = fixture
                    .orchestrator()
                    .invoke(&fixture.arn, &token, step)
                    .await;
                assert!(
                    matches!(record.invocation, Invocation::Succeeded(_)),
                    "{engine} {step} attempt {attempt}: {:?}",
                    record.invocation
                );
                if step == "createSecret" {
                    pending_passwords.push(fixture.password_at("AWSPENDING").await);
                }
            }
        }
        assert_eq!(
            pending_passwords[0], pending_passwords[1],
            "a repeated createSecret keeps the pending value"
        );

        assert_rotated(&fixture.labels().await, &token, &old_token);
        let new_password = fixture.password_at("AWSCURRENT").await;
        assert_eq!(new_password, pending_passwords[0]);
        assert_eq!(database.login(&user.name, &new_password).await, Login::Ok);
        assert_eq!(
            database.login(&user.name, &user.password).await,
            Login::Rejected
        );
        let output = fixture.output();
        let already = format!(
            "setSecret: AWSPENDING secret is already set as password in {} DB",
            database.database_name(engine)
        );
        assert!(
            output.contains(&already),
            "{engine}: the repeated setSecret found the password set: {output}"
        );
        database.assert_no_secret_in(
            &output,
            &[user.password.clone(), new_password],
            "the function's output",
        );
        fixture.stop().await;
        user.drop(database).await;
    }
}

pub async fn set_secret_recovers_through_awsprevious_when_awscurrent_no_longer_logs_in(
    database: &dyn DatabaseUnderTest,
) {
    for engine in database.engines() {
        let user = User::create(database, "recover").await;
        let secret = template_secret(database, engine, &user.name, &user.password).await;
        let fixture = Fixture::start(database, &secret, &[]).await;
        fixture.rotate().await.expect_success();
        let first = fixture.password_at("AWSCURRENT").await;
        assert_eq!(fixture.password_at("AWSPREVIOUS").await, user.password);

        // The user's password went back to the AWSPREVIOUS one (a restore, an earlier rotation
        // that died half-way): AWSCURRENT no longer logs in.
        database.set_password(&user.name, &user.password).await;
        assert_eq!(database.login(&user.name, &first).await, Login::Rejected);

        let old_token = fixture.version_with("AWSCURRENT").await.expect("current");
        let record = fixture.rotate().await;
        record.expect_success();
        assert_rotated(&fixture.labels().await, &record.token, &old_token);
        let second = fixture.password_at("AWSCURRENT").await;
        assert_eq!(database.login(&user.name, &second).await, Login::Ok);
        assert_eq!(
            database.login(&user.name, &user.password).await,
            Login::Rejected
        );
        let output = fixture.output();
        assert!(output.contains("trying AWSPREVIOUS"), "{engine}: {output}");
        database.assert_no_secret_in(
            &output,
            &[user.password.clone(), first, second],
            "the function's output",
        );
        fixture.stop().await;
        user.drop(database).await;
    }
}

/// A pending version written by someone else names the administrator, or another host: setSecret
/// refuses it with the AWS templates' message and nothing changes in the database.
pub async fn a_pending_version_for_another_user_or_host_is_refused_and_the_database_is_unchanged(
    database: &dyn DatabaseUnderTest,
) {
    let server = database.server().await;
    let cases = [
        (
            "username",
            json!(server.admin),
            format!(
                "Attempting to modify user {} other than current user",
                server.admin
            ),
        ),
        (
            "host",
            json!(server.ip),
            format!(
                "Attempting to modify user for host {} other than current host {}",
                server.ip, server.host
            ),
        ),
    ];
    for engine in database.engines() {
        for (field, tampered, expected) in &cases {
            let user = User::create(database, "tamper").await;
            let secret = template_secret(database, engine, &user.name, &user.password).await;
            let fixture = Fixture::start(database, &secret, &[]).await;
            let involved = [user.name.clone(), server.admin.to_owned()];
            let before = database.privileges(&involved).await;
            let mut pending = secret.clone();
            pending[*field] = tampered.clone();
            pending["password"] = json!("tampered-Passw0rd-not-applied");
            let message = fixture.set_secret_refuses(&pending).await;
            assert!(message.contains(expected), "{engine} {field}: {message}");

            assert_eq!(database.privileges(&involved).await, before, "{field}");
            assert_eq!(
                database.login(&user.name, &user.password).await,
                Login::Ok,
                "{field}: the current password still logs in"
            );
            assert_eq!(
                database.login(server.admin, &server.admin_password).await,
                Login::Ok,
                "{field}: the administrator's password is untouched"
            );
            assert_eq!(
                database
                    .login(server.admin, "tampered-Passw0rd-not-applied")
                    .await,
                Login::Rejected
            );
            fixture.stop().await;
            user.drop(database).await;
        }
    }
}

pub async fn a_secret_rotated_by_this_function_rotates_again_after_a_cold_start(
    database: &dyn DatabaseUnderTest,
) {
    let user = User::create(database, "cold").await;
    let fixture = Fixture::for_user(database, &user, &[]).await;
    fixture.rotate().await.expect_success();
    let first_pid = fixture.function.pid();

    let fixture = fixture.restart().await;
    assert_eq!(fixture.function.cold_starts(), 1, "a fresh process");
    assert_ne!(fixture.function.pid(), first_pid);
    let old_token = fixture.version_with("AWSCURRENT").await.expect("current");
    let record = fixture.rotate().await;
    record.expect_success();
    assert_rotated(&fixture.labels().await, &record.token, &old_token);
    let password = fixture.password_at("AWSCURRENT").await;
    assert_eq!(database.login(&user.name, &password).await, Login::Ok);
    assert_eq!(
        database
            .login(&user.name, &fixture.password_at("AWSPREVIOUS").await)
            .await,
        Login::Rejected
    );
    database.assert_no_secret_in(&fixture.output(), &[password], "the function's output");
    fixture.stop().await;
    user.drop(database).await;
}

/// testSecret fails after setSecret changed the password (what the user needs in the secret's
/// database was taken away in between): the function puts the user back on the `AWSCURRENT`
/// password and removes `AWSPENDING`, so applications using `AWSCURRENT` keep logging in, and
/// Secrets Manager's retry of the rotation changes nothing.
pub async fn a_failed_test_rolls_the_password_back_so_awscurrent_keeps_working(
    database: &dyn DatabaseUnderTest,
) {
    let user = User::create(database, "rb").await;
    let dbname = unique("rb_db");
    database.create_database(&user.name, &dbname).await;
    let mut secret =
        template_secret(database, database.engines()[0], &user.name, &user.password).await;
    secret["dbname"] = json!(dbname);
    let fixture = Fixture::start(database, &secret, &[]).await;
    let orchestrator = fixture.orchestrator();
    let token = fixture.moto.start_rotation(&fixture.arn).await;
    for step in ["createSecret", "setSecret"] {
        let record = orchestrator.invoke(&fixture.arn, &token, step).await;
        assert!(
            matches!(record.invocation, Invocation::Succeeded(_)),
            "{step}: {:?}",
            record.invocation
        );
    }
    let pending_password = fixture.password_at("AWSPENDING").await;
    assert_eq!(
        database.login(&user.name, &user.password).await,
        Login::Rejected
    );

    database.take_away_database(&user.name, &dbname).await;
    let record = orchestrator
        .invoke(&fixture.arn, &token, "testSecret")
        .await;
    let (error_type, message) = record.invocation.failed().expect("testSecret fails");
    assert_eq!(error_type, "TargetRejected", "{message}");
    assert!(
        message.contains("denied")
            && message.contains("rolled back")
            && message.contains("AWSPENDING was removed"),
        "the server's refusal and what the function did about it: {message}"
    );
    assert_eq!(
        database.login(&user.name, &user.password).await,
        Login::Ok,
        "AWSCURRENT logs in again"
    );
    assert_eq!(
        database.login(&user.name, &pending_password).await,
        Login::Rejected
    );
    assert_no_pending(&fixture.labels().await);

    // Secrets Manager retries the rotation: the preamble refuses the abandoned token.
    let retried = orchestrator.run_steps(&fixture.arn, token.clone()).await;
    assert!(
        retried.failure().is_some(),
        "the abandoned token is refused"
    );
    assert_eq!(database.login(&user.name, &user.password).await, Login::Ok);

    database.assert_no_secret_in(
        &format!("{}{message}", fixture.output()),
        &[user.password.clone(), pending_password],
        "the function's output and error",
    );
    fixture.stop().await;
    database.drop_database(&dbname).await;
    user.drop(database).await;
}

/// At the most verbose level the function allows (TRACE for its own crates, DEBUG for sqlx and
/// the SDK), no password shows: the driver's statement log is off on the function's
/// connections, and the statements that hold a password are never part of an error.
pub async fn no_password_appears_in_the_function_output_even_at_trace_level(
    database: &dyn DatabaseUnderTest,
) {
    let user = User::create(database, "trace").await;
    let fixture = Fixture::for_user(
        database,
        &user,
        &[
            ("EXCLUDE_CHARACTERS", ""),
            ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
        ],
    )
    .await;
    let passwords = rotate_and_check(&fixture, &user, 2).await;
    let output = fixture.output();
    assert!(
        output.contains("DEBUG"),
        "the verbose level is on: {output}"
    );
    // The engine's own password statement, and the forms either dialect's could take.
    for statement in [database.password_statement(), "IDENTIFIED BY", "PASSWORD '"] {
        assert!(
            !output.contains(statement),
            "no password statement ({statement}) is logged: {output}"
        );
    }
    database.assert_no_secret_in(&output, &passwords, "the function's output");
    fixture.stop().await;
    user.drop(database).await;
}

/// Every step writes one embedded-metric-format record beside its log line: `StepDuration` and
/// `StepFailed` under the function and the step, in the configured namespace, with the secret's
/// name only when asked for, and never a password.
pub async fn every_step_writes_one_metric_record_and_no_secret_in_it(
    database: &dyn DatabaseUnderTest,
) {
    let user = User::create(database, "emf").await;
    let secret = template_secret(database, database.engines()[0], &user.name, &user.password).await;
    let fixture = Fixture::start(
        database,
        &secret,
        &[
            ("METRICS_NAMESPACE", "Rotation/Tests"),
            ("AWS_LAMBDA_FUNCTION_NAME", "rotation-under-test"),
        ],
    )
    .await;
    let passwords = rotate_and_check(&fixture, &user, 1).await;
    let mut refused = secret.clone();
    refused["username"] = json!(database.server().await.admin);
    refused["password"] = json!("tampered-Passw0rd-not-applied");
    fixture.set_secret_refuses(&refused).await;

    let output = fixture.output();
    let records: Vec<Value> = output
        .lines()
        .filter(|line| line.contains("\"_aws\""))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let steps: Vec<(String, u64)> = records
        .iter()
        .map(|record| {
            let directive = &record["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(directive["Namespace"], "Rotation/Tests", "{record}");
            assert_eq!(directive["Dimensions"], json!([["function", "step"]]));
            assert_eq!(record["function"], "rotation-under-test");
            assert!(record["StepDuration"].as_u64().is_some(), "{record}");
            assert!(record.get("secret").is_none(), "no secret name: {record}");
            (
                record["step"].as_str().expect("a step").to_owned(),
                record["StepFailed"].as_u64().expect("0 or 1"),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = STEPS
        .iter()
        .map(|step| ((*step).to_owned(), 0))
        .chain([("setSecret".to_owned(), 1)])
        .collect();
    assert_eq!(
        steps, expected,
        "one record per step, the refused one failed"
    );
    let record_lines: String = output
        .lines()
        .filter(|line| line.contains("\"_aws\""))
        .collect();
    database.assert_no_secret_in(&record_lines, &passwords, "the metric records");
    assert!(!record_lines.contains(&fixture.arn), "no secret ARN");
    fixture.stop().await;
    user.drop(database).await;
}
