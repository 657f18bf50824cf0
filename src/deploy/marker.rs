//! The unfinished-deploy marker, kept in the application database itself
//! (`snapguard.deploys`), so that every snapguard sees an unfinished deploy
//! whatever store prefix it was configured with. The journal lives in one
//! store; the database is what all of them share.
//!
//! A deploy writes its row when it starts changing things (before
//! maintenance goes on) and closes it when the deploy is closed. The row
//! is taken into the snapshot and the clone, so a rollback that swaps them
//! in finds the row there and closes it. A database restored by hand from
//! a deploy's snapshot would bring back an open row: `restore` closes those
//! as superseded.
//!
//! The table sits beside `snapguard.schema_migrations` and, like it, is
//! snapguard's bookkeeping in the application's database (as Flyway's and
//! sqlx's history tables are).

use tokio_postgres::Client;

use crate::db::DbError;

/// Creates the schema and table when missing.
const CREATE: &str = "
CREATE SCHEMA IF NOT EXISTS snapguard;
CREATE TABLE IF NOT EXISTS snapguard.deploys (
    deploy_id   text PRIMARY KEY,
    store       text NOT NULL,
    host        text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    outcome     text
)";

/// An open (unfinished) deploy, as the database records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenDeploy {
    /// Its id.
    pub deploy_id: String,
    /// The store holding its journal.
    pub store: String,
    /// Where it ran.
    pub host: String,
    /// When it started, UTC.
    pub started_at: String,
}

/// The database records an unfinished deploy.
#[derive(Debug, thiserror::Error)]
#[error(
    "deploy {} of `{database}` did not finish (started {} UTC on `{}`; its journal is in `{}`). Finish it first with that store: `snapguard --store {} recover`",
    open.deploy_id, open.started_at, open.host, open.store, open.store
)]
pub struct Unfinished {
    /// The database.
    pub database: String,
    /// The open deploy.
    pub open: OpenDeploy,
}

/// Why a command that would change the database must not start.
#[derive(Debug, thiserror::Error)]
pub enum NotClear {
    /// A deploy is unfinished.
    #[error(transparent)]
    Unfinished(#[from] Unfinished),
    /// The record of unfinished deploys is gone.
    #[error(transparent)]
    RecordLost(#[from] RecordLost),
}

/// `snapguard.deploys` is gone although deploys ran on the database: every
/// deploy creates it before it changes anything and it is in every
/// snapshot, so someone dropped it, and with it maybe the row of a deploy
/// that another store's pipeline never finished.
#[derive(Debug, thiserror::Error)]
#[error(
    "`snapguard.deploys` is missing from `{database}`, although deploys ran on it (the last recorded in its migration history: {last}). It is where every snapguard records a deploy that has not finished, so a deploy run with another store could be unfinished unseen. Look for one with each store your pipelines use (`snapguard --store URL recover`); once none is, recreate the table with `snapguard recover --accept-current`"
)]
pub struct RecordLost {
    /// The database.
    pub database: String,
    /// The last deploy in the migration history and when it applied.
    pub last: String,
}

/// Whether commands that change the database may start: not while a deploy
/// is unfinished, nor while the record that would say so is gone.
pub async fn not_clear(app: &Client, database: &str) -> Result<Option<NotClear>, DbError> {
    if let Some(last) = lost(app).await? {
        return Ok(Some(NotClear::RecordLost(RecordLost {
            database: database.to_owned(),
            last,
        })));
    }
    Ok(unfinished(app, database).await?.map(NotClear::Unfinished))
}

/// The last deploy in the migration history when `snapguard.deploys` is
/// missing; `None` when it exists or no deploy ever ran here.
pub async fn lost(app: &Client) -> Result<Option<String>, DbError> {
    if exists(app).await? || !crate::migrate::history::exists(app).await? {
        return Ok(None);
    }
    let row = app
        .query_opt(
            "SELECT format('deploy %s, %s UTC', deploy_id, \
                    to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')) \
             FROM snapguard.schema_migrations WHERE deploy_id IS NOT NULL \
             ORDER BY applied_at DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(DbError::query("reading snapguard.schema_migrations"))?;
    Ok(row.map(|r| r.get(0)))
}

/// Recreates an empty `snapguard.deploys` (`recover --accept-current` once
/// the operator found no unfinished deploy).
pub async fn recreate(app: &Client) -> Result<(), DbError> {
    app.batch_execute(CREATE)
        .await
        .map_err(DbError::query("creating snapguard.deploys"))
}

/// Deploys the database records as started and not finished, oldest first.
pub async fn open_deploys(app: &Client) -> Result<Vec<OpenDeploy>, DbError> {
    if !exists(app).await? {
        return Ok(Vec::new());
    }
    let rows = app
        .query(
            "SELECT deploy_id, store, host, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') \
             FROM snapguard.deploys WHERE finished_at IS NULL ORDER BY started_at",
            &[],
        )
        .await
        .map_err(DbError::query("reading snapguard.deploys"))?;
    Ok(rows
        .into_iter()
        .map(|r| OpenDeploy {
            deploy_id: r.get(0),
            store: r.get(1),
            host: r.get(2),
            started_at: r.get(3),
        })
        .collect())
}

/// The oldest deploy the database records as unfinished, as the refusal
/// of a command that would change the database under it.
pub async fn unfinished(app: &Client, database: &str) -> Result<Option<Unfinished>, DbError> {
    Ok(open_deploys(app)
        .await?
        .into_iter()
        .next()
        .map(|open| Unfinished {
            database: database.to_owned(),
            open,
        }))
}

/// The outcome recorded for `deploy_id`: `None` when the database has no
/// row for it, `Some(None)` while it is open.
pub async fn outcome_of(app: &Client, deploy_id: &str) -> Result<Option<Option<String>>, DbError> {
    if !exists(app).await? {
        return Ok(None);
    }
    let row = app
        .query_opt(
            "SELECT coalesce(outcome, '') , finished_at IS NULL FROM snapguard.deploys WHERE deploy_id = $1",
            &[&deploy_id],
        )
        .await
        .map_err(DbError::query("reading snapguard.deploys"))?;
    Ok(row.map(|r| {
        let open: bool = r.get(1);
        (!open).then(|| r.get(0))
    }))
}

/// Records that `deploy_id` starts.
pub async fn begin(app: &Client, deploy_id: &str, store: &str, host: &str) -> Result<(), DbError> {
    // `CREATE SCHEMA IF NOT EXISTS` needs CREATE on the database even when
    // the schema exists; a deploy role may only have been granted the table.
    if !exists(app).await? {
        app.batch_execute(CREATE)
            .await
            .map_err(DbError::query("creating snapguard.deploys"))?;
    }
    // Before the snapshot, so the write guard's baseline can count from it.
    crate::db::registry::create(app).await;
    app.execute(
        "INSERT INTO snapguard.deploys (deploy_id, store, host) VALUES ($1, $2, $3)",
        &[&deploy_id, &store, &host],
    )
    .await
    .map_err(DbError::query("recording the deploy in snapguard.deploys"))?;
    Ok(())
}

/// Closes `deploy_id` with `outcome`; a database without its row (one
/// restored from before it started) has nothing to close.
pub async fn finish(app: &Client, deploy_id: &str, outcome: &str) -> Result<(), DbError> {
    if !exists(app).await? {
        return Ok(());
    }
    app.execute(
        "UPDATE snapguard.deploys SET finished_at = now(), outcome = $2 WHERE deploy_id = $1 AND finished_at IS NULL",
        &[&deploy_id, &outcome],
    )
    .await
    .map_err(DbError::query("closing the deploy in snapguard.deploys"))?;
    Ok(())
}

/// Closes every open row as superseded (a manual restore brought back the
/// rows of a deploy that was running when its snapshot was taken).
pub async fn supersede_all(app: &Client, outcome: &str) -> Result<u64, DbError> {
    if !exists(app).await? {
        return Ok(0);
    }
    app.execute(
        "UPDATE snapguard.deploys SET finished_at = now(), outcome = $1 WHERE finished_at IS NULL",
        &[&outcome],
    )
    .await
    .map_err(DbError::query("closing restored rows of snapguard.deploys"))
}

/// After a manual restore of `snapshot_id` over the database: closes the
/// rows of deploys the snapshot caught running, which are not running in
/// the restored database. Failures are logged: the restore itself is done.
pub async fn supersede_after_restore(db: &crate::db::ConnInfo, snapshot_id: &str) {
    let outcome = format!("superseded by a restore of snapshot {snapshot_id}");
    let closed = match crate::db::connect(db).await {
        Ok(app) => supersede_all(&app, &outcome).await,
        Err(e) => Err(e),
    };
    match closed {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            count = n,
            "closed the restored database's records of deploys that were running when the snapshot was taken"
        ),
        Err(e) => {
            tracing::warn!(error = %crate::error::chain(&e), "cannot close the restored database's records of running deploys; `snapguard recover --accept-current` closes them")
        }
    }
}

/// History rows that a deploy other than `deploy_id` (or a plain
/// `migrate`) applied after `since`: later history that rolling back would
/// silently undo.
pub async fn later_history(
    app: &Client,
    deploy_id: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<String>, DbError> {
    if !crate::migrate::history::exists(app).await? {
        return Ok(Vec::new());
    }
    let rows = app
        .query(
            "SELECT format('migration %s (%s) applied %s by %s', version, name, \
                    to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), \
                    coalesce('deploy ' || deploy_id, 'a plain `migrate`')) \
             FROM snapguard.schema_migrations \
             WHERE applied_at > $2::text::timestamptz AND deploy_id IS DISTINCT FROM $1 ORDER BY applied_at",
            &[&deploy_id, &since.to_rfc3339()],
        )
        .await
        .map_err(DbError::query("reading snapguard.schema_migrations"))?;
    Ok(rows.into_iter().map(|r| r.get(0)).collect())
}

async fn exists(app: &Client) -> Result<bool, DbError> {
    crate::db::relation_exists(app, "snapguard.deploys").await
}
