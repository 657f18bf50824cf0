//! The write guard: before a rollback replaces the database, make sure no
//! one else wrote to it after the snapshot, because those writes would be
//! lost without anyone noticing.
//!
//! PostgreSQL cannot say who wrote what, so the guard proves the weaker but
//! checkable "no one else could have": with the server's per-database
//! session counter (`pg_stat_database.sessions`, PostgreSQL 14+) compared
//! with the sessions snapguard opened itself ([`crate::db::sessions_opened`]),
//! a sampler watching `pg_stat_activity` for sessions of other applications
//! that were active after the snapshot, and the fence (its roles still
//! locked out). Any of these gives the rollback a reason to refuse without
//! `--force`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use crate::db::{self, ConnInfo, DbError};
use crate::maintenance::fence::{self, RoleState};
use crate::migrate::external;

/// What the database looked like just before the snapshot.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Baseline {
    /// When.
    pub at: DateTime<Utc>,
    /// The WAL insert position.
    pub wal_lsn: Option<String>,
    /// `pg_stat_database.sessions`; `None` before PostgreSQL 14.
    pub server_sessions: Option<i64>,
    /// Sessions snapguard had opened to the database by then.
    pub own_sessions: u64,
}

/// Reads the baseline, through a session to the maintenance database.
pub async fn baseline(admin: &Client, database: &str) -> Result<Baseline, DbError> {
    let wal_lsn = db::current_wal_lsn(admin).await?;
    let server_sessions = session_counter(admin, database).await?;
    Ok(Baseline {
        at: Utc::now(),
        wal_lsn,
        server_sessions,
        own_sessions: db::sessions_opened(database),
    })
}

/// `pg_stat_database.sessions` (PostgreSQL 14+), read in a transaction of
/// its own so the statistics snapshot is fresh.
async fn session_counter(admin: &Client, database: &str) -> Result<Option<i64>, DbError> {
    if db::server_version(admin).await?.major() < 14 {
        return Ok(None);
    }
    Ok(admin
        .query_opt(
            "SELECT sessions FROM pg_stat_database WHERE datname = $1",
            &[&database],
        )
        .await
        .map_err(DbError::query("reading the session counter"))?
        .and_then(|r| r.get(0)))
}

/// Sessions of other applications seen on the database after the baseline.
#[derive(Clone, Default)]
pub struct Sightings(Arc<Mutex<Vec<String>>>);

impl Sightings {
    fn add(&self, line: String) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.contains(&line) {
            seen.push(line);
        }
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Watches `pg_stat_activity` every 100 ms from its own session to the
/// maintenance database, until dropped.
pub struct Sampler {
    task: tokio::task::JoinHandle<()>,
    seen: Sightings,
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `application_name`s of snapguard's own sessions.
const OWN_APPLICATIONS: &[&str] = &["snapguard", external::APPLICATION_NAME];

impl Sampler {
    /// Starts sampling; a sampler that cannot connect logs why and sees
    /// nothing (the session counter still guards).
    pub fn start(admin_info: &ConnInfo, database: &str, since: DateTime<Utc>) -> Sampler {
        let seen = Sightings::default();
        let info = admin_info.clone();
        let database = database.to_owned();
        let out = seen.clone();
        let task = tokio::spawn(async move {
            let client = match db::connect(&info).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %crate::error::chain(&e), "the write guard's sampler cannot connect; relying on the session counter");
                    return;
                }
            };
            let own: Vec<String> = OWN_APPLICATIONS.iter().map(|s| s.to_string()).collect();
            let since = since.to_rfc3339();
            loop {
                if let Ok(rows) = client
                    .query(
                        "SELECT pid, coalesce(usename::text, ''), coalesce(application_name, ''), \
                                coalesce(client_addr::text, 'local'), greatest(backend_start, xact_start, state_change)::text \
                         FROM pg_stat_activity \
                         WHERE datname = $1 AND NOT (application_name = ANY($2)) \
                           AND greatest(backend_start, xact_start, state_change) > $3::text::timestamptz",
                        &[&database, &own, &since],
                    )
                    .await
                {
                    for r in rows {
                        let (pid, user, app, from, at): (i32, String, String, String, String) =
                            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
                        out.add(format!(
                            "session pid {pid} as `{user}` ({}) from {from} was active at {at}, after the snapshot",
                            if app.is_empty() { "no application_name" } else { &app }
                        ));
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Sampler { task, seen }
    }

    /// What it saw so far.
    pub fn sightings(&self) -> Vec<String> {
        self.seen.lines()
    }
}

/// What the guard knows when it is asked.
pub struct Evidence<'a> {
    /// The baseline.
    pub baseline: &'a Baseline,
    /// What the sampler saw; empty in `recover`, where it did not run.
    pub sightings: Vec<String>,
    /// Whether snapguard's own session count covers every session it
    /// opened since the baseline: false in `recover` (another process
    /// opened them) and when an external migrator ran (it opens its own).
    pub own_count_complete: bool,
    /// The fence's recorded roles, when a fence is up.
    pub fence: Option<&'a [RoleState]>,
}

/// Reasons to believe someone else wrote after the snapshot; empty when
/// none is found.
pub async fn writes_after(
    admin: &Client,
    database: &str,
    evidence: Evidence<'_>,
) -> Result<Vec<String>, DbError> {
    let mut reasons = evidence.sightings;
    if let Some(roles) = evidence.fence {
        reasons.extend(fence::breaches(admin, roles, database).await?);
    }
    let own: Vec<String> = OWN_APPLICATIONS.iter().map(|s| s.to_string()).collect();
    let rows = admin
        .query(
            "SELECT pid, coalesce(usename::text, ''), coalesce(application_name, '') FROM pg_stat_activity \
             WHERE datname = $1 AND NOT (application_name = ANY($2)) AND pid <> pg_backend_pid()",
            &[&database, &own],
        )
        .await
        .map_err(DbError::query("listing sessions for the write guard"))?;
    for r in rows {
        let (pid, user, app): (i32, String, String) = (r.get(0), r.get(1), r.get(2));
        let line =
            format!("session pid {pid} as `{user}` ({app}) is connected to `{database}` now");
        if !reasons.contains(&line) {
            reasons.push(line);
        }
    }
    if let (Some(before), true) = (
        evidence.baseline.server_sessions,
        evidence.own_count_complete,
    ) && let Some(now) = session_counter(admin, database).await?
    {
        let opened = now - before;
        let own = (db::sessions_opened(database) - evidence.baseline.own_sessions) as i64;
        if opened > own {
            reasons.push(format!(
                "{} session(s) connected to `{database}` after the snapshot that snapguard did not open ({opened} in all, {own} of them snapguard's)",
                opened - own
            ));
        }
    }
    Ok(reasons)
}
