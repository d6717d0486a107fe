//! setSecret for the single-user strategy: the user changes its own password (AWS's
//! single-user PostgreSQL template, PROTOCOL.md "Single user").
//!
//! 1. The pending version must be for the current user on the current host.
//! 2. Log in as current, the one login of the usual case. When the server rejects it: the
//!    pending credentials logging in mean a retry after the password was set (done);
//!    otherwise an `AWSPREVIOUS` version for the same user and host may log in (an earlier
//!    attempt may have changed the password and died before finishSecret). See
//!    `rotation::database::login::single_user_set_password`.
//! 3. As that user, set the password to the pending one, hashed client-side
//!    (`Connector::set_own_password`, `sql::set_password`).

use rotation::database::login::{single_user_roll_back, single_user_set_password, PreviousWording};
use rotation::target::RollBack;
use rotation::{RotationError, SecretVersions};

use crate::connection::Connector;
use crate::target::database_secret;

pub async fn apply(
    connector: &Connector,
    versions: &SecretVersions<'_>,
) -> Result<(), RotationError> {
    let pending = database_secret(versions.pending().await?, "AWSPENDING version")?;
    let current = database_secret(versions.current().await?, "AWSCURRENT version")?;
    // The AWS PostgreSQL template's texts.
    let wording = PreviousWording {
        user: "previous valid user",
        host: "current previous valid",
    };
    single_user_set_password(
        connector,
        versions,
        &pending,
        &current,
        database_secret,
        wording,
        "PostgreSQL",
    )
    .await
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
    single_user_roll_back(connector, versions, &pending, &current).await
}
