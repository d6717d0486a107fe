//! The Secrets Manager port: the few calls the protocol makes, behind a trait so the protocol runs
//! unchanged against the AWS SDK client ([`aws::AwsSecretStore`]) and against an in-memory store
//! with strict AWS label semantics (the test kit's, crate `rotation-testkit`).

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::event::RotationToken;
use crate::secret::SecretDocument;
use crate::{RotationError, TargetError};

pub mod aws;

/// The labels the rotation protocol moves. Secrets may carry other labels; those pass through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StagingLabel {
    Current,
    Pending,
    Previous,
}

impl StagingLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            StagingLabel::Current => "AWSCURRENT",
            StagingLabel::Pending => "AWSPENDING",
            StagingLabel::Previous => "AWSPREVIOUS",
        }
    }
}

impl fmt::Display for StagingLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `DescribeSecret` tells the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretDescription {
    /// The full ARN, used in every message and log line.
    pub arn: String,
    /// A missing `RotationEnabled` (moto before the first `RotateSecret`) counts as disabled.
    pub rotation_enabled: bool,
    /// Versions that carry at least one label, with their labels.
    pub versions: BTreeMap<String, Vec<String>>,
    /// The secret's tags, in the service's order (RDS-managed master secrets name their
    /// database in `aws:rds:primarydbinstancearn` / `aws:rds:primarydbclusterarn`).
    pub tags: Vec<(String, String)>,
}

impl SecretDescription {
    pub fn labels_of(&self, version_id: &str) -> Option<&[String]> {
        self.versions.get(version_id).map(Vec::as_slice)
    }

    pub fn has_label(&self, version_id: &str, label: StagingLabel) -> bool {
        self.labels_of(version_id)
            .is_some_and(|labels| labels.iter().any(|l| l == label.as_str()))
    }

    /// The version that holds `label`, if any. One label sits on at most one version.
    pub fn version_with(&self, label: StagingLabel) -> Option<&str> {
        self.versions
            .iter()
            .find(|(_, labels)| labels.iter().any(|l| l == label.as_str()))
            .map(|(id, _)| id.as_str())
    }
}

/// Which version `GetSecretValue` reads. Always explicit: moto answers an unqualified read with
/// a stale version after a label move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionSelector<'a> {
    Stage(StagingLabel),
    /// The version with this id, which must also carry `stage` when one is given.
    Id {
        version_id: &'a str,
        stage: Option<StagingLabel>,
    },
}

/// A version's value as read from the store.
pub struct SecretValue {
    pub version_id: String,
    pub secret_string: SecretString,
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretValue")
            .field("version_id", &self.version_id)
            .finish_non_exhaustive()
    }
}

/// How a Secrets Manager call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The secret, the version or its value does not exist.
    NotFound,
    /// `PutSecretValue` with a token already used for different data.
    VersionExists,
    /// The request was refused as invalid (for example a label move that does not match).
    InvalidRequest,
    /// The caller may not do this (IAM, KMS).
    AccessDenied,
    /// Throttling, a 5xx, a timeout or a dropped connection: a retry may succeed.
    Transient,
    /// A secret stored as `SecretBinary`, or anything else we cannot use.
    Unsupported,
    Other,
}

/// A failed Secrets Manager call: which operation, on which secret, and what the service said.
#[derive(Clone, Debug, thiserror::Error)]
#[error("Secrets Manager {operation} on {secret} failed: {message}")]
pub struct StoreError {
    pub operation: &'static str,
    pub secret: String,
    pub kind: StoreErrorKind,
    pub message: String,
}

impl StoreError {
    pub fn new(
        operation: &'static str,
        secret: &str,
        kind: StoreErrorKind,
        message: impl Into<String>,
    ) -> Self {
        StoreError {
            operation,
            secret: secret.to_owned(),
            kind,
            message: message.into(),
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind == StoreErrorKind::Transient
    }
}

/// The Secrets Manager operations the protocol needs, and nothing more.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// `DescribeSecret`.
    async fn describe(&self, secret_id: &str) -> Result<SecretDescription, StoreError>;

    /// `GetSecretValue`. `Ok(None)` when the version exists without a value or the selector
    /// matches no version (both `ResourceNotFoundException` on AWS): createSecret relies on it.
    async fn get_value(
        &self,
        secret_id: &str,
        selector: VersionSelector<'_>,
    ) -> Result<Option<SecretValue>, StoreError>;

    /// `PutSecretValue` of `value` as version `token` labelled `AWSPENDING` only, passing the
    /// `RotationToken` when the event carried one.
    async fn put_pending(
        &self,
        secret_id: &str,
        token: &str,
        value: &SecretString,
        rotation_token: Option<&RotationToken>,
    ) -> Result<(), StoreError>;

    /// `UpdateSecretVersionStage`: attach `label` to `move_to` and/or detach it from
    /// `remove_from`. Moving `AWSCURRENT` makes the service move `AWSPREVIOUS` along.
    async fn update_label(
        &self,
        secret_id: &str,
        label: StagingLabel,
        move_to: Option<&str>,
        remove_from: Option<&str>,
    ) -> Result<(), StoreError>;
}

/// The `AWSCURRENT` version of a secret other than the one rotated (a database's master secret,
/// an API provider's admin key), parsed. `role` names that secret in errors ("master secret");
/// the second value is the phrase naming the version, for the caller's errors about its fields.
/// A missing or malformed value is `InvalidSecret`: the configuration points at it.
pub async fn current_document_of(
    store: &dyn SecretStore,
    role: &str,
    arn: &str,
) -> Result<(SecretDocument, String), RotationError> {
    let value = store
        .get_value(arn, VersionSelector::Stage(StagingLabel::Current))
        .await?
        .ok_or_else(|| {
            TargetError::invalid_secret(format!(
                "{role} {arn} has no AWSCURRENT version with a value"
            ))
        })?;
    let what = format!("AWSCURRENT version of {role} {arn}");
    let document = SecretDocument::parse(value.secret_string.expose_secret())
        .map_err(|problem| TargetError::invalid_secret(format!("{what}: {problem}")))?;
    Ok((document, what))
}
