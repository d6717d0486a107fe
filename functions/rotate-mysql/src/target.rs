//! The MySQL target: what createSecret, setSecret and testSecret mean for a MySQL or MariaDB
//! account, for either strategy.

use std::sync::Arc;

use async_trait::async_trait;
use rotation::config::ConfigError;
use rotation::database::{on_pending_server, DatabaseSecret, MYSQL};
use rotation::master::{MasterSecrets, RdsLookup};
use rotation::store::SecretStore;
use rotation::target::RollBack;
use rotation::{RotationError, SecretDocument, SecretVersions, Target, TargetError};

use crate::config::{MysqlConfig, Strategy};
use crate::connection::Connector;
use crate::{alternating_users, single_user};

pub struct MysqlTarget {
    config: MysqlConfig,
    connector: Connector,
    masters: MasterSecrets,
}

impl MysqlTarget {
    pub fn new(
        config: MysqlConfig,
        store: Arc<dyn SecretStore>,
        rds: Arc<dyn RdsLookup>,
    ) -> Result<Self, ConfigError> {
        let connector = Connector::new(
            config.database.tls_mode,
            config.database.ca_bundle.clone(),
            config.database.connect_timeout,
        )?;
        Ok(MysqlTarget {
            config,
            connector,
            masters: MasterSecrets::new(store, rds, MYSQL),
        })
    }
}

/// Reads a version as a MySQL secret, naming it in errors. Its user name must be one the
/// server can hold (see `sql::check_name`).
pub fn database_secret(
    document: &SecretDocument,
    what: &str,
) -> Result<DatabaseSecret, TargetError> {
    let secret = DatabaseSecret::from_document(document, &MYSQL, what)?;
    crate::sql::check_name("user name", &secret.username)
        .map_err(|problem| TargetError::invalid_secret(format!("{what}: {}", problem.message)))?;
    Ok(secret)
}

#[async_trait]
impl Target for MysqlTarget {
    async fn derive_pending(
        &self,
        current: &SecretDocument,
        _versions: &SecretVersions<'_>,
    ) -> Result<SecretDocument, RotationError> {
        // Refuse a current version the later steps could not use before anything is written.
        let secret = database_secret(current, "AWSCURRENT version")?;
        let mut pending = current.clone();
        if self.config.database.strategy == Strategy::AlternatingUsers {
            let limit = self.config.username_limit(&secret.engine);
            pending.set_str(
                "username",
                &alternating_users::alternate_username(&secret.username, limit)?,
            );
        }
        pending.set_secret("password", &self.config.database.password_policy.generate());
        Ok(pending)
    }

    async fn apply(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        on_pending_server("setSecret", versions, &MYSQL, async {
            match self.config.database.strategy {
                Strategy::SingleUser => single_user::apply(&self.connector, versions).await,
                Strategy::AlternatingUsers => {
                    alternating_users::apply(&self.connector, &self.masters, versions).await
                }
            }
        })
        .await
    }

    async fn verify(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        on_pending_server("testSecret", versions, &MYSQL, async {
            let pending = database_secret(versions.pending().await?, "AWSPENDING version")?;
            self.connector.verify_login(&pending).await?;
            tracing::info!(
                "testSecret: Successfully signed into MySQL DB with AWSPENDING secret in {}.",
                versions.secret_arn()
            );
            Ok(())
        })
        .await
    }

    async fn roll_back(&self, versions: &SecretVersions<'_>) -> Result<RollBack, RotationError> {
        match self.config.database.strategy {
            Strategy::SingleUser => {
                on_pending_server(
                    "testSecret's roll-back",
                    versions,
                    &MYSQL,
                    single_user::roll_back(&self.connector, versions),
                )
                .await
            }
            // The current user was never touched: it keeps working whatever the test found.
            Strategy::AlternatingUsers => Ok(RollBack::NothingToUndo),
        }
    }
}
