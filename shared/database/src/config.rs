//! The variables every database function shares, parsed once at start-up.

use std::path::PathBuf;
use std::time::Duration;

use rotation::config::{ConfigError, Environment};
use rotation::password::PasswordPolicy;

use crate::secret::EngineFamily;

/// How the function changes passwords (`ROTATION_STRATEGY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// The user changes its own password (AWS's single-user template).
    SingleUser,
    /// `name` and `name_clone` take turns; the master user sets the password of the one that is
    /// not current (AWS's multi-user template).
    AlternatingUsers,
}

/// What happens when the secret does not say `"ssl": false` (`TLS_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS with the certificate and host name verified; no plaintext fall-back. The default.
    VerifyFull,
    /// The AWS templates' behaviour: try verified TLS, then plaintext (logged at WARN).
    Prefer,
}

#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    pub strategy: Strategy,
    pub tls_mode: TlsMode,
    /// `CA_BUNDLE`; when unset, the system bundle (`/etc/pki/tls/cert.pem` on Lambda).
    pub ca_bundle: Option<PathBuf>,
    /// `CONNECT_TIMEOUT_SECONDS`, per connection attempt.
    pub connect_timeout: Duration,
    pub password_policy: PasswordPolicy,
}

/// Where the system's CA bundle lives: Amazon Linux (Lambda) first, then Debian and friends.
const SYSTEM_CA_BUNDLES: [&str; 2] = [
    "/etc/pki/tls/cert.pem",
    "/etc/ssl/certs/ca-certificates.crt",
];

impl DatabaseConfig {
    /// Reads the variables every database function shares; `family` gives the engine's default
    /// `EXCLUDE_CHARACTERS`.
    pub fn from_environment(env: &Environment, family: &EngineFamily) -> Result<Self, ConfigError> {
        let strategy = match env.get("ROTATION_STRATEGY").as_deref() {
            None | Some("") | Some("single-user") => Strategy::SingleUser,
            Some("alternating-users") => Strategy::AlternatingUsers,
            Some(other) => {
                return Err(ConfigError::new(
                    "ROTATION_STRATEGY",
                    format!("{other:?} is not a strategy; use single-user or alternating-users"),
                ))
            }
        };
        let tls_mode = match env.get("TLS_MODE").as_deref() {
            None | Some("") | Some("verify-full") => TlsMode::VerifyFull,
            Some("prefer") => TlsMode::Prefer,
            Some(other) => {
                return Err(ConfigError::new(
                    "TLS_MODE",
                    format!("{other:?} is not a TLS mode; use verify-full or prefer"),
                ))
            }
        };
        let ca_bundle = match env.get("CA_BUNDLE").filter(|path| !path.is_empty()) {
            Some(path) => {
                let path = PathBuf::from(path);
                if !path.is_file() {
                    return Err(ConfigError::new(
                        "CA_BUNDLE",
                        format!("{} is not a readable file", path.display()),
                    ));
                }
                Some(path)
            }
            None => SYSTEM_CA_BUNDLES
                .iter()
                .map(PathBuf::from)
                .find(|path| path.is_file()),
        };
        let seconds: u64 = env.integer("CONNECT_TIMEOUT_SECONDS", 5)?;
        if !(1..=10).contains(&seconds) {
            return Err(ConfigError::new(
                "CONNECT_TIMEOUT_SECONDS",
                format!(
                    "{seconds} is out of range; use 1 to 10 so a step stays within its time budget"
                ),
            ));
        }
        Ok(DatabaseConfig {
            strategy,
            tls_mode,
            ca_bundle,
            connect_timeout: Duration::from_secs(seconds),
            password_policy: PasswordPolicy::from_environment(
                env,
                family.default_excluded_characters,
            )?,
        })
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;
    use crate::secret::tests::POSTGRES;

    fn parse(pairs: &[(&str, &str)]) -> Result<DatabaseConfig, ConfigError> {
        DatabaseConfig::from_environment(&Environment::from_pairs(pairs.iter().copied()), &POSTGRES)
    }

    #[test]
    fn the_defaults_are_single_user_verified_tls_and_five_seconds() {
        let config = parse(&[]).expect("defaults");
        assert_eq!(config.strategy, Strategy::SingleUser);
        assert_eq!(config.tls_mode, TlsMode::VerifyFull);
        assert_eq!(config.connect_timeout, Duration::from_secs(5));
        assert_eq!(config.password_policy.rules().length, 32);
        assert_eq!(
            config.password_policy.rules().exclude_characters,
            POSTGRES.default_excluded_characters
        );
    }

    #[test]
    fn alternating_users_and_prefer_are_accepted() {
        let config = parse(&[
            ("ROTATION_STRATEGY", "alternating-users"),
            ("TLS_MODE", "prefer"),
        ])
        .expect("valid");
        assert_eq!(config.strategy, Strategy::AlternatingUsers);
        assert_eq!(config.tls_mode, TlsMode::Prefer);
    }

    #[test]
    fn every_invalid_value_is_refused_with_a_message_naming_its_variable() {
        for (variable, value) in [
            ("ROTATION_STRATEGY", "multi-user"),
            ("TLS_MODE", "disable"),
            ("CA_BUNDLE", "/no/such/bundle.pem"),
            ("CONNECT_TIMEOUT_SECONDS", "five"),
            ("CONNECT_TIMEOUT_SECONDS", "0"),
            ("CONNECT_TIMEOUT_SECONDS", "60"),
            ("PASSWORD_LENGTH", "-3"),
        ] {
            let error = parse(&[(variable, value)]).expect_err(variable);
            assert_eq!(error.variable, variable, "{value}");
        }
    }
}
