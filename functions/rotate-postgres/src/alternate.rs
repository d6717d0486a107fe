//! The PostgreSQL dialect of alternating users: the master makes the alternate role like the
//! user's (the strategy itself, with its checks and logins, is
//! `rotation_database::alternating_users`).
//!
//! As master, in one transaction:
//! - a pending role that does not exist is created with LOGIN and the current role's
//!   attributes (INHERIT, CREATEDB, CREATEROLE, CONNECTION LIMIT, VALID UNTIL) and per-role
//!   settings (global and per database);
//! - it is granted every role the current role is a member of (with the same ADMIN OPTION,
//!   and from PostgreSQL 16 the same INHERIT and SET options) and the current role itself, so
//!   it can use what the current user owns; a membership that would make a cycle
//!   (`name_clone` is already a member of `name`) is left out;
//! - when the pending role is the clone, it is kept equal to the user: memberships the user no
//!   longer has are revoked, attributes and per-role settings set to the user's. The clone never
//!   holds a privilege the user lacks. The user, when pending, only gains what its clone has;
//! - a master that may not grant one of those roles (from PostgreSQL 16: lacks ADMIN OPTION on
//!   it) is refused with `TargetRejected` naming the roles, before any change;
//! - the password is set to a verifier hashed on the client (the plaintext never reaches the
//!   server).
//!
//! A failure rolls everything back, and a retry starts from the same state. A master without
//! SUPERUSER or CREATEROLE (from PostgreSQL 16, also without ADMIN OPTION on the role) cannot set
//! another role's password: the memberships are still made equal, and the strategy has the role
//! change its own password.

use std::collections::{BTreeMap, BTreeSet};

use rotation::TargetError;
use rotation_database::{batches, crash_points, PasswordSet, BATCH_BYTES};
use secrecy::SecretString;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::engine::Postgres;
use crate::sql::{self, quote_identifier, quote_literal, within_timeout};

/// A role's attributes the clone inherits: INHERIT, CREATEDB, CREATEROLE, CONNECTION LIMIT and
/// VALID UNTIL (as the server's text).
pub type RoleAttributes = (bool, bool, bool, i32, Option<String>);

/// As master, makes `role` like `model` and sets its password when the master may (see the
/// module's documentation).
pub async fn make_like(
    connection: &mut PgConnection,
    model: &str,
    role: &str,
    password: &SecretString,
) -> Result<PasswordSet, TargetError> {
    sql::check_name(role)?;
    let mut transaction = within_timeout("starting a transaction", connection.begin()).await?;
    let conn: &mut PgConnection = &mut transaction;

    let exists = within_timeout(
        &format!("looking up role {role}"),
        sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_roles WHERE rolname = $1")
            .bind(role)
            .fetch_optional(&mut *conn),
    )
    .await?
    .is_some();

    // The clone is kept equal to the user; the user, when pending, only gains.
    let keep_equal = role == format!("{model}_clone");
    let set_by_master = if exists {
        let can = master_can_set_password(conn, role).await?;
        if can && keep_equal {
            // What may set the password may set the attributes and settings too.
            make_role_like(conn, model, role, true).await?;
        }
        if !can {
            tracing::info!(
                "setSecret: the master user may not set the password of role {role} (it has \
                 neither SUPERUSER nor CREATEROLE, or lacks ADMIN OPTION on {role}); the role will \
                 change its own password"
            );
        }
        can
    } else {
        make_role_like(conn, model, role, false).await?;
        true
    };
    equalise_memberships(conn, model, role, keep_equal).await?;
    if set_by_master {
        sql::set_password(conn, role, password).await?;
    }
    within_timeout("committing", transaction.commit()).await?;
    // One transaction creates the role, grants and (usually) sets the password: past it, the
    // clone exists and, when the master set it, holds the pending password.
    rotation::crash::after(if set_by_master {
        crash_points::PASSWORD_SET
    } else {
        crash_points::CLONE_CREATED
    });
    Ok(if set_by_master {
        PasswordSet::ByMaster
    } else {
        PasswordSet::NotByMaster(
            "it has neither SUPERUSER nor CREATEROLE, or lacks ADMIN OPTION on the role",
        )
    })
}

/// Whether the master may change `role`'s password: a superuser may; otherwise PostgreSQL asks
/// for CREATEROLE and, from version 16, ADMIN OPTION on the role too (which the creator of a
/// role holds).
async fn master_can_set_password(conn: &mut PgConnection, role: &str) -> Result<bool, TargetError> {
    within_timeout(
        "reading the master user's attributes",
        sqlx::query_scalar::<_, bool>(
            "SELECT rolsuper OR (rolcreaterole AND \
               (current_setting('server_version_num')::int < 160000 \
                OR pg_has_role(current_user, $1, 'MEMBER WITH ADMIN OPTION'))) \
             FROM pg_roles WHERE rolname = current_user",
        )
        .bind(role)
        .fetch_one(&mut *conn),
    )
    .await
}

/// `role`'s attributes (INHERIT, CREATEDB, CREATEROLE, CONNECTION LIMIT, VALID UNTIL), or
/// `None` when it does not exist.
async fn attributes(
    conn: &mut PgConnection,
    role: &str,
) -> Result<Option<RoleAttributes>, TargetError> {
    within_timeout(
        &format!("reading the attributes of role {role}"),
        sqlx::query_as::<_, RoleAttributes>(
            "SELECT rolinherit, rolcreatedb, rolcreaterole, rolconnlimit, \
             rolvaliduntil::text AS valid_until FROM pg_roles WHERE rolname = $1",
        )
        .bind(role)
        .fetch_optional(&mut *conn),
    )
    .await
}

/// `role`'s per-role settings: per database (`None`: every database), `name=value` entries.
async fn settings(
    conn: &mut PgConnection,
    role: &str,
) -> Result<Vec<(Option<String>, Vec<String>)>, TargetError> {
    within_timeout(
        &format!("reading the settings of role {role}"),
        sqlx::query_as::<_, (Option<String>, Vec<String>)>(
            "SELECT d.datname::text, s.setconfig FROM pg_db_role_setting s \
             JOIN pg_roles r ON r.oid = s.setrole \
             LEFT JOIN pg_database d ON d.oid = s.setdatabase \
             WHERE r.rolname = $1 ORDER BY d.datname NULLS FIRST",
        )
        .bind(role)
        .fetch_all(&mut *conn),
    )
    .await
}

/// `VALID UNTIL 'infinity'` is no expiry, as NULL is.
fn without_infinite_expiry(mut attributes: RoleAttributes) -> RoleAttributes {
    if attributes.4.as_deref() == Some("infinity") {
        attributes.4 = None;
    }
    attributes
}

/// The attribute clause of `CREATE ROLE`/`ALTER ROLE` for `attributes`. With `lift_expiry`, a
/// model without expiry is written `VALID UNTIL 'infinity'`, so the role's own expiry goes.
pub fn attribute_clause(attributes: &RoleAttributes, lift_expiry: bool) -> String {
    let (inherit, createdb, createrole, connection_limit, valid_until) = attributes;
    let flag = |on: bool, name: &str| {
        if on {
            name.to_owned()
        } else {
            format!("NO{name}")
        }
    };
    let mut clause = format!(
        "{} {} {} CONNECTION LIMIT {connection_limit}",
        flag(*inherit, "INHERIT"),
        flag(*createdb, "CREATEDB"),
        flag(*createrole, "CREATEROLE"),
    );
    match valid_until {
        // The server's own text for the timestamp, read in this session: it parses back exactly.
        Some(valid_until) => {
            clause.push_str(&format!(" VALID UNTIL {}", quote_literal(valid_until)))
        }
        None if lift_expiry => clause.push_str(" VALID UNTIL 'infinity'"),
        None => {}
    }
    clause
}

/// Makes `role` like `model`: creates it (`WITH LOGIN`) when it does not exist, otherwise sets
/// its attributes and per-role settings to `model`'s where they differ (the clone kept equal
/// to the user).
async fn make_role_like(
    conn: &mut PgConnection,
    model: &str,
    role: &str,
    exists: bool,
) -> Result<(), TargetError> {
    let wanted = attributes(conn, model)
        .await?
        .ok_or_else(|| TargetError::rejected(format!("role {model} does not exist")))?;
    if !exists {
        let statement = format!(
            "CREATE ROLE {} WITH LOGIN {}",
            quote_identifier(role),
            attribute_clause(&wanted, false)
        );
        execute(conn, &format!("creating role {role}"), statement).await?;
        tracing::info!("setSecret: created role {role} like {model}");
    } else if let Some(held) = attributes(conn, role)
        .await?
        .map(without_infinite_expiry)
        .filter(|held| *held != without_infinite_expiry(wanted.clone()))
    {
        // An expiry the role has and the model lacks is lifted with 'infinity'.
        let statement = format!(
            "ALTER ROLE {} WITH {}",
            quote_identifier(role),
            attribute_clause(&wanted, held.4.is_some())
        );
        execute(
            conn,
            &format!("setting the attributes of role {role}"),
            statement,
        )
        .await?;
        tracing::info!("setSecret: set the attributes of role {role} to those of {model}");
    }

    let model_settings = settings(conn, model).await?;
    if exists {
        let held = settings(conn, role).await?;
        if held == model_settings {
            return Ok(());
        }
        for (database, _) in held {
            let scope = match &database {
                Some(database) => format!(" IN DATABASE {}", quote_identifier(database)),
                None => String::new(),
            };
            execute(
                conn,
                &format!("resetting the settings of role {role}"),
                format!("ALTER ROLE {}{scope} RESET ALL", quote_identifier(role)),
            )
            .await?;
        }
        tracing::info!("setSecret: set the settings of role {role} to those of {model}");
    }
    for (database, entries) in model_settings {
        for entry in entries {
            let Some(statement) = alter_role_set(role, database.as_deref(), &entry) else {
                tracing::warn!(
                    "setSecret: skipped a setting of role {model} that is not name=value"
                );
                continue;
            };
            execute(
                conn,
                &format!("copying a setting of role {model} to {role}"),
                statement,
            )
            .await?;
        }
    }
    Ok(())
}

/// A membership of a role in `role`, with the options PostgreSQL 16+ records per grant
/// (before 16 every membership inherits and allows SET ROLE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub role: String,
    pub admin: bool,
    pub inherit: bool,
    pub set: bool,
}

/// One change to a role's memberships.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// Grant, or on 16+ re-grant with these exact options (which replaces the grant's options).
    Grant(Membership),
    /// Take the membership away (every grant of it, each by its grantor on 16+).
    Revoke { role: String, grantors: Vec<String> },
    /// Keep the membership, without ADMIN OPTION (before 16; on 16+ a re-grant does it).
    RevokeAdmin { role: String },
}

impl MembershipChange {
    fn role(&self) -> &str {
        match self {
            MembershipChange::Grant(membership) => &membership.role,
            MembershipChange::Revoke { role, .. } | MembershipChange::RevokeAdmin { role } => role,
        }
    }
}

/// The first major version whose memberships carry INHERIT and SET options, and whose
/// CREATEROLE no longer lets a role grant roles it lacks ADMIN OPTION on.
const MEMBERSHIP_OPTIONS_SINCE: i32 = 160000;

/// What `role` needs so its memberships are those of `model` (`wanted`, which includes
/// `model` itself), given what it `held`. A membership in `cycle` (`role` itself and its own
/// members) is left out: PostgreSQL refuses cycles.
///
/// With `keep_equal` (the pending role is the clone, `model` the user) the clone becomes equal
/// to the user: options copied exactly, memberships the user lacks revoked. Without it (the
/// user is pending, modelled on its clone) nothing is taken away: what the clone was granted is
/// added, and ADMIN OPTION the user lacks is added too.
pub fn plan_memberships(
    wanted: &[Membership],
    held: &BTreeMap<String, (Membership, Vec<String>)>,
    cycle: &BTreeSet<String>,
    keep_equal: bool,
    with_options: bool,
) -> Vec<MembershipChange> {
    let mut changes = Vec::new();
    for want in wanted.iter().filter(|want| !cycle.contains(&want.role)) {
        let Some((have, _)) = held.get(&want.role) else {
            changes.push(MembershipChange::Grant(want.clone()));
            continue;
        };
        if keep_equal {
            if with_options {
                if have != want {
                    changes.push(MembershipChange::Grant(want.clone()));
                }
            } else if want.admin && !have.admin {
                changes.push(MembershipChange::Grant(want.clone()));
            } else if have.admin && !want.admin {
                changes.push(MembershipChange::RevokeAdmin {
                    role: want.role.clone(),
                });
            }
        } else if want.admin && !have.admin {
            // Only ever more: the options the role has stay on, ADMIN is added.
            changes.push(MembershipChange::Grant(Membership {
                role: want.role.clone(),
                admin: true,
                inherit: want.inherit || have.inherit,
                set: want.set || have.set,
            }));
        }
    }
    if keep_equal {
        let wanted_roles: BTreeSet<&str> = wanted.iter().map(|want| want.role.as_str()).collect();
        for (role, (_, grantors)) in held {
            if !wanted_roles.contains(role.as_str()) {
                changes.push(MembershipChange::Revoke {
                    role: role.clone(),
                    grantors: grantors.clone(),
                });
            }
        }
    }
    changes
}

/// The statement that makes `change` to `member`'s memberships. From PostgreSQL 16
/// (`with_options`) a grant states ADMIN, INHERIT and SET explicitly, and a revoke names each
/// grantor (a REVOKE without GRANTED BY takes away only the current user's own grant).
pub fn membership_statement(change: &MembershipChange, member: &str, with_options: bool) -> String {
    let member = quote_identifier(member);
    match change {
        MembershipChange::Grant(membership) => {
            let role = quote_identifier(&membership.role);
            let on = |flag: bool| if flag { "TRUE" } else { "FALSE" };
            if with_options {
                format!(
                    "GRANT {role} TO {member} WITH ADMIN {}, INHERIT {}, SET {}",
                    on(membership.admin),
                    on(membership.inherit),
                    on(membership.set)
                )
            } else if membership.admin {
                format!("GRANT {role} TO {member} WITH ADMIN OPTION")
            } else {
                format!("GRANT {role} TO {member}")
            }
        }
        MembershipChange::Revoke { role, grantors } => {
            let role = quote_identifier(role);
            if with_options && !grantors.is_empty() {
                grantors
                    .iter()
                    .map(|grantor| {
                        format!(
                            "REVOKE {role} FROM {member} GRANTED BY {}",
                            quote_identifier(grantor)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                format!("REVOKE {role} FROM {member}")
            }
        }
        MembershipChange::RevokeAdmin { role } => {
            format!(
                "REVOKE ADMIN OPTION FOR {} FROM {member}",
                quote_identifier(role)
            )
        }
    }
}

/// The memberships of `role` (one row per role it is a member of; on 16+ the options of all
/// its grants of that role together), with each membership's grantors.
async fn memberships(
    conn: &mut PgConnection,
    role: &str,
    with_options: bool,
) -> Result<Vec<(Membership, Vec<String>)>, TargetError> {
    let options = if with_options {
        "bool_or(m.inherit_option), bool_or(m.set_option)"
    } else {
        "true, true"
    };
    let rows: Vec<(String, bool, bool, bool, Vec<String>)> = within_timeout(
        &format!("reading the memberships of role {role}"),
        sqlx::query_as(AssertSqlSafe(format!(
            "SELECT r.rolname::text, bool_or(m.admin_option), {options}, \
                    array_agg(DISTINCT g.rolname::text) FILTER (WHERE g.rolname IS NOT NULL) \
             FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid \
             JOIN pg_roles u ON u.oid = m.member LEFT JOIN pg_roles g ON g.oid = m.grantor \
             WHERE u.rolname = $1 GROUP BY r.rolname"
        )))
        .bind(role)
        .fetch_all(&mut *conn),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|(role, admin, inherit, set, grantors)| {
            (
                Membership {
                    role,
                    admin,
                    inherit,
                    set,
                },
                grantors,
            )
        })
        .collect())
}

/// Gives `role` the memberships `model` has (with their options on PostgreSQL 16+) and
/// membership in `model` itself, leaving out any grant that would make a membership cycle. With
/// `keep_equal` (`role` is the clone of the user `model`) it also takes away what `model` no
/// longer has, so the clone never holds a membership the user lacks. A master that may not
/// grant or revoke one of those roles is refused before any statement, naming the roles.
async fn equalise_memberships(
    conn: &mut PgConnection,
    model: &str,
    role: &str,
    keep_equal: bool,
) -> Result<(), TargetError> {
    let version: i32 = within_timeout(
        "reading the server's version",
        sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
            .fetch_one(&mut *conn),
    )
    .await?;
    let with_options = version >= MEMBERSHIP_OPTIONS_SINCE;
    let mut wanted: Vec<Membership> = memberships(conn, model, with_options)
        .await?
        .into_iter()
        .map(|(membership, _)| membership)
        .collect();
    // Membership in the user itself, so the clone can use what the user owns.
    wanted.push(Membership {
        role: model.to_owned(),
        admin: false,
        inherit: true,
        set: true,
    });
    let held: BTreeMap<String, (Membership, Vec<String>)> = memberships(conn, role, with_options)
        .await?
        .into_iter()
        .map(|(membership, grantors)| (membership.role.clone(), (membership, grantors)))
        .collect();
    // `role` and every role that is (directly or not) a member of it: granting one of these to
    // `role` would make a cycle, which PostgreSQL refuses.
    let members_of_role: BTreeSet<String> = within_timeout(
        &format!("reading the members of role {role}"),
        sqlx::query_scalar::<_, String>(
            "WITH RECURSIVE members(oid) AS ( \
               SELECT oid FROM pg_roles WHERE rolname = $1 \
               UNION SELECT m.member FROM pg_auth_members m JOIN members ON m.roleid = members.oid) \
             SELECT r.rolname::text FROM members JOIN pg_roles r ON r.oid = members.oid",
        )
        .bind(role)
        .fetch_all(&mut *conn),
    )
    .await?
    .into_iter()
    .collect();

    let changes = plan_memberships(&wanted, &held, &members_of_role, keep_equal, with_options);
    if changes.is_empty() {
        return Ok(());
    }
    let roles: Vec<String> = changes
        .iter()
        .map(|change| change.role().to_owned())
        .collect();
    check_master_may_grant(conn, role, &roles, with_options).await?;
    let statements: Vec<String> = changes
        .iter()
        .map(|change| membership_statement(change, role, with_options))
        .collect();
    // Many statements per round trip: a role in a thousand roles costs a few round trips, not a
    // thousand. The transaction around them keeps a failure from leaving part of them.
    for batch in batches(&statements, BATCH_BYTES) {
        execute(
            conn,
            &format!("changing the memberships of role {role}"),
            batch,
        )
        .await?;
    }
    let (revoked, granted): (Vec<_>, Vec<_>) = changes
        .iter()
        .partition(|change| matches!(change, MembershipChange::Revoke { .. }));
    let names = |changes: &[&MembershipChange]| {
        named(
            &changes
                .iter()
                .map(|change| change.role().to_owned())
                .collect::<Vec<_>>(),
        )
    };
    if !granted.is_empty() {
        tracing::info!(
            "setSecret: granted {} role(s) to {role} as {model} has them: {}",
            granted.len(),
            names(&granted)
        );
    }
    if !revoked.is_empty() {
        tracing::info!(
            "setSecret: revoked {} role(s) from {role} that {model} no longer has: {}",
            revoked.len(),
            names(&revoked)
        );
    }
    Ok(())
}

/// Refuses, naming the roles, when the master may not grant or revoke one of `roles`: from
/// PostgreSQL 16 that needs ADMIN OPTION on the role (CREATEROLE no longer suffices); before,
/// CREATEROLE suffices for any role but a superuser.
async fn check_master_may_grant(
    conn: &mut PgConnection,
    member: &str,
    roles: &[String],
    with_options: bool,
) -> Result<(), TargetError> {
    let (master, lacking): (String, Vec<String>) = within_timeout(
        "checking which roles the master user may grant",
        sqlx::query_as::<_, (String, Vec<String>)>(
            "SELECT current_user::text, COALESCE(array_agg(t.rolname::text ORDER BY 1) \
               FILTER (WHERE NOT (me.rolsuper \
                 OR pg_has_role(current_user, t.oid, 'MEMBER WITH ADMIN OPTION') \
                 OR ($2 AND me.rolcreaterole AND NOT t.rolsuper))), '{}') \
             FROM pg_roles me LEFT JOIN pg_roles t ON t.rolname = ANY($1) \
             WHERE me.rolname = current_user GROUP BY me.rolname",
        )
        .bind(roles)
        .bind(!with_options)
        .fetch_one(&mut *conn),
    )
    .await?;
    if lacking.is_empty() {
        return Ok(());
    }
    let needs = if with_options {
        "ADMIN OPTION on each (PostgreSQL 16+ lets only a role with ADMIN OPTION grant or \
         revoke a role; the creator of a role holds it; otherwise a role that has it runs \
         GRANT <role> TO <master> WITH ADMIN OPTION)"
    } else {
        "CREATEROLE (for roles that are not superusers) or ADMIN OPTION on each"
    };
    Err(TargetError::rejected(format!(
        "master user {master} may not grant or revoke role(s) {} for role {member}: it needs \
         {needs}",
        named(&lacking)
    )))
}

/// The first few names and how many more, for a log line that stays short.
fn named(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

async fn execute(
    conn: &mut PgConnection,
    context: &str,
    statement: String,
) -> Result<(), TargetError> {
    rotation_database::connection::execute(&Postgres, conn, context, &statement).await
}

/// The GUCs whose values are lists of quoted elements (pg_dump's `variable_is_guc_list_quote`):
/// their stored text must be split and each element passed as its own literal.
const LIST_QUOTE_SETTINGS: [&str; 6] = [
    "local_preload_libraries",
    "search_path",
    "session_preload_libraries",
    "shared_preload_libraries",
    "temp_tablespaces",
    "unix_socket_directories",
];

/// `ALTER ROLE <role> [IN DATABASE <database>] SET <name> = <value>` for one `setconfig`
/// entry (`name=value`); `None` when the entry has no `=`.
pub fn alter_role_set(role: &str, database: Option<&str>, entry: &str) -> Option<String> {
    let (name, value) = entry.split_once('=')?;
    if name.is_empty() {
        return None;
    }
    let values = if LIST_QUOTE_SETTINGS.contains(&name.to_ascii_lowercase().as_str()) {
        split_setting_list(value)
            .iter()
            .map(|element| quote_literal(element))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        quote_literal(value)
    };
    let scope = match database {
        Some(database) => format!(" IN DATABASE {}", quote_identifier(database)),
        None => String::new(),
    };
    Some(format!(
        "ALTER ROLE {}{scope} SET {} = {values}",
        quote_identifier(role),
        quote_identifier(name)
    ))
}

/// Splits a list setting as PostgreSQL stores it (`"a, ""b c""", public`) into its elements
/// (`a, "b c"` and `public`): comma-separated, surrounding whitespace dropped, an element in
/// double quotes kept verbatim with `""` meaning `"`.
pub fn split_setting_list(value: &str) -> Vec<String> {
    let mut elements = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut element = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.next_if_eq(&'"').is_some() {
                        element.push('"');
                    } else {
                        break;
                    }
                } else {
                    element.push(c);
                }
            }
            while chars.next_if(|c| *c != ',').is_some() {}
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                element.push(c);
            }
            element.truncate(element.trim_end().len());
        }
        elements.push(element);
        if chars.next().is_none() {
            break;
        }
    }
    elements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clone_name_must_fit_in_63_bytes() {
        use rotation_database::alternating_users::alternate_username;
        use rotation_database::Engine;
        let limit = crate::engine::Postgres.name_limit("postgres");
        let longest = "a".repeat(57);
        assert_eq!(
            alternate_username(&longest, limit).expect("63 bytes"),
            format!("{longest}_clone")
        );
        let error = alternate_username(&"a".repeat(58), limit).expect_err("64 bytes");
        assert_eq!(
            error.message,
            "Unable to clone user, username length with _clone appended would exceed 63 characters"
        );
        assert_eq!(error.error_type(), "InvalidSecret");
        // Bytes, as PostgreSQL counts them: 28 two-byte letters and _clone make 62; 29 make 64.
        assert!(alternate_username(&"é".repeat(28), limit).is_ok());
        assert!(alternate_username(&"é".repeat(29), limit).is_err());
    }

    fn member(role: &str, admin: bool, inherit: bool, set: bool) -> Membership {
        Membership {
            role: role.to_owned(),
            admin,
            inherit,
            set,
        }
    }

    fn held(memberships: &[Membership]) -> BTreeMap<String, (Membership, Vec<String>)> {
        memberships
            .iter()
            .map(|m| (m.role.clone(), (m.clone(), vec!["master".to_owned()])))
            .collect()
    }

    #[test]
    fn from_postgres_16_a_grant_states_admin_inherit_and_set() {
        let grant = MembershipChange::Grant(member("read ers", false, false, false));
        assert_eq!(
            membership_statement(&grant, "app_clone", true),
            r#"GRANT "read ers" TO "app_clone" WITH ADMIN FALSE, INHERIT FALSE, SET FALSE"#
        );
        let grant = MembershipChange::Grant(member("owners", true, true, false));
        assert_eq!(
            membership_statement(&grant, "app_clone", true),
            r#"GRANT "owners" TO "app_clone" WITH ADMIN TRUE, INHERIT TRUE, SET FALSE"#
        );
    }

    #[test]
    fn before_postgres_16_a_grant_states_only_admin_option() {
        let grant = MembershipChange::Grant(member("owners", true, true, true));
        assert_eq!(
            membership_statement(&grant, "app_clone", false),
            r#"GRANT "owners" TO "app_clone" WITH ADMIN OPTION"#
        );
        let grant = MembershipChange::Grant(member("readers", false, true, true));
        assert_eq!(
            membership_statement(&grant, "app_clone", false),
            r#"GRANT "readers" TO "app_clone""#
        );
        let revoke = MembershipChange::RevokeAdmin {
            role: "owners".to_owned(),
        };
        assert_eq!(
            membership_statement(&revoke, "app_clone", false),
            r#"REVOKE ADMIN OPTION FOR "owners" FROM "app_clone""#
        );
    }

    #[test]
    fn from_postgres_16_a_revoke_names_each_grantor() {
        let revoke = MembershipChange::Revoke {
            role: "writers".to_owned(),
            grantors: vec!["master".to_owned(), "post\"gres".to_owned()],
        };
        assert_eq!(
            membership_statement(&revoke, "app_clone", true),
            r#"REVOKE "writers" FROM "app_clone" GRANTED BY "master"; REVOKE "writers" FROM "app_clone" GRANTED BY "post""gres""#
        );
        assert_eq!(
            membership_statement(&revoke, "app_clone", false),
            r#"REVOKE "writers" FROM "app_clone""#
        );
    }

    #[test]
    fn the_clone_is_made_equal_to_the_user() {
        let wanted = [
            member("readers", false, false, false),
            member("owners", false, true, true),
            member("app", false, true, true),
        ];
        let clone_has = held(&[
            member("readers", false, true, true),
            member("owners", true, true, true),
            member("writers", false, true, true),
        ]);
        let cycle = BTreeSet::from(["app_clone".to_owned()]);
        assert_eq!(
            plan_memberships(&wanted, &clone_has, &cycle, true, true),
            [
                MembershipChange::Grant(member("readers", false, false, false)),
                MembershipChange::Grant(member("owners", false, true, true)),
                MembershipChange::Grant(member("app", false, true, true)),
                MembershipChange::Revoke {
                    role: "writers".to_owned(),
                    grantors: vec!["master".to_owned()],
                },
            ]
        );
        // Before 16 only ADMIN OPTION differs between memberships.
        assert_eq!(
            plan_memberships(&wanted, &clone_has, &cycle, true, false),
            [
                MembershipChange::RevokeAdmin {
                    role: "owners".to_owned()
                },
                MembershipChange::Grant(member("app", false, true, true)),
                MembershipChange::Revoke {
                    role: "writers".to_owned(),
                    grantors: vec!["master".to_owned()],
                },
            ]
        );
        // Equal already: nothing to do.
        assert_eq!(
            plan_memberships(&wanted, &held(&wanted), &cycle, true, true),
            []
        );
    }

    #[test]
    fn the_user_modelled_on_its_clone_only_gains() {
        // The user is pending; its clone (the model) is a member of it.
        let wanted = [
            member("auditors", true, false, true),
            member("app", false, true, true),
            member("app_clone", false, true, true),
        ];
        let user_has = held(&[
            member("auditors", false, true, false),
            member("writers", false, true, true),
        ]);
        let cycle = BTreeSet::from(["app".to_owned(), "app_clone".to_owned()]);
        assert_eq!(
            plan_memberships(&wanted, &user_has, &cycle, false, true),
            [MembershipChange::Grant(member(
                "auditors", true, true, true
            ))]
        );
    }

    #[test]
    fn list_settings_are_split_as_postgres_stores_them() {
        assert_eq!(
            split_setting_list(r#""a, ""b c""", public"#),
            ["a, \"b c\"", "public"]
        );
        assert_eq!(
            split_setting_list(r#""$user", public"#),
            ["$user", "public"]
        );
        assert_eq!(split_setting_list(r#""""#), [""]);
        assert_eq!(split_setting_list("one"), ["one"]);
    }

    #[test]
    fn settings_become_quoted_alter_role_statements() {
        assert_eq!(
            alter_role_set("app_clone", None, r#"search_path="a, ""b c""", public"#)
                .expect("statement"),
            r#"ALTER ROLE "app_clone" SET "search_path" = 'a, "b c"', 'public'"#
        );
        assert_eq!(
            alter_role_set("app_clone", Some("my db"), "work_mem=8MB").expect("statement"),
            r#"ALTER ROLE "app_clone" IN DATABASE "my db" SET "work_mem" = '8MB'"#
        );
        assert_eq!(
            alter_role_set("x", None, r"myapp.note=it's a\b=c").expect("statement"),
            r#"ALTER ROLE "x" SET "myapp.note" = E'it''s a\\b=c'"#
        );
        assert_eq!(alter_role_set("x", None, "garbage"), None);
    }
}
