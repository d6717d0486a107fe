//! Secret documents: any bytes, as text, go to `SecretDocument::parse`, and every accessor is
//! asked about every key.
//!
//! What must hold (shared/src/secret.rs): it never panics; it accepts exactly the JSON objects,
//! and reports anything else by position or kind only; a document's `Debug` shows its key names
//! and nothing else; writing it back gives the same keys in the same order with the same values,
//! and reading that gives the same document; accessors answer as the AWS templates read the
//! fields, and their errors show a value only when it is a short digit string (a port).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rotation_document::secret::{FlagValue, SecretDocument, SecretFormatError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

/// Fields the functions read, asked about whether the document has them or not.
const KNOWN_FIELDS: [&str; 9] = [
    "engine",
    "host",
    "username",
    "password",
    "port",
    "dbname",
    "ssl",
    "masterarn",
    "api_key",
];

fuzz_target!(|data: &[u8]| {
    // A SecretString is UTF-8; invalid bytes become U+FFFD so that every input is used.
    let text = String::from_utf8_lossy(data);
    match (
        SecretDocument::parse(&text),
        serde_json::from_str::<Value>(&text),
    ) {
        (Ok(document), Ok(Value::Object(fields))) => {
            debug_shows_the_keys_only(&document, &fields);
            writing_back_keeps_keys_order_and_values(&document, &fields);
            for name in fields.keys().map(String::as_str).chain(KNOWN_FIELDS) {
                accessors_read_the_field_as_the_templates_do(&document, &fields, name);
            }
            setting_the_password_changes_nothing_else(&document, &fields);
        }
        (Err(error @ SecretFormatError::NotJson { line, column }), Err(reference)) => {
            assert_eq!((line, column), (reference.line(), reference.column()));
            assert_eq!(
                error.to_string(),
                format!("secret value is not valid JSON (line {line}, column {column})")
            );
        }
        (Err(error @ SecretFormatError::NotAnObject { found }), Ok(other)) => {
            assert_eq!(found, kind(&other));
            assert_eq!(
                error.to_string(),
                format!("secret value must be a JSON object, found {found}")
            );
        }
        (outcome, reference) => {
            panic!("parse gave {outcome:?} where serde_json read {reference:?}")
        }
    }
});

/// A JSON value's kind as the error texts name it.
fn kind(value: &Value) -> &'static str {
    let kinds = [
        (value.is_null(), "null"),
        (value.is_boolean(), "a boolean"),
        (value.is_number(), "a number"),
        (value.is_string(), "a string"),
        (value.is_array(), "an array"),
    ];
    kinds
        .into_iter()
        .find_map(|(is, name)| is.then_some(name))
        .unwrap_or("an object")
}

/// What `Debug` must print: a struct of the same name with the key names alone, as derived.
mod shown {
    // Only `Debug` reads the field, and `Debug` is what is compared.
    #[allow(dead_code)]
    #[derive(Debug)]
    pub struct SecretDocument<'a> {
        pub keys: Vec<&'a str>,
    }
}

fn debug_shows_the_keys_only(document: &SecretDocument, fields: &Map<String, Value>) {
    let keys: Vec<&str> = document.keys().collect();
    assert!(keys.iter().copied().eq(fields.keys().map(String::as_str)));
    let expected = shown::SecretDocument { keys };
    assert_eq!(format!("{document:?}"), format!("{expected:?}"));
    assert_eq!(format!("{document:#?}"), format!("{expected:#?}"));
}

fn writing_back_keeps_keys_order_and_values(
    document: &SecretDocument,
    fields: &Map<String, Value>,
) {
    let written = document.to_secret_string();
    let compact = serde_json::to_string(fields).expect("a map of JSON values writes");
    assert_eq!(
        written.expose_secret(),
        compact,
        "compact JSON in key order"
    );
    let read_again = SecretDocument::parse(written.expose_secret()).expect("written JSON parses");
    assert!(read_again.keys().eq(document.keys()), "key order survives");
    assert!(&read_again == document, "values survive");
    assert_eq!(
        read_again.to_secret_string().expose_secret(),
        written.expose_secret(),
        "writing is stable"
    );
}

fn accessors_read_the_field_as_the_templates_do(
    document: &SecretDocument,
    fields: &Map<String, Value>,
    name: &str,
) {
    let value = fields.get(name);
    assert_eq!(document.contains(name), value.is_some());
    assert_eq!(document.get(name), value);

    let expected_str = match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.as_str())),
        Some(_) => Err(format!("{name} must be a string in secret JSON")),
    };
    let optional = document.optional_str(name).map_err(|e| e.to_string());
    assert_eq!(optional, expected_str);
    let required = document.required_str(name).map_err(|e| e.to_string());
    let expected_required = expected_str
        .and_then(|text| text.ok_or_else(|| format!("{name} key is missing from secret JSON")));
    assert_eq!(required, expected_required);
    let secret = document.required_secret(name);
    assert_eq!(
        secret.as_ref().map(SecretString::expose_secret).ok(),
        required.as_ref().ok().copied()
    );

    match (document.port(name, 5432), expected_port(value)) {
        (Ok(port), Ok(expected)) => assert_eq!(port, expected),
        (Err(error), Err(found)) => assert_eq!(
            error.to_string(),
            format!("{name} must be a port number from 1 to 65535 in secret JSON, found {found}")
        ),
        (outcome, model) => panic!("port({name:?}) gave {outcome:?}, the model {model:?}"),
    }

    let flag = match value {
        None | Some(Value::Null) => FlagValue::Absent,
        Some(Value::Bool(true)) => FlagValue::True,
        Some(Value::Bool(false)) => FlagValue::False,
        Some(Value::String(text)) if text.to_lowercase() == "true" && text.is_ascii() => {
            FlagValue::True
        }
        Some(Value::String(text)) if text.to_lowercase() == "false" && text.is_ascii() => {
            FlagValue::False
        }
        Some(_) => FlagValue::Unrecognised,
    };
    assert_eq!(document.flag(name), flag);
}

/// A port as the templates' `int()` reads it, refusing 0, fractions and anything out of range;
/// `Err` holds how the value must be shown: a digit string of ten digits at most may be quoted,
/// any other string is described by its length (it may be a misplaced password).
fn expected_port(value: Option<&Value>) -> Result<u16, String> {
    match value {
        None | Some(Value::Null) => Ok(5432),
        Some(Value::Number(number)) => number
            .as_f64()
            .filter(|float| float.fract() == 0.0 && (1.0..=65535.0).contains(float))
            .map(|float| float as u16)
            .ok_or_else(|| number.to_string()),
        Some(Value::String(text)) => {
            let trimmed = text.trim();
            let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
            let significant = digits.trim_start_matches('0');
            let port = (!digits.is_empty()
                && digits.bytes().all(|byte| byte.is_ascii_digit())
                && significant.len() <= 5)
                .then(|| significant.parse::<u32>().unwrap_or(0))
                .filter(|port| (1..=65535).contains(port));
            match port {
                Some(port) => Ok(port as u16),
                None if !trimmed.is_empty()
                    && trimmed.len() <= 10
                    && trimmed.bytes().all(|byte| byte.is_ascii_digit()) =>
                {
                    Err(format!("\"{trimmed}\""))
                }
                None => Err(format!(
                    "a string of {} characters that is not a number",
                    text.chars().count()
                )),
            }
        }
        Some(other) => Err(kind(other).to_owned()),
    }
}

/// A rotation writes the password and nothing else: every other key keeps its place and value.
fn setting_the_password_changes_nothing_else(
    document: &SecretDocument,
    fields: &Map<String, Value>,
) {
    let mut rotated = document.clone();
    rotated.set_secret("password", &SecretString::from("n3w-Passw0rd"));
    let mut expected = fields.clone();
    expected.insert("password".to_owned(), Value::from("n3w-Passw0rd"));
    assert!(rotated.keys().eq(expected.keys().map(String::as_str)));
    for (name, value) in &expected {
        assert_eq!(rotated.get(name), Some(value), "{name}");
    }
}
