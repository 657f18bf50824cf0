//! The migrator as a whole: read the folder, connect, take the migration
//! lock, plan against the history, apply. `snapguard migrate` runs it alone;
//! `deploy` runs it as its Migrate step.

use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::Client;

use super::apply::{self, Applied, ApplyError, ApplyOptions};
use super::external::{self, ExternalError};
use super::history;
use super::native::{self, NativeError, NativeHistory, Tool};
use super::plan::{self, AppliedRow, Entry, PlanError};
use super::repair::{self, Repaired};
use super::source::{self, Directives, Format, Migration, SourceError, Strictness, Version};
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
    /// The native tool's history records a failed migration, or its table
    /// is not the tool's.
    #[error(transparent)]
    Native(#[from] NativeError),
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
    /// `migrate repair` asked for a version that has nothing to repair.
    #[error("{0}")]
    Repair(String),
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
            | MigrateError::Native(_)
            | MigrateError::Locked { .. }
            | MigrateError::Baseline(_)
            | MigrateError::Repair(_) => true,
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
    /// The file line where `sql` starts (for lint findings).
    #[serde(skip)]
    pub first_line: usize,
    /// Runs its own `BEGIN … COMMIT` blocks, outside snapguard's transaction.
    #[serde(skip)]
    pub own_transactions: bool,
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

/// The folder and both histories, read together.
struct Loaded {
    format: Format,
    migrations: Vec<Migration>,
    /// snapguard's own history.
    own: Vec<AppliedRow>,
    /// The native tool's rows; none without a tool or its table.
    native: Vec<AppliedRow>,
    /// The native tool whose table counts, if any.
    tool: Option<Tool>,
}

impl Loaded {
    /// snapguard's history with what the native tool's adds.
    fn applied(&self) -> Vec<AppliedRow> {
        native::merge(self.own.clone(), self.native.clone())
    }
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

    /// Reads the migrations folder, refusing a migration with no SQL.
    pub fn load(&self) -> Result<(Format, Vec<Migration>), SourceError> {
        self.load_with(Strictness::RefuseEmpty)
    }

    fn load_with(&self, strictness: Strictness) -> Result<(Format, Vec<Migration>), SourceError> {
        source::load_with(&self.config.dir, self.config.format, strictness)
    }

    /// The native tool whose history table counts for `format`: the
    /// format's own, or sqlx's when an undeclared plain `.sql` folder (the
    /// layout snapguard and sqlx share) meets a database with
    /// `_sqlx_migrations`.
    async fn native_tool(&self, client: &Client, format: Format) -> Result<Option<Tool>, DbError> {
        if self.config.native_history == NativeHistory::Ignore {
            return Ok(None);
        }
        if let Some(tool) = Tool::of(format) {
            return Ok(Some(tool));
        }
        let undeclared = self.config.format.is_none() && format == Format::Snapguard;
        Ok((undeclared && native::exists(client, Tool::Sqlx).await?).then_some(Tool::Sqlx))
    }

    /// Both histories beside `folder`, the migrations read (read first, so
    /// that a broken file is reported before connecting). A native history
    /// recording a failed migration is an error here; `status` reports it
    /// instead.
    async fn with_history(
        &self,
        client: &Client,
        folder: (Format, Vec<Migration>),
        strictness: Strictness,
    ) -> Result<Loaded, MigrateError> {
        let (mut format, mut migrations) = folder;
        let tool = self.native_tool(client, format).await?;
        if tool == Some(Tool::Sqlx) && format != Format::Sqlx {
            // Read again as sqlx, for sqlx's checksums.
            (format, migrations) =
                source::load_with(&self.config.dir, Some(Format::Sqlx), strictness)?;
        }
        let own = history::read(client).await?;
        let native = match tool {
            Some(tool) => native::read(client, tool, &migrations)
                .await?
                .unwrap_or_default(),
            None => Vec::new(),
        };
        Ok(Loaded {
            format,
            migrations,
            own,
            native,
            tool,
        })
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
        // The folder first: a broken file is reported without connecting.
        let folder = self.load()?;
        let mut client = if options.dry_run {
            db::connect(self.db).await?
        } else {
            self.connect_locked().await?
        };
        let loaded = self
            .with_history(&client, folder, Strictness::RefuseEmpty)
            .await?;
        let applied = loaded.applied();
        let Loaded {
            format,
            migrations,
            tool,
            ..
        } = loaded;
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
            native: tool.filter(|_| self.config.native_history == NativeHistory::Keep),
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
        // A migration just made by `migrate new` is shown as empty, not an
        // error: only applying refuses it.
        let lenient = Strictness::KeepEmpty;
        let folder = self.load_with(lenient)?;
        let client = db::connect(self.db).await?;
        let loaded = self.with_history(&client, folder.clone(), lenient).await;
        let (format, migrations, applied, problem) = match loaded {
            Ok(l) => {
                let applied = l.applied();
                let written: Vec<Migration> =
                    l.migrations.iter().filter(|m| !m.empty).cloned().collect();
                let problem = plan::pending(&written, &applied, self.config.plan)
                    .err()
                    .map(|e| e.to_string());
                (l.format, l.migrations, applied, problem)
            }
            // What the native tool records as failed is the problem; the
            // rest is shown from snapguard's own history.
            Err(MigrateError::Native(e @ NativeError::Failed { .. })) => {
                let (format, migrations) = folder;
                (
                    format,
                    migrations,
                    history::read(&client).await?,
                    Some(e.to_string()),
                )
            }
            Err(e) => return Err(e),
        };
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
        let folder = self.load()?;
        let client = self.connect_locked().await?;
        let loaded = self
            .with_history(&client, folder, Strictness::RefuseEmpty)
            .await?;
        let (applied, migrations) = (loaded.applied(), loaded.migrations);
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

    /// Accepts the current files of applied migrations whose checksum
    /// changed (`versions`, or every one): see [`repair`](super::repair).
    pub async fn repair(&self, versions: &[String]) -> Result<Vec<Repaired>, MigrateError> {
        let parsed: Vec<Version> = versions
            .iter()
            .map(|v| {
                Version::parse(v).ok_or_else(|| {
                    MigrateError::Repair(format!("`{v}` is not a migration version"))
                })
            })
            .collect::<Result<_, _>>()?;
        let folder = self.load()?;
        let mut client = self.connect_locked().await?;
        let Loaded {
            migrations,
            own,
            native,
            tool,
            ..
        } = self
            .with_history(&client, folder, Strictness::RefuseEmpty)
            .await?;
        // Both tables, unmerged: each keeps its own checksum.
        let rows: Vec<AppliedRow> = own.into_iter().chain(native).collect();
        let wanted = |m: &Migration| {
            parsed.is_empty()
                || m.version
                    .as_ref()
                    .is_some_and(|v| parsed.iter().any(|p| p.same_number(v)))
        };
        let repairs = repair::changed(&migrations, &rows, wanted);
        if let Some(v) = parsed.iter().find(|p| {
            !repairs
                .iter()
                .any(|r| Version::parse(&r.version).is_some_and(|v| v.same_number(p)))
        }) {
            return Err(MigrateError::Repair(format!(
                "version {v} has nothing to repair: it is not applied, or its file matches what was recorded"
            )));
        }
        repair::record(&mut client, tool, &repairs).await?;
        for r in &repairs {
            tracing::info!(version = %r.version, table = r.table, old = %r.old, new = %r.new, "checksum repaired");
        }
        Ok(repairs)
    }
}

/// A migration as a dry run shows it (and `lint` reads it).
pub fn describe(m: &Migration) -> PendingMigration {
    let Directives {
        transaction, batch, ..
    } = m.directives;
    PendingMigration {
        version: plan::history_key(m),
        path: m.path.display().to_string(),
        transaction,
        batched: batch.is_some(),
        sql: m.sql.clone(),
        first_line: m.first_line,
        own_transactions: m.directives.own_transactions,
    }
}
