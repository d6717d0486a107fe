//! Trust boundaries, attacked as someone allowed to write one secret attached to the function
//! would: the real `rotate-api-key` binary under the Lambda Runtime API emulator, moto as Secrets
//! Manager (and IAM and STS), and the reference HTTP provider. Each attack is refused with an
//! error naming what did not match, or finds nothing to act on, and the victim's keys are
//! exactly as they were.

mod support;

use std::collections::BTreeSet;

use rotation_tests::api_provider::ReferenceProvider;
use rotation_tests::leaks::assert_no_secret_in;
use rotation_tests::orchestrator::Orchestrator;
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack;
use serde_json::{json, Value};
use support::{caller_arn, http_environment, http_secret, iam_client, key_ids, Fixture, IamUser};

/// The error createSecret answered with, as `(errorType, errorMessage)`.
async fn refused_create_secret(fixture: &Fixture) -> (String, String) {
    let token = fixture.start_rotation().await;
    let before = fixture.moto.snapshot(&fixture.arn).await;
    let (error_type, message) = fixture
        .step(&token, "createSecret")
        .await
        .failed()
        .expect("createSecret is refused");
    assert_eq!(
        fixture.moto.snapshot(&fixture.arn).await,
        before,
        "nothing was written to the attacker's secret: {message}"
    );
    (error_type, message)
}

/// The secret's name with its random suffix: the last part of its ARN.
fn name_of(arn: &str) -> &str {
    arn.rsplit_once(":secret:").map_or(arn, |(_, name)| name)
}

// ----- aws-iam -----

async fn iam_environment() -> Vec<(String, String)> {
    vec![
        ("API_KEY_PROVIDER".to_owned(), "aws-iam".to_owned()),
        // IAM and STS calls go to moto too.
        (
            "AWS_ENDPOINT_URL".to_owned(),
            stack::moto().await.endpoint(),
        ),
    ]
}

#[tokio::test]
async fn an_iam_secret_naming_another_user_with_its_own_key_is_refused_and_the_victim_keeps_its_keys(
) {
    let iam = iam_client().await;
    let victim = IamUser::create(&iam, "svc-victim", "/").await;
    let attacker = IamUser::create(&iam, "svc-mallory", "/").await;
    // The attacker may write this secret: it names the victim and holds the attacker's key.
    let secret = json!({
        "user_name": victim.name,
        "access_key_id": attacker.key_id,
        "secret_access_key": attacker.secret,
    });
    let fixture = Fixture::start("iam-claims-victim", &secret, &iam_environment().await).await;
    let victim_keys = key_ids(&iam, &victim.name).await;
    let attacker_keys = key_ids(&iam, &attacker.name).await;

    let (error_type, message) = refused_create_secret(&fixture).await;
    assert_eq!(error_type, "InvalidSecret", "{message}");
    assert!(
        message.contains(&format!("IAM user {}", victim.name))
            && message.contains(&attacker.arn)
            && message.contains(&attacker.key_id),
        "the error names the user claimed and the user the key signs as: {message}"
    );
    assert_no_secret_in(
        &message,
        std::slice::from_ref(&attacker.secret),
        "the error",
    );

    assert_eq!(
        key_ids(&iam, &victim.name).await,
        victim_keys,
        "victim's keys"
    );
    assert_eq!(
        caller_arn(&victim.key_id, &victim.secret).await,
        victim.arn,
        "the victim's key still signs as the victim"
    );
    assert_eq!(key_ids(&iam, &attacker.name).await, attacker_keys);
    assert_no_secret_in(
        &fixture.function.output(),
        &[victim.secret, attacker.secret],
        "the function's output",
    );
}

#[tokio::test]
async fn an_iam_pending_version_naming_another_user_is_refused_and_the_victim_keeps_its_keys() {
    let iam = iam_client().await;
    let owner = IamUser::create(&iam, "svc-owner", "/").await;
    let victim = IamUser::create(&iam, "svc-victim", "/").await;
    let secret = json!({
        "user_name": owner.name,
        "access_key_id": owner.key_id,
        "secret_access_key": owner.secret,
    });
    let fixture = Fixture::start("iam-pending-victim", &secret, &iam_environment().await).await;
    let token = fixture.start_rotation().await;
    // A pending version written by hand: the victim's name, the owner's own key.
    let tampered = json!({
        "user_name": victim.name,
        "access_key_id": owner.key_id,
        "secret_access_key": owner.secret,
    });
    fixture
        .moto
        .put_pending(&fixture.arn, &token, &tampered.to_string())
        .await;
    let victim_keys = key_ids(&iam, &victim.name).await;
    let owner_keys = key_ids(&iam, &owner.name).await;

    for step in ["setSecret", "testSecret"] {
        let (error_type, message) = fixture
            .step(&token, step)
            .await
            .failed()
            .unwrap_or_else(|other| panic!("{step} is refused, got {other}"));
        assert_eq!(error_type, "InvalidSecret", "{step}: {message}");
        assert!(
            message.contains(&format!("IAM user {}", victim.name)) && message.contains(&owner.name),
            "{step}: the error names both users: {message}"
        );
    }
    assert_eq!(key_ids(&iam, &victim.name).await, victim_keys);
    assert_eq!(key_ids(&iam, &owner.name).await, owner_keys);
    assert_eq!(caller_arn(&victim.key_id, &victim.secret).await, victim.arn);
}

// ----- http -----

/// A victim secret at `provider`, rotated twice by the function of `fixture` so that it has a
/// current and a previous key, both issued by the function. Returns its ARN.
async fn rotated_victim(provider: &ReferenceProvider, fixture: &Fixture, name: &str) -> String {
    let arn = fixture
        .moto
        .create_secret(name, &http_secret(provider).to_string())
        .await;
    let orchestrator = Orchestrator {
        moto: &fixture.moto,
        function: &fixture.function,
    };
    for _ in 0..2 {
        orchestrator.rotate(&arn).await.expect_success();
    }
    arn
}

/// The keys of `arn` in `AWSCURRENT` and `AWSPREVIOUS`, as `(id, key)`.
async fn keys_of(moto: &MotoSecretsManager, arn: &str) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    for stage in ["AWSCURRENT", "AWSPREVIOUS"] {
        let value: Value = moto
            .value_at(arn, stage)
            .await
            .unwrap_or_else(|| panic!("{stage} has a value"));
        keys.push((
            value["key_id"].as_str().expect("a key id").to_owned(),
            value["api_key"].as_str().expect("a key").to_owned(),
        ));
    }
    keys
}

/// Both keys of the victim are live and authenticate, and the provider lists exactly the keys
/// it listed before.
async fn assert_victim_untouched(
    provider: &ReferenceProvider,
    victim_keys: &[(String, String)],
    live_before: &[rotation_tests::api_provider::KeyRecord],
) {
    for (id, key) in victim_keys {
        assert!(provider.is_live(id), "the victim's key {id} is live");
        assert!(provider.authenticates(key).await, "{id} authenticates");
    }
    assert_eq!(
        provider.live_keys(),
        live_before,
        "no key issued or revoked"
    );
}

/// The function for the attacker's secret, sharing a provider with a victim's secret that the
/// same function rotates.
async fn attacker_and_victim(
    secret_of_attacker: impl FnOnce(&ReferenceProvider, &str) -> Value,
) -> (ReferenceProvider, Fixture, Vec<(String, String)>) {
    let provider = ReferenceProvider::start().await;
    let env = http_environment(&provider, 2);
    // The fixture starts with a placeholder secret, replaced below by the attacker's.
    let mut fixture = Fixture::start("api-key-attacker", &http_secret(&provider), &env).await;
    let victim_arn = rotated_victim(
        &provider,
        &fixture,
        &MotoSecretsManager::unique_name("api-key-victim"),
    )
    .await;
    let victim_keys = keys_of(&fixture.moto, &victim_arn).await;
    let attacker = secret_of_attacker(&provider, name_of(&victim_arn));
    fixture.arn = fixture
        .moto
        .create_secret(
            &MotoSecretsManager::unique_name("api-key-attacker"),
            &attacker.to_string(),
        )
        .await;
    (provider, fixture, victim_keys)
}

#[tokio::test]
async fn an_http_secret_claiming_another_secrets_prefix_is_refused_and_the_victims_keys_stay() {
    let (provider, fixture, victim_keys) = attacker_and_victim(|provider, victim_name| {
        let (id, key) = provider.issue_directly("attackers-own");
        json!({ "api_key": key, "key_id": id, "key_name_prefix": victim_name })
    })
    .await;
    let live_before = provider.live_keys();

    let (error_type, message) = refused_create_secret(&fixture).await;
    assert_eq!(error_type, "InvalidSecret", "{message}");
    assert!(
        message.contains("key_name_prefix") && message.contains(name_of(&fixture.arn)),
        "the error names the claimed prefix and the secret's own: {message}"
    );
    assert_victim_untouched(&provider, &victim_keys, &live_before).await;
    assert_no_secret_in(&message, &provider.every_secret(), "the error");
}

#[tokio::test]
async fn an_http_key_id_planted_in_previous_is_refused_and_the_victims_key_stays() {
    let (provider, fixture, victim_keys) = attacker_and_victim(|provider, _| {
        let (id, key) = provider.issue_directly("attackers-own");
        json!({ "api_key": key, "key_id": id })
    })
    .await;
    let own = fixture.value_at("AWSCURRENT").await;
    let own_id = own["key_id"].as_str().expect("an id").to_owned();
    let victim_current_id = victim_keys[0].0.clone();
    // The attacker writes a version recording the victim's current key id with the attacker's
    // own key, then the genuine value again: the planted version becomes AWSPREVIOUS.
    let mut planted = own.clone();
    planted["key_id"] = json!(victim_current_id);
    for value in [&planted, &own] {
        fixture
            .moto
            .client()
            .put_secret_value()
            .secret_id(&fixture.arn)
            .secret_string(value.to_string())
            .send()
            .await
            .expect("PutSecretValue");
    }
    assert_eq!(
        fixture.value_at("AWSPREVIOUS").await["key_id"],
        json!(victim_current_id),
        "planted"
    );
    let live_before = provider.live_keys();

    let (error_type, message) = refused_create_secret(&fixture).await;
    assert_eq!(error_type, "InvalidSecret", "{message}");
    assert!(
        message.contains("AWSPREVIOUS")
            && message.contains(&victim_current_id)
            && message.contains(&own_id),
        "the error names the id recorded and the key the version holds: {message}"
    );
    assert_victim_untouched(&provider, &victim_keys, &live_before).await;
    assert_no_secret_in(&message, &provider.every_secret(), "the error");
}

#[tokio::test]
async fn keys_of_a_secret_whose_name_extends_anothers_survive_the_others_rotations() {
    // Secret `<name>-<suffix>` rotated with the old `-` separator would have claimed the keys of
    // secret `<name>-<suffix>-x`, whose names also start with `<name>-<suffix>-`.
    let provider = ReferenceProvider::start().await;
    let env = http_environment(&provider, 2);
    let fixture = Fixture::start("api-key-short", &http_secret(&provider), &env).await;
    let victim_arn =
        rotated_victim(&provider, &fixture, &format!("{}-x", name_of(&fixture.arn))).await;
    assert!(
        name_of(&victim_arn).starts_with(&format!("{}-", name_of(&fixture.arn))),
        "{victim_arn} extends {}",
        fixture.arn
    );
    let victim_keys = keys_of(&fixture.moto, &victim_arn).await;

    for _ in 0..3 {
        fixture.rotate().await.expect_success();
    }
    for (id, key) in &victim_keys {
        assert!(provider.is_live(id), "the victim's key {id} is live");
        assert!(provider.authenticates(key).await, "{id} authenticates");
    }
    let shorter = keys_of(&fixture.moto, &fixture.arn).await;
    let live: BTreeSet<String> = provider.live_keys().into_iter().map(|k| k.id).collect();
    let expected: BTreeSet<String> = victim_keys
        .iter()
        .chain(&shorter)
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(
        live, expected,
        "each secret's current and previous key, nothing else"
    );
}
