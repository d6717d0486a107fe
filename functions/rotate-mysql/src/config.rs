//! The function's configuration, parsed once at start-up: the variables every database
//! function shares (see `rotation::database::DatabaseConfig`) with MySQL's defaults, plus
//! `USERNAME_CHARACTER_LIMIT`.

use rotation::config::{ConfigError, Environment};
use rotation::database::MYSQL;
pub use rotation::database::{DatabaseConfig, Strategy, TlsMode};

/// MariaDB user names may be 80 characters long, whatever `USERNAME_CHARACTER_LIMIT` says.
pub const MARIADB_USERNAME_LIMIT: usize = 80;

#[derive(Clone, Debug)]
pub struct MysqlConfig {
    pub database: DatabaseConfig,
    /// `USERNAME_CHARACTER_LIMIT` (AWS's MySQL multi-user template): the longest MySQL user
    /// name, 16 by default (MySQL 5.6); 32 on MySQL 5.7 and later.
    pub username_character_limit: usize,
}

impl MysqlConfig {
    pub fn from_environment(env: &Environment) -> Result<Self, ConfigError> {
        let username_character_limit: usize = env.integer("USERNAME_CHARACTER_LIMIT", 16)?;
        if !(1..=MARIADB_USERNAME_LIMIT).contains(&username_character_limit) {
            return Err(ConfigError::new(
                "USERNAME_CHARACTER_LIMIT",
                format!("{username_character_limit} is out of range; use 1 to 80"),
            ));
        }
        Ok(MysqlConfig {
            database: DatabaseConfig::from_environment(env, &MYSQL)?,
            username_character_limit,
        })
    }

    /// The longest user name the engine accepts.
    pub fn username_limit(&self, engine: &str) -> usize {
        if engine == "mariadb" {
            MARIADB_USERNAME_LIMIT
        } else {
            self.username_character_limit
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rotation::password::MYSQL_EXCLUDED_CHARACTERS;

    fn parse(pairs: &[(&str, &str)]) -> Result<MysqlConfig, ConfigError> {
        MysqlConfig::from_environment(&Environment::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn the_defaults_follow_the_aws_mysql_templates() {
        let config = parse(&[]).expect("defaults");
        assert_eq!(config.username_character_limit, 16);
        assert_eq!(
            config.database.password_policy.rules().exclude_characters,
            MYSQL_EXCLUDED_CHARACTERS
        );
        assert_eq!(config.username_limit("mysql"), 16);
        assert_eq!(config.username_limit("mariadb"), 80);
    }

    #[test]
    fn an_invalid_username_limit_is_refused_naming_the_variable() {
        for value in ["sixteen", "0", "81"] {
            let error = parse(&[("USERNAME_CHARACTER_LIMIT", value)]).expect_err(value);
            assert_eq!(error.variable, "USERNAME_CHARACTER_LIMIT");
        }
    }
}
