//! The production code the fuzz targets exercise, compiled here from its own source files.
//!
//! The targets need only four pure pieces of the suite: event validation, the secret document,
//! and the two quoting modules (with their reference readers). Depending on the crates that
//! hold them would build the AWS SDK, `lambda_runtime` and sqlx with coverage instrumentation
//! on every CI run (8 min 45 s for the `rotation` crate alone on the 2-core CI machine, before
//! the function crates); compiling just these files takes 1 min 16 s. Each file named below
//! depends on `std`, serde_json, secrecy, zeroize and thiserror only, at the versions the
//! workspace uses; a change that gives one a heavier dependency breaks this build, loudly.

/// `event.rs` reports a rejected event as `crate::error::RotationError::InvalidEvent`, the only
/// variant it builds; this stands in for the crate's full error enum, which needs the Lambda
/// runtime. A new variant used by `event.rs` fails this build until it is added here.
pub mod error {
    #[derive(Debug)]
    pub enum RotationError {
        InvalidEvent(String),
    }
}

#[path = "../../shared/src/event.rs"]
pub mod event;

#[path = "../../shared/src/secret.rs"]
pub mod secret;

#[path = "../../functions/rotate-postgres/src/sql/quoting.rs"]
pub mod postgres_quoting;

#[path = "../../functions/rotate-postgres/src/sql/lexer.rs"]
pub mod postgres_lexer;

#[path = "../../functions/rotate-mysql/src/sql/quoting.rs"]
pub mod mysql_quoting;

#[path = "../../functions/rotate-mysql/src/sql/lexer.rs"]
pub mod mysql_lexer;

/// Whether every run of `quote` in `text` has an even length: inside a quoted token, the only
/// way a quote character may stand is doubled.
pub fn quotes_are_doubled(text: &str, quote: char) -> bool {
    text.split(|character| character != quote)
        .all(|run| run.chars().count() % 2 == 0)
}
