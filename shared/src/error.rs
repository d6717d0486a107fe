//! Every way a rotation step can fail, each with a stable `errorType` that Secrets Manager shows
//! in CloudTrail's `RotationFailed` events and that operators alert on.
//!
//! Messages say what failed, where, and what the other side said. They never carry a password,
//! key or `RotationToken`: the types that hold those have no `Display`.

use lambda_runtime::Diagnostic;

use crate::config::ConfigError;
use crate::secret::SecretFormatError;
use crate::store::{StagingLabel, StoreError, StoreErrorKind};
use crate::target::TargetError;

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// The invocation payload is not a rotation event we can act on.
    #[error("{0}")]
    InvalidEvent(String),

    #[error("Secret {secret} is not enabled for rotation")]
    RotationNotEnabled { secret: String },

    #[error("Secret version {token} has no stage for rotation of secret {secret}.")]
    UnknownVersion { secret: String, token: String },

    #[error("Secret version {token} not set as AWSPENDING for rotation of secret {secret}.")]
    VersionNotPending { secret: String, token: String },

    /// A version's value is not a secret this function can rotate.
    #[error("{stage} of secret {secret}: {problem}")]
    InvalidSecret {
        secret: String,
        stage: String,
        problem: SecretFormatError,
    },

    /// A version the step needs does not exist, or exists without a value.
    #[error("Secret {secret} has no {label} version with a value")]
    MissingVersion { secret: String, label: StagingLabel },

    /// The step ran out of the invocation's time; running it again continues where it stopped.
    #[error("{step} did not finish within the invocation's time ({seconds} s)")]
    OutOfTime {
        step: crate::event::Step,
        seconds: u64,
    },

    /// The deployment's configuration is invalid; reported at start-up.
    #[error(transparent)]
    Configuration(#[from] ConfigError),

    #[error(transparent)]
    SecretsManager(#[from] StoreError),

    #[error(transparent)]
    Target(#[from] TargetError),
}

impl From<crate::event::InvalidEvent> for RotationError {
    fn from(error: crate::event::InvalidEvent) -> Self {
        RotationError::InvalidEvent(error.0)
    }
}

impl RotationError {
    /// The stable name operators see as `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            RotationError::InvalidEvent(_) => "InvalidEvent",
            RotationError::RotationNotEnabled { .. } => "RotationNotEnabled",
            RotationError::UnknownVersion { .. } => "UnknownVersion",
            RotationError::VersionNotPending { .. } => "VersionNotPending",
            RotationError::InvalidSecret { .. } => "InvalidSecret",
            RotationError::MissingVersion { .. } => "MissingVersion",
            RotationError::OutOfTime { .. } => "OutOfTime",
            RotationError::Configuration(_) => "InvalidConfiguration",
            RotationError::SecretsManager(error) if error.is_transient() => {
                "SecretsManagerUnavailable"
            }
            // A SecretBinary-only version: the call worked, the value is what cannot be used.
            RotationError::SecretsManager(error) if error.kind == StoreErrorKind::Unsupported => {
                "InvalidSecret"
            }
            RotationError::SecretsManager(_) => "SecretsManager",
            RotationError::Target(error) => error.error_type(),
        }
    }

    /// Whether running the rotation again, unchanged, may succeed. Secrets Manager retries the
    /// whole rotation anyway; this tells the operator reading the log whether to wait or act.
    pub fn is_transient(&self) -> bool {
        match self {
            RotationError::SecretsManager(error) => error.is_transient(),
            RotationError::Target(error) => error.is_transient(),
            RotationError::OutOfTime { .. } => true,
            _ => false,
        }
    }
}

impl From<RotationError> for Diagnostic {
    fn from(error: RotationError) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

impl From<&RotationError> for Diagnostic {
    fn from(error: &RotationError) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}
