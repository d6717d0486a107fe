//! The protocol against the strict in-memory store: every shared scenario, plus the states only
//! a strict store can build or observe.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use rotation::store::{SecretStore, StagingLabel, StoreErrorKind};
use rotation::versions::{SecretVersions, VersionCache};
use rotation::StepOutcome;
use rotation_testkit::memory::InMemoryStore;
use rotation_testkit::scenarios::{initial_secret, Scenario, ScenarioHarness};

#[derive(Default)]
struct InMemoryHarness {
    store: Arc<InMemoryStore>,
    secrets: AtomicU32,
}

#[async_trait]
impl ScenarioHarness for InMemoryHarness {
    fn store(&self) -> Arc<dyn SecretStore> {
        self.store.clone()
    }

    async fn create_secret(&self, value: &str) -> String {
        let n = self.secrets.fetch_add(1, Ordering::Relaxed);
        self.store.create_secret(&format!("scenario-{n}"), value)
    }

    async fn start_rotation(&self, arn: &str) -> String {
        let token = format!("{:032x}", rand::random::<u128>());
        self.store
            .start_rotation(arn, &token)
            .expect("RotateSecret");
        token
    }

    fn rotation_tokens_received(&self) -> Option<Vec<String>> {
        Some(self.store.rotation_tokens_received())
    }
}

rotation_testkit::protocol_scenarios!(InMemoryHarness::default());

#[tokio::test]
async fn a_rejected_event_makes_no_call_to_secrets_manager() {
    let harness = InMemoryHarness::default();
    let scenario = Scenario::new(&harness).await;
    let token = harness.start_rotation(&scenario.arn).await;
    let calls_before = harness.store.calls().len();
    for payload in [
        scenario.event("rotateEverything", &token),
        json!({"Step": "createSecret", "SecretId": scenario.arn}),
        json!({"Step": "createSecret", "SecretId": "x\u{0}", "ClientRequestToken": token}),
    ] {
        assert!(scenario.rotation.handle(&payload).await.is_err());
    }
    assert_eq!(harness.store.calls().len(), calls_before);
}

#[tokio::test]
async fn create_succeeds_when_a_concurrent_duplicate_wrote_the_pending_value_first() {
    // The duplicate's write lands between our read of the pending version and our own write,
    // so ours is refused with ResourceExistsException; the duplicate's value stands.
    struct Racing {
        inner: Arc<rotation_testkit::scenarios::CredentialHolder>,
        store: Arc<InMemoryStore>,
    }
    #[async_trait]
    impl rotation::Target for Racing {
        async fn derive_pending(
            &self,
            current: &rotation::SecretDocument,
            versions: &rotation::SecretVersions<'_>,
        ) -> Result<rotation::SecretDocument, rotation::RotationError> {
            let duplicate = self.inner.derive_pending(current, versions).await?;
            self.store
                .put_pending(
                    versions.secret_arn(),
                    versions.token(),
                    &duplicate.to_secret_string(),
                    None,
                )
                .await?;
            self.inner.derive_pending(current, versions).await
        }
        async fn apply(
            &self,
            v: &rotation::SecretVersions<'_>,
        ) -> Result<(), rotation::RotationError> {
            self.inner.apply(v).await
        }
        async fn verify(
            &self,
            v: &rotation::SecretVersions<'_>,
        ) -> Result<(), rotation::RotationError> {
            self.inner.verify(v).await
        }
    }

    let harness = InMemoryHarness::default();
    let arn = harness.create_secret(&initial_secret().to_string()).await;
    let token = harness.start_rotation(&arn).await;
    let rotation = rotation::Rotation::new(
        harness.store(),
        Racing {
            inner: Arc::default(),
            store: harness.store.clone(),
        },
    );
    let event = json!({"Step": "createSecret", "SecretId": arn, "ClientRequestToken": token});
    let outcome = rotation.handle(&event).await.expect("createSecret");
    assert_eq!(outcome, StepOutcome::PendingAlreadyStored);
    assert!(harness.store.value_of_version(&arn, &token).is_some());
}

#[tokio::test]
async fn finish_moves_current_without_naming_a_version_when_no_version_is_current() {
    let harness = InMemoryHarness::default();
    let scenario = Scenario::new(&harness).await;
    let token = harness.start_rotation(&scenario.arn).await;
    for step in ["createSecret", "setSecret", "testSecret"] {
        scenario.step(step, &token).await.expect(step);
    }
    harness
        .store
        .force_remove_label(&scenario.arn, StagingLabel::Current.as_str());

    let outcome = scenario
        .step("finishSecret", &token)
        .await
        .expect("finishSecret");
    assert_eq!(outcome, StepOutcome::Finished);
    let labels = scenario.labels().await;
    assert_eq!(labels[&token], vec!["AWSCURRENT"]);
    assert_eq!(labels.len(), 1, "no AWSPREVIOUS: nothing was current");
}

#[tokio::test]
async fn a_throttled_call_is_reported_as_transient_and_a_retry_converges() {
    let harness = InMemoryHarness::default();
    let scenario = Scenario::new(&harness).await;
    let token = harness.start_rotation(&scenario.arn).await;
    harness
        .store
        .fail_next("PutSecretValue", StoreErrorKind::Transient);
    let Err(error) = scenario.step("createSecret", &token).await else {
        panic!("the injected fault did not surface")
    };
    assert_eq!(error.error_type(), "SecretsManagerUnavailable");
    assert!(error.is_transient());
    assert!(error.to_string().contains("PutSecretValue"), "{error}");

    for step in rotation_testkit::scenarios::STEPS {
        scenario.step(step, &token).await.expect(step);
    }
    assert_eq!(scenario.labels().await[&token], vec!["AWSCURRENT"]);
}

/// The calls of one rotation, each step in the same process (a warm Lambda sandbox) or each in
/// a fresh one (a cold start per step).
async fn calls_of_one_rotation(fresh_process_per_step: bool) -> Vec<String> {
    let harness = InMemoryHarness::default();
    let scenario = Scenario::new(&harness).await;
    let token = harness.start_rotation(&scenario.arn).await;
    let before = harness.store.calls().len();
    for step in rotation_testkit::scenarios::STEPS {
        let event = scenario.event(step, &token);
        if fresh_process_per_step {
            let fresh = rotation::Rotation::new(harness.store(), scenario.holder.clone());
            fresh.handle(&event).await.expect(step);
        } else {
            scenario.rotation.handle(&event).await.expect(step);
        }
    }
    harness.store.calls().split_off(before)
}

#[tokio::test]
async fn a_warm_process_reads_each_version_once_per_rotation() {
    // createSecret: the preamble, whether the pending value exists, the current value, the
    // write. setSecret: the pending value (this target does not need the current one).
    // testSecret: the pending value setSecret read. finishSecret: the two label moves.
    assert_eq!(
        calls_of_one_rotation(false).await,
        [
            "DescribeSecret",
            "GetSecretValue",
            "GetSecretValue",
            "PutSecretValue",
            "DescribeSecret",
            "GetSecretValue",
            "DescribeSecret",
            "DescribeSecret",
            "UpdateSecretVersionStage",
            "UpdateSecretVersionStage",
        ]
    );
}

#[tokio::test]
async fn a_fresh_process_per_step_reads_what_each_step_needs() {
    assert_eq!(
        calls_of_one_rotation(true).await,
        [
            "DescribeSecret",
            "GetSecretValue",
            "GetSecretValue",
            "PutSecretValue",
            "DescribeSecret",
            "GetSecretValue",
            "DescribeSecret",
            "GetSecretValue",
            "DescribeSecret",
            "UpdateSecretVersionStage",
            "UpdateSecretVersionStage",
        ]
    );
}

#[tokio::test]
async fn no_value_is_read_for_a_label_no_version_holds() {
    let harness = InMemoryHarness::default();
    let scenario = Scenario::new(&harness).await;
    let token = harness.start_rotation(&scenario.arn).await;
    let description = harness
        .store
        .describe(&scenario.arn)
        .await
        .expect("DescribeSecret");
    let event = rotation::RotationEvent::from_json(&scenario.event("setSecret", &token))
        .expect("a valid event");
    let cache = VersionCache::default();
    let versions = SecretVersions::new(
        &*harness.store,
        &cache,
        &description,
        &event.client_request_token,
    );
    let before = harness.store.calls().len();

    assert!(versions.previous().await.expect("no error").is_none());
    assert_eq!(
        harness.store.calls().len(),
        before,
        "a first rotation has no AWSPREVIOUS"
    );
}

#[tokio::test]
async fn a_value_is_forgotten_once_its_version_carries_no_label() {
    let harness = InMemoryHarness::default();
    let scenario = Scenario::new(&harness).await;
    let token = format!("{:032x}", rand::random::<u128>());
    let description = harness
        .store
        .describe(&scenario.arn)
        .await
        .expect("DescribeSecret");
    let event = rotation::RotationEvent::from_json(&scenario.event("setSecret", &token))
        .expect("a valid event");
    let cache = VersionCache::default();
    let versions = SecretVersions::new(
        &*harness.store,
        &cache,
        &description,
        &event.client_request_token,
    );
    versions.current().await.expect("the current value");
    assert_eq!(cache.len(), 1);

    // Two rotations later the first version is neither current nor previous.
    scenario.rotate().await;
    scenario.rotate().await;
    let later = harness
        .store
        .describe(&scenario.arn)
        .await
        .expect("DescribeSecret");
    cache.forget_unlabelled(&later);
    assert!(cache.is_empty());
}
