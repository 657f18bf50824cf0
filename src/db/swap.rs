//! Swapping one database in for another: both renames in one transaction,
//! with new connections refused while the live one's sessions are checked.
//! The restore and the clone-swap rollback both end this way.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::DbError;
use super::admin::{self, Session};

/// How long ending sessions may take before the swap gives up.
const TERMINATE_WAIT: Duration = Duration::from_secs(10);

/// Why the swap did not happen; the live database is as it was.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// A statement failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Sessions stayed connected to the live database.
    #[error("{} session(s) connected to `{database}` block the swap", sessions.len())]
    Busy {
        /// The live database.
        database: String,
        /// Who is connected.
        sessions: Vec<Session>,
    },
}

/// Puts `incoming` in place of `live`, which is kept as `retired`: both
/// renames in one transaction. New connections to `live` are refused while
/// its sessions are checked (and, with `terminate`, ended), so none can slip
/// in before the rename. Used by the restore and by the clone-swap rollback.
pub async fn swap_in(
    client: &mut Client,
    live: &str,
    incoming: &str,
    retired: &str,
    terminate: bool,
) -> Result<(), SwapError> {
    let original = allows_connections(client, live).await?;
    admin::set_allow_connections(client, live, false).await?;
    let result = rename_when_idle(client, live, incoming, retired, terminate).await;
    let reopen = match &result {
        Ok(()) => retired,
        Err(_) => live,
    };
    if let Err(e) = admin::set_allow_connections(client, reopen, original).await {
        tracing::warn!(error = %e, database = reopen, "could not restore ALLOW_CONNECTIONS");
    }
    result
}

async fn rename_when_idle(
    client: &mut Client,
    live: &str,
    incoming: &str,
    retired: &str,
    terminate: bool,
) -> Result<(), SwapError> {
    let deadline = Instant::now() + TERMINATE_WAIT;
    loop {
        let sessions = admin::sessions(client, live).await?;
        if sessions.is_empty() {
            break;
        }
        if !terminate || Instant::now() > deadline {
            return Err(SwapError::Busy {
                database: live.to_owned(),
                sessions,
            });
        }
        tracing::warn!(count = sessions.len(), database = %live, "ending sessions");
        admin::terminate_sessions(client, live).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    admin::rename_all(client, &[(live, retired), (incoming, live)]).await?;
    Ok(())
}

async fn allows_connections(client: &Client, name: &str) -> Result<bool, DbError> {
    let row = client
        .query_opt(
            "SELECT datallowconn FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .map_err(DbError::query(format!(
            "reading ALLOW_CONNECTIONS of `{name}`"
        )))?;
    Ok(row.is_none_or(|r| r.get(0)))
}
