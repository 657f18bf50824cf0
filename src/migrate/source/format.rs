//! What tells the formats apart: file names, dbmate's sections, and each
//! native tool's own way to run a file outside a transaction.

use std::path::Path;

use super::{Directives, Format, SourceError};

pub(super) fn detect(dir: &Path, entries: &[(String, bool)]) -> Result<Format, SourceError> {
    if entries
        .iter()
        .any(|(n, d)| *d && dir.join(n).join("up.sql").is_file())
    {
        return Ok(Format::Diesel);
    }
    if entries
        .iter()
        .any(|(n, d)| !d && (flyway_versioned(n).is_some() || n.starts_with("R__")))
    {
        return Ok(Format::Flyway);
    }
    if entries.iter().any(|(n, d)| !d && n.ends_with(".up.sql")) {
        return Ok(Format::GolangMigrate);
    }
    let sql: Vec<&String> = entries
        .iter()
        .filter(|(n, d)| !d && n.ends_with(".sql"))
        .map(|(n, _)| n)
        .collect();
    if sql.iter().any(|n| {
        std::fs::read_to_string(dir.join(n))
            .is_ok_and(|t| t.lines().any(|l| is_dbmate_marker(l, "up")))
    }) {
        return Ok(Format::Dbmate);
    }
    match sql.first() {
        Some(_) => Ok(Format::Snapguard),
        None => match entries.first() {
            // An empty folder has nothing to apply in any format.
            None => Ok(Format::Snapguard),
            Some((n, _)) => Err(SourceError::Undetectable {
                dir: dir.to_path_buf(),
                example: n.into(),
            }),
        },
    }
}

/// `V1_2__name.sql` → (`1_2`, `name`).
pub(super) fn flyway_versioned(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix('V')?.strip_suffix(".sql")?;
    let (version, title) = rest.split_once("__")?;
    (!version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '_'))
    .then_some((version, title))
}

/// `20261121_add_users.sql` → (`20261121`, `add_users`); `suffix` is what
/// must follow the name (`.sql`, `.up.sql`).
pub(super) fn numbered<'n>(name: &'n str, suffix: &str) -> Option<(&'n str, &'n str)> {
    let stem = name.strip_suffix(suffix)?;
    let (version, title) = stem.split_once('_')?;
    (!version.is_empty() && version.chars().all(|c| c.is_ascii_digit()) && !title.is_empty())
        .then_some((version, title))
}

pub(super) fn is_dbmate_marker(line: &str, which: &str) -> bool {
    line.trim_start()
        .strip_prefix("--")
        .is_some_and(|r| r.trim_start().starts_with(&format!("migrate:{which}")))
}

/// How to mark a migration to run outside a transaction in `format`.
pub(super) fn no_transaction_hint(format: Format) -> &'static str {
    match format {
        Format::Snapguard | Format::GolangMigrate => "add `-- snapguard:no-transaction`",
        Format::Sqlx => "start the file with `-- no-transaction`",
        Format::Dbmate => "write `-- migrate:up transaction:false`",
        Format::Diesel => "add `run_in_transaction = false` to its metadata.toml",
        Format::Flyway => "add `executeInTransaction=false` to its .sql.conf file",
    }
}

/// The `-- migrate:up` section of a dbmate file and its options.
pub(super) fn dbmate_up(
    file: &Path,
    text: &str,
) -> Result<(String, usize, Directives), SourceError> {
    let lines: Vec<&str> = text.lines().collect();
    let up = lines
        .iter()
        .position(|l| is_dbmate_marker(l, "up"))
        .ok_or_else(|| SourceError::MissingUp {
            path: file.to_path_buf(),
        })?;
    let down = lines
        .iter()
        .skip(up + 1)
        .position(|l| is_dbmate_marker(l, "down"))
        .map_or(lines.len(), |p| p + up + 1);
    let mut directives = Directives::default();
    for option in lines[up].split_whitespace().skip(2) {
        match option {
            "transaction:false" => directives.transaction = false,
            "transaction:true" => directives.transaction = true,
            other => {
                return Err(SourceError::BadDirective {
                    path: file.to_path_buf(),
                    line: up + 1,
                    message: format!("unknown dbmate option `{other}`"),
                });
            }
        }
    }
    Ok((lines[up + 1..down].join("\n"), up + 2, directives))
}

/// sqlx's first-line `-- no-transaction`, diesel's `metadata.toml`, Flyway's
/// `<file>.conf`.
pub(super) fn apply_native_options(
    dir: &Path,
    file: &Path,
    format: Format,
    text: &str,
    d: &mut Directives,
) {
    let no_transaction = match format {
        Format::Sqlx | Format::Snapguard => text
            .lines()
            .next()
            .is_some_and(|l| l.trim() == "-- no-transaction"),
        Format::Diesel => {
            let folder = dir.join(file.parent().unwrap_or(Path::new("")));
            has_line(&folder.join("metadata.toml"), "run_in_transaction=false")
        }
        Format::Flyway => has_line(
            &dir.join(format!("{}.conf", file.display())),
            "executeInTransaction=false",
        ),
        Format::GolangMigrate | Format::Dbmate => false,
    };
    if no_transaction {
        d.transaction = false;
    }
}

/// Whether the file at `path` exists and has `setting` on a line (spaces
/// ignored).
pub(super) fn has_line(path: &Path, setting: &str) -> bool {
    std::fs::read_to_string(path)
        .is_ok_and(|text| text.lines().any(|l| l.replace(' ', "") == setting))
}
