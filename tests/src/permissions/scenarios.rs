//! The rotations the permissions proof runs: each function with each strategy or provider and
//! each kind of master secret, on the local stack, as an operator's secrets would look.
//!
//! The secrets' rotation function in moto is the function's name as template.yaml deploys it
//! with the default prefix (`secrets-rotation-postgres`, …), so the recorded
//! `AllowRotationLambdaArn` is what the deployed role's condition meets. RDS-managed master
//! secrets are made by moto's RDS (`ManageMasterUserPassword`), tags included; their database
//! endpoints do not resolve here, so those rotations stop in setSecret at the host check, after
//! every AWS call of master resolution has been made.

use crate::conformance::unique;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::{AssertSqlSafe, Connection, MySqlConnection, PgConnection};

use super::recorder::{Recorder, SeenCall};
use super::{Facts, RecordedCall, Recording, ScenarioRecord};
use crate::api_provider::ReferenceProvider;
use crate::orchestrator::Orchestrator;
use crate::runtime_api::{FunctionSpec, Invocation, LambdaFunction};
use crate::secrets_manager::{MotoSecretsManager, ACCOUNT, REGION};
use crate::stack;

/// The default `FunctionNamePrefix` of template.yaml.
const PREFIX: &str = "secrets-rotation";

/// A customer managed key as an operator names it in `KmsKeyArns`. moto's Secrets Manager
/// stores a secret's `KmsKeyId` without encrypting with it, which is all the proof needs.
pub const KMS_KEY_ARN: &str =
    "arn:aws:kms:us-east-1:123456789012:key/6f1b3a52-8c4e-4d1e-9a7b-2f0c5d9e8a41";

/// The path of IAM users the api-key scenario rotates (template.yaml's `IamUserPath` default).
pub const IAM_USER_PATH: &str = "/api-key-rotation/";

#[derive(Debug)]
pub struct ProofError(pub String);

impl std::fmt::Display for ProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProofError {}

fn error(context: &str) -> impl Fn(String) -> ProofError + '_ {
    move |message| ProofError(format!("{context}: {message}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Function {
    Postgres,
    Mysql,
    ApiKey,
}

impl Function {
    fn binary(self) -> &'static str {
        match self {
            Function::Postgres => "rotate-postgres",
            Function::Mysql => "rotate-mysql",
            Function::ApiKey => "rotate-api-key",
        }
    }

    /// The function's name as template.yaml deploys it.
    fn deployed_name(self) -> String {
        let suffix = match self {
            Function::Postgres => "postgres",
            Function::Mysql => "mysql",
            Function::ApiKey => "api-key",
        };
        format!("{PREFIX}-{suffix}")
    }

    fn arn(self) -> String {
        format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}",
            self.deployed_name()
        )
    }
}

/// What a scenario's master secret is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Master {
    None,
    Full,
    RdsInstance,
    RdsCluster,
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    name: &'static str,
    function: Function,
    master: Master,
    /// The rotated secret is encrypted with [`KMS_KEY_ARN`].
    kms: bool,
    provider: Option<&'static str>,
}

const SCENARIOS: [Scenario; 9] = [
    Scenario {
        name: "rotate-postgres/single-user",
        function: Function::Postgres,
        master: Master::None,
        kms: false,
        provider: None,
    },
    Scenario {
        name: "rotate-postgres/single-user/customer-managed-key",
        function: Function::Postgres,
        master: Master::None,
        kms: true,
        provider: None,
    },
    Scenario {
        name: "rotate-postgres/alternating-users/full-master",
        function: Function::Postgres,
        master: Master::Full,
        kms: false,
        provider: None,
    },
    Scenario {
        name: "rotate-postgres/alternating-users/rds-managed-instance-master",
        function: Function::Postgres,
        master: Master::RdsInstance,
        kms: false,
        provider: None,
    },
    Scenario {
        name: "rotate-postgres/alternating-users/rds-managed-cluster-master",
        function: Function::Postgres,
        master: Master::RdsCluster,
        kms: false,
        provider: None,
    },
    Scenario {
        name: "rotate-mysql/single-user",
        function: Function::Mysql,
        master: Master::None,
        kms: false,
        provider: None,
    },
    Scenario {
        name: "rotate-mysql/alternating-users/full-master",
        function: Function::Mysql,
        master: Master::Full,
        kms: false,
        provider: None,
    },
    Scenario {
        name: "rotate-api-key/http/admin-secret",
        function: Function::ApiKey,
        master: Master::None,
        kms: false,
        provider: Some("http"),
    },
    Scenario {
        name: "rotate-api-key/aws-iam",
        function: Function::ApiKey,
        master: Master::None,
        kms: false,
        provider: Some("aws-iam"),
    },
];

fn password() -> String {
    format!("Proof-{:032x}", rand::random::<u128>())
}

/// A query-protocol call (IAM, RDS) straight to moto; returns the XML answer.
async fn query(service: &str, version: &str, form: &str) -> Result<String, ProofError> {
    let port = stack::moto().await.port();
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    );
    let (status, body) = crate::http::exchange(
        port,
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", &authorization),
        ],
        &format!("Version={version}&{form}"),
        Duration::from_secs(30),
    )
    .await
    .map_err(error(service))?;
    if status == 200 {
        Ok(body)
    } else {
        Err(ProofError(format!(
            "moto's {service} answered {status} to {form}: {body:.300}"
        )))
    }
}

/// The text of the first `<name>` element.
fn xml_field(xml: &str, name: &str) -> Option<String> {
    let (_, rest) = xml.split_once(&format!("<{name}>"))?;
    let (value, _) = rest.split_once(&format!("</{name}>"))?;
    Some(value.to_owned())
}

/// Registers the three functions in moto under their deployed names, so `RotateSecret` can
/// name them as the secrets' rotation function.
async fn register_functions(moto: &MotoSecretsManager) -> Result<(), ProofError> {
    // MotoSecretsManager::connect made the role and turned Docker off.
    let _ = moto;
    let port = stack::moto().await.port();
    for function in [Function::Postgres, Function::Mysql, Function::ApiKey] {
        let body = json!({
            "FunctionName": function.deployed_name(),
            "Runtime": "provided.al2023",
            "Role": format!("arn:aws:iam::{ACCOUNT}:role/rotation-under-test"),
            "Handler": "bootstrap",
            "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}
        })
        .to_string();
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/lambda/aws4_request, SignedHeaders=host, Signature=0"
        );
        let (status, answer) = crate::http::exchange(
            port,
            "POST",
            "/2015-03-31/functions",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &authorization),
            ],
            &body,
            Duration::from_secs(30),
        )
        .await
        .map_err(error("register the function in moto"))?;
        if !(200..300).contains(&status) && !answer.contains("ResourceConflict") {
            return Err(ProofError(format!(
                "moto refused function {}: {status}: {answer:.300}",
                function.deployed_name()
            )));
        }
    }
    Ok(())
}

/// A secret in moto, encrypted with `kms_key` when given; returns its ARN.
async fn create_secret(
    moto: &MotoSecretsManager,
    name: &str,
    value: &Value,
    kms_key: Option<&str>,
) -> Result<String, ProofError> {
    crate::leaks::remember_fields(&value.to_string());
    let output = moto
        .client()
        .create_secret()
        .name(name)
        .secret_string(value.to_string())
        .set_kms_key_id(kms_key.map(str::to_owned))
        .send()
        .await
        .map_err(|failure| ProofError(format!("CreateSecret {name}: {failure:?}")))?;
    output
        .arn
        .ok_or_else(|| ProofError(format!("CreateSecret {name}: no ARN")))
}

/// What a scenario set up: the secret, the function's environment, and what must outlive the
/// run.
struct Prepared {
    arn: String,
    env: Vec<(String, String)>,
    _provider: Option<ReferenceProvider>,
}

async fn run_sql_postgres(statements: &[String]) -> Result<(), ProofError> {
    let pg = stack::postgres().await;
    let mut admin = PgConnection::connect(&pg.superuser_url())
        .await
        .map_err(|failure| ProofError(format!("PostgreSQL superuser login: {failure}")))?;
    sqlx::raw_sql(AssertSqlSafe(statements.join(";\n")))
        .execute(&mut admin)
        .await
        .map_err(|failure| ProofError(format!("PostgreSQL set-up: {failure}")))?;
    let _ = admin.close().await;
    Ok(())
}

async fn run_sql_mariadb(statements: &[String]) -> Result<(), ProofError> {
    let db = stack::mariadb().await;
    let mut admin = MySqlConnection::connect(&db.admin_url())
        .await
        .map_err(|failure| ProofError(format!("MariaDB admin login: {failure}")))?;
    sqlx::raw_sql(AssertSqlSafe(statements.join(";\n")))
        .execute(&mut admin)
        .await
        .map_err(|failure| ProofError(format!("MariaDB set-up: {failure}")))?;
    let _ = admin.close().await;
    Ok(())
}

/// An RDS-managed master secret made by moto's RDS for a new instance or cluster; returns the
/// secret's ARN.
async fn rds_managed_master(master: Master) -> Result<String, ProofError> {
    let identifier = unique("proof-db").replace('_', "-");
    let answer = match master {
        Master::RdsInstance => {
            query(
                "rds",
                "2014-10-31",
                &format!(
                    "Action=CreateDBInstance&DBInstanceIdentifier={identifier}&Engine=postgres\
                     &DBInstanceClass=db.t3.micro&AllocatedStorage=20&MasterUsername=admin\
                     &ManageMasterUserPassword=true"
                ),
            )
            .await?
        }
        _ => {
            query(
                "rds",
                "2014-10-31",
                &format!(
                    "Action=CreateDBCluster&DBClusterIdentifier={identifier}\
                     &Engine=aurora-postgresql&MasterUsername=admin&ManageMasterUserPassword=true"
                ),
            )
            .await?
        }
    };
    xml_field(&answer, "SecretArn")
        .ok_or_else(|| ProofError(format!("moto's RDS made no master secret: {answer:.300}")))
}

async fn prepare(
    scenario: Scenario,
    moto: &MotoSecretsManager,
    recorder: &Recorder,
    facts: &mut Facts,
) -> Result<Prepared, ProofError> {
    let mut env = moto.function_environment();
    env.retain(|(name, _)| name != "AWS_ENDPOINT_URL_SECRETS_MANAGER");
    // Every service the function calls goes through the recorder.
    env.push(("AWS_ENDPOINT_URL".to_owned(), recorder.endpoint()));
    let mut provider = None;
    let secret = match scenario.function {
        Function::Postgres => {
            let pg = stack::postgres().await;
            let user = unique("proof_pg");
            let user_password = password();
            let mut statements = vec![format!(
                "CREATE ROLE {user} LOGIN PASSWORD '{user_password}'"
            )];
            let mut secret = json!({
                "engine": "postgres", "host": pg.host(), "port": pg.port(), "dbname": "postgres",
                "username": user, "password": user_password,
            });
            match scenario.master {
                Master::None => {}
                Master::Full => {
                    let master = unique("proof_pg_master");
                    let master_password = password();
                    statements.push(format!(
                        "CREATE ROLE {master} LOGIN CREATEROLE PASSWORD '{master_password}'"
                    ));
                    let arn = create_secret(
                        moto,
                        &unique("proof-master"),
                        &json!({"engine": "postgres", "host": pg.host(), "port": pg.port(),
                                "username": master, "password": master_password}),
                        None,
                    )
                    .await?;
                    facts.full_master_secret_arns.push(arn.clone());
                    secret["masterarn"] = json!(arn);
                }
                Master::RdsInstance | Master::RdsCluster => {
                    secret["masterarn"] = json!(rds_managed_master(scenario.master).await?);
                }
            }
            if scenario.master != Master::None {
                env.push((
                    "ROTATION_STRATEGY".to_owned(),
                    "alternating-users".to_owned(),
                ));
            }
            run_sql_postgres(&statements).await?;
            env.push((
                "CA_BUNDLE".to_owned(),
                pg.ca_cert_path().display().to_string(),
            ));
            secret
        }
        Function::Mysql => {
            let db = stack::mariadb().await;
            let user = unique("proof_my");
            let user_password = password();
            let mut statements = vec![format!(
                "CREATE USER '{user}'@'%' IDENTIFIED BY '{user_password}'"
            )];
            let mut secret = json!({
                "engine": "mariadb", "host": db.host(), "port": db.port(),
                "username": user, "password": user_password,
            });
            if scenario.master == Master::Full {
                let master = unique("proof_my_master");
                let master_password = password();
                statements.push(format!(
                    "CREATE USER '{master}'@'%' IDENTIFIED BY '{master_password}'"
                ));
                statements.push(format!(
                    "GRANT ALL PRIVILEGES ON *.* TO '{master}'@'%' WITH GRANT OPTION"
                ));
                let arn = create_secret(
                    moto,
                    &unique("proof-master"),
                    &json!({"engine": "mariadb", "host": db.host(), "port": db.port(),
                            "username": master, "password": master_password}),
                    None,
                )
                .await?;
                facts.full_master_secret_arns.push(arn.clone());
                secret["masterarn"] = json!(arn);
                env.push((
                    "ROTATION_STRATEGY".to_owned(),
                    "alternating-users".to_owned(),
                ));
            }
            run_sql_mariadb(&statements).await?;
            env.push((
                "CA_BUNDLE".to_owned(),
                db.ca_cert_path().display().to_string(),
            ));
            secret
        }
        Function::ApiKey if scenario.provider == Some("http") => {
            let started = ReferenceProvider::start().await;
            let (id, key) = started.issue_directly("issued-by-hand");
            let admin = create_secret(
                moto,
                &unique("proof-api-admin"),
                &json!({"api_key": started.admin_key()}),
                None,
            )
            .await?;
            facts.api_admin_secret_arn = admin.clone();
            for (name, value) in [
                ("API_KEY_PROVIDER", "http"),
                ("API_BASE_URL", &started.base_url()),
                ("ALLOW_INSECURE_HTTP", "true"),
                ("ADMIN_SECRET_ARN", &admin),
            ] {
                env.push((name.to_owned(), value.to_owned()));
            }
            provider = Some(started);
            json!({"api_key": key, "key_id": id})
        }
        Function::ApiKey => {
            let user = unique("proof-iam");
            query(
                "iam",
                "2010-05-08",
                &format!(
                    "Action=CreateUser&UserName={user}&Path={}",
                    crate::http::percent_encode(IAM_USER_PATH)
                ),
            )
            .await?;
            let created = query(
                "iam",
                "2010-05-08",
                &format!("Action=CreateAccessKey&UserName={user}"),
            )
            .await?;
            let field = |name: &str| {
                xml_field(&created, name)
                    .ok_or_else(|| ProofError(format!("CreateAccessKey answered without {name}")))
            };
            env.push(("API_KEY_PROVIDER".to_owned(), "aws-iam".to_owned()));
            json!({
                "user_name": user,
                "access_key_id": field("AccessKeyId")?,
                "secret_access_key": field("SecretAccessKey")?,
            })
        }
    };
    let kms_key = scenario.kms.then_some(KMS_KEY_ARN);
    let arn = create_secret(moto, &unique("proof"), &secret, kms_key).await?;
    Ok(Prepared {
        arn,
        env,
        _provider: provider,
    })
}

/// How IAM sees one recorded call: the resource's ARN and the condition keys, from moto's state.
async fn describe_call(
    moto: &MotoSecretsManager,
    seen: &SeenCall,
) -> Result<RecordedCall, ProofError> {
    let mut context = BTreeMap::new();
    let mut secret_kms_key = None;
    let identifier = seen.identifier.clone().unwrap_or_default();
    let resource = match seen.service.as_str() {
        "secretsmanager" if !identifier.is_empty() => {
            let described = moto
                .client()
                .describe_secret()
                .secret_id(&identifier)
                .send()
                .await
                .map_err(|failure| {
                    ProofError(format!("DescribeSecret {identifier}: {failure:?}"))
                })?;
            let arn = described.arn().unwrap_or(&identifier).to_owned();
            if let Some(function) = described.rotation_lambda_arn() {
                context.insert(
                    "secretsmanager:resource/AllowRotationLambdaArn".to_owned(),
                    function.to_owned(),
                );
            }
            context.insert("secretsmanager:SecretId".to_owned(), arn.clone());
            secret_kms_key = described.kms_key_id().map(str::to_owned);
            arn
        }
        "rds" if identifier.starts_with("arn:") => identifier,
        "rds" => {
            let kind = if seen.operation == "DescribeDBClusters" {
                "cluster"
            } else {
                "db"
            };
            format!("arn:aws:rds:{REGION}:{ACCOUNT}:{kind}:{identifier}")
        }
        "iam" if !identifier.is_empty() => {
            let answer = query(
                "iam",
                "2010-05-08",
                &format!(
                    "Action=GetUser&UserName={}",
                    crate::http::percent_encode(&identifier)
                ),
            )
            .await?;
            xml_field(&answer, "Arn")
                .ok_or_else(|| ProofError(format!("GetUser {identifier}: no Arn")))?
        }
        _ => "*".to_owned(),
    };
    Ok(RecordedCall {
        action: format!("{}:{}", seen.service, seen.operation),
        resource,
        context,
        secret_kms_key,
        signed_by_role: seen.access_key_id == "testing",
        status: seen.status,
    })
}

fn outcome(steps: &[(&'static str, Invocation)]) -> String {
    match steps
        .iter()
        .find(|(_, invocation)| !matches!(invocation, Invocation::Succeeded(_)))
    {
        None => "rotated".to_owned(),
        Some((step, invocation)) => match invocation.clone().failed() {
            Ok((error_type, _)) => format!("stopped at {step}: {error_type}"),
            Err(other) => format!("stopped at {step}: {other}"),
        },
    }
}

/// Runs one scenario: two rotations (a second one meets the state the first left, e.g. an
/// existing clone or a key to revoke), or one when the first must stop.
async fn run(
    scenario: Scenario,
    bin_dir: &Path,
    moto: &MotoSecretsManager,
    recorder: &Recorder,
    facts: &mut Facts,
) -> Result<ScenarioRecord, ProofError> {
    let prepared = prepare(scenario, moto, recorder, facts).await?;
    let binary: PathBuf = bin_dir.join(scenario.function.binary());
    if !binary.is_file() {
        return Err(ProofError(format!(
            "{} not found: build the functions first (cargo build -p rotate-postgres -p rotate-mysql -p rotate-api-key)",
            binary.display()
        )));
    }
    let function = LambdaFunction::start(
        FunctionSpec::new(&binary)
            .env(prepared.env.iter().cloned())
            .function_name(scenario.function.deployed_name()),
    )
    .await
    .map_err(|failure| ProofError(format!("start {}: {failure}", binary.display())))?;
    let orchestrator = Orchestrator {
        moto,
        function: &function,
    };
    let mut steps = Vec::new();
    let rotations = if matches!(scenario.master, Master::RdsInstance | Master::RdsCluster) {
        1
    } else {
        2
    };
    for _ in 0..rotations {
        let token = moto
            .client()
            .rotate_secret()
            .secret_id(&prepared.arn)
            .rotation_lambda_arn(scenario.function.arn())
            // Without rules moto leaves the secret's rotation disabled.
            .rotation_rules(
                aws_sdk_secretsmanager::types::RotationRulesType::builder()
                    .automatically_after_days(30)
                    .build(),
            )
            .send()
            .await
            .map_err(|failure| ProofError(format!("RotateSecret: {failure:?}")))?
            .version_id
            .ok_or_else(|| ProofError("RotateSecret: no VersionId".to_owned()))?;
        let record = orchestrator.run_steps(&prepared.arn, token).await;
        let stopped = record.failure().is_some();
        steps.extend(
            record
                .steps
                .into_iter()
                .map(|step| (step.step, step.invocation)),
        );
        if stopped {
            break;
        }
    }
    let log = function.stop().await;
    let mut calls = Vec::new();
    for seen in recorder.take() {
        calls.push(describe_call(moto, &seen).await?);
    }
    let record = ScenarioRecord {
        name: scenario.name.to_owned(),
        function: scenario.function.binary().to_owned(),
        function_arn: scenario.function.arn(),
        outcome: outcome(&steps),
        calls,
    };
    check_outcome(scenario, &record, &log)?;
    Ok(record)
}

/// A scenario proves something only if it went where it should: a whole rotation, or for an
/// RDS-managed master, through master resolution to the host check.
fn check_outcome(scenario: Scenario, record: &ScenarioRecord, log: &str) -> Result<(), ProofError> {
    let made = |action: &str| record.calls.iter().any(|call| call.action == action);
    let fine = match scenario.master {
        Master::RdsInstance => {
            record.outcome.starts_with("stopped at setSecret") && made("rds:DescribeDBInstances")
        }
        Master::RdsCluster => {
            record.outcome.starts_with("stopped at setSecret") && made("rds:DescribeDBClusters")
        }
        _ => record.outcome == "rotated",
    };
    if fine {
        Ok(())
    } else {
        let tail: String = log
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        Err(ProofError(format!(
            "scenario {} ended \"{}\" after {} calls, not as it must; the function's log ends:\n{tail}",
            record.name,
            record.outcome,
            record.calls.len()
        )))
    }
}

/// Runs every scenario in turn and returns what the functions did.
pub async fn record_all(bin_dir: &Path) -> Result<Recording, ProofError> {
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    register_functions(&moto).await?;
    let recorder = Recorder::start(stack::moto().await.port())
        .await
        .map_err(|failure| ProofError(format!("start the recorder: {failure}")))?;
    let mut facts = Facts {
        region: REGION.to_owned(),
        account: ACCOUNT.to_owned(),
        kms_key_arn: KMS_KEY_ARN.to_owned(),
        ..Facts::default()
    };
    let mut scenarios = Vec::new();
    for scenario in SCENARIOS {
        scenarios.push(run(scenario, bin_dir, &moto, &recorder, &mut facts).await?);
    }
    Ok(Recording { facts, scenarios })
}
