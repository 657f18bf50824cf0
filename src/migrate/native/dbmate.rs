//! dbmate's `schema_migrations` (its postgres driver): one row per applied
//! version, as the file name spells it. dbmate keeps no checksum and never
//! looks for missing files.

use tokio_postgres::GenericClient;

use super::{NativeError, NativeRow};
use crate::db::DbError;
use crate::migrate::plan::AppliedRow;
use crate::migrate::source::Migration;

pub(super) const TABLE: &str = "schema_migrations";

pub(super) const COLUMNS: &[&str] = &["version"];

pub(super) const CREATE: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(128) primary key)";

pub(super) async fn read(client: &impl GenericClient) -> Result<Vec<NativeRow>, NativeError> {
    versions(
        client,
        "SELECT version::text FROM schema_migrations ORDER BY version",
        TABLE,
    )
    .await
}

/// Rows of a table that holds only applied versions (dbmate, diesel).
pub(super) async fn versions(
    client: &impl GenericClient,
    query: &str,
    table: &'static str,
) -> Result<Vec<NativeRow>, NativeError> {
    let rows = client
        .query(query, &[])
        .await
        .map_err(DbError::query(format!("reading {table}")))?;
    Ok(rows
        .into_iter()
        .map(|r| NativeRow {
            row: AppliedRow {
                version: r.get(0),
                kind: "versioned".into(),
                table,
                ..AppliedRow::default()
            },
            needs_file: false,
        })
        .collect())
}

pub(super) async fn record(
    client: &impl GenericClient,
    m: &Migration,
) -> Result<(), tokio_postgres::Error> {
    insert_version(
        client,
        "INSERT INTO schema_migrations (version) VALUES ($1) ON CONFLICT DO NOTHING",
        m,
    )
    .await
}

/// Runs `insert` with `m`'s version as the file name spells it (dbmate,
/// diesel).
pub(super) async fn insert_version(
    client: &impl GenericClient,
    insert: &str,
    m: &Migration,
) -> Result<(), tokio_postgres::Error> {
    let version = m.version.as_ref().map(|v| v.as_str()).unwrap_or_default();
    client.execute(insert, &[&version]).await.map(drop)
}
