//! `rotate-api-key`: rotation of API keys that a provider issues, rather than passwords we choose.
//!
//! - [`target`]: the rule every provider follows (revoke all but the current key, issue one,
//!   store it; confirm; authenticate), written once;
//! - [`http_provider`]: any HTTP service meeting the documented contract, over [`https`];
//! - [`iam`]: access keys of an IAM user;
//! - [`config`]: the environment, parsed once.

pub mod config;
pub mod http_provider;
pub mod https;
pub mod iam;
pub mod target;

/// The named points after a side effect at the provider, where a test build can stop the
/// process (see `rotation::crash`).
pub mod crash_points {
    /// An API key was revoked at the provider.
    pub const KEY_REVOKED: &str = "key-revoked";
    /// An API key was issued by the provider.
    pub const KEY_ISSUED: &str = "key-issued";
}
