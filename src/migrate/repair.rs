//! `migrate repair`: accept the current file of an applied migration whose
//! checksum changed, as Flyway's `repair` does, instead of allowing every
//! drift with `allow_drift`. The recorded checksum becomes the file's, in
//! snapguard's history and in the native tool's (sqlx, Flyway), and every
//! change is logged in `snapguard.migration_repairs` with who made it.

use tokio_postgres::Client;

use super::native::{self, Tool};
use super::plan::{AppliedRow, HISTORY_TABLE};
use super::source::Migration;
use crate::db::DbError;

/// One recorded checksum replaced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Repaired {
    /// The history key.
    pub version: String,
    /// The file.
    pub path: String,
    /// The history table whose row changed.
    pub table: &'static str,
    /// The checksum it recorded.
    pub old: String,
    /// The file's checksum, recorded now.
    pub new: String,
}

const LOG: &str = "
CREATE SCHEMA IF NOT EXISTS snapguard;
CREATE TABLE IF NOT EXISTS snapguard.migration_repairs (
    version       text NOT NULL,
    history_table text NOT NULL,
    old_checksum  text NOT NULL,
    new_checksum  text NOT NULL,
    repaired_at   timestamptz NOT NULL DEFAULT now(),
    repaired_by   text NOT NULL DEFAULT current_user
)";

/// The rows (of any history table) whose checksum no longer matches their
/// file, for the migrations `wanted` accepts.
pub fn changed(
    migrations: &[Migration],
    rows: &[AppliedRow],
    wanted: impl Fn(&Migration) -> bool,
) -> Vec<Repaired> {
    rows.iter()
        .filter(|r| !r.checksum.is_empty())
        .filter_map(|r| {
            let m = migrations
                .iter()
                .find(|m| r.is_of(m) && m.version.is_some())?;
            (wanted(m) && !r.unchanged(m)).then(|| Repaired {
                version: r.version.clone(),
                path: m.path.display().to_string(),
                table: r.table,
                old: r.checksum.clone(),
                new: r.checksum_now(m),
            })
        })
        .collect()
}

/// Records `repairs` and their log rows in one transaction.
pub async fn record(
    client: &mut Client,
    tool: Option<Tool>,
    repairs: &[Repaired],
) -> Result<(), DbError> {
    let tx = client
        .transaction()
        .await
        .map_err(DbError::query("starting a transaction"))?;
    tx.batch_execute(LOG)
        .await
        .map_err(DbError::query("creating snapguard.migration_repairs"))?;
    for r in repairs {
        match tool.filter(|t| t.table() == r.table) {
            Some(tool) => native::set_checksum(&tx, tool, &r.version, &r.new).await?,
            None if r.table == HISTORY_TABLE => {
                tx.execute(
                    "UPDATE snapguard.schema_migrations SET checksum = $2 WHERE version = $1",
                    &[&r.version, &r.new],
                )
                .await
                .map_err(DbError::query("updating snapguard.schema_migrations"))?;
            }
            None => continue,
        }
        tx.execute(
            "INSERT INTO snapguard.migration_repairs (version, history_table, old_checksum, new_checksum) \
             VALUES ($1, $2, $3, $4)",
            &[&r.version, &r.table, &r.old, &r.new],
        )
        .await
        .map_err(DbError::query("logging the repair"))?;
    }
    tx.commit()
        .await
        .map_err(DbError::query("committing the repair"))
}
