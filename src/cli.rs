//! The command line (clap derive types only).

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::logging::LogFormat;

/// Safe PostgreSQL deploys: snapshots to object storage, migrations and emergency restores.
#[derive(Debug, Parser)]
#[command(name = "snapguard", version, about, propagate_version = true)]
pub struct Cli {
    /// The config file [default: ./snapguard.yml when it exists].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Log output: `auto` (colours and a progress bar on a terminal), `text`, `json`.
    #[arg(long, global = true, help_heading = "Global options", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    /// More log detail (-v debug, -vv trace).
    #[arg(short, long, global = true, help_heading = "Global options", action = ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true, help_heading = "Global options", action = ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
    /// The application database (overrides `database.url`; prefer the
    /// SNAPGUARD_DATABASE_URL variable, which `ps` does not show).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// The store: `s3://bucket/prefix` or `file:///path` (overrides `store.url`).
    #[arg(
        long = "store",
        global = true,
        help_heading = "Global options",
        value_name = "URL"
    )]
    pub store: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The guarded pipeline: maintenance on, snapshot, migrate, verify,
    /// release, health, maintenance off; rolls back on any failure.
    Deploy(DeployArgs),
    /// What `deploy` would do, changing nothing.
    Plan {
        /// The release `deploy --release` would ship (default as for
        /// `deploy`: `release.id`, else the CI's commit).
        #[arg(long)]
        release: Option<String>,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Find lock and rewrite hazards in migrations: each finding with its
    /// rule, why it hurts and the safe way; judged against the database's
    /// table sizes when one is configured. Exits 9 when an error remains.
    Lint(LintArgs),
    /// Rehearse the deploy on a copy of production: restore a snapshot
    /// or dump into a scratch database, run the preflight, migrations and
    /// checks with timings and lock observations, and compare the
    /// estimated maintenance window with `budget.max_downtime`.
    Rehearse(RehearseArgs),
    /// Finish a deploy that did not (its runner died, or its rollback
    /// needed a human): roll it back, or close it if it had succeeded.
    Recover {
        /// Restore even though writes after the snapshot are possible.
        #[arg(long, conflicts_with = "accept_current")]
        force: bool,
        /// Roll back to this store snapshot instead of the deploy's own
        /// (when the deploy's own is damaged or gone).
        #[arg(long, value_name = "ID", conflicts_with = "accept_current")]
        snapshot: Option<String>,
        /// Keep the database as it is now and close the deploy: switch
        /// maintenance off from the journal's record and say what state the
        /// database (and the release) is in. Restores nothing.
        #[arg(long)]
        accept_current: bool,
        /// Also write the report as JSON to this file.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Print the report as JSON on stdout instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Turn the configured maintenance switches on or off by hand.
    Maintenance {
        /// `on` or `off`.
        #[command(subcommand)]
        command: MaintenanceCommand,
        /// Print what was switched as JSON.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Apply `snapshot.retention`: delete old snapshots, drop old failed,
    /// replaced and orphaned clone databases.
    Prune {
        /// List what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also apply `snapshot.retention` to the RDS instance's snapguard
        /// snapshots (`snapshot.provider: rds`): RDS keeps manual snapshots
        /// until they are deleted.
        #[arg(long)]
        rds: bool,
        /// Print what was (or would be) deleted as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Take a snapshot of the database into the store now.
    Snapshot(SnapshotArgs),
    /// List and inspect the snapshots in the store.
    Snapshots {
        /// `list` or `show`.
        #[command(subcommand)]
        command: SnapshotsCommand,
    },
    /// Restore a snapshot: into a new database, then swap it in under the
    /// original name (the replaced database is kept).
    Restore(RestoreArgs),
    /// Run the checks (`checks.before`, `checks.after`, `checks.compare` and
    /// the built-in ones) against the database as it is; changes nothing.
    Verify {
        /// Print the results as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Apply pending migrations (the migrator alone, without snapshot or
    /// maintenance), or inspect and manage them.
    #[command(args_conflicts_with_subcommands = true)]
    Migrate {
        /// `status`, `new` or `baseline`; none applies pending migrations.
        #[command(subcommand)]
        command: Option<MigrateCommand>,
        /// Options for applying.
        #[command(flatten)]
        args: MigrateArgs,
    },
    /// Scaffold a commented `snapguard.yml` (at `--config`), a migrations
    /// folder and `.github/workflows/deploy.yml`; refuses to overwrite.
    Init(InitArgs),
    /// Print a shell completion script: `snapguard completions bash >
    /// /etc/bash_completion.d/snapguard` (also zsh, fish, elvish,
    /// powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `snapguard man > snapguard.1`; with
    /// `--dir`, write a page for every command there (`snapguard-deploy.1`, …).
    Man {
        /// Write `snapguard.1` and one page per command into this folder.
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// About the configuration file itself.
    Config {
        /// What to print.
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

/// `snapguard config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the JSON Schema of `snapguard.yml`, for editors:
    /// `snapguard config schema > snapguard.schema.json`, then
    /// `# yaml-language-server: $schema=./snapguard.schema.json` atop the file.
    Schema,
    /// Read the configuration as every command does (the file, the
    /// `SNAPGUARD_*` variables, the flags) and say what is wrong with it;
    /// connects to nothing. Exits 2 when it is invalid.
    Check,
}

/// `snapguard init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The migrations folder's format: snapguard, golang-migrate, dbmate,
    /// sqlx, diesel or flyway [default: an existing folder's own, else snapguard].
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// The migrations folder, relative to `snapguard.yml`.
    #[arg(long, value_name = "DIR", default_value = "db/migrations")]
    pub migrations_dir: PathBuf,
    /// Do not write `.github/workflows/deploy.yml`.
    #[arg(long)]
    pub no_workflow: bool,
    /// Overwrite files that exist.
    #[arg(long)]
    pub force: bool,
}

/// `snapguard migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Show the plan and the SQL; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The release being deployed, recorded in the history.
    #[arg(long, value_name = "ID")]
    pub release: Option<String>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `snapguard migrate …`.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Applied, pending and drifted migrations; exits 3 when `migrate` would
    /// refuse to run.
    Status {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Create an empty migration, correctly named for the folder's format.
    New {
        /// What it does, for example `add_users_email`.
        name: String,
    },
    /// Record that every migration up to a version was applied elsewhere
    /// (squashed history, another tool's table).
    #[command(disable_version_flag = true)]
    Baseline {
        /// The version to record.
        #[arg(long, value_name = "V")]
        version: String,
        /// The name recorded with it.
        #[arg(long, default_value = "baseline")]
        name: String,
        /// Print what was recorded as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Accept the current file of an applied migration whose checksum
    /// changed (a comment fixed, line endings converted): the recorded
    /// checksum becomes the file's, in snapguard's history and in the
    /// native tool's, and the change is logged with who made it.
    #[command(disable_version_flag = true)]
    Repair {
        /// Only this version (repeatable); every changed one when absent.
        #[arg(long = "version", value_name = "V")]
        versions: Vec<String>,
        /// Print what was repaired as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `snapguard deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The release being deployed [default: `release.id`, else the CI's
    /// commit (GITHUB_SHA, CI_COMMIT_SHA, CI_COMMIT_ID), else `git rev-parse HEAD`].
    #[arg(long, value_name = "ID")]
    pub release: Option<String>,
    /// Restore on rollback even though writes after the snapshot are possible.
    #[arg(long)]
    pub force: bool,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Print the report as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `snapguard lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Migration files or folders [default: the configured folder's
    /// pending migrations].
    #[arg(value_name = "PATH")]
    pub paths: Vec<std::path::PathBuf>,
    /// Every migration of the configured folder, applied or not.
    #[arg(long, conflicts_with = "paths")]
    pub all: bool,
    /// Output: `text`, `json`, `sarif` (code scanning) or `github`
    /// (workflow annotations).
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    pub format: LintFormat,
}

/// `lint --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LintFormat {
    /// Findings for a terminal or a CI log.
    Text,
    /// The report as JSON.
    Json,
    /// SARIF 2.1.0.
    Sarif,
    /// GitHub Actions `::error` / `::warning` annotations.
    Github,
}

/// `snapguard rehearse`.
#[derive(Debug, Args)]
pub struct RehearseArgs {
    /// Rehearse on this snapshot from the store (an id, or `latest`) [default: latest].
    #[arg(long, value_name = "ID", conflicts_with_all = ["dump", "from_url"])]
    pub snapshot: Option<String>,
    /// Rehearse on a `pg_dump` file: custom format, a directory archive,
    /// or plain SQL; gzip- or zstd-compressed files are read as they are.
    #[arg(long, value_name = "FILE", conflicts_with = "from_url")]
    pub dump: Option<PathBuf>,
    /// Rehearse on a live database, dumped read-only with `pg_dump`
    /// (prefer the SNAPGUARD_FROM_URL variable, which `ps` does not show).
    #[arg(
        long,
        value_name = "URL",
        env = "SNAPGUARD_FROM_URL",
        hide_env_values = true
    )]
    pub from_url: Option<String>,
    /// Rehearse on the newest pgBackRest backup of
    /// `snapshot.pgbackrest.stanza`, restored into a throwaway server here
    /// with its archive replayed to the end (pgBackRest and the backup's
    /// PostgreSQL server binaries must be installed here).
    #[arg(long, conflicts_with_all = ["snapshot", "dump", "from_url", "target_url"])]
    pub pgbackrest: bool,
    /// Run on this server instead of a throwaway local one; the URL's
    /// database is created for the rehearsal and must not exist.
    #[arg(
        long,
        value_name = "URL",
        env = "SNAPGUARD_TARGET_URL",
        hide_env_values = true
    )]
    pub target_url: Option<String>,
    /// Leave the scratch database (and the throwaway server) running and
    /// print how to reach and remove it.
    #[arg(long)]
    pub keep: bool,
    /// After migrating, roll back both ways a deploy can (clone swap and
    /// store restore) and time each.
    #[arg(long)]
    pub drill: bool,
    /// Parallel `pg_restore` jobs [default: `snapshot.restore_jobs`, else the CPU count].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<u32>,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Print the report as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `snapguard maintenance …`.
#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Turn every switch on, in order (recorded in the store for `off`).
    On,
    /// Turn the switches `on` turned on off, in reverse order.
    Off,
}

/// `snapguard snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The release running now, recorded in the manifest.
    #[arg(long, value_name = "ID")]
    pub release: Option<String>,
    /// Print the manifest as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `snapguard snapshots …`.
#[derive(Debug, Subcommand)]
pub enum SnapshotsCommand {
    /// List snapshots, oldest first.
    List {
        /// Also list incomplete snapshots (no manifest; never restorable).
        #[arg(long)]
        all: bool,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show one snapshot's manifest and how to restore it by hand.
    Show {
        /// A snapshot id, or `latest`.
        snapshot: String,
        /// Print the manifest as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// `snapguard restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A snapshot id, or `latest`.
    pub snapshot: String,
    /// Restore into this new database side by side, without swapping.
    #[arg(long, value_name = "NAME")]
    pub to: Option<String>,
    /// Skip owners and privileges (for a server whose roles differ).
    #[arg(long)]
    pub no_owner: bool,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// End sessions connected to the database being replaced.
    #[arg(long)]
    pub terminate_sessions: bool,
    /// Parallel `pg_restore` jobs [default: `snapshot.restore_jobs`, else the CPU count].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<u32>,
    /// Skip `ANALYZE` after restoring (the planner then has no statistics).
    #[arg(long)]
    pub no_analyze: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks the command tree only when a command is built; this
    /// checks every subcommand, not only the ones the tests happen to run.
    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
