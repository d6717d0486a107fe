//! The database secret of the AWS templates (`engine`, `host`, `username`, `password`, `port`,
//! `dbname`, `ssl`, `masterarn`), read and validated once per version, for every database
//! engine.

use std::fmt;

use rotation::secret::{FlagValue, SecretDocument, SecretFormatError};
use rotation::TargetError;
use secrecy::SecretString;

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
    /// This (pending) version must be for `user` on `current`'s host, or the step refuses it
    /// with the AWS templates' texts; `expected` names the user it should be ("current user",
    /// "current user or clone"), followed by current's user name.
    pub fn check_is_for(
        &self,
        user: &str,
        current: &DatabaseSecret,
        expected: &str,
    ) -> Result<(), TargetError> {
        if self.username != user {
            return Err(TargetError::invalid_secret(format!(
                "Attempting to modify user {} other than {expected} {}",
                self.username, current.username
            )));
        }
        if self.host != current.host {
            return Err(TargetError::invalid_secret(format!(
                "Attempting to modify user for host {} other than current host {}",
                self.host, current.host
            )));
        }
        Ok(())
    }

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
pub(crate) mod tests {
    use super::*;

    /// Families as the PostgreSQL and MySQL functions declare theirs.
    pub(crate) const POSTGRES: EngineFamily = EngineFamily {
        engines: &["postgres", "aurora-postgresql"],
        name: "postgres",
        default_port: 5432,
        default_dbname: Some("postgres"),
        default_excluded_characters: ":/@\"'\\",
    };
    const MYSQL: EngineFamily = EngineFamily {
        engines: &["mysql", "aurora-mysql", "mariadb"],
        name: "mysql",
        default_port: 3306,
        default_dbname: None,
        default_excluded_characters: "/@\"'\\",
    };

    use secrecy::ExposeSecret;
    use serde_json::json;

    /// A PostgreSQL secret for `user` on `host`, port 5433, password `pw`: the unit tests' own.
    pub(crate) fn postgres_secret(user: &str, host: &str) -> DatabaseSecret {
        let json = format!(
            r#"{{"engine":"postgres","host":"{host}","port":5433,"username":"{user}","password":"pw"}}"#
        );
        let document = SecretDocument::parse(&json).expect("JSON");
        DatabaseSecret::from_document(&document, &POSTGRES, "test").expect("valid")
    }

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
