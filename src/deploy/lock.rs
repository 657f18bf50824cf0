//! The deploy lock as commands take it ([`crate::db::lock`] is the lock
//! itself): refused at once (exit 6) or after waiting, and, for commands
//! that must not run inside an unfinished deploy, refused while the
//! database records one.
//!
//! Every command that changes the database takes the same lock
//! ([`for_command`]): `deploy`, `recover`, `migrate`, `restore` and
//! `maintenance`, so none of them can change the database inside another's
//! window.

use tokio_postgres::Client;

use crate::db::lock::{held_by, holder, try_take};
use crate::db::{self, ConnInfo};
use crate::error::Error;

/// Connects to the maintenance database and refuses (exit 6) when another
/// run holds `app`'s lock, without taking it: `plan` sees what `deploy`
/// would see, and cannot itself make a deploy exit 6.
pub async fn unless_held(
    admin_info: &ConnInfo,
    app: &ConnInfo,
    step: &'static str,
) -> Result<Client, Error> {
    let admin = db::connect(admin_info)
        .await
        .map_err(|e| Error::nothing_changed(step, e))?;
    let held = held_by(&admin, app.dbname())
        .await
        .map_err(|e| Error::nothing_changed(step, e))?;
    if let Some(held) = held {
        return Err(Error::Locked {
            step,
            source: Box::new(held),
        });
    }
    Ok(admin)
}

/// Connects to the maintenance database and takes the lock of `app`'s
/// database for the command `step`: exit 6 at once when another snapguard
/// holds it. With `refuse_unfinished`, also refuses (exit 3) while the
/// database records an unfinished deploy ([`super::marker`]), which the
/// command would otherwise change under it. The lock lasts as long as the
/// returned session.
pub async fn for_command(
    admin_info: &ConnInfo,
    app: &ConnInfo,
    step: &'static str,
    refuse_unfinished: bool,
) -> Result<Client, Error> {
    waiting_for_command(
        admin_info,
        app,
        step,
        refuse_unfinished,
        std::time::Duration::ZERO,
    )
    .await
}

/// [`for_command`], waiting up to `wait` for the lock (`migrate` waits
/// `migrations.lock_wait`, as for its own migration lock).
pub async fn waiting_for_command(
    admin_info: &ConnInfo,
    app: &ConnInfo,
    step: &'static str,
    refuse_unfinished: bool,
    wait: std::time::Duration,
) -> Result<Client, Error> {
    let admin = db::connect(admin_info)
        .await
        .map_err(|e| Error::nothing_changed(step, e))?;
    let database = app.dbname();
    let deadline = std::time::Instant::now() + wait;
    loop {
        match try_take(&admin, database).await {
            Ok(Some(())) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Ok(None) => {
                return Err(Error::Locked {
                    step,
                    source: Box::new(holder(&admin, database).await),
                });
            }
            Err(e) => return Err(Error::nothing_changed(step, e)),
        }
    }
    if refuse_unfinished {
        // A missing database has no record; the command says so itself.
        if let Ok(client) = db::connect(app).await
            && let Some(blocked) = super::marker::not_clear(&client, database)
                .await
                .map_err(|e| Error::nothing_changed(step, e))?
        {
            return Err(Error::nothing_changed(step, blocked));
        }
    }
    Ok(admin)
}
