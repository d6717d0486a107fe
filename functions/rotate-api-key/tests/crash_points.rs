//! The crash matrix for `rotate-api-key`: for each provider and each side effect a rotation
//! makes, a test build of the binary aborts right after it; the rotation retried as Secrets
//! Manager would must converge with the new key and the previous one live and no orphan, the
//! current or the pending key working at every moment in between.

mod support;

use async_trait::async_trait;
use rotation::crash::points;
use rotation_tests::api_provider::ReferenceProvider;
use rotation_tests::crash_matrix::{
    crash_then_converge, duplicate_steps_converge, rotate_normally, Credentials,
};
use rotation_tests::leaks::assert_no_secret_in;
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack;
use serde_json::{json, Value};
use support::{
    caller_arn, connect_moto, http_environment, http_secret, iam_client, IamUser, BINARY,
};

const POINTS: [&str; 5] = [
    rotate_api_key::crash_points::KEY_REVOKED,
    rotate_api_key::crash_points::KEY_ISSUED,
    points::PENDING_STORED,
    points::CURRENT_MOVED,
    points::PENDING_REMOVED,
];

struct ProviderKeys<'a>(&'a ReferenceProvider);

#[async_trait]
impl Credentials for ProviderKeys<'_> {
    async fn work(&self, secret: &Value) -> bool {
        match secret["api_key"].as_str() {
            Some(key) => self.0.authenticates(key).await,
            None => false,
        }
    }
}

#[tokio::test]
async fn the_http_provider_converges_after_a_crash_at_every_point() {
    let moto = connect_moto().await;
    for point in POINTS {
        let provider = ReferenceProvider::start().await;
        let mut env = moto.function_environment();
        env.extend(http_environment(&provider, 2));
        let arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("key-crash"),
                &http_secret(&provider).to_string(),
            )
            .await;
        // A first rotation leaves a previous key, which the crashed one must revoke.
        let mut output = rotate_normally(&moto, BINARY, &env, &arn).await;
        output.push_str(
            &crash_then_converge(&moto, BINARY, &env, &arn, point, &ProviderKeys(&provider)).await,
        );
        let live = provider.live_keys();
        assert_eq!(
            live.len(),
            2,
            "{point}: the current and previous keys, no orphan: {live:?}"
        );
        for stage in ["AWSCURRENT", "AWSPREVIOUS"] {
            let id = moto.value_at(&arn, stage).await.expect("a value")["key_id"].clone();
            assert!(
                live.iter().any(|key| json!(key.id) == id),
                "{point}: {stage} is live"
            );
        }
        assert!(
            provider.most_live() <= 2,
            "{point}: never more than two live keys"
        );
        assert_no_secret_in(&output, &provider.every_secret(), point);
    }
}

struct IamKeys {
    user_arn: String,
}

#[async_trait]
impl Credentials for IamKeys {
    async fn work(&self, secret: &Value) -> bool {
        match (
            secret["access_key_id"].as_str(),
            secret["secret_access_key"].as_str(),
        ) {
            (Some(id), Some(key)) => caller_arn(id, key).await == self.user_arn,
            _ => false,
        }
    }
}

#[tokio::test]
async fn the_iam_provider_converges_after_a_crash_at_every_point() {
    let moto = connect_moto().await;
    let iam = iam_client().await;
    let mut env = moto.function_environment();
    env.push(("API_KEY_PROVIDER".to_owned(), "aws-iam".to_owned()));
    env.push((
        "AWS_ENDPOINT_URL".to_owned(),
        stack::moto().await.endpoint(),
    ));
    for point in POINTS {
        let created = IamUser::create(&iam, "svc-crash", "/").await;
        let user_arn = created.arn.clone();
        let secret = created.secret();
        let arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("iam-crash"),
                &secret.to_string(),
            )
            .await;
        let mut output = rotate_normally(&moto, BINARY, &env, &arn).await;
        output.push_str(
            &crash_then_converge(&moto, BINARY, &env, &arn, point, &IamKeys { user_arn }).await,
        );
        let held = iam
            .list_access_keys()
            .user_name(&created.name)
            .send()
            .await
            .expect("iam:ListAccessKeys")
            .access_key_metadata()
            .len();
        assert_eq!(held, 2, "{point}: the current and previous keys, no orphan");
        let mut secrets = moto.field_values(&arn, "secret_access_key").await;
        secrets.push(created.secret.clone());
        assert_no_secret_in(&output, &secrets, point);
    }
}

/// With a provider that honours `Idempotency-Key`, two createSecrets at once get the same key.
/// (Without it, the loser of the `PutSecretValue` race revokes its key; moto, unlike Secrets
/// Manager, lets the second write of a version replace the first instead of refusing it, so that
/// case is proven against the strict in-memory store in the unit tests.)
#[tokio::test]
async fn duplicate_invocations_of_every_step_leave_one_correct_end_state() {
    let moto = connect_moto().await;
    for idempotency in [true] {
        let provider = ReferenceProvider::start().await;
        provider.set_idempotency(idempotency);
        let mut env = moto.function_environment();
        env.extend(http_environment(&provider, 2));
        let arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("key-dup"),
                &http_secret(&provider).to_string(),
            )
            .await;
        for round in 1..=2 {
            duplicate_steps_converge(&moto, BINARY, &env, &arn, &ProviderKeys(&provider)).await;
            let live = provider.live_keys();
            assert_eq!(
                live.len(),
                2,
                "idempotency {idempotency}, round {round}: no orphan: {live:?}"
            );
        }
    }
}
