//! Records every AWS call the rotation functions make in the permissions proof's scenarios and
//! writes them as JSON for `scripts/permissions/prove.mjs` (scripts/test runs both, after the
//! tests that build the binaries).
//!
//! ```text
//! record-aws-calls [--bin-dir DIR] [--out FILE]
//! ```
//!
//! `--bin-dir`: the function binaries (default `$CARGO_TARGET_DIR/debug`, else
//! `<repo>/target/debug`); `--out`: the JSON file (default `<bin-dir>/../permissions/calls.json`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rotation_tests::permissions::scenarios::record_all;

fn repository() -> PathBuf {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests.parent().unwrap_or(tests).to_path_buf()
}

fn parse(arguments: impl Iterator<Item = String>) -> Result<(PathBuf, PathBuf), String> {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository().join("target"));
    let mut bin_dir = target_dir.join("debug");
    let mut out = None;
    let mut arguments = arguments.peekable();
    while let Some(argument) = arguments.next() {
        let mut value = |name: &str| {
            arguments
                .next()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match argument.as_str() {
            "--bin-dir" => bin_dir = value("--bin-dir")?.into(),
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let out = out.unwrap_or_else(|| target_dir.join("permissions").join("calls.json"));
    Ok((bin_dir, out))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (bin_dir, out) = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("record-aws-calls: {message}");
            return ExitCode::from(2);
        }
    };
    let recording = match record_all(&bin_dir).await {
        Ok(recording) => recording,
        Err(failure) => {
            eprintln!("record-aws-calls: {failure}");
            return ExitCode::FAILURE;
        }
    };
    let written = serde_json::to_string_pretty(&recording)
        .map_err(|failure| failure.to_string())
        .and_then(|json| {
            if let Some(parent) = out.parent() {
                std::fs::create_dir_all(parent).map_err(|failure| failure.to_string())?;
            }
            std::fs::write(&out, json).map_err(|failure| failure.to_string())
        });
    if let Err(failure) = written {
        eprintln!("record-aws-calls: writing {}: {failure}", out.display());
        return ExitCode::FAILURE;
    }
    let calls: usize = recording.scenarios.iter().map(|s| s.calls.len()).sum();
    for scenario in &recording.scenarios {
        println!(
            "record-aws-calls: {}: {} ({} AWS calls)",
            scenario.name,
            scenario.outcome,
            scenario.calls.len()
        );
    }
    println!(
        "record-aws-calls: {calls} calls of {} scenarios written to {}",
        recording.scenarios.len(),
        out.display()
    );
    ExitCode::SUCCESS
}
