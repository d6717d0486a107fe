//! The one seam between the protocol and what a credential protects (a database, an API).
//!
//! A target knows nothing of staging labels: the protocol decides *when* each method runs and
//! which versions exist; the target decides *what* the new credential is and how to apply and
//! prove it. Strategies (single user, alternating users) are the target's own choice.
//!
//! # The trust rule every target follows
//!
//! **Before a function acts on a credential, the secret must prove it holds it; nothing a
//! version's JSON says widens what the function touches.**
//!
//! A rotation function has more power than the people who may write one secret: its role, its
//! admin key or its database master reaches credentials of many secrets. Anyone allowed to
//! `PutSecretValue` on one secret attached to the function writes the JSON the function reads,
//! so a field naming *whose* credential to act on (a user name, a key id, a name prefix, a
//! master secret) is a claim, not a fact. A target therefore:
//!
//! - proves the claim with the credential the secret itself holds before the first call that
//!   changes, issues or revokes anything: the `AWSCURRENT` key signs as the IAM user it names,
//!   the `AWSCURRENT` API key authenticates as the key id it records, the current database
//!   user logs in with the current password;
//! - keeps every later version to what was proven: `AWSPENDING` names the same user (and host)
//!   as `AWSCURRENT`; a key id recorded in `AWSPREVIOUS` is revoked only when the provider
//!   confirms the key that version holds is that id;
//! - scopes anything shared by the function's configuration or by the secret's identity (its
//!   ARN), never by a value in the JSON: the name prefix of an HTTP provider's keys, the master
//!   account that must never be the rotated one;
//! - refuses with `InvalidSecret` ([`TargetError::invalid_secret`]) naming what did not match,
//!   before any change, when a proof fails.

use async_trait::async_trait;

use crate::error::RotationError;
use crate::secret::SecretDocument;
use crate::versions::SecretVersions;

/// What a rotation function plugs into the protocol.
///
/// Every method follows the module's trust rule: the credential a method acts on is one the
/// secret proved it holds, and no version's JSON widens it.
///
/// Every method may run more than once for the same rotation (Secrets Manager and Lambda both
/// retry, and a process can die anywhere), so each must converge: applying a credential that is
/// already applied, or verifying twice, is not an error. Failures are [`TargetError`]s, which
/// convert into [`RotationError`] with `?`.
#[async_trait]
pub trait Target: Send + Sync {
    /// createSecret: the value to store as `AWSPENDING`, made from `AWSCURRENT` (a new password,
    /// a newly issued key). Called only when no pending value exists yet for this rotation.
    async fn derive_pending(
        &self,
        current: &SecretDocument,
        versions: &SecretVersions<'_>,
    ) -> Result<SecretDocument, RotationError>;

    /// setSecret: make the pending credential valid at the target.
    async fn apply(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError>;

    /// testSecret: prove the pending credential works.
    async fn verify(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError>;

    /// After finishSecret has made the pending version current: retire what the old credential
    /// left behind, if the target has anything to retire.
    async fn after_finish(&self, _versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        Ok(())
    }

    /// createSecret derived `derived` but a duplicate invocation stored its own pending value
    /// first: release whatever deriving `derived` took at the target (an issued key), since no
    /// version will ever hold it. A failure here only leaves something the next rotation's
    /// createSecret cleans up.
    async fn discard(
        &self,
        _derived: &SecretDocument,
        _versions: &SecretVersions<'_>,
    ) -> Result<(), RotationError> {
        Ok(())
    }

    /// testSecret failed because the target *rejected* the pending credential (never after a
    /// timeout or an unreachable target, which leave the rotation as it is for a retry): if
    /// applying the pending credential stopped the current one from working (single user), make
    /// the current one work again, so applications that use `AWSCURRENT` are not locked out
    /// while the rotation fails. The default, for targets where the current credential keeps
    /// working (alternating users, API keys), undoes nothing.
    async fn roll_back(&self, _versions: &SecretVersions<'_>) -> Result<RollBack, RotationError> {
        Ok(RollBack::NothingToUndo)
    }
}

/// A target shared with another owner (a test that inspects it while the protocol drives it) is
/// the same target.
#[async_trait]
impl<T: Target + ?Sized> Target for std::sync::Arc<T> {
    async fn derive_pending(
        &self,
        current: &SecretDocument,
        versions: &SecretVersions<'_>,
    ) -> Result<SecretDocument, RotationError> {
        (**self).derive_pending(current, versions).await
    }

    async fn apply(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        (**self).apply(versions).await
    }

    async fn verify(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        (**self).verify(versions).await
    }

    async fn after_finish(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        (**self).after_finish(versions).await
    }

    async fn discard(
        &self,
        derived: &SecretDocument,
        versions: &SecretVersions<'_>,
    ) -> Result<(), RotationError> {
        (**self).discard(derived, versions).await
    }

    async fn roll_back(&self, versions: &SecretVersions<'_>) -> Result<RollBack, RotationError> {
        (**self).roll_back(versions).await
    }
}

/// What [`Target::roll_back`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RollBack {
    /// The current credential never stopped working; the rotation may be retried as it is.
    NothingToUndo,
    /// The target accepts the current credential (again) and not the pending one: retrying this
    /// rotation would lock applications out again, so the protocol abandons it by removing
    /// `AWSPENDING`.
    OnCurrent,
}

/// How a target failed, which decides the `errorType` operators see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetErrorKind {
    /// The target answered and said no (bad credentials, missing privilege, refused statement).
    Rejected,
    /// The target could not be reached in time (refused connection, timeout, TLS failure).
    Unreachable,
    /// A version's content cannot be used for this target (wrong engine, other user, other host).
    InvalidSecret,
}

/// A target's failure. The message names the host, user and what the server said, never a
/// credential.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct TargetError {
    pub kind: TargetErrorKind,
    pub message: String,
}

impl TargetError {
    pub fn rejected(message: impl Into<String>) -> Self {
        TargetError {
            kind: TargetErrorKind::Rejected,
            message: message.into(),
        }
    }

    pub fn unreachable(message: impl Into<String>) -> Self {
        TargetError {
            kind: TargetErrorKind::Unreachable,
            message: message.into(),
        }
    }

    pub fn invalid_secret(message: impl Into<String>) -> Self {
        TargetError {
            kind: TargetErrorKind::InvalidSecret,
            message: message.into(),
        }
    }

    pub fn error_type(&self) -> &'static str {
        match self.kind {
            TargetErrorKind::Rejected => "TargetRejected",
            TargetErrorKind::Unreachable => "TargetUnreachable",
            TargetErrorKind::InvalidSecret => "InvalidSecret",
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind == TargetErrorKind::Unreachable
    }
}
