//! Wiring a target into a Lambda function: logging, configuration, the Secrets Manager client,
//! and the Runtime API loop. A function's `main` is one call to [`run`].

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::config::Environment;
use crate::error::RotationError;
use crate::protocol::Rotation;
use crate::store::aws::AwsSecretStore;
use crate::target::Target;

/// Starts a rotation function: sets up Lambda logging, parses the configuration once (an invalid
/// value is reported with a message naming it), builds the Secrets Manager client once,
/// then serves invocations until Lambda stops the process.
pub async fn run<T, F>(configure: F) -> Result<(), lambda_runtime::Error>
where
    T: Target + 'static,
    F: FnOnce(&Environment) -> Result<T, RotationError>,
{
    crate::logging::init();
    let env = Environment::process();
    let target = match configure(&env) {
        Ok(target) => target,
        Err(error) => return serve_configuration_error(error).await,
    };
    let store = AwsSecretStore::from_environment(&env).await;
    let rotation = Rotation::new(Arc::new(store), target);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let rotation = &rotation;
        async move { rotation.handle(&event.payload).await.map(|_| Value::Null) }
    }))
    .await
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
