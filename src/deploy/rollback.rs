//! The rollback, shared by `deploy` (in process, after a failure or a
//! cancel) and `recover` (from the journal, after the runner died).
//!
//! Order matters: the database first (nothing to restore / clone swap /
//! store restore), then `release.rollback`, then maintenance off, and only
//! when each earlier part succeeded: the application must not come back
//! against a database that is not known good. Each part is recorded in the
//! journal when done, so `recover` resumes where a rollback stopped.

use std::time::Instant;

use tokio_postgres::Client;

use super::failure::{During, NoSnapshotRecorded, ProviderChanged, WritesAfterSnapshot};
use super::journal::{Journal, State, Step};
use super::watch::Watch;
use super::{Deployer, hook_env};
use crate::cancel::Cancel;
use crate::config::invocation::{Invocation, quote};
use crate::config::{Provider, RdsTarget};
use crate::db::{admin, quote_ident};
use crate::error::{BoxError, chain};
use crate::maintenance;
use crate::release;
use crate::report::{Outcome, Report, RollbackReport};
use crate::snapshot::aurora::{AuroraClone, ClonePhase};
use crate::snapshot::guard;
use crate::snapshot::pgbackrest::{Pgbackrest, RestorePoint};
use crate::snapshot::rds::{Rds, RdsSnapshot, SwapPhase};
use crate::snapshot::restore::{self, RestoreFailure, RestoreOptions, derived_name};

/// One rollback.
pub struct Rollback<'a, 'b> {
    /// Config, store, connections.
    pub deployer: &'a Deployer<'b>,
    /// The session holding the deploy lock.
    pub admin: &'a mut Client,
    /// What this process watches for the journal.
    pub(super) watch: &'a mut Watch,
    /// Restore even if the write guard objects (`--force`).
    pub force: bool,
    /// How the write guard accounts for snapguard's own sessions.
    pub own: guard::OwnSessions,
    /// Whether the database may have changed since the snapshot. When not,
    /// the catalogue fingerprint must still agree before nothing is
    /// restored.
    pub changed: bool,
    /// Restore this store snapshot instead of the deploy's own
    /// (`recover --snapshot ID`, when the deploy's own is damaged).
    pub snapshot_override: Option<String>,
    /// What may cut the store restore short. A deploy's rollback is never
    /// cut short ([`Cancel::never`]: a signal is only logged); `recover`'s
    /// is, when its job is cancelled: the partial database is dropped,
    /// `pg_restore` ended and the scratch files removed, and a later
    /// `recover` starts the restore over.
    pub cancel: Cancel,
}

impl Rollback<'_, '_> {
    /// Rolls back; the journal and report say how far it got. `Err`
    /// holds each error that kept it from finishing.
    pub async fn run(
        self,
        journal: &mut Journal,
        report: &mut Report,
    ) -> Result<(), Vec<BoxError>> {
        let store = self.deployer.store;
        let mut r = RollbackReport::default();
        let mut errors: Vec<BoxError> = Vec::new();
        journal.state = State::RollingBack;

        let started = Instant::now();
        let changed = self.changed || self.changed_after_all(journal).await;
        if journal.database_restored {
            r.database = "already restored".into();
        } else if !changed {
            r.database = "nothing to restore: the database did not change (catalogue and migration history as at the snapshot)".into();
            journal.database_restored = true;
        } else {
            save(self.deployer, self.watch, journal, Step::RestoreDatabase).await;
            match self.restore_database(journal, &mut r).await {
                Ok(restored) => {
                    journal.database_restored = true;
                    // A point-in-time restore restarted the server, an
                    // RDS restore replaced it: the deploy lock went with
                    // this process's session, or is held on the server
                    // renamed aside; the rest of the rollback runs under
                    // the lock taken again. A session that still answers
                    // lets its lock go first (where the same server still
                    // answers, it would otherwise refuse its own taker).
                    if restored == Restored::ServerRestarted {
                        let _ = self
                            .admin
                            .execute("SELECT pg_advisory_unlock_all()", &[])
                            .await;
                        match self.deployer.lock("rollback").await {
                            Ok(admin) => *self.admin = admin,
                            Err(e) => errors.push(Box::new(e)),
                        }
                    }
                }
                Err(e) => errors.extend(e),
            }
        }
        r.restore_seconds = started.elapsed().as_secs_f64();
        self.deployer.events.finished(
            report,
            Step::RestoreDatabase,
            journal.database_restored,
            r.restore_seconds,
            r.database.clone(),
        );

        if journal.database_restored && journal.released && !journal.release_rolled_back {
            let started = Instant::now();
            save(self.deployer, self.watch, journal, Step::ReleaseRollback).await;
            let result =
                release::roll_back(&self.deployer.config.release, &hook_env(journal)).await;
            let ok = result.is_ok();
            if let Err(e) = result {
                errors.push(e.into());
            } else {
                journal.release_rolled_back = true;
                r.release_rolled_back = self.deployer.config.release.rollback.is_some();
            }
            self.deployer.events.finished(
                report,
                Step::ReleaseRollback,
                ok,
                started.elapsed().as_secs_f64(),
                journal.previous_release.clone().unwrap_or_default(),
            );
        }

        let release_ok = !journal.released || journal.release_rolled_back;
        if journal.database_restored && release_ok {
            let started = Instant::now();
            save(
                self.deployer,
                self.watch,
                journal,
                Step::RollbackMaintenanceOff,
            )
            .await;
            let cx = self.deployer.context(self.admin, journal);
            let failures =
                maintenance::all_off(&self.deployer.config.maintenance, &journal.maintenance, &cx)
                    .await;
            let ok = failures.is_empty();
            errors.extend(failures.into_iter().map(BoxError::from));
            self.deployer.events.finished(
                report,
                Step::RollbackMaintenanceOff,
                ok,
                started.elapsed().as_secs_f64(),
                "",
            );
        } else {
            tracing::error!("maintenance stays on: the database or the release is not known good");
        }

        let rendered: Vec<String> = errors.iter().map(|e| chain(&**e)).collect();
        r.errors = rendered.clone();
        report.rollback = Some(r);
        if errors.is_empty() {
            journal.state = State::RolledBack;
            save(self.deployer, self.watch, journal, Step::RolledBack).await;
            self.deployer
                .close(self.watch, journal, report, Outcome::RolledBack)
                .await;
            tracing::info!(
                "rolled back: database restored, previous release back, maintenance off"
            );
            Ok(())
        } else {
            journal.state = State::RollbackIncomplete;
            journal.rollback_errors = rendered;
            // What the next steps need is read first: `partly_applied`
            // connects to the database, and the `recover` that follows
            // must find that session in the journal's count, not take it
            // for someone else's.
            let fallback = other_snapshot(self.deployer, journal).await;
            let partly = partly_applied(self.deployer, journal).await;
            self.watch.record_sessions(self.deployer, journal).await;
            if let Err(e) = self.watch.write(journal.save(store)).await {
                tracing::error!(error = %chain(&e), "cannot write the journal");
            }
            let deployer = self.deployer;
            let config = deployer.config;
            let commands = Commands {
                invocation: &config.invocation,
                database: deployer.db.dbname(),
                maintenance_db: &config.database.maintenance_db,
                release_rollback: config.release.rollback.as_deref(),
            };
            report.next_steps = next_steps(
                journal,
                &commands,
                fallback.as_ref(),
                self.snapshot_override.as_deref(),
                partly.as_ref(),
            );
            Err(errors)
        }
    }

    /// Makes sure nobody else wrote since the snapshot, then restores the
    /// restore point, else swaps the clone in, else restores the store
    /// snapshot.
    async fn restore_database(
        &self,
        journal: &mut Journal,
        r: &mut RollbackReport,
    ) -> Result<Restored, Vec<BoxError>> {
        let deployer = self.deployer;
        let database = deployer.db.dbname();
        let Some(snapshot) = journal.snapshot.clone() else {
            return Err(vec![Box::new(NoSnapshotRecorded)]);
        };
        if snapshot.swap_begun() {
            // The write guard let this swap start in an earlier run: the
            // instance or cluster may be renamed aside by now, not there
            // to ask.
            r.write_guard =
                Some("no write after the snapshot (checked before the swap began)".into());
            return self.rds_swap(journal, r).await.map_err(|e| vec![e]);
        }
        let fence: Vec<_> = journal
            .maintenance
            .iter()
            .flat_map(|e| e.roles.iter().cloned())
            .collect();
        let reasons = guard::writes_after(
            self.admin,
            deployer.db,
            guard::Evidence {
                baseline: &snapshot.guard,
                sightings: journal.sightings.clone(),
                own: self.own,
                fence: (!fence.is_empty()).then_some(fence.as_slice()),
            },
        )
        .await
        .map_err(|e| vec![BoxError::from(e)])?;
        // A refusal made earlier (by the deploy, or an earlier `recover`)
        // stands: the writes it saw are still in the database.
        // (The server's activity count is read afresh, not repeated.)
        let mut all: Vec<String> = journal
            .guard_refusal
            .iter()
            .filter(|r| !r.starts_with(guard::ACTIVITY_PREFIX))
            .cloned()
            .collect();
        for reason in reasons {
            if !all.contains(&reason) {
                all.push(reason);
            }
        }
        // Recorded for later runs: what was seen in the database. The
        // interval an older snapshot would lose belongs to this run's choice.
        let seen = all.clone();
        if let Some(id) = self
            .snapshot_override
            .as_ref()
            .filter(|id| Some(*id) != snapshot.id.as_ref())
        {
            let older = crate::snapshot::resolve(deployer.store, id)
                .await
                .map_err(|e| vec![BoxError::from(e)])?;
            all.extend(older_snapshot_loses(&older, &snapshot.guard, database));
        }
        let reasons = all;
        r.write_guard = Some(if reasons.is_empty() {
            let mut seen = vec!["no other session seen during the deploy or now"];
            if snapshot.guard.server_sessions.is_some() && self.own != guard::OwnSessions::Unknown {
                seen.push("the server's session counter matches snapguard's own sessions");
            }
            if !fence.is_empty() {
                seen.push("the fenced roles stayed out");
            }
            format!("no write after the snapshot: {}", seen.join(", "))
        } else {
            format!("possible writes after the snapshot: {}", reasons.join("; "))
        });
        if !reasons.is_empty() {
            if !self.force {
                r.database = "refused: writes after the snapshot".into();
                journal.guard_refusal = seen;
                return Err(vec![Box::new(WritesAfterSnapshot {
                    database: database.to_owned(),
                    reasons,
                    accept_current: deployer
                        .config
                        .invocation
                        .command("recover --accept-current"),
                    force: deployer.config.invocation.command("recover --force"),
                })]);
            }
            tracing::warn!(reasons = %reasons.join("; "), "--force: restoring although writes after the snapshot are possible");
        }
        // `recover --snapshot ID` restores that store snapshot instead of
        // the provider's (a copy taken beside it, when the provider cannot).
        let by_provider = self.snapshot_override.is_none();
        if (snapshot.rds.is_some() || snapshot.aurora.is_some()) && by_provider {
            return self.rds_swap(journal, r).await.map_err(|e| vec![e]);
        }
        if let Some(point) = snapshot.restore_point.as_ref().filter(|_| by_provider) {
            return self
                .point_in_time(point, snapshot.guard.catalogue.as_deref(), r)
                .await
                .map(|()| Restored::ServerRestarted)
                .map_err(|e| vec![e]);
        }
        let mut errors: Vec<BoxError> = Vec::new();
        if let Some(clone) = snapshot
            .clone
            .as_ref()
            .filter(|_| self.snapshot_override.is_none())
        {
            match self.swap_clone(journal, clone).await {
                Ok(kept) => {
                    r.database = format!("clone swap from `{clone}`");
                    r.failed_database_kept_as = Some(kept);
                    return Ok(Restored::InPlace);
                }
                Err(e) => {
                    tracing::error!(error = %chain(&e), "the clone swap failed; restoring from the store");
                    errors.push(Box::new(e));
                }
            }
        }
        let Some(id) = self.snapshot_override.as_ref().or(snapshot.id.as_ref()) else {
            errors.push(
                "no store snapshot was completed, so there is nothing to restore from".into(),
            );
            return Err(errors);
        };
        let jobs =
            deployer.config.snapshot.restore_jobs.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(2, |n| n.get() as u32)
            });
        let options = RestoreOptions {
            snapshot: id.clone(),
            terminate_sessions: true,
            jobs,
            replaced_label: "failed",
            // The deploy lock is held: a leftover restore database is a
            // killed rollback's.
            drop_leftover: true,
            ..RestoreOptions::default()
        };
        let during = |e: restore::RestoreError| -> BoxError {
            Box::new(During {
                what: format!("store restore of {id}"),
                source: e.into(),
            })
        };
        let plan = match restore::plan(
            deployer.store,
            deployer.db,
            &deployer.config.database.maintenance_db,
            deployer.config.database.pg_bin_dir.as_deref(),
            options,
        )
        .await
        {
            Ok(plan) => plan,
            Err(e) => {
                errors.push(during(e));
                return Err(errors);
            }
        };
        match plan.execute(deployer.store, &self.cancel).await {
            Ok(done) => {
                r.database = format!("store restore of {id}");
                r.failed_database_kept_as = done.replaced_as;
                Ok(Restored::InPlace)
            }
            Err(RestoreFailure::Verify(e) | RestoreFailure::Restore(e)) => {
                errors.push(during(e));
                Err(errors)
            }
        }
    }

    /// `snapshot.provider: pgbackrest`: the whole cluster back to the
    /// deploy's restore point. The server restarts, so every session to it
    /// ends, this process's lock among them (taken again by the caller).
    ///
    /// With `verify`, the point is first restored into a throwaway server
    /// here and its copy of the database compared with `catalogue`, the
    /// snapshot's fingerprint: a point that cannot come back is found while
    /// the cluster still runs.
    async fn point_in_time(
        &self,
        point: &RestorePoint,
        catalogue: Option<&str>,
        r: &mut RollbackReport,
    ) -> Result<(), BoxError> {
        let Provider::Pgbackrest(config) = &self.deployer.config.snapshot.provider else {
            return Err(Box::new(ProviderChanged {
                snapshot: format!("pgBackRest restore point `{}`", point.name),
                provider: "pgbackrest",
            }));
        };
        let during = |e: BoxError| During {
            what: format!("point-in-time restore to `{}`", point.name),
            source: e,
        };
        let pgbackrest = Pgbackrest::new(config);
        if config.verify {
            let started = Instant::now();
            let major = crate::db::server_version(self.admin)
                .await
                .map_err(|e| during(e.into()))?
                .major();
            pgbackrest
                .verify(point, major, self.deployer.db.dbname(), catalogue)
                .await
                .map_err(|e| during(e.into()))?;
            tracing::info!(point = %point.name, seconds = format!("{:.1}", started.elapsed().as_secs_f64()), "verified: the restore point restores the database as at the snapshot");
        }
        pgbackrest
            .restore(point, self.deployer.db)
            .await
            .map_err(|e| during(e.into()))?;
        r.database = format!(
            "point-in-time restore of the whole cluster to restore point `{}` (pgBackRest stanza `{}`, from backup {})",
            point.name, point.stanza, point.backup
        );
        Ok(())
    }

    /// `snapshot.provider: rds` or `aurora-clone`: [`swap_rds`] or
    /// [`swap_aurora`].
    async fn rds_swap(
        &self,
        journal: &mut Journal,
        r: &mut RollbackReport,
    ) -> Result<Restored, BoxError> {
        r.database = swap(self.deployer, journal).await?;
        Ok(Restored::ServerRestarted)
    }

    /// Whether the database changed although the failed step says it did
    /// not: the catalogue or the migration history differ from the
    /// baseline (another migrator, a hand-made change). Unknown counts as
    /// changed.
    async fn changed_after_all(&self, journal: &Journal) -> bool {
        if journal.database_restored {
            return false;
        }
        let Some(expected) = journal
            .snapshot
            .as_ref()
            .and_then(|s| s.guard.catalogue.clone())
        else {
            // No baseline was taken: the deploy stopped before its snapshot
            // step began, when nothing but maintenance had been touched.
            return false;
        };
        let now = match crate::db::connect(self.deployer.db).await {
            Ok(app) => guard::catalogue_fingerprint(&app).await,
            Err(e) => Err(e),
        };
        match now {
            Ok(now) if now == expected => false,
            Ok(_) => {
                tracing::warn!(
                    "the catalogue or the migration history changed since the snapshot although the failed step changed nothing; restoring"
                );
                true
            }
            Err(e) => {
                tracing::warn!(error = %chain(&e), "cannot tell whether the database changed; restoring to be sure");
                true
            }
        }
    }

    /// Renames the failed database away and the clone into its place.
    async fn swap_clone(&self, journal: &Journal, clone: &str) -> Result<String, SwapError> {
        let database = self.deployer.db.dbname();
        let client = &*self.admin;
        if !admin::exists(client, clone)
            .await
            .map_err(SwapError::Check)?
        {
            return Err(SwapError::Missing(clone.to_owned()));
        }
        let failed =
            derived_name(database, "failed", &journal.short_id()).map_err(SwapError::Swap)?;
        let started = Instant::now();
        crate::snapshot::clone::swap_in(&self.deployer.admin_info, database, clone, &failed)
            .await
            .map_err(SwapError::Swap)?;
        tracing::info!(
            database,
            failed = %failed,
            seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
            "rolled back by swapping in the local clone"
        );
        Ok(failed)
    }
}

/// `snapshot.provider: rds`: the instance renamed aside and the deploy's
/// snapshot restored under its name, each call journaled before it is
/// made; then a wait until the database takes connections at the endpoint
/// the application uses. What was done, for the report.
///
/// Run by the rollback once the write guard let it, and by `recover`
/// without the deploy lock when the swap had begun and the database is
/// not there to lock (renamed aside).
pub(super) async fn swap_rds(
    deployer: &Deployer<'_>,
    journal: &mut Journal,
) -> Result<String, BoxError> {
    let mut record = journal
        .snapshot
        .as_ref()
        .and_then(|s| s.rds.clone())
        .expect("an RDS snapshot is recorded");
    let Provider::Rds(config) = &deployer.config.snapshot.provider else {
        return Err(Box::new(ProviderChanged {
            snapshot: format!("RDS snapshot `{}`", record.snapshot),
            provider: "rds",
        }));
    };
    let during = |e: BoxError| -> BoxError {
        Box::new(During {
            what: format!(
                "restoring RDS instance `{}` from snapshot `{}`",
                record.instance, record.snapshot
            ),
            source: e,
        })
    };
    let rds = Rds::new(config).await;
    if record.swap.is_none() {
        rds.check_restorable(&record)
            .await
            .map_err(|e| during(e.into()))?;
        // Journaled before the instance is touched: unsaved, the swap does
        // not start (a `recover` could not tell it had).
        record.swap = Some(SwapPhase::Renaming);
        set_rds(journal, &record);
        journal
            .save(deployer.store)
            .await
            .map_err(|e| during(e.into()))?;
    }
    if record.swap == Some(SwapPhase::Renaming) {
        rds.rename_aside(&record)
            .await
            .map_err(|e| during(e.into()))?;
        record.swap = Some(SwapPhase::Restoring);
        set_rds(journal, &record);
        // The restore is decided from what RDS shows, so a lost write here
        // only costs a `recover` a look.
        if let Err(e) = journal.save(deployer.store).await {
            tracing::warn!(error = %chain(&e), "cannot journal that the instance is renamed aside; going on");
        }
    }
    rds.restore(&record).await.map_err(|e| during(e.into()))?;
    crate::snapshot::wait_until_primary(deployer.db, config.wait)
        .await
        .map_err(|e| during(e.into()))?;
    tracing::warn!(instance = %record.aside, "the failed RDS instance is kept under this name (and billed): delete it once it is no longer needed");
    Ok(format!(
        "RDS instance `{}` restored from snapshot `{}`; the failed instance is kept as `{}`",
        record.instance, record.snapshot, record.aside
    ))
}

/// The RDS swap the journal's snapshot asks for: an instance's
/// ([`swap_rds`]) or an Aurora cluster's ([`swap_aurora`]).
pub(super) async fn swap(
    deployer: &Deployer<'_>,
    journal: &mut Journal,
) -> Result<String, BoxError> {
    let aurora = journal
        .snapshot
        .as_ref()
        .is_some_and(|s| s.aurora.is_some());
    if aurora {
        swap_aurora(deployer, journal).await
    } else {
        swap_rds(deployer, journal).await
    }
}

/// `snapshot.provider: aurora-clone`: a copy-on-write clone of the cluster
/// as it was at the deploy's snapshot, made while the failed cluster still
/// serves, then the failed cluster renamed aside and the clone renamed to
/// its name; each phase journaled before its first call. Then a wait until
/// the database takes connections at the endpoint the application uses.
/// What was done, for the report.
async fn swap_aurora(deployer: &Deployer<'_>, journal: &mut Journal) -> Result<String, BoxError> {
    let mut record = journal
        .snapshot
        .as_ref()
        .and_then(|s| s.aurora.clone())
        .expect("an Aurora snapshot is recorded");
    let config = match &deployer.config.snapshot.provider {
        Provider::Rds(config) if config.target == RdsTarget::Cluster(record.cluster.clone()) => {
            config
        }
        _ => {
            return Err(Box::new(ProviderChanged {
                snapshot: format!("Aurora cluster snapshot `{}`", record.snapshot),
                provider: "aurora-clone",
            }));
        }
    };
    let what = format!(
        "cloning Aurora cluster `{}` as at snapshot `{}`",
        record.cluster, record.snapshot
    );
    let during = |e: BoxError| -> BoxError {
        Box::new(During {
            what: what.clone(),
            source: e,
        })
    };
    let rds = Rds::new(config).await;
    // Each phase is journaled before its first call, and a phase is only
    // entered once the one before it is done: what RDS shows then tells
    // `recover` which calls of the phase were made.
    let mut enter = async |record: &mut AuroraClone, phase: ClonePhase| {
        record.swap = Some(phase);
        if let Some(snapshot) = journal.snapshot.as_mut() {
            snapshot.aurora = Some(record.clone());
        }
        journal
            .save(deployer.store)
            .await
            .map_err(|e| during(e.into()))
    };
    if record.swap.is_none() {
        rds.check_clonable(&record)
            .await
            .map_err(|e| during(e.into()))?;
        enter(&mut record, ClonePhase::Cloning).await?;
    }
    if record.swap == Some(ClonePhase::Cloning) {
        rds.clone_cluster(&record)
            .await
            .map_err(|e| during(e.into()))?;
        enter(&mut record, ClonePhase::Renaming).await?;
    }
    if record.swap == Some(ClonePhase::Renaming) {
        rds.rename_cluster_aside(&record)
            .await
            .map_err(|e| during(e.into()))?;
        enter(&mut record, ClonePhase::Promoting).await?;
    }
    rds.promote_clone(&record)
        .await
        .map_err(|e| during(e.into()))?;
    crate::snapshot::wait_until_primary(deployer.db, config.wait)
        .await
        .map_err(|e| during(e.into()))?;
    rds.wait_served_by_clone(deployer.db, &record)
        .await
        .map_err(|e| during(e.into()))?;
    tracing::warn!(cluster = %record.aside, "the failed Aurora cluster and its instances are kept under this name (and billed): delete them once no longer needed");
    Ok(format!(
        "Aurora cluster `{}` replaced by a copy-on-write clone of itself as at {} (snapshot `{}`); the failed cluster is kept as `{}`",
        record.cluster,
        record
            .restore_to
            .map(|t| t.to_rfc3339())
            .unwrap_or_default(),
        record.snapshot,
        record.aside
    ))
}

/// Journals `record` as the deploy's RDS snapshot.
fn set_rds(journal: &mut Journal, record: &RdsSnapshot) {
    if let Some(snapshot) = journal.snapshot.as_mut() {
        snapshot.rds = Some(record.clone());
    }
}

/// How the database was restored, for what the rollback does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restored {
    /// The server kept running (clone swap, store restore).
    InPlace,
    /// The server was stopped and started (point-in-time restore), or
    /// replaced (an RDS instance restored): every session to it ended.
    ServerRestarted,
}

/// Why the local clone could not take the database's place (the rollback
/// then restores from the store).
#[derive(Debug, thiserror::Error)]
pub(super) enum SwapError {
    /// The clone is gone (dropped by hand, or never finished).
    #[error("the local clone `{0}` does not exist")]
    Missing(String),
    /// Whether it exists could not be asked.
    #[error("checking that the local clone exists")]
    Check(#[source] crate::db::DbError),
    /// The renames failed.
    #[error("swapping in the local clone")]
    Swap(#[source] restore::RestoreError),
}

/// Journals that `step` of the rollback starts; a failure is logged and
/// the rollback goes on (the database's own record of the deploy, closed
/// at the end, keeps `recover` from redoing it).
async fn save(deployer: &Deployer<'_>, watch: &mut Watch, journal: &mut Journal, step: Step) {
    let written = deployer.begin(watch, journal, step).await;
    if let Err(e) = written {
        tracing::error!(error = %chain(&e), "cannot write the journal; continuing the rollback");
    }
}

/// The commands a human runs when the rollback could not finish.
/// The newest complete snapshot of the database other than the deploy's
/// own: the way back when the deploy's own snapshot is damaged.
async fn other_snapshot(
    deployer: &Deployer<'_>,
    journal: &Journal,
) -> Option<crate::snapshot::Manifest> {
    let own = journal.snapshot.as_ref().and_then(|s| s.id.clone());
    crate::snapshot::list(deployer.store)
        .await
        .ok()?
        .into_iter()
        .rev()
        .filter_map(|l| l.manifest)
        .find(|m| m.database == journal.database && Some(m.id.to_string()) != own)
}

/// Why restoring `older` instead of the deploy's own snapshot (taken at
/// `own`) could lose writes: what was written between the two is in
/// neither the older snapshot nor, after the restore, the database. `None`
/// only where the WAL position proves nothing was written in between.
fn older_snapshot_loses(
    older: &crate::snapshot::Manifest,
    own: &guard::Baseline,
    database: &str,
) -> Option<String> {
    if older.wal_lsn.is_some() && older.wal_lsn == own.wal_lsn {
        return None;
    }
    Some(format!(
        "snapshot {} was taken {} (WAL {}), before the deploy's own snapshot at {} (WAL {}): whatever was written to `{database}` between the two, before this deploy began, is in neither and a restore of {} discards it",
        older.id,
        older.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        older.wal_lsn.as_deref().unwrap_or("unknown"),
        own.at.format("%Y-%m-%d %H:%M:%S UTC"),
        own.wal_lsn.as_deref().unwrap_or("unknown"),
        older.id
    ))
}

/// Some, not all, of a deploy's migrations are in the database: keeping
/// it as it is leaves a schema between two releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PartlyApplied {
    /// The deploy's migrations the history records, `version (name)`.
    pub applied: Vec<String>,
    /// How many it set out to apply.
    pub of: usize,
}

impl std::fmt::Display for PartlyApplied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of the {} migrations it set out to apply ({})",
            self.applied.len(),
            self.of,
            self.applied.join(", ")
        )
    }
}

/// Whether the deploy's migrations are only partly applied, from the
/// database's history; `None` when all or none are, or it cannot be read.
pub(super) async fn partly_applied(
    deployer: &Deployer<'_>,
    journal: &Journal,
) -> Option<PartlyApplied> {
    if journal.database_restored || journal.pending.is_empty() {
        return None;
    }
    let app = crate::db::connect(deployer.db).await.ok()?;
    let applied = crate::migrate::history::applied_by(&app, &journal.deploy_id)
        .await
        .ok()?;
    let of = journal.pending.len();
    (!applied.is_empty() && applied.len() < of).then_some(PartlyApplied { applied, of })
}

/// What the printed next steps name.
struct Commands<'a> {
    /// How snapguard was run: its commands are printed the same way.
    invocation: &'a Invocation,
    /// The application database.
    database: &'a str,
    /// Where a swap by hand runs (`database.maintenance_db`).
    maintenance_db: &'a str,
    /// `release.rollback`.
    release_rollback: Option<&'a str>,
}

fn next_steps(
    journal: &Journal,
    commands: &Commands<'_>,
    fallback: Option<&crate::snapshot::Manifest>,
    snapshot_override: Option<&str>,
    partly: Option<&PartlyApplied>,
) -> Vec<String> {
    let database = commands.database;
    let cmd = |rest: &str| commands.invocation.command(rest);
    let mut steps = Vec::new();
    if !journal.database_restored
        && (!journal.guard_refusal.is_empty() || snapshot_override.is_some())
    {
        // Plain `recover` would refuse again: each way out is a decision
        // about the writes listed above, so each is spelled out.
        match partly {
            Some(partly) => steps.push(format!(
                "# writes after the snapshot are possible (see above); a restore would lose them. Either keep the database as it is now and close the deploy; WARNING: the deploy is half-applied, {partly}, and maintenance goes off, so the application runs on a schema between two releases:"
            )),
            None => steps.push("# writes after the snapshot are possible (see above); a restore would lose them. Either keep the database as it is now (the migrations stay applied) and close the deploy:".into()),
        }
        steps.push(cmd("recover --accept-current"));
        steps.push("# or restore the snapshot anyway, losing those writes (the current database is kept under a new name):".into());
        steps.push(match snapshot_override {
            Some(id) => cmd(&format!("recover --snapshot {id} --force")),
            None => cmd("recover --force"),
        });
    } else if !journal.database_restored {
        steps.push("# the database is not restored; once the cause above is fixed:".into());
        steps.push(cmd("recover"));
        if let Some(s) = &journal.snapshot {
            if let Some(clone) = &s.clone {
                steps.push(format!(
                    "# or swap the pre-deploy clone in by hand (psql on `{}`):",
                    commands.maintenance_db
                ));
                steps.push(format!(
                    "ALTER DATABASE {db} RENAME TO {failed}; ALTER DATABASE {c} RENAME TO {db}; ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true;",
                    db = quote_ident(database),
                    failed = quote_ident(&format!("{database}__failed")),
                    c = quote_ident(clone)
                ));
            }
            if let Some(id) = &s.id {
                steps.push("# or restore the store snapshot by hand, then close the deploy keeping the restored database:".into());
                steps.push(cmd(&format!("restore {id} --yes --terminate-sessions")));
                steps.push(cmd("recover --accept-current"));
            }
        }
        match fallback {
            Some(older) => {
                let since = journal
                    .snapshot
                    .as_ref()
                    .map(|s| s.guard.at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_else(|| "the deploy".into());
                steps.push(format!(
                    "# if the deploy's snapshot is damaged, roll back to the newest other one (older: `snapguard snapshots list`), {} taken {}; it lacks what was written between then and {since}, so the restore refuses until given --force:",
                    older.id,
                    older.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                ));
                steps.push(cmd(&format!("recover --snapshot {}", older.id)));
            }
            None => steps.push("# if the deploy's snapshot is damaged: no other snapshot of this database is in the store".into()),
        }
        steps.push("# or keep the database as it is now and close the deploy:".into());
        steps.push(cmd("recover --accept-current"));
    } else if journal.released && !journal.release_rolled_back {
        steps.push("# the database is restored; put the previous release back by hand:".into());
        if let Some(cmd) = commands.release_rollback {
            let env: Vec<String> = hook_env(journal)
                .vars()
                .into_iter()
                .map(|(k, v)| format!("{k}={}", quote(&v)))
                .collect();
            steps.push(format!(
                "{} sh -c '{}'",
                env.join(" "),
                cmd.replace('\'', "'\\''")
            ));
        }
        steps.push("# then finish with:".into());
        steps.push(cmd("recover"));
    } else {
        steps.push(
            "# the database and release are back; maintenance is still on. Fix the switch, then:"
                .into(),
        );
        steps.push(cmd("recover"));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::journal::SnapshotRecord;
    use chrono::{TimeZone, Utc};

    fn commands<'a>(invocation: &'a Invocation, rollback: Option<&'a str>) -> Commands<'a> {
        Commands {
            invocation,
            database: "shop",
            maintenance_db: "postgres",
            release_rollback: rollback,
        }
    }

    fn snapshotted(clone: Option<&str>, id: Option<&str>) -> Journal {
        let at = Utc.with_ymd_and_hms(2026, 12, 3, 10, 15, 0).unwrap();
        let mut journal = Journal::begun("shop-20261203T101500Z".into(), "shop".into(), at);
        journal.state = State::RollbackIncomplete;
        journal.snapshot = Some(SnapshotRecord {
            id: id.map(str::to_owned),
            clone: clone.map(str::to_owned),
            guard: guard::Baseline::seen_nothing(at),
            offsite: None,
            restore_point: None,
            rds: None,
            aurora: None,
        });
        journal
    }

    #[test]
    fn a_refusal_of_the_write_guard_offers_both_decisions_and_nothing_else() {
        let invocation = Invocation::new(Some(std::path::Path::new("ops/prod.yml")), None, None);
        let mut journal = snapshotted(Some("shop_sg"), Some("shop-20261203T101500Z"));
        journal.guard_refusal = vec!["1 session opened since the snapshot".into()];
        let steps = next_steps(&journal, &commands(&invocation, None), None, None, None);
        let printed: Vec<&String> = steps.iter().filter(|s| !s.starts_with('#')).collect();
        assert_eq!(
            printed,
            [
                "snapguard --config ops/prod.yml recover --accept-current",
                "snapguard --config ops/prod.yml recover --force"
            ]
        );
        // Half-applied, the first choice warns what the application meets.
        let partly = PartlyApplied {
            applied: vec!["2 (add_sku)".into()],
            of: 3,
        };
        let steps = next_steps(
            &journal,
            &commands(&invocation, None),
            None,
            Some("shop-20261201T000000Z"),
            Some(&partly),
        );
        assert!(
            steps[0]
                .contains("half-applied, 1 of the 3 migrations it set out to apply (2 (add_sku))"),
            "{steps:?}"
        );
        assert_eq!(
            steps.last().unwrap(),
            "snapguard --config ops/prod.yml recover --snapshot shop-20261201T000000Z --force"
        );
    }

    #[test]
    fn a_database_not_restored_is_given_every_way_back_with_names_quoted() {
        let invocation = Invocation::default();
        let journal = snapshotted(Some("shop sg"), Some("shop-20261203T101500Z"));
        let steps = next_steps(&journal, &commands(&invocation, None), None, None, None);
        let expected = [
            "snapguard recover",
            r#"ALTER DATABASE "shop" RENAME TO "shop__failed"; ALTER DATABASE "shop sg" RENAME TO "shop"; ALTER DATABASE "shop" WITH ALLOW_CONNECTIONS true;"#,
            "snapguard restore shop-20261203T101500Z --yes --terminate-sessions",
            "snapguard recover --accept-current",
            "snapguard recover --accept-current",
        ];
        let printed: Vec<&String> = steps.iter().filter(|s| !s.starts_with('#')).collect();
        assert_eq!(printed, expected);
        assert!(steps.iter().any(|s| s.contains("(psql on `postgres`)")));
        assert!(
            steps
                .iter()
                .any(|s| s.contains("no other snapshot of this database"))
        );
        // Without a clone or a committed snapshot, neither is offered.
        let journal = snapshotted(None, None);
        let steps = next_steps(&journal, &commands(&invocation, None), None, None, None);
        assert!(
            !steps
                .iter()
                .any(|s| s.contains("ALTER DATABASE") || s.contains(" restore "))
        );
    }

    #[test]
    fn a_release_not_put_back_is_printed_as_a_command_that_runs_as_printed() {
        let invocation = Invocation::default();
        let mut journal = snapshotted(None, Some("shop-20261203T101500Z"));
        journal.database_restored = true;
        journal.released = true;
        journal.release = Some("v2 (hotfix)".into());
        journal.previous_release = Some("v1".into());
        // A hook with quotes of its own, which the printed line must keep.
        let rollback = r#"printf '%s|%s' "$SNAPGUARD_RELEASE" "$SNAPGUARD_PREVIOUS_RELEASE""#;
        let steps = next_steps(
            &journal,
            &commands(&invocation, Some(rollback)),
            None,
            None,
            None,
        );
        let line = &steps[1];
        // Run by a shell as printed, the line gives the hook its environment.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "v2 (hotfix)|v1",
            "{line}"
        );
        assert_eq!(steps.last().unwrap(), "snapguard recover");
        // Everything back but maintenance: fix the switch, then recover.
        journal.release_rolled_back = true;
        let steps = next_steps(
            &journal,
            &commands(&invocation, Some(rollback)),
            None,
            None,
            None,
        );
        assert_eq!(steps.len(), 2);
        assert!(steps[0].contains("maintenance is still on"));
    }
}
