//! The sample events in `events/rotate-mysql/` run through the real binary: refused cleanly as
//! they are, and a whole rotation once they name a seeded secret.

mod support;

use rotation_tests::events::EventFiles;
use support::{login, template_secret, unique, AppUser, Fixture, Login};

#[tokio::test]
async fn every_sample_event_is_refused_cleanly_as_is_and_rotates_a_seeded_secret() {
    let events = EventFiles::load("rotate-mysql").unwrap_or_else(|problem| panic!("{problem}"));
    let user = AppUser::create(&unique("events"), "%", "initial-Passw0rd-events").await;
    let secret = template_secret("mariadb", &user.name, &user.password).await;
    let fixture = Fixture::start(&secret, &[]).await;

    events
        .assert_refused_then_rotate(&fixture.function, &fixture.moto, &fixture.arn)
        .await;

    let new_password = fixture.password_at("AWSCURRENT").await;
    assert_eq!(login(&user.name, &new_password).await, Login::Ok);
    assert_eq!(login(&user.name, &user.password).await, Login::Rejected);
    fixture.stop().await;
    user.drop().await;
}
