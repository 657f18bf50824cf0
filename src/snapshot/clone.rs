//! The local clone: `CREATE DATABASE <db>__sg_<id> TEMPLATE <db>` at
//! snapshot time, so a rollback is two renames, seconds whatever the size.
//!
//! `TEMPLATE` copies the database's contents but not its database-level
//! settings, privileges, owner, comment or connection limit; those are put
//! on the clone from the snapshot's manifest right after it is made.

use tokio_postgres::Client;

use crate::config::LocalClone;
use crate::db::privileges::Capabilities;
use crate::db::{self, DatabaseProperties, DbError, admin, quote_ident};

/// The largest database `local_clone: auto` clones where the server's free
/// disk space cannot be seen and `snapshot.clone_limit` is unset: a clone
/// of a small database costs a managed server little room, and it turns
/// every rollback from a store restore into two renames.
pub const DEFAULT_UNSEEN_LIMIT: u64 = 1 << 30;

/// Whether to clone a database of `database_bytes`, and if not, why not
/// (for the log and the report). What the role may do is checked first by
/// preflight ([`Capabilities::missing_for_swap`]); this decides the room.
/// `unseen_limit` (`snapshot.clone_limit`, else [`DEFAULT_UNSEEN_LIMIT`])
/// is the largest database `auto` clones where the server's free space
/// cannot be seen (a managed server, or a role without
/// `pg_read_all_settings`): its operator knows the disk's headroom,
/// snapguard does not.
pub async fn decide(
    admin: &Client,
    role: &Capabilities,
    database_bytes: u64,
    mode: LocalClone,
    unseen_limit: Option<u64>,
) -> Result<Result<(), String>, DbError> {
    match mode {
        LocalClone::Never => return Ok(Err("`snapshot.local_clone: never`".into())),
        LocalClone::Always => return Ok(Ok(())),
        LocalClone::Auto => {}
    }
    // The data directory is visible to superusers and pg_read_all_settings;
    // its free space only when the server runs on this machine.
    let dir: Option<String> = if role.superuser || role.read_all_settings {
        admin
            .query_one("SELECT current_setting('data_directory')", &[])
            .await
            .ok()
            .map(|r| r.get(0))
    } else {
        None
    };
    let Some(dir) = dir.filter(|d| std::path::Path::new(d).is_dir()) else {
        let why = if role.superuser || role.read_all_settings {
            "the server's data directory is not on this machine".to_owned()
        } else {
            format!(
                "role `{}` cannot see the server's data directory (`GRANT pg_read_all_settings TO {}` shows it where the server runs on this machine)",
                role.role,
                quote_ident(&role.role)
            )
        };
        let (limit, named) = match unseen_limit {
            Some(limit) => (limit, "`snapshot.clone_limit`"),
            None => (DEFAULT_UNSEEN_LIMIT, "`snapshot.clone_limit`'s default"),
        };
        return Ok(if database_bytes <= limit {
            Ok(())
        } else {
            Err(format!(
                "the server's free disk space cannot be seen ({why}), and the database ({}) is larger than {named} ({}); set `snapshot.clone_limit` to the largest database its disk can hold twice, or `snapshot.local_clone: always`",
                crate::progress::format_bytes(database_bytes),
                crate::progress::format_bytes(limit)
            ))
        });
    };
    let Some(free) = free_bytes(&dir) else {
        return Ok(Err(format!("cannot read the free space of `{dir}`")));
    };
    // The clone, plus room for the migrations and the WAL they write.
    let needed = database_bytes + database_bytes / 5 + (1 << 30);
    if free < needed {
        return Ok(Err(format!(
            "not enough free disk space for a clone: {} free, {} needed",
            crate::progress::format_bytes(free),
            crate::progress::format_bytes(needed)
        )));
    }
    Ok(Ok(()))
}

/// Free bytes on the file system holding `dir` (`df -Pk`).
fn free_bytes(dir: &str) -> Option<u64> {
    let out = std::process::Command::new("df")
        .args(["-Pk", dir])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().nth(1)?;
    let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

/// Makes the clone and puts the database-level properties on it. Nobody
/// may connect to the clone until it is swapped in (a session on it would
/// block the rename). A clone that fails halfway is dropped.
pub async fn create(
    admin: &Client,
    database: &str,
    clone: &str,
    props: &DatabaseProperties,
) -> Result<(), DbError> {
    // FILE_COPY copies the files after a checkpoint instead of writing the
    // whole database to the WAL (the PostgreSQL 15 default): much faster
    // for a large database, and no WAL burst for replicas.
    let strategy = if db::server_version(admin).await?.major() >= 15 {
        " STRATEGY FILE_COPY"
    } else {
        ""
    };
    let started = std::time::Instant::now();
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE {}{strategy}",
            quote_ident(clone),
            quote_ident(database)
        ))
        .await
        .map_err(DbError::query(format!(
            "cloning `{database}` into `{clone}`"
        )))?;
    if let Err(e) = admin::apply_properties(admin, clone, props, false)
        .await
        .and(admin::set_allow_connections(admin, clone, false).await)
    {
        let _ = admin::drop_database(admin, clone).await;
        return Err(e);
    }
    tracing::info!(
        clone,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "local clone made"
    );
    Ok(())
}

/// Whether `info`'s role can connect to the clone `clone` (closed to
/// connections again after): what its dump needs. A `pg_hba.conf` that
/// names the databases it admits refuses the clone's name.
pub async fn reachable(
    admin: &Client,
    info: &crate::db::ConnInfo,
    clone: &str,
) -> Result<(), DbError> {
    admin::set_allow_connections(admin, clone, true).await?;
    let connected = db::connect(&info.with_dbname(clone)).await.map(drop);
    admin::set_allow_connections(admin, clone, false).await?;
    connected
}

/// Rolls back by putting `clone` in place of `database`, which is kept as
/// `failed`. Runs on a session of its own (the swap needs a transaction).
/// Shared by the deploy's rollback and the rehearsal's drill.
pub async fn swap_in(
    admin_info: &crate::db::ConnInfo,
    database: &str,
    clone: &str,
    failed: &str,
) -> Result<(), crate::snapshot::restore::RestoreError> {
    let mut swapper = db::connect(admin_info).await?;
    // The clone is closed to connections, but the deploy's own dump of it
    // may still hold one: a runner killed mid-upload leaves its backend
    // until the server notices. It is snapguard's, and the rename needs
    // the clone free.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !admin::sessions(&swapper, clone).await?.is_empty()
        && std::time::Instant::now() < deadline
    {
        admin::terminate_sessions(&swapper, clone).await?;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    admin::set_allow_connections(&swapper, clone, true).await?;
    crate::db::swap::swap_in(&mut swapper, database, clone, failed, true).await?;
    Ok(())
}
