//! The history tables of the tools teams migrated with before snapguard:
//! sqlx, golang-migrate, dbmate, diesel and Flyway.
//!
//! Read, so that a database one of them migrated is adopted with nothing
//! applied twice; refused when the tool records a failed migration, as the
//! tool itself would refuse; and kept current in the tool's own format (its
//! checksum included), in the same transaction as the migration, so that the
//! team can run the tool again at any time and find nothing to do.
//!
//! Each table is looked up unqualified, through the connection's
//! `search_path`, where each tool itself creates and finds it.

use tokio_postgres::GenericClient;

use super::plan::AppliedRow;
use super::source::{Format, Migration};
use crate::db::DbError;

mod checksum;
mod dbmate;
mod diesel;
mod flyway;
mod golang;
mod sqlx;

pub use self::checksum::checksum;
pub use crate::config::NativeHistory;

/// A migration tool whose history table snapguard reads and keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `_sqlx_migrations`.
    Sqlx,
    /// `schema_migrations` (one row: version, dirty).
    GolangMigrate,
    /// `schema_migrations` (one row per version).
    Dbmate,
    /// `__diesel_schema_migrations`.
    Diesel,
    /// `flyway_schema_history`.
    Flyway,
}

impl Tool {
    /// The tool whose folder layout `format` is.
    pub fn of(format: Format) -> Option<Tool> {
        match format {
            Format::Snapguard => None,
            Format::Sqlx => Some(Tool::Sqlx),
            Format::GolangMigrate => Some(Tool::GolangMigrate),
            Format::Dbmate => Some(Tool::Dbmate),
            Format::Diesel => Some(Tool::Diesel),
            Format::Flyway => Some(Tool::Flyway),
        }
    }

    /// The history table, as the tool names it by default.
    pub fn table(self) -> &'static str {
        match self {
            Tool::Sqlx => sqlx::TABLE,
            Tool::GolangMigrate => golang::TABLE,
            Tool::Dbmate => dbmate::TABLE,
            Tool::Diesel => diesel::TABLE,
            Tool::Flyway => flyway::TABLE,
        }
    }

    /// The tool's name.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Sqlx => "sqlx",
            Tool::GolangMigrate => "golang-migrate",
            Tool::Dbmate => "dbmate",
            Tool::Diesel => "diesel",
            Tool::Flyway => "Flyway",
        }
    }

    /// The columns snapguard reads and writes: a table of that name
    /// without them belongs to another tool.
    fn columns(self) -> &'static [&'static str] {
        match self {
            Tool::Sqlx => sqlx::COLUMNS,
            Tool::GolangMigrate => golang::COLUMNS,
            Tool::Dbmate => dbmate::COLUMNS,
            Tool::Diesel => diesel::COLUMNS,
            Tool::Flyway => flyway::COLUMNS,
        }
    }
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the native history stops a run before anything changes.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// The tool records a migration that failed midway: it would refuse to
    /// go on, and so does snapguard.
    #[error("{tool} records version {version} as {state} in `{table}`: {remedy}")]
    Failed {
        /// The tool.
        tool: Tool,
        /// Its table.
        table: &'static str,
        /// The version.
        version: String,
        /// `dirty` or `failed (success = false)`.
        state: &'static str,
        /// What the tool requires before it migrates again.
        remedy: &'static str,
    },
    /// A table of the tool's name that is not the tool's (another tool's
    /// `schema_migrations`, say).
    #[error(
        "`{table}` exists but is not {tool}'s history table: it has no column(s) {missing}; if another tool owns it, set `migrations.format` to that tool's layout, or `migrations.native_history: ignore`"
    )]
    Shape {
        /// The tool.
        tool: Tool,
        /// Its table.
        table: &'static str,
        /// The columns it lacks, comma-separated.
        missing: String,
    },
    /// Reading the table failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A row of a native history, as snapguard reads it.
struct NativeRow {
    /// The row in the shape of snapguard's own history.
    row: AppliedRow,
    /// Whether the tool itself expects a file for it: sqlx and Flyway stop
    /// when an applied SQL migration's file is gone; golang-migrate, dbmate
    /// and diesel never look.
    needs_file: bool,
}

/// Where a tool's table is, for this session.
struct Location {
    /// The name to read and write it by.
    table: String,
    /// The statements that create it there, as the tool would.
    create: String,
}

/// The tool's table for this session: dbmate places it by a rule of its
/// own (the first schema of the `search_path`); the others find it
/// unqualified, through the `search_path`.
async fn located(client: &impl GenericClient, tool: Tool) -> Result<Location, DbError> {
    // Found by its default name, created as the tool's source creates it.
    let by_name = |create: &str| Location {
        table: tool.table().to_owned(),
        create: create.to_owned(),
    };
    Ok(match tool {
        Tool::Dbmate => {
            let schema = dbmate::schema(client).await?;
            Location {
                table: dbmate::table_in(&schema),
                create: dbmate::create(&schema),
            }
        }
        Tool::Sqlx => by_name(sqlx::CREATE),
        Tool::GolangMigrate => by_name(golang::CREATE),
        Tool::Diesel => by_name(diesel::CREATE),
        Tool::Flyway => by_name(flyway::CREATE),
    })
}

/// The tool's history, read; `None` when its table does not exist.
pub async fn read(
    client: &impl GenericClient,
    tool: Tool,
    migrations: &[Migration],
) -> Result<Option<Vec<AppliedRow>>, NativeError> {
    let at = located(client, tool).await?;
    if !crate::db::relation_exists(client, &at.table).await? {
        return Ok(None);
    }
    check_shape(client, tool, &at.table).await?;
    let rows = match tool {
        Tool::Dbmate => dbmate::read(client, &at.table).await?,
        Tool::Sqlx => sqlx::read(client).await?,
        Tool::GolangMigrate => golang::read(client, migrations).await?,
        Tool::Diesel => diesel::read(client).await?,
        Tool::Flyway => flyway::read(client).await?,
    };
    Ok(Some(
        rows.into_iter()
            .filter(|n| n.needs_file || has_file(&n.row, migrations))
            .map(|n| n.row)
            .collect(),
    ))
}

/// Whether the tool's own table exists under its default name.
pub async fn exists(client: &impl GenericClient, tool: Tool) -> Result<bool, DbError> {
    let at = located(client, tool).await?;
    crate::db::relation_exists(client, &at.table).await
}

async fn check_shape(
    client: &impl GenericClient,
    tool: Tool,
    table: &str,
) -> Result<(), NativeError> {
    let have: Vec<String> = client
        .query(
            "SELECT attname::text FROM pg_attribute \
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
            &[&table],
        )
        .await
        .map_err(DbError::query(format!(
            "reading the columns of `{}`",
            tool.table()
        )))?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let missing: Vec<&str> = tool
        .columns()
        .iter()
        .copied()
        .filter(|c| !have.iter().any(|h| h == c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(NativeError::Shape {
        tool,
        table: tool.table(),
        missing: missing.join(", "),
    })
}

/// Creates the tool's table, as the tool would, when it is missing.
pub async fn ensure(client: &impl GenericClient, tool: Tool) -> Result<(), DbError> {
    let at = located(client, tool).await?;
    client
        .batch_execute(&at.create)
        .await
        .map_err(DbError::query(format!("creating `{}`", tool.table())))
}

/// Records `m` as applied, in the tool's format; inside the migration's
/// transaction when it has one.
pub async fn record(
    client: &impl GenericClient,
    tool: Tool,
    m: &Migration,
    seconds: f64,
) -> Result<(), DbError> {
    let done = match tool {
        Tool::Sqlx => sqlx::record(client, m, seconds).await,
        Tool::GolangMigrate => golang::record(client, m).await,
        Tool::Dbmate => {
            let at = located(client, tool).await?;
            dbmate::record(client, &at.table, m).await
        }
        Tool::Diesel => diesel::record(client, m).await,
        Tool::Flyway => flyway::record(client, m, seconds).await,
    };
    done.map_err(DbError::query(format!(
        "recording `{}` in `{}`",
        m.path.display(),
        tool.table()
    )))
}

/// Replaces the checksum recorded for `version` (`migrate repair`); only
/// sqlx and Flyway keep one.
pub async fn set_checksum(
    client: &impl GenericClient,
    tool: Tool,
    version: &str,
    checksum: &str,
) -> Result<(), DbError> {
    let done = match tool {
        Tool::Sqlx => {
            let bytes = hex::decode(checksum).unwrap_or_default();
            client
                .execute(
                    "UPDATE _sqlx_migrations SET checksum = $2 WHERE version::text = $1",
                    &[&version, &bytes],
                )
                .await
        }
        Tool::Flyway => {
            let crc: Option<i32> = checksum.parse().ok();
            client
                .execute(
                    "UPDATE flyway_schema_history SET checksum = $2 WHERE version = $1",
                    &[&version, &crc],
                )
                .await
        }
        Tool::GolangMigrate | Tool::Dbmate | Tool::Diesel => return Ok(()),
    };
    done.map(drop)
        .map_err(DbError::query(format!("updating `{}`", tool.table())))
}

/// snapguard's own history with the native rows it lacks: a version either
/// records as applied is applied. Where both have a row, snapguard's wins
/// (it holds snapguard's checksum).
pub fn merge(mut own: Vec<AppliedRow>, native: Vec<AppliedRow>) -> Vec<AppliedRow> {
    let new: Vec<AppliedRow> = native
        .into_iter()
        .filter(|n| !own.iter().any(|o| o.same_migration(n)))
        .collect();
    own.extend(new);
    own
}

fn has_file(row: &AppliedRow, migrations: &[Migration]) -> bool {
    migrations.iter().any(|m| row.is_of(m))
}

/// The version as the integer sqlx and golang-migrate keep.
fn integer_version(m: &Migration) -> i64 {
    m.version
        .as_ref()
        .and_then(|v| v.as_str().parse().ok())
        .expect("checked to fit a bigint when the folder was read")
}
