//! Why a deploy stopped, as typed errors: a step's failure keeps its source
//! error (rendered once, at the edge: the report, the journal, `main`'s
//! `caused by:` lines), and an incomplete rollback keeps each of its errors.

use std::time::Instant;

use super::journal::Step;
use crate::error::{BoxError, Error, chain};
use crate::maintenance::MaintenanceError;
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
    bullets(
        errors
            .iter()
            .map(|e| &**e as &(dyn std::error::Error + 'static)),
    )
}

/// Each error and its causes on one line, as an indented list.
fn bullets<'e>(errors: impl Iterator<Item = &'e (dyn std::error::Error + 'static)>) -> String {
    errors.map(|e| format!("\n  - {}", chain(e))).collect()
}

/// Maintenance switches that would not go off: the application stays in
/// maintenance and a human must act. Each switch's error keeps its source.
#[derive(Debug, thiserror::Error)]
#[error(
    "{}maintenance could not be switched off:{}",
    if *.deploy_succeeded { "the deploy succeeded but " } else { "" },
    bullets(.failures.iter().map(|e| e as &(dyn std::error::Error + 'static)))
)]
pub struct MaintenanceStillOn {
    /// Every step passed (the release is live) before maintenance off.
    pub deploy_succeeded: bool,
    /// Each switch that failed, in order.
    pub failures: Vec<MaintenanceError>,
}

/// `recover` rolled the deploy back.
#[derive(Debug, thiserror::Error)]
#[error("deploy {deploy_id} was rolled back by `recover`: {failure}")]
pub struct RecoveredByRollback {
    /// The deploy.
    pub deploy_id: String,
    /// Why it was rolled back, in the journal's words (the runner that saw
    /// the error is gone).
    pub failure: String,
}

/// The runner had rolled the deploy back but could not close its journal;
/// `recover` closed it from the database's record.
#[derive(Debug, thiserror::Error)]
#[error(
    "deploy {deploy_id} had been rolled back by its runner, which could not write that to the store; its journal is closed now"
)]
pub struct RolledBackByRunner {
    /// The deploy.
    pub deploy_id: String,
}

/// A deploy passed its steps but no copy of the database before it is
/// left: nothing can roll it back.
#[derive(Debug, thiserror::Error)]
#[error(
    "deploy {deploy_id} passed its steps, but no copy of the database before it exists: {why}; {}",
    if *.maintenance_off { "maintenance is off" } else { "maintenance stays on (the policy `before-maintenance-off` never ends the window without a committed snapshot)" }
)]
pub struct NoCopyBefore {
    /// The deploy.
    pub deploy_id: String,
    /// Why the copy is gone.
    pub why: &'static str,
    /// Whether maintenance is off.
    pub maintenance_off: bool,
}

/// `recover` will not roll back (or finish) over history the deploy did
/// not create.
#[derive(Debug, thiserror::Error)]
#[error(
    "not {} deploy {deploy_id}: {why}. {} Look at the database; to keep it as it is and close this deploy: `{accept_current}`",
    if *.finishing { "finishing" } else { "rolling back" },
    if *.finishing { "Finishing would record its release as live, which it may not be." } else { "Rolling back would silently undo it." }
)]
pub struct NotOurHistory {
    /// The deploy.
    pub deploy_id: String,
    /// The deploy had passed its steps and would be closed as a success.
    pub finishing: bool,
    /// What the database says.
    pub why: String,
    /// The command that keeps the database as it is.
    pub accept_current: String,
}

/// The write guard found possible writes after the snapshot, and the
/// restore was not forced.
#[derive(Debug, thiserror::Error)]
#[error(
    "not restoring: someone may have written to `{database}` after the snapshot, and restoring would lose it:{}\nLook at what changed. Then either keep the database as it is now and close the deploy with `{accept_current}`, or restore anyway, losing those writes, with `{force}` (the current database is kept under a new name)",
    .reasons.iter().map(|r| format!("\n  - {r}")).collect::<String>()
)]
pub struct WritesAfterSnapshot {
    /// The database.
    pub database: String,
    /// Each reason to think someone wrote.
    pub reasons: Vec<String>,
    /// The command that keeps the database as it is.
    pub accept_current: String,
    /// The command that restores anyway.
    pub force: String,
}

/// The deploy's snapshot is a pgBackRest restore point, and the config
/// no longer says how to drive pgBackRest.
#[derive(Debug, thiserror::Error)]
#[error(
    "the deploy's snapshot is {snapshot}, but `snapshot.provider` is no longer `{provider}`: put its `snapshot.{provider}` section back and run `recover` again"
)]
pub struct ProviderChanged {
    /// The snapshot, as the error names it.
    pub snapshot: String,
    /// The provider that took it.
    pub provider: &'static str,
}

/// The database server does not answer, and the deploy's rollback was
/// restoring the cluster to its pgBackRest restore point when its runner
/// stopped: the restore is finished by hand, and the deploy closed keeping
/// the database it leaves (`recover --accept-current`).
#[derive(Debug, thiserror::Error)]
#[error(
    "the database server does not answer, and deploy {deploy_id} was restoring the whole cluster to pgBackRest restore point `{point}` when its runner stopped. Finish that restore by hand; the cluster is then as it was before the deploy{}:\n  # if the server still runs, stop it:\n  {stop}\n  {restore}\n  {start}\n  # then close the deploy, keeping the restored database (maintenance goes off):\n  {accept_current}",
    if *.released { ", but its release ran and was not rolled back: put the previous release back by hand (`release.rollback`) before closing" } else { "" }
)]
pub struct PitrInterrupted {
    /// The deploy.
    pub deploy_id: String,
    /// The restore point.
    pub point: String,
    /// The stop command.
    pub stop: String,
    /// The `pgbackrest restore` command.
    pub restore: String,
    /// The start command.
    pub start: String,
    /// `snapguard recover --accept-current`, as invoked.
    pub accept_current: String,
    /// The deploy's release ran and was not rolled back.
    pub released: bool,
    /// Why the server does not answer.
    #[source]
    pub source: Error,
}

/// The database may have changed and the journal holds no snapshot to
/// restore.
#[derive(Debug, thiserror::Error)]
#[error("the database may have changed but no snapshot was recorded")]
pub struct NoSnapshotRecorded;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::apply::{Applied, Failure};

    fn applied(version: &str) -> Applied {
        Applied {
            version: version.into(),
            path: format!("{version}_x.sql"),
            seconds: 0.1,
            retries: 0,
            rows: 0,
        }
    }

    fn failed(applied: Vec<Applied>, rolled_back: bool) -> MigrateError {
        MigrateError::Apply(ApplyError::Migration {
            failure: Box::new(Failure {
                path: "3_x.sql".into(),
                line: 7,
                statement: "ALTER TABLE t ADD CHECK (false)".into(),
                sqlstate: "23514".into(),
                message: "check constraint is violated".into(),
                detail: None,
                hint: None,
            }),
            applied,
            gave_up_on_locks: false,
            rolled_back,
        })
    }

    #[test]
    fn a_migrate_failure_says_whether_the_database_changed() {
        let changed = |e, all_or_nothing| {
            let mut report = Report::new("shop");
            let f = StepFailure::from_migrate(e, all_or_nothing, &mut report);
            (f.changed, report.migrations.len(), f.at)
        };
        // Per migration: the ones before the failing one stay committed.
        assert_eq!(
            changed(failed(vec![applied("1"), applied("2")], true), false),
            (true, 2, Some(("3_x.sql".into(), 7)))
        );
        // The first one failed and was rolled back: counted as a change
        // (the rollback restores) unless the whole run was one transaction.
        assert!(changed(failed(vec![], true), false).0);
        // `transaction: all` rolled everything back (it reports nothing as
        // applied then): nothing changed.
        assert!(!changed(failed(vec![], true), true).0);
        // Cancelled before the first migration of `transaction: all`.
        let cancelled = MigrateError::Apply(ApplyError::Cancelled {
            applied: vec![],
            during: None,
        });
        assert!(!changed(cancelled, true).0);
        // Refused before touching the database.
        let locked = MigrateError::Locked {
            database: "shop".into(),
            waited: std::time::Duration::from_secs(1),
        };
        assert_eq!(changed(locked, false), (false, 0, None));
    }

    #[test]
    fn an_earlier_run_of_the_migrator_that_committed_is_a_change() {
        let mut report = Report::new("shop");
        report.migrations.push(applied("1"));
        let locked = MigrateError::Locked {
            database: "shop".into(),
            waited: std::time::Duration::from_secs(1),
        };
        assert!(StepFailure::from_migrate(locked, false, &mut report).changed);
    }
}
