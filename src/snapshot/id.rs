//! Snapshot ids: `20261121T050342Z-shop-3fa9`, sorting by time.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A snapshot id: UTC time, database name, four random hex digits. Plain
/// string order is time order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SnapshotId(String);

impl SnapshotId {
    /// A new id for a snapshot of `database` taken at `at`.
    pub fn new(database: &str, at: DateTime<Utc>) -> Self {
        let mut name: String = database
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(24)
            .collect();
        if name.is_empty() {
            name.push_str("db");
        }
        SnapshotId(format!(
            "{}-{name}-{}",
            at.format("%Y%m%dT%H%M%SZ"),
            crate::random::hex4()
        ))
    }

    /// Checks the shape of an id read from the store or the command line.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = s.len() > 22
            && s.as_bytes()[8] == b'T'
            && s.as_bytes()[15] == b'Z'
            && s.as_bytes()[16] == b'-'
            && s[..8].bytes().all(|b| b.is_ascii_digit())
            && s[9..15].bytes().all(|b| b.is_ascii_digit())
            && s.rsplit_once('-')
                .is_some_and(|(_, r)| r.len() == 4 && r.bytes().all(|b| b.is_ascii_hexdigit()))
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(SnapshotId(s.to_owned()))
        } else {
            Err(format!("`{s}` is not a snapshot id"))
        }
    }

    /// When the snapshot was started, from the id itself.
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        chrono::NaiveDateTime::parse_from_str(&self.0[..16], "%Y%m%dT%H%M%SZ")
            .ok()
            .map(|t| t.and_utc())
    }

    /// The snapshot an object key under the prefix belongs to
    /// (`snapshots/<id>/…`).
    pub fn of_key(key: &str) -> Option<SnapshotId> {
        let rest = key.strip_prefix("snapshots/")?;
        SnapshotId::parse(rest.split('/').next()?).ok()
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short, lowercase form for database names: `20261121t050342z_3fa9`.
    pub fn short(&self) -> String {
        let (stamp, _) = self.0.split_at(16);
        let suffix = self.0.rsplit('-').next().unwrap_or_default();
        format!("{}_{suffix}", stamp.to_ascii_lowercase())
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SnapshotId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        SnapshotId::parse(&s)
    }
}

impl From<SnapshotId> for String {
    fn from(id: SnapshotId) -> String {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ids_have_the_documented_shape_and_sort_by_time() {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 5, 3, 42).unwrap();
        let id = SnapshotId::new("Shop-Prod", at);
        assert!(
            id.as_str().starts_with("20261121T050342Z-shop_prod-"),
            "{id}"
        );
        assert_eq!(SnapshotId::parse(id.as_str()).unwrap(), id);
        assert!(id.short().starts_with("20261121t050342z_"));
        let later = SnapshotId::new("a", Utc.with_ymd_and_hms(2026, 11, 21, 5, 3, 43).unwrap());
        assert!(later > id);
    }

    #[test]
    fn bad_ids_are_rejected() {
        for bad in [
            "latest",
            "",
            "20261121T050342Z-shop",
            "20261121T050342Z-sh op-3fa9",
            "../../etc/passwd",
        ] {
            assert!(SnapshotId::parse(bad).is_err(), "{bad}");
        }
        assert!(SnapshotId::parse("20261121T050342Z-shop-3fa9").is_ok());
    }
}
