//! `migrate new NAME`: a correctly named migration in the folder's format.
//!
//! The version continues the folder's numbering: sequential folders
//! (`0001_…`, `V7__…`) get the next number with the same zero padding;
//! timestamped or empty folders get the current UTC time (`20261121143000`).
//! The new file holds only comments, which the loader treats as empty, so an
//! unfinished migration fails preflight instead of applying as a no-op.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::source::{self, Format, SourceError, Strictness};

/// The migration could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name has nothing usable in it.
    #[error("`{0}` is not a usable migration name: use letters, digits and underscores")]
    BadName(String),
    /// The folder is not usable as it is.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The file already exists.
    #[error("`{}` already exists", .0.display())]
    Exists(PathBuf),
    /// Writing failed.
    #[error("cannot write `{}`", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Creates the files of a new migration named `name` in `dir` and returns
/// their paths. `format` `None` means: the folder's own, else snapguard's.
pub fn new_migration(
    dir: &Path,
    format: Option<Format>,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    let slug = slug(name).ok_or_else(|| ScaffoldError::BadName(name.to_owned()))?;
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaffoldError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    // A migration still empty from an earlier `migrate new` counts for the
    // numbering; it is not an error here.
    let (format, existing) = source::load_with(dir, format, Strictness::KeepEmpty)?;
    let newest = existing.iter().filter_map(|m| m.version.as_ref()).max();
    let timestamp = now.format("%Y%m%d%H%M%S").to_string();
    let version = match newest {
        // Sequential numbering: fewer digits than a date.
        Some(v) if v.as_str().len() < 8 && !v.as_str().contains(['.', '_']) => {
            let next = v.as_str().parse::<u64>().unwrap_or(0) + 1;
            format!("{next:0width$}", width = v.as_str().len())
        }
        Some(v) if format == Format::Flyway => {
            let major = v.as_str().split(['.', '_']).next().unwrap_or("0");
            (major.parse::<u64>().unwrap_or(0) + 1).to_string()
        }
        // A clock behind the newest timestamp still sorts after it.
        Some(v) if v.as_str() >= timestamp.as_str() && v.as_str().len() == timestamp.len() => {
            (v.as_str().parse::<u64>().unwrap_or(0) + 1).to_string()
        }
        None if format == Format::Flyway => "1".to_owned(),
        _ => timestamp,
    };
    let header = format!(
        "-- {name}: write the migration below.\n-- Options go on lines of their own, each as `-- snapguard:<option>`:\n-- no-transaction, lock-timeout 5s, statement-timeout 30m, batch [pause].\n"
    );
    let files: Vec<(PathBuf, String)> = match format {
        Format::Snapguard | Format::Sqlx => {
            vec![(format!("{version}_{slug}.sql").into(), header)]
        }
        Format::GolangMigrate => vec![
            (format!("{version}_{slug}.up.sql").into(), header),
            (
                format!("{version}_{slug}.down.sql").into(),
                "-- Not run by snapguard: a failed deploy is rolled back by restoring its snapshot.\n".into(),
            ),
        ],
        Format::Dbmate => vec![(
            format!("{version}_{slug}.sql").into(),
            format!("-- migrate:up\n{header}\n-- migrate:down\n"),
        )],
        Format::Diesel => {
            let folder = format!("{}_{slug}", now.format("%Y-%m-%d-%H%M%S"));
            vec![
                (Path::new(&folder).join("up.sql"), header),
                (
                    Path::new(&folder).join("down.sql"),
                    "-- Not run by snapguard.\n".into(),
                ),
            ]
        }
        Format::Flyway => vec![(format!("V{version}__{slug}.sql").into(), header)],
    };
    let mut created = Vec::new();
    for (relative, body) in files {
        let path = dir.join(relative);
        if path.exists() {
            return Err(ScaffoldError::Exists(path));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_err(parent))?;
        }
        std::fs::write(&path, body).map_err(write_err(&path))?;
        created.push(path);
    }
    Ok(created)
}

/// `Add users.email` → `add_users_email`.
fn slug(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_').to_owned();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 14, 30, 0).unwrap()
    }

    fn names(paths: &[PathBuf], dir: &Path) -> Vec<String> {
        paths
            .iter()
            .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn an_empty_folder_gets_a_timestamped_snapguard_file() {
        let dir = tempfile::tempdir().unwrap();
        let made = new_migration(dir.path(), None, "Add users.email", now()).unwrap();
        assert_eq!(
            names(&made, dir.path()),
            ["20261121143000_add_users_email.sql"]
        );
    }

    #[test]
    fn sequential_folders_continue_their_numbering() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("000041_a.up.sql"), "SELECT 1;").unwrap();
        let made = new_migration(dir.path(), None, "b", now()).unwrap();
        assert_eq!(
            names(&made, dir.path()),
            ["000042_b.up.sql", "000042_b.down.sql"]
        );
        let flyway = tempfile::tempdir().unwrap();
        std::fs::write(flyway.path().join("V1_2__a.sql"), "SELECT 1;").unwrap();
        let made = new_migration(flyway.path(), None, "b", now()).unwrap();
        assert_eq!(names(&made, flyway.path()), ["V2__b.sql"]);
    }

    #[test]
    fn a_new_file_is_refused_until_it_has_sql() {
        let dir = tempfile::tempdir().unwrap();
        new_migration(dir.path(), Some(Format::Dbmate), "x", now()).unwrap();
        let err = source::load(dir.path(), Some(Format::Dbmate)).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
    }

    #[test]
    fn diesel_gets_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let made = new_migration(dir.path(), Some(Format::Diesel), "x", now()).unwrap();
        assert_eq!(
            names(&made, dir.path()),
            ["2026-11-21-143000_x/up.sql", "2026-11-21-143000_x/down.sql"]
        );
    }

    #[test]
    fn names_without_letters_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            new_migration(dir.path(), None, " -- ", now()),
            Err(ScaffoldError::BadName(_))
        ));
    }
}
