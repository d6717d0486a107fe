//! The single-user strategy end to end: the real `rotate-mysql` binary under the Lambda Runtime
//! API emulator, moto as Secrets Manager, and the stack's MariaDB 10.11 (verified TLS,
//! `skip-name-resolve`). Every scenario runs with `engine` `mariadb` and with `engine` `mysql`
//! against the same server: the dialect follows the server, not the secret.

mod support;

use rotate_mysql::sql::{quote_identifier, quote_string};
use rotation_tests::orchestrator::STEPS;
use rotation_tests::quoting_inputs;
use rotation_tests::runtime_api::Invocation;
use serde_json::json;
use sqlx::{Column, Connection, MySqlConnection, Row};
use support::{
    account_rows, admin, assert_no_secret_in, assert_rotated, login, mariadb, run_as_admin,
    server_log, template_secret, unique, AppUser, Fixture, Login, ENGINES,
};

/// The AWS templates' name for the database in their log lines.
fn database_name(engine: &str) -> &'static str {
    if engine == "mariadb" {
        "MariaDB"
    } else {
        "MySQL"
    }
}

/// Runs `rounds` rotations, checking after each one the labels, the new password and the
/// retired one. Returns every password the account had, the initial one first.
async fn rotate_and_check(fixture: &Fixture, user: &AppUser, rounds: usize) -> Vec<String> {
    let mut old_token = fixture
        .version_with("AWSCURRENT")
        .await
        .expect("a current version");
    let mut passwords = vec![user.password.clone()];
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
            login(&user.name, &new_password).await,
            Login::Ok,
            "round {round}: the new AWSCURRENT password logs in as {}",
            user.name
        );
        assert_eq!(
            login(&user.name, &old_password).await,
            Login::Rejected,
            "round {round}: the old password is rejected"
        );
        passwords.push(new_password);
        old_token = record.token;
    }
    passwords
}

async fn three_rotations(engine: &str) {
    let db = mariadb().await;
    let user = AppUser::create(&unique("app"), "%", "initial-Passw0rd-single").await;
    let fixture = Fixture::start(
        &template_secret(engine, &user.name, &user.password).await,
        &[],
    )
    .await;

    let passwords = rotate_and_check(&fixture, &user, 3).await;

    let current = fixture.value_at("AWSCURRENT").await;
    assert_eq!(current["engine"], json!(engine));
    assert_eq!(
        current["port"],
        json!(db.port()),
        "a number port stays a number"
    );
    assert_eq!(current["dbClusterIdentifier"], json!("kept-as-is"));
    assert_eq!(current["username"], json!(user.name));
    let row = user.row().await;
    assert_eq!(row.plugin, "mysql_native_password", "the plugin is kept");
    let output = fixture.output();
    let database = database_name(engine);
    assert!(
        output.contains(&format!(
            "setSecret: Successfully set password for user {} in {database} DB",
            user.name
        )),
        "{output}"
    );
    assert!(
        output.contains("testSecret: Successfully signed into MySQL DB"),
        "{output}"
    );
    assert!(
        output.contains(&format!(
            "is logged in as account '{}'@'%' on MariaDB 10.11",
            user.name
        )),
        "the dialect follows the server: {output}"
    );
    assert_no_secret_in(&output, &passwords, "the function's output");
    assert_eq!(fixture.function.cold_starts(), 1, "one warm process");
    fixture.stop().await;
    user.drop().await;
}

#[tokio::test]
async fn three_consecutive_rotations_retire_each_old_password_with_engine_mariadb() {
    three_rotations("mariadb").await;
}

#[tokio::test]
async fn three_consecutive_rotations_retire_each_old_password_with_engine_mysql() {
    three_rotations("mysql").await;
}

async fn loopback_only_account(engine: &str) {
    let user = AppUser::create(&unique("lo"), "127.0.0.1", "initial-Passw0rd-lo").await;
    let fixture = Fixture::start(
        &template_secret(engine, &user.name, &user.password).await,
        &[],
    )
    .await;
    let passwords = rotate_and_check(&fixture, &user, 2).await;
    let rows = account_rows(std::slice::from_ref(&user.name)).await;
    assert_eq!(rows.len(), 1, "no other account appeared: {rows:?}");
    assert_eq!(rows[0].host, "127.0.0.1");
    assert!(
        fixture.output().contains(&format!(
            "is logged in as account '{}'@'127.0.0.1'",
            user.name
        )),
        "{}",
        fixture.output()
    );
    assert_no_secret_in(&fixture.output(), &passwords, "the function's output");
    fixture.stop().await;
    user.drop().await;
}

/// `'app'@'10.0.%'` (the application servers) and `'app'@'127.0.0.1'` (where the function
/// connects from): the function logs in as the loopback account and changes that account, the
/// one the server matched; the other account is other credentials and stays as it was.
async fn wildcard_and_loopback_accounts(engine: &str) {
    let name = unique("two");
    let password = "initial-Passw0rd-two";
    let remote = AppUser::create(&name, "10.0.%", password).await;
    let local = AppUser::create(&name, "127.0.0.1", password).await;
    let remote_before = remote.row().await;
    let fixture = Fixture::start(&template_secret(engine, &name, password).await, &[]).await;

    let passwords = rotate_and_check(&fixture, &local, 2).await;

    assert_eq!(
        remote.row().await,
        remote_before,
        "'{name}'@'10.0.%' is untouched"
    );
    assert_ne!(
        local.row().await.authentication_string,
        remote_before.authentication_string,
        "the loopback account has the new password"
    );
    let output = fixture.output();
    assert!(
        output.contains(&format!("is logged in as account '{name}'@'127.0.0.1'")),
        "{output}"
    );
    assert_no_secret_in(&output, &passwords, "the function's output");
    fixture.stop().await;
    local.drop().await;
    remote.drop().await;
}

#[tokio::test]
async fn accounts_whose_host_is_not_a_wildcard_rotate_the_account_the_server_matched() {
    for engine in ENGINES {
        tokio::join!(
            loopback_only_account(engine),
            wildcard_and_loopback_accounts(engine)
        );
    }
}

async fn every_step_twice(engine: &str) {
    let user = AppUser::create(&unique("retry"), "%", "initial-Passw0rd-retry").await;
    let fixture = Fixture::start(
        &template_secret(engine, &user.name, &user.password).await,
        &[],
    )
    .await;
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
    assert_eq!(login(&user.name, &new_password).await, Login::Ok);
    assert_eq!(login(&user.name, &user.password).await, Login::Rejected);
    let output = fixture.output();
    assert!(
        output.contains(&format!(
            "setSecret: AWSPENDING secret is already set as password in {} DB",
            database_name(engine)
        )),
        "the repeated setSecret found the password set: {output}"
    );
    assert_no_secret_in(
        &output,
        &[user.password.clone(), new_password],
        "the function's output",
    );
    fixture.stop().await;
    user.drop().await;
}

#[tokio::test]
async fn every_step_invoked_twice_leaves_the_same_end_state() {
    tokio::join!(every_step_twice("mariadb"), every_step_twice("mysql"));
}

async fn recover_through_previous(engine: &str) {
    let user = AppUser::create(&unique("recover"), "%", "initial-Passw0rd-recover").await;
    let fixture = Fixture::start(
        &template_secret(engine, &user.name, &user.password).await,
        &[],
    )
    .await;
    fixture.rotate().await.expect_success();
    let first = fixture.password_at("AWSCURRENT").await;
    assert_eq!(fixture.password_at("AWSPREVIOUS").await, user.password);

    // The account's password went back to the AWSPREVIOUS one (a restore, an earlier rotation
    // that died half-way): AWSCURRENT no longer logs in.
    user.set_password(&user.password).await;
    assert_eq!(login(&user.name, &first).await, Login::Rejected);

    let old_token = fixture.version_with("AWSCURRENT").await.expect("current");
    let record = fixture.rotate().await;
    record.expect_success();
    assert_rotated(&fixture.labels().await, &record.token, &old_token);
    let second = fixture.password_at("AWSCURRENT").await;
    assert_eq!(login(&user.name, &second).await, Login::Ok);
    assert_eq!(login(&user.name, &user.password).await, Login::Rejected);
    let output = fixture.output();
    assert!(output.contains("trying AWSPREVIOUS"), "{output}");
    assert_no_secret_in(
        &output,
        &[user.password.clone(), first, second],
        "the function's output",
    );
    fixture.stop().await;
    user.drop().await;
}

#[tokio::test]
async fn set_secret_recovers_through_awsprevious_when_awscurrent_no_longer_logs_in() {
    tokio::join!(
        recover_through_previous("mariadb"),
        recover_through_previous("mysql")
    );
}

async fn tampered_pending(engine: &str) {
    let db = mariadb().await;
    let cases = [
        (
            "username",
            json!(db.admin_user()),
            "Attempting to modify user admin other than current user",
        ),
        (
            "host",
            json!(db.ip()),
            "Attempting to modify user for host 127.0.0.1 other than current host localhost",
        ),
    ];
    for (field, tampered, expected) in cases {
        let user = AppUser::create(&unique("tamper"), "%", "initial-Passw0rd-tamper").await;
        let secret = template_secret(engine, &user.name, &user.password).await;
        let fixture = Fixture::start(&secret, &[]).await;
        let before = account_rows(&[user.name.clone(), db.admin_user().to_owned()]).await;
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
        assert_eq!(error_type, "InvalidSecret", "{engine} {field}: {message}");
        assert!(message.contains(expected), "{engine} {field}: {message}");

        let after = account_rows(&[user.name.clone(), db.admin_user().to_owned()]).await;
        assert_eq!(before, after, "{engine} {field}: no account changed");
        assert_eq!(
            login(&user.name, &user.password).await,
            Login::Ok,
            "{field}: the current password still logs in"
        );
        assert_eq!(
            login(db.admin_user(), db.admin_password()).await,
            Login::Ok,
            "{field}: the admin's password is untouched"
        );
        assert_eq!(
            login(db.admin_user(), "tampered-Passw0rd-not-applied").await,
            Login::Rejected
        );
        fixture.stop().await;
        user.drop().await;
    }
}

#[tokio::test]
async fn a_pending_version_for_another_user_or_host_is_refused_and_the_database_is_unchanged() {
    tokio::join!(tampered_pending("mariadb"), tampered_pending("mysql"));
}

/// Passwords made of every printable ASCII character (the policy with nothing excluded).
const ANYTHING: &[(&str, &str)] = &[("EXCLUDE_CHARACTERS", "")];
/// Passwords made only of punctuation: quotes, backslashes, backticks, `%` and `_` in every
/// rotation.
const PUNCTUATION_ONLY: &[(&str, &str)] = &[
    ("EXCLUDE_CHARACTERS", ""),
    ("EXCLUDE_NUMBERS", "true"),
    ("EXCLUDE_UPPERCASE", "true"),
    ("EXCLUDE_LOWERCASE", "true"),
];

/// Hostile account names: quotes of every kind, backslashes before quotes, wildcards,
/// backticks, Unicode, and injections aimed at `canary`. Each starts with `prefix`.
fn hostile_names(prefix: &str, canary: &str) -> [String; 3] {
    let suffix = unique("");
    [
        format!("{prefix}O'Brien \"Ops\" \\ 100% _ `t` ✓ Ünï{suffix}"),
        format!("{prefix}x'; DROP USER '{canary}'@'%'; --{suffix}"),
        format!("{prefix}x\\'; DROP USER '{canary}'@'%'; --{suffix}"),
    ]
}

/// Rotates each of `names` three times (one with punctuation-only passwords, two with any
/// character), engines alternating; returns every password used and the function outputs.
async fn rotate_hostile(names: &[String], initial: &str) -> (Vec<String>, Vec<String>) {
    let mut users = Vec::new();
    for name in names {
        assert!(name.chars().count() <= 80, "{name} fits MariaDB's limit");
        users.push(AppUser::create(name, "%", initial).await);
    }
    let run = |user: &AppUser,
               engine: &'static str,
               env: &'static [(&'static str, &'static str)]| {
        let name = user.name.clone();
        let password = user.password.clone();
        async move { Fixture::start(&template_secret(engine, &name, &password).await, env).await }
    };
    let (first, second, third) = tokio::join!(
        run(&users[0], "mariadb", PUNCTUATION_ONLY),
        run(&users[1], "mysql", ANYTHING),
        run(&users[2], "mariadb", ANYTHING),
    );
    let (first_passwords, second_passwords, third_passwords) = tokio::join!(
        rotate_and_check(&first, &users[0], 3),
        rotate_and_check(&second, &users[1], 3),
        rotate_and_check(&third, &users[2], 3),
    );
    assert!(
        first_passwords[1..]
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_punctuation())),
        "punctuation-only passwords"
    );
    let passwords: Vec<String> = first_passwords
        .into_iter()
        .chain(second_passwords)
        .chain(third_passwords)
        .collect();
    let mut outputs = Vec::new();
    for fixture in [first, second, third] {
        outputs.push(fixture.output());
        fixture.stop().await;
    }
    for user in users {
        user.drop().await;
    }
    (passwords, outputs)
}

/// With backslash escapes on (the server's default) and with `NO_BACKSLASH_ESCAPES` in the
/// function's sessions. The mode is set per account, not globally, so that the other tests of
/// this process keep the default: `init_connect` (run at login for accounts without SUPER,
/// never for the admin) adds `NO_BACKSLASH_ESCAPES` to the session's `sql_mode` for the
/// accounts whose name starts with this test's prefix.
#[tokio::test]
async fn hostile_account_names_and_passwords_rotate_in_both_sql_modes_and_nothing_else_changes() {
    let canary = AppUser::create(&unique("canary"), "%", "canary-Passw0rd").await;
    let nbe_prefix = format!("nbe{}", std::process::id());
    let plain = hostile_names("", &canary.name);
    let escaped = hostile_names(&nbe_prefix, &canary.name);

    let mut involved: Vec<String> = plain.iter().chain(&escaped).cloned().collect();
    involved.push(canary.name.clone());
    involved.push(mariadb().await.admin_user().to_owned());
    let before = account_rows(&involved).await;

    run_as_admin(&[format!(
        "SET GLOBAL init_connect = {}",
        quote_string(
            &format!(
                "SET SESSION sql_mode = IF(LEFT(CURRENT_USER(), {}) = {}, \
                 CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES'), @@SESSION.sql_mode)",
                nbe_prefix.chars().count(),
                quote_string(&nbe_prefix, false)
            ),
            false
        )
    )])
    .await;
    let initial = "it's \"q\" \\ 100% _ `x` ✓";
    let ((plain_passwords, plain_outputs), (nbe_passwords, nbe_outputs)) = tokio::join!(
        rotate_hostile(&plain, initial),
        rotate_hostile(&escaped, initial)
    );
    run_as_admin(&["SET GLOBAL init_connect = ''".to_owned()]).await;

    for output in &plain_outputs {
        assert!(output.contains("NO_BACKSLASH_ESCAPES off"), "{output}");
    }
    for output in &nbe_outputs {
        assert!(output.contains("NO_BACKSLASH_ESCAPES on"), "{output}");
    }
    // The rotated accounts were dropped; everything else is as it was.
    let admin_user = mariadb().await.admin_user();
    let kept: Vec<_> = before
        .into_iter()
        .filter(|row| row.user == canary.name || row.user == admin_user)
        .collect();
    assert_eq!(
        account_rows(&involved).await,
        kept,
        "only the rotated accounts changed"
    );
    assert_eq!(login(&canary.name, &canary.password).await, Login::Ok);

    let passwords: Vec<String> = plain_passwords.into_iter().chain(nbe_passwords).collect();
    for output in plain_outputs.iter().chain(&nbe_outputs) {
        assert_no_secret_in(output, &passwords, "the function's output");
    }
    assert_no_secret_in(&server_log().await, &passwords, "the server's error log");
    canary.drop().await;
}

/// The quoting functions, checked by the server itself in both sql_modes, with every seed of
/// the quoting fuzz targets and a few thousand generated hostile texts (NUL included: MariaDB's
/// strings hold it): our literal reads back as the original text, byte for byte, and our
/// identifier names a column exactly as given, for every text MariaDB accepts as a name.
#[tokio::test]
async fn quoted_literals_and_identifiers_round_trip_through_the_server_in_both_sql_modes() {
    let hand_picked = [
        "plain",
        "o'brien",
        "back\\slash",
        "\\",
        "\\'",
        "'",
        "trailing\\",
        "100%_done",
        "\\%\\_",
        "`tick` ``",
        "say \"hi\" \\\"",
        "x'; DROP USER 'admin'@'%'; --",
        "x\\'; DROP USER 'admin'@'%'; --",
        "ünïcødé ✓ 用户 🔑",
        "tab\tnew\nline\rcr",
        "ctrl-z \u{1a}",
        "nul \0 byte",
        " leading and trailing ",
        "",
    ];
    let texts = quoting_inputs::with_seeds_and_generated(&hand_picked, 3000);
    let mut connection = admin().await;
    for no_backslash_escapes in [false, true] {
        let mode = if no_backslash_escapes {
            "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES')"
        } else {
            "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')"
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(mode))
            .execute(&mut connection)
            .await
            .expect("SET sql_mode");
        let info = rotate_mysql::sql::server_info(&mut connection)
            .await
            .expect("server info");
        assert_eq!(info.no_backslash_escapes, no_backslash_escapes);
        // Batches keep it to a few dozen statements.
        for batch in quoting_inputs::batches(&texts, 250, 256 << 10) {
            literals_read_back(&mut connection, batch, no_backslash_escapes).await;
            identifiers_name_columns(&mut connection, batch).await;
        }
    }
    let _ = connection.close().await;
}

/// One row per literal of the batch: its index, its bytes and its text as the server read it.
async fn literals_read_back(
    connection: &mut MySqlConnection,
    batch: &[String],
    no_backslash_escapes: bool,
) {
    let selects: Vec<String> = batch
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let literal = quote_string(text, no_backslash_escapes);
            format!(
                "SELECT {index} AS i, CAST({literal} AS BINARY) AS b, CAST({literal} AS CHAR) AS c"
            )
        })
        .collect();
    let statement = format!("{} ORDER BY i", selects.join(" UNION ALL "));
    let read: Vec<(i64, Vec<u8>, String)> = sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .fetch_all(&mut *connection)
        .await
        .unwrap_or_else(|error| {
            panic!("a batch of literals (NO_BACKSLASH_ESCAPES {no_backslash_escapes}): {error}")
        });
    assert_eq!(read.len(), batch.len());
    for ((index, bytes, value), text) in read.into_iter().zip(batch) {
        let literal = quote_string(text, no_backslash_escapes);
        let shown = format!("#{index} {literal} (NO_BACKSLASH_ESCAPES {no_backslash_escapes})");
        assert_eq!(bytes, text.as_bytes(), "{shown}");
        assert_eq!(&value, text, "{shown}");
    }
}

/// One column per text of the batch that MariaDB accepts as a name, named with our quoted
/// identifier. MariaDB drops the spaces and control characters a column alias starts with
/// (warning 1466), so the name it reports is the rest.
async fn identifiers_name_columns(connection: &mut MySqlConnection, batch: &[String]) {
    let reported = |name: &str| {
        name.trim_start_matches(|c: char| c == ' ' || c.is_ascii_control())
            .to_owned()
    };
    // MariaDB's rules for names: not empty, not ending with a space, no NUL, only characters of
    // the Basic Multilingual Plane, and at most 256 characters for a column alias.
    let names: Vec<&String> = batch
        .iter()
        .filter(|text| {
            !reported(text).is_empty()
                && !text.ends_with(' ')
                && text.chars().count() <= 256
                && !text.chars().any(|c| c == '\0' || c > '\u{ffff}')
        })
        .collect();
    if names.is_empty() {
        return;
    }
    let statement = quoting_inputs::select_aliases(&names, quote_identifier);
    let row = sqlx::query(sqlx::AssertSqlSafe(statement))
        .fetch_one(&mut *connection)
        .await
        .unwrap_or_else(|error| panic!("a batch of identifiers: {error}"));
    let columns: Vec<&str> = row.columns().iter().map(Column::name).collect();
    quoting_inputs::assert_aliases(&columns, &names, reported, quote_identifier);
}

/// At the most verbose level the function allows (TRACE for its own crates, DEBUG for sqlx and
/// the SDK), no password shows: sqlx's statement log is off on the function's connections, and
/// the statements that hold a password are never part of an error.
#[tokio::test]
async fn no_password_appears_in_the_function_output_even_at_trace_level() {
    let user = AppUser::create(&unique("trace"), "%", "initial-Passw0rd-trace").await;
    let fixture = Fixture::start(
        &template_secret("mysql", &user.name, &user.password).await,
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
    assert!(
        !output.contains("IDENTIFIED BY") && !output.contains("SET PASSWORD"),
        "no password statement is logged: {output}"
    );
    assert_no_secret_in(&output, &passwords, "the function's output");
    fixture.stop().await;
    user.drop().await;
}

/// testSecret fails after setSecret changed the password (access to the secret's database was
/// taken away in between): the function puts the account back on the `AWSCURRENT` password and
/// removes `AWSPENDING`, so applications using `AWSCURRENT` keep logging in, and Secrets
/// Manager's retry of the rotation changes nothing.
#[tokio::test]
async fn a_failed_test_rolls_the_password_back_so_awscurrent_keeps_working() {
    let user = AppUser::create(&unique("rb"), "%", "initial-Passw0rd-rb").await;
    let database = unique("rb_db");
    run_as_admin(&[
        format!("CREATE DATABASE {}", quote_identifier(&database)),
        format!(
            "GRANT SELECT ON {}.* TO {}",
            quote_identifier(&database),
            user.account()
        ),
    ])
    .await;
    let mut secret = template_secret("mariadb", &user.name, &user.password).await;
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
    assert_eq!(login(&user.name, &user.password).await, Login::Rejected);

    run_as_admin(&[format!(
        "REVOKE SELECT ON {}.* FROM {}",
        quote_identifier(&database),
        user.account()
    )])
    .await;
    let record = orchestrator
        .invoke(&fixture.arn, &token, "testSecret")
        .await;
    let (error_type, message) = record.invocation.failed().expect("testSecret fails");
    assert_eq!(error_type, "TargetRejected", "{message}");
    assert!(
        message.contains("rolled back") && message.contains("AWSPENDING was removed"),
        "{message}"
    );
    assert_eq!(
        login(&user.name, &user.password).await,
        Login::Ok,
        "AWSCURRENT logs in again"
    );
    assert_eq!(login(&user.name, &pending_password).await, Login::Rejected);
    let labels = fixture.labels().await;
    assert!(
        labels
            .values()
            .all(|l| !l.iter().any(|l| l == "AWSPENDING")),
        "{labels:?}"
    );

    // Secrets Manager retries the rotation: the preamble refuses the abandoned token.
    let retried = orchestrator.run_steps(&fixture.arn, token.clone()).await;
    assert!(
        retried.failure().is_some(),
        "the abandoned token is refused"
    );
    assert_eq!(login(&user.name, &user.password).await, Login::Ok);

    assert_no_secret_in(
        &format!("{}{message}", fixture.output()),
        &[user.password.clone(), pending_password],
        "the function's output and error",
    );
    fixture.stop().await;
    run_as_admin(&[format!("DROP DATABASE {}", quote_identifier(&database))]).await;
    user.drop().await;
}
