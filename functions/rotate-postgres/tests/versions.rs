//! The rotations whose outcome depends on the server's rules, on every PostgreSQL major version
//! of the stack's matrix: 14, 16 and 18 from pinned PyPI wheels (no TLS: their secrets say
//! `"ssl": false`) and Debian's 15 (verified TLS). Each test's module names its version and
//! whether it runs with TLS, e.g. `postgres_16_without_tls::…`.
//!
//! Alternating users run with a master like RDS's ([`RdsMaster`]): not a superuser, CREATEROLE,
//! CREATEDB, member of an `rds_superuser`-like group; it creates the application user and its
//! groups, so from PostgreSQL 16 it holds ADMIN OPTION (INHERIT FALSE, SET FALSE) on them, as
//! on RDS. A missing server fails with the install command (`scripts/setup`), never skips.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use rotation::crash::points;
use rotation_database::crash_points as database_points;
use rotation_tests::crash_matrix::{crash_then_converge, Credentials};
use rotation_tests::orchestrator::{Orchestrator, RotationRecord};
use rotation_tests::runtime_api::{FunctionSpec, Invocation, LambdaFunction};
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack::rds::{quote_identifier as q, run_as_superuser};
use rotation_tests::stack::{self, Postgres, RdsMaster};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};

const BINARY: &str = env!("CARGO_BIN_EXE_rotate-postgres");

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One membership as the server records it: ADMIN, INHERIT, SET (before 16: INHERIT and SET
/// are the membership's only behaviour, shown as true).
type Options = (bool, bool, bool);

/// The test's roles, secrets and function on one server.
struct Fixture {
    pg: &'static Postgres,
    /// Every role of the test starts with it.
    prefix: String,
    moto: MotoSecretsManager,
    function: LambdaFunction,
    master: RdsMaster,
    user: String,
    clone: String,
    arn: String,
    /// The function's environment, for the crash matrix's own processes.
    env: Vec<(String, String)>,
    /// The secret's database: `postgres`, or one of the test's own.
    dbname: String,
}

async fn server(major: u32) -> &'static Postgres {
    let pg = stack::postgres_version(major).await;
    assert_eq!(pg.major(), major, "the stack started the asked version");
    pg
}

/// A secret's JSON for `user` on `pg`, with `"ssl": false` when the build has no TLS.
fn secret(pg: &Postgres, user: &str, password: &str, extra: Value) -> String {
    let mut secret = json!({
        "engine": "postgres", "host": pg.host(), "username": user, "password": password,
        "port": pg.port(), "dbname": "postgres",
    });
    if let Some(ssl) = pg.secret_ssl() {
        secret["ssl"] = json!(ssl);
    }
    if let (Some(secret), Value::Object(extra)) = (secret.as_object_mut(), extra) {
        secret.extend(extra);
    }
    secret.to_string()
}

async fn superuser_runs(pg: &Postgres, sql: &str) {
    run_as_superuser(pg, sql)
        .await
        .unwrap_or_else(|error| panic!("superuser: {sql}: {error}"));
}

impl Fixture {
    /// An RDS-like master, the user it creates, the master's secret and the user's secret, and
    /// the function with `strategy`.
    async fn new(major: u32, strategy: &str) -> Fixture {
        Fixture::build(major, strategy, false).await
    }

    /// [`new`](Self::new), with `own_database`: the secret names a database of the test's own
    /// (`<prefix>db`) instead of `postgres`.
    async fn build(major: u32, strategy: &str, own_database: bool) -> Fixture {
        let pg = server(major).await;
        let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
        let prefix = format!(
            "v{major}_{}_{}_",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let user = format!("{prefix}app");
        let clone = format!("{user}_clone");
        let dbname = if own_database {
            let dbname = format!("{prefix}db");
            superuser_runs(pg, &format!("CREATE DATABASE {}", q(&dbname))).await;
            dbname
        } else {
            "postgres".to_owned()
        };
        let master_password = stack::random_hex(16).expect("random");
        let user_password = stack::random_hex(16).expect("random");
        rotation_tests::leaks::remember(&master_password);
        rotation_tests::leaks::remember(&user_password);
        let master = RdsMaster::create(pg, &format!("{prefix}master"), &master_password)
            .await
            .expect("the RDS-like master is created");
        master
            .create_user(&user, &user_password)
            .await
            .expect("the master creates the user");

        let master_arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("pg-master"),
                &secret(pg, master.name(), &master_password, json!({})),
            )
            .await;
        let arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("pg-version"),
                &secret(
                    pg,
                    &user,
                    &user_password,
                    json!({"masterarn": master_arn, "dbname": dbname}),
                ),
            )
            .await;
        let mut env = moto.function_environment();
        env.push(("ROTATION_STRATEGY".into(), strategy.into()));
        env.push(("CA_BUNDLE".into(), pg.ca_cert_path().display().to_string()));
        let function = LambdaFunction::start(FunctionSpec::new(BINARY).env(env.iter().cloned()))
            .await
            .expect("the function starts");
        Fixture {
            pg,
            prefix,
            moto,
            function,
            master,
            user,
            clone,
            arn,
            env,
            dbname,
        }
    }

    fn orchestrator(&self) -> Orchestrator<'_> {
        Orchestrator {
            moto: &self.moto,
            function: &self.function,
        }
    }

    async fn rotate(&self) -> RotationRecord {
        self.orchestrator().rotate(&self.arn).await
    }

    async fn value(&self, stage: &str) -> Value {
        self.moto
            .value_at(&self.arn, stage)
            .await
            .unwrap_or_else(|| panic!("no {stage} value"))
    }

    /// Whether a version's credentials log in (plaintext on a build without TLS).
    async fn logs_in(&self, version: &Value) -> bool {
        VersionLogins(self.pg).work(version).await
    }

    /// The roles `member` belongs to, with their options.
    async fn memberships(&self, member: &str) -> BTreeMap<String, Options> {
        let options = if self.pg.major() >= 16 {
            "bool_or(m.inherit_option), bool_or(m.set_option)"
        } else {
            "true, true"
        };
        self.query_as(&format!(
            "SELECT r.rolname::text, bool_or(m.admin_option), {options} \
             FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid \
             JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = '{member}' \
             GROUP BY r.rolname"
        ))
        .await
        .into_iter()
        .map(|(role, admin, inherit, set)| (role, (admin, inherit, set)))
        .collect()
    }

    /// `role`'s CREATEDB, connection limit and per-role settings, as one line.
    async fn attributes(&self, role: &str) -> String {
        let rows = self
            .query_as(&format!(
                "SELECT concat_ws(' ', CASE WHEN rolcreatedb THEN 't' ELSE 'f' END, rolconnlimit, \
                   (SELECT string_agg(c || ' in ' || coalesce(d.datname, '*'), ', ' \
                                      ORDER BY d.datname NULLS FIRST, c) \
                    FROM pg_db_role_setting s CROSS JOIN unnest(s.setconfig) c \
                    LEFT JOIN pg_database d ON d.oid = s.setdatabase WHERE s.setrole = r.oid)), \
                 false, false, false FROM pg_roles r WHERE rolname = '{role}'"
            ))
            .await;
        rows.into_iter()
            .map(|(line, ..)| line)
            .next()
            .unwrap_or_else(|| panic!("role {role} exists"))
    }

    async fn query_as(&self, sql: &str) -> Vec<(String, bool, bool, bool)> {
        query_as(self.pg, sql).await
    }

    /// Stops the function, checks no known secret reached the function's output or the
    /// server's statement log, and drops the test's roles (the master last: it granted the
    /// others' memberships).
    async fn finish(self) {
        let Fixture {
            pg,
            prefix,
            function,
            master,
            dbname,
            ..
        } = self;
        let output = function.stop().await;
        rotation_tests::leaks::assert_no_known_secret_in(&output, "the function's output");
        let log = pg.statement_log().expect("the statement log");
        rotation_tests::leaks::assert_no_known_secret_in(&log, "PostgreSQL's statement log");
        let mut roles: Vec<String> = query_as(
            pg,
            &format!(
                "SELECT rolname::text, false, false, false FROM pg_roles \
                 WHERE starts_with(rolname, '{prefix}') ORDER BY rolname DESC"
            ),
        )
        .await
        .into_iter()
        .map(|(role, ..)| role)
        .collect();
        roles.sort_by_key(|role| role == master.name());
        if dbname != "postgres" {
            superuser_runs(pg, &format!("DROP DATABASE {} WITH (FORCE)", q(&dbname))).await;
        }
        for role in roles {
            superuser_runs(
                pg,
                &format!("DROP OWNED BY {0} CASCADE; DROP ROLE {0}", q(&role)),
            )
            .await;
        }
    }
}

async fn query_as(pg: &Postgres, sql: &str) -> Vec<(String, bool, bool, bool)> {
    let mut su = PgConnection::connect_with(&pg.connect_options(
        pg.superuser(),
        pg.superuser_password(),
        "postgres",
    ))
    .await
    .expect("superuser login");
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut su)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
    su.close().await.ok();
    rows
}

/// A version's credentials log in to `postgres` (plaintext on a build without TLS): what the
/// tests and the crash matrix ask.
struct VersionLogins(&'static Postgres);

#[async_trait]
impl Credentials for VersionLogins {
    async fn work(&self, version: &Value) -> bool {
        let (Some(user), Some(password)) =
            (version["username"].as_str(), version["password"].as_str())
        else {
            return false;
        };
        match PgConnection::connect_with(&self.0.connect_options(user, password, "postgres")).await
        {
            Ok(connection) => {
                connection.close().await.ok();
                true
            }
            Err(_) => false,
        }
    }
}

fn failure(record: &RotationRecord) -> (&'static str, &str, &str) {
    let step = record.failure().expect("a step failed");
    match &step.invocation {
        Invocation::Failed {
            error_type,
            error_message,
        } => (step.step, error_type, error_message),
        other => panic!("expected a function error, got {other:?}"),
    }
}

/// Single user: the user changes its own password; the old one stops working.
async fn single_user_rotation_replaces_the_password(major: u32) {
    let fixture = Fixture::new(major, "single-user").await;
    let before = fixture.value("AWSCURRENT").await;
    fixture.rotate().await.expect_success();
    let current = fixture.value("AWSCURRENT").await;
    assert_eq!(current["username"], json!(fixture.user));
    assert_ne!(current["password"], before["password"]);
    assert!(fixture.logs_in(&current).await, "the new password works");
    assert!(!fixture.logs_in(&before).await, "the old password is gone");
    fixture.finish().await;
}

/// Alternating users with the RDS-like master: the master creates the clone, AWSCURRENT
/// alternates, and the credentials behind AWSPREVIOUS keep working.
async fn alternating_users_with_an_rds_like_master_alternate(major: u32) {
    let fixture = Fixture::new(major, "alternating-users").await;
    let (user, clone, master) = (&fixture.user, &fixture.clone, fixture.master.name());
    for (round, expected) in [clone, user, clone].into_iter().enumerate() {
        fixture.rotate().await.expect_success();
        let current = fixture.value("AWSCURRENT").await;
        let previous = fixture.value("AWSPREVIOUS").await;
        assert_eq!(current["username"], json!(expected), "round {round}");
        assert_ne!(previous["username"], current["username"], "round {round}");
        assert!(fixture.logs_in(&current).await, "round {round}: current");
        assert!(fixture.logs_in(&previous).await, "round {round}: previous");
    }
    // The clone is a member of the user, so it can use what the user owns.
    assert!(fixture.memberships(clone).await.contains_key(user.as_str()));
    if major >= 16 {
        // The master created the clone: the server gave it ADMIN OPTION without INHERIT or
        // SET, as on RDS.
        assert_eq!(
            fixture.memberships(master).await.get(clone.as_str()),
            Some(&(true, false, false)),
            "the master's membership in the clone it created"
        );
    }
    fixture.finish().await;
}

/// The clone receives each of the user's memberships with the same options: from PostgreSQL
/// 16, INHERIT FALSE and SET FALSE stay false (before 16, only ADMIN OPTION exists).
async fn the_clone_gets_the_users_memberships_with_their_options(major: u32) {
    let fixture = Fixture::new(major, "alternating-users").await;
    let p = &fixture.prefix;
    let (user, clone) = (q(&fixture.user), &fixture.clone);
    for group in ["readers", "auditors", "owners"] {
        fixture
            .master
            .create_group(&format!("{p}{group}"))
            .await
            .expect("the master creates a group");
    }
    let grants = if major >= 16 {
        format!(
            "GRANT {r} TO {user} WITH INHERIT FALSE, SET FALSE;
             GRANT {a} TO {user} WITH INHERIT TRUE, SET FALSE;
             GRANT {o} TO {user} WITH ADMIN TRUE, INHERIT FALSE, SET TRUE;",
            r = q(&format!("{p}readers")),
            a = q(&format!("{p}auditors")),
            o = q(&format!("{p}owners"))
        )
    } else {
        format!(
            "GRANT {r} TO {user}; GRANT {a} TO {user}; GRANT {o} TO {user} WITH ADMIN OPTION;",
            r = q(&format!("{p}readers")),
            a = q(&format!("{p}auditors")),
            o = q(&format!("{p}owners"))
        )
    };
    fixture
        .master
        .run(&grants)
        .await
        .expect("the master grants");

    fixture.rotate().await.expect_success();
    let mut expected = fixture.memberships(&fixture.user).await;
    expected.insert(fixture.user.clone(), (false, true, true));
    assert_eq!(fixture.memberships(clone).await, expected);
    if major >= 16 {
        assert_eq!(
            expected[&format!("{p}readers")],
            (false, false, false),
            "the user's own grant as made"
        );
    }
    fixture.finish().await;
}

/// A later rotation that finds a membership taken from the user takes it from the clone too,
/// and a changed option, attribute or setting changes on the clone.
async fn a_membership_taken_from_the_user_is_taken_from_the_clone(major: u32) {
    let fixture = Fixture::new(major, "alternating-users").await;
    let p = &fixture.prefix;
    let (user, clone) = (&fixture.user, &fixture.clone);
    let (readers, writers) = (format!("{p}readers"), format!("{p}writers"));
    for group in [&readers, &writers] {
        fixture.master.create_group(group).await.expect("a group");
    }
    fixture
        .master
        .run(&format!(
            "GRANT {} TO {u}; GRANT {} TO {u} WITH ADMIN OPTION;
             ALTER ROLE {u} CREATEDB CONNECTION LIMIT 5;
             ALTER ROLE {u} SET statement_timeout = '45s';
             ALTER ROLE {u} IN DATABASE postgres SET work_mem = '3MB';",
            q(&readers),
            q(&writers),
            u = q(user)
        ))
        .await
        .expect("the master grants and sets");
    // Rotation 1 makes the clone (pending) like the user; rotation 2 sets the user's password.
    for _ in 0..2 {
        fixture.rotate().await.expect_success();
    }
    assert!(fixture.memberships(clone).await.contains_key(&readers));
    assert_eq!(
        fixture.attributes(clone).await,
        "t 5 statement_timeout=45s in *, work_mem=3MB in postgres"
    );
    // The user loses a membership, and its ADMIN OPTION on the other (from 16 also INHERIT),
    // CREATEDB, its connection limit and a setting; another setting changes.
    let narrowed = if major >= 16 {
        format!(
            "GRANT {} TO {} WITH ADMIN FALSE, INHERIT FALSE",
            q(&writers),
            q(user)
        )
    } else {
        format!("REVOKE ADMIN OPTION FOR {} FROM {}", q(&writers), q(user))
    };
    fixture
        .master
        .run(&format!(
            "REVOKE {} FROM {u}; {narrowed};
             ALTER ROLE {u} NOCREATEDB CONNECTION LIMIT -1;
             ALTER ROLE {u} RESET statement_timeout;
             ALTER ROLE {u} IN DATABASE postgres SET work_mem = '4MB';",
            q(&readers),
            u = q(user)
        ))
        .await
        .expect("the master narrows the user's memberships");
    // Rotation 3: the clone is pending again, modelled on the user.
    fixture.rotate().await.expect_success();
    assert_eq!(fixture.value("AWSCURRENT").await["username"], json!(clone));
    let on_clone = fixture.memberships(clone).await;
    assert!(!on_clone.contains_key(&readers), "{on_clone:?}");
    let expected_writers = if major >= 16 {
        (false, false, true)
    } else {
        (false, true, true)
    };
    assert_eq!(
        on_clone.get(&writers),
        Some(&expected_writers),
        "{on_clone:?}"
    );
    assert_eq!(on_clone.get(user.as_str()), Some(&(false, true, true)));
    assert_eq!(
        fixture.attributes(clone).await,
        "f -1 work_mem=4MB in postgres"
    );
    assert_eq!(
        fixture.attributes(clone).await,
        fixture.attributes(user).await
    );
    fixture.finish().await;
}

/// A group the master did not create: before PostgreSQL 16 CREATEROLE lets the master grant it
/// to the clone; from 16 only ADMIN OPTION does, and the rotation stops with TargetRejected
/// naming the group and what the master needs, leaving no clone behind.
async fn a_group_the_master_did_not_create(major: u32) {
    let fixture = Fixture::new(major, "alternating-users").await;
    let foreign = format!("{}foreign", fixture.prefix);
    superuser_runs(
        fixture.pg,
        &format!(
            "CREATE ROLE {0}; GRANT {0} TO {1};",
            q(&foreign),
            q(&fixture.user)
        ),
    )
    .await;
    let record = fixture.rotate().await;
    if major < 16 {
        record.expect_success();
        assert!(fixture
            .memberships(&fixture.clone)
            .await
            .contains_key(&foreign));
    } else {
        let (step, error_type, message) = failure(&record);
        assert_eq!(
            (step, error_type),
            ("setSecret", "TargetRejected"),
            "{message}"
        );
        assert!(message.contains(&foreign), "{message}");
        assert!(message.contains("ADMIN OPTION"), "{message}");
        assert!(message.contains(fixture.master.name()), "{message}");
        let clones = fixture
            .query_as(&format!(
                "SELECT rolname::text, false, false, false FROM pg_roles WHERE rolname = '{}'",
                fixture.clone
            ))
            .await;
        assert!(clones.is_empty(), "the clone's creation was rolled back");
    }
    fixture.finish().await;
}

/// The crash matrix with `strategy`: a rotation stopped right after each of its side effects
/// converges when Secrets Manager retries it, under this server's rules for the statements.
async fn converges_after_a_crash_at_every_point(major: u32, strategy: &str) {
    let fixture = Fixture::new(major, strategy).await;
    for point in [
        points::PENDING_STORED,
        database_points::PASSWORD_SET,
        points::CURRENT_MOVED,
        points::PENDING_REMOVED,
    ] {
        let output = crash_then_converge(
            &fixture.moto,
            BINARY,
            &fixture.env,
            &fixture.arn,
            point,
            &VersionLogins(fixture.pg),
        )
        .await;
        rotation_tests::leaks::assert_no_known_secret_in(&output, "the function's output");
    }
    fixture.finish().await;
}

/// Single user's roll-back: testSecret logs in with the pending password but its query is
/// refused (EXECUTE on now() taken away in the secret's database), so the function puts the
/// `AWSCURRENT` password back and removes `AWSPENDING`.
async fn a_rejected_test_rolls_the_password_back(major: u32) {
    let fixture = Fixture::build(major, "single-user", true).await;
    let token = fixture.moto.start_rotation(&fixture.arn).await;
    for step in ["createSecret", "setSecret"] {
        let record = fixture
            .orchestrator()
            .invoke(&fixture.arn, &token, step)
            .await;
        assert!(record.invocation.clone().succeeded().is_ok(), "{step}");
    }
    let current = fixture.value("AWSCURRENT").await;
    let pending = fixture.value("AWSPENDING").await;
    assert!(!fixture.logs_in(&current).await, "setSecret changed it");
    let mut su = PgConnection::connect_with(&fixture.pg.connect_options(
        fixture.pg.superuser(),
        fixture.pg.superuser_password(),
        &fixture.dbname,
    ))
    .await
    .expect("superuser login to the test's database");
    sqlx::raw_sql("REVOKE EXECUTE ON FUNCTION pg_catalog.now() FROM PUBLIC")
        .execute(&mut su)
        .await
        .expect("REVOKE");
    su.close().await.ok();

    let record = fixture
        .orchestrator()
        .invoke(&fixture.arn, &token, "testSecret")
        .await;
    let (error_type, message) = record.invocation.failed().expect("testSecret fails");
    assert_eq!(error_type, "TargetRejected", "{message}");
    assert!(
        message.contains("rolled back") && message.contains("AWSPENDING was removed"),
        "{message}"
    );
    assert!(fixture.logs_in(&current).await, "AWSCURRENT logs in again");
    assert!(
        !fixture.logs_in(&pending).await,
        "the pending password is gone"
    );
    let labels = fixture.moto.labels(&fixture.arn).await;
    assert!(
        labels.values().flatten().all(|label| label != "AWSPENDING"),
        "{labels:?}"
    );
    fixture.finish().await;
}

/// An alternate user the operator made beforehand (through the master, as on RDS) is made like
/// the user: attributes and settings become the user's, and it is granted the user.
async fn a_pre_created_alternate_user_is_made_like_the_user(major: u32) {
    let fixture = Fixture::new(major, "alternating-users").await;
    let (user, clone) = (&fixture.user, &fixture.clone);
    fixture
        .master
        .run(&format!(
            "ALTER ROLE {u} CREATEDB CONNECTION LIMIT 9;
             ALTER ROLE {u} SET work_mem = '5MB';
             CREATE ROLE {c} LOGIN NOCREATEDB CONNECTION LIMIT 2 PASSWORD 'operator-made';
             ALTER ROLE {c} SET lock_timeout = '3s';",
            u = q(user),
            c = q(clone)
        ))
        .await
        .expect("the operator makes the clone through the master");
    fixture.rotate().await.expect_success();
    let current = fixture.value("AWSCURRENT").await;
    assert_eq!(current["username"], json!(clone));
    assert!(fixture.logs_in(&current).await);
    assert_eq!(fixture.attributes(clone).await, "t 9 work_mem=5MB in *");
    assert_eq!(
        fixture.attributes(clone).await,
        fixture.attributes(user).await
    );
    assert!(fixture.memberships(clone).await.contains_key(user.as_str()));
    fixture.finish().await;
}

/// A master with neither SUPERUSER nor CREATEROLE, holding ADMIN OPTION on the user only, may
/// grant memberships but not set another role's password. With the alternate user made by the
/// operator and its credentials stored as `AWSPREVIOUS`, each user changes its own password and
/// the rotations alternate.
async fn a_master_without_createrole_lets_each_user_change_its_own_password(major: u32) {
    let fixture = Fixture::new(major, "alternating-users").await;
    let (user, clone) = (&fixture.user, &fixture.clone);
    let weak = format!("{}weak_master", fixture.prefix);
    let weak_password = stack::random_hex(16).expect("random");
    let clone_password = stack::random_hex(16).expect("random");
    rotation_tests::leaks::remember(&weak_password);
    rotation_tests::leaks::remember(&clone_password);
    superuser_runs(
        fixture.pg,
        &format!(
            "CREATE ROLE {w} LOGIN NOSUPERUSER NOCREATEROLE PASSWORD '{}';
             GRANT {u} TO {w} WITH ADMIN OPTION;
             CREATE ROLE {c} LOGIN PASSWORD '{}';",
            // Verifiers, so that no password reaches the statement log the test checks.
            postgres_protocol::password::scram_sha_256(weak_password.as_bytes()),
            postgres_protocol::password::scram_sha_256(clone_password.as_bytes()),
            w = q(&weak),
            u = q(user),
            c = q(clone)
        ),
    )
    .await;
    let weak_arn = fixture
        .moto
        .create_secret(
            &MotoSecretsManager::unique_name("pg-weak-master"),
            &secret(fixture.pg, &weak, &weak_password, json!({})),
        )
        .await;
    // The operator points the secret at the weak master and stores the clone's credentials
    // as the version before the current one.
    let mut current = fixture.value("AWSCURRENT").await;
    current["masterarn"] = json!(weak_arn);
    let mut previous = current.clone();
    previous["username"] = json!(clone);
    previous["password"] = json!(clone_password);
    for (version, stage) in [(&current, "AWSCURRENT"), (&previous, "AWSPREVIOUS")] {
        fixture
            .moto
            .client()
            .put_secret_value()
            .secret_id(&fixture.arn)
            .secret_string(version.to_string())
            .version_stages(stage)
            .send()
            .await
            .unwrap_or_else(|error| panic!("PutSecretValue {stage}: {error}"));
    }
    assert_eq!(fixture.value("AWSPREVIOUS").await["username"], json!(clone));

    for (round, expected) in [clone, user, clone].into_iter().enumerate() {
        fixture.rotate().await.expect_success();
        let current = fixture.value("AWSCURRENT").await;
        assert_eq!(current["username"], json!(expected), "round {round}");
        assert!(fixture.logs_in(&current).await, "round {round}: current");
        let previous = fixture.value("AWSPREVIOUS").await;
        assert!(fixture.logs_in(&previous).await, "round {round}: previous");
    }
    assert!(fixture.memberships(clone).await.contains_key(user.as_str()));
    let output = fixture.function.output();
    assert!(output.contains("will change its own password"), "{output}");
    fixture.finish().await;
}

/// The suite for one server: `$module` names the version and whether it runs with TLS.
macro_rules! on_postgres {
    ($module:ident, $major:literal) => {
        mod $module {
            #[tokio::test]
            async fn single_user_rotation_replaces_the_password() {
                super::single_user_rotation_replaces_the_password($major).await;
            }

            #[tokio::test]
            async fn alternating_users_with_an_rds_like_master_alternate() {
                super::alternating_users_with_an_rds_like_master_alternate($major).await;
            }

            #[tokio::test]
            async fn the_clone_gets_the_users_memberships_with_their_options() {
                super::the_clone_gets_the_users_memberships_with_their_options($major).await;
            }

            #[tokio::test]
            async fn a_membership_taken_from_the_user_is_taken_from_the_clone() {
                super::a_membership_taken_from_the_user_is_taken_from_the_clone($major).await;
            }

            #[tokio::test]
            async fn single_user_converges_after_a_crash_at_every_point() {
                super::converges_after_a_crash_at_every_point($major, "single-user").await;
            }

            #[tokio::test]
            async fn alternating_users_converge_after_a_crash_at_every_point() {
                super::converges_after_a_crash_at_every_point($major, "alternating-users").await;
            }

            #[tokio::test]
            async fn a_rejected_test_rolls_the_password_back() {
                super::a_rejected_test_rolls_the_password_back($major).await;
            }

            #[tokio::test]
            async fn a_pre_created_alternate_user_is_made_like_the_user() {
                super::a_pre_created_alternate_user_is_made_like_the_user($major).await;
            }

            #[tokio::test]
            async fn a_master_without_createrole_lets_each_user_change_its_own_password() {
                super::a_master_without_createrole_lets_each_user_change_its_own_password($major)
                    .await;
            }

            #[tokio::test]
            async fn a_group_the_master_did_not_create_is_granted_before_16_and_refused_by_name_from_16(
            ) {
                super::a_group_the_master_did_not_create($major).await;
            }
        }
    };
}

on_postgres!(postgres_14_without_tls, 14);
on_postgres!(postgres_15_with_tls, 15);
on_postgres!(postgres_16_without_tls, 16);
on_postgres!(postgres_18_without_tls, 18);
