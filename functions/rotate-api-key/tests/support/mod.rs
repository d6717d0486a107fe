//! What the `rotate-api-key` suites share: the real binary under the Runtime API emulator, moto
//! as Secrets Manager (and IAM and STS), and the reference HTTP provider.

#![allow(dead_code)] // Each suite uses part of this module.

use std::collections::BTreeMap;

use rotation_tests::api_provider::{ProviderEvent, ReferenceProvider};
use rotation_tests::orchestrator::{Orchestrator, RotationRecord};
use rotation_tests::runtime_api::{FunctionSpec, Invocation, LambdaFunction};
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack;
use serde_json::{json, Value};

pub const BINARY: &str = env!("CARGO_BIN_EXE_rotate-api-key");

/// The function and its secret in moto, with every `RotationToken` the orchestrator sent, for
/// the leak checks.
pub struct Fixture {
    pub moto: MotoSecretsManager,
    pub function: LambdaFunction,
    pub arn: String,
    pub rotation_tokens: std::sync::Mutex<Vec<String>>,
}

impl Fixture {
    /// Creates the secret with `secret` and starts the function with moto's environment plus
    /// `env`.
    pub async fn start(name: &str, secret: &Value, env: &[(String, String)]) -> Fixture {
        let moto = connect_moto().await;
        let arn = moto
            .create_secret(&MotoSecretsManager::unique_name(name), &secret.to_string())
            .await;
        let mut all = moto.function_environment();
        all.extend(env.iter().cloned());
        let function = LambdaFunction::start(FunctionSpec::new(BINARY).env(all))
            .await
            .expect("the function starts");
        Fixture {
            moto,
            function,
            arn,
            rotation_tokens: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn orchestrator(&self) -> Orchestrator<'_> {
        Orchestrator {
            moto: &self.moto,
            function: &self.function,
        }
    }

    fn remember(&self, record: &RotationRecord) {
        let mut tokens = self
            .rotation_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens.extend(record.steps.iter().map(|step| step.rotation_token.clone()));
    }

    /// A whole rotation with a fresh token.
    pub async fn rotate(&self) -> RotationRecord {
        let record = self.orchestrator().rotate(&self.arn).await;
        self.remember(&record);
        record
    }

    /// The four steps again for `token`, as the service retries a failed rotation.
    pub async fn retry(&self, token: &str) -> RotationRecord {
        let record = self
            .orchestrator()
            .run_steps(&self.arn, token.to_owned())
            .await;
        self.remember(&record);
        record
    }

    /// One step, as the service invokes it.
    pub async fn step(&self, token: &str, step: &'static str) -> Invocation {
        let record = self.orchestrator().invoke(&self.arn, token, step).await;
        self.rotation_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(record.rotation_token.clone());
        record.invocation
    }

    pub async fn start_rotation(&self) -> String {
        self.moto.start_rotation(&self.arn).await
    }

    pub async fn labels(&self) -> BTreeMap<String, Vec<String>> {
        self.moto.labels(&self.arn).await
    }

    pub async fn value_at(&self, stage: &str) -> Value {
        self.moto
            .value_at(&self.arn, stage)
            .await
            .unwrap_or_else(|| panic!("{stage} has a value"))
    }

    /// `field` of the version labelled `stage`.
    pub async fn field_at(&self, stage: &str, field: &str) -> String {
        self.value_at(stage).await[field]
            .as_str()
            .unwrap_or_else(|| panic!("{stage} has a string {field}"))
            .to_owned()
    }

    /// Every `RotationToken` sent so far.
    pub fn rotation_tokens(&self) -> Vec<String> {
        self.rotation_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

pub async fn connect_moto() -> MotoSecretsManager {
    MotoSecretsManager::connect(&stack::moto().await.endpoint()).await
}

/// The environment of an `http` function talking to `provider`, answering within `timeout`
/// seconds.
pub fn http_environment(provider: &ReferenceProvider, timeout: u32) -> Vec<(String, String)> {
    [
        ("API_KEY_PROVIDER", "http".to_owned()),
        ("API_BASE_URL", provider.base_url()),
        // The reference provider serves plain HTTP on loopback.
        ("ALLOW_INSECURE_HTTP", "true".to_owned()),
        ("API_TIMEOUT_SECONDS", timeout.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// A secret in the documented format holding a key issued by hand (not named by the function).
pub fn http_secret(provider: &ReferenceProvider) -> Value {
    let (id, key) = provider.issue_directly("issued-by-hand");
    json!({ "api_key": key, "key_id": id, "service": "billing" })
}

/// Arranges for the function's process to be killed the next time `event` happens at the
/// provider, before the provider answers: the step dies right after that side effect.
pub fn kill_function_on(
    provider: &ReferenceProvider,
    function: &LambdaFunction,
    event: ProviderEvent,
) {
    let pid = function.pid().expect("a live function process");
    provider.on_next(event, move || {
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success(), "the function process {pid} was killed");
    });
}

/// An IAM client of moto's, as an administrator would use it.
pub async fn iam_client() -> aws_sdk_iam::Client {
    use aws_sdk_iam::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_iam::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(stack::moto().await.endpoint())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .build();
    aws_sdk_iam::Client::from_conf(config)
}

/// The ARN moto's STS answers for a caller signing with this access key.
pub async fn caller_arn(access_key_id: &str, secret_access_key: &str) -> String {
    use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(stack::moto().await.endpoint())
        .credentials_provider(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "tests",
        ))
        .build();
    aws_sdk_sts::Client::from_conf(config)
        .get_caller_identity()
        .send()
        .await
        .expect("sts:GetCallerIdentity")
        .arn()
        .unwrap_or_default()
        .to_owned()
}

/// An IAM user in moto with one access key, as an application's.
pub struct IamUser {
    pub name: String,
    pub arn: String,
    pub key_id: String,
    pub secret: String,
}

impl IamUser {
    /// A user with a unique name starting `name`, under `path`, and one access key.
    pub async fn create(iam: &aws_sdk_iam::Client, name: &str, path: &str) -> IamUser {
        let name = MotoSecretsManager::unique_name(name);
        let arn = iam
            .create_user()
            .user_name(&name)
            .path(path)
            .send()
            .await
            .expect("iam:CreateUser")
            .user()
            .map(|user| user.arn().to_owned())
            .expect("the user's ARN");
        let created = iam
            .create_access_key()
            .user_name(&name)
            .send()
            .await
            .expect("iam:CreateAccessKey");
        let key = created.access_key().expect("a key");
        IamUser {
            name,
            arn,
            key_id: key.access_key_id().to_owned(),
            secret: key.secret_access_key().to_owned(),
        }
    }

    /// The secret JSON of the `aws-iam` provider for this user's key.
    pub fn secret(&self) -> Value {
        json!({
            "user_name": self.name,
            "access_key_id": self.key_id,
            "secret_access_key": self.secret,
        })
    }
}

/// The access key ids `user` holds now.
pub async fn key_ids(iam: &aws_sdk_iam::Client, user: &str) -> std::collections::BTreeSet<String> {
    iam.list_access_keys()
        .user_name(user)
        .send()
        .await
        .expect("iam:ListAccessKeys")
        .access_key_metadata()
        .iter()
        .filter_map(|key| key.access_key_id().map(str::to_owned))
        .collect()
}
