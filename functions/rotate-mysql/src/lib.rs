//! `rotate-mysql`: Secrets Manager rotation for MySQL, Aurora MySQL and MariaDB, a drop-in
//! replacement for AWS's single-user and multi-user MySQL and MariaDB rotation templates.
//!
//! - [`config`]: the environment, parsed once;
//! - [`connection`]: logging in, with verified TLS by default, bounded time and clear errors;
//! - [`sql`]: the server's flavour and version, quoting that honours `NO_BACKSLASH_ESCAPES`,
//!   and the statements each dialect needs;
//! - [`single_user`] and [`alternating_users`]: the two strategies' setSecret;
//! - [`target`]: the `Target` the shared protocol drives.

pub mod alternating_users;
pub mod config;
pub mod connection;
pub mod single_user;
pub mod sql;
pub mod target;
