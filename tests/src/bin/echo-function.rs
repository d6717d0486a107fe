//! A test-only Lambda function that exists to prove the Runtime API emulator.
//!
//! It runs under `lambda_runtime::run` exactly like the rotation functions, and
//! its payload says what to do. Keys are acted on in this order, so they can
//! be combined (e.g. print, then exit):
//! - `{"print": S}` / `{"eprint": S}`: writes S to stdout / stderr;
//! - `{"sleep_ms": N}`: sleeps N ms;
//! - `{"exit": CODE}`: exits the process mid-invocation;
//! - `{"fail": {"type": T, "message": M}}`: returns an error of type T;
//! - `{"env": NAME}`: returns the variable's value, or null when unset;
//! - `{"env_names": true}`: returns the names of all its variables, sorted;
//! - `{"context": true}`: returns what the runtime put in the context;
//! - `{"echo": X}`: returns X.
//!
//! Anything else returns null. Setting `ECHO_EXIT_DURING_INIT=CODE` makes the
//! process exit before it first polls, as a function whose init fails would.

use std::time::Duration;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::{json, Value};

/// The error the payload asked for. Converting it into a `Diagnostic` by hand
/// is what controls `errorType`; the blanket conversions would report a Rust
/// type name instead.
#[derive(Debug)]
struct RequestedFailure {
    error_type: String,
    message: String,
}

impl From<RequestedFailure> for Diagnostic {
    fn from(failure: RequestedFailure) -> Self {
        Diagnostic {
            error_type: failure.error_type,
            error_message: failure.message,
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    if let Ok(code) = std::env::var("ECHO_EXIT_DURING_INIT") {
        eprintln!("echo-function: exiting during init as asked");
        std::process::exit(code.parse().unwrap_or(1));
    }
    lambda_runtime::run(service_fn(handle)).await
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, RequestedFailure> {
    let (payload, context) = event.into_parts();

    if let Some(text) = payload.get("print").and_then(Value::as_str) {
        println!("{text}");
    }
    if let Some(text) = payload.get("eprint").and_then(Value::as_str) {
        eprintln!("{text}");
    }
    if let Some(millis) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }
    if let Some(code) = payload.get("exit") {
        let code = code
            .as_i64()
            .and_then(|code| i32::try_from(code).ok())
            .unwrap_or(1);
        std::process::exit(code);
    }
    if let Some(fail) = payload.get("fail") {
        let field = |name: &str| {
            fail.get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        return Err(RequestedFailure {
            error_type: field("type"),
            message: field("message"),
        });
    }
    if let Some(name) = payload.get("env").and_then(Value::as_str) {
        return Ok(json!(std::env::var(name).ok()));
    }
    if payload.get("env_names").is_some() {
        let mut names: Vec<String> = std::env::vars_os()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        names.sort();
        return Ok(json!(names));
    }
    if payload.get("context").is_some() {
        return Ok(json!({
            "request_id": context.request_id,
            "deadline_ms": context.deadline,
            "invoked_function_arn": context.invoked_function_arn,
            "xray_trace_id": context.xray_trace_id,
            "function_name": context.env_config.function_name,
            "memory": context.env_config.memory,
            "version": context.env_config.version,
        }));
    }
    Ok(payload.get("echo").cloned().unwrap_or(Value::Null))
}
