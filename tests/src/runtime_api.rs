//! A Lambda Runtime API emulator for integration tests.
//!
//! The rotation functions are shipped as `lambda_runtime` binaries, so the
//! most faithful test runs the real binary the way Lambda does: as a process
//! with the Lambda environment variables that long-polls the Runtime API over
//! HTTP. [`LambdaFunction`] owns one such process together with a Runtime API
//! server on `127.0.0.1:<free port>`, and [`LambdaFunction::invoke`] hands the
//! process one event at a time, the way a Lambda sandbox is used.
//!
//! Lambda semantics that matter to tests and are reproduced here:
//! - one invocation at a time per sandbox; later calls queue;
//! - a handler error keeps the sandbox warm;
//! - a timeout kills the process, and a crash ends it: either way the next
//!   invocation cold-starts a fresh process;
//! - the deadline header is the moment the event is handed out plus the
//!   function timeout.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path as FsPath, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

/// Lambda's default function timeout is 3 s, but the rotation functions are
/// configured with 30 s, and tests should not time out by accident.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Lambda gives an on-demand function 10 s to initialise before its first poll.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Lambda's smallest and default memory size.
pub const DEFAULT_MEMORY_MB: u32 = 128;

/// Lambda rejects synchronous responses larger than 6 MB; matching it means a
/// function that would fail in AWS fails here too.
const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// How long to wait for a killed process to be reaped. SIGKILL cannot be
/// ignored, so this only guards against a wedged kernel or pid namespace.
const REAP_LIMIT: Duration = Duration::from_secs(5);

/// How long to keep reading a dead process's pipes. A grandchild that
/// inherited them could keep them open forever, so the wait must be bounded.
const OUTPUT_DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// A fixed, obviously fake account id for the ARNs the emulator makes up.
const ACCOUNT_ID: &str = "123456789012";

/// The emulator owns this variable: overriding it would point the function
/// away from its Runtime API.
const RUNTIME_API_VAR: &str = "AWS_LAMBDA_RUNTIME_API";

/// What to run and how to configure it, as a Lambda function configuration
/// would.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The function binary (what Lambda calls `bootstrap`).
    pub binary: PathBuf,
    /// Extra environment variables, e.g. `AWS_REGION`, endpoint overrides
    /// and credentials. The process sees nothing else from the test's
    /// environment except `PATH` and `HOME`.
    pub env: Vec<(String, String)>,
    /// Per-invocation timeout, counted from the moment the event is handed to
    /// the function.
    pub timeout: Duration,
    /// How long a fresh process may take to make its first poll.
    pub init_timeout: Duration,
    /// `AWS_LAMBDA_FUNCTION_NAME`, also used in the invoked function ARN.
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    pub memory_mb: u32,
}

impl FunctionSpec {
    /// A spec with Lambda-like defaults, named after the binary's file name.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        let binary = binary.into();
        let function_name = binary
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| "function".to_owned());
        Self {
            binary,
            env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            init_timeout: DEFAULT_INIT_TIMEOUT,
            function_name,
            memory_mb: DEFAULT_MEMORY_MB,
        }
    }

    /// Adds environment variables for the function process; later values
    /// win. Takes pairs so a whole prepared environment can be passed at once.
    pub fn env<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.env.extend(
            vars.into_iter()
                .map(|(key, value)| (key.into(), value.into())),
        );
        self
    }

    /// Sets the per-invocation timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how long a fresh process may take to make its first poll.
    pub fn init_timeout(mut self, init_timeout: Duration) -> Self {
        self.init_timeout = init_timeout;
        self
    }

    /// Sets the function name.
    pub fn function_name(mut self, name: impl Into<String>) -> Self {
        self.function_name = name.into();
        self
    }

    /// Sets the memory size.
    pub fn memory_mb(mut self, memory_mb: u32) -> Self {
        self.memory_mb = memory_mb;
        self
    }

    /// Sets `AWS_LAMBDA_LOG_FORMAT` (`Text` or `JSON`), which Lambda only sets
    /// when the function is configured with advanced logging controls.
    pub fn log_format(self, format: impl Into<String>) -> Self {
        self.env([("AWS_LAMBDA_LOG_FORMAT", format.into())])
    }

    /// Sets `AWS_LAMBDA_LOG_LEVEL`, which Lambda only sets alongside JSON logs.
    pub fn log_level(self, level: impl Into<String>) -> Self {
        self.env([("AWS_LAMBDA_LOG_LEVEL", level.into())])
    }

    fn region(&self) -> &str {
        ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|key| {
                self.env
                    .iter()
                    .rev()
                    .find(|(name, _)| name == key)
                    .map(|(_, value)| value.as_str())
            })
            .unwrap_or("us-east-1")
    }

    fn invoked_function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{ACCOUNT_ID}:function:{}",
            self.region(),
            self.function_name
        )
    }
}

/// Why the emulator could not run a function.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// No loopback port could be bound for the Runtime API.
    #[error("could not bind a loopback port for the Runtime API: {0}")]
    Bind(#[source] std::io::Error),
    /// The function binary could not be started.
    #[error("could not start {}: {source}", binary.display())]
    Spawn {
        /// The binary that failed to start.
        binary: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The spec tried to set a variable the emulator must control.
    #[error("{0} is set by the emulator and cannot be overridden")]
    ReservedVariable(String),
}

/// How one invocation ended, as the Lambda Invoke API would report it.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum Invocation {
    /// The function posted a response.
    Succeeded(Value),
    /// The function posted an invocation error; the process stays warm.
    Failed {
        /// `errorType` from the error body.
        error_type: String,
        /// `errorMessage` from the error body.
        error_message: String,
    },
    /// The process failed before it could take the event: it posted an init
    /// error, or exited (`Runtime.ExitError`) before its first poll.
    InitFailed {
        /// `errorType` posted by the runtime, or `Runtime.ExitError`.
        error_type: String,
        /// `errorMessage` posted by the runtime, or a description of the exit.
        error_message: String,
    },
    /// The process missed its deadline (or never picked the event up within
    /// the init timeout) and was killed.
    TimedOut,
    /// The process exited while the invocation was in progress.
    Crashed {
        /// The exit code, or `None` when a signal ended the process.
        status: Option<i32>,
    },
}

impl Invocation {
    /// The response payload, or a description of what happened instead.
    pub fn succeeded(self) -> Result<Value, String> {
        match self {
            Self::Succeeded(value) => Ok(value),
            other => Err(format!(
                "expected the invocation to succeed, but it {other}"
            )),
        }
    }

    /// The `(errorType, errorMessage)` of an invocation error, or a
    /// description of what happened instead.
    pub fn failed(self) -> Result<(String, String), String> {
        match self {
            Self::Failed {
                error_type,
                error_message,
            } => Ok((error_type, error_message)),
            other => Err(format!("expected the invocation to fail, but it {other}")),
        }
    }

    /// Whether this outcome ends the sandbox, so the next invocation is a
    /// cold start.
    fn ends_sandbox(&self) -> bool {
        !matches!(self, Self::Succeeded(_) | Self::Failed { .. })
    }
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Succeeded(value) => write!(f, "succeeded with {value}"),
            Self::Failed {
                error_type,
                error_message,
            } => write!(f, "failed with {error_type}: {error_message}"),
            Self::InitFailed {
                error_type,
                error_message,
            } => write!(f, "failed to initialise with {error_type}: {error_message}"),
            Self::TimedOut => write!(f, "timed out"),
            Self::Crashed { status: Some(code) } => write!(f, "crashed with exit code {code}"),
            Self::Crashed { status: None } => write!(f, "was killed by a signal"),
        }
    }
}

/// One Lambda function: a process running the function binary, restarted as
/// Lambda would, plus its Runtime API.
pub struct LambdaFunction {
    spec: FunctionSpec,
    /// Held across a whole invocation, which is what serialises invocations.
    sandbox: tokio::sync::Mutex<Option<Sandbox>>,
    output: OutputLog,
    status: Arc<Mutex<Status>>,
}

/// What the synchronous accessors report; kept apart from the sandbox so that
/// reading it never waits for an invocation in progress.
#[derive(Debug, Default)]
struct Status {
    init_duration: Option<Duration>,
    cold_starts: u32,
    pid: Option<u32>,
}

impl LambdaFunction {
    /// Starts the function process and its Runtime API right away, so a
    /// broken binary fails here rather than in the first invocation.
    pub async fn start(spec: FunctionSpec) -> Result<Self, HarnessError> {
        if let Some((key, _)) = spec.env.iter().find(|(key, _)| key == RUNTIME_API_VAR) {
            return Err(HarnessError::ReservedVariable(key.clone()));
        }
        let output = OutputLog::default();
        let status = Arc::new(Mutex::new(Status::default()));
        let sandbox = Sandbox::spawn(&spec, &output, &status).await?;
        Ok(Self {
            spec,
            sandbox: tokio::sync::Mutex::new(Some(sandbox)),
            output,
            status,
        })
    }

    /// Sends one event and waits for its outcome. Calls made while another
    /// invocation is in progress wait their turn, as on a single sandbox.
    pub async fn invoke(&self, payload: &Value) -> Invocation {
        let mut slot = self.sandbox.lock().await;

        // A process that exited between invocations after initialising is
        // simply replaced, as Lambda replaces a dead sandbox. One that never
        // polled is kept so that this invocation reports its init failure.
        let mut current = slot.take();
        if let Some(sandbox) = current.as_mut() {
            if sandbox.has_exited() && sandbox.session.has_polled() {
                if let Some(dead) = current.take() {
                    dead.shut_down().await;
                }
            }
        }
        let sandbox = match current {
            Some(sandbox) => sandbox,
            None => match Sandbox::spawn(&self.spec, &self.output, &self.status).await {
                Ok(sandbox) => sandbox,
                Err(error) => {
                    return Invocation::InitFailed {
                        error_type: "Emulator.SpawnFailed".to_owned(),
                        error_message: error.to_string(),
                    }
                }
            },
        };
        let sandbox = slot.insert(sandbox);

        let outcome = sandbox.invoke(payload, &self.spec).await;
        if let Invocation::Failed { error_message, .. } = &outcome {
            crate::leaks::assert_no_known_secret_in(
                error_message,
                "an error the function returned",
            );
        }
        if outcome.ends_sandbox() {
            if let Some(sandbox) = slot.take() {
                sandbox.shut_down().await;
            }
        }
        outcome
    }

    /// Everything the function's processes wrote to stdout and stderr so far,
    /// across restarts.
    pub fn output(&self) -> String {
        self.output.contents()
    }

    /// Time from spawning the most recent process to its first poll of
    /// `/invocation/next`: the cold start.
    pub fn init_duration(&self) -> Option<Duration> {
        lock(&self.status).init_duration
    }

    /// How many processes have been started, i.e. cold starts so far.
    pub fn cold_starts(&self) -> u32 {
        lock(&self.status).cold_starts
    }

    /// The id of the live function process, if there is one.
    pub fn pid(&self) -> Option<u32> {
        lock(&self.status).pid
    }

    /// The live process's peak resident set size so far (`VmHWM`, in KiB): what Lambda's
    /// memory size must hold. `None` when no process runs or `/proc` cannot tell.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.pid()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    }

    /// Kills the process, waits for it and for its output to be read to the end, and returns
    /// everything the function wrote.
    pub async fn stop(self) -> String {
        if let Some(sandbox) = self.sandbox.lock().await.take() {
            sandbox.shut_down().await;
        }
        self.output.contents()
    }
}

/// However a test ends with its function, what the function wrote is checked for every secret
/// the tests have seen (a test that is already failing is left to report its own failure).
impl Drop for LambdaFunction {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            crate::leaks::assert_no_known_secret_in(
                &self.output.contents(),
                "the function's output",
            );
        }
    }
}

/// Output of every process of one function, in arrival order.
#[derive(Debug, Clone, Default)]
struct OutputLog(Arc<Mutex<Vec<u8>>>);

impl OutputLog {
    fn append(&self, bytes: &[u8]) {
        lock(&self.0).extend_from_slice(bytes);
    }

    fn contents(&self) -> String {
        String::from_utf8_lossy(&lock(&self.0)).into_owned()
    }

    /// Copies a pipe into the log until it closes.
    fn capture(&self, mut pipe: impl AsyncRead + Unpin + Send + 'static) -> JoinHandle<()> {
        let log = self.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 8192];
            // A read error means the pipe is gone, which ends capture just
            // like end of file.
            while let Ok(read @ 1..) = pipe.read(&mut buffer).await {
                log.append(&buffer[..read]);
            }
        })
    }
}

/// A poisoned lock only means another test thread panicked while holding it;
/// the data (a log, counters) is still meaningful.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One process and the Runtime API server that only it talks to.
///
/// Each process gets its own server (and port) so that requests from a
/// killed process still in flight can never take or answer an event meant for
/// its replacement.
struct Sandbox {
    child: Child,
    exit: Option<ExitStatus>,
    session: Arc<Session>,
    /// Dropping this closes the event queue, which releases any poll still
    /// waiting for an event.
    events: mpsc::UnboundedSender<QueuedEvent>,
    reports: mpsc::UnboundedReceiver<Report>,
    server: JoinHandle<()>,
    output_readers: Vec<JoinHandle<()>>,
    status: Arc<Mutex<Status>>,
}

/// State shared between one sandbox and its Runtime API handlers.
struct Session {
    spawned_at: Instant,
    first_poll: OnceLock<Instant>,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<QueuedEvent>>,
    /// The request id handed out and not yet answered, so that a late or
    /// duplicate answer is rejected as Lambda rejects it.
    in_flight: Mutex<Option<String>>,
    reports: mpsc::UnboundedSender<Report>,
    invoked_function_arn: String,
    status: Arc<Mutex<Status>>,
}

impl Session {
    fn has_polled(&self) -> bool {
        self.first_poll.get().is_some()
    }

    fn record_poll(&self) {
        let now = Instant::now();
        if self.first_poll.set(now).is_ok() {
            lock(&self.status).init_duration = Some(now.duration_since(self.spawned_at));
        }
    }

    /// Claims the right to answer `request_id`; only the first answer to the
    /// event in flight counts.
    fn claim(&self, request_id: &str) -> bool {
        let mut in_flight = lock(&self.in_flight);
        if in_flight.as_deref() == Some(request_id) {
            *in_flight = None;
            true
        } else {
            false
        }
    }

    fn report(&self, report: Report) {
        // The receiver only goes away with the sandbox, after which nobody is
        // waiting for this report.
        let _ = self.reports.send(report);
    }
}

struct QueuedEvent {
    request_id: String,
    body: Vec<u8>,
    timeout: Duration,
}

/// What the Runtime API handlers tell the waiting invocation.
enum Report {
    Delivered {
        request_id: String,
        deadline: Instant,
    },
    Finished {
        request_id: String,
        outcome: Invocation,
    },
    InitFailed(Invocation),
}

impl Sandbox {
    async fn spawn(
        spec: &FunctionSpec,
        output: &OutputLog,
        status: &Arc<Mutex<Status>>,
    ) -> Result<Self, HarnessError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(HarnessError::Bind)?;
        let address = listener.local_addr().map_err(HarnessError::Bind)?;

        let (event_sender, event_receiver) = mpsc::unbounded_channel();
        let (report_sender, report_receiver) = mpsc::unbounded_channel();
        let mut command = lambda_command(spec, address);
        // Cleared before the spawn: the new process's first poll may well be
        // recorded before this function gets to run again.
        lock(status).init_duration = None;
        let spawned_at = Instant::now();
        let mut child = command.spawn().map_err(|source| HarnessError::Spawn {
            binary: spec.binary.clone(),
            source,
        })?;

        let session = Arc::new(Session {
            spawned_at,
            first_poll: OnceLock::new(),
            events: tokio::sync::Mutex::new(event_receiver),
            in_flight: Mutex::new(None),
            reports: report_sender,
            invoked_function_arn: spec.invoked_function_arn(),
            status: status.clone(),
        });
        let server = tokio::spawn(serve(listener, session.clone()));

        let mut output_readers = Vec::with_capacity(2);
        if let Some(stdout) = child.stdout.take() {
            output_readers.push(output.capture(stdout));
        }
        if let Some(stderr) = child.stderr.take() {
            output_readers.push(output.capture(stderr));
        }

        {
            let mut status = lock(status);
            status.cold_starts += 1;
            status.pid = child.id();
        }
        tracing::debug!(binary = %spec.binary.display(), %address, pid = ?child.id(), "started function process");

        Ok(Self {
            child,
            exit: None,
            session,
            events: event_sender,
            reports: report_receiver,
            server,
            output_readers,
            status: status.clone(),
        })
    }

    fn has_exited(&mut self) -> bool {
        if self.exit.is_none() {
            // An error here means the status cannot be known; treating the
            // process as alive lets the invocation's own exit watch decide.
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit.is_some()
    }

    async fn invoke(&mut self, payload: &Value, spec: &FunctionSpec) -> Invocation {
        let request_id = new_request_id();
        // Cannot fail: the receiver lives in `self.session`. Were it ever to,
        // the deadline below still ends the wait.
        let _ = self.events.send(QueuedEvent {
            request_id: request_id.clone(),
            body: payload.to_string().into_bytes(),
            timeout: spec.timeout,
        });

        // Until the event is handed out only the pickup is being timed; a
        // warm process picks it up at once, a cold one after its init.
        let mut deadline = Instant::now() + spec.init_timeout;
        loop {
            tokio::select! {
                // Reports first: a result posted just before the process
                // exited, or just before the deadline, still counts.
                biased;
                Some(report) = self.reports.recv() => match report {
                    Report::Delivered { request_id: id, deadline: invocation_deadline } if id == request_id => {
                        deadline = invocation_deadline;
                    }
                    Report::Finished { request_id: id, outcome } if id == request_id => return outcome,
                    Report::InitFailed(outcome) => return outcome,
                    // Reports about an earlier event cannot change this one.
                    Report::Delivered { .. } | Report::Finished { .. } => {}
                },
                // Returns at once, and again, for a process that has already
                // exited, so an init crash before this call is seen too.
                exit = self.child.wait() => {
                    // If waiting itself failed the status is unknown; report
                    // a signal-like exit rather than guessing a code.
                    let exit = exit.ok();
                    self.exit = exit;
                    return self.exit_outcome(&request_id, exit);
                },
                () = tokio::time::sleep_until(deadline) => {
                    tracing::debug!(%request_id, "invocation timed out; killing the function process");
                    return Invocation::TimedOut;
                },
            }
        }
    }

    /// What an exit during an invocation means.
    fn exit_outcome(&mut self, request_id: &str, exit: Option<ExitStatus>) -> Invocation {
        // The runtime waits for the Runtime API to acknowledge a result before
        // it can exit, and the acknowledgement is only sent after the report,
        // so any result for this event is already queued.
        while let Ok(report) = self.reports.try_recv() {
            match report {
                Report::Finished {
                    request_id: id,
                    outcome,
                } if id == request_id => return outcome,
                Report::InitFailed(outcome) => return outcome,
                _ => {}
            }
        }
        if self.session.has_polled() {
            Invocation::Crashed {
                status: exit.and_then(|status| status.code()),
            }
        } else {
            let how = exit.map_or_else(
                || "an unknown status".to_owned(),
                |status| status.to_string(),
            );
            Invocation::InitFailed {
                error_type: "Runtime.ExitError".to_owned(),
                error_message: format!(
                    "RequestId: {request_id} Error: Runtime exited with {how} before polling for an event"
                ),
            }
        }
    }

    /// Kills the process if it is still running, reaps it, and collects the
    /// rest of its output.
    async fn shut_down(mut self) {
        if self.exit.is_none() {
            // Fails only if the process already exited, which the wait below
            // then observes.
            let _ = self.child.start_kill();
            match timeout(REAP_LIMIT, self.child.wait()).await {
                Ok(Ok(exit)) => self.exit = Some(exit),
                Ok(Err(error)) => tracing::warn!(%error, "could not reap the function process"),
                Err(_) => {
                    tracing::warn!("the function process survived SIGKILL for {REAP_LIMIT:?}")
                }
            }
        }
        let drain_until = Instant::now() + OUTPUT_DRAIN_LIMIT;
        for reader in std::mem::take(&mut self.output_readers) {
            if tokio::time::timeout_at(drain_until, reader).await.is_err() {
                tracing::warn!("gave up reading the output of a dead function process");
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // The child is killed by `kill_on_drop`; the server has to be stopped
        // by hand or it would keep the port for the rest of the test run.
        // Dropping rather than `shut_down` happens when an invocation is
        // cancelled, and then too the process is gone.
        self.server.abort();
        lock(&self.status).pid = None;
    }
}

/// The command Lambda would run: the bootstrap binary with a clean
/// environment, so the test alone decides region, endpoints and credentials.
fn lambda_command(spec: &FunctionSpec, runtime_api: SocketAddr) -> Command {
    // Absolute, because a relative program path combined with `current_dir`
    // resolves differently across platforms.
    let binary = std::path::absolute(&spec.binary).unwrap_or_else(|_| spec.binary.clone());
    // Lambda runs the bootstrap from its task root (`/var/task`); here that
    // is the binary's directory, which is where it looks for files it ships.
    let task_root = binary
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), FsPath::to_path_buf);
    let mut command = Command::new(binary);
    command
        .env_clear()
        .current_dir(&task_root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for key in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    command
        .env("AWS_LAMBDA_FUNCTION_NAME", &spec.function_name)
        .env(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        )
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.function_name),
        )
        .env(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("emulator/[$LATEST]{}", runtime_api.port()),
        )
        .env("LAMBDA_TASK_ROOT", &task_root)
        .env("_HANDLER", "bootstrap");
    for (key, value) in &spec.env {
        command.env(key, value);
    }
    // Last, so nothing can point the function elsewhere (`start` also
    // rejects a spec that tries).
    command.env(RUNTIME_API_VAR, runtime_api.to_string());
    command
}

async fn serve(listener: TcpListener, session: Arc<Session>) {
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_event))
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/response",
            post(invocation_response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/error",
            post(invocation_error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        // One byte over Lambda's limit is enough to tell "too large" apart.
        .layer(DefaultBodyLimit::max(MAX_RESPONSE_BYTES + 1))
        .with_state(session);
    if let Err(error) = axum::serve(listener, app).await {
        tracing::warn!(%error, "the Runtime API server stopped");
    }
}

/// `GET /runtime/invocation/next`: long-polls until an event is queued.
async fn next_event(State(session): State<Arc<Session>>) -> Response {
    session.record_poll();
    let event = session.events.lock().await.recv().await;
    let Some(event) = event else {
        // The sandbox is being torn down; its process is about to die.
        return runtime_api_error(
            StatusCode::GONE,
            "SandboxRetired",
            "this sandbox is shutting down",
        );
    };

    let deadline = Instant::now() + event.timeout;
    let deadline_ms = (SystemTime::now() + event.timeout)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    *lock(&session.in_flight) = Some(event.request_id.clone());
    // Reported before the response is sent, so the invocation's clock is
    // never behind the deadline the function sees.
    session.report(Report::Delivered {
        request_id: event.request_id.clone(),
        deadline,
    });
    let headers = [
        ("lambda-runtime-aws-request-id", event.request_id),
        ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            session.invoked_function_arn.clone(),
        ),
        ("lambda-runtime-trace-id", new_trace_id()),
        ("content-type", "application/json".to_owned()),
    ];
    (StatusCode::OK, headers, event.body).into_response()
}

/// `POST /runtime/invocation/{id}/response`. `lambda_runtime` sends buffered
/// responses with a content length and streaming ones chunked; the body
/// extractor accepts both.
async fn invocation_response(
    State(session): State<Arc<Session>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !session.claim(&request_id) {
        return unknown_request(&request_id);
    }
    let streaming = headers
        .get("lambda-runtime-function-response-mode")
        .is_some_and(|mode| mode.as_bytes().eq_ignore_ascii_case(b"streaming"));
    let outcome = match body {
        Ok(_) if streaming => Invocation::Failed {
            error_type: "Emulator.StreamingUnsupported".to_owned(),
            error_message: "the emulator only supports buffered responses".to_owned(),
        },
        Ok(body) if body.len() > MAX_RESPONSE_BYTES => response_too_large(),
        Ok(body) => match serde_json::from_slice(&body) {
            Ok(value) => Invocation::Succeeded(value),
            Err(error) => Invocation::Failed {
                error_type: "Emulator.ResponseNotJson".to_owned(),
                error_message: format!("the response body is not JSON: {error}"),
            },
        },
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            response_too_large()
        }
        Err(rejection) => Invocation::Failed {
            error_type: "Emulator.ResponseUnreadable".to_owned(),
            error_message: rejection.body_text(),
        },
    };
    session.report(Report::Finished {
        request_id,
        outcome,
    });
    accepted()
}

/// `POST /runtime/invocation/{id}/error`.
async fn invocation_error(
    State(session): State<Arc<Session>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !session.claim(&request_id) {
        return unknown_request(&request_id);
    }
    let (error_type, error_message) = parse_error_body(&headers, &body);
    session.report(Report::Finished {
        request_id,
        outcome: Invocation::Failed {
            error_type,
            error_message,
        },
    });
    accepted()
}

/// `POST /runtime/init/error`. `lambda_runtime` 1.5 only posts this from its
/// SnapStart lifecycle; ordinary init failures show up as an early exit.
async fn init_error(
    State(session): State<Arc<Session>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (error_type, error_message) = parse_error_body(&headers, &body);
    session.report(Report::InitFailed(Invocation::InitFailed {
        error_type,
        error_message,
    }));
    accepted()
}

/// The runtime's `Diagnostic` body; the header only says `unhandled` in
/// `lambda_runtime`, so it is a fallback for other runtimes.
fn parse_error_body(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ErrorBody {
        error_type: Option<String>,
        error_message: Option<String>,
    }

    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let header_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let (body_type, body_message) = parsed
        .map(|parsed| (parsed.error_type, parsed.error_message))
        .unwrap_or_default();
    (
        body_type
            .or(header_type)
            .unwrap_or_else(|| "Unknown".to_owned()),
        body_message.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
    )
}

fn response_too_large() -> Invocation {
    Invocation::Failed {
        error_type: "Function.ResponseSizeTooLarge".to_owned(),
        error_message: format!(
            "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
        ),
    }
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json")],
        json!({"status": "OK"}).to_string(),
    )
        .into_response()
}

fn unknown_request(request_id: &str) -> Response {
    runtime_api_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        &format!("{request_id} is not the invocation in progress"),
    )
}

fn runtime_api_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = json!({ "errorType": error_type, "errorMessage": message });
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Unique per test run; shaped like the UUIDs Lambda uses so code that logs
/// or parses request ids sees something realistic.
fn new_request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let sequence = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!(
        "{:08x}-{:04x}-4000-8000-{sequence:012x}",
        std::process::id(),
        nanos >> 16
    )
}

/// An X-Ray trace header in the format Lambda sends; `lambda_runtime` copies
/// it into `_X_AMZN_TRACE_ID`, which the AWS SDK forwards.
fn new_trace_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let sequence = NEXT.fetch_add(1, Ordering::Relaxed);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "Root=1-{:08x}-{:08x}{sequence:016x};Parent={:016x};Sampled=0",
        now.as_secs(),
        std::process::id(),
        now.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_supplies_type_and_message() {
        let body = br#"{"errorType":"SecretNotFound","errorMessage":"no such secret"}"#;
        let parsed = parse_error_body(&HeaderMap::new(), body);
        assert_eq!(
            parsed,
            ("SecretNotFound".to_owned(), "no such secret".to_owned())
        );
    }

    #[test]
    fn an_unparseable_error_body_falls_back_to_the_header_and_raw_text() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "lambda-runtime-function-error-type",
            axum::http::HeaderValue::from_static("Custom.Error"),
        );
        let parsed = parse_error_body(&headers, b"not json");
        assert_eq!(parsed, ("Custom.Error".to_owned(), "not json".to_owned()));
    }

    /// A session served on a loopback port, without a process, so a test can
    /// speak the protocol by hand.
    async fn bare_server() -> (
        SocketAddr,
        mpsc::UnboundedSender<QueuedEvent>,
        mpsc::UnboundedReceiver<Report>,
    ) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind a loopback port");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let (event_sender, event_receiver) = mpsc::unbounded_channel();
        let (report_sender, report_receiver) = mpsc::unbounded_channel();
        let session = Arc::new(Session {
            spawned_at: Instant::now(),
            first_poll: OnceLock::new(),
            events: tokio::sync::Mutex::new(event_receiver),
            in_flight: Mutex::new(None),
            reports: report_sender,
            invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".to_owned(),
            status: Arc::new(Mutex::new(Status::default())),
        });
        tokio::spawn(serve(listener, session));
        (address, event_sender, report_receiver)
    }

    /// Sends one request on a fresh connection and returns the raw response.
    async fn exchange(address: SocketAddr, request: &str) -> String {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect to the Runtime API");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the request");
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .expect("read the response");
        String::from_utf8_lossy(&response).into_owned()
    }

    #[tokio::test]
    async fn a_chunked_response_body_is_accepted() {
        let (address, events, mut reports) = bare_server().await;
        events
            .send(QueuedEvent {
                request_id: "req-1".to_owned(),
                body: b"{}".to_vec(),
                timeout: Duration::from_secs(5),
            })
            .expect("the server holds the receiver");
        let next = exchange(
            address,
            "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(
            next.contains("lambda-runtime-aws-request-id: req-1"),
            "{next}"
        );

        let posted = exchange(
            address,
            "POST /2018-06-01/runtime/invocation/req-1/response HTTP/1.1\r\nHost: x\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n",
        )
        .await;

        assert!(posted.starts_with("HTTP/1.1 202"), "{posted}");
        let mut finished = None;
        while let Ok(report) = reports.try_recv() {
            if let Report::Finished { outcome, .. } = report {
                finished = Some(outcome);
            }
        }
        assert_eq!(finished, Some(Invocation::Succeeded(json!({"a": 1}))));
    }

    #[tokio::test]
    async fn an_answer_for_a_request_that_is_not_in_flight_is_rejected() {
        let (address, _events, _reports) = bare_server().await;

        let posted = exchange(
            address,
            "POST /2018-06-01/runtime/invocation/nope/response HTTP/1.1\r\nHost: x\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\n{}",
        )
        .await;

        assert!(posted.starts_with("HTTP/1.1 400"), "{posted}");
        assert!(posted.contains("InvalidRequestID"), "{posted}");
    }

    #[test]
    fn request_ids_are_unique() {
        assert_ne!(new_request_id(), new_request_id());
    }

    #[test]
    fn the_invoked_function_arn_uses_the_region_the_test_configured() {
        let spec = FunctionSpec::new("/tmp/bootstrap")
            .function_name("rotate")
            .env([("AWS_REGION", "eu-west-1")]);
        assert_eq!(
            spec.invoked_function_arn(),
            "arn:aws:lambda:eu-west-1:123456789012:function:rotate"
        );
    }
}
