//! `snapshot.provider: pgbackrest`: the deploy's snapshot is a named
//! restore point in a pgBackRest repository, and the rollback a
//! point-in-time restore of the whole cluster to it.
//!
//! Before the migrations: `pg_create_restore_point('snapguard-<deploy>')`,
//! `pg_switch_wal()` so the segment holding it is complete, and
//! `pgbackrest check`, which waits until a segment reaches the repository:
//! only then is the point known to be restorable. The latest backup's label
//! is recorded with it (`--set`). The rollback stops the server with the
//! configured command, runs `pgbackrest restore --type=name --target=…
//! --set=… --delta --target-action=promote`, and starts it again; the
//! server replays the archive to the point and promotes.
//!
//! Every command runs through `sh -c` as the leader of its own process
//! group, as the hooks do; `exec` (`ssh postgres@db1`) prefixes those that
//! must run on the database host, and `user` runs them as the server's OS
//! user.

use std::time::Duration;

use tokio_postgres::Client;

use crate::config::PgbackrestConfig;
use crate::config::invocation::quote;
use crate::db::{ConnInfo, DbError};
use crate::process::{self, ProcessError};
use crate::shell::{Shell, ShellError};
use crate::store::{ObjectStore, StoreError};

/// What the rollback returns to: journaled before the migrations.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestorePoint {
    /// The stanza.
    pub stanza: String,
    /// The restore point's name (`snapguard-<deploy id>`).
    pub name: String,
    /// The WAL position it was created at.
    pub lsn: String,
    /// The backup the restore starts from (`--set`): the newest when the
    /// point was made.
    pub backup: String,
}

/// A restore point as the store keeps it (`restore-points/<name>.json`),
/// for `snapshots list`: the point, whose database and deploy, and when.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RestorePointRecord {
    /// The point.
    #[serde(flatten)]
    pub point: RestorePoint,
    /// The application database whose deploy made it.
    pub database: String,
    /// The deploy.
    pub deploy_id: String,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The store's prefix for restore point records.
const RECORDS: &str = "restore-points/";

impl RestorePointRecord {
    /// Writes the record to the store.
    pub async fn save(&self, store: &impl ObjectStore) -> Result<(), StoreError> {
        let body = serde_json::to_vec_pretty(self).expect("serializable");
        store
            .put(&format!("{RECORDS}{}.json", self.point.name), body.into())
            .await
    }

    /// Every record in the store, oldest first; one that does not read is
    /// left out with a warning.
    pub async fn list(store: &impl ObjectStore) -> Result<Vec<RestorePointRecord>, StoreError> {
        let mut out = Vec::new();
        for object in store.list(RECORDS).await? {
            let text = store.get(&object.key).await?;
            match serde_json::from_slice::<RestorePointRecord>(&text) {
                Ok(record) => out.push(record),
                Err(e) => {
                    tracing::warn!(key = %object.key, error = %e, "a restore point record that does not read; left out")
                }
            }
        }
        out.sort_by_key(|r| r.created_at);
        Ok(out)
    }
}

/// What preflight found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ready {
    /// The newest backup's label.
    pub backup: String,
    /// When it finished (Unix seconds).
    pub backup_stopped: i64,
    /// Every database of the cluster: a rollback restores them all.
    pub databases: Vec<String>,
}

/// How long the server has to come back after the restore: it replays the
/// WAL since the backup, which is the operator's to keep short (backups
/// often enough).
pub const BACK_WITHIN: Duration = Duration::from_secs(30 * 60);

/// Something pgBackRest or the server's archiving is not ready for.
#[derive(Debug, thiserror::Error)]
pub enum PgbackrestError {
    /// `archive_mode` is off.
    #[error(
        "archiving is off (`archive_mode` is `{0}`): a point-in-time restore needs every WAL segment in the repository; set `archive_mode = on` and `archive_command = 'pgbackrest --stanza=… archive-push %p'` and restart the server"
    )]
    ArchiveModeOff(String),
    /// No `archive_command`.
    #[error(
        "`archive_command` is empty: no WAL segment reaches the repository; set it to `pgbackrest --stanza=… archive-push %p`"
    )]
    NoArchiveCommand,
    /// The server's archiver's last attempt failed.
    #[error(
        "archiving is failing: the server's last attempt to archive `{wal}` failed at {at} ({failed} failure(s) since statistics were reset{}); see the server log for the `archive_command` error",
        .last_ok.as_ref().map(|t| format!(", last success at {t}")).unwrap_or_else(|| ", never a success".into())
    )]
    ArchivingFails {
        /// The segment.
        wal: String,
        /// When.
        at: String,
        /// How many attempts failed.
        failed: i64,
        /// The last success, if any.
        last_ok: Option<String>,
    },
    /// The role may not make a restore point.
    #[error(
        "role `{role}` cannot make a restore point: it needs `GRANT EXECUTE ON FUNCTION pg_create_restore_point(text), pg_switch_wal() TO {role}` (or superuser); see docs/permissions.md"
    )]
    NoRestorePointPrivilege {
        /// The connected role.
        role: String,
    },
    /// The stanza has no backup.
    #[error(
        "stanza `{stanza}` has no backup in the repository: a point-in-time restore starts from one; take it (`pgbackrest --stanza={stanza} backup`) first"
    )]
    NoBackup {
        /// The stanza.
        stanza: String,
    },
    /// `pgbackrest info` names the stanza with an error.
    #[error("pgBackRest reports stanza `{stanza}` as not usable: {message}")]
    StanzaError {
        /// The stanza.
        stanza: String,
        /// pgBackRest's words.
        message: String,
    },
    /// A pgBackRest command could not start, or failed.
    #[error(transparent)]
    Command(#[from] ProcessError),
    /// `pgbackrest info --output=json` was not what it documents.
    #[error("cannot read `pgbackrest info --output=json`")]
    Info(#[source] serde_json::Error),
    /// The stop or start command failed.
    #[error(transparent)]
    Hook(#[from] ShellError),
    /// The server did not come back after the restore.
    #[error(transparent)]
    NotBack(#[from] super::NotBack),
    /// `verify`: pgBackRest cannot restore here, or the backup's server
    /// cannot run here.
    #[error(
        "`snapshot.pgbackrest.verify` restores the restore point into a throwaway server on this machine before a rollback stops production, and this machine cannot: {why}"
    )]
    CannotVerifyHere {
        /// What is missing.
        why: String,
    },
    /// `verify`: the restore point did not come back in a throwaway
    /// server (WAL missing from the repository, a damaged backup).
    #[error(
        "restore point `{point}` could not be restored into a throwaway server here: the cluster is left as it is (not stopped); see the error below"
    )]
    NotVerified {
        /// The point.
        point: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `verify`: the restored copy is not the database as at the snapshot.
    #[error(
        "restore point `{point}` restored into a throwaway server holds `{database}` with a catalogue other than at the snapshot (or none): the cluster is left as it is (not stopped)"
    )]
    VerifiedOther {
        /// The point.
        point: String,
        /// The database.
        database: String,
    },
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// pgBackRest as configured.
pub struct Pgbackrest<'a> {
    config: &'a PgbackrestConfig,
}

impl<'a> Pgbackrest<'a> {
    /// Drives pgBackRest as `config` says.
    pub fn new(config: &'a PgbackrestConfig) -> Self {
        Pgbackrest { config }
    }

    /// Proves that a restore point made now could be restored: archiving
    /// on and succeeding (`pgbackrest check` archives a segment now: the one
    /// change it makes), the role allowed to make the point, and a backup of
    /// the stanza to start from.
    pub async fn preflight(&self, admin: &Client) -> Result<Ready, PgbackrestError> {
        let mode = setting(admin, "archive_mode").await?.unwrap_or_default();
        if mode != "on" && mode != "always" {
            return Err(PgbackrestError::ArchiveModeOff(mode));
        }
        // A role without `pg_read_all_settings` may not see it (`None`):
        // `pgbackrest check` below proves archiving either way.
        if setting(admin, "archive_command")
            .await?
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err(PgbackrestError::NoArchiveCommand);
        }
        let archiver = admin
            .query_one(
                "SELECT failed_count, last_failed_wal, last_failed_time::text, last_archived_time::text, \
                        coalesce(last_failed_time > last_archived_time, last_failed_time IS NOT NULL) \
                 FROM pg_stat_archiver",
                &[],
            )
            .await
            .map_err(DbError::query("reading pg_stat_archiver"))?;
        if archiver.get::<_, bool>(4) {
            return Err(PgbackrestError::ArchivingFails {
                wal: archiver.get::<_, Option<String>>(1).unwrap_or_default(),
                at: archiver.get::<_, Option<String>>(2).unwrap_or_default(),
                failed: archiver.get(0),
                last_ok: archiver.get(3),
            });
        }
        let allowed = admin
            .query_one(
                "SELECT current_user::text, \
                        has_function_privilege('pg_create_restore_point(text)', 'EXECUTE') \
                        AND has_function_privilege('pg_switch_wal()', 'EXECUTE')",
                &[],
            )
            .await
            .map_err(DbError::query("reading the role's privileges"))?;
        if !allowed.get::<_, bool>(1) {
            return Err(PgbackrestError::NoRestorePointPrivilege {
                role: allowed.get(0),
            });
        }
        let Newest {
            label: backup,
            stopped: backup_stopped,
            ..
        } = self.latest_backup().await?;
        // A segment archived now, not only none failing since the last:
        // `check` switches the WAL and waits for it in the repository.
        self.run(&["check"]).await?;
        let databases = admin
            .query(
                "SELECT datname::text FROM pg_database WHERE datallowconn ORDER BY datname",
                &[],
            )
            .await
            .map_err(DbError::query("listing the cluster's databases"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(Ready {
            backup,
            backup_stopped,
            databases,
        })
    }

    /// Makes the restore point `name`, completes its WAL segment, and
    /// waits until archiving is proven (`pgbackrest check`).
    pub async fn restore_point(
        &self,
        admin: &Client,
        name: &str,
    ) -> Result<RestorePoint, PgbackrestError> {
        let lsn: String = admin
            .query_one("SELECT pg_create_restore_point($1)::text", &[&name])
            .await
            .map_err(DbError::query("creating the restore point"))?
            .get(0);
        admin
            .execute("SELECT pg_switch_wal()", &[])
            .await
            .map_err(DbError::query("switching the WAL segment"))?;
        self.run(&["check"]).await?;
        let backup = self.latest_backup().await?.label;
        Ok(RestorePoint {
            stanza: self.config.stanza.clone(),
            name: name.to_owned(),
            lsn,
            backup,
        })
    }

    /// Restores the whole cluster to `point`: the server stopped, the data
    /// directory brought back to the backup (`--delta`: only what
    /// differs), and the server started to replay the archive up to the
    /// point and promote. Then waits until `app` accepts connections out of
    /// recovery.
    pub async fn restore(
        &self,
        point: &RestorePoint,
        app: &ConnInfo,
    ) -> Result<(), PgbackrestError> {
        self.hook("snapshot.pgbackrest.stop", &self.config.stop)
            .await?;
        self.run(&restore_args(point)).await?;
        self.hook("snapshot.pgbackrest.start", &self.config.start)
            .await?;
        Ok(super::wait_until_primary(app, BACK_WITHIN).await?)
    }

    /// The shell lines that restore `point` by hand, as [`Self::restore`]
    /// does: stop (when the server still runs), restore, start.
    pub fn restore_by_hand(&self, point: &RestorePoint) -> [String; 3] {
        [
            self.on_host(&self.config.stop, false),
            self.command(&restore_args(point)),
            self.on_host(&self.config.start, false),
        ]
    }

    /// The newest backup of the stanza.
    pub async fn latest_backup(&self) -> Result<Newest, PgbackrestError> {
        let out = self.run(&["--output=json", "info"]).await?;
        latest_of(&out, &self.config.stanza)
    }

    /// pgBackRest run on this machine, as `user` (the server's user:
    /// what owns the directory it restores into), whatever `user` and
    /// `exec` say of production's host: `rehearse --pgbackrest` restores a
    /// copy here.
    pub fn here(config: &PgbackrestConfig, user: Option<String>) -> PgbackrestConfig {
        PgbackrestConfig {
            user,
            exec: None,
            ..config.clone()
        }
    }

    /// The command that restores `backup` into an empty directory (`{data}`,
    /// as [`crate::ephemeral::Populate`] fills it in) and replays the WAL
    /// in the repository to its end: a copy of the cluster as of the last
    /// archived segment. Archiving is off on the copy (its WAL must never
    /// reach this repository); tablespaces go under `{dir}` instead of
    /// their original paths (production's, on a database host); symlinks
    /// (a `pg_wal` elsewhere) are restored as directories, pgBackRest's
    /// default.
    ///
    /// With `point`, the WAL is replayed up to that restore point instead,
    /// and the copy promoted there.
    pub fn restore_copy(&self, backup: &str, point: Option<&str>) -> Vec<String> {
        let mut argv = vec!["pgbackrest".to_owned()];
        if let Some(config) = &self.config.config {
            argv.push(format!("--config={config}"));
        }
        argv.extend([
            format!("--stanza={}", self.config.stanza),
            "--pg1-path={data}".to_owned(),
            format!("--set={backup}"),
            "--archive-mode=off".to_owned(),
            "--tablespace-map-all={dir}/tablespaces".to_owned(),
        ]);
        if let Some(point) = point {
            argv.extend([
                "--type=name".to_owned(),
                format!("--target={point}"),
                "--target-action=promote".to_owned(),
            ]);
        }
        argv.push("restore".to_owned());
        argv
    }

    /// `verify`, at preflight: pgBackRest answers here (as the user a
    /// throwaway server runs as) and PostgreSQL `major`'s server is
    /// installed, so the rollback can prove its restore point first.
    pub async fn preflight_verify(&self, major: u32) -> Result<(), PgbackrestError> {
        let cannot = |why: String| PgbackrestError::CannotVerifyHere { why };
        if !crate::ephemeral::has_server(major) {
            return Err(cannot(format!(
                "PostgreSQL {major}'s server binaries are not installed (`/usr/lib/postgresql/{major}/bin`)"
            )));
        }
        let config = Pgbackrest::here(self.config, process::is_root().then(|| "postgres".into()));
        Pgbackrest::new(&config)
            .latest_backup()
            .await
            .map_err(|e| {
                cannot(format!(
                    "`pgbackrest info` failed here: {}",
                    crate::error::chain(&e)
                ))
            })?;
        Ok(())
    }

    /// `verify`, before the rollback stops the server: restores `point`
    /// into a throwaway server of PostgreSQL `major` here and proves that
    /// `database` there has the catalogue the snapshot recorded
    /// (`expected`, [`super::guard::catalogue_fingerprint`]; a physical
    /// copy keeps every OID). The throwaway server is removed after.
    pub async fn verify(
        &self,
        point: &RestorePoint,
        major: u32,
        database: &str,
        expected: Option<&str>,
    ) -> Result<(), PgbackrestError> {
        let not_verified =
            |e: Box<dyn std::error::Error + Send + Sync>| PgbackrestError::NotVerified {
                point: point.name.clone(),
                source: e,
            };
        let config = Pgbackrest::here(self.config, process::is_root().then(|| "postgres".into()));
        let populate = crate::ephemeral::Populate {
            argv: Pgbackrest::new(&config).restore_copy(&point.backup, Some(&point.name)),
            start_within: BACK_WITHIN,
        };
        tracing::info!(point = %point.name, backup = %point.backup, "verifying the restore point in a throwaway server here before the cluster is stopped");
        let server = tokio::task::spawn_blocking(move || {
            crate::ephemeral::EphemeralServer::start(&crate::ephemeral::EphemeralOptions {
                major: Some(major),
                populate: Some(populate),
                ..Default::default()
            })
        })
        .await
        .expect("starting the server does not panic")
        .map_err(|e| not_verified(e.into()))?;
        let found = async {
            let client = crate::db::connect(&server.conn_info(database)).await?;
            super::guard::catalogue_fingerprint(&client).await
        }
        .await;
        drop(server);
        match (found, expected) {
            (Ok(found), Some(expected)) if found == expected => Ok(()),
            // No fingerprint at the snapshot: the database being there
            // is what can be proven.
            (Ok(_), None) => Ok(()),
            (Ok(_), Some(_)) => Err(PgbackrestError::VerifiedOther {
                point: point.name.clone(),
                database: database.to_owned(),
            }),
            (Err(e), _) => Err(not_verified(e.into())),
        }
    }

    async fn hook(&self, key: &'static str, command: &str) -> Result<(), PgbackrestError> {
        let line = self.on_host(command, false);
        Shell {
            key,
            command: &line,
            env: Vec::new(),
            timeout: Some(BACK_WITHIN),
            secrets: Vec::new(),
        }
        .run(None)
        .await
        .map_err(PgbackrestError::from)
    }

    /// The shell line for `pgbackrest <args>`.
    fn command(&self, args: &[impl AsRef<str>]) -> String {
        let mut words = vec!["pgbackrest".to_owned()];
        if let Some(config) = &self.config.config {
            words.push(format!("--config={config}"));
        }
        words.push(format!("--stanza={}", self.config.stanza));
        words.extend(args.iter().map(|a| a.as_ref().to_owned()));
        let line: Vec<String> = words.iter().map(|w| quote(w)).collect();
        self.on_host(&line.join(" "), true)
    }

    /// `line` where it must run: as `user` (pgBackRest's commands only:
    /// the stop and start commands say for themselves who runs them), and
    /// behind `exec`.
    fn on_host(&self, line: &str, as_user: bool) -> String {
        let line = match (&self.config.user, as_user) {
            (Some(user), true) if self.config.exec.is_none() && process::is_root() => {
                format!("runuser -u {} -- {line}", quote(user))
            }
            (Some(user), true) => format!("sudo -n -u {} -- {line}", quote(user)),
            _ => line.to_owned(),
        };
        match &self.config.exec {
            Some(prefix) => format!("{prefix} {}", quote(&line)),
            None => line,
        }
    }

    /// Runs `pgbackrest <args>` to its end; its standard output.
    async fn run(&self, args: &[impl AsRef<str>]) -> Result<String, PgbackrestError> {
        let command = self.command(args);
        tracing::info!(command = %command, "running pgBackRest");
        let out = process::output(
            std::path::Path::new("sh"),
            &["-c".to_owned(), command],
            Vec::new(),
        )
        .await?;
        Ok(out)
    }
}

/// `pgbackrest restore`'s arguments for `point`: to the named point from
/// its backup, only what differs rewritten, promoted once there.
fn restore_args(point: &RestorePoint) -> Vec<String> {
    vec![
        "--type=name".into(),
        format!("--target={}", point.name),
        format!("--set={}", point.backup),
        "--delta".into(),
        "--target-action=promote".into(),
        "restore".into(),
    ]
}

/// A stanza's newest backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newest {
    /// Its label.
    pub label: String,
    /// When it finished (Unix seconds).
    pub stopped: i64,
    /// The PostgreSQL major it is of, when pgBackRest says.
    pub major: Option<u32>,
}

/// The newest backup of `stanza` in `pgbackrest info --output=json`.
fn latest_of(json: &str, stanza: &str) -> Result<Newest, PgbackrestError> {
    #[derive(serde::Deserialize)]
    struct Stanza {
        name: String,
        #[serde(default)]
        backup: Vec<Backup>,
        #[serde(default)]
        db: Vec<Db>,
        status: Status,
    }
    #[derive(serde::Deserialize)]
    struct Backup {
        label: String,
        timestamp: Timestamp,
        #[serde(default)]
        database: Option<DbRef>,
    }
    #[derive(serde::Deserialize)]
    struct DbRef {
        id: i64,
    }
    #[derive(serde::Deserialize)]
    struct Db {
        id: i64,
        version: String,
    }
    #[derive(serde::Deserialize)]
    struct Timestamp {
        stop: i64,
    }
    #[derive(serde::Deserialize)]
    struct Status {
        code: i64,
        message: String,
    }
    let stanzas: Vec<Stanza> = serde_json::from_str(json).map_err(PgbackrestError::Info)?;
    let no_backup = || PgbackrestError::NoBackup {
        stanza: stanza.to_owned(),
    };
    let found = stanzas
        .into_iter()
        .find(|s| s.name == stanza)
        .ok_or_else(no_backup)?;
    // 0: ok; 2: no valid backups (reported as no backup below).
    if found.status.code != 0 && found.status.code != 2 {
        return Err(PgbackrestError::StanzaError {
            stanza: stanza.to_owned(),
            message: found.status.message,
        });
    }
    let newest = found
        .backup
        .into_iter()
        .max_by_key(|b| b.timestamp.stop)
        .ok_or_else(no_backup)?;
    let major = newest
        .database
        .and_then(|d| found.db.iter().find(|db| db.id == d.id))
        .and_then(|db| crate::pgtools::parse_major(&db.version));
    Ok(Newest {
        label: newest.label,
        stopped: newest.timestamp.stop,
        major,
    })
}

/// A setting as `pg_settings` shows it to this role: `None` when the role
/// may not see it (no error, unlike `SHOW`).
async fn setting(admin: &Client, name: &str) -> Result<Option<String>, DbError> {
    Ok(admin
        .query_opt("SELECT setting FROM pg_settings WHERE name = $1", &[&name])
        .await
        .map_err(DbError::query("reading the archiving settings"))?
        .map(|row| row.get(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(user: Option<&str>, exec: Option<&str>) -> PgbackrestConfig {
        PgbackrestConfig {
            stanza: "main".into(),
            config: Some("/etc/pgbackrest/prod db.conf".into()),
            user: user.map(str::to_owned),
            exec: exec.map(str::to_owned),
            stop: "pg_ctlcluster 16 main stop -m fast".into(),
            start: "pg_ctlcluster 16 main start".into(),
            verify: false,
        }
    }

    #[test]
    fn commands_are_quoted_run_as_the_user_and_behind_exec() {
        let plain = config(None, None);
        assert_eq!(
            Pgbackrest::new(&plain).command(&["check"]),
            "pgbackrest '--config=/etc/pgbackrest/prod db.conf' --stanza=main check"
        );
        let remote = config(Some("postgres"), Some("ssh postgres@db1"));
        let p = Pgbackrest::new(&remote);
        assert_eq!(
            p.command(&["--target=snapguard-x y", "restore"]),
            r#"ssh postgres@db1 'sudo -n -u postgres -- pgbackrest '\''--config=/etc/pgbackrest/prod db.conf'\'' --stanza=main '\''--target=snapguard-x y'\'' restore'"#
        );
        // The stop and start commands are the operator's own: not wrapped
        // in `user`, only in `exec`.
        assert_eq!(
            p.on_host("pg_ctlcluster 16 main stop", false),
            "ssh postgres@db1 'pg_ctlcluster 16 main stop'"
        );
    }

    #[test]
    fn the_newest_backup_of_the_stanza_is_the_one_restored_from() {
        let info = r#"[{"name":"other","backup":[{"label":"X","timestamp":{"start":1,"stop":9}}],"status":{"code":0,"message":"ok"}},
            {"name":"main","backup":[
                {"label":"20261203-100000F","timestamp":{"start":100,"stop":110},"type":"full","database":{"id":1,"repo-key":1}},
                {"label":"20261203-100000F_20261203-110000I","timestamp":{"start":200,"stop":210},"type":"incr","database":{"id":2,"repo-key":1}}
            ],"db":[{"id":1,"repo-key":1,"system-id":1,"version":"14"},{"id":2,"repo-key":1,"system-id":2,"version":"15"}],
            "status":{"code":0,"message":"ok"}}]"#;
        assert_eq!(
            latest_of(info, "main").unwrap(),
            Newest {
                label: "20261203-100000F_20261203-110000I".into(),
                stopped: 210,
                // The backup's own cluster's version (after an upgrade the
                // stanza lists both).
                major: Some(15),
            }
        );
        let empty =
            r#"[{"name":"main","backup":[],"status":{"code":2,"message":"no valid backups"}}]"#;
        assert!(matches!(
            latest_of(empty, "main"),
            Err(PgbackrestError::NoBackup { .. })
        ));
        let missing = r#"[{"name":"main","status":{"code":1,"message":"missing stanza path"}}]"#;
        assert!(matches!(
            latest_of(missing, "main"),
            Err(PgbackrestError::StanzaError { .. })
        ));
        assert!(matches!(
            latest_of("[]", "main"),
            Err(PgbackrestError::NoBackup { .. })
        ));
    }
}
