//! The test kit of the rotation protocol, for the unit tests of every crate and the
//! integration tests alike:
//! - [`memory`]: Secrets Manager in memory, with the strict label semantics of the real service
//!   (where moto is lenient);
//! - [`scenarios`]: the protocol's scenarios, written once over a store and a credential holder,
//!   run against the in-memory store (this crate's tests) and against moto (`tests/`).

pub mod memory;
pub mod scenarios;
