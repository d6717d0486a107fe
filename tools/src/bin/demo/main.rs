//! The demo behind the README's first command (`scripts/demo`): a rotation function rotates a
//! real database password twice, driven exactly as Secrets Manager drives it, and every step is
//! told as it happens.
//!
//! It starts the local stack (moto as Secrets Manager; PostgreSQL 15 or MariaDB 10.11 with TLS),
//! creates an application user and its secret in the AWS templates' format, runs the function
//! binary under the Lambda Runtime API emulator, and plays the service: a value-less
//! `AWSPENDING` version, then createSecret, setSecret, testSecret and finishSecret. After each
//! step it shows the labelled versions and whether their credentials log in. No password is ever
//! printed. The servers and their temporary directory go when the process ends, however it
//! ends (see `rotation_tests::stack`).

mod targets;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rotation_tests::login::Login;
use rotation_tests::orchestrator::{Orchestrator, STEPS};
use rotation_tests::runtime_api::{FunctionSpec, Invocation, LambdaFunction};
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack;
use serde_json::Value;

use targets::DemoTarget;

const ROTATIONS: usize = 2;
const LABELS: [&str; 3] = ["AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"];

const USAGE: &str = "\
usage: demo --function-binary PATH [--target postgres|mysql|api-key] [--strategy single-user|alternating-users]
            [--stack-dir-file PATH] [--show-log]

  --function-binary  the rotation function to run (scripts/demo builds and passes it)
  --target           what to rotate (default postgres)
  --strategy         the function's ROTATION_STRATEGY (default single-user)
  --stack-dir-file   write the local stack's directory there, so a caller can wait for its removal
  --show-log         print what the function logged";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    Postgres,
    MySql,
    ApiKey,
}

impl TargetKind {
    fn parse(value: &str) -> Result<TargetKind, String> {
        match value {
            "postgres" => Ok(TargetKind::Postgres),
            "mysql" => Ok(TargetKind::MySql),
            "api-key" => Ok(TargetKind::ApiKey),
            other => Err(format!(
                "unknown --target {other:?}; use postgres, mysql or api-key"
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    SingleUser,
    AlternatingUsers,
}

impl Strategy {
    fn parse(value: &str) -> Result<Strategy, String> {
        match value {
            "single-user" => Ok(Strategy::SingleUser),
            "alternating-users" => Ok(Strategy::AlternatingUsers),
            other => Err(format!(
                "unknown --strategy {other:?}; use single-user or alternating-users"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::SingleUser => "single-user",
            Strategy::AlternatingUsers => "alternating-users",
        }
    }
}

struct Options {
    target: TargetKind,
    strategy: Strategy,
    function_binary: PathBuf,
    stack_dir_file: Option<PathBuf>,
    show_log: bool,
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut target = TargetKind::Postgres;
    let mut strategy = Strategy::SingleUser;
    let mut function_binary = None;
    let mut stack_dir_file = None;
    let mut show_log = false;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--target" => target = TargetKind::parse(&value("--target")?)?,
            "--strategy" => strategy = Strategy::parse(&value("--strategy")?)?,
            "--function-binary" => function_binary = Some(PathBuf::from(value(&arg)?)),
            "--stack-dir-file" => stack_dir_file = Some(PathBuf::from(value(&arg)?)),
            "--show-log" => show_log = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Options {
        target,
        strategy,
        function_binary: function_binary
            .ok_or_else(|| format!("--function-binary is required\n{USAGE}"))?,
        stack_dir_file,
        show_log,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("demo: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("\ndemo: FAILED: {message}");
            ExitCode::FAILURE
        }
    }
}

/// One labelled version as the demo shows it.
struct Version {
    label: &'static str,
    id: String,
    value: Value,
}

async fn run(options: &Options) -> Result<(), String> {
    // The stack's directory first: from here on the watchdog removes it whatever happens.
    let stack_dir = stack::temporary_directory()
        .await
        .map_err(|error| format!("the local stack's directory: {error}"))?;
    if let Some(file) = &options.stack_dir_file {
        std::fs::write(file, stack_dir.display().to_string())
            .map_err(|error| format!("cannot write {}: {error}", file.display()))?;
    }

    let started = Instant::now();
    let (moto_server, target) = tokio::try_join!(
        async {
            stack::try_moto()
                .await
                .map_err(|error| format!("moto could not start: {error}"))
        },
        targets::start(options.target, options.strategy),
    )?;
    println!(
        "Demo: {} rotates {} on {}, strategy {}, {ROTATIONS} times, driven as Secrets Manager drives it.\n",
        target.function(),
        target.credential(),
        target.server(),
        options.strategy.as_str()
    );
    println!(
        "1. Local stack up in {:.1} s under {}: moto (Secrets Manager) on 127.0.0.1:{}, {}.",
        started.elapsed().as_secs_f64(),
        stack_dir.display(),
        moto_server.port(),
        target.server()
    );

    let moto = MotoSecretsManager::connect(&moto_server.endpoint()).await;
    let seeded = target.seed().await?;
    let mut secret = seeded.secret;
    if let Some(master) = &seeded.master_secret {
        let master_arn = moto.create_secret("demo/master", &master.to_string()).await;
        println!(
            "2. Master user {} and its secret {master_arn}.",
            target.principal(master)
        );
        secret["masterarn"] = Value::from(master_arn);
    }
    let arn = moto
        .create_secret("demo/application", &secret.to_string())
        .await;
    println!(
        "{}. Application user {} and its secret, in the AWS templates' format:\n     {arn}\n     {}",
        if seeded.master_secret.is_some() { 3 } else { 2 },
        target.principal(&secret),
        redacted(&secret, target.secret_field())
    );

    let mut spec = FunctionSpec::new(&options.function_binary)
        .function_name(target.function())
        .env(moto.function_environment())
        .env(target.function_env());
    if options.show_log {
        spec = spec.log_level("INFO");
    }
    let function = LambdaFunction::start(spec).await.map_err(|error| {
        format!(
            "{} did not start: {error}",
            options.function_binary.display()
        )
    })?;
    println!(
        "   {} runs under the Lambda Runtime API emulator, 128 MB, 30 s timeout, as template.yaml deploys it.",
        target.function()
    );

    let mut passwords = vec![secret_of(&secret, target.secret_field())];
    let mut step_times: Vec<Vec<Duration>> = Vec::new();
    for round in 1..=ROTATIONS {
        let times = rotate(
            target.as_ref(),
            &moto,
            &function,
            &arn,
            round,
            &mut passwords,
        )
        .await
        .map_err(|error| {
            format!(
                "{error}\n--- what the function logged ---\n{}",
                function.output()
            )
        })?;
        step_times.push(times);
    }

    let debug_build = options
        .function_binary
        .components()
        .any(|part| part.as_os_str() == "debug");
    summary(target.as_ref(), &function, &step_times, debug_build);
    let output = function.output();
    if passwords
        .iter()
        .any(|password| !password.is_empty() && output.contains(password.as_str()))
    {
        return Err("a password appears in the function's log".to_owned());
    }
    println!("  No password appears in the function's log (checked), nor above.");
    if options.show_log {
        println!("\nWhat the function logged:\n{output}");
    }
    function.stop().await;
    println!(
        "\nDone. The function process has stopped; the servers stop and {} is removed as the demo exits.",
        stack_dir.display()
    );
    Ok(())
}

/// One rotation, told step by step; returns the time of each step.
async fn rotate(
    target: &dyn DemoTarget,
    moto: &MotoSecretsManager,
    function: &LambdaFunction,
    arn: &str,
    round: usize,
    passwords: &mut Vec<String>,
) -> Result<Vec<Duration>, String> {
    println!("\nRotation {round} of {ROTATIONS}");
    let before = versions(moto, arn).await;
    println!("  Before:");
    show(target, &before).await;
    let old_current = before
        .iter()
        .find(|version| version.label == "AWSCURRENT")
        .map(|version| version.value.clone())
        .ok_or("the secret has no AWSCURRENT version")?;

    let token = moto.start_rotation(arn).await;
    println!(
        "  RotateSecret: Secrets Manager adds version {} labelled AWSPENDING, with no value yet.",
        short(&token)
    );
    let orchestrator = Orchestrator { moto, function };
    let mut times = Vec::new();
    for step in STEPS {
        let record = orchestrator.invoke(arn, &token, step).await;
        times.push(record.duration);
        match &record.invocation {
            Invocation::Succeeded(_) => println!(
                "  {step:<13} ok      {:>5} ms  {}",
                record.duration.as_millis(),
                target.what_happened(step)
            ),
            other => {
                println!("  {step:<13} FAILED  {:>5} ms", record.duration.as_millis());
                return Err(format!("{step} {other}"));
            }
        }
        show(target, &versions(moto, arn).await).await;
    }

    // What must hold after a rotation, whatever the strategy.
    let after = versions(moto, arn).await;
    let new_current = after
        .iter()
        .find(|version| version.label == "AWSCURRENT" && version.id == token)
        .map(|version| version.value.clone())
        .ok_or("the new version did not become AWSCURRENT")?;
    if after.iter().any(|version| version.label == "AWSPENDING") {
        return Err("AWSPENDING is still on a version".to_owned());
    }
    if target.login(&new_current).await != Login::Ok {
        return Err("the new AWSCURRENT credentials do not log in".to_owned());
    }
    let new_password = secret_of(&new_current, target.secret_field());
    if passwords.contains(&new_password) {
        return Err(format!("the {} did not change", target.secret_field()));
    }
    passwords.push(new_password);
    // Single user changes the one user's password, so the old one must stop working; with
    // two principals (alternating users) the previous one stays valid until its next turn.
    let previous = target.login(&old_current).await;
    let (new_principal, old_principal) = (
        target.principal(&new_current),
        target.principal(&old_current),
    );
    match (new_principal == old_principal, &previous) {
        (true, Login::Rejected) => println!(
            "  Result: {new_principal} has a new password (not shown); the old one is rejected."
        ),
        (false, Login::Ok) => println!(
            "  Result: {new_principal} now logs in with a new {} (not shown); \
             {old_principal} still logs in, so applications holding AWSPREVIOUS keep working \
             until the next rotation retires it.",
            target.secret_field()
        ),
        (_, outcome) => {
            return Err(format!(
                "the previous credentials ({old_principal}) ended as {outcome:?}"
            ))
        }
    }
    Ok(times)
}

/// The labelled versions, AWSCURRENT first, with their values.
async fn versions(moto: &MotoSecretsManager, arn: &str) -> Vec<Version> {
    let labels = moto.labels(arn).await;
    let mut versions = Vec::new();
    for label in LABELS {
        let Some(id) = labels
            .iter()
            .find(|(_, stages)| stages.iter().any(|stage| stage == label))
            .map(|(id, _)| id.clone())
        else {
            continue;
        };
        let value = moto.value_at(arn, label).await.unwrap_or(Value::Null);
        versions.push(Version { label, id, value });
    }
    versions
}

/// One line per labelled version: label, version, user, and whether it logs in now.
async fn show(target: &dyn DemoTarget, versions: &[Version]) {
    for version in versions {
        let (user, outcome) = if version.value.is_null() {
            ("-".to_owned(), "no value yet".to_owned())
        } else {
            let outcome = match target.login(&version.value).await {
                Login::Ok => "logs in".to_owned(),
                Login::Rejected => "rejected".to_owned(),
                Login::Failed(error) => format!("login failed: {error}"),
            };
            (target.principal(&version.value), outcome)
        };
        println!(
            "      {:<12} {}  {user:<16} {outcome}",
            version.label,
            short(&version.id)
        );
    }
}

fn summary(
    target: &dyn DemoTarget,
    function: &LambdaFunction,
    step_times: &[Vec<Duration>],
    debug_build: bool,
) {
    println!("\nTime per step");
    let mut header = format!("  {:<13}", "step");
    for round in 1..=step_times.len() {
        header.push_str(&format!("  rotation {round}"));
    }
    println!("{header}");
    for (index, step) in STEPS.iter().enumerate() {
        let mut line = format!("  {step:<13}");
        for times in step_times {
            match times.get(index) {
                Some(time) => line.push_str(&format!("  {:>7} ms", time.as_millis())),
                None => line.push_str("           -"),
            }
        }
        println!("{line}");
    }
    let cold_start = function
        .init_duration()
        .map(|init| format!("{} ms", init.as_millis()))
        .unwrap_or_else(|| "unknown".to_owned());
    let memory = function
        .pid()
        .and_then(peak_memory_kib)
        .map(|kib| format!("{:.1} MB", kib as f64 / 1024.0))
        .unwrap_or_else(|| "unknown".to_owned());
    println!(
        "  {}{}: {} process for every invocation, cold start {cold_start}, peak memory {memory} (the template gives it 128 MB).",
        target.function(),
        if debug_build { " (debug build)" } else { "" },
        function.cold_starts()
    );
}

/// The process's peak resident memory (`VmHWM`), in KiB.
fn peak_memory_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The secret as JSON with its credential (`field`) replaced, for printing.
fn redacted(secret: &Value, field: &str) -> String {
    let mut shown = secret.clone();
    if shown.get(field).is_some() {
        shown[field] = Value::from("<not shown>");
    }
    shown.to_string()
}

fn secret_of(version: &Value, field: &str) -> String {
    version[field].as_str().unwrap_or_default().to_owned()
}

/// The first 8 characters of a version id: enough to tell versions apart on screen.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_options(args.iter().map(|arg| (*arg).to_owned()))
    }

    #[test]
    fn the_defaults_are_postgres_and_single_user() {
        let options = parse(&["--function-binary", "/bin/f"]).expect("valid");
        assert_eq!(options.target, TargetKind::Postgres);
        assert_eq!(options.strategy, Strategy::SingleUser);
    }

    #[test]
    fn mysql_with_alternating_users_is_accepted() {
        let options = parse(&[
            "--target",
            "mysql",
            "--strategy",
            "alternating-users",
            "--function-binary",
            "/bin/f",
        ])
        .expect("valid");
        assert_eq!(options.target, TargetKind::MySql);
        assert_eq!(options.strategy, Strategy::AlternatingUsers);
    }

    #[test]
    fn the_api_key_target_is_accepted() {
        let options =
            parse(&["--target", "api-key", "--function-binary", "/bin/f"]).expect("valid");
        assert_eq!(options.target, TargetKind::ApiKey);
    }

    #[test]
    fn an_unknown_strategy_names_the_valid_ones() {
        let error = parse(&["--strategy", "multi-user", "--function-binary", "/bin/f"])
            .err()
            .expect("refused");
        assert!(
            error.contains("single-user or alternating-users"),
            "{error}"
        );
    }

    #[test]
    fn the_password_is_never_part_of_the_printed_secret() {
        let shown = redacted(
            &serde_json::json!({"username": "u", "password": "hunter2"}),
            "password",
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
