//! PostgreSQL and Aurora PostgreSQL as a [`rotation_database::Engine`]: how to reach a server,
//! how to read its errors, and the statements of its dialect. The strategies are
//! `rotation_database`'s.

use async_trait::async_trait;
use rotation::password::POSTGRES_EXCLUDED_CHARACTERS;
use rotation::TargetError;
use rotation_database::{
    DatabaseSecret, Engine, EngineFamily, NameLimit, PasswordSet, PreviousWording,
    ServerErrorClass, Transport,
};
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::PgConnection;

use crate::{alternate, sql};

/// The `engine` values and defaults of AWS's PostgreSQL templates.
pub const POSTGRES: EngineFamily = EngineFamily {
    engines: &["postgres", "aurora-postgresql"],
    name: "postgres",
    default_port: 5432,
    default_dbname: Some("postgres"),
    default_excluded_characters: POSTGRES_EXCLUDED_CHARACTERS,
};

/// Shown to the server as `application_name` (pg_stat_activity, the server log).
const APPLICATION_NAME: &str = "rotate-postgres";

/// SQLSTATEs that mean the server refused these credentials: invalid authorization
/// specification (no such role, pg_hba.conf), invalid password, no such database.
const REJECTED_STATES: [&str; 3] = ["28000", "28P01", "3D000"];

/// SQLSTATE classes after which a later attempt may succeed, for a login or a statement alike:
/// connection exception, transaction rollback (serialization failure, deadlock), insufficient
/// resources (too many connections), operator intervention (shutdown, starting up, query
/// cancelled), system error, internal error.
const TRANSIENT_CLASSES: [&str; 6] = ["08", "40", "53", "57", "58", "XX"];

/// The PostgreSQL engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct Postgres;

/// A role, as `current_user` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role(pub String);

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[async_trait]
impl Engine for Postgres {
    type Connection = PgConnection;
    type Account = Role;

    const VERIFIED_TLS: &'static str = "verify-full";
    const PLAINTEXT_AFTER_FALLBACK: &'static str = "disabled, after verify-full failed";
    const PROBE: &'static str = "SELECT NOW()";

    fn family(&self) -> &'static EngineFamily {
        &POSTGRES
    }

    fn server_name(&self, _engine: &str) -> &'static str {
        "PostgreSQL"
    }

    fn name_limit(&self, _engine: &str) -> NameLimit {
        NameLimit::Bytes(sql::MAX_ROLE_NAME_BYTES)
    }

    fn previous_wording(&self, _engine: &str) -> PreviousWording {
        // The AWS PostgreSQL template's texts.
        PreviousWording {
            user: "previous valid user",
            host: "current previous valid",
        }
    }

    fn connect_options(
        &self,
        secret: &DatabaseSecret,
        transport: Transport,
        ca_pem: Option<&[u8]>,
    ) -> PgConnectOptions {
        // `new_without_pgpass`: a password file in the sandbox must never stand in for the
        // secret's password. Every field that matters is set explicitly below.
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(&secret.host)
            .port(secret.port)
            .username(&secret.username)
            .password(secret.password.expose_secret())
            .application_name(APPLICATION_NAME);
        if let Some(dbname) = &secret.dbname {
            options = options.database(dbname);
        }
        match (transport, ca_pem) {
            (Transport::Plaintext, _) => options.ssl_mode(PgSslMode::Disable),
            (Transport::VerifiedTls, None) => options.ssl_mode(PgSslMode::VerifyFull),
            (Transport::VerifiedTls, Some(pem)) => options
                .ssl_mode(PgSslMode::VerifyFull)
                .ssl_root_cert_from_pem(pem.to_vec()),
        }
    }

    async fn run(&self, connection: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
        rotation_database::connection::run_batch(connection, sql).await
    }

    fn classify(&self, error: &dyn sqlx::error::DatabaseError) -> (ServerErrorClass, String) {
        let code = error.code();
        let class = match code.as_deref() {
            Some(code) if REJECTED_STATES.contains(&code) => ServerErrorClass::CredentialsRejected,
            Some(code)
                if TRANSIENT_CLASSES
                    .iter()
                    .any(|class| code.starts_with(class)) =>
            {
                ServerErrorClass::Transient
            }
            _ => ServerErrorClass::Refused,
        };
        let message = match code {
            Some(code) => format!("{} (SQLSTATE {code})", error.message()),
            None => error.message().to_owned(),
        };
        (class, message)
    }

    async fn logged_in_as(&self, connection: &mut PgConnection) -> Result<Role, TargetError> {
        sql::within_timeout(
            "reading current_user",
            sqlx::query_scalar::<_, String>("SELECT current_user::text")
                .persistent(false)
                .fetch_one(connection),
        )
        .await
        .map(Role)
    }

    fn user_of<'a>(&self, account: &'a Role) -> &'a str {
        &account.0
    }

    /// `ALTER ROLE … PASSWORD` with a verifier computed here: PostgreSQL needs no old password.
    async fn set_own_password(
        &self,
        connection: &mut PgConnection,
        user: &str,
        new: &SecretString,
        _old: &SecretString,
    ) -> Result<(), TargetError> {
        sql::set_password(connection, user, new).await
    }

    async fn make_alternate_like(
        &self,
        master: &mut PgConnection,
        model: &Role,
        alternate: &str,
        password: &SecretString,
    ) -> Result<PasswordSet, TargetError> {
        alternate::make_like(master, &model.0, alternate, password).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rotation::SecretDocument;
    use rotation_database::connection::statement_error;
    use rotation_database::{Connector, LoginFailure, TlsMode};
    use std::sync::Arc;
    use std::time::Duration;

    fn secret(ssl: &str) -> DatabaseSecret {
        let json = format!(
            r#"{{"engine":"postgres","host":"127.0.0.1","port":1,"username":"app","password":"pw-s3cret"{ssl}}}"#
        );
        let document = SecretDocument::parse(&json).expect("JSON");
        DatabaseSecret::from_document(&document, &POSTGRES, "test").expect("valid")
    }

    #[test]
    fn a_network_failure_is_unreachable_and_a_refusal_is_rejected() {
        let io = statement_error(
            &Postgres,
            "setting the password of role app",
            &sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        );
        assert_eq!(io.error_type(), "TargetUnreachable");
        assert!(io.message.starts_with("setting the password of role app: "));
        let other = statement_error(&Postgres, "reading", &sqlx::Error::RowNotFound);
        assert_eq!(other.error_type(), "TargetRejected");
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_the_error_never_shows_the_password() {
        let connector = Connector::new(
            Arc::new(Postgres),
            TlsMode::Prefer,
            None,
            Duration::from_secs(2),
        )
        .expect("connector");
        let error = connector
            .connect(&secret(""))
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(error.kind, LoginFailure::Unreachable);
        assert_eq!(error.tls, Postgres::PLAINTEXT_AFTER_FALLBACK);
        assert!(error.message.contains("verify-full attempt"), "{error}");
        assert!(!error.to_string().contains("pw-s3cret"));
        assert!(!format!("{error:?}").contains("pw-s3cret"));

        let error = connector
            .connect(&secret(r#","ssl":"FALSE""#))
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(error.tls, rotation_database::connection::TLS_DISABLED);
        let error = connector
            .connect(&secret(r#","ssl":true"#))
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(
            error.tls,
            Postgres::VERIFIED_TLS,
            "ssl true never falls back"
        );
    }

    #[test]
    fn a_missing_or_empty_ca_bundle_is_a_configuration_error() {
        let missing = Connector::new(
            Arc::new(Postgres),
            TlsMode::VerifyFull,
            Some("/no/such/ca.pem".into()),
            Duration::from_secs(1),
        )
        .expect_err("missing");
        assert_eq!(missing.variable, "CA_BUNDLE");
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").expect("write");
        let error = Connector::new(
            Arc::new(Postgres),
            TlsMode::VerifyFull,
            Some(empty),
            Duration::from_secs(1),
        )
        .expect_err("no certificate");
        assert!(error.problem.contains("no PEM certificate"), "{error:?}");
    }
}
