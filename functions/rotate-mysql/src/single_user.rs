//! setSecret for the single-user strategy: the user changes its own password (AWS's
//! single-user MySQL and MariaDB templates, PROTOCOL.md "Single user").
//!
//! 1. The pending version must be for the current user on the current host.
//! 2. Log in as current, the one login of the usual case. When the server rejects it: the
//!    pending credentials logging in mean a retry after the password was set (done);
//!    otherwise an `AWSPREVIOUS` version for the same user and host may log in (an earlier
//!    attempt may have changed the password and died before finishSecret). See
//!    `rotation::database::login::single_user_set_password`.
//! 3. As that user, change the password of the account the server logged it in as
//!    (`CURRENT_USER()`), with the statement the **server** needs (`sql::set_own_password`):
//!    the dialect follows `VERSION()` and the session's `sql_mode`, whatever the secret's
//!    `engine` says. When the same user name has accounts for other hosts (`'app'@'10.0.%'`
//!    besides `'app'@'127.0.0.1'`), only the account this function logs in as changes: the
//!    others are other credentials, which a user cannot change without privileges.

use rotation::database::login::{single_user_roll_back, single_user_set_password, PreviousWording};
use rotation::target::RollBack;
use rotation::{RotationError, SecretVersions, TargetError};
use secrecy::{ExposeSecret, SecretString};
use sqlx::MySqlConnection;

use crate::connection::Connector;
use crate::sql;
use crate::target::database_secret;

pub async fn apply(
    connector: &Connector,
    versions: &SecretVersions<'_>,
) -> Result<(), RotationError> {
    let pending = database_secret(versions.pending().await?, "AWSPENDING version")?;
    let current = database_secret(versions.current().await?, "AWSCURRENT version")?;
    // The AWS MariaDB template says "last valid user", the MySQL one "previous valid user".
    let wording = PreviousWording {
        user: if pending.engine == "mariadb" {
            "last valid user"
        } else {
            "previous valid user"
        },
        host: "previous host",
    };
    single_user_set_password(
        connector,
        versions,
        &pending,
        &current,
        database_secret,
        wording,
        database_name(&pending.engine),
    )
    .await
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
    current.dbname = None;
    pending.dbname = None;
    single_user_roll_back(connector, versions, &pending, &current).await
}

/// As the logged-in user: read the server's dialect and the account the server matched, then
/// change that account's password (`login_password` is the one it logged in with).
pub async fn change_own_password(
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

/// The database's name in the AWS templates' log lines: their MariaDB template says
/// "MariaDB DB", the MySQL one "MySQL DB".
fn database_name(engine: &str) -> &'static str {
    if engine == "mariadb" {
        "MariaDB"
    } else {
        "MySQL"
    }
}
