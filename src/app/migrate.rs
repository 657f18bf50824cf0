//! `snapguard migrate`, `migrate status`, `migrate new`, `migrate baseline`.

use crate::cancel::Cancel;
use crate::cli::{MigrateArgs, MigrateCommand};
use crate::config::Config;
use crate::error::Error;
use crate::migrate::migrator::{MigrateError, Migrator, Outcome, RunOptions, Status};
use crate::migrate::plan::{HISTORY_TABLE, State};
use crate::migrate::scaffold;

use super::print_json;

/// Runs `migrate` or one of its subcommands.
pub async fn run(
    config: &Config,
    command: Option<MigrateCommand>,
    args: MigrateArgs,
) -> Result<(), Error> {
    match command {
        None => apply(config, args).await,
        Some(MigrateCommand::New { name }) => new(config, &name),
        Some(MigrateCommand::Status { json }) => status(config, json).await,
        Some(MigrateCommand::Baseline {
            version,
            name,
            json,
        }) => baseline(config, &version, &name, json).await,
        Some(MigrateCommand::Repair { versions, json }) => repair(config, &versions, json).await,
    }
}

/// Maps the migrator's error to the documented exit code: 6 when locked
/// out, 3 when nothing changed, else 1.
fn error(step: &'static str, e: MigrateError) -> Error {
    match e {
        MigrateError::Locked { .. } => Error::Locked {
            step,
            source: e.into(),
        },
        e if e.changed_nothing() => Error::nothing_changed(step, e),
        e => Error::failed(step, e),
    }
}

/// The built-in migrator's own history means nothing with an external one.
fn refuse_with_external(config: &Config, what: &str) -> Result<(), Error> {
    match &config.migrations.command {
        Some(_) => Err(Error::Usage(format!(
            "`migrate {what}` works on snapguard's own migrations, but `migrations.command` hands migrating to an external tool; use that tool's own command"
        ))),
        None => Ok(()),
    }
}

async fn apply(config: &Config, args: MigrateArgs) -> Result<(), Error> {
    let db = config.database_url()?;
    let migrator = Migrator::new(&config.migrations, db);
    let options = RunOptions {
        dry_run: args.dry_run,
        release_id: args.release,
        ..RunOptions::default()
    };
    // The database lock every changing command shares; a dry run changes
    // nothing and takes none.
    let _lock = match args.dry_run {
        true => None,
        false => Some(database_lock(config, "migrate").await?),
    };
    let outcome = migrator
        .run(&options, &Cancel::on_signals())
        .await
        .map_err(|e| error("migrate", e))?;
    if args.json {
        print_json(&outcome);
    } else {
        print_outcome(&outcome);
    }
    Ok(())
}

/// The per-database lock for a command that changes the database, refused
/// while the database records an unfinished deploy.
async fn database_lock(
    config: &Config,
    step: &'static str,
) -> Result<tokio_postgres::Client, Error> {
    super::command_lock(config, step, true, config.migrations.lock_wait).await
}

fn print_outcome(o: &Outcome) {
    if let Some(command) = &o.external_command {
        if o.dry_run {
            crate::outln!("would run the external migrator: {command}");
            crate::outln!("dry run: nothing was changed");
        } else {
            crate::outln!("the external migrator succeeded: {command}");
        }
        return;
    }
    if o.pending.is_empty() {
        crate::outln!("nothing to migrate: the database is up to date");
        return;
    }
    if o.dry_run {
        for p in &o.pending {
            let how = match (p.batched, p.transaction) {
                (true, _) => "batched: repeated until it changes no rows",
                (false, true) => "in a transaction",
                (false, false) => "outside a transaction",
            };
            crate::outln!("-- pending {} `{}` ({how})", p.version, p.path);
            crate::outln!("{}\n", p.sql.trim_end());
        }
        crate::outln!(
            "dry run: {} pending migration(s); nothing was changed",
            o.pending.len()
        );
        return;
    }
    for a in &o.applied {
        let retries = match a.retries {
            0 => String::new(),
            n => format!("  ({n} lock-timeout retries)"),
        };
        crate::outln!(
            "applied {:<24} {:>8.2}s  {}{retries}",
            a.version,
            a.seconds,
            a.path
        );
    }
    let total: f64 = o.applied.iter().map(|a| a.seconds).sum();
    crate::outln!("applied {} migration(s) in {total:.2}s", o.applied.len());
}

fn new(config: &Config, name: &str) -> Result<(), Error> {
    refuse_with_external(config, "new")?;
    let made = scaffold::new_migration(
        &config.migrations.dir,
        config.migrations.format,
        name,
        chrono::Utc::now(),
    )
    .map_err(|e| Error::nothing_changed("migrate new", e))?;
    for path in made {
        crate::outln!("created {}", path.display());
    }
    Ok(())
}

async fn status(config: &Config, json: bool) -> Result<(), Error> {
    refuse_with_external(config, "status")?;
    let db = config.database_url()?;
    let status = Migrator::new(&config.migrations, db)
        .status()
        .await
        .map_err(|e| error("migrate status", e))?;
    if json {
        print_json(&status);
    } else {
        print_status(&status);
    }
    match &status.problem {
        Some(problem) => Err(Error::nothing_changed(
            "migrate status",
            format!("`migrate` would refuse to run: {problem}"),
        )),
        None => Ok(()),
    }
}

fn print_status(s: &Status) {
    crate::outln!("migrations in {} ({} format)", s.dir.display(), s.format);
    crate::outln!(
        "{:<22} {:<14} {:<20} {:>9}  FILE",
        "VERSION",
        "STATE",
        "APPLIED (UTC)",
        "SECONDS"
    );
    for e in &s.entries {
        let state = match e.state {
            State::Applied => "applied",
            State::Pending => "pending",
            State::Changed => "CHANGED",
            State::Missing => "MISSING FILE",
            State::OutOfOrder => "OUT OF ORDER",
            State::BelowBaseline => "below baseline",
            State::Baseline => "baseline",
            State::Empty => "empty",
        };
        let (at, seconds) = match &e.applied {
            Some(r) => (
                r.applied_at.as_str(),
                format!("{:.2}", r.duration_ms as f64 / 1000.0),
            ),
            None => ("-", "-".to_owned()),
        };
        // Rows only the native tool's table has say so.
        let recorded_in = match &e.applied {
            Some(r) if r.table != HISTORY_TABLE => format!("  (recorded in {})", r.table),
            _ => String::new(),
        };
        crate::outln!(
            "{:<22} {:<14} {:<20} {:>9}  {}{recorded_in}",
            e.version,
            state,
            at,
            seconds,
            e.path.as_deref().unwrap_or("-")
        );
    }
    let count = |state| s.entries.iter().filter(|e| e.state == state).count();
    let empty = match count(State::Empty) {
        0 => String::new(),
        n => format!(", {n} empty (write them before `migrate`, which refuses an empty migration)"),
    };
    crate::outln!(
        "{} applied, {} pending{empty}",
        count(State::Applied),
        count(State::Pending)
    );
}

async fn baseline(config: &Config, version: &str, name: &str, json: bool) -> Result<(), Error> {
    refuse_with_external(config, "baseline")?;
    let db = config.database_url()?;
    let _lock = database_lock(config, "migrate baseline").await?;
    let covered = Migrator::new(&config.migrations, db)
        .baseline(version, name)
        .await
        .map_err(|e| error("migrate baseline", e))?;
    if json {
        print_json(&serde_json::json!({
            "baseline": version,
            "name": name,
            "covered": covered,
            "table": HISTORY_TABLE,
        }));
        return Ok(());
    }
    crate::outln!(
        "baseline {version} recorded in snapguard.schema_migrations: migrations up to it count as applied ({covered} in the folder)"
    );
    Ok(())
}

async fn repair(config: &Config, versions: &[String], json: bool) -> Result<(), Error> {
    refuse_with_external(config, "repair")?;
    let db = config.database_url()?;
    let _lock = database_lock(config, "migrate repair").await?;
    let repaired = Migrator::new(&config.migrations, db)
        .repair(versions)
        .await
        .map_err(|e| error("migrate repair", e))?;
    if json {
        print_json(&repaired);
        return Ok(());
    }
    if repaired.is_empty() {
        crate::outln!("nothing to repair: every applied migration matches its file");
    }
    for r in &repaired {
        crate::outln!(
            "repaired {} `{}` in {}: checksum {} -> {}",
            r.version,
            r.path,
            r.table,
            r.old,
            r.new
        );
    }
    Ok(())
}
