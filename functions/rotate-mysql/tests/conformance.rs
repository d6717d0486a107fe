//! The database conformance suite (`rotation_tests::conformance`) run for `rotate-mysql` against
//! the stack's MariaDB 10.11 (verified TLS, `skip-name-resolve`), with `engine` `mariadb` and
//! `mysql` where the secret's engine matters: single user, alternating users, roll-back, the
//! crash matrix, hostile input, faults, TLS and load.

mod support;

rotation_tests::database_conformance!(mariadb, crate::support::MariaDb);
