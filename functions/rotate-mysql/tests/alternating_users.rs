//! Alternating-users rotation end to end: the real `rotate-mysql` binary under the Lambda Runtime
//! API emulator, moto as Secrets Manager, and the stack's MariaDB 10.11 (TLS verified against the
//! stack's CA), with `engine` `mariadb` and `mysql` against the same server.
//!
//! Each test makes its own master account (all privileges WITH GRANT OPTION, as an RDS master),
//! user, role and databases, with names unique to the test, and drops them at the end.

mod support;

use std::collections::BTreeSet;
use std::ops::Deref;

use rotate_mysql::sql::{quote_identifier as ident, quote_string};
use rotation_tests::conformance::{self as suite, assert_rotated, unique};
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack::{self, MariaDb};
use serde_json::{json, Value};
use sqlx::{AssertSqlSafe, Connection, MySqlConnection};
use support::account_name as acct;

/// A string literal for the admin's session (default sql_mode: backslash escapes).
fn lit(text: &str) -> String {
    quote_string(text, false)
}

struct Setup<'a> {
    engine: &'a str,
    /// The user's name after the test's prefix.
    user: &'a str,
    /// The host part of the user's account.
    account_host: &'a str,
    env: &'a [(&'a str, &'a str)],
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            engine: "mariadb",
            user: "app",
            account_host: "%",
            env: &[],
        }
    }
}

struct Fixture {
    db: &'static MariaDb,
    /// The function, its secret, moto.
    rotation: suite::Fixture<'static>,
    /// Every account, role and database of the test starts with it.
    prefix: String,
    user: String,
    clone: String,
    host: String,
    master: String,
    master_password: String,
    role: String,
    database: String,
    /// The wildcard database name as granted (`` `p\_w\_%` ``, escaped underscores).
    wildcard: String,
}

impl Deref for Fixture {
    type Target = suite::Fixture<'static>;

    fn deref(&self) -> &Self::Target {
        &self.rotation
    }
}

async fn run(conn: &mut MySqlConnection, statement: &str) {
    sqlx::raw_sql(AssertSqlSafe(statement.to_owned()))
        .execute(conn)
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
}

impl Fixture {
    async fn new(setup: Setup<'_>) -> Fixture {
        let db = stack::mariadb().await;
        let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
        let prefix = format!("{}_", unique("alt"));
        let user = format!("{prefix}{}", setup.user);
        let clone = format!("{user}_clone");
        let host = setup.account_host.to_owned();
        let master = format!("{prefix}master");
        let master_password = format!("master-{prefix}-pw");
        let user_password = format!("user-{prefix}-pw");
        let role = format!("{prefix}role");
        let database = format!("{prefix}db");
        let wildcard = format!("{}w\\_%", prefix.replace('_', "\\_"));
        let (quser, qmaster, qrole, qdb) = (
            acct(&user, &host),
            acct(&master, "%"),
            ident(&role),
            ident(&database),
        );

        let mut conn = support::admin().await;
        run(
            &mut conn,
            &format!(
                "CREATE USER {qmaster} IDENTIFIED BY {mpw};
                 GRANT ALL PRIVILEGES ON *.* TO {qmaster} WITH GRANT OPTION;
                 CREATE ROLE {qrole};
                 GRANT {qrole} TO {qmaster} WITH ADMIN OPTION;
                 CREATE DATABASE {qdb};
                 CREATE TABLE {qdb}.orders (id int, note text);
                 INSERT INTO {qdb}.orders VALUES (1, 'a'), (2, 'b');
                 GRANT SELECT ON {qdb}.* TO {qrole};
                 CREATE USER {quser} IDENTIFIED BY {upw} REQUIRE SSL;
                 GRANT SELECT, INSERT ON {qdb}.* TO {quser};
                 GRANT SELECT ON {wild}.* TO {quser} WITH GRANT OPTION;
                 GRANT UPDATE (`note`) ON {qdb}.`orders` TO {quser};
                 GRANT {qrole} TO {quser};
                 SET DEFAULT ROLE {qrole} FOR {quser};",
                mpw = lit(&master_password),
                upw = lit(&user_password),
                wild = ident(&wildcard),
            ),
        )
        .await;
        conn.close().await.ok();

        let master_arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("mysql-master"),
                &json!({"engine": setup.engine, "host": db.host(), "username": master,
                        "password": master_password, "port": db.port()})
                .to_string(),
            )
            .await;
        let arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("mysql-alt"),
                &json!({"engine": setup.engine, "host": db.host(), "username": user,
                        "password": user_password, "port": db.port(), "dbname": database,
                        "masterarn": master_arn, "team": {"name": "payments"}})
                .to_string(),
            )
            .await;

        let mut env = suite::environment(&support::MariaDb, &moto, setup.env).await;
        env.push(("ROTATION_STRATEGY".into(), "alternating-users".into()));

        Fixture {
            db,
            prefix,
            user,
            clone,
            host,
            master,
            master_password,
            role,
            database,
            wildcard,
            rotation: suite::Fixture::launch(&support::MariaDb, moto, arn, env).await,
        }
    }

    /// Logs in with a version's credentials and reads the table through the role or the
    /// database grant.
    async fn reads_the_table(&self, version: &Value) {
        let user = version["username"].as_str().expect("username");
        let password = version["password"].as_str().expect("password");
        let mut conn = MySqlConnection::connect(&self.db.url(user, password))
            .await
            .unwrap_or_else(|error| panic!("{user} logs in: {error}"));
        let count: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM {}.orders",
            ident(&self.database)
        )))
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|error| panic!("{user} reads the table: {error}"));
        assert_eq!(count, 2);
        conn.close().await.ok();
    }

    async fn admin_runs(&self, statement: &str) {
        let mut conn = support::admin().await;
        run(&mut conn, statement).await;
        conn.close().await.ok();
    }

    /// `SHOW GRANTS` of `user` on the test's host part, with the account name and password
    /// hash replaced by placeholders; `None` when the account does not exist.
    async fn grants(&self, user: &str) -> Option<BTreeSet<String>> {
        let mut conn = support::admin().await;
        let rows: Result<Vec<String>, _> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SHOW GRANTS FOR {}",
            acct(user, &self.host)
        )))
        .fetch_all(&mut conn)
        .await;
        conn.close().await.ok();
        let rows = rows.ok()?;
        let printed = format!("{}@{}", ident(user), ident(&self.host));
        Some(
            rows.into_iter()
                .map(|line| {
                    let line = line.replace(&printed, "<account>");
                    match line.find("IDENTIFIED BY PASSWORD '") {
                        Some(at) => {
                            let hash_end = line[at + 24..].find('\'').expect("hash end") + at + 25;
                            format!(
                                "{}IDENTIFIED BY PASSWORD <hash>{}",
                                &line[..at],
                                &line[hash_end..]
                            )
                        }
                        None => line,
                    }
                })
                .collect(),
        )
    }

    /// Both accounts exist and hold exactly the same grants; returns them.
    async fn assert_same_grants(&self) -> BTreeSet<String> {
        let user = self.grants(&self.user).await.expect("the user exists");
        let clone = self.grants(&self.clone).await.expect("the clone exists");
        assert_eq!(user, clone);
        user
    }

    /// Every account of the test (user and host), sorted.
    async fn accounts(&self) -> Vec<(String, String)> {
        let mut conn = support::admin().await;
        let mut rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT CONVERT(User USING utf8mb4), CONVERT(Host USING utf8mb4) FROM mysql.user \
             WHERE User LIKE CONCAT(REPLACE(?, '_', '\\\\_'), '%') ORDER BY 1, 2",
        )
        .bind(&self.prefix)
        .fetch_all(&mut conn)
        .await
        .expect("accounts");
        conn.close().await.ok();
        rows.sort();
        rows
    }

    /// Stops the function and drops every account, role and database the test made.
    async fn finish(self) -> String {
        let accounts = self.accounts().await;
        let output = self.rotation.function.stop().await;
        let mut conn = support::admin().await;
        for (user, host) in accounts {
            let drop = if host.is_empty() {
                format!("DROP ROLE IF EXISTS {}", ident(&user))
            } else {
                format!("DROP USER IF EXISTS {}", acct(&user, &host))
            };
            run(&mut conn, &drop).await;
        }
        run(
            &mut conn,
            &format!("DROP DATABASE IF EXISTS {}", ident(&self.database)),
        )
        .await;
        conn.close().await.ok();
        output
    }
}

/// One rotation, then the checks every test repeats: labels, the expected user current, both
/// versions log in and read the table, both accounts hold the same grants. Returns the new
/// password and the grants.
async fn rotate_and_check(fixture: &Fixture, expected_user: &str) -> (String, BTreeSet<String>) {
    let old_current = fixture.version_with("AWSCURRENT").await.expect("current");
    let record = fixture.orchestrator().rotate(&fixture.arn).await;
    record.expect_success();
    assert_rotated(&fixture.labels().await, &record.token, &old_current);
    let current = fixture.value_at("AWSCURRENT").await;
    let previous = fixture.value_at("AWSPREVIOUS").await;
    assert_eq!(current["username"], json!(expected_user));
    assert_eq!(current["team"], json!({"name": "payments"}));
    assert_eq!(current["port"], json!(fixture.db.port()));
    assert_ne!(current["username"], previous["username"]);
    fixture.reads_the_table(&current).await;
    fixture.reads_the_table(&previous).await;
    let grants = fixture.assert_same_grants().await;
    (
        current["password"].as_str().expect("password").to_owned(),
        grants,
    )
}

async fn three_rotations(engine: &str, account_host: &str) {
    let fixture = Fixture::new(Setup {
        engine,
        account_host,
        ..Setup::default()
    })
    .await;
    let (user, clone) = (fixture.user.clone(), fixture.clone.clone());
    let wildcard_line = format!(
        "GRANT SELECT ON {}.* TO <account> WITH GRANT OPTION",
        ident(&fixture.wildcard)
    );
    let mut passwords = Vec::new();
    for expected in [&clone, &user, &clone] {
        let (password, grants) = rotate_and_check(&fixture, expected).await;
        passwords.push(password);
        // The wildcard database grant, verbatim; the role and its default; REQUIRE SSL.
        assert!(grants.contains(&wildcard_line), "{grants:#?}");
        assert!(
            grants.contains(&format!("GRANT {} TO <account>", ident(&fixture.role))),
            "{grants:#?}"
        );
        assert!(
            grants.contains(&format!(
                "SET DEFAULT ROLE {} FOR <account>",
                ident(&fixture.role)
            )),
            "{grants:#?}"
        );
        assert!(
            grants.contains(
                "GRANT USAGE ON *.* TO <account> IDENTIFIED BY PASSWORD <hash> REQUIRE SSL"
            ),
            "{grants:#?}"
        );
        assert_eq!(grants.len(), 6, "{grants:#?}");
    }
    // The clone has the user's host part, and no other account was made.
    let accounts = fixture.accounts().await;
    let host = fixture.host.clone();
    assert_eq!(
        accounts,
        [
            (fixture.master.clone(), "%".to_owned()),
            (user.clone(), host.clone()),
            (clone.clone(), host),
            (fixture.role.clone(), String::new()),
        ]
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    let output = fixture.function.output();
    for password in &passwords {
        assert!(
            !output.contains(password.as_str()),
            "a password reached the function log"
        );
    }
    assert!(output.contains("Successfully set password for"), "{output}");
    fixture.finish().await;
}

#[tokio::test]
async fn three_rotations_with_engine_mariadb_keep_both_accounts_equal() {
    three_rotations("mariadb", "%").await;
}

#[tokio::test]
async fn three_rotations_with_engine_mysql_keep_both_accounts_equal() {
    three_rotations("mysql", "%").await;
}

#[tokio::test]
async fn an_account_on_a_host_other_than_any_gets_a_clone_on_the_same_host() {
    three_rotations("mysql", "127.0.0.1").await;
}

#[tokio::test]
async fn an_account_on_a_host_other_than_any_rotates_with_engine_mariadb() {
    three_rotations("mariadb", "127.0.0.1").await;
}

#[tokio::test]
async fn a_revoke_on_the_current_account_reaches_the_clone_at_the_next_rotation() {
    let fixture = Fixture::new(Setup::default()).await;
    let (user, clone) = (fixture.user.clone(), fixture.clone.clone());
    rotate_and_check(&fixture, &clone).await;
    // The clone is current now: the operator revokes INSERT, removes the default role and the
    // grant option, and grants DELETE on a table.
    let qclone = acct(&clone, &fixture.host);
    let qdb = ident(&fixture.database);
    fixture
        .admin_runs(&format!(
            "REVOKE INSERT ON {qdb}.* FROM {qclone};
             REVOKE GRANT OPTION ON {wild}.* FROM {qclone};
             SET DEFAULT ROLE NONE FOR {qclone};
             GRANT DELETE ON {qdb}.`orders` TO {qclone};",
            wild = ident(&fixture.wildcard),
        ))
        .await;
    let (_, grants) = rotate_and_check(&fixture, &user).await;
    assert!(grants.contains(&format!("GRANT SELECT ON {qdb}.* TO <account>")));
    assert!(grants.contains(&format!(
        "GRANT SELECT ON {}.* TO <account>",
        ident(&fixture.wildcard)
    )));
    assert!(
        grants.contains(&format!(
            "GRANT UPDATE (`note`), DELETE ON {qdb}.`orders` TO <account>"
        )),
        "{grants:#?}"
    );
    assert!(
        !grants.iter().any(|g| g.starts_with("SET DEFAULT ROLE")),
        "{grants:#?}"
    );
    // And once more, back to the clone: still equal.
    rotate_and_check(&fixture, &clone).await;
    fixture.finish().await;
}

/// The engine's side of the suite's repeated-steps scenario, with engine `mysql` and the
/// fixture's roles, wildcard databases, column grants and REQUIRE: with every step invoked
/// twice, the two accounts keep identical grants, both versions read the table, and no account
/// is left over.
#[tokio::test]
async fn every_step_invoked_twice_leaves_both_accounts_with_the_same_grants() {
    let fixture = Fixture::new(Setup {
        engine: "mysql",
        ..Setup::default()
    })
    .await;
    let mut states = Vec::new();
    for _ in 0..2 {
        fixture.rotate_with_every_step_twice().await;
        for stage in ["AWSCURRENT", "AWSPREVIOUS"] {
            fixture
                .reads_the_table(&fixture.value_at(stage).await)
                .await;
        }
        states.push((fixture.assert_same_grants().await, fixture.accounts().await));
    }
    assert_eq!(states[0], states[1]);
    fixture.finish().await;
}

#[tokio::test]
async fn a_tampered_pending_username_or_host_is_refused_and_nothing_changes() {
    let fixture = Fixture::new(Setup::default()).await;
    let before = (
        fixture.accounts().await,
        fixture.grants(&fixture.user).await,
    );
    for (field, value, expected) in [
        (
            "username",
            json!(fixture.master),
            format!(
                "Attempting to modify user {} other than current user or clone {}",
                fixture.master, fixture.user
            ),
        ),
        (
            "host",
            json!("127.0.0.1"),
            format!(
                "Attempting to modify user for host 127.0.0.1 other than current host {}",
                fixture.db.host()
            ),
        ),
    ] {
        let token = fixture.moto.start_rotation(&fixture.arn).await;
        let mut tampered = fixture.value_at("AWSCURRENT").await;
        if field == "host" {
            tampered["username"] = json!(fixture.clone);
        }
        tampered[field] = value;
        tampered["password"] = json!("attacker-chosen-password");
        fixture
            .moto
            .client()
            .put_secret_value()
            .secret_id(&fixture.arn)
            .client_request_token(&token)
            .secret_string(tampered.to_string())
            .version_stages("AWSPENDING")
            .send()
            .await
            .expect("PutSecretValue");
        let record = fixture
            .orchestrator()
            .invoke(&fixture.arn, &token, "setSecret")
            .await;
        let (error_type, message) = record.invocation.clone().failed().expect("an error");
        assert_eq!(error_type, "InvalidSecret");
        assert_eq!(message, expected);
        assert_eq!(
            (
                fixture.accounts().await,
                fixture.grants(&fixture.user).await
            ),
            before
        );
        // Abandon the rotation.
        fixture
            .moto
            .client()
            .update_secret_version_stage()
            .secret_id(&fixture.arn)
            .version_stage("AWSPENDING")
            .remove_from_version_id(&token)
            .send()
            .await
            .expect("remove AWSPENDING");
    }
    MySqlConnection::connect(&fixture.db.url(&fixture.master, &fixture.master_password))
        .await
        .expect("the master's password is unchanged")
        .close()
        .await
        .ok();
    fixture.finish().await;
}

#[tokio::test]
async fn a_pre_created_alternate_account_is_used_and_made_equal() {
    let fixture = Fixture::new(Setup::default()).await;
    let (user, clone) = (fixture.user.clone(), fixture.clone.clone());
    let qclone = acct(&clone, &fixture.host);
    fixture
        .admin_runs(&format!(
            "CREATE USER {qclone} IDENTIFIED BY 'operator-made';
             GRANT DELETE ON {}.* TO {qclone} WITH GRANT OPTION;",
            ident(&fixture.database)
        ))
        .await;
    rotate_and_check(&fixture, &clone).await;
    rotate_and_check(&fixture, &user).await;
    fixture.finish().await;
}

#[tokio::test]
async fn an_alternate_user_that_also_exists_on_another_host_is_refused_with_the_reason() {
    let fixture = Fixture::new(Setup::default()).await;
    let stray = acct(&fixture.clone, "10.9.%");
    fixture
        .admin_runs(&format!(
            "CREATE USER {stray} IDENTIFIED BY 'operator-made';"
        ))
        .await;
    let before = fixture.accounts().await;
    let record = fixture.orchestrator().rotate(&fixture.arn).await;
    let failed = record.failure().expect("the rotation is refused");
    assert_eq!(failed.step, "setSecret");
    let (error_type, message) = failed.invocation.clone().failed().expect("an error");
    assert_eq!(error_type, "InvalidSecret");
    assert!(
        message.contains("also exists for host(s) 10.9.%"),
        "{message}"
    );
    assert_eq!(fixture.accounts().await, before, "nothing was created");
    fixture.admin_runs(&format!("DROP USER {stray};")).await;
    fixture.finish().await;
}

#[tokio::test]
async fn hostile_account_names_and_passwords_rotate() {
    for engine in ["mariadb", "mysql"] {
        let fixture = Fixture::new(Setup {
            engine,
            user: "O'R\\e%_`ü TO x;",
            account_host: "127.0.0.%",
            env: &[("EXCLUDE_CHARACTERS", "")],
        })
        .await;
        let (user, clone) = (fixture.user.clone(), fixture.clone.clone());
        for expected in [&clone, &user, &clone] {
            rotate_and_check(&fixture, expected).await;
        }
        fixture.finish().await;
    }
}

/// While alive, `init_connect` adds `NO_BACKSLASH_ESCAPES` to the session of every account whose
/// user name starts with `prefix` (one test's accounts only: other tests in this process keep
/// the default). Dropping it, on success or on a panic, empties `init_connect` again.
struct NoBackslashEscapesFor;

impl NoBackslashEscapesFor {
    async fn accounts_starting_with(prefix: &str) -> Self {
        let statement = format!(
            "SET SESSION sql_mode = IF(LEFT(CURRENT_USER(), {}) = {}, \
             CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES'), @@SESSION.sql_mode)",
            prefix.chars().count(),
            lit(prefix)
        );
        support::run_as_admin(&[format!("SET GLOBAL init_connect = {}", lit(&statement))]).await;
        NoBackslashEscapesFor
    }
}

impl Drop for NoBackslashEscapesFor {
    fn drop(&mut self) {
        // Drop cannot await: a runtime of its own, on a thread of its own.
        let restored = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(support::run_as_admin(&[
                    "SET GLOBAL init_connect = ''".to_owned()
                ]))
        })
        .join();
        if restored.is_err() && !std::thread::panicking() {
            panic!("init_connect was not restored");
        }
    }
}

/// The session `sql_mode` an account gets at login (after `init_connect`).
async fn session_sql_mode(db: &MariaDb, user: &str, password: &str) -> String {
    let mut conn = MySqlConnection::connect(&db.url(user, password))
        .await
        .unwrap_or_else(|error| panic!("{user} logs in: {error}"));
    let mode: String = sqlx::query_scalar("SELECT CAST(@@SESSION.sql_mode AS CHAR)")
        .fetch_one(&mut conn)
        .await
        .expect("sql_mode");
    conn.close().await.ok();
    mode
}

fn has_no_backslash_escapes(sql_mode: &str) -> bool {
    sql_mode
        .split(',')
        .any(|mode| mode == "NO_BACKSLASH_ESCAPES")
}

#[tokio::test]
async fn hostile_account_names_and_passwords_rotate_with_no_backslash_escapes_in_every_session() {
    let fixture = Fixture::new(Setup {
        engine: "mysql",
        user: "O'R\\'e\"%_`ü ✓ TO x;",
        account_host: "127.0.0.%",
        env: &[
            ("EXCLUDE_CHARACTERS", ""),
            ("PASSWORD_LENGTH", "64"),
            ("EXCLUDE_LOWERCASE", "true"),
            ("EXCLUDE_UPPERCASE", "true"),
            ("EXCLUDE_NUMBERS", "true"),
        ],
    })
    .await;
    // init_connect is skipped for SUPER and CONNECTION ADMIN: without them it runs for the
    // master too, which keeps every other privilege, with grant option.
    fixture
        .admin_runs(&format!(
            "REVOKE SUPER, CONNECTION ADMIN ON *.* FROM {}",
            acct(&fixture.master, "%")
        ))
        .await;
    let nbe = NoBackslashEscapesFor::accounts_starting_with(&fixture.prefix).await;
    let (user, clone) = (fixture.user.clone(), fixture.clone.clone());

    // The mode is on for the master and the user, off for accounts of other tests.
    let master_mode = session_sql_mode(fixture.db, &fixture.master, &fixture.master_password).await;
    assert!(has_no_backslash_escapes(&master_mode), "{master_mode}");
    let current = fixture.value_at("AWSCURRENT").await;
    let user_mode = session_sql_mode(
        fixture.db,
        current["username"].as_str().expect("username"),
        current["password"].as_str().expect("password"),
    )
    .await;
    assert!(has_no_backslash_escapes(&user_mode), "{user_mode}");
    let admin_mode: String = sqlx::query_scalar("SELECT CAST(@@SESSION.sql_mode AS CHAR)")
        .fetch_one(&mut support::admin().await)
        .await
        .expect("sql_mode");
    assert!(!has_no_backslash_escapes(&admin_mode), "{admin_mode}");

    let mut passwords = Vec::new();
    for expected in [&clone, &user, &clone] {
        let (password, _) = rotate_and_check(&fixture, expected).await;
        assert_eq!(password.chars().count(), 64);
        assert!(
            password.chars().all(|c| c.is_ascii_punctuation()),
            "punctuation-only passwords"
        );
        passwords.push(password);
        // Both versions' sessions run with the mode.
        for stage in ["AWSCURRENT", "AWSPREVIOUS"] {
            let version = fixture.value_at(stage).await;
            let mode = session_sql_mode(
                fixture.db,
                version["username"].as_str().expect("username"),
                version["password"].as_str().expect("password"),
            )
            .await;
            assert!(has_no_backslash_escapes(&mode), "{stage}: {mode}");
        }
    }
    assert!(
        passwords
            .iter()
            .any(|p| p.contains('\\') || p.contains('\'')),
        "some password holds a quote or a backslash"
    );
    let output = fixture.function.output();
    for login in [&fixture.master, &user, &clone] {
        assert!(
            output.contains(&format!("connection as user '{login}'")),
            "{login} logged in: {output}"
        );
    }
    // The function's own account of the master session: the mode was on where it replayed.
    let master_sessions: Vec<&str> = output
        .lines()
        .filter(|line| line.contains("the master makes"))
        .collect();
    assert_eq!(
        master_sessions.len(),
        3,
        "one master session per rotation: {output}"
    );
    for line in master_sessions {
        assert!(line.contains("NO_BACKSLASH_ESCAPES on"), "{line}");
    }
    for password in &passwords {
        assert!(
            !output.contains(password.as_str()),
            "a password reached the function log"
        );
    }
    drop(nbe);
    fixture.finish().await;
}
