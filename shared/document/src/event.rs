//! The rotation event Secrets Manager sends to the function, parsed and validated before any
//! call is made.
//!
//! We define our own type rather than `aws_lambda_events::SecretsManagerSecretRotationEvent`
//! because that type drops `RotationToken`, which must reach `PutSecretValue` for assumed-role
//! and cross-account rotation, and because its `step` is a free string.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// One of the four invocations of a rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    CreateSecret,
    SetSecret,
    TestSecret,
    FinishSecret,
}

impl Step {
    /// The spelling Secrets Manager sends (and the AWS templates log).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::CreateSecret => "createSecret",
            Step::SetSecret => "setSecret",
            Step::TestSecret => "testSecret",
            Step::FinishSecret => "finishSecret",
        }
    }

    /// The service sends camelCase; one AWS documentation page prints snake_case, so users who
    /// wrote their test events from it get the same behaviour.
    fn parse(value: &str) -> Option<Step> {
        match value {
            "createSecret" | "create_secret" => Some(Step::CreateSecret),
            "setSecret" | "set_secret" => Some(Step::SetSecret),
            "testSecret" | "test_secret" => Some(Step::TestSecret),
            "finishSecret" | "finish_secret" => Some(Step::FinishSecret),
            _ => None,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The secret being rotated: an ARN from the service, a name from some emulators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretId(String);

impl SecretId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The VersionId of the pending version this rotation creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequestToken(String);

impl ClientRequestToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientRequestToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Proof for Secrets Manager that this invocation comes from the rotation it started. The service
/// marks it sensitive (kept out of CloudTrail), so it never appears in `Debug` or logs.
#[derive(Clone)]
pub struct RotationToken(SecretString);

impl RotationToken {
    pub fn new(value: impl Into<String>) -> Self {
        RotationToken(SecretString::from(value.into()))
    }

    /// The raw token, for the single API that takes it (`PutSecretValue`).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for RotationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RotationToken([REDACTED])")
    }
}

/// Why an invocation's payload is not a rotation event, in the AWS templates' words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidEvent(pub String);

/// A validated rotation event.
#[derive(Clone, Debug)]
pub struct RotationEvent {
    pub step: Step,
    pub secret_id: SecretId,
    pub client_request_token: ClientRequestToken,
    pub rotation_token: Option<RotationToken>,
}

impl RotationEvent {
    /// Validates the raw invocation payload. The texts are the AWS templates' (users search for
    /// them); printable-ASCII only, as the newer templates require, so nothing we later log can
    /// inject a line break into CloudWatch.
    pub fn from_json(payload: &Value) -> Result<RotationEvent, InvalidEvent> {
        let object = payload
            .as_object()
            .ok_or_else(|| InvalidEvent("the rotation event must be a JSON object".to_owned()))?;
        let field = |name: &str| -> Result<String, InvalidEvent> {
            if let Some(Value::String(text)) = object.get(name) {
                check_length(name, text)?;
            }
            match object.get(name) {
                None | Some(Value::Null) => {
                    Err(InvalidEvent(format!("No value provided for \"{name}\".")))
                }
                Some(Value::String(text)) if text.is_empty() => {
                    Err(InvalidEvent(format!("No value provided for \"{name}\".")))
                }
                Some(Value::String(text)) if is_printable_ascii(text) => Ok(text.clone()),
                Some(_) => Err(InvalidEvent(format!(
                    "\"{name}\" contains invalid characters."
                ))),
            }
        };

        let secret_id = SecretId(field("SecretId")?);
        let client_request_token = ClientRequestToken(field("ClientRequestToken")?);
        let step_text = field("Step")?;
        let step = Step::parse(&step_text).ok_or_else(|| {
            InvalidEvent(format!(
                "Invalid step parameter {step_text} for secret {secret_id}"
            ))
        })?;
        // Absent on older service versions and on events written by hand; when present it must be
        // as clean as the other fields. Its value is never quoted back.
        if let Some(Value::String(text)) = object.get("RotationToken") {
            check_length("RotationToken", text)?;
        }
        let rotation_token = match object.get("RotationToken") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if !text.is_empty() && is_printable_ascii(text) => {
                Some(RotationToken::new(text.as_str()))
            }
            Some(Value::String(text)) if text.is_empty() => None,
            Some(_) => {
                return Err(InvalidEvent(
                    "\"RotationToken\" contains invalid characters.".to_owned(),
                ))
            }
        };

        Ok(RotationEvent {
            step,
            secret_id,
            client_request_token,
            rotation_token,
        })
    }
}

/// The longest value each field may have. The service's own limits for the first two (a secret
/// ARN or name is at most 2,048 characters, a version token 64); the step names are short; the
/// `RotationToken`'s limit is not documented, so it gets a generous one. A longer value is
/// refused before it is used or quoted in any message.
fn longest(field: &str) -> usize {
    match field {
        "SecretId" => 2048,
        "ClientRequestToken" => 64,
        "Step" => 64,
        _ => 4096,
    }
}

fn check_length(field: &str, text: &str) -> Result<(), InvalidEvent> {
    let limit = longest(field);
    if text.chars().count() > limit {
        return Err(InvalidEvent(format!(
            "\"{field}\" is longer than {limit} characters."
        )));
    }
    Ok(())
}

fn is_printable_ascii(text: &str) -> bool {
    text.bytes().all(|byte| (b' '..=b'~').contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf";
    const TOKEN: &str = "c6b0a4f2-8d0e-4b0a-9a35-1e0f5c0e7a11";

    fn event(step: &str) -> Value {
        json!({"Step": step, "SecretId": ARN, "ClientRequestToken": TOKEN})
    }

    fn rejection(payload: Value) -> String {
        match RotationEvent::from_json(&payload) {
            Err(InvalidEvent(message)) => message,
            other => panic!("expected InvalidEvent, got {other:?}"),
        }
    }

    #[test]
    fn a_field_longer_than_the_service_allows_is_refused_without_being_quoted() {
        for (field, limit) in [
            ("SecretId", 2048),
            ("ClientRequestToken", 64),
            ("Step", 64),
            ("RotationToken", 4096),
        ] {
            let mut payload = event("createSecret");
            payload[field] = json!("x".repeat(limit + 1));
            let message = rejection(payload);
            assert_eq!(
                message,
                format!("\"{field}\" is longer than {limit} characters.")
            );
            let mut at_limit = event("createSecret");
            at_limit[field] = json!("x".repeat(limit));
            if field != "Step" {
                assert!(
                    RotationEvent::from_json(&at_limit).is_ok(),
                    "{field} at its limit"
                );
            }
        }
    }

    #[test]
    fn every_step_spelling_the_service_or_the_docs_use_is_accepted() {
        for (spelling, step) in [
            ("createSecret", Step::CreateSecret),
            ("create_secret", Step::CreateSecret),
            ("setSecret", Step::SetSecret),
            ("set_secret", Step::SetSecret),
            ("testSecret", Step::TestSecret),
            ("test_secret", Step::TestSecret),
            ("finishSecret", Step::FinishSecret),
            ("finish_secret", Step::FinishSecret),
        ] {
            let parsed = RotationEvent::from_json(&event(spelling)).expect("valid event");
            assert_eq!(parsed.step, step, "{spelling}");
            assert_eq!(parsed.secret_id.as_str(), ARN);
            assert_eq!(parsed.client_request_token.as_str(), TOKEN);
            assert!(parsed.rotation_token.is_none());
        }
    }

    #[test]
    fn the_aws_lambda_events_fixture_shape_parses() {
        let payload = json!({
            "Step": "createSecret",
            "SecretId": "arn:aws:secretsmanager:us-east-1:111122223333:secret:id-ABCD1E",
            "ClientRequestToken": "1ab2c3d4-5678-90ab-cdef-EXAMPLE11111"
        });
        assert!(RotationEvent::from_json(&payload).is_ok());
    }

    #[test]
    fn an_unknown_step_is_rejected_with_the_aws_text() {
        assert_eq!(
            rejection(event("rotateSecret")),
            format!("Invalid step parameter rotateSecret for secret {ARN}")
        );
    }

    #[test]
    fn a_missing_field_is_rejected_with_the_aws_text() {
        for name in ["Step", "SecretId", "ClientRequestToken"] {
            let mut payload = event("createSecret");
            payload.as_object_mut().expect("object").remove(name);
            assert_eq!(
                rejection(payload),
                format!("No value provided for \"{name}\".")
            );
        }
    }

    #[test]
    fn an_empty_or_null_field_counts_as_missing() {
        let mut payload = event("createSecret");
        payload["SecretId"] = json!("");
        assert_eq!(rejection(payload), "No value provided for \"SecretId\".");
        let mut payload = event("createSecret");
        payload["Step"] = Value::Null;
        assert_eq!(rejection(payload), "No value provided for \"Step\".");
    }

    #[test]
    fn control_characters_and_non_ascii_are_rejected_without_echoing_the_value() {
        for bad in [
            "arn\nINFO forged log line",
            "arn\u{7f}",
            "arné",
            "tab\there",
        ] {
            let mut payload = event("createSecret");
            payload["SecretId"] = json!(bad);
            let message = rejection(payload);
            assert_eq!(message, "\"SecretId\" contains invalid characters.");
        }
    }

    #[test]
    fn a_field_of_the_wrong_json_type_is_rejected() {
        let mut payload = event("createSecret");
        payload["ClientRequestToken"] = json!(42);
        assert_eq!(
            rejection(payload),
            "\"ClientRequestToken\" contains invalid characters."
        );
    }

    #[test]
    fn an_event_that_is_not_an_object_is_rejected() {
        assert!(rejection(json!(["createSecret"])).contains("JSON object"));
    }

    #[test]
    fn the_rotation_token_is_carried_and_redacted_in_debug() {
        let mut payload = event("createSecret");
        payload["RotationToken"] = json!("rotation-token-0123456789-abcdefghijklmnop");
        let parsed = RotationEvent::from_json(&payload).expect("valid event");
        let token = parsed.rotation_token.as_ref().expect("token carried");
        assert_eq!(token.expose(), "rotation-token-0123456789-abcdefghijklmnop");
        let debug = format!("{parsed:?}");
        assert!(!debug.contains("rotation-token-0123456789"), "{debug}");
        assert!(debug.contains("REDACTED"));
    }

    #[test]
    fn a_rotation_token_with_control_characters_is_rejected_without_echoing_it() {
        let mut payload = event("createSecret");
        payload["RotationToken"] = json!("secret\ntoken");
        let message = rejection(payload);
        assert!(!message.contains("secret"), "{message}");
    }
}
