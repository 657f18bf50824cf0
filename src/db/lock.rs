//! The deploy lock: a session-level advisory lock held on a session to the
//! *maintenance* database for the whole deploy, rollback included.
//!
//! Not on the application database: the rollback renames that database,
//! which needs it free of sessions, snapguard's own included. The key is
//! derived from the application database's name, so deploys of different
//! databases on one server do not block each other.

use tokio_postgres::Client;

use super::DbError;

/// The first half of the two-key advisory lock ("snap" in ASCII); the
/// second is `hashtext(<database>)`.
const LOCK_CLASS: i32 = 0x736e_6170;

/// Who holds the lock, for the message of the deploy that did not get it.
#[derive(Debug, thiserror::Error)]
#[error(
    "another snapguard holds the deploy lock of `{database}`{holder}; nothing was changed (deploy, recover, migrate, restore and maintenance all take it)"
)]
pub struct Held {
    /// The application database.
    pub database: String,
    /// ` (pid …, since …, from …)`, when it can be seen.
    pub holder: String,
}

/// Takes the lock without waiting: `Ok(None)` when another session holds it.
pub async fn try_take(admin: &Client, database: &str) -> Result<Option<()>, DbError> {
    let taken: bool = admin
        .query_one(
            "SELECT pg_try_advisory_lock($1, hashtext($2))",
            &[&LOCK_CLASS, &database],
        )
        .await
        .map_err(DbError::query("taking the deploy lock"))?
        .get(0);
    Ok(taken.then_some(()))
}

/// Describes the session holding the lock, for the refusal.
pub async fn holder(admin: &Client, database: &str) -> Held {
    held_by(admin, database)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| Held {
            database: database.to_owned(),
            holder: String::new(),
        })
}

/// The session holding the lock, when one does. Its details may be hidden
/// from a role without `pg_read_all_stats`; its existence is not.
pub async fn held_by(admin: &Client, database: &str) -> Result<Option<Held>, DbError> {
    let row = admin
        .query_opt(
            "SELECT l.pid, coalesce(a.backend_start::text, 'an unknown time'), \
                    coalesce(a.client_addr::text, 'local'), coalesce(a.application_name, '') \
             FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.classid::int4 = $1 AND l.objid::int4 = hashtext($2) LIMIT 1",
            &[&LOCK_CLASS, &database],
        )
        .await
        .map_err(DbError::query("reading who holds the deploy lock"))?;
    Ok(row.map(|r| {
        let (pid, since, from, app): (i32, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        Held {
            database: database.to_owned(),
            holder: format!(" (pid {pid}, {app}, connected since {since} from {from})"),
        }
    }))
}
