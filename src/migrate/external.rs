//! `migrations.command`: an external migrator (`bundle exec rails
//! db:migrate`, `python manage.py migrate`, `npx prisma migrate deploy`) run
//! instead of the built-in one. It gets the database as `DATABASE_URL` and
//! the libpq `PG*` variables; its output is streamed to snapguard's stderr
//! (stdout stays for snapguard's own result); its exit code decides.

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
        key: "migrations.command",
        command,
        env,
        timeout: None,
        secrets: secrets.iter().map(String::as_str).collect(),
    }
    .run(Some(cancel))
    .await?;
    tracing::info!("the external migrator succeeded");
    Ok(())
}
