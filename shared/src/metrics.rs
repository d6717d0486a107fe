//! One CloudWatch metric record per step, in the embedded metric format (EMF).
//!
//! Beside the step's log line, the protocol writes one JSON line to standard output that
//! CloudWatch Logs turns into metrics without any API call from the function: `StepDuration`
//! (milliseconds) and `StepFailed` (0 or 1), with the dimensions `function` and `step`. A
//! secret's name is a dimension only when `METRICS_SECRET_DIMENSION` says so: names can be
//! sensitive, and every distinct name is a metric of its own, billed as one.
//!
//! Written by hand with serde_json rather than through an EMF crate: the maintained one
//! (`metrics_cloudwatch_embedded`) installs a global recorder for the `metrics` facade and
//! flushes on its own schedule, where one record per step, written when the step ends, is all
//! this needs. The record holds the step's name, outcome and timing, never a value, an error
//! message or a `RotationToken`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::config::{ConfigError, Environment};

pub const NAMESPACE: &str = "METRICS_NAMESPACE";
pub const SECRET_DIMENSION: &str = "METRICS_SECRET_DIMENSION";
pub const DEFAULT_NAMESPACE: &str = "SecretsRotation";

/// Where and how the step records are written, parsed once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepMetrics {
    namespace: String,
    /// The function's name: Lambda's `AWS_LAMBDA_FUNCTION_NAME`, else the binary's.
    function: String,
    with_secret: bool,
}

impl StepMetrics {
    /// `METRICS_NAMESPACE` (default `SecretsRotation`) and `METRICS_SECRET_DIMENSION` (`true`
    /// or `false`, default `false`).
    pub fn from_environment(env: &Environment, binary: &str) -> Result<Self, ConfigError> {
        let namespace = env
            .get(NAMESPACE)
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        check_namespace(&namespace).map_err(|problem| ConfigError::new(NAMESPACE, problem))?;
        let with_secret = match env.get(SECRET_DIMENSION).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    SECRET_DIMENSION,
                    format!("expected true or false, found {other:?}"),
                ))
            }
        };
        let function = env
            .get("AWS_LAMBDA_FUNCTION_NAME")
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| binary.to_owned());
        Ok(StepMetrics {
            namespace,
            function,
            with_secret,
        })
    }

    /// The record of one step: `secret_arn` is used only for the optional secret dimension
    /// (its name, the ARN's last part).
    pub fn record(&self, step: &str, secret_arn: &str, failed: bool, duration_ms: u64) -> Value {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let mut dimensions = vec![json!(["function", "step"])];
        let mut fields = Map::new();
        fields.insert("function".to_owned(), json!(self.function));
        fields.insert("step".to_owned(), json!(step));
        if self.with_secret {
            dimensions.push(json!(["function", "step", "secret"]));
            fields.insert("secret".to_owned(), json!(secret_name(secret_arn)));
        }
        fields.insert("StepDuration".to_owned(), json!(duration_ms));
        fields.insert("StepFailed".to_owned(), json!(u8::from(failed)));
        fields.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": dimensions,
                    "Metrics": [
                        {"Name": "StepDuration", "Unit": "Milliseconds"},
                        {"Name": "StepFailed", "Unit": "Count"},
                    ],
                }],
            }),
        );
        Value::Object(fields)
    }

    /// Writes the record as one line on standard output, where Lambda sends it to CloudWatch
    /// Logs. A failed write is not the step's failure, and nothing else could report it.
    pub fn emit(&self, step: &str, secret_arn: &str, failed: bool, duration_ms: u64) {
        use std::io::Write;
        let line = self.record(step, secret_arn, failed, duration_ms);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// A secret's name with its random suffix: the last part of its ARN (or the id as given, before
/// DescribeSecret answered).
fn secret_name(secret_arn: &str) -> &str {
    secret_arn
        .rsplit_once(":secret:")
        .map_or(secret_arn, |(_, name)| name)
}

/// CloudWatch's rule for a namespace: 1 to 255 characters from letters, digits, spaces and
/// `.-_/#:`, not starting with `:`, not only spaces, and not one of AWS's own (`AWS/`).
fn check_namespace(namespace: &str) -> Result<(), String> {
    if namespace.is_empty() || namespace.len() > 255 {
        return Err(format!(
            "expected 1 to 255 characters, found {} in {namespace:?}",
            namespace.len()
        ));
    }
    if let Some(bad) = namespace
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".-_/#: ".contains(*c)))
    {
        return Err(format!(
            "{bad:?} is not allowed in a CloudWatch namespace ({namespace:?})"
        ));
    }
    if namespace.starts_with(':') || namespace.trim().is_empty() {
        return Err(format!(
            "{namespace:?} starts with ':' or holds only spaces, which CloudWatch refuses"
        ));
    }
    if namespace.starts_with("AWS/") {
        return Err(format!(
            "{namespace:?} is reserved for AWS services' own metrics"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(pairs: &[(&str, &str)]) -> Result<StepMetrics, ConfigError> {
        StepMetrics::from_environment(
            &Environment::from_pairs(pairs.iter().copied()),
            "rotate-postgres",
        )
    }

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:billing/db-AbCdEf";

    #[test]
    fn a_record_has_the_step_duration_and_failure_under_function_and_step() {
        let record = metrics(&[("AWS_LAMBDA_FUNCTION_NAME", "secrets-rotation-postgres")])
            .expect("defaults")
            .record("setSecret", ARN, true, 42);
        assert_eq!(record["function"], "secrets-rotation-postgres");
        assert_eq!(record["step"], "setSecret");
        assert_eq!(record["StepDuration"], 42);
        assert_eq!(record["StepFailed"], 1);
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "SecretsRotation");
        assert_eq!(directive["Dimensions"], json!([["function", "step"]]));
        assert_eq!(
            directive["Metrics"],
            json!([
                {"Name": "StepDuration", "Unit": "Milliseconds"},
                {"Name": "StepFailed", "Unit": "Count"},
            ])
        );
        assert!(record["_aws"]["Timestamp"].as_u64().is_some_and(|t| t > 0));
        assert!(
            !record.to_string().contains("billing"),
            "no secret name by default: {record}"
        );
    }

    #[test]
    fn the_secret_is_a_dimension_only_when_asked() {
        let record = metrics(&[(SECRET_DIMENSION, "true"), (NAMESPACE, "Team/Rotation")])
            .expect("valid")
            .record("testSecret", ARN, false, 7);
        assert_eq!(record["secret"], "billing/db-AbCdEf");
        assert_eq!(record["function"], "rotate-postgres", "the binary's name");
        assert_eq!(record["StepFailed"], 0);
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Team/Rotation");
        assert_eq!(
            directive["Dimensions"],
            json!([["function", "step"], ["function", "step", "secret"]])
        );
    }

    #[test]
    fn invalid_metric_settings_are_refused_naming_the_variable() {
        for (name, value) in [
            (NAMESPACE, ""),
            (NAMESPACE, "AWS/Lambda"),
            (NAMESPACE, "tab\there"),
            (NAMESPACE, ":colon-first"),
            (NAMESPACE, "   "),
            (SECRET_DIMENSION, "yes"),
            (SECRET_DIMENSION, ""),
        ] {
            let error = metrics(&[(name, value)]).expect_err(value);
            assert_eq!(error.variable, name, "{value:?}: {error}");
        }
        assert!(metrics(&[(NAMESPACE, &"n".repeat(256))]).is_err());
    }
}
