//! Access keys of an IAM user: issued with `CreateAccessKey`, revoked with `DeleteAccessKey`, and
//! proven with `sts:GetCallerIdentity` signed by the pending key, which must answer the user's
//! ARN.
//!
//! IAM allows two access keys per user, which is why the rule revokes before it issues. IAM keys
//! have no names, so every key of the user other than the current one counts as this secret's to
//! revoke: the user must belong to this secret alone.

use std::error::Error as StdError;

use async_trait::async_trait;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::config::Credentials;
use rotation::{RotationError, SecretDocument, SecretVersions, TargetError};
use secrecy::{ExposeSecret, SecretString};

use crate::target::{IssuedKey, KeyProvider, LiveKey, ProviderSession};

/// The secret JSON fields of an IAM access key.
pub const USER_NAME_FIELD: &str = "user_name";
pub const ACCESS_KEY_ID_FIELD: &str = "access_key_id";
pub const SECRET_ACCESS_KEY_FIELD: &str = "secret_access_key";

/// Error codes after which a later attempt may succeed.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "ServiceFailure",
    "ServiceUnavailable",
    "InternalFailure",
];

pub struct IamProvider {
    iam: aws_sdk_iam::Client,
    /// The base of the STS clients that sign with a pending key: region, endpoint, timeouts.
    aws: aws_config::SdkConfig,
}

impl IamProvider {
    pub fn new(aws: &aws_config::SdkConfig) -> Self {
        IamProvider {
            iam: aws_sdk_iam::Client::new(aws),
            aws: aws.clone(),
        }
    }
}

#[async_trait]
impl KeyProvider for IamProvider {
    async fn session(
        &self,
        current: &SecretDocument,
        _versions: &SecretVersions<'_>,
    ) -> Result<Box<dyn ProviderSession>, RotationError> {
        let user_name = current
            .required_str(USER_NAME_FIELD)
            .map_err(|problem| {
                TargetError::invalid_secret(format!("AWSCURRENT version: {problem}"))
            })?
            .to_owned();
        Ok(Box::new(IamSession {
            place: format!("IAM user {user_name}"),
            user_name,
            iam: self.iam.clone(),
            aws: self.aws.clone(),
        }))
    }

    fn key_id<'d>(&self, document: &'d SecretDocument, what: &str) -> Result<&'d str, TargetError> {
        document
            .required_str(ACCESS_KEY_ID_FIELD)
            .map_err(|problem| TargetError::invalid_secret(format!("{what}: {problem}")))
    }

    fn with_key(&self, base: &SecretDocument, key: &IssuedKey) -> SecretDocument {
        let mut document = base.clone();
        document.set_str(ACCESS_KEY_ID_FIELD, &key.id);
        document.set_secret(SECRET_ACCESS_KEY_FIELD, &key.secret);
        document
    }
}

struct IamSession {
    user_name: String,
    place: String,
    iam: aws_sdk_iam::Client,
    aws: aws_config::SdkConfig,
}

impl IamSession {
    fn failed<E, R>(&self, operation: &str, error: SdkError<E, R>) -> TargetError
    where
        E: ProvideErrorMetadata + StdError + 'static,
        R: std::fmt::Debug,
    {
        classify(&format!("{operation} for {}", self.place), error)
    }
}

#[async_trait]
impl ProviderSession for IamSession {
    fn place(&self) -> &str {
        &self.place
    }

    async fn list(&self) -> Result<Vec<LiveKey>, TargetError> {
        let answer = self
            .iam
            .list_access_keys()
            .user_name(&self.user_name)
            .send()
            .await
            .map_err(|error| self.failed("iam:ListAccessKeys", error))?;
        // Inactive keys are listed too: they count against the limit of two.
        Ok(answer
            .access_key_metadata()
            .iter()
            .filter_map(|key| key.access_key_id())
            .map(|id| LiveKey {
                id: id.to_owned(),
                this_rotation: false,
            })
            .collect())
    }

    async fn issue(&self) -> Result<IssuedKey, TargetError> {
        let answer = self
            .iam
            .create_access_key()
            .user_name(&self.user_name)
            .send()
            .await
            .map_err(|error| self.failed("iam:CreateAccessKey", error))?;
        let key = answer.access_key().ok_or_else(|| {
            TargetError::rejected(format!(
                "iam:CreateAccessKey for {} answered without a key",
                self.place
            ))
        })?;
        Ok(IssuedKey {
            id: key.access_key_id().to_owned(),
            secret: SecretString::from(key.secret_access_key().to_owned()),
        })
    }

    async fn revoke(&self, key_id: &str) -> Result<(), TargetError> {
        match self
            .iam
            .delete_access_key()
            .user_name(&self.user_name)
            .access_key_id(key_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some("NoSuchEntity") => Ok(()),
            Err(error) => Err(self.failed("iam:DeleteAccessKey", error)),
        }
    }

    async fn authenticate(&self, document: &SecretDocument) -> Result<(), TargetError> {
        let access_key_id = document
            .required_str(ACCESS_KEY_ID_FIELD)
            .map_err(|problem| {
                TargetError::invalid_secret(format!("AWSPENDING version: {problem}"))
            })?;
        let secret_access_key =
            document
                .required_secret(SECRET_ACCESS_KEY_FIELD)
                .map_err(|problem| {
                    TargetError::invalid_secret(format!("AWSPENDING version: {problem}"))
                })?;
        let user = self
            .iam
            .get_user()
            .user_name(&self.user_name)
            .send()
            .await
            .map_err(|error| self.failed("iam:GetUser", error))?;
        let user_arn = user.user().map(|user| user.arn()).unwrap_or_default();

        // A client per attempt: the credentials are the pending key, not the function's role.
        let credentials = Credentials::new(
            access_key_id,
            secret_access_key.expose_secret(),
            None,
            None,
            "AWSPENDING",
        );
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&self.aws)
                .credentials_provider(credentials)
                .build(),
        );
        let identity = sts
            .get_caller_identity()
            .send()
            .await
            // An unknown key (`InvalidClientTokenId`) is a rejection, which the caller retries for
            // a while: IAM is eventually consistent.
            .map_err(|error| {
                classify(
                    &format!("sts:GetCallerIdentity with key {access_key_id}"),
                    error,
                )
            })?;
        let arn = identity.arn().unwrap_or_default();
        if arn == user_arn {
            Ok(())
        } else {
            Err(TargetError::rejected(format!(
                "sts:GetCallerIdentity with key {access_key_id} answered {arn}, not {} ({user_arn})",
                self.place
            )))
        }
    }
}

/// What an AWS call's failure means for the rotation: throttling, 5xx and network trouble are
/// worth retrying; anything the service refused is not.
fn classify<E, R>(what: &str, error: SdkError<E, R>) -> TargetError
where
    E: ProvideErrorMetadata + StdError + 'static,
    R: std::fmt::Debug,
{
    match &error {
        SdkError::ServiceError(context) => {
            let service = context.err();
            let code = service.code().unwrap_or("an unnamed error");
            let message = service.message().unwrap_or_default();
            let text = format!("{what} failed: {code}: {message}");
            if TRANSIENT_CODES.contains(&code) {
                TargetError::unreachable(text)
            } else {
                TargetError::rejected(text)
            }
        }
        SdkError::TimeoutError(_) => TargetError::unreachable(format!("{what} timed out")),
        _ => {
            let mut text = format!("{what} failed: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            TargetError::unreachable(text)
        }
    }
}
