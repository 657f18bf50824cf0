//! Every scalar key of `snapguard.yml`, declared once: its name (which is
//! also its path in the file and, upper-cased, its `SNAPGUARD_*`
//! environment variable), whether it holds a shell command, the values it
//! takes, its default, and the keys it only makes sense beside. The file
//! reader, the environment layer, the relation check and the JSON Schema
//! all work from this table; the resolver reads each key by name to type
//! it, falling back on the default declared here.

/// One scalar key.
pub(super) struct Key {
    /// `section.key` (or `section.sub.key`).
    pub name: &'static str,
    /// Holds a shell command: the variables snapguard sets for hooks
    /// (`SNAPGUARD_DEPLOY_ID`, …) are left for the shell to expand.
    pub command: bool,
    /// What values it takes, for the JSON Schema (`snapguard config schema`).
    pub kind: Kind,
    /// Its value when it is not set, as it would be written in the file;
    /// `None` when unset means something of its own (no health check, the
    /// CI's release id) or the default depends on another key.
    pub default: Option<&'static str>,
}

/// The values a key takes, as the JSON Schema describes them. The resolver
/// still types each key itself; the schema is for editors, and a test
/// holds it to the examples.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// Any text.
    Text,
    /// `true` or `false`.
    Bool,
    /// A whole number, at least this.
    Count(u32),
    /// `500ms`, `30s`, `15m`, `2h`.
    Duration,
    /// `8MiB`, `64KiB`, `1GiB`, `5MB`, bytes.
    Size,
    /// A size between these bounds, in bytes.
    SizeBetween(u64, u64),
    /// One of the words of a [`Choice`](super::choice::Choice).
    OneOf(fn() -> Vec<&'static str>),
    /// A lint rule's level: `off`, `warn`, `error`; an unquoted `off`,
    /// which YAML 1.1 reads as `false`, is `off`.
    Level,
}

const fn key(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        command: false,
        kind,
        default: None,
    }
}

const fn command(name: &'static str) -> Key {
    Key {
        name,
        command: true,
        kind: Kind::Text,
        default: None,
    }
}

impl Key {
    /// This key, taking `value` when it is not set.
    const fn or(self, value: &'static str) -> Key {
        Key {
            default: Some(value),
            ..self
        }
    }
}

use super::choice::words;
use super::migrations::{Format, NativeHistory, TransactionMode};
use super::{CloneMethodSetting, LocalClone, Offsite, ProviderKind};
use crate::codec::Compression;
use Kind::{Bool, Count, Duration, OneOf, Size, SizeBetween, Text};

/// Every key, in the order `docs/configuration.md` documents them.
pub(super) const KEYS: &[Key] = &[
    key("database.url", Text),
    key("database.maintenance_db", Text).or("postgres"),
    key("database.pg_bin_dir", Text),
    key("store.url", Text),
    key("store.endpoint", Text),
    key("store.region", Text),
    key("store.path_style", Bool).or("false"),
    key("store.sse", OneOf(|| vec!["AES256", "aws:kms"])),
    key("store.kms_key_id", Text),
    key(
        "store.part_size",
        SizeBetween(crate::store::MIN_PART_SIZE, MAX_PART_SIZE),
    )
    .or("8MiB"),
    key("snapshot.compression", OneOf(words::<Compression>)).or("zstd"),
    // Its range depends on `snapshot.compression` (`schema.rs` says which).
    key("snapshot.compression_level", Count(0)),
    key("snapshot.lock_wait_timeout", Duration).or("60s"),
    key("snapshot.restore_jobs", Count(1)),
    key("snapshot.local_clone", OneOf(words::<LocalClone>)).or("auto"),
    key("snapshot.clone_limit", Size),
    key("snapshot.clone_method", OneOf(words::<CloneMethodSetting>)).or("auto"),
    key("snapshot.offsite", OneOf(words::<Offsite>)).or("before-maintenance-off"),
    key("snapshot.provider", OneOf(words::<ProviderKind>)).or("pg_dump"),
    key("snapshot.pgbackrest.stanza", Text),
    key("snapshot.pgbackrest.config", Text),
    key("snapshot.pgbackrest.user", Text),
    command("snapshot.pgbackrest.exec"),
    command("snapshot.pgbackrest.stop"),
    command("snapshot.pgbackrest.start"),
    key("snapshot.pgbackrest.verify", Bool).or("false"),
    key("snapshot.rds.instance", Text),
    key("snapshot.rds.cluster", Text),
    key("snapshot.rds.region", Text),
    key("snapshot.rds.endpoint", Text),
    key("snapshot.rds.wait", Duration).or("60m"),
    key("snapshot.retention.keep_last", Count(1)).or("20"),
    key("snapshot.retention.keep_days", Count(0)).or("30"),
    key("migrations.dir", Text).or("db/migrations"),
    key("migrations.format", OneOf(words::<Option<Format>>)).or("auto"),
    key("migrations.transaction", OneOf(words::<TransactionMode>)).or("per-migration"),
    key("migrations.lock_timeout", Duration).or("2s"),
    key("migrations.lock_retries", Count(0)).or("5"),
    key("migrations.statement_timeout", Duration).or("15m"),
    key("migrations.lock_wait", Duration).or("10s"),
    key("migrations.allow_out_of_order", Bool).or("false"),
    key("migrations.allow_drift", Bool).or("false"),
    key("migrations.allow_missing", Bool).or("false"),
    key("migrations.native_history", OneOf(words::<NativeHistory>)).or("keep"),
    key("migrations.command", Text),
    key("migrations.pending_command", Text),
    key("release.id", Text),
    command("release.command"),
    command("release.rollback"),
    key("release.timeout", Duration).or("30m"),
    key("release.health.url", Text),
    key("release.health.timeout", Duration).or("60s"),
    key("release.health.interval", Duration).or("2s"),
    key("budget.max_downtime", Duration),
    key("lint.small_table", Size),
    key("lint.max_lock_hold", Duration),
    key("lint.server_version", Count(10)),
    key("lint.time_zone", Text),
    key("lint.rules.index_not_concurrent", LEVEL),
    key("lint.rules.constraint_not_valid", LEVEL),
    key("lint.rules.set_not_null", LEVEL),
    key("lint.rules.column_type_rewrite", LEVEL),
    key("lint.rules.add_column_volatile_default", LEVEL),
    key("lint.rules.unique_without_index", LEVEL),
    key("lint.rules.drop_column", LEVEL),
    key("lint.rules.rename_column", LEVEL),
    key("lint.rules.rename_table", LEVEL),
    key("lint.rules.rename_schema", LEVEL),
    key("lint.rules.rename_enum_value", LEVEL),
    key("lint.rules.drop_table", LEVEL),
    key("lint.rules.add_column_not_null", LEVEL),
    key("lint.rules.set_logged", LEVEL),
    key("lint.rules.refresh_matview_not_concurrent", LEVEL),
    key("lint.rules.vacuum_full", LEVEL),
    key("lint.rules.cluster", LEVEL),
    key("lint.rules.reindex_not_concurrent", LEVEL),
    key("lint.rules.drop_index_not_concurrent", LEVEL),
    key("lint.rules.lock_table", LEVEL),
    key("lint.rules.concurrently_in_transaction", LEVEL),
    key("lint.rules.unclosed_transaction", LEVEL),
    key("lint.rules.unbatched_data_change", LEVEL),
    key("lint.rules.enum_add_value_in_transaction", LEVEL),
    key("lint.rules.partition_lock", LEVEL),
    key("lint.rules.measured_lock", LEVEL),
    key("lint.rules.parse_error", LEVEL),
];

/// S3's largest part: 5 GiB.
pub(super) const MAX_PART_SIZE: u64 = 5 << 30;

/// A lint rule's level.
const LEVEL: Kind = Kind::Level;

/// The sections made of lists, read by their own modules; they have no
/// environment-variable form.
pub(super) const LIST_SECTIONS: &[&str] = &["checks", "maintenance", "notify"];

/// A key that only means something beside another.
pub(super) struct Needs {
    /// The dependent key.
    pub key: &'static str,
    /// The key it needs, set and not empty.
    pub needs: &'static str,
    /// The value the needed key must have, when any value will not do.
    pub value: Option<&'static str>,
    /// The refusal, naming the way out.
    pub why: &'static str,
}

/// The relations between keys, checked before any key is typed.
pub(super) const RELATIONS: &[Needs] = &[
    Needs {
        key: "store.kms_key_id",
        needs: "store.sse",
        value: Some("aws:kms"),
        why: "needs `store.sse: aws:kms`",
    },
    Needs {
        key: "release.rollback",
        needs: "release.command",
        value: None,
        why: "needs `release.command`: there is nothing to roll back without a release",
    },
    Needs {
        key: "migrations.pending_command",
        needs: "migrations.command",
        value: None,
        why: "needs `migrations.command`: it says whether the external migrator has anything to apply",
    },
    Needs {
        key: "release.health.timeout",
        needs: "release.health.url",
        value: None,
        why: "needs `release.health.url`",
    },
    Needs {
        key: "release.health.interval",
        needs: "release.health.url",
        value: None,
        why: "needs `release.health.url`",
    },
];

/// The key named `name`, if there is one.
pub(super) fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Whether `name` is a section (or subsection) holding keys.
pub(super) fn is_section(name: &str) -> bool {
    KEYS.iter().any(|k| {
        k.name.len() > name.len()
            && k.name.starts_with(name)
            && k.name.as_bytes()[name.len()] == b'.'
    })
}

/// The names directly under `section` ("" for the top level), for the
/// refusal of an unknown one.
pub(super) fn children(section: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for k in KEYS {
        let rest = if section.is_empty() {
            Some(k.name)
        } else {
            k.name
                .strip_prefix(section)
                .and_then(|r| r.strip_prefix('.'))
        };
        if let Some(rest) = rest {
            let child = rest.split('.').next().unwrap_or(rest);
            if !out.contains(&child) {
                out.push(child);
            }
        }
    }
    if section.is_empty() {
        out.extend(LIST_SECTIONS);
    }
    out
}

/// The environment variable that sets `key`: `SNAPGUARD_STORE_URL`.
pub(super) fn env_var_for(key: &str) -> String {
    format!("SNAPGUARD_{}", key.replace('.', "_").to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of `docs/configuration.md`: each key with its default as
    /// the first two cells say (`a.b` / `c` shares `a.`'s section).
    fn documented_defaults() -> Vec<(String, String)> {
        let docs = include_str!("../../docs/configuration.md");
        let mut out = Vec::new();
        for row in docs.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.split(" | ").collect();
            let keys: Vec<&str> = cells[0].trim_start_matches("| ").split(" / ").collect();
            let defaults: Vec<&str> = cells[1].split(" / ").collect();
            let first = keys[0].trim_matches('`');
            let section = first.rsplit_once('.').map_or("", |(s, _)| s);
            for (i, key) in keys.iter().enumerate() {
                let key = key.trim_matches('`');
                let name = if i == 0 {
                    key.to_owned()
                } else {
                    format!("{section}.{key}")
                };
                let default = defaults.get(i).or(defaults.last()).unwrap();
                out.push((name, default.trim().to_owned()));
            }
        }
        out
    }

    #[test]
    fn every_declared_default_is_the_one_the_docs_give() {
        let documented = documented_defaults();
        for key in KEYS {
            let Some(default) = key.default else {
                continue;
            };
            let said = documented
                .iter()
                .find(|(name, _)| name == key.name)
                .map(|(_, d)| d.as_str());
            assert_eq!(
                said,
                Some(format!("`{default}`").as_str()),
                "docs/configuration.md on `{}`",
                key.name
            );
        }
    }

    #[test]
    fn every_relation_names_declared_keys() {
        for r in RELATIONS {
            assert!(find(r.key).is_some(), "{}", r.key);
            assert!(find(r.needs).is_some(), "{}", r.needs);
        }
    }

    #[test]
    fn sections_and_children_come_from_the_keys() {
        assert!(is_section("snapshot.retention"));
        assert!(!is_section("snapshot.retention.keep_last"));
        assert!(!is_section("snap"));
        assert_eq!(children("budget"), ["max_downtime"]);
        assert_eq!(children("release.health"), ["url", "timeout", "interval"]);
        assert!(children("").contains(&"maintenance"));
    }
}
