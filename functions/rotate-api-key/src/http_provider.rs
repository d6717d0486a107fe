//! Keys issued by an HTTP service meeting the documented contract (README, "rotate-api-key"):
//! issue (POST), list (GET), revoke (DELETE) and a test call (GET), authenticated with an admin
//! key or with the current key itself.
//!
//! Every key this function issues is named `<secret>:<ClientRequestToken>`, where `<secret>` is
//! the last part of the secret's ARN (its name and the random suffix Secrets Manager gives it),
//! and the issue request carries `Idempotency-Key: <ClientRequestToken>`: the name lets a retried
//! createSecret find a key that an attempt which crashed issued, and the idempotency key lets a
//! provider that honours it hand that same key back.
//!
//! The name is this secret's namespace at the provider, and nothing in the secret's JSON can move
//! it: the admin key may revoke every key of the provider, so what scopes revocation must be
//! bound to the secret itself. `:` cannot occur in a secret's name, so `<secret>:` is never the
//! start of another secret's namespace (with `-`, `app-AbCdEf-` would also start the names of
//! secret `app-AbCdEf-x`).

use std::sync::Arc;

use async_trait::async_trait;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rotation::store::{current_document_of, SecretStore};
use rotation::target::TargetErrorKind;
use rotation::{RotationError, SecretDocument, SecretVersions, TargetError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use rotation::config::ConfigError;

use crate::config::{HttpConfig, KEY_ID_PLACEHOLDER};
use crate::https::{Answer, CallError, HttpsClient};
use crate::target::{IssuedKey, KeyProvider, LiveKey, ProviderSession};

/// The secret JSON fields of an HTTP provider's key.
pub const KEY_FIELD: &str = "api_key";
pub const KEY_ID_FIELD: &str = "key_id";
/// The field that once let a secret choose the name prefix of its keys. A secret could claim
/// another's prefix with it, so the prefix is now the secret's own (its ARN): a version holding
/// the field with another value is refused, one holding this secret's own prefix is accepted.
pub const NAME_PREFIX_FIELD: &str = "key_name_prefix";

/// Between the secret's name and the token in a key's name; never part of a secret's name.
const NAME_SEPARATOR: char = ':';

/// The header that makes a repeated issue request return the first answer.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// What a key id may contain unescaped in a URL path segment (RFC 3986 unreserved).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The longest provider message quoted in an error.
const MESSAGE_LIMIT: usize = 300;

pub struct HttpProvider {
    shared: Arc<Shared>,
}

/// What every session of the process uses: built once at start-up.
struct Shared {
    config: HttpConfig,
    client: HttpsClient,
    store: Arc<dyn SecretStore>,
}

impl HttpProvider {
    pub fn new(config: HttpConfig, store: Arc<dyn SecretStore>) -> Result<Self, ConfigError> {
        let client = HttpsClient::new(
            config.ca_bundle.as_deref(),
            config.allow_insecure_http,
            config.timeout,
        )?;
        Ok(HttpProvider {
            shared: Arc::new(Shared {
                config,
                client,
                store,
            }),
        })
    }
}

#[async_trait]
impl KeyProvider for HttpProvider {
    async fn session(
        &self,
        current: &SecretDocument,
        versions: &SecretVersions<'_>,
    ) -> Result<Box<dyn ProviderSession>, RotationError> {
        let admin_key = match &self.shared.config.admin_secret_arn {
            Some(arn) => admin_key(self.shared.store.as_ref(), arn).await?,
            None => secret_field(current, KEY_FIELD, "AWSCURRENT version")?,
        };
        let prefix = secret_prefix(versions.secret_arn());
        check_claimed_prefix(current, &prefix)?;
        Ok(Box::new(HttpSession {
            shared: self.shared.clone(),
            admin_key,
            key_name: format!("{prefix}{NAME_SEPARATOR}{}", versions.token()),
            namespace: format!("{prefix}{NAME_SEPARATOR}"),
            token: versions.token().to_owned(),
        }))
    }

    fn key_id<'d>(&self, document: &'d SecretDocument, what: &str) -> Result<&'d str, TargetError> {
        document
            .required_str(KEY_ID_FIELD)
            .map_err(|problem| TargetError::invalid_secret(format!("{what}: {problem}")))
    }

    fn with_key(&self, base: &SecretDocument, key: &IssuedKey) -> SecretDocument {
        let mut document = base.clone();
        document.set_secret(KEY_FIELD, &key.secret);
        document.set_str(KEY_ID_FIELD, &key.id);
        document
    }
}

/// The last part of a secret's ARN: `arn:…:secret:team/billing-AbCdEf` gives `team/billing-AbCdEf`.
/// No other secret has it: Secrets Manager adds a random suffix to every secret's name.
fn secret_prefix(secret_arn: &str) -> String {
    secret_arn
        .rsplit_once(":secret:")
        .map_or(secret_arn, |(_, name)| name)
        .to_owned()
}

/// A version may still carry `key_name_prefix` (an earlier release let it choose the prefix):
/// only this secret's own prefix is accepted there. Another value is refused rather than ignored,
/// so that an operator who relied on it learns the keys are named differently now, and a secret
/// claiming another's prefix is told so.
fn check_claimed_prefix(current: &SecretDocument, prefix: &str) -> Result<(), TargetError> {
    match current.optional_str(NAME_PREFIX_FIELD) {
        Ok(None) => Ok(()),
        Ok(Some(claimed)) if claimed == prefix => Ok(()),
        Ok(Some(claimed)) => Err(TargetError::invalid_secret(format!(
            "AWSCURRENT version: {NAME_PREFIX_FIELD} {claimed:?} is not this secret's key name \
             prefix {prefix:?}: the keys of a secret are named after the secret itself (its ARN), \
             so that no secret can claim another's keys; remove {NAME_PREFIX_FIELD} from the \
             secret. Nothing was changed"
        ))),
        Err(problem) => Err(TargetError::invalid_secret(format!(
            "AWSCURRENT version: {problem}"
        ))),
    }
}

async fn admin_key(store: &dyn SecretStore, arn: &str) -> Result<SecretString, RotationError> {
    let (document, what) = current_document_of(store, "admin secret", arn).await?;
    Ok(secret_field(&document, KEY_FIELD, &what)?)
}

fn secret_field(
    document: &SecretDocument,
    field: &str,
    what: &str,
) -> Result<SecretString, TargetError> {
    document
        .required_secret(field)
        .map_err(|problem| TargetError::invalid_secret(format!("{what}: {problem}")))
}

struct HttpSession {
    shared: Arc<Shared>,
    /// The key that issues, lists and revokes.
    admin_key: SecretString,
    /// `<secret>:`: the names of this secret's keys start with it, and no other secret's.
    namespace: String,
    /// `<secret>:<token>`: the name of the key of the rotation in progress.
    key_name: String,
    token: String,
}

impl HttpSession {
    fn config(&self) -> &HttpConfig {
        &self.shared.config
    }

    /// Sends one request authenticated with `key`; `what` names the call in errors
    /// ("POST /keys").
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: &SecretString,
        body: Option<Value>,
        extra_header: Option<(&'static str, &str)>,
    ) -> Result<Answer, TargetError> {
        let what = format!("{method} {path}");
        let url = format!("{}{path}", self.config().base_url);
        let mut request = Request::builder().method(method).uri(url.as_str());
        let mut authorization = match &self.config().auth_scheme {
            Some(scheme) => HeaderValue::try_from(format!("{scheme} {}", key.expose_secret())),
            None => HeaderValue::try_from(key.expose_secret()),
        }
        .map_err(|_| {
            TargetError::invalid_secret(format!(
                "{what} at {}: the key holds characters an HTTP header cannot carry",
                self.place()
            ))
        })?;
        // Keeps the value out of any debug output of the HTTP stack.
        authorization.set_sensitive(true);
        request = request.header(&self.config().auth_header, authorization);
        if let Some((name, value)) = extra_header {
            request = request.header(name, value);
        }
        let body = match body {
            Some(json) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(json.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request.body(body).map_err(|error| {
            TargetError::invalid_secret(format!("{what} at {}: {error}", self.place()))
        })?;
        self.shared
            .client
            .send(request)
            .await
            .map_err(|error| match error {
                CallError::TooLarge => {
                    TargetError::rejected(format!("{what} at {}: {error}", self.place()))
                }
                CallError::Timeout(_) | CallError::Transport(_) => {
                    TargetError::unreachable(format!("{what} at {}: {error}", self.place()))
                }
            })
    }

    /// The error for an answer with a status outside 2xx.
    fn refused(&self, what: &str, answer: &Answer, secrets: &[&SecretString]) -> TargetError {
        let kind = if answer.status.is_server_error()
            || answer.status == StatusCode::TOO_MANY_REQUESTS
            || answer.status == StatusCode::REQUEST_TIMEOUT
        {
            TargetErrorKind::Unreachable
        } else {
            TargetErrorKind::Rejected
        };
        let message = provider_message(&answer.body, secrets);
        TargetError {
            kind,
            message: format!(
                "{what} at {} answered {}{}",
                self.place(),
                answer.status,
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            ),
        }
    }

    fn json(&self, what: &str, answer: &Answer) -> Result<Value, TargetError> {
        serde_json::from_slice(&answer.body).map_err(|_| {
            TargetError::rejected(format!(
                "{what} at {} answered {} with a body that is not JSON",
                self.place(),
                answer.status
            ))
        })
    }
}

#[async_trait]
impl ProviderSession for HttpSession {
    fn place(&self) -> &str {
        &self.shared.config.base_url
    }

    async fn list(&self) -> Result<Vec<LiveKey>, TargetError> {
        let path = &self.config().list_path;
        let what = format!("GET {path}");
        let answer = self
            .call(Method::GET, path, &self.admin_key, None, None)
            .await?;
        if !answer.status.is_success() {
            return Err(self.refused(&what, &answer, &[&self.admin_key]));
        }
        let body = self.json(&what, &answer)?;
        let Some(Value::Array(items)) = body.pointer(&self.config().list_pointer) else {
            return Err(TargetError::rejected(format!(
                "{what} at {}: no array of keys at {:?} in the answer",
                self.place(),
                self.config().list_pointer
            )));
        };
        let mut keys = Vec::new();
        for item in items {
            // A key without a name was not issued by this function.
            let name = item
                .pointer(&self.config().list_name_pointer)
                .and_then(Value::as_str);
            let this_secret = name.is_some_and(|name| name.starts_with(&self.namespace));
            let Some(id) = item
                .pointer(&self.config().list_id_pointer)
                .and_then(id_text)
            else {
                if this_secret {
                    return Err(TargetError::rejected(format!(
                        "{what} at {}: key {name:?} has no id at {:?}",
                        self.place(),
                        self.config().list_id_pointer
                    )));
                }
                // Nothing can be done with another key that has no id; it is no concern here.
                continue;
            };
            keys.push(LiveKey {
                id,
                this_secret,
                this_rotation: name == Some(self.key_name.as_str()),
            });
        }
        Ok(keys)
    }

    async fn issue(&self) -> Result<IssuedKey, TargetError> {
        let path = &self.config().issue_path;
        let what = format!("POST {path}");
        let answer = self
            .call(
                Method::POST,
                path,
                &self.admin_key,
                Some(json!({ "name": self.key_name })),
                Some((IDEMPOTENCY_KEY, &self.token)),
            )
            .await?;
        if !answer.status.is_success() {
            return Err(self.refused(&what, &answer, &[&self.admin_key]));
        }
        let body = self.json(&what, &answer)?;
        let id = body
            .pointer(&self.config().key_id_pointer)
            .and_then(id_text);
        let secret = body
            .pointer(&self.config().key_pointer)
            .and_then(Value::as_str)
            .filter(|key| !key.is_empty())
            .map(|key| SecretString::from(key.to_owned()));
        match (id, secret) {
            (Some(id), Some(secret)) => Ok(IssuedKey { id, secret }),
            // The key may exist now; a retry finds it by its name and revokes it.
            _ => Err(TargetError::rejected(format!(
                "{what} at {}: the answer has no key at {:?} and id at {:?}",
                self.place(),
                self.config().key_pointer,
                self.config().key_id_pointer
            ))),
        }
    }

    async fn revoke(&self, key_id: &str) -> Result<(), TargetError> {
        let segment = utf8_percent_encode(key_id, PATH_SEGMENT).to_string();
        let path = self
            .config()
            .revoke_path
            .replace(KEY_ID_PLACEHOLDER, &segment);
        let what = format!("DELETE {path}");
        let answer = self
            .call(Method::DELETE, &path, &self.admin_key, None, None)
            .await?;
        if answer.status.is_success() || answer.status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(self.refused(&what, &answer, &[&self.admin_key]))
        }
    }

    async fn authenticate(&self, document: &SecretDocument) -> Result<Option<String>, TargetError> {
        let key = secret_field(document, KEY_FIELD, "the version")?;
        let path = &self.config().test_path;
        let answer = self.call(Method::GET, path, &key, None, None).await?;
        if !answer.status.is_success() {
            return Err(self.refused(&format!("GET {path}"), &answer, &[&key, &self.admin_key]));
        }
        // Which key made the call, when the answer says: what binds a version's key to its id.
        let pointer = &self.config().test_id_pointer;
        if pointer.is_empty() {
            return Ok(None);
        }
        Ok(serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|body| body.pointer(pointer).and_then(id_text)))
    }
}

/// A key id as text: providers use strings or numbers.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(id) if !id.is_empty() => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// What the provider said about a failure: the usual message fields of a JSON error body, or the
/// start of a text body, on one line, with any key this step holds cut out.
fn provider_message(body: &[u8], secrets: &[&SecretString]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(json) => [
            "/message",
            "/error/message",
            "/error",
            "/detail",
            "/error_description",
        ]
        .iter()
        .find_map(|pointer| json.pointer(pointer).and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let mut text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for secret in secrets {
        let secret = secret.expose_secret();
        if !secret.is_empty() {
            text = text.replace(secret, "<redacted>");
        }
    }
    let text = text.trim();
    match text.char_indices().nth(MESSAGE_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_the_secret_name_with_its_suffix() {
        assert_eq!(
            secret_prefix(
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/billing-AbCdEf"
            ),
            "team/billing-AbCdEf"
        );
        assert_eq!(secret_prefix("plain-name"), "plain-name");
    }

    #[test]
    fn no_secret_s_namespace_starts_another_s() {
        // Secret names take letters, digits and /_+=.@- only; the suffix is Secrets Manager's.
        let app = secret_prefix("arn:aws:secretsmanager:eu-west-1:1:secret:app-AbCdEf");
        let longer = secret_prefix("arn:aws:secretsmanager:eu-west-1:1:secret:app-AbCdEf-x-GhIjKl");
        let app_key = format!("{app}{NAME_SEPARATOR}00000000-0000-4000-8000-000000000001");
        let longer_key = format!("{longer}{NAME_SEPARATOR}00000000-0000-4000-8000-000000000001");
        assert!(!longer_key.starts_with(&format!("{app}{NAME_SEPARATOR}")));
        assert!(!app_key.starts_with(&format!("{longer}{NAME_SEPARATOR}")));
    }

    #[test]
    fn a_claimed_prefix_is_accepted_only_when_it_is_the_secrets_own() {
        let document = |json: &str| SecretDocument::parse(json).expect("JSON");
        let own = document(r#"{"api_key":"k","key_id":"1","key_name_prefix":"app-AbCdEf"}"#);
        assert!(check_claimed_prefix(&own, "app-AbCdEf").is_ok());
        let none = document(r#"{"api_key":"k","key_id":"1"}"#);
        assert!(check_claimed_prefix(&none, "app-AbCdEf").is_ok());
        let other = document(r#"{"api_key":"k","key_id":"1","key_name_prefix":"billing-XyZ123"}"#);
        let refused = check_claimed_prefix(&other, "app-AbCdEf").expect_err("another prefix");
        assert_eq!(refused.error_type(), "InvalidSecret");
        assert!(
            refused.message.contains("\"billing-XyZ123\"")
                && refused.message.contains("\"app-AbCdEf\""),
            "{refused}"
        );
        let not_text = document(r#"{"api_key":"k","key_id":"1","key_name_prefix":7}"#);
        assert!(check_claimed_prefix(&not_text, "app-AbCdEf").is_err());
    }

    #[test]
    fn provider_messages_are_read_from_usual_fields_and_never_quote_a_key() {
        let key = SecretString::from("sk_live_abc123".to_owned());
        let said = provider_message(
            br#"{"error":{"message":"key sk_live_abc123 is over quota\nretry later"}}"#,
            &[&key],
        );
        assert_eq!(said, "key <redacted> is over quota retry later");
        assert_eq!(
            provider_message(br#"{"message":"slow down"}"#, &[]),
            "slow down"
        );
        assert_eq!(provider_message(b"Bad Gateway", &[]), "Bad Gateway");
        let long = "x".repeat(1000);
        assert_eq!(
            provider_message(long.as_bytes(), &[]).chars().count(),
            MESSAGE_LIMIT + 1
        );
    }

    #[test]
    fn key_ids_may_be_strings_or_numbers() {
        assert_eq!(id_text(&json!("k-1")), Some("k-1".to_owned()));
        assert_eq!(id_text(&json!(42)), Some("42".to_owned()));
        assert_eq!(id_text(&json!("")), None);
        assert_eq!(id_text(&json!(null)), None);
    }

    #[test]
    fn key_ids_are_escaped_as_one_path_segment() {
        assert_eq!(
            utf8_percent_encode("a/b c?d", PATH_SEGMENT).to_string(),
            "a%2Fb%20c%3Fd"
        );
    }
}
