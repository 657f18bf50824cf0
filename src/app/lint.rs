//! `snapguard lint`: which migrations, judged how, printed in which form.

use std::path::Path;

use crate::cli::{LintArgs, LintFormat};
use crate::config::Config;
use crate::error::Error;
use crate::lint::{self, Input, LintReport, Mode, Settings};
use crate::migrate::apply::TransactionMode;
use crate::migrate::migrator::Migrator;
use crate::migrate::source::{self, Migration, Strictness};

/// Lints, prints, and exits 9 when an error-level finding remains.
pub async fn run(config: &Config, args: LintArgs) -> Result<(), Error> {
    let settings = Settings::of(&config.lint);
    let all_wrapped = config.migrations.transaction == TransactionMode::All;
    let refuse = |e: Box<dyn std::error::Error + Send + Sync>| Error::nothing_changed("lint", e);
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
        let (_, migrations) = source::load_with(
            &config.migrations.dir,
            config.migrations.format,
            Strictness::KeepEmpty,
        )
        .map_err(|e| refuse(e.into()))?;
        let pending: Option<Vec<String>> = match (db, args.all) {
            (Some(db), false) => Some(
                Migrator::new(&config.migrations, db)
                    .plan()
                    .await
                    .map_err(|e| refuse(e.into()))?
                    .pending
                    .into_iter()
                    .map(|p| p.path)
                    .collect(),
            ),
            _ => None,
        };
        if pending.is_none() && !args.all {
            tracing::info!("no database configured: linting every migration (`--all`)");
        }
        migrations
            .iter()
            .filter(|m| !m.empty)
            .filter(|m| {
                pending
                    .as_ref()
                    .is_none_or(|p| p.contains(&m.path.display().to_string()))
            })
            .map(|m| input_of(m, all_wrapped))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| refuse(e.into()))?
    };
    let client = match db {
        Some(db) => Some(crate::db::connect(db).await.map_err(|e| refuse(e.into()))?),
        None => None,
    };
    let report = lint::run(inputs, &settings, client.as_ref())
        .await
        .map_err(|e| refuse(e.into()))?;
    print(&report, args.format);
    match report.failing() {
        0 => Ok(()),
        n => Err(Error::LintFindings(n)),
    }
}

/// A folder's migrations, or one file: as a migration of the folder it is
/// in when that folder reads as one, else its whole text.
fn inputs_at(path: &Path, all_wrapped: bool) -> Result<Vec<Input>, Error> {
    let bad = |e: Box<dyn std::error::Error + Send + Sync>| Error::nothing_changed("lint", e);
    if path.is_dir() {
        let (_, migrations) =
            source::load_with(path, None, Strictness::KeepEmpty).map_err(|e| bad(e.into()))?;
        return migrations
            .iter()
            .filter(|m| !m.empty)
            .map(|m| input_of(m, all_wrapped))
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.into()));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(format!("cannot read `{}`: {e}", path.display()).into()))?;
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
    let in_folder = folder
        .and_then(|dir| source::load_with(dir, None, Strictness::KeepEmpty).ok())
        .and_then(|(_, ms)| ms.into_iter().find(|m| same_file(&m.path, path)));
    let input = match in_folder {
        Some(m) => input_of(&m, all_wrapped),
        None => Input::new(
            lint::shown_path(path),
            text,
            1,
            Mode {
                wrapped: true,
                batched: false,
            },
        ),
    };
    Ok(vec![input.map_err(|e| bad(e.into()))?])
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn input_of(m: &Migration, all_wrapped: bool) -> Result<Input, lint::LintError> {
    Input::new(
        lint::shown_path(&m.path),
        m.sql.clone(),
        m.first_line,
        Mode {
            wrapped: all_wrapped || (m.directives.transaction && !m.directives.own_transactions),
            batched: m.directives.batch.is_some(),
        },
    )
}

fn print(report: &LintReport, format: LintFormat) {
    match format {
        LintFormat::Text => {
            print!("{}", lint::output::text(report));
            if let Some(gh) = crate::ci::GitHub::detect(&|v| std::env::var(v).ok()) {
                lint::output::annotate(&gh, report);
                if let Err(e) = gh.append_summary(&lint::output::markdown(report)) {
                    tracing::warn!(error = %e, "could not write the GitHub job summary");
                }
            }
        }
        LintFormat::Json => super::print_json(report),
        LintFormat::Sarif => super::print_json(&lint::output::sarif(report)),
        LintFormat::Github => print!("{}", lint::output::github(report)),
    }
}
