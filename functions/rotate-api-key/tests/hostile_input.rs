//! Hostile input against the real `rotate-api-key` binary: bad events, unusable secrets and
//! invalid settings are each refused with a clear message, and nothing changes in Secrets
//! Manager or at the provider.

mod support;

use rotation_tests::api_provider::ReferenceProvider;
use rotation_tests::hostile::{
    assert_bad_events_refused, assert_bad_settings_refused, assert_unusable_secrets_refused,
    broken_fields, malformed_secret_strings, BadSetting,
};
use rotation_tests::orchestrator::Orchestrator;
use serde_json::json;
use support::{http_environment, http_secret, Fixture, BINARY};

async fn start() -> (ReferenceProvider, Fixture) {
    let provider = ReferenceProvider::start().await;
    let env = http_environment(&provider, 2);
    let fixture = Fixture::start("hostile-key", &http_secret(&provider), &env).await;
    (provider, fixture)
}

#[tokio::test]
async fn bad_events_are_refused_as_invalid_events_and_change_nothing() {
    let (provider, fixture) = start().await;
    let token = fixture.start_rotation().await;
    let live = provider.live_keys();
    assert_bad_events_refused(&fixture.moto, &fixture.function, &fixture.arn, &token).await;
    assert_eq!(provider.live_keys(), live, "no key issued or revoked");
    assert!(
        provider.requests().is_empty(),
        "the provider was never called"
    );
}

#[tokio::test]
async fn unusable_secrets_are_refused_before_any_provider_call() {
    let (provider, fixture) = start().await;
    let valid = http_secret(&provider);
    let mut cases = malformed_secret_strings();
    for (what, value) in broken_fields(&valid, &["api_key", "key_id"]) {
        cases.push((what, value.to_string()));
    }
    let iam = json!({"user_name": "svc", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "x"});
    cases.push(("an IAM secret".to_owned(), iam.to_string()));
    let live = provider.live_keys();
    assert_unusable_secrets_refused(
        &fixture.moto,
        &fixture.function,
        &cases,
        &provider.every_secret(),
    )
    .await;
    assert_eq!(provider.live_keys(), live);
    assert!(
        provider
            .requests()
            .iter()
            .all(|request| !request.starts_with("POST")),
        "no key was issued: {:?}",
        provider.requests()
    );
}

#[tokio::test]
async fn unusable_iam_secrets_are_refused_before_any_iam_call() {
    let env = [("API_KEY_PROVIDER".to_owned(), "aws-iam".to_owned())];
    let valid = json!({"user_name": "svc", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cret-access"});
    let fixture = Fixture::start("hostile-iam", &valid, &env).await;
    let mut cases = malformed_secret_strings();
    for (what, value) in broken_fields(&valid, &["user_name", "access_key_id"]) {
        cases.push((what, value.to_string()));
    }
    assert_unusable_secrets_refused(
        &fixture.moto,
        &fixture.function,
        &cases,
        &["s3cret-access".to_owned()],
    )
    .await;
}

#[tokio::test]
async fn every_invalid_setting_is_refused_naming_its_variable() {
    let (provider, fixture) = start().await;
    let token = fixture.start_rotation().await;
    let before = fixture.moto.snapshot(&fixture.arn).await;
    let event = Orchestrator::event(&fixture.arn, &token, "createSecret", "rotation-token");
    let base: Vec<(String, String)> = fixture
        .moto
        .function_environment()
        .into_iter()
        .chain(http_environment(&provider, 2))
        .collect();
    let setting = |names: &'static str, env: &[(&str, &str)]| BadSetting {
        names,
        env: env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
    };
    let settings = vec![
        setting("API_KEY_PROVIDER", &[("API_KEY_PROVIDER", "stripe")]),
        setting("API_KEY_PROVIDER", &[("API_KEY_PROVIDER", "")]),
        setting("API_BASE_URL", &[("API_BASE_URL", "")]),
        setting("API_BASE_URL", &[("API_BASE_URL", "api.example.com")]),
        setting(
            "API_BASE_URL",
            &[
                ("API_BASE_URL", "http://api.example.com"),
                ("ALLOW_INSECURE_HTTP", "false"),
            ],
        ),
        setting(
            "API_BASE_URL",
            &[("API_BASE_URL", "https://api.example.com/?key=1")],
        ),
        setting("API_ISSUE_PATH", &[("API_ISSUE_PATH", "keys")]),
        setting("API_REVOKE_PATH", &[("API_REVOKE_PATH", "/keys/revoke")]),
        setting("API_TEST_PATH", &[("API_TEST_PATH", "/who am i")]),
        setting("API_KEY_POINTER", &[("API_KEY_POINTER", "data.key")]),
        setting("API_LIST_ID_POINTER", &[("API_LIST_ID_POINTER", "id")]),
        setting("API_AUTH_HEADER", &[("API_AUTH_HEADER", "X Api Key")]),
        setting("API_AUTH_SCHEME", &[("API_AUTH_SCHEME", "Bearer token")]),
        setting("API_TIMEOUT_SECONDS", &[("API_TIMEOUT_SECONDS", "0")]),
        setting("API_TIMEOUT_SECONDS", &[("API_TIMEOUT_SECONDS", "26")]),
        setting("API_TIMEOUT_SECONDS", &[("API_TIMEOUT_SECONDS", "ten")]),
        setting("TEST_RETRY_SECONDS", &[("TEST_RETRY_SECONDS", "21")]),
        setting("TEST_RETRY_SECONDS", &[("TEST_RETRY_SECONDS", "-1")]),
        setting("CA_BUNDLE", &[("CA_BUNDLE", "/nonexistent/ca.pem")]),
        setting("CA_BUNDLE", &[("CA_BUNDLE", "/etc/hostname")]),
    ];
    assert_bad_settings_refused(BINARY, &base, settings, &event).await;
    assert_eq!(fixture.moto.snapshot(&fixture.arn).await, before);
    assert!(
        provider.requests().is_empty(),
        "the provider was never called"
    );
}
