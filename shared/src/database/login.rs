//! The login plumbing every database function shares, whatever its driver: the login error and
//! its classification into `TargetError`s, the CA bundle read at start-up, the TLS decision table
//! with `TLS_MODE=prefer`'s fall-back, the per-attempt time limit, and the single-user strategy's
//! checks of the pending, current and previous versions (with the AWS templates' texts).
//!
//! | secret `ssl`              | `TLS_MODE=verify-full` (default) | `TLS_MODE=prefer`                   |
//! |---------------------------|----------------------------------|-------------------------------------|
//! | `false` / `"false"`       | plaintext                        | plaintext                           |
//! | `true` / `"true"`         | verified TLS                     | verified TLS                        |
//! | absent or anything else   | verified TLS, no fall-back       | verified TLS, then plaintext (WARN) |
//!
//! The engine names its verified TLS mode ([`TlsLabels`]): `verify-full` for PostgreSQL,
//! `verify-identity` for MySQL.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::config::ConfigError;
use crate::database::{DatabaseSecret, TlsMode};
use crate::error::RotationError;
use crate::secret::{FlagValue, SecretDocument};
use crate::target::{RollBack, TargetError};
use crate::versions::SecretVersions;

/// The plaintext TLS mode, as it appears in logs and errors.
pub const TLS_DISABLED: &str = "disabled";

/// An engine's names for its TLS modes, as they appear in logs and errors.
#[derive(Clone, Copy, Debug)]
pub struct TlsLabels {
    /// Verified TLS: the certificate chains to the CA bundle and names the host.
    pub verified: &'static str,
    /// The plaintext retry of `TLS_MODE=prefer`, after the verified TLS attempt failed.
    pub after_fallback: &'static str,
}

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

/// How a function logs in, whatever its driver. Built once at start-up: the CA bundle is read
/// here, once. Its `Debug` output calls it a `Connector`, the type the functions wrap it in.
#[derive(Clone)]
pub struct LoginSettings {
    tls_mode: TlsMode,
    /// The CA bundle (PEM); `None` means the driver's built-in roots (webpki's Mozilla set).
    ca_pem: Option<Vec<u8>>,
    ca_bundle: Option<PathBuf>,
    connect_timeout: Duration,
}

impl fmt::Debug for LoginSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("tls_mode", &self.tls_mode)
            .field("ca_bundle", &self.ca_bundle)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl LoginSettings {
    /// Reads the CA bundle, which must hold at least one PEM certificate.
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
        Ok(LoginSettings {
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

    /// The CA bundle read at start-up; `None` means the driver's built-in roots.
    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.ca_pem.as_deref()
    }

    /// Logs in with TLS as the secret's `ssl` and `TLS_MODE` say (see the module's table):
    /// `attempt` makes one attempt with the TLS mode it is given.
    pub async fn login<C, Attempt, Attempted>(
        &self,
        secret: &DatabaseSecret,
        labels: TlsLabels,
        attempt: Attempt,
    ) -> Result<(C, &'static str), LoginError>
    where
        Attempt: Fn(&'static str) -> Attempted,
        Attempted: Future<Output = Result<(C, &'static str), LoginError>>,
    {
        match secret.ssl {
            FlagValue::False => attempt(TLS_DISABLED).await,
            FlagValue::True => attempt(labels.verified).await,
            FlagValue::Absent | FlagValue::Unrecognised => {
                let tls_error = match attempt(labels.verified).await {
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
                attempt(labels.after_fallback).await.map_err(|mut error| {
                    error.message = format!(
                        "{}; the {} attempt before it failed: {}",
                        error.message, labels.verified, tls_error.message
                    );
                    error
                })
            }
        }
    }

    /// One connection attempt with the given TLS mode, within the connect timeout; `classify`
    /// turns the driver's error into a [`LoginError`]. Logs at INFO which TLS mode it used.
    pub async fn attempt<C, E>(
        &self,
        secret: &DatabaseSecret,
        tls: &'static str,
        labels: TlsLabels,
        connecting: impl Future<Output = Result<C, E>>,
        classify: impl FnOnce(&DatabaseSecret, &'static str, &E) -> LoginError,
    ) -> Result<(C, &'static str), LoginError> {
        match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(connection)) => {
                let described = if tls == labels.verified {
                    format!("SSL/TLS ({tls})")
                } else {
                    "non SSL/TLS".to_owned()
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
            Ok(Err(error)) => Err(classify(secret, tls, &error)),
            Err(_) => Err(LoginError::timeout(
                secret,
                tls,
                self.connect_timeout,
                "connecting",
            )),
        }
    }
}

/// The suffix that tells the alternate user from the original, as in the AWS templates.
pub const CLONE_SUFFIX: &str = "_clone";

/// How an engine bounds a user name: PostgreSQL counts bytes, MySQL and MariaDB characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameLimit {
    Bytes(usize),
    Characters(usize),
}

/// Alternating users: `name` ↔ `name_clone`, within the engine's limit (the AWS text when the
/// clone's name would be too long).
pub fn alternate_username(current: &str, limit: NameLimit) -> Result<String, TargetError> {
    let alternate = match current.strip_suffix(CLONE_SUFFIX) {
        Some(original) => original.to_owned(),
        None => format!("{current}{CLONE_SUFFIX}"),
    };
    let (length, most) = match limit {
        NameLimit::Bytes(most) => (alternate.len(), most),
        NameLimit::Characters(most) => (alternate.chars().count(), most),
    };
    if length > most {
        return Err(TargetError::invalid_secret(format!(
            "Unable to clone user, username length with _clone appended would exceed {most} \
             characters"
        )));
    }
    if alternate.is_empty() {
        return Err(TargetError::invalid_secret(format!(
            "Unable to alternate user {current}: the user without {CLONE_SUFFIX} has no name"
        )));
    }
    Ok(alternate)
}

/// Alternating users: the pending version must be for the current user's alternate on the
/// current host. The length limit only guards createSecret's new name; here the names must
/// simply alternate.
pub fn check_pending_is_alternate(
    pending: &DatabaseSecret,
    current: &DatabaseSecret,
) -> Result<(), TargetError> {
    if alternate_username(&current.username, NameLimit::Characters(usize::MAX))? != pending.username
    {
        return Err(TargetError::invalid_secret(format!(
            "Attempting to modify user {} other than current user or clone {}",
            pending.username, current.username
        )));
    }
    if pending.host != current.host {
        return Err(TargetError::invalid_secret(format!(
            "Attempting to modify user for host {} other than current host {}",
            pending.host, current.host
        )));
    }
    Ok(())
}

/// Single user: the pending version must be for the current user on the current host.
pub fn check_pending_is_current_user(
    pending: &DatabaseSecret,
    current: &DatabaseSecret,
) -> Result<(), TargetError> {
    if pending.username != current.username {
        return Err(TargetError::invalid_secret(format!(
            "Attempting to modify user {} other than current user {}",
            pending.username, current.username
        )));
    }
    if pending.host != current.host {
        return Err(TargetError::invalid_secret(format!(
            "Attempting to modify user for host {} other than current host {}",
            pending.host, current.host
        )));
    }
    Ok(())
}

/// How an engine's AWS template words a previous version for another user or host:
/// `Attempting to modify user … other than {user} …`, `… for host … other than {host} …`.
#[derive(Clone, Copy, Debug)]
pub struct PreviousWording {
    pub user: &'static str,
    pub host: &'static str,
}

/// Single user: `AWSPREVIOUS`, when it exists, is a usable database secret (`parse`), and is
/// for the pending user and host; with current's TLS choice, as in the AWS templates (the
/// previous version may predate a change of `ssl`). `None` when there is no usable previous
/// version.
pub async fn usable_previous(
    versions: &SecretVersions<'_>,
    pending: &DatabaseSecret,
    current: &DatabaseSecret,
    parse: impl FnOnce(&SecretDocument, &str) -> Result<DatabaseSecret, TargetError>,
    wording: PreviousWording,
) -> Result<Option<DatabaseSecret>, RotationError> {
    let Some(document) = versions.previous().await? else {
        return Ok(None);
    };
    // As the AWS templates: a previous version that is not a usable database secret (missing
    // fields, another engine) counts as no previous version.
    let mut previous = match parse(document, "AWSPREVIOUS version") {
        Ok(previous) => previous,
        Err(problem) => {
            tracing::warn!("setSecret: AWSPREVIOUS cannot be used: {problem}");
            return Ok(None);
        }
    };
    if previous.username != pending.username {
        return Err(TargetError::invalid_secret(format!(
            "Attempting to modify user {} other than {} {}",
            pending.username, wording.user, previous.username
        ))
        .into());
    }
    if previous.host != pending.host {
        return Err(TargetError::invalid_secret(format!(
            "Attempting to modify user for host {} other than {} {}",
            pending.host, wording.host, previous.host
        ))
        .into());
    }
    previous.ssl = current.ssl;
    tracing::info!(
        "setSecret: AWSCURRENT is rejected; trying AWSPREVIOUS for user {}.",
        previous.username
    );
    Ok(Some(previous))
}

/// What a database function (its `Connector`) gives the login flows every database function
/// shares: a login with one version's credentials, a change of the logged-in user's own
/// password, and a goodbye.
#[async_trait::async_trait]
pub trait Login: Sync {
    type Connection: Send;

    async fn login_as(&self, secret: &DatabaseSecret) -> Result<Self::Connection, LoginError>;

    /// As the logged-in user, sets that user's own password to `new`. `old` is the password it
    /// logged in with (MySQL 8 checks it with `REPLACE`).
    async fn set_own_password(
        &self,
        connection: &mut Self::Connection,
        user: &str,
        new: &SecretString,
        old: &SecretString,
    ) -> Result<(), TargetError>;

    /// Closes a connection whose work is done; a failure to say goodbye changes nothing.
    async fn log_out(&self, connection: Self::Connection);
}

/// What single-user setSecret logs in as.
enum SingleUserSession<C> {
    /// The current credentials are rejected and the pending ones log in: a retry after the
    /// password was set. The connection only proved it; close it.
    AlreadySet(C),
    /// Logged in as the user, with the current credentials or, when those are rejected, the
    /// previous ones; the password it logged in with.
    LoggedIn(C, SecretString),
}

/// Single user's setSecret, once the engine has read both versions: log in as the user
/// ([`single_user_session`]), then, as that user, set its password to the pending one.
/// `database` names the server in the AWS templates' log lines ("PostgreSQL", "MySQL",
/// "MariaDB").
pub async fn single_user_set_password<L: Login>(
    connector: &L,
    versions: &SecretVersions<'_>,
    pending: &DatabaseSecret,
    current: &DatabaseSecret,
    parse: impl FnOnce(&SecretDocument, &str) -> Result<DatabaseSecret, TargetError>,
    wording: PreviousWording,
    database: &str,
) -> Result<(), RotationError> {
    let arn = versions.secret_arn();
    let session = single_user_session(versions, pending, current, parse, wording, connector);
    let (mut connection, login_password) = match session.await? {
        SingleUserSession::LoggedIn(connection, password) => (connection, password),
        SingleUserSession::AlreadySet(connection) => {
            connector.log_out(connection).await;
            tracing::info!(
                "setSecret: AWSPENDING secret is already set as password in {database} DB for \
                 secret arn {arn}."
            );
            return Ok(());
        }
    };
    let changed = connector
        .set_own_password(
            &mut connection,
            &pending.username,
            &pending.password,
            &login_password,
        )
        .await;
    connector.log_out(connection).await;
    changed?;
    crate::crash::after(crate::crash::points::PASSWORD_SET);
    tracing::info!(
        "setSecret: Successfully set password for user {} in {database} DB for secret arn {arn}.",
        pending.username
    );
    Ok(())
}

/// Single user's roll-back after a failed testSecret: when the user is on the pending password,
/// log in with it and put the current one back, so applications using `AWSCURRENT` work again.
/// The current password still working means there is nothing to undo.
pub async fn single_user_roll_back<L: Login>(
    connector: &L,
    versions: &SecretVersions<'_>,
    pending: &DatabaseSecret,
    current: &DatabaseSecret,
) -> Result<RollBack, RotationError> {
    check_pending_is_current_user(pending, current)?;
    match connector.login_as(current).await {
        Ok(connection) => {
            connector.log_out(connection).await;
            return Ok(RollBack::NothingToUndo);
        }
        Err(error) if error.is_rejected() => {}
        Err(error) => return Err(TargetError::from(error).into()),
    }
    let mut connection = connector
        .login_as(pending)
        .await
        .map_err(TargetError::from)?;
    let restored = connector
        .set_own_password(
            &mut connection,
            &current.username,
            &current.password,
            &pending.password,
        )
        .await;
    connector.log_out(connection).await;
    restored?;
    tracing::warn!(
        "testSecret: user {} is back on the AWSCURRENT password of secret {}.",
        current.username,
        versions.secret_arn()
    );
    Ok(RollBack::OnCurrent)
}

/// Single user: logs in to change the password, at the cost of one login in the usual case.
///
/// 1. The pending version must be for the current user and host (checked before any login).
/// 2. Current logs in: the usual case; one connection, and the one the change needs.
/// 3. Current is rejected: either an earlier attempt set the password (pending logs in: done,
///    as the AWS templates' first check finds) or the password drifted, and `AWSPREVIOUS` for
///    the same user and host may still log in.
///
/// The AWS templates try pending first; the order only changes how many logins it takes, since
/// one user's password cannot be both. An unreachable server ends the search with its error
/// (retryable), a rejection by every version with the last rejection.
async fn single_user_session<L: Login>(
    versions: &SecretVersions<'_>,
    pending: &DatabaseSecret,
    current: &DatabaseSecret,
    parse: impl FnOnce(&SecretDocument, &str) -> Result<DatabaseSecret, TargetError>,
    wording: PreviousWording,
    connector: &L,
) -> Result<SingleUserSession<L::Connection>, RotationError> {
    let arn = versions.secret_arn();
    check_pending_is_current_user(pending, current)?;
    let current_error = match connector.login_as(current).await {
        Ok(connection) => {
            return Ok(SingleUserSession::LoggedIn(
                connection,
                current.password.clone(),
            ))
        }
        Err(error) if error.is_rejected() => error,
        Err(error) => return Err(unable_to_log_in(arn, error)),
    };
    match connector.login_as(pending).await {
        Ok(connection) => return Ok(SingleUserSession::AlreadySet(connection)),
        Err(error) if error.is_rejected() => {
            tracing::info!("setSecret: AWSPENDING does not log in yet ({error}).");
        }
        Err(error) => return Err(unable_to_log_in(arn, error)),
    }
    let Some(previous) = usable_previous(versions, pending, current, parse, wording).await? else {
        return Err(unable_to_log_in(arn, current_error));
    };
    match connector.login_as(&previous).await {
        Ok(connection) => Ok(SingleUserSession::LoggedIn(connection, previous.password)),
        Err(error) => Err(unable_to_log_in(arn, error)),
    }
}

/// Single user: no version logs in; `last` is the error of the last attempt.
pub fn unable_to_log_in(arn: &str, last: LoginError) -> RotationError {
    let message = format!(
        "Unable to log into database with previous, current, or pending secret of secret arn \
         {arn}: {last}"
    );
    let error = if last.is_rejected() {
        TargetError::rejected(message)
    } else {
        TargetError::unreachable(message)
    };
    error.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::POSTGRES;

    fn secret(host: &str) -> DatabaseSecret {
        let json = format!(
            r#"{{"engine":"postgres","host":"{host}","port":5433,"username":"app","password":"pw"}}"#
        );
        let document = SecretDocument::parse(&json).expect("JSON");
        DatabaseSecret::from_document(&document, &POSTGRES, "test").expect("valid")
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

    #[test]
    fn the_pending_version_must_be_for_the_current_user_and_host() {
        let current = secret("db");
        let mut pending = current.clone();
        assert!(check_pending_is_current_user(&pending, &current).is_ok());
        pending.host = "other".into();
        let error = check_pending_is_current_user(&pending, &current).expect_err("host");
        assert_eq!(
            error.message,
            "Attempting to modify user for host other other than current host db"
        );
        assert_eq!(error.error_type(), "InvalidSecret");
    }
}
