//! The crash matrix: a function's test build aborts right after one named side effect
//! (`rotation::crash`), then the orchestrator retries the rotation as Secrets Manager would. The
//! rotation must converge, `AWSCURRENT` must work at the end, and at every moment observed after
//! the crash the current or the pending credentials must work (never neither).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::orchestrator::{Orchestrator, RotationRecord};
use crate::runtime_api::{FunctionSpec, Invocation, LambdaFunction};
use crate::secrets_manager::MotoSecretsManager;

/// How a test tells whether a version's credentials work at the target right now.
#[async_trait]
pub trait Credentials: Sync {
    async fn work(&self, secret: &Value) -> bool;
}

/// How many times the orchestrator runs the rotation again after the crash before the test
/// gives up; Secrets Manager retries for much longer.
const RETRIES: usize = 3;

/// Runs one rotation of `arn` with `binary` stopped once right after `point`, then retries it
/// until it converges, checking the invariants after the crash and after each attempt. Returns
/// the function's output, for leak checks.
pub async fn crash_then_converge(
    moto: &MotoSecretsManager,
    binary: &str,
    env: &[(String, String)],
    arn: &str,
    point: &str,
    credentials: &dyn Credentials,
) -> String {
    let marker_dir = tempfile::tempdir().expect("a directory for the crash marker");
    let marker = marker_dir.path().join("crashed");
    let mut env = env.to_vec();
    env.push(("ROTATION_CRASH_AFTER".to_owned(), point.to_owned()));
    env.push((
        "ROTATION_CRASH_MARKER".to_owned(),
        marker.display().to_string(),
    ));
    let function = LambdaFunction::start(FunctionSpec::new(binary).env(env))
        .await
        .expect("the function starts");
    let orchestrator = Orchestrator {
        moto,
        function: &function,
    };
    let previous_current = current_version(moto, arn).await;

    let first = orchestrator.rotate(arn).await;
    let crashed = first
        .steps
        .iter()
        .find(|step| matches!(step.invocation, Invocation::Crashed { .. }));
    assert!(
        crashed.is_some() && marker.exists(),
        "{point}: the function was to crash there, but the rotation went {}",
        describe(&first)
    );
    assert_one_works(moto, arn, credentials, point, "right after the crash").await;

    let mut attempts = 0;
    loop {
        attempts += 1;
        let retry = orchestrator.run_steps(arn, first.token.clone()).await;
        if retry.failure().is_none() {
            break;
        }
        assert_one_works(moto, arn, credentials, point, "after a failed retry").await;
        assert!(
            attempts < RETRIES,
            "{point}: no convergence after {RETRIES} retries; the last went {}",
            describe(&retry)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let labels = moto.labels(arn).await;
    assert_eq!(
        labels.get(&first.token),
        Some(&vec!["AWSCURRENT".to_owned()]),
        "{point}: the new version is current and nothing else: {labels:?}"
    );
    assert_eq!(
        labels.get(&previous_current),
        Some(&vec!["AWSPREVIOUS".to_owned()]),
        "{point}: {labels:?}"
    );
    let current = moto
        .value_at(arn, "AWSCURRENT")
        .await
        .expect("a current value");
    assert!(
        credentials.work(&current).await,
        "{point}: AWSCURRENT works after convergence"
    );
    function.stop().await
}

/// One ordinary rotation of `arn` by a fresh process of `binary`, which must succeed: what a
/// crash case needs before it (a previous key to revoke, an alternate user).
pub async fn rotate_normally(
    moto: &MotoSecretsManager,
    binary: &str,
    env: &[(String, String)],
    arn: &str,
) -> String {
    let function = LambdaFunction::start(FunctionSpec::new(binary).env(env.to_vec()))
        .await
        .expect("the function starts");
    Orchestrator {
        moto,
        function: &function,
    }
    .rotate(arn)
    .await
    .expect_success();
    function.stop().await
}

async fn current_version(moto: &MotoSecretsManager, arn: &str) -> String {
    moto.labels(arn)
        .await
        .into_iter()
        .find(|(_, labels)| labels.iter().any(|l| l == "AWSCURRENT"))
        .map(|(version, _)| version)
        .expect("a current version")
}

/// The current or the pending credentials work (at most one version can hold each label).
async fn assert_one_works(
    moto: &MotoSecretsManager,
    arn: &str,
    credentials: &dyn Credentials,
    point: &str,
    when: &str,
) {
    let mut working = false;
    for stage in ["AWSCURRENT", "AWSPENDING"] {
        if let Some(value) = moto.value_at(arn, stage).await {
            working |= credentials.work(&value).await;
        }
    }
    assert!(
        working,
        "{point}, {when}: neither AWSCURRENT nor AWSPENDING works"
    );
}

fn describe(record: &RotationRecord) -> String {
    record
        .steps
        .iter()
        .map(|step| format!("{}: {}", step.step, step.invocation))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs each step of a fresh rotation of `arn` in two processes of `binary` at once, as
/// duplicate deliveries would; a step either process failed is run once more, as the service
/// would retry it. The rotation must end rotated, with `AWSCURRENT` working. Returns what both
/// processes wrote.
pub async fn duplicate_steps_converge(
    moto: &MotoSecretsManager,
    binary: &str,
    env: &[(String, String)],
    arn: &str,
    credentials: &dyn Credentials,
) -> String {
    let start = || async {
        LambdaFunction::start(FunctionSpec::new(binary).env(env.to_vec()))
            .await
            .expect("the function starts")
    };
    let (first, second) = (start().await, start().await);
    let one = Orchestrator {
        moto,
        function: &first,
    };
    let other = Orchestrator {
        moto,
        function: &second,
    };
    let previous_current = current_version(moto, arn).await;
    let token = moto.start_rotation(arn).await;
    for step in crate::orchestrator::STEPS {
        let (a, b) = tokio::join!(
            one.invoke(arn, &token, step),
            other.invoke(arn, &token, step)
        );
        let failed: Vec<String> = [&a, &b]
            .iter()
            .filter(|record| !matches!(record.invocation, Invocation::Succeeded(_)))
            .map(|record| record.invocation.to_string())
            .collect();
        if !failed.is_empty() {
            let retry = one.invoke(arn, &token, step).await;
            assert!(
                matches!(retry.invocation, Invocation::Succeeded(_)),
                "{step}: duplicates failed ({}) and the retry went {}",
                failed.join("; "),
                retry.invocation
            );
        }
    }
    let labels = moto.labels(arn).await;
    assert_eq!(
        labels.get(&token),
        Some(&vec!["AWSCURRENT".to_owned()]),
        "{labels:?}"
    );
    assert_eq!(
        labels.get(&previous_current),
        Some(&vec!["AWSPREVIOUS".to_owned()]),
        "{labels:?}"
    );
    let current = moto
        .value_at(arn, "AWSCURRENT")
        .await
        .expect("a current value");
    assert!(credentials.work(&current).await, "AWSCURRENT works");
    let mut output = first.stop().await;
    output.push_str(&second.stop().await);
    output
}
