//! The MySQL and MariaDB dialect: the server's flavour and version, quoting that honours
//! `NO_BACKSLASH_ESCAPES`, and the password statements each server needs. The only place SQL
//! text is built from names and values.
//!
//! Account-management statements take no bind parameters, so account names and passwords are
//! spliced into the statement as string literals, quoted here by tested code. Connections use
//! utf8mb4 (see `engine`), so no multi-byte character set can swallow an escaping backslash.
//!
//! Which statement changes a password (checked against the servers' manuals, and live against
//! MariaDB 10.11):
//!
//! | server                         | own password (single user)                      | another account's (alternating users) |
//! |--------------------------------|-------------------------------------------------|---------------------------------------|
//! | MySQL 5.7.6+, 8.x, 9.x, Aurora | `ALTER USER USER() IDENTIFIED BY '…'` (8.0.13+: `REPLACE '<current>'` when the caller knows it) | `ALTER USER 'u'@'h' IDENTIFIED BY '…'` |
//! | MySQL before 5.7.6             | `SET PASSWORD = PASSWORD('…')`                  | `SET PASSWORD FOR 'u'@'h' = PASSWORD('…')` |
//! | MariaDB, every version         | `SET PASSWORD = PASSWORD('…')`                  | `SET PASSWORD FOR 'u'@'h' = PASSWORD('…')` |
//!
//! - MySQL: `ALTER USER USER()` is the form the manual gives for changing one's own password
//!   without privileges (5.7 and later); `PASSWORD()` is deprecated in 5.7 and gone in 8.0, so
//!   it is never sent to a MySQL 5.7.6+ server. `ALTER USER` keeps the account's plugin.
//! - MariaDB: `ALTER USER` needs the `CREATE USER` privilege even for one's own password, and
//!   `IDENTIFIED BY` switches the account to `mysql_native_password` (an `ed25519` account
//!   loses its plugin). `SET PASSWORD … = PASSWORD('…')` needs no privilege for one's own
//!   account and hashes with the account's own plugin (10.4+). Both verified on 10.11.

use std::fmt;

use rotation::TargetError;
use secrecy::{ExposeSecret, SecretString};
use sqlx::MySqlConnection;

use crate::engine::MySql;

/// Which server family answers: the dialect follows the server, not the secret's `engine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// MySQL, Aurora MySQL and MySQL-compatible servers (Percona, …).
    MySql,
    MariaDb,
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::MySql => "MySQL",
            Flavor::MariaDb => "MariaDB",
        })
    }
}

/// A server version, compared numerically (`8.0.9 < 8.0.13 < 8.4.0 < 9.1.0`). For Aurora MySQL
/// it is the MySQL version the Aurora major version is compatible with, at its lowest patch
/// level: Aurora MySQL 2 is 5.7.12, Aurora MySQL 3 is 8.0.23.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }

    pub fn at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        *self >= Version::new(major, minor, patch)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// What the statements depend on, read once per session with [`server_info`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    pub flavor: Flavor,
    pub version: Version,
    /// The session's `sql_mode` has `NO_BACKSLASH_ESCAPES`: a backslash in a literal is an
    /// ordinary character and only quote doubling escapes.
    pub no_backslash_escapes: bool,
}

impl ServerInfo {
    /// MySQL 5.7.6 and later (Aurora MySQL 2 and 3 included) have `ALTER USER … IDENTIFIED BY`
    /// and no longer want `PASSWORD()`.
    pub fn mysql_alter_user(&self) -> bool {
        self.flavor == Flavor::MySql && self.version.at_least(5, 7, 6)
    }

    /// MySQL 8.0.13 and later accept `REPLACE '<current password>'` when a user changes its own
    /// password, and require it when `password_require_current` (or the account's
    /// `PASSWORD REQUIRE CURRENT`) says so.
    pub fn mysql_replace_current(&self) -> bool {
        self.flavor == Flavor::MySql && self.version.at_least(8, 0, 13)
    }
}

impl fmt::Display for ServerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}, NO_BACKSLASH_ESCAPES {}",
            self.flavor,
            self.version,
            if self.no_backslash_escapes {
                "on"
            } else {
                "off"
            }
        )
    }
}

/// Reads the flavour and version from `VERSION()`, numerically:
///
/// - `8.0.36`, `5.7.44-log`, `8.4.0`, `9.1.0`, `8.0.36-28` (Percona): MySQL;
/// - `8.0.mysql_aurora.3.05.2`, `5.7.mysql_aurora.2.11.2`: Aurora MySQL 3 and 2, read as
///   MySQL 8.0.23 and 5.7.12 (see [`Version`]);
/// - `10.11.6-MariaDB-0+deb12u1`, `11.4.2-MariaDB`, and `5.5.5-10.11.6-MariaDB` (the prefix
///   some MariaDB versions send for old clients): MariaDB.
pub fn parse_version(text: &str) -> Option<(Flavor, Version)> {
    let text = text.trim();
    let flavor = if text.to_ascii_lowercase().contains("mariadb") {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    };
    let mut rest = text;
    if flavor == Flavor::MariaDb {
        if let Some(after) = rest.strip_prefix("5.5.5-") {
            if after.starts_with(|c: char| c.is_ascii_digit()) {
                rest = after;
            }
        }
    }
    let (major, rest) = leading_number(rest)?;
    let (minor, rest) = leading_number(rest.strip_prefix('.')?)?;
    let patch = match rest.strip_prefix('.').and_then(leading_number) {
        Some((patch, _)) => patch,
        None => aurora_patch(text, major, minor).unwrap_or(0),
    };
    Some((flavor, Version::new(major, minor, patch)))
}

/// The MySQL patch level an Aurora MySQL major version is compatible with at least.
fn aurora_patch(text: &str, major: u32, minor: u32) -> Option<u32> {
    let (_, after) = text.split_once("mysql_aurora.")?;
    let (aurora_major, _) = leading_number(after)?;
    match (major, minor, aurora_major) {
        (8, 0, 3) => Some(23),
        (5, 7, 2) => Some(12),
        _ => None,
    }
}

/// The decimal number `text` starts with, and what follows it.
fn leading_number(text: &str) -> Option<(u32, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if end == 0 {
        return None;
    }
    Some((text[..end].parse().ok()?, &text[end..]))
}

/// Whether an `sql_mode` value (`STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES,…`) turns backslash
/// escapes off.
pub fn sql_mode_has_no_backslash_escapes(sql_mode: &str) -> bool {
    sql_mode
        .split(',')
        .any(|mode| mode.trim().eq_ignore_ascii_case("NO_BACKSLASH_ESCAPES"))
}

/// The session's server: `SELECT VERSION(), @@SESSION.sql_mode`.
pub async fn server_info(conn: &mut MySqlConnection) -> Result<ServerInfo, TargetError> {
    let (version, sql_mode): (String, String) = within_timeout(
        "reading the server version and sql_mode",
        sqlx::query_as("SELECT CAST(VERSION() AS CHAR), CAST(@@SESSION.sql_mode AS CHAR)")
            .persistent(false)
            .fetch_one(&mut *conn),
    )
    .await?;
    let (flavor, parsed) = parse_version(&version).ok_or_else(|| {
        TargetError::rejected(format!(
            "the server's VERSION() is {version:?}, which is not a MySQL or MariaDB version"
        ))
    })?;
    Ok(ServerInfo {
        flavor,
        version: parsed,
        no_backslash_escapes: sql_mode_has_no_backslash_escapes(&sql_mode),
    })
}

pub use mysql_quoting::{lexer, quote_identifier, quote_string};

/// An account name, `'user'@'host'`, both parts quoted as string literals (as the AWS
/// templates and `SHOW GRANTS` write them). `%` and `_` in the host part keep their wildcard
/// meaning: the account is named exactly as it exists.
pub fn account(user: &str, host: &str, info: &ServerInfo) -> String {
    format!(
        "{}@{}",
        quote_string(user, info.no_backslash_escapes),
        quote_string(host, info.no_backslash_escapes)
    )
}

/// Refuses a user or host name the server could not hold: empty, or with a NUL character.
pub fn check_name(what: &str, name: &str) -> Result<(), TargetError> {
    if name.is_empty() {
        return Err(TargetError::invalid_secret(format!("the {what} is empty")));
    }
    if name.contains('\0') {
        return Err(TargetError::invalid_secret(format!(
            "the {what} {:?} contains a NUL character",
            name.replace('\0', "\\0")
        )));
    }
    Ok(())
}

/// The account the session is logged in as, from `CURRENT_USER()` (the account the server
/// matched, for example `app`@`10.0.%`, not the client's `USER()`), split at the last `@`
/// into user and host.
pub async fn current_account(conn: &mut MySqlConnection) -> Result<(String, String), TargetError> {
    let text: String = within_timeout(
        "reading CURRENT_USER()",
        sqlx::query_scalar("SELECT CAST(CURRENT_USER() AS CHAR)")
            .persistent(false)
            .fetch_one(&mut *conn),
    )
    .await?;
    split_account(&text).ok_or_else(|| {
        TargetError::rejected(format!(
            "CURRENT_USER() is {text:?}, which is not user@host"
        ))
    })
}

/// `user@host` split at the last `@` (a user name may contain `@`; a host name cannot).
pub fn split_account(text: &str) -> Option<(String, String)> {
    let (user, host) = text.rsplit_once('@')?;
    Some((user.to_owned(), host.to_owned()))
}

/// The statement with which the session's own account changes its password (see the module's
/// table). The statement holds the password: it is returned redacted, and [`execute`] never
/// shows it.
pub fn set_own_password(info: &ServerInfo, password: &SecretString) -> SecretString {
    let new = quote_string(password.expose_secret(), info.no_backslash_escapes);
    SecretString::from(if info.mysql_alter_user() {
        format!("ALTER USER USER() IDENTIFIED BY {new}")
    } else {
        format!("SET PASSWORD = PASSWORD({new})")
    })
}

/// [`set_own_password`], proving the current password on MySQL 8.0.13 and later (`REPLACE
/// '<current>'`), so that `password_require_current` does not refuse the change. Other servers
/// get the plain [`set_own_password`] statement.
pub fn set_own_password_replacing(
    info: &ServerInfo,
    password: &SecretString,
    current: &SecretString,
) -> SecretString {
    if !info.mysql_replace_current() {
        return set_own_password(info, password);
    }
    SecretString::from(format!(
        "ALTER USER USER() IDENTIFIED BY {} REPLACE {}",
        quote_string(password.expose_secret(), info.no_backslash_escapes),
        quote_string(current.expose_secret(), info.no_backslash_escapes)
    ))
}

/// The statement that sets the password of `account` (made with [`account`]) as a privileged
/// user (see the module's table). Returned redacted: it holds the password.
pub fn set_password_of(info: &ServerInfo, account: &str, password: &SecretString) -> SecretString {
    let new = quote_string(password.expose_secret(), info.no_backslash_escapes);
    SecretString::from(if info.mysql_alter_user() {
        format!("ALTER USER {account} IDENTIFIED BY {new}")
    } else {
        format!("SET PASSWORD FOR {account} = PASSWORD({new})")
    })
}

/// Runs one statement (text protocol) within the statement time limit. Errors name `context` and
/// carry the server's message and error number, never the statement, which may hold a
/// password.
pub async fn execute(
    conn: &mut MySqlConnection,
    context: &str,
    statement: &str,
) -> Result<(), TargetError> {
    // The callers build statements from this module's quoting only.
    rotation_database::connection::execute(&MySql::default(), conn, context, statement).await
}

/// Runs one database call within the statement time limit, its failure read by the engine's
/// classification (`rotation_database::connection::within_timeout`).
pub async fn within_timeout<T>(
    context: &str,
    work: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, TargetError> {
    rotation_database::connection::within_timeout(&MySql::default(), context, work).await
}

/// A failed database call as the engine classifies it (never with the statement's text).
pub fn statement_error(context: &str, error: sqlx::Error) -> TargetError {
    rotation_database::connection::statement_error(&MySql::default(), context, &error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names and texts an attacker (or an unlucky operator) might choose.
    const HOSTILE: [&str; 18] = [
        "app",
        "o'brien",
        "back\\slash",
        "\\",
        "\\'",
        "'",
        "''",
        "100%_done",
        "`tick`",
        "say \"hi\"",
        "x'; DROP USER 'admin'@'%'; --",
        "x\\'; DROP USER 'admin'@'%'; --",
        "ünïcødé ✓ 用户 🔑",
        "nul\0byte",
        "tab\tnew\nline\rcr",
        "ctrl-z \u{1a}",
        "%",
        "_",
    ];

    fn info(flavor: Flavor, major: u32, minor: u32, patch: u32) -> ServerInfo {
        ServerInfo {
            flavor,
            version: Version::new(major, minor, patch),
            no_backslash_escapes: false,
        }
    }

    fn from_version(text: &str) -> ServerInfo {
        let (flavor, version) = parse_version(text).expect(text);
        ServerInfo {
            flavor,
            version,
            no_backslash_escapes: false,
        }
    }

    #[test]
    fn versions_are_parsed_numerically_for_every_server_family() {
        use Flavor::{MariaDb, MySql};
        let cases = [
            ("8.0.36", MySql, (8, 0, 36)),
            ("5.7.44-log", MySql, (5, 7, 44)),
            ("5.7.5-m15", MySql, (5, 7, 5)),
            ("5.6.51", MySql, (5, 6, 51)),
            ("8.0.mysql_aurora.3.05.2", MySql, (8, 0, 23)),
            ("5.7.mysql_aurora.2.11.2", MySql, (5, 7, 12)),
            ("8.4.0", MySql, (8, 4, 0)),
            ("9.1.0", MySql, (9, 1, 0)),
            ("8.0.36-28", MySql, (8, 0, 36)),
            ("10.11.6-MariaDB-0+deb12u1", MariaDb, (10, 11, 6)),
            ("11.4.2-MariaDB", MariaDb, (11, 4, 2)),
            ("5.5.5-10.11.6-MariaDB", MariaDb, (10, 11, 6)),
            ("10.1.48-MariaDB", MariaDb, (10, 1, 48)),
            ("10.6.16-MariaDB-log", MariaDb, (10, 6, 16)),
            ("  8.0.12  ", MySql, (8, 0, 12)),
        ];
        for (text, flavor, (major, minor, patch)) in cases {
            assert_eq!(
                parse_version(text),
                Some((flavor, Version::new(major, minor, patch))),
                "{text}"
            );
        }
        for text in ["", "MariaDB", "eight", "8", "8.", ".0.1", "99999999999.0.0"] {
            assert_eq!(parse_version(text), None, "{text:?}");
        }
    }

    #[test]
    fn versions_compare_as_numbers_not_strings() {
        assert!(Version::new(8, 0, 13) > Version::new(8, 0, 9));
        assert!(Version::new(10, 1, 0) > Version::new(9, 1, 0));
        assert!(Version::new(5, 7, 10) > Version::new(5, 7, 6));
        assert!(from_version("9.1.0").mysql_alter_user());
        assert!(from_version("10.11.6-MariaDB").flavor == Flavor::MariaDb);
        assert!(!from_version("5.7.5").mysql_alter_user());
        assert!(from_version("5.7.10").mysql_alter_user(), "10 > 6");
        assert!(!from_version("8.0.9").mysql_replace_current());
        assert!(from_version("8.0.13").mysql_replace_current());
    }

    #[test]
    fn sql_modes_are_read_as_a_comma_separated_set() {
        assert!(sql_mode_has_no_backslash_escapes("NO_BACKSLASH_ESCAPES"));
        assert!(sql_mode_has_no_backslash_escapes(
            "STRICT_TRANS_TABLES,no_backslash_escapes,NO_ENGINE_SUBSTITUTION"
        ));
        assert!(!sql_mode_has_no_backslash_escapes(""));
        assert!(!sql_mode_has_no_backslash_escapes(
            "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER"
        ));
    }

    #[test]
    fn literals_with_backslash_escapes_escape_what_mysql_real_escape_string_escapes() {
        assert_eq!(quote_string("plain", false), "'plain'");
        assert_eq!(quote_string("o'brien", false), r"'o\'brien'");
        assert_eq!(quote_string("a\\b", false), r"'a\\b'");
        assert_eq!(quote_string("say \"hi\"", false), r#"'say \"hi\"'"#);
        assert_eq!(quote_string("a\0b\nc\rd\u{1a}", false), r"'a\0b\nc\rd\Z'");
        assert_eq!(quote_string("100%_`x`", false), "'100%_`x`'", "% _ ` stay");
        assert_eq!(quote_string("ünï ✓", false), "'ünï ✓'");
        assert_eq!(quote_string("", false), "''");
        for text in HOSTILE {
            let quoted = quote_string(text, false);
            assert_eq!(lexer::read_string(&quoted, false).as_deref(), Ok(text));
        }
    }

    #[test]
    fn literals_with_no_backslash_escapes_only_double_the_quote() {
        assert_eq!(quote_string("o'brien", true), "'o''brien'");
        assert_eq!(quote_string("a\\b", true), r"'a\b'");
        assert_eq!(quote_string("\\'", true), r"'\'''");
        assert_eq!(quote_string("say \"hi\"", true), "'say \"hi\"'");
        for text in HOSTILE {
            let quoted = quote_string(text, true);
            assert_eq!(lexer::read_string(&quoted, true).as_deref(), Ok(text));
        }
    }

    #[test]
    fn a_literal_quoted_for_one_mode_is_not_safe_in_the_other() {
        // Why the session's sql_mode is read before quoting: `\'` quoted for backslash escapes
        // ends the literal early under NO_BACKSLASH_ESCAPES.
        let quoted = quote_string("x\\'; DROP USER 'admin'@'%'; --", false);
        assert!(lexer::read_string(&quoted, true).is_err(), "{quoted}");
    }

    #[test]
    fn identifiers_are_backquoted_with_inner_backquotes_doubled() {
        assert_eq!(quote_identifier("app"), "`app`");
        assert_eq!(quote_identifier("a`b"), "`a``b`");
        assert_eq!(quote_identifier("app\\_%"), "`app\\_%`");
        assert_eq!(quote_identifier("it's \"x\""), "`it's \"x\"`");
        assert_eq!(quote_identifier("``"), "``````");
        for name in HOSTILE {
            let quoted = quote_identifier(name);
            assert_eq!(lexer::read_identifier(&quoted).as_deref(), Ok(name));
        }
    }

    #[test]
    fn accounts_are_quoted_string_literals_in_the_session_s_mode() {
        let mut server = info(Flavor::MariaDb, 10, 11, 6);
        assert_eq!(account("app", "%", &server), "'app'@'%'");
        assert_eq!(account("o'b", "10.0.%", &server), r"'o\'b'@'10.0.%'");
        server.no_backslash_escapes = true;
        assert_eq!(account("o'b\\", "10.0.%", &server), r"'o''b\'@'10.0.%'");
    }

    #[test]
    fn current_user_is_split_at_the_last_at_sign() {
        assert_eq!(
            split_account("app@%"),
            Some(("app".to_owned(), "%".to_owned()))
        );
        assert_eq!(
            split_account("me@example.com@10.0.%"),
            Some(("me@example.com".to_owned(), "10.0.%".to_owned()))
        );
        assert_eq!(
            split_account("@localhost"),
            Some((String::new(), "localhost".to_owned()))
        );
        assert_eq!(split_account("nohost"), None);
    }

    #[test]
    fn names_with_a_nul_or_empty_are_refused() {
        assert_eq!(
            check_name("user name", "a\0b")
                .expect_err("NUL")
                .error_type(),
            "InvalidSecret"
        );
        assert!(check_name("user name", "").is_err());
        assert!(check_name("user name", "ünïcødé ✓ o'b\\").is_ok());
    }

    /// What each server family gets, for the versions that cannot be tested live here.
    #[test]
    fn password_statements_follow_the_server_flavour_and_version() {
        let password = SecretString::from("n3w'pw\\");
        let current = SecretString::from("0ld'pw");
        let cases = [
            // (VERSION(), own, own with REPLACE, of another account)
            (
                "5.7.5-m15",
                r"SET PASSWORD = PASSWORD('n3w\'pw\\')",
                r"SET PASSWORD = PASSWORD('n3w\'pw\\')",
                r"SET PASSWORD FOR 'app'@'10.0.%' = PASSWORD('n3w\'pw\\')",
            ),
            (
                "5.7.44-log",
                r"ALTER USER USER() IDENTIFIED BY 'n3w\'pw\\'",
                r"ALTER USER USER() IDENTIFIED BY 'n3w\'pw\\'",
                r"ALTER USER 'app'@'10.0.%' IDENTIFIED BY 'n3w\'pw\\'",
            ),
            (
                "5.7.mysql_aurora.2.11.2",
                r"ALTER USER USER() IDENTIFIED BY 'n3w\'pw\\'",
                r"ALTER USER USER() IDENTIFIED BY 'n3w\'pw\\'",
                r"ALTER USER 'app'@'10.0.%' IDENTIFIED BY 'n3w\'pw\\'",
            ),
            (
                "8.0.12",
                r"ALTER USER USER() IDENTIFIED BY 'n3w\'pw\\'",
                r"ALTER USER USER() IDENTIFIED BY 'n3w\'pw\\'",
                r"ALTER USER 'app'@'10.0.%' IDENTIFIED BY 'n3w\'pw\\'",
            ),
            (
                "8.0.36",
                r"ALTER USER USER() IDENTIFIED BY 'n3w\'pw\\'",
                r"ALTER USER USER() IDENTIFIED BY 'n3w\'pw\\' REPLACE '0ld\'pw'",
                r"ALTER USER 'app'@'10.0.%' IDENTIFIED BY 'n3w\'pw\\'",
            ),
            (
                "8.0.mysql_aurora.3.05.2",
                r"ALTER USER USER() IDENTIFIED BY 'n3w\'pw\\'",
                r"ALTER USER USER() IDENTIFIED BY 'n3w\'pw\\' REPLACE '0ld\'pw'",
                r"ALTER USER 'app'@'10.0.%' IDENTIFIED BY 'n3w\'pw\\'",
            ),
            (
                "8.4.0",
                r"ALTER USER USER() IDENTIFIED BY 'n3w\'pw\\'",
                r"ALTER USER USER() IDENTIFIED BY 'n3w\'pw\\' REPLACE '0ld\'pw'",
                r"ALTER USER 'app'@'10.0.%' IDENTIFIED BY 'n3w\'pw\\'",
            ),
            (
                "9.1.0",
                r"ALTER USER USER() IDENTIFIED BY 'n3w\'pw\\'",
                r"ALTER USER USER() IDENTIFIED BY 'n3w\'pw\\' REPLACE '0ld\'pw'",
                r"ALTER USER 'app'@'10.0.%' IDENTIFIED BY 'n3w\'pw\\'",
            ),
            (
                "10.1.48-MariaDB",
                r"SET PASSWORD = PASSWORD('n3w\'pw\\')",
                r"SET PASSWORD = PASSWORD('n3w\'pw\\')",
                r"SET PASSWORD FOR 'app'@'10.0.%' = PASSWORD('n3w\'pw\\')",
            ),
            (
                "10.11.6-MariaDB-0+deb12u1",
                r"SET PASSWORD = PASSWORD('n3w\'pw\\')",
                r"SET PASSWORD = PASSWORD('n3w\'pw\\')",
                r"SET PASSWORD FOR 'app'@'10.0.%' = PASSWORD('n3w\'pw\\')",
            ),
            (
                "11.4.2-MariaDB",
                r"SET PASSWORD = PASSWORD('n3w\'pw\\')",
                r"SET PASSWORD = PASSWORD('n3w\'pw\\')",
                r"SET PASSWORD FOR 'app'@'10.0.%' = PASSWORD('n3w\'pw\\')",
            ),
        ];
        for (version, own, replacing, of) in cases {
            let server = from_version(version);
            let name = account("app", "10.0.%", &server);
            assert_eq!(
                set_own_password(&server, &password).expose_secret(),
                own,
                "{version}"
            );
            assert_eq!(
                set_own_password_replacing(&server, &password, &current).expose_secret(),
                replacing,
                "{version}"
            );
            assert_eq!(
                set_password_of(&server, &name, &password).expose_secret(),
                of,
                "{version}"
            );
            let mysql8 = server.flavor == Flavor::MySql && server.version.major >= 8;
            assert!(
                !(mysql8 && own.contains("PASSWORD(")),
                "{version}: MySQL 8 and later have no PASSWORD()"
            );
        }
    }

    #[test]
    fn password_statements_quote_for_no_backslash_escapes_and_stay_redacted() {
        let password = SecretString::from("n3w'pw\\");
        let mut server = from_version("8.4.0");
        server.no_backslash_escapes = true;
        assert_eq!(
            set_own_password(&server, &password).expose_secret(),
            r"ALTER USER USER() IDENTIFIED BY 'n3w''pw\'"
        );
        let mut mariadb = from_version("10.11.6-MariaDB");
        mariadb.no_backslash_escapes = true;
        let statement = set_password_of(&mariadb, &account("a'b", "%", &mariadb), &password);
        assert_eq!(
            statement.expose_secret(),
            r"SET PASSWORD FOR 'a''b'@'%' = PASSWORD('n3w''pw\')"
        );
        assert!(!format!("{statement:?}").contains("n3w"));
    }

    #[test]
    fn server_info_reads_as_a_log_line() {
        let mut server = from_version("10.11.6-MariaDB-0+deb12u1");
        assert_eq!(
            server.to_string(),
            "MariaDB 10.11.6, NO_BACKSLASH_ESCAPES off"
        );
        server.no_backslash_escapes = true;
        assert!(server.to_string().ends_with("NO_BACKSLASH_ESCAPES on"));
        assert_eq!(
            from_version("8.0.mysql_aurora.3.05.2").to_string(),
            "MySQL 8.0.23, NO_BACKSLASH_ESCAPES off"
        );
    }
}
