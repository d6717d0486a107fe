//! The permissions proof's recording half: every function runs representative rotations against
//! the local stack, with every AWS call going through a [`recorder::Recorder`] in front of moto;
//! each call is then described as IAM sees it (action, resource ARN, the condition keys the
//! template's policies test) and written to a JSON file. `scripts/permissions/prove.mjs` renders
//! each function's role from `template.yaml` for representative parameter sets and evaluates
//! every recorded call, and the calls that must be denied, with a real IAM policy evaluator.

pub mod recorder;
pub mod scenarios;

use std::collections::BTreeMap;

use serde::Serialize;

/// One AWS call a function made, as IAM evaluates it.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedCall {
    /// `secretsmanager:DescribeSecret`
    pub action: String,
    pub resource: String,
    /// The request context the template's conditions test, e.g.
    /// `secretsmanager:resource/AllowRotationLambdaArn` (absent when the secret has no rotation
    /// function).
    pub context: BTreeMap<String, String>,
    /// The customer managed key of the secret the call reads or writes: Secrets Manager then
    /// calls KMS with the caller's permissions (`kms:ViaService`).
    pub secret_kms_key: Option<String>,
    /// False for calls signed by a credential the function holds other than its role (the
    /// rotated IAM key proving itself): IAM evaluates those against that user, not the role.
    pub signed_by_role: bool,
    /// moto's HTTP status.
    pub status: u16,
}

/// One scenario's run: which function, how it ended, and every call it made.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioRecord {
    pub name: String,
    /// The binary: `rotate-postgres`, `rotate-mysql`, `rotate-api-key`.
    pub function: String,
    /// Its ARN as deployed by template.yaml with the default prefix (the secrets' rotation
    /// function in moto).
    pub function_arn: String,
    pub outcome: String,
    pub calls: Vec<RecordedCall>,
}

/// What the parameter sets refer to by name: ARNs made during the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Facts {
    pub region: String,
    pub account: String,
    pub kms_key_arn: String,
    pub api_admin_secret_arn: String,
    pub full_master_secret_arns: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Recording {
    pub facts: Facts,
    pub scenarios: Vec<ScenarioRecord>,
}
