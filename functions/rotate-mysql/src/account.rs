//! The accounts of alternating users on MySQL and MariaDB: the master makes the clone account
//! equal to the current one ([`synchronise`]). The strategy itself, with its checks and logins,
//! is `rotation_database::alternating_users`.
//!
//! - a missing clone is created with a throw-away password and the current account's `REQUIRE`
//!   TLS settings; an existing one (an earlier rotation's, or one the operator made) is used as
//!   it is, and gets the current account's `REQUIRE` settings;
//! - every line of `SHOW GRANTS` of the current account the clone lacks is replayed verbatim for
//!   the clone (object text, wildcard database names, `WITH GRANT OPTION`, role grants `WITH
//!   ADMIN OPTION`, MariaDB's `SET DEFAULT ROLE`), and every line the clone has that the current
//!   account does not is revoked, so the two accounts hold the same grants ([`crate::plan`],
//!   [`crate::parse`]); MySQL 8's default roles (not in `SHOW GRANTS`) are copied from
//!   `mysql.default_roles`;
//! - the line that carries the current account's password hash (MariaDB's `GRANT USAGE ON *.*
//!   TO … IDENTIFIED BY PASSWORD '*…'`) is never replayed: only its `WITH GRANT OPTION` counts;
//! - the statements travel in batches of many statements per round trip;
//! - the pending password is set last, in its own statement: until then the pending credentials
//!   do not log in.
//!
//! MySQL and MariaDB have no transactional DDL: a failure leaves part of the work done, and the
//! retry computes the difference again from what the server then holds.

use rotation::password::{PasswordPolicy, PasswordRules, MYSQL_EXCLUDED_CHARACTERS};
use rotation::TargetError;
use rotation_database::{batches, crash_points, BATCH_BYTES};
use secrecy::{ExposeSecret, SecretString};
use sqlx::{AssertSqlSafe, MySqlConnection, Row};

use crate::parse::parse_grants;
use crate::plan::{mysql_default_roles, plan};
use crate::sql::{self, quote_string, Flavor, ServerInfo};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub host: String,
}

/// `user@host`, as `CURRENT_USER()` writes it (not quoted: for messages, never for SQL).
impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.user, self.host)
    }
}

impl Account {
    pub fn new(user: &str, host: &str) -> Self {
        Account {
            user: user.to_owned(),
            host: host.to_owned(),
        }
    }

    /// `'user'@'host'`, quoted for the session.
    pub fn quoted(&self, info: &ServerInfo) -> String {
        sql::account(&self.user, &self.host, info)
    }
}

/// What [`synchronise`] did.
#[derive(Clone, Debug)]
pub struct Replay {
    /// `'user'@'host'` of the model and of the clone.
    pub model: String,
    pub clone: String,
    /// Whether the clone account was created.
    pub created: bool,
    /// Grant, revoke, REQUIRE and default-role statements sent (the password not counted).
    pub statements: usize,
    /// Round trips to the server, the password's included.
    pub round_trips: usize,
}

/// Makes `clone_user`, on the model's host part, equal to `model` (grants, `REQUIRE`, default
/// roles), creating it if needed, and sets its password. Works in the master's session `conn`.
pub async fn synchronise(
    conn: &mut MySqlConnection,
    info: &ServerInfo,
    model: &Account,
    clone_user: &str,
    password: &SecretString,
) -> Result<Replay, TargetError> {
    let nbe = info.no_backslash_escapes;
    let clone = Account {
        user: clone_user.to_owned(),
        host: model.host.clone(),
    };
    let (model_sql, clone_sql) = (model.quoted(info), clone.quoted(info));
    let default_roles_table = info.flavor == Flavor::MySql && info.version.major >= 8;
    let mut round_trips = 0;

    // The alternate user on another host would be matched by some logins instead of the clone
    // made here, so testSecret would fail for a reason nobody could see: refuse and say why.
    let elsewhere: Vec<String> = sql::within_timeout(
        &format!("looking for other accounts of {}", clone.user),
        sqlx::query_scalar(
            "SELECT CONVERT(Host USING utf8mb4) FROM mysql.user WHERE User = ? AND Host <> ?",
        )
        .bind(&clone.user)
        .bind(&model.host)
        .fetch_all(&mut *conn),
    )
    .await?;
    round_trips += 1;
    if !elsewhere.is_empty() {
        return Err(TargetError::invalid_secret(format!(
            "the alternate user {} also exists for host(s) {}, which logins could match instead \
             of {clone_sql}; remove those accounts or give them the host part of {model_sql}",
            clone.user,
            elsewhere.join(", ")
        )));
    }

    // One round trip: both accounts' TLS settings, the model's grants (and, on MySQL 8, both
    // accounts' default roles).
    let mut lookup = format!(
        "SELECT 'account', CONVERT(User USING utf8mb4), CONVERT(ssl_type USING utf8mb4), \
         CONVERT(ssl_cipher USING utf8mb4), CONVERT(x509_issuer USING utf8mb4), \
         CONVERT(x509_subject USING utf8mb4) FROM mysql.user WHERE Host = {} AND User IN ({}, {});\n\
         SHOW GRANTS FOR {model_sql}",
        quote_string(&model.host, nbe),
        quote_string(&model.user, nbe),
        quote_string(&clone.user, nbe),
    );
    if default_roles_table {
        lookup.push_str(&format!(
            ";\nSELECT 'default role', 'of', CONVERT(USER USING utf8mb4), CONVERT(DEFAULT_ROLE_USER USING utf8mb4), \
             CONVERT(DEFAULT_ROLE_HOST USING utf8mb4) FROM mysql.default_roles \
             WHERE HOST = {} AND USER IN ({}, {}) ORDER BY 4, 5",
            quote_string(&model.host, nbe),
            quote_string(&model.user, nbe),
            quote_string(&clone.user, nbe),
        ));
    }
    let rows = query_text(
        conn,
        &format!("reading the account, TLS settings and grants of {model_sql}"),
        &lookup,
    )
    .await?;
    round_trips += 1;
    // SHOW GRANTS gives one column, the account lookup six, the default roles five.
    let columns = |n: usize| rows.iter().filter(move |row| row.len() == n);
    let accounts: Vec<&[String]> = columns(6).map(|row| &row[1..]).collect();
    let model_grants: Vec<Vec<String>> = columns(1).cloned().collect();
    let default_roles: Vec<&[String]> = columns(5).map(|row| &row[2..]).collect();

    let tls_of = |user: &str| -> Result<Option<String>, TargetError> {
        accounts
            .iter()
            .find(|row| row.first().is_some_and(|u| u == user))
            .map(|row| {
                let field = |i: usize| row.get(i).map(String::as_str).unwrap_or_default();
                require_clause(field(1), field(2), field(3), field(4), nbe)
            })
            .transpose()
    };
    let model_require = tls_of(&model.user)?.ok_or_else(|| {
        TargetError::rejected(format!("account {model_sql} is not in mysql.user"))
    })?;
    let clone_require = tls_of(&clone.user)?;
    let created = clone_require.is_none();

    let model_lines = parse_grants(&model_grants, model, nbe)?;
    let clone_lines = if created {
        let throwaway = PasswordPolicy::new(PasswordRules::aws_defaults(MYSQL_EXCLUDED_CHARACTERS))
            .map_err(|error| TargetError::rejected(error.to_string()))?
            .generate();
        // A password nobody knows: the pending password is set only once the grants are in.
        let create = create_user(info, &clone_sql, &throwaway, &model_require);
        sql::execute(
            conn,
            &format!("creating user {clone_sql}"),
            create.expose_secret(),
        )
        .await?;
        round_trips += 1;
        rotation::crash::after(crash_points::CLONE_CREATED);
        Vec::new()
    } else {
        let rows = query_text(
            conn,
            &format!("reading the grants of {clone_sql}"),
            &format!("SHOW GRANTS FOR {clone_sql}"),
        )
        .await?;
        round_trips += 1;
        parse_grants(&rows, &clone, nbe)?
    };

    let mut statements = plan(&model_lines, &clone_lines, &clone_sql);
    if clone_require
        .as_ref()
        .is_some_and(|require| *require != model_require)
    {
        statements.push(set_require(info, &clone_sql, &model_require));
    }
    if default_roles_table {
        let roles_of = |user: &str| -> Vec<String> {
            default_roles
                .iter()
                .filter(|row| row.first().is_some_and(|u| u == user))
                .map(|row| {
                    let field = |i: usize| row.get(i).map(String::as_str).unwrap_or_default();
                    sql::account(field(1), field(2), info)
                })
                .collect()
        };
        if let Some(statement) =
            mysql_default_roles(&roles_of(&model.user), &roles_of(&clone.user), &clone_sql)
        {
            statements.push(statement);
        }
    }

    let batches = batches(&statements, BATCH_BYTES);
    let count = batches.len();
    for (index, batch) in batches.iter().enumerate() {
        sql::execute(
            conn,
            &format!(
                "replaying the grants of {model_sql} for {clone_sql} (batch {} of {count})",
                index + 1
            ),
            batch,
        )
        .await?;
        round_trips += 1;
    }
    rotation::crash::after(crash_points::GRANTS_REPLAYED);

    let set = sql::set_password_of(info, &clone_sql, password);
    sql::execute(
        conn,
        &format!("setting the password of {clone_sql}"),
        set.expose_secret(),
    )
    .await?;
    round_trips += 1;
    rotation::crash::after(crash_points::PASSWORD_SET);

    Ok(Replay {
        model: model_sql,
        clone: clone_sql,
        created,
        statements: statements.len(),
        round_trips,
    })
}

/// Whether the server has `CREATE USER … REQUIRE` and `ALTER USER … REQUIRE` (MySQL 5.7.6,
/// MariaDB 10.2); older servers take `REQUIRE` in `GRANT`.
fn has_alter_user(info: &ServerInfo) -> bool {
    match info.flavor {
        Flavor::MySql => info.version.at_least(5, 7, 6),
        Flavor::MariaDb => info.version.at_least(10, 2, 0),
    }
}

/// `CREATE USER <account> IDENTIFIED BY '<password>'` with the `REQUIRE` settings; returned
/// redacted, as it holds a password.
pub fn create_user(
    info: &ServerInfo,
    account: &str,
    password: &SecretString,
    require: &str,
) -> SecretString {
    let password = quote_string(password.expose_secret(), info.no_backslash_escapes);
    SecretString::from(if has_alter_user(info) {
        format!("CREATE USER {account} IDENTIFIED BY {password} REQUIRE {require}")
    } else {
        format!(
            "CREATE USER {account} IDENTIFIED BY {password};\n{}",
            set_require(info, account, require)
        )
    })
}

/// The statement that gives `account` the `REQUIRE` settings `require`.
pub fn set_require(info: &ServerInfo, account: &str, require: &str) -> String {
    if has_alter_user(info) {
        format!("ALTER USER {account} REQUIRE {require}")
    } else {
        format!("GRANT USAGE ON *.* TO {account} REQUIRE {require}")
    }
}

/// Runs `statements` (separated by `;`) in one round trip; every row as text, with the number
/// of its columns (which tells the statements' results apart).
async fn query_text(
    conn: &mut MySqlConnection,
    context: &str,
    statements: &str,
) -> Result<Vec<Vec<String>>, TargetError> {
    let rows = sql::within_timeout(
        context,
        sqlx::raw_sql(AssertSqlSafe(statements.to_owned())).fetch_all(&mut *conn),
    )
    .await?;
    let mut text = Vec::with_capacity(rows.len());
    for row in rows {
        let mut fields = Vec::with_capacity(row.len());
        for i in 0..row.len() {
            let field: Option<String> = row
                .try_get(i)
                .map_err(|error| sql::statement_error(context, error))?;
            fields.push(field.unwrap_or_default());
        }
        text.push(fields);
    }
    Ok(text)
}

/// `REQUIRE …` for an account's `mysql.user` TLS columns.
pub fn require_clause(
    ssl_type: &str,
    cipher: &str,
    issuer: &str,
    subject: &str,
    no_backslash_escapes: bool,
) -> Result<String, TargetError> {
    Ok(match ssl_type.to_ascii_uppercase().as_str() {
        "" | "NONE" => "NONE".to_owned(),
        "ANY" => "SSL".to_owned(),
        "X509" => "X509".to_owned(),
        "SPECIFIED" => {
            let parts: Vec<String> = [("CIPHER", cipher), ("ISSUER", issuer), ("SUBJECT", subject)]
                .into_iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(name, value)| {
                    format!("{name} {}", quote_string(value, no_backslash_escapes))
                })
                .collect();
            if parts.is_empty() {
                "SSL".to_owned()
            } else {
                parts.join(" AND ")
            }
        }
        other => {
            return Err(TargetError::rejected(format!(
                "unknown ssl_type {other:?} in mysql.user"
            )))
        }
    })
}

/// On MySQL 8: `ALTER USER <clone> DEFAULT ROLE …` when the clone's default roles (quoted
/// accounts, sorted) differ from the model's.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_requirements_become_a_require_clause() {
        let r = |t, c, i, s| require_clause(t, c, i, s, false).expect("clause");
        assert_eq!(r("", "", "", ""), "NONE");
        assert_eq!(r("ANY", "", "", ""), "SSL");
        assert_eq!(r("X509", "", "", ""), "X509");
        assert_eq!(
            r("SPECIFIED", "AES", "/CN=it's", ""),
            format!(
                "CIPHER 'AES' AND ISSUER {}",
                quote_string("/CN=it's", false)
            )
        );
        assert!(require_clause("BOGUS", "", "", "", false).is_err());
    }

    fn server(flavor: Flavor, major: u32, minor: u32, patch: u32) -> ServerInfo {
        ServerInfo {
            flavor,
            version: crate::sql::Version {
                major,
                minor,
                patch,
            },
            no_backslash_escapes: false,
        }
    }

    #[test]
    fn a_created_user_gets_its_password_and_require_in_the_dialect_of_the_server() {
        let password = SecretString::from("p'w\\".to_owned());
        for info in [
            server(Flavor::MariaDb, 10, 11, 9),
            server(Flavor::MySql, 8, 0, 36),
            server(Flavor::MySql, 9, 1, 0),
        ] {
            assert_eq!(
                create_user(&info, "'a'@'%'", &password, "SSL").expose_secret(),
                format!(
                    "CREATE USER 'a'@'%' IDENTIFIED BY {} REQUIRE SSL",
                    quote_string("p'w\\", false)
                )
            );
            assert_eq!(
                set_require(&info, "'a'@'%'", "X509"),
                "ALTER USER 'a'@'%' REQUIRE X509"
            );
        }
        let old = server(Flavor::MySql, 5, 6, 51);
        assert_eq!(
            create_user(&old, "'a'@'%'", &password, "NONE").expose_secret(),
            format!(
                "CREATE USER 'a'@'%' IDENTIFIED BY {};\nGRANT USAGE ON *.* TO 'a'@'%' REQUIRE NONE",
                quote_string("p'w\\", false)
            )
        );
        // A redacted statement shows nothing.
        let debug = format!("{:?}", create_user(&old, "'a'@'%'", &password, "NONE"));
        assert!(!debug.contains("p'") && !debug.contains("p\\'"), "{debug}");
    }
}
