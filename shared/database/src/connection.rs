//! Logging in to a database with one version's credentials, whatever the engine: verified TLS by
//! default, a bounded time per attempt and per statement, one classification of the driver's
//! errors, and errors that say who tried to log in where, how, and what the server answered
//! (never the password).
//!
//! | secret `ssl`              | `TLS_MODE=verify-full` (default) | `TLS_MODE=prefer`                   |
//! |---------------------------|----------------------------------|-------------------------------------|
//! | `false` / `"false"`       | plaintext                        | plaintext                           |
//! | `true` / `"true"`         | verified TLS                     | verified TLS                        |
//! | absent or anything else   | verified TLS, no fall-back       | verified TLS, then plaintext (WARN) |
//!
//! The engine names its verified TLS mode ([`Engine::VERIFIED_TLS`] and
//! [`Engine::PLAINTEXT_AFTER_FALLBACK`]): `verify-full` for
//! PostgreSQL, `verify-identity` for MySQL (the certificate chains to the CA bundle **and** names
//! the host).

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rotation::config::ConfigError;
use rotation::secret::FlagValue;
use rotation::{RotationError, TargetError};
use sqlx::{ConnectOptions, Connection};

use crate::config::TlsMode;
use crate::engine::{Engine, ServerErrorClass};
use crate::secret::DatabaseSecret;

/// The plaintext TLS mode, as it appears in logs and errors.
pub const TLS_DISABLED: &str = "disabled";

/// How long one statement may take before the step gives up on it.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long saying goodbye may take: the work is done (or failed) already.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a login failed, which decides what the caller may try next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginFailure {
    /// The server answered and said no: bad password, no such user (for this client host) or
    /// database, account locked, password expired, pg_hba.conf.
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
    /// A failed login as `secret`'s user to its host and port.
    pub fn new(
        kind: LoginFailure,
        secret: &DatabaseSecret,
        tls: &'static str,
        message: String,
    ) -> Self {
        LoginError {
            kind,
            host: secret.host.clone(),
            port: secret.port,
            user: secret.username.clone(),
            tls,
            message,
        }
    }

    /// No answer within `limit` while `doing` something.
    pub fn timeout(
        secret: &DatabaseSecret,
        tls: &'static str,
        limit: Duration,
        doing: &str,
    ) -> Self {
        let message = format!(
            "no answer within {} s ({doing}; CONNECT_TIMEOUT_SECONDS)",
            limit.as_secs_f32()
        );
        LoginError::new(LoginFailure::Unreachable, secret, tls, message)
    }

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

/// `host:port`, with an IPv6 address in brackets so the port stays readable.
pub fn host_and_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

const CERTIFICATE_MARKER: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// What a login attempt is made with: verified TLS, or plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    VerifiedTls,
    Plaintext,
}

/// Logs in to the engine's servers. Built once at start-up: the CA bundle is read here, once.
pub struct Connector<E: Engine> {
    engine: Arc<E>,
    tls_mode: TlsMode,
    /// The CA bundle (PEM); `None` means the driver's built-in roots (webpki's Mozilla set).
    ca_pem: Option<Vec<u8>>,
    ca_bundle: Option<PathBuf>,
    connect_timeout: Duration,
}

impl<E: Engine> fmt::Debug for Connector<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("tls_mode", &self.tls_mode)
            .field("ca_bundle", &self.ca_bundle)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl<E: Engine> Connector<E> {
    /// Reads the CA bundle, which must hold at least one PEM certificate.
    pub fn new(
        engine: Arc<E>,
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
            engine,
            tls_mode,
            ca_pem,
            ca_bundle,
            connect_timeout,
        })
    }

    pub fn engine(&self) -> &E {
        &self.engine
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Logs in with one version's credentials, with TLS as the secret's `ssl` and `TLS_MODE`
    /// say (see the module's table). Logs at INFO which TLS mode the login used.
    pub async fn connect(&self, secret: &DatabaseSecret) -> Result<E::Connection, LoginError> {
        self.login(secret).await.map(|(connection, _)| connection)
    }

    /// [`Connector::connect`], also saying which TLS mode the login used.
    pub async fn login(
        &self,
        secret: &DatabaseSecret,
    ) -> Result<(E::Connection, &'static str), LoginError> {
        let verified = E::VERIFIED_TLS;
        match secret.ssl {
            FlagValue::False => self.attempt(secret, TLS_DISABLED).await,
            FlagValue::True => self.attempt(secret, verified).await,
            FlagValue::Absent | FlagValue::Unrecognised => {
                let tls_error = match self.attempt(secret, verified).await {
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
                self.attempt(secret, E::PLAINTEXT_AFTER_FALLBACK)
                    .await
                    .map_err(|mut error| {
                        error.message = format!(
                            "{}; the {verified} attempt before it failed: {}",
                            error.message, tls_error.message
                        );
                        error
                    })
            }
        }
    }

    /// Logs in, runs the engine's trivial query and logs out: proof that the credentials work.
    pub async fn verify_login(&self, secret: &DatabaseSecret) -> Result<(), LoginError> {
        let (mut connection, tls) = self.login(secret).await?;
        let limit = self.connect_timeout;
        let probe = self.engine.run(&mut connection, E::PROBE);
        let queried = tokio::time::timeout(limit, probe).await;
        let result = match queried {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(self.login_error(secret, tls, &error)),
            Err(_) => Err(LoginError::timeout(secret, tls, limit, E::PROBE)),
        };
        close(connection).await;
        result
    }

    /// One connection attempt with the given TLS mode, within the connect timeout.
    async fn attempt(
        &self,
        secret: &DatabaseSecret,
        tls: &'static str,
    ) -> Result<(E::Connection, &'static str), LoginError> {
        let transport = if tls == E::VERIFIED_TLS {
            Transport::VerifiedTls
        } else {
            Transport::Plaintext
        };
        let options = self
            .engine
            .connect_options(secret, transport, self.ca_pem.as_deref())
            // sqlx logs statements at DEBUG and slow ones at WARN; a password statement holds
            // a password or a verifier, which stays out of the function's logs at every level.
            .disable_statement_logging();
        match tokio::time::timeout(self.connect_timeout, options.connect()).await {
            Ok(Ok(connection)) => {
                let described = match transport {
                    Transport::VerifiedTls => format!("SSL/TLS ({tls})"),
                    Transport::Plaintext => "non SSL/TLS".to_owned(),
                };
                tracing::info!(
                    host = %secret.host,
                    port = secret.port,
                    user = %secret.username,
                    tls,
                    "Successfully established {described} connection as user '{}' with host: '{}'",
                    secret.username,
                    secret.host,
                );
                Ok((connection, tls))
            }
            Ok(Err(error)) => Err(self.login_error(secret, tls, &error)),
            Err(_) => Err(LoginError::timeout(
                secret,
                tls,
                self.connect_timeout,
                "connecting",
            )),
        }
    }

    /// A failed login or probe, classified by the engine's list of server errors.
    fn login_error(
        &self,
        secret: &DatabaseSecret,
        tls: &'static str,
        error: &sqlx::Error,
    ) -> LoginError {
        let (kind, message) = match error {
            sqlx::Error::Database(database) => {
                let (class, message) = self.engine.classify(database.as_ref());
                let kind = match class {
                    ServerErrorClass::CredentialsRejected | ServerErrorClass::Refused => {
                        LoginFailure::Rejected
                    }
                    ServerErrorClass::Transient => LoginFailure::Unreachable,
                };
                (kind, message)
            }
            // The client refused to go on with these options, typically a password SASLprep
            // rejects. The driver's text may quote the offending character of the password, so
            // it is never shown; trying again will not help.
            sqlx::Error::Configuration(_) => (
                LoginFailure::Rejected,
                "the client could not use these credentials (for example, the password contains \
                 a character the authentication method prohibits)"
                    .to_owned(),
            ),
            other => (LoginFailure::Unreachable, other.to_string()),
        };
        LoginError::new(kind, secret, tls, message)
    }

    /// Runs one database call within [`STATEMENT_TIMEOUT`], mapping its failure with
    /// [`Connector::statement_error`].
    pub async fn within_timeout<T>(
        &self,
        context: &str,
        work: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, TargetError> {
        within_timeout(&*self.engine, context, work).await
    }
}

/// Runs one database call within [`STATEMENT_TIMEOUT`], mapping its failure with
/// [`statement_error`].
pub async fn within_timeout<E: Engine + ?Sized, T>(
    engine: &E,
    context: &str,
    work: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, TargetError> {
    match tokio::time::timeout(STATEMENT_TIMEOUT, work).await {
        Ok(result) => result.map_err(|error| statement_error(engine, context, &error)),
        Err(_) => Err(TargetError::unreachable(format!(
            "{context}: no answer from the server within {} s",
            STATEMENT_TIMEOUT.as_secs()
        ))),
    }
}

/// Runs one statement (text protocol, no parameters) within [`STATEMENT_TIMEOUT`]. Errors name
/// `context` and carry the server's message, never the statement, which may hold a password.
/// The caller builds `statement` from its engine's tested quoting only.
pub async fn execute<E: Engine + ?Sized>(
    engine: &E,
    connection: &mut E::Connection,
    context: &str,
    statement: &str,
) -> Result<(), TargetError> {
    within_timeout(engine, context, engine.run(connection, statement)).await
}

/// Runs `sql` as one simple-protocol batch and drops its results: every engine's
/// [`Engine::run`]. The statements come from the engine's tested quoting only, never from a
/// secret's text unquoted.
pub async fn run_batch<C>(connection: &mut C, sql: &str) -> Result<(), sqlx::Error>
where
    C: Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
{
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(connection)
        .await
        .map(drop)
}

/// Maps a statement's failure: a server error becomes `TargetRejected` with the context and the
/// server's message and code (`TargetUnreachable` for the errors the engine lists as transient,
/// the same list its logins use); a network failure becomes `TargetUnreachable`. The statement
/// text is never included: it may hold a password or a verifier.
pub fn statement_error<E: Engine + ?Sized>(
    engine: &E,
    context: &str,
    error: &sqlx::Error,
) -> TargetError {
    match error {
        sqlx::Error::Database(database) => {
            let (class, message) = engine.classify(database.as_ref());
            let message = format!("{context}: {message}");
            match class {
                ServerErrorClass::Transient => TargetError::unreachable(message),
                ServerErrorClass::CredentialsRejected | ServerErrorClass::Refused => {
                    TargetError::rejected(message)
                }
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => TargetError::unreachable(format!("{context}: {error}")),
        other => TargetError::rejected(format!("{context}: {other}")),
    }
}

/// Closes a connection whose work is done (or failed already); a failure to say goodbye changes
/// nothing.
pub async fn close<C: Connection>(connection: C) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.close()).await;
}

/// A login that failed while a step needed it, as the AWS templates word it: `Unable to log into
/// database <what>: <the login error>`.
pub fn unable_to_log_in(what: String, error: LoginError) -> RotationError {
    let cause = TargetError::from(error);
    TargetError {
        kind: cause.kind,
        message: format!("Unable to log into database {what}: {}", cause.message),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::tests::postgres_secret;

    fn secret(host: &str) -> DatabaseSecret {
        postgres_secret("app", host)
    }

    #[test]
    fn an_ipv6_host_is_bracketed_so_the_port_stays_readable() {
        assert_eq!(host_and_port("db.example", 5432), "db.example:5432");
        assert_eq!(host_and_port("::1", 3306), "[::1]:3306");
    }

    #[test]
    fn a_timeout_is_unreachable_and_names_what_it_was_doing() {
        let error = LoginError::timeout(&secret("::1"), TLS_DISABLED, Duration::from_secs(2), "x");
        assert!(!error.is_rejected());
        assert_eq!(
            error.to_string(),
            "login as app to [::1]:5433 (TLS disabled) failed: no answer within 2 s (x; \
             CONNECT_TIMEOUT_SECONDS)"
        );
        assert_eq!(TargetError::from(error).error_type(), "TargetUnreachable");
    }
}
