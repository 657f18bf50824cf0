//! The steps of a deploy and its rollback, by which the journal records
//! where a deploy stands and the reports name their rows. Here, below the
//! pipeline, so that the reports need not reach up into it.

/// The steps, in the order a deploy runs them, then the rollback's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Checking everything before anything changes (never journaled: a
    /// deploy's journal starts at maintenance on).
    Preflight,
    /// Switching maintenance on.
    MaintenanceOn,
    /// Taking the snapshot (and the local clone).
    Snapshot,
    /// Applying migrations.
    Migrate,
    /// Running the after and compare checks.
    Verify,
    /// Running `release.command`.
    Release,
    /// Polling `release.health`.
    Health,
    /// Waiting for the store snapshot streamed from the local clone to
    /// commit (`snapshot.offsite`): before maintenance off, or after it.
    Offsite,
    /// Switching maintenance off after a success.
    MaintenanceOff,
    /// The deploy succeeded.
    Done,
    /// Rolling back: restoring the database.
    RestoreDatabase,
    /// Rolling back: `release.rollback`.
    ReleaseRollback,
    /// Rolling back: switching maintenance off.
    RollbackMaintenanceOff,
    /// The rollback finished.
    RolledBack,
    /// `rehearse --drill`: the steps passed and the rollback is next.
    Drill,
    /// `recover --accept-current`: the database kept as it is.
    AcceptCurrent,
}

impl Step {
    /// The name used in logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::MaintenanceOn => "maintenance on",
            Step::Snapshot => "snapshot",
            Step::Migrate => "migrate",
            Step::Verify => "verify",
            Step::Release => "release",
            Step::Health => "health",
            Step::Offsite => "offsite snapshot",
            Step::MaintenanceOff => "maintenance off",
            Step::Done => "done",
            Step::RestoreDatabase => "rollback: database",
            Step::ReleaseRollback => "rollback: release",
            Step::RollbackMaintenanceOff => "rollback: maintenance off",
            Step::RolledBack => "rolled back",
            Step::Drill => "drill",
            Step::AcceptCurrent => "accept current",
        }
    }
}
