//! Access keys of an IAM user: issued with `CreateAccessKey`, revoked with `DeleteAccessKey`, and
//! proven with `sts:GetCallerIdentity` signed by the pending key, which must answer the user's
//! ARN.
//!
//! The function's role manages the access keys of many users, and `user_name` is only what a
//! version says. So before any IAM call on the user, every step proves that the `AWSCURRENT` key
//! is a working key of *that* user: `sts:GetCallerIdentity` signed with it must answer the ARN of
//! a user of that name in the account the function's role acts in. A secret holding one user's
//! key and naming another is refused with `InvalidSecret`, and `AWSPENDING` must name the same
//! user as `AWSCURRENT`.
//!
//! IAM allows two access keys per user, which is why the rule revokes before it issues. IAM keys
//! have no names, so every key of the user other than the current one counts as this secret's to
//! revoke: the user must belong to this secret alone.

use std::error::Error as StdError;
use std::sync::{Arc, OnceLock};

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
    shared: Arc<Shared>,
}

/// What every session of the process uses: built once at start-up.
struct Shared {
    iam: aws_sdk_iam::Client,
    /// The base of the STS clients that sign with a version's key: region, endpoint, timeouts.
    aws: aws_config::SdkConfig,
    /// The account the function's role acts in, asked of STS once per process: the IAM calls
    /// reach users of that account only, so a proven user must be one of its users.
    account: tokio::sync::OnceCell<String>,
}

impl IamProvider {
    pub fn new(aws: &aws_config::SdkConfig) -> Self {
        IamProvider {
            shared: Arc::new(Shared {
                iam: aws_sdk_iam::Client::new(aws),
                aws: aws.clone(),
                account: tokio::sync::OnceCell::new(),
            }),
        }
    }
}

impl Shared {
    async fn own_account(&self) -> Result<&str, TargetError> {
        let account = self
            .account
            .get_or_try_init(|| async {
                let identity = aws_sdk_sts::Client::new(&self.aws)
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|error| {
                        classify("sts:GetCallerIdentity with the function's own role", error)
                    })?;
                identity.account().map(str::to_owned).ok_or_else(|| {
                    TargetError::rejected(
                        "sts:GetCallerIdentity with the function's own role answered no account",
                    )
                })
            })
            .await?;
        Ok(account)
    }

    /// The ARN `sts:GetCallerIdentity` answers when signed with the key `document` holds.
    async fn caller_arn(
        &self,
        document: &SecretDocument,
        what: &str,
    ) -> Result<String, TargetError> {
        let access_key_id = document
            .required_str(ACCESS_KEY_ID_FIELD)
            .map_err(|problem| TargetError::invalid_secret(format!("{what}: {problem}")))?;
        let secret_access_key = document
            .required_secret(SECRET_ACCESS_KEY_FIELD)
            .map_err(|problem| TargetError::invalid_secret(format!("{what}: {problem}")))?;
        // A client per call: the credentials are the version's key, not the function's role.
        let credentials = Credentials::new(
            access_key_id,
            secret_access_key.expose_secret(),
            None,
            None,
            "rotated-secret",
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
            // An unknown key (`InvalidClientTokenId`) is a rejection, which testSecret retries for
            // a while: IAM is eventually consistent.
            .map_err(|error| {
                classify(
                    &format!("sts:GetCallerIdentity with key {access_key_id}"),
                    error,
                )
            })?;
        Ok(identity.arn().unwrap_or_default().to_owned())
    }
}

/// The account and user name of an IAM user's ARN (`arn:aws:iam::111122223333:user/path/name`);
/// `None` for any other identity (a role session, the root user, a federated user).
fn iam_user_of(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    // User names cannot contain `/`: the last segment is the name, what comes before the path.
    let name = resource.strip_prefix("user/")?.rsplit('/').next()?;
    (!name.is_empty()).then_some((account, name))
}

#[async_trait]
impl KeyProvider for IamProvider {
    async fn session(
        &self,
        current: &SecretDocument,
        _versions: &SecretVersions<'_>,
    ) -> Result<Box<dyn ProviderSession>, RotationError> {
        let user_name = user_name_of(current, "AWSCURRENT version")?.to_owned();
        Ok(Box::new(IamSession {
            place: format!("IAM user {user_name}"),
            user_name,
            user_arn: OnceLock::new(),
            shared: self.shared.clone(),
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

    fn check_same_owner(
        &self,
        current: &SecretDocument,
        pending: &SecretDocument,
    ) -> Result<(), TargetError> {
        let current_user = user_name_of(current, "AWSCURRENT version")?;
        let pending_user = user_name_of(pending, "AWSPENDING version")?;
        if pending_user == current_user {
            Ok(())
        } else {
            Err(TargetError::invalid_secret(format!(
                "AWSPENDING version names IAM user {pending_user}, not {current_user} of \
                 AWSCURRENT: a rotation keeps the secret's user; nothing was changed"
            )))
        }
    }
}

fn user_name_of<'d>(document: &'d SecretDocument, what: &str) -> Result<&'d str, TargetError> {
    document
        .required_str(USER_NAME_FIELD)
        .map_err(|problem| TargetError::invalid_secret(format!("{what}: {problem}")))
}

struct IamSession {
    user_name: String,
    place: String,
    /// The user's ARN, set once the current key proved it signs as the user: no IAM call on the
    /// user is made before.
    user_arn: OnceLock<String>,
    shared: Arc<Shared>,
}

impl IamSession {
    /// The user's IAM client, once the secret proved it holds a key of the user.
    fn iam(&self) -> Result<&aws_sdk_iam::Client, TargetError> {
        match self.user_arn.get() {
            Some(_) => Ok(&self.shared.iam),
            None => Err(TargetError::invalid_secret(format!(
                "no IAM call on {} before the AWSCURRENT key proved it is a key of that user",
                self.place
            ))),
        }
    }

    /// The first call of a session: the current key must sign as the user the version names,
    /// in the account the function acts in.
    async fn prove_current(&self, current: &SecretDocument) -> Result<(), TargetError> {
        let key_id = current
            .required_str(ACCESS_KEY_ID_FIELD)
            .map_err(|problem| {
                TargetError::invalid_secret(format!("AWSCURRENT version: {problem}"))
            })?;
        let arn = match self.shared.caller_arn(current, "AWSCURRENT version").await {
            Ok(arn) => arn,
            Err(error) if error.kind == rotation::target::TargetErrorKind::Rejected => {
                return Err(TargetError::invalid_secret(format!(
                    "AWSCURRENT version: its key {key_id} does not sign in ({error}), so the \
                     secret does not prove it holds a key of {}; nothing was changed",
                    self.place
                )))
            }
            Err(error) => return Err(error),
        };
        let account = self.shared.own_account().await?;
        match iam_user_of(&arn) {
            Some((in_account, name)) if name == self.user_name && in_account == account => {
                // Set once per session; a second proof would answer the same.
                let _ = self.user_arn.set(arn);
                Ok(())
            }
            _ => Err(TargetError::invalid_secret(format!(
                "AWSCURRENT version names {} (account {account}), but its key {key_id} signs \
                 as {arn}: the function acts only on the user whose key the secret holds; \
                 nothing was changed",
                self.place
            ))),
        }
    }

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
            .iam()?
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
                this_secret: true,
                this_rotation: false,
            })
            .collect())
    }

    async fn issue(&self) -> Result<IssuedKey, TargetError> {
        let answer = self
            .iam()?
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
            .iam()?
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

    async fn authenticate(&self, document: &SecretDocument) -> Result<Option<String>, TargetError> {
        let Some(user_arn) = self.user_arn.get() else {
            self.prove_current(document).await?;
            return Ok(None);
        };
        let access_key_id = document
            .required_str(ACCESS_KEY_ID_FIELD)
            .map_err(|problem| TargetError::invalid_secret(format!("the version: {problem}")))?;
        let arn = self.shared.caller_arn(document, "the version").await?;
        if arn == *user_arn {
            // STS checked the signature: the version holds the key it records.
            Ok(Some(access_key_id.to_owned()))
        } else {
            Err(TargetError::invalid_secret(format!(
                "sts:GetCallerIdentity with key {access_key_id} answered {arn}, not {} \
                 ({user_arn})",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_iam_user_arn_gives_an_account_and_a_user_name() {
        assert_eq!(
            iam_user_of("arn:aws:iam::111122223333:user/svc-billing"),
            Some(("111122223333", "svc-billing"))
        );
        assert_eq!(
            iam_user_of("arn:aws-cn:iam::111122223333:user/rotated/team/svc"),
            Some(("111122223333", "svc"))
        );
        for other in [
            "arn:aws:sts::111122223333:assumed-role/rotator/session",
            "arn:aws:iam::111122223333:root",
            "arn:aws:iam::111122223333:role/svc",
            "arn:aws:sts::123456789012:user/moto",
            "arn:aws:iam::111122223333:user/",
            "svc-billing",
            "",
        ] {
            assert_eq!(iam_user_of(other), None, "{other}");
        }
    }

    #[test]
    fn a_pending_version_for_another_user_is_refused_naming_both() {
        let provider = IamProvider {
            shared: Arc::new(Shared {
                iam: aws_sdk_iam::Client::from_conf(
                    aws_sdk_iam::Config::builder()
                        .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
                        .build(),
                ),
                aws: aws_config::SdkConfig::builder().build(),
                account: tokio::sync::OnceCell::new(),
            }),
        };
        let version = |user: &str| {
            SecretDocument::parse(&format!(
                r#"{{"user_name":"{user}","access_key_id":"AKIA1","secret_access_key":"s"}}"#
            ))
            .expect("JSON")
        };
        assert!(provider
            .check_same_owner(&version("svc"), &version("svc"))
            .is_ok());
        let refused = provider
            .check_same_owner(&version("svc"), &version("admin"))
            .expect_err("another user");
        assert_eq!(refused.error_type(), "InvalidSecret");
        assert!(
            refused.message.contains("IAM user admin") && refused.message.contains("svc"),
            "{refused}"
        );
    }
}
