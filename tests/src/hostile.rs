//! The hostile-input corpus every function is tried with: events, secret values and pending
//! versions that must be refused with a clear message before anything changes, in Secrets
//! Manager or at the target.

use serde_json::{json, Value};

use crate::leaks::assert_no_secret_in;
use crate::orchestrator::Orchestrator;
use crate::runtime_api::{Invocation, LambdaFunction};
use crate::secrets_manager::MotoSecretsManager;

/// Events that are not rotation events this function can act on, each with what is wrong. All
/// are for `arn` and its pending version `token`, so only the flaw under test can refuse them.
pub fn bad_events(arn: &str, token: &str) -> Vec<(String, Value)> {
    let valid = json!({"Step": "createSecret", "SecretId": arn, "ClientRequestToken": token});
    let with = |field: &str, value: Value| {
        let mut event = valid.clone();
        event[field] = value;
        event
    };
    let without = |field: &str| {
        let mut event = valid.clone();
        if let Some(object) = event.as_object_mut() {
            object.remove(field);
        }
        event
    };
    let huge = "a".repeat(1024 * 1024);
    let mut events = vec![
        ("an empty object".to_owned(), json!({})),
        ("an array".to_owned(), json!([valid.clone()])),
        ("a string".to_owned(), json!("createSecret")),
        ("null".to_owned(), Value::Null),
        ("a number".to_owned(), json!(42)),
        (
            "an unknown step".to_owned(),
            with("Step", json!("deleteSecret")),
        ),
        ("an empty step".to_owned(), with("Step", json!(""))),
        (
            "a step in the wrong case".to_owned(),
            with("Step", json!("CREATESECRET")),
        ),
        ("a numeric step".to_owned(), with("Step", json!(1))),
        (
            "a SecretId array".to_owned(),
            with("SecretId", json!([arn])),
        ),
        (
            "a token object".to_owned(),
            with("ClientRequestToken", json!({"id": token})),
        ),
        (
            "a numeric RotationToken".to_owned(),
            with("RotationToken", json!(7)),
        ),
        ("a 1 MB SecretId".to_owned(), with("SecretId", json!(huge))),
        (
            "a 1 MB token".to_owned(),
            with("ClientRequestToken", json!(huge)),
        ),
        ("a 1 MB step".to_owned(), with("Step", json!(huge))),
    ];
    for field in ["Step", "SecretId", "ClientRequestToken"] {
        events.push((format!("no {field}"), without(field)));
        events.push((format!("a null {field}"), with(field, Value::Null)));
        events.push((format!("an empty {field}"), with(field, json!(""))));
    }
    for (what, bad) in [
        ("a NUL", "\u{0}"),
        ("a newline", "\n"),
        ("an escape", "\u{1b}[2J"),
        ("a non-ASCII letter", "é"),
        ("a right-to-left override", "\u{202e}"),
    ] {
        events.push((
            format!("{what} in the SecretId"),
            with("SecretId", json!(format!("{arn}{bad}"))),
        ));
        events.push((
            format!("{what} in the token"),
            with("ClientRequestToken", json!(format!("{token}{bad}"))),
        ));
    }
    events
}

/// `SecretString`s that are not a JSON object at all.
pub fn malformed_secret_strings() -> Vec<(String, String)> {
    [
        ("an empty string", ""),
        ("half an object", "{\"username\": "),
        ("a JSON array", "[\"username\", \"password\"]"),
        ("a JSON string", "\"password\""),
        ("a JSON number", "42"),
        ("JSON null", "null"),
        ("key=value text", "username=app\npassword=secret"),
        (
            "an object with a trailing comma",
            "{\"username\": \"app\",}",
        ),
    ]
    .into_iter()
    .map(|(what, text)| (what.to_owned(), text.to_owned()))
    .collect()
}

/// Variants of a valid secret with one field missing or of the wrong type: every field in
/// `required` removed, set to null, a number and an array; `port` (when given) not a number.
pub fn broken_fields(valid: &Value, required: &[&str]) -> Vec<(String, Value)> {
    let mut variants = Vec::new();
    for field in required {
        let mut missing = valid.clone();
        if let Some(object) = missing.as_object_mut() {
            object.remove(*field);
        }
        variants.push((format!("no {field}"), missing));
        for (what, value) in [
            ("null", Value::Null),
            ("a number", json!(12)),
            ("an array", json!(["x"])),
        ] {
            let mut wrong = valid.clone();
            wrong[*field] = value;
            variants.push((format!("{field} {what}"), wrong));
        }
    }
    if valid.get("port").is_some() {
        for (what, value) in [
            ("a word", json!("five-four-three-two")),
            ("true", json!(true)),
            ("70000", json!(70000)),
            ("-1", json!(-1)),
            ("a fraction", json!(5432.5)),
        ] {
            let mut wrong = valid.clone();
            wrong["port"] = value;
            variants.push((format!("port {what}"), wrong));
        }
    }
    variants
}

/// Invokes `function` with `payload` and returns the error it answered; panics, naming `what`,
/// unless the invocation failed with `error_type`.
pub async fn refused(
    function: &LambdaFunction,
    payload: &Value,
    error_type: &str,
    what: &str,
) -> String {
    match function.invoke(payload).await {
        Invocation::Failed {
            error_type: got,
            error_message,
        } => {
            assert_eq!(got, error_type, "{what}: {error_message}");
            assert!(!error_message.is_empty(), "{what}: an empty message");
            error_message
        }
        other => panic!("{what}: expected {error_type}, got {other:?}"),
    }
}

/// One invalid configuration: the variables set, and the variable the error must name.
pub struct BadSetting {
    pub names: &'static str,
    pub env: Vec<(String, String)>,
}

impl BadSetting {
    fn new(names: &'static str, env: &[(&str, &str)]) -> BadSetting {
        BadSetting {
            names,
            env: env
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }
}

/// Invalid settings of every variable the database functions share.
pub fn bad_database_settings() -> Vec<BadSetting> {
    let every_printable: String = (' '..='~').collect();
    vec![
        BadSetting::new("ROTATION_STRATEGY", &[("ROTATION_STRATEGY", "both")]),
        BadSetting::new("ROTATION_STRATEGY", &[("ROTATION_STRATEGY", "multi-user")]),
        BadSetting::new("TLS_MODE", &[("TLS_MODE", "disable")]),
        BadSetting::new("TLS_MODE", &[("TLS_MODE", "VERIFY")]),
        BadSetting::new("CA_BUNDLE", &[("CA_BUNDLE", "/nonexistent/ca.pem")]),
        BadSetting::new("CA_BUNDLE", &[("CA_BUNDLE", "/etc/hostname")]),
        BadSetting::new(
            "CONNECT_TIMEOUT_SECONDS",
            &[("CONNECT_TIMEOUT_SECONDS", "0")],
        ),
        BadSetting::new(
            "CONNECT_TIMEOUT_SECONDS",
            &[("CONNECT_TIMEOUT_SECONDS", "11")],
        ),
        BadSetting::new(
            "CONNECT_TIMEOUT_SECONDS",
            &[("CONNECT_TIMEOUT_SECONDS", "soon")],
        ),
        BadSetting::new(
            "CONNECT_TIMEOUT_SECONDS",
            &[("CONNECT_TIMEOUT_SECONDS", "-5")],
        ),
        BadSetting::new("PASSWORD_LENGTH", &[("PASSWORD_LENGTH", "0")]),
        BadSetting::new("PASSWORD_LENGTH", &[("PASSWORD_LENGTH", "5000")]),
        BadSetting::new("PASSWORD_LENGTH", &[("PASSWORD_LENGTH", "long")]),
        BadSetting::new(
            "PASSWORD_LENGTH",
            &[
                ("PASSWORD_LENGTH", "3"),
                ("REQUIRE_EACH_INCLUDED_TYPE", "true"),
            ],
        ),
        BadSetting {
            names: "EXCLUDE_CHARACTERS",
            env: vec![("EXCLUDE_CHARACTERS".to_owned(), every_printable)],
        },
        BadSetting::new(
            "EXCLUDE_LOWERCASE, EXCLUDE_UPPERCASE, EXCLUDE_NUMBERS, EXCLUDE_PUNCTUATION",
            &[
                ("EXCLUDE_LOWERCASE", "true"),
                ("EXCLUDE_UPPERCASE", "yes"),
                ("EXCLUDE_NUMBERS", "1"),
                ("EXCLUDE_PUNCTUATION", "Y"),
            ],
        ),
    ]
}

/// Starts `binary` with `base` plus each bad setting and asks it for `event`: each must answer
/// `InvalidConfiguration` naming the variable, and keep answering (no crash, no exit).
pub async fn assert_bad_settings_refused(
    binary: &str,
    base: &[(String, String)],
    settings: Vec<BadSetting>,
    event: &Value,
) {
    for setting in settings {
        let mut env = base.to_vec();
        env.extend(setting.env.iter().cloned());
        let what = format!("{:?}", setting.env);
        let function =
            LambdaFunction::start(crate::runtime_api::FunctionSpec::new(binary).env(env))
                .await
                .expect("the function starts");
        for attempt in 1..=2 {
            let message = refused(&function, event, "InvalidConfiguration", &what).await;
            assert!(
                message.contains(setting.names),
                "{what}, attempt {attempt}: the message names {}: {message}",
                setting.names
            );
        }
        assert_eq!(
            function.cold_starts(),
            1,
            "{what}: the process kept serving"
        );
        function.stop().await;
    }
}

/// Sends every [`bad_events`] event for `arn` and its pending `token` to `function`: each must
/// be refused as `InvalidEvent` with a short message, the secret must be left exactly as it
/// was, and the process must survive them all.
pub async fn assert_bad_events_refused(
    moto: &MotoSecretsManager,
    function: &LambdaFunction,
    arn: &str,
    token: &str,
) {
    let before = moto.snapshot(arn).await;
    let cold_starts = function.cold_starts();
    for (what, event) in bad_events(arn, token) {
        let message = refused(function, &event, "InvalidEvent", &what).await;
        assert!(
            message.len() < 4096,
            "{what}: the message does not echo a huge value ({} bytes)",
            message.len()
        );
    }
    assert_eq!(moto.snapshot(arn).await, before, "nothing changed");
    assert_eq!(
        function.cold_starts(),
        cold_starts,
        "no event crashed the function"
    );
}

/// Creates a secret for each of `cases` (what is wrong, the `SecretString`) plus one holding only
/// a `SecretBinary`, starts its rotation, and asks `function` for createSecret: each must be
/// refused as `InvalidSecret` naming the version, with nothing written and none of `hidden` in
/// the message.
pub async fn assert_unusable_secrets_refused(
    moto: &MotoSecretsManager,
    function: &LambdaFunction,
    cases: &[(String, String)],
    hidden: &[String],
) {
    for (what, text) in cases {
        // Secrets Manager refuses an empty SecretString outright; the binary case covers a
        // secret without a usable string.
        if text.is_empty() {
            continue;
        }
        let arn = moto
            .create_secret(&MotoSecretsManager::unique_name("hostile"), text)
            .await;
        refuse_create_secret(moto, function, &arn, what, hidden).await;
    }
    let arn = moto
        .create_binary_secret(&MotoSecretsManager::unique_name("hostile-bin"), b"\x00\x01")
        .await;
    let message = refuse_create_secret(moto, function, &arn, "a SecretBinary", hidden).await;
    assert!(message.contains("SecretBinary"), "{message}");
}

async fn refuse_create_secret(
    moto: &MotoSecretsManager,
    function: &LambdaFunction,
    arn: &str,
    what: &str,
    hidden: &[String],
) -> String {
    let token = moto.start_rotation(arn).await;
    let before = moto.snapshot(arn).await;
    let event = Orchestrator::event(arn, &token, "createSecret", "rotation-token");
    let message = refused(function, &event, "InvalidSecret", what).await;
    assert!(
        message.contains("AWSCURRENT") || message.contains("SecretBinary"),
        "{what}: the message names the version: {message}"
    );
    assert_eq!(moto.snapshot(arn).await, before, "{what}: nothing written");
    assert_no_secret_in(&message, hidden, what);
    message
}
