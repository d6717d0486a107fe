//! The versions of the secret a step may need, read on first use and cached for the step.
//!
//! A target asks for what it needs (setSecret reads `AWSPREVIOUS` only when `AWSCURRENT` no
//! longer logs in), so no step pays for a read it does not use. A read whose answer the step's
//! `DescribeSecret` already gives (no version holds the label) is not made, and a value this
//! process has read before is not read again ([`VersionCache`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use crate::error::RotationError;
use crate::event::ClientRequestToken;
use crate::secret::SecretDocument;
use crate::store::{SecretDescription, SecretStore, StagingLabel, VersionSelector};

/// Version values this process has read, kept from one invocation to the next.
///
/// Secrets Manager never changes a version's value once written (a second `PutSecretValue` with
/// the same token and other data is refused), so a value read once is that version's value for
/// good, and the rotation's next steps, which Lambda usually hands to the same warm process, need
/// not read it again: createSecret's read of `AWSCURRENT` serves setSecret, setSecret's read of
/// `AWSPENDING` serves testSecret. Which version holds which label still comes from each step's
/// own `DescribeSecret`; only values are reused.
///
/// Only values read from the service are kept, never one this process wrote: moto, unlike
/// Secrets Manager, lets a racing duplicate createSecret overwrite a pending value, and a read
/// after the race sees the value that won. A secret's versions that no longer carry a label are
/// dropped at its next step, so each secret keeps at most its labelled versions here. Values
/// are zeroed when dropped ([`SecretDocument`]).
#[derive(Default)]
pub struct VersionCache {
    /// ARN → VersionId → value.
    values: Mutex<HashMap<String, HashMap<String, Arc<SecretDocument>>>>,
}

impl VersionCache {
    fn values(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Arc<SecretDocument>>>> {
        // The map is consistent after any panic: every update is a single insert or removal.
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, arn: &str, version_id: &str) -> Option<Arc<SecretDocument>> {
        self.values().get(arn)?.get(version_id).cloned()
    }

    fn insert(&self, arn: &str, version_id: &str, value: Arc<SecretDocument>) {
        self.values()
            .entry(arn.to_owned())
            .or_default()
            .insert(version_id.to_owned(), value);
    }

    /// Forgets the values of `description`'s versions that carry no label any more.
    pub fn forget_unlabelled(&self, description: &SecretDescription) {
        let mut values = self.values();
        if let Some(versions) = values.get_mut(&description.arn) {
            versions.retain(|version_id, _| description.labels_of(version_id).is_some());
        }
    }

    /// How many values are kept, for tests.
    pub fn len(&self) -> usize {
        self.values().values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct SecretVersions<'a> {
    store: &'a dyn SecretStore,
    cache: &'a VersionCache,
    description: &'a SecretDescription,
    token: &'a ClientRequestToken,
    current: OnceCell<Arc<SecretDocument>>,
    pending: OnceCell<Arc<SecretDocument>>,
    previous: OnceCell<Option<Arc<SecretDocument>>>,
}

impl<'a> SecretVersions<'a> {
    pub fn new(
        store: &'a dyn SecretStore,
        cache: &'a VersionCache,
        description: &'a SecretDescription,
        token: &'a ClientRequestToken,
    ) -> Self {
        SecretVersions {
            store,
            cache,
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
        let current = self
            .current
            .get_or_try_init(|| async {
                self.read(VersionSelector::Stage(StagingLabel::Current))
                    .await?
                    .ok_or_else(|| self.missing(StagingLabel::Current))
            })
            .await?;
        Ok(current)
    }

    /// This rotation's `AWSPENDING`, read by VersionId so a stale pending version of an earlier
    /// rotation can never be mistaken for it.
    pub async fn pending(&self) -> Result<&SecretDocument, RotationError> {
        let pending = self
            .pending
            .get_or_try_init(|| async {
                self.read(self.pending_selector())
                    .await?
                    .ok_or_else(|| self.missing(StagingLabel::Pending))
            })
            .await?;
        Ok(pending)
    }

    /// `AWSPREVIOUS`, when the secret has been rotated before.
    pub async fn previous(&self) -> Result<Option<&SecretDocument>, RotationError> {
        let previous = self
            .previous
            .get_or_try_init(|| self.read(VersionSelector::Stage(StagingLabel::Previous)))
            .await?;
        Ok(previous.as_deref())
    }

    /// Reads the pending value if it exists yet, bypassing the step's cache: createSecret's
    /// question, asked again after a lost write race, or by a target just before an
    /// irreversible action (a duplicate invocation may have stored the value meanwhile). A value
    /// the process read before answers at once: once stored, it stays.
    pub async fn try_pending(&self) -> Result<Option<Arc<SecretDocument>>, RotationError> {
        self.read(self.pending_selector()).await
    }

    fn pending_selector(&self) -> VersionSelector<'_> {
        VersionSelector::Id {
            version_id: self.token.as_str(),
            stage: Some(StagingLabel::Pending),
        }
    }

    /// The value `selector` names: from the process's cache when this step's description says
    /// which version that is and the process has read it before, else from Secrets Manager.
    async fn read(
        &self,
        selector: VersionSelector<'_>,
    ) -> Result<Option<Arc<SecretDocument>>, RotationError> {
        let arn = self.description.arn.as_str();
        let version_id = match selector {
            VersionSelector::Stage(label) => match self.description.version_with(label) {
                Some(version_id) => version_id,
                // DescribeSecret says no version holds the label: GetSecretValue would say
                // ResourceNotFoundException.
                None => return Ok(None),
            },
            VersionSelector::Id { version_id, .. } => version_id,
        };
        if let Some(value) = self.cache.get(arn, version_id) {
            return Ok(Some(value));
        }
        let Some(value) = self.store.get_value(arn, selector).await? else {
            return Ok(None);
        };
        let stage = match selector {
            VersionSelector::Stage(stage) => format!("{stage} version"),
            VersionSelector::Id { version_id, .. } => format!("version {version_id}"),
        };
        let document =
            SecretDocument::parse(value.secret_string.expose_secret()).map_err(|problem| {
                RotationError::InvalidSecret {
                    secret: arn.to_owned(),
                    stage,
                    problem,
                }
            })?;
        let document = Arc::new(document);
        // Kept under the id the service answered with: that version's value, whatever label
        // moved since the description.
        if !value.version_id.is_empty() {
            self.cache.insert(arn, &value.version_id, document.clone());
        }
        Ok(Some(document))
    }

    fn missing(&self, label: StagingLabel) -> RotationError {
        RotationError::MissingVersion {
            secret: self.description.arn.clone(),
            label,
        }
    }
}
