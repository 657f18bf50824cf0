//! `migrations.command`: an external migrator (`bundle exec rails
//! db:migrate`, `python manage.py migrate`, `npx prisma migrate deploy`) run
//! instead of the built-in one. It gets the database as `DATABASE_URL` and
//! the libpq `PG*` variables; its output is streamed to snapguard's stderr
//! (stdout stays for snapguard's own result); its exit code decides.

use std::time::Duration;

use crate::cancel::Cancel;
use crate::db::ConnInfo;
use crate::shell::{Shell, ShellError};

/// The external migrator failed.
pub type ExternalError = ShellError;

/// The `application_name` the external migrator's sessions carry (libpq's
/// `PGAPPNAME`), so snapguard can tell them from the application's.
pub const APPLICATION_NAME: &str = "snapguard-external-migrator";

/// Runs `command` through `sh -c` against `db`. On cancellation the command
/// gets SIGTERM and a grace period: it decides how to stop cleanly.
pub async fn run(command: &str, db: &ConnInfo, cancel: &Cancel) -> Result<(), ExternalError> {
    run_against(db, "migrations.command", command, None, cancel).await?;
    tracing::info!("the external migrator succeeded");
    Ok(())
}

/// How long `migrations.pending_command` may take: it only reads.
const PENDING_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Runs `migrations.pending_command` against `db`: exit 0 means nothing is
/// pending. Any other exit counts as pending, since the tools that answer
/// this (`rails db:abort_if_pending_migrations`, `manage.py migrate
/// --check`, `prisma migrate status`) exit non-zero both when something is
/// pending and when they cannot tell; the deploy then goes ahead as if
/// there were no such command. Only a command that cannot start is an error.
pub async fn has_pending(
    command: &str,
    db: &ConnInfo,
    cancel: &Cancel,
) -> Result<bool, ExternalError> {
    let key = "migrations.pending_command";
    match run_against(db, key, command, Some(PENDING_TIMEOUT), cancel).await {
        Ok(()) => Ok(false),
        Err(ShellError::Failed { status, .. }) => {
            tracing::info!(%status, "the external migrator reports pending migrations (or cannot tell)");
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// Runs `command` (from config `key`) through `sh -c` with the database in
/// `DATABASE_URL` and the libpq variables.
async fn run_against(
    db: &ConnInfo,
    key: &'static str,
    command: &str,
    timeout: Option<Duration>,
    cancel: &Cancel,
) -> Result<(), ShellError> {
    let url = db.secret_url();
    let mut env: Vec<(String, String)> = db
        .libpq_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.push(("DATABASE_URL".into(), url.expose().to_owned()));
    env.push(("PGAPPNAME".into(), APPLICATION_NAME.into()));
    let secrets = db.secret_forms();
    Shell {
        key,
        command,
        env,
        timeout,
        secrets: secrets.iter().map(String::as_str).collect(),
    }
    .run(Some(cancel))
    .await
}
