//! Snapshots: `pg_dump` archives in the store, each committed by a manifest.
//!
//! Layout under the store prefix (DESIGN section 5):
//!
//! ```text
//! snapshots/<id>/dump            the archive (custom format, compressed)
//! snapshots/<id>/manifest.json   written last: the commit marker
//! ```
//!
//! A snapshot without a manifest is incomplete: it is listed as such and is
//! never offered for restore.

pub mod aurora;
pub mod clone;
pub mod guard;
mod id;
mod manifest;
pub mod pgbackrest;
pub mod rds;
pub mod restore;
pub mod take;
pub(crate) mod transfer;

pub use id::SnapshotId;
pub use manifest::Manifest;
pub use transfer::{TransferError, download_decoded, download_verified, list_toc, list_toc_file};

use crate::store::{ObjectStore, StoreError};

/// The key of a snapshot's archive.
pub fn dump_key(id: &SnapshotId) -> String {
    format!("snapshots/{id}/dump")
}

/// The key of a snapshot's manifest.
pub fn manifest_key(id: &SnapshotId) -> String {
    format!("snapshots/{id}/manifest.json")
}

/// A snapshot could not be found or read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No snapshot has this id.
    #[error("no snapshot `{id}` in the store; `snapguard snapshots list` shows the ones there are")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The snapshot exists but has no manifest.
    #[error(
        "snapshot `{id}` is incomplete (it has no manifest: the snapshot never finished) and cannot be restored"
    )]
    Incomplete {
        /// The id.
        id: String,
    },
    /// There are no complete snapshots at all.
    #[error("there are no complete snapshots in `{uri}`")]
    Empty {
        /// The store.
        uri: String,
    },
    /// A manifest does not parse.
    #[error("the manifest `{uri}` is not valid")]
    BadManifest {
        /// The manifest.
        uri: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The text given is not a snapshot id.
    #[error("`{0}` is not a snapshot id (they look like `20261121T050342Z-shop-3fa9`) or `latest`")]
    BadId(String),
}

/// A snapshot as listed.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its id.
    pub id: SnapshotId,
    /// The manifest, `None` when the snapshot is incomplete.
    pub manifest: Option<Manifest>,
}

/// Every snapshot in the store, oldest first, complete or not.
pub async fn list(store: &impl ObjectStore) -> Result<Vec<Listed>, CatalogError> {
    let objects = store.list("snapshots/").await?;
    let mut ids: Vec<(SnapshotId, bool)> = Vec::new();
    for object in &objects {
        let mut parts = object.key.split('/');
        let (Some("snapshots"), Some(id), Some(file)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(id) = SnapshotId::parse(id) else {
            continue;
        };
        let has_manifest = file == "manifest.json";
        match ids.iter_mut().find(|(i, _)| *i == id) {
            Some(entry) => entry.1 |= has_manifest,
            None => ids.push((id, has_manifest)),
        }
    }
    ids.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(ids.len());
    for (id, has_manifest) in ids {
        let manifest = if has_manifest {
            Some(read_manifest(store, &id).await?)
        } else {
            None
        };
        out.push(Listed { id, manifest });
    }
    Ok(out)
}

/// Reads and parses one manifest.
pub async fn read_manifest(
    store: &impl ObjectStore,
    id: &SnapshotId,
) -> Result<Manifest, CatalogError> {
    let key = manifest_key(id);
    let body = store.get(&key).await.map_err(|e| match e {
        StoreError::NotFound { .. } => CatalogError::Incomplete { id: id.to_string() },
        other => other.into(),
    })?;
    serde_json::from_slice(&body).map_err(|source| CatalogError::BadManifest {
        uri: store.uri(&key),
        source,
    })
}

/// Finds the snapshot `which` names: an id, or `latest` (the newest complete
/// snapshot).
pub async fn resolve(store: &impl ObjectStore, which: &str) -> Result<Manifest, CatalogError> {
    if which == "latest" {
        return list(store)
            .await?
            .into_iter()
            .rev()
            .find_map(|l| l.manifest)
            .ok_or_else(|| CatalogError::Empty {
                uri: store.uri("snapshots/"),
            });
    }
    let id = SnapshotId::parse(which).map_err(|_| CatalogError::BadId(which.to_owned()))?;
    match read_manifest(store, &id).await {
        Err(CatalogError::Incomplete { .. }) if store.size(&dump_key(&id)).await?.is_none() => {
            Err(CatalogError::NotFound { id: id.to_string() })
        }
        other => other,
    }
}

/// When an incomplete upload started, as best known: a snapshot's id says
/// when snapguard began it (some S3-compatible servers report no real
/// initiation time), else what the store reports.
pub fn upload_started(
    upload: &crate::store::IncompleteUpload,
) -> Option<chrono::DateTime<chrono::Utc>> {
    SnapshotId::of_key(&upload.key)
        .and_then(|id| id.created_at())
        .or(upload.initiated)
}

/// The server did not accept connections, out of recovery, in time.
#[derive(Debug, thiserror::Error)]
#[error(
    "the server did not come back within {within:?} after the restore (last: {last}); it may still be replaying WAL or starting: see its log"
)]
pub struct NotBack {
    /// How long was waited.
    pub within: std::time::Duration,
    /// The last thing seen.
    pub last: String,
}

/// Polls until `app` takes a connection and the server is out of recovery
/// (a restore finished: a point-in-time restore promoted, an instance
/// restored under the name the application connects to).
pub async fn wait_until_primary(
    app: &crate::db::ConnInfo,
    within: std::time::Duration,
) -> Result<(), NotBack> {
    let started = std::time::Instant::now();
    let mut last = String::from("not tried");
    while started.elapsed() < within {
        match crate::db::connect(app).await {
            Ok(client) => match client.query_one("SELECT pg_is_in_recovery()", &[]).await {
                Ok(row) if !row.get::<_, bool>(0) => return Ok(()),
                Ok(_) => last = "in recovery".into(),
                Err(e) => last = crate::error::chain(&e),
            },
            Err(e) => last = crate::error::chain(&e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Err(NotBack { within, last })
}
