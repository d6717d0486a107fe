//! The function's configuration, parsed once at start-up: the variables every database
//! function shares (see `rotation::database::DatabaseConfig`), with PostgreSQL's defaults.

use rotation::config::{ConfigError, Environment};
use rotation::database::POSTGRES;
pub use rotation::database::{DatabaseConfig, Strategy, TlsMode};

pub type PostgresConfig = DatabaseConfig;

/// `ROTATION_STRATEGY`, `TLS_MODE`, `CA_BUNDLE`, `CONNECT_TIMEOUT_SECONDS` and the password
/// policy, with PostgreSQL's default `EXCLUDE_CHARACTERS`.
pub fn from_environment(env: &Environment) -> Result<PostgresConfig, ConfigError> {
    DatabaseConfig::from_environment(env, &POSTGRES)
}
