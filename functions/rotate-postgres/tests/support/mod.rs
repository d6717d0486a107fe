//! What the rotate-postgres integration tests share: roles made by the superuser, logins with
//! the stack's CA, the function under the Runtime API emulator, moto, and the checks every test
//! repeats (labels, leaks).
//!
//! Every name is unique to the test (process id and a counter), so tests run in parallel against
//! the one PostgreSQL and moto of the test process; each test drops what it created.

// Each test binary uses part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use rotate_postgres::sql::{quote_identifier, quote_literal, scram_verifier};
use rotation_tests::orchestrator::{Orchestrator, RotationRecord};
use rotation_tests::runtime_api::{FunctionSpec, LambdaFunction};
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack::{self, Postgres};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

pub const BINARY: &str = env!("CARGO_BIN_EXE_rotate-postgres");

static NAMES: AtomicU64 = AtomicU64::new(0);

/// A name no other test of any test process uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NAMES.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn postgres() -> &'static Postgres {
    stack::postgres().await
}

pub use rotation_tests::login::Login;

fn options(pg: &Postgres, user: &str, password: &str) -> PgConnectOptions {
    PgConnectOptions::new_without_pgpass()
        .host(pg.host())
        .port(pg.port())
        .username(user)
        .password(password)
        .database("postgres")
        .ssl_mode(PgSslMode::VerifyFull)
        .ssl_root_cert(pg.ca_cert_path())
}

/// Logs in over verified TLS and checks the session answers.
pub async fn login(user: &str, password: &str) -> Login {
    rotation_tests::login::postgres(postgres().await, user, password).await
}

/// A superuser session.
pub async fn superuser() -> PgConnection {
    let pg = postgres().await;
    PgConnection::connect_with(&options(pg, pg.superuser(), pg.superuser_password()))
        .await
        .expect("the superuser logs in")
}

/// Runs statements as the superuser.
pub async fn run_as_superuser(sql: &str) {
    let mut connection = superuser().await;
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("superuser statement failed: {error}"));
    let _ = connection.close().await;
}

/// Runs one statement as the superuser in `database`.
pub async fn run_as_superuser_in(database: &str, sql: &str) {
    let pg = postgres().await;
    let mut connection = PgConnection::connect_with(
        &options(pg, pg.superuser(), pg.superuser_password()).database(database),
    )
    .await
    .expect("the superuser logs in");
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("superuser statement failed: {error}"));
    let _ = connection.close().await;
}

/// Rows of a query as text (`SELECT row_to_json(…)::text …`), for before/after snapshots; `$1`
/// is bound to `names` as `text[]`.
pub async fn text_rows(sql: &str, names: &[String]) -> Vec<String> {
    let mut connection = superuser().await;
    let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(names.to_vec())
        .fetch_all(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("snapshot query failed: {error}"));
    let _ = connection.close().await;
    rows
}

/// An application role made by the superuser: LOGIN, a password (stored as a SCRAM verifier
/// made here, so even the test's own passwords never reach the server in clear) and a table it
/// owns with one row.
pub struct AppRole {
    pub name: String,
    pub password: String,
    pub table: String,
}

impl AppRole {
    pub async fn create(name: &str, password: &str) -> AppRole {
        let table = unique("owned_table");
        let role = quote_identifier(name);
        let verifier = scram_verifier(&SecretString::from(password.to_owned()));
        run_as_superuser(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD {};
             CREATE TABLE public.{table} (note text);
             INSERT INTO public.{table} VALUES ('kept');
             ALTER TABLE public.{table} OWNER TO {role};",
            quote_literal(verifier.expose_secret()),
            table = quote_identifier(&table),
        ))
        .await;
        AppRole {
            name: name.to_owned(),
            password: password.to_owned(),
            table,
        }
    }

    /// Sets the role's password as the superuser (simulates drift).
    pub async fn set_password(&self, password: &str) {
        let verifier = scram_verifier(&SecretString::from(password.to_owned()));
        run_as_superuser(&format!(
            "ALTER ROLE {} PASSWORD {}",
            quote_identifier(&self.name),
            quote_literal(verifier.expose_secret())
        ))
        .await;
    }

    /// Reads the owned table as the role: the row is still there and the role still owns it.
    pub async fn read_table(&self, password: &str) -> Vec<String> {
        let pg = postgres().await;
        let mut connection = PgConnection::connect_with(&options(pg, &self.name, password))
            .await
            .unwrap_or_else(|error| panic!("{} logs in: {error}", self.name));
        let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT note FROM public.{}",
            quote_identifier(&self.table)
        )))
        .fetch_all(&mut connection)
        .await
        .expect("the role reads its table");
        let _ = connection.close().await;
        rows
    }

    pub async fn drop(self) {
        run_as_superuser(&format!(
            "DROP TABLE IF EXISTS public.{}; DROP ROLE IF EXISTS {};",
            quote_identifier(&self.table),
            quote_identifier(&self.name)
        ))
        .await;
    }
}

/// A secret in the AWS template's format for `user` on the stack's PostgreSQL.
pub async fn template_secret(user: &str, password: &str) -> Value {
    let pg = postgres().await;
    json!({
        "engine": "postgres",
        "host": pg.host(),
        "username": user,
        "password": password,
        "port": pg.port(),
        "dbname": "postgres"
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
        let pg = postgres().await;
        let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
        let arn = moto
            .create_secret(&unique("pg-secret"), &secret.to_string())
            .await;
        let mut env = moto.function_environment();
        env.push((
            "CA_BUNDLE".to_owned(),
            pg.ca_cert_path().display().to_string(),
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

    /// Kills the process and starts a new one with the same configuration: a cold start.
    pub async fn restart(self) -> Fixture {
        let Fixture {
            moto,
            function,
            arn,
            env,
        } = self;
        function.stop().await;
        let function = start_function(&env).await;
        Fixture {
            moto,
            function,
            arn,
            env,
        }
    }

    pub fn output(&self) -> String {
        self.function.output()
    }

    pub async fn stop(self) {
        self.function.stop().await;
        assert_no_known_secret_in_server_log().await;
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

#[allow(unused_imports)] // Not every suite checks a text of its own.
pub use rotation_tests::leaks::assert_no_secret_in;

/// The part of the server log written after `offset` bytes.
/// PostgreSQL logs every statement (`log_statement = all`): no password, key or token any test
/// has seen may be in it.
pub async fn assert_no_known_secret_in_server_log() {
    rotation_tests::leaks::assert_no_known_secret_in(
        &server_log_since(0).await,
        "PostgreSQL's statement log",
    );
}

pub async fn server_log_since(offset: usize) -> String {
    let log = postgres().await.statement_log().expect("the server log");
    assert!(offset <= log.len(), "the server log only grows");
    let mut start = offset;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    log[start..].to_owned()
}

pub async fn server_log_len() -> usize {
    postgres()
        .await
        .statement_log()
        .expect("the server log")
        .len()
}
