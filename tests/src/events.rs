//! The sample events in `events/<function>/`: one per rotation step, with a placeholder secret
//! ARN and token, for `sam local invoke -e` and `cargo lambda invoke --data-file`.
//!
//! Each function crate runs its files through its real binary under the Runtime API emulator
//! (a test calling [`EventFiles::load`], then [`EventFiles::assert_rejected_cleanly`] and
//! [`EventFiles::rotate`]), so the files never drift from what the functions accept:
//! - as they are, the placeholder secret does not exist, and the preamble must refuse each event
//!   with a clean `SecretsManager` error naming the secret, the process staying up;
//! - with the ARN and token of a seeded secret substituted, the four files must make a whole
//!   rotation.
//!
//! The tests crate checks the layout: every directory of `events/` is a function crate of
//! `functions/`, and every function crate has its events and runs them.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::orchestrator::STEPS;
use crate::runtime_api::{Invocation, LambdaFunction};
use crate::secrets_manager::MotoSecretsManager;

/// The repository root (this crate sits one level below it).
pub fn repository_root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().unwrap_or(crate_dir).to_path_buf()
}

/// The paths in `dir`.
fn entries(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let listing = std::fs::read_dir(dir)
        .map_err(|error| format!("cannot list {}: {error}", dir.display()))?;
    listing
        .map(|entry| {
            entry
                .map(|entry| entry.path())
                .map_err(|error| format!("cannot list {}: {error}", dir.display()))
        })
        .collect()
}

/// The names of the subdirectories of `dir` for which `keep` holds, sorted.
fn subdirectories(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = entries(dir)?
        .into_iter()
        .filter(|path| path.is_dir() && keep(path))
        .filter_map(|path| Some(path.file_name()?.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    Ok(names)
}

/// The function crates: the directories of `functions/` that hold a `Cargo.toml`.
pub fn function_crates() -> Result<Vec<String>, String> {
    subdirectories(&repository_root().join("functions"), |dir| {
        dir.join("Cargo.toml").is_file()
    })
}

/// The directories of `events/`, one per function.
pub fn event_directories() -> Result<Vec<String>, String> {
    subdirectories(&repository_root().join("events"), |_| true)
}

/// One sample event file.
#[derive(Debug, Clone)]
pub struct EventFile {
    pub path: PathBuf,
    pub step: &'static str,
    pub payload: Value,
}

/// A function's sample events, one per step, in the order Secrets Manager sends them.
#[derive(Debug, Clone)]
pub struct EventFiles {
    pub function: String,
    pub events: Vec<EventFile>,
}

impl EventFiles {
    /// Reads every file of `events/<function>/`. Each must be a `.json` rotation event named
    /// after its step (`createSecret.json` holds `"Step": "createSecret"`) with a Secrets
    /// Manager ARN as `SecretId` and a `ClientRequestToken`, and every step must have its file.
    pub fn load(function: &str) -> Result<EventFiles, String> {
        let dir = repository_root().join("events").join(function);
        let mut events = entries(&dir)?
            .iter()
            .map(|path| read_event(path))
            .collect::<Result<Vec<_>, _>>()?;
        for step in STEPS {
            let count = events.iter().filter(|event| event.step == step).count();
            if count != 1 {
                return Err(format!(
                    "{} has {count} files for {step}, expected one ({step}.json)",
                    dir.display()
                ));
            }
        }
        events.sort_by_key(|event| STEPS.iter().position(|step| *step == event.step));
        Ok(EventFiles {
            function: function.to_owned(),
            events,
        })
    }

    /// Sends each event as it is. Its placeholder secret does not exist, so the preamble's
    /// `DescribeSecret` fails: every invocation must end in a `SecretsManager` error that names
    /// the secret, and the process must survive all of them (one cold start, no crash).
    pub async fn assert_rejected_cleanly(&self, function: &LambdaFunction) {
        let cold_starts = function.cold_starts();
        for event in &self.events {
            let secret = event.payload["SecretId"].as_str().unwrap_or_default();
            let outcome = function.invoke(&event.payload).await;
            match &outcome {
                Invocation::Failed {
                    error_type,
                    error_message,
                } if error_type == "SecretsManager"
                    && error_message.contains("DescribeSecret")
                    && error_message.contains(secret) => {}
                other => panic!(
                    "{} with its placeholder secret should be refused by DescribeSecret, but it {other}\n\
                     --- function output ---\n{}",
                    event.path.display(),
                    function.output()
                ),
            }
        }
        assert_eq!(
            function.cold_starts(),
            cold_starts,
            "the function process survived every refused event\n--- function output ---\n{}",
            function.output()
        );
    }

    /// Both checks for a function whose secret `arn` is seeded in `moto`: every event refused
    /// as it is, then a rotation of `arn` by the four files (see [`EventFiles::rotate`]) that
    /// leaves its pending version `AWSCURRENT` and no `AWSPENDING` label. The caller checks the
    /// target (the new password logs in).
    pub async fn assert_refused_then_rotate(
        &self,
        function: &LambdaFunction,
        moto: &MotoSecretsManager,
        arn: &str,
    ) {
        self.assert_rejected_cleanly(function).await;
        let token = moto.start_rotation(arn).await;
        self.rotate(function, arn, &token).await;
        let labels = moto.labels(arn).await;
        let current = labels
            .iter()
            .find(|(_, stages)| stages.iter().any(|stage| stage == "AWSCURRENT"))
            .map(|(version, _)| version.as_str());
        assert_eq!(current, Some(token.as_str()), "{labels:?}");
        assert!(
            !labels.values().flatten().any(|stage| stage == "AWSPENDING"),
            "no AWSPENDING left: {labels:?}"
        );
    }

    /// Sends the events in step order with `SecretId` and `ClientRequestToken` replaced by a
    /// real secret and its pending version (the rest of each file, `RotationToken` included,
    /// as it is): the four files must make a whole rotation.
    pub async fn rotate(&self, function: &LambdaFunction, arn: &str, token: &str) {
        for event in &self.events {
            let mut payload = event.payload.clone();
            payload["SecretId"] = Value::from(arn);
            payload["ClientRequestToken"] = Value::from(token);
            if let Err(what) = function.invoke(&payload).await.succeeded() {
                panic!(
                    "{} for a seeded secret: {what}\n--- function output ---\n{}",
                    event.path.display(),
                    function.output()
                );
            }
        }
    }
}

/// Reads and checks one event file.
fn read_event(path: &Path) -> Result<EventFile, String> {
    let shown = path.display();
    if path.extension().and_then(|extension| extension.to_str()) != Some("json") {
        return Err(format!("{shown} is not a .json event"));
    }
    let text =
        std::fs::read_to_string(path).map_err(|error| format!("cannot read {shown}: {error}"))?;
    let payload: Value =
        serde_json::from_str(&text).map_err(|error| format!("{shown} is not JSON: {error}"))?;
    let field = |name: &str| payload.get(name).and_then(Value::as_str);
    let stem = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or_default();
    let step = STEPS
        .iter()
        .copied()
        .find(|step| *step == stem)
        .ok_or_else(|| format!("{shown} is not named after a step ({})", STEPS.join(", ")))?;
    if field("Step") != Some(step) {
        return Err(format!("{shown} should say \"Step\": \"{step}\""));
    }
    if !field("SecretId").is_some_and(|arn| arn.starts_with("arn:aws:secretsmanager:")) {
        return Err(format!("{shown} needs a Secrets Manager ARN as SecretId"));
    }
    if field("ClientRequestToken").is_none_or(str::is_empty) {
        return Err(format!("{shown} needs a ClientRequestToken"));
    }
    Ok(EventFile {
        path: path.to_path_buf(),
        step,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write a scratch event");
        path
    }

    #[test]
    fn an_event_file_must_be_named_after_the_step_it_carries() {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let path = write(
            dir.path(),
            "setSecret.json",
            r#"{"Step": "testSecret", "SecretId": "arn:aws:secretsmanager:r:1:secret:s", "ClientRequestToken": "t"}"#,
        );
        let error = read_event(&path).expect_err("a mismatched step is refused");
        assert!(error.contains("\"Step\": \"setSecret\""), "{error}");
    }

    #[test]
    fn an_event_file_without_an_arn_or_token_is_refused() {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let no_arn = write(
            dir.path(),
            "createSecret.json",
            r#"{"Step": "createSecret", "SecretId": "my-secret", "ClientRequestToken": "t"}"#,
        );
        assert!(read_event(&no_arn).is_err());
        let no_token = write(
            dir.path(),
            "testSecret.json",
            r#"{"Step": "testSecret", "SecretId": "arn:aws:secretsmanager:r:1:secret:s"}"#,
        );
        assert!(read_event(&no_token).is_err());
    }

    #[test]
    fn a_file_that_is_not_a_json_event_is_refused() {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let notes = write(dir.path(), "notes.txt", "hello");
        assert!(read_event(&notes).is_err());
        let broken = write(dir.path(), "finishSecret.json", "{");
        assert!(read_event(&broken).is_err());
    }
}
