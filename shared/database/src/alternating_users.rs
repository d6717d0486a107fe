//! Alternating users (AWS's multi-user templates, improved), written once for every engine.
//!
//! `AWSCURRENT` alternates between `name` and `name_clone`; each rotation sets the password of
//! the user that is not current, so the credentials behind `AWSPREVIOUS` keep working until the
//! next rotation.
//!
//! setSecret:
//! 1. The pending user must be current's alternate, on current's host.
//! 2. Log in as current first: whoever can write the pending version must also hold working
//!    credentials (protection against a confused deputy). The session also tells the account the
//!    server logged it in as, which must be the current user's (on MySQL it carries the host
//!    part: `'app'@'10.0.%'` has a clone `'app_clone'@'10.0.%'`, never `'app_clone'@'%'`).
//! 3. Read the master secret (`masterarn`, see [`crate::master`]); its host must be the user's,
//!    or, on RDS, the user's host a read replica or reader of it. Neither the current nor the
//!    alternate user may be the master user: a secret's content never points the master at its
//!    own account (refused before any statement). The master logs in to the user's database,
//!    with its own `ssl` setting.
//! 4. As master, the engine makes the alternate user equal to the current one and sets its
//!    password ([`Engine::make_alternate_like`]). A master that may not set the password
//!    leaves it to the alternate user, who logs in with its `AWSPREVIOUS` credentials (unless
//!    the pending ones log in already: a retry after the change) and changes its own password.
//!
//! A retry, after a failure anywhere or after success, redoes the comparison (nothing to do when
//! the users are equal) and sets the password again. The pending credentials are never tried
//! first (the AWS templates' check): that would cost a login every rotation and save work only on
//! a retry.

use rotation::{RotationError, SecretVersions, TargetError};

use crate::connection::{close, unable_to_log_in, Connector};
use crate::crash_points;
use crate::engine::{Engine, NameLimit, PasswordSet};
use crate::master::MasterSecrets;
use crate::secret::DatabaseSecret;

/// Alternating users' setSecret, once both versions are read as database secrets.
/// `parse` reads another version (`AWSPREVIOUS`) the same way.
pub async fn set_password<E: Engine>(
    connector: &Connector<E>,
    masters: &MasterSecrets,
    versions: &SecretVersions<'_>,
    pending: &DatabaseSecret,
    current: &DatabaseSecret,
    parse: impl FnOnce(&rotation::SecretDocument, &str) -> Result<DatabaseSecret, TargetError>,
) -> Result<(), RotationError> {
    let engine = connector.engine();
    let arn = versions.secret_arn();
    check_pending_is_alternate(pending, current)?;

    // Log in as current first, and learn the account it logs in as.
    let mut connection = connector.connect(current).await.map_err(|error| {
        unable_to_log_in(format!("using current credentials for secret {arn}"), error)
    })?;
    let account = engine.logged_in_as(&mut connection).await;
    close(connection).await;
    let model = account?;
    if engine.user_of(&model) != current.username {
        return Err(TargetError::invalid_secret(format!(
            "the current credentials of secret {arn} log in as account {model}, not as user {}",
            current.username
        ))
        .into());
    }

    let master_arn = current.master_arn.clone().ok_or_else(|| {
        TargetError::invalid_secret(format!(
            "AWSCURRENT version of secret {arn}: masterarn key is missing from secret JSON"
        ))
    })?;
    let mut master = masters.resolve(&master_arn).await?;
    // The master works in the user's database (AWS PR #122).
    master.dbname = current.dbname.clone();
    masters.check_host(current, &master).await?;
    check_master_is_neither(&master, &master_arn, current, pending)?;
    let mut connection = connector.connect(&master).await.map_err(|error| {
        unable_to_log_in(
            format!("using credentials in master secret {master_arn}"),
            error,
        )
    })?;
    let outcome = engine
        .make_alternate_like(
            &mut connection,
            &model,
            &pending.username,
            &pending.password,
        )
        .await;
    close(connection).await;
    match outcome? {
        PasswordSet::ByMaster => {}
        PasswordSet::NotByMaster(why) => {
            change_own_password(connector, versions, &master, pending, why, parse).await?;
        }
    }
    tracing::info!(
        "setSecret: Successfully set password for {} in {} DB for secret arn {arn}.",
        pending.username,
        engine.server_name(&pending.engine),
    );
    Ok(())
}

/// The master user must be neither of the pair: the engine would make the master "like" the
/// user (revoking what the master holds beyond it) or change the master's own password, which
/// would leave the master secret stale. Compared by user name, which on MySQL covers every host
/// part of the master's account.
pub fn check_master_is_neither(
    master: &DatabaseSecret,
    master_arn: &str,
    current: &DatabaseSecret,
    pending: &DatabaseSecret,
) -> Result<(), TargetError> {
    for (user, role) in [
        (&pending.username, "pending"),
        (&current.username, "current"),
    ] {
        if *user == master.username {
            return Err(TargetError::invalid_secret(format!(
                "Attempting to modify user {user} which is the master user of secret \
                 {master_arn}: the {role} user of an alternating-users secret may not be the \
                 master user"
            )));
        }
    }
    Ok(())
}

/// With a master that may not set passwords: the pending user logs in with its `AWSPREVIOUS`
/// credentials and changes its own password, as in single-user rotation.
async fn change_own_password<E: Engine>(
    connector: &Connector<E>,
    versions: &SecretVersions<'_>,
    master: &DatabaseSecret,
    pending: &DatabaseSecret,
    not_by_master: &str,
    parse: impl FnOnce(&rotation::SecretDocument, &str) -> Result<DatabaseSecret, TargetError>,
) -> Result<(), RotationError> {
    let cannot = |why: String| {
        TargetError::rejected(format!(
            "master user {} may not set the password of user {} ({not_by_master}), and {why}",
            master.username, pending.username
        ))
    };
    // Done already by an earlier attempt: the previous credentials no longer log in then.
    match connector.connect(pending).await {
        Ok(connection) => {
            close(connection).await;
            tracing::info!(
                "setSecret: AWSPENDING secret is already set as password in {} DB for user {}.",
                connector.engine().server_name(&pending.engine),
                pending.username
            );
            return Ok(());
        }
        Err(error) if error.is_rejected() => {}
        Err(error) => return Err(TargetError::from(error).into()),
    }
    let Some(document) = versions.previous().await? else {
        return Err(cannot(
            "the secret has no AWSPREVIOUS version for the user to log in with".into(),
        )
        .into());
    };
    let mut previous = parse(document, "AWSPREVIOUS version")?;
    if previous.username != pending.username || previous.host != pending.host {
        return Err(cannot(format!(
            "AWSPREVIOUS is for user {} on host {}, not for it",
            previous.username, previous.host
        ))
        .into());
    }
    // The pending version's connection settings are the ones being made to work.
    previous.port = pending.port;
    previous.dbname = pending.dbname.clone();
    previous.ssl = pending.ssl;
    let mut connection = connector.connect(&previous).await.map_err(|error| {
        cannot(format!(
            "its AWSPREVIOUS credentials do not log in: {error}"
        ))
    })?;
    let changed = connector
        .engine()
        .set_own_password(
            &mut connection,
            &pending.username,
            &pending.password,
            &previous.password,
        )
        .await;
    close(connection).await;
    changed?;
    rotation::crash::after(crash_points::PASSWORD_SET);
    Ok(())
}

/// The suffix that tells the alternate user from the original, as in the AWS templates.
pub const CLONE_SUFFIX: &str = "_clone";

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
    let alternate = alternate_username(&current.username, NameLimit::Characters(usize::MAX))?;
    pending.check_is_for(&alternate, current, "current user or clone")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::tests::postgres_secret;

    fn secret(user: &str) -> DatabaseSecret {
        postgres_secret(user, "db")
    }

    #[test]
    fn a_name_alternates_with_its_clone_within_the_engines_limit() {
        let bytes = NameLimit::Bytes(63);
        assert_eq!(alternate_username("app", bytes).expect("ok"), "app_clone");
        assert_eq!(alternate_username("app_clone", bytes).expect("ok"), "app");
        assert_eq!(
            alternate_username("a_clone_clone", bytes).expect("ok"),
            "a_clone"
        );
        assert!(alternate_username(&"é".repeat(28), bytes).is_ok());
        assert!(alternate_username(&"é".repeat(29), bytes).is_err());
        assert!(alternate_username(&"é".repeat(29), NameLimit::Characters(63)).is_ok());
        let error = alternate_username(&"a".repeat(12), NameLimit::Characters(16))
            .expect_err("17 characters");
        assert_eq!(
            error.message,
            "Unable to clone user, username length with _clone appended would exceed 16 characters"
        );
        assert!(alternate_username("_clone", bytes).is_err());
    }

    #[test]
    fn the_pending_user_must_be_the_current_users_alternate_on_its_host() {
        let current = secret("app");
        assert!(check_pending_is_alternate(&secret("app_clone"), &current).is_ok());
        let error = check_pending_is_alternate(&secret("root"), &current).expect_err("other");
        assert_eq!(
            error.message,
            "Attempting to modify user root other than current user or clone app"
        );
        let mut elsewhere = secret("app_clone");
        elsewhere.host = "other".into();
        assert!(check_pending_is_alternate(&elsewhere, &current).is_err());
    }

    #[test]
    fn neither_user_of_the_pair_may_be_the_master_user() {
        let master = secret("admin");
        let arn = "arn:master";
        assert!(
            check_master_is_neither(&master, arn, &secret("app"), &secret("app_clone")).is_ok()
        );
        let error = check_master_is_neither(&master, arn, &secret("admin_clone"), &secret("admin"))
            .expect_err("pending is the master");
        assert_eq!(error.error_type(), "InvalidSecret");
        assert!(
            error.message.contains("the pending user"),
            "{}",
            error.message
        );
        let error = check_master_is_neither(&master, arn, &secret("admin"), &secret("admin_clone"))
            .expect_err("current is the master");
        assert!(
            error.message.contains("the current user"),
            "{}",
            error.message
        );
    }
}
