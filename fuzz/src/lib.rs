//! What the fuzz targets share beyond the production crates they exercise.
//!
//! The targets depend on the suite's dependency-light crates only: `rotation-document` (the
//! event and the secret document) and the two dialects' quoting crates. Depending on `rotation`
//! itself would build the AWS SDK, `lambda_runtime` and sqlx with coverage instrumentation on
//! every CI run (8 min 45 s for the `rotation` crate alone on the 2-core CI machine); those
//! three crates take about a minute. A change that gives one of them a heavier dependency makes
//! this build slower, loudly.

/// Whether every run of `quote` in `text` has an even length: inside a quoted token, the only
/// way a quote character may stand is doubled.
pub fn quotes_are_doubled(text: &str, quote: char) -> bool {
    text.split(|character| character != quote)
        .all(|run| run.chars().count() % 2 == 0)
}
