//! `snapguard deploy`: the guarded pipeline (DESIGN section 4).
//!
//! Preflight ([`preflight`], which `plan` runs too) changes nothing (exit
//! 3) and takes the deploy lock (exit 6). Then MaintenanceOn → Snapshot →
//! Migrate → Verify → Release → Health → MaintenanceOff, each step
//! journaled in the store before it starts. With a local clone the
//! Snapshot step only makes the clone, and the store snapshot is the dump
//! of the clone, streamed beside the next steps ([`offsite`]); the window
//! waits for its commit (`snapshot.offsite: before-maintenance-off`) or
//! the deploy does, after maintenance off (`after`). Any failure or cancel after MaintenanceOn rolls back
//! ([`rollback`]): the database (nothing / clone swap / store restore),
//! then the release, then maintenance, and only then is the deploy closed.
//!
//! The pipeline is one sequential function (the steps are in [`steps`]
//! and report through one event sink) that checks the cancel handle
//! between steps and hands it to the steps that can stop early; nothing
//! ever `select!`s the pipeline away, so the rollback always runs. `rehearse`
//! runs the same pipeline against a scratch copy, observing the migrate
//! step ([`observe`]).

mod children;
mod close;
mod failure;
pub mod journal;
pub mod lock;
pub mod marker;
pub mod observe;
mod offsite;
pub mod plan;
pub mod preflight;
mod recover;
pub mod rollback;
mod steps;
mod watch;

pub(crate) use children::recording_children;
pub use preflight::Found;
pub use recover::RecoverOptions;

use chrono::Utc;
use tokio_postgres::Client;

use self::failure::StepFailure;
use self::journal::{Journal, State, Step};
use self::observe::MigrateObserver;
use self::offsite::Upload;
use self::preflight::{Prepared, Runner};
use self::watch::Watch;
use crate::cancel::Cancel;
use crate::ci;
use crate::config::{Config, Offsite};
use crate::db::ConnInfo;
use crate::error::{Error, chain};
use crate::http::HttpClient;
use crate::maintenance::Context;
use crate::release::HookEnv;
use crate::report::events::Events;
use crate::report::{FailureReport, Outcome, Report};
use crate::snapshot::guard;
use crate::store::Store;

/// What the command line adds to the config.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// The release id (`--release`); else `release.id`, else the CI's.
    pub release: Option<String>,
    /// Restore even when the write guard found writes after the snapshot.
    pub force: bool,
    /// Roll back after the last step as a failed deploy would (`rehearse
    /// --drill` on a scratch copy): the deploy's own rollback, timed.
    pub drill: bool,
    /// A lint error stops preflight (exit 3). A rehearsal records the
    /// findings instead, to confirm or refute them by measurement.
    pub lint_blocks: bool,
}

/// Everything a deploy and its rollback share.
pub struct Deployer<'a> {
    pub(crate) config: &'a Config,
    pub(crate) store: &'a Store,
    pub(crate) db: &'a ConnInfo,
    pub(crate) admin_info: ConnInfo,
    pub(crate) http: HttpClient,
    /// Where the steps report: the report, the log, GitHub Actions.
    pub(crate) events: Events,
}

impl<'a> Deployer<'a> {
    /// A deployer for the configured database and store.
    pub fn new(config: &'a Config, store: &'a Store) -> Result<Self, Error> {
        let db = config.database_url()?;
        Ok(Deployer {
            config,
            store,
            db,
            admin_info: db.with_dbname(&config.database.maintenance_db),
            http: HttpClient::new(),
            events: Events::new(ci::GitHub::from_env()),
        })
    }

    /// Connects to the maintenance database and takes the deploy lock.
    pub(crate) async fn lock(&self, step: &'static str) -> Result<Client, Error> {
        lock::for_command(&self.admin_info, self.db, step, false).await
    }

    /// Journals that `step` starts, with what `watch` has seen, and under
    /// GitHub Actions opens its log group (closing the previous one).
    pub(crate) async fn begin(
        &self,
        watch: &mut Watch,
        journal: &mut Journal,
        step: Step,
    ) -> Result<(), journal::JournalError> {
        self.events.started(step);
        watch.copy_into(self, journal).await;
        watch.write(journal.begin(step, self.store)).await
    }

    pub(crate) fn context<'c>(&'c self, admin: &'c Client, journal: &Journal) -> Context<'c> {
        Context {
            admin,
            database: self.db.dbname(),
            http: &self.http,
            env: hook_env(journal).vars(),
        }
    }

    /// Runs the deploy. `Ok` for success and "nothing to deploy"; the
    /// report is returned either way and also inside rollback errors.
    pub async fn deploy(
        &self,
        options: &DeployOptions,
        cancel: &Cancel,
    ) -> (Report, Result<(), Error>) {
        self.pipeline(options, cancel, None).await
    }

    /// The deploy, with `observer` watching its migrate step (`rehearse`).
    pub async fn pipeline(
        &self,
        options: &DeployOptions,
        cancel: &Cancel,
        observer: Option<&mut dyn MigrateObserver>,
    ) -> (Report, Result<(), Error>) {
        let mut report = Report::new(self.db.dbname());
        let (ok, result) = match self
            .preflight(options, &mut report, Runner::Deploy, cancel)
            .await
        {
            Ok((found, None)) => {
                tracing::info!(
                    "{}; maintenance was not switched on",
                    found.nothing_reason()
                );
                (Outcome::NothingToDeploy, Ok(()))
            }
            Ok((_, Some(prepared))) => {
                let result = self
                    .run(prepared, options, &mut report, cancel, observer)
                    .await;
                self.events.end();
                (Outcome::Succeeded, result)
            }
            Err(e) => {
                report.failure = Some(FailureReport {
                    step: Step::Preflight.name().into(),
                    message: chain(&e),
                    file: None,
                    line: None,
                });
                (Outcome::Succeeded, Err(e))
            }
        };
        report.outcome = Outcome::of(&result, ok);
        report.finished_at = Utc::now();
        (report, result)
    }

    async fn run(
        &self,
        mut p: Prepared<'_>,
        options: &DeployOptions,
        report: &mut Report,
        cancel: &Cancel,
        observer: Option<&mut dyn MigrateObserver>,
    ) -> Result<(), Error> {
        let deploy_id = p.journal.deploy_id.clone();
        let snapshotter = p.snapshotter.clone();
        let mut upload = Upload::new(&snapshotter, self.admin_info.clone());
        let failure = recording_children(
            self.store,
            &deploy_id,
            self.steps(&mut p, options, report, cancel, observer, &mut upload),
        )
        .await;
        // Watching ends with the steps (on success, once the deploy is closed).
        let sampler = p.watch.sampler.take();
        let Err(failed) = failure else {
            report.downtime_seconds = p.downtime_from.map(|t| t.elapsed().as_secs_f64());
            return recording_children(
                self.store,
                &deploy_id,
                self.close_success(&mut p, report, &mut upload),
            )
            .await;
        };
        if failed.step == Step::Drill {
            // A rehearsal's drill asked for this rollback: nothing failed.
            tracing::info!("drill: rolling back as a failed deploy would");
        } else {
            tracing::error!(step = failed.step.name(), error = %failed.message(), "deploy failed; rolling back");
        }
        // The clone's dump holds a session on the clone, which the swap
        // needs free: the rollback starts once the upload ended (at once
        // on a signal, which stops it too). A committed upload is the
        // store snapshot the rollback falls back on.
        if upload.pending() {
            tracing::info!(
                "waiting for the store snapshot's upload from the clone, which the rollback swaps in"
            );
        }
        recording_children(
            self.store,
            &deploy_id,
            self.settle_upload(&mut p, report, &mut upload),
        )
        .await;
        report.failure = Some(failed.report());
        p.journal.failure = Some(format!("{}: {}", failed.step.name(), failed.message()));
        p.journal.sightings = sampler
            .as_ref()
            .map(guard::Sampler::sightings)
            .unwrap_or_default();
        drop(sampler);
        let rollback = rollback::Rollback {
            deployer: self,
            admin: &mut p.admin,
            watch: &mut p.watch,
            force: options.force,
            own: if self.config.migrations.command.is_none() {
                guard::OwnSessions::Counted
            } else {
                guard::OwnSessions::Unknown
            },
            changed: failed.changed,
            snapshot_override: None,
            // Never cut short: a signal during the rollback is only logged.
            cancel: Cancel::never(),
        };
        let outcome =
            recording_children(self.store, &deploy_id, rollback.run(&mut p.journal, report)).await;
        report.downtime_seconds = p.downtime_from.map(|t| t.elapsed().as_secs_f64());
        match outcome {
            Ok(()) => Err(Error::RolledBack(Box::new(failed))),
            Err(errors) => Err(Error::RollbackIncomplete(Box::new(
                failure::IncompleteRollback {
                    errors,
                    cause: Some(failed),
                },
            ))),
        }
    }

    /// The steps up to a successful MaintenanceOff's start, in order; the
    /// first failure stops them. Between steps, a signal stops them too.
    async fn steps(
        &self,
        p: &mut Prepared<'_>,
        options: &DeployOptions,
        report: &mut Report,
        cancel: &Cancel,
        observer: Option<&mut dyn MigrateObserver>,
        upload: &mut Upload<'_>,
    ) -> Result<(), StepFailure> {
        self.maintenance_on(p, report).await?;
        check_cancel(cancel, Step::MaintenanceOn, Step::Snapshot, false)?;
        self.snapshot(p, report, cancel, upload).await?;
        check_cancel(cancel, Step::Snapshot, Step::Migrate, false)?;
        // From here the clone's upload (clone-first) streams beside each step.
        upload
            .alongside(self.migrate(p, report, cancel, observer))
            .await?;
        check_cancel(cancel, Step::Migrate, Step::Verify, true)?;
        upload.alongside(self.verify(p, report)).await?;
        check_cancel(cancel, Step::Verify, Step::Release, true)?;
        if self.config.release.command.is_some() {
            upload.alongside(self.release(p, report)).await?;
        }
        if let Some(health) = &self.config.release.health {
            upload
                .alongside(self.health(p, report, health, cancel))
                .await?;
        }
        // A signal during the release (which runs to its end: stopping a
        // release half-way helps no one) must still roll back.
        let last = if self.config.release.health.is_some() {
            Step::Health
        } else {
            Step::Release
        };
        check_cancel(cancel, last, Step::MaintenanceOff, true)?;
        if options.drill {
            return Err(StepFailure::changed(Step::Drill, failure::Drill));
        }
        // The policy the snapshot step ran (none without a clone), as
        // journaled.
        let policy = p
            .journal
            .snapshot
            .as_ref()
            .and_then(|s| s.offsite.as_ref())
            .map(|o| o.policy);
        if policy == Some(Offsite::BeforeMaintenanceOff) {
            self.offsite_before_off(p, report, upload).await?;
            check_cancel(cancel, Step::Offsite, Step::MaintenanceOff, true)?;
        }
        Ok(())
    }
}

/// The hooks' environment from the journal.
pub(crate) fn hook_env(journal: &Journal) -> HookEnv {
    HookEnv {
        release: journal.release.clone(),
        previous_release: journal.previous_release.clone(),
        // Clone-first, the id is known before the upload commits.
        snapshot_id: journal.snapshot.as_ref().and_then(|s| {
            s.id.clone()
                .or_else(|| s.offsite.as_ref().map(|o| o.id.clone()))
        }),
        deploy_id: journal.deploy_id.clone(),
        outcome: settled_outcome(journal).map(str::to_owned),
    }
}

/// The outcome the deploy reaches once the hooks running now succeed:
/// known at the last step of a successful deploy, and in a rollback once
/// the database is back.
fn settled_outcome(journal: &Journal) -> Option<&'static str> {
    match journal.state {
        State::Running if journal.step == Step::MaintenanceOff => Some("succeeded"),
        State::Succeeded => Some("succeeded"),
        State::RollingBack if journal.database_restored => Some("rolled_back"),
        State::RolledBack => Some("rolled_back"),
        State::Running | State::RollingBack | State::RollbackIncomplete => None,
    }
}

/// A signal noticed between `during` and `next`: it came while `during`
/// ran (to its end), so the failure is `during`'s.
fn check_cancel(
    cancel: &Cancel,
    during: Step,
    next: Step,
    changed: bool,
) -> Result<(), StepFailure> {
    if cancel.is_cancelled() {
        Err(StepFailure::cancelled_after(during, next, changed))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_the_hooks_are_told_is_known_only_once_settled() {
        let mut journal = Journal::begun("shop-1".into(), "shop".into(), Utc::now());
        let mut told = |state, step, restored| {
            journal.state = state;
            journal.step = step;
            journal.database_restored = restored;
            settled_outcome(&journal)
        };
        assert_eq!(told(State::Running, Step::Release, false), None);
        assert_eq!(
            told(State::Running, Step::MaintenanceOff, false),
            Some("succeeded")
        );
        assert_eq!(told(State::Succeeded, Step::Done, false), Some("succeeded"));
        // A rollback's release hook runs once the database is back.
        assert_eq!(told(State::RollingBack, Step::RestoreDatabase, false), None);
        assert_eq!(
            told(State::RollingBack, Step::ReleaseRollback, true),
            Some("rolled_back")
        );
        assert_eq!(
            told(State::RolledBack, Step::RolledBack, true),
            Some("rolled_back")
        );
        assert_eq!(
            told(State::RollbackIncomplete, Step::RestoreDatabase, true),
            None
        );
    }
}
