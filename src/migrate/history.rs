//! The history table, `snapguard.schema_migrations`, and the advisory lock
//! that keeps two migrators apart.

use tokio_postgres::{Client, GenericClient};

use super::plan::AppliedRow;
use crate::db::DbError;

/// The advisory lock key for migrations ("snapmigr" in ASCII).
const LOCK_KEY: i64 = 0x736e_6170_6d69_6772;

/// Creates the schema and table when missing; safe to run in a transaction.
const CREATE: &str = "
CREATE SCHEMA IF NOT EXISTS snapguard;
CREATE TABLE IF NOT EXISTS snapguard.schema_migrations (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('versioned', 'repeatable', 'baseline')),
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms bigint NOT NULL,
    release_id  text,
    deploy_id   text,
    applied_by  text NOT NULL DEFAULT current_user
)";

/// Creates the schema and table if they do not exist.
pub async fn ensure(client: &impl GenericClient) -> Result<(), DbError> {
    client
        .batch_execute(CREATE)
        .await
        .map_err(DbError::query("creating snapguard.schema_migrations"))
}

/// Whether the history table exists.
pub async fn exists(client: &impl GenericClient) -> Result<bool, DbError> {
    crate::db::relation_exists(client, "snapguard.schema_migrations").await
}

/// Every history row; none when the table does not exist yet.
pub async fn read(client: &Client) -> Result<Vec<AppliedRow>, DbError> {
    if !exists(client).await? {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT version, name, checksum, kind, \
             to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), duration_ms, release_id \
             FROM snapguard.schema_migrations ORDER BY applied_at, version",
            &[],
        )
        .await
        .map_err(DbError::query("reading snapguard.schema_migrations"))?;
    Ok(rows
        .into_iter()
        .map(|r| AppliedRow {
            version: r.get(0),
            name: r.get(1),
            checksum: r.get(2),
            kind: r.get(3),
            applied_at: r.get(4),
            duration_ms: r.get(5),
            release_id: r.get(6),
            table: super::plan::HISTORY_TABLE,
        })
        .collect())
}

/// A row to write.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// The history key.
    pub version: &'a str,
    /// The name.
    pub name: &'a str,
    /// `versioned`, `repeatable` or `baseline`.
    pub kind: &'a str,
    /// The SQL's checksum.
    pub checksum: &'a str,
    /// How long it took.
    pub duration_ms: i64,
    /// The release being deployed.
    pub release_id: Option<&'a str>,
    /// The deploy.
    pub deploy_id: Option<&'a str>,
}

/// Writes (or, for a repeatable migration, replaces) a row. Inside the
/// migration's transaction when it has one, so both commit together.
///
/// With its parameters' types given, the statement goes to the server in
/// one round trip (parse, bind and execute together), where an untyped
/// one is first parsed and described: a round trip more for every
/// migration. Nothing is left prepared on the session, which a migration's
/// own `DISCARD ALL` would break.
pub async fn record(client: &impl GenericClient, r: &Record<'_>) -> Result<(), DbError> {
    use tokio_postgres::types::Type;
    client
        .execute_typed(
            "INSERT INTO snapguard.schema_migrations (version, name, kind, checksum, duration_ms, release_id, deploy_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (version) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now(), \
             duration_ms = EXCLUDED.duration_ms, release_id = EXCLUDED.release_id, deploy_id = EXCLUDED.deploy_id",
            &[
                (&r.version, Type::TEXT),
                (&r.name, Type::TEXT),
                (&r.kind, Type::TEXT),
                (&r.checksum, Type::TEXT),
                (&r.duration_ms, Type::INT8),
                (&r.release_id, Type::TEXT),
                (&r.deploy_id, Type::TEXT),
            ],
        )
        .await
        .map_err(DbError::query(format!("recording migration {} in snapguard.schema_migrations", r.version)))?;
    Ok(())
}

/// Records a baseline at `version`. When that version was itself applied
/// here, its row becomes the baseline (its file may then be squashed away).
pub async fn record_baseline(
    client: &impl GenericClient,
    version: &str,
    name: &str,
) -> Result<(), DbError> {
    client
        .execute(
            "INSERT INTO snapguard.schema_migrations (version, name, kind, checksum, duration_ms) \
             VALUES ($1, $2, 'baseline', '', 0) \
             ON CONFLICT (version) DO UPDATE SET kind = 'baseline'",
            &[&version, &name],
        )
        .await
        .map_err(DbError::query(format!(
            "recording baseline {version} in snapguard.schema_migrations"
        )))?;
    Ok(())
}

/// Tries to take the migration lock on this session until `wait` runs out.
/// Returns whether it was taken. It is released when the session ends.
pub async fn lock(client: &Client, wait: std::time::Duration) -> Result<bool, DbError> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let taken: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY])
            .await
            .map_err(DbError::query("taking the migration lock"))?
            .get(0);
        if taken {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The migrations the history records as applied by `deploy_id`.
pub async fn applied_by(app: &Client, deploy_id: &str) -> Result<Vec<String>, DbError> {
    let has_history = exists(app).await?;
    if !has_history {
        return Ok(Vec::new());
    }
    let rows = app
        .query(
            "SELECT version || ' (' || name || ')' FROM snapguard.schema_migrations WHERE deploy_id = $1 ORDER BY applied_at, version",
            &[&deploy_id],
        )
        .await
        .map_err(DbError::query("reading snapguard.schema_migrations"))?;
    Ok(rows.into_iter().map(|r| r.get(0)).collect())
}
