//! Taking a snapshot: `pg_dump -Fc -Z0` → compression and SHA-256 → a
//! streaming upload → a table-of-contents check of the stored archive → the
//! manifest.
//!
//! `pg_dump` compresses nothing itself (`-Z0`): its built-in gzip runs in
//! the same single thread that reads from the server, while our compressor
//! runs on another core. `docs/performance.md` has the measurements behind the choice.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use chrono::Utc;
use tokio::sync::mpsc;

use super::{
    Manifest, SnapshotId, TransferError, dump_key, list_toc, manifest::MANIFEST_VERSION,
    manifest_key,
};
use crate::cancel::Cancel;
use crate::codec::{self, CHANNEL_DEPTH};
use crate::config::SnapshotConfig;
use crate::db::{self, ConnInfo, DatabaseProperties, DbError, ServerVersion};
use crate::pgtools::{self, Program, Tool, ToolError};
use crate::process::{self, ProcessError};
use crate::progress::{Progress, Total, format_bytes, rate};
use crate::store::{ObjectStore, ObjectUpload, StoreError};

/// Taking a snapshot failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The database could not be reached or queried.
    #[error(transparent)]
    Db(#[from] DbError),
    /// No suitable `pg_dump` / `pg_restore`.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// The server is older than snapguard supports.
    #[error(transparent)]
    Unsupported(#[from] db::Unsupported),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database does not exist.
    #[error("database `{0}` does not exist")]
    NoDatabase(String),
    /// `pg_dump` failed; the upload was aborted.
    #[error("pg_dump failed; the partial upload was discarded and no manifest was written")]
    Dump(#[source] ProcessError),
    /// Compression failed.
    #[error("compressing the archive failed; the partial upload was discarded")]
    Compress(#[source] std::io::Error),
    /// Reading `pg_dump`'s output failed.
    #[error("reading pg_dump's output failed; the partial upload was discarded")]
    Read(#[source] std::io::Error),
    /// The upload failed and was aborted.
    #[error("uploading the archive failed; no manifest was written")]
    Upload(#[source] StoreError),
    /// The stored archive does not read back.
    #[error("the stored archive failed its check and was deleted; no manifest was written")]
    Check(#[source] TransferError),
    /// The manifest could not be written.
    #[error(
        "writing the manifest failed; the archive was deleted, so no incomplete snapshot is left"
    )]
    Manifest(#[source] StoreError),
    /// A signal cancelled the snapshot.
    #[error("cancelled by a signal; the partial upload was discarded and no manifest was written")]
    Cancelled,
}

/// The database as a snapshot records it, read at the moment it is
/// frozen: under maintenance, just before the local clone is made.
#[derive(Debug, Clone)]
pub struct Frozen {
    /// The snapshot's id (the time it was frozen and the database's name).
    pub id: SnapshotId,
    /// When it was frozen.
    pub created_at: chrono::DateTime<Utc>,
    /// The database-level properties a dump does not carry.
    pub properties: DatabaseProperties,
    /// The server's WAL position then.
    pub wal_lsn: Option<String>,
    /// About how large the dump will be, for the progress display.
    estimate: Total,
}

/// Context recorded in the manifest.
#[derive(Debug, Clone, Default)]
pub struct SnapshotRequest {
    /// The release running now.
    pub release_id: Option<String>,
    /// The deploy taking the snapshot.
    pub deploy_id: Option<String>,
    /// The newest applied migration.
    pub last_migration: Option<String>,
}

/// A snapshot ready to be taken: preflight passed.
pub struct Snapshotter<'a, S: ObjectStore> {
    store: &'a S,
    db: &'a ConnInfo,
    config: &'a SnapshotConfig,
    server: ServerVersion,
    pg_dump: Tool,
    pg_restore: Tool,
}

// By hand: a derived `Clone` would ask the store itself to be `Clone`.
impl<S: ObjectStore> Clone for Snapshotter<'_, S> {
    fn clone(&self) -> Self {
        Snapshotter {
            store: self.store,
            db: self.db,
            config: self.config,
            server: self.server,
            pg_dump: self.pg_dump.clone(),
            pg_restore: self.pg_restore.clone(),
        }
    }
}

impl<'a, S: ObjectStore> Snapshotter<'a, S> {
    /// Preflight, changing nothing: the database answers and exists, a
    /// `pg_dump` and `pg_restore` at least as new as the server exist, and the
    /// store is reachable and writable.
    pub async fn prepare(
        store: &'a S,
        db: &'a ConnInfo,
        config: &'a SnapshotConfig,
        bin_dir: Option<&std::path::Path>,
    ) -> Result<Self, SnapshotError> {
        let client = db::connect(db).await?;
        let server = db::server_version(&client).await?;
        server.check_supported()?;
        let pg_dump = pgtools::find(Program::PgDump, server.major(), bin_dir)?;
        let pg_restore = pgtools::find(Program::PgRestore, pg_dump.major, bin_dir)?;
        tracing::info!(
            server = %server,
            pg_dump = %pg_dump,
            pg_restore = %pg_restore,
            "client programs chosen"
        );
        store.check_writable().await?;
        Ok(Snapshotter {
            store,
            db,
            config,
            server,
            pg_dump,
            pg_restore,
        })
    }

    /// The server's version, as read when prepared.
    pub fn server(&self) -> ServerVersion {
        self.server
    }

    /// The chosen `pg_dump` and `pg_restore`, each with its version and
    /// path, for `plan` and the report.
    pub fn tools(&self) -> Vec<String> {
        vec![self.pg_dump.to_string(), self.pg_restore.to_string()]
    }

    /// Takes the snapshot of the database as it is now. On any failure
    /// nothing is left in the store that could be mistaken for a snapshot:
    /// the archive is aborted or deleted and no manifest is written.
    pub async fn take(
        &self,
        request: &SnapshotRequest,
        cancel: &Cancel,
    ) -> Result<Manifest, SnapshotError> {
        let frozen = self.freeze().await?;
        self.take_from(&frozen, self.db, request, cancel, None)
            .await
    }

    /// What the manifest records of the database as it is now, read before
    /// a copy of it is made ([`Self::take_from`] then dumps the copy).
    pub async fn freeze(&self) -> Result<Frozen, SnapshotError> {
        let client = db::connect(self.db).await?;
        let dbname = self.db.dbname();
        let properties = DatabaseProperties::read(&client, dbname)
            .await?
            .ok_or_else(|| SnapshotError::NoDatabase(dbname.to_owned()))?;
        let wal_lsn = db::current_wal_lsn(&client).await?;
        let estimate = dump_size_estimate(&client).await;
        drop(client);
        let created_at = Utc::now();
        Ok(Frozen {
            id: SnapshotId::new(dbname, created_at),
            created_at,
            properties,
            wal_lsn,
            estimate,
        })
    }

    /// Takes the snapshot `frozen` describes by dumping `source`: the
    /// database itself, or a copy of it made after `frozen` was read that
    /// nobody writes (the deploy's local clone). The manifest names the
    /// application database either way. `dumped` counts the archive bytes
    /// as they stream, for the deploy's journal.
    pub async fn take_from(
        &self,
        frozen: &Frozen,
        source: &ConnInfo,
        request: &SnapshotRequest,
        cancel: &Cancel,
        dumped: Option<&AtomicU64>,
    ) -> Result<Manifest, SnapshotError> {
        let dbname = self.db.dbname();
        let id = frozen.id.clone();
        let key = dump_key(&id);
        let started = Instant::now();
        tracing::info!(id = %id, uri = %self.store.uri(&key), source = source.dbname(), "snapshot started");

        let mut upload = self
            .store
            .upload(&key)
            .await
            .map_err(SnapshotError::Upload)?;
        // Dropping the pipeline on cancel kills pg_dump (`kill_on_drop`);
        // the upload is then aborted below like any other failure.
        let streamed = tokio::select! {
            result = self.stream_dump(source, &mut upload, frozen.estimate, dumped) => result,
            () = cancel.cancelled() => Err(SnapshotError::Cancelled),
        };
        let encoded = match streamed {
            Ok(encoded) => encoded,
            Err(e) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(error = %abort, "aborting the partial upload failed; a bucket lifecycle rule that removes incomplete multipart uploads cleans such parts up");
                }
                return Err(e);
            }
        };
        let stored = upload.finish().await.map_err(SnapshotError::Upload)?;
        let in_store = self.store.size(&key).await.map_err(SnapshotError::Upload)?;
        if in_store != Some(stored) {
            self.discard(&key).await;
            return Err(SnapshotError::Upload(StoreError::SizeMismatch {
                uri: self.store.uri(&key),
                written: stored,
                stored: in_store.unwrap_or(0),
            }));
        }

        let toc_entries =
            match list_toc(self.store, &key, self.config.compression, &self.pg_restore).await {
                Ok(n) => n,
                Err(e) => {
                    self.discard(&key).await;
                    return Err(SnapshotError::Check(e));
                }
            };

        let manifest = Manifest {
            manifest_version: MANIFEST_VERSION,
            id: id.clone(),
            database: dbname.to_owned(),
            server_version: self.server.to_string(),
            pg_dump_version: self.pg_dump.version.clone(),
            format: "custom".into(),
            compression: self.config.compression,
            compression_level: self.config.compression_level,
            dump_key: key.clone(),
            dump_uri: self.store.uri(&key),
            size_bytes: encoded.stored_bytes,
            archive_bytes: encoded.raw_bytes,
            sha256: encoded.sha256,
            toc_entries,
            created_at: frozen.created_at,
            completed_at: Utc::now(),
            wal_lsn: frozen.wal_lsn.clone(),
            release_id: request.release_id.clone(),
            last_migration: request.last_migration.clone(),
            deploy_id: request.deploy_id.clone(),
            database_properties: frozen.properties.clone(),
            snapguard_version: env!("CARGO_PKG_VERSION").into(),
        };
        let body = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
        if let Err(e) = self.store.put(&manifest_key(&id), Bytes::from(body)).await {
            self.discard(&key).await;
            return Err(SnapshotError::Manifest(e));
        }
        let elapsed = started.elapsed();
        tracing::info!(
            id = %id,
            size = %format_bytes(manifest.size_bytes),
            archive = %format_bytes(manifest.archive_bytes),
            seconds = format!("{:.1}", elapsed.as_secs_f64()),
            rate = %format!("{}/s", format_bytes(rate(manifest.archive_bytes, elapsed))),
            "snapshot complete"
        );
        Ok(manifest)
    }

    /// Takes the snapshot `frozen` describes from the local clone `clone`
    /// of the database. The clone is opened to connections for the dump
    /// and closed again after it: it is the rollback's way back, and a
    /// session on it would block the swap.
    pub async fn take_clone(
        &self,
        admin_info: &ConnInfo,
        clone: &str,
        frozen: &Frozen,
        request: &SnapshotRequest,
        cancel: &Cancel,
        dumped: Option<&AtomicU64>,
    ) -> Result<Manifest, SnapshotError> {
        let admin = db::connect(admin_info).await?;
        db::admin::set_allow_connections(&admin, clone, true).await?;
        let source = self.db.with_dbname(clone);
        let taken = self
            .take_from(frozen, &source, request, cancel, dumped)
            .await;
        if let Err(e) = db::admin::set_allow_connections(&admin, clone, false).await {
            tracing::warn!(error = %e, clone, "cannot close the local clone to connections again; a session on it would make the rollback's swap wait");
        }
        taken
    }

    /// Takes snapshot `id` of the local clone `clone` again, after the
    /// runner that started it died: the clone is the database as it was
    /// frozen (nobody writes it), and its properties are the database's,
    /// copied onto it when it was made. The WAL position of the moment is
    /// no longer known.
    pub async fn resume_clone(
        &self,
        admin_info: &ConnInfo,
        clone: &str,
        id: &SnapshotId,
        request: &SnapshotRequest,
        cancel: &Cancel,
    ) -> Result<Manifest, SnapshotError> {
        let admin = db::connect(admin_info).await?;
        let mut properties = DatabaseProperties::read(&admin, clone)
            .await?
            .ok_or_else(|| SnapshotError::NoDatabase(clone.to_owned()))?;
        drop(admin);
        // Closed to connections only while it waits to be swapped in.
        properties.allow_connections = true;
        let frozen = Frozen {
            id: id.clone(),
            created_at: id.created_at().unwrap_or_else(Utc::now),
            properties,
            wal_lsn: None,
            estimate: Total::Unknown,
        };
        self.take_clone(admin_info, clone, &frozen, request, cancel, None)
            .await
    }

    /// Runs `pg_dump` into `upload` through the encoder. Returns the
    /// encoder's totals, or the first failure in causal order: `pg_dump`'s
    /// own failure explains the others, so it wins.
    async fn stream_dump(
        &self,
        source: &ConnInfo,
        upload: &mut S::Upload,
        estimate: Total,
        dumped: Option<&AtomicU64>,
    ) -> Result<codec::Encoded, SnapshotError> {
        let args = vec![
            "--format=custom".to_owned(),
            "--compress=0".to_owned(),
            "--no-password".to_owned(),
            format!(
                "--lock-wait-timeout={}",
                self.config.lock_wait_timeout.as_millis()
            ),
        ];
        let command = process::describe(&self.pg_dump.path, &args);
        let mut child = tokio::process::Command::new(&self.pg_dump.path)
            .args(&args)
            .envs(source.libpq_env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| {
                SnapshotError::Dump(ProcessError::Spawn {
                    command: command.clone(),
                    source,
                })
            })?;
        let group = process::group::GroupGuard::track(child.id(), &command);
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");

        let (raw_tx, raw_rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
        let (out_tx, out_rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
        let encoder = codec::spawn_encoder(
            self.config.compression,
            self.config.compression_level,
            raw_rx,
            out_tx,
        );

        let source = source.clone();
        let read = async move {
            let mut progress = Progress::start("dump", estimate);
            // pg_dump -Fc opens one session, which the deploy's write guard
            // counts; its first byte of output is proof it connected (a
            // pg_dump that never did must not excuse someone else's).
            let mut counted = false;
            // `Ok(true)`: read to the end; `Ok(false)`: the encoder stopped
            // taking data because something downstream failed.
            let mut buf = BytesMut::new();
            let result = loop {
                match codec::next_chunk(&mut stdout, &mut buf).await {
                    Ok(None) => break Ok(true),
                    Ok(Some(chunk)) => {
                        if !counted {
                            count_dump_session(&source).await;
                            counted = true;
                        }
                        progress.add(chunk.len() as u64);
                        if let Some(dumped) = dumped {
                            dumped.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        }
                        if raw_tx.send(chunk).await.is_err() {
                            break Ok(false);
                        }
                    }
                    Err(e) => break Err(e),
                }
            };
            progress.finish();
            result
        };
        let write = async {
            // Owned here so a failed upload drops the receiver at once and
            // the stages before it stop instead of waiting for room.
            let mut out_rx = out_rx;
            while let Some(chunk) = out_rx.recv().await {
                upload.write(chunk).await?;
            }
            Ok::<(), StoreError>(())
        };
        let (read_result, write_result, stderr_tail) =
            tokio::join!(read, write, process::collect_stderr(stderr, "pg_dump"));
        let encoded = encoder.await.expect("encoder thread panicked");
        let status = child.wait().await.map_err(|source| {
            SnapshotError::Dump(ProcessError::Spawn {
                command: command.clone(),
                source,
            })
        })?;
        group.release();

        let dump_failed = || {
            SnapshotError::Dump(ProcessError::Exited {
                command,
                status,
                stderr_tail,
            })
        };
        // pg_dump failing on its own explains everything after it; pg_dump
        // failing because we stopped reading is a consequence, not a cause.
        let read_to_end = read_result.map_err(SnapshotError::Read)?;
        if !status.success() && read_to_end {
            return Err(dump_failed());
        }
        write_result.map_err(SnapshotError::Upload)?;
        let encoded = encoded.map_err(SnapshotError::Compress)?;
        if !status.success() {
            return Err(dump_failed());
        }
        Ok(encoded)
    }

    /// Deletes an archive that must not stay behind; failures are logged,
    /// since the archive is harmless without a manifest.
    async fn discard(&self, key: &str) {
        if let Err(e) = self.store.delete(key).await {
            tracing::warn!(error = %e, uri = %self.store.uri(key), "could not delete the archive; without a manifest it is never offered for restore");
        }
    }
}

/// About how many bytes `pg_dump -Fc -Z0` writes for the database: the
/// on-disk size of its tables (with their TOAST) and large objects, which
/// the rows' text form tracks within a small factor; indexes are rebuilt,
/// not dumped. Only for the progress display, so a failure to ask shows
/// no percentage instead of stopping the snapshot.
async fn dump_size_estimate(client: &tokio_postgres::Client) -> Total {
    const SQL: &str = "SELECT (coalesce(sum(pg_table_size(c.oid)), 0) \
                              + pg_table_size('pg_catalog.pg_largeobject'))::bigint \
                       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                       WHERE c.relkind = 'r' \
                         AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                         AND n.nspname NOT LIKE 'pg\\_toast%'";
    match client.query_one(SQL, &[]).await {
        Ok(row) => Total::Estimate(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)),
        Err(e) => {
            tracing::debug!(error = %e, "could not estimate the dump's size; progress shows bytes only");
            Total::Unknown
        }
    }
}

/// Counts the session a `pg_dump` of `source` opened, for the write guard:
/// in this process, and in the database's registry of snapguard's sessions
/// (through a session of its own, which registers itself too), so that a
/// `recover` after this process died counts it as well.
async fn count_dump_session(source: &ConnInfo) {
    db::count_session(source.dbname());
    match db::connect(source).await {
        Ok(client) => db::registry::register(&client).await,
        Err(e) => {
            tracing::debug!(error = %crate::error::chain(&e), "cannot register pg_dump's session")
        }
    }
}
