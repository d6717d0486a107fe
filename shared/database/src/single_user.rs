//! Single user (AWS's single-user templates, PROTOCOL.md "Single user"): the user changes its own
//! password, written once for every engine.
//!
//! setSecret:
//! 1. The pending version must be for the current user on the current host (checked before any
//!    login).
//! 2. Log in as current, the one login of the usual case. When the server rejects it: the
//!    pending credentials logging in mean a retry after the password was set (done); otherwise
//!    an `AWSPREVIOUS` version for the same user and host may log in (an earlier attempt may have
//!    changed the password and died before finishSecret).
//! 3. As that user, set its own password to the pending one ([`Engine::set_own_password`]: the
//!    engine's statement, hashed on the client for PostgreSQL).
//!
//! The roll-back after a failed testSecret logs in with the pending password and puts the
//! current one back, so applications using `AWSCURRENT` work again.

use rotation::target::RollBack;
use rotation::{RotationError, SecretDocument, SecretVersions, TargetError};
use secrecy::SecretString;

use crate::connection::{close, Connector, LoginError};
use crate::crash_points;
use crate::engine::{Engine, PreviousWording};
use crate::secret::DatabaseSecret;

/// What single-user setSecret logs in as.
enum Session<C> {
    /// The current credentials are rejected and the pending ones log in: a retry after the
    /// password was set. The connection only proved it; close it.
    AlreadySet(C),
    /// Logged in as the user, with the current credentials or, when those are rejected, the
    /// previous ones; the password it logged in with.
    LoggedIn(C, SecretString),
}

/// Single user's setSecret, once the engine has read both versions: log in as the user
/// ([`session`]), then, as that user, set its password to the pending one.
/// The engine names the server in the AWS templates' log lines ("PostgreSQL", "MySQL",
/// "MariaDB").
pub async fn set_password<E: Engine>(
    connector: &Connector<E>,
    versions: &SecretVersions<'_>,
    pending: &DatabaseSecret,
    current: &DatabaseSecret,
    parse: impl FnOnce(&SecretDocument, &str) -> Result<DatabaseSecret, TargetError>,
) -> Result<(), RotationError> {
    let engine = connector.engine();
    let database = engine.server_name(&pending.engine);
    let wording = engine.previous_wording(&pending.engine);
    let arn = versions.secret_arn();
    let session = session(versions, pending, current, parse, wording, connector);
    let (mut connection, login_password) = match session.await? {
        Session::LoggedIn(connection, password) => (connection, password),
        Session::AlreadySet(connection) => {
            close(connection).await;
            tracing::info!(
                "setSecret: AWSPENDING secret is already set as password in {database} DB for \
                 secret arn {arn}."
            );
            return Ok(());
        }
    };
    let changed = engine
        .set_own_password(
            &mut connection,
            &pending.username,
            &pending.password,
            &login_password,
        )
        .await;
    close(connection).await;
    changed?;
    rotation::crash::after(crash_points::PASSWORD_SET);
    tracing::info!(
        "setSecret: Successfully set password for user {} in {database} DB for secret arn {arn}.",
        pending.username
    );
    Ok(())
}

/// Single user's roll-back after a failed testSecret: when the user is on the pending password,
/// log in with it and put the current one back, so applications using `AWSCURRENT` work again.
/// The current password still working means there is nothing to undo.
pub async fn roll_back<E: Engine>(
    connector: &Connector<E>,
    versions: &SecretVersions<'_>,
    pending: &DatabaseSecret,
    current: &DatabaseSecret,
) -> Result<RollBack, RotationError> {
    check_pending_is_current_user(pending, current)?;
    let (mut pending, mut current) = (pending.clone(), current.clone());
    if !connector.engine().roll_back_in_secret_database() {
        pending.dbname = None;
        current.dbname = None;
    }
    let (pending, current) = (&pending, &current);
    match connector.connect(current).await {
        Ok(connection) => {
            close(connection).await;
            return Ok(RollBack::NothingToUndo);
        }
        Err(error) if error.is_rejected() => {}
        Err(error) => return Err(TargetError::from(error).into()),
    }
    let mut connection = connector
        .connect(pending)
        .await
        .map_err(TargetError::from)?;
    let restored = connector
        .engine()
        .set_own_password(
            &mut connection,
            &current.username,
            &current.password,
            &pending.password,
        )
        .await;
    close(connection).await;
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
async fn session<E: Engine>(
    versions: &SecretVersions<'_>,
    pending: &DatabaseSecret,
    current: &DatabaseSecret,
    parse: impl FnOnce(&SecretDocument, &str) -> Result<DatabaseSecret, TargetError>,
    wording: PreviousWording,
    connector: &Connector<E>,
) -> Result<Session<E::Connection>, RotationError> {
    let arn = versions.secret_arn();
    check_pending_is_current_user(pending, current)?;
    let current_error = match connector.connect(current).await {
        Ok(connection) => return Ok(Session::LoggedIn(connection, current.password.clone())),
        Err(error) if error.is_rejected() => error,
        Err(error) => return Err(unable_to_log_in(arn, error)),
    };
    match connector.connect(pending).await {
        Ok(connection) => return Ok(Session::AlreadySet(connection)),
        Err(error) if error.is_rejected() => {
            tracing::info!("setSecret: AWSPENDING does not log in yet ({error}).");
        }
        Err(error) => return Err(unable_to_log_in(arn, error)),
    }
    let Some(previous) = usable_previous(versions, pending, current, parse, wording).await? else {
        return Err(unable_to_log_in(arn, current_error));
    };
    match connector.connect(&previous).await {
        Ok(connection) => Ok(Session::LoggedIn(connection, previous.password)),
        Err(error) => Err(unable_to_log_in(arn, error)),
    }
}

/// No version logs in; `last` is the error of the last attempt.
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

/// Single user: the pending version must be for the current user on the current host.
pub fn check_pending_is_current_user(
    pending: &DatabaseSecret,
    current: &DatabaseSecret,
) -> Result<(), TargetError> {
    pending.check_is_for(&current.username, current, "current user")
}

/// Single user: `AWSPREVIOUS`, when it exists, is a usable database secret (`parse`), and is
/// for the pending user and host; with current's TLS choice, as in the AWS templates (the
/// previous version may predate a change of `ssl`). `None` when there is no usable previous
/// version.
async fn usable_previous(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::tests::postgres_secret;

    fn secret(host: &str) -> DatabaseSecret {
        postgres_secret("app", host)
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
