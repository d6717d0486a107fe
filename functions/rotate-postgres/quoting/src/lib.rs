//! PostgreSQL quoting: every name and value `rotate-postgres` splices into SQL text goes through
//! [`quoting`]; [`lexer`] reads a quoted token back as the server would, written from the
//! server's documentation rather than from our quoting, for the tests and the fuzz targets to
//! check the quoting against.
//!
//! It depends on nothing but `std`, so the fuzz targets (`fuzz/`) build it without sqlx and the
//! AWS SDK; keep it that way.

pub mod lexer;
mod quoting;

pub use quoting::{quote_identifier, quote_literal};
