//! The one leak check every integration test uses: no secret the test knows may appear in what
//! the function wrote, in an error it returned, or in a server's log.

/// None of `secrets` appears in `text`, raw or escaped the way JSON or Rust's `Debug` would
/// write it. The failure names the place and the secret's length, never the secret.
pub fn assert_no_secret_in(text: &str, secrets: &[String], what: &str) {
    assert_no_secret_form_in(text, secrets, what, |_| Vec::new());
}

/// [`assert_no_secret_in`], also looking for the forms `more_forms` gives for each secret (a
/// dialect's quoting, say).
pub fn assert_no_secret_form_in(
    text: &str,
    secrets: &[String],
    what: &str,
    more_forms: impl Fn(&str) -> Vec<String>,
) {
    for secret in secrets {
        let json = serde_json::to_string(secret).expect("JSON string");
        let debug = format!("{secret:?}");
        let mut forms = vec![
            secret.clone(),
            json.trim_matches('"').to_owned(),
            debug.trim_matches('"').to_owned(),
        ];
        forms.extend(more_forms(secret));
        for form in forms {
            assert!(
                !text.contains(&form),
                "a secret ({} characters) appears in {what}",
                secret.len()
            );
        }
    }
}

/// Every secret the tests of this process have seen: passwords, keys and `RotationToken`s, as
/// the fixtures created or read them. The harness checks each function's output and errors
/// against it, so no test has to remember to.
static KNOWN: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// The secret JSON fields whose values are credentials.
const SECRET_FIELDS: [&str; 3] = ["password", "api_key", "secret_access_key"];

/// Shorter values are too likely to appear by chance to be a useful signal.
const SHORTEST_TRACKED: usize = 8;

/// Records a secret the functions must never print.
pub fn remember(secret: &str) {
    if secret.chars().count() >= SHORTEST_TRACKED {
        known_secrets().insert(secret.to_owned());
    }
}

/// Records the credential fields of a secret's JSON text (anything else is ignored).
pub fn remember_fields(secret_string: &str) {
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(secret_string) {
        for field in SECRET_FIELDS {
            if let Some(serde_json::Value::String(value)) = fields.get(field) {
                remember(value);
            }
        }
    }
}

/// Fails if any secret recorded so far appears in `text`.
pub fn assert_no_known_secret_in(text: &str, what: &str) {
    let known: Vec<String> = known_secrets().iter().cloned().collect();
    assert_no_secret_in(text, &known, what);
}

fn known_secrets() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<String>> {
    KNOWN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "a secret (22 characters) appears in the output")]
    fn a_remembered_password_in_the_output_fails_the_check() {
        remember_fields(r#"{"username": "app", "password": "leaky-Passw0rd-1234567"}"#);
        assert_no_known_secret_in("login failed for leaky-Passw0rd-1234567", "the output");
    }

    #[test]
    #[should_panic(expected = "appears in an error")]
    fn a_json_escaped_key_is_caught_too() {
        remember(r#"sk_"quoted"\key-0001"#);
        assert_no_known_secret_in(r#"{"errorMessage": "sk_\"quoted\"\\key-0001"}"#, "an error");
    }

    #[test]
    fn short_values_and_other_fields_are_not_tracked() {
        remember_fields(r#"{"username": "application-user", "password": "short"}"#);
        assert_no_known_secret_in("application-user short", "the output");
    }
}
