//! Alternating-users rotation end to end: the real `rotate-postgres` binary under the Lambda
//! Runtime API emulator, moto as Secrets Manager, and the stack's PostgreSQL 15 (TLS verified
//! against the stack's CA, every statement logged).
//!
//! Each test makes its own roles (a dedicated non-superuser master WITH CREATEROLE, as on RDS,
//! where the master is not a true superuser), schema and secrets, with names unique to the test,
//! and drops its roles and schema at the end.

mod support;

use std::collections::BTreeMap;
use std::ops::Deref;

use rotate_postgres::sql::{quote_identifier as q, quote_literal};
use rotation_tests::conformance::{self as suite, assert_rotated, unique};
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack::{self, Postgres};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use support::{run_as_superuser, superuser};

/// How the test's master role is made.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Master {
    /// Non-superuser WITH CREATEROLE (the RDS master's situation).
    CreateRole,
    /// Non-superuser without CREATEROLE, holding ADMIN OPTION on the user's roles only.
    AdminOptionOnly,
}

/// What a test's fixture looks like.
struct Setup<'a> {
    master: Master,
    /// The user's name after the test's prefix.
    user: &'a str,
    env: &'a [(&'a str, &'a str)],
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            master: Master::CreateRole,
            user: "app",
            env: &[],
        }
    }
}

struct Fixture {
    pg: &'static Postgres,
    /// Every role and schema of the test starts with it.
    prefix: String,
    /// The function, its secret, moto.
    rotation: suite::Fixture<'static>,
    /// The original user (`<prefix>app`) and its alternate.
    user: String,
    clone: String,
    readers: String,
    schema: String,
}

impl Deref for Fixture {
    type Target = suite::Fixture<'static>;

    fn deref(&self) -> &Self::Target {
        &self.rotation
    }
}

async fn run(conn: &mut PgConnection, statement: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(conn)
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
}

impl Fixture {
    /// Roles, a table the user owns, the master secret and the user secret.
    async fn new(setup: Setup<'_>) -> Fixture {
        let pg = stack::postgres().await;
        let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
        let prefix = format!("{}_", unique("alt"));
        let user = format!("{prefix}{}", setup.user);
        let clone = format!("{user}_clone");
        let master = format!("{prefix}master");
        let readers = format!("{prefix}readers");
        let schema = format!("{prefix}data");
        let master_password = format!("master-{prefix}-pw");
        let user_password = format!("user-{prefix}-pw");
        let (qmaster, qreaders, quser, qschema) = (q(&master), q(&readers), q(&user), q(&schema));

        let mut su = superuser().await;
        let master_attributes = match setup.master {
            Master::CreateRole => "CREATEROLE",
            Master::AdminOptionOnly => "NOCREATEROLE",
        };
        run(
            &mut su,
            &format!(
                "CREATE ROLE {qmaster} LOGIN {master_attributes} PASSWORD '{master_password}';
                 CREATE ROLE {qreaders};
                 CREATE ROLE {quser} LOGIN PASSWORD '{user_password}';
                 GRANT {qreaders} TO {quser};
                 CREATE SCHEMA {qschema} AUTHORIZATION {quser};
                 CREATE TABLE {qschema}.orders (id int);
                 INSERT INTO {qschema}.orders VALUES (1), (2);
                 ALTER TABLE {qschema}.orders OWNER TO {quser};"
            ),
        )
        .await;
        if setup.master == Master::AdminOptionOnly {
            run(
                &mut su,
                &format!(
                    "GRANT {quser} TO {qmaster} WITH ADMIN OPTION;
                     GRANT {qreaders} TO {qmaster} WITH ADMIN OPTION;"
                ),
            )
            .await;
        }
        su.close().await.ok();

        let master_arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("pg-master"),
                &json!({"engine": "postgres", "host": pg.host(), "username": master,
                        "password": master_password, "port": pg.port()})
                .to_string(),
            )
            .await;
        let arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("pg-alt"),
                &json!({"engine": "postgres", "host": pg.host(), "username": user,
                        "password": user_password, "port": pg.port(), "dbname": "postgres",
                        "masterarn": master_arn, "team": {"name": "payments"}})
                .to_string(),
            )
            .await;

        let mut env = suite::environment(&support::Postgres, &moto, setup.env).await;
        env.push(("ROTATION_STRATEGY".into(), "alternating-users".into()));

        Fixture {
            pg,
            prefix,
            user,
            clone,
            readers,
            schema,
            rotation: suite::Fixture::launch(&support::Postgres, moto, arn, env).await,
        }
    }

    async fn login(&self, user: &str, password: &str) -> Result<PgConnection, sqlx::Error> {
        PgConnection::connect(&self.pg.url(user, password, "postgres")).await
    }

    /// Logs in with a version's credentials and reads the table the original user owns.
    async fn reads_the_table(&self, version: &Value) {
        let user = version["username"].as_str().expect("username");
        let password = version["password"].as_str().expect("password");
        let mut conn = self
            .login(user, password)
            .await
            .unwrap_or_else(|error| panic!("{user} logs in: {error}"));
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {}.orders",
            q(&self.schema)
        )))
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|error| panic!("{user} reads the table: {error}"));
        assert_eq!(count, 2);
        conn.close().await.ok();
    }

    /// Everything about the test's roles except passwords: attributes, settings, memberships.
    async fn role_state(&self) -> BTreeMap<String, String> {
        let mut su = superuser().await;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT 'role ' || rolname, concat_ws(' ', rolinherit::text, rolcreatedb::text, \
                    rolcreaterole::text, rolcanlogin::text, rolconnlimit, rolvaliduntil) FROM pg_roles WHERE starts_with(rolname, $1) \
             UNION ALL \
             SELECT 'setting ' || r.rolname || ' in ' || coalesce(d.datname, '*'), \
                    array_to_string(s.setconfig, ' | ') \
             FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole \
             LEFT JOIN pg_database d ON d.oid = s.setdatabase WHERE starts_with(r.rolname, $1) \
             UNION ALL \
             SELECT 'member ' || u.rolname || ' of ' || r.rolname, m.admin_option::text \
             FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid \
             JOIN pg_roles u ON u.oid = m.member WHERE starts_with(u.rolname, $1)",
        )
        .bind(&self.prefix)
        .fetch_all(&mut su)
        .await
        .expect("role state");
        su.close().await.ok();
        rows.into_iter().collect()
    }

    async fn superuser_runs(&self, statement: &str) {
        run_as_superuser(statement).await;
    }

    /// Stops the function and drops every role and the schema the test made.
    async fn finish(self) -> String {
        let output = self.rotation.function.stop().await;
        let mut su = superuser().await;
        run(
            &mut su,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", q(&self.schema)),
        )
        .await;
        let roles: Vec<String> =
            sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1)")
                .bind(&self.prefix)
                .fetch_all(&mut su)
                .await
                .expect("the test's roles");
        for role in &roles {
            run(&mut su, &format!("DROP OWNED BY {} CASCADE", q(role))).await;
        }
        for role in &roles {
            run(&mut su, &format!("DROP ROLE {}", q(role))).await;
        }
        su.close().await.ok();
        output
    }
}

#[tokio::test]
async fn three_rotations_alternate_the_users_and_the_clone_inherits_the_original() {
    let fixture = Fixture::new(Setup::default()).await;
    let (user, clone, readers, schema) = (
        fixture.user.clone(),
        fixture.clone.clone(),
        fixture.readers.clone(),
        fixture.schema.clone(),
    );
    let writers = format!("{}writers", fixture.prefix);
    let auditors = format!("{}auditors", fixture.prefix);
    fixture
        .superuser_runs(&format!(
            "ALTER ROLE {user} CREATEDB CREATEROLE CONNECTION LIMIT 7 VALID UNTIL '2099-12-31 10:00:00+00';
             ALTER ROLE {user} SET search_path = '{schema}', 'with \"quotes\", comma', public;
             ALTER ROLE {user} SET statement_timeout = '45s';
             ALTER ROLE {user} IN DATABASE postgres SET work_mem = '3MB';
             CREATE ROLE {writers}; CREATE ROLE {auditors};"
        ))
        .await;

    let mut passwords = Vec::new();
    let mut old_current = fixture.version_with("AWSCURRENT").await.expect("current");
    let expected_users = [&clone, &user, &clone];
    for (round, expected_user) in expected_users.into_iter().enumerate() {
        let record = fixture.orchestrator().rotate(&fixture.arn).await;
        record.expect_success();
        assert_rotated(&fixture.labels().await, &record.token, &old_current);

        let current = fixture.value_at("AWSCURRENT").await;
        let previous = fixture.value_at("AWSPREVIOUS").await;
        assert_eq!(current["username"], json!(expected_user), "round {round}");
        assert_eq!(current["team"], json!({"name": "payments"}));
        assert_eq!(current["port"], json!(fixture.pg.port()));
        assert_ne!(current["username"], previous["username"]);
        // Both the new current and the previous credentials work, and both users can read the
        // table the original user owns.
        fixture.reads_the_table(&current).await;
        fixture.reads_the_table(&previous).await;
        passwords.push(current["password"].as_str().expect("password").to_owned());
        old_current = record.token.clone();

        let state = fixture.role_state().await;
        if round == 0 {
            // The clone has the original's attributes, settings and memberships, and is a
            // member of the original.
            assert_eq!(
                state[&format!("role {clone}")],
                state[&format!("role {user}")],
                "{state:#?}"
            );
            assert_eq!(
                state[&format!("role {clone}")],
                "true true true true 7 2099-12-31 10:00:00+00"
            );
            for scope in ["*", "postgres"] {
                assert_eq!(
                    state.get(&format!("setting {clone} in {scope}")),
                    state.get(&format!("setting {user} in {scope}")),
                    "{state:#?}"
                );
            }
            assert_eq!(
                state[&format!("setting {clone} in *")],
                format!(
                    "search_path={schema}, \"with \"\"quotes\"\", comma\", public | statement_timeout=45s"
                )
            );
            assert_eq!(state[&format!("member {clone} of {readers}")], "false");
            assert_eq!(state[&format!("member {clone} of {user}")], "false");
            // Memberships gained later, one by each user.
            fixture
                .superuser_runs(&format!(
                    "GRANT {writers} TO {user}; GRANT {auditors} TO {clone} WITH ADMIN OPTION;"
                ))
                .await;
        }
        if round == 1 {
            // The original was pending: it gained what the clone gained, and no cycle was made.
            assert_eq!(state[&format!("member {user} of {auditors}")], "true");
            assert!(!state.contains_key(&format!("member {user} of {clone}")));
            assert!(!state.contains_key(&format!("member {clone} of {writers}")));
        }
        if round == 2 {
            assert_eq!(state[&format!("member {clone} of {writers}")], "false");
        }
    }

    // The server never saw a new password in plaintext, nor did the function's output.
    let log = fixture.pg.statement_log().expect("statement log");
    let output = fixture.function.output();
    for password in &passwords {
        assert!(
            !log.contains(password.as_str()),
            "a password reached the statement log"
        );
        assert!(
            !output.contains(password.as_str()),
            "a password reached the function log"
        );
    }
    assert!(output.contains("Successfully set password for"), "{output}");
    fixture.finish().await;
}

#[tokio::test]
async fn a_setting_the_master_may_not_copy_undoes_the_whole_clone_and_the_retry_converges() {
    // `log_statement` is superuser-only (PGC_SUSET): the superuser may give it to the user, but
    // the CREATEROLE master may not copy it to the clone. It comes after a setting the master
    // may copy, so the failure strikes after CREATE ROLE and one copied setting.
    let fixture = Fixture::new(Setup::default()).await;
    let user = q(&fixture.user);
    fixture
        .superuser_runs(&format!(
            "ALTER ROLE {user} SET statement_timeout = '45s';
             ALTER ROLE {user} SET log_statement = 'all';
             ALTER ROLE {user} IN DATABASE postgres SET work_mem = '3MB';"
        ))
        .await;
    let before = fixture.role_state().await;
    assert_eq!(
        before[&format!("setting {} in *", fixture.user)],
        "statement_timeout=45s | log_statement=all"
    );
    let labels_before = fixture.moto.labels(&fixture.arn).await;
    let original = fixture.value_at("AWSCURRENT").await;
    let old_current = fixture.version_with("AWSCURRENT").await.expect("current");

    let record = fixture.orchestrator().rotate(&fixture.arn).await;
    let failed = record
        .failure()
        .expect("the master may not copy log_statement");
    assert_eq!(failed.step, "setSecret");
    let (error_type, message) = failed.invocation.clone().failed().expect("an error");
    assert_eq!(error_type, "TargetRejected", "{message}");
    assert!(
        message.contains("permission denied to set parameter \"log_statement\""),
        "{message}"
    );
    assert!(message.contains("SQLSTATE 42501"), "{message}");

    // Nothing half-made: no clone, no copied setting, no membership; every role as it was.
    let after_failure = fixture.role_state().await;
    assert!(
        !after_failure.contains_key(&format!("role {}", fixture.clone)),
        "{after_failure:#?}"
    );
    assert_eq!(after_failure, before);
    // The current user still logs in, and only the service's AWSPENDING version was added.
    assert_eq!(fixture.value_at("AWSCURRENT").await, original);
    fixture.reads_the_table(&original).await;
    let mut labels = fixture.moto.labels(&fixture.arn).await;
    assert_eq!(
        labels.remove(&record.token),
        Some(vec!["AWSPENDING".to_owned()]),
        "{labels:?}"
    );
    assert_eq!(labels, labels_before);
    let pending = fixture.value_at("AWSPENDING").await;
    assert_eq!(pending["username"], json!(fixture.clone));

    // The operator removes the setting; Secrets Manager retries the same rotation.
    fixture
        .superuser_runs(&format!("ALTER ROLE {user} RESET log_statement;"))
        .await;
    let retry = fixture
        .orchestrator()
        .run_steps(&fixture.arn, record.token.clone())
        .await;
    retry.expect_success();
    assert_rotated(&fixture.labels().await, &record.token, &old_current);

    let current = fixture.value_at("AWSCURRENT").await;
    assert_eq!(current["username"], json!(fixture.clone));
    // The password the failed attempt's createSecret generated is the one that was set.
    assert_eq!(current["password"], pending["password"]);
    fixture.reads_the_table(&current).await;
    let previous = fixture.value_at("AWSPREVIOUS").await;
    assert_eq!(previous, original);
    fixture.reads_the_table(&previous).await;

    let state = fixture.role_state().await;
    assert_eq!(
        state[&format!("role {}", fixture.clone)],
        state[&format!("role {}", fixture.user)]
    );
    assert_eq!(
        state[&format!("setting {} in *", fixture.clone)],
        "statement_timeout=45s"
    );
    assert_eq!(
        state[&format!("setting {} in postgres", fixture.clone)],
        "work_mem=3MB"
    );
    assert_eq!(
        state[&format!("member {} of {}", fixture.clone, fixture.user)],
        "false"
    );
    assert_eq!(
        state[&format!("member {} of {}", fixture.clone, fixture.readers)],
        "false"
    );
    fixture.finish().await;
}

/// The engine's side of the suite's repeated-steps scenario: with every step invoked twice, the
/// clone was created once, is a member of the user, keeps the user's attributes, and both
/// versions read the user's table.
#[tokio::test]
async fn every_step_invoked_twice_leaves_one_clone_equal_to_the_user() {
    let fixture = Fixture::new(Setup::default()).await;
    let mut states = Vec::new();
    for _ in 0..2 {
        fixture.rotate_with_every_step_twice().await;
        for stage in ["AWSCURRENT", "AWSPREVIOUS"] {
            fixture
                .reads_the_table(&fixture.value_at(stage).await)
                .await;
        }
        states.push(fixture.role_state().await);
    }
    assert_eq!(states[0], states[1]);
    let state = &states[1];
    assert_eq!(
        state[&format!("member {} of {}", fixture.clone, fixture.user)],
        "false"
    );
    assert_eq!(
        state[&format!("role {}", fixture.clone)],
        state[&format!("role {}", fixture.user)]
    );
    fixture.finish().await;
}

#[tokio::test]
async fn a_pre_created_alternate_user_is_made_like_the_user() {
    let fixture = Fixture::new(Setup::default()).await;
    let (user, clone) = (fixture.user.clone(), fixture.clone.clone());
    fixture
        .superuser_runs(&format!(
            "ALTER ROLE {user} CREATEDB CONNECTION LIMIT 9;
             ALTER ROLE {user} SET work_mem = '5MB';
             CREATE ROLE {clone} LOGIN NOCREATEDB CONNECTION LIMIT 2 PASSWORD 'operator-made';
             ALTER ROLE {clone} SET lock_timeout = '3s';"
        ))
        .await;
    let before = fixture.role_state().await;
    let record = fixture.orchestrator().rotate(&fixture.arn).await;
    record.expect_success();
    let current = fixture.value_at("AWSCURRENT").await;
    assert_eq!(current["username"], json!(clone));
    fixture.reads_the_table(&current).await;

    let after = fixture.role_state().await;
    // The clone is kept equal to the user: its attributes and settings became the user's, and
    // the missing memberships were added.
    let role = format!("role {clone}");
    assert_ne!(after[&role], before[&role]);
    assert_eq!(after[&role], after[&format!("role {user}")]);
    assert_eq!(after[&role], "true true false true 9");
    assert_eq!(after[&format!("setting {clone} in *")], "work_mem=5MB");
    assert_eq!(
        after[&format!("setting {clone} in *")],
        after[&format!("setting {user} in *")]
    );
    assert_eq!(after[&format!("member {clone} of {user}")], "false");
    assert_eq!(
        after[&format!("member {clone} of {}", fixture.readers)],
        "false"
    );
    fixture.finish().await;
}

#[tokio::test]
async fn a_pre_created_alternate_user_rotates_without_createrole_on_the_master() {
    // The master holds ADMIN OPTION on the user's roles but neither SUPERUSER nor CREATEROLE, so
    // PostgreSQL lets it grant memberships but not set another role's password. The operator
    // made both users and stored the clone's credentials as a version before the current one
    // (AWSPREVIOUS): each user then changes its own password.
    let fixture = Fixture::new(Setup {
        master: Master::AdminOptionOnly,
        ..Setup::default()
    })
    .await;
    let (user, clone) = (fixture.user.clone(), fixture.clone.clone());
    fixture
        .superuser_runs(&format!(
            "CREATE ROLE {clone} LOGIN CONNECTION LIMIT 4 PASSWORD 'operator-clone-pw';"
        ))
        .await;

    // Without a usable AWSPREVIOUS, the rotation stops with a clear error and changes nothing.
    let before = fixture.role_state().await;
    let record = fixture.orchestrator().rotate(&fixture.arn).await;
    let failed = record
        .failure()
        .expect("no way to set the clone's password");
    assert_eq!(failed.step, "setSecret");
    let (error_type, message) = failed.invocation.clone().failed().expect("an error");
    assert_eq!(error_type, "TargetRejected", "{message}");
    assert!(
        message.contains("neither SUPERUSER nor CREATEROLE"),
        "{message}"
    );
    assert!(message.contains("no AWSPREVIOUS"), "{message}");
    // The memberships are granted before the password: the retry below needs none.
    let granted = fixture.role_state().await;
    assert_eq!(
        granted[&format!("role {clone}")],
        before[&format!("role {clone}")]
    );
    // Abandon that rotation as an operator would, then seed AWSPREVIOUS with the clone.
    fixture
        .moto
        .client()
        .update_secret_version_stage()
        .secret_id(&fixture.arn)
        .version_stage("AWSPENDING")
        .remove_from_version_id(&record.token)
        .send()
        .await
        .expect("remove AWSPENDING");
    let mut clone_version = fixture.value_at("AWSCURRENT").await;
    clone_version["username"] = json!(clone);
    clone_version["password"] = json!("operator-clone-pw");
    fixture
        .moto
        .client()
        .put_secret_value()
        .secret_id(&fixture.arn)
        .secret_string(clone_version.to_string())
        .version_stages("AWSPREVIOUS")
        .send()
        .await
        .expect("PutSecretValue");
    let labels = fixture.moto.labels(&fixture.arn).await;
    assert_eq!(
        fixture.value_at("AWSPREVIOUS").await["username"],
        json!(clone),
        "{labels:?}"
    );
    assert_eq!(
        fixture.value_at("AWSCURRENT").await["username"],
        json!(user),
        "{labels:?}"
    );

    for expected in [&clone, &user, &clone] {
        let record = fixture.orchestrator().rotate(&fixture.arn).await;
        record.expect_success();
        let current = fixture.value_at("AWSCURRENT").await;
        assert_eq!(current["username"], json!(expected));
        fixture.reads_the_table(&current).await;
        fixture
            .reads_the_table(&fixture.value_at("AWSPREVIOUS").await)
            .await;
    }
    let after = fixture.role_state().await;
    assert_eq!(after[&format!("role {clone}")], "true false false true 4");
    assert_eq!(after[&format!("member {clone} of {user}")], "false");
    let output = fixture.function.output();
    assert!(output.contains("will change its own password"), "{output}");
    fixture.finish().await;
}

#[tokio::test]
async fn hostile_names_settings_and_passwords_rotate_and_nothing_else_changes() {
    let fixture = Fixture::new(Setup {
        user: "Mc\"Q 'Ü' \\ %;App",
        env: &[("EXCLUDE_CHARACTERS", "")],
        ..Setup::default()
    })
    .await;
    let (user, clone) = (fixture.user.clone(), fixture.clone.clone());
    let odd_role = format!("{}Rëaders; DROP \"x\"", fixture.prefix);
    fixture
        .superuser_runs(&format!(
            "CREATE ROLE {odd}; GRANT {odd} TO {user};
             ALTER ROLE {user} SET search_path = {schema}, 'it''s \"odd\", really', public;
             ALTER ROLE {user} IN DATABASE postgres SET application_name = {name};",
            odd = q(&odd_role),
            user = q(&user),
            schema = quote_literal(&fixture.schema),
            name = quote_literal("x'y\\z %s $1"),
        ))
        .await;
    let before = fixture.role_state().await;

    let mut passwords = Vec::new();
    for expected in [&clone, &user, &clone] {
        let record = fixture.orchestrator().rotate(&fixture.arn).await;
        record.expect_success();
        let current = fixture.value_at("AWSCURRENT").await;
        assert_eq!(current["username"], json!(expected));
        fixture.reads_the_table(&current).await;
        fixture
            .reads_the_table(&fixture.value_at("AWSPREVIOUS").await)
            .await;
        passwords.push(current["password"].as_str().expect("password").to_owned());
    }

    let after = fixture.role_state().await;
    for scope in ["*", "postgres"] {
        assert_eq!(
            after.get(&format!("setting {clone} in {scope}")),
            after.get(&format!("setting {user} in {scope}")),
            "{after:#?}"
        );
    }
    assert_eq!(after[&format!("member {clone} of {odd_role}")], "false");
    assert_eq!(after[&format!("member {clone} of {user}")], "false");
    // Apart from the clone, nothing changed.
    let without_clone = |state: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        state
            .iter()
            .filter(|(key, _)| !key.contains(clone.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    };
    assert_eq!(without_clone(&after), without_clone(&before));
    let log = fixture.pg.statement_log().expect("statement log");
    for password in &passwords {
        assert!(
            !log.contains(password.as_str()),
            "a password reached the statement log"
        );
    }
    fixture.finish().await;
}
