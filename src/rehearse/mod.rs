//! `snapguard rehearse`: the deploy's database steps on a copy of
//! production, timed (DESIGN sections 1, 2, 9).
//!
//! Source ([`source`]: a store snapshot, a dump file, or a live database
//! dumped read-only) → scratch database ([`target`]: a throwaway local
//! server, or `--target-url`) → the deploy's preflight, compare captures,
//! migrations one at a time with their WAL, rewrites ([`measure`]) and
//! locks ([`locks`]), after-checks → the estimated maintenance window
//! against `budget.max_downtime` → with `--drill`, both real rollbacks
//! (clone swap and store restore), timed and verified.
//!
//! Production is never connected to, except by `--from-url`'s read-only
//! `pg_dump`.

pub mod locks;
pub mod measure;
pub mod report;
pub mod source;
pub mod target;

use std::path::Path;
use std::time::Instant;

use tokio_postgres::Client;

use self::report::{Drill, MigrationMeasure, RehearsalReport, Verdict};
use self::source::{Local, Source};
use self::target::Scratch;
use crate::cancel::Cancel;
use crate::checks::Verifier;
use crate::config::Config;
use crate::db::admin::DatabaseProperties;
use crate::db::{self, ConnInfo};
use crate::deploy::clone;
use crate::error::{BoxError, Error, chain};
use crate::migrate::apply::{ApplyError, TransactionMode};
use crate::migrate::migrator::{MigrateError, Migrator, RunOptions};
use crate::progress::format_bytes;
use crate::report::FailureReport;
use crate::snapshot::restore::{self, RestoreFailure, RestoreOptions, derived_name};
use crate::snapshot::take::{SnapshotRequest, Snapshotter};
use crate::store::Store;

/// What the command line asks for.
#[derive(Debug, Clone)]
pub struct RehearseOptions {
    /// Where the data comes from.
    pub source: Source,
    /// A server and new database name to use instead of a throwaway server.
    pub target_url: Option<ConnInfo>,
    /// Leave the scratch database (and throwaway server) running.
    pub keep: bool,
    /// Also perform and time both rollbacks.
    pub drill: bool,
    /// `pg_restore -j`.
    pub jobs: u32,
}

/// Runs a rehearsal. The report is returned whatever happened.
pub async fn rehearse(
    config: &Config,
    store: Option<&Store>,
    options: &RehearseOptions,
    cancel: &Cancel,
) -> (RehearsalReport, Result<(), Error>) {
    let mut report = RehearsalReport::new();
    let result = Rehearsal {
        config,
        store,
        options,
        cancel,
    }
    .run(&mut report)
    .await;
    report.finished_at = chrono::Utc::now();
    if let Err(e) = &result {
        report.outcome = match e {
            Error::OverBudget(_) => Verdict::OverBudget,
            _ => Verdict::Failed,
        };
        if report.failure.is_none() {
            report.failure = Some(FailureReport {
                step: "rehearse".into(),
                message: chain(e),
                file: None,
                line: None,
            });
        }
    }
    (report, result)
}

struct Rehearsal<'a> {
    config: &'a Config,
    store: Option<&'a Store>,
    options: &'a RehearseOptions,
    cancel: &'a Cancel,
}

/// A rehearsal-stopping problem with the tooling (not with the deploy).
fn broken(
    step: &'static str,
    report: &mut RehearsalReport,
    started: Instant,
    e: BoxError,
) -> Error {
    report.step(step, false, started.elapsed().as_secs_f64(), chain(&*e));
    Error::failed("rehearse", e)
}

impl Rehearsal<'_> {
    async fn run(&self, report: &mut RehearsalReport) -> Result<(), Error> {
        let workdir = tempfile::Builder::new()
            .prefix("snapguard-rehearse-")
            .tempdir()
            .map_err(|e| Error::failed("rehearse", e))?;

        let started = Instant::now();
        let local = source::fetch(
            &self.options.source,
            self.store,
            workdir.path(),
            self.config.database.pg_bin_dir.as_deref(),
            self.config.snapshot.lock_wait_timeout,
        )
        .await
        .map_err(|e| broken("source", report, started, e.into()))?;
        report.source = local.described.clone();
        report.source_version = local.server_version.clone();
        report.step(
            "source",
            true,
            started.elapsed().as_secs_f64(),
            format!("{} ({})", local.described, format_bytes(local.bytes)),
        );

        let started = Instant::now();
        let scratch = match &self.options.target_url {
            Some(url) => {
                Scratch::at(
                    url,
                    self.config.database.url.as_ref(),
                    &self.config.database.maintenance_db,
                )
                .await
            }
            None => Scratch::throwaway(&local, &self.scratch_name(&local)).await,
        }
        .map_err(|e| broken("target", report, started, e.into()))?;
        report.database = scratch.name().to_owned();
        report.target = scratch.described.clone();

        let result = self
            .on_scratch(&scratch, &local, workdir.path(), report)
            .await;
        report.kept = scratch.finish(self.options.keep).await;
        result
    }

    /// The copy's name on a throwaway server: production's own, so
    /// migrations that name their database behave as they will there.
    fn scratch_name(&self, local: &Local) -> String {
        local
            .database
            .clone()
            .or_else(|| {
                self.config
                    .database
                    .url
                    .as_ref()
                    .map(|u| u.dbname().to_owned())
            })
            .unwrap_or_else(|| "rehearsal".into())
    }

    async fn on_scratch(
        &self,
        scratch: &Scratch,
        local: &Local,
        workdir: &Path,
        report: &mut RehearsalReport,
    ) -> Result<(), Error> {
        let started = Instant::now();
        let roles = source::roles(local, scratch.bin_dir.as_deref())
            .await
            .map_err(|e| broken("restore", report, started, e.into()))?;
        report.roles_created = scratch
            .create_roles(&roles)
            .await
            .map_err(|e| broken("restore", report, started, e.into()))?;
        let seconds = scratch
            .load(local, self.options.jobs)
            .await
            .map_err(|e| broken("restore", report, started, e.into()))?;
        report.step(
            "restore",
            true,
            seconds,
            format!("into `{}`, with ANALYZE", scratch.name()),
        );
        self.check_cancel()?;

        // The snapshot step's cost, and a snapshot for the drill's store
        // restore when the source is not one already.
        let drill_store = Store::Fs(crate::store::fs::FsStore::new(workdir.join("store")));
        let mut drill_snapshot = local
            .manifest
            .as_ref()
            .map(|m| (m.id.to_string(), self.store));
        let measured_here =
            local.manifest.is_none() && (self.options.drill || local.dump_seconds.is_none());
        report.window.snapshot_seconds = local.dump_seconds.unwrap_or_default();
        report.window.snapshot_basis = match (&local.manifest, local.dump_seconds) {
            (Some(m), _) => format!("production's snapshot {} took this long", m.id),
            (None, Some(_)) => "the read-only dump of the live database just taken".into(),
            (None, None) => "a snapshot of the copy taken here".into(),
        };
        if measured_here {
            let started = Instant::now();
            let taken = async {
                let snapshotter = Snapshotter::prepare(
                    &drill_store,
                    &scratch.info,
                    &self.config.snapshot,
                    scratch.bin_dir.as_deref(),
                )
                .await?;
                snapshotter
                    .take(&SnapshotRequest::default(), self.cancel)
                    .await
            }
            .await
            .map_err(|e| broken("snapshot", report, started, e.into()))?;
            let seconds = started.elapsed().as_secs_f64();
            if local.dump_seconds.is_none() {
                report.window.snapshot_seconds = seconds;
            }
            report.step(
                "snapshot",
                true,
                seconds,
                format!(
                    "{} ({}) of the copy into a throwaway local store",
                    taken.id,
                    format_bytes(taken.size_bytes)
                ),
            );
            drill_snapshot = Some((taken.id.to_string(), Some(&drill_store)));
        }
        self.check_cancel()?;

        // A local clone, as a deploy makes one after its snapshot (no
        // session may be open on the copy while it is made).
        let mut drill = self.options.drill.then(Drill::default);
        let clone_name = derived_name(scratch.name(), "sg", &crate::random::hex4()).ok();
        if let (Some(d), Some(name)) = (drill.as_mut(), &clone_name) {
            let started = Instant::now();
            match make_clone(scratch, name).await {
                Ok(()) => {
                    d.clone_seconds = Some(started.elapsed().as_secs_f64());
                    report.window.clone_seconds = started.elapsed().as_secs_f64();
                }
                Err(e) => d.errors.push(format!("local clone: {e}")),
            }
        }

        // The deploy's preflight, on the copy.
        let started = Instant::now();
        let migrator = Migrator::new(&self.config.migrations, &scratch.info);
        let verifier = Verifier::new(&self.config.checks);
        let mut app = db::connect(&scratch.info)
            .await
            .map_err(|e| broken("preflight", report, started, e.into()))?;
        let pending = match migrator.plan().await {
            Ok(plan) => plan.pending,
            Err(e) => return Err(self.would_fail(report, "preflight", started, &e, None)),
        };
        report.pending = pending.iter().map(|p| p.path.clone()).collect();
        if let Err(e) = verifier.preflight(&app).await {
            return Err(self.would_fail(report, "preflight", started, &e, None));
        }
        let before = verifier.before_checks(&mut app).await;
        let failed = crate::deploy::failed_checks(&before);
        report.checks.extend(before);
        if !failed.is_empty() {
            let e: BoxError = format!("before-check(s) failed: {}", failed.join("; ")).into();
            return Err(self.would_fail(report, "preflight", started, &*e, None));
        }
        report.step(
            "preflight",
            true,
            started.elapsed().as_secs_f64(),
            format!("{} migration(s) pending", pending.len()),
        );

        let started = Instant::now();
        let captured = verifier.capture(&mut app, true).await;
        report.window.checks_seconds += started.elapsed().as_secs_f64();
        self.check_cancel()?;

        let migrated = self.migrate(&migrator, scratch, report).await;
        let mut outcome = migrated;
        if outcome.is_ok() {
            let started = Instant::now();
            let results = verifier.after(&mut app, captured).await;
            let seconds = started.elapsed().as_secs_f64();
            report.window.checks_seconds += seconds;
            let failed = crate::deploy::failed_checks(&results);
            let count = results.len();
            report.checks.extend(results);
            if failed.is_empty() {
                report.step("verify", true, seconds, format!("{count} check(s) passed"));
            } else {
                let e: BoxError = format!("check(s) failed: {}", failed.join("; ")).into();
                outcome = Err(self.would_fail(report, "verify", started, &*e, None));
            }
        }
        drop(app);
        self.estimate(report);

        if let Some(mut d) = drill {
            self.drill(
                scratch,
                &mut d,
                clone_name.as_deref(),
                drill_snapshot,
                pending.len(),
            )
            .await;
            report.drill = Some(d);
        }
        outcome?;
        match (report.window.budget_seconds, report.window.total_seconds) {
            (Some(budget), total) if total > budget => Err(Error::OverBudget(
                format!(
                    "estimated window {total:.1}s exceeds budget.max_downtime {budget:.0}s; costliest: {}",
                    report.window.costliest.join("; ")
                )
                .into(),
            )),
            _ => Ok(()),
        }
    }

    /// Applies the pending migrations, one at a time when each commits on
    /// its own, measuring each.
    async fn migrate(
        &self,
        migrator: &Migrator<'_>,
        scratch: &Scratch,
        report: &mut RehearsalReport,
    ) -> Result<(), Error> {
        let started = Instant::now();
        let tooling = |report: &mut RehearsalReport, e: crate::db::DbError| {
            broken("migrate", report, started, e.into())
        };
        let sampler = match locks::Sampler::start(&scratch.info).await {
            Ok(s) => s,
            Err(e) => return Err(tooling(report, e)),
        };
        let probe = match measure::Probe::connect(&scratch.info).await {
            Ok(p) => p,
            Err(e) => return Err(tooling(report, e)),
        };
        let external = self.config.migrations.command.clone();
        let one_at_a_time = external.is_none()
            && self.config.migrations.transaction == TransactionMode::PerMigration;
        let options = RunOptions {
            deploy_id: Some("rehearsal".into()),
            limit: one_at_a_time.then_some(1),
            ..RunOptions::default()
        };
        // Migrations applied, which a group (`transaction: all`) makes more
        // than the rows of the table; an external migrator counts as one.
        let mut applied_count = 0;
        loop {
            let mark = match probe.mark().await {
                Ok(m) => m,
                Err(e) => return Err(tooling(report, e)),
            };
            let from = Instant::now();
            let result = migrator.run(&options, self.cancel).await;
            let to = Instant::now();
            let change = match probe.since(&mark).await {
                Ok(c) => c,
                Err(e) => return Err(tooling(report, e)),
            };
            let held = sampler.holds(from, to).await;
            let mut measure = MigrationMeasure {
                version: String::new(),
                path: String::new(),
                seconds: (to - from).as_secs_f64(),
                rows: 0,
                wal_bytes: change.wal_bytes,
                rewrote: change.rewritten,
                locks: held,
            };
            match result {
                Ok(outcome) => {
                    let applied = outcome.applied;
                    applied_count += if external.is_some() { 1 } else { applied.len() };
                    match (&external, applied.as_slice()) {
                        (None, []) => break,
                        (None, [one]) => {
                            measure.version = one.version.clone();
                            measure.path = one.path.clone();
                            measure.seconds = one.seconds;
                            measure.rows = one.rows;
                        }
                        (None, many) => {
                            measure.version = "all".into();
                            measure.path = format!("{} migrations in one transaction", many.len());
                            measure.rows = many.iter().map(|a| a.rows).sum();
                        }
                        (Some(command), _) => {
                            measure.version = "external".into();
                            measure.path = format!("external migrator `{command}`");
                        }
                    }
                    tracing::info!(migration = %measure.path, seconds = format!("{:.2}", measure.seconds), "rehearsed");
                    report.migrations.push(measure);
                    if !one_at_a_time {
                        break;
                    }
                    self.check_cancel()?;
                }
                Err(e) => {
                    self.check_cancel()?;
                    let at = failure_location(&e);
                    measure.path = at
                        .as_ref()
                        .map(|(f, _)| f.clone())
                        .unwrap_or_else(|| "(failed)".into());
                    measure.version = "failed".into();
                    report.migrations.push(measure);
                    return Err(self.would_fail(report, "migrate", started, &e, at));
                }
            }
        }
        let total: f64 = report.migrations.iter().map(|m| m.seconds).sum();
        report.step(
            "migrate",
            true,
            started.elapsed().as_secs_f64(),
            format!("{applied_count} applied, {total:.2}s of migration time"),
        );
        Ok(())
    }

    /// Fills in the window's total, the budget and the costliest migrations.
    fn estimate(&self, report: &mut RehearsalReport) {
        let w = &mut report.window;
        w.migrations_seconds = report.migrations.iter().map(|m| m.seconds).sum();
        w.total_seconds =
            w.snapshot_seconds + w.clone_seconds + w.migrations_seconds + w.checks_seconds;
        w.budget_seconds = self.config.budget.max_downtime.map(|d| d.as_secs_f64());
        let mut by_cost: Vec<&MigrationMeasure> = report.migrations.iter().collect();
        by_cost.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        w.costliest = by_cost
            .iter()
            .take(3)
            .map(|m| {
                let lock = m
                    .longest_exclusive()
                    .map(|h| format!(", ACCESS EXCLUSIVE on {} {:.2}s", h.table, h.seconds))
                    .unwrap_or_default();
                format!("`{}` {:.2}s{lock}", m.path, m.seconds)
            })
            .collect();
    }

    /// Rolls the migrated copy back both ways a deploy can, timing each
    /// and checking that the migrations are pending again afterwards.
    async fn drill(
        &self,
        scratch: &Scratch,
        d: &mut Drill,
        clone: Option<&str>,
        snapshot: Option<(String, Option<&Store>)>,
        pending: usize,
    ) {
        let database = scratch.name();
        let short = crate::random::hex4();
        if let Some(clone) = clone.filter(|_| d.clone_seconds.is_some()) {
            let started = Instant::now();
            let failed = derived_name(database, "failed", &short).unwrap_or_default();
            match clone::swap_in(&scratch.admin, database, clone, &failed).await {
                Ok(()) => {
                    d.clone_swap_seconds = Some(started.elapsed().as_secs_f64());
                    self.verify_rolled_back(scratch, d, "clone swap", pending)
                        .await;
                    drop_scratch(scratch, &failed).await;
                }
                Err(e) => d.errors.push(format!("clone swap: {}", chain(&e))),
            }
        }
        match snapshot {
            Some((id, Some(store))) => {
                let started = Instant::now();
                let options = RestoreOptions {
                    snapshot: id.clone(),
                    terminate_sessions: true,
                    jobs: self.options.jobs,
                    replaced_label: "drill",
                    ..RestoreOptions::default()
                };
                let restored = async {
                    let plan = restore::plan(
                        store,
                        &scratch.info,
                        &self.config.database.maintenance_db,
                        scratch.bin_dir.as_deref(),
                        options,
                    )
                    .await
                    .map_err(|e| chain(&e))?;
                    plan.execute(store, &Cancel::never())
                        .await
                        .map_err(|e| match e {
                            RestoreFailure::Verify(e) | RestoreFailure::Restore(e) => chain(&e),
                        })
                }
                .await;
                match restored {
                    Ok(r) => {
                        d.store_restore_seconds = Some(started.elapsed().as_secs_f64());
                        d.snapshot = Some(format!("{id} from {}", store_name(store)));
                        self.verify_rolled_back(scratch, d, "store restore", pending)
                            .await;
                        if let Some(replaced) = r.replaced_as {
                            drop_scratch(scratch, &replaced).await;
                        }
                    }
                    Err(e) => d.errors.push(format!("store restore of {id}: {e}")),
                }
            }
            _ => d
                .errors
                .push("store restore: no snapshot to restore (no store configured)".into()),
        }
    }

    /// After a drill rollback every migration must be pending again.
    async fn verify_rolled_back(
        &self,
        scratch: &Scratch,
        d: &mut Drill,
        how: &str,
        pending: usize,
    ) {
        match Migrator::new(&self.config.migrations, &scratch.info)
            .plan()
            .await
        {
            Ok(plan) if plan.pending.len() == pending => d.verified.push(format!(
                "after the {how}, all {pending} migration(s) are pending again"
            )),
            Ok(plan) => d.errors.push(format!(
                "after the {how}, {} migration(s) are pending, {pending} expected",
                plan.pending.len()
            )),
            Err(e) => d.errors.push(format!("after the {how}: {}", chain(&e))),
        }
    }

    /// Records that the deploy would fail here (exit 8) and where.
    fn would_fail(
        &self,
        report: &mut RehearsalReport,
        step: &'static str,
        started: Instant,
        e: &(dyn std::error::Error + 'static),
        at: Option<(String, usize)>,
    ) -> Error {
        let message = chain(e);
        report.step(
            step,
            false,
            started.elapsed().as_secs_f64(),
            message.clone(),
        );
        let (file, line) = at.unzip();
        report.failure = Some(FailureReport {
            step: step.into(),
            message: message.clone(),
            file,
            line,
        });
        Error::RehearsalFailed(format!("{step}: {message}").into())
    }

    fn check_cancel(&self) -> Result<(), Error> {
        if self.cancel.is_cancelled() {
            Err(Error::failed("rehearse", "cancelled by a signal"))
        } else {
            Ok(())
        }
    }
}

/// The failing migration's file and line.
fn failure_location(e: &MigrateError) -> Option<(String, usize)> {
    match e {
        MigrateError::Apply(ApplyError::Migration { failure, .. }) => {
            Some((failure.path.clone(), failure.line))
        }
        _ => None,
    }
}

/// A local clone of the scratch database, closed to connections, as a
/// deploy makes one.
async fn make_clone(scratch: &Scratch, name: &str) -> Result<(), String> {
    let admin: Client = db::connect(&scratch.admin).await.map_err(|e| chain(&e))?;
    let props = DatabaseProperties::read(&admin, scratch.name())
        .await
        .map_err(|e| chain(&e))?
        .ok_or_else(|| format!("`{}` does not exist", scratch.name()))?;
    clone::create(&admin, scratch.name(), name, &props)
        .await
        .map_err(|e| chain(&e))
}

async fn drop_scratch(scratch: &Scratch, name: &str) {
    if let Ok(admin) = db::connect(&scratch.admin).await
        && let Err(e) = db::admin::drop_database(&admin, name).await
    {
        tracing::warn!(database = name, error = %e, "cannot drop a drill database");
    }
}

fn store_name(store: &Store) -> &'static str {
    match store {
        Store::S3(_) => "the S3 store",
        Store::Fs(_) => "a local-directory store",
    }
}
