//! Deciding what to apply: the migrations on disk against the history table.
//! Pure, so every rule is unit-tested without a database.

use super::source::{Migration, Version};
pub use crate::config::PlanOptions;

/// One row of `snapguard.schema_migrations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AppliedRow {
    /// The version, or `R__<name>` for a repeatable migration.
    pub version: String,
    /// The migration's name.
    pub name: String,
    /// The checksum of the SQL that was applied.
    pub checksum: String,
    /// `versioned`, `repeatable` or `baseline`.
    pub kind: String,
    /// When, UTC, `YYYY-MM-DD HH:MM:SS`.
    pub applied_at: String,
    /// How long it took.
    pub duration_ms: i64,
    /// The release it was applied for, if any.
    pub release_id: Option<String>,
    /// The history table that records it: snapguard's own, or the native
    /// tool's (whose checksum, if it keeps one, is in its own scheme).
    pub table: &'static str,
}

impl AppliedRow {
    /// Whether this row records migration `m`: the same version number, or
    /// the same repeatable.
    pub fn is_of(&self, m: &Migration) -> bool {
        match &m.version {
            Some(v) => {
                self.kind == "versioned"
                    && Version::parse(&self.version).is_some_and(|p| p.same_number(v))
            }
            None => self.version == history_key(m),
        }
    }

    /// Whether both rows record the same migration (or baseline).
    pub fn same_migration(&self, other: &AppliedRow) -> bool {
        self.kind == other.kind
            && match (
                Version::parse(&self.version),
                Version::parse(&other.version),
            ) {
                (Some(a), Some(b)) => a.same_number(&b),
                _ => self.version == other.version,
            }
    }

    /// Whether the file is unchanged since this row recorded it. A native
    /// tool that keeps no checksum cannot tell: the file counts as unchanged.
    pub fn unchanged(&self, m: &Migration) -> bool {
        if self.table == HISTORY_TABLE {
            self.checksum == m.checksum
        } else {
            self.checksum.is_empty() || m.native_checksum.as_deref() == Some(self.checksum.as_str())
        }
    }

    /// The file's checksum in this row's scheme.
    pub fn checksum_now(&self, m: &Migration) -> String {
        if self.table == HISTORY_TABLE {
            m.checksum.clone()
        } else {
            m.native_checksum.clone().unwrap_or_default()
        }
    }
}

/// snapguard's own history table.
pub const HISTORY_TABLE: &str = "snapguard.schema_migrations";

/// Why the folder and the database disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// An applied migration's file changed since it ran.
    #[error(
        "`{path}` (version {version}) changed after it was applied: its checksum is {now}, `{table}` recorded {then}; restore the file, or allow drift"
    )]
    Drift {
        /// The history table that recorded the old checksum.
        table: String,
        /// The version.
        version: String,
        /// The file.
        path: String,
        /// The checksum recorded when applied.
        then: String,
        /// The file's checksum now.
        now: String,
    },
    /// An applied migration's file is gone.
    #[error(
        "version {version} (`{name}`) was applied but its file is gone from the migrations folder; restore it, or allow missing migrations"
    )]
    Missing {
        /// The version.
        version: String,
        /// Its recorded name.
        name: String,
    },
    /// A pending migration is older than what the database already has:
    /// usually branches merged out of order.
    #[error(
        "`{path}` (version {version}) is pending but older than the newest applied version {newest}: a branch was probably merged out of order; renumber it, or allow out-of-order migrations"
    )]
    OutOfOrder {
        /// The pending version.
        version: String,
        /// Its file.
        path: String,
        /// The newest applied version.
        newest: String,
    },
    /// More than one of the above, all reported at once.
    #[error("{} problems between the migrations folder and the history:{}", .0.len(), .0.iter().map(|e| format!("\n  - {e}")).collect::<String>())]
    Several(Vec<PlanError>),
}

/// The key a migration has in the history table.
pub fn history_key(m: &Migration) -> String {
    match &m.version {
        Some(v) => v.to_string(),
        None => format!("R__{}", m.name),
    }
}

/// Where one migration stands against the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Applied with the same checksum.
    Applied,
    /// Not applied yet (or a new or changed repeatable migration).
    Pending,
    /// Applied, but its file changed since.
    Changed,
    /// Applied, but its file is gone.
    Missing,
    /// Not applied, and older than the newest applied version.
    OutOfOrder,
    /// At or below the baseline: history that lived elsewhere.
    BelowBaseline,
    /// The baseline row itself.
    Baseline,
    /// Not applied, and its file has no SQL yet.
    Empty,
}

/// One line of `migrate status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// The history key.
    pub version: String,
    /// The name.
    pub name: String,
    /// The file, when there is one.
    pub path: Option<String>,
    /// Where it stands.
    pub state: State,
    /// Its history row, when applied.
    pub applied: Option<AppliedRow>,
}

/// The newest versioned or baseline version in the history.
pub fn newest_applied(applied: &[AppliedRow]) -> Option<Version> {
    applied
        .iter()
        .filter(|r| r.kind != "repeatable")
        .filter_map(|r| Version::parse(&r.version))
        .max()
}

/// The facts of the history that every migration is judged against.
struct History<'a> {
    applied: &'a [AppliedRow],
    baseline: Option<Version>,
    newest: Option<Version>,
}

impl<'a> History<'a> {
    fn new(applied: &'a [AppliedRow]) -> Self {
        let max_of = |keep: &dyn Fn(&AppliedRow) -> bool| {
            applied
                .iter()
                .filter(|r| keep(r))
                .filter_map(|r| Version::parse(&r.version))
                .max()
        };
        History {
            applied,
            baseline: max_of(&|r| r.kind == "baseline"),
            newest: newest_applied(applied),
        }
    }

    /// The history row of `m`, if it was applied.
    fn row(&self, m: &Migration) -> Option<&'a AppliedRow> {
        self.applied.iter().find(|r| r.is_of(m))
    }

    fn below_baseline(&self, v: &Version) -> bool {
        self.baseline.as_ref().is_some_and(|b| v <= b)
    }

    fn state(&self, m: &Migration) -> State {
        let row = self.row(m);
        match (&m.version, row) {
            (_, None) if m.empty => State::Empty,
            (None, Some(r)) if r.unchanged(m) => State::Applied,
            (None, _) => State::Pending,
            (Some(v), None) if self.below_baseline(v) => State::BelowBaseline,
            (Some(_), Some(r)) if !r.unchanged(m) => State::Changed,
            (Some(_), Some(_)) => State::Applied,
            (Some(v), None) if self.newest.as_ref().is_some_and(|n| v < n) => State::OutOfOrder,
            (Some(_), None) => State::Pending,
        }
    }

    /// Applied versioned rows with no file, excluding squashed history at or
    /// below a baseline.
    fn missing<'r>(
        &'r self,
        migrations: &'r [Migration],
    ) -> impl Iterator<Item = &'a AppliedRow> + 'r {
        self.applied
            .iter()
            .filter(|r| r.kind == "versioned")
            .filter(move |r| {
                let recorded = Version::parse(&r.version);
                let on_disk = migrations.iter().any(|m| {
                    m.version
                        .as_ref()
                        .zip(recorded.as_ref())
                        .is_some_and(|(v, p)| v.same_number(p))
                });
                !on_disk && !recorded.is_some_and(|v| self.below_baseline(&v))
            })
    }
}

/// The migrations to apply, in order. Repeatable migrations are pending when
/// new or changed. Rows at or below a baseline stand for history that lived
/// elsewhere: no file is expected for them.
pub fn pending<'m>(
    migrations: &'m [Migration],
    applied: &[AppliedRow],
    options: PlanOptions,
) -> Result<Vec<&'m Migration>, PlanError> {
    let history = History::new(applied);
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for m in migrations {
        match history.state(m) {
            State::Pending => out.push(m),
            State::OutOfOrder if options.allow_out_of_order => out.push(m),
            State::OutOfOrder => {
                errors.push(PlanError::OutOfOrder {
                    version: history_key(m),
                    path: m.path.display().to_string(),
                    newest: history
                        .newest
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                });
            }
            State::Changed if !options.allow_drift => {
                let row = history.row(m).expect("a changed migration has a row");
                errors.push(PlanError::Drift {
                    table: row.table.to_owned(),
                    version: history_key(m),
                    path: m.path.display().to_string(),
                    then: row.checksum.clone(),
                    now: row.checksum_now(m),
                });
            }
            State::Changed => {
                tracing::warn!(migration = %m.path.display(), "changed after it was applied; allowed by `migrations.allow_drift`");
            }
            State::Applied
            | State::Missing
            | State::BelowBaseline
            | State::Baseline
            | State::Empty => {}
        }
    }
    for r in history.missing(migrations) {
        if !options.allow_missing {
            errors.push(PlanError::Missing {
                version: r.version.clone(),
                name: r.name.clone(),
            });
            continue;
        }
        tracing::warn!(version = %r.version, "applied but its file is gone; allowed by `migrations.allow_missing`");
    }
    match errors.len() {
        0 => Ok(out),
        1 => Err(errors.remove(0)),
        _ => Err(PlanError::Several(errors)),
    }
}

/// Every migration on disk and every history row, in version order, with
/// where each stands: what `migrate status` shows.
pub fn status(migrations: &[Migration], applied: &[AppliedRow]) -> Vec<Entry> {
    let history = History::new(applied);
    let mut entries: Vec<Entry> = migrations
        .iter()
        .map(|m| Entry {
            version: history_key(m),
            name: m.name.clone(),
            path: Some(m.path.display().to_string()),
            state: history.state(m),
            applied: history.row(m).cloned(),
        })
        .collect();
    let extra = applied
        .iter()
        .filter(|r| r.kind == "baseline")
        .map(|r| (r, State::Baseline));
    let missing = history.missing(migrations).map(|r| (r, State::Missing));
    entries.extend(extra.chain(missing).map(|(r, state)| Entry {
        version: r.version.clone(),
        name: r.name.clone(),
        path: None,
        state,
        applied: Some(r.clone()),
    }));
    let order = |e: &Entry| (Version::parse(&e.version), e.version.starts_with("R__"));
    entries.sort_by(|a, b| {
        let (va, ra) = order(a);
        let (vb, rb) = order(b);
        ra.cmp(&rb)
            .then(va.cmp(&vb))
            .then(a.version.cmp(&b.version))
    });
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::source::Directives;
    use std::path::PathBuf;

    fn m(version: Option<&str>, name: &str, checksum: &str) -> Migration {
        Migration {
            version: version.map(|v| Version::parse(v).unwrap()),
            name: name.into(),
            path: PathBuf::from(format!("{}_{name}.sql", version.unwrap_or("R_"))),
            sql: "SELECT 1".into(),
            first_line: 1,
            directives: Directives::default(),
            checksum: checksum.into(),
            native_checksum: None,
            empty: false,
        }
    }

    fn row(version: &str, checksum: &str, kind: &str) -> AppliedRow {
        AppliedRow {
            version: version.into(),
            name: "x".into(),
            checksum: checksum.into(),
            kind: kind.into(),
            table: HISTORY_TABLE,
            ..AppliedRow::default()
        }
    }

    fn keys(p: Vec<&Migration>) -> Vec<String> {
        p.into_iter().map(history_key).collect()
    }

    #[test]
    fn pending_are_the_unapplied_in_order() {
        let ms = [
            m(Some("1"), "a", "c1"),
            m(Some("2"), "b", "c2"),
            m(None, "views", "r1"),
        ];
        assert_eq!(
            keys(pending(&ms, &[], PlanOptions::default()).unwrap()),
            vec!["1", "2", "R__views"]
        );
        let applied = [
            row("1", "c1", "versioned"),
            row("R__views", "r1", "repeatable"),
        ];
        assert_eq!(
            keys(pending(&ms, &applied, PlanOptions::default()).unwrap()),
            vec!["2"]
        );
        // A changed repeatable runs again.
        let applied = [
            row("1", "c1", "versioned"),
            row("2", "c2", "versioned"),
            row("R__views", "old", "repeatable"),
        ];
        assert_eq!(
            keys(pending(&ms, &applied, PlanOptions::default()).unwrap()),
            vec!["R__views"]
        );
    }

    #[test]
    fn drift_is_an_error_unless_allowed() {
        let ms = [m(Some("1"), "a", "changed")];
        let applied = [row("1", "original", "versioned")];
        assert!(matches!(
            pending(&ms, &applied, PlanOptions::default()),
            Err(PlanError::Drift { .. })
        ));
        assert!(
            pending(
                &ms,
                &applied,
                PlanOptions {
                    allow_drift: true,
                    ..Default::default()
                }
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn missing_files_are_an_error_unless_allowed() {
        let ms = [m(Some("2"), "b", "c2")];
        let applied = [row("1", "c1", "versioned"), row("2", "c2", "versioned")];
        let err = pending(&ms, &applied, PlanOptions::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("version 1 (`x`) was applied but its file is gone"),
            "{err}"
        );
        assert!(
            pending(
                &ms,
                &applied,
                PlanOptions {
                    allow_missing: true,
                    ..Default::default()
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn out_of_order_is_an_error_unless_allowed() {
        let ms = [
            m(Some("1"), "a", "c1"),
            m(Some("2"), "late", "c2"),
            m(Some("3"), "c", "c3"),
        ];
        let applied = [row("1", "c1", "versioned"), row("3", "c3", "versioned")];
        let err = pending(&ms, &applied, PlanOptions::default()).unwrap_err();
        assert!(
            matches!(err, PlanError::OutOfOrder { ref version, ref newest, .. } if version == "2" && newest == "3"),
            "{err}"
        );
        let allowed = pending(
            &ms,
            &applied,
            PlanOptions {
                allow_out_of_order: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(keys(allowed), vec!["2"]);
    }

    #[test]
    fn every_disagreement_is_reported_at_once() {
        let ms = [
            m(Some("1"), "a", "changed"),
            m(Some("2"), "late", "c2"),
            m(Some("3"), "c", "c3"),
        ];
        let applied = [
            row("1", "original", "versioned"),
            row("3", "c3", "versioned"),
            row("4", "c4", "versioned"),
        ];
        let err = pending(&ms, &applied, PlanOptions::default()).unwrap_err();
        let PlanError::Several(errors) = &err else {
            panic!("{err}")
        };
        assert!(matches!(
            errors.as_slice(),
            [
                PlanError::Drift { .. },
                PlanError::OutOfOrder { .. },
                PlanError::Missing { .. }
            ]
        ));
        assert!(err.to_string().starts_with("3 problems"), "{err}");
    }

    #[test]
    fn a_baseline_covers_older_history() {
        let ms = [m(Some("5"), "old", "c5"), m(Some("10"), "new", "c10")];
        let applied = [row("7", "", "baseline")];
        assert_eq!(
            keys(pending(&ms, &applied, PlanOptions::default()).unwrap()),
            vec!["10"]
        );
    }

    #[test]
    fn versions_match_numerically() {
        let ms = [m(Some("01"), "a", "c1")];
        assert!(
            pending(&ms, &[row("1", "c1", "versioned")], PlanOptions::default())
                .unwrap()
                .is_empty()
        );
    }
}
