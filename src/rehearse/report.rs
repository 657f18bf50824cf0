//! A rehearsal's report: a human table, JSON (`--report FILE`, `--json`)
//! and the GitHub job summary.

use chrono::{DateTime, Utc};

use super::locks::{Hold, Mode};
use crate::checks::CheckResult;
use crate::ci::GitHub;
use crate::config::Offsite;
use crate::progress::format_bytes;
use crate::report::{
    FailureReport, StepReport, checks_markdown, publish, steps_markdown, steps_table,
};

/// How a rehearsal ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Everything passed and the window fits the budget (or there is none).
    Passed,
    /// Everything passed but the estimated window exceeds the budget.
    OverBudget,
    /// A before-check, migration or after-check failed on the copy.
    Failed,
}

impl Verdict {
    /// `passed`, `over_budget`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::OverBudget => "over_budget",
            Verdict::Failed => "failed",
        }
    }
}

/// One migration as rehearsed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationMeasure {
    /// The history key.
    pub version: String,
    /// The file (for `transaction: all` or an external migrator: every
    /// migration of the group).
    pub path: String,
    /// Seconds it took.
    pub seconds: f64,
    /// Rows its statements reported.
    pub rows: u64,
    /// WAL bytes written, when the server said.
    pub wal_bytes: Option<u64>,
    /// Tables whose storage it replaced (rewrote or truncated).
    pub rewrote: Vec<String>,
    /// Table locks seen, strongest first.
    pub locks: Vec<Hold>,
}

impl MigrationMeasure {
    /// The longest `ACCESS EXCLUSIVE` hold, if any.
    pub fn longest_exclusive(&self) -> Option<&Hold> {
        self.locks
            .iter()
            .filter(|h| h.mode == Mode::AccessExclusive)
            .max_by(|a, b| a.seconds.total_cmp(&b.seconds))
    }
}

/// The deploy's maintenance window, estimated from what was measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Window {
    /// The snapshot step.
    pub snapshot_seconds: f64,
    /// Where the snapshot figure comes from.
    pub snapshot_basis: String,
    /// The local clone (measured by `--drill`; 0 otherwise).
    pub clone_seconds: f64,
    /// The migrations.
    pub migrations_seconds: f64,
    /// Compare captures before and checks after the migrations.
    pub checks_seconds: f64,
    /// `snapshot.offsite` as the rehearsed deploy ran it: whether the
    /// snapshot is inside the window (`before-migrate`), beside the
    /// migrations (`before-maintenance-off`) or after it (`after`); none
    /// when the rehearsal stopped before its snapshot.
    pub offsite: Option<crate::config::Offsite>,
    /// The window: the sum, with the snapshot counted as `offsite` says.
    pub total_seconds: f64,
    /// `budget.max_downtime`.
    pub budget_seconds: Option<f64>,
    /// Whether the rehearsal got as far as estimating the window (a
    /// rehearsal that stopped before the migrations has no estimate).
    pub estimated: bool,
    /// The migrations that cost the most, costliest first.
    pub costliest: Vec<String>,
}

/// What the failure drill measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Drill {
    /// Making the local clone (`CREATE DATABASE … TEMPLATE`), a deploy's cost.
    pub clone_seconds: Option<f64>,
    /// Rolling back by swapping the clone in.
    pub clone_swap_seconds: Option<f64>,
    /// Rolling back by restoring the snapshot from the store.
    pub store_restore_seconds: Option<f64>,
    /// The snapshot restored, and its store.
    pub snapshot: Option<String>,
    /// Each rollback the deploy ran, as its report and journal say.
    pub rollbacks: Vec<DrillRollback>,
    /// Whether each rollback left the database as before the migrations.
    pub verified: Vec<String>,
    /// What went wrong, if anything.
    pub errors: Vec<String>,
}

/// One rollback of the drill: the production rollback, run by the
/// deploy's pipeline on the copy.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DrillRollback {
    /// `clone swap` or `store restore`.
    pub how: String,
    /// The deploy's outcome (`rolled_back` when the rollback finished).
    pub outcome: String,
    /// What the rollback did to the database.
    pub database: String,
    /// The write guard's verdict before the restore.
    pub write_guard: Option<String>,
    /// The steps the deploy's journal went through.
    pub journal: Vec<String>,
    /// Seconds the database restore took.
    pub seconds: f64,
}

/// The whole rehearsal.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RehearsalReport {
    /// How it ended.
    pub outcome: Verdict,
    /// The database rehearsed.
    pub database: String,
    /// Where the data came from.
    pub source: String,
    /// The server version it was dumped from.
    pub source_version: Option<String>,
    /// Where it ran.
    pub target: String,
    /// Roles created on the scratch server because the dump names them.
    pub roles_created: Vec<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// The steps, in order.
    pub steps: Vec<StepReport>,
    /// Migrations pending on the copy.
    pub pending: Vec<String>,
    /// Each migration measured.
    pub migrations: Vec<MigrationMeasure>,
    /// Check results.
    pub checks: Vec<CheckResult>,
    /// The estimated maintenance window.
    pub window: Window,
    /// The failure drill, with `--drill`.
    pub drill: Option<Drill>,
    /// What failed.
    pub failure: Option<FailureReport>,
    /// `snapguard lint` of the rehearsed migrations, each finding
    /// confirmed or not by what was measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lint: Option<crate::lint::LintReport>,
    /// How to reach the kept scratch database, with `--keep`.
    pub kept: Option<String>,
}

impl RehearsalReport {
    /// An empty report.
    pub fn new() -> RehearsalReport {
        let now = Utc::now();
        RehearsalReport {
            outcome: Verdict::Passed,
            database: String::new(),
            source: String::new(),
            source_version: None,
            target: String::new(),
            roles_created: Vec::new(),
            started_at: now,
            finished_at: now,
            steps: Vec::new(),
            pending: Vec::new(),
            migrations: Vec::new(),
            checks: Vec::new(),
            window: Window::default(),
            drill: None,
            failure: None,
            lint: None,
            kept: None,
        }
    }

    /// Records a step.
    pub fn step(&mut self, step: &str, ok: bool, seconds: f64, detail: impl Into<String>) {
        self.steps.push(StepReport::new(step, ok, seconds, detail));
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serializable")
    }

    /// The human table, for stdout.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        let outcome = self.outcome.as_str().replace('_', " ");
        // A rehearsal that stopped at its source knows no database yet.
        line(if self.database.is_empty() {
            format!("rehearsal: {outcome}")
        } else {
            format!("rehearsal of `{}`: {outcome}", self.database)
        });
        for (label, value) in [("source", &self.source), ("target", &self.target)] {
            if !value.is_empty() {
                line(format!("  {label:<9} {value}"));
            }
        }
        if !self.roles_created.is_empty() {
            line(format!(
                "  roles     created NOLOGIN on the scratch server: {}",
                self.roles_created.join(", ")
            ));
        }
        line(String::new());
        steps_table(&self.steps).into_iter().for_each(&mut line);
        if !self.migrations.is_empty() {
            line(String::new());
            line(format!(
                "  {:<44} {:>8} {:>10} {:>10}  locks (strongest, held)",
                "migration", "seconds", "rows", "WAL"
            ));
            for m in &self.migrations {
                line(format!(
                    "  {:<44} {:>8.2} {:>10} {:>10}  {}",
                    file_name(&m.path),
                    m.seconds,
                    m.rows,
                    m.wal_bytes.map(format_bytes).unwrap_or_else(|| "?".into()),
                    locks_summary(&m.locks)
                ));
                if !m.rewrote.is_empty() {
                    line(format!("  {:<44} rewrote {}", "", m.rewrote.join(", ")));
                }
            }
        }
        if let Some(lint) = self.lint.as_ref().filter(|l| !l.findings.is_empty()) {
            line(String::new());
            for f in &lint.findings {
                line(format!(
                    "  lint {} {} at {}:{}: {}",
                    if f.allowed.is_some() {
                        "allowed"
                    } else {
                        f.level.as_str()
                    },
                    f.rule,
                    f.file,
                    f.line,
                    f.message
                ));
                if let Some(measured) = &f.measured {
                    line(format!("       {measured}"));
                }
            }
        }
        if !self.checks.is_empty() {
            line(String::new());
            for c in &self.checks {
                line(format!(
                    "  check {:<30} {}  expected {}, got {}",
                    c.name,
                    if c.passed { "ok    " } else { "FAILED" },
                    c.expected,
                    c.got
                ));
            }
        }
        line(String::new());
        let w = &self.window;
        if !w.estimated {
            line("  no estimated maintenance window: the rehearsal stopped before it measured the migrations".into());
            if let Some(b) = w.budget_seconds {
                line(format!("  budget.max_downtime {b:.0}s: not compared"));
            }
        } else {
            line(match w.offsite {
                Some(Offsite::BeforeMaintenanceOff) => format!(
                    "  estimated maintenance window {:.1}s = clone {:.1}s + the longer of the snapshot {:.1}s ({}), streamed from the clone, and migrations {:.1}s + checks {:.1}s (offsite: before-maintenance-off)",
                    w.total_seconds,
                    w.clone_seconds,
                    w.snapshot_seconds,
                    w.snapshot_basis,
                    w.migrations_seconds,
                    w.checks_seconds
                ),
                Some(Offsite::After) => format!(
                    "  estimated maintenance window {:.1}s = clone {:.1}s + migrations {:.1}s + checks {:.1}s (offsite: after; the snapshot {:.1}s ({}) finishes after the window)",
                    w.total_seconds,
                    w.clone_seconds,
                    w.migrations_seconds,
                    w.checks_seconds,
                    w.snapshot_seconds,
                    w.snapshot_basis
                ),
                _ => format!(
                    "  estimated maintenance window {:.1}s = snapshot {:.1}s ({}) + clone {:.1}s + migrations {:.1}s + checks {:.1}s",
                    w.total_seconds,
                    w.snapshot_seconds,
                    w.snapshot_basis,
                    w.clone_seconds,
                    w.migrations_seconds,
                    w.checks_seconds
                ),
            });
            line(
                "  (maintenance switches, release and health are not included: they are not run here)"
                    .into(),
            );
            match w.budget_seconds {
                Some(b) => line(format!(
                    "  budget.max_downtime {b:.0}s: {}",
                    if w.total_seconds > b {
                        format!("OVER by {:.1}s", w.total_seconds - b)
                    } else {
                        format!("fits ({:.0}% used)", 100.0 * w.total_seconds / b.max(0.001))
                    }
                )),
                None => line("  no budget.max_downtime set".into()),
            }
        }
        if !w.costliest.is_empty() {
            line(format!("  costliest: {}", w.costliest.join("; ")));
        }
        if let Some(d) = &self.drill {
            line(String::new());
            line("  failure drill".into());
            let fmt = |v: Option<f64>| v.map_or("not run".into(), |s| format!("{s:.2}s"));
            line(format!(
                "    local clone made          {}",
                fmt(d.clone_seconds)
            ));
            line(format!(
                "    rollback by clone swap    {}",
                fmt(d.clone_swap_seconds)
            ));
            line(format!(
                "    rollback by store restore {}{}",
                fmt(d.store_restore_seconds),
                d.snapshot
                    .as_ref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            ));
            for r in &d.rollbacks {
                line(format!("    {}: {} ({})", r.how, r.database, r.outcome));
                if let Some(g) = &r.write_guard {
                    line(format!("      write guard: {g}"));
                }
                line(format!("      journal: {}", r.journal.join(" → ")));
            }
            for v in &d.verified {
                line(format!("    verified: {v}"));
            }
            for e in &d.errors {
                line(format!("    error: {e}"));
            }
        }
        if let Some(f) = &self.failure {
            line(String::new());
            line(format!("  FAILED at {}: {}", f.step, f.message));
            line("  production was not touched.".into());
        }
        if let Some(k) = &self.kept {
            line(String::new());
            line(format!("  {k}"));
        }
        out
    }

    /// The GitHub job summary, in Markdown.
    pub fn markdown(&self) -> String {
        let icon = match self.outcome {
            Verdict::Passed => "✅",
            Verdict::OverBudget => "⏱️",
            Verdict::Failed => "⛔",
        };
        let w = &self.window;
        let budget = w
            .budget_seconds
            .map(|b| format!(" (budget {b:.0}s)"))
            .unwrap_or_default();
        let estimate = if w.estimated {
            format!(
                "Estimated maintenance window **{:.1}s**{budget}.",
                w.total_seconds
            )
        } else {
            format!(
                "No estimated maintenance window: the rehearsal stopped before it measured the migrations{budget}."
            )
        };
        let what = if self.database.is_empty() {
            String::new()
        } else {
            format!(
                "`{}` from {} on {}. ",
                self.database, self.source, self.target
            )
        };
        let mut md = format!(
            "## {icon} snapguard rehearsal: {}\n\n{what}{estimate}\n\n",
            self.outcome.as_str().replace('_', " "),
        );
        md.push_str(&steps_markdown(&self.steps));
        if !self.migrations.is_empty() {
            md.push_str("\n| migration | seconds | rows | WAL | rewrote | locks |\n|---|---:|---:|---:|---|---|\n");
            for m in &self.migrations {
                md.push_str(&format!(
                    "| `{}` | {:.2} | {} | {} | {} | {} |\n",
                    m.path,
                    m.seconds,
                    m.rows,
                    m.wal_bytes.map(format_bytes).unwrap_or_else(|| "?".into()),
                    m.rewrote.join(", "),
                    locks_summary(&m.locks)
                ));
            }
        }
        md.push_str(&checks_markdown(&self.checks));
        if let Some(d) = &self.drill {
            md.push_str(&format!(
                "\nFailure drill: clone swap {}, store restore {}\n",
                d.clone_swap_seconds
                    .map_or("not run".into(), |s| format!("{s:.2}s")),
                d.store_restore_seconds
                    .map_or("not run".into(), |s| format!("{s:.2}s"))
            ));
        }
        if let Some(f) = &self.failure {
            md.push_str(&format!(
                "\n**Failed at {}** (production was not touched):\n\n```\n{}\n```\n",
                f.step, f.message
            ));
        }
        md
    }

    /// The summary, an error annotation on a failing migration, and the
    /// `outcome` output under GitHub Actions.
    pub fn publish_to_github(&self, gh: &GitHub) {
        let outputs = [
            ("outcome", self.outcome.as_str().to_owned()),
            (
                "window-seconds",
                // Empty when nothing was estimated: 0.0 would read as a
                // window that fits any budget.
                if self.window.estimated {
                    format!("{:.1}", self.window.total_seconds)
                } else {
                    String::new()
                },
            ),
        ];
        publish(
            gh,
            "rehearsal",
            self.failure.as_ref(),
            &outputs,
            &self.markdown(),
        );
    }
}

impl Default for RehearsalReport {
    fn default() -> Self {
        Self::new()
    }
}

/// `public.users ACCESS EXCLUSIVE 2.01s, …`, or why nothing is listed.
fn locks_summary(locks: &[Hold]) -> String {
    if locks.is_empty() {
        return "none seen (held < 50 ms, if any)".into();
    }
    locks
        .iter()
        .take(3)
        .map(|h| format!("{} {} {:.2}s", h.table, h.mode.as_sql(), h.seconds))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The last part of a migration's path: the table stays readable; the
/// JSON report keeps the whole path.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
