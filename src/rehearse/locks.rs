//! Which table locks a migration held, and for how long, observed from a
//! second connection that samples `pg_locks` every [`INTERVAL`].
//!
//! A lock first seen in sample *k* was taken somewhere between samples
//! *k−1* and *k*; one last seen in sample *m* was released between *m* and
//! *m+1*. Holds are measured between those midpoints, so the error is at
//! most half a sampling interval at each end. A lock held for less than
//! one interval may not be seen at all; the report says so.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::db::{self, ConnInfo, DbError};

/// How often `pg_locks` is read.
pub const INTERVAL: Duration = Duration::from_millis(50);

/// PostgreSQL's table lock modes, weakest first.
/// <https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES>
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Mode {
    /// `SELECT`.
    AccessShare,
    /// `SELECT … FOR UPDATE`.
    RowShare,
    /// `INSERT`, `UPDATE`, `DELETE`.
    RowExclusive,
    /// `VACUUM`, `CREATE INDEX CONCURRENTLY`, `ANALYZE`, `VALIDATE CONSTRAINT`.
    ShareUpdateExclusive,
    /// `CREATE INDEX`: blocks writes.
    Share,
    /// `CREATE TRIGGER`, some `ALTER TABLE`: blocks writes.
    ShareRowExclusive,
    /// `REFRESH MATERIALIZED VIEW CONCURRENTLY`: blocks writes and row locks.
    Exclusive,
    /// Most `ALTER TABLE`, `DROP`, `TRUNCATE`, `VACUUM FULL`: blocks reads too.
    AccessExclusive,
}

impl Mode {
    /// From `pg_locks.mode` (`AccessExclusiveLock`).
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "AccessShareLock" => Mode::AccessShare,
            "RowShareLock" => Mode::RowShare,
            "RowExclusiveLock" => Mode::RowExclusive,
            "ShareUpdateExclusiveLock" => Mode::ShareUpdateExclusive,
            "ShareLock" => Mode::Share,
            "ShareRowExclusiveLock" => Mode::ShareRowExclusive,
            "ExclusiveLock" => Mode::Exclusive,
            "AccessExclusiveLock" => Mode::AccessExclusive,
            _ => return None,
        })
    }

    /// As the documentation writes it: `ACCESS EXCLUSIVE`.
    pub fn as_sql(self) -> &'static str {
        match self {
            Mode::AccessShare => "ACCESS SHARE",
            Mode::RowShare => "ROW SHARE",
            Mode::RowExclusive => "ROW EXCLUSIVE",
            Mode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            Mode::Share => "SHARE",
            Mode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            Mode::Exclusive => "EXCLUSIVE",
            Mode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }
}

/// One reading of `pg_locks`.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When the server read its lock table (the query's midpoint).
    pub at: Instant,
    /// Granted table locks held by client sessions other than the sampler.
    pub locks: Vec<(String, Mode)>,
}

/// A table lock a migration held.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hold {
    /// `schema.table`.
    pub table: String,
    /// The strongest mode seen on it.
    pub mode: Mode,
    /// The longest unbroken hold of that mode, in seconds.
    pub seconds: f64,
}

/// Samples `pg_locks` until dropped.
pub struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Granted relation locks in this database held by client sessions, on
/// tables, partitioned tables and materialized views outside the system
/// schemas and snapguard's own history schema. Autovacuum and other
/// background workers are not the migration's and are left out.
const QUERY: &str = "
SELECT n.nspname || '.' || c.relname, l.mode
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.pid <> pg_backend_pid()
  AND a.backend_type = 'client backend'
  AND c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'snapguard')
  AND n.nspname !~ '^pg_toast'";

impl Sampler {
    /// Connects to `info` and starts sampling. The session keeps
    /// snapguard's own application name: the deploy's write guard, which a
    /// drill runs, must know it as snapguard's.
    pub async fn start(info: &ConnInfo) -> Result<Sampler, DbError> {
        let client = db::connect(info).await?;
        let statement = client
            .prepare(QUERY)
            .await
            .map_err(DbError::query("preparing the pg_locks query"))?;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let sink = samples.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let sent = Instant::now();
                let Ok(rows) = client.query(&statement, &[]).await else {
                    tracing::warn!("the lock sampler's query failed; lock observations stop here");
                    return;
                };
                let at = sent + sent.elapsed() / 2;
                let locks = rows
                    .iter()
                    .filter_map(|r| Some((r.get::<_, String>(0), Mode::parse(r.get(1))?)))
                    .collect();
                lock(&sink).push(Sample { at, locks });
            }
        });
        Ok(Sampler { samples, task })
    }

    /// The holds seen between `start` and `end`, once a sample after `end`
    /// has been taken (so a lock released at the end is seen released).
    /// Samples up to `end` are then discarded.
    pub async fn holds(&self, start: Instant, end: Instant) -> Vec<Hold> {
        let deadline = Instant::now() + INTERVAL * 20;
        loop {
            let done = lock(&self.samples).last().is_some_and(|s| s.at > end);
            if done || self.task.is_finished() || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(INTERVAL / 5).await;
        }
        let mut samples = lock(&self.samples);
        let first = samples.partition_point(|s| s.at < start).saturating_sub(1);
        let after = samples.partition_point(|s| s.at <= end);
        let window = samples[first..(after + 1).min(samples.len())].to_vec();
        // Keep the last sample before the next window as its "before".
        samples.drain(..after.saturating_sub(1));
        drop(samples);
        holds(&window, start, end)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(samples: &Mutex<Vec<Sample>>) -> std::sync::MutexGuard<'_, Vec<Sample>> {
    samples.lock().unwrap_or_else(|e| e.into_inner())
}

/// Per table, the strongest mode seen in `samples` and its longest
/// unbroken hold; strongest first, then longest. `start` and `end` bound
/// the estimate when a lock is seen in the first or last sample.
pub fn holds(samples: &[Sample], start: Instant, end: Instant) -> Vec<Hold> {
    let mut strongest: std::collections::BTreeMap<&str, Mode> = Default::default();
    for s in samples {
        for (table, mode) in &s.locks {
            let m = strongest.entry(table).or_insert(*mode);
            *m = (*m).max(*mode);
        }
    }
    let mut out: Vec<Hold> = strongest
        .into_iter()
        .map(|(table, mode)| {
            let seen: Vec<bool> = samples
                .iter()
                .map(|s| s.locks.iter().any(|(t, m)| t == table && *m == mode))
                .collect();
            let mut longest = Duration::ZERO;
            let mut i = 0;
            while i < seen.len() {
                if !seen[i] {
                    i += 1;
                    continue;
                }
                let first = i;
                while i + 1 < seen.len() && seen[i + 1] {
                    i += 1;
                }
                let last = i;
                let half = INTERVAL / 2;
                let from = match first.checked_sub(1) {
                    Some(prev) => midpoint(samples[prev].at, samples[first].at),
                    None => samples[first].at.checked_sub(half).unwrap_or(start),
                }
                .max(start);
                let to = match samples.get(last + 1) {
                    Some(next) => midpoint(samples[last].at, next.at),
                    None => samples[last].at + half,
                }
                .min(end.max(from));
                longest = longest.max(to.saturating_duration_since(from));
                i += 1;
            }
            Hold {
                table: table.to_owned(),
                mode,
                seconds: longest.as_secs_f64(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.mode
            .cmp(&a.mode)
            .then(b.seconds.total_cmp(&a.seconds))
            .then(a.table.cmp(&b.table))
    });
    out
}

fn midpoint(a: Instant, b: Instant) -> Instant {
    a + b.saturating_duration_since(a) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t0: Instant, ms: u64, locks: &[(&str, Mode)]) -> Sample {
        Sample {
            at: t0 + Duration::from_millis(ms),
            locks: locks.iter().map(|(t, m)| (t.to_string(), *m)).collect(),
        }
    }

    #[test]
    fn a_hold_is_measured_between_the_midpoints_around_it() {
        let t0 = Instant::now();
        let ae = [("public.t", Mode::AccessExclusive)];
        // Seen at 100..=2050 ms, not at 50 or 2100: taken ~75, released ~2075.
        let mut samples = vec![sample(t0, 50, &[])];
        for ms in (100..=2050).step_by(50) {
            samples.push(sample(t0, ms, &ae));
        }
        samples.push(sample(t0, 2100, &[]));
        let h = holds(&samples, t0, t0 + Duration::from_millis(2200));
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].mode, Mode::AccessExclusive);
        assert!((h[0].seconds - 2.0).abs() < 0.001, "{}", h[0].seconds);
    }

    #[test]
    fn the_strongest_mode_per_table_is_reported_strongest_first() {
        let t0 = Instant::now();
        let samples = vec![
            sample(t0, 0, &[]),
            sample(
                t0,
                50,
                &[
                    ("public.a", Mode::RowExclusive),
                    ("public.b", Mode::ShareUpdateExclusive),
                ],
            ),
            sample(t0, 100, &[("public.a", Mode::AccessExclusive)]),
            sample(t0, 150, &[]),
        ];
        let h = holds(&samples, t0, t0 + Duration::from_millis(150));
        assert_eq!(h[0].table, "public.a");
        assert_eq!(h[0].mode, Mode::AccessExclusive);
        assert!((h[0].seconds - 0.05).abs() < 0.001);
        assert_eq!(h[1].mode, Mode::ShareUpdateExclusive);
    }

    #[test]
    fn modes_parse_and_order() {
        assert_eq!(
            Mode::parse("ShareUpdateExclusiveLock"),
            Some(Mode::ShareUpdateExclusive)
        );
        assert!(Mode::AccessExclusive > Mode::Share);
        assert_eq!(Mode::parse("SIReadLock"), None);
    }
}
