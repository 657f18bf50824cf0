//! `snapguard prune`: applies `snapshot.retention` to the store and to the
//! databases deploys and restores leave behind.
//!
//! A snapshot is kept when it is among the newest `keep_last` complete ones
//! or younger than `keep_days`, and always when an unfinished deploy needs
//! it. Failed and replaced databases (`<db>__failed_<id>`,
//! `<db>__replaced_<id>`) are dropped once older than `keep_days`; local
//! clones (`<db>__sg_<id>`) as soon as no unfinished deploy needs them.
//! Uploads left incomplete under the prefix (S3 multipart parts, which are
//! billed but invisible to listings, or partial files) are aborted once a
//! day old, the same grace an archive without a manifest gets; `recover`
//! aborts a killed deploy's own at once.

use chrono::{DateTime, NaiveDateTime, Utc};
use tokio_postgres::Client;

use crate::config::Retention;
use crate::db::{DbError, admin};
use crate::snapshot::{self, CatalogError, SnapshotId};
use crate::store::{IncompleteUpload, ObjectStore, StoreError};

/// What prune will delete, and why.
#[derive(Debug, Default, serde::Serialize)]
pub struct PrunePlan {
    /// Snapshots to delete, with the reason.
    pub snapshots: Vec<(SnapshotId, String)>,
    /// Databases to drop, with the reason.
    pub databases: Vec<(String, String)>,
    /// Incomplete uploads to abort, with the reason.
    pub uploads: Vec<(IncompleteUpload, String)>,
    /// Snapshots kept.
    pub kept: usize,
}

/// Prune failed.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// Listing snapshots failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Deleting from the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Listing or dropping databases failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// `prune --rds`: the RDS instance's snapguard snapshots (`listed`,
/// oldest first) that `retention` does not keep, with the reason; and how
/// many are kept. The same rule as the store's: kept when among the newest
/// `keep_last` or younger than `keep_days` (or of unknown age), and always
/// when an unfinished deploy's rollback needs it (`protected`). One RDS is
/// still taking is kept.
pub fn rds_plan(
    listed: &[crate::snapshot::rds::Listed],
    retention: Retention,
    protected: &[String],
    now: DateTime<Utc>,
) -> (Vec<(String, String)>, usize) {
    let cutoff = now - chrono::Duration::days(i64::from(retention.keep_days));
    let newest: Vec<&str> = listed
        .iter()
        .rev()
        .filter(|s| s.status == "available")
        .take(retention.keep_last)
        .map(|s| s.id.as_str())
        .collect();
    let mut delete = Vec::new();
    let mut kept = 0;
    for s in listed {
        let young = s.created.is_none_or(|t| t >= cutoff);
        let busy = s.status == "creating";
        if protected.contains(&s.id) || newest.contains(&s.id.as_str()) || young || busy {
            kept += 1;
        } else {
            delete.push((
                s.id.clone(),
                format!(
                    "older than {} days and not among the newest {}",
                    retention.keep_days, retention.keep_last
                ),
            ));
        }
    }
    (delete, kept)
}

/// Works out what to delete; changes nothing. `protected` are snapshot
/// ids and clone names unfinished deploys still need.
pub async fn plan(
    store: &impl ObjectStore,
    admin_client: &Client,
    database: &str,
    retention: Retention,
    protected: &[String],
    now: DateTime<Utc>,
) -> Result<PrunePlan, PruneError> {
    let mut out = PrunePlan::default();
    let cutoff = now - chrono::Duration::days(i64::from(retention.keep_days));
    let listed = snapshot::list(store).await?;
    let complete: Vec<&SnapshotId> = listed
        .iter()
        .filter(|l| l.manifest.as_ref().is_some_and(|m| m.database == database))
        .map(|l| &l.id)
        .collect();
    let newest: Vec<&SnapshotId> = complete
        .iter()
        .rev()
        .take(retention.keep_last)
        .copied()
        .collect();
    for l in &listed {
        let id = l.id.as_str().to_owned();
        let created = id_time(&id);
        if protected.contains(&id) {
            out.kept += 1;
            continue;
        }
        match &l.manifest {
            Some(m) if m.database != database => continue,
            Some(_) => {
                if newest.contains(&&l.id) || created.is_none_or(|t| t >= cutoff) {
                    out.kept += 1;
                } else {
                    out.snapshots.push((
                        l.id.clone(),
                        format!(
                            "older than {} days and not among the newest {}",
                            retention.keep_days, retention.keep_last
                        ),
                    ));
                }
            }
            // An upload that never got its manifest; give a snapshot in
            // progress a day before calling it abandoned.
            None if created.is_some_and(|t| t < now - chrono::Duration::days(1)) => {
                out.snapshots
                    .push((l.id.clone(), "incomplete (no manifest)".into()));
            }
            None => {}
        }
    }
    match store.incomplete_uploads("").await {
        Ok(uploads) => {
            for u in uploads {
                if let Some(started) =
                    snapshot::upload_started(&u).filter(|t| *t < now - chrono::Duration::days(1))
                {
                    let why = format!(
                        "upload of `{}` started {} and never finished",
                        u.key,
                        started.to_rfc3339()
                    );
                    out.uploads.push((u, why));
                }
            }
        }
        // Some S3-compatible servers do not list multipart uploads; a
        // bucket lifecycle rule for incomplete uploads covers them.
        Err(e) => {
            tracing::warn!(error = %crate::error::chain(&e), "cannot list incomplete uploads; a bucket lifecycle rule that aborts incomplete multipart uploads removes them")
        }
    }
    let rows = admin_client
        .query("SELECT datname FROM pg_database ORDER BY datname", &[])
        .await
        .map_err(DbError::query("listing databases"))?;
    for row in rows {
        let name: String = row.get(0);
        let Some((label, at)) = leftover(database, &name).map(|(l, t)| (l.to_owned(), t)) else {
            continue;
        };
        if protected.contains(&name) {
            continue;
        }
        match label.as_str() {
            "sg" => out
                .databases
                .push((name, "local clone of a finished deploy".into())),
            _ if at < cutoff => out.databases.push((
                name,
                format!("{label} database older than {} days", retention.keep_days),
            )),
            _ => {}
        }
    }
    Ok(out)
}

/// Deletes what `plan` listed: each snapshot's manifest first, so a
/// half-deleted snapshot is never offered for restore.
pub async fn execute(
    store: &impl ObjectStore,
    admin_client: &Client,
    plan: &PrunePlan,
) -> Result<(), PruneError> {
    for (id, _) in &plan.snapshots {
        store.delete(&snapshot::manifest_key(id)).await?;
        for object in store.list(&format!("snapshots/{}/", id.as_str())).await? {
            store.delete(&object.key).await?;
        }
        tracing::info!(snapshot = %id, "deleted");
    }
    for (upload, _) in &plan.uploads {
        store.abort_incomplete(upload).await?;
        tracing::info!(key = %upload.key, "aborted an incomplete upload");
    }
    for (name, _) in &plan.databases {
        admin::terminate_sessions(admin_client, name).await?;
        admin::drop_database(admin_client, name).await?;
        tracing::info!(database = %name, "dropped");
    }
    Ok(())
}

/// When a snapshot id or short id says it was made.
fn id_time(id: &str) -> Option<DateTime<Utc>> {
    let stamp = id.get(..16)?;
    NaiveDateTime::parse_from_str(&stamp.to_ascii_uppercase(), "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// `(label, time)` when `name` is a database snapguard left beside
/// `database`: `<db>__failed_<short>`, `<db>__replaced_<short>`,
/// `<db>__sg_<short>` (the database part possibly shortened).
fn leftover<'a>(database: &str, name: &'a str) -> Option<(&'a str, DateTime<Utc>)> {
    let (head, rest) = name.rsplit_once("__")?;
    if head.is_empty() || !database.starts_with(head) {
        return None;
    }
    let (label, short) = rest.split_once('_')?;
    if !matches!(label, "failed" | "replaced" | "sg") || short.len() != 21 {
        return None;
    }
    Some((label, id_time(short)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_snapshots_follow_the_store_retention_and_unfinished_deploys_keep_theirs() {
        let now = Utc::now();
        let at = |days: i64| Some(now - chrono::Duration::days(days));
        let snap = |id: &str, days: i64, status: &str| crate::snapshot::rds::Listed {
            id: id.into(),
            instance: "prod".into(),
            status: status.into(),
            created: at(days),
            allocated_gib: Some(20),
        };
        let listed = [
            snap("snapguard-prod-a", 90, "available"),
            snap("snapguard-prod-b", 80, "available"),
            snap("snapguard-prod-c", 70, "creating"),
            snap("snapguard-prod-d", 60, "available"),
            snap("snapguard-prod-e", 5, "available"),
        ];
        let retention = Retention {
            keep_last: 1,
            keep_days: 30,
        };
        let (delete, kept) = rds_plan(&listed, retention, &["snapguard-prod-b".into()], now);
        let ids: Vec<&str> = delete.iter().map(|(id, _)| id.as_str()).collect();
        // a and d: old, not the newest; b: an unfinished deploy's; c: still
        // being taken; e: young (and the newest).
        assert_eq!(ids, ["snapguard-prod-a", "snapguard-prod-d"]);
        assert_eq!(kept, 3);
        let none_young = Retention {
            keep_last: 2,
            keep_days: 0,
        };
        let (delete, _) = rds_plan(&listed, none_young, &[], now);
        let ids: Vec<&str> = delete.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["snapguard-prod-a", "snapguard-prod-b"]);
    }

    #[test]
    fn leftover_databases_are_recognised_by_name() {
        let (label, at) = leftover("shop", "shop__failed_20261121t050342z_3fa9").unwrap();
        assert_eq!(label, "failed");
        assert_eq!(at.to_rfc3339(), "2026-11-21T05:03:42+00:00");
        assert!(leftover("shop", "shop__sg_20261121t050342z_3fa9").is_some());
        assert!(leftover("shop", "shop__restore_20261121t050342z_3fa9").is_none());
        assert!(leftover("shop", "other__failed_20261121t050342z_3fa9").is_none());
        assert!(leftover("shop", "shop").is_none());
    }
}
