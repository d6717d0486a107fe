//! The Runtime API emulator runs a real `lambda_runtime` binary the way
//! Lambda does. These tests use the test-only `echo-function` to check each
//! behaviour the rotation function tests rely on.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rotation_tests::runtime_api::{FunctionSpec, Invocation, LambdaFunction};
use serde_json::{json, Value};

/// Short enough that nothing waits long, long enough for a debug build.
const TIMEOUT: Duration = Duration::from_secs(5);

fn echo_spec() -> FunctionSpec {
    FunctionSpec::new(env!("CARGO_BIN_EXE_echo-function")).timeout(TIMEOUT)
}

async fn start(spec: FunctionSpec) -> LambdaFunction {
    match LambdaFunction::start(spec).await {
        Ok(function) => function,
        Err(error) => panic!("the echo function should start: {error}"),
    }
}

/// Invokes and expects success, showing the function's output otherwise.
async fn invoke_ok(function: &LambdaFunction, payload: Value) -> Value {
    match function.invoke(&payload).await.succeeded() {
        Ok(value) => value,
        Err(what) => panic!("{what}\n--- function output ---\n{}", function.output()),
    }
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn an_echo_round_trips_through_the_runtime_api() {
    let function = start(echo_spec()).await;

    let payload = json!({"nested": [1, "two", {"three": 3.5}], "unicode": "é✓"});
    let echoed = invoke_ok(&function, json!({ "echo": payload })).await;

    assert_eq!(echoed, payload);
    function.stop().await;
}

#[tokio::test]
async fn a_handler_error_returns_its_error_type_and_message() {
    let function = start(echo_spec()).await;

    let outcome = function
        .invoke(&json!({"fail": {"type": "SecretNotFound", "message": "no such secret"}}))
        .await;

    assert_eq!(
        outcome,
        Invocation::Failed {
            error_type: "SecretNotFound".to_owned(),
            error_message: "no such secret".to_owned(),
        }
    );
    // A handler error is not a crash: Lambda keeps the sandbox warm.
    invoke_ok(&function, json!({"echo": "still here"})).await;
    assert_eq!(function.cold_starts(), 1);
    function.stop().await;
}

#[tokio::test]
async fn a_crash_mid_invocation_is_reported_and_the_next_invocation_runs_on_a_fresh_process() {
    let function = start(echo_spec()).await;
    invoke_ok(&function, json!({"echo": "warm"})).await;
    let first_pid = function.pid();

    let outcome = function
        .invoke(&json!({"print": "about to exit", "exit": 3}))
        .await;

    assert_eq!(outcome, Invocation::Crashed { status: Some(3) });
    assert_eq!(function.pid(), None);
    assert!(function.output().contains("about to exit"));

    let echoed = invoke_ok(&function, json!({"echo": "fresh"})).await;
    assert_eq!(echoed, json!("fresh"));
    assert_eq!(function.cold_starts(), 2);
    assert_ne!(function.pid(), first_pid);
    function.stop().await;
}

#[tokio::test]
async fn a_slow_invocation_past_the_timeout_times_out_and_its_process_is_killed() {
    let function = start(echo_spec().timeout(Duration::from_millis(300))).await;
    invoke_ok(&function, json!({"echo": "warm"})).await;
    let Some(pid) = function.pid() else {
        panic!("a warm function has a process");
    };

    let started = std::time::Instant::now();
    let outcome = function.invoke(&json!({"sleep_ms": 10_000})).await;

    assert_eq!(outcome, Invocation::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(!process_exists(pid), "process {pid} outlived its timeout");

    // Like Lambda, the next invocation gets a new sandbox.
    invoke_ok(&function, json!({"echo": "again"})).await;
    assert_eq!(function.cold_starts(), 2);
    function.stop().await;
}

#[tokio::test]
async fn everything_the_function_prints_to_stdout_and_stderr_is_captured() {
    let function = start(echo_spec()).await;

    invoke_ok(
        &function,
        json!({"print": "line on stdout", "eprint": "line on stderr"}),
    )
    .await;

    let output = function.output();
    assert!(output.contains("line on stdout"), "output: {output}");
    assert!(output.contains("line on stderr"), "output: {output}");
    function.stop().await;
}

#[tokio::test]
async fn the_cold_start_is_measured_from_spawn_to_the_first_poll() {
    let function = start(echo_spec()).await;
    invoke_ok(&function, json!({"echo": 1})).await;

    let Some(init) = function.init_duration() else {
        panic!("a function that answered has polled");
    };

    assert!(init > Duration::ZERO);
    assert!(init < TIMEOUT, "init took {init:?}");
    function.stop().await;
}

#[tokio::test]
async fn sequential_invocations_reuse_one_warm_process() {
    let function = start(echo_spec()).await;

    invoke_ok(&function, json!({"echo": 1})).await;
    let first_pid = function.pid();
    invoke_ok(&function, json!({"echo": 2})).await;

    assert_eq!(function.cold_starts(), 1);
    assert!(first_pid.is_some());
    assert_eq!(function.pid(), first_pid);
    function.stop().await;
}

#[tokio::test]
async fn concurrent_invocations_are_served_one_at_a_time_by_the_same_process() {
    let function = start(echo_spec()).await;

    let (a, b) = (
        json!({"sleep_ms": 100, "echo": "a"}),
        json!({"sleep_ms": 100, "echo": "b"}),
    );

    let (first, second) = tokio::join!(function.invoke(&a), function.invoke(&b));

    assert_eq!(first, Invocation::Succeeded(json!("a")));
    assert_eq!(second, Invocation::Succeeded(json!("b")));
    assert_eq!(function.cold_starts(), 1);
    function.stop().await;
}

#[tokio::test]
async fn the_function_sees_only_path_home_the_lambda_variables_and_the_spec_env() {
    let function = start(echo_spec().env([("AWS_REGION", "eu-west-1")])).await;

    let names = invoke_ok(&function, json!({"env_names": true})).await;
    let region = invoke_ok(&function, json!({"env": "AWS_REGION"})).await;
    let runtime_api = invoke_ok(&function, json!({"env": "AWS_LAMBDA_RUNTIME_API"})).await;

    let mut expected: BTreeSet<&str> = [
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_REGION",
        "LAMBDA_TASK_ROOT",
        "_HANDLER",
        // Set by lambda_runtime itself from the trace header of each event.
        "_X_AMZN_TRACE_ID",
    ]
    .into_iter()
    .collect();
    for inherited in ["PATH", "HOME"] {
        if std::env::var_os(inherited).is_some() {
            expected.insert(inherited);
        }
    }
    let seen: BTreeSet<&str> = names
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(region, json!("eu-west-1"));
    let runtime_api = runtime_api.as_str().unwrap_or_default();
    assert!(runtime_api.starts_with("127.0.0.1:"), "got {runtime_api}");
    function.stop().await;
}

#[tokio::test]
async fn the_context_carries_the_request_id_deadline_and_function_arn() {
    let spec = echo_spec()
        .function_name("rotate-test")
        .memory_mb(256)
        .env([("AWS_REGION", "eu-west-1")]);
    let function = start(spec).await;
    let before_ms = epoch_ms();

    let context = invoke_ok(&function, json!({"context": true})).await;

    assert_eq!(
        context["invoked_function_arn"],
        json!("arn:aws:lambda:eu-west-1:123456789012:function:rotate-test")
    );
    assert_eq!(context["function_name"], json!("rotate-test"));
    assert_eq!(context["memory"], json!(256));
    assert!(context["request_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert!(context["xray_trace_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("Root=1-")));
    let deadline = context["deadline_ms"].as_u64().unwrap_or_default();
    let timeout_ms = u64::try_from(TIMEOUT.as_millis()).unwrap_or(u64::MAX);
    assert!(
        deadline > before_ms && deadline <= epoch_ms() + timeout_ms,
        "deadline {deadline} is not within the timeout of now"
    );
    function.stop().await;
}

#[tokio::test]
async fn a_process_that_exits_during_init_is_an_init_failure_and_is_retried_on_the_next_invocation()
{
    let function = start(echo_spec().env([("ECHO_EXIT_DURING_INIT", "7")])).await;

    let first = function.invoke(&json!({"echo": 1})).await;
    let second = function.invoke(&json!({"echo": 1})).await;

    for outcome in [first, second] {
        match outcome {
            Invocation::InitFailed {
                error_type,
                error_message,
            } => {
                assert_eq!(error_type, "Runtime.ExitError");
                assert!(
                    error_message.contains("exit status: 7"),
                    "message: {error_message}"
                );
            }
            other => panic!("expected an init failure, got {other:?}"),
        }
    }
    assert_eq!(function.cold_starts(), 2);
    assert!(function.output().contains("exiting during init"));
    assert_eq!(function.init_duration(), None);
}

#[tokio::test]
async fn the_runtime_api_variable_cannot_be_overridden() {
    let spec = echo_spec().env([("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:1")]);

    let started = LambdaFunction::start(spec).await;

    assert!(started.is_err());
}

fn epoch_ms() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}
