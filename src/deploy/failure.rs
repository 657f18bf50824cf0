//! Why a deploy stopped, as typed errors: a step's failure keeps its source
//! error (rendered once, at the edge: the report, the journal, `main`'s
//! `caused by:` lines), and an incomplete rollback keeps each of its errors.

use std::time::Instant;

use super::journal::Step;
use crate::error::{BoxError, chain};
use crate::migrate::apply::ApplyError;
use crate::migrate::migrator::MigrateError;
use crate::report::events::Events;
use crate::report::{FailureReport, Report};

/// A step that failed, and whether the database may have changed.
#[derive(Debug, thiserror::Error)]
#[error("{} failed", .step.name())]
pub struct StepFailure {
    /// The step.
    pub step: Step,
    /// Whether the database may have changed since the snapshot.
    pub changed: bool,
    /// What went wrong.
    #[source]
    pub source: BoxError,
    /// The migration file and line, when a migration failed.
    pub at: Option<(String, usize)>,
}

/// A signal asked the deploy to stop.
#[derive(Debug, thiserror::Error)]
#[error("cancelled by a signal")]
pub struct Cancelled;

/// A signal came while a step ran to its end (it stops only between its
/// own units of work); the next step did not start.
#[derive(Debug, thiserror::Error)]
#[error("cancelled by a signal; {next} did not start")]
pub struct CancelledBefore {
    /// The step that did not start.
    pub next: &'static str,
}

/// After-checks that did not pass, one line each.
#[derive(Debug, thiserror::Error)]
#[error("check(s) failed: {}", .0.join("; "))]
pub struct ChecksFailed(pub Vec<String>);

/// `snapshot.offsite: before-maintenance-off` and the store snapshot of
/// the clone failed: the deploy may not end without one.
#[derive(Debug, thiserror::Error)]
#[error(
    "`snapshot.offsite: before-maintenance-off` requires the store snapshot, and its upload failed"
)]
pub struct OffsiteRequired(#[source] pub crate::snapshot::take::SnapshotError);

/// `rehearse --drill` ends the steps here, to run the rollback.
#[derive(Debug, thiserror::Error)]
#[error("drill: rolling back as a failed deploy would")]
pub struct Drill;

/// An error with what was being done when it happened.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct During {
    /// What was being done.
    pub what: String,
    /// What went wrong.
    #[source]
    pub source: BoxError,
}

/// The rollback could not finish; a human must act.
#[derive(Debug, thiserror::Error)]
#[error("the rollback did not finish:{}", render_list(.errors))]
pub struct IncompleteRollback {
    /// Each error that kept it from finishing, in order.
    pub errors: Vec<BoxError>,
    /// The failure that started it (none for `recover`, which only has the
    /// journal's words for it).
    #[source]
    pub cause: Option<StepFailure>,
}

fn render_list(errors: &[BoxError]) -> String {
    errors
        .iter()
        .map(|e| format!("\n  - {}", chain(&**e)))
        .collect()
}

impl StepFailure {
    /// `step` failed before changing the database.
    pub fn unchanged(step: Step, e: impl Into<BoxError>) -> Self {
        StepFailure {
            step,
            changed: false,
            source: e.into(),
            at: None,
        }
    }

    /// `step` failed after the database may have changed.
    pub fn changed(step: Step, e: impl Into<BoxError>) -> Self {
        StepFailure {
            changed: true,
            ..Self::unchanged(step, e)
        }
    }

    /// A signal stopped the deploy before `step`.
    pub fn cancelled(step: Step, changed: bool) -> Self {
        StepFailure {
            changed,
            ..Self::unchanged(step, Cancelled)
        }
    }

    /// A signal that came during `during`, noticed once it ended: the
    /// failure is `during`'s, the cause names `next` as not started.
    pub fn cancelled_after(during: Step, next: Step, changed: bool) -> Self {
        StepFailure {
            changed,
            ..Self::unchanged(during, CancelledBefore { next: next.name() })
        }
    }

    /// The cause on one line: what the report and the journal keep.
    pub fn message(&self) -> String {
        chain(&*self.source)
    }

    /// The report's failure section.
    pub fn report(&self) -> FailureReport {
        let (file, line) = self.at.clone().unzip();
        FailureReport {
            step: self.step.name().to_owned(),
            message: self.message(),
            file,
            line,
        }
    }

    /// Reports the failure as its step's failed row (the step started at
    /// `started`), and hands it back to be returned.
    pub fn recorded(self, events: &Events, report: &mut Report, started: Instant) -> Self {
        let seconds = started.elapsed().as_secs_f64();
        events.finished(report, self.step, false, seconds, self.message());
        self
    }

    /// The database changed unless the migrator stopped before changing
    /// it, or `transaction: all` rolled everything back.
    pub fn from_migrate(e: MigrateError, all_or_nothing: bool, report: &mut Report) -> Self {
        let rolled_back_whole = all_or_nothing
            && match &e {
                MigrateError::Apply(ApplyError::Migration {
                    applied,
                    rolled_back: true,
                    ..
                }) => applied.is_empty(),
                MigrateError::Apply(ApplyError::Cancelled {
                    applied,
                    during: None,
                }) => applied.is_empty(),
                _ => false,
            };
        if let MigrateError::Apply(ApplyError::Migration { applied, .. }) = &e
            && !all_or_nothing
        {
            report.migrations.extend(applied.iter().cloned());
        }
        let at = e.failed_at();
        // Earlier runs of the migrator (one per migration) committed.
        let earlier = !report.migrations.is_empty();
        StepFailure {
            step: Step::Migrate,
            changed: earlier || !(e.changed_nothing() || rolled_back_whole),
            source: Box::new(e),
            at,
        }
    }
}
