//! The secret document: the JSON object stored in a secret's `SecretString`.
//!
//! The AWS templates store `engine`, `host`, `username`, `password` and optionally `port`,
//! `dbname`, `ssl` and `masterarn`, and users add keys of their own. A rotation rewrites only
//! the fields it owns: every other key, the JSON type of every value and the key order survive,
//! so applications reading the secret see exactly what they saw before, with a new password.
//!
//! The document holds a password, so it never shows its values: `Debug` lists key names only,
//! errors never quote the content, and every string is zeroed when the document is dropped.

use std::fmt;
use std::io;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use zeroize::Zeroize;

/// The JSON object stored in a secret version.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretDocument {
    /// With `preserve_order`, keys keep the order they were read in. Equality ignores that
    /// order: two documents with the same keys and values hold the same data.
    fields: Map<String, Value>,
}

/// How a flag such as `ssl` is set in a secret, told apart the way the AWS templates need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagValue {
    /// The key is missing or `null`.
    Absent,
    /// `true`, or a string equal to `"true"` ignoring case.
    True,
    /// `false`, or a string equal to `"false"` ignoring case.
    False,
    /// Any other value. The templates treat this as if the key were absent (try TLS, fall back
    /// to plain text); the caller may also want to log it.
    Unrecognised,
}

/// Why a secret value cannot be used. No variant holds a value from the secret except a port,
/// which is not secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError {
    /// serde_json's own message is not used because it is not promised to stay free of input.
    #[error("secret value is not valid JSON (line {line}, column {column})")]
    NotJson { line: usize, column: usize },

    #[error("secret value must be a JSON object, found {found}")]
    NotAnObject { found: &'static str },

    /// The AWS templates' wording, which operators may already search their logs for.
    #[error("{field} key is missing from secret JSON")]
    MissingField { field: String },

    #[error("{field} must be a string in secret JSON")]
    NotAString { field: String },

    #[error("{field} must be a port number from 1 to 65535 in secret JSON, found {found}")]
    InvalidPort { field: String, found: String },
}

impl SecretDocument {
    /// Parses a `SecretString`, which must hold a JSON object.
    pub fn parse(secret_string: &str) -> Result<Self, SecretFormatError> {
        let value: Value =
            serde_json::from_str(secret_string).map_err(|error| SecretFormatError::NotJson {
                line: error.line(),
                column: error.column(),
            })?;
        match value {
            Value::Object(fields) => Ok(SecretDocument { fields }),
            mut other => {
                let found = describe(&other);
                // It may be an array holding the password; clear it before it is dropped.
                zeroize_value(&mut other);
                Err(SecretFormatError::NotAnObject { found })
            }
        }
    }

    /// The document as compact JSON, in its key order, ready to store as a `SecretString`.
    ///
    /// # Panics
    ///
    /// Never in practice: writing JSON values into memory has no failure mode, since every key
    /// is a string, every value is already JSON and neither writer refuses bytes. Should
    /// serde_json ever fail anyway, a panic is better than storing a damaged secret.
    pub fn to_secret_string(&self) -> SecretString {
        // Measuring first lets the buffer be allocated once at its final size: growing it would
        // free earlier copies of the password without zeroing them.
        let mut counter = ByteCounter(0);
        let mut json = Vec::new();
        let written = serde_json::to_writer(&mut counter, &self.fields).and_then(|()| {
            json.reserve_exact(counter.0);
            serde_json::to_writer(&mut json, &self.fields)
        });
        if written.is_err() {
            json.zeroize();
            panic!("serde_json failed to write a JSON map into memory");
        }
        match String::from_utf8(json) {
            Ok(text) => SecretString::from(text),
            Err(error) => {
                error.into_bytes().zeroize();
                panic!("serde_json wrote JSON that is not UTF-8");
            }
        }
    }

    /// Whether the key is present, even with a `null` value.
    pub fn contains(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    /// The raw value of a key.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }

    /// A string field that must be present; `null` counts as missing.
    pub fn required_str(&self, field: &str) -> Result<&str, SecretFormatError> {
        self.optional_str(field)?
            .ok_or_else(|| SecretFormatError::MissingField {
                field: field.to_owned(),
            })
    }

    /// A string field that may be absent or `null`.
    pub fn optional_str(&self, field: &str) -> Result<Option<&str>, SecretFormatError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(SecretFormatError::NotAString {
                field: field.to_owned(),
            }),
        }
    }

    /// A required secret field (a password, an API key), copied into a `SecretString`.
    pub fn required_secret(&self, field: &str) -> Result<SecretString, SecretFormatError> {
        self.required_str(field).map(SecretString::from)
    }

    /// A port: a JSON number or a numeric string, from 1 to 65535; `default` when absent or
    /// `null`.
    ///
    /// The templates read the port with Python's `int()`, so a string may have surrounding
    /// whitespace and a whole-valued float such as `5432.0` is accepted. Unlike `int()`, a
    /// fractional number is refused rather than truncated: `5432.5` is a mistake, not a port.
    pub fn port(&self, field: &str, default: u16) -> Result<u16, SecretFormatError> {
        // Each arm also says how the value is shown if it is not a port.
        let (port, shown) = match self.fields.get(field) {
            None | Some(Value::Null) => return Ok(default),
            Some(Value::Number(number)) => (whole_number_port(number), number.to_string()),
            Some(Value::String(text)) => (text.trim().parse::<u16>().ok(), quote_briefly(text)),
            Some(other) => (None, describe(other).to_owned()),
        };
        match port {
            Some(port) if port != 0 => Ok(port),
            _ => Err(SecretFormatError::InvalidPort {
                field: field.to_owned(),
                found: shown,
            }),
        }
    }

    /// A flag read the way the AWS templates read `ssl`.
    pub fn flag(&self, field: &str) -> FlagValue {
        match self.fields.get(field) {
            None | Some(Value::Null) => FlagValue::Absent,
            Some(Value::Bool(true)) => FlagValue::True,
            Some(Value::Bool(false)) => FlagValue::False,
            Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => FlagValue::True,
            Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => FlagValue::False,
            Some(_) => FlagValue::Unrecognised,
        }
    }

    /// Sets a string field, keeping its position when it exists and appending it otherwise.
    pub fn set_str(&mut self, field: &str, value: &str) {
        self.set(field, Value::String(value.to_owned()));
    }

    /// Sets a secret string field, keeping its position when it exists.
    pub fn set_secret(&mut self, field: &str, value: &SecretString) {
        self.set(field, Value::String(value.expose_secret().to_owned()));
    }

    /// The key names, in document order.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.fields.keys().map(String::as_str)
    }

    fn set(&mut self, field: &str, value: Value) {
        // `insert` keeps an existing key's position (IndexMap semantics). The value it replaces
        // may be the previous password.
        if let Some(mut previous) = self.fields.insert(field.to_owned(), value) {
            zeroize_value(&mut previous);
        }
    }
}

impl fmt::Debug for SecretDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretDocument")
            .field("keys", &self.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Drop for SecretDocument {
    fn drop(&mut self) {
        for value in self.fields.values_mut() {
            zeroize_value(value);
        }
    }
}

/// Zeroes every string inside `value`, however deeply nested.
fn zeroize_value(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(zeroize_value),
        Value::Object(fields) => fields.values_mut().for_each(zeroize_value),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A JSON number as a `u16`, if it is a whole number in range; `5432.0` counts as whole.
fn whole_number_port(number: &serde_json::Number) -> Option<u16> {
    if let Some(whole) = number.as_u64() {
        return u16::try_from(whole).ok();
    }
    let float = number.as_f64()?;
    // Whole and in range, so the conversion below is exact.
    (float.fract() == 0.0 && (0.0..=f64::from(u16::MAX)).contains(&float)).then_some(float as u16)
}

/// A JSON value's kind, for messages that must not show the value itself.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A port string for an error message. A value that is not digits may be something misplaced
/// (a password pasted into the wrong field), so only digit strings are quoted; anything else is
/// described by its length alone.
fn quote_briefly(text: &str) -> String {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.len() <= 10 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        format!("{trimmed:?}")
    } else {
        format!(
            "a string of {} characters that is not a number",
            text.chars().count()
        )
    }
}

/// Counts the bytes written to it, to size a buffer before writing for real.
struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FAKE_PASSWORD: &str = "hunter2-S3cr3t!";

    fn document(json: &str) -> SecretDocument {
        SecretDocument::parse(json).expect("the test document is valid")
    }

    fn round_trip(document: &SecretDocument) -> SecretDocument {
        SecretDocument::parse(document.to_secret_string().expose_secret())
            .expect("a written document parses")
    }

    #[test]
    fn unknown_keys_and_nested_objects_survive_a_password_change() {
        let mut secret = document(
            r#"{"engine":"postgres","host":"db","username":"app","password":"old",
                "extra":{"nested":[1,"two",{"three":3}]},"team":"payments"}"#,
        );
        secret.set_secret("password", &SecretString::from("new"));
        let written = round_trip(&secret);
        assert_eq!(
            written.get("extra"),
            Some(&json!({"nested":[1,"two",{"three":3}]}))
        );
        assert_eq!(written.optional_str("team"), Ok(Some("payments")));
        assert_eq!(written.required_str("password"), Ok("new"));
    }

    #[test]
    fn a_number_is_read_exactly_and_keeps_its_value_however_often_it_is_written_back() {
        // Found by the secret_document fuzz target: serde_json's default number parser may be
        // one unit in the last place off, and off again when it reads its own output, so such a
        // number drifted with every rotation. Its `float_roundtrip` feature reads exactly.
        let input = r#"{"big":-10555555555555555555555555555555555555555555555555555555555555555555555555555,
                        "tiny":2.2250738585072011e-308,"password":"old"}"#;
        let mut secret = document(input);
        assert_eq!(
            secret.get("big").and_then(Value::as_f64),
            Some(-1.0555555555555555e76)
        );
        assert_eq!(
            secret.get("tiny").and_then(Value::as_f64),
            Some(2.225073858507201e-308)
        );
        for _ in 0..3 {
            secret.set_secret("password", &SecretString::from("new"));
            secret = round_trip(&secret);
        }
        secret.set_secret("password", &SecretString::from("old"));
        assert_eq!(secret, document(input));
    }

    #[test]
    fn a_string_port_stays_a_string_when_written_back() {
        let mut secret = document(r#"{"port":"5432","password":"old"}"#);
        secret.set_secret("password", &SecretString::from("new"));
        assert_eq!(round_trip(&secret).get("port"), Some(&json!("5432")));
    }

    #[test]
    fn a_number_port_stays_a_number_when_written_back() {
        let mut secret = document(r#"{"port":5432,"password":"old"}"#);
        secret.set_secret("password", &SecretString::from("new"));
        assert_eq!(round_trip(&secret).get("port"), Some(&json!(5432)));
    }

    #[test]
    fn key_order_is_preserved_and_a_replaced_key_keeps_its_place() {
        let mut secret = document(
            r#"{"zeta":1,"password":"old","alpha":true,"username":"app","masterarn":"arn"}"#,
        );
        secret.set_secret("password", &SecretString::from("new"));
        secret.set_str("added", "last");
        let written = round_trip(&secret);
        assert_eq!(
            written.keys().collect::<Vec<_>>(),
            [
                "zeta",
                "password",
                "alpha",
                "username",
                "masterarn",
                "added"
            ]
        );
    }

    #[test]
    fn the_written_json_is_compact_and_ordered() {
        let mut secret = document("{ \"b\" : 1 ,\n \"a\" : [ true , null ] }");
        secret.set_str("c", "x");
        assert_eq!(
            secret.to_secret_string().expose_secret(),
            r#"{"b":1,"a":[true,null],"c":"x"}"#
        );
    }

    #[test]
    fn a_missing_field_uses_the_aws_templates_wording() {
        let secret = document(r#"{"username":"app","password":null}"#);
        for field in ["host", "password"] {
            let error = secret
                .required_str(field)
                .expect_err("the field is missing");
            assert_eq!(
                error.to_string(),
                format!("{field} key is missing from secret JSON")
            );
        }
    }

    #[test]
    fn a_field_that_is_not_a_string_is_an_error_naming_it_without_its_value() {
        let secret = document(r#"{"password":["hunter2-S3cr3t!"],"host":42}"#);
        let error = secret.required_str("password").expect_err("not a string");
        assert_eq!(
            error.to_string(),
            "password must be a string in secret JSON"
        );
        assert_eq!(
            secret.optional_str("host").map_err(|e| e.to_string()),
            Err("host must be a string in secret JSON".to_owned())
        );
    }

    #[test]
    fn an_optional_field_may_be_absent_or_null() {
        let secret = document(r#"{"dbname":null,"host":"db"}"#);
        assert_eq!(secret.optional_str("dbname"), Ok(None));
        assert_eq!(secret.optional_str("masterarn"), Ok(None));
        assert_eq!(secret.optional_str("host"), Ok(Some("db")));
    }

    #[test]
    fn a_required_secret_is_copied_out() {
        let secret = document(r#"{"password":"hunter2-S3cr3t!"}"#);
        let password = secret.required_secret("password").expect("present");
        assert_eq!(password.expose_secret(), FAKE_PASSWORD);
        assert!(secret.required_secret("apikey").is_err());
    }

    #[test]
    fn invalid_json_is_reported_by_position_without_quoting_the_input() {
        let input = r#"{"password": hunter2-S3cr3t!}"#;
        let error = SecretDocument::parse(input).expect_err("not JSON");
        let message = error.to_string();
        assert_eq!(
            message,
            "secret value is not valid JSON (line 1, column 14)"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn truncated_json_is_reported_without_quoting_the_input() {
        let error = SecretDocument::parse(r#"{"password":"hunter2-S3cr3t!"#).expect_err("not JSON");
        let message = error.to_string();
        assert!(
            message.starts_with("secret value is not valid JSON"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn a_value_that_is_not_an_object_is_named_by_its_kind_only() {
        let cases = [
            (r#"["hunter2-S3cr3t!"]"#, "an array"),
            (r#""hunter2-S3cr3t!""#, "a string"),
            ("42", "a number"),
            ("true", "a boolean"),
            ("null", "null"),
        ];
        for (input, kind) in cases {
            let message = SecretDocument::parse(input)
                .expect_err("not an object")
                .to_string();
            assert_eq!(
                message,
                format!("secret value must be a JSON object, found {kind}")
            );
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn debug_shows_the_keys_but_never_the_values() {
        let secret = document(r#"{"engine":"mysql","password":"hunter2-S3cr3t!"}"#);
        let shown = format!("{secret:?}");
        assert_eq!(shown, r#"SecretDocument { keys: ["engine", "password"] }"#);
        assert!(!format!("{secret:#?}").contains(FAKE_PASSWORD));
    }

    #[test]
    fn a_port_may_be_a_number_or_a_numeric_string() {
        let cases = [
            (r#"{"port":5432}"#, 5432),
            (r#"{"port":"5432"}"#, 5432),
            (r#"{"port":" 3306 "}"#, 3306),
            (r#"{"port":5432.0}"#, 5432),
            (r#"{"port":1}"#, 1),
            (r#"{"port":65535}"#, 65535),
        ];
        for (input, expected) in cases {
            assert_eq!(document(input).port("port", 1), Ok(expected), "{input}");
        }
    }

    #[test]
    fn an_absent_or_null_port_takes_the_default() {
        assert_eq!(document("{}").port("port", 5432), Ok(5432));
        assert_eq!(document(r#"{"port":null}"#).port("port", 3306), Ok(3306));
    }

    #[test]
    fn an_invalid_port_is_an_error_naming_the_field_and_value() {
        let cases = [
            (
                r#"{"port":"abc"}"#,
                "a string of 3 characters that is not a number",
            ),
            (r#"{"port":0}"#, "0"),
            (r#"{"port":"0"}"#, "\"0\""),
            (r#"{"port":70000}"#, "70000"),
            (r#"{"port":-1}"#, "-1"),
            (r#"{"port":5432.5}"#, "5432.5"),
            (
                r#"{"port":""}"#,
                "a string of 0 characters that is not a number",
            ),
            (r#"{"port":true}"#, "a boolean"),
            (r#"{"port":{"number":5432}}"#, "an object"),
        ];
        for (input, found) in cases {
            let error = document(input).port("port", 5432).expect_err(input);
            assert_eq!(
                error.to_string(),
                format!("port must be a port number from 1 to 65535 in secret JSON, found {found}"),
                "{input}"
            );
        }
    }

    #[test]
    fn a_port_string_that_is_not_digits_is_never_quoted() {
        let error = document(r#"{"port":"hunter2-S3cr3t!-and-more"}"#)
            .port("port", 5432)
            .expect_err("not a port");
        let message = error.to_string();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            message.ends_with("found a string of 24 characters that is not a number"),
            "{message}"
        );
        let error = document(r#"{"port":"99999"}"#)
            .port("port", 5432)
            .expect_err("out of range");
        assert!(error.to_string().ends_with("found \"99999\""), "{error}");
    }

    #[test]
    fn a_flag_is_read_the_way_the_templates_read_ssl() {
        let cases = [
            (r#"{"ssl":true}"#, FlagValue::True),
            (r#"{"ssl":"TRUE"}"#, FlagValue::True),
            (r#"{"ssl":"True"}"#, FlagValue::True),
            (r#"{"ssl":false}"#, FlagValue::False),
            (r#"{"ssl":"false"}"#, FlagValue::False),
            (r#"{"ssl":"FALSE"}"#, FlagValue::False),
            (r#"{"ssl":"yes"}"#, FlagValue::Unrecognised),
            (r#"{"ssl":" true"}"#, FlagValue::Unrecognised),
            (r#"{"ssl":1}"#, FlagValue::Unrecognised),
            (r#"{"ssl":[]}"#, FlagValue::Unrecognised),
            (r#"{"ssl":null}"#, FlagValue::Absent),
            ("{}", FlagValue::Absent),
        ];
        for (input, expected) in cases {
            assert_eq!(document(input).flag("ssl"), expected, "{input}");
        }
    }

    #[test]
    fn contains_sees_a_key_even_when_it_is_null() {
        let secret = document(r#"{"dbname":null}"#);
        assert!(secret.contains("dbname"));
        assert!(!secret.contains("port"));
        assert_eq!(secret.get("dbname"), Some(&Value::Null));
    }

    #[test]
    fn documents_with_the_same_data_are_equal_whatever_their_key_order() {
        let first = document(r#"{"a":1,"b":"x"}"#);
        assert_eq!(first, document(r#"{"b":"x","a":1}"#));
        assert_eq!(first.clone(), first);
        assert_ne!(first, document(r#"{"a":1,"b":"y"}"#));
        assert_ne!(first, document(r#"{"a":"1","b":"x"}"#));
    }

    #[test]
    fn setting_a_field_replaces_its_value_whatever_its_type() {
        let mut secret = document(r#"{"username":{"old":true}}"#);
        secret.set_str("username", "app");
        assert_eq!(secret.required_str("username"), Ok("app"));
    }

    #[test]
    fn zeroizing_a_value_clears_every_nested_string() {
        let mut value = json!({"password": FAKE_PASSWORD, "list": ["a", {"deep": "b"}], "n": 1});
        zeroize_value(&mut value);
        assert_eq!(
            value,
            json!({"password": "", "list": ["", {"deep": ""}], "n": 1})
        );
    }
}
