//! The manifest: everything needed to trust and restore a snapshot, written
//! after the archive as the commit marker.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::SnapshotId;
use crate::codec::Compression;
use crate::db::DatabaseProperties;

/// The current manifest layout.
pub const MANIFEST_VERSION: u32 = 1;

/// `snapshots/<id>/manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The layout version of this file.
    pub manifest_version: u32,
    /// The snapshot id.
    pub id: SnapshotId,
    /// The database that was dumped.
    pub database: String,
    /// The server's version, for example `15.18`.
    pub server_version: String,
    /// The `pg_dump` version used.
    pub pg_dump_version: String,
    /// Always `custom` (`pg_dump -Fc`): parallel and selective `pg_restore`.
    pub format: String,
    /// How the archive is compressed in the store.
    pub compression: Compression,
    /// The compression level.
    pub compression_level: i32,
    /// The archive's key relative to the store prefix.
    pub dump_key: String,
    /// The archive's full address when it was written.
    pub dump_uri: String,
    /// Bytes in the store.
    pub size_bytes: u64,
    /// Bytes of the uncompressed custom-format archive.
    pub archive_bytes: u64,
    /// SHA-256 of the stored bytes, lowercase hex.
    pub sha256: String,
    /// Entries in the archive's table of contents, checked after upload.
    pub toc_entries: usize,
    /// When `pg_dump` started.
    pub created_at: DateTime<Utc>,
    /// When the manifest was written.
    pub completed_at: DateTime<Utc>,
    /// The WAL insert position when the dump started.
    pub wal_lsn: Option<String>,
    /// The release running when the snapshot was taken.
    pub release_id: Option<String>,
    /// The newest applied migration.
    pub last_migration: Option<String>,
    /// The deploy that took this snapshot.
    pub deploy_id: Option<String>,
    /// Database-level properties the dump does not carry.
    pub database_properties: DatabaseProperties,
    /// The snapguard version that wrote this.
    pub snapguard_version: String,
}

impl Manifest {
    /// Its size as `snapshot` and `snapshots show` print it: the bytes in
    /// the store, then the uncompressed archive and how it was compressed.
    pub fn size_line(&self) -> String {
        format!(
            "{} (archive {}, {} level {})",
            crate::progress::format_bytes(self.size_bytes),
            crate::progress::format_bytes(self.archive_bytes),
            self.compression,
            self.compression_level
        )
    }

    /// Shell commands that restore this snapshot with standard tools only,
    /// for when snapguard itself is unavailable.
    pub fn manual_restore_commands(&self) -> Vec<String> {
        let file = format!("{}.dump", self.id);
        let fetch = if let Some(path) = self.dump_uri.strip_prefix("file://") {
            match self.compression {
                Compression::Zstd => format!("zstd -d < {path} > {file}"),
                Compression::Gzip => format!("gunzip -c {path} > {file}"),
                Compression::None => format!("cp {path} {file}"),
            }
        } else {
            let cp = format!("aws s3 cp {} -", self.dump_uri);
            match self.compression {
                Compression::Zstd => format!("{cp} | zstd -d > {file}"),
                Compression::Gzip => format!("{cp} | gunzip -c > {file}"),
                Compression::None => format!("{cp} > {file}"),
            }
        };
        let target = format!("{}_restored", self.database);
        vec![
            fetch,
            format!("pg_restore -l {file} > /dev/null   # the archive reads"),
            format!(
                "createdb -T template0 -E {} --lc-collate={} --lc-ctype={} {target}",
                self.database_properties.encoding,
                self.database_properties.collate,
                self.database_properties.ctype
            ),
            format!("pg_restore -j 4 --exit-on-error -d {target} {file}"),
        ]
    }
}
