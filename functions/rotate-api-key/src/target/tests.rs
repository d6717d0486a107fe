//! The rule against a strict fake provider and the strict in-memory Secrets Manager: whole
//! rotations through the protocol, with the provider's answers lost or refused at each point.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rotation::store::SecretStore;
use rotation::Rotation;
use rotation_testkit::memory::InMemoryStore;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use super::*;

const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];
/// The namespace of the rotated secret's keys (`app:<token>`); another secret's keys use another
/// one.
const PREFIX: &str = "app";

#[derive(Default)]
struct Fake {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Live keys: id → (name, secret).
    live: BTreeMap<String, (String, String)>,
    issued: u32,
    revoked: u32,
    idempotent: bool,
    /// Idempotency key → the key first issued for it.
    replays: BTreeMap<String, (String, String)>,
    limit: Option<usize>,
    most_live: usize,
    /// The next issue happens at the provider but its answer never arrives.
    lose_next_issue_answer: bool,
    /// The next revoke happens at the provider but its answer never arrives.
    lose_next_revoke_answer: bool,
    /// How many authentications to reject before accepting (eventual consistency).
    reject_authentications: u32,
    authentications: u32,
}

impl Fake {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn issue_as(&self, name: &str, idempotency_key: &str) -> Result<IssuedKey, TargetError> {
        let mut state = self.state();
        if state.idempotent {
            if let Some((id, secret)) = state.replays.get(idempotency_key).cloned() {
                return Ok(IssuedKey {
                    id,
                    secret: SecretString::from(secret),
                });
            }
        }
        if state.limit.is_some_and(|limit| state.live.len() >= limit) {
            return Err(TargetError::rejected("409 Conflict: too many live keys"));
        }
        state.issued += 1;
        let id = format!("key-{}", state.issued);
        let secret = format!("secret-{}-{name}", state.issued);
        state
            .live
            .insert(id.clone(), (name.to_owned(), secret.clone()));
        state.most_live = state.most_live.max(state.live.len());
        state
            .replays
            .insert(idempotency_key.to_owned(), (id.clone(), secret.clone()));
        if std::mem::take(&mut state.lose_next_issue_answer) {
            return Err(TargetError::unreachable("connection reset"));
        }
        Ok(IssuedKey {
            id,
            secret: SecretString::from(secret),
        })
    }

    fn live_names(&self) -> Vec<String> {
        self.state()
            .live
            .values()
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn is_live(&self, id: &str) -> bool {
        self.state().live.contains_key(id)
    }
}

struct FakeProvider(Arc<Fake>);

struct FakeSession {
    fake: Arc<Fake>,
    name: String,
    token: String,
    /// Set by the first authentication, which proves the current key: the provider refuses to
    /// be acted on before, as the rule requires.
    proven: std::sync::atomic::AtomicBool,
}

impl FakeSession {
    fn check_proven(&self) -> Result<(), TargetError> {
        if self.proven.load(std::sync::atomic::Ordering::Relaxed) {
            Ok(())
        } else {
            panic!("the fake provider was acted on before the current key was proven")
        }
    }
}

#[async_trait]
impl KeyProvider for FakeProvider {
    async fn session(
        &self,
        _current: &SecretDocument,
        versions: &SecretVersions<'_>,
    ) -> Result<Box<dyn ProviderSession>, RotationError> {
        Ok(Box::new(FakeSession {
            fake: self.0.clone(),
            name: format!("{PREFIX}:{}", versions.token()),
            token: versions.token().to_owned(),
            proven: Default::default(),
        }))
    }

    fn key_id<'d>(&self, document: &'d SecretDocument, what: &str) -> Result<&'d str, TargetError> {
        document
            .required_str("key_id")
            .map_err(|problem| TargetError::invalid_secret(format!("{what}: {problem}")))
    }

    fn with_key(&self, base: &SecretDocument, key: &IssuedKey) -> SecretDocument {
        let mut document = base.clone();
        document.set_secret("api_key", &key.secret);
        document.set_str("key_id", &key.id);
        document
    }
}

#[async_trait]
impl ProviderSession for FakeSession {
    fn place(&self) -> &str {
        "the fake provider"
    }

    async fn list(&self) -> Result<Vec<LiveKey>, TargetError> {
        self.check_proven()?;
        // Lets a concurrent invocation run in between, as a network call would.
        tokio::task::yield_now().await;
        Ok(self
            .fake
            .state()
            .live
            .iter()
            .map(|(id, (name, _))| LiveKey {
                id: id.clone(),
                this_secret: name.starts_with(&format!("{PREFIX}:")),
                this_rotation: *name == self.name,
            })
            .collect())
    }

    async fn issue(&self) -> Result<IssuedKey, TargetError> {
        self.check_proven()?;
        // Lets a concurrent invocation run in between, as a network call would.
        tokio::task::yield_now().await;
        self.fake.issue_as(&self.name, &self.token)
    }

    async fn revoke(&self, key_id: &str) -> Result<(), TargetError> {
        self.check_proven()?;
        // Lets a concurrent invocation run in between, as a network call would.
        tokio::task::yield_now().await;
        let mut state = self.fake.state();
        state.revoked += 1;
        state.live.remove(key_id);
        if std::mem::take(&mut state.lose_next_revoke_answer) {
            return Err(TargetError::unreachable("connection reset"));
        }
        Ok(())
    }

    async fn authenticate(&self, document: &SecretDocument) -> Result<Option<String>, TargetError> {
        let key = document
            .required_secret("api_key")
            .map_err(|problem| TargetError::invalid_secret(problem.to_string()))?;
        let mut state = self.fake.state();
        // The first call proves the current key; the trouble steered by a test is for the
        // pending one.
        if self.proven.load(std::sync::atomic::Ordering::Relaxed) {
            state.authentications += 1;
            if state.reject_authentications > 0 {
                state.reject_authentications -= 1;
                return Err(TargetError::rejected("401 Unauthorized"));
            }
        }
        let id = state
            .live
            .iter()
            .find(|(_, (_, secret))| secret == key.expose_secret())
            .map(|(id, _)| id.clone())
            .ok_or_else(|| TargetError::rejected("401 Unauthorized"))?;
        self.proven
            .store(true, std::sync::atomic::Ordering::Relaxed);
        // The fake says which key called, as the reference provider's `GET /whoami` does.
        Ok(Some(id))
    }
}

struct Bench {
    fake: Arc<Fake>,
    store: Arc<InMemoryStore>,
    rotation: Rotation<ApiKeyTarget>,
    arn: String,
    rotations: u32,
}

impl Bench {
    fn new(test_retry: Duration) -> Bench {
        Self::with_first_key(test_retry, &format!("{PREFIX}:initial"))
    }

    /// A secret whose first key, made before any rotation, is named `first_key_name`.
    fn with_first_key(test_retry: Duration, first_key_name: &str) -> Bench {
        let fake = Arc::new(Fake::default());
        let first = fake
            .issue_as(first_key_name, "initial")
            .expect("the first key");
        let store = Arc::new(InMemoryStore::new());
        let arn = store.create_secret(
            "api",
            &json!({
                "api_key": first.secret.expose_secret(),
                "key_id": first.id,
                "endpoint": "kept",
            })
            .to_string(),
        );
        let target = ApiKeyTarget::new(Box::new(FakeProvider(fake.clone())), test_retry);
        let rotation = Rotation::new(store.clone() as Arc<dyn SecretStore>, target);
        Bench {
            fake,
            store,
            rotation,
            arn,
            rotations: 0,
        }
    }

    fn start(&mut self) -> String {
        self.rotations += 1;
        let token = format!("00000000-0000-4000-8000-{:012}", self.rotations);
        self.store
            .start_rotation(&self.arn, &token)
            .expect("RotateSecret");
        token
    }

    async fn step(&self, step: &str, token: &str) -> Result<(), RotationError> {
        let event = json!({"Step": step, "SecretId": self.arn, "ClientRequestToken": token});
        self.rotation.handle(&event).await.map(|_| ())
    }

    async fn steps(&self, token: &str, steps: &[&str]) {
        for step in steps {
            self.step(step, token)
                .await
                .unwrap_or_else(|error| panic!("{step} failed: {error}"));
        }
    }

    async fn rotate(&mut self) -> String {
        let token = self.start();
        self.steps(&token, &STEPS).await;
        token
    }

    fn value(&self, version: &str) -> Value {
        let text = self
            .store
            .value_of_version(&self.arn, version)
            .expect("a version with a value");
        serde_json::from_str(&text).expect("JSON")
    }

    fn key_id_of(&self, version: &str) -> String {
        self.value(version)["key_id"]
            .as_str()
            .expect("a key id")
            .to_owned()
    }

    fn version_with(&self, label: &str) -> String {
        self.store
            .labels(&self.arn)
            .into_iter()
            .find(|(_, labels)| labels.iter().any(|l| l == label))
            .map(|(version, _)| version)
            .expect("a labelled version")
    }

    fn most_live(&self) -> usize {
        self.fake.state().most_live
    }
}

#[tokio::test]
async fn three_rotations_keep_the_previous_key_live_and_revoke_the_one_before() {
    let mut bench = Bench::new(Duration::ZERO);
    let mut key_ids = vec![bench.key_id_of(&bench.version_with("AWSCURRENT"))];
    for round in 1..=3 {
        let token = bench.rotate().await;
        assert_eq!(bench.version_with("AWSCURRENT"), token, "round {round}");
        let new_id = bench.key_id_of(&token);
        assert!(
            bench.fake.is_live(&new_id),
            "round {round}: the new key is live"
        );
        let previous = key_ids.last().expect("a previous key");
        assert!(
            bench.fake.is_live(previous),
            "round {round}: the previous key stays live for one more period"
        );
        if let Some(before) = key_ids.iter().rev().nth(1) {
            assert!(
                !bench.fake.is_live(before),
                "round {round}: the one before is revoked"
            );
        }
        assert_eq!(bench.value(&token)["endpoint"], "kept");
        key_ids.push(new_id);
    }
    assert_eq!(bench.most_live(), 2, "never more than two live keys");
}

#[tokio::test]
async fn a_first_key_made_by_hand_is_retired_by_id_once_it_is_the_one_before() {
    let mut bench = Bench::with_first_key(Duration::ZERO, "made-by-hand");
    let first_id = bench.key_id_of(&bench.version_with("AWSCURRENT"));
    bench.rotate().await;
    assert!(bench.fake.is_live(&first_id), "still the previous key");
    bench.rotate().await;
    assert!(
        !bench.fake.is_live(&first_id),
        "revoked by the second rotation"
    );
    assert_eq!(bench.fake.state().live.len(), 2);
}

#[tokio::test]
async fn a_lost_issue_answer_is_adopted_when_the_provider_honours_idempotency() {
    let mut bench = Bench::new(Duration::ZERO);
    bench.rotate().await;
    bench.fake.state().idempotent = true;
    bench.fake.state().lose_next_issue_answer = true;
    let token = bench.start();
    let lost = bench.step("createSecret", &token).await;
    assert!(lost.is_err(), "the first attempt fails as if it crashed");
    bench.steps(&token, &STEPS).await;

    let name = format!("{PREFIX}:{token}");
    let named: Vec<String> = bench
        .fake
        .live_names()
        .into_iter()
        .filter(|n| *n == name)
        .collect();
    assert_eq!(
        named.len(),
        1,
        "exactly one key for the rotation, no orphan"
    );
    assert_eq!(
        bench.fake.state().issued,
        3,
        "the lost key itself was adopted"
    );
    assert_eq!(bench.most_live(), 2);
}

#[tokio::test]
async fn a_lost_issue_answer_leaves_no_orphan_when_the_provider_ignores_idempotency() {
    let mut bench = Bench::new(Duration::ZERO);
    bench.rotate().await;
    bench.fake.state().lose_next_issue_answer = true;
    let token = bench.start();
    assert!(bench.step("createSecret", &token).await.is_err());
    bench.steps(&token, &STEPS).await;

    let pending_id = bench.key_id_of(&token);
    let live: Vec<String> = bench.fake.state().live.keys().cloned().collect();
    assert_eq!(
        live.len(),
        2,
        "the current key and the previous one: {live:?}"
    );
    assert!(live.contains(&pending_id));
    assert_eq!(
        bench.most_live(),
        3,
        "without idempotency or a limit, the orphan lives until the new key is issued"
    );
}

#[tokio::test]
async fn a_provider_limit_keeps_two_keys_even_when_idempotency_is_ignored() {
    let mut bench = Bench::new(Duration::ZERO);
    bench.fake.state().limit = Some(2);
    bench.rotate().await;
    bench.fake.state().lose_next_issue_answer = true;
    let token = bench.start();
    assert!(bench.step("createSecret", &token).await.is_err());
    bench.steps(&token, &STEPS).await;

    assert_eq!(bench.fake.state().live.len(), 2);
    assert!(bench.fake.is_live(&bench.key_id_of(&token)));
    assert_eq!(
        bench.most_live(),
        2,
        "the orphan is revoked before asking again"
    );
}

#[tokio::test]
async fn a_create_secret_interrupted_after_revoking_converges_when_retried() {
    let mut bench = Bench::new(Duration::ZERO);
    bench.rotate().await;
    bench.fake.state().lose_next_revoke_answer = true;
    let token = bench.start();
    assert!(bench.step("createSecret", &token).await.is_err());
    assert_eq!(
        bench.fake.state().live.len(),
        1,
        "only the current key is left"
    );
    bench.steps(&token, &STEPS).await;
    assert_eq!(bench.fake.state().live.len(), 2);
    assert_eq!(bench.fake.state().issued, 3, "one key issued per rotation");
}

#[tokio::test]
async fn keys_of_other_secrets_at_the_same_provider_are_never_revoked() {
    let mut bench = Bench::new(Duration::ZERO);
    let other = bench
        .fake
        .issue_as("billing:token", "billing")
        .expect("another secret's key");
    bench.rotate().await;
    bench.rotate().await;
    assert!(bench.fake.is_live(&other.id));
}

#[tokio::test]
async fn set_secret_fails_when_the_pending_key_was_revoked_since_it_was_issued() {
    let mut bench = Bench::new(Duration::ZERO);
    let token = bench.start();
    bench.steps(&token, &["createSecret"]).await;
    let pending_id = bench.key_id_of(&token);
    bench.fake.state().live.remove(&pending_id);
    let error = bench
        .step("setSecret", &token)
        .await
        .expect_err("a revoked pending key");
    assert_eq!(error.error_type(), "TargetRejected");
    assert!(error.to_string().contains(&pending_id), "{error}");
}

#[tokio::test]
async fn test_secret_retries_rejections_within_its_bound() {
    let mut bench = Bench::new(Duration::from_secs(2));
    bench.fake.state().reject_authentications = 2;
    let token = bench.start();
    bench.steps(&token, &STEPS).await;
    assert_eq!(bench.fake.state().authentications, 3);
}

#[tokio::test]
async fn test_secret_gives_up_once_its_bound_is_spent() {
    let mut bench = Bench::new(Duration::ZERO);
    bench.fake.state().reject_authentications = 1;
    let token = bench.start();
    bench.steps(&token, &["createSecret", "setSecret"]).await;
    let error = bench
        .step("testSecret", &token)
        .await
        .expect_err("rejected once, no retries allowed");
    assert_eq!(error.error_type(), "TargetRejected");
    assert!(error.to_string().contains("after 1 attempt"), "{error}");
    assert!(!error.to_string().contains("secret-"), "no key in: {error}");
}

#[tokio::test]
async fn a_current_version_without_a_key_id_is_refused_before_any_provider_call() {
    let fake = Arc::new(Fake::default());
    let store = Arc::new(InMemoryStore::new());
    let arn = store.create_secret("api", r#"{"api_key": "hand-made"}"#);
    let target = ApiKeyTarget::new(Box::new(FakeProvider(fake.clone())), Duration::ZERO);
    let rotation = Rotation::new(store.clone() as Arc<dyn SecretStore>, target);
    store.start_rotation(&arn, "token-1").expect("RotateSecret");
    let event = json!({"Step": "createSecret", "SecretId": arn, "ClientRequestToken": "token-1"});
    let error = rotation.handle(&event).await.expect_err("no key id");
    assert_eq!(error.error_type(), "InvalidSecret");
    assert!(error.to_string().contains("key_id"), "{error}");
    assert_eq!(fake.state().issued, 0);
}

#[tokio::test]
async fn duplicate_create_secrets_leave_one_pending_key_and_no_orphan() {
    let mut bench = Bench::new(Duration::ZERO);
    bench.rotate().await;
    let token = bench.start();
    let (one, other) = tokio::join!(
        bench.step("createSecret", &token),
        bench.step("createSecret", &token)
    );
    one.expect("one createSecret");
    other.expect("the other createSecret");
    assert_eq!(
        bench.fake.state().issued,
        4,
        "the first key, one rotation, and both duplicates"
    );
    bench.steps(&token, &STEPS[1..]).await;
    let live: Vec<String> = bench.fake.state().live.keys().cloned().collect();
    assert_eq!(live.len(), 2, "the new key and the previous one: {live:?}");
    assert!(live.contains(&bench.key_id_of(&token)));
}

/// Another secret's key at the same provider, named in that secret's namespace.
fn victims_key(bench: &Bench) -> IssuedKey {
    bench
        .fake
        .issue_as("billing:00000000-0000-4000-8000-00000000b111", "billing")
        .expect("another secret's key")
}

#[tokio::test]
async fn a_key_id_planted_in_previous_is_refused_and_nothing_is_revoked() {
    let mut bench = Bench::new(Duration::ZERO);
    bench.rotate().await;
    let victim = victims_key(&bench);
    // Someone who may write this secret stores a version recording the victim's key id with a
    // key of their own, then the genuine value again: the planted one becomes AWSPREVIOUS.
    let current = bench.value(&bench.version_with("AWSCURRENT"));
    let mut planted = current.clone();
    planted["key_id"] = json!(victim.id);
    bench
        .store
        .put_current(&bench.arn, "planted", &planted.to_string());
    bench
        .store
        .put_current(&bench.arn, "genuine-again", &current.to_string());
    let issued = bench.fake.state().issued;
    let revoked = bench.fake.state().revoked;

    let token = bench.start();
    let error = bench
        .step("createSecret", &token)
        .await
        .expect_err("refused");
    assert_eq!(error.error_type(), "InvalidSecret");
    let message = error.to_string();
    let genuine_id = current["key_id"].as_str().expect("an id");
    assert!(
        message.contains("AWSPREVIOUS")
            && message.contains(&victim.id)
            && message.contains(genuine_id),
        "names the recorded id and the key the version holds: {message}"
    );
    assert!(bench.fake.is_live(&victim.id), "the victim's key is live");
    assert_eq!(bench.fake.state().issued, issued, "nothing issued");
    assert_eq!(bench.fake.state().revoked, revoked, "nothing revoked");
}

#[tokio::test]
async fn a_current_version_whose_key_does_not_authenticate_is_refused_before_anything_changes() {
    let mut bench = Bench::new(Duration::ZERO);
    bench.rotate().await;
    let victim = victims_key(&bench);
    let mut current = bench.value(&bench.version_with("AWSCURRENT"));
    current["api_key"] = json!("not-a-live-key");
    bench
        .store
        .put_current(&bench.arn, "broken", &current.to_string());
    let issued = bench.fake.state().issued;
    let revoked = bench.fake.state().revoked;

    let token = bench.start();
    let error = bench
        .step("createSecret", &token)
        .await
        .expect_err("refused");
    assert_eq!(error.error_type(), "InvalidSecret");
    assert!(
        error.to_string().contains("does not authenticate"),
        "{error}"
    );
    assert!(bench.fake.is_live(&victim.id));
    assert_eq!(bench.fake.state().issued, issued);
    assert_eq!(bench.fake.state().revoked, revoked);
}

#[tokio::test]
async fn a_current_version_recording_another_keys_id_is_refused_before_anything_changes() {
    let mut bench = Bench::new(Duration::ZERO);
    bench.rotate().await;
    let victim = victims_key(&bench);
    let mut current = bench.value(&bench.version_with("AWSCURRENT"));
    current["key_id"] = json!(victim.id);
    bench
        .store
        .put_current(&bench.arn, "claims-victim", &current.to_string());
    let revoked = bench.fake.state().revoked;

    let token = bench.start();
    let error = bench
        .step("createSecret", &token)
        .await
        .expect_err("refused");
    assert_eq!(error.error_type(), "InvalidSecret");
    assert!(error.to_string().contains(&victim.id), "{error}");
    assert!(bench.fake.is_live(&victim.id));
    assert_eq!(bench.fake.state().revoked, revoked);
}
