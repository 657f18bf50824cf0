//! The local clone: `CREATE DATABASE <db>__sg_<id> TEMPLATE <db>` at
//! snapshot time, so a rollback is two renames, seconds whatever the size.
//!
//! `TEMPLATE` copies the database's contents but not its database-level
//! settings, privileges, owner, comment or connection limit; those are put
//! on the clone from the snapshot's manifest right after it is made.

use tokio_postgres::Client;

use crate::config::{CloneMethodSetting, LocalClone, SnapshotConfig};
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
    database: &str,
    database_bytes: u64,
    config: &SnapshotConfig,
) -> Result<Result<CloneMethod, String>, DbError> {
    let (unseen_limit, setting) = (config.clone_limit, config.clone_method);
    if config.local_clone == LocalClone::Never {
        return Ok(Err("`snapshot.local_clone: never`".into()));
    }
    // Read once: it decides both the room and how the files are made.
    let dir = files_directory(admin, role, database).await;
    let method = method(role, setting, dir.as_deref());
    if config.local_clone == LocalClone::Always {
        return Ok(Ok(method));
    }
    let Some(dir) = dir else {
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
            Ok(method)
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
    Ok(Ok(method))
}

/// Where `database`'s files live, and so where its clone's will (a clone
/// stays in its template's tablespace): the server's data directory, or
/// the directory of the database's own tablespace. Only when the role may
/// see it (superusers and `pg_read_all_settings`) and it is on this
/// machine.
async fn files_directory(admin: &Client, role: &Capabilities, database: &str) -> Option<String> {
    if !(role.superuser || role.read_all_settings) {
        return None;
    }
    let dir: String = admin
        .query_one(
            "SELECT CASE WHEN t.spcname IN ('pg_default', 'pg_global') \
                    THEN current_setting('data_directory') \
                    ELSE pg_tablespace_location(t.oid) END \
             FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace \
             WHERE d.datname = $1",
            &[&database],
        )
        .await
        .ok()?
        .get(0);
    std::path::Path::new(&dir).is_dir().then_some(dir)
}

/// How the clone's files are made: copied, or cloned by the file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloneMethod {
    /// Each file copied (`file_copy_method = copy`, the only way before
    /// 18): the clone takes time in proportion to the database.
    Copy {
        /// Why not cloned, for `plan` and the report.
        why: String,
    },
    /// `file_copy_method = clone` (PostgreSQL 18): the file system shares
    /// the blocks, so the clone takes the same time whatever the size.
    Clone {
        /// The data directory's file system.
        file_system: String,
    },
}

impl CloneMethod {
    /// `copy` or `clone`, as `file_copy_method` spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            CloneMethod::Copy { .. } => "copy",
            CloneMethod::Clone { .. } => "clone",
        }
    }
}

impl std::fmt::Display for CloneMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloneMethod::Copy { why } => write!(f, "file copy ({why})"),
            CloneMethod::Clone { file_system } => write!(
                f,
                "file clone (`file_copy_method = clone`; {file_system} shares blocks)"
            ),
        }
    }
}

/// Chooses how the clone's files are made. `file_copy_method = clone`
/// (PostgreSQL 18, settable by any role) makes `CREATE DATABASE … STRATEGY
/// FILE_COPY` ask the kernel to clone each file (`copy_file_range` on
/// Linux): on a file system that shares blocks (XFS with reflink, btrfs,
/// ZFS 2.2+) that is O(1) per file. Chosen only where the data directory's
/// file system can be seen and shares blocks; elsewhere the server's own
/// setting stands. `snapshot.clone_method` overrides the choice.
/// <https://www.postgresql.org/docs/18/runtime-config-resource.html#GUC-FILE-COPY-METHOD>
fn method(
    role: &Capabilities,
    setting: CloneMethodSetting,
    data_directory: Option<&str>,
) -> CloneMethod {
    if role.major < 18 {
        return CloneMethod::Copy {
            why: format!("PostgreSQL {} copies files; cloning came in 18", role.major),
        };
    }
    match setting {
        CloneMethodSetting::Auto => {}
        CloneMethodSetting::Clone => {
            return CloneMethod::Clone {
                file_system: "`snapshot.clone_method: clone`: the data directory's file system"
                    .into(),
            };
        }
        CloneMethodSetting::Copy => {
            return CloneMethod::Copy {
                why: "`snapshot.clone_method: copy`".into(),
            };
        }
    }
    let Some(dir) = data_directory else {
        return CloneMethod::Copy {
            why: "the data directory's file system cannot be seen from here".into(),
        };
    };
    match shares_blocks(dir) {
        Ok(file_system) => CloneMethod::Clone { file_system },
        Err(why) => CloneMethod::Copy { why },
    }
}

/// Whether the file system holding `dir` shares blocks between files:
/// `Ok(its name)`, or `Err(why not)`.
fn shares_blocks(dir: &str) -> Result<String, String> {
    let kind = std::process::Command::new("stat")
        .args(["-f", "-c", "%T", dir])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .ok_or_else(|| format!("the file system of `{dir}` could not be read"))?;
    match kind.as_str() {
        "btrfs" | "zfs" => Ok(kind),
        // XFS shares blocks when made with reflink (mkfs.xfs's default
        // since 2019); `xfs_info` says which. Where it cannot tell, clone:
        // without reflink the kernel copies each file instead
        // (`copy_file_range`), which still works.
        "xfs" => match xfs_reflink(dir) {
            Some(false) => Err(format!("`{dir}` is on XFS made without reflink")),
            Some(true) => Ok("XFS with reflink".into()),
            None => Ok("XFS (reflink not confirmed)".into()),
        },
        other => Err(format!(
            "`{dir}` is on {other}, which does not share blocks"
        )),
    }
}

/// `reflink=1` or `reflink=0` in `xfs_info`'s answer for the file system
/// holding `dir` (it takes the mount point, which `stat` names).
fn xfs_reflink(dir: &str) -> Option<bool> {
    let mount = std::process::Command::new("stat")
        .args(["-c", "%m", dir])
        .output()
        .ok()?;
    let mount = String::from_utf8_lossy(&mount.stdout).trim().to_owned();
    let out = std::process::Command::new("xfs_info")
        .arg(&mount)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text.find("reflink=")?;
    match text[at + "reflink=".len()..].chars().next()? {
        '1' => Some(true),
        '0' => Some(false),
        _ => None,
    }
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
/// block the rename). A clone that fails halfway is dropped. Returns how
/// its files were made (`clone` or `copy`): `method`, unless the server
/// could not clone.
pub async fn create(
    admin: &Client,
    database: &str,
    clone: &str,
    props: &DatabaseProperties,
    method: &CloneMethod,
) -> Result<&'static str, DbError> {
    // FILE_COPY copies the files after a checkpoint instead of writing the
    // whole database to the WAL (the PostgreSQL 15 default): much faster
    // for a large database, and no WAL burst for replicas.
    let strategy = if db::server_version(admin).await?.major() >= 15 {
        " STRATEGY FILE_COPY"
    } else {
        ""
    };
    let mut cloned = matches!(method, CloneMethod::Clone { .. });
    if cloned {
        // For this session only; CREATE DATABASE cannot run inside a
        // transaction, so no SET LOCAL. A server built without cloning
        // support rejects the value: the files are copied instead.
        if let Err(e) = admin.batch_execute("SET file_copy_method = clone").await {
            tracing::warn!(error = %e, "the server cannot clone files; copying them");
            cloned = false;
        }
    }
    let started = std::time::Instant::now();
    let created = admin
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE {}{strategy}",
            quote_ident(clone),
            quote_ident(database)
        ))
        .await
        .map_err(DbError::query(format!(
            "cloning `{database}` into `{clone}`"
        )));
    if cloned {
        let _ = admin.batch_execute("RESET file_copy_method").await;
    }
    created?;
    if let Err(e) = admin::apply_properties(admin, clone, props, false)
        .await
        .and(admin::set_allow_connections(admin, clone, false).await)
    {
        let _ = admin::drop_database(admin, clone).await;
        return Err(e);
    }
    let used = if cloned { "clone" } else { "copy" };
    tracing::info!(
        clone,
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        method = used,
        "local clone made"
    );
    Ok(used)
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
