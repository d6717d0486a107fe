//! Logs as Lambda expects them: text or JSON by `AWS_LAMBDA_LOG_FORMAT`, level by
//! `AWS_LAMBDA_LOG_LEVEL` (then `RUST_LOG`). Each step writes one line with `step`,
//! `secret_arn`, `version_id`, `outcome` and `duration_ms` (see `protocol::Rotation::handle`).

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}
