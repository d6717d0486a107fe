//! Logging in to MySQL, Aurora MySQL or MariaDB with one version's credentials: verified TLS by
//! default, a bounded time per attempt, and errors that say who tried to log in where, how, and
//! what the server answered (never the password).
//!
//! | secret `ssl`              | `TLS_MODE=verify-full` (default)     | `TLS_MODE=prefer`                          |
//! |---------------------------|--------------------------------------|--------------------------------------------|
//! | `false` / `"false"`       | plaintext                            | plaintext                                  |
//! | `true` / `"true"`         | verify-identity                      | verify-identity                            |
//! | absent or anything else   | verify-identity, no fall-back        | verify-identity, then plaintext (WARN log) |
//!
//! `verify-identity` is MySQL's name (`ssl-mode=VERIFY_IDENTITY`) for what PostgreSQL calls
//! `verify-full`: the server certificate must chain to the CA bundle **and** name the host.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rotation::config::ConfigError;
use rotation::database::DatabaseSecret;
use rotation::secret::FlagValue;
use rotation::{RotationError, TargetError};
use secrecy::ExposeSecret;
use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlSslMode};
use sqlx::{ConnectOptions, Connection, MySqlConnection};

use crate::config::TlsMode;

/// The TLS modes a login can use, as they appear in logs and errors.
pub const TLS_VERIFY_IDENTITY: &str = "verify-identity";
pub const TLS_DISABLED: &str = "disabled";
/// The plaintext retry of `TLS_MODE=prefer`, after the verified TLS attempt failed.
pub const TLS_DISABLED_AFTER_FALLBACK: &str = "disabled, after verify-identity failed";

/// Logs in to MySQL or MariaDB. Built once at start-up: the CA bundle is read here, once.
#[derive(Clone)]
pub struct Connector {
    tls_mode: TlsMode,
    /// The CA bundle (PEM); `None` means sqlx's built-in roots (webpki's Mozilla set).
    ca_pem: Option<Vec<u8>>,
    ca_bundle: Option<PathBuf>,
    connect_timeout: Duration,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("tls_mode", &self.tls_mode)
            .field("ca_bundle", &self.ca_bundle)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Why a login failed, which decides what the caller may try next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginFailure {
    /// The server answered and said no: bad password, no such account for this client host,
    /// no such database, account locked, password expired.
    Rejected,
    /// The server could not be reached or trusted: refused connection, timeout, TLS failure,
    /// too many connections, shutdown.
    Unreachable,
}

/// A failed login. The message is the server's (or the network's), never the password.
#[derive(Clone, Debug, thiserror::Error)]
#[error("login as {user} to {} (TLS {tls}) failed: {message}", host_and_port(host, *port))]
pub struct LoginError {
    pub kind: LoginFailure,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub tls: &'static str,
    pub message: String,
}

impl LoginError {
    pub fn is_rejected(&self) -> bool {
        self.kind == LoginFailure::Rejected
    }
}

impl From<LoginError> for TargetError {
    fn from(error: LoginError) -> TargetError {
        match error.kind {
            LoginFailure::Rejected => TargetError::rejected(error.to_string()),
            LoginFailure::Unreachable => TargetError::unreachable(error.to_string()),
        }
    }
}

impl From<LoginError> for RotationError {
    fn from(error: LoginError) -> RotationError {
        RotationError::Target(error.into())
    }
}

impl Connector {
    pub fn new(
        tls_mode: TlsMode,
        ca_bundle: Option<PathBuf>,
        connect_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let ca_pem = match &ca_bundle {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|error| {
                    ConfigError::new(
                        "CA_BUNDLE",
                        format!("could not read {}: {error}", path.display()),
                    )
                })?;
                if !pem
                    .windows(CERTIFICATE_MARKER.len())
                    .any(|window| window == CERTIFICATE_MARKER)
                {
                    return Err(ConfigError::new(
                        "CA_BUNDLE",
                        format!("{} holds no PEM certificate", path.display()),
                    ));
                }
                Some(pem)
            }
        };
        Ok(Connector {
            tls_mode,
            ca_pem,
            ca_bundle,
            connect_timeout,
        })
    }

    pub fn tls_mode(&self) -> TlsMode {
        self.tls_mode
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Logs in with one version's credentials, with TLS as the secret's `ssl` and `TLS_MODE`
    /// say (see the module's table). Logs at INFO which TLS mode the login used.
    pub async fn connect(&self, secret: &DatabaseSecret) -> Result<MySqlConnection, LoginError> {
        self.login(secret).await.map(|(connection, _)| connection)
    }

    /// [`Connector::connect`], also saying which TLS mode the login used.
    pub async fn login(
        &self,
        secret: &DatabaseSecret,
    ) -> Result<(MySqlConnection, &'static str), LoginError> {
        match secret.ssl {
            FlagValue::False => self.attempt(secret, TLS_DISABLED).await,
            FlagValue::True => self.attempt(secret, TLS_VERIFY_IDENTITY).await,
            FlagValue::Absent | FlagValue::Unrecognised => {
                let tls_error = match self.attempt(secret, TLS_VERIFY_IDENTITY).await {
                    Ok(connected) => return Ok(connected),
                    Err(error) => error,
                };
                if self.tls_mode == TlsMode::VerifyFull {
                    return Err(tls_error);
                }
                // The AWS templates' behaviour, asked for with TLS_MODE=prefer: like them, retry
                // after any failure of the TLS attempt, but say so.
                tracing::warn!(
                    host = %secret.host,
                    port = secret.port,
                    user = %secret.username,
                    "TLS_MODE=prefer: the verified TLS login to {} failed ({}); retrying in \
                     plaintext",
                    host_and_port(&secret.host, secret.port),
                    tls_error.message,
                );
                self.attempt(secret, TLS_DISABLED_AFTER_FALLBACK)
                    .await
                    .map_err(|mut error| {
                        error.message = format!(
                            "{}; the verify-identity attempt before it failed: {}",
                            error.message, tls_error.message
                        );
                        error
                    })
            }
        }
    }

    /// Logs in, runs `SELECT NOW()` and logs out: proof that the credentials work.
    pub async fn verify_login(&self, secret: &DatabaseSecret) -> Result<(), LoginError> {
        let (mut connection, tls) = self.login(secret).await?;
        let queried = tokio::time::timeout(
            self.connect_timeout,
            sqlx::raw_sql("SELECT NOW()").execute(&mut connection),
        )
        .await;
        let result = match queried {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(login_error(secret, tls, &error)),
            Err(_) => Err(timeout_error(
                secret,
                tls,
                self.connect_timeout,
                "SELECT NOW()",
            )),
        };
        close(connection).await;
        result
    }

    /// One connection attempt with the given TLS mode, within the connect timeout.
    async fn attempt(
        &self,
        secret: &DatabaseSecret,
        tls: &'static str,
    ) -> Result<(MySqlConnection, &'static str), LoginError> {
        let options = self.options(secret, tls);
        match tokio::time::timeout(
            self.connect_timeout,
            MySqlConnection::connect_with(&options),
        )
        .await
        {
            Ok(Ok(connection)) => {
                tracing::info!(
                    host = %secret.host,
                    port = secret.port,
                    user = %secret.username,
                    tls,
                    "Successfully established {} connection as user '{}' with host: '{}'",
                    describe_tls(tls),
                    secret.username,
                    secret.host,
                );
                Ok((connection, tls))
            }
            Ok(Err(error)) => Err(login_error(secret, tls, &error)),
            Err(_) => Err(timeout_error(
                secret,
                tls,
                self.connect_timeout,
                "connecting",
            )),
        }
    }

    fn options(&self, secret: &DatabaseSecret, tls: &'static str) -> MySqlConnectOptions {
        let mut options = MySqlConnectOptions::new()
            .host(&secret.host)
            .port(secret.port)
            .username(&secret.username)
            .password(secret.password.expose_secret())
            // utf8mb4 on both sides: names are UTF-8, and no multi-byte character set (GBK,
            // Big5, SJIS) can turn a quoted backslash into part of a character.
            .charset("utf8mb4")
            // Keep the server's sql_mode (sqlx would add PIPES_AS_CONCAT and
            // NO_ENGINE_SUBSTITUTION) and time zone: the session is the account's as configured.
            .pipes_as_concat(false)
            .no_engine_substitution(false)
            .timezone(None)
            // Statements are never prepared twice on these short-lived connections.
            .statement_cache_capacity(0)
            // sqlx logs statements at DEBUG and slow ones at WARN; `ALTER USER … IDENTIFIED BY`
            // holds the password, which stays out of the function's logs at every level.
            .disable_statement_logging();
        if let Some(dbname) = &secret.dbname {
            options = options.database(dbname);
        }
        if tls == TLS_VERIFY_IDENTITY {
            options = options.ssl_mode(MySqlSslMode::VerifyIdentity);
            if let Some(pem) = &self.ca_pem {
                options = options.ssl_ca_from_pem(pem.clone());
            }
        } else {
            options = options.ssl_mode(MySqlSslMode::Disabled);
        }
        options
    }
}

/// `host:port`, with an IPv6 address in brackets so the port stays readable.
pub fn host_and_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

const CERTIFICATE_MARKER: &[u8] = b"-----BEGIN CERTIFICATE-----";

fn describe_tls(tls: &str) -> &'static str {
    if tls == TLS_VERIFY_IDENTITY {
        "SSL/TLS (verify-identity)"
    } else {
        "non SSL/TLS"
    }
}

async fn close(connection: MySqlConnection) {
    // The work is done; a failure to say goodbye changes nothing.
    let _ = connection.close().await;
}

fn timeout_error(
    secret: &DatabaseSecret,
    tls: &'static str,
    limit: Duration,
    doing: &str,
) -> LoginError {
    LoginError {
        kind: LoginFailure::Unreachable,
        host: secret.host.clone(),
        port: secret.port,
        user: secret.username.clone(),
        tls,
        message: format!(
            "no answer within {} s ({doing}; CONNECT_TIMEOUT_SECONDS)",
            limit.as_secs_f32()
        ),
    }
}

/// Server error numbers that mean the server refused these credentials:
/// 1044 no access to the database, 1045 access denied (bad password, no such account),
/// 1049 unknown database, 1130 host not allowed to connect, 1698 access denied without a
/// password, 1820 and 1862 password expired, 3118 (MySQL) and 4151 (MariaDB) account locked.
pub const REJECTED_LOGIN_ERRORS: [u16; 9] = [1044, 1045, 1049, 1130, 1698, 1820, 1862, 3118, 4151];

/// The server error number of a MySQL or MariaDB error, when there is one.
pub fn error_number(error: &sqlx::Error) -> Option<u16> {
    error
        .as_database_error()
        .and_then(|database| database.try_downcast_ref::<MySqlDatabaseError>())
        .map(MySqlDatabaseError::number)
}

/// The server's message with its error number and SQLSTATE: `Access denied for user … (error
/// 1045, SQLSTATE 28000)`.
pub fn describe_database_error(database: &dyn sqlx::error::DatabaseError) -> String {
    match database.try_downcast_ref::<MySqlDatabaseError>() {
        Some(mysql) => {
            let message = withhold_statement_text(mysql.message());
            match mysql.code() {
                Some(state) => format!("{message} (error {}, SQLSTATE {state})", mysql.number()),
                None => format!("{message} (error {})", mysql.number()),
            }
        }
        None => withhold_statement_text(database.message()),
    }
}

/// A syntax error (1064, 1149) quotes the statement from where parsing stopped, "… near
/// '<text>' at line 1", and a password statement's text holds the password: that quote never
/// leaves the function.
pub fn withhold_statement_text(message: &str) -> String {
    match message.find(" near '") {
        Some(start) => format!("{} near (statement text withheld)", &message[..start]),
        None => message.to_owned(),
    }
}

fn login_error(secret: &DatabaseSecret, tls: &'static str, error: &sqlx::Error) -> LoginError {
    let (kind, message) = match error {
        sqlx::Error::Database(database) => {
            let kind = match error_number(error) {
                Some(number) if REJECTED_LOGIN_ERRORS.contains(&number) => LoginFailure::Rejected,
                _ => LoginFailure::Unreachable,
            };
            (kind, describe_database_error(database.as_ref()))
        }
        // The client refused to go on with these options: trying again will not help.
        sqlx::Error::Configuration(_) => (LoginFailure::Rejected, error.to_string()),
        other => (LoginFailure::Unreachable, other.to_string()),
    };
    LoginError {
        kind,
        host: secret.host.clone(),
        port: secret.port,
        user: secret.username.clone(),
        tls,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syntax_error_never_quotes_the_statement_it_stopped_in() {
        let message = "You have an error in your SQL syntax; check the manual that corresponds to \
                       your MariaDB server version for the right syntax to use near \
                       'PASSWORD('s3cr3t-pw')' at line 1";
        let shown = withhold_statement_text(message);
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(shown.ends_with("for the right syntax to use near (statement text withheld)"));
        assert_eq!(withhold_statement_text("Access denied"), "Access denied");
    }
    use rotation::database::MYSQL;
    use rotation::SecretDocument;

    fn secret(ssl: &str) -> DatabaseSecret {
        let json = format!(
            r#"{{"engine":"mysql","host":"127.0.0.1","port":1,"username":"app","password":"pw-s3cret"{ssl}}}"#
        );
        let document = SecretDocument::parse(&json).expect("JSON");
        DatabaseSecret::from_document(&document, &MYSQL, "test").expect("valid")
    }

    #[test]
    fn a_login_error_names_user_host_port_and_tls_mode() {
        let error = LoginError {
            kind: LoginFailure::Rejected,
            host: "db.example".into(),
            port: 3306,
            user: "app".into(),
            tls: TLS_VERIFY_IDENTITY,
            message: "Access denied for user 'app'@'10.0.0.1' (using password: YES) (error 1045, \
                      SQLSTATE 28000)"
                .into(),
        };
        assert_eq!(
            error.to_string(),
            "login as app to db.example:3306 (TLS verify-identity) failed: Access denied for \
             user 'app'@'10.0.0.1' (using password: YES) (error 1045, SQLSTATE 28000)"
        );
        assert!(error.is_rejected());
        let target: TargetError = error.clone().into();
        assert_eq!(target.error_type(), "TargetRejected");
        let unreachable = LoginError {
            kind: LoginFailure::Unreachable,
            host: "::1".into(),
            ..error
        };
        assert!(unreachable.to_string().contains("[::1]:3306"));
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
        assert!(error.message.contains("verify-identity attempt"), "{error}");
        assert!(!error.to_string().contains("pw-s3cret"));
        assert!(!format!("{error:?}").contains("pw-s3cret"));
        assert!(!format!("{connector:?}").contains("pw-s3cret"));

        let error = connector
            .connect(&secret(r#","ssl":"FALSE""#))
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(error.tls, TLS_DISABLED);
        let error = connector
            .connect(&secret(r#","ssl":true"#))
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(error.tls, TLS_VERIFY_IDENTITY, "ssl true never falls back");

        let strict =
            Connector::new(TlsMode::VerifyFull, None, Duration::from_secs(2)).expect("connector");
        let error = strict
            .connect(&secret(""))
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(error.tls, TLS_VERIFY_IDENTITY, "no fall-back by default");
    }
}
