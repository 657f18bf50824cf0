//! golang-migrate's `schema_migrations` (its `database/postgres` driver):
//! a single row, the version the database is at and whether the migration
//! to it failed midway (`dirty`). Every migration at or below that version
//! counts as applied; golang-migrate never looks for missing files.

use tokio_postgres::GenericClient;

use super::{NativeError, NativeRow, Tool, integer_version};
use crate::db::DbError;
use crate::migrate::plan::AppliedRow;
use crate::migrate::source::Migration;

pub(super) const TABLE: &str = "schema_migrations";

pub(super) const COLUMNS: &[&str] = &["version", "dirty"];

pub(super) const CREATE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, dirty boolean not null)";

pub(super) async fn read(
    client: &impl GenericClient,
    migrations: &[Migration],
) -> Result<Vec<NativeRow>, NativeError> {
    let row = client
        .query_opt("SELECT version, dirty FROM schema_migrations LIMIT 1", &[])
        .await
        .map_err(DbError::query("reading schema_migrations"))?;
    let Some(row) = row else {
        return Ok(Vec::new());
    };
    let (at, dirty): (i64, bool) = (row.get(0), row.get(1));
    if dirty {
        return Err(NativeError::Failed {
            tool: Tool::GolangMigrate,
            table: TABLE,
            version: at.to_string(),
            state: "dirty (a migration failed midway)",
            remedy: "golang-migrate refuses to migrate until it is resolved: check what the migration changed, repair the database by hand, then run `migrate force <version>` with the version the database is really at",
        });
    }
    Ok(migrations
        .iter()
        .filter(|m| m.version.is_some() && integer_version(m) <= at)
        .map(|m| NativeRow {
            row: AppliedRow {
                version: m
                    .version
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                name: m.name.clone(),
                kind: "versioned".into(),
                table: TABLE,
                ..AppliedRow::default()
            },
            needs_file: false,
        })
        .collect())
}

/// Moves the one row up to `m`'s version; a lower version (applied out of
/// order) leaves it where it is.
pub(super) async fn record(
    client: &impl GenericClient,
    m: &Migration,
) -> Result<(), tokio_postgres::Error> {
    let version = integer_version(m);
    client
        .execute(
            "DELETE FROM schema_migrations WHERE version < $1",
            &[&version],
        )
        .await?;
    client
        .execute(
            "INSERT INTO schema_migrations (version, dirty) \
             SELECT $1, false WHERE NOT EXISTS (SELECT 1 FROM schema_migrations)",
            &[&version],
        )
        .await?;
    Ok(())
}
