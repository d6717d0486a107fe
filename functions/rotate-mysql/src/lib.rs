//! `rotate-mysql`: Secrets Manager rotation for MySQL, Aurora MySQL and MariaDB, a drop-in
//! replacement for AWS's single-user and multi-user MySQL and MariaDB rotation templates.
//!
//! The strategies, the connection handling and the secret formats are `rotation_database`'s;
//! this crate is the engine:
//! - [`engine`]: [`engine::MySql`], how to reach a server and read its errors;
//! - [`sql`]: the server's flavour and version, quoting that honours `NO_BACKSLASH_ESCAPES`,
//!   and the statements each dialect needs;
//! - [`account`]: the master making the clone account equal to the current one, over the grant
//!   model of [`plan`] (what to give and take) and [`parse`] (`SHOW GRANTS` lines).

pub mod account;
pub mod engine;
pub mod parse;
pub mod plan;
pub mod sql;

pub use engine::{MySql, MYSQL};
