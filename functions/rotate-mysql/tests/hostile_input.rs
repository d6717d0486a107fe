//! Hostile input against the real `rotate-mysql` binary: bad events, unusable secrets, invalid
//! settings and tampered pending versions are each refused with a clear message, and nothing
//! changes in Secrets Manager or in the database.

mod support;

use rotation_tests::hostile::{
    assert_bad_events_refused, assert_bad_settings_refused, assert_unusable_secrets_refused,
    bad_database_settings, broken_fields, malformed_secret_strings, BadSetting,
};
use rotation_tests::orchestrator::Orchestrator;
use serde_json::json;
use support::{
    assert_no_secret_in, login, template_secret, unique, AppUser, Fixture, Login, BINARY,
};

#[tokio::test]
async fn bad_events_are_refused_as_invalid_events_and_change_nothing() {
    let user = AppUser::create(&unique("hev"), "%", "initial-Passw0rd-ev").await;
    let fixture = Fixture::start(
        &template_secret("mariadb", &user.name, &user.password).await,
        &[],
    )
    .await;
    let token = fixture.moto.start_rotation(&fixture.arn).await;
    assert_bad_events_refused(&fixture.moto, &fixture.function, &fixture.arn, &token).await;
    assert_eq!(login(&user.name, &user.password).await, Login::Ok);
    assert_no_secret_in(
        &fixture.output(),
        std::slice::from_ref(&user.password),
        "the function's output",
    );
    fixture.stop().await;
    user.drop().await;
}

#[tokio::test]
async fn unusable_secrets_are_refused_before_anything_is_written() {
    let user = AppUser::create(&unique("hsec"), "%", "initial-Passw0rd-sec").await;
    let valid = template_secret("mariadb", &user.name, &user.password).await;
    let fixture = Fixture::start(&valid, &[]).await;
    let mut cases = malformed_secret_strings();
    for (what, value) in broken_fields(&valid, &["engine", "host", "username", "password"]) {
        cases.push((what, value.to_string()));
    }
    let mut postgres = valid.clone();
    postgres["engine"] = json!("postgres");
    cases.push(("a PostgreSQL secret".to_owned(), postgres.to_string()));

    assert_unusable_secrets_refused(
        &fixture.moto,
        &fixture.function,
        &cases,
        std::slice::from_ref(&user.password),
    )
    .await;
    assert_eq!(login(&user.name, &user.password).await, Login::Ok);
    assert_eq!(fixture.function.cold_starts(), 1);
    fixture.stop().await;
    user.drop().await;
}

#[tokio::test]
async fn every_invalid_setting_is_refused_naming_its_variable() {
    let user = AppUser::create(&unique("hcfg"), "%", "initial-Passw0rd-cfg").await;
    let fixture = Fixture::start(
        &template_secret("mariadb", &user.name, &user.password).await,
        &[],
    )
    .await;
    let token = fixture.moto.start_rotation(&fixture.arn).await;
    let before = fixture.moto.snapshot(&fixture.arn).await;
    let event = Orchestrator::event(&fixture.arn, &token, "createSecret", "rotation-token");
    let mut settings = bad_database_settings();
    for value in ["0", "81", "many"] {
        settings.push(BadSetting {
            names: "USERNAME_CHARACTER_LIMIT",
            env: vec![("USERNAME_CHARACTER_LIMIT".to_owned(), value.to_owned())],
        });
    }
    assert_bad_settings_refused(BINARY, &fixture.env, settings, &event).await;
    assert_eq!(fixture.moto.snapshot(&fixture.arn).await, before);
    fixture.stop().await;
    user.drop().await;
}

#[tokio::test]
async fn a_pending_version_for_another_engine_is_refused_and_the_database_is_unchanged() {
    let user = AppUser::create(&unique("heng"), "%", "initial-Passw0rd-eng").await;
    let secret = template_secret("mariadb", &user.name, &user.password).await;
    let fixture = Fixture::start(&secret, &[]).await;
    let token = fixture.moto.start_rotation(&fixture.arn).await;
    let mut tampered = secret.clone();
    tampered["engine"] = json!("postgres");
    tampered["password"] = json!("attacker-chosen-Passw0rd");
    fixture
        .moto
        .put_pending(&fixture.arn, &token, &tampered.to_string())
        .await;
    let before = fixture.moto.snapshot(&fixture.arn).await;

    let orchestrator = fixture.orchestrator();
    let created = orchestrator
        .invoke(&fixture.arn, &token, "createSecret")
        .await;
    assert!(created.invocation.succeeded().is_ok(), "the value is kept");
    let set = orchestrator.invoke(&fixture.arn, &token, "setSecret").await;
    let (error_type, message) = set.invocation.failed().expect("setSecret refuses");
    assert_eq!(error_type, "InvalidSecret", "{message}");
    assert!(
        message.contains("AWSPENDING") && message.contains("engine"),
        "{message}"
    );
    assert_eq!(fixture.moto.snapshot(&fixture.arn).await, before);
    assert_eq!(login(&user.name, &user.password).await, Login::Ok);
    assert_eq!(
        login(&user.name, "attacker-chosen-Passw0rd").await,
        Login::Rejected
    );
    fixture.stop().await;
    user.drop().await;
}
