//! What the rotate-mysql integration tests share: accounts made by the admin, logins with the
//! stack's CA, the function under the Runtime API emulator, moto, and the checks every test
//! repeats (labels, leaks, account rows).
//!
//! Every name is unique to the test (process id and a counter), so tests run in parallel against
//! the one MariaDB and moto of the test process; each test drops what it created.
//!
//! The server runs with `skip-name-resolve`: a client on 127.0.0.1 matches the accounts for
//! `'%'`, `'127.0.0.1'` (and host patterns such as `'127.0.0.%'`), never those for
//! `'localhost'`.

// Each test binary uses part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use rotate_mysql::sql::quote_string;
use rotation_tests::leaks::assert_no_secret_form_in;
use rotation_tests::orchestrator::{Orchestrator, RotationRecord};
use rotation_tests::runtime_api::{FunctionSpec, LambdaFunction};
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack::{self, MariaDb};
use serde_json::{json, Value};
use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
use sqlx::{AssertSqlSafe, Connection, MySqlConnection};

pub const BINARY: &str = env!("CARGO_BIN_EXE_rotate-mysql");

/// The engines the function accepts for the stack's MariaDB: the dialect follows the server,
/// so a secret that says `mysql` rotates a MariaDB account just as well.
pub const ENGINES: [&str; 2] = ["mariadb", "mysql"];

static NAMES: AtomicU64 = AtomicU64::new(0);

/// A name no other test of any test process uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NAMES.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn mariadb() -> &'static MariaDb {
    stack::mariadb().await
}

pub use rotation_tests::login::Login;

fn options(db: &MariaDb, user: &str, password: &str) -> MySqlConnectOptions {
    MySqlConnectOptions::new()
        .host(db.host())
        .port(db.port())
        .username(user)
        .password(password)
        .ssl_mode(MySqlSslMode::VerifyIdentity)
        .ssl_ca(db.ca_cert_path())
}

/// Logs in over verified TLS and checks the session answers.
pub async fn login(user: &str, password: &str) -> Login {
    rotation_tests::login::mariadb(mariadb().await, user, password).await
}

/// An admin session (all privileges, with grant option; never subject to `init_connect`).
pub async fn admin() -> MySqlConnection {
    let db = mariadb().await;
    MySqlConnection::connect_with(&options(db, db.admin_user(), db.admin_password()))
        .await
        .expect("the admin logs in")
}

/// Runs statements, one at a time, as the admin.
pub async fn run_as_admin(statements: &[String]) {
    let mut connection = admin().await;
    for statement in statements {
        sqlx::raw_sql(AssertSqlSafe(statement.as_str()))
            .execute(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("admin statement failed: {error}"));
    }
    let _ = connection.close().await;
}

/// `'user'@'host'` for the admin's session (backslash escapes on).
pub fn account_name(user: &str, host: &str) -> String {
    format!(
        "{}@{}",
        quote_string(user, false),
        quote_string(host, false)
    )
}

/// A row of `mysql.user` for one account, as text: what a rotation may or may not change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub user: String,
    pub host: String,
    pub plugin: String,
    pub authentication_string: String,
    pub privileges: String,
}

/// The `mysql.user` rows of every account whose user name is in `users`, sorted.
pub async fn account_rows(users: &[String]) -> Vec<AccountRow> {
    let mut connection = admin().await;
    let mut rows = Vec::new();
    for user in users {
        let found: Vec<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT CAST(User AS CHAR), CAST(Host AS CHAR), CAST(plugin AS CHAR),
                    CAST(authentication_string AS CHAR),
                    CONCAT_WS(',', Select_priv, Insert_priv, Update_priv, Delete_priv,
                              Create_priv, Drop_priv, Grant_priv, Super_priv,
                              Create_user_priv, CAST(is_role AS CHAR))
             FROM mysql.user WHERE User = ? ORDER BY Host",
        )
        .bind(user)
        .fetch_all(&mut connection)
        .await
        .expect("mysql.user");
        rows.extend(found.into_iter().map(
            |(user, host, plugin, authentication_string, privileges)| AccountRow {
                user,
                host,
                plugin,
                authentication_string,
                privileges,
            },
        ));
    }
    let _ = connection.close().await;
    rows.sort_by(|a, b| (&a.user, &a.host).cmp(&(&b.user, &b.host)));
    rows
}

/// An application account made by the admin: a password and no privileges beyond logging in
/// (USAGE), which is all a user needs to change its own password.
pub struct AppUser {
    pub name: String,
    pub host: String,
    pub password: String,
}

impl AppUser {
    pub async fn create(name: &str, host: &str, password: &str) -> AppUser {
        run_as_admin(&[format!(
            "CREATE USER {} IDENTIFIED BY {}",
            account_name(name, host),
            quote_string(password, false)
        )])
        .await;
        AppUser {
            name: name.to_owned(),
            host: host.to_owned(),
            password: password.to_owned(),
        }
    }

    pub fn account(&self) -> String {
        account_name(&self.name, &self.host)
    }

    /// Sets the account's password as the admin (simulates drift or a restore).
    pub async fn set_password(&self, password: &str) {
        run_as_admin(&[format!(
            "SET PASSWORD FOR {} = PASSWORD({})",
            self.account(),
            quote_string(password, false)
        )])
        .await;
    }

    /// The account's `mysql.user` row.
    pub async fn row(&self) -> AccountRow {
        account_rows(std::slice::from_ref(&self.name))
            .await
            .into_iter()
            .find(|row| row.host == self.host)
            .unwrap_or_else(|| panic!("{} exists", self.account()))
    }

    pub async fn drop(self) {
        run_as_admin(&[format!("DROP USER IF EXISTS {}", self.account())]).await;
    }
}

/// A secret in the AWS template's format for `user` on the stack's MariaDB, with `engine`.
pub async fn template_secret(engine: &str, user: &str, password: &str) -> Value {
    let db = mariadb().await;
    json!({
        "engine": engine,
        "host": db.host(),
        "username": user,
        "password": password,
        "port": db.port(),
        "dbClusterIdentifier": "kept-as-is"
    })
}

/// The function under the Runtime API emulator, its secret in moto, and its environment (kept
/// to start a fresh process later).
pub struct Fixture {
    pub moto: MotoSecretsManager,
    pub function: LambdaFunction,
    pub arn: String,
    pub env: Vec<(String, String)>,
}

impl Fixture {
    /// The secret, and the function with `CA_BUNDLE` = the stack's CA plus `extra_env`.
    pub async fn start(secret: &Value, extra_env: &[(&str, &str)]) -> Fixture {
        let db = mariadb().await;
        let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
        let arn = moto
            .create_secret(&unique("mysql-secret"), &secret.to_string())
            .await;
        let mut env = moto.function_environment();
        env.push((
            "CA_BUNDLE".to_owned(),
            db.ca_cert_path().display().to_string(),
        ));
        for (name, value) in extra_env {
            env.push(((*name).to_owned(), (*value).to_owned()));
        }
        let function = start_function(&env).await;
        Fixture {
            moto,
            function,
            arn,
            env,
        }
    }

    pub fn orchestrator(&self) -> Orchestrator<'_> {
        Orchestrator {
            moto: &self.moto,
            function: &self.function,
        }
    }

    pub async fn rotate(&self) -> RotationRecord {
        self.orchestrator().rotate(&self.arn).await
    }

    pub async fn labels(&self) -> BTreeMap<String, Vec<String>> {
        self.moto.labels(&self.arn).await
    }

    /// The VersionId holding `label`.
    pub async fn version_with(&self, label: &str) -> Option<String> {
        self.labels()
            .await
            .into_iter()
            .find(|(_, labels)| labels.iter().any(|l| l == label))
            .map(|(id, _)| id)
    }

    pub async fn value_at(&self, stage: &str) -> Value {
        self.moto
            .value_at(&self.arn, stage)
            .await
            .unwrap_or_else(|| panic!("{stage} has a value"))
    }

    pub async fn password_at(&self, stage: &str) -> String {
        self.value_at(stage).await["password"]
            .as_str()
            .expect("a password")
            .to_owned()
    }

    pub fn output(&self) -> String {
        self.function.output()
    }

    pub async fn stop(self) {
        self.function.stop().await;
    }
}

async fn start_function(env: &[(String, String)]) -> LambdaFunction {
    LambdaFunction::start(FunctionSpec::new(BINARY).env(env.iter().cloned()))
        .await
        .expect("the function starts")
}

/// After a successful rotation: `new` is AWSCURRENT alone, `old` AWSPREVIOUS alone, and no
/// version is AWSPENDING.
pub fn assert_rotated(labels: &BTreeMap<String, Vec<String>>, new: &str, old: &str) {
    assert_eq!(
        labels.get(new),
        Some(&vec!["AWSCURRENT".to_owned()]),
        "{labels:?}"
    );
    assert_eq!(
        labels.get(old),
        Some(&vec!["AWSPREVIOUS".to_owned()]),
        "{labels:?}"
    );
    assert!(
        labels
            .values()
            .all(|l| !l.iter().any(|l| l == "AWSPENDING")),
        "no AWSPENDING left: {labels:?}"
    );
}

/// The shared leak check, also looking for each secret quoted for SQL in either mode.
pub fn assert_no_secret_in(text: &str, secrets: &[String], what: &str) {
    assert_no_secret_form_in(text, secrets, what, |secret| {
        [quote_string(secret, false), quote_string(secret, true)]
            .iter()
            .map(|quoted| quoted.trim_matches('\'').to_owned())
            .collect()
    });
}

/// The server's error log, for leak checks.
pub async fn server_log() -> String {
    let path = mariadb().await.log_path();
    String::from_utf8_lossy(&std::fs::read(path).expect("the server log")).into_owned()
}
