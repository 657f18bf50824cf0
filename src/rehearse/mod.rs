//! `snapguard rehearse`: the deploy itself on a copy of production, timed
//! (DESIGN sections 1, 2, 9).
//!
//! Source ([`source`]: a store snapshot, a dump file, or a live database
//! dumped read-only) → scratch database ([`target`]: a throwaway local
//! server, or `--target-url`) → the deploy's own pipeline on the copy
//! ([`pipeline`]: its preflight, snapshot into a throwaway local store,
//! local clone, migrate, verify and rollback), with the migrate step
//! observed ([`meter`]): each migration's WAL and rewrites ([`measure`])
//! and locks ([`locks`]) → the estimated maintenance window against
//! `budget.max_downtime` → with `--drill`, the deploy's own rollback both
//! ways (clone swap, then a second deploy rolled back by store restore),
//! timed, with the write guard's verdict and the journal's steps.
//!
//! Production is never connected to, except by `--from-url`'s read-only
//! `pg_dump`.

pub mod catch_up;
pub mod confirm;
pub mod locks;
pub mod measure;
pub mod meter;
pub mod pipeline;
pub mod report;
pub mod source;
pub mod target;

use std::path::Path;
use std::time::Instant;

use self::meter::Meter;
use self::pipeline::{Run, Target};
use self::report::{Drill, DrillRollback, MigrationMeasure, RehearsalReport, Verdict};
use self::source::{Local, Source};
use self::target::Scratch;
use crate::cancel::Cancel;
use crate::config::{Config, LocalClone, Offsite};
use crate::db::{self, ConnInfo};
use crate::deploy::marker;
use crate::error::{BoxError, Error, chain};
use crate::migrate::apply::TransactionMode;
use crate::migrate::migrator::Migrator;
use crate::progress::format_bytes;
use crate::report::{FailureReport, Outcome};
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
    report.window.budget_seconds = config.budget.max_downtime.map(|d| d.as_secs_f64());
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

        if let Source::Pgbackrest(config) = &self.options.source {
            let started = Instant::now();
            let scratch = Scratch::restored(
                config,
                &self.scratch_name(None),
                self.config.database.pg_bin_dir.as_deref(),
            )
            .await
            .map_err(|e| broken("source", report, started, e.into()))?;
            report.source = scratch.described.clone();
            report.source_version = Some(scratch.version.clone());
            report.database = scratch.name().to_owned();
            report.target = scratch.described.clone();
            report.step(
                "source",
                true,
                started.elapsed().as_secs_f64(),
                scratch.described.clone(),
            );
            let result = self
                .on_scratch(&scratch, None, workdir.path(), report)
                .await;
            report.kept = scratch.finish(self.options.keep).await;
            return result;
        }
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
                    self.config.database.pg_bin_dir.as_deref(),
                )
                .await
            }
            None => {
                Scratch::throwaway(
                    &local,
                    &self.scratch_name(Some(&local)),
                    self.config.database.pg_bin_dir.as_deref(),
                )
                .await
            }
        }
        .map_err(|e| broken("target", report, started, e.into()))?;
        report.database = scratch.name().to_owned();
        report.target = scratch.described.clone();

        let result = self
            .on_scratch(&scratch, Some(&local), workdir.path(), report)
            .await;
        report.kept = scratch.finish(self.options.keep).await;
        result
    }

    /// The copy's name on a throwaway server: production's own, so
    /// migrations that name their database behave as they will there.
    fn scratch_name(&self, local: Option<&Local>) -> String {
        local
            .and_then(|l| l.database.clone())
            .or_else(|| {
                self.config
                    .database
                    .url
                    .as_ref()
                    .map(|u| u.dbname().to_owned())
            })
            .unwrap_or_else(|| "rehearsal".into())
    }

    /// The rehearsal on the scratch copy: `local` loaded into it first,
    /// when the copy is made from a dump (a restored cluster holds its
    /// database already).
    async fn on_scratch(
        &self,
        scratch: &Scratch,
        local: Option<&Local>,
        workdir: &Path,
        report: &mut RehearsalReport,
    ) -> Result<(), Error> {
        let started = Instant::now();
        let mut seconds = 0.0;
        if let Some(local) = local {
            let roles = source::roles(local, scratch.bin_dir.as_deref())
                .await
                .map_err(|e| broken("restore", report, started, e.into()))?;
            report.roles_created = scratch
                .create_roles(&roles)
                .await
                .map_err(|e| broken("restore", report, started, e.into()))?;
            seconds = scratch
                .load(local, self.options.jobs)
                .await
                .map_err(|e| broken("restore", report, started, e.into()))?;
        }
        // A snapshot a deploy took holds that deploy's open row in
        // `snapguard.deploys`: on the copy it is no deploy at all, and left
        // open it would stop the rehearsed deploy's preflight.
        let app = db::connect(&scratch.info)
            .await
            .map_err(|e| broken("restore", report, started, e.into()))?;
        let closed = marker::supersede_all(
            &app,
            "superseded: carried into a rehearsal copy by its snapshot",
        )
        .await
        .map_err(|e| broken("restore", report, started, e.into()))?;
        drop(app);
        if closed > 0 {
            tracing::info!(
                count = closed,
                "closed the copy's records of deploys that were running when its snapshot was taken"
            );
        }
        report.step(
            "restore",
            true,
            seconds,
            match local {
                Some(_) => format!("into `{}`, with ANALYZE", scratch.name()),
                None => format!(
                    "`{}` as restored, with production's own planner statistics",
                    scratch.name()
                ),
            },
        );
        self.check_cancel()?;

        // A snapshot a deploy took predates that deploy's migrations:
        // production already has them, so they are not the rehearsal's.
        let started = Instant::now();
        let caught_up = catch_up::run(
            self.config,
            self.store,
            local.and_then(|l| l.manifest.as_ref()),
            &scratch.info,
            self.cancel,
        )
        .await
        .map_err(|e| broken("catch up", report, started, e))?;
        if let Some(caught_up) = caught_up {
            tracing::info!(applied = caught_up.applied, "{}", caught_up.detail);
            report.step(
                "catch up",
                true,
                started.elapsed().as_secs_f64(),
                caught_up.detail,
            );
        }
        self.check_cancel()?;

        // The deploy itself on the copy, its migrate step measured; with
        // `--drill` it ends in the deploy's rollback, by the local clone.
        let target = Target::new(self.config, scratch, &workdir.join("store"));
        let one_at_a_time = self.config.migrations.command.is_none()
            && self.config.migrations.transaction == TransactionMode::PerMigration;
        let mut meter = Meter::new(&scratch.info, one_at_a_time);
        let local_clone = if self.options.drill {
            LocalClone::Always
        } else {
            self.config.snapshot.local_clone
        };
        let first = target
            .deploy(
                local_clone,
                self.options.drill,
                Some(&mut meter),
                self.cancel,
            )
            .await?;
        report.migrations = std::mem::take(&mut meter.measures);
        report.lint = first.report.lint.clone().map(|lint| {
            confirm::confirm(
                lint,
                &report.migrations,
                &crate::lint::Settings::of(&self.config.lint),
            )
        });
        let dump_seconds = local.and_then(|l| l.dump_seconds);
        report.window.snapshot_seconds = dump_seconds.unwrap_or_default();
        report.window.snapshot_basis = match (local.and_then(|l| l.manifest.as_ref()), dump_seconds)
        {
            (Some(m), _) => format!("production's snapshot {} took this long", m.id),
            (None, Some(_)) => "the read-only dump of the live database just taken".into(),
            (None, None) => "the rehearsed deploy's snapshot of the copy".into(),
        };
        self.take_in(&first, report);
        estimate(report);
        let verdict = self.verdict(&first, meter.applied, report);

        if self.options.drill {
            let mut drill = Drill::default();
            self.drill(&target, scratch, &first, &mut drill).await;
            report.drill = Some(drill);
        }
        verdict?;
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

    /// Copies what the rehearsed deploy reported into the rehearsal's
    /// report: its steps, pending migrations, checks and timings.
    fn take_in(&self, run: &Run, report: &mut RehearsalReport) {
        let deployed = &run.report;
        report.steps.extend(deployed.steps.iter().cloned());
        report.pending = deployed.pending.clone();
        report.checks = deployed.checks.clone();
        let step_seconds = |name: &str| {
            deployed
                .steps
                .iter()
                .find(|s| s.step == name)
                .map_or(0.0, |s| s.seconds)
        };
        let w = &mut report.window;
        if let Some(snapshot) = &deployed.snapshot {
            if w.snapshot_seconds == 0.0 {
                w.snapshot_seconds = snapshot.seconds;
            }
            w.clone_seconds = snapshot.clone_seconds.unwrap_or_default();
            w.offsite = Some(snapshot.offsite);
            // The snapshot step also captured the compare checks' before
            // sides: check time, not snapshot time. Clone-first, the step
            // held no dump (its upload ran beside the next steps).
            let clone = snapshot.clone_seconds.unwrap_or_default();
            let dump = if snapshot.offsite == Offsite::BeforeMigrate {
                snapshot.seconds
            } else {
                0.0
            };
            w.checks_seconds += (step_seconds("snapshot") - dump - clone).max(0.0);
        }
        w.checks_seconds += step_seconds("verify");
    }

    /// The rehearsal's verdict from the deploy's: `Ok` when the deploy
    /// succeeded (or only the drill rolled it back); exit 8 when the
    /// deploy would fail, naming the step, file and line.
    fn verdict(
        &self,
        run: &Run,
        applied: usize,
        report: &mut RehearsalReport,
    ) -> Result<(), Error> {
        // A signal stopped the deploy (which rolled the copy back): the
        // rehearsal was cut short, which says nothing about the deploy.
        if run.result.is_err() && self.cancel.is_cancelled() {
            return Err(Error::failed("rehearse", "cancelled by a signal"));
        }
        let failure = run.report.failure.clone();
        let drilled = run.drilled();
        match &run.result {
            Ok(()) => {}
            Err(_) if drilled => {}
            Err(Error::Failed { .. }) => {
                return Err(Error::failed(
                    "rehearse",
                    format!("the rehearsed deploy could not run: {}", run.message()),
                ));
            }
            Err(_) => {
                let failure = failure.unwrap_or_else(|| FailureReport {
                    step: "deploy".into(),
                    message: run.message(),
                    file: None,
                    line: None,
                });
                return Err(would_fail(report, failure));
            }
        }
        if let Some(step) = report.steps.iter_mut().find(|s| s.step == "migrate") {
            let total: f64 = report.migrations.iter().map(|m| m.seconds).sum();
            step.detail = format!("{applied} applied, {total:.2}s of migration time");
        }
        // The rehearsal ran past them to measure them; the real deploy's
        // preflight stops on them.
        let lint_errors = report.lint.as_ref().map_or(0, |l| l.failing());
        if lint_errors > 0 {
            let failure = FailureReport {
                step: "preflight".into(),
                message: format!(
                    "{lint_errors} lint finding(s) at the error level: the deploy's preflight would stop (see the lint lines)"
                ),
                file: None,
                line: None,
            };
            return Err(would_fail(report, failure));
        }
        Ok(())
    }

    /// The drill: the deploy's own rollback, both ways. The first run
    /// (with a local clone) rolled back by swapping the clone in; a second
    /// run of the deploy without a clone rolls back by restoring its store
    /// snapshot. After each, every migration must be pending again.
    async fn drill(&self, target: &Target<'_>, scratch: &Scratch, first: &Run, d: &mut Drill) {
        let pending = first.report.pending.len();
        if pending == 0 && self.config.migrations.command.is_none() {
            d.errors
                .push("nothing to roll back: no migration is pending on the copy".into());
            return;
        }
        d.clone_seconds = first.report.snapshot.as_ref().and_then(|s| s.clone_seconds);
        if !self.drilled(target, scratch, first, d, pending).await {
            return;
        }
        let second = match target
            .deploy(LocalClone::Never, true, None, self.cancel)
            .await
        {
            Ok(run) => run,
            Err(e) => {
                d.errors.push(format!("store restore: {}", chain(&e)));
                return;
            }
        };
        self.drilled(target, scratch, &second, d, pending).await;
    }

    /// Records one drilled rollback; `true` when it restored the database
    /// and left every migration pending.
    async fn drilled(
        &self,
        target: &Target<'_>,
        scratch: &Scratch,
        run: &Run,
        d: &mut Drill,
        pending: usize,
    ) -> bool {
        let drilled = run.drilled();
        let rollback = run.report.rollback.clone().unwrap_or_default();
        let journal = match &run.report.deploy_id {
            Some(id) => target.journal_steps(id).await,
            None => Vec::new(),
        };
        let how = if rollback.database.starts_with("clone swap") {
            "clone swap"
        } else {
            "store restore"
        };
        d.rollbacks.push(DrillRollback {
            how: how.into(),
            outcome: run.report.outcome.as_str().into(),
            database: rollback.database.clone(),
            write_guard: rollback.write_guard.clone(),
            journal,
            seconds: rollback.restore_seconds,
        });
        if let Some(kept) = &rollback.failed_database_kept_as {
            drop_scratch(scratch, kept).await;
        }
        if !drilled {
            d.errors.push(format!(
                "{how}: the deploy did not reach the drill: {}",
                run.message()
            ));
            return false;
        }
        if run.report.outcome != Outcome::RolledBack {
            d.errors.push(format!("{how}: {}", run.message()));
            return false;
        }
        match how {
            "clone swap" => d.clone_swap_seconds = Some(rollback.restore_seconds),
            _ => {
                d.store_restore_seconds = Some(rollback.restore_seconds);
                d.snapshot = run
                    .report
                    .snapshot
                    .as_ref()
                    .map(|s| format!("{} from the rehearsal's local-directory store", s.id));
            }
        }
        self.verify_rolled_back(scratch, d, how, pending).await
    }

    /// After a drill rollback every migration must be pending again.
    async fn verify_rolled_back(
        &self,
        scratch: &Scratch,
        d: &mut Drill,
        how: &str,
        pending: usize,
    ) -> bool {
        match Migrator::new(&self.config.migrations, &scratch.info)
            .plan()
            .await
        {
            Ok(plan) if plan.pending.len() == pending => {
                d.verified.push(format!(
                    "after the {how}, all {pending} migration(s) are pending again"
                ));
                true
            }
            Ok(plan) => {
                d.errors.push(format!(
                    "after the {how}, {} migration(s) are pending, {pending} expected",
                    plan.pending.len()
                ));
                false
            }
            Err(e) => {
                d.errors.push(format!("after the {how}: {}", chain(&e)));
                false
            }
        }
    }

    fn check_cancel(&self) -> Result<(), Error> {
        if self.cancel.is_cancelled() {
            Err(Error::failed("rehearse", "cancelled by a signal"))
        } else {
            Ok(())
        }
    }
}

async fn drop_scratch(scratch: &Scratch, name: &str) {
    if let Ok(admin) = db::connect(&scratch.admin).await
        && let Err(e) = db::admin::drop_database(&admin, name).await
    {
        tracing::warn!(database = name, error = %e, "cannot drop a drill database");
    }
}

/// The rehearsed deploy would fail: `failure` goes in the report and
/// names the error (exit 8).
fn would_fail(report: &mut RehearsalReport, failure: FailureReport) -> Error {
    let e = Error::RehearsalFailed(format!("{}: {}", failure.step, failure.message).into());
    report.failure = Some(failure);
    e
}

/// Fills in the window's total and its costliest migrations.
fn estimate(report: &mut RehearsalReport) {
    let w = &mut report.window;
    w.migrations_seconds = report.migrations.iter().map(|m| m.seconds).sum();
    let work = w.migrations_seconds + w.checks_seconds;
    // Clone-first, the snapshot streams from the clone beside the
    // migrations (the window waits for the longer) or after the window.
    w.total_seconds = match w.offsite {
        Some(Offsite::BeforeMaintenanceOff) => w.clone_seconds + w.snapshot_seconds.max(work),
        Some(Offsite::After) => w.clone_seconds + work,
        Some(Offsite::BeforeMigrate) | None => w.snapshot_seconds + w.clone_seconds + work,
    };
    w.estimated = true;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rehearse::locks::{Hold, Mode};

    fn measured(path: &str, seconds: f64, exclusive: Option<f64>) -> MigrationMeasure {
        MigrationMeasure {
            version: path.into(),
            path: path.into(),
            seconds,
            rows: 0,
            wal_bytes: None,
            rewrote: Vec::new(),
            locks: exclusive
                .map(|s| Hold {
                    table: "public.orders".into(),
                    mode: Mode::AccessExclusive,
                    seconds: s,
                })
                .into_iter()
                .collect(),
        }
    }

    fn rehearsed(offsite: Option<Offsite>) -> RehearsalReport {
        let mut report = RehearsalReport::new();
        report.window.snapshot_seconds = 10.0;
        report.window.clone_seconds = 1.0;
        report.window.checks_seconds = 0.5;
        report.window.offsite = offsite;
        report.migrations = vec![
            measured("1_a.sql", 2.0, None),
            measured("2_b.sql", 4.0, Some(3.5)),
            measured("3_c.sql", 0.25, None),
            measured("4_d.sql", 1.0, None),
        ];
        report
    }

    #[test]
    fn the_window_is_estimated_as_the_offsite_policy_orders_the_work() {
        let total = |offsite| {
            let mut report = rehearsed(offsite);
            estimate(&mut report);
            assert!(report.window.estimated);
            assert_eq!(report.window.migrations_seconds, 7.25);
            report.window.total_seconds
        };
        // Dump, clone, then the migrations and checks, one after another.
        assert_eq!(total(None), 10.0 + 1.0 + 7.75);
        assert_eq!(total(Some(Offsite::BeforeMigrate)), 10.0 + 1.0 + 7.75);
        // The dump streams beside the work; the window waits for the longer.
        assert_eq!(total(Some(Offsite::BeforeMaintenanceOff)), 1.0 + 10.0);
        // The dump ends after the window.
        assert_eq!(total(Some(Offsite::After)), 1.0 + 7.75);
    }

    #[test]
    fn the_three_costliest_migrations_are_named_with_their_exclusive_lock() {
        let mut report = rehearsed(None);
        estimate(&mut report);
        assert_eq!(
            report.window.costliest,
            [
                "`2_b.sql` 4.00s, ACCESS EXCLUSIVE on public.orders 3.50s",
                "`1_a.sql` 2.00s",
                "`4_d.sql` 1.00s"
            ]
        );
    }
}
