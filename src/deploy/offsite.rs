//! The clone-first window's store snapshot: `pg_dump` of the local clone,
//! streamed to the store while the migrations, checks and release run
//! (`snapshot.offsite`: `before-maintenance-off` or `after`).
//!
//! The upload is one future polled beside each step ([`Upload::alongside`])
//! on the pipeline's own task: neither is ever dropped half-way, so a step
//! failure still finds the upload to wait for, and the upload's `pg_dump`
//! is recorded with the deploy's other children for `recover`. Its commit
//! is the manifest in the store, as for any snapshot; the journal records
//! the snapshot's id before the upload starts, and how far it got at each
//! journal write.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::Deployer;
use super::journal::Journal;
use crate::cancel::Cancel;
use crate::db::{self, ConnInfo, admin};
use crate::error::{BoxError, Error, chain};
use crate::snapshot::take::{Frozen, SnapshotError, SnapshotRequest, Snapshotter};
use crate::snapshot::{Manifest, SnapshotId, dump_key, manifest_key};
use crate::store::{ObjectStore, Store, StoreError};

type Running<'s> = Pin<Box<dyn Future<Output = Result<Manifest, SnapshotError>> + 's>>;

/// The deploy's upload of its clone, from start to commit.
pub(super) struct Upload<'s> {
    snapshotter: &'s Snapshotter<'s, Store>,
    admin_info: ConnInfo,
    running: Option<Running<'s>>,
    done: Option<Result<Manifest, SnapshotError>>,
    dumped: Arc<AtomicU64>,
    started: Option<Instant>,
}

impl<'s> Upload<'s> {
    /// No upload yet; [`Self::start`] begins one.
    pub(super) fn new(snapshotter: &'s Snapshotter<'s, Store>, admin_info: ConnInfo) -> Self {
        Upload {
            snapshotter,
            admin_info,
            running: None,
            done: None,
            dumped: Arc::new(AtomicU64::new(0)),
            started: None,
        }
    }

    /// Starts dumping `clone` (the database frozen as `frozen`) to the
    /// store. It makes progress only while the pipeline awaits
    /// [`Self::alongside`] or [`Self::finish`].
    pub(super) fn start(
        &mut self,
        clone: String,
        frozen: Frozen,
        request: SnapshotRequest,
        cancel: Cancel,
    ) {
        let snapshotter = self.snapshotter;
        let admin_info = self.admin_info.clone();
        let dumped = Arc::clone(&self.dumped);
        self.started = Some(Instant::now());
        self.running = Some(Box::pin(async move {
            snapshotter
                .take_clone(
                    &admin_info,
                    &clone,
                    &frozen,
                    &request,
                    &cancel,
                    Some(&dumped),
                )
                .await
        }));
    }

    /// Whether an upload was started (and not yet handed over by
    /// [`Self::finish`]).
    pub(super) fn pending(&self) -> bool {
        self.running.is_some() || self.done.is_some()
    }

    /// Archive bytes dumped so far.
    pub(super) fn dumped(&self) -> u64 {
        self.dumped.load(Ordering::Relaxed)
    }

    /// The counter of archive bytes dumped, for the journal.
    pub(super) fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.dumped)
    }

    /// Seconds since the upload started.
    pub(super) fn seconds(&self) -> f64 {
        self.started.map_or(0.0, |t| t.elapsed().as_secs_f64())
    }

    /// Runs `work` to its end while the upload makes progress beside it.
    /// An upload that ends first is kept for [`Self::finish`]; `work` is
    /// never dropped.
    pub(super) async fn alongside<T>(&mut self, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        loop {
            let Some(running) = self.running.as_mut() else {
                return work.await;
            };
            tokio::select! {
                out = &mut work => return out,
                result = running.as_mut() => {
                    self.done = Some(result);
                    self.running = None;
                }
            }
        }
    }

    /// Waits for the upload to end and hands over its result; `None` when
    /// none was started.
    pub(super) async fn finish(&mut self) -> Option<Result<Manifest, SnapshotError>> {
        if let Some(running) = self.running.take() {
            self.done = Some(running.await);
        }
        self.done.take()
    }
}

/// Whether a deploy `recover` finishes has a store snapshot of the
/// database before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BeforeCopy {
    /// Committed, by the runner or by `recover` from the clone; or the
    /// deploy had no store snapshot to take beside its steps.
    Kept,
    /// Neither the upload nor the clone it was taken from is left: no copy
    /// of the database before the deploy exists anywhere.
    Lost(&'static str),
}

impl Deployer<'_> {
    /// `recover`: what became of the upload a dead runner left. A committed
    /// one (its manifest is in the store) is the deploy's snapshot; a
    /// half-done one is discarded, and with `finish` (the deploy had passed
    /// its steps, so the clone is still the only copy of the database
    /// before it) dumped again from the clone.
    pub(super) async fn recover_upload(
        &self,
        journal: &mut Journal,
        finish: bool,
        cancel: &Cancel,
    ) -> Result<BeforeCopy, Error> {
        let Some(record) = journal.snapshot.clone() else {
            return Ok(BeforeCopy::Kept);
        };
        let Some(offsite) = record.offsite.clone() else {
            return Ok(BeforeCopy::Kept);
        };
        let failed = |e: BoxError| Error::failed("recover", e);
        let id = SnapshotId::parse(&offsite.id).map_err(|e| failed(e.into()))?;
        let committed = self
            .store
            .size(&manifest_key(&id))
            .await
            .map_err(|e| failed(e.into()))?
            .is_some();
        if !committed {
            // Nothing half-made may stay where a snapshot is looked for
            // (multipart parts were aborted before this).
            match self.store.delete(&dump_key(&id)).await {
                Ok(()) | Err(StoreError::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(error = %chain(&e), "cannot delete the half-done archive; without a manifest it is never offered for restore")
                }
            }
            tracing::warn!(snapshot = %id, dumped = %crate::progress::format_bytes(offsite.dumped_bytes), "the deploy's store snapshot had not committed; its half-done upload was discarded");
        }
        let manifest = match (committed, finish, record.clone.as_deref()) {
            (true, _, _) => None,
            (false, false, _) => {
                self.record_upload(journal, None).await;
                return Ok(BeforeCopy::Kept);
            }
            (false, true, None) => {
                self.record_upload(journal, None).await;
                return Ok(BeforeCopy::Lost(
                    "its store snapshot never committed and it kept no clone to take it from",
                ));
            }
            (false, true, Some(clone)) => {
                let admin = db::connect(&self.admin_info)
                    .await
                    .map_err(|e| failed(e.into()))?;
                if !admin::exists(&admin, clone)
                    .await
                    .map_err(|e| failed(e.into()))?
                {
                    self.record_upload(journal, None).await;
                    return Ok(BeforeCopy::Lost(
                        "its store snapshot never committed and the clone it was taken from is gone",
                    ));
                }
                drop(admin);
                tracing::info!(snapshot = %id, clone, "taking the deploy's store snapshot from its clone again");
                let snapshotter = self.snapshotter().await.map_err(|e| failed(e.into()))?;
                let request = journal.snapshot_request();
                let manifest = snapshotter
                    .resume_clone(&self.admin_info, clone, &id, &request, cancel)
                    .await
                    .map_err(|e| failed(e.into()))?;
                Some(manifest.id.to_string())
            }
        };
        self.record_upload(journal, Some(manifest.unwrap_or_else(|| id.to_string())))
            .await;
        Ok(BeforeCopy::Kept)
    }

    /// Journals the upload's end: committed as `id`, or failed.
    async fn record_upload(&self, journal: &mut Journal, id: Option<String>) {
        let Some(record) = journal.snapshot.as_mut() else {
            return;
        };
        match id {
            Some(id) => record.upload_committed(id),
            None => record.upload_failed(None),
        }
        if let Err(e) = journal.save(self.store).await {
            tracing::warn!(error = %chain(&e), "cannot write the journal");
        }
    }
}
