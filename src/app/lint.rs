//! `snapguard lint`: which migrations, judged how, printed in which form.

use std::path::Path;

use crate::cli::{LintArgs, LintFormat};
use crate::config::Config;
use crate::error::Error;
use crate::lint::{self, Input, LintReport, Mode, Settings};
use crate::migrate::apply::TransactionMode;
use crate::migrate::migrator::{Migrator, PendingMigration, describe};
use crate::migrate::source::{self, Strictness};

/// Lints, prints, and exits 9 when an error-level finding remains.
pub async fn run(config: &Config, args: LintArgs) -> Result<(), Error> {
    let settings = Settings::of(&config.lint);
    let all_wrapped = config.migrations.transaction == TransactionMode::All;
    // A configured database judges the findings (and says what is
    // pending); without one every file is linted on its text alone.
    let db = config.database.url.as_ref();
    let inputs = if !args.paths.is_empty() {
        let mut inputs = Vec::new();
        for path in &args.paths {
            inputs.extend(inputs_at(path, all_wrapped)?);
        }
        inputs
    } else {
        let pending = match (db, args.all) {
            (Some(db), false) => {
                Migrator::new(&config.migrations, db)
                    .plan()
                    .await
                    .map_err(refuse)?
                    .pending
            }
            _ => {
                if !args.all {
                    tracing::info!("no database configured: linting every migration (`--all`)");
                }
                folder(&config.migrations.dir, config.migrations.format)?
            }
        };
        inputs_of(&pending, all_wrapped)?
    };
    let client = match db {
        Some(db) => Some(crate::db::connect(db).await.map_err(refuse)?),
        None => None,
    };
    let report = lint::run(inputs, &settings, client.as_ref())
        .await
        .map_err(refuse)?;
    print(&report, args.format);
    match report.failing() {
        0 => Ok(()),
        n => Err(Error::LintFindings(n)),
    }
}

fn refuse(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::nothing_changed("lint", e)
}

/// Every migration of the folder `dir` that has SQL, as `migrate` reads it.
fn folder(dir: &Path, format: Option<source::Format>) -> Result<Vec<PendingMigration>, Error> {
    let (_, migrations) = source::load_with(dir, format, Strictness::KeepEmpty).map_err(refuse)?;
    Ok(migrations
        .iter()
        .filter(|m| !m.empty)
        .map(describe)
        .collect())
}

fn inputs_of(migrations: &[PendingMigration], all_wrapped: bool) -> Result<Vec<Input>, Error> {
    migrations
        .iter()
        .map(|p| Input::of(p, all_wrapped))
        .collect::<Result<_, _>>()
        .map_err(refuse)
}

/// A folder's migrations, or one file: as a migration of the folder it is
/// in when that folder reads as one, else its whole text.
fn inputs_at(path: &Path, all_wrapped: bool) -> Result<Vec<Input>, Error> {
    if path.is_dir() {
        return inputs_of(&folder(path, None)?, all_wrapped);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| refuse(format!("cannot read `{}`: {e}", path.display())))?;
    let in_folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .and_then(|dir| folder(dir, None).ok())
        .and_then(|ms| ms.into_iter().find(|m| same_file(Path::new(&m.path), path)));
    let input = match in_folder {
        Some(m) => Input::of(&m, all_wrapped),
        None => {
            // No folder format names it: its own lines still say how it runs.
            let directives = source::own_directives(path, &text).map_err(refuse)?;
            Input::new(
                lint::shown_path(path),
                text,
                1,
                Mode {
                    wrapped: all_wrapped || directives.transaction,
                    batched: directives.batch.is_some(),
                    shared: false,
                },
            )
        }
    };
    Ok(vec![input.map_err(refuse)?])
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn print(report: &LintReport, format: LintFormat) {
    match format {
        LintFormat::Text => {
            crate::out!("{}", lint::output::text(report));
            // Under GitHub Actions, also the annotations (on stderr, where
            // workflow commands belong beside output) and the job summary.
            if let Some(gh) = crate::ci::GitHub::from_env() {
                eprint!("{}", lint::output::github(report));
                if let Err(e) = gh.append_summary(&lint::output::markdown(report)) {
                    tracing::warn!(error = %e, "could not write the GitHub job summary");
                }
            }
        }
        LintFormat::Json => super::print_json(report),
        LintFormat::Sarif => super::print_json(&lint::output::sarif(report)),
        LintFormat::Github => crate::out!("{}", lint::output::github(report)),
    }
}
