//! moto as our Secrets Manager: a client for the tests, the set-up moto needs before it will
//! start a rotation, and the scenario harness that runs the protocol suite through the AWS SDK.
//!
//! moto's `RotateSecret` is what creates the value-less `AWSPENDING` version, exactly as the
//! service does, but it insists on a registered Lambda function (with an IAM role) and would run
//! it in Docker. With Lambda's `use_docker` off it only echoes, so the tests register a dummy
//! function and then play the rest of the orchestration themselves (see `orchestrator`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_secretsmanager::types::RotationRulesType;
use aws_sdk_secretsmanager::Client;
use rotation::store::aws::AwsSecretStore;
use rotation::store::SecretStore;
use rotation_testkit::scenarios::ScenarioHarness;
use tokio::sync::OnceCell;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
const ROTATION_FUNCTION: &str = "rotation-under-test";

/// The ARN moto knows as the secrets' rotation function.
pub fn rotation_function_arn() -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{ROTATION_FUNCTION}")
}

/// A connection to one moto server.
#[derive(Clone)]
pub struct MotoSecretsManager {
    endpoint: String,
    client: Client,
}

static PREPARED: OnceCell<()> = OnceCell::const_new();
static NAMES: AtomicU64 = AtomicU64::new(0);

impl MotoSecretsManager {
    /// Connects to moto at `endpoint`, preparing it for rotations the first time.
    pub async fn connect(endpoint: &str) -> Self {
        PREPARED
            .get_or_init(|| prepare_rotation_function(endpoint))
            .await;
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .endpoint_url(endpoint)
            .build();
        MotoSecretsManager {
            endpoint: endpoint.to_owned(),
            client: Client::from_conf(config),
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The port over this client, as a function would build it.
    pub fn store(&self) -> AwsSecretStore {
        AwsSecretStore::from_client(self.client.clone())
    }

    /// The environment a function process needs to reach this moto.
    pub fn function_environment(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
    }

    /// A name no other test of this process uses, so tests can share one moto.
    pub fn unique_name(prefix: &str) -> String {
        format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NAMES.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// `CreateSecret`; returns the ARN.
    pub async fn create_secret(&self, name: &str, value: &str) -> String {
        crate::leaks::remember_fields(value);
        let output = self
            .client
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .unwrap_or_else(|error| panic!("CreateSecret {name}: {error:?}"));
        output
            .arn
            .unwrap_or_else(|| panic!("CreateSecret {name}: no ARN"))
    }

    /// `RotateSecret` with the registered function: rotation becomes enabled and a value-less
    /// `AWSPENDING` version appears. Returns its VersionId, the rotation's token.
    pub async fn start_rotation(&self, arn: &str) -> String {
        let output = self
            .client
            .rotate_secret()
            .secret_id(arn)
            .rotation_lambda_arn(rotation_function_arn())
            .rotation_rules(
                RotationRulesType::builder()
                    .automatically_after_days(30)
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|error| panic!("RotateSecret {arn}: {error:?}"));
        output
            .version_id
            .unwrap_or_else(|| panic!("RotateSecret {arn}: no VersionId"))
    }

    /// The labelled versions, labels sorted.
    pub async fn labels(&self, arn: &str) -> BTreeMap<String, Vec<String>> {
        let mut versions = self
            .store()
            .describe(arn)
            .await
            .unwrap_or_else(|error| panic!("DescribeSecret {arn}: {error}"))
            .versions;
        for labels in versions.values_mut() {
            labels.sort();
        }
        versions
    }

    /// `CreateSecret` with only a `SecretBinary`; returns the ARN.
    pub async fn create_binary_secret(&self, name: &str, bytes: &[u8]) -> String {
        let output = self
            .client
            .create_secret()
            .name(name)
            .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(bytes))
            .send()
            .await
            .unwrap_or_else(|error| panic!("CreateSecret {name}: {error:?}"));
        output
            .arn
            .unwrap_or_else(|| panic!("CreateSecret {name}: no ARN"))
    }

    /// `PutSecretValue` as version `token` labelled `AWSPENDING`: a pending value written by
    /// someone other than the function (a tampered or hand-made version).
    pub async fn put_pending(&self, arn: &str, token: &str, value: &str) {
        crate::leaks::remember_fields(value);
        self.client
            .put_secret_value()
            .secret_id(arn)
            .client_request_token(token)
            .secret_string(value)
            .version_stages("AWSPENDING")
            .send()
            .await
            .unwrap_or_else(|error| panic!("PutSecretValue {arn}: {error:?}"));
    }

    /// Every labelled version with its labels and value (`None` without one): what a refused
    /// step must leave exactly as it was.
    pub async fn snapshot(&self, arn: &str) -> BTreeMap<String, (Vec<String>, Option<String>)> {
        let mut snapshot = BTreeMap::new();
        for (version, labels) in self.labels(arn).await {
            let value = self
                .client
                .get_secret_value()
                .secret_id(arn)
                .version_id(&version)
                .send()
                .await
                .ok()
                .and_then(|output| output.secret_string().map(str::to_owned));
            if let Some(value) = &value {
                crate::leaks::remember_fields(value);
            }
            snapshot.insert(version, (labels, value));
        }
        snapshot
    }

    /// `field` of every labelled version that has it: the credentials a test must look for in
    /// logs.
    pub async fn field_values(&self, arn: &str, field: &str) -> Vec<String> {
        self.snapshot(arn)
            .await
            .into_values()
            .filter_map(|(_, value)| serde_json::from_str::<serde_json::Value>(&value?).ok())
            .filter_map(|json| json[field].as_str().map(str::to_owned))
            .collect()
    }

    /// The value under `stage`, if that stage has one.
    pub async fn value_at(&self, arn: &str, stage: &str) -> Option<serde_json::Value> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .version_stage(stage)
            .send()
            .await
            .ok()?;
        let text = output.secret_string()?;
        crate::leaks::remember_fields(text);
        serde_json::from_str(text).ok()
    }
}

/// Registers an IAM role and a Lambda function moto accepts as a rotation function, and turns
/// off moto's Docker-based execution. moto does not check signatures, so plain HTTP with a
/// credential scope naming the service is enough.
async fn prepare_rotation_function(endpoint: &str) {
    let port: u16 = endpoint
        .rsplit(':')
        .next()
        .and_then(|port| port.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("{endpoint} names no port"));
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    })
    .to_string();
    let steps: [(&str, &str, &str, String); 3] = [
        (
            "/moto-api/config",
            "",
            "application/json",
            serde_json::json!({"lambda": {"use_docker": false}}).to_string(),
        ),
        (
            "/",
            "iam",
            "application/x-www-form-urlencoded",
            format!(
                "Action=CreateRole&Version=2010-05-08&RoleName={ROTATION_FUNCTION}&AssumeRolePolicyDocument={}",
                crate::http::percent_encode(&trust)
            ),
        ),
        (
            "/2015-03-31/functions",
            "lambda",
            "application/json",
            serde_json::json!({
                "FunctionName": ROTATION_FUNCTION,
                "Runtime": "provided.al2023",
                "Role": format!("arn:aws:iam::{ACCOUNT}:role/{ROTATION_FUNCTION}"),
                "Handler": "bootstrap",
                // The smallest valid zip archive (no entries): moto never runs it.
                "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}
            })
            .to_string(),
        ),
    ];
    for (path, service, content_type, body) in steps {
        let authorization = (!service.is_empty()).then(|| {
            format!(
                "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
            )
        });
        let mut headers = vec![("Content-Type", content_type)];
        if let Some(authorization) = authorization.as_deref() {
            headers.push(("Authorization", authorization));
        }
        let (status, answer) =
            crate::http::exchange(port, "POST", path, &headers, &body, Duration::from_secs(30))
                .await
                .unwrap_or_else(|error| panic!("moto set-up {path}: {error}"));
        // A second test process against the same moto finds them already there.
        let already = answer.contains("EntityAlreadyExists") || answer.contains("ResourceConflict");
        assert!(
            (200..300).contains(&status) || already,
            "moto set-up {path} answered {status}: {answer}"
        );
    }
}

/// The protocol scenario suite, through the AWS SDK adapter, against moto.
pub struct MotoScenarioHarness {
    moto: MotoSecretsManager,
    store: Arc<AwsSecretStore>,
}

impl MotoScenarioHarness {
    pub fn new(moto: MotoSecretsManager) -> Self {
        let store = Arc::new(moto.store());
        MotoScenarioHarness { moto, store }
    }
}

#[async_trait]
impl ScenarioHarness for MotoScenarioHarness {
    fn store(&self) -> Arc<dyn SecretStore> {
        self.store.clone()
    }

    async fn create_secret(&self, value: &str) -> String {
        self.moto
            .create_secret(&MotoSecretsManager::unique_name("scenario"), value)
            .await
    }

    async fn start_rotation(&self, arn: &str) -> String {
        self.moto.start_rotation(arn).await
    }

    fn rotation_tokens_received(&self) -> Option<Vec<String>> {
        // moto accepts RotationToken and ignores it.
        None
    }
}
