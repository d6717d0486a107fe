//! Logs as Lambda expects them: text or JSON by `AWS_LAMBDA_LOG_FORMAT`, level by
//! `AWS_LAMBDA_LOG_LEVEL` (then `RUST_LOG`), as `lambda_runtime`'s default subscriber does. Each
//! step writes one line with `step`, `secret_arn`, `version_id`, `outcome` and `duration_ms`
//! (see `protocol::Rotation::handle`).
//!
//! One difference from the default: `lambda_runtime` logs every raw event at TRACE, and a
//! rotation event carries the `RotationToken`, which must never be logged. Its event layer is
//! therefore held at DEBUG at most, whatever level the deployment asks for.

use std::str::FromStr;

use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter};

/// The `lambda_runtime` module that logs raw events at TRACE.
const RAW_EVENT_LOGGER: &str = "lambda_runtime::layers::api_response";

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init() {
    let requested = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let level = level_from(requested.as_deref());
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy()
        .add_directive(raw_event_cap(level));
    let collector = lambda_runtime::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // A second call (tests) finds a subscriber installed; keeping the first is right.
    let _ = if json {
        collector.json().try_init()
    } else {
        collector.try_init()
    };
}

fn level_from(requested: Option<&str>) -> LevelFilter {
    requested
        .and_then(|text| LevelFilter::from_str(text).ok())
        .unwrap_or(LevelFilter::INFO)
}

/// Never more verbose than DEBUG for the raw-event logger, and never more verbose than asked.
fn raw_event_cap(level: LevelFilter) -> lambda_runtime::tracing::subscriber::filter::Directive {
    let cap = std::cmp::min(level, LevelFilter::DEBUG);
    // The directive is built from a fixed target and a level name, so it always parses.
    format!("{RAW_EVENT_LOGGER}={cap}")
        .parse()
        .unwrap_or_else(|_| LevelFilter::INFO.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raw_event_logger_never_logs_at_trace() {
        assert_eq!(
            raw_event_cap(LevelFilter::TRACE).to_string(),
            format!("{RAW_EVENT_LOGGER}=debug")
        );
    }

    #[test]
    fn the_raw_event_cap_never_raises_a_quieter_level() {
        assert_eq!(
            raw_event_cap(LevelFilter::WARN).to_string(),
            format!("{RAW_EVENT_LOGGER}=warn")
        );
    }

    #[test]
    fn the_level_defaults_to_info_and_accepts_lambda_spellings() {
        assert_eq!(level_from(None), LevelFilter::INFO);
        assert_eq!(level_from(Some("DEBUG")), LevelFilter::DEBUG);
        assert_eq!(level_from(Some("nonsense")), LevelFilter::INFO);
    }
}
