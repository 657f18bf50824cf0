//! Snapshot and restore across archive sizes, with every compression.
//!
//! A snapshot bug once hit only archives of 70–100 KB (a new app's
//! database): the decompressor held the archive's tail until the end, and
//! `pg_restore -l`, having read the table of contents, had closed its end
//! by then. Databases of 40 sizes, from empty to several MB and densest in
//! that band, are each snapshotted with zstd, gzip and no compression,
//! read back, and restored beside the original, which they must equal.

mod common;

use std::sync::Mutex;

use common::*;

/// The `pg_dump -Fc -Z0` archive sizes aimed at, in bytes.
const TARGETS: [u64; 40] = [
    0, 2_000, 8_000, 16_000, 32_000, 48_000, 56_000, 62_000, 66_000, 68_000, 70_000, 72_000,
    74_000, 76_000, 78_000, 80_000, 82_000, 84_000, 86_000, 88_000, 90_000, 92_000, 94_000, 96_000,
    98_000, 100_000, 104_000, 112_000, 128_000, 160_000, 256_000, 400_000, 640_000, 1_000_000,
    1_500_000, 2_200_000, 3_000_000, 4_000_000, 5_000_000, 6_500_000,
];

/// Bytes of dump per row of the table below (measured: `md5` text and an
/// id, in `COPY` form).
const BYTES_PER_ROW: u64 = 40;

fn sized_db(i: usize, target: u64) -> String {
    let db = create_db(&format!("sz_{i:02}"));
    if target > 0 {
        // Varied text, so the compressors have real work to do.
        psql(
            &db,
            &format!(
                "CREATE TABLE t (id int PRIMARY KEY, v text); \
                 INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, {}) g",
                (target / BYTES_PER_ROW).max(1)
            ),
        );
    }
    db
}

fn one_size(i: usize, target: u64) -> Vec<u64> {
    let db = sized_db(i, target);
    let expected = fingerprint(&db);
    let mut archives = Vec::new();
    for compression in ["zstd", "gzip", "none"] {
        let ws = Workspace::new(&fs_config(
            &db,
            &format!("snapshot:\n  compression: {compression}\n"),
        ));
        let snap = ws.run(&["snapshot"]);
        snap.expect_code(0);
        let id = snap.snapshot_id();
        let shown = ws.run(&["snapshots", "show", &id, "--json"]);
        shown.expect_code(0);
        let manifest: serde_json::Value = serde_json::from_str(&shown.stdout()).unwrap();
        archives.push(manifest["archive_bytes"].as_u64().unwrap());
        let copy = format!("{db}_{compression}");
        psql("postgres", &format!("DROP DATABASE IF EXISTS \"{copy}\""));
        ws.run(&["restore", &id, "--to", &copy]).expect_code(0);
        assert_eq!(
            fingerprint(&copy),
            expected,
            "{db} ({} archive bytes) with {compression}",
            archives.last().unwrap()
        );
        psql("postgres", &format!("DROP DATABASE \"{copy}\""));
    }
    psql("postgres", &format!("DROP DATABASE \"{db}\""));
    archives
}

#[test]
fn every_archive_size_snapshots_and_restores_with_every_compression() {
    let next = Mutex::new(0usize);
    let sizes = Mutex::new(Vec::new());
    // Four at a time: the server and the machine are shared.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(&target) = TARGETS.get(i) else { break };
                    let archives = one_size(i, target);
                    sizes.lock().unwrap().extend(archives);
                }
            });
        }
    });
    // The sweep covered what it claims: the band where the bug lived, and
    // both ends.
    let sizes = sizes.into_inner().unwrap();
    let in_band = sizes
        .iter()
        .filter(|s| (70_000..=100_000).contains(*s))
        .count();
    assert!(in_band >= 3 * 10, "archive sizes: {sizes:?}");
    assert!(sizes.iter().any(|s| *s < 10_000), "{sizes:?}");
    assert!(sizes.iter().any(|s| *s > 4_000_000), "{sizes:?}");
}
