//! setSecret for the single-user strategy: the user changes its own password (AWS's
//! single-user PostgreSQL template, PROTOCOL.md "Single user").
//!
//! 1. The pending version must be for the current user on the current host.
//! 2. Log in as current, the one login of the usual case. When the server rejects it: the
//!    pending credentials logging in mean a retry after the password was set (done);
//!    otherwise an `AWSPREVIOUS` version for the same user and host may log in (an earlier
//!    attempt may have changed the password and died before finishSecret). See
//!    `rotation::database::login::single_user_session`.
//! 3. As that user, set the password to the pending one, hashed client-side.

use rotation::database::login::{
    check_pending_is_current_user, single_user_session, PreviousWording, SingleUserSession,
};
use rotation::target::RollBack;
use rotation::{RotationError, SecretVersions, TargetError};
use sqlx::{Connection, PgConnection};

use crate::connection::Connector;
use crate::sql;
use crate::target::database_secret;

pub async fn apply(
    connector: &Connector,
    versions: &SecretVersions<'_>,
) -> Result<(), RotationError> {
    let arn = versions.secret_arn();
    let pending = database_secret(versions.pending().await?, "AWSPENDING version")?;
    let current = database_secret(versions.current().await?, "AWSCURRENT version")?;
    // The AWS PostgreSQL template's texts.
    let wording = PreviousWording {
        user: "previous valid user",
        host: "current previous valid",
    };
    let session = single_user_session(
        versions,
        &pending,
        &current,
        database_secret,
        wording,
        connector,
    )
    .await?;
    let mut connection = match session {
        SingleUserSession::LoggedIn(connection, _) => connection,
        SingleUserSession::AlreadySet(connection) => {
            close(connection).await;
            tracing::info!(
                "setSecret: AWSPENDING secret is already set as password in PostgreSQL DB for \
                 secret arn {arn}."
            );
            return Ok(());
        }
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

async fn close(connection: PgConnection) {
    let _ = connection.close().await;
}
