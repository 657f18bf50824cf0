//! Scratch space on this machine, in `$TMPDIR`: where a store restore
//! downloads the archive for `pg_restore -j` (which needs a seekable file).
//!
//! A scratch directory is removed when its owner drops it; one left by a
//! process killed with SIGKILL is named after that process
//! (`snapguard-scratch-<pid>-…`), so the next snapguard that needs scratch
//! space removes it once that pid is gone. Free space is checked before a
//! download starts, so a full disk is reported as one (naming `$TMPDIR` and
//! the bytes needed) and never as a damaged snapshot.

use std::path::{Path, PathBuf};

use rustix::process::{Pid, test_kill_process};

/// The prefix of every scratch directory.
const PREFIX: &str = "snapguard-scratch-";

/// Room kept free beyond what a download needs: the filesystem is shared.
const HEADROOM: u64 = 16 * 1024 * 1024;

/// Scratch space is missing or too small.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    /// The directory could not be created.
    #[error("cannot create a scratch directory in `{}` (set `TMPDIR` to a writable directory)", dir.display())]
    Create {
        /// `$TMPDIR`.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not enough free space.
    #[error(
        "not enough free space in `{}` (`TMPDIR`) for the archive: {needed} bytes needed, {available} available. Free space there or point `TMPDIR` at a larger filesystem; the snapshot itself is not affected",
        dir.display()
    )]
    NoRoom {
        /// `$TMPDIR`.
        dir: PathBuf,
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
}

/// The directory scratch space is made in: `$TMPDIR`, else `/tmp`.
pub fn base() -> PathBuf {
    std::env::temp_dir()
}

/// Creates a scratch directory, first removing those left by dead
/// snapguard processes.
pub fn dir() -> Result<tempfile::TempDir, ScratchError> {
    sweep(&base());
    tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}-", std::process::id()))
        .tempdir_in(base())
        .map_err(|source| ScratchError::Create {
            dir: base(),
            source,
        })
}

/// Fails unless `$TMPDIR` has room for `needed` bytes (after sweeping
/// what dead processes left).
pub fn ensure_room(needed: u64) -> Result<(), ScratchError> {
    let dir = base();
    sweep(&dir);
    let available = free_bytes(&dir).map_err(|source| ScratchError::Create {
        dir: dir.clone(),
        source,
    })?;
    if available < needed.saturating_add(HEADROOM) {
        return Err(ScratchError::NoRoom {
            dir,
            needed: needed.saturating_add(HEADROOM),
            available,
        });
    }
    Ok(())
}

/// Bytes an unprivileged process may still write under `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Removes scratch directories whose owning process is gone.
pub fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = owner(&name.to_string_lossy()) else {
            continue;
        };
        let alive = Pid::from_raw(pid).is_some_and(|p| test_kill_process(p).is_ok());
        if !alive {
            let path = entry.path();
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed scratch space left by a snapguard that was killed")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove scratch space left by a snapguard that was killed")
                }
            }
        }
    }
}

/// The pid in `snapguard-scratch-<pid>-<random>`.
fn owner(name: &str) -> Option<i32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_dead_processes_are_swept_and_live_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        // A pid that cannot exist (above the kernel's pid_max).
        let dead = root.path().join(format!("{PREFIX}99999999-abc"));
        let live = root
            .path()
            .join(format!("{PREFIX}{}-def", std::process::id()));
        let other = root.path().join("not-ours-1-x");
        for d in [&dead, &live, &other] {
            std::fs::create_dir_all(d.join("inner")).unwrap();
            std::fs::write(d.join("inner/archive.dump"), b"x").unwrap();
        }
        sweep(root.path());
        assert!(!dead.exists());
        assert!(live.exists());
        assert!(other.exists());
    }

    #[test]
    fn owner_reads_the_pid() {
        assert_eq!(owner("snapguard-scratch-1234-Xy9"), Some(1234));
        assert_eq!(owner("snapguard-restore-1234"), None);
    }
}
