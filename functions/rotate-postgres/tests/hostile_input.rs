//! Hostile input against the real `rotate-postgres` binary: bad events, unusable secrets, invalid
//! settings and tampered pending versions are each refused with a clear message, and nothing
//! changes in Secrets Manager or in the database.

mod support;

use rotation_tests::hostile::{
    assert_bad_events_refused, assert_bad_settings_refused, assert_unusable_secrets_refused,
    bad_database_settings, broken_fields, malformed_secret_strings,
};
use rotation_tests::orchestrator::Orchestrator;
use serde_json::json;
use support::{
    assert_no_secret_in, login, template_secret, unique, AppRole, Fixture, Login, BINARY,
};

#[tokio::test]
async fn bad_events_are_refused_as_invalid_events_and_change_nothing() {
    let role = AppRole::create(&unique("hostile_ev"), "initial-Passw0rd-ev").await;
    let fixture = Fixture::start(&template_secret(&role.name, &role.password).await, &[]).await;
    let token = fixture.moto.start_rotation(&fixture.arn).await;
    assert_bad_events_refused(&fixture.moto, &fixture.function, &fixture.arn, &token).await;
    assert_eq!(login(&role.name, &role.password).await, Login::Ok);
    assert_no_secret_in(
        &fixture.output(),
        std::slice::from_ref(&role.password),
        "the function's output",
    );
    fixture.stop().await;
    role.drop().await;
}

#[tokio::test]
async fn unusable_secrets_are_refused_before_anything_is_written() {
    let role = AppRole::create(&unique("hostile_sec"), "initial-Passw0rd-sec").await;
    let valid = template_secret(&role.name, &role.password).await;
    let fixture = Fixture::start(&valid, &[]).await;
    let mut cases = malformed_secret_strings();
    for (what, value) in broken_fields(&valid, &["engine", "host", "username", "password"]) {
        cases.push((what, value.to_string()));
    }
    let mut mysql = valid.clone();
    mysql["engine"] = json!("mysql");
    cases.push(("a MySQL secret".to_owned(), mysql.to_string()));

    assert_unusable_secrets_refused(
        &fixture.moto,
        &fixture.function,
        &cases,
        std::slice::from_ref(&role.password),
    )
    .await;
    assert_eq!(login(&role.name, &role.password).await, Login::Ok);
    assert_eq!(fixture.function.cold_starts(), 1);
    fixture.stop().await;
    role.drop().await;
}

#[tokio::test]
async fn every_invalid_setting_is_refused_naming_its_variable() {
    let role = AppRole::create(&unique("hostile_cfg"), "initial-Passw0rd-cfg").await;
    let fixture = Fixture::start(&template_secret(&role.name, &role.password).await, &[]).await;
    let token = fixture.moto.start_rotation(&fixture.arn).await;
    let before = fixture.moto.snapshot(&fixture.arn).await;
    let event = Orchestrator::event(&fixture.arn, &token, "createSecret", "rotation-token");
    assert_bad_settings_refused(BINARY, &fixture.env, bad_database_settings(), &event).await;
    assert_eq!(fixture.moto.snapshot(&fixture.arn).await, before);
    fixture.stop().await;
    role.drop().await;
}

#[tokio::test]
async fn a_pending_version_for_another_engine_is_refused_and_the_database_is_unchanged() {
    let role = AppRole::create(&unique("hostile_eng"), "initial-Passw0rd-eng").await;
    let secret = template_secret(&role.name, &role.password).await;
    let fixture = Fixture::start(&secret, &[]).await;
    let token = fixture.moto.start_rotation(&fixture.arn).await;
    let mut tampered = secret.clone();
    tampered["engine"] = json!("mariadb");
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
    assert_eq!(login(&role.name, &role.password).await, Login::Ok);
    assert_eq!(
        login(&role.name, "attacker-chosen-Passw0rd").await,
        Login::Rejected
    );
    fixture.stop().await;
    role.drop().await;
}
