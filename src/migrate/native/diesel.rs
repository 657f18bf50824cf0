//! diesel's `__diesel_schema_migrations` (diesel_migrations): one row per
//! applied version, the folder name's leading timestamp without its dashes
//! (`2024-03-01-120000_create_posts` → `20240301120000`). diesel keeps no
//! checksum and never looks for missing folders.

use tokio_postgres::GenericClient;

use super::{NativeError, NativeRow, dbmate};
use crate::migrate::source::Migration;

pub(super) const TABLE: &str = "__diesel_schema_migrations";

pub(super) const COLUMNS: &[&str] = &["version", "run_on"];

pub(super) const CREATE: &str = "
CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
       version VARCHAR(50) PRIMARY KEY NOT NULL,
       run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
)";

pub(super) async fn read(client: &impl GenericClient) -> Result<Vec<NativeRow>, NativeError> {
    dbmate::versions(
        client,
        "SELECT version::text FROM __diesel_schema_migrations ORDER BY version",
        TABLE,
    )
    .await
}

pub(super) async fn record(
    client: &impl GenericClient,
    m: &Migration,
) -> Result<(), tokio_postgres::Error> {
    // snapguard reads diesel's version exactly as diesel does: the digits
    // before the first `_`, dashes removed.
    dbmate::insert_version(
        client,
        "INSERT INTO __diesel_schema_migrations (version) VALUES ($1) ON CONFLICT DO NOTHING",
        m,
    )
    .await
}
