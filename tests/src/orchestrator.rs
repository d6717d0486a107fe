//! Plays Secrets Manager's part of a rotation: create the value-less `AWSPENDING` version for a
//! fresh token (moto's `RotateSecret` does that, as the service does), then invoke the function
//! for createSecret, setSecret, testSecret and finishSecret in order, through the Lambda Runtime
//! API, stopping at the first failure as the service does.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::runtime_api::{Invocation, LambdaFunction};
use crate::secrets_manager::MotoSecretsManager;

pub use rotation_testkit::scenarios::STEPS;

/// One invocation as the orchestrator saw it.
#[derive(Debug)]
pub struct StepRecord {
    pub step: &'static str,
    /// The `RotationToken` the event carried, so tests can check it never reaches a log.
    pub rotation_token: String,
    pub invocation: Invocation,
    pub duration: Duration,
}

/// A rotation as the orchestrator ran it.
#[derive(Debug)]
pub struct RotationRecord {
    pub token: String,
    pub steps: Vec<StepRecord>,
}

impl RotationRecord {
    /// The step that failed, if one did.
    pub fn failure(&self) -> Option<&StepRecord> {
        self.steps
            .iter()
            .find(|record| !matches!(record.invocation, Invocation::Succeeded(_)))
    }

    /// Panics with the failing step's error unless all four steps succeeded.
    pub fn expect_success(&self) {
        if let Some(failed) = self.failure() {
            panic!(
                "rotation {} stopped at {}: {:?}",
                self.token, failed.step, failed.invocation
            );
        }
        assert_eq!(self.steps.len(), STEPS.len(), "every step ran");
    }
}

pub struct Orchestrator<'a> {
    pub moto: &'a MotoSecretsManager,
    pub function: &'a LambdaFunction,
}

impl Orchestrator<'_> {
    /// The event Secrets Manager sends, including a `RotationToken` as the service now does.
    pub fn event(arn: &str, token: &str, step: &str, rotation_token: &str) -> Value {
        json!({
            "Step": step,
            "SecretId": arn,
            "ClientRequestToken": token,
            "RotationToken": rotation_token,
        })
    }

    pub async fn invoke(&self, arn: &str, token: &str, step: &'static str) -> StepRecord {
        let rotation_token = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        crate::leaks::remember(&rotation_token);
        let started = Instant::now();
        let invocation = self
            .function
            .invoke(&Self::event(arn, token, step, &rotation_token))
            .await;
        StepRecord {
            step,
            rotation_token,
            invocation,
            duration: started.elapsed(),
        }
    }

    /// A whole rotation with a fresh token.
    pub async fn rotate(&self, arn: &str) -> RotationRecord {
        let token = self.moto.start_rotation(arn).await;
        self.run_steps(arn, token).await
    }

    /// The four steps for an existing pending version, as the service runs them when it
    /// retries a rotation.
    pub async fn run_steps(&self, arn: &str, token: String) -> RotationRecord {
        let mut steps = Vec::new();
        for step in STEPS {
            let record = self.invoke(arn, &token, step).await;
            let failed = !matches!(record.invocation, Invocation::Succeeded(_));
            steps.push(record);
            if failed {
                break;
            }
        }
        RotationRecord { token, steps }
    }
}
