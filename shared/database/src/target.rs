//! [`DatabaseTarget`]: what createSecret, setSecret and testSecret mean for a database user,
//! for either strategy, over any [`Engine`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rotation::config::ConfigError;
use rotation::lambda::StartUp;
use rotation::store::SecretStore;
use rotation::target::{RollBack, TargetErrorKind};
use rotation::{RotationError, SecretDocument, SecretVersions, Target, TargetError};

use crate::config::{DatabaseConfig, Strategy};
use crate::connection::{host_and_port, Connector};
use crate::engine::Engine;
use crate::master::{AwsRds, MasterSecrets, RdsLookup};
use crate::secret::{DatabaseSecret, EngineFamily};
use crate::{alternating_users, single_user};

/// A database function's target: the engine, how to log in to it, and the master secrets.
pub struct DatabaseTarget<E: Engine> {
    strategy: Strategy,
    password_policy: rotation::password::PasswordPolicy,
    connector: Connector<E>,
    masters: MasterSecrets,
}

impl<E: Engine> DatabaseTarget<E> {
    pub fn new(
        engine: E,
        config: DatabaseConfig,
        store: Arc<dyn SecretStore>,
        rds: Arc<dyn RdsLookup>,
    ) -> Result<Self, ConfigError> {
        let family = *engine.family();
        let connector = Connector::new(
            Arc::new(engine),
            config.tls_mode,
            config.ca_bundle,
            config.connect_timeout,
        )?;
        Ok(DatabaseTarget {
            strategy: config.strategy,
            password_policy: config.password_policy,
            connector,
            masters: MasterSecrets::new(store, rds, family),
        })
    }

    /// The target a function's `main` serves: configuration from the process environment, the
    /// Secrets Manager client `rotation::lambda` built, RDS's API for RDS-managed masters.
    pub fn from_start_up(engine: E, start_up: &StartUp) -> Result<Self, ConfigError> {
        let config = DatabaseConfig::from_environment(&start_up.env, engine.family())?;
        let rds = AwsRds::new(aws_sdk_rds::Client::new(&start_up.aws));
        DatabaseTarget::new(engine, config, start_up.store.clone(), Arc::new(rds))
    }

    fn engine(&self) -> &E {
        self.connector.engine()
    }

    /// Reads a version as this engine's secret, naming it in errors (`what`): the AWS
    /// templates' checks, then a user name the server can hold.
    pub fn secret(
        &self,
        document: &SecretDocument,
        what: &str,
    ) -> Result<DatabaseSecret, TargetError> {
        read_secret(self.engine(), document, what)
    }

    async fn pending_and_current(
        &self,
        versions: &SecretVersions<'_>,
    ) -> Result<(DatabaseSecret, DatabaseSecret), RotationError> {
        let pending = self.secret(versions.pending().await?, "AWSPENDING version")?;
        let current = self.secret(versions.current().await?, "AWSCURRENT version")?;
        Ok((pending, current))
    }
}

/// Reads a version as `engine`'s secret (see [`DatabaseTarget::secret`]).
pub fn read_secret<E: Engine>(
    engine: &E,
    document: &SecretDocument,
    what: &str,
) -> Result<DatabaseSecret, TargetError> {
    let secret = DatabaseSecret::from_document(document, engine.family(), what)?;
    engine
        .check_user_name(&secret.username)
        .map_err(|problem| TargetError::invalid_secret(format!("{what}: {problem}")))?;
    Ok(secret)
}

#[async_trait]
impl<E: Engine> Target for DatabaseTarget<E> {
    async fn derive_pending(
        &self,
        current: &SecretDocument,
        _versions: &SecretVersions<'_>,
    ) -> Result<SecretDocument, RotationError> {
        // The pending version must be as usable as the current one: refuse a current version the
        // later steps could not use before anything is written.
        let secret = self.secret(current, "AWSCURRENT version")?;
        let mut pending = current.clone();
        if self.strategy == Strategy::AlternatingUsers {
            let limit = self.engine().name_limit(&secret.engine);
            pending.set_str(
                "username",
                &alternating_users::alternate_username(&secret.username, limit)?,
            );
        }
        pending.set_secret("password", &self.password_policy.generate());
        Ok(pending)
    }

    async fn apply(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        let family = self.engine().family();
        on_pending_server("setSecret", versions, family, async {
            let (pending, current) = self.pending_and_current(versions).await?;
            let parse = |document: &SecretDocument, what: &str| self.secret(document, what);
            match self.strategy {
                Strategy::SingleUser => {
                    single_user::set_password(&self.connector, versions, &pending, &current, parse)
                        .await
                }
                Strategy::AlternatingUsers => {
                    alternating_users::set_password(
                        &self.connector,
                        &self.masters,
                        versions,
                        &pending,
                        &current,
                        parse,
                    )
                    .await
                }
            }
        })
        .await
    }

    async fn verify(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        on_pending_server("testSecret", versions, self.engine().family(), async {
            let pending = self.secret(versions.pending().await?, "AWSPENDING version")?;
            self.connector.verify_login(&pending).await?;
            tracing::info!(
                "testSecret: Successfully signed into {} DB with AWSPENDING secret in {}.",
                // The AWS templates name the family here ("MySQL DB" for MariaDB too).
                self.engine().server_name(self.engine().family().engines[0]),
                versions.secret_arn()
            );
            Ok(())
        })
        .await
    }

    async fn roll_back(&self, versions: &SecretVersions<'_>) -> Result<RollBack, RotationError> {
        match self.strategy {
            Strategy::SingleUser => {
                on_pending_server(
                    "testSecret's roll-back",
                    versions,
                    self.engine().family(),
                    async {
                        let (pending, current) = self.pending_and_current(versions).await?;
                        single_user::roll_back(&self.connector, versions, &pending, &current).await
                    },
                )
                .await
            }
            // The current user was never touched: it keeps working whatever the test found.
            Strategy::AlternatingUsers => Ok(RollBack::NothingToUndo),
        }
    }
}

/// A step's database work must end well inside the Lambda timeout (the template sets 30 s),
/// whatever the number of connection attempts it needs.
pub const STEP_BUDGET: Duration = Duration::from_secs(25);

/// Runs a step's database work on the server of `versions`' pending secret within
/// [`STEP_BUDGET`]; a target error that does not say which server it came from gets the
/// server's address (a statement's error names the account, not where it ran).
async fn on_pending_server<T>(
    step: &str,
    versions: &SecretVersions<'_>,
    family: &EngineFamily,
    work: impl Future<Output = Result<T, RotationError>>,
) -> Result<T, RotationError> {
    let result = within_budget(step, work).await;
    let Err(RotationError::Target(mut error)) = result else {
        return result;
    };
    // A refused version keeps the AWS templates' exact wording; it names no server anyway.
    if error.kind == TargetErrorKind::InvalidSecret {
        return Err(error.into());
    }
    let pending = match versions.pending().await {
        Ok(document) => DatabaseSecret::from_document(document, family, "AWSPENDING version").ok(),
        Err(_) => None,
    };
    if let Some(pending) = pending {
        let server = host_and_port(&pending.host, pending.port);
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
