//! What every database rotation function shares, whatever its engine.
//!
//! - [`secret`]: the database secret of the AWS templates, read and validated once per version;
//! - [`config`]: the variables every database function shares (`ROTATION_STRATEGY`,
//!   `TLS_MODE`, `CA_BUNDLE`, `CONNECT_TIMEOUT_SECONDS`, the password policy);
//! - [`master`]: the master secret of alternating users, RDS-managed ones included;
//! - [`connection`]: logging in with verified TLS by default, bounded time, one classification
//!   of the driver's errors;
//! - [`engine`]: the seam a database engine implements: its dialect and user-level operations;
//! - [`single_user`] and [`alternating_users`]: the two strategies, written once;
//! - [`target`]: [`DatabaseTarget`], the `Target` the protocol drives, for any engine.

pub mod alternating_users;
pub mod config;
pub mod connection;
pub mod engine;
pub mod master;
pub mod secret;
pub mod single_user;
pub mod target;

pub use config::{DatabaseConfig, Strategy, TlsMode};
pub use connection::{Connector, LoginError, LoginFailure, Transport};
pub use engine::{Engine, NameLimit, PasswordSet, PreviousWording, ServerErrorClass};
pub use secret::{DatabaseSecret, EngineFamily};
pub use target::DatabaseTarget;

/// The named points after a database side effect, where a test build can stop the process
/// (see `rotation::crash`).
pub mod crash_points {
    /// The alternate database user was created (before it has its grants or password).
    pub const CLONE_CREATED: &str = "clone-created";
    /// The alternate user's grants were replayed (MySQL), before its password was set.
    pub const GRANTS_REPLAYED: &str = "grants-replayed";
    /// The database accepted the pending password.
    pub const PASSWORD_SET: &str = "password-set";
}

/// The most SQL text sent in one round trip when statements are many (grants): far below
/// every server's smallest limit (MySQL 5.7's 4 MiB `max_allowed_packet`), large enough for
/// hundreds of statements, so replaying grants costs round trips by the size of the grants,
/// not by their number.
pub const BATCH_BYTES: usize = 256 * 1024;

/// Joins statements with `;` into batches of at most `limit` bytes (a longer statement travels
/// alone), each sent as one multi-statement query.
pub fn batches(statements: &[String], limit: usize) -> Vec<String> {
    let mut batches = Vec::new();
    let mut batch = String::new();
    for statement in statements {
        if !batch.is_empty() && batch.len() + statement.len() + 2 > limit {
            batches.push(std::mem::take(&mut batch));
        }
        if !batch.is_empty() {
            batch.push_str(";\n");
        }
        batch.push_str(statement);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_travel_in_batches_below_the_limit() {
        let statements: Vec<String> = (0..1000).map(|i| format!("GRANT {i:05}")).collect();
        let batches = batches(&statements, 1000);
        assert!(batches.iter().all(|b| b.len() <= 1000));
        assert_eq!(batches.join(";\n"), statements.join(";\n"));
        assert!(batches.len() < 20);
        assert_eq!(super::batches(&["x".repeat(50)], 10), ["x".repeat(50)]);
        assert!(super::batches(&[], 10).is_empty());
    }
}
