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

/// The suite's crates, by the prefixes of their names (`rotation`, `rotation_database`, and every
/// function's `rotate_<target>`): their logs are written to be safe at every level. A filter
/// directive's target matches every target that starts with it, so the suite's naming rule
/// selects them without this crate listing the crates that use it.
const OUR_CRATES: [&str; 2] = ["rotation", "rotate_"];

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

    /// The targets whose events `filter(level)` lets through, of those emitted at TRACE.
    fn traced_targets(level: LevelFilter) -> String {
        use std::sync::{Arc, Mutex};
        let written = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = written.clone();
        let subscriber = lambda_runtime::tracing::subscriber::fmt()
            .with_env_filter(filter(level))
            .with_writer(move || SharedBuffer(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "rotation::protocol", "seen rotation");
            tracing::trace!(target: "rotation_database::connection", "seen rotation_database");
            tracing::trace!(target: "rotate_postgres::engine", "seen rotate_postgres");
            tracing::trace!(target: "rotate_api_key::target", "seen rotate_api_key");
            tracing::trace!(target: "lambda_runtime::layers", "seen lambda_runtime");
            tracing::trace!(target: "aws_smithy_runtime::client", "seen aws_smithy_runtime");
            tracing::debug!(target: "aws_smithy_runtime::client", "debug of aws_smithy_runtime");
        });
        let text = written
            .lock()
            .map(|bytes| bytes.clone())
            .unwrap_or_default();
        String::from_utf8_lossy(&text).into_owned()
    }

    struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for SharedBuffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut bytes) = self.0.lock() {
                bytes.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn at_trace_our_crates_log_in_full_by_their_names_and_others_are_held_at_debug() {
        let written = traced_targets(LevelFilter::TRACE);
        for ours in [
            "rotation",
            "rotation_database",
            "rotate_postgres",
            "rotate_api_key",
        ] {
            let line = format!("seen {ours}");
            assert!(
                written.lines().any(|written| written.ends_with(&line)),
                "{ours}: {written}"
            );
        }
        assert!(!written.contains("seen lambda_runtime"), "{written}");
        assert!(!written.contains("seen aws_smithy_runtime"), "{written}");
        assert!(written.contains("debug of aws_smithy_runtime"), "{written}");
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
