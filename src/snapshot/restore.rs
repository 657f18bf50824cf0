//! The manual emergency restore: download and verify a snapshot, restore it
//! into a new database created from `template0`, carry over the
//! database-level properties, then swap names so the restored database takes
//! the original name. The replaced database is kept, renamed, for forensics.
//!
//! `pg_restore --clean` into the live database is never used: it leaves
//! behind objects created after the snapshot and its exit status is not
//! reliable (DESIGN section 4).

use std::time::Instant;

use tokio_postgres::Client;

use super::{CatalogError, Manifest, TransferError, download_verified, resolve, transfer};
use crate::cancel::Cancel;
use crate::db::privileges::Capabilities;
use crate::db::swap::SwapError;
use crate::db::{self, ConnInfo, DbError, Session, admin};
use crate::pgtools::{self, Program, Tool, ToolError};
use crate::process::{self, ProcessError};
use crate::progress::{Counted, format_bytes};
use crate::scratch::{self, ScratchError};
use crate::store::ObjectStore;

/// PostgreSQL truncates identifiers longer than this many bytes.
const MAX_IDENTIFIER: usize = 63;

/// A restore failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The snapshot could not be found or read.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The database server failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// No suitable `pg_restore`.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// The role may not create, hand over and rename the databases a
    /// restore swaps.
    #[error(
        "role `{role}` cannot restore over `{database}`: it lacks {}; see docs/permissions.md",
        crate::db::privileges::describe(missing)
    )]
    Privileges {
        /// The connected role.
        role: String,
        /// The database to replace.
        database: String,
        /// Each missing capability with its grant.
        missing: Vec<crate::db::privileges::Missing>,
    },
    /// Download, checksum or archive check failed.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// Scratch space for the download is missing or too small.
    #[error(transparent)]
    Scratch(#[from] ScratchError),
    /// A scratch file could not be written.
    #[error("cannot write the scratch file `{}`", path.display())]
    ScratchFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A database with the name to restore into exists already.
    #[error("database `{0}` already exists; drop it or choose another name with `--to`")]
    TargetExists(String),
    /// A generated name would be longer than PostgreSQL allows.
    #[error("database name `{0}` is longer than 63 bytes")]
    NameTooLong(String),
    /// Sessions are connected to the database to replace.
    #[error("{} connected to `{database}`; they block the swap. Stop them, or pass `--terminate-sessions` to end them:\n{}", sessions_phrase(sessions.len()), sessions.iter().map(|s| format!("  {s}")).collect::<Vec<_>>().join("\n"))]
    SessionsConnected {
        /// The database.
        database: String,
        /// Who is connected.
        sessions: Vec<Session>,
    },
    /// `pg_restore` failed.
    #[error("pg_restore into `{database}` failed")]
    PgRestore {
        /// The database restored into.
        database: String,
        /// How it failed.
        #[source]
        source: ProcessError,
    },
    /// A signal cancelled the restore.
    #[error("cancelled by a signal before the swap")]
    Cancelled,
    /// The restore failed and the partial database could not be dropped.
    #[error(
        "{original}; dropping the partial database `{database}` also failed ({cleanup}); drop it by hand: `DROP DATABASE \"{database}\"`"
    )]
    CleanupFailed {
        /// The partial database.
        database: String,
        /// The restore's failure.
        original: Box<RestoreError>,
        /// Why the drop failed.
        cleanup: DbError,
    },
}

fn sessions_phrase(n: usize) -> String {
    if n == 1 {
        "1 session is".into()
    } else {
        format!("{n} sessions are")
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// A snapshot id or `latest`.
    pub snapshot: String,
    /// Restore side by side into this database instead of swapping.
    pub to: Option<String>,
    /// Skip owners and privileges (`pg_restore --no-owner --no-acl`), for
    /// another server whose roles differ.
    pub no_owner: bool,
    /// End sessions that block the swap.
    pub terminate_sessions: bool,
    /// `pg_restore -j`.
    pub jobs: u32,
    /// Skip `ANALYZE` after the restore.
    pub no_analyze: bool,
    /// What the replaced database is called: `<db>__<label>_<id>`;
    /// `replaced` when empty (a deploy's rollback says `failed`).
    pub replaced_label: &'static str,
    /// Drop a leftover `<db>__restore_<id>` of a restore that was killed
    /// (only for callers holding the database lock, which proves no
    /// restore is running).
    pub drop_leftover: bool,
}

/// What a restore will do, worked out before anything changes.
#[derive(Debug)]
pub struct RestorePlan {
    /// The snapshot.
    pub manifest: Manifest,
    /// The database the snapshot will replace (or sit beside).
    pub database: String,
    /// Where `pg_restore` writes.
    pub restore_into: String,
    /// The name the replaced database gets; `None` with `--to`.
    pub replaced_as: Option<String>,
    /// Whether `database` exists now.
    pub database_exists: bool,
    /// A killed restore's partial `restore_into`, dropped before starting.
    pub leftover: bool,
    pg_restore: Tool,
    server_major: u32,
    admin_info: ConnInfo,
    options: RestoreOptions,
}

impl RestorePlan {
    /// True when the restore replaces a live database (and so needs
    /// confirmation).
    pub fn is_destructive(&self) -> bool {
        self.replaced_as.is_some() && self.database_exists
    }

    /// A one-paragraph description for the confirmation prompt.
    pub fn describe(&self) -> String {
        let m = &self.manifest;
        let what = format!(
            "snapshot {} of `{}` taken {} ({}, PostgreSQL {})",
            m.id,
            m.database,
            m.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            format_bytes(m.size_bytes),
            m.server_version
        );
        match (&self.replaced_as, self.database_exists) {
            (Some(replaced), true) => format!(
                "Restore {what}\ninto `{}`, replacing the current `{}` (kept as `{replaced}`).",
                self.database, self.database
            ),
            (Some(_), false) => format!(
                "Restore {what}\nas `{}` (which does not exist now).",
                self.database
            ),
            (None, _) => format!(
                "Restore {what}\ninto the new database `{}`; `{}` is not touched.",
                self.restore_into, self.database
            ),
        }
    }
}

/// The outcome of a restore.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    /// The snapshot restored.
    pub snapshot_id: String,
    /// The database that now holds it.
    pub restored_into: String,
    /// Where the previous database went, if one was replaced.
    pub replaced_as: Option<String>,
    /// Roles missing on this server, whose settings or grants were skipped.
    pub skipped_roles: Vec<String>,
    /// Seconds spent downloading and verifying.
    pub download_seconds: f64,
    /// Seconds spent in `pg_restore`.
    pub pg_restore_seconds: f64,
    /// Seconds spent in `ANALYZE`.
    pub analyze_seconds: f64,
    /// Seconds for the whole restore.
    pub total_seconds: f64,
}

/// Works out the restore and checks everything that can be checked without
/// changing anything: the snapshot, the tools, the names, the sessions.
pub async fn plan(
    store: &impl ObjectStore,
    database: &ConnInfo,
    maintenance_db: &str,
    bin_dir: Option<&std::path::Path>,
    options: RestoreOptions,
) -> Result<RestorePlan, RestoreError> {
    let manifest = resolve(store, &options.snapshot).await?;
    let admin_info = database.with_dbname(maintenance_db);
    let client = db::connect(&admin_info).await?;
    let server = db::server_version(&client).await?;
    let archive_major = pgtools::parse_major(&manifest.pg_dump_version).unwrap_or(0);
    let pg_restore = pgtools::find(
        Program::PgRestore,
        server.major().max(archive_major),
        bin_dir,
    )?;

    let dbname = database.dbname().to_owned();
    let short = manifest.id.short();
    let (restore_into, replaced_as) = match &options.to {
        Some(to) => (to.clone(), None),
        None => (
            derived_name(&dbname, "restore", &short)?,
            Some(derived_name(
                &dbname,
                match options.replaced_label {
                    "" => "replaced",
                    label => label,
                },
                &short,
            )?),
        ),
    };
    if restore_into.len() > MAX_IDENTIFIER {
        return Err(RestoreError::NameTooLong(restore_into));
    }
    let leftover = admin::exists(&client, &restore_into).await?;
    if leftover && !(options.drop_leftover && options.to.is_none()) {
        return Err(RestoreError::TargetExists(restore_into));
    }
    // The archive is written out whole before `pg_restore` reads it.
    crate::scratch::ensure_room(manifest.archive_bytes)?;
    let database_exists = admin::exists(&client, &dbname).await?;
    if let (Some(replaced), true) = (&replaced_as, database_exists) {
        if admin::exists(&client, replaced).await? {
            return Err(RestoreError::TargetExists(replaced.clone()));
        }
        let role = Capabilities::read(&client, &dbname, server.major()).await?;
        let missing = role.missing_for_swap(&dbname);
        if !missing.is_empty() {
            return Err(RestoreError::Privileges {
                role: role.role,
                database: dbname,
                missing,
            });
        }
        let sessions = admin::sessions(&client, &dbname).await?;
        if !sessions.is_empty() && !options.terminate_sessions {
            return Err(RestoreError::SessionsConnected {
                database: dbname,
                sessions,
            });
        }
    }
    Ok(RestorePlan {
        manifest,
        database: dbname,
        restore_into,
        replaced_as,
        database_exists,
        leftover,
        pg_restore,
        server_major: server.major(),
        admin_info,
        options,
    })
}

/// `<db>__<what>_<short id>`, shortening the database part to stay within
/// PostgreSQL's identifier limit.
pub(crate) fn derived_name(db: &str, what: &str, short: &str) -> Result<String, RestoreError> {
    let suffix = format!("__{what}_{short}");
    let room = MAX_IDENTIFIER.saturating_sub(suffix.len());
    let mut head = db.to_owned();
    while head.len() > room {
        head.pop();
    }
    if head.is_empty() {
        return Err(RestoreError::NameTooLong(format!("{db}{suffix}")));
    }
    Ok(format!("{head}{suffix}"))
}

impl RestorePlan {
    /// Downloads, verifies, restores and (unless `--to`) swaps.
    ///
    /// Until the final rename the original database is untouched: any
    /// failure before it drops the partial database and leaves everything as
    /// it was. The checksum is verified before any database is created.
    pub async fn execute(
        self,
        store: &impl ObjectStore,
        cancel: &Cancel,
    ) -> Result<RestoreReport, RestoreFailure> {
        let started = Instant::now();
        let scratch =
            scratch::dir().map_err(|e| RestoreFailure::Verify(RestoreError::Scratch(e)))?;
        let archive = scratch.path().join("archive.dump");
        let file = std::fs::File::create(&archive).map_err(|source| {
            RestoreFailure::Verify(RestoreError::ScratchFile {
                path: archive.clone(),
                source,
            })
        })?;
        tracing::info!(snapshot = %self.manifest.id, uri = %store.uri(&self.manifest.dump_key), "downloading");
        let decoded = download_verified(
            store,
            &self.manifest,
            std::io::BufWriter::with_capacity(1 << 20, file),
        )
        .await
        .map_err(|e| RestoreFailure::Verify(self.local_or_transfer(e)))?;
        transfer::list_toc_file(&archive, &self.pg_restore)
            .await
            .map_err(|e| RestoreFailure::Verify(e.into()))?;
        let download_seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            sha256 = %decoded.sha256,
            archive = %format_bytes(decoded.raw_bytes),
            seconds = format!("{download_seconds:.1}"),
            "download verified"
        );

        let mut client = db::connect(&self.admin_info)
            .await
            .map_err(|e| RestoreFailure::Verify(e.into()))?;
        if self.leftover {
            tracing::warn!(database = %self.restore_into, "dropping the partial database a killed restore left behind");
            admin::terminate_sessions(&client, &self.restore_into)
                .await
                .map_err(|e| RestoreFailure::Verify(e.into()))?;
            admin::drop_database(&client, &self.restore_into)
                .await
                .map_err(|e| RestoreFailure::Verify(e.into()))?;
        }
        let props = &self.manifest.database_properties;
        admin::create_empty(&client, &self.restore_into, props)
            .await
            .map_err(|e| RestoreFailure::Verify(e.into()))?;
        // Dropping the restore on cancel kills pg_restore (`kill_on_drop`);
        // the partial database is then dropped like on any other failure.
        let restored = tokio::select! {
            result = self.restore_into_new(&client, &archive) => result,
            () = cancel.cancelled() => Err(RestoreError::Cancelled),
        };
        let (pg_restore_seconds, analyze_seconds, skipped_roles) = match restored {
            Ok(r) => r,
            Err(e) => return Err(RestoreFailure::Restore(self.drop_partial(&client, e).await)),
        };
        drop(scratch);

        if let Some(replaced) = &self.replaced_as {
            if let Err(e) = self.swap(&mut client, replaced).await {
                return Err(RestoreFailure::Restore(self.drop_partial(&client, e).await));
            }
            tracing::info!(database = %self.database, replaced_as = %replaced, "swapped: the restored database now has the original name");
        }
        Ok(RestoreReport {
            snapshot_id: self.manifest.id.to_string(),
            restored_into: if self.replaced_as.is_some() {
                self.database.clone()
            } else {
                self.restore_into.clone()
            },
            replaced_as: self.replaced_as.clone().filter(|_| self.database_exists),
            skipped_roles,
            download_seconds,
            pg_restore_seconds,
            analyze_seconds,
            total_seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// A full disk while writing the download is a full disk, named as
    /// such with the room needed; never a damaged snapshot.
    fn local_or_transfer(&self, e: TransferError) -> RestoreError {
        match e {
            TransferError::LocalWrite { source, .. }
                if source.kind() == std::io::ErrorKind::StorageFull =>
            {
                RestoreError::Scratch(ScratchError::NoRoom {
                    dir: scratch::base(),
                    needed: self.manifest.archive_bytes,
                    available: scratch::free_bytes(&scratch::base()).unwrap_or(0),
                })
            }
            e => e.into(),
        }
    }

    /// `pg_restore -j N`, then the database-level properties, then `ANALYZE`
    /// (a logical restore has no planner statistics, and swapping in a
    /// database without them gives production slow plans).
    async fn restore_into_new(
        &self,
        client: &Client,
        archive: &std::path::Path,
    ) -> Result<(f64, f64, Vec<String>), RestoreError> {
        let target = self.admin_info.with_dbname(&self.restore_into);
        tracing::info!(into = %self.restore_into, jobs = self.options.jobs, "pg_restore started");
        let started = Instant::now();
        pg_restore_file(
            &self.pg_restore,
            &target,
            self.server_major,
            archive,
            self.options.jobs,
            self.options.no_owner,
        )
        .await?;
        let pg_restore_seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            seconds = format!("{pg_restore_seconds:.1}"),
            "pg_restore finished"
        );

        let skipped = admin::apply_properties(
            client,
            &self.restore_into,
            &self.manifest.database_properties,
            self.options.no_owner,
        )
        .await?;
        if !skipped.is_empty() {
            tracing::warn!(roles = %skipped.join(", "), "roles missing on this server; their database settings and grants were skipped");
        }
        let analyze_started = Instant::now();
        if !self.options.no_analyze {
            let restored = db::connect(&target).await?;
            restored
                .batch_execute("ANALYZE")
                .await
                .map_err(DbError::query(format!(
                    "ANALYZE on `{}`",
                    self.restore_into
                )))?;
            tracing::info!(
                seconds = format!("{:.1}", analyze_started.elapsed().as_secs_f64()),
                "planner statistics gathered"
            );
        }
        Ok((
            pg_restore_seconds,
            if self.options.no_analyze {
                0.0
            } else {
                analyze_started.elapsed().as_secs_f64()
            },
            skipped,
        ))
    }

    /// Renames `<db>` → `<db>__replaced_<id>` and the restored database →
    /// `<db>` in one transaction.
    async fn swap(&self, client: &mut Client, replaced: &str) -> Result<(), RestoreError> {
        if !self.database_exists {
            admin::rename_all(client, &[(&self.restore_into, &self.database)]).await?;
            return Ok(());
        }
        crate::db::swap::swap_in(
            client,
            &self.database,
            &self.restore_into,
            replaced,
            self.options.terminate_sessions,
        )
        .await
        .map_err(Into::into)
    }

    /// Drops the partial database after a failure, keeping both errors if
    /// that fails too.
    async fn drop_partial(&self, client: &Client, error: RestoreError) -> RestoreError {
        match admin::drop_database(client, &self.restore_into).await {
            Ok(()) => {
                tracing::info!(database = %self.restore_into, "dropped the partial database; nothing else changed");
                error
            }
            Err(cleanup) => RestoreError::CleanupFailed {
                database: self.restore_into.clone(),
                original: Box::new(error),
                cleanup,
            },
        }
    }
}

/// `pg_restore -j N --exit-on-error` of a local archive into the existing,
/// empty database `target` on a server of `server_major`; the connection
/// secrets go through the environment. Shared with `rehearse`.
///
/// A `pg_restore` of 17 or later opens every session with `SET
/// transaction_timeout = 0`, which a server before 17 rejects; each such
/// session then stops at once under `--exit-on-error`. Against such a
/// server the restore runs without `--exit-on-error` and succeeds only if
/// every error it reported is that `SET` (the rest of the session runs
/// as it would have: the setting only lifts a timeout the older server
/// does not have). Any other error fails the restore as before.
pub(crate) async fn pg_restore_file(
    pg_restore: &Tool,
    target: &ConnInfo,
    server_major: u32,
    archive: &std::path::Path,
    jobs: u32,
    no_owner: bool,
) -> Result<(), RestoreError> {
    let database = target.dbname().to_owned();
    let tolerate = pgtools::sets_transaction_timeout(pg_restore.major, server_major);
    let mut args = vec![
        format!("--jobs={}", jobs.max(1)),
        "--no-password".to_owned(),
        format!("--dbname={database}"),
    ];
    if !tolerate {
        args.push("--exit-on-error".to_owned());
    }
    if no_owner {
        args.push("--no-owner".into());
        args.push("--no-acl".into());
    }
    // `--verbose` names each entry as it is restored: with the count of
    // entries in the archive's table of contents (`pg_restore -l`), that is
    // the progress of what is otherwise the longest silent phase.
    // Not listable (not a custom-format archive): no percentage; the
    // restore itself says what is wrong.
    let total = transfer::list_toc_file(archive, pg_restore)
        .await
        .ok()
        .map(|n| n as u64);
    args.push("--verbose".into());
    args.push(archive.display().to_string());
    let mut progress = total.map(|t| Counted::start("restore", "archive entries", t));
    let mut errors = ReportedErrors::default();
    let mut env = target.libpq_env();
    // The errors are told apart by pg_restore's own English text.
    env.push(("LC_ALL", "C".to_owned()));
    env.push(("LANGUAGE", "C".to_owned()));
    let result = process::run_with_lines(&pg_restore.path, &args, env, |line| {
        errors.see(line);
        if let Some(p) = progress.as_mut()
            && restores_an_entry(line)
        {
            p.advance();
        }
    })
    .await;
    let result = match result {
        Err(ProcessError::Exited { status, .. })
            if tolerate && status.code() == Some(1) && errors.only_transaction_timeout() =>
        {
            tracing::info!(
                pg_restore = %pg_restore.version,
                server_major,
                sessions = errors.total,
                "the older server rejected pg_restore's `SET transaction_timeout` in each session, as expected; nothing else failed"
            );
            Ok(())
        }
        other => other.map_err(|source| RestoreError::PgRestore { database, source }),
    };
    if let (Ok(()), Some(p)) = (&result, progress) {
        p.finish();
    }
    result
}

/// The errors `pg_restore` printed: every one, and those that were its
/// `SET transaction_timeout` rejected by an older server.
#[derive(Debug, Default)]
struct ReportedErrors {
    total: usize,
    transaction_timeout: usize,
}

impl ReportedErrors {
    /// Counts one stderr line. Each failed statement is an `error:`
    /// message followed by `Command was: <the statement>`. Parallel workers
    /// share stderr and pg_restore writes its `pg_restore: ` prefix apart
    /// from the message, so two workers' messages can interleave within a
    /// line (`pg_restore:pg_restore:  error: from TOC entry …`): the
    /// markers are counted wherever they are, not at the line's start.
    fn see(&mut self, line: &str) {
        self.total += line.matches("error:").count();
        self.transaction_timeout += line
            .matches("Command was: SET transaction_timeout = 0;")
            .count();
    }

    fn only_transaction_timeout(&self) -> bool {
        self.total > 0 && self.total == self.transaction_timeout
    }
}

/// Whether a `pg_restore --verbose` line reports one archive entry being
/// restored: an object created, a table's data loaded, or a statement
/// executed (`SEQUENCE SET`…). Serial and parallel restores both print
/// one of these per entry; the count is an estimate, kept below 100%
/// until pg_restore exits.
fn restores_an_entry(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("pg_restore: ") else {
        return false;
    };
    rest.starts_with("creating ")
        || rest.starts_with("processing data for table ")
        || rest.starts_with("executing ")
}

impl From<SwapError> for RestoreError {
    fn from(e: SwapError) -> Self {
        match e {
            SwapError::Db(e) => RestoreError::from(e),
            SwapError::Busy { database, sessions } => {
                RestoreError::SessionsConnected { database, sessions }
            }
        }
    }
}

/// How far a failed restore got, which decides the exit code. Either way the
/// original database is as it was.
#[derive(Debug)]
pub enum RestoreFailure {
    /// Failed while downloading or verifying: no database was created.
    Verify(RestoreError),
    /// Failed while restoring or swapping: the partial database was dropped
    /// (or the error says how to drop it).
    Restore(RestoreError),
}

#[cfg(test)]
mod tests {
    #[test]
    fn verbose_lines_that_count_as_entries() {
        use super::restores_an_entry;
        assert!(restores_an_entry(
            "pg_restore: creating TABLE \"public.accounts\""
        ));
        assert!(restores_an_entry(
            "pg_restore: processing data for table \"public.accounts\""
        ));
        assert!(restores_an_entry(
            "pg_restore: executing SEQUENCE SET accounts_id_seq"
        ));
        assert!(!restores_an_entry(
            "pg_restore: launching item 3355 TABLE DATA public accounts"
        ));
        assert!(!restores_an_entry(
            "pg_restore: connecting to database for restore"
        ));
    }

    use super::*;

    #[test]
    fn only_rejected_transaction_timeouts_are_forgiven() {
        let seen = |lines: &[&str]| {
            let mut errors = ReportedErrors::default();
            lines.iter().for_each(|l| errors.see(l));
            errors.only_transaction_timeout()
        };
        let rejected = [
            "pg_restore: error: could not execute query: ERROR:  unrecognized configuration parameter \"transaction_timeout\"",
            "Command was: SET transaction_timeout = 0;",
        ];
        assert!(seen(&rejected));
        assert!(seen(&[rejected[0], rejected[1], rejected[0], rejected[1]]));
        // Two workers' messages interleaved, as seen with `-j 2`.
        assert!(seen(&[
            "pg_restore: pg_restore: while PROCESSING TOC:",
            "from TOC entry 2798; 2604 16391 DEFAULT items id dep",
            "pg_restore:pg_restore:  error: from TOC entry 2798; 2604 16391 DEFAULT items id dep",
            "could not execute query: ERROR:  unrecognized configuration parameter \"transaction_timeout\"",
            rejected[1],
            rejected[0],
            rejected[1],
        ]));
        assert!(!seen(&[]), "a failure without errors is not forgiven");
        assert!(!seen(&[
            rejected[0],
            rejected[1],
            "pg_restore: error: could not execute query: ERROR:  relation \"t\" already exists",
            "Command was: CREATE TABLE public.t (x integer);",
        ]));
        assert!(!seen(&["pg_restore: error: connection to server failed"]));
    }

    #[test]
    fn derived_names_fit_the_identifier_limit() {
        let short = "20261121t050342z_3fa9";
        assert_eq!(
            derived_name("shop", "restore", short).unwrap(),
            "shop__restore_20261121t050342z_3fa9"
        );
        let long = "a".repeat(60);
        let name = derived_name(&long, "replaced", short).unwrap();
        assert_eq!(name.len(), MAX_IDENTIFIER);
        assert!(name.ends_with("__replaced_20261121t050342z_3fa9"));
    }
}
