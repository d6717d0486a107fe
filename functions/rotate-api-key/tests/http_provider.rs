//! The `http` provider end to end: the real `rotate-api-key` binary under the Lambda Runtime API
//! emulator, moto as Secrets Manager, and the reference provider standing in for a SaaS API.

mod support;

use std::time::Duration;

use rotation_tests::api_provider::{ProviderEvent, ReferenceProvider};
use rotation_tests::leaks::assert_no_secret_in;
use rotation_tests::runtime_api::Invocation;
use support::{http_environment, http_secret, kill_function_on, Fixture};

/// The provider, and the function rotating a secret whose first key was issued by hand.
async fn start(env: &[(&str, &str)]) -> (ReferenceProvider, Fixture) {
    let provider = ReferenceProvider::start().await;
    let mut all = http_environment(&provider, 2);
    all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let fixture = Fixture::start("api-key", &http_secret(&provider), &all).await;
    (provider, fixture)
}

/// Nothing the test saw (keys, the admin key, rotation tokens) is in the function's output or in
/// `errors`.
fn assert_nothing_leaked(provider: &ReferenceProvider, fixture: &Fixture, errors: &[String]) {
    let mut secrets = provider.every_secret();
    secrets.extend(fixture.rotation_tokens());
    assert_no_secret_in(
        &fixture.function.output(),
        &secrets,
        "the function's output",
    );
    for error in errors {
        assert_no_secret_in(error, &secrets, "an error message");
    }
}

/// Three rotations: after each, the new key authenticates, the previous one still does, the one
/// before is revoked, and no more than two keys were ever live.
async fn three_rotations(provider: &ReferenceProvider, fixture: &Fixture) {
    let mut keys = vec![fixture.field_at("AWSCURRENT", "api_key").await];
    for round in 1..=3 {
        let record = fixture.rotate().await;
        record.expect_success();
        let new_key = fixture.field_at("AWSCURRENT", "api_key").await;
        let new_id = fixture.field_at("AWSCURRENT", "key_id").await;
        assert!(!keys.contains(&new_key), "round {round}: a new key");
        assert!(
            provider.authenticates(&new_key).await,
            "round {round}: the new key works"
        );
        let previous = keys.last().expect("a previous key");
        assert!(
            provider.authenticates(previous).await,
            "round {round}: the previous key still works"
        );
        if let Some(before) = keys.iter().rev().nth(1) {
            assert!(
                !provider.authenticates(before).await,
                "round {round}: the key before the previous one is revoked"
            );
        }
        let name = provider
            .live_keys()
            .into_iter()
            .find(|key| key.id == new_id)
            .expect("the new key is listed")
            .name;
        let secret_name = fixture
            .arn
            .rsplit_once(":secret:")
            .map_or(fixture.arn.as_str(), |(_, name)| name);
        assert_eq!(
            name,
            format!("{secret_name}:{}", record.token),
            "round {round}: the key is named for its secret and its rotation"
        );
        assert_eq!(fixture.value_at("AWSCURRENT").await["service"], "billing");
        assert!(
            provider.most_live() <= 2,
            "round {round}: at most two live keys"
        );
        keys.push(new_key);
    }
    assert_eq!(provider.live_keys().len(), 2);
}

#[tokio::test]
async fn three_rotations_with_the_current_key_administering_itself() {
    let (provider, fixture) = start(&[]).await;
    three_rotations(&provider, &fixture).await;
    assert_nothing_leaked(&provider, &fixture, &[]);
    let output = fixture.function.output();
    assert!(output.contains("createSecret: issued key"), "{output}");
    assert!(output.contains("testSecret: key"), "{output}");
}

#[tokio::test]
async fn three_rotations_with_an_admin_key_from_another_secret() {
    let provider = ReferenceProvider::start().await;
    let moto = support::connect_moto().await;
    let admin_arn = moto
        .create_secret(
            &rotation_tests::secrets_manager::MotoSecretsManager::unique_name("api-admin"),
            &serde_json::json!({ "api_key": provider.admin_key() }).to_string(),
        )
        .await;
    let mut env = http_environment(&provider, 2);
    env.push(("ADMIN_SECRET_ARN".to_owned(), admin_arn));
    let fixture = Fixture::start("api-key", &http_secret(&provider), &env).await;
    three_rotations(&provider, &fixture).await;
    assert_nothing_leaked(&provider, &fixture, &[]);
}

/// Kills the function right after `event` during the createSecret of a second rotation, then lets
/// the orchestrator run the rotation again: it must converge with exactly the current and the
/// previous key live.
async fn crash_then_converge(
    provider: &ReferenceProvider,
    fixture: &Fixture,
    event: ProviderEvent,
) {
    fixture.rotate().await.expect_success();
    let previous_key = fixture.field_at("AWSCURRENT", "api_key").await;

    kill_function_on(provider, &fixture.function, event);
    let crashed = fixture.rotate().await;
    assert!(
        matches!(crashed.steps[0].invocation, Invocation::Crashed { .. }),
        "createSecret died at {event:?}: {:?}",
        crashed.steps[0].invocation
    );
    let retried = fixture.retry(&crashed.token).await;
    retried.expect_success();

    let current_id = fixture.field_at("AWSCURRENT", "key_id").await;
    let current_key = fixture.field_at("AWSCURRENT", "api_key").await;
    let live = provider.live_keys();
    assert_eq!(
        live.len(),
        2,
        "the new key and the previous one, no orphan: {live:?}"
    );
    assert!(live.iter().any(|key| key.id == current_id));
    assert!(provider.authenticates(&current_key).await);
    assert!(provider.authenticates(&previous_key).await);
    let named_for_rotation = live
        .iter()
        .filter(|key| key.name.ends_with(&crashed.token))
        .count();
    assert_eq!(named_for_rotation, 1, "one key for the rotation: {live:?}");
    assert_nothing_leaked(provider, fixture, &[]);
}

#[tokio::test]
async fn a_crash_after_issue_converges_when_the_provider_honours_idempotency() {
    let (provider, fixture) = start(&[]).await;
    crash_then_converge(&provider, &fixture, ProviderEvent::Issued).await;
    assert!(
        provider.most_live() <= 2,
        "the orphan was adopted, not duplicated"
    );
}

#[tokio::test]
async fn a_crash_after_issue_converges_when_the_provider_ignores_idempotency() {
    let (provider, fixture) = start(&[]).await;
    provider.set_idempotency(false);
    crash_then_converge(&provider, &fixture, ProviderEvent::Issued).await;
}

#[tokio::test]
async fn a_crash_after_issue_keeps_two_live_keys_at_a_provider_that_caps_them() {
    let (provider, fixture) = start(&[]).await;
    provider.set_idempotency(false);
    provider.set_limit(Some(2));
    crash_then_converge(&provider, &fixture, ProviderEvent::Issued).await;
    assert!(provider.most_live() <= 2);
    let output = fixture.function.output();
    assert!(output.contains("refused a new key"), "{output}");
}

#[tokio::test]
async fn a_crash_after_revoke_converges_with_and_without_idempotency() {
    for idempotency in [true, false] {
        let (provider, fixture) = start(&[]).await;
        provider.set_idempotency(idempotency);
        crash_then_converge(&provider, &fixture, ProviderEvent::Revoked).await;
        assert!(provider.most_live() <= 2, "idempotency {idempotency}");
    }
}

#[tokio::test]
async fn provider_errors_are_retryable_name_the_status_and_lose_no_key() {
    let (provider, fixture) = start(&[]).await;
    let mut errors = Vec::new();
    for request in ["GET /keys", "POST /keys"] {
        provider.fail_next(request, 1);
        let record = fixture.rotate().await;
        let (error_type, message) = record
            .failure()
            .expect("a failed step")
            .invocation
            .clone()
            .failed()
            .expect("an error answer");
        assert_eq!(error_type, "TargetUnreachable", "{request}: {message}");
        assert!(
            message.contains(&format!("{request} at {}", provider.base_url()))
                && message.contains("500")
                && message.contains("internal error, please retry"),
            "{message}"
        );
        errors.push(message);
        fixture.retry(&record.token).await.expect_success();
        assert_eq!(provider.live_keys().len(), 2, "{request}");
    }
    assert!(provider.most_live() <= 2);
    assert_nothing_leaked(&provider, &fixture, &errors);
}

#[tokio::test]
async fn a_slow_provider_times_out_with_a_retryable_error_and_the_retry_adopts_the_key() {
    let (provider, fixture) = start(&[("API_TIMEOUT_SECONDS", "1")]).await;
    fixture.rotate().await.expect_success();
    // The key is issued, but its answer arrives after the function gave up.
    provider.slow_next("POST /keys", 1, Duration::from_millis(2500));
    let record = fixture.rotate().await;
    let (error_type, message) = record
        .failure()
        .expect("createSecret failed")
        .invocation
        .clone()
        .failed()
        .expect("an error answer");
    assert_eq!(error_type, "TargetUnreachable");
    assert!(
        message.contains("POST /keys") && message.contains("no answer within 1 s"),
        "{message}"
    );
    fixture.retry(&record.token).await.expect_success();
    assert_eq!(provider.live_keys().len(), 2);
    assert!(provider.most_live() <= 2, "the issued key was adopted");
    assert_nothing_leaked(&provider, &fixture, &[message]);
}

/// Over HTTPS, the provider's certificate is verified against `CA_BUNDLE` (beside the public
/// roots), by host name or IP address; a certificate from another CA is refused with a clear,
/// retryable error before any key is issued.
#[tokio::test]
async fn an_https_provider_is_verified_and_a_wrong_ca_is_refused() {
    let tls = rotation_tests::stack::tls().await;
    let mut provider = ReferenceProvider::start().await;
    let port = provider
        .serve_https(tls.server_cert_path(), tls.server_key_path())
        .await;
    for host in ["localhost", "127.0.0.1"] {
        let env = [
            ("API_KEY_PROVIDER".to_owned(), "http".to_owned()),
            ("API_BASE_URL".to_owned(), format!("https://{host}:{port}")),
            (
                "CA_BUNDLE".to_owned(),
                tls.ca_cert_path().display().to_string(),
            ),
        ];
        let fixture = Fixture::start("api-key-tls", &http_secret(&provider), &env).await;
        fixture.rotate().await.expect_success();
        let key = fixture.field_at("AWSCURRENT", "api_key").await;
        assert!(
            provider.authenticates(&key).await,
            "{host}: the new key works"
        );
    }

    let issued = provider.live_keys().len();
    let env = [
        ("API_KEY_PROVIDER".to_owned(), "http".to_owned()),
        (
            "API_BASE_URL".to_owned(),
            format!("https://localhost:{port}"),
        ),
        (
            "CA_BUNDLE".to_owned(),
            tls.wrong_ca_cert_path().display().to_string(),
        ),
    ];
    let fixture = Fixture::start("api-key-wrong-ca", &http_secret(&provider), &env).await;
    let record = fixture.rotate().await;
    let (error_type, message) = record
        .failure()
        .expect("createSecret fails")
        .invocation
        .clone()
        .failed()
        .expect("an error answer");
    assert_eq!(error_type, "TargetUnreachable", "{message}");
    // The first call proves the current key works: the test call.
    assert!(
        message.contains("GET /whoami") && message.to_lowercase().contains("certificate"),
        "{message}"
    );
    assert_eq!(
        provider.live_keys().len(),
        issued + 1,
        "only the hand-made key was added"
    );
}
