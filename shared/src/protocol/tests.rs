//! The protocol against the strict in-memory store: every shared scenario, plus the states only
//! a strict store can build or observe.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use crate::scenarios::{initial_secret, Scenario, ScenarioHarness};
use crate::store::memory::InMemoryStore;
use crate::store::{SecretStore, StagingLabel, StoreErrorKind};
use crate::StepOutcome;

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

crate::protocol_scenarios!(InMemoryHarness::default());

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
        inner: Arc<crate::scenarios::CredentialHolder>,
        store: Arc<InMemoryStore>,
    }
    #[async_trait]
    impl crate::Target for Racing {
        async fn derive_pending(
            &self,
            current: &crate::SecretDocument,
            versions: &crate::SecretVersions<'_>,
        ) -> Result<crate::SecretDocument, crate::RotationError> {
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
        async fn apply(&self, v: &crate::SecretVersions<'_>) -> Result<(), crate::RotationError> {
            self.inner.apply(v).await
        }
        async fn verify(&self, v: &crate::SecretVersions<'_>) -> Result<(), crate::RotationError> {
            self.inner.verify(v).await
        }
    }

    let harness = InMemoryHarness::default();
    let arn = harness.create_secret(&initial_secret().to_string()).await;
    let token = harness.start_rotation(&arn).await;
    let rotation = crate::Rotation::new(
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

    for step in crate::scenarios::STEPS {
        scenario.step(step, &token).await.expect(step);
    }
    assert_eq!(scenario.labels().await[&token], vec!["AWSCURRENT"]);
}

#[tokio::test]
async fn a_single_user_rotation_makes_the_expected_secrets_manager_calls() {
    let harness = InMemoryHarness::default();
    let scenario = Scenario::new(&harness).await;
    let token = harness.start_rotation(&scenario.arn).await;
    let before = harness.store.calls().len();
    for step in crate::scenarios::STEPS {
        scenario.step(step, &token).await.expect(step);
    }
    let calls = harness.store.calls().split_off(before);
    assert_eq!(
        calls,
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
