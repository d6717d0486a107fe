//! Single user's lock-out window: how long an application holding the old password fails.
//!
//! A single-user rotation changes the one user's password in setSecret, and `AWSCURRENT` names
//! the new one only when finishSecret moves the label. In between, an application logging in
//! with `AWSCURRENT` is refused even after re-reading the secret. That window is the strategy's
//! price (alternating users has none, which the load tests assert); here it is measured, not
//! asserted, because its length is the orchestrator's pace and the machine's load.
//!
//! The client logs in every [`PAUSE`] with what `AWSCURRENT` held when it last looked; after a
//! refused login it re-reads `AWSCURRENT` at once and tries again, as the AWS caching clients
//! do. Its logins set `TCP_NODELAY` (as sqlx does, see [`rotation_tests::login`]) so one takes the
//! server's few milliseconds. A window runs from the end of the first refused login to the end
//! of the next login that works; one login's time is its resolution, reported beside it.

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{median_count, start, BenchError, Paths, Privileges, Runs, Subject, Summary};
use rotation_tests::login::{self, Login};
use rotation_tests::orchestrator::{Orchestrator, STEPS};
use rotation_tests::runtime_api::{FunctionSpec, Invocation, LambdaFunction};
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack;

/// The client's pause between two logins that worked.
pub const PAUSE: Duration = Duration::from_millis(2);

/// How long the client keeps trying once the rotation is over; a window still open then is a
/// failed rotation, not a figure.
const SETTLE: Duration = Duration::from_secs(10);

/// What a client holding the old password saw through single-user rotations.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LockoutFigures {
    pub subject: String,
    /// Per rotation by one warm process: the client's window, in milliseconds (0 when it never
    /// was refused).
    pub warm_window_ms: Summary,
    /// Per rotation with a fresh process per step.
    pub cold_window_ms: Summary,
    /// The same windows bounded by when the steps ran, whatever the client's pace: at least
    /// setSecret's end to finishSecret's start, at most setSecret's start to finishSecret's end
    /// (the password changes inside setSecret, the label moves inside finishSecret).
    pub warm_at_least_ms: Summary,
    pub warm_at_most_ms: Summary,
    pub cold_at_least_ms: Summary,
    pub cold_at_most_ms: Summary,
    /// Refused logins per rotation (median), warm and cold.
    pub warm_refused_logins: u64,
    pub cold_refused_logins: u64,
    /// One login of the client: the windows' resolution.
    pub login_ms: Summary,
}

/// When the orchestrator started and saw the end of setSecret and finishSecret.
struct StepTimes {
    set: (Instant, Instant),
    finish: (Instant, Instant),
}

impl StepTimes {
    fn at_least(&self) -> Duration {
        self.finish.0.saturating_duration_since(self.set.1)
    }

    fn at_most(&self) -> Duration {
        self.finish.1.saturating_duration_since(self.set.0)
    }
}

/// One rotation with the steps back to back, as Secrets Manager runs them, by `warm` or, without
/// it, by a fresh process per step (its spawn counted in the step). Nothing else runs between
/// the steps: the rest of the benchmark's per-step accounting would widen the window.
async fn rotation(
    moto: &MotoSecretsManager,
    spec: &FunctionSpec,
    warm: Option<&LambdaFunction>,
    arn: &str,
) -> Result<StepTimes, BenchError> {
    let token = moto.start_rotation(arn).await;
    let mut set = None;
    let mut finish = None;
    for name in STEPS {
        let began = Instant::now();
        let fresh = match warm {
            Some(_) => None,
            None => Some(start(spec).await?),
        };
        let function = warm
            .or(fresh.as_ref())
            .ok_or_else(|| BenchError("no function to invoke".to_owned()))?;
        let record = Orchestrator { moto, function }
            .invoke(arn, &token, name)
            .await;
        let ended = Instant::now();
        if let Some(fresh) = fresh {
            fresh.stop().await;
        }
        if !matches!(record.invocation, Invocation::Succeeded(_)) {
            return Err(BenchError(format!("{name} {}", record.invocation)));
        }
        match name {
            "setSecret" => set = Some((began, ended)),
            "finishSecret" => finish = Some((began, ended)),
            _ => {}
        }
    }
    match (set, finish) {
        (Some(set), Some(finish)) => Ok(StepTimes { set, finish }),
        _ => Err(BenchError(
            "the rotation had no setSecret or finishSecret".to_owned(),
        )),
    }
}

/// What the client saw during one rotation.
#[derive(Default)]
struct ClientSample {
    /// Summed over the rotation (there is one window per rotation unless the orchestrator stalls
    /// between steps in a way that lets the client in, which it cannot).
    window: Duration,
    refused: u64,
    logins: Vec<Duration>,
}

/// Measures single user's window on `subject`: `runs.warm` rotations by one process, then
/// `runs.cold` with a fresh process per step, each under the client.
pub async fn measure_lockout(
    subject: Subject,
    binary: &Path,
    runs: Runs,
) -> Result<LockoutFigures, BenchError> {
    if !matches!(
        subject,
        Subject::PostgresSingleUser | Subject::MysqlSingleUser
    ) {
        return Err(BenchError(format!(
            "{subject} has no lock-out window to measure"
        )));
    }
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    let paths = Paths::for_subject(subject).await?;
    let prepared = subject
        .prepare(&moto, &paths, Privileges::default())
        .await?;
    let spec = FunctionSpec::new(binary).env(prepared.env.iter().cloned());
    let arn = prepared.arn.as_str();

    let mut warm = Vec::with_capacity(runs.warm);
    let function = start(&spec).await?;
    for _ in 0..runs.warm {
        let rotated = rotation(&moto, &spec, Some(&function), arn);
        warm.push(client_during(subject, &moto, arn, rotated).await?);
    }
    function.stop().await;
    let mut cold = Vec::with_capacity(runs.cold);
    for _ in 0..runs.cold {
        let rotated = rotation(&moto, &spec, None, arn);
        cold.push(client_during(subject, &moto, arn, rotated).await?);
    }

    let windows = |samples: &[(StepTimes, ClientSample)]| {
        Summary::of_durations(&samples.iter().map(|(_, s)| s.window).collect::<Vec<_>>())
    };
    let bound = |samples: &[(StepTimes, ClientSample)], pick: fn(&StepTimes) -> Duration| {
        Summary::of_durations(&samples.iter().map(|(t, _)| pick(t)).collect::<Vec<_>>())
    };
    let refused = |samples: &[(StepTimes, ClientSample)]| {
        median_count(&samples.iter().map(|(_, s)| s.refused).collect::<Vec<_>>())
    };
    let logins: Vec<Duration> = warm
        .iter()
        .chain(&cold)
        .flat_map(|(_, sample)| sample.logins.iter().copied())
        .collect();
    Ok(LockoutFigures {
        subject: subject.to_string(),
        warm_window_ms: windows(&warm),
        cold_window_ms: windows(&cold),
        warm_at_least_ms: bound(&warm, StepTimes::at_least),
        warm_at_most_ms: bound(&warm, StepTimes::at_most),
        cold_at_least_ms: bound(&cold, StepTimes::at_least),
        cold_at_most_ms: bound(&cold, StepTimes::at_most),
        warm_refused_logins: refused(&warm),
        cold_refused_logins: refused(&cold),
        login_ms: Summary::of_durations(&logins),
    })
}

/// The user name and password a secret value holds.
fn credentials(secret: &Option<Value>) -> Result<(String, String), BenchError> {
    let field = |name: &str| {
        secret
            .as_ref()
            .and_then(|value| value[name].as_str())
            .map(str::to_owned)
            .ok_or_else(|| BenchError(format!("AWSCURRENT has no {name}")))
    };
    Ok((field("username")?, field("password")?))
}

async fn log_in(subject: Subject, user: &str, password: &str) -> Login {
    // Straight to the server, not through the benchmark's database proxy: the client's logins
    // are not the function's connections.
    match subject {
        Subject::PostgresSingleUser => {
            login::postgres(stack::postgres().await, user, password).await
        }
        _ => login::mariadb(stack::mariadb().await, user, password).await,
    }
}

/// Runs `rotation` while the client logs in, and returns what it gave and what the client saw;
/// the rotation's own failure is the benchmark's.
async fn client_during<W, T>(
    subject: Subject,
    moto: &MotoSecretsManager,
    arn: &str,
    rotation: W,
) -> Result<(T, ClientSample), BenchError>
where
    W: Future<Output = Result<T, BenchError>>,
{
    let done = AtomicBool::new(false);
    let rotation = async {
        let outcome = rotation.await;
        done.store(true, Ordering::Release);
        outcome
    };
    let client = async {
        let mut sample = ClientSample::default();
        let mut cached = moto.value_at(arn, "AWSCURRENT").await;
        let mut refused_since: Option<Instant> = None;
        let mut finished_at: Option<Instant> = None;
        loop {
            let finished = done.load(Ordering::Acquire);
            if finished {
                let at = *finished_at.get_or_insert_with(Instant::now);
                if at.elapsed() > SETTLE {
                    return Err(BenchError(format!(
                        "{subject}: AWSCURRENT still refused {} s after the rotation ended",
                        SETTLE.as_secs()
                    )));
                }
            }
            let (user, password) = credentials(&cached)?;
            let started = Instant::now();
            let outcome = log_in(subject, &user, &password).await;
            let ended = Instant::now();
            sample.logins.push(ended - started);
            match outcome {
                Login::Ok => {
                    if let Some(since) = refused_since.take() {
                        sample.window += ended - since;
                    }
                    if finished {
                        return Ok(sample);
                    }
                    tokio::time::sleep(PAUSE).await;
                }
                Login::Rejected => {
                    sample.refused += 1;
                    refused_since.get_or_insert(ended);
                    cached = moto.value_at(arn, "AWSCURRENT").await;
                }
                Login::Failed(problem) => {
                    return Err(BenchError(format!(
                        "{subject}: the client's login failed other than by refusal: {problem}"
                    )))
                }
            }
        }
    };
    let (rotated, seen) = tokio::join!(rotation, client);
    Ok((rotated?, seen?))
}
