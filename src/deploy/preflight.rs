//! The deploy's preflight: everything that can be checked before anything
//! changes. `deploy` runs it and goes on; `plan` runs the same function and
//! stops, so `plan` exits 3 exactly when `deploy` would, with the same
//! cause.

use chrono::Utc;
use std::time::Instant;
use tokio_postgres::Client;

use super::journal::{self, Journal, State, Step};
use super::watch::Watch;
use super::{DeployOptions, Deployer, lock, marker};
use crate::cancel::Cancel;
use crate::checks::{BeforeState, Verifier};
use crate::ci;
use crate::config::{Config, Provider, RdsTarget};
use crate::db;
use crate::db::privileges::{self, Capabilities};
use crate::error::{BoxError, Error};
use crate::lint::{self, LintReport};
use crate::migrate::apply::TransactionMode;
use crate::migrate::external;
use crate::migrate::migrator::{Migrator, PendingMigration};
use crate::release::Ledger;
use crate::report::Report;
use crate::snapshot::SnapshotId;
use crate::snapshot::clone::{self, CloneMethod};
use crate::snapshot::pgbackrest::Pgbackrest;
use crate::snapshot::rds::Rds;
use crate::snapshot::take::{SnapshotError, Snapshotter};
use crate::store::Store;

/// Who runs the preflight, which decides how it treats the deploy lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// `deploy`: takes the lock and keeps it for the steps.
    Deploy,
    /// `plan`: refuses as `deploy` would when another run holds the lock,
    /// but never takes it, so a `plan` cannot make a deploy exit 6.
    Plan,
}

impl Runner {
    fn command(self) -> &'static str {
        match self {
            Runner::Deploy => "deploy",
            Runner::Plan => "plan",
        }
    }
}

/// What preflight found: what `plan` prints and the report starts from.
#[derive(Debug, Clone)]
pub struct Found {
    /// The server's version.
    pub server_version: String,
    /// `pg_database_size` of the application database.
    pub database_bytes: u64,
    /// The pending migrations, in the order they would run.
    pub pending: Vec<PendingMigration>,
    /// The external migrator, when one is configured.
    pub external_command: Option<String>,
    /// What `migrations.pending_command` said: whether the external
    /// migrator has anything to apply; `None` without one.
    pub external_pending: Option<bool>,
    /// Whether a local clone would be made (`Err`: why not).
    pub local_clone: Result<CloneMethod, String>,
    /// What `snapshot.provider` found ready; `None` for `pg_dump`.
    pub provider: Option<ProviderReady>,
    /// The client programs chosen, with versions and paths.
    pub tools: Vec<String>,
    /// The release this deploy would ship.
    pub release: Option<String>,
    /// The release the ledger records as current.
    pub previous_release: Option<String>,
    /// `snapguard lint` of the pending migrations, judged against the
    /// database: warnings and info (errors stop preflight).
    pub lint: LintReport,
    /// No pending migration, no external migrator (or one whose
    /// `pending_command` says it has nothing to apply), no release command:
    /// the deploy would end here without maintenance.
    pub nothing_to_deploy: bool,
}

/// What preflight found of the snapshot provider.
#[derive(Debug, Clone)]
pub enum ProviderReady {
    /// `pgbackrest`: the backup a rollback starts from, the databases it
    /// restores.
    Pgbackrest(crate::snapshot::pgbackrest::Ready),
    /// `rds`: the instance.
    Rds(crate::snapshot::rds::Instance),
    /// `aurora-clone`: the cluster.
    Aurora(crate::snapshot::aurora::Cluster),
}

impl Found {
    /// Why there is nothing to deploy, when there is not.
    pub fn nothing_reason(&self) -> &'static str {
        match self.external_pending {
            Some(false) => {
                "nothing to deploy: the external migrator has nothing to apply (`migrations.pending_command`) and there is no release command"
            }
            _ => "nothing to deploy: no pending migration and no release command",
        }
    }
}

/// The run state: what preflight hands to the steps, and what the steps
/// hand on to each other.
pub(super) struct Prepared<'a> {
    /// The session holding the deploy lock.
    pub(super) admin: Client,
    /// The deploy's journal, saved at every step.
    pub(super) journal: Journal,
    /// Ready to take the snapshot.
    pub(super) snapshotter: Snapshotter<'a, Store>,
    /// When maintenance went on: the downtime runs from here.
    pub(super) downtime_from: Option<Instant>,
    /// The compare checks' before sides, captured by the snapshot step for
    /// the verify step.
    pub(super) before: Option<BeforeState>,
    /// Preflight's decision on the local clone (`Err`: why not), which the
    /// snapshot step follows: the restore room was checked against it.
    pub(super) local_clone: Result<CloneMethod, String>,
    /// What this process watches for the journal.
    pub(super) watch: Watch,
}

impl<'a> Deployer<'a> {
    /// `snapguard plan`: the deploy's preflight, run for real (it writes
    /// and deletes a probe object in the store, and runs the
    /// before-checks), stopping before maintenance goes on.
    pub async fn plan(&self, options: &DeployOptions) -> Result<Found, Error> {
        let mut report = Report::new(self.db.dbname());
        self.preflight(options, &mut report, Runner::Plan, &Cancel::on_signals())
            .await
            .map(|(found, _)| found)
    }

    /// Everything that can be checked without changing anything. The
    /// prepared steps are `None` when there is nothing to deploy (or for
    /// `plan`).
    pub(super) async fn preflight(
        &self,
        options: &DeployOptions,
        report: &mut Report,
        runner: Runner,
        cancel: &Cancel,
    ) -> Result<(Found, Option<Prepared<'a>>), Error> {
        let started = Instant::now();
        let command = runner.command();
        let refuse = |e: BoxError| Error::nothing_changed(command, e);
        let admin = match runner {
            Runner::Deploy => self.lock(command).await?,
            Runner::Plan => lock::unless_held(&self.admin_info, self.db, command).await?,
        };
        let unfinished = journal::unfinished(self.store)
            .await
            .map_err(|e| refuse(e.into()))?;
        if let Some(id) = unfinished.last() {
            let j = Journal::read(self.store, id)
                .await
                .map_err(|e| refuse(e.into()))?;
            return Err(refuse(Box::new(Unfinished {
                deploy_id: id.clone(),
                step: j.step.name(),
                state: j.state,
                recover: self.config.invocation.command("recover"),
            })));
        }
        // One session to the application database serves the rest of
        // preflight.
        let mut app = db::connect(self.db).await.map_err(|e| refuse(e.into()))?;
        if let Some(blocked) = marker::not_clear(&app, self.db.dbname())
            .await
            .map_err(|e| refuse(e.into()))?
        {
            return Err(refuse(Box::new(blocked)));
        }
        let snapshotter = self.snapshotter().await.map_err(|e| refuse(e.into()))?;
        let plan = Migrator::new(&self.config.migrations, self.db)
            .plan()
            .await
            .map_err(|e| refuse(e.into()))?;
        report.pending = plan.pending.iter().map(|p| p.path.clone()).collect();
        let lint = self
            .lint(&plan.pending, &app)
            .await
            .map_err(|e| refuse(e.into()))?;
        report.lint = Some(lint.clone());
        if options.lint_blocks && lint.failing() > 0 {
            return Err(refuse(Box::new(LintRefusal::of(&lint))));
        }
        let verifier = Verifier::new(&self.config.checks);
        verifier
            .preflight(&app)
            .await
            .map_err(|e| refuse(e.into()))?;
        let before = verifier.before_checks(&mut app).await;
        let failed = crate::checks::failures(&before);
        report.checks.extend(before);
        if !failed.is_empty() {
            return Err(refuse(Box::new(BeforeChecksFailed(failed))));
        }
        drop(app);
        let database_bytes = database_size(&admin, self.db.dbname())
            .await
            .map_err(|e| refuse(e.into()))?;
        let role = Capabilities::read(&admin, self.db.dbname(), snapshotter.server().major())
            .await
            .map_err(|e| refuse(e.into()))?;
        // How this deploy would roll back, decided once: a point-in-time
        // restore needs archiving proven; a clone swap or store restore
        // needs the grants, the clone decided, and room for the archive.
        let (provider, local_clone) = match &self.config.snapshot.provider {
            Provider::Pgbackrest(config) => {
                let pgbackrest = Pgbackrest::new(config);
                let ready = pgbackrest
                    .preflight(&admin)
                    .await
                    .map_err(|e| refuse(e.into()))?;
                if config.verify {
                    pgbackrest
                        .preflight_verify(snapshotter.server().major())
                        .await
                        .map_err(|e| refuse(e.into()))?;
                }
                tracing::warn!(stanza = %config.stanza, databases = %ready.databases.join(", "), "snapshot.provider: pgbackrest: a rollback is a point-in-time restore of the WHOLE cluster, every database on this server, to the restore point made before the migrations");
                let no_clone =
                    "`snapshot.provider: pgbackrest` rolls back by a point-in-time restore";
                (
                    Some(ProviderReady::Pgbackrest(ready)),
                    Err(no_clone.to_owned()),
                )
            }
            Provider::Rds(config) if matches!(config.target, RdsTarget::Cluster(_)) => {
                let cluster = Rds::new(config)
                    .await
                    .preflight_cluster(self.db)
                    .await
                    .map_err(|e| refuse(e.into()))?;
                tracing::warn!(cluster = %cluster.id, "snapshot.provider: aurora-clone: a rollback clones the WHOLE cluster as it was before the migrations and swaps the clone in under its name (typically 10 minutes or more on AWS); every database on it goes back");
                let no_clone =
                    "`snapshot.provider: aurora-clone` rolls back by cloning the cluster";
                (
                    Some(ProviderReady::Aurora(cluster)),
                    Err(no_clone.to_owned()),
                )
            }
            Provider::Rds(config) => {
                let instance = Rds::new(config)
                    .await
                    .preflight(self.db)
                    .await
                    .map_err(|e| refuse(e.into()))?;
                tracing::warn!(instance = %instance.id, "snapshot.provider: rds: a rollback renames the WHOLE instance aside and restores the snapshot taken before the migrations under its name (typically 10 minutes or more on AWS); every database on it goes back");
                let no_clone = "`snapshot.provider: rds` rolls back by restoring the instance";
                (Some(ProviderReady::Rds(instance)), Err(no_clone.to_owned()))
            }
            Provider::PgDump => {
                let local_clone = self
                    .pg_dump_rollback(&admin, &role, database_bytes)
                    .await
                    .map_err(refuse)?;
                (None, local_clone)
            }
        };
        for (i, switch) in self.config.maintenance.iter().enumerate() {
            switch
                .preflight(i, &admin)
                .await
                .map_err(|e| refuse(e.into()))?;
        }
        let ledger = Ledger::read(self.store)
            .await
            .map_err(|e| refuse(e.into()))?;
        let release = options
            .release
            .clone()
            .or_else(|| self.config.release.id.clone())
            .or_else(|| ci::release_id(&|v| std::env::var(v).ok()));
        report.release = release.clone();
        report.previous_release = ledger.current().map(str::to_owned);
        let external = self.config.migrations.command.clone();
        let external_pending = match (&external, &self.config.migrations.pending_command) {
            (Some(_), Some(check)) => Some(
                external::has_pending(check, self.db, cancel)
                    .await
                    .map_err(|e| refuse(e.into()))?,
            ),
            _ => None,
        };
        // An external migrator is work unless it says it has none.
        let external_work = external.is_some() && external_pending != Some(false);
        let found = Found {
            lint,
            server_version: snapshotter.server().to_string(),
            database_bytes,
            nothing_to_deploy: plan.pending.is_empty()
                && !external_work
                && self.config.release.command.is_none(),
            pending: plan.pending,
            external_command: external,
            external_pending,
            local_clone,
            provider,
            tools: snapshotter.tools(),
            release,
            previous_release: report.previous_release.clone(),
        };
        let seconds = started.elapsed().as_secs_f64();
        if found.nothing_to_deploy {
            self.events.finished(
                report,
                Step::Preflight,
                true,
                seconds,
                found.nothing_reason(),
            );
            return Ok((found, None));
        }
        self.events.finished(
            report,
            Step::Preflight,
            true,
            seconds,
            match &found.external_command {
                Some(_) => "external migrator configured".to_owned(),
                None => format!("{} migration(s) pending", found.pending.len()),
            },
        );
        if runner == Runner::Plan {
            return Ok((found, None));
        }
        let now = Utc::now();
        let deploy_id = SnapshotId::new(self.db.dbname(), now).to_string();
        report.deploy_id = Some(deploy_id.clone());
        let journal = Journal {
            release: found.release.clone(),
            previous_release: found.previous_release.clone(),
            all_or_nothing: found.external_command.is_none()
                && self.config.migrations.transaction == TransactionMode::All,
            pending: report.pending.clone(),
            ..Journal::begun(deploy_id, self.db.dbname().to_owned(), now)
        };
        let prepared = Prepared {
            admin,
            journal,
            snapshotter,
            downtime_from: None,
            before: None,
            local_clone: found.local_clone.clone(),
            watch: Watch::default(),
        };
        Ok((found, Some(prepared)))
    }

    /// Lints the pending migrations against the database; under GitHub
    /// Actions each finding is also an annotation on its file and line.
    async fn lint(
        &self,
        pending: &[PendingMigration],
        app: &tokio_postgres::Client,
    ) -> Result<LintReport, lint::LintError> {
        let all = self.config.migrations.transaction == TransactionMode::All;
        let inputs = pending
            .iter()
            .map(|p| lint::Input::of(p, all))
            .collect::<Result<Vec<_>, _>>()?;
        let report = lint::run(inputs, &lint::Settings::of(&self.config.lint), Some(app)).await?;
        if ci::GitHub::from_env().is_some() {
            eprint!("{}", lint::output::github(&report));
        }
        for f in report
            .findings
            .iter()
            .filter(|f| f.level > lint::Level::Info)
        {
            tracing::warn!(
                rule = f.rule,
                at = %format!("{}:{}", f.file, f.line),
                "lint: {}",
                f.message
            );
        }
        Ok(report)
    }

    /// The configured database's snapshots, its `pg_dump` and `pg_restore`
    /// chosen and the store found writable (preflight's, and `recover`'s
    /// when it takes a deploy's snapshot from its clone again).
    pub(super) async fn snapshotter(&self) -> Result<Snapshotter<'a, Store>, SnapshotError> {
        let config: &'a Config = self.config;
        Snapshotter::prepare(
            self.store,
            self.db,
            &config.snapshot,
            config.database.pg_bin_dir.as_deref(),
        )
        .await
    }

    /// `snapshot.provider: pg_dump`: whether the role may swap databases
    /// (when a rollback replaces the database), the local clone decision,
    /// and room for a store restore when no clone will be made.
    async fn pg_dump_rollback(
        &self,
        admin: &Client,
        role: &Capabilities,
        database_bytes: u64,
    ) -> Result<Result<CloneMethod, String>, BoxError> {
        if self.rollback_replaces_database() {
            let missing = role.missing_for_swap(self.db.dbname());
            if !missing.is_empty() {
                return Err(Box::new(CannotRollBack {
                    role: role.role.clone(),
                    database: self.db.dbname().to_owned(),
                    missing,
                }));
            }
        }
        let local_clone = clone::decide(
            admin,
            role,
            self.db.dbname(),
            database_bytes,
            &self.config.snapshot,
        )
        .await?;
        self.check_restore_room(&local_clone, database_bytes)
            .await?;
        Ok(local_clone)
    }

    /// Whether a rollback would replace the database (clone swap or store
    /// restore): not with `transaction: all` and the built-in migrator,
    /// where a failure is a `ROLLBACK`.
    fn rollback_replaces_database(&self) -> bool {
        self.config.migrations.command.is_some()
            || self.config.migrations.transaction != TransactionMode::All
    }

    /// When a rollback would restore from the store (no local clone and no
    /// single transaction), the archive must fit in `$TMPDIR`: found out
    /// now, not in the middle of a rollback. The deploy's own archive is
    /// not taken yet: the larger of the newest snapshot's archive and the
    /// database's size now stands for it (a database that grew since its
    /// last snapshot passed on the old size, and its rollback refused).
    async fn check_restore_room(
        &self,
        local_clone: &Result<CloneMethod, String>,
        database_bytes: u64,
    ) -> Result<(), BoxError> {
        if local_clone.is_ok() || !self.rollback_replaces_database() {
            return Ok(());
        }
        let database = self.db.dbname();
        let newest = crate::snapshot::list(self.store)
            .await
            .ok()
            .and_then(|l| {
                l.into_iter()
                    .rev()
                    .find_map(|s| s.manifest.filter(|m| m.database == database))
            })
            .map_or(0, |m| m.archive_bytes);
        crate::scratch::ensure_room(newest.max(database_bytes)).map_err(Into::into)
    }
}

/// The connected role could not carry out the rollback the deploy would
/// need: refused before anything changes, never found out mid-rollback.
#[derive(Debug, thiserror::Error)]
#[error(
    "role `{role}` could not roll `{database}` back (the local clone's swap and a store restore both create, hand over and rename databases): it lacks {}; see docs/permissions.md",
    privileges::describe(missing)
)]
pub struct CannotRollBack {
    /// The connected role.
    pub role: String,
    /// The application database.
    pub database: String,
    /// Each missing capability with its grant.
    pub missing: Vec<privileges::Missing>,
}

/// An earlier deploy did not finish: `recover` must close it first.
#[derive(Debug, thiserror::Error)]
#[error(
    "deploy {deploy_id} did not finish (it stopped at step `{step}`, state {state:?}); run `{recover}` to finish its rollback before deploying again"
)]
pub struct Unfinished {
    /// The unfinished deploy.
    pub deploy_id: String,
    /// The step it stopped at.
    pub step: &'static str,
    /// Its journal's state.
    pub state: State,
    /// The command that finishes it.
    pub recover: String,
}

/// Before-checks that did not pass, one line each.
#[derive(Debug, thiserror::Error)]
#[error("before-check(s) failed: {}", .0.join("; "))]
pub struct BeforeChecksFailed(pub Vec<String>);

/// Why preflight stops on lint errors: each one with its rule, place and
/// the way out, a line each.
#[derive(Debug, thiserror::Error)]
#[error("lint found {} hazard(s) at the error level:\n  {}", .0.len(), .0.join("\n  "))]
pub struct LintRefusal(pub Vec<String>);

impl LintRefusal {
    fn of(report: &LintReport) -> LintRefusal {
        LintRefusal(
            report
                .findings
                .iter()
                .filter(|f| f.fails())
                .map(|f| {
                    format!(
                        "{}:{}: {}: {}{}; instead: {} (or `-- snapguard:allow {} <reason>` above the statement, or `lint.rules.{}: warn`)",
                        f.file,
                        f.line,
                        f.rule,
                        f.message,
                        f.table_context(),
                        f.safe,
                        f.rule,
                        f.rule
                    )
                })
                .collect(),
        )
    }
}

async fn database_size(admin: &Client, database: &str) -> Result<u64, db::DbError> {
    let size: i64 = admin
        .query_one("SELECT pg_database_size($1)", &[&database])
        .await
        .map_err(db::DbError::query(format!(
            "reading the size of `{database}`"
        )))?
        .get(0);
    Ok(size.max(0) as u64)
}
