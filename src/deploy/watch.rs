//! What a process holding a deploy watches while it runs, and copies into
//! the journal at every step so that a later `recover` knows it too: the
//! write guard's sampler, the sessions this deploy opened to the database,
//! the bytes the clone's upload has dumped, and whether the store is
//! failing (which shortens the deadline of the journal writes after it).
//!
//! It is part of the run state ([`Prepared`](super::preflight::Prepared)
//! for a deploy; `recover` makes its own), passed to every step that
//! writes the journal, rather than hidden in the deployer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::Deployer;
use super::journal::{Journal, JournalError};
use crate::db;
use crate::snapshot::guard;

/// How long a journal write may take once one has failed (or the clone's
/// upload has): the store is likely down, and each write would otherwise
/// spend the SDK's retries (about ten seconds) while the application waits
/// in maintenance and the CI runner's grace runs out. A store that is back
/// answers well within it.
pub(super) const JOURNAL_WRITE_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Watch {
    /// The write guard's sampler, from the snapshot on.
    pub(super) sampler: Option<guard::Sampler>,
    /// Sessions to the database that earlier processes of this deploy
    /// opened since the baseline, and this process's own count when it
    /// started counting: what the journal's `own_sessions` adds up. `None`
    /// before the baseline (nothing to count yet).
    pub(super) own_from: Option<OwnFrom>,
    /// The archive bytes the clone's upload has dumped (clone-first).
    pub(super) dumped: Option<Arc<AtomicU64>>,
    /// A journal write or the clone's upload failed.
    store_failing: bool,
}

/// Where this process's count of its own sessions starts.
#[derive(Debug, Clone, Copy)]
pub(super) struct OwnFrom {
    /// Counted by the processes before this one (`recover` takes over a
    /// dead runner's count).
    pub(super) carried: u64,
    /// This process's session count when it started counting.
    pub(super) base: u64,
}

impl Watch {
    /// The store failed (a journal write, or the clone's upload).
    pub(super) fn store_failed(&mut self) {
        self.store_failing = true;
    }

    /// Copies into the journal what this process has seen: its sessions,
    /// the sampler's sightings and the upload's progress.
    pub(super) async fn copy_into(&self, deployer: &Deployer<'_>, journal: &mut Journal) {
        self.record_sessions(deployer, journal).await;
        if let Some(sampler) = &self.sampler {
            journal.sightings = sampler.sightings();
        }
        if let (Some(dumped), Some(offsite)) = (
            &self.dumped,
            journal.snapshot.as_mut().and_then(|s| s.offsite.as_mut()),
        ) {
            offsite.dumped_bytes = dumped.load(Ordering::Relaxed);
        }
    }

    /// Copies into the journal the sessions this deploy's processes opened
    /// to the database, and which of them are open now, so that `recover`
    /// counts them as snapguard's. Every journal write a later `recover`
    /// reads must come after the last session this process opens.
    pub(super) async fn record_sessions(&self, deployer: &Deployer<'_>, journal: &mut Journal) {
        let Some(from) = self.own_from else {
            return;
        };
        let database = deployer.db.dbname();
        journal.own_sessions =
            from.carried + db::sessions_opened(database).saturating_sub(from.base);
        // Read after the count: a session opened in between is then
        // open but uncounted, which `recover` can only under-explain.
        journal.own_open = match db::connect(&deployer.admin_info).await {
            Ok(admin) => guard::own_open(&admin, database).await.ok(),
            Err(_) => None,
        };
    }

    /// A store write of the journal (or report), given a short deadline
    /// once one has failed ([`JOURNAL_WRITE_AFTER_FAILURE`]); a failure
    /// marks the store as failing for the writes after it.
    pub(super) async fn write(
        &mut self,
        write: impl Future<Output = Result<(), JournalError>>,
    ) -> Result<(), JournalError> {
        let result = if self.store_failing {
            tokio::time::timeout(JOURNAL_WRITE_AFTER_FAILURE, write)
                .await
                .unwrap_or(Err(JournalError::TimedOut))
        } else {
            write.await
        };
        if result.is_err() {
            self.store_failing = true;
        }
        result
    }
}
