//! PostgreSQL quoting and client-side password hashing: the only place SQL text is built from
//! names and values.
//!
//! `ALTER ROLE … PASSWORD` and `CREATE ROLE` take no bind parameters, so names and verifiers are
//! spliced into the statement, quoted here by tested code. The password itself never is: it is
//! hashed on the client into the verifier the server would have stored (SCRAM-SHA-256, or md5
//! when the server's `password_encryption` says so), so the plaintext never reaches the server,
//! its logs or `pg_stat_activity`.

use rotation::TargetError;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{AssertSqlSafe, PgConnection};

use crate::engine::Postgres;

pub use postgres_quoting::{quote_identifier, quote_literal};

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (`SCRAM-SHA-256$4096:<salt>$<stored
/// key>:<server key>`), with a fresh random salt, SASLprep applied as the server does.
pub fn scram_verifier(password: &SecretString) -> SecretString {
    SecretString::from(postgres_protocol::password::scram_sha_256(
        password.expose_secret().as_bytes(),
    ))
}

/// The md5 verifier PostgreSQL stores for `role` and `password`: `"md5"` followed by the hex
/// MD5 of the password followed by the role name.
pub fn md5_verifier(role: &str, password: &SecretString) -> SecretString {
    SecretString::from(postgres_protocol::password::md5(
        password.expose_secret().as_bytes(),
        role,
    ))
}

/// How the server hashes passwords, from its `password_encryption` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordEncryption {
    ScramSha256,
    Md5,
}

impl PasswordEncryption {
    /// Reads the setting's value; PostgreSQL 10 to 13 also accept `on` and its synonyms for md5.
    pub fn from_setting(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "scram-sha-256" => Some(PasswordEncryption::ScramSha256),
            "md5" | "on" | "true" | "yes" | "1" => Some(PasswordEncryption::Md5),
            _ => None,
        }
    }
}

/// The session's `password_encryption` (which a per-role or per-database setting may change).
pub async fn password_encryption(
    conn: &mut PgConnection,
) -> Result<PasswordEncryption, TargetError> {
    let value: String = within_timeout(
        "reading password_encryption",
        sqlx::query_scalar("SHOW password_encryption")
            .persistent(false)
            .fetch_one(&mut *conn),
    )
    .await?;
    PasswordEncryption::from_setting(&value).ok_or_else(|| {
        TargetError::rejected(format!(
            "the server's password_encryption is {value:?}; expected scram-sha-256 or md5"
        ))
    })
}

/// The verifier to store for `role`, hashed as the server's `password_encryption` asks.
pub fn verifier(
    encryption: PasswordEncryption,
    role: &str,
    password: &SecretString,
) -> SecretString {
    match encryption {
        PasswordEncryption::ScramSha256 => scram_verifier(password),
        PasswordEncryption::Md5 => md5_verifier(role, password),
    }
}

/// `ALTER ROLE <role> PASSWORD '<verifier>'`, with the verifier hashed client-side according to
/// the server's `password_encryption`. The plaintext never reaches the server. Errors carry the
/// server's message and SQLSTATE, never the statement.
pub async fn set_password(
    conn: &mut PgConnection,
    role: &str,
    password: &SecretString,
) -> Result<(), TargetError> {
    check_name(role)?;
    let encryption = password_encryption(conn).await?;
    if encryption == PasswordEncryption::Md5 {
        // An md5 verifier is as good as the password to a server that accepts md5 logins, and
        // statement logging or a failed statement writes it to the server's log.
        tracing::warn!(
            "setting the password of role {role} as an md5 verifier (password_encryption is \
             md5); keep statement logging of DDL off, or switch the server to scram-sha-256"
        );
    }
    let verifier = verifier(encryption, role, password);
    let statement = SecretString::from(format!(
        "ALTER ROLE {} PASSWORD {}",
        quote_identifier(role),
        quote_literal(verifier.expose_secret())
    ));
    // The statement is built from a quoted identifier and a quoted literal only.
    within_timeout(
        &format!("setting the password of role {role}"),
        sqlx::raw_sql(AssertSqlSafe(statement.expose_secret())).execute(&mut *conn),
    )
    .await?;
    Ok(())
}

/// PostgreSQL's NAMEDATALEN - 1.
pub const MAX_ROLE_NAME_BYTES: usize = 63;

/// Refuses a role name PostgreSQL could not hold: empty, longer than 63 bytes, or with a NUL
/// character (which would cut the statement short on the wire).
pub fn check_name(role: &str) -> Result<(), TargetError> {
    if role.is_empty() {
        return Err(TargetError::invalid_secret("the role name is empty"));
    }
    // The server cuts longer names at login, so a longer name would log in as another role
    // than the one whose password changes.
    if role.len() > MAX_ROLE_NAME_BYTES {
        return Err(TargetError::invalid_secret(format!(
            "the role name {role:?} is longer than PostgreSQL's {MAX_ROLE_NAME_BYTES} bytes"
        )));
    }
    if role.contains('\0') {
        return Err(TargetError::invalid_secret(format!(
            "the role name {:?} contains a NUL character",
            role.replace('\0', "\\0")
        )));
    }
    Ok(())
}

/// Runs one database call within the statement time limit, its failure read by the engine's
/// classification (`rotation_database::connection::within_timeout`).
pub async fn within_timeout<T>(
    context: &str,
    work: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, TargetError> {
    rotation_database::connection::within_timeout(&Postgres, context, work).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_quoting::lexer;

    /// Names and texts an attacker (or an unlucky operator) might choose.
    const HOSTILE: [&str; 14] = [
        "app",
        "App User",
        "a\"b",
        "\"\"",
        "o'brien",
        "back\\slash",
        "100%_done",
        "x; DROP ROLE postgres; --",
        "x\"; DROP ROLE postgres; --",
        "x'); DROP TABLE t; --",
        "ünïcødé ✓ 角色",
        "\\'",
        "$$ $tag$",
        "tab\tnew\nline",
    ];

    #[test]
    fn identifiers_are_always_double_quoted_with_inner_quotes_doubled() {
        assert_eq!(quote_identifier("app"), "\"app\"");
        assert_eq!(quote_identifier("App User"), "\"App User\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_identifier("back\\slash"), "\"back\\slash\"");
        for name in HOSTILE {
            let quoted = quote_identifier(name);
            assert_eq!(lexer::read_identifier(&quoted).as_deref(), Ok(name));
        }
    }

    #[test]
    fn literals_match_quote_literal_and_mean_the_same_text_in_either_string_mode() {
        assert_eq!(quote_literal("plain"), "'plain'");
        assert_eq!(quote_literal("o'brien"), "'o''brien'");
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
        assert_eq!(quote_literal("\\'"), "E'\\\\'''");
        assert_eq!(quote_literal(""), "''");
        for text in HOSTILE.into_iter().chain(["'\"\\%$;", "\\", "'"]) {
            let quoted = quote_literal(text);
            assert_eq!(lexer::read_literal(&quoted, true).as_deref(), Ok(text));
            assert_eq!(lexer::read_literal(&quoted, false).as_deref(), Ok(text));
        }
    }

    #[test]
    fn a_scram_verifier_has_postgresql_s_format_and_a_fresh_salt_each_time() {
        let password = SecretString::from("c0rrect horse 'battery' \"staple\" \\ %$;");
        let first = scram_verifier(&password);
        let second = scram_verifier(&password);
        for verifier in [&first, &second] {
            let text = verifier.expose_secret();
            let rest = text.strip_prefix("SCRAM-SHA-256$4096:").expect(text);
            let (salt, keys) = rest.split_once('$').expect("salt$keys");
            let (stored, server) = keys.split_once(':').expect("stored:server");
            assert_eq!(salt.len(), 24, "16 bytes of salt in base64");
            assert_eq!(stored.len(), 44, "32 bytes in base64");
            assert_eq!(server.len(), 44, "32 bytes in base64");
            assert!(text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "$:+/=-".contains(c)));
            assert!(!text.contains("horse"));
        }
        assert_ne!(first.expose_secret(), second.expose_secret());
    }

    #[test]
    fn an_md5_verifier_is_md5_of_password_then_role() {
        // PostgreSQL's documented example: md5('secret' || 'foo').
        assert_eq!(
            md5_verifier("foo", &SecretString::from("secret")).expose_secret(),
            "md54ab2c5d00339c4b2a4e921d2dc4edec7"
        );
    }

    #[test]
    fn password_encryption_settings_are_read_as_the_server_means_them() {
        assert_eq!(
            PasswordEncryption::from_setting("scram-sha-256"),
            Some(PasswordEncryption::ScramSha256)
        );
        assert_eq!(
            PasswordEncryption::from_setting("md5"),
            Some(PasswordEncryption::Md5)
        );
        assert_eq!(
            PasswordEncryption::from_setting("on"),
            Some(PasswordEncryption::Md5)
        );
        assert_eq!(PasswordEncryption::from_setting("plain"), None);
    }

    #[test]
    fn a_role_name_that_is_empty_too_long_or_holds_a_nul_is_refused() {
        assert_eq!(
            check_name("a\0b").expect_err("NUL").error_type(),
            "InvalidSecret"
        );
        assert!(check_name("").is_err());
        assert!(check_name("ünïcødé ✓").is_ok());
        assert!(check_name(&"a".repeat(63)).is_ok());
        assert!(
            check_name(&"a".repeat(64)).is_err(),
            "64 bytes would be cut at login"
        );
        assert!(
            check_name(&"é".repeat(32)).is_err(),
            "the limit counts bytes"
        );
    }
}
