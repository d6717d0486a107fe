//! The benchmark's command line (run it through `scripts/bench`, which builds what it needs).
//!
//! ```text
//! bench [--quick] [--only rotate-postgres/single-user]... [--no-scale]
//!       [--bin-dir DIR] [--zip-dir DIR] [--zip-target TRIPLE] [--out DIR] [--baseline FILE]
//! ```
//!
//! - `--bin-dir`: the release binaries (default `$CARGO_TARGET_DIR/release`, else
//!   `<repo>/target/release`); `--zip-dir`: where `cargo lambda build` put `<function>/bootstrap.zip`
//!   (default the `lambda` directory beside `release`).
//! - `--out`: where `benchmark.json`, `benchmark.md` and `benchmark.svg` go (default
//!   `<repo>/docs`). `--baseline`: an earlier `benchmark.json`; the page and the plot then show
//!   each figure before and after.
//! - `--quick`: fewer runs (3 warm, 2 cold rotations; one new-user scale run).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rotation_tests::stack;
use rotation_tools::bench::lockout::measure_lockout;
use rotation_tools::bench::report::{check_goals, markdown, svg};
use rotation_tools::bench::{
    measure, measure_scale, BenchError, Results, Runs, SizeFigures, Subject,
};

struct Options {
    runs: Runs,
    subjects: Vec<Subject>,
    scale: bool,
    bin_dir: PathBuf,
    zip_dir: PathBuf,
    zip_target: String,
    out: PathBuf,
    baseline: Option<PathBuf>,
}

/// MySQL grants and PostgreSQL memberships of the scale runs.
const MYSQL_GRANTS: [usize; 3] = [10, 1_000, 10_000];
const POSTGRES_MEMBERSHIPS: [usize; 3] = [10, 100, 1_000];

fn repository() -> PathBuf {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests.parent().unwrap_or(tests).to_path_buf()
}

fn parse(arguments: impl Iterator<Item = String>) -> Result<Options, BenchError> {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository().join("target"));
    let mut options = Options {
        runs: Runs::FULL,
        subjects: Vec::new(),
        scale: true,
        bin_dir: target_dir.join("release"),
        zip_dir: target_dir.join("lambda"),
        zip_target: "x86_64-unknown-linux-gnu".to_owned(),
        out: repository().join("docs"),
        baseline: None,
    };
    let mut arguments = arguments.peekable();
    while let Some(argument) = arguments.next() {
        let mut value = |name: &str| {
            arguments
                .next()
                .ok_or_else(|| BenchError(format!("{name} needs a value")))
        };
        match argument.as_str() {
            "--quick" => options.runs = Runs::QUICK,
            "--no-scale" => options.scale = false,
            "--only" => {
                let name = value("--only")?;
                let subject = Subject::parse(&name).ok_or_else(|| {
                    let known: Vec<String> = Subject::ALL.iter().map(|s| s.to_string()).collect();
                    BenchError(format!("--only {name}: not one of {}", known.join(", ")))
                })?;
                options.subjects.push(subject);
            }
            "--bin-dir" => options.bin_dir = value("--bin-dir")?.into(),
            "--zip-dir" => options.zip_dir = value("--zip-dir")?.into(),
            "--zip-target" => options.zip_target = value("--zip-target")?,
            "--out" => options.out = value("--out")?.into(),
            "--baseline" => options.baseline = Some(value("--baseline")?.into()),
            // `cargo bench` and `cargo test` pass these; they change nothing here.
            "--bench" | "--nocapture" => {}
            other => return Err(BenchError(format!("unknown argument {other}"))),
        }
    }
    if options.subjects.is_empty() {
        options.subjects = Subject::ALL.to_vec();
    }
    Ok(options)
}

/// CPUs, model and kernel, for the page's first line.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.trim().to_owned())
        .unwrap_or_default();
    format!("{cpus} CPUs ({model}), Linux {kernel}")
}

fn size_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|metadata| metadata.len())
}

async fn run(options: Options) -> Result<Results, BenchError> {
    let mut results = Results {
        machine: machine(),
        revision: std::env::var("BENCH_REVISION").unwrap_or_default(),
        runs: Some(options.runs),
        zip_target: options.zip_target.clone(),
        ..Results::default()
    };
    stack::try_stack()
        .await
        .map_err(BenchError::context("start the local stack"))?;

    for subject in &options.subjects {
        let binary = options.bin_dir.join(subject.function());
        if !binary.is_file() {
            return Err(BenchError(format!(
                "{} is missing: build it with `cargo build --release`",
                binary.display()
            )));
        }
        eprintln!("bench: {subject} …");
        let figures = measure(*subject, &binary, options.runs).await?;
        eprintln!(
            "bench: {subject}: init {:.1} ms, warm rotation {:.1} ms, cold rotation {:.1} ms, \
             peak RSS {} KiB, {} Secrets Manager calls, {} DB connections",
            figures.init_ms.median,
            figures.warm_rotation_ms.median,
            figures.cold_rotation_ms.median,
            figures.warm_peak_rss_kib.max(figures.cold_peak_rss_kib),
            figures.secrets_manager_calls,
            figures.database_connections,
        );
        results.subjects.push(figures);
    }

    for subject in [Subject::PostgresSingleUser, Subject::MysqlSingleUser] {
        if !options.subjects.contains(&subject) {
            continue;
        }
        eprintln!("bench: {subject}: lock-out window …");
        let binary = options.bin_dir.join(subject.function());
        let figures = measure_lockout(subject, &binary, options.runs).await?;
        eprintln!(
            "bench: {subject}: a client holding the old password is refused for {:.1} ms \
             (warm; the steps bound it to {:.1}-{:.1} ms), {:.1} ms (fresh process per step; \
             {:.1}-{:.1} ms); one login {:.1} ms",
            figures.warm_window_ms.median,
            figures.warm_at_least_ms.median,
            figures.warm_at_most_ms.median,
            figures.cold_window_ms.median,
            figures.cold_at_least_ms.median,
            figures.cold_at_most_ms.median,
            figures.login_ms.median
        );
        results.lockout.push(figures);
    }

    if options.scale {
        for (subject, sizes) in [
            (Subject::MysqlAlternatingUsers, MYSQL_GRANTS),
            (Subject::PostgresAlternatingUsers, POSTGRES_MEMBERSHIPS),
        ] {
            if !options.subjects.contains(&subject) {
                continue;
            }
            let binary = options.bin_dir.join(subject.function());
            for size in sizes {
                eprintln!("bench: {subject} with {size} …");
                let figures = measure_scale(subject, &binary, size, options.runs).await?;
                eprintln!(
                    "bench: {subject} with {size}: new {:.1} ms in {} round trips, steady {:.1} \
                     ms in {} round trips",
                    figures.new_user_ms.median,
                    figures.new_user_round_trips,
                    figures.steady_ms.median,
                    figures.steady_round_trips
                );
                results.scale.push(figures);
            }
        }
    }

    let mut functions: Vec<&str> = options.subjects.iter().map(|s| s.function()).collect();
    functions.dedup();
    for function in functions {
        results.sizes.push(SizeFigures {
            function: function.to_owned(),
            binary_bytes: size_of(&options.bin_dir.join(function)).unwrap_or_default(),
            zip_bytes: size_of(&options.zip_dir.join(function).join("bootstrap.zip")),
        });
    }
    Ok(results)
}

fn write(path: &Path, contents: &str) -> Result<(), BenchError> {
    std::fs::write(path, contents)
        .map_err(|error| BenchError(format!("could not write {}: {error}", path.display())))
}

fn finish(
    options_out: &Path,
    baseline: Option<&Path>,
    results: &Results,
) -> Result<(), BenchError> {
    let before: Option<Results> = match baseline {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| {
                BenchError(format!("could not read {}: {error}", path.display()))
            })?;
            Some(serde_json::from_str(&text).map_err(|error| {
                BenchError(format!(
                    "{} is not a benchmark result: {error}",
                    path.display()
                ))
            })?)
        }
    };
    std::fs::create_dir_all(options_out).map_err(|error| {
        BenchError(format!(
            "could not create {}: {error}",
            options_out.display()
        ))
    })?;
    let json = serde_json::to_string_pretty(results)
        .map_err(BenchError::context("serialise the results"))?;
    let page = markdown(results, before.as_ref());
    write(&options_out.join("benchmark.json"), &(json + "\n"))?;
    write(&options_out.join("benchmark.md"), &page)?;
    write(
        &options_out.join("benchmark.svg"),
        &svg(results, before.as_ref()),
    )?;
    println!("{page}");
    eprintln!(
        "bench: wrote benchmark.json, benchmark.md and benchmark.svg in {}",
        options_out.display()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = async {
        let options = parse(std::env::args().skip(1))?;
        let out = options.out.clone();
        let baseline = options.baseline.clone();
        let results = run(options).await?;
        finish(&out, baseline.as_deref(), &results)?;
        Ok::<_, BenchError>(results)
    }
    .await;
    match outcome {
        Ok(results) => {
            let missed: Vec<String> = check_goals(&results)
                .into_iter()
                .filter(|goal| !goal.met)
                .map(|goal| format!("{} (measured {})", goal.goal, goal.measured))
                .collect();
            if !missed.is_empty() {
                eprintln!("bench: goals not met: {}", missed.join("; "));
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("bench: {error}");
            ExitCode::FAILURE
        }
    }
}
