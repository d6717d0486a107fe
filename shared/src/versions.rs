//! The versions of the secret a step may need, read on first use and cached for the step.
//!
//! A target asks for what it needs (setSecret reads `AWSPREVIOUS` only when `AWSCURRENT` no
//! longer logs in), so no step pays for a read it does not use.

use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use crate::error::RotationError;
use crate::event::ClientRequestToken;
use crate::secret::SecretDocument;
use crate::store::{SecretDescription, SecretStore, StagingLabel, VersionSelector};

pub struct SecretVersions<'a> {
    store: &'a dyn SecretStore,
    description: &'a SecretDescription,
    token: &'a ClientRequestToken,
    current: OnceCell<SecretDocument>,
    pending: OnceCell<SecretDocument>,
    previous: OnceCell<Option<SecretDocument>>,
}

impl<'a> SecretVersions<'a> {
    pub fn new(
        store: &'a dyn SecretStore,
        description: &'a SecretDescription,
        token: &'a ClientRequestToken,
    ) -> Self {
        SecretVersions {
            store,
            description,
            token,
            current: OnceCell::new(),
            pending: OnceCell::new(),
            previous: OnceCell::new(),
        }
    }

    /// The secret's full ARN (the event may have named it differently).
    pub fn secret_arn(&self) -> &str {
        &self.description.arn
    }

    /// The `ClientRequestToken`: the VersionId of this rotation's pending version.
    pub fn token(&self) -> &str {
        self.token.as_str()
    }

    pub fn description(&self) -> &SecretDescription {
        self.description
    }

    /// `AWSCURRENT`, which every secret under rotation has.
    pub async fn current(&self) -> Result<&SecretDocument, RotationError> {
        self.current
            .get_or_try_init(|| async {
                self.read(VersionSelector::Stage(StagingLabel::Current))
                    .await?
                    .ok_or_else(|| self.missing(StagingLabel::Current))
            })
            .await
    }

    /// This rotation's `AWSPENDING`, read by VersionId so a stale pending version of an earlier
    /// rotation can never be mistaken for it.
    pub async fn pending(&self) -> Result<&SecretDocument, RotationError> {
        self.pending
            .get_or_try_init(|| async {
                self.read(self.pending_selector())
                    .await?
                    .ok_or_else(|| self.missing(StagingLabel::Pending))
            })
            .await
    }

    /// `AWSPREVIOUS`, when the secret has been rotated before.
    pub async fn previous(&self) -> Result<Option<&SecretDocument>, RotationError> {
        let previous = self
            .previous
            .get_or_try_init(|| self.read(VersionSelector::Stage(StagingLabel::Previous)))
            .await?;
        Ok(previous.as_ref())
    }

    /// Reads the pending value if it exists yet, bypassing the cache: createSecret's question,
    /// asked again after a lost write race, or by a target just before an irreversible action
    /// (a duplicate invocation may have stored the value meanwhile).
    pub async fn try_pending(&self) -> Result<Option<SecretDocument>, RotationError> {
        self.read(self.pending_selector()).await
    }

    fn pending_selector(&self) -> VersionSelector<'_> {
        VersionSelector::Id {
            version_id: self.token.as_str(),
            stage: Some(StagingLabel::Pending),
        }
    }

    async fn read(
        &self,
        selector: VersionSelector<'_>,
    ) -> Result<Option<SecretDocument>, RotationError> {
        let Some(value) = self
            .store
            .get_value(&self.description.arn, selector)
            .await?
        else {
            return Ok(None);
        };
        let stage = match selector {
            VersionSelector::Stage(stage) => format!("{stage} version"),
            VersionSelector::Id { version_id, .. } => format!("version {version_id}"),
        };
        SecretDocument::parse(value.secret_string.expose_secret())
            .map(Some)
            .map_err(|problem| RotationError::InvalidSecret {
                secret: self.description.arn.clone(),
                stage,
                problem,
            })
    }

    fn missing(&self, label: StagingLabel) -> RotationError {
        RotationError::MissingVersion {
            secret: self.description.arn.clone(),
            label,
        }
    }
}
