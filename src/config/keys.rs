//! Every scalar key of `snapguard.yml`, declared once: its name (which is
//! also its path in the file and, upper-cased, its `SNAPGUARD_*`
//! environment variable), whether it holds a shell command, and the keys
//! it only makes sense beside. The file reader, the environment layer and
//! the relation check all work from this table; the resolver reads each
//! key by name to type it.

/// One scalar key.
pub(super) struct Key {
    /// `section.key` (or `section.sub.key`).
    pub name: &'static str,
    /// Holds a shell command: the variables snapguard sets for hooks
    /// (`SNAPGUARD_DEPLOY_ID`, …) are left for the shell to expand.
    pub command: bool,
}

const fn key(name: &'static str) -> Key {
    Key {
        name,
        command: false,
    }
}

const fn command(name: &'static str) -> Key {
    Key {
        name,
        command: true,
    }
}

/// Every key, in the order the README documents them.
pub(super) const KEYS: &[Key] = &[
    key("database.url"),
    key("database.maintenance_db"),
    key("database.pg_bin_dir"),
    key("store.url"),
    key("store.endpoint"),
    key("store.region"),
    key("store.path_style"),
    key("store.sse"),
    key("store.kms_key_id"),
    key("store.part_size"),
    key("snapshot.compression"),
    key("snapshot.compression_level"),
    key("snapshot.lock_wait_timeout"),
    key("snapshot.restore_jobs"),
    key("snapshot.local_clone"),
    key("snapshot.retention.keep_last"),
    key("snapshot.retention.keep_days"),
    key("migrations.dir"),
    key("migrations.format"),
    key("migrations.transaction"),
    key("migrations.lock_timeout"),
    key("migrations.lock_retries"),
    key("migrations.statement_timeout"),
    key("migrations.lock_wait"),
    key("migrations.allow_out_of_order"),
    key("migrations.allow_drift"),
    key("migrations.allow_missing"),
    key("migrations.native_history"),
    key("migrations.command"),
    key("migrations.pending_command"),
    key("release.id"),
    command("release.command"),
    command("release.rollback"),
    key("release.timeout"),
    key("release.health.url"),
    key("release.health.timeout"),
    key("release.health.interval"),
    key("budget.max_downtime"),
];

/// The sections made of lists, read by their own modules; they have no
/// environment-variable form.
pub(super) const LIST_SECTIONS: &[&str] = &["checks", "maintenance"];

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
