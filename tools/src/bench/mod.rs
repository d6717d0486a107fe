//! The benchmark: cold start, rotation latency, peak memory, Secrets Manager calls and database
//! connections of each function and strategy, on the local stack, through the Lambda Runtime
//! API emulator, as medians over repeated runs (`scripts/bench`, which drives
//! `src/bin/bench.rs`).
//!
//! - **Cold start**: spawn to the first `GET /runtime/invocation/next` (Lambda's init phase),
//!   and spawn to the end of the first step.
//! - **Warm rotation**: one process runs every step of every rotation.
//! - **Cold rotation**: a fresh process per step, the worst case Lambda can produce.
//! - **Peak RSS**: `VmHWM` of the function process just before it is stopped.
//! - **Calls**: counted on the wire by a [`Proxy`](rotation_tests::proxy::Proxy) in front of
//!   moto (by operation) and in front of the database (connections, and whether one is left
//!   open when the step has returned).
//! - **Lock-out window** (single user): how long a client holding the old password is refused,
//!   in [`lockout`].
//! - **Scale**: setSecret's time and database round trips for alternating users as the
//!   rotated user's grants (MySQL) or role memberships (PostgreSQL) grow.
//!
//! Nothing here prints or stores a credential: only names of operations, counts and times.

pub mod lockout;
pub mod report;
pub mod subject;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Connection, MySqlConnection, PgConnection};

use rotation_tests::orchestrator::{Orchestrator, STEPS};
use rotation_tests::proxy::Counts;
use rotation_tests::runtime_api::{FunctionSpec, Invocation, LambdaFunction};
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack;
pub use subject::{Paths, Privileges, Subject};

/// Why the benchmark could not measure something. Carries step names, error types and the
/// functions' own error messages, which never hold a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(pub String);

impl BenchError {
    pub fn context<E: fmt::Display>(doing: &'static str) -> impl FnOnce(E) -> BenchError {
        move |error| BenchError(format!("could not {doing}: {error}"))
    }
}

/// How many times each figure is measured.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Runs {
    /// Rotations by one warm process.
    pub warm: usize,
    /// Rotations with a fresh process per step.
    pub cold: usize,
    /// Scale runs: rotations that create the alternate user, and rotations between two
    /// existing users.
    pub scale_new: usize,
    pub scale_steady: usize,
}

impl Runs {
    pub const FULL: Runs = Runs {
        warm: 10,
        cold: 5,
        scale_new: 3,
        scale_steady: 4,
    };
    pub const QUICK: Runs = Runs {
        warm: 3,
        cold: 2,
        scale_new: 1,
        scale_steady: 2,
    };
    /// Once: the smoke test that keeps the machinery from rotting.
    pub const ONCE: Runs = Runs {
        warm: 1,
        cold: 1,
        scale_new: 1,
        scale_steady: 1,
    };
}

/// The median and range of repeated measurements, in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Summary {
    pub fn of(values: &[f64]) -> Summary {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n {
            0 => 0.0,
            _ if n % 2 == 1 => sorted[n / 2],
            _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Summary {
            median,
            min: sorted.first().copied().unwrap_or_default(),
            max: sorted.last().copied().unwrap_or_default(),
            n,
        }
    }

    fn of_durations(values: &[Duration]) -> Summary {
        Summary::of(&values.iter().map(milliseconds).collect::<Vec<_>>())
    }
}

fn milliseconds(duration: &Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The median of whole counts (the lower middle for an even number).
fn median_count(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or_default()
}

/// One step of one function and strategy.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StepFigures {
    pub step: String,
    /// The invocation, by a warm process.
    pub warm_ms: Summary,
    /// Spawn of a fresh process to the end of the step.
    pub cold_ms: Summary,
    /// Secrets Manager calls by operation (median of the warm runs).
    pub secrets_manager_calls: BTreeMap<String, u64>,
    /// Database connections opened (median of the warm runs).
    pub database_connections: u64,
    /// The most database connections still open after the step returned, over all runs.
    pub database_connections_left_open: u64,
}

/// Everything measured for one function and strategy.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SubjectFigures {
    pub subject: String,
    pub function: String,
    pub variant: String,
    /// Spawn to the first `GET /runtime/invocation/next`, over every process started.
    pub init_ms: Summary,
    /// Spawn to the end of createSecret in a fresh process.
    pub first_step_ms: Summary,
    pub warm_rotation_ms: Summary,
    /// The four cold steps added up.
    pub cold_rotation_ms: Summary,
    pub steps: Vec<StepFigures>,
    /// `VmHWM` of the warm process after every warm rotation.
    pub warm_peak_rss_kib: u64,
    /// The largest `VmHWM` of the fresh processes.
    pub cold_peak_rss_kib: u64,
    /// Secrets Manager calls per rotation (median of the warm runs), and by operation.
    pub secrets_manager_calls: u64,
    pub secrets_manager_calls_by_operation: BTreeMap<String, u64>,
    /// The same, for rotations with a fresh process per step.
    pub secrets_manager_calls_cold: u64,
    pub database_connections: u64,
    pub database_connections_left_open: u64,
}

/// What one step cost.
struct StepSample {
    duration: Duration,
    secrets_manager: Counts,
    database: Counts,
    left_open: u64,
}

/// A client's close reaches the proxy a moment after the step's answer; a connection still
/// open after this long was left open by the function.
const CLOSE_GRACE: Duration = Duration::from_millis(250);

/// Runs `step` of the rotation `token` and reads the proxies.
async fn step(
    orchestrator: &Orchestrator<'_>,
    paths: &Paths,
    arn: &str,
    token: &str,
    name: &'static str,
) -> Result<StepSample, BenchError> {
    paths.reset_counts();
    let record = orchestrator.invoke(arn, token, name).await;
    if !matches!(record.invocation, Invocation::Succeeded(_)) {
        return Err(BenchError(format!("{name} {}", record.invocation)));
    }
    let (database, left_open) = match &paths.database {
        Some(proxy) => {
            let idle = proxy.wait_until_idle(CLOSE_GRACE).await;
            (proxy.counts(), if idle { 0 } else { proxy.open() })
        }
        None => (Counts::default(), 0),
    };
    Ok(StepSample {
        duration: record.duration,
        secrets_manager: paths.secrets_manager.counts(),
        database,
        left_open,
    })
}

async fn start(spec: &FunctionSpec) -> Result<LambdaFunction, BenchError> {
    LambdaFunction::start(spec.clone())
        .await
        .map_err(BenchError::context("start the function"))
}

/// One rotation by a warm process: the four steps' samples.
async fn warm_rotation(
    moto: &MotoSecretsManager,
    function: &LambdaFunction,
    paths: &Paths,
    arn: &str,
) -> Result<Vec<StepSample>, BenchError> {
    let orchestrator = Orchestrator { moto, function };
    let token = moto.start_rotation(arn).await;
    let mut samples = Vec::with_capacity(STEPS.len());
    for name in STEPS {
        samples.push(step(&orchestrator, paths, arn, &token, name).await?);
    }
    Ok(samples)
}

/// A fresh process's figures for one step.
struct ColdSample {
    /// Spawn to the end of the step.
    total: Duration,
    init: Option<Duration>,
    peak_rss_kib: Option<u64>,
    sample: StepSample,
}

/// One rotation with a fresh process per step.
async fn cold_rotation(
    moto: &MotoSecretsManager,
    spec: &FunctionSpec,
    paths: &Paths,
    arn: &str,
) -> Result<Vec<ColdSample>, BenchError> {
    let token = moto.start_rotation(arn).await;
    let mut samples = Vec::with_capacity(STEPS.len());
    for name in STEPS {
        let spawned = Instant::now();
        let function = start(spec).await?;
        let orchestrator = Orchestrator {
            moto,
            function: &function,
        };
        let sample = step(&orchestrator, paths, arn, &token, name).await?;
        let total = spawned.elapsed();
        let init = function.init_duration();
        let peak_rss_kib = function.peak_rss_kib();
        function.stop().await;
        samples.push(ColdSample {
            total,
            init,
            peak_rss_kib,
            sample,
        });
    }
    Ok(samples)
}

/// Measures one function and strategy: `runs.warm` rotations by one process, then `runs.cold`
/// rotations with a fresh process per step.
pub async fn measure(
    subject: Subject,
    binary: &Path,
    runs: Runs,
) -> Result<SubjectFigures, BenchError> {
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    let paths = Paths::for_subject(subject).await?;
    let prepared = subject
        .prepare(&moto, &paths, Privileges::default())
        .await?;
    let spec = FunctionSpec::new(binary).env(prepared.env.iter().cloned());

    let function = start(&spec).await?;
    let mut warm = Vec::with_capacity(runs.warm);
    for _ in 0..runs.warm {
        warm.push(warm_rotation(&moto, &function, &paths, &prepared.arn).await?);
    }
    let warm_init = function.init_duration();
    let warm_peak_rss_kib = function.peak_rss_kib().unwrap_or_default();
    function.stop().await;

    let mut cold = Vec::with_capacity(runs.cold);
    for _ in 0..runs.cold {
        cold.push(cold_rotation(&moto, &spec, &paths, &prepared.arn).await?);
    }

    let mut inits: Vec<Duration> = warm_init.into_iter().collect();
    inits.extend(cold.iter().flatten().filter_map(|sample| sample.init));
    let steps = STEPS
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let warm_samples: Vec<&StepSample> =
                warm.iter().map(|rotation| &rotation[index]).collect();
            let cold_samples: Vec<&ColdSample> =
                cold.iter().map(|rotation| &rotation[index]).collect();
            step_figures(name, &warm_samples, &cold_samples)
        })
        .collect::<Vec<_>>();
    let per_rotation = |rotation: &[StepSample], count: &dyn Fn(&StepSample) -> u64| {
        rotation.iter().map(count).sum::<u64>()
    };
    let warm_calls: Vec<u64> = warm
        .iter()
        .map(|rotation| per_rotation(rotation, &|s| s.secrets_manager.requests()))
        .collect();
    let cold_calls: Vec<u64> = cold
        .iter()
        .map(|rotation| {
            rotation
                .iter()
                .map(|cold| cold.sample.secrets_manager.requests())
                .sum()
        })
        .collect();
    let connections: Vec<u64> = warm
        .iter()
        .map(|rotation| per_rotation(rotation, &|s| s.database.connections))
        .collect();
    let mut by_operation = BTreeMap::new();
    for figures in &steps {
        for (operation, calls) in &figures.secrets_manager_calls {
            *by_operation.entry(operation.clone()).or_default() += calls;
        }
    }
    Ok(SubjectFigures {
        subject: subject.to_string(),
        function: subject.function().to_owned(),
        variant: subject.variant().to_owned(),
        init_ms: Summary::of_durations(&inits),
        first_step_ms: Summary::of_durations(
            &cold
                .iter()
                .map(|rotation| rotation[0].total)
                .collect::<Vec<_>>(),
        ),
        warm_rotation_ms: Summary::of_durations(
            &warm
                .iter()
                .map(|rotation| rotation.iter().map(|s| s.duration).sum())
                .collect::<Vec<_>>(),
        ),
        cold_rotation_ms: Summary::of_durations(
            &cold
                .iter()
                .map(|rotation| rotation.iter().map(|s| s.total).sum())
                .collect::<Vec<_>>(),
        ),
        database_connections_left_open: steps
            .iter()
            .map(|s| s.database_connections_left_open)
            .max()
            .unwrap_or_default(),
        steps,
        warm_peak_rss_kib,
        cold_peak_rss_kib: cold
            .iter()
            .flatten()
            .filter_map(|sample| sample.peak_rss_kib)
            .max()
            .unwrap_or_default(),
        secrets_manager_calls: median_count(&warm_calls),
        secrets_manager_calls_by_operation: by_operation,
        secrets_manager_calls_cold: median_count(&cold_calls),
        database_connections: median_count(&connections),
    })
}

fn step_figures(name: &str, warm: &[&StepSample], cold: &[&ColdSample]) -> StepFigures {
    let mut operations: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for sample in warm {
        for operation in sample.secrets_manager.operations.keys() {
            operations.entry(operation.clone()).or_default();
        }
    }
    for (operation, calls) in &mut operations {
        calls.extend(warm.iter().map(|sample| {
            sample
                .secrets_manager
                .operations
                .get(operation)
                .copied()
                .unwrap_or_default()
        }));
    }
    let left_open = warm
        .iter()
        .map(|sample| sample.left_open)
        .chain(cold.iter().map(|cold| cold.sample.left_open))
        .max()
        .unwrap_or_default();
    StepFigures {
        step: name.to_owned(),
        warm_ms: Summary::of_durations(&warm.iter().map(|s| s.duration).collect::<Vec<_>>()),
        cold_ms: Summary::of_durations(&cold.iter().map(|c| c.total).collect::<Vec<_>>()),
        secrets_manager_calls: operations
            .into_iter()
            .map(|(operation, calls)| (operation, median_count(&calls)))
            .filter(|(_, calls)| *calls > 0)
            .collect(),
        database_connections: median_count(
            &warm
                .iter()
                .map(|s| s.database.connections)
                .collect::<Vec<_>>(),
        ),
        database_connections_left_open: left_open,
    }
}

/// setSecret of alternating users at one size.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ScaleFigures {
    pub subject: String,
    /// `grants` (MySQL table grants) or `memberships` (PostgreSQL roles).
    pub unit: String,
    pub size: usize,
    /// setSecret when it creates the alternate user and gives it everything.
    pub new_user_ms: Summary,
    pub new_user_round_trips: u64,
    /// setSecret between two existing, equal users.
    pub steady_ms: Summary,
    pub steady_round_trips: u64,
}

/// setSecret's time and database round trips for alternating users whose current user holds
/// `size` grants (MySQL) or memberships (PostgreSQL).
pub async fn measure_scale(
    subject: Subject,
    binary: &Path,
    size: usize,
    runs: Runs,
) -> Result<ScaleFigures, BenchError> {
    let (unit, privileges) = match subject {
        Subject::MysqlAlternatingUsers => (
            "grants",
            Privileges {
                grants: size,
                memberships: 0,
            },
        ),
        Subject::PostgresAlternatingUsers => (
            "memberships",
            Privileges {
                grants: 0,
                memberships: size,
            },
        ),
        other => return Err(BenchError(format!("{other} has no scale run"))),
    };
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    let paths = Paths::for_subject(subject).await?;
    let prepared = subject.prepare(&moto, &paths, privileges).await?;
    let spec = FunctionSpec::new(binary).env(prepared.env.iter().cloned());
    let function = start(&spec).await?;
    let set_secret = STEPS
        .iter()
        .position(|name| *name == "setSecret")
        .ok_or_else(|| BenchError("no setSecret step".to_owned()))?;

    let mut new_user = Vec::new();
    let mut new_round_trips = Vec::new();
    let mut arn = prepared.arn.clone();
    for run in 0..runs.scale_new {
        if run > 0 {
            // Back to the start: no alternate user, and a secret naming the original one.
            drop_alternate(subject, &prepared.username).await?;
            arn = moto
                .create_secret(
                    &MotoSecretsManager::unique_name("bench-scale"),
                    &prepared.secret.to_string(),
                )
                .await;
        }
        let samples = warm_rotation(&moto, &function, &paths, &arn).await?;
        new_user.push(samples[set_secret].duration);
        new_round_trips.push(samples[set_secret].database.round_trips);
    }
    let mut steady = Vec::new();
    let mut steady_round_trips = Vec::new();
    for _ in 0..runs.scale_steady {
        let samples = warm_rotation(&moto, &function, &paths, &arn).await?;
        steady.push(samples[set_secret].duration);
        steady_round_trips.push(samples[set_secret].database.round_trips);
    }
    function.stop().await;
    Ok(ScaleFigures {
        subject: subject.to_string(),
        unit: unit.to_owned(),
        size,
        new_user_ms: Summary::of_durations(&new_user),
        new_user_round_trips: median_count(&new_round_trips),
        steady_ms: Summary::of_durations(&steady),
        steady_round_trips: median_count(&steady_round_trips),
    })
}

/// Drops `<user>_clone`, which the first rotation of alternating users made.
async fn drop_alternate(subject: Subject, user: &str) -> Result<(), BenchError> {
    let clone = format!("{user}_clone");
    match subject {
        Subject::PostgresAlternatingUsers => {
            let pg = stack::postgres().await;
            let mut admin = PgConnection::connect(&pg.superuser_url())
                .await
                .map_err(BenchError::context("log in to PostgreSQL as the superuser"))?;
            sqlx::raw_sql(AssertSqlSafe(format!("DROP ROLE IF EXISTS {clone}")))
                .execute(&mut admin)
                .await
                .map_err(BenchError::context("drop the alternate role"))?;
            let _ = admin.close().await;
        }
        _ => {
            let db = stack::mariadb().await;
            let mut admin = MySqlConnection::connect(&db.admin_url())
                .await
                .map_err(BenchError::context("log in to MariaDB as the admin"))?;
            sqlx::raw_sql(AssertSqlSafe(format!("DROP USER IF EXISTS '{clone}'@'%'")))
                .execute(&mut admin)
                .await
                .map_err(BenchError::context("drop the alternate account"))?;
            let _ = admin.close().await;
        }
    }
    Ok(())
}

/// The size of one function's release binary and of its `bootstrap.zip`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SizeFigures {
    pub function: String,
    pub binary_bytes: u64,
    /// `None` when no zip was built.
    pub zip_bytes: Option<u64>,
}

/// Everything one benchmark run produced.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Results {
    /// What the figures were measured on, and how often.
    pub machine: String,
    /// The commit measured (`git describe`), when known.
    #[serde(default)]
    pub revision: String,
    pub runs: Option<Runs>,
    /// The target the zips were built for.
    pub zip_target: String,
    pub subjects: Vec<SubjectFigures>,
    pub sizes: Vec<SizeFigures>,
    pub scale: Vec<ScaleFigures>,
    /// Single user's lock-out window (absent from results written before it was measured).
    #[serde(default)]
    pub lockout: Vec<lockout::LockoutFigures>,
}
