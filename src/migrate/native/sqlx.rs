//! sqlx's `_sqlx_migrations` (sqlx-postgres `migrate.rs`): one row per
//! applied version, `success = false` for a migration that failed outside a
//! transaction, the SHA-384 of the file as `checksum`, and
//! `execution_time` in nanoseconds.

use tokio_postgres::GenericClient;

use super::{NativeError, NativeRow, Tool, integer_version};
use crate::db::DbError;
use crate::migrate::plan::AppliedRow;
use crate::migrate::source::Migration;

pub(super) const TABLE: &str = "_sqlx_migrations";

pub(super) const COLUMNS: &[&str] = &[
    "version",
    "description",
    "success",
    "checksum",
    "execution_time",
];

pub(super) const CREATE: &str = "
CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
)";

pub(super) async fn read(client: &impl GenericClient) -> Result<Vec<NativeRow>, NativeError> {
    let rows = client
        .query(
            "SELECT version, description, success, encode(checksum, 'hex'), \
             to_char(installed_on AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), execution_time \
             FROM _sqlx_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(DbError::query("reading _sqlx_migrations"))?;
    if let Some(failed) = rows.iter().find(|r| !r.get::<_, bool>(2)) {
        return Err(NativeError::Failed {
            tool: Tool::Sqlx,
            table: TABLE,
            version: failed.get::<_, i64>(0).to_string(),
            state: "failed (success = false)",
            remedy: "sqlx refuses to migrate until it is resolved: check what the migration changed, repair the database by hand, then delete that row",
        });
    }
    Ok(rows
        .into_iter()
        .map(|r| NativeRow {
            row: AppliedRow {
                version: r.get::<_, i64>(0).to_string(),
                name: r.get(1),
                checksum: r.get(3),
                kind: "versioned".into(),
                applied_at: r.get(4),
                duration_ms: r.get::<_, i64>(5).max(0) / 1_000_000,
                release_id: None,
                table: TABLE,
            },
            needs_file: true,
        })
        .collect())
}

pub(super) async fn record(
    client: &impl GenericClient,
    m: &Migration,
    seconds: f64,
) -> Result<(), tokio_postgres::Error> {
    let checksum = m
        .native_checksum
        .as_deref()
        .and_then(|hex| hex::decode(hex).ok())
        .unwrap_or_default();
    // sqlx's description is the file name's title with `_` as spaces.
    let description = m.name.replace('_', " ");
    let nanos = (seconds * 1e9) as i64;
    client
        .execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, $4)",
            &[&integer_version(m), &description, &checksum, &nanos],
        )
        .await?;
    Ok(())
}
