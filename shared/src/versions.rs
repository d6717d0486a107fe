//! The versions of the secret a step may need, read on first use and cached for the step.
//!
//! A target asks for what it needs (setSecret reads `AWSPREVIOUS` only when `AWSCURRENT` no
//! longer logs in), so no step pays for a read it does not use. A read whose answer the step's
//! `DescribeSecret` already gives (no version holds the label) is not made, and a value this
//! process has read before in the same rotation is not read again ([`VersionCache`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use crate::error::RotationError;
use crate::event::ClientRequestToken;
use crate::secret::SecretDocument;
use crate::store::{SecretDescription, SecretStore, StagingLabel, VersionSelector};

/// Version values this process has read for the rotation in progress, kept from one invocation
/// to the next.
///
/// Secrets Manager never changes a version's value once written (a second `PutSecretValue` with
/// the same token and other data is refused), so a value read once is that version's value for
/// good, and the rotation's next steps, which Lambda usually hands to the same warm process, need
/// not read it again: createSecret's read of `AWSCURRENT` serves setSecret, setSecret's read of
/// `AWSPENDING` serves testSecret. Which version holds which label still comes from each step's
/// own `DescribeSecret`; only values are reused.
///
/// What it holds is bounded by the rotation, not by the process's history:
/// - one rotation at a time: a step of another secret, or of another rotation of the same secret,
///   drops every value before it makes its first call ([`VersionCache::begin_step`]), so a
///   process that rotates many secrets never holds one secret's plaintext while it works for
///   another;
/// - nothing once the rotation is over ([`VersionCache::clear`], called by the protocol when
///   finishSecret succeeds, when a step finds the token already current, and when a failed
///   testSecret abandons the rotation);
/// - only versions that carry `AWSCURRENT`, `AWSPENDING` or `AWSPREVIOUS`, so at most three values.
///
/// Only values read from the service are kept, never one this process wrote: moto, unlike
/// Secrets Manager, lets a racing duplicate createSecret overwrite a pending value, and a read
/// after the race sees the value that won. Values are zeroed when dropped ([`SecretDocument`]).
#[derive(Default)]
pub struct VersionCache {
    rotation: Mutex<CachedRotation>,
}

/// The labels whose versions a step reads, and so the only versions whose values are kept.
const KEPT_LABELS: [StagingLabel; 3] = [
    StagingLabel::Current,
    StagingLabel::Pending,
    StagingLabel::Previous,
];

#[derive(Default)]
struct CachedRotation {
    /// The event's `SecretId` and `ClientRequestToken` of the rotation the values belong to;
    /// `None` before the first step (or in a test that uses the cache directly).
    owner: Option<(String, String)>,
    /// VersionId → value.
    values: HashMap<String, Arc<SecretDocument>>,
}

impl VersionCache {
    fn rotation(&self) -> std::sync::MutexGuard<'_, CachedRotation> {
        // The map is consistent after any panic: every update is a single insert or removal.
        self.rotation.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, version_id: &str) -> Option<Arc<SecretDocument>> {
        self.rotation().values.get(version_id).cloned()
    }

    fn insert(&self, version_id: &str, value: Arc<SecretDocument>) {
        self.rotation().values.insert(version_id.to_owned(), value);
    }

    /// A step of rotation `token` of secret `secret_id` begins: the values of any other
    /// rotation, of this secret or another, are dropped before the step makes a call.
    pub fn begin_step(&self, secret_id: &str, token: &str) {
        let mut rotation = self.rotation();
        let same = rotation
            .owner
            .as_ref()
            .is_some_and(|(id, held)| id == secret_id && held == token);
        if !same {
            rotation.values.clear();
            rotation.owner = Some((secret_id.to_owned(), token.to_owned()));
        }
    }

    /// Forgets the values of `description`'s versions that carry none of the three staging
    /// labels any more.
    pub fn forget_unlabelled(&self, description: &SecretDescription) {
        self.rotation().values.retain(|version_id, _| {
            KEPT_LABELS
                .iter()
                .any(|label| description.has_label(version_id, *label))
        });
    }

    /// The rotation is over: drops every value.
    pub fn clear(&self) {
        let mut rotation = self.rotation();
        rotation.values.clear();
        rotation.owner = None;
    }

    /// The VersionIds whose values are kept, for tests.
    pub fn version_ids(&self) -> Vec<String> {
        self.rotation().values.keys().cloned().collect()
    }

    /// How many values are kept, for tests.
    pub fn len(&self) -> usize {
        self.rotation().values.len()
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
        if let Some(value) = self.cache.get(version_id) {
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
            self.cache.insert(&value.version_id, document.clone());
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
