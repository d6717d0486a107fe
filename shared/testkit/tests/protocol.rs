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

/// How the stand-in holder's next testSecret goes wrong.
#[derive(Clone, Copy)]
enum TestTrouble {
    /// The target cannot be reached in time (a slow or overloaded database, too many
    /// connections): nothing is known about the pending credential.
    Unreachable,
    /// The step stalls until the invocation's deadline.
    Stall,
}

/// The stand-in holder, whose next testSecret can go wrong as a real target's does, and which
/// counts the roll-backs the protocol asks for.
struct Troubled {
    holder: Arc<rotation_testkit::scenarios::CredentialHolder>,
    trouble: std::sync::Mutex<Option<TestTrouble>>,
    roll_backs: AtomicU32,
}

impl Troubled {
    fn new(trouble: TestTrouble) -> Self {
        Troubled {
            holder: Arc::default(),
            trouble: std::sync::Mutex::new(Some(trouble)),
            roll_backs: AtomicU32::new(0),
        }
    }
}

#[async_trait]
impl rotation::Target for Troubled {
    async fn derive_pending(
        &self,
        current: &rotation::SecretDocument,
        versions: &SecretVersions<'_>,
    ) -> Result<rotation::SecretDocument, rotation::RotationError> {
        self.holder.derive_pending(current, versions).await
    }
    async fn apply(&self, versions: &SecretVersions<'_>) -> Result<(), rotation::RotationError> {
        self.holder.apply(versions).await
    }
    async fn verify(&self, versions: &SecretVersions<'_>) -> Result<(), rotation::RotationError> {
        let trouble = self
            .trouble
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match trouble {
            Some(TestTrouble::Unreachable) => Err(rotation::TargetError::unreachable(
                "connection to db.internal:5432 as app (verify-full): timed out after 5 s",
            )
            .into()),
            Some(TestTrouble::Stall) => {
                tokio::time::sleep(std::time::Duration::from_secs(600)).await;
                self.holder.verify(versions).await
            }
            None => self.holder.verify(versions).await,
        }
    }
    async fn roll_back(
        &self,
        versions: &SecretVersions<'_>,
    ) -> Result<rotation::target::RollBack, rotation::RotationError> {
        self.roll_backs.fetch_add(1, Ordering::Relaxed);
        self.holder.roll_back(versions).await
    }
}

/// testSecret goes wrong with `trouble` after createSecret and setSecret; whatever the step
/// answers, AWSPENDING and the target must be exactly as setSecret left them, and the service's
/// retry of testSecret must finish the rotation. Returns the failed step's error.
async fn test_secret_in_trouble_leaves_the_rotation_for_a_retry(
    trouble: TestTrouble,
) -> rotation::RotationError {
    let harness = InMemoryHarness::default();
    let arn = harness.create_secret(&initial_secret().to_string()).await;
    let token = harness.start_rotation(&arn).await;
    let target = Arc::new(Troubled::new(trouble));
    let rotation = rotation::Rotation::new(harness.store(), target.clone());
    let event = |step: &str| json!({"Step": step, "SecretId": arn, "ClientRequestToken": token});
    for step in ["createSecret", "setSecret"] {
        rotation.handle(&event(step)).await.expect(step);
    }
    let applied = target.holder.accepted_password();
    let labels = harness.store.labels(&arn);

    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
    let error = rotation
        .handle_until(&event("testSecret"), Some(deadline))
        .await
        .expect_err("testSecret fails");
    assert!(error.is_transient(), "a retry may succeed: {error}");
    assert_eq!(target.roll_backs.load(Ordering::Relaxed), 0, "no roll-back");
    assert_eq!(
        target.holder.accepted_password(),
        applied,
        "the target still accepts the pending password"
    );
    assert_eq!(
        harness.store.labels(&arn),
        labels,
        "AWSPENDING stays on the pending version"
    );

    for step in ["testSecret", "finishSecret"] {
        rotation.handle(&event(step)).await.expect(step);
    }
    assert_eq!(harness.store.labels(&arn)[&token], vec!["AWSCURRENT"]);
    error
}

#[tokio::test]
async fn a_test_secret_that_cannot_reach_the_target_rolls_nothing_back_and_a_retry_finishes() {
    let error =
        test_secret_in_trouble_leaves_the_rotation_for_a_retry(TestTrouble::Unreachable).await;
    assert_eq!(error.error_type(), "TargetUnreachable");
    let message = error.to_string();
    assert!(
        message.contains("timed out after 5 s") && message.contains("nothing rolled back"),
        "{message}"
    );
}

#[tokio::test]
async fn a_test_secret_that_runs_out_of_time_rolls_nothing_back_and_a_retry_finishes() {
    let error = test_secret_in_trouble_leaves_the_rotation_for_a_retry(TestTrouble::Stall).await;
    assert_eq!(error.error_type(), "OutOfTime");
}

#[tokio::test]
async fn a_rejected_pending_credential_is_rolled_back_and_nothing_of_the_rotation_is_kept() {
    let harness = InMemoryHarness::default();
    let scenario = Scenario::new(&harness).await;
    let token = harness.start_rotation(&scenario.arn).await;
    for step in ["createSecret", "setSecret"] {
        scenario.step(step, &token).await.expect(step);
    }
    assert!(
        !scenario.rotation.cache().is_empty(),
        "values kept for the next step"
    );
    scenario.holder.fail_next_test();
    let error = scenario
        .step("testSecret", &token)
        .await
        .expect_err("rejected");
    assert_eq!(error.error_type(), "TargetRejected");
    assert!(error.to_string().contains("rolled back"), "{error}");
    assert!(
        scenario.rotation.cache().is_empty(),
        "the abandoned rotation's values are dropped"
    );
}

#[tokio::test]
async fn nothing_of_a_rotation_stays_in_the_process_once_it_finished() {
    let harness = InMemoryHarness::default();
    let scenario = Scenario::new(&harness).await;
    let token = harness.start_rotation(&scenario.arn).await;
    for step in ["createSecret", "setSecret", "testSecret"] {
        scenario.step(step, &token).await.expect(step);
        assert!(
            !scenario.rotation.cache().is_empty(),
            "{step}: kept for the next step"
        );
    }
    scenario.step("finishSecret", &token).await.expect("finish");
    assert!(scenario.rotation.cache().is_empty(), "dropped at the end");

    // A retried step of the finished rotation keeps nothing either.
    scenario.step("setSecret", &token).await.expect("a no-op");
    assert!(scenario.rotation.cache().is_empty());
}

#[tokio::test]
async fn a_step_of_another_secret_drops_the_first_secrets_values_before_its_first_call() {
    let harness = InMemoryHarness::default();
    let store = harness.store.clone();
    let holder = Arc::new(rotation_testkit::scenarios::CredentialHolder::default());
    let rotation = rotation::Rotation::new(harness.store(), holder);
    let first = harness.create_secret(&initial_secret().to_string()).await;
    let second = harness.create_secret(&initial_secret().to_string()).await;
    let first_token = harness.start_rotation(&first).await;
    let second_token = harness.start_rotation(&second).await;
    let event = |arn: &str, token: &str, step: &str| json!({"Step": step, "SecretId": arn, "ClientRequestToken": token});
    for step in ["createSecret", "setSecret"] {
        rotation
            .handle(&event(&first, &first_token, step))
            .await
            .expect(step);
    }
    assert!(!rotation.cache().is_empty());

    // The second secret's step fails at its very first call: by then nothing of the first
    // secret is held any more.
    store.fail_next("DescribeSecret", StoreErrorKind::Transient);
    let failed = rotation
        .handle(&event(&second, &second_token, "createSecret"))
        .await;
    assert!(failed.is_err());
    assert!(
        rotation.cache().is_empty(),
        "{:?}",
        rotation.cache().version_ids()
    );

    rotation
        .handle(&event(&second, &second_token, "createSecret"))
        .await
        .expect("createSecret");
    let second_versions = store.labels(&second);
    for version_id in rotation.cache().version_ids() {
        assert!(
            second_versions.contains_key(&version_id),
            "{version_id} is a version of the second secret"
        );
    }
}

#[tokio::test]
async fn a_process_holds_at_most_three_values_whatever_the_number_of_secrets_it_rotates() {
    let harness = InMemoryHarness::default();
    let holder = Arc::new(rotation_testkit::scenarios::CredentialHolder::default());
    let rotation = rotation::Rotation::new(harness.store(), holder);
    let mut most = 0;
    for _ in 0..50 {
        let arn = harness.create_secret(&initial_secret().to_string()).await;
        // Two rotations, so that the secret has a previous version too, and a third left
        // unfinished: its values would stay for good if the process kept every secret's.
        for round in 0..3 {
            let token = harness.start_rotation(&arn).await;
            let steps = if round < 2 {
                &rotation_testkit::scenarios::STEPS[..]
            } else {
                &rotation_testkit::scenarios::STEPS[..3]
            };
            for step in steps {
                let event = json!({"Step": step, "SecretId": arn, "ClientRequestToken": token});
                rotation.handle(&event).await.expect(step);
                most = most.max(rotation.cache().len());
            }
        }
    }
    assert!(most <= 3, "at most current, pending and previous: {most}");
    assert!(!rotation.cache().is_empty() && rotation.cache().len() <= 3);
}
