//! The function's settings, parsed once at start-up from the environment.
//!
//! `API_KEY_PROVIDER` picks the provider; the `API_*` variables describe an HTTP provider's
//! contract (see the README). Every invalid value is reported with the variable's name.

use std::path::PathBuf;
use std::time::Duration;

use hyper::header::HeaderName;
use hyper::Uri;
use rotation::config::{ConfigError, Environment};

pub const PROVIDER: &str = "API_KEY_PROVIDER";
pub const BASE_URL: &str = "API_BASE_URL";
pub const ALLOW_INSECURE_HTTP: &str = "ALLOW_INSECURE_HTTP";
pub const ISSUE_PATH: &str = "API_ISSUE_PATH";
pub const LIST_PATH: &str = "API_LIST_PATH";
pub const REVOKE_PATH: &str = "API_REVOKE_PATH";
pub const TEST_PATH: &str = "API_TEST_PATH";
pub const TEST_ID_POINTER: &str = "API_TEST_ID_POINTER";
pub const KEY_POINTER: &str = "API_KEY_POINTER";
pub const KEY_ID_POINTER: &str = "API_KEY_ID_POINTER";
pub const LIST_POINTER: &str = "API_LIST_POINTER";
pub const LIST_ID_POINTER: &str = "API_LIST_ID_POINTER";
pub const LIST_NAME_POINTER: &str = "API_LIST_NAME_POINTER";
pub const AUTH_HEADER: &str = "API_AUTH_HEADER";
pub const AUTH_SCHEME: &str = "API_AUTH_SCHEME";
pub const ADMIN_SECRET_ARN: &str = "ADMIN_SECRET_ARN";
pub const TIMEOUT_SECONDS: &str = "API_TIMEOUT_SECONDS";
pub const CA_BUNDLE: &str = "CA_BUNDLE";
pub const TEST_RETRY_SECONDS: &str = "TEST_RETRY_SECONDS";

/// The placeholder in `API_REVOKE_PATH` that the key's id replaces.
pub const KEY_ID_PLACEHOLDER: &str = "{key_id}";

/// The longest testSecret may keep retrying: the step must end well inside the 30 s Lambda
/// timeout the template sets.
const MAX_TEST_RETRY_SECONDS: u64 = 20;

#[derive(Debug)]
pub struct ApiKeyConfig {
    pub provider: ProviderConfig,
    /// How long testSecret keeps retrying a key the provider does not accept yet (eventual
    /// consistency); zero means one attempt.
    pub test_retry: Duration,
}

#[derive(Debug)]
pub enum ProviderConfig {
    Http(Box<HttpConfig>),
    AwsIam,
}

/// An HTTP provider's contract: where to issue, list, revoke and test keys, and how to read its
/// answers.
#[derive(Debug)]
pub struct HttpConfig {
    /// The base URL without a trailing slash; paths are appended to it.
    pub base_url: String,
    pub allow_insecure_http: bool,
    pub issue_path: String,
    pub list_path: String,
    /// Contains [`KEY_ID_PLACEHOLDER`].
    pub revoke_path: String,
    pub test_path: String,
    /// JSON pointer to the calling key's id in the test call's answer; empty when the provider
    /// does not say. It is what proves that a version holds the key whose id it records.
    pub test_id_pointer: String,
    /// JSON pointers into the issue response.
    pub key_pointer: String,
    pub key_id_pointer: String,
    /// JSON pointer to the array of keys in the list response, and into each of its items.
    pub list_pointer: String,
    pub list_id_pointer: String,
    pub list_name_pointer: String,
    pub auth_header: HeaderName,
    /// `Bearer` gives `Authorization: Bearer <key>`; `None` sends the key alone.
    pub auth_scheme: Option<String>,
    /// The secret holding the admin key that issues and revokes; `None`: the current key itself.
    pub admin_secret_arn: Option<String>,
    /// Per request, connection included.
    pub timeout: Duration,
    /// Extra CA certificates (PEM) trusted beside the public roots.
    pub ca_bundle: Option<PathBuf>,
}

pub fn from_environment(env: &Environment) -> Result<ApiKeyConfig, ConfigError> {
    let provider = match env.get(PROVIDER).as_deref().map(str::trim) {
        Some("http") => ProviderConfig::Http(Box::new(http_config(env)?)),
        Some("aws-iam") => ProviderConfig::AwsIam,
        Some(other) => {
            return Err(ConfigError::new(
                PROVIDER,
                format!("expected http or aws-iam, found {other:?}"),
            ))
        }
        None => return Err(ConfigError::new(PROVIDER, "not set: use http or aws-iam")),
    };
    // IAM keys take seconds to become usable everywhere; an HTTP provider is expected to accept
    // a key as soon as it is issued.
    let default_retry = match provider {
        ProviderConfig::Http(_) => 0,
        ProviderConfig::AwsIam => 15,
    };
    let test_retry = env.integer(TEST_RETRY_SECONDS, default_retry)?;
    if test_retry > MAX_TEST_RETRY_SECONDS {
        return Err(ConfigError::new(
            TEST_RETRY_SECONDS,
            format!("must be from 0 to {MAX_TEST_RETRY_SECONDS}, found {test_retry}"),
        ));
    }
    Ok(ApiKeyConfig {
        provider,
        test_retry: Duration::from_secs(test_retry),
    })
}

fn http_config(env: &Environment) -> Result<HttpConfig, ConfigError> {
    let allow_insecure_http = env.aws_flag(ALLOW_INSECURE_HTTP, false);
    let base_url = base_url(env, allow_insecure_http)?;
    let revoke_path = path(env, REVOKE_PATH, "/keys/{key_id}")?;
    if !revoke_path.contains(KEY_ID_PLACEHOLDER) {
        return Err(ConfigError::new(
            REVOKE_PATH,
            format!("must contain {KEY_ID_PLACEHOLDER}, found {revoke_path:?}"),
        ));
    }
    let timeout = env.integer(TIMEOUT_SECONDS, 10u64)?;
    if !(1..=25).contains(&timeout) {
        return Err(ConfigError::new(
            TIMEOUT_SECONDS,
            format!("must be from 1 to 25, found {timeout}"),
        ));
    }
    let header = non_empty(env, AUTH_HEADER).unwrap_or_else(|| "Authorization".to_owned());
    let auth_header = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
        ConfigError::new(AUTH_HEADER, format!("not a valid header name: {header:?}"))
    })?;
    let auth_scheme = match env.get(AUTH_SCHEME) {
        None => Some("Bearer".to_owned()),
        Some(scheme) if scheme.trim().is_empty() => None,
        Some(scheme) if scheme.trim().chars().all(|c| c.is_ascii_graphic()) => {
            Some(scheme.trim().to_owned())
        }
        Some(scheme) => {
            return Err(ConfigError::new(
                AUTH_SCHEME,
                format!("must be one word of printable ASCII, found {scheme:?}"),
            ))
        }
    };
    Ok(HttpConfig {
        base_url,
        allow_insecure_http,
        issue_path: path(env, ISSUE_PATH, "/keys")?,
        list_path: path(env, LIST_PATH, "/keys")?,
        revoke_path,
        test_path: path(env, TEST_PATH, "/whoami")?,
        test_id_pointer: pointer(env, TEST_ID_POINTER, "/id")?,
        key_pointer: pointer(env, KEY_POINTER, "/key")?,
        key_id_pointer: pointer(env, KEY_ID_POINTER, "/id")?,
        list_pointer: pointer(env, LIST_POINTER, "/keys")?,
        list_id_pointer: pointer(env, LIST_ID_POINTER, "/id")?,
        list_name_pointer: pointer(env, LIST_NAME_POINTER, "/name")?,
        auth_header,
        auth_scheme,
        admin_secret_arn: non_empty(env, ADMIN_SECRET_ARN),
        timeout: Duration::from_secs(timeout),
        ca_bundle: non_empty(env, CA_BUNDLE).map(PathBuf::from),
    })
}

/// A set, non-blank value, trimmed. The AWS templates treat an empty variable as unset.
fn non_empty(env: &Environment, name: &str) -> Option<String> {
    env.get(name)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

fn base_url(env: &Environment, allow_insecure_http: bool) -> Result<String, ConfigError> {
    let Some(url) = non_empty(env, BASE_URL) else {
        return Err(ConfigError::new(
            BASE_URL,
            "not set: the provider's base URL, such as https://api.example.com/v1",
        ));
    };
    let uri: Uri = url
        .parse()
        .map_err(|_| ConfigError::new(BASE_URL, format!("not a URL: {url:?}")))?;
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if allow_insecure_http => {}
        Some("http") => {
            return Err(ConfigError::new(
                BASE_URL,
                format!(
                    "{url} is plain http: keys would cross the network in clear; use https, or set \
                     {ALLOW_INSECURE_HTTP}=true for a provider on a trusted local network"
                ),
            ))
        }
        _ => {
            return Err(ConfigError::new(
                BASE_URL,
                format!("must start with https://, found {url:?}"),
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(ConfigError::new(BASE_URL, format!("has no host: {url:?}")));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(ConfigError::new(
            BASE_URL,
            format!("must not carry a query or fragment: {url:?}"),
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn path(env: &Environment, name: &str, default: &str) -> Result<String, ConfigError> {
    let Some(path) = non_empty(env, name) else {
        return Ok(default.to_owned());
    };
    let valid = path.starts_with('/')
        && path
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '#' | '\\'));
    if valid {
        Ok(path)
    } else {
        Err(ConfigError::new(
            name,
            format!("must be a path starting with / in printable ASCII, found {path:?}"),
        ))
    }
}

/// A JSON pointer (RFC 6901): empty, or `/` followed by reference tokens.
fn pointer(env: &Environment, name: &str, default: &str) -> Result<String, ConfigError> {
    let Some(pointer) = env.get(name).map(|value| value.trim().to_owned()) else {
        return Ok(default.to_owned());
    };
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(pointer)
    } else {
        Err(ConfigError::new(
            name,
            format!("must be a JSON pointer such as /data/key, found {pointer:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<ApiKeyConfig, ConfigError> {
        from_environment(&Environment::from_pairs(pairs.iter().copied()))
    }

    fn http(pairs: &[(&str, &str)]) -> Result<HttpConfig, ConfigError> {
        let mut all = vec![
            (PROVIDER, "http"),
            (BASE_URL, "https://api.example.com/v1/"),
        ];
        all.extend_from_slice(pairs);
        match config(&all)?.provider {
            ProviderConfig::Http(http) => Ok(*http),
            ProviderConfig::AwsIam => panic!("an http configuration"),
        }
    }

    fn variable_at_fault(result: Result<impl std::fmt::Debug, ConfigError>) -> String {
        result.expect_err("an invalid configuration").variable
    }

    #[test]
    fn the_provider_must_be_named() {
        assert_eq!(variable_at_fault(config(&[])), PROVIDER);
        assert_eq!(variable_at_fault(config(&[(PROVIDER, "stripe")])), PROVIDER);
        assert!(matches!(
            config(&[(PROVIDER, "aws-iam")]).map(|c| c.provider),
            Ok(ProviderConfig::AwsIam)
        ));
    }

    #[test]
    fn http_defaults_follow_the_documented_contract() {
        let http = http(&[]).expect("valid");
        assert_eq!(http.base_url, "https://api.example.com/v1");
        assert_eq!(http.issue_path, "/keys");
        assert_eq!(http.list_path, "/keys");
        assert_eq!(http.revoke_path, "/keys/{key_id}");
        assert_eq!(http.test_path, "/whoami");
        assert_eq!(http.test_id_pointer, "/id");
        assert_eq!(http.key_pointer, "/key");
        assert_eq!(http.key_id_pointer, "/id");
        assert_eq!(http.list_pointer, "/keys");
        assert_eq!(http.auth_header.as_str(), "authorization");
        assert_eq!(http.auth_scheme.as_deref(), Some("Bearer"));
        assert_eq!(http.admin_secret_arn, None);
        assert_eq!(http.timeout, Duration::from_secs(10));
    }

    #[test]
    fn plain_http_is_refused_unless_explicitly_allowed() {
        let refused = http(&[(BASE_URL, "http://10.0.0.5:8080")]).expect_err("refused");
        assert_eq!(refused.variable, BASE_URL);
        assert!(refused.problem.contains(ALLOW_INSECURE_HTTP), "{refused}");
        let allowed = http(&[
            (BASE_URL, "http://10.0.0.5:8080"),
            (ALLOW_INSECURE_HTTP, "true"),
        ])
        .expect("ok");
        assert_eq!(allowed.base_url, "http://10.0.0.5:8080");
    }

    #[test]
    fn a_base_url_without_host_or_with_a_query_is_refused() {
        for url in [
            "api.example.com",
            "https://",
            "https://api.example.com/?a=1",
            "ftp://x",
        ] {
            assert_eq!(
                variable_at_fault(http(&[(BASE_URL, url)])),
                BASE_URL,
                "{url}"
            );
        }
        assert_eq!(
            variable_at_fault(config(&[(PROVIDER, "http")])),
            BASE_URL,
            "the base URL is required"
        );
    }

    #[test]
    fn the_revoke_path_must_name_the_key_id() {
        assert_eq!(
            variable_at_fault(http(&[(REVOKE_PATH, "/keys/revoke")])),
            REVOKE_PATH
        );
        let custom = http(&[(REVOKE_PATH, "/v2/tokens/{key_id}/revoke")]).expect("ok");
        assert_eq!(custom.revoke_path, "/v2/tokens/{key_id}/revoke");
    }

    #[test]
    fn paths_pointers_and_headers_are_checked() {
        assert_eq!(variable_at_fault(http(&[(ISSUE_PATH, "keys")])), ISSUE_PATH);
        assert_eq!(
            variable_at_fault(http(&[(TEST_PATH, "/who am i")])),
            TEST_PATH
        );
        assert_eq!(
            variable_at_fault(http(&[(KEY_POINTER, "data.key")])),
            KEY_POINTER
        );
        assert_eq!(
            variable_at_fault(http(&[(AUTH_HEADER, "X Api Key")])),
            AUTH_HEADER
        );
        assert_eq!(
            variable_at_fault(http(&[(AUTH_SCHEME, "Bearer token")])),
            AUTH_SCHEME
        );
        let custom = http(&[
            (AUTH_HEADER, "X-Api-Key"),
            (AUTH_SCHEME, ""),
            (LIST_POINTER, ""),
            (KEY_POINTER, "/data/secret"),
        ])
        .expect("ok");
        assert_eq!(custom.auth_header.as_str(), "x-api-key");
        assert_eq!(
            custom.auth_scheme, None,
            "an empty scheme sends the key alone"
        );
        assert_eq!(
            custom.list_pointer, "",
            "the whole list response is the array"
        );
        assert_eq!(custom.key_pointer, "/data/secret");
    }

    #[test]
    fn timeouts_and_retry_bounds_are_range_checked() {
        assert_eq!(
            variable_at_fault(http(&[(TIMEOUT_SECONDS, "0")])),
            TIMEOUT_SECONDS
        );
        assert_eq!(
            variable_at_fault(http(&[(TIMEOUT_SECONDS, "ten")])),
            TIMEOUT_SECONDS
        );
        assert_eq!(
            variable_at_fault(config(&[(PROVIDER, "aws-iam"), (TEST_RETRY_SECONDS, "21")])),
            TEST_RETRY_SECONDS
        );
        let iam = config(&[(PROVIDER, "aws-iam")]).expect("ok");
        assert_eq!(
            iam.test_retry,
            Duration::from_secs(15),
            "IAM waits for consistency"
        );
        let http_retry = config(&[(PROVIDER, "http"), (BASE_URL, "https://a.example")])
            .expect("ok")
            .test_retry;
        assert_eq!(
            http_retry,
            Duration::ZERO,
            "an HTTP provider is tested once"
        );
    }

    #[test]
    fn an_empty_admin_secret_arn_means_the_current_key_administers_itself() {
        assert_eq!(
            http(&[(ADMIN_SECRET_ARN, " ")])
                .expect("ok")
                .admin_secret_arn,
            None
        );
        assert_eq!(
            http(&[(
                ADMIN_SECRET_ARN,
                "arn:aws:secretsmanager:eu-west-1:1:secret:admin-AbCdEf"
            )])
            .expect("ok")
            .admin_secret_arn
            .as_deref(),
            Some("arn:aws:secretsmanager:eu-west-1:1:secret:admin-AbCdEf")
        );
    }
}
