//! The seam between the strategies, written once in this crate, and a database engine, which
//! only speaks its dialect.
//!
//! An engine says how to reach its servers (connection options, the trivial query that proves a
//! login), how to read its servers' errors (one list, used for logins and statements alike), and
//! the user-level operations the strategies need: who a session is logged in as, a user changing
//! its own password, and the master making the alternate user like the current one and setting
//! its password. It knows nothing of staging labels, versions or which credential a step must
//! prove first: [`crate::single_user`] and [`crate::alternating_users`] decide that, once.

use std::fmt;

use async_trait::async_trait;
use rotation::TargetError;
use secrecy::SecretString;

use crate::connection::Transport;
use crate::secret::{DatabaseSecret, EngineFamily};

/// How an engine bounds a user name: PostgreSQL counts bytes, MySQL and MariaDB characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameLimit {
    Bytes(usize),
    Characters(usize),
}

/// What a server error means for the one who sent the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerErrorClass {
    /// The server refused these credentials (bad password, no such user or database, account
    /// locked or expired).
    CredentialsRejected,
    /// The server is in trouble rather than refusing: too many connections, shutting down, a
    /// deadlock or a time-out. A later attempt may succeed.
    Transient,
    /// The server refused the request (a privilege, a constraint, a setting): it will refuse it
    /// again.
    Refused,
}

/// Who set the alternate user's password in [`Engine::make_alternate_like`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordSet {
    ByMaster,
    /// The master may not set it (on PostgreSQL: neither SUPERUSER nor CREATEROLE, or no ADMIN
    /// OPTION on the role from version 16); the rest is done, and the alternate user changes its
    /// own password, logging in with its previous credentials. Says why, in the engine's terms.
    NotByMaster(&'static str),
}

/// How an engine's AWS template words a previous version for another user or host:
/// `Attempting to modify user … other than {user} …`, `… for host … other than {host} …`.
#[derive(Clone, Copy, Debug)]
pub struct PreviousWording {
    pub user: &'static str,
    pub host: &'static str,
}

/// A database engine, as the strategies drive it.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// A logged-in session.
    type Connection: sqlx::Connection + Send;
    /// The account a session is logged in as (MySQL: user and host part; PostgreSQL: the role).
    type Account: fmt::Display + Send + Sync;

    /// The verified TLS mode's name in logs and errors.
    const VERIFIED_TLS: &'static str;
    /// The plaintext retry of `TLS_MODE=prefer`, after the verified TLS attempt failed.
    const PLAINTEXT_AFTER_FALLBACK: &'static str;
    /// The trivial query that proves a login, as errors name it.
    const PROBE: &'static str;

    /// The `engine` values this function rotates, and the engine's defaults.
    fn family(&self) -> &'static EngineFamily;

    /// The server's name in the AWS templates' log lines ("PostgreSQL", "MySQL", "MariaDB"), for
    /// a secret's `engine`.
    fn server_name(&self, engine: &str) -> &'static str;

    /// The longest user name the engine holds, for a secret's `engine`.
    fn name_limit(&self, engine: &str) -> NameLimit;

    /// A user name the server could not hold, in a version: why (the version is refused).
    fn check_user_name(&self, _name: &str) -> Result<(), String> {
        Ok(())
    }

    /// How the engine's AWS single-user template words a previous version for another user.
    fn previous_wording(&self, engine: &str) -> PreviousWording;

    /// Whether single user's roll-back logs in to the secret's database: MySQL's leaves it out,
    /// so a test that failed because access to that database was taken away cannot stop the
    /// password from being restored.
    fn roll_back_in_secret_database(&self) -> bool {
        true
    }

    /// The driver's options for one login attempt (the connector adds statement logging off).
    fn connect_options(
        &self,
        secret: &DatabaseSecret,
        transport: Transport,
        ca_pem: Option<&[u8]>,
    ) -> <Self::Connection as sqlx::Connection>::Options;

    /// Runs SQL text (no parameters, one or more statements) on the connection: the probe, and
    /// the statements the engine builds with its quoting.
    async fn run(&self, connection: &mut Self::Connection, sql: &str) -> Result<(), sqlx::Error>;

    /// What a server error means, and its text with the server's code (never a statement's
    /// text, which may hold a password).
    fn classify(&self, error: &dyn sqlx::error::DatabaseError) -> (ServerErrorClass, String);

    /// The account the server logged this session in as.
    async fn logged_in_as(
        &self,
        connection: &mut Self::Connection,
    ) -> Result<Self::Account, TargetError>;

    /// The user name of an account.
    fn user_of<'a>(&self, account: &'a Self::Account) -> &'a str;

    /// As the logged-in user, sets that user's own password to `new`. `old` is the password it
    /// logged in with (MySQL 8 checks it with `REPLACE`).
    async fn set_own_password(
        &self,
        connection: &mut Self::Connection,
        user: &str,
        new: &SecretString,
        old: &SecretString,
    ) -> Result<(), TargetError>;

    /// As the master: makes `alternate` (created when missing) equal to `model` in everything
    /// that gives access (grants, memberships, attributes, settings, TLS requirements) and sets
    /// its password to `password` when the master may. Converges when run again after a failure
    /// or a crash at any point.
    async fn make_alternate_like(
        &self,
        master: &mut Self::Connection,
        model: &Self::Account,
        alternate: &str,
        password: &SecretString,
    ) -> Result<PasswordSet, TargetError>;
}
