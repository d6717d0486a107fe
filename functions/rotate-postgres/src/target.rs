//! The PostgreSQL target: what createSecret, setSecret and testSecret mean for a PostgreSQL
//! role, for either strategy.

use std::sync::Arc;

use async_trait::async_trait;
use rotation::config::ConfigError;
use rotation::database::{on_pending_server, DatabaseSecret, POSTGRES};
use rotation::store::SecretStore;
use rotation::target::RollBack;
use rotation::{RotationError, SecretDocument, SecretVersions, Target, TargetError};

use crate::config::{PostgresConfig, Strategy};
use crate::connection::Connector;
use crate::{alternating_users, single_user};
use rotation::master::{MasterSecrets, RdsLookup};

pub struct PostgresTarget {
    config: PostgresConfig,
    connector: Connector,
    masters: MasterSecrets,
}

impl PostgresTarget {
    pub fn new(
        config: PostgresConfig,
        store: Arc<dyn SecretStore>,
        rds: Arc<dyn RdsLookup>,
    ) -> Result<Self, ConfigError> {
        let connector = Connector::new(
            config.tls_mode,
            config.ca_bundle.clone(),
            config.connect_timeout,
        )?;
        Ok(PostgresTarget {
            config,
            connector,
            masters: MasterSecrets::new(store, rds, POSTGRES),
        })
    }
}

/// Reads a version as a PostgreSQL secret, naming it in errors.
pub fn database_secret(
    document: &SecretDocument,
    what: &str,
) -> Result<DatabaseSecret, TargetError> {
    DatabaseSecret::from_document(document, &POSTGRES, what)
}

#[async_trait]
impl Target for PostgresTarget {
    async fn derive_pending(
        &self,
        current: &SecretDocument,
        _versions: &SecretVersions<'_>,
    ) -> Result<SecretDocument, RotationError> {
        // The pending version must be as usable as the current one: refuse a current version the
        // later steps could not use before anything is written.
        let secret = database_secret(current, "AWSCURRENT version")?;
        let mut pending = current.clone();
        if self.config.strategy == Strategy::AlternatingUsers {
            pending.set_str(
                "username",
                &alternating_users::alternate_username(&secret.username)?,
            );
        }
        pending.set_secret("password", &self.config.password_policy.generate());
        Ok(pending)
    }

    async fn apply(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        on_pending_server("setSecret", versions, &POSTGRES, async {
            match self.config.strategy {
                Strategy::SingleUser => single_user::apply(&self.connector, versions).await,
                Strategy::AlternatingUsers => {
                    alternating_users::apply(&self.connector, &self.masters, versions).await
                }
            }
        })
        .await
    }

    async fn verify(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        on_pending_server("testSecret", versions, &POSTGRES, async {
            let pending = database_secret(versions.pending().await?, "AWSPENDING version")?;
            self.connector.verify_login(&pending).await?;
            tracing::info!(
                "testSecret: Successfully signed into PostgreSQL DB with AWSPENDING secret in {}.",
                versions.secret_arn()
            );
            Ok(())
        })
        .await
    }

    async fn roll_back(&self, versions: &SecretVersions<'_>) -> Result<RollBack, RotationError> {
        match self.config.strategy {
            Strategy::SingleUser => {
                on_pending_server(
                    "testSecret's roll-back",
                    versions,
                    &POSTGRES,
                    single_user::roll_back(&self.connector, versions),
                )
                .await
            }
            // The current user was never touched: it keeps working whatever the test found.
            Strategy::AlternatingUsers => Ok(RollBack::NothingToUndo),
        }
    }
}
