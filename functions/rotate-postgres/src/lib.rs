//! `rotate-postgres`: Secrets Manager rotation for PostgreSQL and Aurora PostgreSQL, a drop-in
//! replacement for AWS's single-user and multi-user PostgreSQL rotation templates.
//!
//! The strategies, the connection handling and the secret formats are `rotation_database`'s;
//! this crate is the engine:
//! - [`engine`]: [`engine::Postgres`], how to reach a server and read its errors;
//! - [`sql`]: identifier and literal quoting, and client-side password hashing (SCRAM-SHA-256 or
//!   md5 verifiers), so the plaintext password never reaches the server;
//! - [`alternate`]: the master making the alternate role like the user's.

pub mod alternate;
pub mod engine;
pub mod sql;

pub use engine::{Postgres, POSTGRES};
