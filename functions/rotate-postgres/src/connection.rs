//! Logging in to PostgreSQL with one version's credentials: verified TLS by default, a bounded
//! time per attempt, and errors that say who tried to log in where, how, and what the server
//! answered (never the password).
//!
//! | secret `ssl`              | `TLS_MODE=verify-full` (default) | `TLS_MODE=prefer`                      |
//! |---------------------------|----------------------------------|----------------------------------------|
//! | `false` / `"false"`       | plaintext                        | plaintext                              |
//! | `true` / `"true"`         | verify-full                      | verify-full                            |
//! | absent or anything else   | verify-full, no fall-back        | verify-full, then plaintext (WARN log) |

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rotation::config::ConfigError;
pub use rotation::database::login::{host_and_port, LoginError, LoginFailure, TLS_DISABLED};
use rotation::database::login::{Login, LoginSettings, TlsLabels};
use rotation::database::tunnel::Tunnel;
use rotation::database::DatabaseSecret;
use rotation::TargetError;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::config::TlsMode;

/// The TLS modes a login can use, as they appear in logs and errors (and [`TLS_DISABLED`]).
pub const TLS_VERIFY_FULL: &str = "verify-full";
/// The plaintext retry of `TLS_MODE=prefer`, after the verified TLS attempt failed.
pub const TLS_DISABLED_AFTER_FALLBACK: &str = "disabled, after verify-full failed";

const TLS_LABELS: TlsLabels = TlsLabels {
    verified: TLS_VERIFY_FULL,
    after_fallback: TLS_DISABLED_AFTER_FALLBACK,
};

/// Shown to the server as `application_name` (pg_stat_activity, the server log).
const APPLICATION_NAME: &str = "rotate-postgres";

/// Logs in to PostgreSQL. Built once at start-up: the CA bundle is read here, once.
#[derive(Clone)]
pub struct Connector(LoginSettings);

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Connector {
    pub fn new(
        tls_mode: TlsMode,
        ca_bundle: Option<PathBuf>,
        connect_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        LoginSettings::new(tls_mode, ca_bundle, connect_timeout).map(Connector)
    }

    pub fn tls_mode(&self) -> TlsMode {
        self.0.tls_mode()
    }

    pub fn connect_timeout(&self) -> Duration {
        self.0.connect_timeout()
    }

    /// Logs in with one version's credentials, with TLS as the secret's `ssl` and `TLS_MODE`
    /// say (see the module's table). Logs at INFO which TLS mode the login used.
    pub async fn connect(&self, secret: &DatabaseSecret) -> Result<PgConnection, LoginError> {
        self.login(secret).await.map(|(connection, _)| connection)
    }

    /// [`Connector::connect`], also saying which TLS mode the login used.
    pub async fn login(
        &self,
        secret: &DatabaseSecret,
    ) -> Result<(PgConnection, &'static str), LoginError> {
        self.0
            .login(secret, TLS_LABELS, |tls| self.attempt(secret, tls))
            .await
    }

    /// Logs in, runs `SELECT NOW()` and logs out: proof that the credentials work.
    pub async fn verify_login(&self, secret: &DatabaseSecret) -> Result<(), LoginError> {
        let (mut connection, tls) = self.login(secret).await?;
        let limit = self.connect_timeout();
        let queried = tokio::time::timeout(
            limit,
            sqlx::raw_sql("SELECT NOW()").execute(&mut connection),
        )
        .await;
        let result = match queried {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(login_error(secret, tls, &error)),
            Err(_) => Err(LoginError::timeout(secret, tls, limit, "SELECT NOW()")),
        };
        close(connection).await;
        result
    }

    /// One connection attempt with the given TLS mode, within the connect timeout.
    async fn attempt(
        &self,
        secret: &DatabaseSecret,
        tls: &'static str,
    ) -> Result<(PgConnection, &'static str), LoginError> {
        let options = self.options(secret, tls);
        let connecting = async {
            // The TCP leg with TCP_NODELAY, which sqlx 0.9.0 leaves off (see the tunnel's docs);
            // the driver reaches it as the server's Unix socket `.s.PGSQL.<port>`.
            let socket = format!(".s.PGSQL.{}", secret.port);
            let tunnel = Tunnel::open(&secret.host, secret.port, &socket)
                .await
                .map_err(sqlx::Error::Io)?;
            let connection = PgConnection::connect_with(&options.socket(tunnel.dir())).await?;
            tunnel.keep();
            Ok::<_, sqlx::Error>(connection)
        };
        self.0
            .attempt(secret, tls, TLS_LABELS, connecting, login_error)
            .await
    }

    fn options(&self, secret: &DatabaseSecret, tls: &'static str) -> PgConnectOptions {
        // `new_without_pgpass`: a password file in the sandbox must never stand in for the
        // secret's password. Every field that matters is set explicitly below.
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(&secret.host)
            .port(secret.port)
            .username(&secret.username)
            .password(secret.password.expose_secret())
            .application_name(APPLICATION_NAME)
            // sqlx logs statements at DEBUG and slow ones at WARN; `ALTER ROLE … PASSWORD`
            // holds a verifier, which stays out of the function's logs at every level.
            .disable_statement_logging();
        if let Some(dbname) = &secret.dbname {
            options = options.database(dbname);
        }
        if tls == TLS_VERIFY_FULL {
            options = options.ssl_mode(PgSslMode::VerifyFull);
            if let Some(pem) = self.0.ca_pem() {
                options = options.ssl_root_cert_from_pem(pem.to_vec());
            }
        } else {
            options = options.ssl_mode(PgSslMode::Disable);
        }
        options
    }
}

#[async_trait::async_trait]
impl Login for Connector {
    type Connection = PgConnection;

    async fn login_as(&self, secret: &DatabaseSecret) -> Result<PgConnection, LoginError> {
        self.connect(secret).await
    }

    /// `ALTER ROLE … PASSWORD` with a verifier computed here: PostgreSQL needs no old password.
    async fn set_own_password(
        &self,
        connection: &mut PgConnection,
        user: &str,
        new: &SecretString,
        _old: &SecretString,
    ) -> Result<(), TargetError> {
        crate::sql::set_password(connection, user, new).await
    }

    async fn log_out(&self, connection: PgConnection) {
        close(connection).await;
    }
}

async fn close(connection: PgConnection) {
    // The work is done; a failure to say goodbye changes nothing.
    let _ = connection.close().await;
}

/// SQLSTATEs that mean the server refused these credentials: invalid authorization
/// specification (no such role, pg_hba.conf), invalid password, no such database.
const REJECTED_STATES: [&str; 3] = ["28000", "28P01", "3D000"];

/// SQLSTATE classes after which a later attempt may succeed: connection exception, transaction
/// rollback (serialization, deadlock), insufficient resources (too many connections), operator
/// intervention (shutdown, starting up, query cancelled), system error, internal error.
const TRANSIENT_CLASSES: [&str; 6] = ["08", "40", "53", "57", "58", "XX"];

fn login_error(secret: &DatabaseSecret, tls: &'static str, error: &sqlx::Error) -> LoginError {
    let (kind, message) = match error {
        sqlx::Error::Database(database) => {
            let code = database.code();
            let kind = match code.as_deref() {
                Some(code) if REJECTED_STATES.contains(&code) => LoginFailure::Rejected,
                Some(code)
                    if TRANSIENT_CLASSES
                        .iter()
                        .any(|class| code.starts_with(class)) =>
                {
                    LoginFailure::Unreachable
                }
                // The server answered and refused (a privilege, a constraint, a setting): the
                // same request will be refused again.
                Some(_) => LoginFailure::Rejected,
                None => LoginFailure::Unreachable,
            };
            let message = match code {
                Some(code) => format!("{} (SQLSTATE {code})", database.message()),
                None => database.message().to_owned(),
            };
            (kind, message)
        }
        // The client refused to go on with these options, typically a password SASLprep
        // rejects. sqlx's text quotes the offending character of the password, so it is never
        // shown; trying again will not help.
        sqlx::Error::Configuration(_) => (
            LoginFailure::Rejected,
            "the client could not use these credentials (for example, the password contains a \
             character SCRAM's SASLprep prohibits)"
                .to_owned(),
        ),
        other => (LoginFailure::Unreachable, other.to_string()),
    };
    LoginError::new(kind, secret, tls, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rotation::database::POSTGRES;
    use rotation::SecretDocument;
    use rotation::TargetError;

    fn secret(ssl: &str) -> DatabaseSecret {
        let json = format!(
            r#"{{"engine":"postgres","host":"127.0.0.1","port":1,"username":"app","password":"pw-s3cret"{ssl}}}"#
        );
        let document = SecretDocument::parse(&json).expect("JSON");
        DatabaseSecret::from_document(&document, &POSTGRES, "test").expect("valid")
    }

    #[test]
    fn a_login_error_names_user_host_port_and_tls_mode() {
        let error = LoginError {
            kind: LoginFailure::Rejected,
            host: "db.example".into(),
            port: 5432,
            user: "app".into(),
            tls: TLS_VERIFY_FULL,
            message: "password authentication failed for user \"app\" (SQLSTATE 28P01)".into(),
        };
        assert_eq!(
            error.to_string(),
            "login as app to db.example:5432 (TLS verify-full) failed: password authentication \
             failed for user \"app\" (SQLSTATE 28P01)"
        );
        assert!(error.is_rejected());
        let target: TargetError = error.clone().into();
        assert_eq!(target.error_type(), "TargetRejected");
        let unreachable = LoginError {
            kind: LoginFailure::Unreachable,
            ..error
        };
        assert_eq!(
            TargetError::from(unreachable).error_type(),
            "TargetUnreachable"
        );
    }

    #[test]
    fn a_missing_or_empty_ca_bundle_is_a_configuration_error() {
        let missing = Connector::new(
            TlsMode::VerifyFull,
            Some(PathBuf::from("/no/such/ca.pem")),
            Duration::from_secs(1),
        )
        .expect_err("missing");
        assert_eq!(missing.variable, "CA_BUNDLE");
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").expect("write");
        let error = Connector::new(TlsMode::VerifyFull, Some(empty), Duration::from_secs(1))
            .expect_err("no certificate");
        assert!(error.problem.contains("no PEM certificate"), "{error:?}");
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_the_error_never_shows_the_password() {
        let connector =
            Connector::new(TlsMode::Prefer, None, Duration::from_secs(2)).expect("connector");
        let error = connector
            .connect(&secret(""))
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(error.kind, LoginFailure::Unreachable);
        assert_eq!(error.tls, TLS_DISABLED_AFTER_FALLBACK);
        assert!(error.message.contains("verify-full attempt"), "{error}");
        assert!(!error.to_string().contains("pw-s3cret"));
        assert!(!format!("{error:?}").contains("pw-s3cret"));

        let error = connector
            .connect(&secret(r#","ssl":"FALSE""#))
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(error.tls, TLS_DISABLED);
        let error = connector
            .connect(&secret(r#","ssl":true"#))
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(error.tls, TLS_VERIFY_FULL, "ssl true never falls back");
    }
}
