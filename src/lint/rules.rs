//! The catalogue of lint rules: what each one finds, why it hurts, the
//! safe way, and where the PostgreSQL manual says so. The checks
//! themselves live in [`super::check`].

use serde::Serialize;

/// How much a finding matters. Ordered: a finding at or above the failing
/// level (`Error`) makes `lint` exit 9 and stops a deploy's preflight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Not reported (a rule set to `off`).
    Off,
    /// Reported, harmless here: the table is new in this deploy or small.
    Info,
    /// Reported; does not fail.
    Warn,
    /// Reported; fails `lint`, `plan`'s verdict and the deploy preflight.
    Error,
}

impl Level {
    /// The word used in config files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// Reads a config value: `off`, `warn` or `error`.
    pub fn parse(value: &str) -> Option<Level> {
        match value {
            "off" => Some(Level::Off),
            "warn" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }
}

/// One rule.
#[derive(Debug, Serialize)]
pub struct Rule {
    /// Its id: config key (`lint.rules.<id>`), allow comment, SARIF rule.
    pub id: &'static str,
    /// Its level unless configured.
    pub level: Level,
    /// Why it hurts, in one line.
    pub why: &'static str,
    /// The safe way.
    pub safe: &'static str,
    /// The PostgreSQL manual's page on it.
    pub doc: &'static str,
    /// Whether the hazard grows with the table: a finding on a table
    /// created earlier in the deploy or smaller than `lint.small_table`
    /// is shown as `info`.
    pub sized: bool,
}

/// A page of the manual's current version.
macro_rules! manual {
    ($page:literal) => {
        concat!("https://www.postgresql.org/docs/current/", $page)
    };
}

/// Every rule, in the order the documentation lists them.
pub const RULES: &[Rule] = &[
    Rule {
        id: "index_not_concurrent",
        level: Level::Error,
        why: "CREATE INDEX without CONCURRENTLY holds a SHARE lock: every write to the table waits for the whole build",
        safe: "CREATE INDEX CONCURRENTLY, in a migration marked `-- snapguard:no-transaction`",
        doc: manual!("sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY"),
        sized: true,
    },
    Rule {
        id: "constraint_not_valid",
        level: Level::Error,
        why: "ADD FOREIGN KEY / ADD CHECK without NOT VALID scans the whole table while holding a lock that blocks writes",
        safe: "ADD CONSTRAINT … NOT VALID, then ALTER TABLE … VALIDATE CONSTRAINT in a later migration (it takes only SHARE UPDATE EXCLUSIVE)",
        doc: manual!("sql-altertable.html#SQL-ALTERTABLE-NOTES"),
        sized: true,
    },
    Rule {
        id: "set_not_null",
        level: Level::Error,
        why: "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE: no reads or writes until it ends",
        safe: "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c; then SET NOT NULL uses the constraint and skips the scan (PostgreSQL 12+); drop c after",
        doc: manual!("sql-altertable.html#SQL-ALTERTABLE-DESC-SET-DROP-NOT-NULL"),
        sized: true,
    },
    Rule {
        id: "column_type_rewrite",
        level: Level::Error,
        why: "ALTER COLUMN TYPE rewrites the table and its indexes under ACCESS EXCLUSIVE, unless the change is binary-compatible (varchar widening, varchar to text, numeric gaining precision)",
        safe: "add a new column, backfill it in batches (`-- snapguard:batch`), switch the application, drop the old column",
        doc: manual!("sql-altertable.html#SQL-ALTERTABLE-NOTES"),
        sized: true,
    },
    Rule {
        id: "add_column_volatile_default",
        level: Level::Error,
        why: "ADD COLUMN with a volatile default (or a stored generated column, or any default before PostgreSQL 11) rewrites the table under ACCESS EXCLUSIVE",
        safe: "add the column without the default (or with a constant one), set the default, backfill in batches",
        doc: manual!("sql-altertable.html#SQL-ALTERTABLE-NOTES"),
        sized: true,
    },
    Rule {
        id: "unique_without_index",
        level: Level::Error,
        why: "ADD UNIQUE / PRIMARY KEY builds its index under ACCESS EXCLUSIVE",
        safe: "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT … UNIQUE USING INDEX (or PRIMARY KEY USING INDEX)",
        doc: manual!("sql-altertable.html#SQL-ALTERTABLE-DESC-ADD-TABLE-CONSTRAINT-USING-INDEX"),
        sized: true,
    },
    Rule {
        id: "drop_column",
        level: Level::Warn,
        why: "the running release still reads the column: its queries fail from this migration until the new release is live",
        safe: "ship a release that no longer uses the column first, drop it in a later deploy",
        doc: manual!("sql-altertable.html#SQL-ALTERTABLE-DESC-DROP-COLUMN"),
        sized: false,
    },
    Rule {
        id: "rename_column",
        level: Level::Warn,
        why: "the running release still uses the old name: its queries fail until the new release is live",
        safe: "add the new column, write both, backfill, switch reads, drop the old one in a later deploy",
        doc: manual!("sql-altertable.html#SQL-ALTERTABLE-DESC-RENAME"),
        sized: false,
    },
    Rule {
        id: "rename_table",
        level: Level::Warn,
        why: "the running release still uses the old name: its queries fail until the new release is live",
        safe: "rename, and create a view with the old name that the old release can keep using until the next deploy",
        doc: manual!("sql-altertable.html#SQL-ALTERTABLE-DESC-RENAME"),
        sized: false,
    },
    Rule {
        id: "rename_schema",
        level: Level::Warn,
        why: "the running release still names the schema: its queries fail until the new release is live",
        safe: "create the new schema and move objects over releases, or keep the old name reachable (search_path, views) until the next deploy",
        doc: manual!("sql-alterschema.html"),
        sized: false,
    },
    Rule {
        id: "rename_enum_value",
        level: Level::Warn,
        why: "the running release still writes and compares the old value: its inserts fail and its filters match nothing until the new release is live",
        safe: "add the new value, switch the application to it, migrate the rows in batches, stop using the old one (an enum value cannot be dropped)",
        doc: manual!("sql-altertype.html"),
        sized: false,
    },
    Rule {
        id: "drop_table",
        level: Level::Warn,
        why: "the running release still reads the table: its queries fail from this migration until the new release is live, and the data is gone but for the snapshot",
        safe: "ship a release that no longer uses the table first, drop it in a later deploy (rename it first to keep a way back)",
        doc: manual!("sql-droptable.html"),
        sized: false,
    },
    Rule {
        id: "add_column_not_null",
        level: Level::Error,
        why: "ADD COLUMN … NOT NULL without a DEFAULT fails on a table that has rows: the migration fails in production after passing on an empty test database",
        safe: "add the column with a constant DEFAULT (no rewrite since PostgreSQL 11), or nullable, backfill in batches, then SET NOT NULL the safe way",
        doc: manual!("sql-altertable.html#SQL-ALTERTABLE-DESC-ADD-COLUMN"),
        sized: false,
    },
    Rule {
        id: "set_logged",
        level: Level::Error,
        why: "SET LOGGED / SET UNLOGGED rewrites the table under ACCESS EXCLUSIVE (SET LOGGED also writes all of it to the WAL)",
        safe: "create the table with the persistence it needs, or change it in a maintenance window of its own",
        doc: manual!("sql-altertable.html#SQL-ALTERTABLE-DESC-SET-LOGGED-UNLOGGED"),
        sized: true,
    },
    Rule {
        id: "refresh_matview_not_concurrent",
        level: Level::Error,
        why: "REFRESH MATERIALIZED VIEW without CONCURRENTLY holds ACCESS EXCLUSIVE on the view: every read of it waits for the whole refresh",
        safe: "REFRESH MATERIALIZED VIEW CONCURRENTLY (the view needs a UNIQUE index on plain columns)",
        doc: manual!("sql-refreshmaterializedview.html"),
        sized: true,
    },
    Rule {
        id: "vacuum_full",
        level: Level::Error,
        why: "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE",
        safe: "plain VACUUM (no lock on reads or writes), or pg_repack outside the deploy",
        doc: manual!("sql-vacuum.html"),
        sized: true,
    },
    Rule {
        id: "cluster",
        level: Level::Error,
        why: "CLUSTER rewrites the table under ACCESS EXCLUSIVE",
        safe: "leave physical order to a maintenance job outside the deploy (pg_repack)",
        doc: manual!("sql-cluster.html"),
        sized: true,
    },
    Rule {
        id: "reindex_not_concurrent",
        level: Level::Error,
        why: "REINDEX without CONCURRENTLY blocks writes to the table (and reads that use the index) for the whole build",
        safe: "REINDEX … CONCURRENTLY (PostgreSQL 12+), in a migration marked `-- snapguard:no-transaction`",
        doc: manual!("sql-reindex.html#SQL-REINDEX-CONCURRENTLY"),
        sized: true,
    },
    Rule {
        id: "drop_index_not_concurrent",
        level: Level::Warn,
        why: "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table: short, but it waits behind every running query and every query after it waits behind it",
        safe: "DROP INDEX CONCURRENTLY, in a migration marked `-- snapguard:no-transaction`",
        doc: manual!("sql-dropindex.html"),
        sized: false,
    },
    Rule {
        id: "lock_table",
        level: Level::Warn,
        why: "an explicit LOCK TABLE holds its lock until the migration's transaction ends, and queues every query behind it",
        safe: "let each statement take the lock it needs; keep `lock_timeout` short so a waiting migration gives up",
        doc: manual!("sql-lock.html"),
        sized: false,
    },
    Rule {
        id: "concurrently_in_transaction",
        level: Level::Error,
        why: "CREATE INDEX / REINDEX / DROP INDEX / DETACH PARTITION … CONCURRENTLY, VACUUM, CREATE / DROP DATABASE and ALTER SYSTEM cannot run inside a transaction block: the migration fails",
        safe: "put the statement in a migration of its own marked `-- snapguard:no-transaction`",
        doc: manual!("sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY"),
        sized: false,
    },
    Rule {
        id: "unclosed_transaction",
        level: Level::Error,
        why: "a BEGIN without its COMMIT: snapguard refuses the folder, and run by another tool the changes roll back when the session ends",
        safe: "end the migration's own transaction with COMMIT, or leave transactions to snapguard (no BEGIN at all)",
        doc: manual!("sql-begin.html"),
        sized: false,
    },
    Rule {
        id: "unbatched_data_change",
        level: Level::Warn,
        why: "one UPDATE / DELETE over a large table locks every row it touches until it commits and writes all its WAL at once",
        safe: "a batched data migration: `-- snapguard:batch`, a statement that changes a bounded number of rows and is repeated until it changes none",
        doc: manual!("sql-update.html"),
        sized: true,
    },
    Rule {
        id: "enum_add_value_in_transaction",
        level: Level::Error,
        why: "ALTER TYPE … ADD VALUE cannot run inside a transaction block before PostgreSQL 12: the migration fails",
        safe: "a migration of its own marked `-- snapguard:no-transaction`",
        doc: manual!("sql-altertype.html#SQL-ALTERTYPE-NOTES"),
        sized: false,
    },
    Rule {
        id: "partition_lock",
        level: Level::Error,
        why: "DETACH PARTITION without CONCURRENTLY, and an index built on a partitioned table, take locks on the parent that block every partition",
        safe: "DETACH PARTITION … CONCURRENTLY (PostgreSQL 14+); for indexes: CREATE INDEX ON ONLY the parent, CREATE INDEX CONCURRENTLY on each partition, ALTER INDEX … ATTACH PARTITION",
        doc: manual!("ddl-partitioning.html#DDL-PARTITIONING-DECLARATIVE-MAINTENANCE"),
        sized: false,
    },
    Rule {
        id: "measured_lock",
        level: Level::Warn,
        why: "the rehearsal saw an ACCESS EXCLUSIVE lock held longer than `lint.max_lock_hold`, or a table rewritten, that no rule predicted",
        safe: "read the migration's measured locks in the rehearsal report and split or rewrite the statement",
        doc: manual!("explicit-locking.html"),
        sized: false,
    },
    Rule {
        id: "parse_error",
        level: Level::Error,
        why: "the migration does not parse as PostgreSQL SQL: it would fail when applied",
        safe: "fix the syntax; `psql -f` on a scratch database shows the same error",
        doc: manual!("sql-commands.html"),
        sized: false,
    },
];

/// The rule with this id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// The rules for `snapguard lint --help`: each id with its default level
/// and why it hurts.
pub fn help() -> String {
    let width = RULES.iter().map(|r| r.id.len()).max().unwrap_or(0);
    let mut text = String::from(
        "Rules (set a level with `lint.rules.<id>: off | warn | error`; silence one statement with `-- snapguard:allow <id> <reason>`):\n",
    );
    for r in RULES {
        text.push_str(&format!(
            "  {:<width$}  {:<5}  {}\n",
            r.id,
            r.level.as_str(),
            r.why
        ));
    }
    text
}

/// Every rule id, for messages.
pub fn ids() -> String {
    RULES.iter().map(|r| r.id).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_its_config_key_in_order() {
        let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        let keys: Vec<&str> = crate::config::lint_rule_ids().collect();
        assert_eq!(ids, keys);
    }

    #[test]
    fn ids_are_unique_and_config_safe() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(
                r.id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}: a config key and an environment variable",
                r.id
            );
            assert!(RULES[..i].iter().all(|o| o.id != r.id), "{}", r.id);
            assert!(
                r.doc
                    .starts_with("https://www.postgresql.org/docs/current/")
            );
        }
    }
}
