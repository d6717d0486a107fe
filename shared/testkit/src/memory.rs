//! An in-memory Secrets Manager with the strict label semantics of the real service, the
//! reference the protocol's unit tests run against.
//!
//! Where moto is lenient it is strict: a token reused with different data is refused, a label
//! sits on at most one version, moving a label off another version requires naming that version,
//! and a version without a value (the placeholder `RotateSecret` creates) reads as not found.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use rotation::event::RotationToken;
use rotation::store::{
    SecretDescription, SecretStore, SecretValue, StagingLabel, StoreError, StoreErrorKind,
    VersionSelector,
};

#[derive(Default)]
struct Version {
    value: Option<String>,
    labels: Vec<String>,
}

#[derive(Default)]
struct Secret {
    arn: String,
    name: String,
    rotation_enabled: bool,
    versions: BTreeMap<String, Version>,
    tags: Vec<(String, String)>,
}

#[derive(Default)]
struct State {
    secrets: Vec<Secret>,
    calls: Vec<String>,
    /// Operations that fail once, with this kind, the next time they are called.
    faults: Vec<(&'static str, StoreErrorKind)>,
    rotation_tokens: Vec<String>,
}

/// The strict in-memory store. Cheap to create; one per test.
#[derive(Default)]
pub struct InMemoryStore {
    state: Mutex<State>,
}

const REGION_ACCOUNT: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:";

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic in another test thread must not hide this test's own result.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `CreateSecret`: the first version gets `AWSCURRENT`. Rotation stays disabled until
    /// [`InMemoryStore::start_rotation`], as on the service. Returns the ARN.
    pub fn create_secret(&self, name: &str, value: &str) -> String {
        let mut state = self.lock();
        let arn = format!("{REGION_ACCOUNT}{name}-AbCdEf");
        let mut versions = BTreeMap::new();
        versions.insert(
            format!("initial-version-of-{name}"),
            Version {
                value: Some(value.to_owned()),
                labels: vec![StagingLabel::Current.as_str().to_owned()],
            },
        );
        state.secrets.push(Secret {
            arn: arn.clone(),
            name: name.to_owned(),
            rotation_enabled: false,
            versions,
            tags: Vec::new(),
        });
        arn
    }

    /// What `RotateSecret` does before it first invokes the function: turn rotation on and create
    /// the value-less `AWSPENDING` version for `token`. Refuses, as the service does, while
    /// `AWSPENDING` sits on a version other than the current one.
    pub fn start_rotation(&self, secret_id: &str, token: &str) -> Result<(), StoreError> {
        let mut state = self.lock();
        let secret = state.secret_mut("RotateSecret", secret_id)?;
        if let Some(pending) = secret.holder(StagingLabel::Pending.as_str()) {
            if secret.holder(StagingLabel::Current.as_str()) != Some(pending.clone()) {
                return Err(StoreError::new(
                    "RotateSecret",
                    secret_id,
                    StoreErrorKind::InvalidRequest,
                    "A previous rotation isn't complete. That rotation will be reattempted.",
                ));
            }
            secret.detach(StagingLabel::Pending.as_str(), &pending);
        }
        secret.rotation_enabled = true;
        secret.versions.insert(
            token.to_owned(),
            Version {
                value: None,
                labels: vec![StagingLabel::Pending.as_str().to_owned()],
            },
        );
        Ok(())
    }

    /// `TagResource`.
    pub fn tag(&self, secret_id: &str, key: &str, value: &str) {
        let mut state = self.lock();
        if let Ok(secret) = state.secret_mut("TagResource", secret_id) {
            secret.tags.push((key.to_owned(), value.to_owned()));
        }
    }

    /// Turn rotation off (or on) without touching versions.
    pub fn set_rotation_enabled(&self, secret_id: &str, enabled: bool) {
        let mut state = self.lock();
        if let Ok(secret) = state.secret_mut("test", secret_id) {
            secret.rotation_enabled = enabled;
        }
    }

    /// `PutSecretValue` without stages: a new version that becomes `AWSCURRENT`, as an operator
    /// or an application would write it.
    pub fn put_current(&self, secret_id: &str, version_id: &str, value: &str) {
        let mut state = self.lock();
        if let Ok(secret) = state.secret_mut("PutSecretValue", secret_id) {
            let old = secret.holder(StagingLabel::Current.as_str());
            secret.versions.insert(
                version_id.to_owned(),
                Version {
                    value: Some(value.to_owned()),
                    labels: Vec::new(),
                },
            );
            secret.attach_current(version_id, old.as_deref());
        }
    }

    /// Strip a label without the service's checks, to build states the protocol must cope with
    /// (for example a secret with no `AWSCURRENT` version).
    pub fn force_remove_label(&self, secret_id: &str, label: &str) {
        let mut state = self.lock();
        if let Ok(secret) = state.secret_mut("test", secret_id) {
            for version in secret.versions.values_mut() {
                version.labels.retain(|l| l != label);
            }
        }
    }

    /// The labelled versions, as `DescribeSecret` reports them.
    pub fn labels(&self, secret_id: &str) -> BTreeMap<String, Vec<String>> {
        let mut state = self.lock();
        state
            .secret_mut("test", secret_id)
            .map(|secret| secret.described_versions())
            .unwrap_or_default()
    }

    /// The raw value of a version, whatever its labels.
    pub fn value_of_version(&self, secret_id: &str, version_id: &str) -> Option<String> {
        let mut state = self.lock();
        let secret = state.secret_mut("test", secret_id).ok()?;
        secret.versions.get(version_id)?.value.clone()
    }

    /// Every call made so far, as `Operation` names in order.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// The `RotationToken`s `PutSecretValue` received.
    pub fn rotation_tokens_received(&self) -> Vec<String> {
        self.lock().rotation_tokens.clone()
    }

    /// Make the next call of `operation` fail with `kind`.
    pub fn fail_next(&self, operation: &'static str, kind: StoreErrorKind) {
        self.lock().faults.push((operation, kind));
    }
}

impl State {
    fn secret_mut(&mut self, operation: &'static str, id: &str) -> Result<&mut Secret, StoreError> {
        self.secrets
            .iter_mut()
            .find(|secret| secret.arn == id || secret.name == id)
            .ok_or_else(|| {
                StoreError::new(
                    operation,
                    id,
                    StoreErrorKind::NotFound,
                    "Secrets Manager can't find the specified secret.",
                )
            })
    }

    /// Records the call and fires an injected fault, if one waits for this operation.
    fn enter(&mut self, operation: &'static str, secret_id: &str) -> Result<(), StoreError> {
        self.calls.push(operation.to_owned());
        if let Some(position) = self.faults.iter().position(|(op, _)| *op == operation) {
            let (_, kind) = self.faults.remove(position);
            return Err(StoreError::new(
                operation,
                secret_id,
                kind,
                "injected fault",
            ));
        }
        Ok(())
    }
}

impl Secret {
    fn holder(&self, label: &str) -> Option<String> {
        self.versions
            .iter()
            .find(|(_, version)| version.labels.iter().any(|l| l == label))
            .map(|(id, _)| id.clone())
    }

    fn detach(&mut self, label: &str, version_id: &str) {
        if let Some(version) = self.versions.get_mut(version_id) {
            version.labels.retain(|l| l != label);
        }
    }

    fn attach(&mut self, label: &str, version_id: &str) {
        if let Some(version) = self.versions.get_mut(version_id) {
            if !version.labels.iter().any(|l| l == label) {
                version.labels.push(label.to_owned());
            }
        }
    }

    /// `AWSCURRENT` moves to `to`; `AWSPREVIOUS` follows to the version it left.
    fn attach_current(&mut self, to: &str, left: Option<&str>) {
        let current = StagingLabel::Current.as_str();
        let previous = StagingLabel::Previous.as_str();
        if let Some(left) = left {
            self.detach(current, left);
            if left != to {
                if let Some(old_previous) = self.holder(previous) {
                    self.detach(previous, &old_previous);
                }
                self.attach(previous, left);
            }
        }
        self.detach(previous, to);
        self.attach(current, to);
    }

    fn described_versions(&self) -> BTreeMap<String, Vec<String>> {
        self.versions
            .iter()
            .filter(|(_, version)| !version.labels.is_empty())
            .map(|(id, version)| (id.clone(), version.labels.clone()))
            .collect()
    }
}

#[async_trait]
impl SecretStore for InMemoryStore {
    async fn describe(&self, secret_id: &str) -> Result<SecretDescription, StoreError> {
        let mut state = self.lock();
        state.enter("DescribeSecret", secret_id)?;
        let secret = state.secret_mut("DescribeSecret", secret_id)?;
        Ok(SecretDescription {
            arn: secret.arn.clone(),
            rotation_enabled: secret.rotation_enabled,
            versions: secret.described_versions(),
            tags: secret.tags.clone(),
        })
    }

    async fn get_value(
        &self,
        secret_id: &str,
        selector: VersionSelector<'_>,
    ) -> Result<Option<SecretValue>, StoreError> {
        const OP: &str = "GetSecretValue";
        let mut state = self.lock();
        state.enter(OP, secret_id)?;
        let secret = state.secret_mut(OP, secret_id)?;
        let (version_id, stage) = match selector {
            VersionSelector::Stage(stage) => match secret.holder(stage.as_str()) {
                Some(id) => (id, Some(stage)),
                None => return Ok(None),
            },
            VersionSelector::Id { version_id, stage } => (version_id.to_owned(), stage),
        };
        let Some(version) = secret.versions.get(&version_id) else {
            return Ok(None);
        };
        if let Some(stage) = stage {
            if !version.labels.iter().any(|l| l == stage.as_str()) {
                return Err(StoreError::new(
                    OP,
                    secret_id,
                    StoreErrorKind::InvalidRequest,
                    format!("version {version_id} does not carry the staging label {stage}"),
                ));
            }
        }
        Ok(version.value.as_ref().map(|value| SecretValue {
            version_id,
            secret_string: SecretString::from(value.clone()),
        }))
    }

    async fn put_pending(
        &self,
        secret_id: &str,
        token: &str,
        value: &SecretString,
        rotation_token: Option<&RotationToken>,
    ) -> Result<(), StoreError> {
        const OP: &str = "PutSecretValue";
        let mut state = self.lock();
        state.enter(OP, secret_id)?;
        if let Some(rotation_token) = rotation_token {
            state
                .rotation_tokens
                .push(rotation_token.expose().to_owned());
        }
        let secret = state.secret_mut(OP, secret_id)?;
        let pending = StagingLabel::Pending.as_str();
        let value = value.expose_secret();
        match secret.versions.get_mut(token) {
            // Same token, same data: the service succeeds and changes nothing.
            Some(version) if version.value.as_deref() == Some(value) => return Ok(()),
            Some(version) if version.value.is_some() => {
                return Err(StoreError::new(
                    OP,
                    secret_id,
                    StoreErrorKind::VersionExists,
                    format!(
                        "You can't use ClientRequestToken {token} because that value is \
                         already in use for a version of secret {secret_id}."
                    ),
                ))
            }
            // The placeholder RotateSecret made: this call gives it its value.
            Some(version) => version.value = Some(value.to_owned()),
            None => {
                secret.versions.insert(
                    token.to_owned(),
                    Version {
                        value: Some(value.to_owned()),
                        labels: Vec::new(),
                    },
                );
            }
        }
        if let Some(other) = secret.holder(pending) {
            if other != token {
                secret.detach(pending, &other);
            }
        }
        secret.attach(pending, token);
        Ok(())
    }

    async fn update_label(
        &self,
        secret_id: &str,
        label: StagingLabel,
        move_to: Option<&str>,
        remove_from: Option<&str>,
    ) -> Result<(), StoreError> {
        const OP: &str = "UpdateSecretVersionStage";
        let mut state = self.lock();
        state.enter(OP, secret_id)?;
        let secret = state.secret_mut(OP, secret_id)?;
        let invalid = |message: String| {
            Err(StoreError::new(
                OP,
                secret_id,
                StoreErrorKind::InvalidRequest,
                message,
            ))
        };
        for id in move_to.iter().chain(remove_from.iter()) {
            if !secret.versions.contains_key(*id) {
                return invalid(format!("Not a valid version: {id}"));
            }
        }
        let holder = secret.holder(label.as_str());
        if let Some(from) = remove_from {
            if holder.as_deref() != Some(from) {
                return invalid(format!("Version stage {label} not found in version {from}"));
            }
        }
        if move_to.is_none() && remove_from.is_none() {
            return invalid("either MoveToVersionId or RemoveFromVersionId is required".to_owned());
        }
        let Some(to) = move_to else {
            if let Some(from) = remove_from {
                secret.detach(label.as_str(), from);
            }
            return Ok(());
        };
        // The service refuses to take a label off another version unless told which one.
        if let Some(holder) = &holder {
            if holder != to && remove_from != Some(holder.as_str()) {
                return invalid(format!(
                    "The parameter RemoveFromVersionId can't be empty. Staging label {label} is \
                     currently attached to version {holder}, so you must explicitly reference \
                     that version in RemoveFromVersionId."
                ));
            }
        }
        if label == StagingLabel::Current {
            secret.attach_current(to, holder.as_deref());
        } else {
            if let Some(holder) = &holder {
                secret.detach(label.as_str(), holder);
            }
            secret.attach(label.as_str(), to);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(value: &str) -> SecretString {
        SecretString::from(value.to_owned())
    }

    fn version_with(store: &InMemoryStore, arn: &str, label: &str) -> Option<String> {
        store
            .labels(arn)
            .into_iter()
            .find(|(_, labels)| labels.iter().any(|l| l == label))
            .map(|(id, _)| id)
    }

    #[tokio::test]
    async fn the_rotation_placeholder_has_no_value() {
        let store = InMemoryStore::new();
        let arn = store.create_secret("app", "{}");
        store
            .start_rotation(&arn, "token-1")
            .expect("rotation starts");
        let read = store
            .get_value(
                &arn,
                VersionSelector::Id {
                    version_id: "token-1",
                    stage: Some(StagingLabel::Pending),
                },
            )
            .await
            .expect("read");
        assert!(read.is_none());
        assert!(
            store
                .describe(&arn)
                .await
                .expect("describe")
                .rotation_enabled
        );
    }

    #[tokio::test]
    async fn a_token_reused_with_different_data_is_refused_and_with_the_same_data_is_a_no_op() {
        let store = InMemoryStore::new();
        let arn = store.create_secret("app", "{}");
        store.start_rotation(&arn, "t").expect("rotation starts");
        store
            .put_pending(&arn, "t", &secret("a"), None)
            .await
            .expect("first put");
        store
            .put_pending(&arn, "t", &secret("a"), None)
            .await
            .expect("same data");
        let error = store
            .put_pending(&arn, "t", &secret("b"), None)
            .await
            .expect_err("different data refused");
        assert_eq!(error.kind, StoreErrorKind::VersionExists);
        assert_eq!(store.value_of_version(&arn, "t").as_deref(), Some("a"));
    }

    #[tokio::test]
    async fn moving_current_moves_previous_to_the_version_it_left() {
        let store = InMemoryStore::new();
        let arn = store.create_secret("app", "{}");
        let first = version_with(&store, &arn, "AWSCURRENT").expect("current");
        store.start_rotation(&arn, "t").expect("rotation starts");
        store
            .put_pending(&arn, "t", &secret("a"), None)
            .await
            .expect("put");
        store
            .update_label(&arn, StagingLabel::Current, Some("t"), Some(&first))
            .await
            .expect("move");
        let labels = store.labels(&arn);
        assert_eq!(labels[&first], vec!["AWSPREVIOUS"]);
        assert_eq!(labels["t"], vec!["AWSPENDING", "AWSCURRENT"]);
    }

    #[tokio::test]
    async fn moving_a_label_held_elsewhere_without_naming_its_version_is_refused() {
        let store = InMemoryStore::new();
        let arn = store.create_secret("app", "{}");
        store.start_rotation(&arn, "t").expect("rotation starts");
        store
            .put_pending(&arn, "t", &secret("a"), None)
            .await
            .expect("put");
        let error = store
            .update_label(&arn, StagingLabel::Current, Some("t"), None)
            .await
            .expect_err("refused");
        assert_eq!(error.kind, StoreErrorKind::InvalidRequest);
        let error = store
            .update_label(&arn, StagingLabel::Current, Some("t"), Some("t"))
            .await
            .expect_err("wrong RemoveFromVersionId refused");
        assert_eq!(error.kind, StoreErrorKind::InvalidRequest);
    }

    #[tokio::test]
    async fn a_new_rotation_is_refused_while_pending_sits_on_another_version() {
        let store = InMemoryStore::new();
        let arn = store.create_secret("app", "{}");
        store.start_rotation(&arn, "t1").expect("rotation starts");
        let error = store.start_rotation(&arn, "t2").expect_err("refused");
        assert!(error.message.contains("previous rotation isn't complete"));
    }

    #[tokio::test]
    async fn versions_without_labels_are_not_described() {
        let store = InMemoryStore::new();
        let arn = store.create_secret("app", "{}");
        store.put_current(&arn, "v2", "{}");
        store.put_current(&arn, "v3", "{}");
        let labels = store.labels(&arn);
        assert_eq!(labels.len(), 2);
        assert_eq!(labels["v3"], vec!["AWSCURRENT"]);
        assert_eq!(labels["v2"], vec!["AWSPREVIOUS"]);
    }
}
