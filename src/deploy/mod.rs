//! `snapguard deploy`: the guarded pipeline (DESIGN section 4).
//!
//! Preflight changes nothing (exit 3) and takes the deploy lock (exit 6).
//! Then MaintenanceOn → Snapshot (+ local clone) → Migrate → Verify →
//! Release → Health → MaintenanceOff, each step journaled in the store
//! before it starts. Any failure or cancel after MaintenanceOn rolls back
//! ([`rollback`]): the database (nothing / clone swap / store restore),
//! then the release, then maintenance, and only then is the deploy closed.
//!
//! The pipeline is one sequential function that checks the cancel handle
//! between steps and hands it to the steps that can stop early; nothing
//! ever `select!`s the pipeline away, so the rollback always runs.

mod failure;
pub mod journal;
pub mod lock;
pub mod marker;
pub mod observe;
pub mod preflight;
mod recover;
pub mod rollback;

pub use preflight::Found;
pub use recover::RecoverOptions;

use std::time::Instant;

use chrono::Utc;
use tokio_postgres::Client;

use self::failure::StepFailure;
use self::journal::{Journal, SnapshotRecord, State, Step};
use self::observe::{MigrateObserver, MigratorRun};
use self::preflight::{Prepared, Runner};
use crate::cancel::Cancel;
use crate::checks::{BeforeState, Verifier};
use crate::ci;
use crate::config::Config;
use crate::db::{self, ConnInfo};
use crate::error::{BoxError, Error, chain};
use crate::http::HttpClient;
use crate::maintenance::{self, Context};
use crate::migrate::apply::TransactionMode;
use crate::migrate::migrator::{Migrator, RunOptions};
use crate::release::{self, HookEnv, Ledger};
use crate::report::{FailureReport, Outcome, Report, SnapshotSummary};
use crate::snapshot::take::SnapshotRequest;
use crate::snapshot::{SnapshotId, clone, guard};
use crate::store::{ObjectStore, Store};

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
}

/// Everything a deploy and its rollback share.
pub struct Deployer<'a> {
    pub(crate) config: &'a Config,
    pub(crate) store: &'a Store,
    pub(crate) db: &'a ConnInfo,
    pub(crate) admin_info: ConnInfo,
    pub(crate) http: HttpClient,
    /// GitHub Actions, for a log group per step.
    github: Option<ci::GitHub>,
    group_open: std::cell::Cell<bool>,
    /// The write guard's sampler, from the snapshot on; what it sees is
    /// copied into the journal at every step so that `recover` knows it too.
    sampler: std::cell::RefCell<Option<guard::Sampler>>,
    /// Sessions to the database that earlier processes of this deploy
    /// opened since the baseline, and this process's own count when it
    /// took over: what the journal's `own_sessions` adds up.
    own_from: std::cell::Cell<Option<(u64, u64)>>,
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
            github: ci::GitHub::detect(&|v| std::env::var(v).ok()),
            group_open: std::cell::Cell::new(false),
            sampler: std::cell::RefCell::new(None),
            own_from: std::cell::Cell::new(None),
        })
    }

    /// Connects to the maintenance database and takes the deploy lock.
    pub(crate) async fn lock(&self, step: &'static str) -> Result<Client, Error> {
        lock::for_command(&self.admin_info, self.db, step, false).await
    }

    /// Journals that `step` starts and, under GitHub Actions, opens its
    /// log group (closing the previous one).
    pub(crate) async fn begin(
        &self,
        journal: &mut Journal,
        step: Step,
    ) -> Result<(), journal::JournalError> {
        if let Some(gh) = &self.github {
            if self.group_open.replace(true) {
                gh.end_group();
            }
            gh.group(&format!("snapguard: {}", step.name()));
        }
        if let Some((carried, base)) = self.own_from.get() {
            journal.own_sessions =
                carried + db::sessions_opened(self.db.dbname()).saturating_sub(base);
        }
        if let Some(sampler) = self.sampler.borrow().as_ref() {
            journal.sightings = sampler.sightings();
        }
        journal.begin(step, self.store).await
    }

    /// Closes the last step's log group, if one is open.
    pub(crate) fn end_groups(&self) {
        if let Some(gh) = &self.github
            && self.group_open.replace(false)
        {
            gh.end_group();
        }
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
        let prepared = match self.preflight(options, &mut report, Runner::Deploy).await {
            Ok((_, Some(p))) => p,
            Ok((_, None)) => {
                tracing::info!(
                    "nothing to deploy: no pending migration and no release command; maintenance was not switched on"
                );
                report.outcome = Outcome::NothingToDeploy;
                report.finished_at = Utc::now();
                return (report, Ok(()));
            }
            Err(e) => {
                report.outcome = if matches!(e, Error::Locked { .. }) {
                    Outcome::Locked
                } else {
                    Outcome::PreflightFailed
                };
                report.failure = Some(FailureReport {
                    step: "preflight".into(),
                    message: chain(&e),
                    file: None,
                    line: None,
                });
                report.finished_at = Utc::now();
                return (report, Err(e));
            }
        };
        let result = self
            .run(prepared, options, &mut report, cancel, observer)
            .await;
        self.end_groups();
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
        let mut downtime_from = None;
        let deploy_id = p.journal.deploy_id.clone();
        let failure = recording_children(
            self.store,
            &deploy_id,
            self.steps(
                &mut p,
                options,
                report,
                cancel,
                &mut downtime_from,
                observer,
            ),
        )
        .await;
        // Watching ends with the steps (on success, once the deploy is closed).
        let sampler = self.sampler.take();
        let Err(failed) = failure else {
            report.downtime_seconds = downtime_from.map(|t: Instant| t.elapsed().as_secs_f64());
            report.outcome = Outcome::Succeeded;
            return self.close_success(&mut p, report).await;
        };
        tracing::error!(step = failed.step.name(), error = %failed.message(), "deploy failed; rolling back");
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
            force: options.force,
            own: if self.config.migrations.command.is_none() {
                guard::OwnSessions::Counted
            } else {
                guard::OwnSessions::Unknown
            },
            changed: failed.changed,
            snapshot_override: None,
        };
        let outcome =
            recording_children(self.store, &deploy_id, rollback.run(&mut p.journal, report)).await;
        report.downtime_seconds = downtime_from.map(|t: Instant| t.elapsed().as_secs_f64());
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

    /// The steps up to a successful MaintenanceOff's start; the first
    /// failure stops them.
    async fn steps(
        &self,
        p: &mut Prepared<'_>,
        options: &DeployOptions,
        report: &mut Report,
        cancel: &Cancel,
        downtime_from: &mut Option<Instant>,
        observer: Option<&mut dyn MigrateObserver>,
    ) -> Result<(), StepFailure> {
        let store = self.store;
        let database = self.db.dbname();

        // Maintenance on.
        let started = Instant::now();
        *downtime_from = Some(started);
        self.begin(&mut p.journal, Step::MaintenanceOn)
            .await
            .map_err(|e| StepFailure::unchanged(Step::MaintenanceOn, e))?;
        // Before anything else changes, so that every snapguard, whatever
        // its store, sees this deploy until it is closed.
        let app = db::connect(self.db)
            .await
            .map_err(|e| StepFailure::unchanged(Step::MaintenanceOn, e))?;
        marker::begin(
            &app,
            &p.journal.deploy_id,
            &self.store.uri(""),
            &crate::process::group::this_host(),
        )
        .await
        .map_err(|e| StepFailure::unchanged(Step::MaintenanceOn, e))?;
        drop(app);
        for (i, switch) in self.config.maintenance.iter().enumerate() {
            let engaged = switch
                .prepare(i, &p.admin)
                .await
                .map_err(|e| StepFailure::unchanged(Step::MaintenanceOn, e))?;
            p.journal.maintenance.push(engaged.clone());
            p.journal
                .save(store)
                .await
                .map_err(|e| StepFailure::unchanged(Step::MaintenanceOn, e))?;
            let cx = self.context(&p.admin, &p.journal);
            if let Err(e) = switch.on(&engaged, &cx).await {
                return Err(StepFailure::unchanged(Step::MaintenanceOn, e).recorded(
                    report,
                    "maintenance on",
                    started,
                ));
            }
        }
        report.step(
            "maintenance on",
            true,
            started.elapsed().as_secs_f64(),
            format!("{} switch(es)", self.config.maintenance.len()),
        );
        check_cancel(cancel, Step::Snapshot, false)?;

        // Snapshot, then the local clone, then the compare checks' before
        // sides: all before anything changes.
        let started = Instant::now();
        let baseline = guard::baseline(&p.admin, self.db)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        self.own_from.set(Some((0, baseline.own_sessions)));
        *self.sampler.borrow_mut() = Some(guard::Sampler::start(
            &self.admin_info,
            database,
            baseline.at,
        ));
        p.journal.snapshot = Some(SnapshotRecord {
            id: None,
            clone: None,
            guard: baseline,
        });
        self.begin(&mut p.journal, Step::Snapshot)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        let request = SnapshotRequest {
            release_id: p.journal.previous_release.clone(),
            deploy_id: Some(p.journal.deploy_id.clone()),
            last_migration: None,
        };
        let manifest = match p.snapshotter.take(&request, cancel).await {
            Ok(m) => m,
            Err(e) => {
                return Err(
                    StepFailure::unchanged(Step::Snapshot, e).recorded(report, "snapshot", started)
                );
            }
        };
        let record = p.journal.snapshot.as_mut().expect("set above");
        record.id = Some(manifest.id.to_string());
        report.snapshot = Some(SnapshotSummary {
            id: manifest.id.to_string(),
            uri: manifest.dump_uri.clone(),
            size_bytes: manifest.size_bytes,
            clone: None,
            seconds: started.elapsed().as_secs_f64(),
            clone_seconds: None,
        });
        let snapshot_seconds = started.elapsed().as_secs_f64();
        let clone_name = crate::snapshot::restore::derived_name(
            database,
            "sg",
            &SnapshotId::parse(&p.journal.deploy_id)
                .map(|id| id.short())
                .unwrap_or_default(),
        )
        .ok();
        let clone_started = Instant::now();
        let clone_detail = match (
            clone::decide(&p.admin, database, self.config.snapshot.local_clone).await,
            clone_name,
        ) {
            (Ok(Ok(())), Some(name)) => {
                p.journal.snapshot.as_mut().expect("set").clone = Some(name.clone());
                p.journal
                    .save(store)
                    .await
                    .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
                match clone::create(&p.admin, database, &name, &manifest.database_properties).await
                {
                    Ok(()) => {
                        let summary = report.snapshot.as_mut().expect("set");
                        summary.clone = Some(name.clone());
                        summary.clone_seconds = Some(clone_started.elapsed().as_secs_f64());
                        format!(
                            ", clone `{name}` in {:.1}s",
                            clone_started.elapsed().as_secs_f64()
                        )
                    }
                    Err(e) => {
                        p.journal.snapshot.as_mut().expect("set").clone = None;
                        let _ = p.journal.save(store).await;
                        if self.config.snapshot.local_clone == crate::config::LocalClone::Always {
                            return Err(StepFailure::unchanged(Step::Snapshot, e)
                                .recorded(report, "snapshot", started));
                        }
                        tracing::warn!(error = %chain(&e), "no local clone; a rollback will restore from the store");
                        format!(", no clone ({})", chain(&e))
                    }
                }
            }
            (Ok(Err(why)), _) => {
                tracing::info!(reason = %why, "no local clone; a rollback will restore from the store");
                format!(", no clone: {why}")
            }
            (Ok(Ok(())), None) => ", no clone: the name does not fit".to_owned(),
            (Err(e), _) => {
                tracing::warn!(error = %chain(&e), "cannot decide on a local clone; a rollback will restore from the store");
                format!(", no clone ({})", chain(&e))
            }
        };
        p.journal
            .save(store)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        let verifier = Verifier::new(&self.config.checks);
        let mut app = db::connect(self.db)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        let before: BeforeState = verifier.capture(&mut app, true).await;
        drop(app);
        report.step(
            "snapshot",
            true,
            started.elapsed().as_secs_f64(),
            format!(
                "{} ({}) in {snapshot_seconds:.1}s{clone_detail}",
                manifest.id,
                crate::progress::format_bytes(manifest.size_bytes)
            ),
        );
        check_cancel(cancel, Step::Migrate, false)?;

        // Migrate.
        let started = Instant::now();
        self.begin(&mut p.journal, Step::Migrate)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Migrate, e))?;
        let migrator = Migrator::new(&self.config.migrations, self.db);
        let migrated = self
            .migrate(&migrator, &p.journal, report, cancel, observer)
            .await;
        match migrated {
            Ok(detail) => {
                report.step("migrate", true, started.elapsed().as_secs_f64(), detail);
            }
            Err(failure) => return Err(failure.recorded(report, "migrate", started)),
        }
        check_cancel(cancel, Step::Verify, true)?;

        // Verify.
        let started = Instant::now();
        self.begin(&mut p.journal, Step::Verify)
            .await
            .map_err(|e| StepFailure::changed(Step::Verify, e))?;
        let mut app = db::connect(self.db)
            .await
            .map_err(|e| StepFailure::changed(Step::Verify, e))?;
        let results = verifier.after(&mut app, before).await;
        drop(app);
        let failed = crate::checks::failures(&results);
        let count = results.len();
        report.checks.extend(results);
        if !failed.is_empty() {
            let failure = StepFailure::changed(Step::Verify, failure::ChecksFailed(failed));
            return Err(failure.recorded(report, "verify", started));
        }
        report.step(
            "verify",
            true,
            started.elapsed().as_secs_f64(),
            format!("{count} check(s) passed"),
        );
        check_cancel(cancel, Step::Release, true)?;

        // Release and health.
        if self.config.release.command.is_some() {
            let started = Instant::now();
            p.journal.released = true;
            self.begin(&mut p.journal, Step::Release)
                .await
                .map_err(|e| StepFailure::changed(Step::Release, e))?;
            if let Err(e) = release::ship(&self.config.release, &hook_env(&p.journal)).await {
                return Err(
                    StepFailure::changed(Step::Release, e).recorded(report, "release", started)
                );
            }
            report.step(
                "release",
                true,
                started.elapsed().as_secs_f64(),
                p.journal.release.clone().unwrap_or_default(),
            );
        }
        if let Some(health) = &self.config.release.health {
            let started = Instant::now();
            self.begin(&mut p.journal, Step::Health)
                .await
                .map_err(|e| StepFailure::changed(Step::Health, e))?;
            // Dropping the poll on cancel is safe: it changes nothing.
            let healthy = tokio::select! {
                r = release::wait_healthy(health, &self.http) => r.map_err(|e| StepFailure::changed(Step::Health, e)),
                () = cancel.cancelled() => Err(StepFailure::cancelled(Step::Health, true)),
            };
            if let Err(e) = healthy {
                return Err(e.recorded(report, "health", started));
            }
            report.step("health", true, started.elapsed().as_secs_f64(), "healthy");
        }
        // A signal during the release (which runs to its end: stopping a
        // release half-way helps no one) must still roll back.
        check_cancel(cancel, Step::MaintenanceOff, true)?;
        if options.drill {
            return Err(StepFailure::changed(Step::Drill, failure::Drill));
        }
        Ok(())
    }

    /// Applies the pending migrations: in one run of the migrator, or one
    /// run per migration when an observer asks to see each. The detail for
    /// the report on success.
    async fn migrate(
        &self,
        migrator: &Migrator<'_>,
        journal: &Journal,
        report: &mut Report,
        cancel: &Cancel,
        mut observer: Option<&mut dyn MigrateObserver>,
    ) -> Result<String, StepFailure> {
        let external = self.config.migrations.command.clone();
        let one_at_a_time = observer.as_ref().is_some_and(|o| o.one_at_a_time())
            && external.is_none()
            && self.config.migrations.transaction == TransactionMode::PerMigration;
        let run = RunOptions {
            dry_run: false,
            release_id: journal.release.clone(),
            deploy_id: Some(journal.deploy_id.clone()),
            limit: one_at_a_time.then_some(1),
        };
        let observed = |e: BoxError, changed: bool| StepFailure {
            changed,
            ..StepFailure::unchanged(Step::Migrate, e)
        };
        let result = loop {
            if let Some(o) = observer.as_deref_mut() {
                o.before()
                    .await
                    .map_err(|e| observed(e, !report.migrations.is_empty()))?;
            }
            let from = Instant::now();
            let result = migrator.run(&run, cancel).await;
            if let Some(o) = observer.as_deref_mut() {
                let seen = MigratorRun {
                    result: result.as_ref(),
                    from,
                    to: Instant::now(),
                };
                o.after(seen)
                    .await
                    .map_err(|e| observed(e, !report.migrations.is_empty()))?;
            }
            match result {
                Ok(outcome) => {
                    let more = one_at_a_time && !outcome.applied.is_empty();
                    report.migrations.extend(outcome.applied);
                    if !more {
                        break Ok(());
                    }
                    check_cancel(cancel, Step::Migrate, true)?;
                }
                Err(e) => break Err(e),
            }
        };
        if let Some(o) = observer {
            o.done();
        }
        match result {
            Ok(()) => Ok(match &external {
                Some(c) => format!("external migrator `{c}`"),
                None => format!("{} applied", report.migrations.len()),
            }),
            Err(e) => Err(StepFailure::from_migrate(e, journal.all_or_nothing, report)),
        }
    }

    /// MaintenanceOff after a success, then the ledger, the clone and the
    /// report. A switch that will not turn off leaves the deploy needing a
    /// human (exit 5) even though the release is live.
    async fn close_success(&self, p: &mut Prepared<'_>, report: &mut Report) -> Result<(), Error> {
        let started = Instant::now();
        if let Err(e) = self.begin(&mut p.journal, Step::MaintenanceOff).await {
            tracing::warn!(error = %chain(&e), "cannot write the journal");
        }
        let cx = self.context(&p.admin, &p.journal);
        let failures =
            maintenance::all_off(&self.config.maintenance, &p.journal.maintenance, &cx).await;
        report.downtime_seconds = report
            .downtime_seconds
            .map(|d| d + started.elapsed().as_secs_f64());
        if !failures.is_empty() {
            let errors: Vec<String> = failures.iter().map(|e| chain(e)).collect();
            report.step(
                "maintenance off",
                false,
                started.elapsed().as_secs_f64(),
                errors.join("; "),
            );
            report.outcome = Outcome::RollbackIncomplete;
            report.next_steps = vec![
                "# the deploy succeeded, but maintenance is still on; turn it off:".into(),
                "snapguard recover".into(),
            ];
            return Err(Error::RollbackIncomplete(
                format!(
                    "the deploy succeeded but maintenance could not be switched off: {}",
                    errors.join("; ")
                )
                .into(),
            ));
        }
        report.step("maintenance off", true, started.elapsed().as_secs_f64(), "");
        self.finish_success(&mut p.admin, &mut p.journal, report)
            .await;
        Ok(())
    }

    /// Records a successful deploy: ledger, clone dropped, journal and
    /// report closed. Shared with `recover`.
    pub(crate) async fn finish_success(
        &self,
        admin: &mut Client,
        journal: &mut Journal,
        report: &mut Report,
    ) {
        let store = self.store;
        if let Some(release) = &journal.release {
            let entry = release::LedgerEntry {
                release: release.clone(),
                deploy_id: journal.deploy_id.clone(),
                snapshot_id: journal.snapshot.as_ref().and_then(|s| s.id.clone()),
                finished_at: Utc::now(),
            };
            if let Err(e) = Ledger::append(store, entry).await {
                tracing::warn!(error = %chain(&e), "cannot record the release in the ledger; the next deploy will not know it as the previous release");
            }
        }
        // The store snapshot stays the way back; a full copy of the
        // database on the server's disk is not kept past a success.
        if let Some(clone) = journal.snapshot.as_ref().and_then(|s| s.clone.clone())
            && let Err(e) = db::admin::drop_database(admin, &clone).await
        {
            tracing::warn!(error = %chain(&e), clone, "cannot drop the local clone; `snapguard prune` removes it later");
        }
        journal.state = State::Succeeded;
        if let Err(e) = self.begin(journal, Step::Done).await {
            tracing::warn!(error = %chain(&e), "cannot write the journal");
        }
        report.outcome = Outcome::Succeeded;
        self.close(journal, report).await;
    }

    /// Closes the deploy: `report.json` beside the journal, and the
    /// database's own record ([`marker`]) with the report's outcome.
    pub(crate) async fn close(&self, journal: &Journal, report: &Report) {
        let key = journal::report_key(&journal.deploy_id);
        if let Err(e) = self
            .store
            .put(&key, bytes::Bytes::from(report.to_json()))
            .await
        {
            tracing::warn!(error = %chain(&e), "cannot write the report to the store; `snapguard recover` will see this deploy as unfinished");
        }
        let closed = match db::connect(self.db).await {
            Ok(app) => marker::finish(&app, &journal.deploy_id, report.outcome.as_str()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = closed {
            tracing::warn!(error = %chain(&e), deploy = %journal.deploy_id, "cannot close the deploy's record in snapguard.deploys; other snapguards will see it as unfinished until `snapguard recover` closes it");
        }
    }
}

/// Runs `work` while keeping `deploys/<id>/children.json` equal to the
/// process groups of snapguard's children, so that `recover` can end a
/// hook that outlived a killed runner. The work is never dropped: the loop
/// ends only when it does.
pub(crate) async fn recording_children<F: std::future::Future>(
    store: &Store,
    deploy_id: &str,
    work: F,
) -> F::Output {
    let mut changes = crate::process::group::changes();
    let mut written = Vec::new();
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            biased;
            out = &mut work => return out,
            Ok(()) = changes.changed() => {
                let now = crate::process::group::live_groups();
                if now != written {
                    if let Err(e) = journal::save_children(store, deploy_id, &now).await {
                        tracing::warn!(error = %chain(&e), "cannot record the child processes beside the journal");
                    }
                    written = now;
                }
            }
        }
    }
}

/// The hooks' environment from the journal.
pub(crate) fn hook_env(journal: &Journal) -> HookEnv {
    HookEnv {
        release: journal.release.clone(),
        previous_release: journal.previous_release.clone(),
        snapshot_id: journal.snapshot.as_ref().and_then(|s| s.id.clone()),
        deploy_id: journal.deploy_id.clone(),
    }
}

fn check_cancel(cancel: &Cancel, next: Step, changed: bool) -> Result<(), StepFailure> {
    if cancel.is_cancelled() {
        Err(StepFailure::cancelled(next, changed))
    } else {
        Ok(())
    }
}
