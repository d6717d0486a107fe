//! A test-only rotation function whose "target" is a credential file: the smallest real target,
//! used to prove the Runtime API harness and the orchestrator end to end.
//!
//! The file (`CREDENTIAL_FILE`) holds `{"username": …, "password": …}`, standing in for a
//! database account: setSecret changes the password in it as a single-user database rotation
//! would (only when it still holds the current or previous password), testSecret checks the
//! pending password is the one it holds.

use std::path::PathBuf;

use async_trait::async_trait;
use rotation::config::{ConfigError, Environment};
use rotation::lambda::StartUp;
use rotation::password::{PasswordPolicy, MYSQL_EXCLUDED_CHARACTERS};
use rotation::{RotationError, SecretDocument, SecretVersions, Target, TargetError};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

struct CredentialFile {
    path: PathBuf,
    policy: PasswordPolicy,
}

impl CredentialFile {
    fn from_environment(env: &Environment) -> Result<Self, RotationError> {
        let path = env
            .get("CREDENTIAL_FILE")
            .filter(|path| !path.is_empty())
            .ok_or_else(|| ConfigError {
                variable: "CREDENTIAL_FILE".to_owned(),
                problem: "must name the credential file to rotate".to_owned(),
            })?;
        Ok(CredentialFile {
            path: PathBuf::from(path),
            policy: PasswordPolicy::from_environment(env, MYSQL_EXCLUDED_CHARACTERS)?,
        })
    }

    async fn held_password(&self) -> Result<String, RotationError> {
        let unreadable = |problem: String| {
            TargetError::unreachable(format!(
                "cannot read credential file {}: {problem}",
                self.path.display()
            ))
        };
        let text = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|error| unreadable(error.to_string()))?;
        let held: Value =
            serde_json::from_str(&text).map_err(|error| unreadable(error.to_string()))?;
        Ok(held["password"].as_str().unwrap_or_default().to_owned())
    }

    /// Replaces the file atomically so a crash never leaves it half written.
    async fn hold(&self, username: &str, password: &str) -> Result<(), RotationError> {
        let staging = self.path.with_extension("new");
        let body = json!({"username": username, "password": password}).to_string();
        let failed = |error: std::io::Error| {
            TargetError::unreachable(format!(
                "cannot write credential file {}: {error}",
                self.path.display()
            ))
        };
        tokio::fs::write(&staging, body).await.map_err(failed)?;
        tokio::fs::rename(&staging, &self.path)
            .await
            .map_err(failed)?;
        Ok(())
    }
}

fn password(document: &SecretDocument) -> Result<String, RotationError> {
    let secret = document
        .required_secret("password")
        .map_err(|problem| TargetError::invalid_secret(problem.to_string()))?;
    Ok(secret.expose_secret().to_owned())
}

#[async_trait]
impl Target for CredentialFile {
    async fn derive_pending(
        &self,
        current: &SecretDocument,
        _versions: &SecretVersions<'_>,
    ) -> Result<SecretDocument, RotationError> {
        let mut pending = current.clone();
        pending.set_secret("password", &self.policy.generate());
        Ok(pending)
    }

    async fn apply(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        let pending = versions.pending().await?;
        let new_password = password(pending)?;
        let held = self.held_password().await?;
        if held == new_password {
            return Ok(());
        }
        let mut known = vec![password(versions.current().await?)?];
        if let Some(previous) = versions.previous().await? {
            known.push(password(previous)?);
        }
        if !known.contains(&held) {
            return Err(TargetError::rejected(format!(
                "credential file {} holds none of the current, previous or pending passwords",
                self.path.display()
            ))
            .into());
        }
        let username = pending
            .required_str("username")
            .map_err(|problem| TargetError::invalid_secret(problem.to_string()))?;
        self.hold(username, &new_password).await
    }

    async fn verify(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        if self.held_password().await? == password(versions.pending().await?)? {
            Ok(())
        } else {
            Err(TargetError::rejected(format!(
                "credential file {} does not accept the pending password",
                self.path.display()
            ))
            .into())
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotation::lambda::run(async |start_up: &StartUp| {
        CredentialFile::from_environment(&start_up.env)
    })
    .await
}
