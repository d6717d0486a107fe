//! Hostile input: bad events, unusable secrets, invalid settings and tampered pending versions
//! are each refused with a clear message, and nothing changes in Secrets Manager or in the
//! database; the sample events in `events/<function>/` are refused as they are and rotate a
//! seeded secret.

use serde_json::json;

use super::{template_secret, DatabaseUnderTest, Fixture, User};
use crate::events::EventFiles;
use crate::hostile::{
    assert_bad_events_refused, assert_bad_settings_refused, assert_unusable_secrets_refused,
    bad_database_settings, broken_fields, malformed_secret_strings,
};
use crate::login::Login;
use crate::orchestrator::Orchestrator;

pub async fn bad_events_are_refused_as_invalid_events_and_change_nothing(
    database: &dyn DatabaseUnderTest,
) {
    let user = User::create(database, "hev").await;
    let fixture = Fixture::for_user(database, &user, &[]).await;
    let token = fixture.moto.start_rotation(&fixture.arn).await;
    assert_bad_events_refused(&fixture.moto, &fixture.function, &fixture.arn, &token).await;
    assert_eq!(database.login(&user.name, &user.password).await, Login::Ok);
    database.assert_no_secret_in(
        &fixture.output(),
        std::slice::from_ref(&user.password),
        "the function's output",
    );
    fixture.stop().await;
    user.drop(database).await;
}

pub async fn unusable_secrets_are_refused_before_anything_is_written(
    database: &dyn DatabaseUnderTest,
) {
    let user = User::create(database, "hsec").await;
    let engine = database.engines()[0];
    let valid = template_secret(database, engine, &user.name, &user.password).await;
    let fixture = Fixture::start(database, &valid, &[]).await;
    let mut cases = malformed_secret_strings();
    for (what, value) in broken_fields(&valid, &["engine", "host", "username", "password"]) {
        cases.push((what, value.to_string()));
    }
    let mut foreign = valid.clone();
    foreign["engine"] = json!(database.foreign_engine());
    cases.push((
        format!("a secret for {}", database.foreign_engine()),
        foreign.to_string(),
    ));

    assert_unusable_secrets_refused(
        &fixture.moto,
        &fixture.function,
        &cases,
        std::slice::from_ref(&user.password),
    )
    .await;
    assert_eq!(database.login(&user.name, &user.password).await, Login::Ok);
    assert_eq!(fixture.function.cold_starts(), 1);
    fixture.stop().await;
    user.drop(database).await;
}

pub async fn every_invalid_setting_is_refused_naming_its_variable(
    database: &dyn DatabaseUnderTest,
) {
    let user = User::create(database, "hcfg").await;
    let fixture = Fixture::for_user(database, &user, &[]).await;
    let token = fixture.moto.start_rotation(&fixture.arn).await;
    let before = fixture.moto.snapshot(&fixture.arn).await;
    let event = Orchestrator::event(&fixture.arn, &token, "createSecret", "rotation-token");
    let mut settings = bad_database_settings();
    settings.extend(database.bad_settings());
    assert_bad_settings_refused(database.binary(), &fixture.env, settings, &event).await;
    assert_eq!(fixture.moto.snapshot(&fixture.arn).await, before);
    fixture.stop().await;
    user.drop(database).await;
}

pub async fn a_pending_version_for_another_engine_is_refused_and_the_database_is_unchanged(
    database: &dyn DatabaseUnderTest,
) {
    let user = User::create(database, "heng").await;
    let secret = template_secret(database, database.engines()[0], &user.name, &user.password).await;
    let fixture = Fixture::start(database, &secret, &[]).await;
    let token = fixture.moto.start_rotation(&fixture.arn).await;
    let mut tampered = secret.clone();
    tampered["engine"] = json!(database.foreign_engine());
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
    assert_eq!(database.login(&user.name, &user.password).await, Login::Ok);
    assert_eq!(
        database.login(&user.name, "attacker-chosen-Passw0rd").await,
        Login::Rejected
    );
    fixture.stop().await;
    user.drop(database).await;
}

pub async fn every_sample_event_is_refused_cleanly_as_is_and_rotates_a_seeded_secret(
    database: &dyn DatabaseUnderTest,
) {
    let events =
        EventFiles::load(database.function()).unwrap_or_else(|problem| panic!("{problem}"));
    let user = User::create(database, "events").await;
    let fixture = Fixture::for_user(database, &user, &[]).await;

    events
        .assert_refused_then_rotate(&fixture.function, &fixture.moto, &fixture.arn)
        .await;

    let new_password = fixture.password_at("AWSCURRENT").await;
    assert_eq!(database.login(&user.name, &new_password).await, Login::Ok);
    assert_eq!(
        database.login(&user.name, &user.password).await,
        Login::Rejected
    );
    fixture.stop().await;
    user.drop(database).await;
}
