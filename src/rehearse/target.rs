//! Where a rehearsal runs: a throwaway local PostgreSQL (the default) or a
//! server the user names with `--target-url`. Either way the rehearsal
//! creates its own scratch database there and never touches any other.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use super::source::{self, Format, Local, SourceError};
use crate::config::PgbackrestConfig;
use crate::db::admin::{self, quote_ident};
use crate::db::{self, ConnInfo, DbError};
use crate::ephemeral::{EphemeralError, EphemeralOptions, EphemeralServer, Populate};
use crate::pgtools::{self, Program, ToolError};
use crate::process::ProcessError;
use crate::snapshot::pgbackrest::{Pgbackrest, PgbackrestError};
use crate::snapshot::restore::{self, RestoreError};

/// The scratch database could not be set up or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The throwaway server did not start.
    #[error("cannot start a throwaway PostgreSQL")]
    Ephemeral(#[from] EphemeralError),
    /// The target server refused.
    #[error(transparent)]
    Db(#[from] DbError),
    /// `--target-url` names a database that already exists.
    #[error(
        "`{0}` already exists on the target server; `rehearse` only creates its own scratch database (name a new one in `--target-url`, or drop it)"
    )]
    Exists(String),
    /// `--target-url` is the production database.
    #[error(
        "`--target-url` is the configured `database.url` ({0}): a rehearsal never runs on the production database"
    )]
    IsProduction(String),
    /// No suitable `pg_restore` / `psql`.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// `pg_restore` failed.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// `psql` failed on a plain dump.
    #[error("loading the plain SQL dump failed")]
    Psql(#[source] ProcessError),
    /// Reading the dump failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// pgBackRest could not say which backup to restore.
    #[error(transparent)]
    Pgbackrest(#[from] PgbackrestError),
    /// The backup's PostgreSQL cannot run here.
    #[error(
        "the newest backup of stanza `{stanza}` is of PostgreSQL {major}, whose server binaries are not installed here (a data directory runs only on its own major version)"
    )]
    NoServerFor {
        /// The stanza.
        stanza: String,
        /// The backup's major.
        major: u32,
    },
    /// pgBackRest does not say the backup's version.
    #[error(
        "`pgbackrest info` does not say which PostgreSQL the newest backup of stanza `{0}` is of"
    )]
    UnknownMajor(String),
    /// The restored cluster lacks the application database.
    #[error(
        "the cluster restored from stanza `{stanza}` has no database `{database}` (`database.url` names the one to rehearse on)"
    )]
    NotInCluster {
        /// The stanza.
        stanza: String,
        /// The database.
        database: String,
    },
}

/// A server with the rehearsal's scratch database on it.
pub struct Scratch {
    server: Option<EphemeralServer>,
    /// The scratch database.
    pub info: ConnInfo,
    /// Its server's maintenance database (create, rename, drop).
    pub admin: ConnInfo,
    /// The server's version.
    pub version: String,
    /// Where the client programs that load the dump are found
    /// (`database.pg_bin_dir`); searched for as `pgtools` does when `None`.
    pub bin_dir: Option<PathBuf>,
    /// How the server was chosen, for the report.
    pub described: String,
}

impl Scratch {
    /// Starts a throwaway server of the dump's major version (else the
    /// newest installed) and names the scratch database `name` on it.
    pub async fn throwaway(
        local: &Local,
        name: &str,
        bin_dir: Option<&Path>,
    ) -> Result<Scratch, TargetError> {
        let wanted = local.major();
        let server = tokio::task::spawn_blocking(move || {
            EphemeralServer::start(&EphemeralOptions {
                major: wanted,
                ..EphemeralOptions::default()
            })
        })
        .await
        .expect("starting the server does not panic")?;
        let described = match wanted {
            Some(w) if w == server.major() => {
                format!("throwaway PostgreSQL {w} (the dump's major version)")
            }
            Some(w) => format!(
                "throwaway PostgreSQL {} (the dump is from {w}, whose server binaries are not installed; the newest installed was used)",
                server.major()
            ),
            None => format!(
                "throwaway PostgreSQL {} (the dump does not say its version; the newest installed)",
                server.major()
            ),
        };
        let admin = server.conn_info("postgres");
        let info = server.conn_info(name);
        // Not the server's own directory: a dump made by a newer `pg_dump`
        // than this server's needs a `pg_restore` at least as new.
        let bin_dir = bin_dir.map(Path::to_path_buf);
        let version = {
            let client = db::connect(&admin).await?;
            db::server_version(&client).await?.to_string()
        };
        Ok(Scratch {
            server: Some(server),
            info,
            admin,
            version,
            bin_dir,
            described,
        })
    }

    /// Restores the newest pgBackRest backup of `config`'s stanza into a
    /// throwaway server of its major here, replays the archive's WAL to its
    /// end, and takes database `name` in it as the scratch database: a copy
    /// of the cluster as of its last archived segment, production's own
    /// statistics included. pgBackRest runs here as the server's user,
    /// whatever `user` and `exec` say of production's host.
    pub async fn restored(
        config: &PgbackrestConfig,
        name: &str,
        bin_dir: Option<&Path>,
    ) -> Result<Scratch, TargetError> {
        if config.exec.is_some() {
            tracing::info!(
                "`rehearse --pgbackrest` restores here, not behind `snapshot.pgbackrest.exec`: this machine needs pgBackRest, its configuration and the repository"
            );
        }
        let user = crate::process::is_root().then(|| "postgres".to_owned());
        let here = Pgbackrest::here(config, user);
        let pgbackrest = Pgbackrest::new(&here);
        let newest = pgbackrest.latest_backup().await?;
        let major = newest
            .major
            .ok_or_else(|| TargetError::UnknownMajor(config.stanza.clone()))?;
        if !crate::ephemeral::has_server(major) {
            return Err(TargetError::NoServerFor {
                stanza: config.stanza.clone(),
                major,
            });
        }
        tracing::info!(stanza = %config.stanza, backup = %newest.label, "restoring the newest pgBackRest backup here and replaying the archive to its end");
        let populate = Populate {
            argv: pgbackrest.restore_copy(&newest.label, None),
            start_within: crate::snapshot::pgbackrest::BACK_WITHIN,
        };
        let server = tokio::task::spawn_blocking(move || {
            EphemeralServer::start(&EphemeralOptions {
                major: Some(major),
                populate: Some(populate),
                ..EphemeralOptions::default()
            })
        })
        .await
        .expect("starting the server does not panic")?;
        let admin = server.conn_info("postgres");
        let client = db::connect(&admin).await?;
        if !admin::exists(&client, name).await? {
            return Err(TargetError::NotInCluster {
                stanza: config.stanza.clone(),
                database: name.to_owned(),
            });
        }
        let version = db::server_version(&client).await?.to_string();
        Ok(Scratch {
            info: server.conn_info(name),
            admin,
            described: format!(
                "PostgreSQL {major} restored here from pgBackRest backup {} of stanza `{}`, its archive replayed to the end",
                newest.label, config.stanza
            ),
            server: Some(server),
            version,
            bin_dir: bin_dir.map(Path::to_path_buf),
        })
    }

    /// Uses the server of `url`; its database name is the scratch
    /// database, which must not exist yet.
    pub async fn at(
        url: &ConnInfo,
        production: Option<&ConnInfo>,
        maintenance_db: &str,
        bin_dir: Option<&Path>,
    ) -> Result<Scratch, TargetError> {
        if production.is_some_and(|p| p.to_string() == url.to_string()) {
            return Err(TargetError::IsProduction(url.to_string()));
        }
        let admin = url.with_dbname(maintenance_db);
        let client = db::connect(&admin).await?;
        if admin::exists(&client, url.dbname()).await? {
            return Err(TargetError::Exists(url.dbname().to_owned()));
        }
        let version = db::server_version(&client).await?.to_string();
        Ok(Scratch {
            server: None,
            info: url.clone(),
            admin,
            described: format!("`--target-url` server, PostgreSQL {version}"),
            version,
            bin_dir: bin_dir.map(Path::to_path_buf),
        })
    }

    /// The scratch database's name.
    pub fn name(&self) -> &str {
        self.info.dbname()
    }

    /// On a throwaway server, creates the roles the dump refers to that it
    /// lacks, as `NOLOGIN` roles: ownership and grants then load as in
    /// production. Returns the roles created. Roles are cluster-wide and
    /// outlive the rehearsal, so on a `--target-url` server none are
    /// created: missing ones are warned about (the load then fails naming
    /// the role).
    pub async fn create_roles(&self, roles: &[String]) -> Result<Vec<String>, TargetError> {
        let client = db::connect(&self.admin).await?;
        let mut created = Vec::new();
        for role in roles {
            let exists = client
                .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[role])
                .await
                .map_err(DbError::query("reading roles"))?
                .is_some();
            if exists {
                continue;
            }
            if self.server.is_none() {
                tracing::warn!(
                    role,
                    "the dump refers to a role the target server lacks; create it, or the load fails"
                );
                continue;
            }
            match client
                .batch_execute(&format!("CREATE ROLE {} NOLOGIN", quote_ident(role)))
                .await
            {
                Ok(()) => created.push(role.clone()),
                Err(e) => {
                    tracing::warn!(role, error = %e, "cannot create a role the dump refers to");
                }
            }
        }
        Ok(created)
    }

    /// Creates the scratch database, loads `local` into it and gathers
    /// planner statistics; returns the seconds it took.
    pub async fn load(&self, local: &Local, jobs: u32) -> Result<f64, TargetError> {
        let started = Instant::now();
        let client = db::connect(&self.admin).await?;
        client
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(self.name())))
            .await
            .map_err(DbError::query(format!("creating `{}`", self.name())))?;
        let bin_dir = self.bin_dir.as_deref();
        let major = local.restore_major().unwrap_or(0);
        match local.format {
            Format::Archive => {
                let pg_restore = pgtools::find(Program::PgRestore, major, bin_dir)?;
                let server_major = pgtools::parse_major(&self.version).unwrap_or(0);
                restore::pg_restore_file(
                    &pg_restore,
                    &self.info,
                    server_major,
                    &local.path,
                    jobs,
                    false,
                )
                .await?;
            }
            Format::Plain(compression) => {
                let psql = pgtools::find_newest(Program::Psql, bin_dir)?;
                let server_major = pgtools::parse_major(&self.version).unwrap_or(0);
                let adapter = pgtools::PlainAdapter::new(server_major, &psql.version);
                let (path, info) = (local.path.clone(), self.info.clone());
                tokio::task::spawn_blocking(move || {
                    psql_file(&psql.path, &info, &path, compression, adapter)
                })
                .await
                .expect("the loading thread does not panic")?;
            }
        }
        db::connect(&self.info)
            .await?
            .batch_execute("ANALYZE")
            .await
            .map_err(DbError::query(format!("ANALYZE on `{}`", self.name())))?;
        Ok(started.elapsed().as_secs_f64())
    }

    /// Drops the scratch database or stops the throwaway server; with
    /// `keep`, leaves it and returns how to reach and remove it.
    pub async fn finish(mut self, keep: bool) -> Option<String> {
        if keep {
            return Some(match self.server.take() {
                Some(server) => {
                    let url = server.url(self.name());
                    let stop = server.keep();
                    format!("kept: psql '{url}'\n  remove with: {stop}")
                }
                None => format!(
                    "kept: database `{}` on the target server; drop it with `DROP DATABASE {}`",
                    self.name(),
                    quote_ident(self.name())
                ),
            });
        }
        if self.server.is_none() {
            let dropped = match db::connect(&self.admin).await {
                Ok(client) => admin::drop_database(&client, self.name()).await,
                Err(e) => Err(e),
            };
            if let Err(e) = dropped {
                tracing::warn!(database = self.name(), error = %e, "cannot drop the scratch database");
            }
        }
        // The throwaway server stops and its directory goes when dropped.
        None
    }
}

/// Copies the dump line by line (bytes, not text: a dump need not be
/// UTF-8), blanking the lines `adapter` drops.
fn copy_adapted(
    mut reader: impl std::io::BufRead,
    out: &mut impl Write,
    adapter: pgtools::PlainAdapter,
) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(8192);
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        let text = String::from_utf8_lossy(&line);
        if adapter.keeps(number, &text) {
            out.write_all(&line)?;
        } else {
            out.write_all(b"\n")?;
        }
    }
}

/// `psql` reading the decompressed dump on stdin, stopping at the first
/// error (which it reports as `psql:<stdin>:LINE: ERROR: …`), with the
/// lines `adapter` drops blanked.
fn psql_file(
    psql: &Path,
    info: &ConnInfo,
    path: &Path,
    compression: crate::codec::Compression,
    adapter: pgtools::PlainAdapter,
) -> Result<(), TargetError> {
    let args = [
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "--no-password",
        "-d",
        info.dbname(),
        "-f",
        "-",
    ];
    let command = format!("{} {}", psql.display(), args.join(" "));
    let mut child = std::process::Command::new(psql)
        .args(args)
        .envs(info.libpq_env())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| {
            TargetError::Psql(ProcessError::Spawn {
                command: command.clone(),
                source,
            })
        })?;
    let reader =
        std::io::BufReader::with_capacity(1 << 20, source::open_decoded(path, compression)?);
    let mut stdin =
        std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().expect("stdin is piped"));
    // A write error means psql stopped early; its exit status says why.
    let _ = copy_adapted(reader, &mut stdin, adapter).and_then(|_| stdin.flush());
    drop(stdin);
    let out = child.wait_with_output().map_err(|source| {
        TargetError::Psql(ProcessError::Spawn {
            command: command.clone(),
            source,
        })
    })?;
    if out.status.success() {
        return Ok(());
    }
    // psql calls its input `<stdin>`; name the file instead.
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace("<stdin>", &path.display().to_string());
    let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
    Err(TargetError::Psql(ProcessError::Exited {
        command,
        status: out.status,
        stderr_tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    }))
}
