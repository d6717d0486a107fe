//! Rotation events: any bytes that parse as JSON go to `RotationEvent::from_json`.
//!
//! What must hold (shared/src/event.rs, DESIGN.md): it never panics; it accepts exactly the
//! events whose `SecretId`, `ClientRequestToken` and `Step` are non-empty printable ASCII within
//! the service's lengths, with a known step spelling, and whose `RotationToken` is absent,
//! null, empty or printable ASCII within its length; every rejection is `InvalidEvent` with the
//! AWS templates' text (or the length refusal), on one printable line (it is logged), and never
//! shows the `RotationToken`, a value that is too long or one that is not printable ASCII; an
//! accepted event's `Debug` never shows its `RotationToken`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rotation_document::event::{InvalidEvent, RotationEvent, RotationToken, Step};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // Bytes that are not JSON never reach `from_json` (the Lambda runtime parses the payload).
    let Ok(payload) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let outcome = RotationEvent::from_json(&payload);
    match (&outcome, expected(&payload)) {
        (Ok(event), Ok(model)) => {
            assert_eq!(event.step, model.step);
            assert_eq!(event.secret_id.as_str(), model.secret_id);
            assert_eq!(event.secret_id.to_string(), model.secret_id);
            assert_eq!(
                event.client_request_token.as_str(),
                model.client_request_token
            );
            assert_eq!(
                event.rotation_token.as_ref().map(RotationToken::expose),
                model.rotation_token
            );
            the_debug_form_hides_the_token(event);
        }
        (Err(InvalidEvent(message)), Err(expected_message)) => {
            assert_eq!(message, &expected_message);
            assert!(
                message.bytes().all(|byte| (b' '..=b'~').contains(&byte)),
                "a rejection is logged: one line of printable ASCII, got {message:?}"
            );
        }
        (outcome, model) => panic!("from_json gave {outcome:?}, the model {model:?}"),
    }
    the_outcome_does_not_depend_on_the_token_s_value(&payload, &outcome);
    the_outcome_does_not_depend_on_refused_values(&payload, &outcome);
});

/// A field as the validation classes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field<'a> {
    /// Absent, `null` or `""`.
    Missing,
    /// A string of more characters than the field may have (its limit).
    TooLong(usize),
    Printable(&'a str),
    /// Not a string, or a string with a byte outside `' '..='~'`.
    Invalid,
}

/// The service's limits: a secret ARN or name has 2,048 characters at most, a version token 64;
/// the step names are short, and the `RotationToken` gets a generous limit.
fn limit(name: &str) -> usize {
    [("SecretId", 2048), ("ClientRequestToken", 64), ("Step", 64)]
        .into_iter()
        .find_map(|(field, limit)| (field == name).then_some(limit))
        .unwrap_or(4096)
}

fn field<'a>(payload: &'a Value, name: &str) -> Field<'a> {
    match payload.get(name) {
        None | Some(Value::Null) => Field::Missing,
        Some(Value::String(text)) if text.chars().count() > limit(name) => {
            Field::TooLong(limit(name))
        }
        Some(Value::String(text)) if text.is_empty() => Field::Missing,
        Some(Value::String(text)) if text.chars().all(|c| matches!(c, ' '..='~')) => {
            Field::Printable(text)
        }
        Some(_) => Field::Invalid,
    }
}

#[derive(Debug)]
struct Model<'a> {
    step: Step,
    secret_id: &'a str,
    client_request_token: &'a str,
    rotation_token: Option<&'a str>,
}

/// What `from_json` must answer, from the rules in the module comment and the AWS texts.
fn expected(payload: &Value) -> Result<Model<'_>, String> {
    if !payload.is_object() {
        return Err("the rotation event must be a JSON object".to_owned());
    }
    let mut values = Vec::new();
    for name in ["SecretId", "ClientRequestToken", "Step"] {
        match field(payload, name) {
            Field::Missing => return Err(format!("No value provided for \"{name}\".")),
            Field::TooLong(limit) => {
                return Err(format!("\"{name}\" is longer than {limit} characters."))
            }
            Field::Invalid => return Err(format!("\"{name}\" contains invalid characters.")),
            Field::Printable(text) => values.push(text),
        }
    }
    let [secret_id, client_request_token, step_text] = values[..] else {
        unreachable!("three fields were read");
    };
    let step = match step_text {
        "createSecret" | "create_secret" => Step::CreateSecret,
        "setSecret" | "set_secret" => Step::SetSecret,
        "testSecret" | "test_secret" => Step::TestSecret,
        "finishSecret" | "finish_secret" => Step::FinishSecret,
        _ => {
            return Err(format!(
                "Invalid step parameter {step_text} for secret {secret_id}"
            ))
        }
    };
    let rotation_token = match field(payload, "RotationToken") {
        Field::Missing => None,
        Field::Printable(token) => Some(token),
        Field::TooLong(limit) => {
            return Err(format!(
                "\"RotationToken\" is longer than {limit} characters."
            ));
        }
        Field::Invalid => {
            return Err("\"RotationToken\" contains invalid characters.".to_owned());
        }
    };
    Ok(Model {
        step,
        secret_id,
        client_request_token,
        rotation_token,
    })
}

/// The same event with another token changes nothing in `Debug`: the token is not shown.
fn the_debug_form_hides_the_token(event: &RotationEvent) {
    let shown = format!("{event:?}");
    let mut other = event.clone();
    if let Some(token) = &mut other.rotation_token {
        *token = RotationToken::new(format!("other-{}", token.expose()));
        assert_eq!(format!("{token:?}"), "RotationToken([REDACTED])");
    }
    assert_eq!(shown, format!("{other:?}"), "Debug depends on the token");
    assert_eq!(format!("{event:#?}"), format!("{other:#?}"));
}

/// Another value of the same class as the field's, or `None` for a missing field.
fn another_of_the_same_class(payload: &Value, name: &str) -> Option<Value> {
    // A string of one repeated character, as long as the original and different from it.
    let same_length = |text: &str, characters: [char; 2]| {
        let length = text.chars().count();
        let first = characters[0].to_string().repeat(length);
        Value::String(if first == text {
            characters[1].to_string().repeat(length)
        } else {
            first
        })
    };
    let text = payload.get(name).and_then(Value::as_str).unwrap_or("");
    match field(payload, name) {
        Field::Missing => None,
        Field::TooLong(_) => Some(same_length(text, ['\n', 'x'])),
        Field::Printable(text) => Some(same_length(text, ['x', 'y'])),
        Field::Invalid => Some(Value::Array(vec![
            Value::from("line\nbreak"),
            Value::from(7),
        ])),
    }
}

/// Replacing the token by another of the same class (valid or not) gives the same outcome
/// apart from the token itself: no message can be quoting it.
fn the_outcome_does_not_depend_on_the_token_s_value(
    payload: &Value,
    outcome: &Result<RotationEvent, InvalidEvent>,
) {
    if let Some(replacement) = another_of_the_same_class(payload, "RotationToken") {
        let mut changed = payload.clone();
        changed["RotationToken"] = replacement;
        assert_same_outcome(outcome, &RotationEvent::from_json(&changed));
    }
}

/// Replacing each field that is refused (too long, or not printable ASCII) by another refused
/// value of the same class gives the same outcome: such a value is never quoted back.
fn the_outcome_does_not_depend_on_refused_values(
    payload: &Value,
    outcome: &Result<RotationEvent, InvalidEvent>,
) {
    for name in ["SecretId", "ClientRequestToken", "Step", "RotationToken"] {
        if matches!(field(payload, name), Field::Invalid | Field::TooLong(_)) {
            if let Some(replacement) = another_of_the_same_class(payload, name) {
                let mut changed = payload.clone();
                changed[name] = replacement;
                assert_same_outcome(outcome, &RotationEvent::from_json(&changed));
            }
        }
    }
}

fn assert_same_outcome(
    first: &Result<RotationEvent, InvalidEvent>,
    second: &Result<RotationEvent, InvalidEvent>,
) {
    match (first, second) {
        (Ok(first), Ok(second)) => {
            assert_eq!(first.step, second.step);
            assert_eq!(first.secret_id, second.secret_id);
            assert_eq!(first.client_request_token, second.client_request_token);
            assert_eq!(
                first.rotation_token.is_some(),
                second.rotation_token.is_some()
            );
        }
        (Err(InvalidEvent(first)), Err(InvalidEvent(second))) => {
            assert_eq!(
                first, second,
                "the message depends on a value it must not show"
            );
        }
        (first, second) => panic!("outcomes differ: {first:?} and {second:?}"),
    }
}
