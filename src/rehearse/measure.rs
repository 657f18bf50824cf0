//! What one migration cost the server, read before and after it from a
//! connection of its own: WAL written (what replicas and backups must
//! absorb) and tables rewritten (a new `relfilenode`: the whole table was
//! copied, under an `ACCESS EXCLUSIVE` lock).
//!
//! On the scratch server nothing else writes, so the WAL difference is the
//! migration's (plus its history row).

use std::collections::HashMap;

use tokio_postgres::Client;

use crate::db::{self, ConnInfo, DbError};

/// A reading taken before a migration.
#[derive(Debug, Clone)]
pub struct Mark {
    lsn: Option<String>,
    files: HashMap<u32, (u32, String)>,
}

/// What changed since a [`Mark`].
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// WAL bytes written; `None` when the server would not say (no
    /// permission for `pg_current_wal_lsn`).
    pub wal_bytes: Option<u64>,
    /// Tables whose storage was replaced (rewritten or truncated).
    pub rewritten: Vec<String>,
}

/// The connection that takes the readings.
pub struct Probe {
    client: Client,
}

/// User tables and materialized views with their storage file number.
const FILES: &str = "
SELECT c.oid, c.relfilenode, n.nspname || '.' || c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'snapguard')
  AND n.nspname !~ '^pg_toast'";

impl Probe {
    /// Connects to `info`.
    pub async fn connect(info: &ConnInfo) -> Result<Probe, DbError> {
        Ok(Probe {
            client: db::connect(info).await?,
        })
    }

    /// Reads the WAL position and every table's storage file.
    pub async fn mark(&self) -> Result<Mark, DbError> {
        let lsn = self
            .client
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await
            .ok()
            .map(|r| r.get(0));
        let rows = self
            .client
            .query(FILES, &[])
            .await
            .map_err(DbError::query("reading table storage files"))?;
        let files = rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, u32>(0),
                    (r.get::<_, u32>(1), r.get::<_, String>(2)),
                )
            })
            .collect();
        Ok(Mark { lsn, files })
    }

    /// What changed since `mark`.
    pub async fn since(&self, mark: &Mark) -> Result<Change, DbError> {
        let wal_bytes = match &mark.lsn {
            Some(lsn) => self
                .client
                .query_one(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::text::pg_lsn)::bigint",
                    &[lsn],
                )
                .await
                .ok()
                .map(|r| r.get::<_, i64>(0).max(0) as u64),
            None => None,
        };
        let now = self.mark().await?;
        let mut rewritten: Vec<String> = mark
            .files
            .iter()
            .filter_map(|(oid, (file, name))| match now.files.get(oid) {
                Some((new_file, _)) if new_file != file => Some(name.clone()),
                _ => None,
            })
            .collect();
        rewritten.sort();
        Ok(Change {
            wal_bytes,
            rewritten,
        })
    }
}
