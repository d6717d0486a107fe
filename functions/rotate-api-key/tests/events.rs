//! The sample events in `events/rotate-api-key/` run through the real binary: refused cleanly
//! as they are, and a whole rotation once they name a seeded secret.

mod support;

use rotation_tests::api_provider::ReferenceProvider;
use rotation_tests::events::EventFiles;
use support::{http_environment, http_secret, Fixture};

#[tokio::test]
async fn every_sample_event_is_refused_cleanly_as_is_and_rotates_a_seeded_secret() {
    let events = EventFiles::load("rotate-api-key").unwrap_or_else(|problem| panic!("{problem}"));
    let provider = ReferenceProvider::start().await;
    let secret = http_secret(&provider);
    let first_key = secret["api_key"].as_str().expect("a key").to_owned();
    let fixture = Fixture::start("events", &secret, &http_environment(&provider, 2)).await;

    events
        .assert_refused_then_rotate(&fixture.function, &fixture.moto, &fixture.arn)
        .await;

    let new_key = fixture.field_at("AWSCURRENT", "api_key").await;
    assert_ne!(new_key, first_key);
    assert!(provider.authenticates(&new_key).await);
    assert!(
        provider.authenticates(&first_key).await,
        "the previous key stays live"
    );
}
