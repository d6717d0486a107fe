//! The protocol's scenarios, written once and run against every Secrets Manager we have: the
//! strict in-memory store (the unit tests of this crate) and moto through the AWS SDK adapter
//! (the integration tests). [`protocol_scenarios!`](crate::protocol_scenarios) turns each
//! scenario into a test for a given harness.
//!
//! The target here is a stand-in credential holder: it keeps the password it was last told to
//! accept, and verification succeeds only when that is the pending password, so a scenario can
//! see what setSecret and testSecret really did.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use rotation::error::RotationError;
use rotation::protocol::{Rotation, StepOutcome};
use rotation::secret::SecretDocument;
use rotation::store::{SecretStore, StagingLabel, VersionSelector};
use rotation::target::{RollBack, Target, TargetError};
use rotation::versions::SecretVersions;

/// A Secrets Manager the scenarios can set up states in.
#[async_trait]
pub trait ScenarioHarness: Send + Sync {
    /// The port under test.
    fn store(&self) -> Arc<dyn SecretStore>;

    /// `CreateSecret` with a fresh name; the value becomes `AWSCURRENT`. Rotation is not enabled.
    /// Returns the ARN.
    async fn create_secret(&self, value: &str) -> String;

    /// What `RotateSecret` does before invoking the function: enable rotation and create the
    /// value-less `AWSPENDING` version. Returns its VersionId, the rotation's token.
    async fn start_rotation(&self, arn: &str) -> String;

    /// The `RotationToken`s `PutSecretValue` received, when the store can tell (moto ignores
    /// the parameter, so it cannot).
    fn rotation_tokens_received(&self) -> Option<Vec<String>>;
}

/// The value every scenario secret starts with: the AWS template format with an extra key, a
/// string `port` and a nested object, all of which must survive every version we write.
pub fn initial_secret() -> Value {
    json!({
        "engine": "postgres",
        "host": "db.internal",
        "username": "app",
        "password": "initial-password",
        "port": "5432",
        "dbClusterIdentifier": "cluster-1",
        "tags": {"team": "payments", "tier": 1}
    })
}

/// The stand-in target: a resource that accepts one password at a time.
#[derive(Default)]
pub struct CredentialHolder {
    accepted: Mutex<Option<String>>,
    derived: Mutex<u32>,
    applied: Mutex<u32>,
    finished: Mutex<u32>,
    /// The next after-finish clean-up fails, as a provider outage would make it.
    fail_next_clean_up: Mutex<bool>,
    /// The next test fails although the pending password is accepted, as a denied test query
    /// would make it.
    fail_next_test: Mutex<bool>,
}

impl CredentialHolder {
    pub fn accepted_password(&self) -> Option<String> {
        lock(&self.accepted).clone()
    }
    pub fn derive_calls(&self) -> u32 {
        *lock(&self.derived)
    }
    pub fn apply_calls(&self) -> u32 {
        *lock(&self.applied)
    }
    pub fn after_finish_calls(&self) -> u32 {
        *lock(&self.finished)
    }
    pub fn fail_next_clean_up(&self) {
        *lock(&self.fail_next_clean_up) = true;
    }
    pub fn fail_next_test(&self) {
        *lock(&self.fail_next_test) = true;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn password_of(document: &SecretDocument) -> Result<String, RotationError> {
    let password = document
        .required_secret("password")
        .map_err(|problem| TargetError::invalid_secret(problem.to_string()))?;
    Ok(password.expose_secret().to_owned())
}

#[async_trait]
impl Target for CredentialHolder {
    async fn derive_pending(
        &self,
        current: &SecretDocument,
        _versions: &SecretVersions<'_>,
    ) -> Result<SecretDocument, RotationError> {
        *lock(&self.derived) += 1;
        let mut pending = current.clone();
        let fresh = format!("pw-{:016x}", rand::random::<u64>());
        pending.set_secret("password", &SecretString::from(fresh));
        Ok(pending)
    }

    async fn apply(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        let pending = password_of(versions.pending().await?)?;
        *lock(&self.applied) += 1;
        *lock(&self.accepted) = Some(pending);
        Ok(())
    }

    async fn verify(&self, versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        let pending = password_of(versions.pending().await?)?;
        if std::mem::take(&mut *lock(&self.fail_next_test)) {
            return Err(TargetError::rejected("the holder denied the test query").into());
        }
        if lock(&self.accepted).as_deref() == Some(pending.as_str()) {
            Ok(())
        } else {
            Err(TargetError::rejected("the holder does not accept the pending password").into())
        }
    }

    /// Single-user semantics: the holder accepts one password, so a pending one it accepts has
    /// locked the current one out and must be undone.
    async fn roll_back(&self, versions: &SecretVersions<'_>) -> Result<RollBack, RotationError> {
        let pending = password_of(versions.pending().await?)?;
        let current = password_of(versions.current().await?)?;
        let mut accepted = lock(&self.accepted);
        if accepted.as_deref() != Some(pending.as_str()) {
            return Ok(RollBack::NothingToUndo);
        }
        *accepted = Some(current);
        Ok(RollBack::OnCurrent)
    }

    async fn after_finish(&self, _versions: &SecretVersions<'_>) -> Result<(), RotationError> {
        *lock(&self.finished) += 1;
        if std::mem::take(&mut *lock(&self.fail_next_clean_up)) {
            return Err(TargetError::unreachable("the clean-up could not reach the holder").into());
        }
        Ok(())
    }
}

/// A secret under rotation, the function that rotates it, and what to inspect.
pub struct Scenario<'h, H: ScenarioHarness + ?Sized> {
    pub harness: &'h H,
    pub holder: Arc<CredentialHolder>,
    pub rotation: Rotation<Arc<CredentialHolder>>,
    pub arn: String,
}

/// Everything observable about a secret and the holder, to compare end states.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub labels: BTreeMap<String, Vec<String>>,
    pub values: BTreeMap<String, Option<String>>,
    pub accepted: Option<String>,
}

impl<'h, H: ScenarioHarness + ?Sized> Scenario<'h, H> {
    pub async fn new(harness: &'h H) -> Self {
        let arn = harness.create_secret(&initial_secret().to_string()).await;
        let holder = Arc::new(CredentialHolder::default());
        let rotation = Rotation::new(harness.store(), holder.clone());
        Scenario {
            harness,
            holder,
            rotation,
            arn,
        }
    }

    pub fn event(&self, step: &str, token: &str) -> Value {
        json!({"Step": step, "SecretId": self.arn, "ClientRequestToken": token})
    }

    pub async fn step(&self, step: &str, token: &str) -> Result<StepOutcome, RotationError> {
        self.rotation.handle(&self.event(step, token)).await
    }

    /// A whole rotation as Secrets Manager runs it. Returns the token.
    pub async fn rotate(&self) -> String {
        let token = self.harness.start_rotation(&self.arn).await;
        for step in STEPS {
            self.step(step, &token)
                .await
                .unwrap_or_else(|error| panic!("{step} failed: {error}"));
        }
        token
    }

    pub async fn labels(&self) -> BTreeMap<String, Vec<String>> {
        let mut labels = self
            .harness
            .store()
            .describe(&self.arn)
            .await
            .expect("DescribeSecret")
            .versions;
        // Label order within a version carries no meaning.
        for list in labels.values_mut() {
            list.sort();
        }
        labels
    }

    pub async fn version_with(&self, label: StagingLabel) -> Option<String> {
        self.labels()
            .await
            .into_iter()
            .find(|(_, labels)| labels.iter().any(|l| l == label.as_str()))
            .map(|(id, _)| id)
    }

    pub async fn value(&self, version_id: &str) -> Option<Value> {
        let value = self
            .harness
            .store()
            .get_value(
                &self.arn,
                VersionSelector::Id {
                    version_id,
                    stage: None,
                },
            )
            .await
            .expect("GetSecretValue")?;
        Some(serde_json::from_str(value.secret_string.expose_secret()).expect("JSON value"))
    }

    pub async fn snapshot(&self) -> Snapshot {
        let labels = self.labels().await;
        let mut values = BTreeMap::new();
        for version in labels.keys() {
            values.insert(
                version.clone(),
                self.value(version).await.map(|value| value.to_string()),
            );
        }
        Snapshot {
            labels,
            values,
            accepted: self.holder.accepted_password(),
        }
    }
}

/// The steps of a rotation, in the order Secrets Manager invokes them.
pub const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

fn error_type(result: Result<StepOutcome, RotationError>) -> String {
    match result {
        Ok(outcome) => panic!("expected an error, got {outcome:?}"),
        Err(error) => error.error_type().to_owned(),
    }
}

fn random_token() -> String {
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        rand::random::<u32>(),
        rand::random::<u64>() & 0xffff_ffff_ffff
    )
}

// ---------------------------------------------------------------------------------------------
// The preamble

pub async fn every_step_is_refused_when_rotation_is_disabled<H: ScenarioHarness + ?Sized>(
    harness: &H,
) {
    let scenario = Scenario::new(harness).await;
    let before = scenario.snapshot().await;
    for step in STEPS {
        let result = scenario.step(step, &random_token()).await;
        let Err(error) = result else {
            panic!("{step} succeeded on a secret without rotation")
        };
        assert_eq!(error.error_type(), "RotationNotEnabled", "{step}");
        assert_eq!(
            error.to_string(),
            format!("Secret {} is not enabled for rotation", scenario.arn)
        );
    }
    assert_eq!(scenario.snapshot().await, before);
}

pub async fn every_step_is_refused_for_a_token_the_secret_does_not_know<
    H: ScenarioHarness + ?Sized,
>(
    harness: &H,
) {
    let scenario = Scenario::new(harness).await;
    harness.start_rotation(&scenario.arn).await;
    let before = scenario.snapshot().await;
    let stranger = random_token();
    for step in STEPS {
        let Err(error) = scenario.step(step, &stranger).await else {
            panic!("{step} accepted an unknown token")
        };
        assert_eq!(error.error_type(), "UnknownVersion", "{step}");
        assert_eq!(
            error.to_string(),
            format!(
                "Secret version {stranger} has no stage for rotation of secret {}.",
                scenario.arn
            )
        );
    }
    assert_eq!(scenario.snapshot().await, before);
    assert_eq!(
        scenario.holder.derive_calls() + scenario.holder.apply_calls(),
        0
    );
}

pub async fn every_step_succeeds_without_doing_anything_once_the_token_is_current<
    H: ScenarioHarness + ?Sized,
>(
    harness: &H,
) {
    let scenario = Scenario::new(harness).await;
    let token = scenario.rotate().await;
    let before = scenario.snapshot().await;
    let (derived, applied) = (
        scenario.holder.derive_calls(),
        scenario.holder.apply_calls(),
    );
    for step in STEPS {
        let outcome = scenario.step(step, &token).await.expect(step);
        assert_eq!(outcome, StepOutcome::AlreadyCurrent, "{step}");
    }
    assert_eq!(scenario.snapshot().await, before);
    assert_eq!(scenario.holder.derive_calls(), derived);
    assert_eq!(scenario.holder.apply_calls(), applied);
}

pub async fn every_step_is_refused_for_a_version_that_is_not_pending<
    H: ScenarioHarness + ?Sized,
>(
    harness: &H,
) {
    let scenario = Scenario::new(harness).await;
    let first = scenario
        .version_with(StagingLabel::Current)
        .await
        .expect("current");
    scenario.rotate().await;
    // The first version now carries only AWSPREVIOUS.
    let before = scenario.snapshot().await;
    for step in STEPS {
        let Err(error) = scenario.step(step, &first).await else {
            panic!("{step} accepted a version that is not pending")
        };
        assert_eq!(error.error_type(), "VersionNotPending", "{step}");
        assert_eq!(
            error.to_string(),
            format!(
                "Secret version {first} not set as AWSPENDING for rotation of secret {}.",
                scenario.arn
            )
        );
    }
    assert_eq!(scenario.snapshot().await, before);
}

pub async fn an_unknown_step_is_refused_with_the_aws_text_and_changes_nothing<
    H: ScenarioHarness + ?Sized,
>(
    harness: &H,
) {
    let scenario = Scenario::new(harness).await;
    let token = harness.start_rotation(&scenario.arn).await;
    let before = scenario.snapshot().await;
    let Err(error) = scenario.step("rotateEverything", &token).await else {
        panic!("an unknown step succeeded")
    };
    assert_eq!(error.error_type(), "InvalidEvent");
    assert_eq!(
        error.to_string(),
        format!(
            "Invalid step parameter rotateEverything for secret {}",
            scenario.arn
        )
    );
    assert_eq!(scenario.snapshot().await, before);
}

pub async fn bad_event_fields_are_refused_and_change_nothing<H: ScenarioHarness + ?Sized>(
    harness: &H,
) {
    let scenario = Scenario::new(harness).await;
    let token = harness.start_rotation(&scenario.arn).await;
    let before = scenario.snapshot().await;
    let mut missing_token = scenario.event("createSecret", &token);
    missing_token
        .as_object_mut()
        .expect("object")
        .remove("ClientRequestToken");
    let mut injected = scenario.event("createSecret", &token);
    injected["SecretId"] = json!(format!("{}\nERROR forged", scenario.arn));
    for (payload, message) in [
        (
            missing_token,
            "No value provided for \"ClientRequestToken\".",
        ),
        (injected, "\"SecretId\" contains invalid characters."),
    ] {
        let Err(error) = scenario.rotation.handle(&payload).await else {
            panic!("a bad event was accepted")
        };
        assert_eq!(error.error_type(), "InvalidEvent");
        assert_eq!(error.to_string(), message);
    }
    assert_eq!(scenario.snapshot().await, before);
}

// ---------------------------------------------------------------------------------------------
// createSecret

pub async fn create_stores_a_new_pending_value_keeping_every_other_key_and_type<
    H: ScenarioHarness + ?Sized,
>(
    harness: &H,
) {
    let scenario = Scenario::new(harness).await;
    let token = harness.start_rotation(&scenario.arn).await;
    let outcome = scenario
        .step("createSecret", &token)
        .await
        .expect("createSecret");
    assert_eq!(outcome, StepOutcome::PendingStored);

    let labels = scenario.labels().await;
    assert_eq!(labels[&token], vec!["AWSPENDING"]);
    let pending = scenario.value(&token).await.expect("pending has a value");
    let mut expected = initial_secret();
    assert_ne!(pending["password"], expected["password"]);
    expected["password"] = pending["password"].clone();
    assert_eq!(
        pending, expected,
        "unknown keys, nesting and JSON types are kept"
    );
    assert!(pending["port"].is_string(), "a string port stays a string");
    // Key order is kept too: the serialised form lists keys as the original did.
    let keys: Vec<&String> = pending.as_object().expect("object").keys().collect();
    let original = initial_secret();
    let original_keys: Vec<&String> = original.as_object().expect("object").keys().collect();
    assert_eq!(keys, original_keys);
}

pub async fn create_keeps_a_pending_value_that_already_exists<H: ScenarioHarness + ?Sized>(
    harness: &H,
) {
    let scenario = Scenario::new(harness).await;
    let token = harness.start_rotation(&scenario.arn).await;
    // A pending value different from anything createSecret would make: an earlier attempt's.
    let mut earlier = initial_secret();
    earlier["password"] = json!("written-by-an-earlier-attempt");
    harness
        .store()
        .put_pending(
            &scenario.arn,
            &token,
            &SecretString::from(earlier.to_string()),
            None,
        )
        .await
        .expect("PutSecretValue");

    let outcome = scenario
        .step("createSecret", &token)
        .await
        .expect("createSecret");
    assert_eq!(outcome, StepOutcome::PendingAlreadyStored);
    assert_eq!(scenario.value(&token).await, Some(earlier));
    assert_eq!(
        scenario.holder.derive_calls(),
        0,
        "nothing new was generated"
    );
}

pub async fn create_passes_the_rotation_token_to_put_secret_value<H: ScenarioHarness + ?Sized>(
    harness: &H,
) {
    let scenario = Scenario::new(harness).await;
    let token = harness.start_rotation(&scenario.arn).await;
    let rotation_token = format!("{}-{}", random_token(), random_token());
    let mut event = scenario.event("createSecret", &token);
    event["RotationToken"] = json!(rotation_token);
    let outcome = scenario
        .rotation
        .handle(&event)
        .await
        .expect("createSecret");
    assert_eq!(outcome, StepOutcome::PendingStored);
    if let Some(received) = harness.rotation_tokens_received() {
        assert_eq!(received, vec![rotation_token]);
    }
}

// ---------------------------------------------------------------------------------------------
// setSecret, testSecret, finishSecret

pub async fn a_full_rotation_moves_current_and_previous_and_leaves_no_pending_label<
    H: ScenarioHarness + ?Sized,
>(
    harness: &H,
) {
    let scenario = Scenario::new(harness).await;
    let first = scenario
        .version_with(StagingLabel::Current)
        .await
        .expect("current");
    let token = scenario.rotate().await;

    let labels = scenario.labels().await;
    assert_eq!(labels[&token], vec!["AWSCURRENT"]);
    assert_eq!(labels[&first], vec!["AWSPREVIOUS"]);
    assert_eq!(labels.len(), 2);
    let current = scenario.value(&token).await.expect("current value");
    assert_eq!(
        scenario.holder.accepted_password().as_deref(),
        current["password"].as_str(),
        "the holder accepts what AWSCURRENT holds"
    );
    assert_eq!(scenario.holder.after_finish_calls(), 1);

    // The next rotation starts cleanly and moves AWSPREVIOUS along.
    let second = scenario.rotate().await;
    let labels = scenario.labels().await;
    assert_eq!(labels[&second], vec!["AWSCURRENT"]);
    assert_eq!(labels[&token], vec!["AWSPREVIOUS"]);
    assert!(!labels.contains_key(&first));
}

pub async fn test_secret_fails_when_set_secret_has_not_applied_the_pending_value<
    H: ScenarioHarness + ?Sized,
>(
    harness: &H,
) {
    let scenario = Scenario::new(harness).await;
    let token = harness.start_rotation(&scenario.arn).await;
    scenario
        .step("createSecret", &token)
        .await
        .expect("createSecret");
    let result = scenario.step("testSecret", &token).await;
    assert_eq!(error_type(result), "TargetRejected");
}

pub async fn finish_removes_a_pending_label_left_on_the_current_version<
    H: ScenarioHarness + ?Sized,
>(
    harness: &H,
) {
    let scenario = Scenario::new(harness).await;
    let first = scenario
        .version_with(StagingLabel::Current)
        .await
        .expect("current");
    let token = harness.start_rotation(&scenario.arn).await;
    for step in ["createSecret", "setSecret", "testSecret"] {
        scenario.step(step, &token).await.expect(step);
    }
    // A finishSecret that died between its two label updates.
    harness
        .store()
        .update_label(
            &scenario.arn,
            StagingLabel::Current,
            Some(&token),
            Some(&first),
        )
        .await
        .expect("move AWSCURRENT");

    let outcome = scenario
        .step("finishSecret", &token)
        .await
        .expect("finishSecret");
    assert_eq!(outcome, StepOutcome::PendingLabelRemoved);
    let labels = scenario.labels().await;
    assert_eq!(labels[&token], vec!["AWSCURRENT"]);
    assert_eq!(labels[&first], vec!["AWSPREVIOUS"]);
    assert_eq!(scenario.holder.after_finish_calls(), 1);
}

pub async fn a_failed_clean_up_after_finish_is_run_again_by_the_retried_finish<
    H: ScenarioHarness + ?Sized,
>(
    harness: &H,
) {
    let scenario = Scenario::new(harness).await;
    let first = scenario
        .version_with(StagingLabel::Current)
        .await
        .expect("current");
    let token = harness.start_rotation(&scenario.arn).await;
    for step in ["createSecret", "setSecret", "testSecret"] {
        scenario.step(step, &token).await.expect(step);
    }
    scenario.holder.fail_next_clean_up();
    let result = scenario.step("finishSecret", &token).await;
    assert_eq!(error_type(result), "TargetUnreachable");
    // The new version is current, and AWSPENDING stays on it to say the clean-up is owed.
    let labels = scenario.labels().await;
    assert_eq!(labels[&token], vec!["AWSCURRENT", "AWSPENDING"]);
    assert_eq!(labels[&first], vec!["AWSPREVIOUS"]);

    let outcome = scenario
        .step("finishSecret", &token)
        .await
        .expect("retried finishSecret");
    assert_eq!(outcome, StepOutcome::PendingLabelRemoved);
    assert_eq!(
        scenario.holder.after_finish_calls(),
        2,
        "the clean-up ran again"
    );
    assert_eq!(scenario.labels().await[&token], vec!["AWSCURRENT"]);
}

pub async fn a_failed_test_after_the_password_was_applied_rolls_back_and_ends_the_rotation<
    H: ScenarioHarness + ?Sized,
>(
    harness: &H,
) {
    let scenario = Scenario::new(harness).await;
    let first = scenario
        .version_with(StagingLabel::Current)
        .await
        .expect("current");
    let current_password = scenario.value(&first).await.expect("a value")["password"].clone();
    let token = harness.start_rotation(&scenario.arn).await;
    for step in ["createSecret", "setSecret"] {
        scenario.step(step, &token).await.expect(step);
    }
    scenario.holder.fail_next_test();
    let error = scenario
        .step("testSecret", &token)
        .await
        .expect_err("the test fails");
    assert_eq!(error.error_type(), "TargetRejected");
    let message = error.to_string();
    assert!(
        message.contains("the holder denied the test query")
            && message.contains("rolled back")
            && message.contains(&token),
        "{message}"
    );
    assert_eq!(
        scenario.holder.accepted_password().as_deref(),
        current_password.as_str(),
        "the holder accepts the AWSCURRENT password again"
    );
    let labels = scenario.labels().await;
    assert_eq!(labels[&first], vec!["AWSCURRENT"]);
    assert!(
        labels
            .get(&token)
            .is_none_or(|labels| !labels.iter().any(|l| l == "AWSPENDING")),
        "AWSPENDING is gone: {labels:?}"
    );

    // The service's retry of the abandoned token changes nothing; a new rotation succeeds.
    assert!(scenario.step("testSecret", &token).await.is_err());
    assert_eq!(
        scenario.holder.accepted_password().as_deref(),
        current_password.as_str()
    );
    let next = scenario.rotate().await;
    assert_eq!(scenario.labels().await[&next], vec!["AWSCURRENT"]);
}

pub async fn every_step_run_twice_ends_as_if_run_once<H: ScenarioHarness + ?Sized>(harness: &H) {
    let scenario = Scenario::new(harness).await;
    let token = harness.start_rotation(&scenario.arn).await;
    for step in STEPS {
        scenario.step(step, &token).await.expect(step);
        let once = scenario.snapshot().await;
        scenario
            .step(step, &token)
            .await
            .unwrap_or_else(|error| panic!("{step} retried: {error}"));
        assert_eq!(scenario.snapshot().await, once, "{step} run twice");
    }
    assert_eq!(
        scenario.holder.derive_calls(),
        1,
        "one password per rotation"
    );
    let labels = scenario.labels().await;
    assert_eq!(labels[&token], vec!["AWSCURRENT"]);
}

/// Turns every scenario into a `#[tokio::test]` against the harness the expression builds
/// (evaluated inside each test, so it may `.await`).
#[macro_export]
macro_rules! protocol_scenarios {
    ($harness:expr) => {
        $crate::protocol_scenarios!(@each $harness;
            every_step_is_refused_when_rotation_is_disabled,
            every_step_is_refused_for_a_token_the_secret_does_not_know,
            every_step_succeeds_without_doing_anything_once_the_token_is_current,
            every_step_is_refused_for_a_version_that_is_not_pending,
            an_unknown_step_is_refused_with_the_aws_text_and_changes_nothing,
            bad_event_fields_are_refused_and_change_nothing,
            create_stores_a_new_pending_value_keeping_every_other_key_and_type,
            create_keeps_a_pending_value_that_already_exists,
            create_passes_the_rotation_token_to_put_secret_value,
            a_full_rotation_moves_current_and_previous_and_leaves_no_pending_label,
            test_secret_fails_when_set_secret_has_not_applied_the_pending_value,
            finish_removes_a_pending_label_left_on_the_current_version,
            a_failed_clean_up_after_finish_is_run_again_by_the_retried_finish,
            a_failed_test_after_the_password_was_applied_rolls_back_and_ends_the_rotation,
            every_step_run_twice_ends_as_if_run_once,
        );
    };
    (@each $harness:expr; $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                let harness = $harness;
                $crate::scenarios::$scenario(&harness).await;
            }
        )*
    };
}
