//! The deploy journal: `deploys/<deploy-id>/journal.json` in the store,
//! rewritten *before* each step starts, so a runner killed at any point
//! leaves enough for `snapguard recover` to finish the rollback.
//!
//! A deploy is closed when its `report.json` exists beside the journal; a
//! journal without a report is unfinished, and `deploy` refuses to start
//! over it.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::maintenance::Engaged;
use crate::process::group::GroupRecord;
use crate::store::{ObjectStore, StoreError};

/// The journal format; bumped when a field changes meaning.
pub const JOURNAL_VERSION: u32 = 1;

pub use crate::report::step::Step;

/// Where the deploy stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Running the steps.
    Running,
    /// A step failed or a signal came; rolling back.
    RollingBack,
    /// The rollback could not finish: a human must act (exit 5).
    RollbackIncomplete,
    /// Closed: succeeded.
    Succeeded,
    /// Closed: rolled back cleanly.
    RolledBack,
}

/// The snapshot the rollback returns to.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SnapshotRecord {
    /// The store snapshot, once its manifest is written.
    pub id: Option<String>,
    /// The local clone `<db>__sg_<id>`, once created.
    pub clone: Option<String>,
    /// The write guard's baseline, taken just before `pg_dump` started.
    pub guard: crate::snapshot::guard::Baseline,
    /// The store snapshot streamed from the clone while the deploy runs
    /// (clone-first): recorded before its upload starts, so that
    /// `recover` knows which snapshot to look for.
    #[serde(default)]
    pub offsite: Option<OffsiteRecord>,
    /// `snapshot.provider: pgbackrest`: the restore point made before the
    /// migrations, which the rollback restores the cluster to.
    #[serde(default)]
    pub restore_point: Option<crate::snapshot::pgbackrest::RestorePoint>,
    /// `snapshot.provider: rds`: the instance's snapshot, recorded before
    /// it is requested, and how far the rollback's swap got.
    #[serde(default)]
    pub rds: Option<crate::snapshot::rds::RdsSnapshot>,
    /// `snapshot.provider: aurora-clone`: the cluster's snapshot and the
    /// time the rollback clones it at, recorded before it is requested,
    /// and how far the rollback's swap got.
    #[serde(default)]
    pub aurora: Option<crate::snapshot::aurora::AuroraClone>,
}

impl SnapshotRecord {
    /// Whether the rollback's RDS or Aurora swap began (the write guard
    /// let it): it goes on from what RDS shows, without asking again.
    pub fn swap_begun(&self) -> bool {
        self.rds.as_ref().is_some_and(|r| r.swap.is_some())
            || self.aurora.as_ref().is_some_and(|a| a.swap.is_some())
    }

    /// The clone's upload committed snapshot `id`: the rollback's store
    /// snapshot from now on.
    pub fn upload_committed(&mut self, id: String) {
        if let Some(offsite) = self.offsite.as_mut() {
            offsite.state = UploadState::Committed;
        }
        self.id = Some(id);
    }

    /// The clone's upload failed (`why`, when known) or was discarded.
    pub fn upload_failed(&mut self, why: Option<String>) {
        if let Some(offsite) = self.offsite.as_mut() {
            offsite.state = UploadState::Failed;
            if why.is_some() {
                offsite.error = why;
            }
        }
    }
}

/// The store snapshot taken from the local clone during the deploy. Its
/// manifest in the store is the commit: `recover` reads it there, since a
/// runner killed after the commit may not have journaled it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OffsiteRecord {
    /// `snapshot.offsite` as the deploy ran it.
    pub policy: crate::config::Offsite,
    /// The snapshot's id, chosen before the upload started.
    pub id: String,
    /// Where the upload stands, as of this journal write.
    pub state: UploadState,
    /// Archive bytes `pg_dump` had written, as of this journal write.
    #[serde(default)]
    pub dumped_bytes: u64,
    /// Why the upload failed, once it did.
    #[serde(default)]
    pub error: Option<String>,
}

/// Where the clone's upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// `pg_dump` of the clone is streaming to the store.
    Uploading,
    /// The manifest is written: the snapshot can be restored.
    Committed,
    /// The upload failed; nothing half-made was left for restore.
    Failed,
}

/// One step transition.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Transition {
    /// The step that started.
    pub step: Step,
    /// When.
    pub at: DateTime<Utc>,
}

/// The journal.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Journal {
    /// [`JOURNAL_VERSION`].
    pub version: u32,
    /// The deploy.
    pub deploy_id: String,
    /// The application database.
    pub database: String,
    /// The release being shipped.
    pub release: Option<String>,
    /// The release live before.
    pub previous_release: Option<String>,
    /// When the deploy started.
    pub started_at: DateTime<Utc>,
    /// Where it stands.
    pub state: State,
    /// The step running (or last run).
    pub step: Step,
    /// Every step started, in order.
    pub transitions: Vec<Transition>,
    /// Maintenance switches that were (being) turned on, in order.
    pub maintenance: Vec<Engaged>,
    /// The snapshot, once the Snapshot step started.
    pub snapshot: Option<SnapshotRecord>,
    /// `migrations.transaction: all`: a failed or interrupted Migrate step
    /// changed nothing, because its transaction never committed.
    pub all_or_nothing: bool,
    /// Whether `release.command` was started.
    pub released: bool,
    /// Why the deploy failed, once it did.
    pub failure: Option<String>,
    /// The rollback put the database back (or found nothing to restore).
    #[serde(default)]
    pub database_restored: bool,
    /// The rollback ran `release.rollback`.
    #[serde(default)]
    pub release_rolled_back: bool,
    /// Errors of the rollback, if it could not finish.
    pub rollback_errors: Vec<String>,
    /// Why the write guard refused to restore: what a restore would lose.
    /// `recover` honours it; only `--force` overrides.
    #[serde(default)]
    pub guard_refusal: Vec<String>,
    /// Sessions the deploy had opened to the database since the write
    /// guard's baseline, as of this journal write.
    #[serde(default)]
    pub own_sessions: u64,
    /// Sessions of other applications the write guard's sampler saw, as of
    /// this journal write.
    #[serde(default)]
    pub sightings: Vec<crate::snapshot::guard::Sighting>,
    /// snapguard's sessions open on the database at this journal write
    /// (they are in `own_sessions`): `recover`, which ends the runner's
    /// sessions, counts on top only those not listed here. `None` when
    /// they could not be listed: then it counts none on top.
    #[serde(default = "no_session_open")]
    pub own_open: Option<Vec<crate::snapshot::guard::SessionId>>,
    /// The migration files the deploy set out to apply, so that a way out
    /// that keeps the database as it is can say when only some of them are.
    #[serde(default)]
    pub pending: Vec<String>,
}

/// A journal written before sessions were recorded had none open.
fn no_session_open() -> Option<Vec<crate::snapshot::guard::SessionId>> {
    Some(Vec::new())
}

/// The journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The store failed.
    #[error("the deploy journal `{uri}`")]
    Store {
        /// The object.
        uri: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// A write gave up: during a rollback after an earlier write failed,
    /// the store gets a short deadline instead of its full retries.
    #[error(
        "the deploy journal was not written: the store did not answer in time after an earlier failure"
    )]
    TimedOut,
    /// It is not a journal this version can read.
    #[error("`{uri}` is not a deploy journal snapguard can read: {message}")]
    Corrupt {
        /// The object.
        uri: String,
        /// The parser's message.
        message: String,
    },
}

/// `deploys/<id>/journal.json`.
pub fn journal_key(deploy_id: &str) -> String {
    format!("deploys/{deploy_id}/journal.json")
}

/// `deploys/<id>/children.json`: the process groups of the deploy's
/// children while they run ([`crate::process::group`]).
pub fn children_key(deploy_id: &str) -> String {
    format!("deploys/{deploy_id}/children.json")
}

/// Writes the deploy's live child process groups.
pub async fn save_children(
    store: &impl ObjectStore,
    deploy_id: &str,
    groups: &[GroupRecord],
) -> Result<(), JournalError> {
    put_json(store, &children_key(deploy_id), &groups).await
}

/// Writes `value` as pretty JSON at `key`.
async fn put_json(
    store: &impl ObjectStore,
    key: &str,
    value: &impl serde::Serialize,
) -> Result<(), JournalError> {
    let body = serde_json::to_vec_pretty(value).expect("serializable");
    store
        .put(key, Bytes::from(body))
        .await
        .map_err(|source| JournalError::Store {
            uri: store.uri(key),
            source,
        })
}

/// The child process groups a deploy last recorded; none when it never
/// started one.
pub async fn read_children(
    store: &impl ObjectStore,
    deploy_id: &str,
) -> Result<Vec<GroupRecord>, JournalError> {
    let key = children_key(deploy_id);
    let bytes = match store.get(&key).await {
        Ok(b) => b,
        Err(StoreError::NotFound { .. }) => return Ok(Vec::new()),
        Err(source) => {
            return Err(JournalError::Store {
                uri: store.uri(&key),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| JournalError::Corrupt {
        uri: store.uri(&key),
        message: e.to_string(),
    })
}

/// `deploys/<id>/report.json`.
pub fn report_key(deploy_id: &str) -> String {
    format!("deploys/{deploy_id}/report.json")
}

/// Writes the deploy's final report beside its journal, which closes it.
pub async fn save_report(
    store: &impl ObjectStore,
    deploy_id: &str,
    report: &impl serde::Serialize,
) -> Result<(), JournalError> {
    put_json(store, &report_key(deploy_id), report).await
}

impl Journal {
    /// The journal of a deploy that starts now: at its first step, nothing
    /// done yet.
    pub fn begun(deploy_id: String, database: String, started_at: DateTime<Utc>) -> Journal {
        Journal {
            version: JOURNAL_VERSION,
            deploy_id,
            database,
            release: None,
            previous_release: None,
            started_at,
            state: State::Running,
            step: Step::MaintenanceOn,
            transitions: Vec::new(),
            maintenance: Vec::new(),
            snapshot: None,
            all_or_nothing: false,
            released: false,
            failure: None,
            database_restored: false,
            release_rolled_back: false,
            rollback_errors: Vec::new(),
            guard_refusal: Vec::new(),
            own_sessions: 0,
            sightings: Vec::new(),
            own_open: Some(Vec::new()),
            pending: Vec::new(),
        }
    }

    /// The deploy id's short form, for the names derived from it (the
    /// clone, the restore point, the RDS snapshot, the failed copy).
    pub fn short_id(&self) -> String {
        crate::snapshot::SnapshotId::parse(&self.deploy_id)
            .map(|id| id.short())
            .unwrap_or_default()
    }

    /// What the deploy's snapshot manifest records of it: the release
    /// running before it, and the deploy.
    pub fn snapshot_request(&self) -> crate::snapshot::take::SnapshotRequest {
        crate::snapshot::take::SnapshotRequest {
            release_id: self.previous_release.clone(),
            deploy_id: Some(self.deploy_id.clone()),
            last_migration: None,
        }
    }

    /// Records that `step` starts, and writes the journal.
    pub async fn begin(
        &mut self,
        step: Step,
        store: &impl ObjectStore,
    ) -> Result<(), JournalError> {
        self.step = step;
        self.transitions.push(Transition {
            step,
            at: Utc::now(),
        });
        self.save(store).await
    }

    /// Writes the journal as it is.
    pub async fn save(&self, store: &impl ObjectStore) -> Result<(), JournalError> {
        put_json(store, &journal_key(&self.deploy_id), self).await
    }

    /// Reads one journal.
    pub async fn read(store: &impl ObjectStore, deploy_id: &str) -> Result<Journal, JournalError> {
        let key = journal_key(deploy_id);
        let bytes = store
            .get(&key)
            .await
            .map_err(|source| JournalError::Store {
                uri: store.uri(&key),
                source,
            })?;
        let journal: Journal =
            serde_json::from_slice(&bytes).map_err(|e| JournalError::Corrupt {
                uri: store.uri(&key),
                message: e.to_string(),
            })?;
        if journal.version != JOURNAL_VERSION {
            return Err(JournalError::Corrupt {
                uri: store.uri(&key),
                message: format!(
                    "journal version {} (this snapguard reads {JOURNAL_VERSION})",
                    journal.version
                ),
            });
        }
        Ok(journal)
    }
}

/// What unfinished deploys still need, never pruned whatever the
/// retention says: each one's store snapshot and local clone (its
/// rollback's way back).
pub async fn protected(store: &impl ObjectStore) -> Result<Vec<String>, JournalError> {
    let mut protected = Vec::new();
    for id in unfinished(store).await? {
        if let Ok(j) = Journal::read(store, &id).await
            && let Some(s) = j.snapshot
        {
            protected.extend(s.id);
            protected.extend(s.clone);
            protected.extend(s.rds.map(|r| r.snapshot));
            protected.extend(s.aurora.map(|a| a.snapshot));
        }
    }
    Ok(protected)
}

/// The ids of deploys with a journal and no report, oldest first: one
/// listing, whatever the number of past deploys.
pub async fn unfinished(store: &impl ObjectStore) -> Result<Vec<String>, JournalError> {
    let listed = store
        .list("deploys/")
        .await
        .map_err(|source| JournalError::Store {
            uri: store.uri("deploys/"),
            source,
        })?;
    let mut journals = std::collections::BTreeSet::new();
    let mut reports = std::collections::BTreeSet::new();
    for object in listed {
        let Some(rest) = object.key.strip_prefix("deploys/") else {
            continue;
        };
        match rest.split_once('/') {
            Some((id, "journal.json")) => {
                journals.insert(id.to_owned());
            }
            Some((id, "report.json")) => {
                reports.insert(id.to_owned());
            }
            _ => {}
        }
    }
    Ok(journals.difference(&reports).cloned().collect())
}
