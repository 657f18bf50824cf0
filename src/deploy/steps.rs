//! The deploy's steps, each a small function over the run state
//! ([`Prepared`]): it journals its start, does its work, and reports its
//! row; the first failure is returned as a [`StepFailure`] that says
//! whether the database may have changed. The order lives in
//! [`Deployer::steps`](super::Deployer).

use std::time::Instant;

use super::failure::{self, StepFailure};
use super::journal::Journal;
use super::journal::{OffsiteRecord, SnapshotRecord, Step, UploadState};
use super::observe::{MigrateObserver, MigratorRun};
use super::offsite::Upload;
use super::preflight::Prepared;
use super::watch::OwnFrom;
use super::{Deployer, hook_env, marker};
use crate::cancel::Cancel;
use crate::checks::Verifier;
use crate::config::Offsite;
use crate::config::{HealthConfig, PgbackrestConfig, Provider, RdsConfig, RdsTarget};
use crate::db;
use crate::error::{BoxError, chain};
use crate::migrate::apply::TransactionMode;
use crate::migrate::migrator::{Migrator, RunOptions};
use crate::release;
use crate::report::{Report, SnapshotSummary};
use crate::snapshot::aurora::AuroraClone;
use crate::snapshot::clone::CloneMethod;
use crate::snapshot::pgbackrest::{Pgbackrest, RestorePointRecord};
use crate::snapshot::rds::{Rds, RdsSnapshot};
use crate::snapshot::take::SnapshotError;
use crate::snapshot::{clone, guard};
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
        self.begin(&mut p.watch, &mut p.journal, Step::MaintenanceOn)
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

    /// The snapshot and the local clone, then the compare checks' before
    /// sides: all before anything changes. The write guard's baseline is
    /// taken first and its sampler starts watching. Clone-first (a clone
    /// is possible and `snapshot.offsite` is not `before-migrate`): the
    /// clone, then `upload` starts dumping it; otherwise the store snapshot,
    /// then the clone.
    pub(super) async fn snapshot(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
        cancel: &Cancel,
        upload: &mut Upload<'_>,
    ) -> Result<(), StepFailure> {
        let store = self.store;
        let database = self.db.dbname();
        let started = Instant::now();
        let baseline = guard::baseline(&p.admin, self.db)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        p.watch.own_from = Some(OwnFrom {
            carried: 0,
            base: baseline.own_sessions,
        });
        p.watch.sampler = Some(guard::Sampler::start(
            &self.admin_info,
            database,
            baseline.at,
        ));
        p.journal.snapshot = Some(SnapshotRecord {
            id: None,
            clone: None,
            guard: baseline,
            offsite: None,
            restore_point: None,
            rds: None,
            aurora: None,
        });
        self.begin(&mut p.watch, &mut p.journal, Step::Snapshot)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        let detail = match &self.config.snapshot.provider {
            Provider::Pgbackrest(config) => self.restore_point(p, report, config).await,
            Provider::Rds(config) => match config.target {
                RdsTarget::Instance(_) => self.rds_snapshot(p, report, config).await,
                RdsTarget::Cluster(_) => self.aurora_snapshot(p, report, config).await,
            },
            Provider::PgDump => self.store_snapshot(p, report, cancel, upload).await,
        }
        .map_err(|e| e.recorded(&self.events, report, started))?;
        let detail = match &self.config.snapshot.provider {
            Provider::PgDump => detail,
            _ if !self.config.snapshot.store_copy => detail,
            _ => {
                let copy = self
                    .store_copy(p, report, cancel)
                    .await
                    .map_err(|e| e.recorded(&self.events, report, started))?;
                format!("{detail}; {copy}")
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
        p.before = Some(verifier.capture(&mut app, true).await);
        drop(app);
        self.events.finished(
            report,
            Step::Snapshot,
            true,
            started.elapsed().as_secs_f64(),
            detail,
        );
        Ok(())
    }

    /// `snapshot.provider: pg_dump`: the store snapshot and the local
    /// clone, in the order `snapshot.offsite` asks. The detail for the
    /// report.
    async fn store_snapshot(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
        cancel: &Cancel,
        upload: &mut Upload<'_>,
    ) -> Result<String, StepFailure> {
        let database = self.db.dbname();
        let clone_name =
            crate::snapshot::restore::derived_name(database, "sg", &p.journal.short_id())
                .map_err(|e| e.to_string());
        let clone = p
            .local_clone
            .clone()
            .and_then(|method| Ok((clone_name?, method)));
        let policy = self.config.snapshot.offsite.effective(clone.is_ok());
        match clone {
            Ok((name, method)) if policy != Offsite::BeforeMigrate => {
                self.clone_first(p, report, cancel, upload, &name, &method)
                    .await
            }
            Ok((name, method)) => {
                self.dump_first(p, report, cancel, Some((&name, &method)))
                    .await
            }
            Err(why) => {
                tracing::info!(reason = %why, "no local clone; a rollback will restore from the store");
                self.dump_first(p, report, cancel, None)
                    .await
                    .map(|d| format!("{d}, no clone: {why}"))
            }
        }
    }

    /// `snapshot.provider: pgbackrest`: the restore point, journaled once
    /// archiving proved it restorable. No store snapshot and no clone: the
    /// rollback is a point-in-time restore.
    async fn restore_point(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
        config: &PgbackrestConfig,
    ) -> Result<String, StepFailure> {
        let started = Instant::now();
        let name = format!("snapguard-{}", p.journal.short_id());
        let point = Pgbackrest::new(config)
            .restore_point(&p.admin, &name)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        // For `snapshots list`; the journal (saved next) is what the
        // rollback reads.
        RestorePointRecord {
            point: point.clone(),
            database: self.db.dbname().to_owned(),
            deploy_id: p.journal.deploy_id.clone(),
            created_at: chrono::Utc::now(),
        }
        .save(self.store)
        .await
        .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        let seconds = started.elapsed().as_secs_f64();
        let detail = format!(
            "restore point `{}` at {} (stanza `{}`, from backup {}) archived in {seconds:.1}s",
            point.name, point.lsn, point.stanza, point.backup
        );
        report.snapshot = Some(SnapshotSummary::of_provider(
            point.name.clone(),
            format!("pgbackrest:{}/{}", point.stanza, point.backup),
            seconds,
        ));
        p.journal
            .snapshot
            .as_mut()
            .expect("set by the step")
            .restore_point = Some(point);
        Ok(detail)
    }

    /// A provider's snapshot taken, the `pg_dump` copy to the store beside
    /// it (`snapshot.offsite: before-migrate`): portable, and what `recover
    /// --snapshot` restores when the provider cannot. The report's
    /// snapshot stays the provider's, which the rollback returns to.
    async fn store_copy(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
        cancel: &Cancel,
    ) -> Result<String, StepFailure> {
        let provider = report.snapshot.take();
        let taken = self.dump_first(p, report, cancel, None).await;
        report.snapshot = provider;
        Ok(format!("store copy {}", taken?))
    }

    /// `snapshot.provider: rds`: a snapshot of the instance, journaled
    /// before it is requested and waited on until RDS says it is
    /// available. No store snapshot and no clone: the rollback restores
    /// the instance from it.
    async fn rds_snapshot(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
        config: &RdsConfig,
    ) -> Result<String, StepFailure> {
        let started = Instant::now();
        let record = RdsSnapshot::named(config.target.id(), &p.journal.short_id());
        p.journal.snapshot.as_mut().expect("set by the step").rds = Some(record.clone());
        p.journal
            .save(self.store)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        Rds::new(config)
            .await
            .snapshot(&record)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        let seconds = started.elapsed().as_secs_f64();
        report.snapshot = Some(SnapshotSummary::of_provider(
            record.snapshot.clone(),
            format!("rds:{}/{}", record.instance, record.snapshot),
            seconds,
        ));
        Ok(format!(
            "RDS snapshot `{}` of instance `{}` available in {seconds:.1}s",
            record.snapshot, record.instance
        ))
    }

    /// `snapshot.provider: aurora-clone`: a snapshot of the cluster,
    /// journaled before it is requested and waited on until RDS says it
    /// is available; its time, journaled, is what the rollback clones the
    /// cluster at.
    async fn aurora_snapshot(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
        config: &RdsConfig,
    ) -> Result<String, StepFailure> {
        let started = Instant::now();
        let mut record = AuroraClone::named(config.target.id(), &p.journal.short_id());
        p.journal.snapshot.as_mut().expect("set by the step").aurora = Some(record.clone());
        p.journal
            .save(self.store)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        let at = Rds::new(config)
            .await
            .cluster_snapshot(&record)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        record.restore_to = Some(at);
        p.journal.snapshot.as_mut().expect("set by the step").aurora = Some(record.clone());
        // Without the time journaled, the rollback would have nothing to
        // clone at: the step fails before any migration.
        p.journal
            .save(self.store)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        let seconds = started.elapsed().as_secs_f64();
        report.snapshot = Some(SnapshotSummary::of_provider(
            record.snapshot.clone(),
            format!("aurora:{}/{}", record.cluster, record.snapshot),
            seconds,
        ));
        Ok(format!(
            "Aurora cluster snapshot `{}` of `{}` available in {seconds:.1}s; a rollback clones the cluster as at {at}",
            record.snapshot, record.cluster
        ))
    }

    /// Today's order: the store snapshot of the database, then (when
    /// `clone` is named) the local clone. The detail for the report.
    async fn dump_first(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
        cancel: &Cancel,
        clone: Option<(&str, &CloneMethod)>,
    ) -> Result<String, StepFailure> {
        let started = Instant::now();
        let request = p.journal.snapshot_request();
        let manifest = p
            .snapshotter
            .take(&request, cancel)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        let record = p.journal.snapshot.as_mut().expect("set by the step");
        record.id = Some(manifest.id.to_string());
        let seconds = started.elapsed().as_secs_f64();
        report.snapshot = Some(SnapshotSummary {
            id: manifest.id.to_string(),
            uri: manifest.dump_uri.clone(),
            size_bytes: manifest.size_bytes,
            clone: None,
            seconds,
            clone_seconds: None,
            clone_method: None,
            offsite: Offsite::BeforeMigrate,
            committed: true,
        });
        let taken = format!(
            "{} ({}) in {seconds:.1}s",
            manifest.id,
            crate::progress::format_bytes(manifest.size_bytes)
        );
        let Some((name, method)) = clone else {
            return Ok(taken);
        };
        let clone_detail = match self
            .make_clone(p, name, &manifest.database_properties, method)
            .await?
        {
            Ok((secs, used)) => {
                let summary = report.snapshot.as_mut().expect("set above");
                summary.clone = Some(name.to_owned());
                summary.clone_seconds = Some(secs);
                summary.clone_method = Some(used);
                format!(", clone `{name}` in {secs:.2}s by file {used}")
            }
            Err(why) => format!(", no clone ({why})"),
        };
        Ok(format!("{taken}{clone_detail}"))
    }

    /// The clone-first window: the local clone of the frozen database,
    /// then its dump starts streaming to the store beside the next steps.
    /// A clone that cannot be made falls back to [`Self::dump_first`]
    /// (unless `snapshot.local_clone: always`).
    async fn clone_first(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
        cancel: &Cancel,
        upload: &mut Upload<'_>,
        name: &str,
        method: &CloneMethod,
    ) -> Result<String, StepFailure> {
        let frozen = p
            .snapshotter
            .freeze()
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        let (secs, used) = match self.make_clone(p, name, &frozen.properties, method).await? {
            Ok(made) => made,
            Err(why) => {
                let taken = self.dump_first(p, report, cancel, None).await?;
                return Ok(format!(
                    "{taken}, no clone ({why}): taken before the migrations"
                ));
            }
        };
        // The dump reaches the clone under its own name, which a
        // `pg_hba.conf` listing databases by name may refuse: found out
        // now, while nothing has changed, rather than by a failed upload.
        if let Err(e) = clone::reachable(&p.admin, self.db, name).await {
            tracing::warn!(error = %chain(&e), clone = name, "the clone cannot be reached for its dump; the snapshot is taken from the database before the migrations instead");
            let taken = self.dump_first(p, report, cancel, None).await?;
            if let Some(summary) = report.snapshot.as_mut() {
                summary.clone = Some(name.to_owned());
                summary.clone_seconds = Some(secs);
                summary.clone_method = Some(used);
            }
            return Ok(format!(
                "{taken}, clone `{name}` in {secs:.2}s, not reachable for its dump ({}): taken before the migrations",
                chain(&e)
            ));
        }
        let policy = self.config.snapshot.offsite.effective(true);
        let id = frozen.id.to_string();
        p.journal
            .snapshot
            .as_mut()
            .expect("set by the step")
            .offsite = Some(OffsiteRecord {
            policy,
            id: id.clone(),
            state: UploadState::Uploading,
            dumped_bytes: 0,
            error: None,
        });
        // Journaled before the upload starts: `recover` looks for this id.
        p.journal
            .save(self.store)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        report.snapshot = Some(SnapshotSummary {
            id: id.clone(),
            uri: self.store.uri(&crate::snapshot::dump_key(&frozen.id)),
            size_bytes: 0,
            clone: Some(name.to_owned()),
            seconds: 0.0,
            clone_seconds: Some(secs),
            clone_method: Some(used),
            offsite: policy,
            committed: false,
        });
        let request = p.journal.snapshot_request();
        upload.start(name.to_owned(), frozen, request, cancel.clone());
        p.watch.dumped = Some(upload.counter());
        tracing::info!(snapshot = %id, clone = name, offsite = policy.as_str(), "the store snapshot streams from the clone while the deploy goes on");
        Ok(format!(
            "clone `{name}` in {secs:.2}s by file {used}; snapshot {id} streams from it to the store (offsite: {})",
            policy.as_str()
        ))
    }

    /// Makes the local clone `name`, journaled before it exists. `Ok(Err)`:
    /// no clone, and why (a failed clone fails the step only under
    /// `snapshot.local_clone: always`). `Ok(Ok)`: the seconds it took and
    /// how its files were made.
    async fn make_clone(
        &self,
        p: &mut Prepared<'_>,
        name: &str,
        properties: &crate::db::DatabaseProperties,
        method: &CloneMethod,
    ) -> Result<Result<(f64, &'static str), String>, StepFailure> {
        let started = Instant::now();
        p.journal.snapshot.as_mut().expect("set by the step").clone = Some(name.to_owned());
        p.journal
            .save(self.store)
            .await
            .map_err(|e| StepFailure::unchanged(Step::Snapshot, e))?;
        match clone::create(&p.admin, self.db.dbname(), name, properties, method).await {
            Ok(used) => Ok(Ok((started.elapsed().as_secs_f64(), used))),
            Err(e) => {
                p.journal.snapshot.as_mut().expect("set").clone = None;
                let _ = p.journal.save(self.store).await;
                if self.config.snapshot.local_clone == crate::config::LocalClone::Always {
                    return Err(StepFailure::unchanged(Step::Snapshot, e));
                }
                tracing::warn!(error = %chain(&e), "no local clone; a rollback will restore from the store");
                Ok(Err(chain(&e)))
            }
        }
    }

    /// Waits for the clone's upload and records how it ended, in the
    /// journal, the report and the log: a failure loudly, since the deploy
    /// then has no store snapshot of its own. `None` when no upload runs.
    pub(super) async fn settle_upload(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
        upload: &mut Upload<'_>,
    ) -> Option<Result<(), SnapshotError>> {
        let result = upload.finish().await?;
        let seconds = upload.seconds();
        let record = p.journal.snapshot.as_mut()?;
        record.offsite.as_mut()?.dumped_bytes = upload.dumped();
        let outcome = match result {
            Ok(manifest) => {
                record.upload_committed(manifest.id.to_string());
                if let Some(summary) = report.snapshot.as_mut() {
                    summary.size_bytes = manifest.size_bytes;
                    summary.seconds = seconds;
                    summary.committed = true;
                }
                self.events.finished(
                    report,
                    Step::Offsite,
                    true,
                    seconds,
                    format!(
                        "{} ({}) from the clone in {seconds:.1}s",
                        manifest.id,
                        crate::progress::format_bytes(manifest.size_bytes)
                    ),
                );
                Ok(())
            }
            Err(e) => {
                // Most often the store itself: the journal writes that
                // follow (the rollback's) get a short deadline.
                p.watch.store_failed();
                record.upload_failed(Some(chain(&e)));
                tracing::error!(error = %chain(&e), clone = ?record.clone, "THE STORE SNAPSHOT OF THIS DEPLOY FAILED: the local clone is kept as the only copy of the database before the deploy");
                self.events
                    .finished(report, Step::Offsite, false, seconds, chain(&e));
                Err(e)
            }
        };
        if let Err(e) = p.watch.write(p.journal.save(self.store)).await {
            tracing::warn!(error = %chain(&e), "cannot write the journal");
        }
        Some(outcome)
    }

    /// `snapshot.offsite: before-maintenance-off`, after the last step:
    /// the window ends only once the store snapshot is committed; one that
    /// failed fails the deploy, which rolls back.
    pub(super) async fn offsite_before_off(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
        upload: &mut Upload<'_>,
    ) -> Result<(), StepFailure> {
        if !upload.pending() {
            return Ok(());
        }
        self.begin(&mut p.watch, &mut p.journal, Step::Offsite)
            .await
            .map_err(|e| StepFailure::changed(Step::Offsite, e))?;
        match self.settle_upload(p, report, upload).await {
            Some(Err(e)) => Err(StepFailure::changed(
                Step::Offsite,
                failure::OffsiteRequired(e),
            )),
            _ => Ok(()),
        }
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
        self.begin(&mut p.watch, &mut p.journal, Step::Migrate)
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
        self.begin(&mut p.watch, &mut p.journal, Step::Verify)
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
        self.begin(&mut p.watch, &mut p.journal, Step::Release)
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
        self.begin(&mut p.watch, &mut p.journal, Step::Health)
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
                    if cancel.is_cancelled() {
                        // Between migrations: the next one does not start.
                        return Err(StepFailure::cancelled(Step::Migrate, true));
                    }
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
