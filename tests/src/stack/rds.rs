//! A master user like Amazon RDS's on any PostgreSQL of the stack: not a superuser, but
//! `CREATEROLE`, `CREATEDB` and a member of an `rds_superuser`-like role. The application users
//! it creates are its own, as on RDS: from PostgreSQL 16 the server then grants the master
//! `ADMIN OPTION, INHERIT FALSE, SET FALSE` on each, which is what lets a CREATEROLE role
//! manage a role there at all.
//!
//! Passwords reach the server only as SCRAM verifiers made here, so the statement log never
//! holds a plaintext password.

use std::fmt;

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::postgres::Postgres;

/// The `rds_superuser`-like group every such master belongs to; made once per server.
pub const RDS_SUPERUSER: &str = "rds_superuser_like";

/// A non-superuser master of `server`, like RDS's.
pub struct RdsMaster {
    server: &'static Postgres,
    name: String,
    password: String,
}

// The password stays out of Debug output.
impl fmt::Debug for RdsMaster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RdsMaster")
            .field("name", &self.name)
            .field("major", &self.server.major())
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `name` as a PostgreSQL identifier.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The SCRAM-SHA-256 verifier of `password` as a SQL literal (base64 and `$:`, nothing to
/// escape).
fn verifier_literal(password: &str) -> String {
    format!(
        "'{}'",
        postgres_protocol::password::scram_sha_256(password.as_bytes())
    )
}

/// Runs `sql` (any number of statements) as the superuser of `server`.
pub async fn run_as_superuser(server: &Postgres, sql: &str) -> Result<(), sqlx::Error> {
    let mut connection = PgConnection::connect_with(&server.connect_options(
        server.superuser(),
        server.superuser_password(),
        "postgres",
    ))
    .await?;
    let outcome = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut connection)
        .await;
    let _ = connection.close().await;
    outcome.map(|_| ())
}

impl RdsMaster {
    /// Creates the master `name` with `password` on `server` (as its superuser), and the
    /// `rds_superuser`-like group if this server lacks it.
    pub async fn create(
        server: &'static Postgres,
        name: &str,
        password: &str,
    ) -> Result<RdsMaster, sqlx::Error> {
        // Parallel tests may race to make the group: whoever loses sees duplicate_object or a
        // unique violation on pg_authid, and the group exists either way.
        run_as_superuser(
            server,
            &format!(
                "DO $$ BEGIN CREATE ROLE {group} NOLOGIN; \
                   GRANT pg_monitor, pg_signal_backend TO {group}; \
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
                group = quote_identifier(RDS_SUPERUSER)
            ),
        )
        .await?;
        run_as_superuser(
            server,
            &format!(
                "CREATE ROLE {} LOGIN NOSUPERUSER CREATEROLE CREATEDB PASSWORD {} IN ROLE {}",
                quote_identifier(name),
                verifier_literal(password),
                quote_identifier(RDS_SUPERUSER)
            ),
        )
        .await?;
        Ok(RdsMaster {
            server,
            name: name.to_owned(),
            password: password.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn server(&self) -> &'static Postgres {
        self.server
    }

    /// A session as the master, on database `postgres`.
    pub async fn connect(&self) -> Result<PgConnection, sqlx::Error> {
        PgConnection::connect_with(&self.server.connect_options(
            &self.name,
            &self.password,
            "postgres",
        ))
        .await
    }

    /// Runs `sql` (any number of statements) as the master.
    pub async fn run(&self, sql: &str) -> Result<(), sqlx::Error> {
        let mut connection = self.connect().await?;
        let outcome = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut connection)
            .await;
        let _ = connection.close().await;
        outcome.map(|_| ())
    }

    /// Creates the login `user` with `password` as the master, as an application user is made
    /// on RDS (from PostgreSQL 16 the master then holds ADMIN OPTION on it, without INHERIT or
    /// SET).
    pub async fn create_user(&self, user: &str, password: &str) -> Result<(), sqlx::Error> {
        self.run(&format!(
            "CREATE ROLE {} LOGIN PASSWORD {}",
            quote_identifier(user),
            verifier_literal(password)
        ))
        .await
    }

    /// Creates the group `role` (NOLOGIN) as the master, which so holds ADMIN OPTION on it.
    pub async fn create_group(&self, role: &str) -> Result<(), sqlx::Error> {
        self.run(&format!("CREATE ROLE {} NOLOGIN", quote_identifier(role)))
            .await
    }
}
