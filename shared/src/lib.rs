//! The Secrets Manager rotation protocol, shared by every rotation function of the suite.
//!
//! - [`event`]: the invocation payload, validated before any call is made;
//! - [`protocol`]: the staging-label state machine (read it first; it is the whole protocol);
//! - [`target`]: the narrow trait a rotation function implements;
//! - [`store`]: the Secrets Manager port, over the AWS SDK (the strict in-memory store and the
//!   protocol scenarios are the test kit's, crate `rotation-testkit`);
//! - [`secret`]: the secret JSON document; [`password`]: the password policy;
//! - [`error`], [`logging`], [`config`], [`lambda`]: errors with stable `errorType`s, Lambda
//!   logging, start-up configuration and the Runtime API wiring.

pub mod config;
// The event and the secret document are pure code of their own crate (the fuzz targets build
// it alone); they keep their paths here.
pub use rotation_document::{event, secret};
pub mod crash;
pub mod error;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod password;
pub mod protocol;
pub mod store;
pub mod target;
pub mod versions;

pub use error::RotationError;
pub use event::{RotationEvent, Step};
pub use protocol::{Rotation, StepOutcome};
pub use secret::SecretDocument;
pub use store::{SecretStore, StagingLabel};
pub use target::{Target, TargetError};
pub use versions::SecretVersions;
