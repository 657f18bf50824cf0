//! Runs a parsed command line. Each command resolves its inputs, runs its
//! preflight (failures there are [`Error::NothingChanged`]), then does its
//! work, and prints its result on stdout.

mod deploy;
mod init;
mod lint;
mod maintenance;
mod manual;
mod migrate;
mod prune;
mod rehearse;
mod verify;

use std::io::{BufRead, IsTerminal, Write};

use crate::cancel::Cancel;
use crate::cli::{Cli, Command, ConfigCommand, RestoreArgs, SnapshotArgs, SnapshotsCommand};
use crate::config::{Config, Overrides, Provider};
use crate::error::Error;
use crate::progress::format_bytes;
use crate::snapshot::pgbackrest::RestorePointRecord;
use crate::snapshot::restore::{self, RestoreFailure, RestoreOptions};
use crate::snapshot::take::{SnapshotRequest, Snapshotter};
use crate::snapshot::{self, Manifest};
use crate::store::Store;

/// The command line's definition, with what only the steps know added:
/// `lint --help` lists the rules.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command().mut_subcommand("lint", |lint| {
        lint.after_long_help(crate::lint::rules::help())
    })
}

/// The command line of this process, parsed (exits with clap's message
/// and code on a bad one).
pub fn parse() -> Cli {
    let matches = command().get_matches();
    <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Runs `cli` to completion.
pub async fn run(cli: Cli) -> Result<(), Error> {
    // `init` writes the configuration, so it must not need one to load;
    // completions, the manual page and the schema need none either.
    match &cli.command {
        Command::Init(args) => {
            return init::run(cli.config.as_deref(), cli.store.as_deref(), args);
        }
        Command::Completions { shell } => {
            let mut command = command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut command, "snapguard", &mut script);
            crate::stdout::write_bytes(&script);
            return Ok(());
        }
        Command::Config {
            command: ConfigCommand::Schema,
        } => {
            print_json(&crate::config::schema::schema());
            return Ok(());
        }
        Command::Man { dir } => {
            return match dir {
                None => {
                    crate::stdout::write_bytes(&manual::page(&command()));
                    Ok(())
                }
                Some(dir) => manual::write_all(dir)
                    .map(drop)
                    .map_err(|e| Error::failed("man", e)),
            };
        }
        _ => {}
    }
    mask_raw_connection_strings(cli.database_url.as_deref());
    let overrides = Overrides {
        database_url: cli.database_url.clone(),
        store_url: cli.store.clone(),
    };
    let config = Config::load(cli.config.as_deref(), &overrides)?;
    match cli.command {
        Command::Deploy(args) => deploy::deploy(&config, args).await,
        Command::Plan { release, json } => deploy::plan(&config, release, json).await,
        Command::Lint(args) => lint::run(&config, args).await,
        Command::Rehearse(args) => rehearse::run(&config, args).await,
        Command::Recover {
            force,
            snapshot,
            accept_current,
            report,
            json,
        } => {
            let options = crate::deploy::RecoverOptions {
                force,
                snapshot,
                accept_current,
            };
            deploy::recover(&config, &options, report.as_deref(), json).await
        }
        Command::Maintenance { command, json } => {
            maintenance::maintenance(&config, command, json).await
        }
        Command::Prune { dry_run, rds, json } => prune::prune(&config, dry_run, rds, json).await,
        Command::Snapshot(args) => snapshot(&config, args).await,
        Command::Snapshots {
            command: SnapshotsCommand::List { all, json },
        } => list(&config, all, json).await,
        Command::Snapshots {
            command: SnapshotsCommand::Show { snapshot, json },
        } => show(&config, &snapshot, json).await,
        Command::Restore(args) => restore(&config, args).await,
        Command::Migrate { command, args } => migrate::run(&config, command, args).await,
        Command::Verify { json } => verify::run(&config, json).await,
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            check_config(&config);
            Ok(())
        }
        Command::Init(_)
        | Command::Completions { .. }
        | Command::Man { .. }
        | Command::Config {
            command: ConfigCommand::Schema,
        } => {
            unreachable!("handled before the configuration is loaded")
        }
    }
}

/// `config check`: the configuration loaded; says so, and names what a
/// deploy still needs from elsewhere.
fn check_config(config: &Config) {
    let file = config.file.as_ref().map_or_else(
        || "no configuration file".to_owned(),
        |f| format!("`{}`", f.display()),
    );
    crate::outln!("{file}: valid");
    if let Err(e) = config.database_url() {
        crate::outln!("  not set yet: {e}");
    }
    if let Err(e) = config.store_location() {
        crate::outln!("  not set yet: {e}");
    }
}

/// Under GitHub Actions, masks the connection strings as given, before
/// anything parses them: when the config then fails, no mask of the parsed
/// URL's password would have been registered yet.
fn mask_raw_connection_strings(flag: Option<&str>) {
    let Some(gh) = crate::ci::GitHub::from_env() else {
        return;
    };
    let env = ["SNAPGUARD_DATABASE_URL", "DATABASE_URL"]
        .into_iter()
        .filter_map(|v| std::env::var(v).ok());
    for raw in flag.map(str::to_owned).into_iter().chain(env) {
        gh.mask(raw.trim());
    }
}

async fn open_store(config: &Config) -> Result<Store, Error> {
    let location = config.store_location()?;
    Ok(Store::open(location, &config.store.s3).await)
}

async fn snapshot(config: &Config, args: SnapshotArgs) -> Result<(), Error> {
    let db = config.database_url()?;
    let store = open_store(config).await?;
    let snapshotter = Snapshotter::prepare(
        &store,
        db,
        &config.snapshot,
        config.database.pg_bin_dir.as_deref(),
    )
    .await
    .map_err(|e| Error::nothing_changed("snapshot", e))?;
    let request = SnapshotRequest {
        release_id: args.release,
        ..SnapshotRequest::default()
    };
    let manifest = snapshotter
        .take(&request, &Cancel::on_signals())
        .await
        .map_err(|e| Error::failed("snapshot", e))?;
    if args.json {
        print_json(&manifest);
    } else {
        crate::outln!("snapshot {}", manifest.id);
        crate::outln!("  location  {}", manifest.dump_uri);
        crate::outln!("  size      {}", manifest.size_line());
        crate::outln!("  sha256    {}", manifest.sha256);
        crate::outln!(
            "restore it with: {}",
            config
                .invocation
                .command(&format!("restore {}", manifest.id))
        );
    }
    Ok(())
}

async fn list(config: &Config, all: bool, json: bool) -> Result<(), Error> {
    let store = open_store(config).await?;
    let listed = snapshot::list(&store)
        .await
        .map_err(|e| Error::failed("snapshots list", e))?;
    let points = RestorePointRecord::list(&store)
        .await
        .map_err(|e| Error::failed("snapshots list", e))?;
    let rds = match &config.snapshot.provider {
        Provider::Rds(rds) => crate::snapshot::rds::Rds::new(rds)
            .await
            .list()
            .await
            .map_err(|e| Error::failed("snapshots list", e))?,
        _ => Vec::new(),
    };
    let incomplete = listed.iter().filter(|l| l.manifest.is_none()).count();
    let shown: Vec<_> = listed
        .into_iter()
        .filter(|l| all || l.manifest.is_some())
        .collect();
    if json {
        let mut rows: Vec<_> = shown
            .iter()
            .map(|l| serde_json::json!({ "id": l.id, "complete": l.manifest.is_some(), "manifest": l.manifest }))
            .collect();
        rows.extend(points.iter().map(|r| {
            serde_json::json!({ "id": r.point.name, "complete": true, "manifest": null, "restore_point": r })
        }));
        rows.extend(rds.iter().map(|s| {
            serde_json::json!({ "id": s.id, "complete": s.status == "available", "manifest": null, "rds_snapshot": s })
        }));
        print_json(&rows);
        return Ok(());
    }
    // Columns as wide as their longest value: ids and database names grow
    // with the database's name.
    let id_width = shown
        .iter()
        .map(|l| l.id.as_str().len())
        .max()
        .unwrap_or(0)
        .max(2);
    let db_width = shown
        .iter()
        .filter_map(|l| l.manifest.as_ref().map(|m| m.database.len()))
        .max()
        .unwrap_or(0)
        .max(8);
    crate::outln!(
        "{:<id_width$} {:<19} {:<db_width$} {:>10}  RELEASE",
        "ID",
        "CREATED (UTC)",
        "DATABASE",
        "SIZE"
    );
    for l in &shown {
        match &l.manifest {
            Some(m) => crate::outln!(
                "{:<id_width$} {:<19} {:<db_width$} {:>10}  {}",
                m.id.as_str(),
                m.created_at.format("%Y-%m-%d %H:%M:%S"),
                m.database,
                format_bytes(m.size_bytes),
                m.release_id.as_deref().unwrap_or("-")
            ),
            None => crate::outln!(
                "{:<id_width$} incomplete: no manifest, never restorable",
                l.id.as_str()
            ),
        }
    }
    if incomplete > 0 && !all {
        tracing::info!("{incomplete} incomplete snapshot(s) not shown; `--all` lists them");
    }
    print_restore_points(&points);
    print_rds_snapshots(&rds);
    Ok(())
}

/// `snapshot.provider: rds`'s snapshots of the instance, as RDS lists them:
/// RDS keeps manual snapshots until they are deleted, and `prune` leaves
/// them.
fn print_rds_snapshots(snapshots: &[crate::snapshot::rds::Listed]) {
    if snapshots.is_empty() {
        return;
    }
    let id_width = snapshots.iter().map(|s| s.id.len()).max().unwrap_or(0);
    crate::outln!();
    crate::outln!(
        "RDS snapshots (kept until deleted: RDS does not expire manual snapshots, and `prune` leaves them):"
    );
    crate::outln!(
        "{:<id_width$} {:<19} {:<10} {:>8}  SOURCE",
        "ID",
        "CREATED (UTC)",
        "STATUS",
        "STORAGE"
    );
    for s in snapshots {
        crate::outln!(
            "{:<id_width$} {:<19} {:<10} {:>8}  {}",
            s.id,
            s.created
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into()),
            s.status,
            s.allocated_gib
                .map(|g| format!("{g} GiB"))
                .unwrap_or_else(|| "-".into()),
            s.instance
        );
    }
}

/// `snapshot.provider: pgbackrest`'s restore points, after the store
/// snapshots: a rollback restores the whole cluster to one; pgBackRest's
/// retention, not `prune`, decides how long its backup and WAL stay.
fn print_restore_points(points: &[RestorePointRecord]) {
    if points.is_empty() {
        return;
    }
    let name_width = points.iter().map(|r| r.point.name.len()).max().unwrap_or(0);
    crate::outln!();
    crate::outln!("pgBackRest restore points (kept by pgBackRest's retention, not `prune`):");
    crate::outln!(
        "{:<name_width$} {:<19} {:<10} {:<12}  BACKUP",
        "NAME",
        "CREATED (UTC)",
        "DATABASE",
        "STANZA"
    );
    for r in points {
        crate::outln!(
            "{:<name_width$} {:<19} {:<10} {:<12}  {}",
            r.point.name,
            r.created_at.format("%Y-%m-%d %H:%M:%S"),
            r.database,
            r.point.stanza,
            r.point.backup
        );
    }
}

async fn show(config: &Config, which: &str, json: bool) -> Result<(), Error> {
    let store = open_store(config).await?;
    let m = snapshot::resolve(&store, which)
        .await
        .map_err(|e| Error::failed("snapshots show", e))?;
    if json {
        print_json(&m);
        return Ok(());
    }
    print_manifest(config, &m);
    Ok(())
}

fn print_manifest(config: &Config, m: &Manifest) {
    crate::outln!("snapshot        {}", m.id);
    crate::outln!(
        "database        {} (PostgreSQL {}, pg_dump {})",
        m.database,
        m.server_version,
        m.pg_dump_version
    );
    crate::outln!(
        "created         {}",
        m.created_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    crate::outln!("location        {}", m.dump_uri);
    crate::outln!("size            {}", m.size_line());
    crate::outln!("sha256          {}", m.sha256);
    crate::outln!("toc entries     {}", m.toc_entries);
    crate::outln!("wal position    {}", m.wal_lsn.as_deref().unwrap_or("-"));
    crate::outln!("release         {}", m.release_id.as_deref().unwrap_or("-"));
    crate::outln!(
        "last migration  {}",
        m.last_migration.as_deref().unwrap_or("-")
    );
    crate::outln!();
    crate::outln!(
        "restore:         {}",
        config.invocation.command(&format!("restore {}", m.id))
    );
    crate::outln!("restore by hand, without snapguard:");
    for c in m.manual_restore_commands() {
        crate::outln!("  {c}");
    }
}

/// `--jobs`, else `snapshot.restore_jobs`, else the CPU count.
fn restore_jobs(config: &Config, flag: Option<u32>) -> u32 {
    flag.or(config.snapshot.restore_jobs)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get() as u32))
}

async fn restore(config: &Config, args: RestoreArgs) -> Result<(), Error> {
    let db = config.database_url()?;
    let store = open_store(config).await?;
    let jobs = restore_jobs(config, args.jobs);
    let options = RestoreOptions {
        snapshot: args.snapshot.clone(),
        to: args.to.clone(),
        no_owner: args.no_owner,
        terminate_sessions: args.terminate_sessions,
        jobs,
        no_analyze: args.no_analyze,
        replaced_label: "",
        drop_leftover: true,
    };
    // The emergency path stays open while a deploy is unfinished (it is
    // one of the ways out); the lock keeps it apart from a running one, and
    // makes a leftover `<db>__restore_<id>` surely a dead restore's.
    let _lock = command_lock(config, "restore", false, std::time::Duration::ZERO).await?;
    let plan = restore::plan(
        &store,
        db,
        &config.database.maintenance_db,
        config.database.pg_bin_dir.as_deref(),
        options,
    )
    .await
    .map_err(|e| Error::nothing_changed("restore", e))?;
    if plan.is_destructive() && !args.yes {
        confirm(&plan.describe(), &plan.database)?;
    } else {
        tracing::info!("{}", plan.describe().replace('\n', " "));
    }
    let report =
        plan.execute(&store, &Cancel::on_signals())
            .await
            .map_err(|failure| match failure {
                RestoreFailure::Verify(e) => Error::nothing_changed("restore", e),
                RestoreFailure::Restore(e) => Error::failed("restore", e),
            })?;
    crate::deploy::marker::supersede_after_restore(
        &db.with_dbname(&report.restored_into),
        &report.snapshot_id,
    )
    .await;
    if args.json {
        print_json(&report);
    } else {
        crate::outln!(
            "restored snapshot {} into `{}` in {:.1}s",
            report.snapshot_id,
            report.restored_into,
            report.total_seconds
        );
        if let Some(replaced) = &report.replaced_as {
            crate::outln!(
                "the previous database is kept as `{replaced}`; drop it when you no longer need it:"
            );
            crate::outln!("  DROP DATABASE \"{replaced}\";");
        }
    }
    Ok(())
}

/// Asks on the terminal; without one, refuses and names `--yes`.
fn confirm(description: &str, database: &str) -> Result<(), Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(format!(
            "restore replaces database `{database}` and needs confirmation, but there is no terminal to ask on; pass `--yes` to confirm"
        )));
    }
    let mut stderr = std::io::stderr();
    let _ = writeln!(stderr, "{description}");
    let _ = write!(stderr, "Type the database name `{database}` to continue: ");
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::Usage(format!("cannot read the confirmation: {e}")))?;
    if answer.trim() == database {
        Ok(())
    } else {
        Err(Error::Usage("not confirmed; nothing was changed".into()))
    }
}

fn print_json(value: &impl serde::Serialize) {
    crate::outln!(
        "{}",
        serde_json::to_string_pretty(value).expect("serializable")
    );
}

/// The per-database lock every command that changes the configured
/// database shares ([`crate::deploy::lock::waiting_for_command`]): exit 6
/// when another snapguard holds it past `wait`; with `refuse_unfinished`,
/// exit 3 while the database records an unfinished deploy. It lasts as
/// long as the returned session.
pub(crate) async fn command_lock(
    config: &Config,
    step: &'static str,
    refuse_unfinished: bool,
    wait: std::time::Duration,
) -> Result<tokio_postgres::Client, Error> {
    let db = config.database_url()?;
    crate::deploy::lock::waiting_for_command(
        &db.with_dbname(&config.database.maintenance_db),
        db,
        step,
        refuse_unfinished,
        wait,
    )
    .await
}
