//! Reading a migrations folder in any of the layouts teams already have:
//! snapguard's own, golang-migrate, dbmate, sqlx, diesel and Flyway.
//!
//! | format | files | run outside a transaction |
//! |---|---|---|
//! | snapguard | `<version>_<name>.sql` | `-- snapguard:no-transaction` |
//! | sqlx | `<version>_<name>.sql` or `.up.sql` | `-- no-transaction` on the first line |
//! | golang-migrate | `<version>_<name>.up.sql` (+ `.down.sql`) | — |
//! | dbmate | `<version>_<name>.sql` with `-- migrate:up` / `-- migrate:down` | `-- migrate:up transaction:false` |
//! | diesel | `<timestamp>_<name>/up.sql` (+ `down.sql`) | `run_in_transaction = false` in `metadata.toml` |
//! | Flyway | `V<1.2.3>__<name>.sql`, repeatable `R__<name>.sql` | `executeInTransaction=false` in `<file>.conf` |
//!
//! In every format, `-- snapguard:statement-timeout 15m`,
//! `-- snapguard:lock-timeout 2s`, `-- snapguard:no-transaction` and
//! `-- snapguard:batch [pause]` comment lines set per-migration options. Down migrations are read past, never
//! run: a deploy rolls back by restoring the snapshot.

use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use crate::config::Format;
use crate::sqlsplit as split;

mod directives;
pub use directives::parse_allow;
mod format;
mod transaction;

use self::directives::apply_snapguard_directives;
pub use self::directives::{Batch, Directives};
use self::format::{
    apply_native_options, dbmate_up, detect, flyway_versioned, no_transaction_hint, numbered,
};
use self::transaction::{
    check_batch, has_inner_transaction_control, transaction_refused, without_own_transaction,
};

/// A migration version: the digits of an integer or timestamp, or Flyway's
/// dotted `1.2.10`, compared part by part as numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    raw: String,
    parts: Vec<u128>,
}

impl Version {
    /// Parses `42`, `20261121050342` or `1.2.10` (`1_2_10` in Flyway names).
    pub fn parse(raw: &str) -> Option<Version> {
        let parts: Option<Vec<u128>> = raw.split(['.', '_']).map(|p| p.parse().ok()).collect();
        let parts = parts?;
        (!parts.is_empty()).then(|| Version {
            raw: raw.to_owned(),
            parts,
        })
    }

    /// Whether both are the same number (`01` and `1`).
    pub fn same_number(&self, other: &Version) -> bool {
        self.parts == other.parts
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts
            .cmp(&other.parts)
            .then_with(|| self.raw.cmp(&other.raw))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// One migration read from disk.
#[derive(Debug, Clone)]
pub struct Migration {
    /// Its version; `None` for a Flyway repeatable migration.
    pub version: Option<Version>,
    /// The name part of the file name.
    pub name: String,
    /// The file holding the SQL, relative to the migrations folder.
    pub path: PathBuf,
    /// The SQL to apply.
    pub sql: String,
    /// The 1-based line of the file where `sql` starts.
    pub first_line: usize,
    /// Options.
    pub directives: Directives,
    /// SHA-256 of `sql`, lowercase hex: a change after applying is drift.
    pub checksum: String,
    /// The checksum the format's own tool records for the file (sqlx,
    /// Flyway), in its scheme; `None` for the tools that keep none.
    pub native_checksum: Option<String>,
    /// The file has no SQL yet (just made by `migrate new`); only a lenient
    /// read ([`Strictness::KeepEmpty`]) returns such a migration.
    pub empty: bool,
}

/// What a read of the folder does with a migration that has no SQL yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Refuse it: `migrate`, `plan` and `deploy` must not apply a no-op.
    RefuseEmpty,
    /// Return it, marked `empty`: `migrate status` shows it, `migrate new`
    /// numbers after it.
    KeepEmpty,
}

/// A migrations folder is not usable; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The folder cannot be read.
    #[error("cannot read the migrations folder `{}`", path.display())]
    Read {
        /// The folder or file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file name does not fit the format.
    #[error("`{}`: the name does not fit the {format} format ({expected})", path.display())]
    BadName {
        /// The file.
        path: PathBuf,
        /// The format.
        format: Format,
        /// What a name should look like.
        expected: &'static str,
    },
    /// The folder's layout matches no format.
    #[error("`{}`: cannot tell the migrations format from `{}`; set `migrations.format`", dir.display(), example.display())]
    Undetectable {
        /// The folder.
        dir: PathBuf,
        /// A file that did not help.
        example: PathBuf,
    },
    /// Two migrations share a version.
    #[error("`{}` and `{}` both have version {version}", first.display(), second.display())]
    DuplicateVersion {
        /// The version.
        version: String,
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// A migration has no SQL.
    #[error("`{}` is empty", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A dbmate file without its `-- migrate:up` section.
    #[error("`{}` has no `-- migrate:up` section", path.display())]
    MissingUp {
        /// The file.
        path: PathBuf,
    },
    /// A directive that snapguard does not know, or with a bad value.
    #[error("`{}:{line}`: {message}", path.display())]
    BadDirective {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A statement PostgreSQL refuses inside a transaction, in a migration
    /// that runs in one.
    #[error("`{}:{line}`: {what} cannot run inside a transaction; mark the migration to run outside one ({hint})", path.display())]
    NeedsNoTransaction {
        /// The file.
        path: PathBuf,
        /// The statement's line.
        line: usize,
        /// The statement kind, for example `CREATE INDEX CONCURRENTLY`.
        what: &'static str,
        /// The directive for this format.
        hint: &'static str,
    },
    /// Bytes PostgreSQL cannot take as SQL text: invalid UTF-8, or a NUL
    /// byte (which the protocol cannot carry).
    #[error("`{}:{line}:{column}`: {what}", path.display())]
    BadBytes {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The column (in bytes), from 1.
        column: usize,
        /// What was found.
        what: &'static str,
    },
    /// More than one of the above, all reported at once.
    #[error("{} problems in the migrations folder:{}", .0.len(), .0.iter().map(|e| format!("\n  - {e}")).collect::<String>())]
    Several(Vec<SourceError>),
    /// The SQL does not split into statements (an unterminated quote…).
    #[error("`{}:{}`: {}", path.display(), source.line, source)]
    Unterminated {
        /// The file.
        path: PathBuf,
        /// The splitter's error, with the file line.
        source: split::SplitError,
    },
}

impl SourceError {
    /// The same error with file paths (relative to the folder) under `dir`.
    fn under(mut self, dir: &Path) -> SourceError {
        match &mut self {
            SourceError::Read { .. } | SourceError::Undetectable { .. } => {}
            SourceError::Several(errors) => {
                for e in std::mem::take(errors) {
                    errors.push(e.under(dir));
                }
            }
            SourceError::DuplicateVersion { first, second, .. } => {
                *first = dir.join(&*first);
                *second = dir.join(&*second);
            }
            SourceError::BadName { path, .. }
            | SourceError::Empty { path }
            | SourceError::MissingUp { path }
            | SourceError::BadDirective { path, .. }
            | SourceError::NeedsNoTransaction { path, .. }
            | SourceError::BadBytes { path, .. }
            | SourceError::Unterminated { path, .. } => *path = dir.join(&*path),
        }
        self
    }
}

/// The file's bytes as SQL text, refusing what PostgreSQL would refuse
/// only mid-deploy: invalid UTF-8 and NUL bytes, with their position.
fn sql_text(file: &Path, bytes: Vec<u8>) -> Result<String, SourceError> {
    let bad = |offset: usize, what| {
        let before = &bytes[..offset];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let column = offset
            - before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        SourceError::BadBytes {
            path: file.to_path_buf(),
            line,
            column,
            what,
        }
    };
    if let Err(e) = std::str::from_utf8(&bytes) {
        return Err(bad(
            e.valid_up_to(),
            "invalid UTF-8; save the file as UTF-8",
        ));
    }
    if let Some(offset) = bytes.iter().position(|b| *b == 0) {
        return Err(bad(
            offset,
            "a NUL byte, which PostgreSQL cannot take in SQL text",
        ));
    }
    Ok(String::from_utf8(bytes).expect("checked above"))
}

/// The options a file gives in its own lines, read on its own (`lint
/// FILE` of a file whose name fits no folder format, Prisma's
/// `migration.sql` say): `-- snapguard:…` directives, sqlx's first-line
/// `-- no-transaction`, dbmate's `-- migrate:up transaction:false`.
pub fn own_directives(path: &Path, text: &str) -> Result<Directives, SourceError> {
    let mut directives = if text.lines().any(|l| format::is_dbmate_marker(l, "up")) {
        dbmate_up(path, text)?.2
    } else {
        Directives::default()
    };
    apply_native_options(Path::new(""), path, Format::Sqlx, text, &mut directives);
    apply_snapguard_directives(path, text, &mut directives)?;
    if directives.batch.is_some() {
        directives.transaction = false;
    }
    Ok(directives)
}

/// Reads every migration in `dir` in `format` (detected when `None`), in
/// apply order: versioned by version, then repeatables by name.
///
/// Paths, in migrations and errors, start with `dir` as given, so that with
/// a relative `dir` they are relative to where snapguard runs (the
/// repository root in CI) and editors and CI annotations can open them.
pub fn load(dir: &Path, format: Option<Format>) -> Result<(Format, Vec<Migration>), SourceError> {
    load_with(dir, format, Strictness::RefuseEmpty)
}

/// [`load`], keeping or refusing migrations without SQL. Every problem in
/// the folder is reported at once ([`SourceError::Several`]), not the first.
pub fn load_with(
    dir: &Path,
    format: Option<Format>,
    strictness: Strictness,
) -> Result<(Format, Vec<Migration>), SourceError> {
    let (format, mut migrations) =
        load_relative(dir, format, strictness).map_err(|e| e.under(dir))?;
    for m in &mut migrations {
        m.path = dir.join(&m.path);
    }
    Ok((format, migrations))
}

fn load_relative(
    dir: &Path,
    format: Option<Format>,
    strictness: Strictness,
) -> Result<(Format, Vec<Migration>), SourceError> {
    let entries = list(dir)?;
    let format = match format {
        Some(f) => f,
        None => detect(dir, &entries)?,
    };
    let mut migrations = Vec::new();
    let mut errors = Vec::new();
    for entry in &entries {
        match read_entry(dir, entry, format, strictness) {
            Ok(Some(m)) => migrations.push(m),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    migrations.sort_by(|a, b| match (&a.version, &b.version) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.name.cmp(&b.name),
    });
    for pair in migrations.windows(2) {
        if let (Some(a), Some(b)) = (&pair[0].version, &pair[1].version)
            && a.parts == b.parts
        {
            errors.push(SourceError::DuplicateVersion {
                version: b.to_string(),
                first: pair[0].path.clone(),
                second: pair[1].path.clone(),
            });
        }
    }
    match errors.len() {
        0 => Ok((format, migrations)),
        1 => Err(errors.remove(0)),
        _ => Err(SourceError::Several(errors)),
    }
}

/// File and directory names in `dir`, sorted, without hidden ones.
fn list(dir: &Path) -> Result<Vec<(String, bool)>, SourceError> {
    let read = std::fs::read_dir(dir).map_err(|source| SourceError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|source| SourceError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.push((name, is_dir));
    }
    out.sort();
    Ok(out)
}

fn read_entry(
    dir: &Path,
    (name, is_dir): &(String, bool),
    format: Format,
    strictness: Strictness,
) -> Result<Option<Migration>, SourceError> {
    let bad = |expected| SourceError::BadName {
        path: PathBuf::from(name),
        format,
        expected,
    };
    let (version, title, file) = match format {
        Format::Diesel => {
            if !is_dir {
                return Ok(None);
            }
            let (version, title) = name
                .split_once('_')
                .ok_or_else(|| bad("`<timestamp>_<name>/up.sql`"))?;
            let digits: String = version.chars().filter(|c| *c != '-').collect();
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                return Err(bad("`<timestamp>_<name>/up.sql`"));
            }
            (
                Some(digits),
                title.to_owned(),
                PathBuf::from(name).join("up.sql"),
            )
        }
        _ if *is_dir => return Ok(None),
        _ if !name.ends_with(".sql") => return Ok(None),
        Format::Flyway => {
            if let Some(title) = name
                .strip_prefix("R__")
                .and_then(|r| r.strip_suffix(".sql"))
            {
                (None, title.to_owned(), PathBuf::from(name))
            } else if name.starts_with('U') {
                // Undo migrations are never run.
                return Ok(None);
            } else {
                let (version, title) = flyway_versioned(name)
                    .ok_or_else(|| bad("`V<version>__<name>.sql` or `R__<name>.sql`"))?;
                (
                    Some(version.to_owned()),
                    title.to_owned(),
                    PathBuf::from(name),
                )
            }
        }
        Format::GolangMigrate | Format::Sqlx if name.ends_with(".down.sql") => return Ok(None),
        Format::GolangMigrate => {
            let (version, title) =
                numbered(name, ".up.sql").ok_or_else(|| bad("`<version>_<name>.up.sql`"))?;
            (
                Some(version.to_owned()),
                title.to_owned(),
                PathBuf::from(name),
            )
        }
        Format::Sqlx => {
            let (version, title) = numbered(name, ".up.sql")
                .or_else(|| numbered(name, ".sql"))
                .ok_or_else(|| bad("`<version>_<name>.sql` or `<version>_<name>.up.sql`"))?;
            (
                Some(version.to_owned()),
                title.to_owned(),
                PathBuf::from(name),
            )
        }
        Format::Snapguard | Format::Dbmate => {
            let (version, title) =
                numbered(name, ".sql").ok_or_else(|| bad("`<version>_<name>.sql`"))?;
            (
                Some(version.to_owned()),
                title.to_owned(),
                PathBuf::from(name),
            )
        }
    };
    let full = dir.join(&file);
    let bytes = std::fs::read(&full).map_err(|source| SourceError::Read {
        path: full.clone(),
        source,
    })?;
    let text = sql_text(&file, bytes)?;
    let (sql, first_line, mut directives) = match format {
        Format::Dbmate => dbmate_up(&file, &text)?,
        _ => (text.clone(), 1, Directives::default()),
    };
    apply_native_options(dir, &file, format, &text, &mut directives);
    apply_snapguard_directives(&file, &text, &mut directives)?;
    let statements = split::split(&sql).map_err(|e| SourceError::Unterminated {
        path: file.clone(),
        source: split::SplitError {
            line: e.line + first_line - 1,
            ..e
        },
    })?;
    let version = match version {
        Some(v) => Some(Version::parse(&v).ok_or_else(|| bad("a numeric version"))?),
        None => None,
    };
    if statements.is_empty() {
        return match strictness {
            Strictness::RefuseEmpty => Err(SourceError::Empty { path: file }),
            Strictness::KeepEmpty => Ok(Some(Migration {
                version,
                name: title,
                path: file,
                sql: String::new(),
                first_line,
                checksum: hex::encode(Sha256::digest(sql.as_bytes())),
                native_checksum: None,
                directives,
                empty: true,
            })),
        };
    }
    // golang-migrate and Flyway run a lone statement that PostgreSQL refuses
    // in a transaction without one, unasked; so does snapguard for them.
    if matches!(format, Format::GolangMigrate | Format::Flyway)
        && let [only] = statements.as_slice()
        && transaction_refused(&only.sql).is_some()
    {
        directives.transaction = false;
    }
    let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
    let native_checksum = crate::migrate::native::checksum(format, &text);
    // golang-migrate sends a file as one string, so its own `BEGIN …
    // COMMIT` blocks work there; snapguard runs such a file as it is,
    // outside a transaction of its own.
    if format == Format::GolangMigrate
        && directives.transaction
        && has_inner_transaction_control(&statements)
    {
        directives.transaction = false;
        directives.own_transactions = true;
    }
    let sql = if directives.transaction {
        without_own_transaction(&file, sql, &statements, first_line)?
    } else {
        sql
    };
    if directives.batch.is_some() {
        check_batch(&file, &statements, first_line)?;
        // Each batch commits on its own, so the migration as a whole cannot
        // be one transaction.
        directives.transaction = false;
    }
    if directives.transaction
        && let Some((statement, what)) = statements
            .iter()
            .find_map(|s| transaction_refused(&s.sql).map(|w| (s, w)))
    {
        return Err(SourceError::NeedsNoTransaction {
            path: file,
            line: statement.line + first_line - 1,
            what,
            hint: no_transaction_hint(format),
        });
    }
    // sqlx and golang-migrate keep the version in a bigint.
    if matches!(format, Format::Sqlx | Format::GolangMigrate)
        && let Some(v) = &version
        && v.as_str().parse::<i64>().is_err()
    {
        return Err(bad("a version that fits a 64-bit integer"));
    }
    Ok(Some(Migration {
        version,
        name: title,
        path: file,
        sql,
        first_line,
        directives,
        checksum,
        native_checksum,
        empty: false,
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    // Paths relative to the folder keep the assertions short; `load` itself
    // is checked in `paths_start_with_the_folder`.
    fn load(dir: &Path, format: Option<Format>) -> Result<(Format, Vec<Migration>), SourceError> {
        load_relative(dir, format, Strictness::RefuseEmpty)
    }

    #[test]
    fn every_problem_is_reported_at_once_and_empty_files_only_when_refused() {
        let dir = folder(&[
            ("1_a.sql", "CREATE TABLE a (x int);\nCOMMIT;\n"),
            ("2_b.sql", ""),
            ("3-c.sql", "SELECT 1;"),
            ("4_d.sql", "SELECT 'unterminated;"),
        ]);
        let err = load(dir.path(), None).unwrap_err().to_string();
        assert!(
            err.starts_with("4 problems in the migrations folder:"),
            "{err}"
        );
        for part in [
            "`1_a.sql:2`",
            "`2_b.sql` is empty",
            "`3-c.sql`",
            "`4_d.sql:1`",
        ] {
            assert!(err.contains(part), "{part} in {err}");
        }
        std::fs::write(dir.path().join("1_a.sql"), "SELECT 1;").unwrap();
        std::fs::remove_file(dir.path().join("3-c.sql")).unwrap();
        std::fs::remove_file(dir.path().join("4_d.sql")).unwrap();
        let (_, ms) = load_relative(dir.path(), None, Strictness::KeepEmpty).unwrap();
        assert_eq!(
            ms.iter().map(|m| m.empty).collect::<Vec<_>>(),
            [false, true]
        );
    }

    #[test]
    fn paths_start_with_the_folder() {
        let dir = folder(&[("1_a.sql", "SELECT 1;"), ("2_b.sql", "")]);
        let err = super::load(dir.path(), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("`{}` is empty", dir.path().join("2_b.sql").display())
        );
        std::fs::remove_file(dir.path().join("2_b.sql")).unwrap();
        let (_, ms) = super::load(dir.path(), None).unwrap();
        assert_eq!(ms[0].path, dir.path().join("1_a.sql"));
    }

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        dir
    }

    fn versions(ms: &[Migration]) -> Vec<String> {
        ms.iter()
            .map(|m| {
                m.version
                    .as_ref()
                    .map_or(format!("R:{}", m.name), |v| v.to_string())
            })
            .collect()
    }

    #[test]
    fn snapguard_format_with_directives() {
        let dir = folder(&[
            (
                "10_second.sql",
                "-- snapguard:no-transaction\n-- snapguard:statement-timeout 15m\nCREATE INDEX CONCURRENTLY i ON t (x);",
            ),
            ("9_first.sql", "CREATE TABLE t (x int);"),
            ("README.md", "not a migration"),
        ]);
        let (format, ms) = load(dir.path(), None).unwrap();
        assert_eq!(format, Format::Snapguard);
        assert_eq!(versions(&ms), vec!["9", "10"]);
        assert!(ms[0].directives.transaction);
        assert!(!ms[1].directives.transaction);
        assert_eq!(
            ms[1].directives.statement_timeout,
            Some(Duration::from_secs(900))
        );
        assert_eq!(ms[1].checksum.len(), 64);
    }

    #[test]
    fn an_own_begin_and_commit_are_blanked_keeping_positions() {
        let dir = folder(&[(
            "1_init.up.sql",
            "BEGIN;\nCREATE TABLE a (x int);\nCREATE TABLE b (y int);\nCOMMIT;\n",
        )]);
        let (_, ms) = load(dir.path(), None).unwrap();
        let m = &ms[0];
        assert!(m.directives.transaction);
        assert_eq!(
            m.sql,
            "      \nCREATE TABLE a (x int);\nCREATE TABLE b (y int);\n       \n"
        );
        let original = "BEGIN;\nCREATE TABLE a (x int);\nCREATE TABLE b (y int);\nCOMMIT;\n";
        assert_eq!(m.checksum, hex::encode(Sha256::digest(original.as_bytes())));
    }

    #[test]
    fn other_transaction_control_is_refused_with_its_line() {
        let dir = folder(&[(
            "1_init.sql",
            "CREATE TABLE a (x int);\nCOMMIT;\nCREATE TABLE b (y int);\n",
        )]);
        let err = load(dir.path(), None).unwrap_err().to_string();
        assert!(err.starts_with("`1_init.sql:2`: `commit`"), "{err}");
    }

    #[test]
    fn golang_migrate_files_keep_their_own_transaction_blocks() {
        let text =
            "BEGIN;\nCREATE TABLE a (x int);\nCOMMIT;\nBEGIN;\nCREATE TABLE b (y int);\nCOMMIT;\n";
        let dir = folder(&[("1_init.up.sql", text)]);
        let (_, ms) = load(dir.path(), None).unwrap();
        assert!(!ms[0].directives.transaction);
        assert!(ms[0].directives.own_transactions);
        assert_eq!(ms[0].sql, text, "run as written");
        // One block around the whole file is still absorbed.
        let whole = folder(&[(
            "1_init.up.sql",
            "BEGIN;\nCREATE TABLE a (x int);\nCOMMIT;\n",
        )]);
        let (_, ms) = load(whole.path(), None).unwrap();
        assert!(ms[0].directives.transaction);
        assert!(!ms[0].directives.own_transactions);
    }

    #[test]
    fn golang_migrate_and_flyway_run_a_lone_concurrent_index_outside_a_transaction() {
        for name in ["2_idx.up.sql", "V2__idx.sql"] {
            let dir = folder(&[(name, "CREATE INDEX CONCURRENTLY i ON t (x);")]);
            let (_, ms) = load(dir.path(), None).unwrap();
            assert!(!ms[0].directives.transaction, "{name}");
        }
        let dir = folder(&[("2_idx.sql", "CREATE INDEX CONCURRENTLY i ON t (x);")]);
        let err = load(dir.path(), Some(Format::Sqlx))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("start the file with `-- no-transaction`"),
            "{err}"
        );
    }

    #[test]
    fn batched_migrations_are_one_data_statement() {
        let dir = folder(&[(
            "1_fill.sql",
            "-- snapguard:batch 50ms\nUPDATE t SET x = 1 WHERE id IN (SELECT id FROM t WHERE x IS NULL LIMIT 1000);",
        )]);
        let (_, ms) = load(dir.path(), None).unwrap();
        assert_eq!(
            ms[0].directives.batch,
            Some(Batch {
                pause: Duration::from_millis(50)
            })
        );
        assert!(!ms[0].directives.transaction);
        let two = folder(&[(
            "1_fill.sql",
            "-- snapguard:batch\nUPDATE t SET x = 1;\nUPDATE t SET y = 1;",
        )]);
        let err = load(two.path(), None).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "`1_fill.sql:3`: a `snapguard:batch` migration holds exactly one statement"
            ),
            "{err}"
        );
        let ddl = folder(&[("1_fill.sql", "-- snapguard:batch\nCREATE TABLE t (x int);")]);
        let err = load(ddl.path(), None).unwrap_err().to_string();
        assert!(err.contains("must be an UPDATE, DELETE or INSERT"), "{err}");
    }

    #[test]
    fn golang_migrate_skips_downs() {
        let dir = folder(&[
            ("1_init.up.sql", "CREATE TABLE a (x int);"),
            ("1_init.down.sql", "DROP TABLE a;"),
            ("2_more.up.sql", "SELECT 1;"),
        ]);
        let (format, ms) = load(dir.path(), None).unwrap();
        assert_eq!(format, Format::GolangMigrate);
        assert_eq!(versions(&ms), vec!["1", "2"]);
    }

    #[test]
    fn dbmate_sections_and_transaction_option() {
        let body = "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (x);\n\n-- migrate:down\nDROP INDEX i;\n";
        let dir = folder(&[("20260101120000_index.sql", body)]);
        let (format, ms) = load(dir.path(), None).unwrap();
        assert_eq!(format, Format::Dbmate);
        assert_eq!(ms[0].sql.trim(), "CREATE INDEX CONCURRENTLY i ON t (x);");
        assert_eq!(ms[0].first_line, 2);
        assert!(!ms[0].directives.transaction);
    }

    #[test]
    fn sqlx_no_transaction_first_line() {
        let dir = folder(&[("20260101000000_a.sql", "-- no-transaction\nVACUUM;")]);
        let (_, ms) = load(dir.path(), Some(Format::Sqlx)).unwrap();
        assert!(!ms[0].directives.transaction);
    }

    #[test]
    fn diesel_directories_and_metadata() {
        let dir = folder(&[
            (
                "2026-01-01-000000_create_users/up.sql",
                "CREATE TABLE users (id int);",
            ),
            (
                "2026-01-01-000000_create_users/down.sql",
                "DROP TABLE users;",
            ),
            (
                "2026-01-02-000000_index/up.sql",
                "CREATE INDEX CONCURRENTLY i ON users (id);",
            ),
            (
                "2026-01-02-000000_index/metadata.toml",
                "run_in_transaction = false\n",
            ),
        ]);
        let (format, ms) = load(dir.path(), None).unwrap();
        assert_eq!(format, Format::Diesel);
        assert_eq!(versions(&ms), vec!["20260101000000", "20260102000000"]);
        assert_eq!(
            ms[0].path,
            Path::new("2026-01-01-000000_create_users/up.sql")
        );
        assert!(!ms[1].directives.transaction);
    }

    #[test]
    fn flyway_dotted_versions_and_repeatables() {
        let dir = folder(&[
            ("V1.10__later.sql", "SELECT 10;"),
            ("V1.2__earlier.sql", "SELECT 2;"),
            ("V1_3__underscored.sql", "SELECT 3;"),
            ("R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 1;"),
            ("U1.2__undo.sql", "SELECT 0;"),
            ("V1.3.1__no_tx.sql", "VACUUM;"),
            ("V1.3.1__no_tx.sql.conf", "executeInTransaction=false\n"),
        ]);
        let (format, ms) = load(dir.path(), None).unwrap();
        assert_eq!(format, Format::Flyway);
        assert_eq!(
            versions(&ms),
            vec!["1.2", "1_3", "1.3.1", "1.10", "R:views"]
        );
        assert!(!ms[2].directives.transaction);
    }

    #[test]
    fn bad_folders_name_the_file() {
        let dup = folder(&[("1_a.sql", "SELECT 1;"), ("01_b.sql", "SELECT 2;")]);
        let err = load(dup.path(), None).unwrap_err();
        assert!(matches!(err, SourceError::DuplicateVersion { .. }), "{err}");
        let empty = folder(&[("1_a.sql", "-- nothing here\n")]);
        assert_eq!(
            load(empty.path(), None).unwrap_err().to_string(),
            "`1_a.sql` is empty"
        );
        let unnamed = folder(&[("init.sql", "SELECT 1;")]);
        assert!(
            load(unnamed.path(), None)
                .unwrap_err()
                .to_string()
                .contains("`init.sql`: the name does not fit")
        );
        let quote = folder(&[("1_a.sql", "SELECT 1;\nSELECT 'open;\n")]);
        assert_eq!(
            load(quote.path(), None).unwrap_err().to_string(),
            "`1_a.sql:2`: unterminated string literal starting at line 2"
        );
        let dbmate = folder(&[
            ("1_a.sql", "-- migrate:up\nSELECT 1;"),
            ("2_b.sql", "SELECT 2;"),
        ]);
        assert_eq!(
            load(dbmate.path(), None).unwrap_err().to_string(),
            "`2_b.sql` has no `-- migrate:up` section"
        );
        let directive = folder(&[("1_a.sql", "-- snapguard:fast-please\nSELECT 1;")]);
        assert!(
            load(directive.path(), None)
                .unwrap_err()
                .to_string()
                .starts_with("`1_a.sql:1`: unknown directive `snapguard:fast-please`")
        );
    }

    #[test]
    fn statements_refused_in_a_transaction_need_the_directive() {
        let dir = folder(&[(
            "1_a.sql",
            "CREATE TABLE t (x int);\n\ncreate  index concurrently i on t (x);",
        )]);
        let err = load(dir.path(), None).unwrap_err().to_string();
        assert_eq!(
            err,
            "`1_a.sql:3`: CREATE INDEX CONCURRENTLY cannot run inside a transaction; mark the migration to run outside one (add `-- snapguard:no-transaction`)"
        );
        let ok = folder(&[(
            "1_a.sql",
            "-- snapguard:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);",
        )]);
        assert!(load(ok.path(), None).is_ok());
    }

    #[test]
    fn versions_compare_numerically() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("9") < v("10"));
        assert!(v("1.2") < v("1.10"));
        assert!(Version::parse("1.x").is_none());
    }

    #[test]
    fn nul_bytes_and_invalid_utf8_are_refused_with_their_position() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1_ok.sql"), "CREATE TABLE a (x int);\n").unwrap();
        std::fs::write(dir.path().join("2_nul.sql"), b"SELECT 1;\nSELECT 'a\0b';\n").unwrap();
        let err = load(dir.path(), Some(Format::Snapguard))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("2_nul.sql:2:10`: a NUL byte, which PostgreSQL cannot take in SQL text"),
            "{err}"
        );
        std::fs::remove_file(dir.path().join("2_nul.sql")).unwrap();
        std::fs::write(dir.path().join("3_latin1.sql"), b"-- caf\xe9\nSELECT 1;\n").unwrap();
        let err = load(dir.path(), Some(Format::Snapguard))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("3_latin1.sql:1:7`: invalid UTF-8; save the file as UTF-8"),
            "{err}"
        );
    }
}
