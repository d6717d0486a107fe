//! The alternating-users strategy: the master sets the password of whichever of `name` and
//! `name_clone` is not current, so both versions' credentials keep working. What the alternate
//! user may do (memberships, grants) is each engine's own test.

use serde_json::json;

use super::{
    assert_rotated, template_secret, unique, Alternating, DatabaseUnderTest, Fixture, Logins,
};
use crate::crash_matrix::Credentials;
use crate::secrets_manager::MotoSecretsManager;
use crate::stack;

const STRATEGY: (&str, &str) = ("ROTATION_STRATEGY", "alternating-users");

/// The function for an alternating-users secret, with its own moto client.
async fn start<'d>(
    database: &'d dyn DatabaseUnderTest,
    prefix: &str,
) -> (Fixture<'d>, Alternating) {
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    let alternating = Alternating::create(database, &moto, prefix).await;
    let env = super::environment(database, &moto, &[STRATEGY]).await;
    let arn = alternating.arn.clone();
    (Fixture::launch(database, moto, arn, env).await, alternating)
}

pub async fn three_alternating_rotations_take_turns_and_both_versions_log_in(
    database: &dyn DatabaseUnderTest,
) {
    let (fixture, alternating) = start(database, "alt").await;
    let port = database.server().await.port;
    let (user, clone) = (alternating.user.name.clone(), alternating.clone_name());
    let mut passwords = vec![alternating.user.password.clone()];
    for (round, expected) in [&clone, &user, &clone].into_iter().enumerate() {
        let old_token = fixture.version_with("AWSCURRENT").await.expect("current");
        let record = fixture.rotate().await;
        record.expect_success();
        assert_rotated(&fixture.labels().await, &record.token, &old_token);
        let current = fixture.value_at("AWSCURRENT").await;
        let previous = fixture.value_at("AWSPREVIOUS").await;
        assert_eq!(current["username"], json!(expected), "round {round}");
        assert_ne!(current["username"], previous["username"]);
        assert_eq!(current["team"], json!({"name": "payments"}));
        assert_eq!(current["port"], json!(port), "a number port stays a number");
        for version in [&current, &previous] {
            assert!(
                Logins(database).work(version).await,
                "round {round}: {} logs in",
                version["username"]
            );
        }
        passwords.push(current["password"].as_str().expect("a password").to_owned());
    }
    let output = fixture.output();
    assert!(output.contains("Successfully set password for"), "{output}");
    passwords.push(alternating.master_password.clone());
    database.assert_no_secret_in(&output, &passwords, "the function's output");
    fixture.stop().await;
    alternating.drop(database).await;
}

/// Two rotations with every step invoked twice: the same users, privileges and memberships as
/// after single invocations (the alternate user was made once).
pub async fn every_alternating_users_step_invoked_twice_leaves_the_same_end_state(
    database: &dyn DatabaseUnderTest,
) {
    let (fixture, alternating) = start(database, "alt_twice").await;
    let users = [alternating.user.name.clone(), alternating.clone_name()];
    let mut states = Vec::new();
    for round in 0..2 {
        fixture.rotate_with_every_step_twice().await;
        for stage in ["AWSCURRENT", "AWSPREVIOUS"] {
            let version = fixture.value_at(stage).await;
            assert!(
                Logins(database).work(&version).await,
                "round {round}: {stage}"
            );
        }
        states.push(database.privileges(&users).await);
    }
    assert_eq!(states[0], states[1]);
    fixture.stop().await;
    alternating.drop(database).await;
}

/// Rotates and returns setSecret's refusal, checked to be `InvalidSecret`.
async fn rotation_refused_at_set_secret(fixture: &Fixture<'_>) -> String {
    let record = fixture.rotate().await;
    let failed = record.failure().expect("refused");
    assert_eq!(failed.step, "setSecret");
    let (error_type, message) = failed.invocation.clone().failed().expect("an error");
    assert_eq!(error_type, "InvalidSecret", "{message}");
    message
}

/// Whoever can write the secret tries to have the master's password changed through a pending
/// version naming the master.
pub async fn a_pending_username_other_than_the_alternate_is_refused_and_nothing_changes(
    database: &dyn DatabaseUnderTest,
) {
    let (fixture, alternating) = start(database, "alt_tamper").await;
    let involved = [
        alternating.user.name.clone(),
        alternating.clone_name(),
        alternating.master.clone(),
    ];
    let before = database.privileges(&involved).await;
    let mut tampered = fixture.value_at("AWSCURRENT").await;
    tampered["username"] = json!(alternating.master);
    tampered["password"] = json!("attacker-chosen-Passw0rd");
    let message = fixture.set_secret_refuses(&tampered).await;
    assert_eq!(
        message,
        format!(
            "Attempting to modify user {} other than current user or clone {}",
            alternating.master, alternating.user.name
        )
    );
    assert_eq!(database.privileges(&involved).await, before);
    alternating.assert_master_logs_in(database).await;
    fixture.stop().await;
    alternating.drop(database).await;
}

/// A master secret for `127.0.0.1`: the same server, but not the same host name, so like a
/// master secret for another database it is refused before the master logs in.
pub async fn a_master_on_another_host_is_refused_without_any_change(
    database: &dyn DatabaseUnderTest,
) {
    let (fixture, alternating) = start(database, "alt_host").await;
    let server = database.server().await;
    let mut master_secret = fixture
        .moto
        .value_at(&alternating.master_arn, "AWSCURRENT")
        .await
        .expect("the master secret");
    master_secret["host"] = json!(server.ip);
    fixture
        .moto
        .client()
        .put_secret_value()
        .secret_id(&alternating.master_arn)
        .secret_string(master_secret.to_string())
        .send()
        .await
        .expect("PutSecretValue of the master secret");
    let involved = [alternating.user.name.clone(), alternating.clone_name()];
    let before = database.privileges(&involved).await;

    let message = rotation_refused_at_set_secret(&fixture).await;
    assert_eq!(
        message,
        format!(
            "Current database host {} is not the same host as/rds replica of master {}",
            server.host, server.ip
        )
    );
    assert_eq!(database.privileges(&involved).await, before);
    fixture.stop().await;
    alternating.drop(database).await;
}

/// Whoever can write a secret holds an account named after the master's alternate
/// (`<master>_clone`) and writes it a secret whose `masterarn` is the master's own: the
/// alternate user would be the master, whose password and privileges the function would then
/// change. Refused before any statement as the master; the master is exactly as before.
pub async fn a_secret_whose_alternate_user_is_the_master_is_refused_and_the_master_is_untouched(
    database: &dyn DatabaseUnderTest,
) {
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    let alternating = Alternating::create(database, &moto, "am").await;
    let attacker = format!("{}_clone", alternating.master);
    let attacker_password = "attacker-Passw0rd-1";
    database.create_user(&attacker, attacker_password).await;
    let mut secret = template_secret(
        database,
        database.engines()[0],
        &attacker,
        attacker_password,
    )
    .await;
    secret["masterarn"] = json!(alternating.master_arn);
    let arn = moto
        .create_secret(&unique("db-attack"), &secret.to_string())
        .await;
    let env = super::environment(database, &moto, &[STRATEGY]).await;
    let fixture = Fixture::launch(database, moto, arn, env).await;
    let involved = [alternating.master.clone(), attacker.clone()];
    let before = database.privileges(&involved).await;

    let message = rotation_refused_at_set_secret(&fixture).await;
    assert!(
        message.starts_with(&format!(
            "Attempting to modify user {} which is the master user of secret {}",
            alternating.master, alternating.master_arn
        )),
        "{message}"
    );
    assert_eq!(database.privileges(&involved).await, before);
    alternating.assert_master_logs_in(database).await;
    fixture.stop().await;
    database.drop_user(&attacker).await;
    alternating.drop(database).await;
}
