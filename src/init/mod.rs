//! `snapguard init`: what a project needs to start deploying with snapguard
//! — a commented `snapguard.yml`, a migrations folder in the chosen format,
//! and the GitHub Actions workflow from `pipeline/github-actions/`.
//!
//! Everything is rendered and every target checked before the first file is
//! written, so a refusal (a file already there, a migrations folder in
//! another format) leaves the project exactly as it was.

use std::path::{Path, PathBuf};

use crate::migrate::source::{self, Format, SourceError};

/// The commented configuration; `{{store}}`, `{{dir}}` and `{{format}}` are
/// filled in.
const CONFIG_TEMPLATE: &str = include_str!("snapguard.yml");

/// The workflow users copy by hand is the one `init` writes.
/// The JSON Schema written beside the config.
const SCHEMA_FILE: &str = "snapguard.schema.json";

const WORKFLOW_TEMPLATE: &str = include_str!("../../pipeline/github-actions/deploy.yml");

/// Where the workflow goes, relative to the project.
pub const WORKFLOW_PATH: &str = ".github/workflows/deploy.yml";

/// The dump the workflow's pull-request job rehearses on, relative to the
/// project.
pub const REHEARSAL_DUMP_PATH: &str = "db/rehearsal.sql";

/// The first rehearsal dump: SQL text holding only comments, so a pull
/// request rehearses the migrations on an empty database until the team
/// puts non-production data there.
const REHEARSAL_DUMP: &str = "\
-- The data the pull-request rehearsal runs on (.github/workflows/deploy.yml:
-- `snapguard rehearse --dump db/rehearsal.sql --drill`).
--
-- As written by `snapguard init` it holds no data: a pull request rehearses
-- its migrations on an empty database, which proves they apply and roll back
-- but says nothing about their time on real tables. Replace it with a dump
-- of non-production data (seeds, or an anonymised copy), for example:
--
--   pg_dump --no-owner --no-privileges --format=plain \"$STAGING_URL\" > db/rehearsal.sql
--
-- A custom-format dump (--format=custom, any file name) works too: change
-- the path in the workflow. Never commit production data.
";

/// What to scaffold.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The project (the repository root, where `.github/` belongs).
    pub root: PathBuf,
    /// The configuration file, relative to `root`.
    pub config: PathBuf,
    /// The migrations folder, relative to the configuration file's folder.
    pub migrations_dir: PathBuf,
    /// The folder's format; `None`: an existing folder's own, else snapguard's.
    pub format: Option<Format>,
    /// `store.url`, when known; otherwise the key is left for the user.
    pub store_url: Option<String>,
    /// Also write the GitHub Actions workflow.
    pub workflow: bool,
    /// Overwrite files that exist.
    pub force: bool,
}

/// The project could not be scaffolded; nothing was written unless the
/// error is [`InitError::Write`].
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Files are in the way.
    #[error("{} already {}; nothing was written (--force overwrites)", list(.0), if .0.len() == 1 { "exists" } else { "exist" })]
    Exists(Vec<PathBuf>),
    /// The migrations folder holds migrations of another format.
    #[error("the migrations folder `{}` holds {found} migrations, not {asked}; leave out --format to keep them", .dir.display())]
    OtherFormat {
        /// The folder.
        dir: PathBuf,
        /// What it holds.
        found: Format,
        /// What `--format` asked for.
        asked: Format,
    },
    /// The migrations folder exists but cannot be read.
    #[error("the migrations folder `{}` is not usable as it is", .dir.display())]
    Migrations {
        /// The folder.
        dir: PathBuf,
        /// Why.
        #[source]
        source: SourceError,
    },
    /// Writing failed part way; the files listed before it were written.
    #[error("cannot write `{}`", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `path` as the user sees it from the project.
pub fn relative(path: &Path, root: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Where, under the project.
    pub path: PathBuf,
    /// What.
    pub contents: String,
}

/// What `init` will do.
#[derive(Debug, Clone)]
pub struct Scaffold {
    /// The migrations folder's format.
    pub format: Format,
    /// How many migrations the folder already holds.
    pub existing_migrations: usize,
    /// The files, in the order they are written.
    pub files: Vec<Planned>,
    /// The migrations folder, created even when nothing is written in it.
    pub migrations_dir: PathBuf,
}

/// Works out every file `init` would write, and refuses (changing nothing)
/// when one exists and `force` is off.
pub fn plan(options: &InitOptions) -> Result<Scaffold, InitError> {
    let config_path = options.root.join(&options.config);
    let config_dir = config_path.parent().unwrap_or(&options.root).to_path_buf();
    let migrations = config_dir.join(&options.migrations_dir);
    let (format, existing_migrations) = migrations_folder(&migrations, options.format)?;

    let mut files = vec![Planned {
        path: config_path,
        contents: render_config(options, format),
    }];
    // A folder that already holds migrations is the project's own: it is
    // read (to learn and check its format) but never written to.
    if existing_migrations == 0 {
        files.push(Planned {
            path: migrations.join("README.md"),
            contents: migrations_readme(format),
        });
    }
    if options.workflow {
        files.push(Planned {
            path: options.root.join(WORKFLOW_PATH),
            contents: render_workflow(&options.config),
        });
        // A dump already there is the team's data: kept, never refused.
        let dump = options.root.join(REHEARSAL_DUMP_PATH);
        if !dump.exists() {
            files.push(Planned {
                path: dump,
                contents: REHEARSAL_DUMP.to_owned(),
            });
        }
    }
    // Editors that read the modeline atop the config complete and check
    // its keys against this file (regenerate with `snapguard config schema`).
    files.push(Planned {
        path: config_dir.join(SCHEMA_FILE),
        contents: format!(
            "{}\n",
            serde_json::to_string_pretty(&crate::config::schema::schema())
                .expect("a JSON value prints")
        ),
    });
    if !options.force {
        let existing: Vec<PathBuf> = files
            .iter()
            .filter(|f| f.path.exists())
            .map(|f| relative(&f.path, &options.root))
            .collect();
        if !existing.is_empty() {
            return Err(InitError::Exists(existing));
        }
    }
    Ok(Scaffold {
        format,
        existing_migrations,
        files,
        migrations_dir: migrations,
    })
}

/// Writes what [`plan`] worked out and returns the paths written.
pub fn write(scaffold: &Scaffold) -> Result<Vec<PathBuf>, InitError> {
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InitError::Write { path, source }
    };
    std::fs::create_dir_all(&scaffold.migrations_dir).map_err(fail(&scaffold.migrations_dir))?;
    let mut written = Vec::new();
    for file in &scaffold.files {
        if let Some(parent) = file.path.parent() {
            std::fs::create_dir_all(parent).map_err(fail(parent))?;
        }
        std::fs::write(&file.path, &file.contents).map_err(fail(&file.path))?;
        written.push(file.path.clone());
    }
    Ok(written)
}

/// The folder's format and how many migrations it holds; an absent or
/// empty folder takes the format asked for (snapguard's by default).
fn migrations_folder(dir: &Path, format: Option<Format>) -> Result<(Format, usize), InitError> {
    let has_entries = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if !has_entries {
        return Ok((format.unwrap_or(Format::Snapguard), 0));
    }
    let load = |format| match source::load(dir, format) {
        Ok((format, migrations)) => Ok(Some((format, migrations.len()))),
        // A folder holding only files that are no migration (a README).
        Err(SourceError::Undetectable { .. }) => Ok(None),
        Err(source) => Err(InitError::Migrations {
            dir: dir.to_path_buf(),
            source,
        }),
    };
    // Reading a folder in the wrong format can silently find nothing, so
    // what is there is always detected first.
    let found = load(None)?.filter(|(_, count)| *count > 0);
    match (found, format) {
        (Some((found, _)), Some(asked)) if found != asked => Err(InitError::OtherFormat {
            dir: dir.to_path_buf(),
            found,
            asked,
        }),
        (Some(_), Some(asked)) => Ok(load(Some(asked))?.unwrap_or((asked, 0))),
        (Some(found), None) => Ok(found),
        (None, format) => Ok((format.unwrap_or(Format::Snapguard), 0)),
    }
}

fn render_config(options: &InitOptions, format: Format) -> String {
    let store = match &options.store_url {
        Some(url) => format!("url: {}", yaml_scalar(url)),
        None => "# url: s3://my-bucket/snapguard/production".to_owned(),
    };
    let modeline = format!("# yaml-language-server: $schema=./{SCHEMA_FILE}\n");
    modeline
        + &CONFIG_TEMPLATE
            .replace("{{store}}", &store)
            .replace(
                "{{dir}}",
                &yaml_scalar(&options.migrations_dir.to_string_lossy()),
            )
            .replace("{{format}}", &format.to_string())
}

/// The workflow, pointed at the configuration when it is not the action's
/// default `snapguard.yml`.
fn render_workflow(config: &Path) -> String {
    if config == Path::new("snapguard.yml") {
        return WORKFLOW_TEMPLATE.to_owned();
    }
    let input = format!(
        "          config: {}\n          command: ",
        yaml_scalar(&config.to_string_lossy())
    );
    WORKFLOW_TEMPLATE.replace("          command: ", &input)
}

/// `value` as a YAML scalar: plain when that reads back the same, else
/// single-quoted.
fn yaml_scalar(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:+@".contains(c))
        && !value.starts_with(['-', ':', '@']);
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

/// How migrations are named in `format`, for the folder's README.
fn migrations_readme(format: Format) -> String {
    let (files, no_transaction) = match format {
        Format::Snapguard => (
            "`<version>_<name>.sql`, the version an integer or a UTC timestamp: `20261121143000_create_users.sql`",
            "`-- snapguard:no-transaction` on a line of its own",
        ),
        Format::GolangMigrate => (
            "`<version>_<name>.up.sql` (and `.down.sql`, which snapguard never runs): `20261121143000_create_users.up.sql`",
            "automatic for a file whose one statement needs it",
        ),
        Format::Dbmate => (
            "`<version>_<name>.sql` with a `-- migrate:up` section (and `-- migrate:down`, never run): `20261121143000_create_users.sql`",
            "`-- migrate:up transaction:false`",
        ),
        Format::Sqlx => (
            "`<version>_<name>.sql` or `.up.sql`: `20261121143000_create_users.sql`",
            "`-- no-transaction` as the first line",
        ),
        Format::Diesel => (
            "a folder `<timestamp>_<name>/` holding `up.sql` (and `down.sql`, never run): `2026-11-21-143000_create_users/up.sql`",
            "`run_in_transaction = false` in the folder's `metadata.toml`",
        ),
        Format::Flyway => (
            "`V<version>__<name>.sql`, repeatable `R__<name>.sql`: `V1__create_users.sql`",
            "`executeInTransaction=false` in `<file>.sql.conf`",
        ),
    };
    format!(
        "# Migrations ({format} format)\n\n\
         Files: {files}.\n\n\
         Create one, correctly named: `snapguard migrate new create_users`.\n\
         See what would run: `snapguard plan`; rehearse it on a copy of production:\n\
         `snapguard rehearse`.\n\n\
         Each migration runs in its own transaction with `lock_timeout` and\n\
         `statement_timeout` (see `snapguard.yml`).\n\n\
         To run one outside a transaction (`CREATE INDEX CONCURRENTLY`):\n\
         {no_transaction}.\n\n\
         In every format, a comment line `-- snapguard:statement-timeout 30m` or\n\
         `-- snapguard:lock-timeout 5s` sets that migration's own limit.\n\n\
         Down migrations are never run: a failed deploy is undone by restoring the\n\
         snapshot taken before it.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(root: &Path) -> InitOptions {
        InitOptions {
            root: root.to_path_buf(),
            config: "snapguard.yml".into(),
            migrations_dir: "db/migrations".into(),
            format: None,
            store_url: None,
            workflow: true,
            force: false,
        }
    }

    fn files(scaffold: &Scaffold, root: &Path) -> Vec<String> {
        scaffold
            .files
            .iter()
            .map(|f| f.path.strip_prefix(root).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn a_new_project_gets_config_folder_and_workflow() {
        let dir = tempfile::tempdir().unwrap();
        let scaffold = plan(&options(dir.path())).unwrap();
        assert_eq!(scaffold.format, Format::Snapguard);
        assert_eq!(
            files(&scaffold, dir.path()),
            [
                "snapguard.yml",
                "db/migrations/README.md",
                ".github/workflows/deploy.yml",
                "db/rehearsal.sql",
                "snapguard.schema.json"
            ]
        );
        let config = &scaffold.files[0].contents;
        assert!(config.starts_with("# yaml-language-server: $schema=./snapguard.schema.json\n"));
        assert!(config.contains("  dir: db/migrations\n  format: snapguard\n"));
        assert!(config.contains("  # url: s3://my-bucket/snapguard/production\n"));
        assert!(!config.contains("{{"));
        assert_eq!(scaffold.files[2].contents, WORKFLOW_TEMPLATE);
        assert!(
            scaffold.files[3]
                .contents
                .lines()
                .all(|line| line.is_empty() || line.starts_with("--"))
        );
    }

    #[test]
    fn a_rehearsal_dump_already_there_is_kept_not_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("db")).unwrap();
        std::fs::write(dir.path().join(REHEARSAL_DUMP_PATH), "mine").unwrap();
        let scaffold = plan(&options(dir.path())).unwrap();
        assert!(!files(&scaffold, dir.path()).contains(&REHEARSAL_DUMP_PATH.to_owned()));
    }

    #[test]
    fn existing_files_are_refused_together_and_force_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("snapguard.yml"), "mine").unwrap();
        std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
        std::fs::write(dir.path().join(WORKFLOW_PATH), "mine").unwrap();
        let err = plan(&options(dir.path())).unwrap_err().to_string();
        assert_eq!(
            err,
            "`snapguard.yml`, `.github/workflows/deploy.yml` already exist; nothing was written (--force overwrites)"
        );
        let forced = InitOptions {
            force: true,
            ..options(dir.path())
        };
        write(&plan(&forced).unwrap()).unwrap();
        let config = std::fs::read_to_string(dir.path().join("snapguard.yml")).unwrap();
        assert!(config.starts_with(
            "# yaml-language-server: $schema=./snapguard.schema.json\n# snapguard.yml"
        ));
    }

    #[test]
    fn an_existing_folder_keeps_its_format_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let migrations = dir.path().join("db/migrations");
        std::fs::create_dir_all(&migrations).unwrap();
        std::fs::write(migrations.join("V1__users.sql"), "CREATE TABLE u (id int);").unwrap();
        let scaffold = plan(&options(dir.path())).unwrap();
        assert_eq!(scaffold.format, Format::Flyway);
        assert_eq!(scaffold.existing_migrations, 1);
        assert!(
            !files(&scaffold, dir.path())
                .iter()
                .any(|f| f.contains("README"))
        );
        assert!(scaffold.files[0].contents.contains("format: flyway\n"));

        // Asked for another format than the folder's: refused, naming it.
        let err = plan(&InitOptions {
            format: Some(Format::Diesel),
            ..options(dir.path())
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the migrations folder `{}` holds flyway migrations, not diesel; leave out --format to keep them",
                migrations.display()
            )
        );
    }

    #[test]
    fn a_config_elsewhere_is_named_in_the_workflow_and_the_store_is_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let scaffold = plan(&InitOptions {
            config: "deploy/snapguard.yml".into(),
            store_url: Some("s3://shop-backups/prod db".into()),
            workflow: true,
            ..options(dir.path())
        })
        .unwrap();
        assert_eq!(
            files(&scaffold, dir.path())[1],
            "deploy/db/migrations/README.md"
        );
        assert!(
            scaffold.files[0]
                .contents
                .contains("  url: 's3://shop-backups/prod db'\n")
        );
        let workflow = &scaffold.files[2].contents;
        assert_eq!(
            workflow
                .matches("config: deploy/snapguard.yml\n          command: ")
                .count(),
            workflow.matches("uses: OWNER/snapguard@").count()
        );
    }

    #[test]
    fn every_format_has_a_readme_naming_its_files() {
        for (format, example) in [
            (Format::Snapguard, "20261121143000_create_users.sql"),
            (Format::GolangMigrate, ".up.sql"),
            (Format::Dbmate, "-- migrate:up"),
            (Format::Sqlx, "-- no-transaction"),
            (Format::Diesel, "/up.sql"),
            (Format::Flyway, "V1__create_users.sql"),
        ] {
            let readme = migrations_readme(format);
            assert!(readme.contains(example), "{format}: {readme}");
            assert!(readme.starts_with(&format!("# Migrations ({format} format)")));
        }
    }
}
