//! The sample events in `events/rotate-postgres/` run through the real binary: refused cleanly
//! as they are, and a whole rotation once they name a seeded secret.

mod support;

use rotation_tests::events::EventFiles;
use support::{login, template_secret, unique, AppRole, Fixture, Login};

#[tokio::test]
async fn every_sample_event_is_refused_cleanly_as_is_and_rotates_a_seeded_secret() {
    let events = EventFiles::load("rotate-postgres").unwrap_or_else(|problem| panic!("{problem}"));
    let role = AppRole::create(&unique("events"), "initial-Passw0rd-events").await;
    let fixture = Fixture::start(&template_secret(&role.name, &role.password).await, &[]).await;

    events
        .assert_refused_then_rotate(&fixture.function, &fixture.moto, &fixture.arn)
        .await;

    let new_password = fixture.password_at("AWSCURRENT").await;
    assert_eq!(login(&role.name, &new_password).await, Login::Ok);
    assert_eq!(login(&role.name, &role.password).await, Login::Rejected);
    fixture.stop().await;
    role.drop().await;
}
