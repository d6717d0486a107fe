//! setSecret for the single-user strategy: the user changes its own password (AWS's
//! single-user MySQL and MariaDB templates, PROTOCOL.md "Single user").
//!
//! 1. The pending credentials already log in: a retry after the password was set; done.
//! 2. The pending version must be for the current user on the current host.
//! 3. Log in as current; when the server rejects that and an `AWSPREVIOUS` version for the same
//!    user and host exists, log in as previous (an earlier attempt may have changed the
//!    password and died before finishSecret).
//! 4. As that user, change the password of the account the server logged it in as
//!    (`CURRENT_USER()`), with the statement the **server** needs (`sql::set_own_password`):
//!    the dialect follows `VERSION()` and the session's `sql_mode`, whatever the secret's
//!    `engine` says. When the same user name has accounts for other hosts (`'app'@'10.0.%'`
//!    besides `'app'@'127.0.0.1'`), only the account this function logs in as changes: the
//!    others are other credentials, which a user cannot change without privileges.

use rotation::database::login::{
    check_pending_is_current_user, unable_to_log_in, usable_previous, PreviousWording,
};
use rotation::database::DatabaseSecret;
use rotation::target::RollBack;
use rotation::{RotationError, SecretVersions, TargetError};
use secrecy::{ExposeSecret, SecretString};
use sqlx::{Connection, MySqlConnection};

use crate::connection::{Connector, LoginError};
use crate::sql;
use crate::target::database_secret;

pub async fn apply(
    connector: &Connector,
    versions: &SecretVersions<'_>,
) -> Result<(), RotationError> {
    let arn = versions.secret_arn();
    let pending = database_secret(versions.pending().await?, "AWSPENDING version")?;
    let database = database_name(&pending.engine);

    // A retry after the password was set: nothing to do. As in the AWS templates, no further
    // check is needed: these credentials work already.
    let pending_error = match connector.connect(&pending).await {
        Ok(connection) => {
            close(connection).await;
            tracing::info!(
                "setSecret: AWSPENDING secret is already set as password in {database} DB for \
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

    let (mut connection, login_password) = match connector.connect(&current).await {
        Ok(connection) => (connection, current.password.clone()),
        Err(current_error) if current_error.is_rejected() => {
            match login_as_previous(connector, versions, &pending, &current).await? {
                Some((Ok(connection), password)) => (connection, password),
                Some((Err(previous_error), _)) => {
                    return Err(unable_to_log_in(arn, previous_error))
                }
                None => return Err(unable_to_log_in(arn, current_error)),
            }
        }
        Err(current_error) => return Err(unable_to_log_in(arn, current_error)),
    };

    let changed = change_own_password(
        &mut connection,
        &pending.username,
        &pending.password,
        &login_password,
    )
    .await;
    close(connection).await;
    changed?;
    rotation::crash::after(rotation::crash::points::PASSWORD_SET);
    tracing::info!(
        "setSecret: Successfully set password for user {} in {database} DB for secret arn {arn}.",
        pending.username
    );
    Ok(())
}

/// testSecret failed: when the account is on the pending password, put it back on the current one
/// (logged in with the pending password, as the user), so applications using `AWSCURRENT` work
/// again. The current password already working means there is nothing to undo.
///
/// Both logins leave out the secret's database: a test that failed because access to that
/// database was taken away must not stop the password from being restored.
pub async fn roll_back(
    connector: &Connector,
    versions: &SecretVersions<'_>,
) -> Result<RollBack, RotationError> {
    let mut current = database_secret(versions.current().await?, "AWSCURRENT version")?;
    let mut pending = database_secret(versions.pending().await?, "AWSPENDING version")?;
    check_pending_is_current_user(&pending, &current)?;
    current.dbname = None;
    pending.dbname = None;
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
    let restored = change_own_password(
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

/// As the logged-in user: read the server's dialect and the account the server matched, then
/// change that account's password.
async fn change_own_password(
    connection: &mut MySqlConnection,
    user: &str,
    password: &SecretString,
    login_password: &SecretString,
) -> Result<(), TargetError> {
    let info = sql::server_info(connection).await?;
    let (account_user, account_host) = sql::current_account(connection).await?;
    let account = format!("'{account_user}'@'{account_host}'");
    tracing::info!(
        "setSecret: user {user} is logged in as account {account} on {info}; changing that \
         account's password."
    );
    let statement = sql::set_own_password_replacing(&info, password, login_password);
    sql::execute(
        connection,
        &format!("changing the password of account {account}"),
        statement.expose_secret(),
    )
    .await
}

/// Logs in with `AWSPREVIOUS`, when it exists and is for the pending user and host. `None` when
/// there is no usable previous version; otherwise the login's outcome and the password used.
async fn login_as_previous(
    connector: &Connector,
    versions: &SecretVersions<'_>,
    pending: &DatabaseSecret,
    current: &DatabaseSecret,
) -> Result<Option<(Result<MySqlConnection, LoginError>, SecretString)>, RotationError> {
    // The AWS MariaDB template says "last valid user", the MySQL one "previous valid user".
    let wording = PreviousWording {
        user: if pending.engine == "mariadb" {
            "last valid user"
        } else {
            "previous valid user"
        },
        host: "previous host",
    };
    match usable_previous(versions, pending, current, database_secret, wording).await? {
        Some(previous) => {
            let login = connector.connect(&previous).await;
            Ok(Some((login, previous.password)))
        }
        None => Ok(None),
    }
}

/// The database's name in the AWS templates' log lines: their MariaDB template says
/// "MariaDB DB", the MySQL one "MySQL DB".
fn database_name(engine: &str) -> &'static str {
    if engine == "mariadb" {
        "MariaDB"
    } else {
        "MySQL"
    }
}

async fn close(connection: MySqlConnection) {
    let _ = connection.close().await;
}
