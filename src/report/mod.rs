//! The deploy report: what happened, step by step, as a table on stdout,
//! as JSON (`--report FILE`, and `report.json` in the store), and under
//! GitHub Actions as a job summary and step outputs.

pub mod events;
pub mod step;

use chrono::{DateTime, Utc};

use crate::checks::CheckResult;
use crate::ci::{GitHub, table_cell};
use crate::migrate::apply::Applied;
use crate::progress::format_bytes;

pub use crate::error::Outcome;

/// One step's line in the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    /// The step.
    pub step: String,
    /// `ok`, `failed` or `skipped`.
    pub status: String,
    /// Seconds it took.
    pub seconds: f64,
    /// A few words: what it did or why it failed.
    pub detail: String,
}

/// The snapshot the deploy took.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotSummary {
    /// Its id.
    pub id: String,
    /// The archive's address.
    pub uri: String,
    /// Bytes stored.
    pub size_bytes: u64,
    /// The local clone, when one was made.
    pub clone: Option<String>,
    /// Seconds the snapshot took.
    pub seconds: f64,
    /// Seconds the local clone took, when one was made.
    pub clone_seconds: Option<f64>,
    /// How its files were made (`copy`, or `clone` where the file system
    /// shares blocks), when one was made.
    pub clone_method: Option<&'static str>,
    /// `snapshot.offsite` as the deploy ran it: `before-migrate` (dumped
    /// before the migrations), else dumped from the clone meanwhile.
    pub offsite: crate::config::Offsite,
    /// The manifest is written: the snapshot can be restored. A snapshot
    /// streamed from the clone is listed from its start.
    pub committed: bool,
}

impl SnapshotSummary {
    /// A provider's snapshot (a restore point, an RDS snapshot): taken
    /// before the migrations, restorable once taken, no clone of ours.
    pub fn of_provider(id: String, uri: String, seconds: f64) -> SnapshotSummary {
        SnapshotSummary {
            id,
            uri,
            size_bytes: 0,
            clone: None,
            seconds,
            clone_seconds: None,
            clone_method: None,
            offsite: crate::config::Offsite::BeforeMigrate,
            committed: true,
        }
    }
}

/// What failed, and where in the code or migrations.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailureReport {
    /// The step that failed.
    pub step: String,
    /// The error chain.
    pub message: String,
    /// The migration file, when a migration failed.
    pub file: Option<String>,
    /// Its line.
    pub line: Option<usize>,
}

/// What the rollback did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RollbackReport {
    /// `nothing to restore`, `clone swap` or `store restore`.
    pub database: String,
    /// Where the failed database is kept, when it was replaced.
    pub failed_database_kept_as: Option<String>,
    /// Seconds the database restore took.
    pub restore_seconds: f64,
    /// The write guard's verdict before a restore: why it found no write
    /// after the snapshot, or what it found.
    pub write_guard: Option<String>,
    /// Whether `release.rollback` ran.
    pub release_rolled_back: bool,
    /// Errors that kept the rollback from finishing.
    pub errors: Vec<String>,
}

/// The whole report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The deploy.
    pub deploy_id: Option<String>,
    /// The application database.
    pub database: String,
    /// The release shipped.
    pub release: Option<String>,
    /// The release live before.
    pub previous_release: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// Seconds the application was in maintenance.
    pub downtime_seconds: Option<f64>,
    /// The steps, in order.
    pub steps: Vec<StepReport>,
    /// The snapshot.
    pub snapshot: Option<SnapshotSummary>,
    /// Migrations pending at the start.
    pub pending: Vec<String>,
    /// Migrations applied.
    pub migrations: Vec<Applied>,
    /// Check results (before, after, compare, built-in).
    pub checks: Vec<CheckResult>,
    /// What failed.
    pub failure: Option<FailureReport>,
    /// `snapguard lint` of the pending migrations, from preflight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lint: Option<crate::lint::LintReport>,
    /// What the rollback did.
    pub rollback: Option<RollbackReport>,
    /// What a human must do next, as commands.
    pub next_steps: Vec<String>,
}

impl Report {
    /// An empty report for a deploy starting now.
    pub fn new(database: &str) -> Report {
        let now = Utc::now();
        Report {
            deploy_id: None,
            database: database.to_owned(),
            release: None,
            previous_release: None,
            outcome: Outcome::Succeeded,
            started_at: now,
            finished_at: now,
            downtime_seconds: None,
            steps: Vec::new(),
            snapshot: None,
            pending: Vec::new(),
            migrations: Vec::new(),
            checks: Vec::new(),
            failure: None,
            lint: None,
            rollback: None,
            next_steps: Vec::new(),
        }
    }

    /// Records a step.
    pub fn step(&mut self, step: &str, ok: bool, seconds: f64, detail: impl Into<String>) {
        self.steps.push(StepReport::new(step, ok, seconds, detail));
    }

    /// The report as pretty JSON.
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
        // A deploy refused before it began has no id yet.
        line(match &self.deploy_id {
            Some(id) => format!(
                "deploy {id} of `{}`: {}",
                self.database,
                self.outcome.as_str().replace('_', " ")
            ),
            None => format!(
                "deploy of `{}` (not begun, no id): {}",
                self.database,
                self.outcome.as_str().replace('_', " ")
            ),
        });
        if let Some(r) = &self.release {
            line(format!(
                "  release   {r} (previous: {})",
                self.previous_release.as_deref().unwrap_or("none recorded")
            ));
        }
        if let Some(d) = self.downtime_seconds {
            line(format!("  downtime  {d:.1}s"));
        }
        if let Some(s) = &self.snapshot {
            line(format!(
                "  snapshot  {} ({}) at {}",
                s.id,
                format_bytes(s.size_bytes),
                s.uri
            ));
            if let Some(c) = &s.clone {
                line(format!("  clone     {c}"));
            }
        }
        steps_table(&self.steps).into_iter().for_each(&mut line);
        for m in &self.migrations {
            line(format!("  migration {} ({:.2}s)", m.path, m.seconds));
        }
        for c in self.checks.iter().filter(|c| !c.passed) {
            line(format!(
                "  check FAILED {} ({}): expected {}, got {}",
                c.name, c.defined_at, c.expected, c.got
            ));
        }
        if let Some(f) = &self.failure {
            line(format!("  failed at {}: {}", f.step, f.message));
        }
        if let Some(r) = &self.rollback {
            line(format!(
                "  rollback: database {} ({:.1}s){}{}",
                r.database,
                r.restore_seconds,
                r.failed_database_kept_as
                    .as_ref()
                    .map(|k| format!(", failed database kept as `{k}`"))
                    .unwrap_or_default(),
                if r.release_rolled_back {
                    ", previous release put back"
                } else {
                    ""
                }
            ));
            if let Some(g) = &r.write_guard {
                line(format!("  write guard: {g}"));
            }
            for e in &r.errors {
                line(format!("  rollback error: {e}"));
            }
        }
        if !self.next_steps.is_empty() {
            line("  next steps, by hand:".into());
            for s in &self.next_steps {
                line(format!("    {s}"));
            }
        }
        out
    }

    /// The GitHub job summary, in Markdown.
    pub fn markdown(&self) -> String {
        let icon = match self.outcome {
            Outcome::Succeeded | Outcome::NothingToDeploy => "✅",
            Outcome::RolledBack | Outcome::AcceptedCurrent => "↩️",
            Outcome::RollbackIncomplete | Outcome::OffsiteIncomplete => "🚨",
            Outcome::PreflightFailed | Outcome::Locked => "⛔",
            Outcome::Failed => "❌",
        };
        let mut md = format!(
            "## {icon} snapguard deploy: {}\n\n",
            self.outcome.as_str().replace('_', " ")
        );
        md.push_str(&format!(
            "Database `{}`, deploy `{}`, release `{}` (previous `{}`)",
            self.database,
            self.deploy_id.as_deref().unwrap_or("-"),
            self.release.as_deref().unwrap_or("-"),
            self.previous_release.as_deref().unwrap_or("-")
        ));
        if let Some(d) = self.downtime_seconds {
            md.push_str(&format!(", downtime {d:.1}s"));
        }
        md.push_str("\n\n");
        md.push_str(&steps_markdown(&self.steps));
        if !self.migrations.is_empty() {
            md.push_str("\n| migration | seconds |\n|---|---:|\n");
            for m in &self.migrations {
                md.push_str(&format!("| `{}` | {:.2} |\n", m.path, m.seconds));
            }
        }
        md.push_str(&checks_markdown(&self.checks));
        if let Some(s) = &self.snapshot {
            md.push_str(&format!(
                "\nSnapshot `{}` ({}) at `{}`\n",
                s.id,
                format_bytes(s.size_bytes),
                s.uri
            ));
        }
        if let Some(f) = &self.failure {
            md.push_str(&format!(
                "\n**Failed at {}**:\n\n```\n{}\n```\n",
                f.step, f.message
            ));
        }
        if let Some(r) = &self.rollback {
            md.push_str(&format!("\nRollback: {}", r.database));
            if let Some(g) = &r.write_guard {
                md.push_str(&format!("; write guard: {g}"));
            }
            md.push('\n');
        }
        if !self.next_steps.is_empty() {
            md.push_str("\n**Manual action needed:**\n\n```sh\n");
            for s in &self.next_steps {
                md.push_str(s);
                md.push('\n');
            }
            md.push_str("```\n");
        }
        if let Some(lint) = self.lint.as_ref().filter(|l| !l.findings.is_empty()) {
            md.push('\n');
            md.push_str(&crate::lint::output::markdown(lint));
        }
        md
    }

    /// The versions this deploy left applied: none once its rollback put
    /// the database back, although they ran (`migrations` keeps them).
    pub fn left_applied(&self) -> Vec<&str> {
        let database_restored = self
            .rollback
            .as_ref()
            .is_some_and(|r| r.failed_database_kept_as.is_some());
        if database_restored || self.outcome == Outcome::RolledBack {
            return Vec::new();
        }
        self.migrations.iter().map(|m| m.version.as_str()).collect()
    }

    /// Writes outputs, the summary and an error annotation under GitHub
    /// Actions. Failures to write are logged, not fatal: the deploy's own
    /// outcome matters more than its summary.
    pub fn publish_to_github(&self, gh: &GitHub) {
        let outputs = [
            ("deploy-id", self.deploy_id.clone().unwrap_or_default()),
            ("outcome", self.outcome.as_str().to_owned()),
            (
                "snapshot-id",
                self.snapshot
                    .as_ref()
                    .map(|s| s.id.clone())
                    .unwrap_or_default(),
            ),
            (
                "snapshot-uri",
                self.snapshot
                    .as_ref()
                    .map(|s| s.uri.clone())
                    .unwrap_or_default(),
            ),
            ("applied", self.left_applied().join(",")),
        ];
        publish(
            gh,
            "deploy",
            self.failure.as_ref(),
            &outputs,
            &self.markdown(),
        );
    }
}

impl StepReport {
    /// A step that passed (`ok`) or failed.
    pub fn new(step: &str, ok: bool, seconds: f64, detail: impl Into<String>) -> StepReport {
        StepReport {
            step: step.to_owned(),
            status: if ok { "ok" } else { "failed" }.to_owned(),
            seconds,
            detail: detail.into(),
        }
    }
}

/// The steps as a Markdown table.
/// The steps as the lines of a text table, as wide as the longest step's
/// name (the rollback's are long); none when there are no steps.
pub(crate) fn steps_table(steps: &[StepReport]) -> Vec<String> {
    if steps.is_empty() {
        return Vec::new();
    }
    let width = steps
        .iter()
        .map(|s| s.step.len())
        .max()
        .unwrap_or(0)
        .max(18);
    let header = format!(
        "  {:<width$} {:<7} {:>9}  detail",
        "step", "status", "seconds"
    );
    let rows = steps.iter().map(|s| {
        format!(
            "  {:<width$} {:<7} {:>9.2}  {}",
            s.step, s.status, s.seconds, s.detail
        )
    });
    std::iter::once(header).chain(rows).collect()
}

pub(crate) fn steps_markdown(steps: &[StepReport]) -> String {
    let mut md = String::from("| step | status | seconds | detail |\n|---|---|---:|---|\n");
    for s in steps {
        md.push_str(&format!(
            "| {} | {} | {:.2} | {} |\n",
            s.step,
            s.status,
            s.seconds,
            table_cell(&s.detail)
        ));
    }
    md
}

/// The check results as a Markdown table (nothing when there are none).
pub(crate) fn checks_markdown(checks: &[CheckResult]) -> String {
    if checks.is_empty() {
        return String::new();
    }
    let mut md = String::from("\n| check | result | expected | got |\n|---|---|---|---|\n");
    for c in checks {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            table_cell(&c.name),
            if c.passed { "ok" } else { "**FAILED**" },
            table_cell(&c.expected),
            table_cell(&c.got)
        ));
    }
    md
}

/// Under GitHub Actions: an error annotation for a failure (on the
/// migration's file and line when known), the outputs and the job summary.
/// Failures to write are logged, not fatal: the command's own outcome
/// matters more than its summary.
pub(crate) fn publish(
    gh: &GitHub,
    command: &str,
    failure: Option<&FailureReport>,
    outputs: &[(&str, String)],
    markdown: &str,
) {
    if let Some(f) = failure {
        gh.error(
            f.file.as_deref().zip(f.line),
            &format!("snapguard {command} failed at {}: {}", f.step, f.message),
        );
    }
    if let Err(e) = gh.set_outputs(outputs) {
        tracing::warn!(error = %e, "cannot write $GITHUB_OUTPUT");
    }
    if let Err(e) = gh.append_summary(markdown) {
        tracing::warn!(error = %e, "cannot write $GITHUB_STEP_SUMMARY");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_line_detail_stays_in_its_row() {
        let steps = [StepReport::new(
            "migrate",
            false,
            1.0,
            "2_bad.sql failed:\nERROR: column \"x\" | y\r\nLINE 1: ...\n",
        )];
        let md = steps_markdown(&steps);
        assert_eq!(md.lines().count(), 3, "{md}");
        assert!(
            md.ends_with(
                "| migrate | failed | 1.00 | 2_bad.sql failed:<br>ERROR: column \"x\" \\| y<br>LINE 1: ... |\n"
            ),
            "{md}"
        );
    }
}
