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
//!
//! `recover` runs in another process, after the deploy's runner died, so it
//! cannot count the dead runner's sessions itself. Every snapguard session
//! takes a number from the database's registry of them
//! ([`crate::db::registry`]), and the numbers taken since the baseline are
//! snapguard's sessions, whoever opened them and however they ended (a
//! runner killed mid-step, a `migrate status` the operator ran before
//! `recover`). Where the database has no registry, the journal's count
//! (copied at every step) stands in, and a session the runner opened after
//! its last journal write counts as someone else's unless `recover` ends it
//! itself. A session the server counted as abandoned explains nothing: a
//! killed runner's are, but so are those of any client that vanished
//! without saying goodbye, someone else's writer included. Every other
//! session opened since the snapshot is a reason to refuse. A refusal the
//! deploy already made is recorded in the journal and honoured as is.
//!
//! "The database did not change" is never assumed either: the baseline
//! records a fingerprint of the catalogue and of the migration history
//! ([`catalogue_fingerprint`]), and a rollback that believes nothing
//! changed compares it first.

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
    /// Since when the server has been counting `server_sessions`: a count
    /// read later is comparable only if it began at the same moment.
    /// `None` in journals written before this was recorded.
    #[serde(default)]
    pub counting_since: Option<CountingSince>,
    /// `pg_stat_database.sessions_abandoned`; `None` before PostgreSQL 14.
    /// Logged only: an abandoned session is not evidence of whose it was.
    #[serde(default)]
    pub abandoned_sessions: Option<i64>,
    /// Rows written and transactions committed in the database so far
    /// (`tup_inserted + tup_updated + tup_deleted`, `xact_commit`), to say
    /// how much a restore would throw away.
    #[serde(default)]
    pub activity: Option<Activity>,
    /// Sessions snapguard had opened to the database by then.
    pub own_sessions: u64,
    /// [`catalogue_fingerprint`] of the database.
    #[serde(default)]
    pub catalogue: Option<String>,
    /// The last number taken from `snapguard.sessions` before the
    /// baseline ([`crate::db::registry`]): every snapguard session since
    /// took a larger one. `None` where the database has no such sequence.
    #[serde(default)]
    pub registered_before: Option<i64>,
    /// Sessions of other applications connected at the baseline. Each may
    /// write after the snapshot and leave before anyone looks again, which
    /// neither the session counter (it counts new sessions) nor a look at
    /// who is connected later would show: each is accounted for.
    #[serde(default)]
    pub connected: Vec<Connected>,
}

/// A session of another application connected at the baseline.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Connected {
    /// Its backend pid.
    pub pid: i32,
    /// `backend_start`, which tells it from a later session given the same
    /// pid.
    pub since: String,
    /// `usename` and `application_name`.
    pub who: String,
}

pub use crate::db::admin::{ServerTime, SessionId};

/// snapguard's own client sessions on `database` now (application
/// `snapguard`: this process's and the `pg_dump` it starts).
pub async fn own_open(admin: &Client, database: &str) -> Result<Vec<SessionId>, DbError> {
    let rows = admin
        .query(
            "SELECT pid, coalesce(backend_start::text, '') FROM pg_stat_activity \
             WHERE datname = $1 AND backend_type = 'client backend' AND application_name = 'snapguard'",
            &[&database],
        )
        .await
        .map_err(DbError::query("reading snapguard's own sessions"))?;
    Ok(rows.iter().map(SessionId::from_row).collect())
}

/// Write counters of one database (`pg_stat_database`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Activity {
    /// Rows inserted, updated or deleted.
    pub rows_written: i64,
    /// Transactions committed.
    pub commits: i64,
}

/// Reads the baseline, through a session to the maintenance database, and
/// the catalogue fingerprint through one to the application database.
pub async fn baseline(admin: &Client, app: &ConnInfo) -> Result<Baseline, DbError> {
    let database = app.dbname();
    let wal_lsn = db::current_wal_lsn(admin).await?;
    settle(admin, database).await?;
    // Our count first, then the server's: a session opened after this
    // point is after the baseline for both.
    let own_sessions = db::sessions_opened(database);
    let counters = counters(admin, database).await?;
    let connected = others_connected(admin, database).await?;
    let client = db::connect(app).await?;
    // This session registered after the counters were read: it and every
    // later one are after the baseline.
    let registered_before = db::registry::own_number(&client).await.map(|n| n - 1);
    let catalogue = catalogue_fingerprint(&client).await?;
    drop(client);
    Ok(Baseline {
        at: Utc::now(),
        wal_lsn,
        server_sessions: counters.as_ref().map(|c| c.sessions),
        counting_since: counters.as_ref().map(|c| c.since.clone()),
        abandoned_sessions: counters.as_ref().map(|c| c.abandoned),
        activity: counters.as_ref().map(|c| c.activity),
        own_sessions,
        catalogue: Some(catalogue),
        registered_before,
        connected,
    })
}

/// The client sessions of other applications connected to `database` now.
/// A backend still starting up is left out (here and in the sampler): it
/// shows no `state` (before 18) or `starting` (18), and for that moment
/// not yet its `application_name` either, so snapguard's own sessions
/// looked like someone else's (seen on 17); it has written nothing yet.
async fn others_connected(admin: &Client, database: &str) -> Result<Vec<Connected>, DbError> {
    let own: Vec<String> = OWN_APPLICATIONS.iter().map(|s| s.to_string()).collect();
    let rows = admin
        .query(
            "SELECT pid, coalesce(backend_start::text, ''), coalesce(usename::text, ''), coalesce(application_name, '') \
             FROM pg_stat_activity \
             WHERE datname = $1 AND backend_type = 'client backend' AND NOT (application_name = ANY($2)) \
               AND state IS NOT NULL AND state <> 'starting' AND pid <> pg_backend_pid()",
            &[&database, &own],
        )
        .await
        .map_err(DbError::query("listing sessions for the write guard"))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let (user, app): (String, String) = (r.get(2), r.get(3));
            let app = if app.is_empty() {
                "no application_name".to_owned()
            } else {
                app
            };
            Connected {
                pid: r.get(0),
                since: r.get(1),
                who: format!("as `{user}` ({app})"),
            }
        })
        .collect())
}

/// Waits (up to a few seconds) until snapguard's own sessions to the
/// database have ended on the server. A backend counts its session in
/// `pg_stat_database` at the latest when it exits, and it leaves
/// `pg_stat_activity` only after that; reading the counters before would
/// count one of our sessions on the wrong side of the baseline.
async fn settle(admin: &Client, database: &str) -> Result<u64, DbError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'snapguard' AND pid <> pg_backend_pid()",
                &[&database],
            )
            .await
            .map_err(DbError::query("waiting for snapguard's sessions to end"))?
            .get(0);
        if left == 0 || std::time::Instant::now() >= deadline {
            return Ok(left as u64);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Debug, Clone)]
struct Counters {
    sessions: i64,
    abandoned: i64,
    activity: Activity,
    since: CountingSince,
}

/// When a server's per-database counters began: they start again from
/// zero when the server restarts after a crash (or fails over to a
/// standby, whose counters are its own) and when someone calls
/// `pg_stat_reset()`. Sessions opened since the snapshot can then no
/// longer be counted as "now minus then".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CountingSince {
    /// `pg_postmaster_start_time()`, in seconds since the epoch. A clean
    /// restart keeps the counters, but nothing the server keeps tells it
    /// from a crash, so any restart counts as a new beginning.
    pub server_started: String,
    /// `pg_stat_database.stats_reset`, in seconds since the epoch; empty
    /// when never reset.
    pub stats_reset: String,
}

/// An epoch as `CountingSince` keeps it, for a reason's text.
fn moment(epoch: &str) -> String {
    epoch
        .parse::<f64>()
        .ok()
        .and_then(|s| DateTime::<Utc>::from_timestamp(s as i64, 0))
        .map_or_else(
            || epoch.to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

/// Why the session counter cannot be compared with the baseline's, if it
/// cannot: the guard then has no count of the sessions since the
/// snapshot, and a rollback must not proceed as if it had one.
fn counter_restarted(
    then: Option<&CountingSince>,
    before: i64,
    now: &Counters,
    database: &str,
) -> Option<String> {
    let cannot = "the sessions opened since the snapshot cannot be counted";
    if let Some(then) = then {
        if then.server_started != now.since.server_started {
            return Some(format!(
                "the server restarted since the snapshot (up since {}, was up since {}) or another server answers now: {cannot}",
                moment(&now.since.server_started),
                moment(&then.server_started)
            ));
        }
        if then.stats_reset != now.since.stats_reset {
            return Some(format!(
                "the statistics of `{database}` were reset since the snapshot (pg_stat_reset at {}): {cannot}",
                moment(&now.since.stats_reset)
            ));
        }
    }
    (now.sessions < before).then(|| {
        format!(
            "the server counts fewer sessions to `{database}` now ({}) than at the snapshot ({before}), so its counters started again: {cannot}",
            now.sessions
        )
    })
}

/// The session and write counters of `pg_stat_database` (PostgreSQL 14+),
/// read in a transaction of its own so the statistics snapshot is fresh.
async fn counters(admin: &Client, database: &str) -> Result<Option<Counters>, DbError> {
    let major = db::server_version(admin).await?.major();
    if major < 14 {
        return Ok(None);
    }
    if let Some(lag) = statistics_lag(major) {
        // Wait out the collector's lag, then drop any statistics this
        // session read before, so the next read is of a file written
        // after the sessions that just ended were counted.
        tokio::time::sleep(lag).await;
        admin
            .batch_execute("SELECT pg_stat_clear_snapshot()")
            .await
            .map_err(DbError::query("refreshing the statistics snapshot"))?;
    }
    let row = admin
        .query_opt(
            // Epochs, not timestamps as text: those follow the session's
            // `TimeZone` and `DateStyle`, which `recover` may not share
            // with the deploy that took the baseline.
            "SELECT sessions, sessions_abandoned, tup_inserted + tup_updated + tup_deleted, xact_commit, \
                    extract(epoch FROM pg_postmaster_start_time())::text, \
                    coalesce(extract(epoch FROM stats_reset)::text, '') \
             FROM pg_stat_database WHERE datname = $1",
            &[&database],
        )
        .await
        .map_err(DbError::query("reading the session counters"))?;
    Ok(row.map(|r| Counters {
        sessions: r.get(0),
        abandoned: r.get(1),
        activity: Activity {
            rows_written: r.get(2),
            commits: r.get(3),
        },
        since: CountingSince {
            server_started: r.get(4),
            stats_reset: r.get(5),
        },
    }))
}

/// Ends snapguard's sessions on `database` that began before
/// `began_before`, the moment the caller (`recover`) took the deploy lock:
/// a dead runner's (the lock keeps every live snapguard command but the
/// caller from holding any), never the caller's own, which may linger a
/// moment on the server after it closed them and which it counts itself.
/// Returns which.
pub async fn end_dead_runner_sessions(
    admin: &Client,
    database: &str,
    began_before: &ServerTime,
) -> Result<Vec<SessionId>, DbError> {
    crate::db::admin::terminate_sessions_of(admin, database, OWN_APPLICATIONS[0], began_before)
        .await
}

/// How stale `pg_stat_database` may be on a server of `major`. Before 15 a
/// statistics collector process gathers the counters from messages the
/// backends send, and a reader accepts its file up to `PGSTAT_STAT_INTERVAL`
/// (500 ms) old: a session that ended just before may not be counted yet,
/// which would put one of snapguard's own sessions on the wrong side of the
/// baseline (a false "someone else connected"), or miss someone else's.
/// From 15 the counters live in shared memory and a session is counted when
/// it exits. <https://www.postgresql.org/docs/14/monitoring-stats.html>
fn statistics_lag(major: u32) -> Option<Duration> {
    (major < 15).then_some(Duration::from_millis(600))
}

/// A digest of everything a migration or another migrator changes in the
/// catalogue (relations and their storage, columns, functions, types,
/// constraints, triggers, schemas, extensions) and of snapguard's
/// migration history rows. Equal digests are the evidence behind "the
/// database did not change".
pub async fn catalogue_fingerprint(app: &Client) -> Result<String, DbError> {
    let row = app
        .query_one(
            "SELECT md5(concat_ws('|', \
               (SELECT string_agg(concat_ws(',', c.oid, c.relname, c.relnamespace, c.relkind, c.relfilenode, c.relnatts), ';' ORDER BY c.oid) \
                  FROM pg_class c WHERE c.relpersistence <> 't'), \
               (SELECT string_agg(concat_ws(',', a.attrelid, a.attnum, a.attname, a.atttypid, a.attnotnull, a.attisdropped), ';' ORDER BY a.attrelid, a.attnum) \
                  FROM pg_attribute a WHERE a.attrelid >= 16384), \
               (SELECT string_agg(concat_ws(',', p.oid, p.proname, md5(p.prosrc)), ';' ORDER BY p.oid) FROM pg_proc p WHERE p.oid >= 16384), \
               (SELECT string_agg(concat_ws(',', t.oid, t.typname), ';' ORDER BY t.oid) FROM pg_type t WHERE t.oid >= 16384), \
               (SELECT string_agg(concat_ws(',', k.oid, k.conname, k.convalidated), ';' ORDER BY k.oid) FROM pg_constraint k WHERE k.oid >= 16384), \
               (SELECT string_agg(concat_ws(',', g.oid, g.tgname, g.tgenabled), ';' ORDER BY g.oid) FROM pg_trigger g WHERE g.oid >= 16384), \
               (SELECT string_agg(concat_ws(',', n.oid, n.nspname), ';' ORDER BY n.oid) FROM pg_namespace n), \
               (SELECT string_agg(concat_ws(',', e.extname, e.extversion), ';' ORDER BY e.extname) FROM pg_extension e)))",
            &[],
        )
        .await
        .map_err(DbError::query("fingerprinting the catalogue"))?;
    let catalogue: String = row.get(0);
    let has_history = crate::migrate::history::exists(app).await?;
    if !has_history {
        return Ok(catalogue);
    }
    let history: Option<String> = app
        .query_one(
            "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM snapguard.schema_migrations t",
            &[],
        )
        .await
        .map_err(DbError::query("fingerprinting the migration history"))?
        .get(0);
    Ok(format!("{catalogue}/{}", history.unwrap_or_default()))
}

/// One session of another application seen by the sampler.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sighting {
    /// Its backend pid.
    pub pid: i32,
    /// `usename`, `application_name` and the client address.
    pub who: String,
    /// When the sampler first saw it active after the snapshot.
    pub first_seen: DateTime<Utc>,
    /// When it last did.
    pub last_seen: DateTime<Utc>,
    /// In how many samples.
    pub samples: u64,
}

impl std::fmt::Display for Sighting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "session pid {} {} was active after the snapshot: first seen {}, last seen {}, in {} sample(s)",
            self.pid,
            self.who,
            self.first_seen.format("%H:%M:%S%.3f"),
            self.last_seen.format("%H:%M:%S%.3f"),
            self.samples
        )
    }
}

/// Sessions of other applications seen on the database after the
/// baseline: one entry per session, however often it was seen.
#[derive(Clone, Default)]
pub struct Sightings(Arc<Mutex<Vec<Sighting>>>);

impl Sightings {
    fn add(&self, pid: i32, who: String, at: DateTime<Utc>) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match seen.iter_mut().find(|s| s.pid == pid && s.who == who) {
            Some(s) => {
                s.last_seen = at;
                s.samples += 1;
            }
            None => seen.push(Sighting {
                pid,
                who,
                first_seen: at,
                last_seen: at,
                samples: 1,
            }),
        }
    }

    fn list(&self) -> Vec<Sighting> {
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

/// The `application_name`s of snapguard's own sessions. Only client
/// backends count as sessions: an autovacuum worker visiting the database
/// (`backend_type = 'autovacuum worker'`, no application name) writes
/// nothing an application would lose, and is not a reason to refuse.
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
                                coalesce(client_addr::text, 'local') \
                         FROM pg_stat_activity \
                         WHERE datname = $1 AND backend_type = 'client backend' AND NOT (application_name = ANY($2)) AND state IS NOT NULL AND state <> 'starting' \
                           AND greatest(backend_start, xact_start, state_change) > $3::text::timestamptz",
                        &[&database, &own, &since],
                    )
                    .await
                {
                    let at = Utc::now();
                    for r in rows {
                        let (pid, user, app, from): (i32, String, String, String) =
                            (r.get(0), r.get(1), r.get(2), r.get(3));
                        let app = if app.is_empty() { "no application_name" } else { &app };
                        out.add(pid, format!("as `{user}` ({app}) from {from}"), at);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Sampler { task, seen }
    }

    /// What it saw so far.
    pub fn sightings(&self) -> Vec<Sighting> {
        self.seen.list()
    }
}

/// The sessions connected at the baseline that have left since, unseen
/// by the sampler: each may have written after the snapshot and left, and
/// nothing the server keeps says whether it did.
fn left_since(
    base: &Baseline,
    now: &[Connected],
    sightings: &[Sighting],
    database: &str,
) -> Vec<String> {
    base.connected
        .iter()
        .filter(|b| !now.contains(b) && !sightings.iter().any(|s| s.pid == b.pid))
        .map(|b| {
            format!(
                "session pid {} {} was connected to `{database}` at the snapshot ({}) and has left since: it may have written after the snapshot",
                b.pid,
                b.who,
                base.at.format("%Y-%m-%d %H:%M:%S UTC")
            )
        })
        .collect()
}

/// How many sessions registered in `snapguard.sessions` since `since`,
/// counting the one that reads it; `None` when that cannot be read (no
/// sequence, no privilege) or the sequence is not the baseline's (it went
/// back: dropped and made again).
async fn registered_since(app: &ConnInfo, since: i64) -> Option<i64> {
    let client = db::connect(app).await.ok()?;
    let number = db::registry::own_number(&client).await?;
    drop(client);
    (number > since).then(|| number - since)
}

/// How the reason that counts the server's activity since the snapshot
/// begins.
pub const ACTIVITY_PREFIX: &str = "since the snapshot the server counted";

/// Whose sessions the session counter may attribute to snapguard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnSessions {
    /// This process opened every snapguard session since the baseline and
    /// counted them (the deploy itself).
    Counted,
    /// A dead runner opened them. Every session of this process (which
    /// did not take the baseline, so all of them came after it) counts on
    /// top of those.
    Recorded {
        /// Sessions earlier processes of the deploy opened since the
        /// baseline, as their journal writes recorded, plus those
        /// `recover` ended that no journal write had seen.
        recorded: u64,
        /// [`Baseline::registered_before`]: when the database registers
        /// snapguard's sessions, the registrations since count them all,
        /// this process's included, and `recorded` is only the fallback.
        registered_since: Option<i64>,
    },
    /// Unknown: an external migrator opened sessions of its own.
    Unknown,
}

impl OwnSessions {
    /// How many of the sessions the server counted since the baseline are
    /// snapguard's, by the journal and this process (`this_process`
    /// sessions opened in all); `None` when it cannot be told. Any error
    /// here must be an under-count: an over-count excuses someone else's
    /// session.
    fn explained(self, base_own: u64, this_process: u64) -> Option<i64> {
        match self {
            OwnSessions::Counted => Some(this_process.saturating_sub(base_own) as i64),
            OwnSessions::Recorded { recorded, .. } => Some((recorded + this_process) as i64),
            OwnSessions::Unknown => None,
        }
    }
}

/// What the guard knows when it is asked.
pub struct Evidence<'a> {
    /// The baseline.
    pub baseline: &'a Baseline,
    /// What the deploy's sampler saw (recorded in the journal for `recover`).
    pub sightings: Vec<Sighting>,
    /// How to account for snapguard's own sessions.
    pub own: OwnSessions,
    /// The fence's recorded roles, when a fence is up.
    pub fence: Option<&'a [RoleState]>,
}

/// Reasons to believe someone else wrote after the snapshot; empty when
/// none is found.
pub async fn writes_after(
    admin: &Client,
    app: &ConnInfo,
    evidence: Evidence<'_>,
) -> Result<Vec<String>, DbError> {
    let database = app.dbname();
    let mut reasons: Vec<String> = evidence.sightings.iter().map(ToString::to_string).collect();
    if let Some(roles) = evidence.fence {
        reasons.extend(fence::breaches(admin, roles, database).await?);
    }
    let now = others_connected(admin, database).await?;
    for session in &now {
        if !evidence.sightings.iter().any(|s| s.pid == session.pid) {
            reasons.push(format!(
                "session pid {} {} is connected to `{database}` now",
                session.pid, session.who
            ));
        }
    }
    let base = evidence.baseline;
    reasons.extend(left_since(base, &now, &evidence.sightings, database));
    // Read before the counters (and before `settle`, which waits for the
    // session reading it to end): a session registered after this read
    // can only be unexplained, never explained without being counted.
    let registered = match evidence.own {
        OwnSessions::Recorded {
            registered_since: Some(since),
            ..
        } => registered_since(app, since).await,
        _ => None,
    };
    // A snapguard session still open is counted by the server only when
    // it ends (or reports): it may be explained below without being in
    // `opened` yet, so it explains nothing.
    let still_open = settle(admin, database).await?;
    if let Some(before) = base.server_sessions
        && let Some(now) = counters(admin, database).await?
    {
        let restarted = counter_restarted(base.counting_since.as_ref(), before, &now, database);
        let opened = now.sessions - before;
        let explained = match registered {
            Some(registered) => Some(registered),
            None => evidence
                .own
                .explained(base.own_sessions, db::sessions_opened(database)),
        }
        .map(|explained| explained - still_open as i64);
        tracing::debug!(
            opened,
            abandoned = base.abandoned_sessions.map(|b| now.abandoned - b),
            this_process = db::sessions_opened(database),
            ?registered,
            still_open,
            ?explained,
            own = ?evidence.own,
            "the write guard's session count"
        );
        let counting = restarted.is_none();
        if let Some(restarted) = restarted {
            reasons.push(restarted);
        } else if let Some(explained) = explained
            && opened > explained
        {
            reasons.push(format!(
                "{} session(s) connected to `{database}` after the snapshot that snapguard did not open ({opened} in all since {})",
                opened - explained,
                base.at.format("%Y-%m-%d %H:%M:%S UTC")
            ));
        }
        if counting
            && !reasons.is_empty()
            && let Some(activity) = base.activity
        {
            reasons.push(format!(
                "{ACTIVITY_PREFIX} {} committed transaction(s) and {} row(s) written in `{database}`, snapguard's own migrations included: a restore discards them",
                now.activity.commits - activity.commits,
                now.activity.rows_written - activity.rows_written
            ));
        }
    }
    Ok(reasons)
}

#[cfg(test)]
impl Baseline {
    /// A baseline at `at` that saw nothing: tests set what they need.
    pub(crate) fn seen_nothing(at: DateTime<Utc>) -> Baseline {
        Baseline {
            at,
            wal_lsn: None,
            server_sessions: None,
            counting_since: None,
            abandoned_sessions: None,
            activity: None,
            own_sessions: 0,
            catalogue: None,
            registered_before: None,
            connected: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(pid: i32, since: &str) -> Connected {
        Connected {
            pid,
            since: since.into(),
            who: "as `app` (pool)".into(),
        }
    }

    #[test]
    fn the_journal_and_this_process_explain_sessions_the_server_counted() {
        let recorded = OwnSessions::Recorded {
            recorded: 6,
            registered_since: None,
        };
        assert_eq!(recorded.explained(0, 2), Some(8));
        assert_eq!(OwnSessions::Counted.explained(3, 10), Some(7));
        assert_eq!(OwnSessions::Unknown.explained(0, 10), None);
    }

    fn counted(sessions: i64, started: &str, reset: &str) -> Counters {
        Counters {
            sessions,
            abandoned: 0,
            activity: Activity {
                rows_written: 0,
                commits: 0,
            },
            since: CountingSince {
                server_started: started.into(),
                stats_reset: reset.into(),
            },
        }
    }

    #[test]
    fn a_session_count_that_started_again_is_a_reason_not_a_small_number() {
        let then = counted(100, "1764700000.5", "").since;
        let same = counted(140, "1764700000.5", "");
        assert_eq!(counter_restarted(Some(&then), 100, &same, "shop"), None);
        // A crash (or a standby promoted): counting began again, and 140
        // sessions since then say nothing about the time since the
        // snapshot, even though they are more than before.
        let crashed = counted(140, "1764703600.25", "");
        let reason = counter_restarted(Some(&then), 100, &crashed, "shop").unwrap();
        assert!(
            reason.starts_with(
                "the server restarted since the snapshot (up since 2025-12-02 19:26:40 UTC, was up since 2025-12-02 18:26:40 UTC)"
            ),
            "{reason}"
        );
        let reset = counted(3, "1764700000.5", "1764701000");
        let reason = counter_restarted(Some(&then), 100, &reset, "shop").unwrap();
        assert!(
            reason.starts_with(
                "the statistics of `shop` were reset since the snapshot (pg_stat_reset at 2025-12-02 18:43:20 UTC)"
            ),
            "{reason}"
        );
        // A journal from before the start was recorded: a count that went
        // down is still caught.
        let reason =
            counter_restarted(None, 100, &counted(7, "1764703600.25", ""), "shop").unwrap();
        assert!(
            reason.contains("fewer sessions to `shop` now (7) than at the snapshot (100)"),
            "{reason}"
        );
        assert_eq!(
            counter_restarted(None, 100, &counted(100, "1764703600.25", ""), "shop"),
            None
        );
    }

    #[test]
    fn a_session_from_the_snapshot_that_left_unseen_is_a_reason() {
        let base = Baseline {
            connected: vec![session(10, "t1"), session(11, "t1"), session(12, "t1")],
            ..Baseline::seen_nothing(Utc::now())
        };
        // 10 is still there (reported as connected now), 11 left, and 12's
        // pid now belongs to a later session: 11 and 12 left.
        let now = vec![session(10, "t1"), session(12, "t2")];
        let reasons = left_since(&base, &now, &[], "shop");
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(
            reasons[0].starts_with(
                "session pid 11 as `app` (pool) was connected to `shop` at the snapshot"
            )
        );
        assert!(reasons[1].starts_with("session pid 12 "));
        // One the sampler saw is reported as its sighting instead.
        let seen = Sighting {
            pid: 11,
            who: "as `app` (pool) from local".into(),
            first_seen: Utc::now(),
            last_seen: Utc::now(),
            samples: 1,
        };
        assert_eq!(left_since(&base, &now, &[seen], "shop").len(), 1);
    }
}
