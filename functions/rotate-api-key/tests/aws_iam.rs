//! The `aws-iam` provider end to end: the real `rotate-api-key` binary under the Lambda Runtime
//! API emulator, with moto serving Secrets Manager, IAM and STS.

mod support;

use rotation_tests::leaks::assert_no_secret_in;
use rotation_tests::orchestrator::STEPS;
use rotation_tests::runtime_api::Invocation;
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack;
use serde_json::json;
use support::{caller_arn, iam_client, key_ids, Fixture, IamUser};

#[tokio::test]
async fn three_rotations_of_an_iam_users_access_keys() {
    let iam = iam_client().await;
    let created = IamUser::create(&iam, "svc-billing", "/rotated/").await;
    let (user, user_arn) = (created.name.clone(), created.arn.clone());
    let mut secret = created.secret();
    secret["purpose"] = json!("kept");
    let env = [
        ("API_KEY_PROVIDER".to_owned(), "aws-iam".to_owned()),
        // IAM and STS calls go to moto too.
        (
            "AWS_ENDPOINT_URL".to_owned(),
            stack::moto().await.endpoint(),
        ),
    ];
    let fixture = Fixture::start("iam-key", &secret, &env).await;

    let mut secrets = vec![created.secret.clone()];
    let mut ids = vec![created.key_id.clone()];
    for round in 1..=3 {
        let token = fixture.start_rotation().await;
        for step in STEPS {
            let invocation = fixture.step(&token, step).await;
            assert!(
                matches!(invocation, Invocation::Succeeded(_)),
                "round {round}: {step}: {invocation:?}"
            );
            let held = key_ids(&iam, &user).await;
            assert!(
                held.len() <= 2,
                "round {round}: after {step} the user holds {held:?}"
            );
        }
        let new_id = fixture.field_at("AWSCURRENT", "access_key_id").await;
        let new_secret = fixture.field_at("AWSCURRENT", "secret_access_key").await;
        assert!(!ids.contains(&new_id), "round {round}: a new key");
        assert_eq!(
            caller_arn(&new_id, &new_secret).await,
            user_arn,
            "round {round}: the new key signs as the user"
        );
        let held = key_ids(&iam, &user).await;
        let previous = ids.last().expect("a previous key");
        assert!(
            held.contains(&new_id) && held.contains(previous),
            "round {round}: {held:?}"
        );
        if let Some(before) = ids.iter().rev().nth(1) {
            assert!(
                !held.contains(before),
                "round {round}: the one before is deleted"
            );
        }
        assert_eq!(fixture.value_at("AWSCURRENT").await["purpose"], "kept");
        ids.push(new_id);
        secrets.push(new_secret);
    }

    secrets.extend(fixture.rotation_tokens());
    assert_no_secret_in(
        &fixture.function.output(),
        &secrets,
        "the function's output",
    );
    let output = fixture.function.output();
    assert!(output.contains("authenticated at IAM user"), "{output}");
}

/// The secret's key must sign as the user it names before any IAM call on that user. moto's STS
/// answers an unknown key as `arn:aws:sts::<account>:user/moto` (AWS refuses it with
/// `InvalidClientTokenId`); either way the secret proves nothing and is refused.
#[tokio::test]
async fn a_secret_whose_key_does_not_sign_as_its_user_is_refused_before_any_iam_call() {
    let user = MotoSecretsManager::unique_name("nobody");
    let secret = json!({
        "user_name": user,
        "access_key_id": "AKIAEXAMPLEEXAMPLE00",
        "secret_access_key": "not-a-real-secret-access-key-0000000000",
    });
    let env = [
        ("API_KEY_PROVIDER".to_owned(), "aws-iam".to_owned()),
        (
            "AWS_ENDPOINT_URL".to_owned(),
            stack::moto().await.endpoint(),
        ),
    ];
    let fixture = Fixture::start("iam-missing", &secret, &env).await;
    let record = fixture.rotate().await;
    let (error_type, message) = record
        .failure()
        .expect("createSecret fails")
        .invocation
        .clone()
        .failed()
        .expect("an error answer");
    assert_eq!(error_type, "InvalidSecret");
    assert!(
        message.contains(&format!("IAM user {user}"))
            && message.contains("AKIAEXAMPLEEXAMPLE00")
            && !message.contains("iam:"),
        "{message}"
    );
    assert_no_secret_in(
        &message,
        &["not-a-real-secret-access-key-0000000000".to_owned()],
        "the error",
    );
    assert!(fixture
        .moto
        .value_at(&fixture.arn, "AWSPENDING")
        .await
        .is_none());
}
