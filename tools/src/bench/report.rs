//! The benchmark's results as a short Markdown page and an SVG plot, optionally beside an
//! earlier run (the figures before a change): each cell then reads `before → after`.

use std::fmt::Write as _;

use super::{Results, ScaleFigures, SizeFigures, SubjectFigures, Summary};

/// The issue's goals, checked against the results.
pub const COLD_START_GOAL_MS: f64 = 10.0;
pub const PEAK_RSS_GOAL_KIB: u64 = 24 * 1024;
pub const LAMBDA_MEMORY_KIB: u64 = 128 * 1024;
pub const WARM_SINGLE_USER_GOAL_MS: f64 = 150.0;
pub const WARM_ALTERNATING_USERS_GOAL_MS: f64 = 250.0;
pub const SINGLE_USER_CALLS_GOAL: u64 = 10;
pub const ZIP_GOAL_BYTES: u64 = 6 * 1024 * 1024;

fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn mb(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / (1024.0 * 1024.0))
}

/// `after`, or `before → after` when there is a before that differs.
fn cell(before: Option<String>, after: String) -> String {
    match before {
        Some(before) if before != after => format!("{before} → {after}"),
        _ => after,
    }
}

struct Compared<'a> {
    after: &'a Results,
    before: Option<&'a Results>,
}

impl<'a> Compared<'a> {
    fn subject(&self, subject: &str) -> Option<&'a SubjectFigures> {
        self.before?.subjects.iter().find(|s| s.subject == subject)
    }

    fn size(&self, function: &str) -> Option<&'a SizeFigures> {
        self.before?.sizes.iter().find(|s| s.function == function)
    }

    fn scale(&self, figures: &ScaleFigures) -> Option<&'a ScaleFigures> {
        self.before?
            .scale
            .iter()
            .find(|s| s.subject == figures.subject && s.size == figures.size)
    }

    /// A cell of a subject's figure, compared with the same figure before.
    fn subject_cell(
        &self,
        figures: &SubjectFigures,
        show: impl Fn(&SubjectFigures) -> String,
    ) -> String {
        cell(self.subject(&figures.subject).map(&show), show(figures))
    }
}

/// The Markdown page: the summary table, steps, calls, sizes, scale, and the goals.
pub fn markdown(results: &Results, before: Option<&Results>) -> String {
    let compared = Compared {
        after: results,
        before,
    };
    let mut page = String::new();
    let _ = writeln!(page, "# Benchmark\n");
    let _ = writeln!(
        page,
        "Measured by `scripts/bench` on {}. Medians; `n` is the number of runs behind each \
         median{}. Times in milliseconds, memory in MiB, sizes in MiB.{}\n",
        results.machine,
        results
            .runs
            .map(|runs| format!(
                " ({} warm rotations, {} cold rotations with a fresh process per step)",
                runs.warm, runs.cold
            ))
            .unwrap_or_default(),
        match before {
            Some(before) => format!(
                " Where a figure changed, the cell reads `before → after`{}.",
                match (before.revision.as_str(), results.revision.as_str()) {
                    ("", _) | (_, "") => String::new(),
                    (was, is) => format!(" (before: `{was}`, after: `{is}`)"),
                }
            ),
            None => String::new(),
        }
    );
    summary_table(&mut page, &compared);
    steps_tables(&mut page, &compared);
    calls_table(&mut page, &compared);
    sizes_table(&mut page, &compared);
    scale_table(&mut page, &compared);
    lockout_table(&mut page, &compared);
    goals(&mut page, results);
    page
}

fn summary_table(page: &mut String, compared: &Compared<'_>) {
    let _ = writeln!(page, "## Per function and strategy\n");
    let _ = writeln!(
        page,
        "| function / strategy | cold start: to first `next` | to first step done | warm \
         rotation | cold rotation | peak RSS (warm / cold) | Secrets Manager calls per \
         rotation (warm / cold) | DB connections per rotation | left open after a step |"
    );
    let _ = writeln!(page, "|---|---|---|---|---|---|---|---|---|");
    for figures in &compared.after.subjects {
        let _ = writeln!(
            page,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            figures.subject,
            compared.subject_cell(figures, |f| ms(f.init_ms.median)),
            compared.subject_cell(figures, |f| ms(f.first_step_ms.median)),
            compared.subject_cell(figures, |f| ms(f.warm_rotation_ms.median)),
            compared.subject_cell(figures, |f| ms(f.cold_rotation_ms.median)),
            compared.subject_cell(figures, |f| format!(
                "{} / {}",
                mib(f.warm_peak_rss_kib),
                mib(f.cold_peak_rss_kib)
            )),
            compared.subject_cell(figures, |f| format!(
                "{} / {}",
                f.secrets_manager_calls, f.secrets_manager_calls_cold
            )),
            compared.subject_cell(figures, |f| f.database_connections.to_string()),
            compared.subject_cell(figures, |f| f.database_connections_left_open.to_string()),
        );
    }
    let runs = |summary: &Summary| summary.n;
    if let Some(figures) = compared.after.subjects.first() {
        let _ = writeln!(
            page,
            "\nn: cold start {} processes, warm {} rotations, cold {} rotations per row.\n",
            runs(&figures.init_ms),
            runs(&figures.warm_rotation_ms),
            runs(&figures.cold_rotation_ms)
        );
    }
}

fn steps_tables(page: &mut String, compared: &Compared<'_>) {
    let Some(first) = compared.after.subjects.first() else {
        return;
    };
    let names: Vec<&str> = first.steps.iter().map(|s| s.step.as_str()).collect();
    for (title, pick) in [
        (
            "Steps, warm: the invocation (ms)",
            (|s: &super::StepFigures| ms(s.warm_ms.median)) as fn(&super::StepFigures) -> String,
        ),
        (
            "Steps, cold: spawn of a fresh process to the end of the step (ms)",
            |s: &super::StepFigures| ms(s.cold_ms.median),
        ),
        (
            "Database connections opened per step",
            |s: &super::StepFigures| s.database_connections.to_string(),
        ),
    ] {
        let _ = writeln!(page, "## {title}\n");
        let _ = writeln!(page, "| function / strategy | {} |", names.join(" | "));
        let _ = writeln!(page, "|---|{}", "---|".repeat(names.len()));
        for figures in &compared.after.subjects {
            let before = compared.subject(&figures.subject);
            let cells: Vec<String> = figures
                .steps
                .iter()
                .map(|step| {
                    let earlier = before
                        .and_then(|b| b.steps.iter().find(|s| s.step == step.step))
                        .map(pick);
                    cell(earlier, pick(step))
                })
                .collect();
            let _ = writeln!(page, "| {} | {} |", figures.subject, cells.join(" | "));
        }
        let _ = writeln!(page);
    }
}

fn calls_table(page: &mut String, compared: &Compared<'_>) {
    let mut operations: Vec<String> = compared
        .after
        .subjects
        .iter()
        .chain(compared.before.iter().flat_map(|b| b.subjects.iter()))
        .flat_map(|f| f.secrets_manager_calls_by_operation.keys().cloned())
        .collect();
    operations.sort();
    operations.dedup();
    let _ = writeln!(
        page,
        "## Secrets Manager calls per warm rotation, by operation\n\nCounted on the wire by a \
         proxy in front of moto. `per step` is createSecret / setSecret / testSecret / \
         finishSecret.\n"
    );
    let _ = writeln!(
        page,
        "| function / strategy | {} | total | per step |",
        operations.join(" | ")
    );
    let _ = writeln!(page, "|---|{}---|---|", "---|".repeat(operations.len()));
    for figures in &compared.after.subjects {
        let mut cells: Vec<String> = operations
            .iter()
            .map(|operation| {
                compared.subject_cell(figures, |f| {
                    f.secrets_manager_calls_by_operation
                        .get(operation)
                        .copied()
                        .unwrap_or_default()
                        .to_string()
                })
            })
            .collect();
        cells.push(compared.subject_cell(figures, |f| f.secrets_manager_calls.to_string()));
        cells.push(compared.subject_cell(figures, |f| {
            f.steps
                .iter()
                .map(|s| s.secrets_manager_calls.values().sum::<u64>().to_string())
                .collect::<Vec<_>>()
                .join(" / ")
        }));
        let _ = writeln!(page, "| {} | {} |", figures.subject, cells.join(" | "));
    }
    let _ = writeln!(page);
}

fn sizes_table(page: &mut String, compared: &Compared<'_>) {
    if compared.after.sizes.is_empty() {
        return;
    }
    let _ = writeln!(
        page,
        "## Package size (MiB)\n\nThe release binary (`cargo build --release`, this machine's \
         architecture) and `bootstrap.zip` from `cargo lambda build --release --output-format \
         zip`, built for {}{}.\n",
        compared.after.zip_target,
        match compared.before {
            Some(before) if before.zip_target != compared.after.zip_target => format!(
                " (before: {}, so the zips are not compared)",
                before.zip_target
            ),
            _ => String::new(),
        }
    );
    let _ = writeln!(page, "| function | release binary | bootstrap.zip |");
    let _ = writeln!(page, "|---|---|---|");
    for size in &compared.after.sizes {
        let before = compared.size(&size.function);
        let zip = |s: &SizeFigures| s.zip_bytes.map(mb).unwrap_or_else(|| "-".to_owned());
        let _ = writeln!(
            page,
            "| {} | {} | {} |",
            size.function,
            cell(before.map(|b| mb(b.binary_bytes)), mb(size.binary_bytes)),
            // Zips of two architectures are not the same figure: no arrow between them.
            cell(
                before
                    .filter(|_| {
                        compared.before.map(|b| b.zip_target.as_str())
                            == Some(compared.after.zip_target.as_str())
                    })
                    .map(zip),
                zip(size)
            ),
        );
    }
    let _ = writeln!(page);
}

fn scale_table(page: &mut String, compared: &Compared<'_>) {
    if compared.after.scale.is_empty() {
        return;
    }
    let _ = writeln!(
        page,
        "## Scale: alternating users' setSecret as the user's privileges grow\n\n`new` creates \
         the alternate user and gives it everything; `steady` rotates between two equal users. \
         Round trips are counted on the wire, on every database connection of the step.\n"
    );
    let _ = writeln!(
        page,
        "| function | size | new: setSecret (ms) | new: round trips | steady: setSecret (ms) | \
         steady: round trips |"
    );
    let _ = writeln!(page, "|---|---|---|---|---|---|");
    for figures in &compared.after.scale {
        let before = compared.scale(figures);
        let _ = writeln!(
            page,
            "| {} | {} {} | {} | {} | {} | {} |",
            figures.subject,
            figures.size,
            figures.unit,
            cell(
                before.map(|b| ms(b.new_user_ms.median)),
                ms(figures.new_user_ms.median)
            ),
            cell(
                before.map(|b| b.new_user_round_trips.to_string()),
                figures.new_user_round_trips.to_string()
            ),
            cell(
                before.map(|b| ms(b.steady_ms.median)),
                ms(figures.steady_ms.median)
            ),
            cell(
                before.map(|b| b.steady_round_trips.to_string()),
                figures.steady_round_trips.to_string()
            ),
        );
    }
    let _ = writeln!(page);
}

fn lockout_table(page: &mut String, compared: &Compared<'_>) {
    if compared.after.lockout.is_empty() {
        return;
    }
    let _ = writeln!(
        page,
        "## Single user: how long a client holding the old password is refused\n\n\
         setSecret changes the password; `AWSCURRENT` names the new one only after finishSecret. \
         A client logging in every {} ms with `AWSCURRENT`, re-reading it after each refusal, is \
         refused from the end of its first refused login to the end of the next login that \
         works: that is the window the client saw, per rotation, with the steps run back to back \
         as Secrets Manager runs them (one client login is its resolution). The steps' own times \
         bound the window whatever the client's pace: at least setSecret's end to \
         finishSecret's start, at most setSecret's start to finishSecret's end. Alternating users \
         has no window (the load tests assert zero failed logins after a re-read).\n",
        super::lockout::PAUSE.as_millis()
    );
    let _ = writeln!(
        page,
        "| function / strategy | process | window the client saw | bounds from the steps | \
         refused logins | one client login |"
    );
    let _ = writeln!(page, "|---|---|---|---|---|---|");
    for figures in &compared.after.lockout {
        let before = compared
            .before
            .and_then(|b| b.lockout.iter().find(|l| l.subject == figures.subject));
        let rows = [
            (
                "warm",
                &figures.warm_window_ms,
                before.map(|b| &b.warm_window_ms),
                &figures.warm_at_least_ms,
                &figures.warm_at_most_ms,
                figures.warm_refused_logins,
            ),
            (
                "fresh per step",
                &figures.cold_window_ms,
                before.map(|b| &b.cold_window_ms),
                &figures.cold_at_least_ms,
                &figures.cold_at_most_ms,
                figures.cold_refused_logins,
            ),
        ];
        for (process, window, window_before, at_least, at_most, refused) in rows {
            let _ = writeln!(
                page,
                "| {} | {process} | {} | {} – {} | {refused} | {} |",
                figures.subject,
                cell(window_before.map(|b| ms(b.median)), ms(window.median)),
                ms(at_least.median),
                ms(at_most.median),
                ms(figures.login_ms.median),
            );
        }
    }
    let _ = writeln!(page);
}

/// One goal: what it asks, what was measured, and whether it is met.
pub struct Goal {
    pub goal: String,
    pub measured: String,
    pub met: bool,
}

/// The issue's goals against `results`.
pub fn check_goals(results: &Results) -> Vec<Goal> {
    let mut goals = Vec::new();
    let most = |pick: &dyn Fn(&SubjectFigures) -> f64| {
        results.subjects.iter().map(pick).fold(0.0, f64::max)
    };
    let init = most(&|f| f.init_ms.median);
    goals.push(Goal {
        goal: format!("cold start to first `next` ≤ {COLD_START_GOAL_MS} ms"),
        measured: format!("at most {} ms", ms(init)),
        met: init <= COLD_START_GOAL_MS,
    });
    let rss = results
        .subjects
        .iter()
        .map(|f| f.warm_peak_rss_kib.max(f.cold_peak_rss_kib))
        .max()
        .unwrap_or_default();
    goals.push(Goal {
        goal: format!(
            "peak RSS ≤ {} MiB (of Lambda's {} MiB)",
            mib(PEAK_RSS_GOAL_KIB),
            mib(LAMBDA_MEMORY_KIB)
        ),
        measured: format!("at most {} MiB", mib(rss)),
        met: rss > 0 && rss <= PEAK_RSS_GOAL_KIB,
    });
    for (variant, limit) in [
        ("single-user", WARM_SINGLE_USER_GOAL_MS),
        ("alternating-users", WARM_ALTERNATING_USERS_GOAL_MS),
    ] {
        let mut measured = results.subjects.iter().filter(|f| f.variant == variant);
        if measured.clone().next().is_none() {
            // Not measured in this run (`--only`): no figure to hold against the goal.
            continue;
        }
        let warm = measured
            .by_ref()
            .map(|f| f.warm_rotation_ms.median)
            .fold(0.0, f64::max);
        goals.push(Goal {
            goal: format!("warm {variant} rotation ≤ {limit} ms"),
            measured: format!("at most {} ms", ms(warm)),
            met: warm <= limit,
        });
    }
    let calls = results
        .subjects
        .iter()
        .filter(|f| f.variant == "single-user")
        .map(|f| f.secrets_manager_calls)
        .max()
        .unwrap_or_default();
    let cold_calls = results
        .subjects
        .iter()
        .filter(|f| f.variant == "single-user")
        .map(|f| f.secrets_manager_calls_cold)
        .max()
        .unwrap_or_default();
    goals.push(Goal {
        goal: format!("Secrets Manager calls per single-user rotation ≤ {SINGLE_USER_CALLS_GOAL}"),
        measured: format!("{calls} warm, {cold_calls} with a fresh process per step"),
        met: calls <= SINGLE_USER_CALLS_GOAL,
    });
    let describes = results.subjects.iter().all(|f| {
        f.steps
            .iter()
            .all(|s| s.secrets_manager_calls.get("DescribeSecret").copied() >= Some(1))
    });
    goals.push(Goal {
        goal: "DescribeSecret on every step".to_owned(),
        measured: if describes { "yes" } else { "no" }.to_owned(),
        met: describes,
    });
    let left_open = results
        .subjects
        .iter()
        .map(|f| f.database_connections_left_open)
        .max()
        .unwrap_or_default();
    goals.push(Goal {
        goal: "every database connection closed before the step returns".to_owned(),
        measured: format!("{left_open} left open"),
        met: left_open == 0,
    });
    // At most one connection per credential a step must prove: setSecret proves the current
    // user (single user) or the current user and the master (alternating users), testSecret the
    // pending one; createSecret and finishSecret touch no database.
    let over: Vec<String> = results
        .subjects
        .iter()
        .flat_map(|f| {
            f.steps.iter().filter_map(move |step| {
                let allowed = match step.step.as_str() {
                    "setSecret" if f.variant == "alternating-users" => 2,
                    "setSecret" | "testSecret" => 1,
                    _ => 0,
                };
                (step.database_connections > allowed)
                    .then(|| format!("{} {}: {}", f.subject, step.step, step.database_connections))
            })
        })
        .collect();
    goals.push(Goal {
        goal: "database connections per step ≤ the credentials it proves (setSecret 1, or 2 \
               with the master; testSecret 1; the others 0)"
            .to_owned(),
        measured: if over.is_empty() {
            "within".to_owned()
        } else {
            over.join(", ")
        },
        met: over.is_empty(),
    });
    // Only when this run built the zips (not with `--no-zip`).
    if let Some(zip) = results.sizes.iter().filter_map(|s| s.zip_bytes).max() {
        goals.push(Goal {
            goal: format!("bootstrap.zip ≤ {} MiB", mb(ZIP_GOAL_BYTES)),
            measured: format!("at most {} MiB", mb(zip)),
            met: zip <= ZIP_GOAL_BYTES,
        });
    }
    goals
}

fn goals(page: &mut String, results: &Results) {
    let _ = writeln!(page, "## Goals\n");
    let _ = writeln!(page, "| goal | measured | met |");
    let _ = writeln!(page, "|---|---|---|");
    for goal in check_goals(results) {
        let _ = writeln!(
            page,
            "| {} | {} | {} |",
            goal.goal,
            goal.measured,
            if goal.met { "yes" } else { "no" }
        );
    }
}

/// Bars of one colour in a panel; `None` draws nothing.
struct Series<'a> {
    label: &'a str,
    colour: &'a str,
    values: Vec<Option<f64>>,
}

const WIDTH: f64 = 900.0;
const LABEL_WIDTH: f64 = 250.0;
const BAR_AREA: f64 = 560.0;
const BAR: f64 = 11.0;

/// Escapes text for SVG.
fn text(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Draws a horizontal grouped bar chart at `top`; returns its height.
fn panel(svg: &mut String, top: f64, title: &str, rows: &[String], series: &[Series<'_>]) -> f64 {
    let largest = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(0.0, |a: f64, b| a.max(*b))
        .max(1.0);
    let scale = BAR_AREA / largest;
    let group = BAR * series.len() as f64 + 8.0;
    let _ = writeln!(
        svg,
        r#"<text x="10" y="{}" font-size="15" font-weight="bold">{}</text>"#,
        top + 18.0,
        text(title)
    );
    let mut x = LABEL_WIDTH;
    for item in series {
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}" font-size="12">{}</text>"#,
            top + 28.0,
            item.colour,
            x + 14.0,
            top + 37.0,
            text(item.label)
        );
        x += 16.0 + 7.0 * item.label.len() as f64 + 20.0;
    }
    let body = top + 48.0;
    for (row, name) in rows.iter().enumerate() {
        let y = body + row as f64 * group;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-size="12" text-anchor="end">{}</text>"#,
            LABEL_WIDTH - 8.0,
            y + group / 2.0,
            text(name)
        );
        for (index, item) in series.iter().enumerate() {
            let Some(Some(value)) = item.values.get(row) else {
                continue;
            };
            let bar_y = y + index as f64 * BAR;
            let length = (value * scale).max(1.0);
            let _ = writeln!(
                svg,
                r#"<rect x="{LABEL_WIDTH}" y="{bar_y}" width="{length:.1}" height="{}" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="10">{}</text>"#,
                BAR - 1.0,
                item.colour,
                LABEL_WIDTH + length + 4.0,
                bar_y + BAR - 2.0,
                ms(*value)
            );
        }
    }
    48.0 + rows.len() as f64 * group + 16.0
}

/// The plot: cold start and rotation latency per function and strategy (medians, ms), with
/// the earlier run's bars beside them when there is one.
pub fn svg(results: &Results, before: Option<&Results>) -> String {
    let rows: Vec<String> = results.subjects.iter().map(|f| f.subject.clone()).collect();
    let earlier = |pick: fn(&SubjectFigures) -> f64| -> Vec<Option<f64>> {
        results
            .subjects
            .iter()
            .map(|f| {
                before
                    .and_then(|b| b.subjects.iter().find(|s| s.subject == f.subject))
                    .map(pick)
            })
            .collect()
    };
    let now = |pick: fn(&SubjectFigures) -> f64| -> Vec<Option<f64>> {
        results.subjects.iter().map(|f| Some(pick(f))).collect()
    };
    let init: fn(&SubjectFigures) -> f64 = |f| f.init_ms.median;
    let first: fn(&SubjectFigures) -> f64 = |f| f.first_step_ms.median;
    let warm: fn(&SubjectFigures) -> f64 = |f| f.warm_rotation_ms.median;
    let cold: fn(&SubjectFigures) -> f64 = |f| f.cold_rotation_ms.median;
    let mut start_series = Vec::new();
    let mut rotation_series = Vec::new();
    if before.is_some() {
        start_series.push(Series {
            label: "to first next, before",
            colour: "#b9c7d8",
            values: earlier(init),
        });
    }
    start_series.push(Series {
        label: "to first next",
        colour: "#2f6db5",
        values: now(init),
    });
    if before.is_some() {
        start_series.push(Series {
            label: "to first step done, before",
            colour: "#f3cfa8",
            values: earlier(first),
        });
    }
    start_series.push(Series {
        label: "to first step done",
        colour: "#e07b16",
        values: now(first),
    });
    if before.is_some() {
        rotation_series.push(Series {
            label: "warm, before",
            colour: "#b9dcb9",
            values: earlier(warm),
        });
    }
    rotation_series.push(Series {
        label: "warm",
        colour: "#2e8b3a",
        values: now(warm),
    });
    if before.is_some() {
        rotation_series.push(Series {
            label: "cold, before",
            colour: "#e2b9b9",
            values: earlier(cold),
        });
    }
    rotation_series.push(Series {
        label: "cold (fresh process per step)",
        colour: "#b33a3a",
        values: now(cold),
    });

    let mut body = String::new();
    let first_height = panel(
        &mut body,
        10.0,
        "Cold start: spawn to first next, and to the end of createSecret (ms, median)",
        &rows,
        &start_series,
    );
    let second_height = panel(
        &mut body,
        10.0 + first_height,
        "Whole four-step rotation against the local stack (ms, median)",
        &rows,
        &rotation_series,
    );
    let height = 20.0 + first_height + second_height;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::StepFigures;

    fn figures(subject: &str, warm: f64) -> SubjectFigures {
        SubjectFigures {
            subject: subject.to_owned(),
            variant: "single-user".to_owned(),
            warm_rotation_ms: Summary::of(&[warm, warm + 2.0, warm - 2.0]),
            secrets_manager_calls: 12,
            ..SubjectFigures::default()
        }
    }

    #[test]
    fn a_median_is_the_middle_value_or_the_mean_of_the_two_middle_ones() {
        assert_eq!(Summary::of(&[3.0, 1.0, 2.0]).median, 2.0);
        assert_eq!(Summary::of(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
        let empty = Summary::of(&[]);
        assert_eq!((empty.median, empty.n), (0.0, 0));
    }

    #[test]
    fn a_changed_figure_reads_before_then_after() {
        let before = Results {
            subjects: vec![figures("rotate-x/single-user", 200.0)],
            ..Results::default()
        };
        let mut after_figures = figures("rotate-x/single-user", 90.0);
        after_figures.secrets_manager_calls = 9;
        let after = Results {
            subjects: vec![after_figures],
            ..Results::default()
        };
        let page = markdown(&after, Some(&before));
        assert!(page.contains("200 → 90.0"), "{page}");
        assert!(page.contains("12 / 0 → 9 / 0"), "{page}");
        let plot = svg(&after, Some(&before));
        assert!(
            plot.starts_with("<svg") && plot.contains("warm, before"),
            "{plot}"
        );
    }

    #[test]
    fn goals_are_checked_against_the_figures() {
        let results = Results {
            subjects: vec![figures("rotate-x/single-user", 90.0)],
            ..Results::default()
        };
        let goals = check_goals(&results);
        let calls = goals
            .iter()
            .find(|g| g.goal.starts_with("Secrets Manager calls"))
            .expect("the calls goal");
        assert!(!calls.met, "12 calls exceed 10");
        let warm = goals
            .iter()
            .find(|g| g.goal.starts_with("warm single-user"))
            .expect("the warm goal");
        assert!(warm.met);
        assert!(
            !goals
                .iter()
                .any(|g| g.goal.starts_with("warm alternating-users") || g.goal.contains(".zip")),
            "no alternating users and no zips were measured, so no goal is claimed for them"
        );
    }

    #[test]
    fn a_step_opening_more_connections_than_credentials_it_proves_misses_the_goal() {
        let step = |name: &str, connections: u64| StepFigures {
            step: name.to_owned(),
            database_connections: connections,
            ..StepFigures::default()
        };
        let mut single = figures("rotate-x/single-user", 90.0);
        single.steps = vec![step("setSecret", 1), step("testSecret", 1)];
        let mut alternating = figures("rotate-x/alternating-users", 90.0);
        alternating.variant = "alternating-users".to_owned();
        alternating.steps = vec![step("setSecret", 2), step("testSecret", 1)];
        let connections = |results: &Results| {
            check_goals(results)
                .into_iter()
                .find(|g| g.goal.starts_with("database connections per step"))
                .expect("the connections goal")
        };
        let within = Results {
            subjects: vec![single.clone(), alternating],
            ..Results::default()
        };
        assert!(connections(&within).met);

        single.steps[0].database_connections = 2;
        let over = connections(&Results {
            subjects: vec![single],
            ..Results::default()
        });
        assert!(!over.met);
        assert_eq!(over.measured, "rotate-x/single-user setSecret: 2");
    }
}
