//! `snapguard.yml` → one validated [`Config`].
//!
//! Every setting is resolved once, here, with a fixed precedence: command-line
//! flags, then `SNAPGUARD_*` environment variables (the key in capitals with
//! dots as underscores: `store.url` → `SNAPGUARD_STORE_URL`), then the file,
//! then defaults. Values from the file may use `${VAR}` interpolation. Each
//! value keeps its [`Origin`] so an error names the file, line and column, or
//! the variable or flag it came from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::codec::Compression;
use crate::db::ConnInfo;
use crate::store::{S3Options, Sse, StoreLocation};

pub mod checks;
pub mod choice;
mod file;
mod interpolate;
pub mod invocation;
mod keys;
pub mod maintenance;
pub mod migrations;
pub mod schema;
mod values;

use self::choice::Choice;
use self::file::{FileSections, file_settings};
use self::interpolate::defer_unset;
pub(crate) use self::interpolate::{interpolate_at, keep_hook_vars};
use self::keys::env_var_for;
use self::values::{parse_bool, parse_part_size};
pub use self::values::{parse_duration, parse_size};

pub use self::checks::ChecksConfig;
pub use self::maintenance::Switch;
pub use self::migrations::{Format, NativeHistory, PlanOptions, TransactionMode};

/// The default config file, relative to the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "snapguard.yml";

/// Where a setting's value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A position in the config file.
    File {
        /// The config file.
        path: PathBuf,
        /// One-based line.
        line: u64,
        /// One-based column.
        column: u64,
    },
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(&'static str),
    /// The built-in default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line, column } => {
                write!(f, "{}:{line}:{column}", path.display())
            }
            Origin::Env(var) => write!(f, "environment variable `{var}`"),
            Origin::Flag(flag) => write!(f, "flag `{flag}`"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// A configuration problem; every variant names where the bad value is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file exists but cannot be read.
    #[error("cannot read config file `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file given with `--config` does not exist.
    #[error("config file `{}` does not exist", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The YAML does not parse, or has an unknown key or a value of the wrong type.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// One-based line (0 when the parser could not tell).
        line: u64,
        /// One-based column (0 when the parser could not tell).
        column: u64,
        /// The parser's message.
        message: String,
    },
    /// A value is present but not valid for its key.
    #[error("{origin}: `{key}`: {message}")]
    Invalid {
        /// Where the value came from.
        origin: Origin,
        /// The dotted key, for example `store.part_size`.
        key: &'static str,
        /// What is wrong, without the value when it may hold a secret.
        message: String,
    },
    /// A `${VAR}` in the file names an unset variable.
    #[error("{origin}: `{key}`: environment variable `{var}` is not set")]
    MissingVar {
        /// Where the reference is.
        origin: Origin,
        /// The dotted key.
        key: &'static str,
        /// The variable's name.
        var: String,
    },
    /// A required setting is set nowhere.
    #[error("`{key}` is not configured: set it in {file}{}, or set `{env}`", flag.map(|f| format!(", pass `{f}`")).unwrap_or_default())]
    Missing {
        /// The dotted key.
        key: &'static str,
        /// The config file that was read (or the default name).
        file: String,
        /// The environment variable that would set it.
        env: String,
        /// The flag that would set it, if there is one.
        flag: Option<&'static str>,
    },
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--store`.
    pub store_url: Option<String>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
    /// The `database` section.
    pub database: DatabaseConfig,
    /// The `store` section.
    pub store: StoreConfig,
    /// The `snapshot` section.
    pub snapshot: SnapshotConfig,
    /// The `migrations` section.
    pub migrations: MigrationsConfig,
    /// The `checks` section.
    pub checks: ChecksConfig,
    /// The `maintenance` section: switches, turned on in order.
    pub maintenance: Vec<Switch>,
    /// The `notify` section: webhooks told every deploy's outcome.
    pub notify: Vec<maintenance::HttpCall>,
    /// The `release` section.
    pub release: ReleaseConfig,
    /// The `budget` section.
    pub budget: BudgetConfig,
    /// The `lint` section.
    pub lint: LintConfig,
    /// The global flags given, which every printed command repeats.
    pub invocation: invocation::Invocation,
    missing_hint: String,
    /// Required settings whose `${VAR}` was unset, reported by the command
    /// that needs them (see [`defer_unset`]).
    unset: Vec<UnsetVar>,
}

/// A `${VAR}` that was unset when the file was read.
#[derive(Debug, Clone)]
struct UnsetVar {
    origin: Origin,
    key: &'static str,
    var: String,
}

/// `database`: what to snapshot and restore.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `database.url`: the application database. Optional here because some
    /// commands (`snapshots list`) do not need it; see [`Config::database_url`].
    pub url: Option<ConnInfo>,
    /// `database.maintenance_db`: where snapguard connects to create, rename
    /// and drop databases.
    pub maintenance_db: String,
    /// `database.pg_bin_dir`: where to find `pg_dump` and `pg_restore`
    /// instead of searching.
    pub pg_bin_dir: Option<PathBuf>,
}

/// `store`: where snapshots live.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `store.url`: `s3://bucket/prefix` or `file:///path`.
    pub location: Option<StoreLocation>,
    /// The other `store.*` keys: how to reach an S3-compatible store.
    pub s3: S3Options,
}

/// `snapshot`: how snapshots are taken and restored.
#[derive(Debug, Clone)]
pub struct SnapshotConfig {
    /// `snapshot.compression`.
    pub compression: Compression,
    /// `snapshot.compression_level`.
    pub compression_level: i32,
    /// `snapshot.lock_wait_timeout`: passed to `pg_dump --lock-wait-timeout`
    /// so a snapshot fails instead of queueing behind an exclusive lock.
    pub lock_wait_timeout: Duration,
    /// `snapshot.restore_jobs`: `pg_restore -j`; the number of CPUs when unset.
    pub restore_jobs: Option<u32>,
    /// `snapshot.local_clone`: whether `deploy` also makes a local clone.
    pub local_clone: LocalClone,
    /// `snapshot.clone_limit`: the largest database `local_clone: auto`
    /// clones on a server whose free disk space cannot be seen from here
    /// (a managed server); `None`: `snapshot::clone::DEFAULT_UNSEEN_LIMIT`.
    pub clone_limit: Option<u64>,
    /// `snapshot.clone_method`: how the local clone's files are made on
    /// PostgreSQL 18 and later.
    pub clone_method: CloneMethodSetting,
    /// `snapshot.offsite`: when maintenance may come off relative to the
    /// store snapshot's commit.
    pub offsite: Offsite,
    /// With a provider other than `pg_dump`: whether a `pg_dump` snapshot
    /// goes to the store too, in the window before the migrations (a
    /// portable copy, and what `recover --snapshot` can restore when the
    /// provider cannot). Set by `snapshot.offsite: before-migrate`;
    /// always true for `pg_dump`.
    pub store_copy: bool,
    /// `snapshot.retention`: what `prune` keeps.
    pub retention: Retention,
    /// `snapshot.provider`: what takes the snapshot a rollback returns to.
    pub provider: Provider,
}

/// `snapshot.provider`: the engine that takes the deploy's snapshot and
/// rolls back to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// `pg_dump` to the store (and the local clone): the default.
    PgDump,
    /// A pgBackRest restore point; the rollback is a point-in-time restore
    /// of the whole cluster to it.
    Pgbackrest(PgbackrestConfig),
    /// RDS: a snapshot of the whole instance, the rollback renaming the
    /// instance aside and restoring the snapshot under its name (`rds`);
    /// or of an Aurora cluster, the rollback cloning the cluster as it was
    /// and swapping the clone in under its name (`aurora-clone`).
    Rds(RdsConfig),
}

/// `snapshot.provider` as a word (its settings are read beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// `pg_dump`.
    PgDump,
    /// `pgbackrest`.
    Pgbackrest,
    /// `rds`.
    Rds,
    /// `aurora-clone`.
    AuroraClone,
}

/// `snapshot.pgbackrest`: how snapguard drives pgBackRest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgbackrestConfig {
    /// `stanza`.
    pub stanza: String,
    /// `config`: pgBackRest's configuration file, when not its default.
    pub config: Option<String>,
    /// `user`: the OS user pgBackRest runs as (`runuser`, or `sudo -n`
    /// when snapguard is not root).
    pub user: Option<String>,
    /// `exec`: a prefix for commands that must run on the database host
    /// (`ssh postgres@db1`); the command follows it as one quoted word.
    pub exec: Option<String>,
    /// `stop`: stops the server for the restore.
    pub stop: String,
    /// `start`: starts it again.
    pub start: String,
    /// `verify`: before the rollback stops the server, restore the point
    /// into a throwaway server here and prove it holds the database as at
    /// the snapshot.
    pub verify: bool,
}

/// The keys of `snapshot.pgbackrest`.
const PGBACKREST_KEYS: [&str; 7] = [
    "snapshot.pgbackrest.stanza",
    "snapshot.pgbackrest.config",
    "snapshot.pgbackrest.user",
    "snapshot.pgbackrest.exec",
    "snapshot.pgbackrest.stop",
    "snapshot.pgbackrest.start",
    "snapshot.pgbackrest.verify",
];

/// The keys of `snapshot.rds`, each with the providers it is read by.
const RDS_KEYS: [(&str, &[ProviderKind]); 5] = [
    ("snapshot.rds.instance", &[ProviderKind::Rds]),
    ("snapshot.rds.cluster", &[ProviderKind::AuroraClone]),
    ("snapshot.rds.region", RDS_PROVIDERS),
    ("snapshot.rds.endpoint", RDS_PROVIDERS),
    ("snapshot.rds.wait", RDS_PROVIDERS),
];

/// The providers `snapshot.rds` configures.
const RDS_PROVIDERS: &[ProviderKind] = &[ProviderKind::Rds, ProviderKind::AuroraClone];

/// An RDS identifier (`DBInstanceIdentifier`, `DBClusterIdentifier`): 1
/// to 63 letters, digits or hyphens, starting with a letter, no two
/// hyphens in a row, none at the end. The rollback renames the instance
/// or cluster to `<id>-failed-<deploy>` (29 characters more): 34 at most
/// leaves room.
fn parse_rds_identifier(v: &str) -> Result<String, String> {
    let ok_chars = v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let starts = v.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !ok_chars || !starts || v.contains("--") || v.ends_with('-') {
        return Err(format!(
            "`{v}` is not an RDS identifier (letters, digits and single hyphens, starting with a letter)"
        ));
    }
    if v.len() > 34 {
        return Err(format!(
            "`{v}` is {} characters long; the rollback renames it to `<id>-failed-<deploy>` (29 characters more) and RDS allows 63: at most 34",
            v.len()
        ));
    }
    Ok(v.to_ascii_lowercase())
}

/// What `snapshot.rds` snapshots and restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdsTarget {
    /// `instance`: a `DBInstanceIdentifier` (`provider: rds`).
    Instance(String),
    /// `cluster`: an Aurora `DBClusterIdentifier` (`provider:
    /// aurora-clone`).
    Cluster(String),
}

impl RdsTarget {
    /// The identifier.
    pub fn id(&self) -> &str {
        match self {
            RdsTarget::Instance(id) | RdsTarget::Cluster(id) => id,
        }
    }
}

/// `snapshot.rds`: the RDS instance or Aurora cluster snapguard snapshots
/// and restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdsConfig {
    /// `instance` or `cluster`.
    pub target: RdsTarget,
    /// `region`: the AWS region, when not the environment's.
    pub region: Option<String>,
    /// `endpoint`: the RDS API's URL, when not AWS's (tests, a proxy).
    pub endpoint: Option<String>,
    /// `wait`: how long each wait on RDS (the snapshot, the rename, the
    /// restore) may take.
    pub wait: Duration,
}

/// `snapshot.local_clone`: a `CREATE DATABASE … TEMPLATE` copy made at
/// snapshot time, for a rollback in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalClone {
    /// Clone when the server has room for it; otherwise rely on the store.
    Auto,
    /// Always clone; a failed clone fails the deploy before anything changes.
    Always,
    /// Never clone.
    Never,
}

/// `snapshot.clone_method`: `file_copy_method` for the local clone on
/// PostgreSQL 18 and later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CloneMethodSetting {
    /// `clone` where the data directory is seen to share blocks, else the
    /// server's own `file_copy_method`.
    Auto,
    /// `clone` whatever snapguard can see (a server elsewhere whose file
    /// system its operator knows shares blocks).
    Clone,
    /// The server's own `file_copy_method` (`copy` unless changed).
    Copy,
}

/// `snapshot.offsite`: where the store snapshot sits in the deploy. With a
/// local clone, the snapshot is `pg_dump` of the clone (a frozen copy
/// nobody writes), streamed to the store while the migrations run; this
/// says when maintenance may come off. Without a clone there is nothing
/// frozen to dump, and every choice runs as [`Offsite::BeforeMigrate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Offsite {
    /// The snapshot is committed before the first migration runs (the
    /// window holds the whole dump).
    BeforeMigrate,
    /// Maintenance comes off once the deploy's steps passed *and* the
    /// snapshot is committed; a failed upload rolls the deploy back.
    BeforeMaintenanceOff,
    /// Maintenance comes off as soon as the steps pass; the upload finishes
    /// afterwards, and the deploy reports success only once it committed.
    After,
}

impl Offsite {
    /// The policy a deploy runs: this one with a local clone to dump from,
    /// else [`Offsite::BeforeMigrate`] (nothing frozen to stream). The one
    /// place this is decided: the snapshot step, `plan` and the reports
    /// all take it from here.
    pub fn effective(self, local_clone: bool) -> Offsite {
        if local_clone {
            self
        } else {
            Offsite::BeforeMigrate
        }
    }

    /// The name in `snapguard.yml`.
    pub fn as_str(self) -> &'static str {
        self.word()
    }
}

/// `snapshot.retention`: what `snapguard prune` keeps. A snapshot is kept
/// when it is among the newest `keep_last` *or* younger than `keep_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `snapshot.retention.keep_last`.
    pub keep_last: usize,
    /// `snapshot.retention.keep_days`; also how long replaced and failed
    /// databases are kept.
    pub keep_days: u32,
}

/// `release`: the application release the deploy ships.
#[derive(Debug, Clone, Default)]
pub struct ReleaseConfig {
    /// `release.id`; detected from the CI's environment when unset.
    pub id: Option<String>,
    /// `release.command`: ships the new version.
    pub command: Option<String>,
    /// `release.rollback`: puts the previous version back.
    pub rollback: Option<String>,
    /// `release.timeout`: how long each of those may run.
    pub timeout: Duration,
    /// `release.health`: polled after the release until healthy.
    pub health: Option<HealthConfig>,
}

/// `budget`: what a deploy may cost, checked by `rehearse`.
#[derive(Debug, Clone, Default)]
pub struct BudgetConfig {
    /// `budget.max_downtime`: the longest maintenance window acceptable.
    pub max_downtime: Option<Duration>,
}

/// `lint`: how `snapguard lint` (and `plan`, the deploy preflight and
/// `rehearse`) judge migrations. Plain values; the lint module types them.
#[derive(Debug, Clone, Default)]
pub struct LintConfig {
    /// `lint.rules.<id>`: `off`, `warn` or `error`, per rule that is set.
    pub levels: Vec<(String, String)>,
    /// `lint.small_table`: findings on smaller tables are `info`.
    pub small_table: Option<u64>,
    /// `lint.max_lock_hold`: a measured `ACCESS EXCLUSIVE` longer than this
    /// is a finding.
    pub max_lock_hold: Option<Duration>,
    /// `lint.server_version`: the PostgreSQL major the migrations will run
    /// on, for linting without a database (a database's own wins).
    pub server_version: Option<u32>,
    /// `lint.time_zone`: the session time zone the migrations will run
    /// with, for linting without a database.
    pub time_zone: Option<String>,
}

/// `release.health`.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// `release.health.url`: healthy when it answers 2xx.
    pub url: crate::db::Secret,
    /// `release.health.timeout`: give up after this long.
    pub timeout: Duration,
    /// `release.health.interval`: time between attempts.
    pub interval: Duration,
}

/// `migrations`: where migrations are and how they are applied.
#[derive(Debug, Clone)]
pub struct MigrationsConfig {
    /// `migrations.dir`, relative to the config file.
    pub dir: PathBuf,
    /// `migrations.format`; detected when `None` (`auto`).
    pub format: Option<Format>,
    /// `migrations.transaction`.
    pub transaction: TransactionMode,
    /// `migrations.lock_timeout`.
    pub lock_timeout: Duration,
    /// `migrations.lock_retries`.
    pub lock_retries: u32,
    /// `migrations.statement_timeout`.
    pub statement_timeout: Duration,
    /// `migrations.lock_wait`: how long a second migrator waits for the
    /// first before giving up (exit 6).
    pub lock_wait: Duration,
    /// `migrations.allow_out_of_order`, `allow_drift`, `allow_missing`.
    pub plan: PlanOptions,
    /// `migrations.command`: an external migrator run instead of the
    /// built-in one, through `sh -c`, with `DATABASE_URL` set.
    pub command: Option<String>,
    /// `migrations.native_history`.
    pub native_history: NativeHistory,
    /// `migrations.pending_command`: asks the external migrator whether it
    /// has anything to apply (exit 0: nothing), so that a deploy with
    /// nothing to do takes no window.
    pub pending_command: Option<String>,
}

impl Config {
    /// Loads `path` (or `./snapguard.yml` when `path` is `None` and the file
    /// exists), applies the process environment and `overrides`, and
    /// validates the result.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        Self::load_with_env(path, overrides, &|name| std::env::var(name).ok())
    }

    /// [`Config::load`] with an explicit environment, for tests.
    pub fn load_with_env(
        path: Option<&Path>,
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let (file, text) = read_file(path)?;
        let (mut settings, sections) = match (&file, &text) {
            (Some(file), Some(text)) => file_settings(file, text)?,
            _ => (Settings::new(), FileSections::default()),
        };
        for key in keys::KEYS {
            let var = env_var_for(key.name);
            if let Some(value) = env(&var) {
                settings.insert(key.name, Setting::plain(value, Origin::Env(var)));
            }
        }
        if let Some(url) = &overrides.database_url {
            settings.insert(
                "database.url",
                Setting::plain(url.clone(), Origin::Flag("--database-url")),
            );
        }
        if let Some(url) = &overrides.store_url {
            settings.insert(
                "store.url",
                Setting::plain(url.clone(), Origin::Flag("--store")),
            );
        }
        let base_dir = file
            .as_ref()
            .and_then(|f| f.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let (checks, maintenance, notify) = match &file {
            Some(f) => (
                checks::resolve(sections.checks, f, &base_dir)?,
                maintenance::resolve(sections.maintenance, f, &base_dir, env)?,
                maintenance::resolve_notify(sections.notify, f, env)?,
            ),
            None => (ChecksConfig::default(), Vec::new(), Vec::new()),
        };
        let mut config = Resolver {
            settings,
            env,
            base_dir,
        }
        .config(file)?;
        config.checks = checks;
        config.maintenance = maintenance;
        config.notify = notify;
        config.invocation = invocation::Invocation::new(
            path,
            overrides.store_url.as_deref(),
            overrides
                .database_url
                .as_deref()
                .zip(config.database.url.as_ref()),
        );
        Ok(config)
    }

    /// The application database, or an error that says how to set it.
    pub fn database_url(&self) -> Result<&ConnInfo, ConfigError> {
        self.database
            .url
            .as_ref()
            .ok_or_else(|| self.missing("database.url", Some("--database-url")))
    }

    /// The store location, or an error that says how to set it.
    pub fn store_location(&self) -> Result<&StoreLocation, ConfigError> {
        self.store
            .location
            .as_ref()
            .ok_or_else(|| self.missing("store.url", Some("--store")))
    }

    fn missing(&self, key: &'static str, flag: Option<&'static str>) -> ConfigError {
        if let Some(u) = self.unset.iter().find(|u| u.key == key) {
            return ConfigError::MissingVar {
                origin: u.origin.clone(),
                key,
                var: u.var.clone(),
            };
        }
        ConfigError::Missing {
            key,
            file: self.missing_hint.clone(),
            env: env_var_for(key),
            flag,
        }
    }
}

fn read_file(path: Option<&Path>) -> Result<(Option<PathBuf>, Option<String>), ConfigError> {
    let (path, explicit) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((Some(path), Some(text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok((None, None)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ConfigError::NotFound { path }),
        Err(source) => Err(ConfigError::Read { path, source }),
    }
}

/// One value and where it came from.
#[derive(Debug, Clone)]
pub(super) struct Setting {
    value: String,
    origin: Origin,
    /// Values from the file may contain `${VAR}`; values from the
    /// environment and flags are taken literally.
    interpolate: bool,
}

impl Setting {
    fn plain(value: String, origin: Origin) -> Self {
        Setting {
            value,
            origin,
            interpolate: false,
        }
    }
}

pub(super) type Settings = BTreeMap<&'static str, Setting>;

/// A YAML scalar of any type, read as text so every layer is handled alike.
#[derive(Debug)]
pub(crate) struct Scalar(pub(crate) String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

/// The ids of lint's rules, each with its `lint.rules.<id>` key: what a
/// `-- snapguard:allow <id>` comment may name. (lint's rule catalogue is
/// held to this list by its tests.)
pub fn lint_rule_ids() -> impl Iterator<Item = &'static str> {
    keys::KEYS
        .iter()
        .filter_map(|k| k.name.strip_prefix("lint.rules."))
}

struct Resolver<'a> {
    settings: Settings,
    env: &'a dyn Fn(&str) -> Option<String>,
    base_dir: PathBuf,
}

impl Resolver<'_> {
    /// Refuses a key set without the key it needs ([`keys::RELATIONS`]).
    fn check_relations(&self) -> Result<(), ConfigError> {
        let set = |key: &'static str| -> Result<Option<String>, ConfigError> {
            Ok(self.string(key)?.filter(|v| !v.trim().is_empty()))
        };
        for r in keys::RELATIONS {
            if set(r.key)?.is_none() {
                continue;
            }
            let needed = set(r.needs)?;
            let satisfied = match (needed.as_deref(), r.value) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(v), Some(wanted)) => v.trim() == wanted,
            };
            if !satisfied {
                return Err(self.invalid(r.key, r.why.into()));
            }
        }
        Ok(())
    }

    fn config(&self, file: Option<PathBuf>) -> Result<Config, ConfigError> {
        self.check_relations()?;
        let mut unset = Vec::new();
        let database = DatabaseConfig {
            url: defer_unset(
                self.parse("database.url", |v| {
                    ConnInfo::parse(v).map_err(|e| e.to_string())
                }),
                &mut unset,
            )?,
            maintenance_db: self.defaulted("database.maintenance_db", |v| Ok(v.to_owned()))?,
            pg_bin_dir: self
                .string("database.pg_bin_dir")?
                .map(|p| self.base_dir.join(p)),
        };
        let sse = match self.string("store.sse")?.as_deref() {
            None => None,
            Some("AES256") => Some(Sse::Aes256),
            Some("aws:kms") => Some(Sse::Kms {
                key_id: self.string("store.kms_key_id")?,
            }),
            Some(other) => {
                return Err(self.invalid(
                    "store.sse",
                    format!("unknown value `{other}`; expected `AES256` or `aws:kms`"),
                ));
            }
        };
        let store = StoreConfig {
            location: defer_unset(
                self.parse("store.url", |v| StoreLocation::parse(v, &self.base_dir)),
                &mut unset,
            )?,
            s3: S3Options {
                endpoint: self.string("store.endpoint")?,
                region: self.string("store.region")?,
                path_style: self.defaulted("store.path_style", parse_bool)?,
                sse,
                part_size: self.defaulted("store.part_size", parse_part_size)?,
            },
        };
        let compression: Compression = self.choice("snapshot.compression")?;
        let compression_level = self
            .parse("snapshot.compression_level", |v| {
                let level: i32 = v
                    .parse()
                    .map_err(|_| format!("`{v}` is not a whole number"))?;
                let valid = compression.valid_levels();
                if valid.contains(&level) {
                    Ok(level)
                } else {
                    Err(format!(
                        "{compression} takes a level from {} to {}, not {level}",
                        valid.start(),
                        valid.end()
                    ))
                }
            })?
            .unwrap_or_else(|| compression.default_level());
        let snapshot = SnapshotConfig {
            compression,
            compression_level,
            lock_wait_timeout: self.defaulted("snapshot.lock_wait_timeout", parse_duration)?,
            restore_jobs: self.parse("snapshot.restore_jobs", |v| match v.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!("`{v}` is not a whole number of at least 1")),
            })?,
            local_clone: self.choice("snapshot.local_clone")?,
            clone_limit: self.parse("snapshot.clone_limit", parse_size)?,
            clone_method: self.choice("snapshot.clone_method")?,
            offsite: self.choice("snapshot.offsite")?,
            store_copy: self.store_copy()?,
            provider: self.provider()?,
            retention: Retention {
                keep_last: self.defaulted("snapshot.retention.keep_last", |v| {
                    match v.parse::<usize>() {
                        Ok(n) if n >= 1 => Ok(n),
                        _ => Err(format!(
                            "`{v}` is not a whole number of at least 1 (the newest snapshot is always kept)"
                        )),
                    }
                })?,
                keep_days: self.defaulted("snapshot.retention.keep_days", |v| {
                    v.parse::<u32>()
                        .map_err(|_| format!("`{v}` is not a whole number of days"))
                })?,
            },
        };
        let health = match self.string("release.health.url")? {
            None => None,
            Some(url) => {
                let parsed = url::Url::parse(url.trim())
                    .map_err(|e| self.invalid("release.health.url", format!("not a URL: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(self.invalid(
                        "release.health.url",
                        format!(
                            "`{}:` URLs are not supported; use http or https",
                            parsed.scheme()
                        ),
                    ));
                }
                Some(HealthConfig {
                    url: crate::db::Secret::new(url.trim()),
                    timeout: self.defaulted("release.health.timeout", parse_duration)?,
                    interval: self.defaulted("release.health.interval", parse_duration)?,
                })
            }
        };
        let command = |key| self.string(key).map(|c| c.filter(|c| !c.trim().is_empty()));
        let release = ReleaseConfig {
            id: self.string("release.id")?.filter(|s| !s.trim().is_empty()),
            command: command("release.command")?,
            rollback: command("release.rollback")?,
            timeout: self.defaulted("release.timeout", parse_duration)?,
            health,
        };
        let flag = |key| self.defaulted(key, parse_bool);
        let migrations = MigrationsConfig {
            dir: self
                .base_dir
                .join(self.defaulted("migrations.dir", |v| Ok(v.to_owned()))?),
            format: self.choice("migrations.format")?,
            transaction: self.choice("migrations.transaction")?,
            lock_timeout: self.defaulted("migrations.lock_timeout", parse_duration)?,
            lock_retries: self.defaulted("migrations.lock_retries", |v| {
                v.parse::<u32>()
                    .map_err(|_| format!("`{v}` is not a whole number"))
            })?,
            statement_timeout: self.defaulted("migrations.statement_timeout", parse_duration)?,
            lock_wait: self.defaulted("migrations.lock_wait", parse_duration)?,
            plan: PlanOptions {
                allow_out_of_order: flag("migrations.allow_out_of_order")?,
                allow_drift: flag("migrations.allow_drift")?,
                allow_missing: flag("migrations.allow_missing")?,
            },
            command: self
                .string("migrations.command")?
                .filter(|c| !c.trim().is_empty()),
            native_history: self.choice("migrations.native_history")?,
            pending_command: self
                .string("migrations.pending_command")?
                .filter(|c| !c.trim().is_empty()),
        };
        let missing_hint = match &file {
            Some(f) => format!("`{}`", f.display()),
            None => format!("`{DEFAULT_CONFIG_FILE}` (not found)"),
        };
        Ok(Config {
            file,
            database,
            store,
            snapshot,
            migrations,
            checks: ChecksConfig::default(),
            maintenance: Vec::new(),
            notify: Vec::new(),
            release,
            budget: BudgetConfig {
                max_downtime: self.parse("budget.max_downtime", parse_duration)?,
            },
            lint: self.lint()?,
            invocation: invocation::Invocation::default(),
            missing_hint,
            unset,
        })
    }

    /// `snapshot.provider` and its section.
    /// [`SnapshotConfig::store_copy`]: with a provider, `snapshot.offsite`
    /// asks for the store copy, before the migrations (no clone is made
    /// to stream it from later).
    fn store_copy(&self) -> Result<bool, ConfigError> {
        let kind: ProviderKind = self.choice("snapshot.provider")?;
        if kind == ProviderKind::PgDump {
            return Ok(true);
        }
        let Some(policy) = self.parse("snapshot.offsite", Offsite::from_word)? else {
            return Ok(false);
        };
        if policy != Offsite::BeforeMigrate {
            return Err(self.invalid(
                "snapshot.offsite",
                format!(
                    "with `snapshot.provider: {}` the store copy is taken before the migrations (no local clone to stream it from later): set `before-migrate`, or leave `snapshot.offsite` out for none",
                    kind.word()
                ),
            ));
        }
        Ok(true)
    }

    fn provider(&self) -> Result<Provider, ConfigError> {
        let kind: ProviderKind = self.choice("snapshot.provider")?;
        let set = |key: &'static str| -> Result<Option<String>, ConfigError> {
            Ok(self.string(key)?.filter(|v| !v.trim().is_empty()))
        };
        // A provider's section that the chosen provider would ignore is a
        // mistake to say, not to pass over: the rollback would not be the
        // one its author expects.
        let sections = PGBACKREST_KEYS
            .iter()
            .map(|key| (*key, &[ProviderKind::Pgbackrest][..]))
            .chain(RDS_KEYS);
        for (key, read_by) in sections {
            if !read_by.contains(&kind) && set(key)?.is_some() {
                let words: Vec<String> = read_by
                    .iter()
                    .map(|p| format!("`snapshot.provider: {}`", p.word()))
                    .collect();
                return Err(self.invalid(key, format!("needs {}", words.join(" or "))));
            }
        }
        let required = |key: &'static str| -> Result<String, ConfigError> {
            set(key)?.ok_or_else(|| {
                self.invalid(
                    key,
                    format!(
                        "`snapshot.provider: {}` needs it (see docs/configuration.md)",
                        kind.word()
                    ),
                )
            })
        };
        Ok(match kind {
            ProviderKind::PgDump => Provider::PgDump,
            ProviderKind::Pgbackrest => Provider::Pgbackrest(PgbackrestConfig {
                stanza: required("snapshot.pgbackrest.stanza")?,
                config: set("snapshot.pgbackrest.config")?,
                user: set("snapshot.pgbackrest.user")?,
                exec: set("snapshot.pgbackrest.exec")?,
                stop: required("snapshot.pgbackrest.stop")?,
                start: required("snapshot.pgbackrest.start")?,
                verify: self.defaulted("snapshot.pgbackrest.verify", parse_bool)?,
            }),
            ProviderKind::Rds | ProviderKind::AuroraClone => Provider::Rds(RdsConfig {
                target: {
                    let (key, target): (_, fn(String) -> RdsTarget) = match kind {
                        ProviderKind::Rds => ("snapshot.rds.instance", RdsTarget::Instance),
                        _ => ("snapshot.rds.cluster", RdsTarget::Cluster),
                    };
                    let id = self.parse(key, parse_rds_identifier)?.ok_or_else(|| {
                        self.invalid(
                            key,
                            format!(
                                "`snapshot.provider: {}` needs it (see docs/configuration.md)",
                                kind.word()
                            ),
                        )
                    })?;
                    target(id)
                },
                region: set("snapshot.rds.region")?,
                endpoint: set("snapshot.rds.endpoint")?,
                wait: self.defaulted("snapshot.rds.wait", parse_duration)?,
            }),
        })
    }

    fn lint(&self) -> Result<LintConfig, ConfigError> {
        let mut levels = Vec::new();
        for key in keys::KEYS {
            let Some(rule) = key.name.strip_prefix("lint.rules.") else {
                continue;
            };
            let level = self.parse(key.name, |v| match v {
                "off" | "warn" | "error" => Ok(v.to_owned()),
                // YAML 1.1 reads an unquoted `off` as false.
                "false" => Ok("off".to_owned()),
                other => Err(format!(
                    "unknown level `{other}`; expected `off`, `warn` or `error`"
                )),
            })?;
            if let Some(level) = level {
                levels.push((rule.to_owned(), level));
            }
        }
        Ok(LintConfig {
            levels,
            small_table: self.parse("lint.small_table", parse_size)?,
            max_lock_hold: self.parse("lint.max_lock_hold", parse_duration)?,
            server_version: self.parse("lint.server_version", |v| match v.parse::<u32>() {
                Ok(n) if n >= 10 => Ok(n),
                _ => Err(format!(
                    "`{v}` is not a PostgreSQL major version (a whole number, 10 or more: 16, not 16.4)"
                )),
            })?,
            time_zone: self.string("lint.time_zone")?,
        })
    }

    /// The interpolated value of `key`, if it is set anywhere.
    fn string(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        let Some(setting) = self.settings.get(key) else {
            return Ok(None);
        };
        if !setting.interpolate {
            return Ok(Some(setting.value.clone()));
        }
        let hooks = |name: &str| keep_hook_vars(name, self.env);
        let env: &dyn Fn(&str) -> Option<String> = if keys::find(key).is_some_and(|k| k.command) {
            &hooks
        } else {
            self.env
        };
        interpolate_at(&setting.value, &setting.origin, key, env).map(Some)
    }

    /// The value of `key`, else its declared default ([`keys::KEYS`]).
    fn defaulted<T>(
        &self,
        key: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        if let Some(value) = self.parse(key, &parse)? {
            return Ok(value);
        }
        let default = keys::find(key)
            .and_then(|k| k.default)
            .unwrap_or_else(|| panic!("`{key}` is read with a default but declares none"));
        Ok(parse(default)
            .unwrap_or_else(|e| panic!("the default of `{key}`, `{default}`, is not valid: {e}")))
    }

    /// The word `key` names, else its declared default.
    fn choice<T: Choice>(&self, key: &'static str) -> Result<T, ConfigError> {
        self.defaulted(key, T::from_word)
    }

    fn parse<T>(
        &self,
        key: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.string(key)? {
            None => Ok(None),
            Some(v) => parse(v.trim())
                .map(Some)
                .map_err(|message| self.invalid(key, message)),
        }
    }

    fn invalid(&self, key: &'static str, message: String) -> ConfigError {
        let origin = self
            .settings
            .get(key)
            .map_or(Origin::Default, |s| s.origin.clone());
        ConfigError::Invalid {
            origin,
            key,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::interpolate::{InterpolationError, interpolate};
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn load(
        text: &str,
        pairs: &'static [(&'static str, &'static str)],
        overrides: Overrides,
    ) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapguard.yml");
        std::fs::write(&path, text).unwrap();
        Config::load_with_env(Some(&path), &overrides, &env_of(pairs))
    }

    #[test]
    fn the_pgbackrest_provider_needs_its_section_and_its_section_needs_it() {
        let base =
            "database:\n  url: postgres://app@db/shop\nstore:\n  url: file:///tmp/s\nsnapshot:\n";
        let full = "  provider: pgbackrest\n  pgbackrest:\n    stanza: main\n    user: postgres\n    exec: ssh postgres@db1\n    stop: pg_ctlcluster 15 main stop\n    start: pg_ctlcluster 15 main start\n";
        let config = load(&format!("{base}{full}"), &[], Overrides::default()).unwrap();
        let Provider::Pgbackrest(p) = &config.snapshot.provider else {
            panic!("{:?}", config.snapshot.provider);
        };
        assert_eq!(p.stanza, "main");
        assert_eq!(p.exec.as_deref(), Some("ssh postgres@db1"));
        assert_eq!(p.config, None);
        let defaulted = load(base, &[], Overrides::default()).unwrap();
        assert_eq!(defaulted.snapshot.provider, Provider::PgDump);
        let refused = |text: &str| {
            load(&format!("{base}{text}"), &[], Overrides::default())
                .unwrap_err()
                .to_string()
        };
        let missing =
            refused("  provider: pgbackrest\n  pgbackrest:\n    stanza: main\n    stop: x\n");
        assert!(missing.contains("`snapshot.pgbackrest.start`"), "{missing}");
        let orphan = refused("  pgbackrest:\n    user: postgres\n");
        assert!(
            orphan.contains("`snapshot.pgbackrest.user`")
                && orphan.contains("provider: pgbackrest"),
            "{orphan}"
        );
        let unknown = refused("  provider: barman\n");
        assert!(
            unknown.contains("expected `pg_dump`, `pgbackrest`, `rds` or `aurora-clone`"),
            "{unknown}"
        );
    }

    #[test]
    fn the_rds_provider_needs_an_instance_that_rds_would_take() {
        let base =
            "database:\n  url: postgres://app@db/shop\nstore:\n  url: file:///tmp/s\nsnapshot:\n";
        let config = load(
            &format!("{base}  provider: rds\n  rds:\n    instance: Prod-DB\n    region: eu-west-1\n    wait: 90m\n"),
            &[],
            Overrides::default(),
        )
        .unwrap();
        let Provider::Rds(r) = &config.snapshot.provider else {
            panic!("{:?}", config.snapshot.provider);
        };
        // RDS identifiers are not case-sensitive; it stores them lower-case.
        assert_eq!(r.target, RdsTarget::Instance("prod-db".into()));
        assert_eq!(r.region.as_deref(), Some("eu-west-1"));
        assert_eq!(r.wait, Duration::from_secs(90 * 60));
        let refused = |text: &str| {
            load(&format!("{base}{text}"), &[], Overrides::default())
                .unwrap_err()
                .to_string()
        };
        let missing = refused("  provider: rds\n");
        assert!(missing.contains("`snapshot.rds.instance`"), "{missing}");
        for bad in ["1prod", "prod--db", "prod-", "prod_db"] {
            let e = refused(&format!("  provider: rds\n  rds:\n    instance: {bad}\n"));
            assert!(e.contains("not an RDS identifier"), "{bad}: {e}");
        }
        let long = refused(&format!(
            "  provider: rds\n  rds:\n    instance: {}\n",
            "a".repeat(35)
        ));
        assert!(long.contains("at most 34"), "{long}");
        let orphan = refused("  rds:\n    instance: prod\n");
        assert!(
            orphan.contains("`snapshot.rds.instance`") && orphan.contains("provider: rds"),
            "{orphan}"
        );
        // `aurora-clone` reads the same section, with `cluster`.
        let aurora = load(
            &format!("{base}  provider: aurora-clone\n  rds:\n    cluster: Prod\n"),
            &[],
            Overrides::default(),
        )
        .unwrap();
        let Provider::Rds(a) = &aurora.snapshot.provider else {
            panic!("{:?}", aurora.snapshot.provider);
        };
        assert_eq!(a.target, RdsTarget::Cluster("prod".into()));
        let no_cluster = refused("  provider: aurora-clone\n  rds:\n    instance: prod\n");
        assert!(
            no_cluster.contains("`snapshot.rds.instance`")
                && no_cluster.contains("needs `snapshot.provider: rds`"),
            "{no_cluster}"
        );
        let missing = refused("  provider: aurora-clone\n");
        assert!(missing.contains("`snapshot.rds.cluster`"), "{missing}");
        let shared = refused("  rds:\n    region: eu-west-1\n");
        assert!(
            shared.contains("`snapshot.provider: rds` or `snapshot.provider: aurora-clone`"),
            "{shared}"
        );
        let later = refused("  provider: rds\n  offsite: after\n  rds:\n    instance: prod\n");
        assert!(
            later.contains("`snapshot.offsite`") && later.contains("set `before-migrate`"),
            "{later}"
        );
        let copy = |offsite: &str| {
            load(
                &format!("{base}  provider: rds\n{offsite}  rds:\n    instance: prod\n"),
                &[],
                Overrides::default(),
            )
            .unwrap()
            .snapshot
            .store_copy
        };
        assert!(!copy(""), "no store copy unless asked");
        assert!(copy("  offsite: before-migrate\n"));
        let crossed = refused(
            "  provider: rds\n  rds:\n    instance: prod\n  pgbackrest:\n    stanza: main\n",
        );
        assert!(
            crossed.contains("`snapshot.pgbackrest.stanza`")
                && crossed.contains("provider: pgbackrest"),
            "{crossed}"
        );
    }

    #[test]
    fn interpolation_expands_defaults_and_escapes() {
        let env = env_of(&[("A", "x"), ("EMPTY", "")]);
        assert_eq!(interpolate("${A}-${B:-y}-$$-$z", &env).unwrap(), "x-y-$-$z");
        // Set but empty: the default, as shells do; without one, empty.
        assert_eq!(interpolate("${EMPTY:-d}", &env).unwrap(), "d");
        assert_eq!(interpolate("${EMPTY}", &env).unwrap(), "");
        assert_eq!(
            interpolate("${B}", &env),
            Err(InterpolationError::Unset("B".into()))
        );
        assert!(matches!(
            interpolate("${A", &env),
            Err(InterpolationError::Syntax(_))
        ));
        assert!(matches!(
            interpolate("${1A}", &env),
            Err(InterpolationError::Syntax(_))
        ));
    }

    #[test]
    fn a_full_file_resolves() {
        let text = "database:\n  url: ${DB}\n  maintenance_db: admin\nstore:\n  url: s3://bucket/some/prefix\n  endpoint: http://127.0.0.1:9000\n  path_style: true\n  sse: aws:kms\n  kms_key_id: k1\n  part_size: 16MiB\nsnapshot:\n  compression: gzip\n  compression_level: 6\n  lock_wait_timeout: 30s\n  restore_jobs: 4\n";
        let c = load(
            text,
            &[("DB", "postgres://u:secret@h:5433/shop")],
            Overrides::default(),
        )
        .unwrap();
        let url = c.database_url().unwrap();
        assert_eq!(url.dbname(), "shop");
        assert_eq!(c.database.maintenance_db, "admin");
        assert_eq!(
            c.store.location,
            Some(StoreLocation::S3 {
                bucket: "bucket".into(),
                prefix: "some/prefix".into()
            })
        );
        assert!(c.store.s3.path_style);
        assert_eq!(
            c.store.s3.sse,
            Some(Sse::Kms {
                key_id: Some("k1".into())
            })
        );
        assert_eq!(c.store.s3.part_size, 16 << 20);
        assert_eq!(c.snapshot.compression, Compression::Gzip);
        assert_eq!(c.snapshot.compression_level, 6);
        assert_eq!(c.snapshot.lock_wait_timeout, Duration::from_secs(30));
        assert_eq!(c.snapshot.restore_jobs, Some(4));
    }

    #[test]
    fn precedence_is_flag_then_env_then_file() {
        let text = "store:\n  url: file:///from-file\n  region: file-region\n";
        let c = load(
            text,
            &[
                ("SNAPGUARD_STORE_URL", "file:///from-env"),
                ("SNAPGUARD_STORE_REGION", "env-region"),
            ],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            c.store.location,
            Some(StoreLocation::Fs {
                root: "/from-env".into()
            })
        );
        assert_eq!(c.store.s3.region.as_deref(), Some("env-region"));
        let flags = Overrides {
            store_url: Some("file:///from-flag".into()),
            ..Overrides::default()
        };
        let c = load(text, &[("SNAPGUARD_STORE_URL", "file:///from-env")], flags).unwrap();
        assert_eq!(
            c.store.location,
            Some(StoreLocation::Fs {
                root: "/from-flag".into()
            })
        );
    }

    #[test]
    fn an_override_makes_an_unset_file_variable_harmless() {
        let text = "database:\n  url: ${DATABASE_URL}\n";
        let c = load(
            text,
            &[("SNAPGUARD_DATABASE_URL", "postgres://h/db")],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.database_url().unwrap().dbname(), "db");
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let err = load(
            "store:\n  url: file:///x\n  bucket: nope\n",
            &[],
            Overrides::default(),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                ConfigError::Syntax {
                    line: 3,
                    column: 3,
                    ..
                }
            ),
            "{msg}"
        );
        assert!(msg.contains("snapguard.yml:3:3"), "{msg}");
        assert!(msg.contains("bucket"), "{msg}");
    }

    #[test]
    fn broken_yaml_names_the_position() {
        let err = load("store:\n  url: [unclosed\n", &[], Overrides::default()).unwrap_err();
        assert!(
            matches!(err, ConfigError::Syntax { line, .. } if line >= 2),
            "{err}"
        );
    }

    #[test]
    fn missing_variable_names_file_line_and_variable() {
        let err = load("database:\n  url: ${NOPE_URL}\n", &[], Overrides::default())
            .unwrap()
            .database_url()
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("snapguard.yml:2:8"), "{msg}");
        assert!(msg.contains("`NOPE_URL` is not set"), "{msg}");
    }

    #[test]
    fn bad_values_name_their_origin() {
        let err = load(
            "snapshot:\n  lock_wait_timeout: soon\n",
            &[],
            Overrides::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("snapguard.yml:2:22: `snapshot.lock_wait_timeout`"),
            "{err}"
        );
        let err = load(
            "",
            &[("SNAPGUARD_STORE_PART_SIZE", "1MiB")],
            Overrides::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("environment variable `SNAPGUARD_STORE_PART_SIZE`"),
            "{err}"
        );
        let err = load(
            "snapshot:\n  compression: zstd\n  compression_level: 40\n",
            &[],
            Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("from 1 to 19"), "{err}");
        let err = load("store:\n  url: ftp://x\n", &[], Overrides::default()).unwrap_err();
        assert!(
            err.to_string().contains("snapguard.yml:2:8: `store.url`"),
            "{err}"
        );
    }

    #[test]
    fn an_unset_variable_in_a_url_is_reported_where_the_url_is_needed() {
        let c = load(
            "database:\n  url: ${DATABASE_URL}\nstore:\n  url: ${BACKUPS}\nbudget:\n  max_downtime: 1m\n",
            &[],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.budget.max_downtime, Some(Duration::from_secs(60)));
        let db = c.database_url().unwrap_err().to_string();
        assert!(
            db.ends_with(
                "snapguard.yml:2:8: `database.url`: environment variable `DATABASE_URL` is not set"
            ),
            "{db}"
        );
        let store = c.store_location().unwrap_err().to_string();
        assert!(
            store.ends_with(
                "snapguard.yml:4:8: `store.url`: environment variable `BACKUPS` is not set"
            ),
            "{store}"
        );
        // Elsewhere an unset variable still fails the load.
        let err = load(
            "migrations:\n  dir: ${MIGRATIONS}\n",
            &[],
            Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("`MIGRATIONS` is not set"), "{err}");
    }

    #[test]
    fn a_bad_database_url_never_echoes_the_password() {
        let err = load(
            "database:\n  url: mysql://u:hunter2@h/db\n",
            &[],
            Overrides::default(),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn missing_required_setting_says_how_to_set_it() {
        let c = load("# nothing yet\n", &[], Overrides::default()).unwrap();
        let msg = c.database_url().unwrap_err().to_string();
        assert!(
            msg.contains("SNAPGUARD_DATABASE_URL") && msg.contains("--database-url"),
            "{msg}"
        );
    }

    #[test]
    fn explicit_missing_file_is_an_error_but_default_is_not() {
        let err = Config::load_with_env(
            Some(Path::new("/nonexistent/sg.yml")),
            &Overrides::default(),
            &|_| None,
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::NotFound { .. }));
    }

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("8MiB").unwrap(), 8 << 20);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("8 parsecs").is_err());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert!(parse_duration("15").is_err());
    }

    #[test]
    fn the_file_is_read_against_the_declared_keys() {
        let refused = |text: &str| {
            load(text, &[], Overrides::default())
                .unwrap_err()
                .to_string()
        };
        let e = refused("storage:\n  url: file://./b\n");
        assert!(
            e.contains(":1:1: unknown field `storage`, expected one of database, store"),
            "{e}"
        );
        let e = refused("store: file://./b\n");
        assert!(e.contains(":1:8: `store` is a section"), "{e}");
        let e = refused("store:\n  url: { path: b }\n");
        assert!(e.contains("`store.url` takes a string"), "{e}");
        let e = refused("snapshot:\n  retention:\n    keep_forever: 1\n");
        assert!(
            e.contains(":3:5: unknown field `keep_forever`, expected one of keep_last, keep_days"),
            "{e}"
        );
        // An empty value is an absent one.
        let c = load("store:\n  region:\nsnapshot:\n", &[], Overrides::default()).unwrap();
        assert_eq!(c.store.s3.region, None);
    }

    #[test]
    fn relations_between_keys_are_checked_from_one_table() {
        let refused = |text: &str| {
            load(text, &[], Overrides::default())
                .unwrap_err()
                .to_string()
        };
        for (text, expect) in [
            (
                "store:\n  sse: AES256\n  kms_key_id: k1\n",
                "`store.kms_key_id`: needs `store.sse: aws:kms`",
            ),
            (
                "release:\n  rollback: undo\n",
                "`release.rollback`: needs `release.command`",
            ),
            (
                "release:\n  health: { interval: 1s }\n",
                "`release.health.interval`: needs `release.health.url`",
            ),
        ] {
            let e = refused(text);
            assert!(e.contains(expect), "{text}: {e}");
        }
        // An empty command is no command.
        let e = refused("release:\n  command: ''\n  rollback: undo\n");
        assert!(e.contains("needs `release.command`"), "{e}");
    }
}
