//! `rotate-postgres`: Secrets Manager rotation for PostgreSQL and Aurora PostgreSQL, a drop-in
//! replacement for AWS's single-user and multi-user PostgreSQL rotation templates.
//!
//! - [`config`]: the environment, parsed once;
//! - [`connection`]: logging in, with verified TLS by default, bounded time and clear errors;
//! - [`sql`]: identifier and literal quoting, and client-side password hashing (SCRAM-SHA-256 or
//!   md5 verifiers), so the plaintext password never reaches the server;
//! - [`single_user`] and [`alternating_users`]: the two strategies' setSecret;
//! - [`target`]: the `Target` the shared protocol drives.

pub mod alternating_users;
pub mod config;
pub mod connection;
pub mod single_user;
pub mod sql;
pub mod target;
