//! Watching the migrate step from outside. `rehearse` measures each
//! migration (WAL, rewrites, lock holds) through a [`MigrateObserver`]
//! plugged into the deploy's own migrate step, instead of applying the
//! migrations with a copy of that step.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use crate::error::BoxError;
use crate::migrate::migrator::{MigrateError, Outcome};

/// A future the observer returns (the trait is used as `dyn`).
pub type Observed<'a> = Pin<Box<dyn Future<Output = Result<(), BoxError>> + 'a>>;

/// One run of the migrator, as the observer sees it.
pub struct MigratorRun<'a> {
    /// What the run did, or why it failed.
    pub result: Result<&'a Outcome, &'a MigrateError>,
    /// When the run started and ended.
    pub from: Instant,
    /// See `from`.
    pub to: Instant,
}

/// Sees each run of the migrator in the migrate step.
pub trait MigrateObserver {
    /// Apply the pending migrations one per run, to see each on its own.
    /// Honoured only where that changes nothing about the outcome
    /// (`per-migration`, no external migrator): each commits on its own
    /// either way.
    fn one_at_a_time(&self) -> bool;

    /// Before each run. The observer opens its sessions here, not earlier:
    /// the local clone needs the database free of sessions.
    fn before(&mut self) -> Observed<'_>;

    /// After each run.
    fn after<'a>(&'a mut self, run: MigratorRun<'a>) -> Observed<'a>;

    /// The migrate step is over: close every session (the verify step and
    /// a rollback's swap need the database to themselves).
    fn done(&mut self);
}
