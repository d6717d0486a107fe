//! The PostgreSQL dialect of alternating users: the master makes the alternate role like the
//! user's (the strategy itself, with its checks and logins, is
//! `rotation_database::alternating_users`).
//!
//! As master, in one transaction:
//! - a pending role that does not exist is created with LOGIN and the current role's
//!   attributes (INHERIT, CREATEDB, CREATEROLE, CONNECTION LIMIT, VALID UNTIL) and per-role
//!   settings (global and per database);
//! - it is granted every role the current role is a member of (with the same ADMIN OPTION)
//!   and the current role itself, so it can use what the current user owns; a membership
//!   that would make a cycle (`name_clone` is already a member of `name`) is left out;
//! - an existing role (an earlier rotation's, or one the operator created) is used as it is:
//!   only its password and the memberships it lacks change;
//! - the password is set to a verifier hashed on the client (the plaintext never reaches the
//!   server).
//!
//! A failure rolls everything back, and a retry starts from the same state. A master without
//! SUPERUSER or CREATEROLE (from PostgreSQL 16, also without ADMIN OPTION on the role) cannot set
//! another role's password: the memberships are still granted, and the strategy has the role
//! change its own password.

use std::collections::{BTreeMap, BTreeSet};

use rotation::TargetError;
use rotation_database::{batches, crash_points, PasswordSet, BATCH_BYTES};
use secrecy::SecretString;
use sqlx::{Connection, PgConnection};

use crate::engine::Postgres;
use crate::sql::{self, quote_identifier, quote_literal, within_timeout};

/// A role's attributes the clone inherits: INHERIT, CREATEDB, CREATEROLE, CONNECTION LIMIT and
/// VALID UNTIL (as the server's text).
type RoleAttributes = (bool, bool, bool, i32, Option<String>);

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

    let set_by_master = if exists {
        let can = master_can_set_password(conn, role).await?;
        if !can {
            tracing::info!(
                "setSecret: the master user may not set the password of role {role} (it has \
                 neither SUPERUSER nor CREATEROLE, or lacks ADMIN OPTION on {role}); the role will \
                 change its own password"
            );
        }
        can
    } else {
        create_like(conn, model, role).await?;
        true
    };
    grant_missing_memberships(conn, model, role).await?;
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

/// `CREATE ROLE <role> WITH LOGIN` and the attributes and per-role settings of `model`.
async fn create_like(conn: &mut PgConnection, model: &str, role: &str) -> Result<(), TargetError> {
    let attributes = within_timeout(
        &format!("reading the attributes of role {model}"),
        sqlx::query_as::<_, RoleAttributes>(
            "SELECT rolinherit, rolcreatedb, rolcreaterole, rolconnlimit, \
             rolvaliduntil::text AS valid_until FROM pg_roles WHERE rolname = $1",
        )
        .bind(model)
        .fetch_optional(&mut *conn),
    )
    .await?
    .ok_or_else(|| TargetError::rejected(format!("role {model} does not exist")))?;
    let (inherit, createdb, createrole, connection_limit, valid_until) = attributes;

    let flag = |on: bool, name: &str| {
        if on {
            name.to_owned()
        } else {
            format!("NO{name}")
        }
    };
    let mut statement = format!(
        "CREATE ROLE {} WITH LOGIN {} {} {} CONNECTION LIMIT {}",
        quote_identifier(role),
        flag(inherit, "INHERIT"),
        flag(createdb, "CREATEDB"),
        flag(createrole, "CREATEROLE"),
        connection_limit,
    );
    if let Some(valid_until) = &valid_until {
        // The server's own text for the timestamp, read in this session: it parses back exactly.
        statement.push_str(&format!(" VALID UNTIL {}", quote_literal(valid_until)));
    }
    execute(conn, &format!("creating role {role}"), statement).await?;
    tracing::info!("setSecret: created role {role} like {model}");

    let settings = within_timeout(
        &format!("reading the settings of role {model}"),
        sqlx::query_as::<_, (Option<String>, Vec<String>)>(
            "SELECT d.datname::text, s.setconfig FROM pg_db_role_setting s \
             JOIN pg_roles r ON r.oid = s.setrole \
             LEFT JOIN pg_database d ON d.oid = s.setdatabase \
             WHERE r.rolname = $1 ORDER BY d.datname NULLS FIRST",
        )
        .bind(model)
        .fetch_all(&mut *conn),
    )
    .await?;
    for (database, entries) in settings {
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

/// Grants `role` every membership `model` has and it lacks, and membership in `model` itself,
/// leaving out any grant that would make a membership cycle.
async fn grant_missing_memberships(
    conn: &mut PgConnection,
    model: &str,
    role: &str,
) -> Result<(), TargetError> {
    let direct = "SELECT r.rolname::text, m.admin_option FROM pg_auth_members m \
                  JOIN pg_roles r ON r.oid = m.roleid \
                  JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = $1";
    let model_of: Vec<(String, bool)> = within_timeout(
        &format!("reading the memberships of role {model}"),
        sqlx::query_as(direct).bind(model).fetch_all(&mut *conn),
    )
    .await?;
    let held: BTreeMap<String, bool> = within_timeout(
        &format!("reading the memberships of role {role}"),
        sqlx::query_as::<_, (String, bool)>(direct)
            .bind(role)
            .fetch_all(&mut *conn),
    )
    .await?
    .into_iter()
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

    let wanted = model_of
        .into_iter()
        .chain(std::iter::once((model.to_owned(), false)));
    let mut granted = Vec::new();
    let mut statements = Vec::new();
    for (member_of, admin) in wanted {
        if members_of_role.contains(&member_of) {
            continue;
        }
        match held.get(&member_of) {
            Some(&held_admin) if held_admin || !admin => continue,
            _ => {}
        }
        statements.push(format!(
            "GRANT {} TO {}{}",
            quote_identifier(&member_of),
            quote_identifier(role),
            if admin { " WITH ADMIN OPTION" } else { "" }
        ));
        granted.push(member_of);
    }
    // Many statements per round trip: a role in a thousand roles costs a few round trips, not a
    // thousand. The transaction around them keeps a failure from leaving part of them.
    for batch in batches(&statements, BATCH_BYTES) {
        execute(conn, &format!("granting roles to {role}"), batch).await?;
    }
    if !granted.is_empty() {
        tracing::info!(
            "setSecret: granted {} role(s) to {role}: {}",
            granted.len(),
            named(&granted)
        );
    }
    Ok(())
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
