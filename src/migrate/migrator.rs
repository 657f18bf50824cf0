//! The migrator as a whole: read the folder, connect, take the migration
//! lock, plan against the history, apply. `snapguard migrate` runs it alone;
//! `deploy` runs it as its Migrate step.

use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::Client;

use super::apply::{self, Applied, ApplyError, ApplyOptions};
use super::external::{self, ExternalError};
use super::history;
use super::plan::{self, Entry, PlanError};
use super::source::{self, Directives, Format, Migration, SourceError, Version};
use crate::cancel::Cancel;
use crate::config::MigrationsConfig;
use crate::db::{self, ConnInfo, DbError};

/// Why the migrator stopped. [`MigrateError::changed_nothing`] tells a
/// refusal before any change from a failure while applying.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The migrations folder is not usable.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The folder and the history disagree (drift, missing, out of order).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Connecting, locking or reading the history failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Another migrator holds the lock.
    #[error(
        "another migrator is running on database `{database}`: the migration lock was still held after waiting {waited:?} (`migrations.lock_wait`)"
    )]
    Locked {
        /// The database.
        database: String,
        /// How long this one waited.
        waited: Duration,
    },
    /// `migrate baseline` with a version that cannot be one.
    #[error("{0}")]
    Baseline(String),
    /// Applying failed (or was refused at plan time, see `changed_nothing`).
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The external migrator failed.
    #[error(transparent)]
    External(#[from] ExternalError),
}

impl MigrateError {
    /// The file and line of the migration that failed on the server.
    pub fn failed_at(&self) -> Option<(String, usize)> {
        match self {
            MigrateError::Apply(ApplyError::Migration { failure, .. }) => {
                Some((failure.path.clone(), failure.line))
            }
            _ => None,
        }
    }

    /// Whether the migrator stopped before changing the database.
    pub fn changed_nothing(&self) -> bool {
        match self {
            MigrateError::Source(_)
            | MigrateError::Plan(_)
            | MigrateError::Db(_)
            | MigrateError::Locked { .. }
            | MigrateError::Baseline(_) => true,
            MigrateError::Apply(e) => matches!(e, ApplyError::NeedsNoTransaction(_)),
            MigrateError::External(e) => !e.started(),
        }
    }
}

/// What a run is for.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Plan and show the SQL; change nothing, take no lock.
    pub dry_run: bool,
    /// Recorded in the history.
    pub release_id: Option<String>,
    /// Recorded in the history.
    pub deploy_id: Option<String>,
    /// Apply at most this many pending migrations (`rehearse` applies one
    /// at a time to measure each); all when `None`.
    pub limit: Option<usize>,
}

/// A pending migration, as a dry run shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PendingMigration {
    /// The history key.
    pub version: String,
    /// The file.
    pub path: String,
    /// Runs in a transaction.
    pub transaction: bool,
    /// Repeats until it changes no rows.
    pub batched: bool,
    /// The SQL.
    pub sql: String,
}

/// What a run did, or would do.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// The folder's format; `None` with an external migrator.
    pub format: Option<Format>,
    /// What was pending when the run started.
    pub pending: Vec<PendingMigration>,
    /// What was applied; empty in a dry run.
    pub applied: Vec<Applied>,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The external migrator, when one ran instead.
    pub external_command: Option<String>,
}

/// `migrate status`: the folder against the history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// The folder.
    pub dir: PathBuf,
    /// Its format.
    pub format: Format,
    /// Every migration and history row.
    pub entries: Vec<Entry>,
    /// Why `migrate` would refuse to run, if it would.
    pub problem: Option<String>,
}

/// The migrator for one database.
pub struct Migrator<'a> {
    config: &'a MigrationsConfig,
    db: &'a ConnInfo,
}

impl<'a> Migrator<'a> {
    /// A migrator for `db` configured by `config`.
    pub fn new(config: &'a MigrationsConfig, db: &'a ConnInfo) -> Self {
        Migrator { config, db }
    }

    /// Reads the migrations folder.
    pub fn load(&self) -> Result<(Format, Vec<Migration>), SourceError> {
        source::load(&self.config.dir, self.config.format)
    }

    /// Connects and takes the migration lock, waiting `migrations.lock_wait`.
    async fn connect_locked(&self) -> Result<Client, MigrateError> {
        let client = db::connect(self.db).await?;
        if !history::lock(&client, self.config.lock_wait).await? {
            return Err(MigrateError::Locked {
                database: self.db.dbname().to_owned(),
                waited: self.config.lock_wait,
            });
        }
        Ok(client)
    }

    /// Applies what is pending (or, with `dry_run`, only says what it would
    /// apply). With `migrations.command` set, runs that instead.
    pub async fn run(
        &self,
        options: &RunOptions,
        cancel: &Cancel,
    ) -> Result<Outcome, MigrateError> {
        if let Some(command) = &self.config.command {
            return self.run_external(command, options, cancel).await;
        }
        let (format, migrations) = self.load()?;
        let mut client = if options.dry_run {
            db::connect(self.db).await?
        } else {
            self.connect_locked().await?
        };
        let applied = history::read(&client).await?;
        let mut pending = plan::pending(&migrations, &applied, self.config.plan)?;
        if let Some(limit) = options.limit {
            pending.truncate(limit);
        }
        apply::check_mode(&pending, self.config.transaction)?;
        let described = pending.iter().map(|m| describe(m)).collect();
        if options.dry_run || pending.is_empty() {
            return Ok(Outcome {
                format: Some(format),
                pending: described,
                applied: Vec::new(),
                dry_run: options.dry_run,
                external_command: None,
            });
        }
        tracing::info!(pending = pending.len(), format = %format, mode = ?self.config.transaction, "applying migrations");
        let apply_options = ApplyOptions {
            mode: self.config.transaction,
            lock_timeout: self.config.lock_timeout,
            lock_retries: self.config.lock_retries,
            statement_timeout: self.config.statement_timeout,
            release_id: options.release_id.clone(),
            deploy_id: options.deploy_id.clone(),
        };
        let applied = apply::apply(&mut client, &pending, &apply_options, cancel).await?;
        Ok(Outcome {
            format: Some(format),
            pending: described,
            applied,
            dry_run: false,
            external_command: None,
        })
    }

    /// What `run` would apply: a dry run that cannot be cancelled.
    pub async fn plan(&self) -> Result<Outcome, MigrateError> {
        let options = RunOptions {
            dry_run: true,
            ..RunOptions::default()
        };
        self.run(&options, &Cancel::never()).await
    }

    async fn run_external(
        &self,
        command: &str,
        options: &RunOptions,
        cancel: &Cancel,
    ) -> Result<Outcome, MigrateError> {
        let outcome = Outcome {
            format: None,
            pending: Vec::new(),
            applied: Vec::new(),
            dry_run: options.dry_run,
            external_command: Some(command.to_owned()),
        };
        if options.dry_run {
            return Ok(outcome);
        }
        // Holding snapguard's lock keeps two pipelines from running the
        // external migrator at once, whatever locking it does itself.
        let _session = self.connect_locked().await?;
        external::run(command, self.db, cancel).await?;
        Ok(outcome)
    }

    /// The folder against the history; nothing is changed, no lock taken.
    pub async fn status(&self) -> Result<Status, MigrateError> {
        let (format, migrations) = self.load()?;
        let client = db::connect(self.db).await?;
        let applied = history::read(&client).await?;
        let problem = plan::pending(&migrations, &applied, self.config.plan)
            .err()
            .map(|e| e.to_string());
        Ok(Status {
            dir: self.config.dir.clone(),
            format,
            entries: plan::status(&migrations, &applied),
            problem,
        })
    }

    /// Records `version` as a baseline: every migration at or below it
    /// counts as applied elsewhere. Refused below the newest applied
    /// version, where it would hide what the history already says. Returns
    /// how many migrations in the folder it covers.
    pub async fn baseline(&self, version: &str, name: &str) -> Result<usize, MigrateError> {
        let parsed = Version::parse(version).ok_or_else(|| {
            MigrateError::Baseline(format!(
                "`{version}` is not a migration version (digits, or dotted digits like 1.2)"
            ))
        })?;
        let (_, migrations) = self.load()?;
        let client = self.connect_locked().await?;
        let applied = history::read(&client).await?;
        if let Some(newer) = plan::newest_applied(&applied).filter(|v| *v > parsed) {
            return Err(MigrateError::Baseline(format!(
                "the history already has version {newer}, above {version}; a baseline must be at or above the newest applied version"
            )));
        }
        history::ensure(&client).await?;
        history::record_baseline(&client, version, name).await?;
        let covered = migrations
            .iter()
            .filter(|m| m.version.as_ref().is_some_and(|v| *v <= parsed))
            .count();
        tracing::info!(version, covered, "baseline recorded");
        Ok(covered)
    }
}

fn describe(m: &Migration) -> PendingMigration {
    let Directives {
        transaction, batch, ..
    } = m.directives;
    PendingMigration {
        version: plan::history_key(m),
        path: m.path.display().to_string(),
        transaction,
        batched: batch.is_some(),
        sql: m.sql.clone(),
    }
}
