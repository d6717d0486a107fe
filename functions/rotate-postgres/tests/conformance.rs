//! The database conformance suite (`rotation_tests::conformance`) run for `rotate-postgres`
//! against the stack's PostgreSQL 15 (SCRAM, verified TLS, every statement logged): single
//! user, alternating users, roll-back, the crash matrix, hostile input, faults, TLS and load.

mod support;

rotation_tests::database_conformance!(postgresql, crate::support::Postgres);
