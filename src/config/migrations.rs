//! The values of `migrations.*` that name a choice: the folder's format,
//! the transaction mode, and what planning tolerates. Declared here, with
//! the keys; the migration engine (`migrate/`) works with them. Their words
//! are in [`super::choice`].

use super::choice::Choice;

/// A migrations layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `<version>_<name>.sql`.
    Snapguard,
    /// `<version>_<name>.up.sql`.
    GolangMigrate,
    /// `-- migrate:up` sections.
    Dbmate,
    /// `<version>_<name>.sql` / `.up.sql` with `-- no-transaction`.
    Sqlx,
    /// `<timestamp>_<name>/up.sql`.
    Diesel,
    /// `V<version>__<name>.sql`, `R__<name>.sql`.
    Flyway,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(Some(*self).word())
    }
}

/// `migrations.native_history`: what snapguard does with the history table
/// of the tool the folder's layout belongs to (sqlx, golang-migrate, dbmate,
/// diesel, Flyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NativeHistory {
    /// Read it (what it records is applied) and keep it current, in the
    /// tool's format, so the tool finds nothing to do afterwards.
    #[default]
    Keep,
    /// Read it, never write it.
    Read,
    /// Ignore it: snapguard's own history only. (Not `off`: YAML reads
    /// that as `false`.)
    Ignore,
}

/// `migrations.transaction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionMode {
    /// Each migration commits with its history row.
    PerMigration,
    /// All pending migrations in one transaction: a failure leaves the
    /// database exactly as it was.
    All,
}

impl TransactionMode {
    /// The value as `migrations.transaction` spells it.
    pub fn as_config(self) -> &'static str {
        self.word()
    }
}

/// What may be tolerated.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// An applied migration whose file changed is only a warning.
    pub allow_drift: bool,
    /// An applied migration whose file is gone is only a warning.
    pub allow_missing: bool,
    /// A pending migration older than the newest applied one may run.
    pub allow_out_of_order: bool,
}
