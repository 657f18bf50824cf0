//! `migrations.command`: an external migrator (`bundle exec rails
//! db:migrate`, `python manage.py migrate`, `npx prisma migrate deploy`) run
//! instead of the built-in one. It gets the database as `DATABASE_URL` and
//! the libpq `PG*` variables; its output is streamed to snapguard's stderr
//! (stdout stays for snapguard's own result); its exit code decides.

use std::process::Stdio;

use tokio::process::Command;

use crate::cancel::Cancel;
use crate::db::ConnInfo;

/// The external migrator failed.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    /// It could not be started.
    #[error("cannot start the external migrator `{command}` (`migrations.command`)")]
    Spawn {
        /// The command, with the database password masked.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It ran and failed.
    #[error(
        "the external migrator `{command}` (`migrations.command`) failed ({status}); its output is above"
    )]
    Failed {
        /// The command, with the database password masked.
        command: String,
        /// How it ended.
        status: std::process::ExitStatus,
    },
}

impl ExternalError {
    /// Whether the command started (and so may have changed the database).
    pub fn started(&self) -> bool {
        matches!(self, ExternalError::Failed { .. })
    }
}

/// Runs `command` through `sh -c` against `db`. On cancellation the command
/// gets SIGTERM and is waited for: it decides how to stop cleanly.
pub async fn run(command: &str, db: &ConnInfo, cancel: &Cancel) -> Result<(), ExternalError> {
    let shown = mask(command, db);
    tracing::info!(command = %shown, "running the external migrator");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("DATABASE_URL", db.secret_url().expose())
        .envs(db.libpq_env())
        .stdin(Stdio::null())
        .stdout(stderr_handle())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| ExternalError::Spawn {
            command: shown.clone(),
            source,
        })?;
    let status = tokio::select! {
        status = child.wait() => status,
        () = cancel.cancelled() => {
            if let Some(pid) = child.id() {
                tracing::warn!(pid, "asking the external migrator to stop (SIGTERM)");
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            child.wait().await
        }
    }
    .map_err(|source| ExternalError::Spawn {
        command: shown.clone(),
        source,
    })?;
    if status.success() {
        tracing::info!(command = %shown, "the external migrator succeeded");
        return Ok(());
    }
    Err(ExternalError::Failed {
        command: shown,
        status,
    })
}

/// The child's stdout goes to our stderr, so our stdout stays parseable.
fn stderr_handle() -> Stdio {
    use std::os::fd::AsFd;
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::inherit(),
    }
}

/// The command as logged: the database password, should the command
/// spell it out, is replaced by `***`.
fn mask(command: &str, db: &ConnInfo) -> String {
    match db.password() {
        Some(p) if !p.expose().is_empty() => command.replace(p.expose(), "***"),
        _ => command.to_owned(),
    }
}
