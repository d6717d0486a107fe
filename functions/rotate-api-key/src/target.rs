//! The rule every API-key provider follows, written once: prove the secret holds the current
//! key; revoke what is this secret's and not current; issue one key, store it; confirm it is
//! live; prove it authenticates.
//!
//! A key is issued by the provider, not chosen by us, and providers cap how many keys live at
//! once, so createSecret revokes before it issues. The key of `AWSPREVIOUS` is revoked only by the
//! next rotation's createSecret: until then clients that cached it keep working.
//!
//! The function's admin key (or IAM role) can revoke keys of every secret, so nothing a version
//! says is taken on trust (the rule of [`rotation::target`]): every step first proves, with one
//! call signed by the `AWSCURRENT` key, that the secret holds a working key ([`ApiKeyTarget`]'s
//! `open`), and a key is revoked only when it is this secret's: the provider lists it as one of
//! this secret's keys, or the version that records its id holds the key itself, as the
//! provider confirms.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use rotation::target::TargetErrorKind;
use rotation::{RotationError, SecretDocument, SecretVersions, Target, TargetError};
use secrecy::SecretString;

/// A key as the provider lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveKey {
    pub id: String,
    /// The provider's listing shows the key belongs to this secret: an HTTP provider's key named
    /// in this secret's namespace, any access key of the IAM user the secret proved it holds.
    /// Only these are revoked on sight.
    pub this_secret: bool,
    /// Issued for the rotation in progress (named after its token): a createSecret that crashed
    /// after the provider issued it and before the key reached Secrets Manager.
    pub this_rotation: bool,
}

/// A newly issued key. Its secret part never reaches a log or an error.
pub struct IssuedKey {
    pub id: String,
    pub secret: SecretString,
}

/// A provider of keys: how its keys sit in the secret JSON, and a session per step.
#[async_trait]
pub trait KeyProvider: Send + Sync {
    /// Opens the session one step of one secret works in, from that secret's current version
    /// (which names the IAM user, or holds the key that administers itself). No call is made
    /// here; the session acts only after [`ProviderSession::authenticate`] proved the current
    /// key.
    async fn session(
        &self,
        current: &SecretDocument,
        versions: &SecretVersions<'_>,
    ) -> Result<Box<dyn ProviderSession>, RotationError>;

    /// The id of the key a version holds; `what` names the version in the error.
    fn key_id<'d>(&self, document: &'d SecretDocument, what: &str) -> Result<&'d str, TargetError>;

    /// `base` with its key replaced by `key`; every other field kept.
    fn with_key(&self, base: &SecretDocument, key: &IssuedKey) -> SecretDocument;

    /// Refuses a pending version that would move the secret to another owner than the current
    /// version's (another IAM user): `InvalidSecret` naming both.
    fn check_same_owner(
        &self,
        _current: &SecretDocument,
        _pending: &SecretDocument,
    ) -> Result<(), TargetError> {
        Ok(())
    }
}

/// The provider calls of one step. Each call has its own timeout; failures name the provider and
/// what it answered, never a key.
#[async_trait]
pub trait ProviderSession: Send + Sync {
    /// Where the keys live, for messages ("IAM user alice", "https://api.example.com").
    fn place(&self) -> &str;

    /// Every key live at the provider that this session can see, marked as this secret's or not.
    async fn list(&self) -> Result<Vec<LiveKey>, TargetError>;

    /// Issues one key for the rotation in progress. A provider that honours idempotency answers
    /// a repeated request for the same rotation with the key it issued the first time.
    async fn issue(&self) -> Result<IssuedKey, TargetError>;

    /// Revokes a key; a key that is already gone counts as revoked.
    async fn revoke(&self, key_id: &str) -> Result<(), TargetError>;

    /// Makes one call with the key `document` holds: `Rejected` when the provider refuses it,
    /// `InvalidSecret` when it answers as someone the secret may not act for. When the
    /// provider's answer says which key made the call, its id. The first call of a session
    /// proves the current key; the session acts on nothing before it.
    async fn authenticate(&self, document: &SecretDocument) -> Result<Option<String>, TargetError>;
}
pub struct ApiKeyTarget {
    provider: Box<dyn KeyProvider>,
    /// How long testSecret keeps retrying a key that is rejected, for eventually consistent
    /// providers.
    test_retry: Duration,
}

impl ApiKeyTarget {
    pub fn new(provider: Box<dyn KeyProvider>, test_retry: Duration) -> Self {
        ApiKeyTarget {
            provider,
            test_retry,
        }
    }
}

impl ApiKeyTarget {
    /// Opens the provider session of one step, once the secret has proven it holds the key of
    /// its current version: one call signed with that key must succeed, and when the provider's
    /// answer names the key (or the IAM user), it must be the one the version records. Nothing
    /// is listed, issued or revoked before.
    async fn open(
        &self,
        versions: &SecretVersions<'_>,
    ) -> Result<(Box<dyn ProviderSession>, String), RotationError> {
        let current = versions.current().await?;
        let current_id = self.provider.key_id(current, "AWSCURRENT version")?;
        let session = self.provider.session(current, versions).await?;
        match session.authenticate(current).await {
            Ok(None) => {}
            Ok(Some(id)) if id == current_id => {}
            Ok(Some(id)) => {
                return Err(TargetError::invalid_secret(format!(
                    "AWSCURRENT version records key {current_id}, but the key it holds is {id} \
                     at {}: the function acts only on keys the secret proves it holds; nothing \
                     was changed",
                    session.place()
                ))
                .into())
            }
            Err(error) if error.kind == TargetErrorKind::Rejected => {
                return Err(TargetError::invalid_secret(format!(
                    "AWSCURRENT version: its key {current_id} does not authenticate at {} \
                     ({error}); the secret must hold a working key before the function issues \
                     or revokes keys for it; nothing was changed",
                    session.place()
                ))
                .into())
            }
            Err(error) => return Err(error.into()),
        }
        Ok((session, current_id.to_owned()))
    }

    /// The pending version's key id, once the pending version is shown to keep the current
    /// version's owner.
    async fn pending_id<'v>(
        &self,
        versions: &'v SecretVersions<'_>,
    ) -> Result<&'v str, RotationError> {
        let pending = versions.pending().await?;
        self.provider
            .check_same_owner(versions.current().await?, pending)?;
        Ok(self.provider.key_id(pending, "AWSPENDING version")?)
    }
}

/// `AWSPREVIOUS`'s key, listed at the provider but not as this secret's (a first key made by
/// hand, or one named before keys carried this secret's namespace), is revoked by id only
/// when the provider confirms the key that version holds is that id: a version's JSON can
/// record any id, including another secret's key.
async fn prove_previous_holds(
    session: &dyn ProviderSession,
    previous: &SecretDocument,
    previous_id: &str,
) -> Result<(), TargetError> {
    let refused = |why: String| {
        TargetError::invalid_secret(format!(
            "AWSPREVIOUS version records key {previous_id}, which {} lists but not as this \
             secret's, and {why}; it is revoked only when the version holds that key itself. \
             Nothing was changed: revoke it by hand if it is this secret's, or remove the \
             version's AWSPREVIOUS label",
            session.place()
        ))
    };
    match session.authenticate(previous).await {
        Ok(Some(id)) if id == previous_id => Ok(()),
        Ok(Some(id)) => Err(refused(format!("the key the version holds is {id}"))),
        Ok(None) => Err(refused(
            "the provider's test answer does not say which key made the call".to_owned(),
        )),
        Err(error) if error.kind == TargetErrorKind::Unreachable => Err(error),
        Err(error) => Err(refused(format!(
            "the key the version holds does not authenticate ({error})"
        ))),
    }
}

#[async_trait]
impl Target for ApiKeyTarget {
    async fn derive_pending(
        &self,
        current: &SecretDocument,
        versions: &SecretVersions<'_>,
    ) -> Result<SecretDocument, RotationError> {
        let (session, current_id) = self.open(versions).await?;
        let current_id = current_id.as_str();
        let live = session.list().await?;
        // Revoking cannot be undone. A duplicate invocation of this step may have issued and
        // stored the pending key since this one started: that key is not this one's to revoke.
        if let Some(stored) = versions.try_pending().await? {
            return Ok(SecretDocument::clone(&stored));
        }

        // The previous version's key is retired by id when the listing does not show it as this
        // secret's: a key made by hand before the first rotation carries any name.
        if let Some(previous) = versions.previous().await? {
            let previous_id = self.provider.key_id(previous, "AWSPREVIOUS version")?;
            let listed = live.iter().find(|k| k.id == previous_id);
            // Not listed: already revoked (by an earlier attempt of this step, or by hand).
            // Listed as this secret's: revoked below with the others.
            if previous_id != current_id && listed.is_some_and(|k| !k.this_secret) {
                prove_previous_holds(&*session, previous, previous_id).await?;
                session.revoke(previous_id).await?;
                rotation::crash::after(crate::crash_points::KEY_REVOKED);
                tracing::info!(
                    "createSecret: revoked key {previous_id} of AWSPREVIOUS at {}",
                    session.place()
                );
            }
        }

        // Every other key of this secret goes first, so that at most two keys are live once the
        // new one is issued: the previous version's key and anything an older failed attempt
        // left. Keys named for this very rotation stay for now: a provider that honours
        // idempotency hands the same key back below, which is how an orphan gets adopted.
        for key in live
            .iter()
            .filter(|k| k.this_secret && k.id != current_id && !k.this_rotation)
        {
            session.revoke(&key.id).await?;
            rotation::crash::after(crate::crash_points::KEY_REVOKED);
            tracing::info!(
                "createSecret: revoked key {} at {}",
                key.id,
                session.place()
            );
        }
        let mut orphans: Vec<&LiveKey> = live
            .iter()
            .filter(|k| k.this_secret && k.id != current_id && k.this_rotation)
            .collect();

        let issued = match session.issue().await {
            Ok(issued) => issued,
            // The provider refused, possibly because the orphan holds the last free slot and
            // idempotency is not honoured: free the slot and ask once more.
            Err(refusal) if !orphans.is_empty() && refusal.kind != TargetErrorKind::Unreachable => {
                tracing::warn!(
                    "createSecret: {} refused a new key ({refusal}); revoking the {} key(s) an \
                     earlier attempt of this rotation issued, then asking again",
                    session.place(),
                    orphans.len()
                );
                for orphan in orphans.drain(..) {
                    session.revoke(&orphan.id).await?;
                    rotation::crash::after(crate::crash_points::KEY_REVOKED);
                }
                session.issue().await?
            }
            Err(error) => return Err(error.into()),
        };
        rotation::crash::after(crate::crash_points::KEY_ISSUED);
        tracing::info!(
            "createSecret: issued key {} at {}",
            issued.id,
            session.place()
        );
        // A provider that ignored the idempotency key issued a second key for this rotation; the
        // first one never reached Secrets Manager, so nothing can use it.
        for orphan in orphans.iter().filter(|k| k.id != issued.id) {
            session.revoke(&orphan.id).await?;
            rotation::crash::after(crate::crash_points::KEY_REVOKED);
            tracing::info!(
                "createSecret: revoked key {} that an earlier attempt of this rotation issued",
                orphan.id
            );
        }
        Ok(self.provider.with_key(current, &issued))
    }

    async fn discard(
        &self,
        derived: &SecretDocument,
        versions: &SecretVersions<'_>,
    ) -> Result<(), RotationError> {
        let id = self.provider.key_id(derived, "the discarded value")?;
        // A provider honouring idempotency handed both invocations the same key: it is stored.
        if let Some(stored) = versions.try_pending().await? {
            if self.provider.key_id(&stored, "AWSPENDING version")? == id {
                return Ok(());
            }
        }
        let (session, _) = self.open(versions).await?;
        session.revoke(id).await?;
        tracing::info!(
            "createSecret: revoked key {id} at {}: a duplicate invocation stored its own first",
            session.place()
        );
        Ok(())
    }

    async fn apply(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        // The provider made the key live when it issued it; all that is left is to confirm
        // nothing revoked it since.
        let pending_id = self.pending_id(versions).await?;
        let (session, _) = self.open(versions).await?;
        if !session.list().await?.iter().any(|k| k.id == pending_id) {
            return Err(TargetError::rejected(format!(
                "setSecret: the AWSPENDING key {pending_id} is not live at {}; it was revoked \
                 after it was issued. Cancel this rotation and start a new one",
                session.place()
            ))
            .into());
        }
        tracing::info!("setSecret: key {pending_id} is live at {}", session.place());
        Ok(())
    }

    async fn verify(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        let pending_id = self.pending_id(versions).await?;
        let pending = versions.pending().await?;
        let (session, _) = self.open(versions).await?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(250);
        let mut attempts = 1;
        loop {
            match session.authenticate(pending).await {
                Ok(None) => break,
                Ok(Some(id)) if id == pending_id => break,
                Ok(Some(id)) => {
                    return Err(TargetError::invalid_secret(format!(
                        "testSecret: AWSPENDING version records key {pending_id}, but the key it \
                         holds is {id} at {}",
                        session.place()
                    ))
                    .into())
                }
                Err(error)
                    if error.kind == TargetErrorKind::Rejected
                        && started.elapsed() + pause <= self.test_retry =>
                {
                    tracing::debug!("testSecret: attempt {attempts} rejected: {error}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(4));
                    attempts += 1;
                }
                Err(error) => {
                    return Err(TargetError {
                        kind: error.kind,
                        message: format!(
                            "testSecret: the AWSPENDING key {pending_id} failed after {attempts} \
                             attempt(s) in {} ms: {error}",
                            started.elapsed().as_millis()
                        ),
                    }
                    .into())
                }
            }
        }
        tracing::info!(
            "testSecret: key {pending_id} authenticated at {} (attempt {attempts})",
            session.place()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
