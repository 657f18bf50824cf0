//! Process groups: every child snapguard starts (hooks, maintenance
//! commands, the external migrator, `pg_dump`, `pg_restore`) leads a group
//! of its own, so that stopping it stops what it started too. A shell that
//! is signalled alone leaves its children running; a group does not.
//!
//! The groups alive right now are kept in a process-wide list that the
//! deploy writes beside its journal, so that `recover`, after a kill -9 of
//! the runner, can end a hook still running before it rolls anything back
//! (an orphaned release finishing over a rollback is the failure this
//! prevents). A group id only means something on the machine and boot that
//! made it, so each record names its host by the kernel's boot id.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};
use tokio::sync::watch;

/// A running child's process group, as recorded for a successor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupRecord {
    /// The group id (the leader's pid).
    pub pgid: i32,
    /// What runs in it, secrets masked.
    pub command: String,
    /// The machine and boot it runs on ([`this_host`]).
    pub host: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
}

fn live() -> &'static Mutex<Vec<GroupRecord>> {
    static LIVE: OnceLock<Mutex<Vec<GroupRecord>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(Vec::new()))
}

fn changes_sender() -> &'static watch::Sender<u64> {
    static CHANGES: OnceLock<watch::Sender<u64>> = OnceLock::new();
    CHANGES.get_or_init(|| watch::channel(0).0)
}

fn update(f: impl FnOnce(&mut Vec<GroupRecord>)) {
    f(&mut live().lock().unwrap_or_else(|e| e.into_inner()));
    changes_sender().send_modify(|n| *n += 1);
}

/// The groups snapguard's children lead right now.
pub fn live_groups() -> Vec<GroupRecord> {
    live().lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Wakes whenever a group starts or ends.
pub fn changes() -> watch::Receiver<u64> {
    changes_sender().subscribe()
}

/// This machine and boot: `<hostname>/<boot id>`.
pub fn this_host() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    format!(
        "{}/{}",
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/random/boot_id")
    )
}

/// Tracks one child's group from its spawn: dropped while armed, it kills
/// the whole group (the Rust equivalent of `kill_on_drop`, for the group).
#[derive(Debug)]
pub struct GroupGuard {
    pgid: Option<i32>,
}

impl GroupGuard {
    /// Starts tracking the group led by `pid` (a child spawned with
    /// `process_group(0)`); `None` when the child is already gone.
    pub fn track(pid: Option<u32>, command: &str) -> GroupGuard {
        let pgid = pid.and_then(|p| i32::try_from(p).ok());
        if let Some(pgid) = pgid {
            let record = GroupRecord {
                pgid,
                command: command.to_owned(),
                host: this_host(),
                started_at: Utc::now(),
            };
            update(|l| l.push(record));
        }
        GroupGuard { pgid }
    }

    /// The group id.
    pub fn pgid(&self) -> Option<i32> {
        self.pgid
    }

    /// The leader ended on its own: stop tracking, and leave whatever it
    /// started in the background alone (a hook may start a daemon).
    pub fn release(mut self) {
        self.forget();
    }

    fn forget(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            update(|l| l.retain(|r| r.pgid != pgid));
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            signal(pgid, Signal::KILL);
            self.forget();
        }
    }
}

/// Sends `sig` to the group; false when there is no such group.
pub fn signal(pgid: i32, sig: Signal) -> bool {
    Pid::from_raw(pgid).is_some_and(|p| kill_process_group(p, sig).is_ok())
}

/// Whether any process of the group is left.
pub fn exists(pgid: i32) -> bool {
    Pid::from_raw(pgid).is_some_and(|p| test_kill_process_group(p).is_ok())
}

/// Ends a group that is not our child (a dead runner's): SIGTERM, up to
/// `grace` for it to go, then SIGKILL. What may remain after SIGKILL are
/// zombies a parent has not reaped yet, which cannot run any more.
pub async fn end(pgid: i32, grace: Duration) {
    if !signal(pgid, Signal::TERM) || wait_gone(pgid, grace).await {
        return;
    }
    tracing::warn!(
        pgid,
        "process group still running {grace:?} after SIGTERM; killing it"
    );
    signal(pgid, Signal::KILL);
    wait_gone(pgid, Duration::from_secs(2)).await;
}

async fn wait_gone(pgid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while exists(pgid) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits until the group `pgid` has `count` processes (the shell and
    /// what it started), rather than for a time that a loaded machine may
    /// not honour.
    async fn started(pgid: i32, count: usize) {
        let members = || {
            std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
                .filter(|stat| {
                    // pid (comm) state ppid pgrp …: comm may hold spaces.
                    stat.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().nth(2))
                        .and_then(|p| p.parse::<i32>().ok())
                        == Some(pgid)
                })
                .count()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while members() < count {
            assert!(
                Instant::now() < deadline,
                "the group never had {count} processes"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn dropping_the_guard_ends_the_grandchildren_too() {
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "sleep 300 & sleep 300 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let guard = GroupGuard::track(child.id(), "test");
        let pgid = guard.pgid().unwrap();
        assert!(live_groups().iter().any(|r| r.pgid == pgid));
        started(pgid, 3).await;
        drop(guard);
        child.wait().await.unwrap();
        assert!(
            wait_gone(pgid, Duration::from_secs(5)).await,
            "the sleeps survived"
        );
        assert!(!live_groups().iter().any(|r| r.pgid == pgid));
    }

    #[tokio::test]
    async fn ending_a_group_that_ignores_sigterm_kills_it() {
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 300 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id().unwrap() as i32;
        // The shell has set its trap only once it runs the sleep.
        started(pgid, 2).await;
        let reaper = tokio::spawn(async move { child.wait().await });
        end(pgid, Duration::from_millis(300)).await;
        reaper.await.unwrap().unwrap();
        assert!(wait_gone(pgid, Duration::from_secs(5)).await);
    }
}
