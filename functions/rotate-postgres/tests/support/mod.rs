//! PostgreSQL as the conformance suite drives it (`rotation_tests::conformance`), and what the
//! rotate-postgres tests of their own share: superuser sessions and row snapshots.
//!
//! Roles are made by the superuser with a SCRAM verifier computed here, so even the tests' own
//! passwords never reach the server's statement log (`log_statement = all`) in clear.

// Each test binary uses part of this module.
#![allow(dead_code)]

use async_trait::async_trait;
use rotate_postgres::sql::{quote_identifier, quote_literal, scram_verifier};
use rotation::crash::points;
use rotation_database::crash_points as database_points;
use rotation_tests::conformance::{DatabaseUnderTest, Server};
use rotation_tests::hostile::BadSetting;
use rotation_tests::login::Login;
use rotation_tests::stack;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

pub const BINARY: &str = env!("CARGO_BIN_EXE_rotate-postgres");

/// The stack's PostgreSQL 15 and the `rotate-postgres` binary.
pub struct Postgres;

/// `'…'` holding the SCRAM verifier of `password`.
fn verifier(password: &str) -> String {
    quote_literal(scram_verifier(&SecretString::from(password.to_owned())).expose_secret())
}

/// The table `create_user` makes for `role`: a name derived from the role's, short enough for
/// any role name (FNV-1a, not for security, only to keep names apart).
fn owned_table(role: &str) -> String {
    let hash = role.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    quote_identifier(&format!("owned_{hash:016x}"))
}

#[async_trait]
impl DatabaseUnderTest for Postgres {
    fn function(&self) -> &'static str {
        "rotate-postgres"
    }
    fn binary(&self) -> &'static str {
        BINARY
    }
    fn engines(&self) -> &'static [&'static str] {
        &["postgres"]
    }
    fn foreign_engine(&self) -> &'static str {
        "mysql"
    }
    fn database_name(&self, _engine: &str) -> &'static str {
        "PostgreSQL"
    }
    fn test_database_name(&self) -> &'static str {
        "PostgreSQL"
    }
    fn verified_tls_mode(&self) -> &'static str {
        "verify-full"
    }
    fn password_statement(&self) -> &'static str {
        "ALTER ROLE"
    }
    fn secret_fields(&self) -> Value {
        json!({"dbname": "postgres"})
    }
    fn environment(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    fn bad_settings(&self) -> Vec<BadSetting> {
        Vec::new()
    }
    fn alternating_crash_points(&self) -> &'static [&'static str] {
        &[
            points::PENDING_STORED,
            database_points::PASSWORD_SET,
            points::CURRENT_MOVED,
            points::PENDING_REMOVED,
        ]
    }

    async fn server(&self) -> Server {
        let pg = stack::postgres().await;
        Server {
            host: pg.host(),
            ip: pg.ip(),
            port: pg.port(),
            ca_cert: pg.ca_cert_path().to_owned(),
            admin: pg.superuser(),
            admin_password: pg.superuser_password().to_owned(),
        }
    }

    /// LOGIN, a password, and a table the role owns with one row.
    async fn create_user(&self, name: &str, password: &str) {
        let role = quote_identifier(name);
        let table = owned_table(name);
        run_as_superuser(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD {};
             CREATE TABLE public.{table} (note text);
             INSERT INTO public.{table} VALUES ('kept');
             ALTER TABLE public.{table} OWNER TO {role};",
            verifier(password),
        ))
        .await;
    }

    async fn set_password(&self, name: &str, password: &str) {
        let role = quote_identifier(name);
        run_as_superuser(&format!(
            "ALTER ROLE {role} PASSWORD {}",
            verifier(password)
        ))
        .await;
    }

    async fn drop_user(&self, name: &str) {
        run_as_superuser(&format!(
            "DROP TABLE IF EXISTS public.{}; DROP ROLE IF EXISTS {};",
            owned_table(name),
            quote_identifier(name)
        ))
        .await;
    }

    /// A non-superuser WITH CREATEROLE holding ADMIN OPTION on the user (the RDS master's
    /// situation).
    async fn create_master(&self, user: &str, master: &str, password: &str) {
        run_as_superuser(&format!(
            "CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}; GRANT {} TO {} WITH ADMIN OPTION;",
            quote_identifier(master),
            verifier(password),
            quote_identifier(user),
            quote_identifier(master),
        ))
        .await;
    }

    async fn drop_master(&self, user: &str, master: &str) {
        run_as_superuser(&format!(
            "DROP ROLE IF EXISTS {}; DROP ROLE IF EXISTS {};",
            quote_identifier(&format!("{user}_clone")),
            quote_identifier(master)
        ))
        .await;
    }

    async fn login(&self, user: &str, password: &str) -> Login {
        login(user, password).await
    }

    /// Attributes and settings, memberships either way, and the tables each role owns with
    /// their privileges.
    async fn privileges(&self, users: &[String]) -> Vec<String> {
        let mut rows = text_rows(
            "SELECT row_to_json(r)::text FROM (
                 SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
                        rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil, rolconfig
                 FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname) r",
            users,
        )
        .await;
        rows.extend(
            text_rows(
                "SELECT row_to_json(r)::text FROM (
                     SELECT g.rolname AS granted, m.rolname AS member, am.admin_option
                     FROM pg_auth_members am
                     JOIN pg_roles g ON g.oid = am.roleid
                     JOIN pg_roles m ON m.oid = am.member
                     WHERE g.rolname = ANY($1) OR m.rolname = ANY($1)
                     ORDER BY 1, 2) r",
                users,
            )
            .await,
        );
        rows.extend(
            text_rows(
                "SELECT row_to_json(r)::text FROM (
                     SELECT c.relname, pg_get_userbyid(c.relowner) AS owner,
                            c.relacl::text AS acl
                     FROM pg_class c
                     WHERE pg_get_userbyid(c.relowner) = ANY($1) AND c.relkind = 'r'
                     ORDER BY 1) r",
                users,
            )
            .await,
        );
        rows
    }

    async fn create_database(&self, _user: &str, database: &str) {
        run_as_superuser(&format!("CREATE DATABASE {}", quote_identifier(database))).await;
    }

    /// testSecret's query (`SELECT now()`) is no longer executable in the database.
    async fn take_away_database(&self, _user: &str, database: &str) {
        run_as_superuser_in(
            database,
            "REVOKE EXECUTE ON FUNCTION pg_catalog.now() FROM PUBLIC",
        )
        .await;
    }

    async fn drop_database(&self, database: &str) {
        run_as_superuser(&format!("DROP DATABASE {}", quote_identifier(database))).await;
    }

    /// The statement log's length: every login (`log_connections`) and every refused password
    /// appears there under the role's name.
    async fn mark_logins(&self) -> u64 {
        server_log_len().await as u64
    }

    async fn logins_seen(&self, user: &str, mark: u64) -> bool {
        let offset = usize::try_from(mark).expect("a log offset");
        server_log_since(offset).await.contains(user)
    }

    async fn server_log(&self) -> String {
        server_log_since(0).await
    }
}

/// Logs in over verified TLS and checks the session answers.
pub async fn login(user: &str, password: &str) -> Login {
    rotation_tests::login::postgres(stack::postgres().await, user, password).await
}

/// A superuser session in `database`.
pub async fn superuser_in(database: &str) -> PgConnection {
    let pg = stack::postgres().await;
    let url = pg.url(pg.superuser(), pg.superuser_password(), database);
    PgConnection::connect(&url)
        .await
        .expect("the superuser logs in")
}

pub async fn superuser() -> PgConnection {
    superuser_in("postgres").await
}

/// Runs statements as the superuser.
pub async fn run_as_superuser(sql: &str) {
    run_as_superuser_in("postgres", sql).await;
}

/// Runs statements as the superuser in `database`.
pub async fn run_as_superuser_in(database: &str, sql: &str) {
    let mut connection = superuser_in(database).await;
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

/// The part of the server log written after `offset` bytes.
pub async fn server_log_since(offset: usize) -> String {
    let log = stack::postgres()
        .await
        .statement_log()
        .expect("the server log");
    assert!(offset <= log.len(), "the server log only grows");
    let mut start = offset;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    log[start..].to_owned()
}

pub async fn server_log_len() -> usize {
    server_log_since(0).await.len()
}
