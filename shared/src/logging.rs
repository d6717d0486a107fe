//! Logs as Lambda expects them: text or JSON by `AWS_LAMBDA_LOG_FORMAT`, level by
//! `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`, read as a level), as `lambda_runtime`'s default
//! subscriber does. Each step writes one line with `step`, `secret_arn`, `version_id`, `outcome`
//! and `duration_ms` (see `protocol::Rotation::handle`).
//!
//! One deliberate difference: the requested level applies in full only to this suite's own
//! crates, which never log a secret. Every other crate is held at DEBUG at most, because at
//! TRACE `lambda_runtime` logs each raw event (with its `RotationToken`) and the AWS SDK logs
//! each request (with the `SecretString` of `PutSecretValue`).

use std::str::FromStr;

use lambda_runtime::tracing::subscriber::filter::{Directive, EnvFilter, LevelFilter};

/// Crates of this suite: their logs are written to be safe at every level.
const OUR_CRATES: [&str; 5] = [
    "rotation",
    "rotate_postgres",
    "rotate_mysql",
    "rotate_api_key",
    "rotate_credential_file",
];

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init() {
    let requested = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let collector = lambda_runtime::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter(level_from(requested.as_deref())));
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
        .and_then(|text| LevelFilter::from_str(text.trim()).ok())
        .unwrap_or(LevelFilter::INFO)
}

/// The requested level for our crates; never more verbose than DEBUG for anything else.
fn filter(level: LevelFilter) -> EnvFilter {
    let others = std::cmp::min(level, LevelFilter::DEBUG);
    OUR_CRATES.iter().fold(
        EnvFilter::default().add_directive(others.into()),
        |filter, name| filter.add_directive(directive(name, level)),
    )
}

fn directive(target: &str, level: LevelFilter) -> Directive {
    // A crate name and a level name always parse; fall back to the level alone regardless.
    format!("{target}={level}")
        .parse()
        .unwrap_or_else(|_| level.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_trace_other_crates_are_held_at_debug_and_ours_log_in_full() {
        let rendered = filter(LevelFilter::TRACE).to_string();
        assert!(rendered.contains("rotation=trace"), "{rendered}");
        assert!(rendered.contains("rotate_postgres=trace"), "{rendered}");
        assert!(rendered.split(',').any(|d| d == "debug"), "{rendered}");
    }

    #[test]
    fn a_quieter_level_is_never_raised() {
        let rendered = filter(LevelFilter::WARN).to_string();
        assert!(rendered.split(',').any(|d| d == "warn"), "{rendered}");
        assert!(!rendered.contains("debug"), "{rendered}");
    }

    #[test]
    fn the_level_defaults_to_info_and_accepts_lambda_spellings() {
        assert_eq!(level_from(None), LevelFilter::INFO);
        assert_eq!(level_from(Some("DEBUG")), LevelFilter::DEBUG);
        assert_eq!(level_from(Some("nonsense")), LevelFilter::INFO);
        assert_eq!(level_from(Some("my_crate=trace")), LevelFilter::INFO);
    }
}
