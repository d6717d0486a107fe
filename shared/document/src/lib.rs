//! The untrusted input of a rotation, read by pure code before anything acts on it:
//! - [`event`]: the invocation event, validated before any call is made;
//! - [`secret`]: the secret JSON document, which keeps what it does not own untouched.
//!
//! It depends on serde_json, secrecy, zeroize and thiserror only: the fuzz targets build it with
//! coverage instrumentation without the AWS SDK or the Lambda runtime.

pub mod event;
pub mod secret;
