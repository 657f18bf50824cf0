//! The deploy's steps, each a small function over the run state
//! ([`Prepared`]): it journals its start, does its work, and reports its
//! row; the first failure is returned as a [`StepFailure`] that says
//! whether the database may have changed. The order lives in
//! [`Deployer::steps`](super::Deployer).

use std::time::Instant;

use super::failure::{self, StepFailure};
use super::journal::Journal;
use super::journal::{SnapshotRecord, Step};
use super::observe::{MigrateObserver, MigratorRun};
use super::preflight::Prepared;
use super::{Deployer, check_cancel, hook_env, marker};
use crate::cancel::Cancel;
use crate::checks::Verifier;
use crate::config::HealthConfig;
use crate::db;
use crate::error::{BoxError, chain};
use crate::migrate::apply::TransactionMode;
use crate::migrate::migrator::{Migrator, RunOptions};
use crate::release;
use crate::report::{Report, SnapshotSummary};
use crate::snapshot::take::SnapshotRequest;
use crate::snapshot::{SnapshotId, clone, guard};
use crate::store::ObjectStore;

impl Deployer<'_> {
    /// Records the deploy in the database, then turns every switch on,
    /// each recorded in the journal before it changes anything.
    pub(super) async fn maintenance_on(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
    ) -> Result<(), StepFailure> {
        let store = self.store;
        let started = Instant::now();
        p.downtime_from = Some(started);
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
                    &self.events,
                    report,
                    started,
                ));
            }
        }
        self.events.finished(
            report,
            Step::MaintenanceOn,
            true,
            started.elapsed().as_secs_f64(),
            format!("{} switch(es)", self.config.maintenance.len()),
        );
        Ok(())
    }

    /// The snapshot, then the local clone, then the compare checks'
    /// before sides: all before anything changes. The write guard's
    /// baseline is taken first and its sampler starts watching.
    pub(super) async fn snapshot(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
        cancel: &Cancel,
    ) -> Result<(), StepFailure> {
        let store = self.store;
        let database = self.db.dbname();
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
                return Err(StepFailure::unchanged(Step::Snapshot, e).recorded(
                    &self.events,
                    report,
                    started,
                ));
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
        let clone_detail = match (p.local_clone.clone(), clone_name) {
            (Ok(()), Some(name)) => {
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
                            return Err(StepFailure::unchanged(Step::Snapshot, e).recorded(
                                &self.events,
                                report,
                                started,
                            ));
                        }
                        tracing::warn!(error = %chain(&e), "no local clone; a rollback will restore from the store");
                        format!(", no clone ({})", chain(&e))
                    }
                }
            }
            (Err(why), _) => {
                tracing::info!(reason = %why, "no local clone; a rollback will restore from the store");
                format!(", no clone: {why}")
            }
            (Ok(()), None) => ", no clone: the name does not fit".to_owned(),
        };
        p.journal
            .save(store)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        let verifier = Verifier::new(&self.config.checks);
        let mut app = db::connect(self.db)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        p.before = Some(verifier.capture(&mut app, true).await);
        drop(app);
        self.events.finished(
            report,
            Step::Snapshot,
            true,
            started.elapsed().as_secs_f64(),
            format!(
                "{} ({}) in {snapshot_seconds:.1}s{clone_detail}",
                manifest.id,
                crate::progress::format_bytes(manifest.size_bytes)
            ),
        );
        Ok(())
    }

    /// Applies the pending migrations, watched by `observer` (`rehearse`).
    pub(super) async fn migrate(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
        cancel: &Cancel,
        observer: Option<&mut dyn MigrateObserver>,
    ) -> Result<(), StepFailure> {
        let started = Instant::now();
        self.begin(&mut p.journal, Step::Migrate)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Migrate, e))?;
        let migrator = Migrator::new(&self.config.migrations, self.db);
        let migrated = self
            .run_migrator(&migrator, &p.journal, report, cancel, observer)
            .await;
        match migrated {
            Ok(detail) => {
                self.events.finished(
                    report,
                    Step::Migrate,
                    true,
                    started.elapsed().as_secs_f64(),
                    detail,
                );
            }
            Err(failure) => return Err(failure.recorded(&self.events, report, started)),
        }
        Ok(())
    }

    /// The after, compare and built-in checks.
    pub(super) async fn verify(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
    ) -> Result<(), StepFailure> {
        let started = Instant::now();
        self.begin(&mut p.journal, Step::Verify)
            .await
            .map_err(|e| StepFailure::changed(Step::Verify, e))?;
        let mut app = db::connect(self.db)
            .await
            .map_err(|e| StepFailure::changed(Step::Verify, e))?;
        let before = p.before.take().expect("captured by the snapshot step");
        let results = Verifier::new(&self.config.checks)
            .after(&mut app, before)
            .await;
        drop(app);
        let failed = crate::checks::failures(&results);
        let count = results.len();
        report.checks.extend(results);
        if !failed.is_empty() {
            let failure = StepFailure::changed(Step::Verify, failure::ChecksFailed(failed));
            return Err(failure.recorded(&self.events, report, started));
        }
        self.events.finished(
            report,
            Step::Verify,
            true,
            started.elapsed().as_secs_f64(),
            format!("{count} check(s) passed"),
        );
        Ok(())
    }

    /// `release.command`.
    pub(super) async fn release(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
    ) -> Result<(), StepFailure> {
        let started = Instant::now();
        p.journal.released = true;
        self.begin(&mut p.journal, Step::Release)
            .await
            .map_err(|e| StepFailure::changed(Step::Release, e))?;
        if let Err(e) = release::ship(&self.config.release, &hook_env(&p.journal)).await {
            return Err(StepFailure::changed(Step::Release, e).recorded(
                &self.events,
                report,
                started,
            ));
        }
        self.events.finished(
            report,
            Step::Release,
            true,
            started.elapsed().as_secs_f64(),
            p.journal.release.clone().unwrap_or_default(),
        );
        Ok(())
    }

    /// Polls `release.health` until healthy, its timeout, or a cancel.
    pub(super) async fn health(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
        health: &HealthConfig,
        cancel: &Cancel,
    ) -> Result<(), StepFailure> {
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
            return Err(e.recorded(&self.events, report, started));
        }
        self.events.finished(
            report,
            Step::Health,
            true,
            started.elapsed().as_secs_f64(),
            "healthy",
        );
        Ok(())
    }

    /// Applies the pending migrations: in one run of the migrator, or one
    /// run per migration when an observer asks to see each. The detail for
    /// the report on success.
    async fn run_migrator(
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
}
