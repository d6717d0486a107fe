//! setSecret for the single-user strategy: the user changes its own password (AWS's
//! single-user PostgreSQL template, PROTOCOL.md "Single user").
//!
//! 1. The pending credentials already log in: a retry after the password was set; done.
//! 2. The pending version must be for the current user on the current host.
//! 3. Log in as current; when the server rejects that and an `AWSPREVIOUS` version for the same
//!    user and host exists, log in as previous (an earlier attempt may have changed the
//!    password and died before finishSecret).
//! 4. As that user, set the password to the pending one, hashed client-side.

use rotation::database::login::{
    check_pending_is_current_user, unable_to_log_in, usable_previous, PreviousWording,
};
use rotation::database::DatabaseSecret;
use rotation::target::RollBack;
use rotation::{RotationError, SecretVersions, TargetError};
use sqlx::{Connection, PgConnection};

use crate::connection::{Connector, LoginError};
use crate::sql;
use crate::target::database_secret;

pub async fn apply(
    connector: &Connector,
    versions: &SecretVersions<'_>,
) -> Result<(), RotationError> {
    let arn = versions.secret_arn();
    let pending = database_secret(versions.pending().await?, "AWSPENDING version")?;

    // A retry after the password was set: nothing to do. As in the AWS template, no further
    // check is needed: these credentials work already.
    let pending_error = match connector.connect(&pending).await {
        Ok(connection) => {
            close(connection).await;
            tracing::info!(
                "setSecret: AWSPENDING secret is already set as password in PostgreSQL DB for \
                 secret arn {arn}."
            );
            return Ok(());
        }
        Err(error) => error,
    };
    if pending_error.is_rejected() {
        tracing::info!("setSecret: AWSPENDING does not log in yet ({pending_error}).");
    } else {
        // Not "the password is not set yet": the server could not be reached. Current will most
        // likely fail the same way, and then its error is the one reported.
        tracing::warn!("setSecret: could not try the AWSPENDING secret: {pending_error}");
    }

    let current = database_secret(versions.current().await?, "AWSCURRENT version")?;
    check_pending_is_current_user(&pending, &current)?;

    let mut connection = match connector.connect(&current).await {
        Ok(connection) => connection,
        Err(current_error) if current_error.is_rejected() => {
            match login_as_previous(connector, versions, &pending, &current).await? {
                Some(Ok(connection)) => connection,
                Some(Err(previous_error)) => return Err(unable_to_log_in(arn, previous_error)),
                None => return Err(unable_to_log_in(arn, current_error)),
            }
        }
        Err(current_error) => return Err(unable_to_log_in(arn, current_error)),
    };

    let changed = sql::set_password(&mut connection, &pending.username, &pending.password).await;
    close(connection).await;
    changed?;
    rotation::crash::after(rotation::crash::points::PASSWORD_SET);
    tracing::info!(
        "setSecret: Successfully set password for user {} in PostgreSQL DB for secret arn {arn}.",
        pending.username
    );
    Ok(())
}

/// testSecret failed: when the user is on the pending password, put it back on the current one
/// (logged in with the pending password, as the user), so applications using `AWSCURRENT` work
/// again. The current password already working means there is nothing to undo.
pub async fn roll_back(
    connector: &Connector,
    versions: &SecretVersions<'_>,
) -> Result<RollBack, RotationError> {
    let current = database_secret(versions.current().await?, "AWSCURRENT version")?;
    let pending = database_secret(versions.pending().await?, "AWSPENDING version")?;
    check_pending_is_current_user(&pending, &current)?;
    match connector.connect(&current).await {
        Ok(connection) => {
            close(connection).await;
            return Ok(RollBack::NothingToUndo);
        }
        Err(error) if error.is_rejected() => {}
        Err(error) => return Err(TargetError::from(error).into()),
    }
    let mut connection = connector
        .connect(&pending)
        .await
        .map_err(TargetError::from)?;
    let restored = sql::set_password(&mut connection, &current.username, &current.password).await;
    close(connection).await;
    restored?;
    tracing::warn!(
        "testSecret: user {} is back on the AWSCURRENT password of secret {}.",
        current.username,
        versions.secret_arn()
    );
    Ok(RollBack::OnCurrent)
}

/// Logs in with `AWSPREVIOUS`, when it exists and is for the pending user and host. `None` when
/// there is no usable previous version.
async fn login_as_previous(
    connector: &Connector,
    versions: &SecretVersions<'_>,
    pending: &DatabaseSecret,
    current: &DatabaseSecret,
) -> Result<Option<Result<PgConnection, LoginError>>, RotationError> {
    // The AWS PostgreSQL template's texts.
    let wording = PreviousWording {
        user: "previous valid user",
        host: "current previous valid",
    };
    match usable_previous(versions, pending, current, database_secret, wording).await? {
        Some(previous) => Ok(Some(connector.connect(&previous).await)),
        None => Ok(None),
    }
}

async fn close(connection: PgConnection) {
    let _ = connection.close().await;
}
