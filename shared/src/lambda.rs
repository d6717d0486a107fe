//! Wiring a target into a Lambda function: logging, configuration, the Secrets Manager client,
//! and the Runtime API loop. A function's `main` is one call to [`run`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::config::Environment;
use crate::error::RotationError;
use crate::metrics::StepMetrics;
use crate::protocol::Rotation;
use crate::store::aws::AwsSecretStore;
use crate::store::SecretStore;
use crate::target::Target;

/// What a target may use while it is configured: the environment, the AWS configuration (to
/// build other AWS clients once, sharing region, credentials and timeouts) and the Secrets
/// Manager port (for secrets other than the one being rotated, such as a master secret).
pub struct StartUp {
    pub env: Environment,
    pub aws: aws_config::SdkConfig,
    pub store: Arc<dyn SecretStore>,
}

/// Starts a rotation function: sets up Lambda logging, loads the AWS configuration and builds
/// the Secrets Manager client once, lets the target parse its configuration once (an invalid
/// value is reported with a message naming it), then serves invocations until Lambda stops the
/// process.
pub async fn run<T, F>(configure: F) -> Result<(), lambda_runtime::Error>
where
    T: Target + 'static,
    F: AsyncFnOnce(&StartUp) -> Result<T, RotationError>,
{
    crate::logging::init();
    let env = Environment::process();
    let aws = crate::store::aws::load_aws_config().await;
    let store: Arc<dyn SecretStore> = Arc::new(AwsSecretStore::from_config(&aws, &env));
    let start_up = StartUp { env, aws, store };
    let target = match configure(&start_up).await {
        Ok(target) => target,
        Err(error) => return serve_configuration_error(error).await,
    };
    let binary = std::env::args()
        .next()
        .and_then(|path| {
            std::path::Path::new(&path)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "rotation".to_owned());
    let metrics = match StepMetrics::from_environment(&start_up.env, &binary) {
        Ok(metrics) => metrics,
        Err(error) => return serve_configuration_error(error.into()).await,
    };
    let rotation = Rotation::new(start_up.store.clone(), target).with_metrics(metrics);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let rotation = &rotation;
        let deadline = step_deadline(event.context.deadline);
        async move {
            rotation
                .handle_until(&event.payload, deadline)
                .await
                .map(|_| Value::Null)
        }
    }))
    .await
}

/// Time kept back from Lambda's deadline to report the error and flush the log line.
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// The instant a step must stop by: Lambda's deadline (milliseconds since the epoch) less the
/// margin. `None` when the runtime gave no usable deadline.
fn step_deadline(deadline_epoch_ms: u64) -> Option<Instant> {
    let now_epoch = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    let left = Duration::from_millis(deadline_epoch_ms).checked_sub(now_epoch)?;
    Some(Instant::now() + left.saturating_sub(DEADLINE_MARGIN))
}

/// A function that cannot be configured still answers every invocation, with the
/// configuration error: Secrets Manager then records the real cause (errorType
/// `InvalidConfiguration` and the variable at fault) in its `RotationFailed` event, where an
/// exited runtime would only say that the process died.
async fn serve_configuration_error(error: RotationError) -> Result<(), lambda_runtime::Error> {
    let diagnostic = Diagnostic::from(&error);
    tracing::error!(
        error_type = diagnostic.error_type.as_str(),
        "the function's configuration is invalid: {error}"
    );
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| {
        let diagnostic = diagnostic.clone();
        async move { Err::<Value, Diagnostic>(diagnostic) }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch_ms_in(from_now: Duration) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970");
        (now + from_now).as_millis() as u64
    }

    #[test]
    fn a_step_stops_two_seconds_before_lambdas_deadline() {
        let deadline = step_deadline(epoch_ms_in(Duration::from_secs(30))).expect("deadline");
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            left <= Duration::from_secs(28) && left > Duration::from_secs(27),
            "{left:?}"
        );
    }

    #[test]
    fn a_missing_deadline_sets_no_budget_and_a_near_one_leaves_no_time() {
        assert!(step_deadline(0).is_none());
        let almost = step_deadline(epoch_ms_in(Duration::from_secs(1))).expect("deadline");
        assert!(almost <= Instant::now() + Duration::from_millis(10));
    }
}
