//! The database secret of the AWS templates (`engine`, `host`, `username`, `password`, `port`,
//! `dbname`, `ssl`, `masterarn`), read and validated once per version, for every database
//! target.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::config::{ConfigError, Environment};
use crate::error::RotationError;
use crate::password::{PasswordPolicy, MYSQL_EXCLUDED_CHARACTERS, POSTGRES_EXCLUDED_CHARACTERS};
use crate::secret::{FlagValue, SecretDocument, SecretFormatError};
use crate::target::TargetError;

pub mod login;
pub mod tunnel;

/// What a database function accepts: its engines and defaults.
#[derive(Clone, Copy, Debug)]
pub struct EngineFamily {
    /// The `engine` values this function rotates.
    pub engines: &'static [&'static str],
    /// The name in the AWS templates' message: `Database engine must be set to '<name>' …`.
    pub name: &'static str,
    pub default_port: u16,
    /// PostgreSQL connects to `postgres` when `dbname` is absent; MySQL to no database.
    pub default_dbname: Option<&'static str>,
    /// The AWS templates' default `EXCLUDE_CHARACTERS` for the engine.
    pub default_excluded_characters: &'static str,
}

pub const POSTGRES: EngineFamily = EngineFamily {
    engines: &["postgres", "aurora-postgresql"],
    name: "postgres",
    default_port: 5432,
    default_dbname: Some("postgres"),
    default_excluded_characters: POSTGRES_EXCLUDED_CHARACTERS,
};

pub const MYSQL: EngineFamily = EngineFamily {
    engines: &["mysql", "aurora-mysql", "mariadb"],
    name: "mysql",
    default_port: 3306,
    default_dbname: None,
    default_excluded_characters: MYSQL_EXCLUDED_CHARACTERS,
};

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

/// A step's database work must end well inside the Lambda timeout (the template sets 30 s),
/// whatever the number of connection attempts it needs.
pub const STEP_BUDGET: Duration = Duration::from_secs(25);

/// Runs a step's database work on the server of `versions`' pending secret within
/// [`STEP_BUDGET`]; a target error that does not say which server it came from gets the
/// server's address (a statement's error names the account, not where it ran).
pub async fn on_pending_server<T>(
    step: &str,
    versions: &crate::SecretVersions<'_>,
    family: &EngineFamily,
    work: impl Future<Output = Result<T, RotationError>>,
) -> Result<T, RotationError> {
    let result = within_budget(step, work).await;
    let Err(RotationError::Target(mut error)) = result else {
        return result;
    };
    // A refused version keeps the AWS templates' exact wording; it names no server anyway.
    if error.kind == crate::target::TargetErrorKind::InvalidSecret {
        return Err(error.into());
    }
    let pending = match versions.pending().await {
        Ok(document) => DatabaseSecret::from_document(document, family, "AWSPENDING version").ok(),
        Err(_) => None,
    };
    if let Some(pending) = pending {
        let server = login::host_and_port(&pending.host, pending.port);
        if !error.message.contains(&server) {
            error.message = format!("{} (server {server})", error.message);
        }
    }
    Err(error.into())
}

/// Runs a step's database work within [`STEP_BUDGET`].
pub async fn within_budget<T>(
    step: &str,
    work: impl Future<Output = Result<T, RotationError>>,
) -> Result<T, RotationError> {
    tokio::time::timeout(STEP_BUDGET, work)
        .await
        .unwrap_or_else(|_| {
            Err(TargetError::unreachable(format!(
                "{step} did not finish within its {} s budget",
                STEP_BUDGET.as_secs()
            ))
            .into())
        })
}

/// The most SQL text sent in one round trip when statements are many (grants): far below
/// every server's smallest limit (MySQL 5.7's 4 MiB `max_allowed_packet`), large enough for
/// hundreds of statements, so replaying grants costs round trips by the size of the grants,
/// not by their number.
pub const BATCH_BYTES: usize = 256 * 1024;

/// Joins statements with `;` into batches of at most `limit` bytes (a longer statement travels
/// alone), each sent as one multi-statement query.
pub fn batches(statements: &[String], limit: usize) -> Vec<String> {
    let mut batches = Vec::new();
    let mut batch = String::new();
    for statement in statements {
        if !batch.is_empty() && batch.len() + statement.len() + 2 > limit {
            batches.push(std::mem::take(&mut batch));
        }
        if !batch.is_empty() {
            batch.push_str(";\n");
        }
        batch.push_str(statement);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// One version's connection details. The password is held in a redacting type.
#[derive(Clone)]
pub struct DatabaseSecret {
    pub engine: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: SecretString,
    pub dbname: Option<String>,
    pub ssl: FlagValue,
    pub master_arn: Option<String>,
}

impl fmt::Debug for DatabaseSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSecret")
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("dbname", &self.dbname)
            .field("ssl", &self.ssl)
            .field("master_arn", &self.master_arn)
            .finish_non_exhaustive()
    }
}

impl DatabaseSecret {
    /// Validates a version as the AWS templates do (required fields, then the engine), with
    /// their messages. `what` names the version in errors (`AWSPENDING version of secret …`).
    pub fn from_document(
        document: &SecretDocument,
        family: &EngineFamily,
        what: &str,
    ) -> Result<DatabaseSecret, TargetError> {
        let invalid =
            |problem: SecretFormatError| TargetError::invalid_secret(format!("{what}: {problem}"));
        let engine = document.required_str("engine").map_err(invalid)?;
        let host = document.required_str("host").map_err(invalid)?;
        let username = document.required_str("username").map_err(invalid)?;
        let password = document.required_secret("password").map_err(invalid)?;
        if !family.engines.contains(&engine) {
            return Err(TargetError::invalid_secret(format!(
                "{what}: Database engine must be set to '{}' in order to use this rotation lambda",
                family.name
            )));
        }
        let port = document
            .port("port", family.default_port)
            .map_err(invalid)?;
        let dbname = document
            .optional_str("dbname")
            .map_err(invalid)?
            .map(str::to_owned)
            .or_else(|| family.default_dbname.map(str::to_owned));
        let master_arn = document
            .optional_str("masterarn")
            .map_err(invalid)?
            .map(str::to_owned);
        Ok(DatabaseSecret {
            engine: engine.to_owned(),
            host: host.to_owned(),
            port,
            username: username.to_owned(),
            password,
            dbname,
            ssl: document.flag("ssl"),
            master_arn,
        })
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;
    use crate::password::POSTGRES_EXCLUDED_CHARACTERS;

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
            POSTGRES_EXCLUDED_CHARACTERS
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_travel_in_batches_below_the_limit() {
        let statements: Vec<String> = (0..1000).map(|i| format!("GRANT {i:05}")).collect();
        let batches = batches(&statements, 1000);
        assert!(batches.iter().all(|b| b.len() <= 1000));
        assert_eq!(batches.join(";\n"), statements.join(";\n"));
        assert!(batches.len() < 20);
        assert_eq!(super::batches(&["x".repeat(50)], 10), ["x".repeat(50)]);
        assert!(super::batches(&[], 10).is_empty());
    }
    use secrecy::ExposeSecret;
    use serde_json::json;

    fn document(value: serde_json::Value) -> SecretDocument {
        SecretDocument::parse(&value.to_string()).expect("JSON object")
    }

    fn template_secret() -> serde_json::Value {
        json!({"engine": "postgres", "host": "db", "username": "app", "password": "pw-secret"})
    }

    #[test]
    fn a_template_secret_gets_the_engine_defaults() {
        let secret =
            DatabaseSecret::from_document(&document(template_secret()), &POSTGRES, "AWSCURRENT")
                .expect("valid");
        assert_eq!(secret.port, 5432);
        assert_eq!(secret.dbname.as_deref(), Some("postgres"));
        assert_eq!(secret.ssl, FlagValue::Absent);
        assert_eq!(secret.password.expose_secret(), "pw-secret");
        assert!(!format!("{secret:?}").contains("pw-secret"));
    }

    #[test]
    fn a_missing_field_uses_the_aws_text_and_names_the_version() {
        let mut value = template_secret();
        value.as_object_mut().expect("object").remove("host");
        let error = DatabaseSecret::from_document(&document(value), &POSTGRES, "AWSPENDING")
            .expect_err("refused");
        assert_eq!(
            error.message,
            "AWSPENDING: host key is missing from secret JSON"
        );
        assert_eq!(error.error_type(), "InvalidSecret");
    }

    #[test]
    fn another_engine_is_refused_with_the_aws_text() {
        let mut value = template_secret();
        value["engine"] = json!("mysql");
        let error = DatabaseSecret::from_document(&document(value), &POSTGRES, "AWSCURRENT")
            .expect_err("refused");
        assert!(error.message.ends_with(
            "Database engine must be set to 'postgres' in order to use this rotation lambda"
        ));
    }

    #[test]
    fn mysql_has_no_default_database_and_port_3306() {
        let mut value = template_secret();
        value["engine"] = json!("mariadb");
        value["port"] = json!("3307");
        let secret =
            DatabaseSecret::from_document(&document(value), &MYSQL, "AWSCURRENT").expect("valid");
        assert_eq!(secret.port, 3307);
        assert_eq!(secret.dbname, None);
    }
}
