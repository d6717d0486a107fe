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
