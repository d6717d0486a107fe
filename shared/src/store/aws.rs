//! The Secrets Manager port over the AWS SDK.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::Client;
use aws_smithy_types::error::display::DisplayErrorContext;
use secrecy::{ExposeSecret, SecretString};

use super::{
    SecretDescription, SecretStore, SecretValue, StagingLabel, StoreError, StoreErrorKind,
    VersionSelector,
};
use crate::config::Environment;
use crate::event::RotationToken;

/// Where the client sends its calls, when the deployment says so.
///
/// The SDK itself honours `AWS_ENDPOINT_URL_SECRETS_MANAGER` and `AWS_ENDPOINT_URL`. The AWS
/// templates read `SECRETS_MANAGER_ENDPOINT`, so deployments migrating from them keep working:
/// it wins over the generic `AWS_ENDPOINT_URL` but not over the service-specific SDK variable.
pub fn endpoint_override(env: &Environment) -> Option<String> {
    let non_empty = |name: &str| env.get(name).filter(|value| !value.trim().is_empty());
    if non_empty("AWS_ENDPOINT_URL_SECRETS_MANAGER").is_some() {
        return None;
    }
    non_empty("SECRETS_MANAGER_ENDPOINT")
}

/// Loads region and credentials the standard way (Lambda's environment), with bounded timeouts so
/// a step that cannot reach an endpoint fails well inside the Lambda timeout. Every AWS client of
/// a function is built from this one configuration.
pub async fn load_aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(12))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

/// Secrets Manager through the AWS SDK. Build it once per process: it holds the connection pool.
#[derive(Clone, Debug)]
pub struct AwsSecretStore {
    client: Client,
}

impl AwsSecretStore {
    /// The client for a loaded AWS configuration, honouring the endpoint variables.
    pub fn from_config(aws: &aws_config::SdkConfig, env: &Environment) -> Self {
        let mut config = aws_sdk_secretsmanager::config::Builder::from(aws);
        if let Some(endpoint) = endpoint_override(env) {
            config = config.endpoint_url(endpoint);
        }
        AwsSecretStore {
            client: Client::from_conf(config.build()),
        }
    }

    pub fn from_client(client: Client) -> Self {
        AwsSecretStore { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// Sorts an SDK failure into what the protocol and the operator need to know.
fn store_error<E>(operation: &'static str, secret: &str, error: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let kind = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreErrorKind::Transient
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            match error.code() {
                Some("ResourceNotFoundException") => StoreErrorKind::NotFound,
                Some("ResourceExistsException") => StoreErrorKind::VersionExists,
                Some("InvalidRequestException" | "InvalidParameterException") => {
                    StoreErrorKind::InvalidRequest
                }
                Some(
                    "AccessDeniedException" | "DecryptionFailure" | "UnrecognizedClientException",
                ) => StoreErrorKind::AccessDenied,
                Some(
                    "ThrottlingException"
                    | "TooManyRequestsException"
                    | "RequestLimitExceeded"
                    | "InternalServiceError"
                    | "ServiceUnavailable",
                ) => StoreErrorKind::Transient,
                _ if status == 429 || status >= 500 => StoreErrorKind::Transient,
                _ => StoreErrorKind::Other,
            }
        }
        _ => StoreErrorKind::Other,
    };
    let message = match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => DisplayErrorContext(&error).to_string(),
    };
    StoreError::new(operation, secret, kind, message)
}

#[async_trait]
impl SecretStore for AwsSecretStore {
    async fn describe(&self, secret_id: &str) -> Result<SecretDescription, StoreError> {
        let output = self
            .client
            .describe_secret()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|error| store_error("DescribeSecret", secret_id, error))?;
        let versions = output
            .version_ids_to_stages
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, labels)| !labels.is_empty())
            .collect();
        let tags = output
            .tags
            .unwrap_or_default()
            .into_iter()
            .filter_map(|tag| Some((tag.key?, tag.value.unwrap_or_default())))
            .collect();
        Ok(SecretDescription {
            arn: output.arn.unwrap_or_else(|| secret_id.to_owned()),
            rotation_enabled: output.rotation_enabled.unwrap_or(false),
            versions,
            tags,
        })
    }

    async fn get_value(
        &self,
        secret_id: &str,
        selector: VersionSelector<'_>,
    ) -> Result<Option<SecretValue>, StoreError> {
        const OP: &str = "GetSecretValue";
        let request = self.client.get_secret_value().secret_id(secret_id);
        let request = match selector {
            VersionSelector::Stage(stage) => request.version_stage(stage.as_str()),
            VersionSelector::Id { version_id, stage } => request
                .version_id(version_id)
                .set_version_stage(stage.map(|s| s.as_str().to_owned())),
        };
        let output = match request.send().await {
            Ok(output) => output,
            Err(error) => {
                let error = store_error(OP, secret_id, error);
                return match error.kind {
                    StoreErrorKind::NotFound => Ok(None),
                    _ => Err(error),
                };
            }
        };
        let Some(secret_string) = output.secret_string else {
            return Err(StoreError::new(
                OP,
                secret_id,
                StoreErrorKind::Unsupported,
                "the version holds SecretBinary; rotation needs a SecretString",
            ));
        };
        Ok(Some(SecretValue {
            version_id: output.version_id.unwrap_or_default(),
            secret_string: SecretString::from(secret_string),
        }))
    }

    async fn put_pending(
        &self,
        secret_id: &str,
        token: &str,
        value: &SecretString,
        rotation_token: Option<&RotationToken>,
    ) -> Result<(), StoreError> {
        self.client
            .put_secret_value()
            .secret_id(secret_id)
            .client_request_token(token)
            .secret_string(value.expose_secret())
            .version_stages(StagingLabel::Pending.as_str())
            .set_rotation_token(rotation_token.map(|t| t.expose().to_owned()))
            .send()
            .await
            .map_err(|error| store_error("PutSecretValue", secret_id, error))?;
        Ok(())
    }

    async fn update_label(
        &self,
        secret_id: &str,
        label: StagingLabel,
        move_to: Option<&str>,
        remove_from: Option<&str>,
    ) -> Result<(), StoreError> {
        self.client
            .update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(label.as_str())
            .set_move_to_version_id(move_to.map(str::to_owned))
            .set_remove_from_version_id(remove_from.map(str::to_owned))
            .send()
            .await
            .map_err(|error| store_error("UpdateSecretVersionStage", secret_id, error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_pending_sends_the_rotation_token_and_only_the_pending_label() {
        let (http_client, captured) = aws_smithy_http_client::test_util::capture_request(None);
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "id", "key", None, None, "test",
            ))
            .http_client(http_client)
            .build();
        let store = AwsSecretStore::from_client(Client::from_conf(config));
        let rotation_token = RotationToken::new("0123456789abcdef0123456789abcdef-rotation");
        // The captured exchange answers with an empty body; only the request matters here.
        let _ = store
            .put_pending(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:app",
                "token-0123456789abcdef0123456789ab",
                &SecretString::from("{\"password\":\"pw\"}".to_owned()),
                Some(&rotation_token),
            )
            .await;
        let request = captured.expect_request();
        let body: serde_json::Value =
            serde_json::from_slice(request.body().bytes().expect("an in-memory body"))
                .expect("a JSON request");
        assert_eq!(
            body["RotationToken"],
            "0123456789abcdef0123456789abcdef-rotation"
        );
        assert_eq!(
            body["ClientRequestToken"],
            "token-0123456789abcdef0123456789ab"
        );
        assert_eq!(body["VersionStages"], serde_json::json!(["AWSPENDING"]));
    }

    #[test]
    fn the_aws_templates_endpoint_variable_selects_the_endpoint() {
        let env = Environment::from_pairs([("SECRETS_MANAGER_ENDPOINT", "https://vpce.example")]);
        assert_eq!(
            endpoint_override(&env).as_deref(),
            Some("https://vpce.example")
        );
    }

    #[test]
    fn the_sdk_service_variable_wins_over_the_templates_variable() {
        let env = Environment::from_pairs([
            ("SECRETS_MANAGER_ENDPOINT", "https://a.example"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "https://b.example"),
        ]);
        assert_eq!(endpoint_override(&env), None);
    }

    #[test]
    fn no_override_leaves_the_sdk_default_resolution() {
        let env = Environment::from_pairs([("AWS_ENDPOINT_URL", "https://c.example")]);
        assert_eq!(endpoint_override(&env), None);
        let env = Environment::from_pairs([("SECRETS_MANAGER_ENDPOINT", "  ")]);
        assert_eq!(endpoint_override(&env), None);
    }
}
