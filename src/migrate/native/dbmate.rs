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

/// Where dbmate keeps its table: in the first schema of its URL's
/// `search_path`, else the session's current schema, else `public`
/// (dbmate's `quotedMigrationsTableNameParts`). snapguard sees the
/// session's `search_path` (from `options` or `PGOPTIONS`), not dbmate's
/// URL: its first entry, unless that is `"$user"`. The first schema may not
/// exist yet, as dbmate creates it: an unqualified name would land in the
/// next one, where dbmate never looks.
pub(super) async fn schema(client: &impl GenericClient) -> Result<String, DbError> {
    let row = client
        .query_one(
            "SELECT coalesce(nullif(btrim(split_part(current_setting('search_path'), ',', 1), ' \"'), '$user'), \
                    current_schema(), 'public')",
            &[],
        )
        .await
        .map_err(DbError::query("reading the search_path dbmate's table follows"))?;
    Ok(row.get(0))
}

/// dbmate's table, qualified by [`schema`].
pub(super) fn table_in(schema: &str) -> String {
    format!("{}.{TABLE}", crate::db::quote_ident(schema))
}

/// Creates dbmate's schema (only when missing: `CREATE SCHEMA IF NOT
/// EXISTS` needs the right to create schemas even when it exists) and its
/// table, as dbmate does.
pub(super) fn create(schema: &str) -> String {
    let quoted = crate::db::quote_ident(schema);
    format!(
        "DO $snapguard$ BEGIN IF to_regnamespace({literal}) IS NULL THEN CREATE SCHEMA {quoted}; END IF; END $snapguard$; \
         CREATE TABLE IF NOT EXISTS {table} (version varchar(128) primary key)",
        literal = crate::db::quote_literal(&quoted),
        table = table_in(schema)
    )
}

/// The versions in `table` ([`table_in`]).
pub(super) async fn read(
    client: &impl GenericClient,
    table: &str,
) -> Result<Vec<NativeRow>, NativeError> {
    versions(
        client,
        &format!("SELECT version::text FROM {table} ORDER BY version"),
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

/// Records `m` in `table` ([`table_in`]).
pub(super) async fn record(
    client: &impl GenericClient,
    table: &str,
    m: &Migration,
) -> Result<(), tokio_postgres::Error> {
    insert_version(
        client,
        &format!("INSERT INTO {table} (version) VALUES ($1) ON CONFLICT DO NOTHING"),
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
