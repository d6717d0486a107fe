//! The single-user strategy end to end: the real `rotate-postgres` binary under the Lambda
//! Runtime API emulator, moto as Secrets Manager, and the stack's PostgreSQL 15 (SCRAM,
//! verified TLS, every statement logged).

mod support;

use rotate_postgres::sql::{quote_identifier, quote_literal};
use rotation_tests::orchestrator::STEPS;
use rotation_tests::quoting_inputs;
use rotation_tests::runtime_api::Invocation;
use serde_json::json;
use sqlx::{Column, Connection, PgConnection, Row};
use support::{
    assert_no_secret_in, assert_rotated, login, postgres, superuser, template_secret, text_rows,
    unique, AppRole, Fixture, Login,
};

/// Runs `rounds` rotations, checking after each one the labels, the new password, the retired
/// one and the role's table. Returns every password the role had, the initial one first.
async fn rotate_and_check(fixture: &Fixture, role: &AppRole, rounds: usize) -> Vec<String> {
    let mut old_token = fixture
        .version_with("AWSCURRENT")
        .await
        .expect("a current version");
    let mut passwords = vec![role.password.clone()];
    for round in 1..=rounds {
        let record = fixture.rotate().await;
        record.expect_success();
        assert_rotated(&fixture.labels().await, &record.token, &old_token);
        let new_password = fixture.password_at("AWSCURRENT").await;
        let old_password = passwords.last().expect("a password").clone();
        assert!(
            !passwords.contains(&new_password),
            "round {round}: a new password"
        );
        assert_eq!(
            login(&role.name, &new_password).await,
            Login::Ok,
            "round {round}: the new AWSCURRENT password logs in"
        );
        assert_eq!(
            login(&role.name, &old_password).await,
            Login::Rejected,
            "round {round}: the old password is rejected"
        );
        assert_eq!(role.read_table(&new_password).await, ["kept"]);
        passwords.push(new_password);
        old_token = record.token;
    }
    passwords
}

#[tokio::test]
async fn three_consecutive_single_user_rotations_move_the_labels_and_retire_each_old_password() {
    let pg = postgres().await;
    let role = AppRole::create(&unique("app"), "initial-Passw0rd-single").await;
    let mut secret = template_secret(&role.name, &role.password).await;
    secret["dbClusterIdentifier"] = json!("kept-as-is");
    let fixture = Fixture::start(&secret, &[]).await;

    let passwords = rotate_and_check(&fixture, &role, 3).await;

    let current = fixture.value_at("AWSCURRENT").await;
    assert_eq!(
        current["port"],
        json!(pg.port()),
        "a number port stays a number"
    );
    assert_eq!(current["dbClusterIdentifier"], json!("kept-as-is"));
    assert_eq!(current["username"], json!(role.name));
    let output = fixture.output();
    assert!(
        output.contains("setSecret: Successfully set password for user"),
        "{output}"
    );
    assert!(
        output.contains("testSecret: Successfully signed into PostgreSQL DB"),
        "{output}"
    );
    assert_no_secret_in(&output, &passwords, "the function's output");
    assert_eq!(fixture.function.cold_starts(), 1, "one warm process");
    fixture.stop().await;
    role.drop().await;
}

#[tokio::test]
async fn every_step_invoked_twice_leaves_the_same_end_state() {
    let role = AppRole::create(&unique("retry"), "initial-Passw0rd-retry").await;
    let fixture = Fixture::start(&template_secret(&role.name, &role.password).await, &[]).await;
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
                "{step} attempt {attempt}: {:?}",
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
    assert_eq!(login(&role.name, &new_password).await, Login::Ok);
    assert_eq!(login(&role.name, &role.password).await, Login::Rejected);
    let output = fixture.output();
    assert!(
        output.contains("setSecret: AWSPENDING secret is already set as password in PostgreSQL DB"),
        "the repeated setSecret found the password set: {output}"
    );
    assert_no_secret_in(
        &output,
        &[role.password.clone(), new_password],
        "the function's output",
    );
    fixture.stop().await;
    role.drop().await;
}

#[tokio::test]
async fn set_secret_recovers_through_awsprevious_when_awscurrent_no_longer_logs_in() {
    let role = AppRole::create(&unique("recover"), "initial-Passw0rd-recover").await;
    let fixture = Fixture::start(&template_secret(&role.name, &role.password).await, &[]).await;
    fixture.rotate().await.expect_success();
    let first = fixture.password_at("AWSCURRENT").await;
    assert_eq!(fixture.password_at("AWSPREVIOUS").await, role.password);

    // The role's password went back to the AWSPREVIOUS one (a restore, an earlier rotation that
    // died half-way): AWSCURRENT no longer logs in.
    role.set_password(&role.password).await;
    assert_eq!(login(&role.name, &first).await, Login::Rejected);

    let old_token = fixture.version_with("AWSCURRENT").await.expect("current");
    let record = fixture.rotate().await;
    record.expect_success();
    assert_rotated(&fixture.labels().await, &record.token, &old_token);
    let second = fixture.password_at("AWSCURRENT").await;
    assert_eq!(login(&role.name, &second).await, Login::Ok);
    assert_eq!(login(&role.name, &role.password).await, Login::Rejected);
    let output = fixture.output();
    assert!(output.contains("trying AWSPREVIOUS"), "{output}");
    assert_no_secret_in(
        &output,
        &[role.password.clone(), first, second],
        "the function's output",
    );
    fixture.stop().await;
    role.drop().await;
}

#[tokio::test]
async fn a_pending_version_for_another_user_or_host_is_refused_and_the_database_is_unchanged() {
    let pg = postgres().await;
    let cases = [
        (
            "username",
            json!(pg.superuser()),
            "Attempting to modify user postgres other than current user",
        ),
        (
            "host",
            json!(pg.ip()),
            "Attempting to modify user for host 127.0.0.1 other than current host localhost",
        ),
    ];
    for (field, tampered, expected) in cases {
        let role = AppRole::create(&unique("tamper"), "initial-Passw0rd-tamper").await;
        let secret = template_secret(&role.name, &role.password).await;
        let fixture = Fixture::start(&secret, &[]).await;
        let token = fixture.moto.start_rotation(&fixture.arn).await;
        let mut pending = secret.clone();
        pending[field] = tampered.clone();
        pending["password"] = json!("tampered-Passw0rd-not-applied");
        fixture
            .moto
            .client()
            .put_secret_value()
            .secret_id(&fixture.arn)
            .client_request_token(&token)
            .secret_string(pending.to_string())
            .version_stages("AWSPENDING")
            .send()
            .await
            .expect("PutSecretValue of the tampered pending version");

        let record = fixture
            .orchestrator()
            .invoke(&fixture.arn, &token, "setSecret")
            .await;
        let (error_type, message) = record.invocation.failed().expect("setSecret refuses");
        assert_eq!(error_type, "InvalidSecret", "{field}: {message}");
        assert!(message.contains(expected), "{field}: {message}");

        assert_eq!(
            login(&role.name, &role.password).await,
            Login::Ok,
            "{field}: the current password still logs in"
        );
        assert_eq!(
            login(pg.superuser(), pg.superuser_password()).await,
            Login::Ok,
            "{field}: the superuser's password is untouched"
        );
        assert_eq!(
            login(pg.superuser(), "tampered-Passw0rd-not-applied").await,
            Login::Rejected
        );
        fixture.stop().await;
        role.drop().await;
    }
}

/// Every role attribute and password (except the rotated roles' passwords), the memberships and
/// the tables of the given roles, the superuser and PostgreSQL's predefined roles.
async fn database_snapshot(all: &[String], rotated: &[String]) -> Vec<String> {
    let mut names = all.to_vec();
    names.push(postgres().await.superuser().to_owned());
    let mut rows = text_rows(
        "SELECT row_to_json(r)::text FROM (
             SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
                    rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil, rolconfig
             FROM pg_roles WHERE rolname = ANY($1) OR rolname LIKE 'pg\\_%'
             ORDER BY rolname) r",
        &names,
    )
    .await;
    let kept: Vec<String> = names
        .iter()
        .filter(|name| !rotated.contains(name))
        .cloned()
        .collect();
    rows.extend(
        text_rows(
            "SELECT row_to_json(r)::text FROM (
                 SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1)
                 ORDER BY rolname) r",
            &kept,
        )
        .await,
    );
    rows.extend(
        text_rows(
            "SELECT row_to_json(r)::text FROM (
                 SELECT g.rolname AS granted, m.rolname AS member, am.admin_option
                 FROM pg_auth_members am
                 JOIN pg_roles g ON g.oid = am.roleid
                 JOIN pg_roles m ON m.oid = am.member
                 WHERE g.rolname = ANY($1) OR m.rolname = ANY($1)
                 ORDER BY 1, 2) r",
            &names,
        )
        .await,
    );
    rows.extend(
        text_rows(
            "SELECT row_to_json(r)::text FROM (
                 SELECT c.relname, pg_get_userbyid(c.relowner) AS owner, c.relacl::text AS acl
                 FROM pg_class c
                 WHERE pg_get_userbyid(c.relowner) = ANY($1) AND c.relkind = 'r'
                 ORDER BY 1) r",
            all,
        )
        .await,
    );
    rows
}

#[tokio::test]
async fn hostile_role_names_and_passwords_rotate_and_nothing_else_in_the_database_changes() {
    // A canary an injection through any of the names below would drop or promote.
    let canary = AppRole::create(&unique("canary"), "canary-Passw0rd").await;
    let suffix = unique("");
    let hostile_password = "it's \"q\" \\ 100% $x; ok";
    let names = [
        format!("O'Brien \"Ops\"; 100% \\ ✓ Ünï{suffix}"),
        format!("x\"; DROP ROLE \"{}\"; --", canary.name),
        format!("it's'); ALTER ROLE \"{}\" SUPERUSER; --", canary.name),
    ];
    let mut roles = Vec::new();
    for name in &names {
        assert!(name.len() <= 63, "{name} fits PostgreSQL's limit");
        roles.push(AppRole::create(name, hostile_password).await);
    }
    let mut all: Vec<String> = names.to_vec();
    all.push(canary.name.clone());
    let before = database_snapshot(&all, &names).await;

    // Passwords made only of punctuation for the first role, any character for the others.
    const PUNCTUATION_ONLY: &[(&str, &str)] = &[
        ("EXCLUDE_CHARACTERS", ""),
        ("EXCLUDE_NUMBERS", "true"),
        ("EXCLUDE_UPPERCASE", "true"),
        ("EXCLUDE_LOWERCASE", "true"),
    ];
    const ANYTHING: &[(&str, &str)] = &[("EXCLUDE_CHARACTERS", "")];
    let run = |role: &AppRole, env: &'static [(&'static str, &'static str)]| {
        let name = role.name.clone();
        let password = role.password.clone();
        async move {
            let fixture = Fixture::start(&template_secret(&name, &password).await, env).await;
            (fixture, name)
        }
    };
    let (first, second, third) = tokio::join!(
        run(&roles[0], PUNCTUATION_ONLY),
        run(&roles[1], ANYTHING),
        run(&roles[2], ANYTHING)
    );
    let (first_passwords, second_passwords, third_passwords) = tokio::join!(
        rotate_and_check(&first.0, &roles[0], 3),
        rotate_and_check(&second.0, &roles[1], 3),
        rotate_and_check(&third.0, &roles[2], 3),
    );
    assert!(
        first_passwords[1..]
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_punctuation())),
        "punctuation-only passwords"
    );

    let after = database_snapshot(&all, &names).await;
    assert_eq!(before, after, "only the rotated roles' passwords changed");
    assert_eq!(canary.read_table(&canary.password).await, ["kept"]);

    let passwords: Vec<String> = first_passwords
        .into_iter()
        .chain(second_passwords)
        .chain(third_passwords)
        .collect();
    let log = postgres().await.statement_log().expect("server log");
    assert_no_secret_in(&log, &passwords, "the server's statement log");
    for (fixture, _) in [first, second, third] {
        assert_no_secret_in(&fixture.output(), &passwords, "the function's output");
        fixture.stop().await;
    }
    for role in roles {
        role.drop().await;
    }
    canary.drop().await;
}

#[tokio::test]
async fn the_server_statement_log_never_contains_a_new_password_in_plaintext() {
    let role = AppRole::create(&unique("logged"), "initial-Passw0rd-logged").await;
    let fixture = Fixture::start(
        &template_secret(&role.name, &role.password).await,
        &[("EXCLUDE_CHARACTERS", "")],
    )
    .await;
    let passwords = rotate_and_check(&fixture, &role, 2).await;
    let log = postgres().await.statement_log().expect("server log");
    // The log does record the statements: the password change is there, as a verifier.
    let change = format!(
        "ALTER ROLE {} PASSWORD 'SCRAM-SHA-256$4096:",
        quote_identifier(&role.name)
    );
    assert_eq!(
        log.matches(&change).count(),
        2,
        "two password changes logged"
    );
    assert_no_secret_in(&log, &passwords, "the server's statement log");
    fixture.stop().await;
    role.drop().await;
}

#[tokio::test]
async fn a_secret_rotated_by_this_function_rotates_again_after_a_cold_start() {
    let role = AppRole::create(&unique("cold"), "initial-Passw0rd-cold").await;
    let fixture = Fixture::start(&template_secret(&role.name, &role.password).await, &[]).await;
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
    assert_eq!(login(&role.name, &password).await, Login::Ok);
    assert_eq!(
        login(&role.name, &fixture.password_at("AWSPREVIOUS").await).await,
        Login::Rejected
    );
    assert_no_secret_in(&fixture.output(), &[password], "the function's output");
    fixture.stop().await;
    role.drop().await;
}

/// The quoting functions, checked by the server itself with every seed of the quoting fuzz
/// targets and a few thousand generated hostile texts: it reads our literal back as the
/// original text (with either setting of standard_conforming_strings) and writes the same
/// literal with its own quote_literal; our identifier names a column as given, cut at the 63
/// bytes PostgreSQL keeps. A NUL, which PostgreSQL text cannot hold, fails the statement rather
/// than being read as a shorter text.
#[tokio::test]
async fn quoted_identifiers_and_literals_round_trip_through_the_server() {
    let hand_picked = [
        "plain",
        "App User",
        "a\"b",
        "o'brien",
        "back\\slash",
        "\\'",
        "100%_done; DROP ROLE postgres; --",
        "x\"; DROP ROLE postgres; --",
        "ünïcødé ✓ 角色",
        "$$ $tag$ ''",
        "tab\tnew\nline",
        " leading and trailing ",
        "",
    ];
    let inputs = quoting_inputs::with_seeds_and_generated(&hand_picked, 3000);
    let with_nul: Vec<&String> = inputs.iter().filter(|text| text.contains('\0')).collect();
    // Every text round-trips without its NULs; a few keep them, for the refusal below.
    let texts: Vec<String> = inputs.iter().map(|text| text.replace('\0', "")).collect();
    let mut connection = superuser().await;
    for standard_conforming_strings in ["on", "off"] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET standard_conforming_strings = {standard_conforming_strings}"
        )))
        .execute(&mut connection)
        .await
        .expect("SET");
        // Batches keep it to a few dozen statements.
        for batch in quoting_inputs::batches(&texts, 250, 256 << 10) {
            literals_read_back(&mut connection, batch, standard_conforming_strings).await;
            identifiers_name_columns(&mut connection, batch).await;
        }
    }
    assert!(with_nul.len() >= 3, "the inputs hold texts with a NUL");
    for text in with_nul.into_iter().take(3) {
        let statement = format!("SELECT {}", quote_literal(text));
        let outcome = sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut connection)
            .await;
        assert!(outcome.is_err(), "{text:?} was accepted: {outcome:?}");
        // The refusal may be a protocol error that ends the session.
        connection = superuser().await;
    }
    let _ = connection.close().await;
}

/// `SELECT` of every literal of the batch, each beside its index and the server's own
/// `quote_literal` of what it read.
async fn literals_read_back(connection: &mut PgConnection, batch: &[String], mode: &str) {
    let rows: Vec<String> = batch
        .iter()
        .enumerate()
        .map(|(index, text)| format!("({index}, {})", quote_literal(text)))
        .collect();
    let statement = format!(
        "SELECT i, v, quote_literal(v) FROM (VALUES {}) AS t(i, v) ORDER BY i",
        rows.join(", ")
    );
    let read: Vec<(i32, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .fetch_all(&mut *connection)
        .await
        .unwrap_or_else(|error| panic!("a batch of literals ({mode}): {error}"));
    assert_eq!(read.len(), batch.len());
    for ((index, value, server), text) in read.into_iter().zip(batch) {
        let literal = quote_literal(text);
        assert_eq!(
            &value, text,
            "#{index} {literal} (standard_conforming_strings {mode})"
        );
        assert_eq!(literal, server, "{text:?}: PostgreSQL's quote_literal");
    }
}

/// One column per text of the batch, named with our quoted identifier; the server keeps a
/// name's first 63 bytes (whole characters), as it does for role names.
async fn identifiers_name_columns(connection: &mut PgConnection, batch: &[String]) {
    // A zero-length quoted identifier is a syntax error; `check_name` refuses empty names.
    let names: Vec<&String> = batch.iter().filter(|text| !text.is_empty()).collect();
    let statement = quoting_inputs::select_aliases(&names, quote_identifier);
    let row = sqlx::query(sqlx::AssertSqlSafe(statement))
        .fetch_one(&mut *connection)
        .await
        .unwrap_or_else(|error| panic!("a batch of identifiers: {error}"));
    let reported: Vec<&str> = row.columns().iter().map(Column::name).collect();
    let first_63_bytes = |name: &str| {
        let mut kept = name.len().min(63);
        while !name.is_char_boundary(kept) {
            kept -= 1;
        }
        name[..kept].to_owned()
    };
    quoting_inputs::assert_aliases(&reported, &names, first_63_bytes, quote_identifier);
}

/// testSecret fails after setSecret changed the password (the test query is denied: `now()` is
/// not executable in the secret's database): the function puts the role back on the
/// `AWSCURRENT` password and removes `AWSPENDING`, so applications using `AWSCURRENT` keep
/// working, and Secrets Manager's retry of the rotation changes nothing.
#[tokio::test]
async fn a_denied_test_query_rolls_the_password_back_so_awscurrent_keeps_working() {
    let role = AppRole::create(&unique("rb"), "initial-Passw0rd-rb").await;
    let database = unique("rb_db");
    support::run_as_superuser(&format!("CREATE DATABASE {}", quote_identifier(&database))).await;
    support::run_as_superuser_in(
        &database,
        "REVOKE EXECUTE ON FUNCTION pg_catalog.now() FROM PUBLIC",
    )
    .await;
    let mut secret = template_secret(&role.name, &role.password).await;
    secret["dbname"] = json!(database);
    let fixture = Fixture::start(&secret, &[]).await;
    let orchestrator = fixture.orchestrator();
    let token = fixture.moto.start_rotation(&fixture.arn).await;
    for step in ["createSecret", "setSecret"] {
        let record = orchestrator.invoke(&fixture.arn, &token, step).await;
        assert!(
            matches!(record.invocation, Invocation::Succeeded(_)),
            "{step}"
        );
    }
    let pending_password = fixture.password_at("AWSPENDING").await;

    let record = orchestrator
        .invoke(&fixture.arn, &token, "testSecret")
        .await;
    let (error_type, message) = record.invocation.failed().expect("testSecret fails");
    assert_eq!(error_type, "TargetRejected", "{message}");
    assert!(
        message.contains("permission denied for function now")
            && message.contains("rolled back")
            && message.contains("AWSPENDING was removed"),
        "{message}"
    );
    assert_eq!(
        role.read_table(&role.password).await,
        ["kept"],
        "AWSCURRENT works"
    );
    assert_eq!(login(&role.name, &pending_password).await, Login::Rejected);
    let labels = fixture.labels().await;
    assert!(
        labels
            .values()
            .all(|l| !l.iter().any(|l| l == "AWSPENDING")),
        "{labels:?}"
    );

    let retried = orchestrator.run_steps(&fixture.arn, token.clone()).await;
    assert!(
        retried.failure().is_some(),
        "the abandoned token is refused"
    );
    assert_eq!(login(&role.name, &role.password).await, Login::Ok);

    assert_no_secret_in(
        &format!("{}{message}", fixture.output()),
        &[role.password.clone(), pending_password],
        "the function's output and error",
    );
    fixture.stop().await;
    support::run_as_superuser(&format!("DROP DATABASE {}", quote_identifier(&database))).await;
    role.drop().await;
}
