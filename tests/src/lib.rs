//! Integration test support: the local stack (moto, PostgreSQL 15, MariaDB 10.11 on loopback),
//! the Lambda Runtime API emulator that runs the real function binaries, the orchestrator that
//! plays Secrets Manager, and the database functions' conformance suite (`conformance`).

pub mod api_provider;
pub mod conformance;
pub mod crash_matrix;
pub mod events;
pub mod hostile;
pub mod http;
pub mod leaks;
pub mod load;
pub mod login;
pub mod orchestrator;
pub mod permissions;
pub mod proxy;
pub mod quoting_inputs;
pub mod runtime_api;
pub mod secrets_manager;
pub mod stack;
