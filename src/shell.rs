//! Running the user's shell commands: maintenance switches, release hooks
//! and external migrators.
//!
//! Each runs through `sh -c` with stdin closed and its stdout sent to our
//! stderr (our stdout stays for snapguard's own result), as the leader of a
//! process group of its own. A timeout or a cancellation sends SIGTERM to
//! the whole group, waits a grace period, then SIGKILL: the command decides
//! how to stop cleanly, but cannot hang a deploy, and nothing it started
//! keeps running after it was stopped.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::cancel::Cancel;
use crate::process::group::{self, GroupGuard};
use rustix::process::Signal;

/// How long a command has after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

/// A command to run.
#[derive(Debug, Clone)]
pub struct Shell<'a> {
    /// The config key it comes from, for messages (`release.command`).
    pub key: &'static str,
    /// The command line.
    pub command: &'a str,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Kill it after this long.
    pub timeout: Option<Duration>,
    /// Strings to mask as `***` when the command is shown (passwords).
    pub secrets: Vec<&'a str>,
}

/// The command failed.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// It could not be started.
    #[error("cannot start `{command}` (`{key}`)")]
    Spawn {
        /// The config key.
        key: &'static str,
        /// The command, masked.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It ran and exited unsuccessfully.
    #[error("`{command}` (`{key}`) failed ({status}); its output is above")]
    Failed {
        /// The config key.
        key: &'static str,
        /// The command, masked.
        command: String,
        /// How it ended.
        status: ExitStatus,
    },
    /// It ran past its timeout and was stopped.
    #[error("`{command}` (`{key}`) did not finish within {timeout:?} and was stopped")]
    TimedOut {
        /// The config key.
        key: &'static str,
        /// The command, masked.
        command: String,
        /// The limit.
        timeout: Duration,
    },
    /// A signal cancelled it.
    #[error("`{command}` (`{key}`) was stopped by a cancel ({status})")]
    Cancelled {
        /// The config key.
        key: &'static str,
        /// The command, masked.
        command: String,
        /// How it ended.
        status: ExitStatus,
    },
}

impl ShellError {
    /// Whether the command started (and so may have changed something).
    pub fn started(&self) -> bool {
        !matches!(self, ShellError::Spawn { .. })
    }
}

impl Shell<'_> {
    /// The command as logged, with secrets masked.
    pub fn shown(&self) -> String {
        let mut shown = self.command.to_owned();
        for s in self.secrets.iter().filter(|s| !s.is_empty()) {
            shown = shown.replace(s, "***");
        }
        shown
    }

    /// Runs the command to its end. With `cancel`, a cancellation stops it
    /// (SIGTERM, then SIGKILL after a grace period).
    pub async fn run(&self, cancel: Option<&Cancel>) -> Result<(), ShellError> {
        let shown = self.shown();
        tracing::info!(key = self.key, command = %shown, "running");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(self.command)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stderr_handle())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ShellError::Spawn {
                key: self.key,
                command: shown.clone(),
                source,
            })?;
        let group = GroupGuard::track(child.id(), &shown);
        let timeout = async {
            match self.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let cancelled = async {
            match cancel {
                Some(c) => c.cancelled().await,
                None => std::future::pending().await,
            }
        };
        enum End {
            Exited(std::io::Result<ExitStatus>),
            TimedOut,
            Cancelled,
        }
        let end = tokio::select! {
            status = child.wait() => End::Exited(status),
            () = timeout => End::TimedOut,
            () = cancelled => End::Cancelled,
        };
        let spawn_error = |source| ShellError::Spawn {
            key: self.key,
            command: shown.clone(),
            source,
        };
        match end {
            End::Exited(status) => {
                let status = status.map_err(spawn_error)?;
                group.release();
                if status.success() {
                    Ok(())
                } else {
                    Err(ShellError::Failed {
                        key: self.key,
                        command: shown,
                        status,
                    })
                }
            }
            End::TimedOut => {
                let _ = stop(&mut child, group, self.key).await;
                Err(ShellError::TimedOut {
                    key: self.key,
                    command: shown,
                    timeout: self.timeout.unwrap_or_default(),
                })
            }
            End::Cancelled => {
                let status = stop(&mut child, group, self.key)
                    .await
                    .map_err(spawn_error)?;
                Err(ShellError::Cancelled {
                    key: self.key,
                    command: shown,
                    status,
                })
            }
        }
    }
}

/// SIGTERM to the whole group, wait up to [`GRACE`] for the leader, then
/// SIGKILL to the group (dropping the guard), whatever is left of it.
async fn stop(child: &mut Child, group: GroupGuard, key: &str) -> std::io::Result<ExitStatus> {
    if let Some(pgid) = group.pgid() {
        tracing::warn!(
            pgid,
            key,
            "asking the command and its children to stop (SIGTERM)"
        );
        group::signal(pgid, Signal::TERM);
    }
    let status = match tokio::time::timeout(GRACE, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            tracing::warn!(key, "still running {GRACE:?} after SIGTERM; killing it");
            child.kill().await?;
            child.wait().await
        }
    };
    // The leader is gone; its children may not be.
    drop(group);
    status
}

/// The child's stdout goes to our stderr, so our stdout stays parseable.
fn stderr_handle() -> Stdio {
    use std::os::fd::AsFd;
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::inherit(),
    }
}
