//! Failure paths: every fault ends with the documented exit code, a message
//! that names the problem, and the database and store as they were.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;

fn dump_file(ws: &Workspace, id: &str) -> PathBuf {
    ws.path().join("backups/snapshots").join(id).join("dump")
}

/// Restoring a damaged archive is refused before any database is created.
fn assert_restore_refused(ws: &Workspace, db: &str, id: &str, expect: &str) {
    let before = fingerprint(db);
    let run = ws.run(&["restore", id, "--yes"]);
    run.expect_code(3);
    assert!(run.stderr().contains(expect), "{}", run.stderr());
    assert_eq!(fingerprint(db), before);
    assert!(
        databases_like(&format!("{db}__")).is_empty(),
        "a restore database was left behind"
    );
}

#[test]
fn a_corrupt_archive_is_refused_by_checksum() {
    let db = seeded_db("f_corrupt");
    let ws = Workspace::new(&fs_config(&db, ""));
    let id = ws.run(&["snapshot"]).expect_code(0).snapshot_id();
    let path = dump_file(&ws, &id);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    assert_restore_refused(&ws, &db, &id, "checksum mismatch");
}

#[test]
fn a_truncated_archive_is_refused_by_checksum() {
    let db = seeded_db("f_truncated");
    let ws = Workspace::new(&fs_config(&db, ""));
    let id = ws.run(&["snapshot"]).expect_code(0).snapshot_id();
    let path = dump_file(&ws, &id);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    assert_restore_refused(&ws, &db, &id, "checksum mismatch");
}

#[test]
fn a_snapshot_without_manifest_is_never_offered() {
    let db = seeded_db("f_nomanifest");
    let ws = Workspace::new(&fs_config(&db, ""));
    let old = ws.run(&["snapshot"]).expect_code(0).snapshot_id();
    let id = ws.run(&["snapshot"]).expect_code(0).snapshot_id();
    std::fs::remove_file(
        ws.path()
            .join("backups/snapshots")
            .join(&id)
            .join("manifest.json"),
    )
    .unwrap();

    let list = ws.run(&["snapshots", "list"]);
    list.expect_code(0);
    assert!(
        !list.stdout().contains(&id) && list.stdout().contains(&old),
        "{}",
        list.stdout()
    );
    let all = ws.run(&["snapshots", "list", "--all"]);
    assert!(
        all.stdout().contains(&format!("{id} ")) && all.stdout().contains("incomplete"),
        "{}",
        all.stdout()
    );

    assert_restore_refused(&ws, &db, &id, "incomplete");
    // `latest` skips the incomplete one and picks the older complete snapshot.
    let show = ws.run(&["snapshots", "show", "latest"]);
    show.expect_code(0);
    assert!(show.stdout().contains(&old), "{}", show.stdout());
}

#[test]
fn an_unknown_snapshot_id_is_a_clear_error() {
    let db = seeded_db("f_unknown");
    let ws = Workspace::new(&fs_config(&db, ""));
    let run = ws.run(&["restore", "20200101T000000Z-nope-abcd", "--yes"]);
    run.expect_code(3);
    assert!(
        run.stderr()
            .contains("no snapshot `20200101T000000Z-nope-abcd`"),
        "{}",
        run.stderr()
    );
    let run = ws.run(&["restore", "yesterday", "--yes"]);
    run.expect_code(3);
    assert!(
        run.stderr().contains("`yesterday` is not a snapshot id"),
        "{}",
        run.stderr()
    );
}

fn s3_config_with(db: &str, bucket: &str, endpoint: &str) -> String {
    format!(
        "database:\n  url: {}\nstore:\n  url: s3://{bucket}/prod\n  endpoint: {endpoint}\n  region: us-east-1\n  path_style: true\n",
        pg().url(db)
    )
}

#[test]
fn an_unreachable_store_fails_the_snapshot_before_it_starts() {
    let db = seeded_db("f_unreachable_up");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ws = Workspace::new(&s3_config_with(
        &db,
        "whatever",
        &format!("http://127.0.0.1:{closed}"),
    ));
    let run = ws.run(&["snapshot"]);
    run.expect_code(3);
    assert!(
        run.stderr()
            .contains("snapshot stopped before changing anything"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("s3://whatever/prod/"),
        "{}",
        run.stderr()
    );
}

#[test]
fn an_unreachable_store_fails_the_restore_and_changes_nothing() {
    let db = seeded_db("f_unreachable_down");
    let bucket = s3().bucket("f-unreachable-down");
    let ws = Workspace::new(&s3_config(&db, &bucket, ""));
    let id = ws.run(&["snapshot"]).expect_code(0).snapshot_id();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let broken = Workspace::new(&s3_config_with(
        &db,
        &bucket,
        &format!("http://127.0.0.1:{closed}"),
    ));
    let before = fingerprint(&db);
    let run = broken.run(&["restore", &id, "--yes"]);
    run.expect_code(3);
    assert!(
        run.stderr()
            .contains(&format!("s3://{bucket}/prod/snapshots/{id}/manifest.json")),
        "{}",
        run.stderr()
    );
    assert_eq!(fingerprint(&db), before);
}

#[test]
fn wrong_credentials_are_named_as_such() {
    let db = seeded_db("f_creds");
    let bucket = s3().bucket("f-creds");
    let ws = Workspace::new(&s3_config(&db, &bucket, ""));
    let run = Run(ws
        .snapguard()
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret")
        .arg("snapshot")
        .output()
        .unwrap());
    run.expect_code(3);
    assert!(run.stderr().contains("access denied"), "{}", run.stderr());
    assert!(s3().objects(&bucket).is_empty());
}

#[test]
fn no_credentials_at_all_is_one_line_naming_the_sources_tried_and_the_fix() {
    let db = seeded_db("f_nocreds");
    let bucket = s3().bucket("f-nocreds");
    let ws = Workspace::new(&s3_config(&db, &bucket, "migrations:\n  dir: migrations\n"));
    std::fs::create_dir_all(ws.path().join("migrations")).unwrap();
    for args in [&["snapshot"][..], &["deploy"], &["snapshots", "list"]] {
        let run = Run(ws
            .snapguard()
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .args(args)
            .output()
            .unwrap());
        let stderr = run.stderr();
        assert_ne!(run.code(), 0, "{args:?}: {stderr}");
        assert!(
            stderr.contains("no AWS credentials found; tried the environment"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"));
        for noise in ["dispatch failure", "IMDS", "WARN", "ProviderError"] {
            assert!(!stderr.contains(noise), "{args:?} says `{noise}`: {stderr}");
        }
        assert!(stderr.lines().count() <= 6, "{args:?}: {stderr}");
    }
    assert!(s3().objects(&bucket).is_empty());
}

#[test]
fn a_missing_bucket_is_named() {
    let db = seeded_db("f_nobucket");
    let ws = Workspace::new(&s3_config(&db, "no-such-bucket", ""));
    let run = ws.run(&["snapshot"]);
    run.expect_code(3);
    assert!(
        run.stderr()
            .contains("bucket `no-such-bucket` does not exist"),
        "{}",
        run.stderr()
    );
}

/// A `pg_bin_dir` whose `pg_dump` runs the real one into `filter` (shell
/// text after a pipe, e.g. `head -c 6000000; kill -9 $$`), and the real
/// `pg_restore`.
fn filtered_pg_dump(dir: &Path, filter: &str) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real = pg().bin_dir();
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then exec {real}/pg_dump --version; fi\n{real}/pg_dump \"$@\" | {filter}\n",
        real = real.display()
    );
    std::fs::write(bin.join("pg_dump"), script).unwrap();
    std::fs::set_permissions(bin.join("pg_dump"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(real.join("pg_restore"), bin.join("pg_restore")).unwrap();
    bin
}

/// A config streaming uncompressed into 5 MiB parts on `s3`, with `bin` as
/// the `pg_bin_dir`.
fn streaming_config(db: &str, bin: &Path, s3: &S3Server, bucket: &str) -> String {
    format!(
        "database:\n  url: {}\n  pg_bin_dir: {}\nstore:\n  url: s3://{bucket}/prod\n  endpoint: {}\n  path_style: true\n  part_size: 5MiB\nsnapshot:\n  compression: none\n",
        pg().url(db),
        bin.display(),
        s3.endpoint
    )
}

/// Starts `snapguard snapshot` and returns once its first part is stored.
fn snapshot_until_first_part(ws: &Workspace, s3: &S3Server) -> std::process::Child {
    let child = ws
        .snapguard()
        .arg("snapshot")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        "a part uploaded",
        std::time::Duration::from_secs(30),
        || s3.pending_uploads().iter().any(|f| f.contains(".part-")),
    );
    child
}

/// Enough incompressible-ish data that the dump spans several 5 MiB parts.
/// About 100 bytes of dump per row.
fn big_db(name: &str, rows: u32) -> String {
    let db = create_db(name);
    psql(
        &db,
        &format!(
            "CREATE TABLE blobs AS SELECT i, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) AS v FROM generate_series(1, {rows}) AS i"
        ),
    );
    db
}

#[test]
fn pg_dump_killed_mid_stream_leaves_no_manifest_and_no_orphan_upload() {
    let db = big_db("f_killed", 300_000);
    let s3 = S3Server::start();
    let bucket = s3.bucket("f-killed");
    let tmp = tempfile::tempdir().unwrap();
    // 12 MB of a real dump (two parts' worth), then pg_dump is killed.
    let bin = filtered_pg_dump(tmp.path(), "head -c 12000000; kill -9 $$");
    let ws = Workspace::new(&streaming_config(&db, &bin, &s3, &bucket));
    let run = Run(ws.snapguard().arg("-v").arg("snapshot").output().unwrap());
    run.expect_code(1);
    assert!(
        run.stderr()
            .contains("pg_dump failed; the partial upload was discarded"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("multipart upload aborted"),
        "no part was uploaded before the kill:\n{}",
        run.stderr()
    );
    assert!(s3.objects(&bucket).is_empty(), "{:?}", s3.objects(&bucket));
    assert!(
        s3.pending_uploads().is_empty(),
        "{:?}",
        s3.pending_uploads()
    );
    assert!(
        !ws.run(&["snapshots", "list", "--all"])
            .stdout()
            .contains("f_killed")
    );
}

#[test]
fn a_three_part_upload_round_trips() {
    let db = big_db("f_three_parts", 120_000);
    let bucket = s3().bucket("f-three-parts");
    let ws = Workspace::new(&s3_config(
        &db,
        &bucket,
        "  part_size: 5MiB\nsnapshot:\n  compression: none\n",
    ));
    let before = fingerprint(&db);
    let run = Run(ws.snapguard().args(["-v", "snapshot"]).output().unwrap());
    run.expect_code(0);
    assert!(run.stderr().contains("parts=3"), "{}", run.stderr());
    psql(&db, "TRUNCATE blobs");
    ws.run(&["restore", "latest", "--yes"]).expect_code(0);
    assert_eq!(fingerprint(&db), before);
}

#[test]
fn a_too_old_pg_dump_is_a_preflight_error() {
    let db = seeded_db("f_oldtools");
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("pg_dump");
    std::fs::write(&fake, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 12.19'\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ws = Workspace::new(&format!(
        "database:\n  url: {}\n  pg_bin_dir: {}\nstore:\n  url: file://./backups\n",
        pg().url(&db),
        tmp.path().display()
    ));
    let run = ws.run(&["snapshot"]);
    run.expect_code(3);
    assert!(
        run.stderr().contains("must be version 15 or newer"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("12.19"), "{}", run.stderr());
    assert!(!ws.path().join("backups/snapshots").exists());
}

#[test]
fn sessions_block_the_swap_unless_terminated() {
    let db = seeded_db("f_sessions");
    let ws = Workspace::new(&fs_config(&db, ""));
    let id = ws.run(&["snapshot"]).expect_code(0).snapshot_id();
    let mut holder = std::process::Command::new(pg().bin_dir().join("psql"))
        .args([
            "-X",
            "-q",
            "-d",
            &pg().url(&db),
            "-c",
            "SELECT pg_sleep(60)",
        ])
        .env("PGAPPNAME", "held-by-test")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        "the holding session",
        std::time::Duration::from_secs(30),
        || {
            psql(
                "postgres",
                &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}'"),
            ) != "0"
        },
    );

    let before = fingerprint(&db);
    let refused = ws.run(&["restore", &id, "--yes"]);
    refused.expect_code(3);
    assert!(
        refused.stderr().contains("--terminate-sessions")
            && refused.stderr().contains("held-by-test"),
        "{}",
        refused.stderr()
    );
    assert!(databases_like(&format!("{db}__")).is_empty());

    ws.run(&["restore", &id, "--yes", "--terminate-sessions"])
        .expect_code(0);
    assert_eq!(fingerprint(&db), before);
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test]
fn restore_without_a_terminal_needs_yes() {
    let db = seeded_db("f_noyes");
    let ws = Workspace::new(&fs_config(&db, ""));
    let id = ws.run(&["snapshot"]).expect_code(0).snapshot_id();
    psql(&db, "DELETE FROM billing.orders");
    let before = fingerprint(&db);
    let run = ws.run(&["restore", &id]);
    run.expect_code(2);
    assert!(run.stderr().contains("--yes"), "{}", run.stderr());
    assert_eq!(fingerprint(&db), before);
    assert!(databases_like(&format!("{db}__")).is_empty());
}

#[test]
fn a_wrong_database_password_fails_preflight() {
    let db = seeded_db("f_badpass");
    let url = pg().url(&db).replace(pg().password(), "not-the-password");
    let ws = Workspace::new(&format!(
        "database:\n  url: {url}\nstore:\n  url: file://./backups\n"
    ));
    let run = ws.run(&["snapshot"]);
    run.expect_code(3);
    assert!(
        run.stderr()
            .contains("cannot connect to `postgres://postgres:***@127.0.0.1"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("password authentication failed"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("not-the-password"));
    // `deploy` and `migrate` reach the server through its maintenance
    // database first: the error still names the database configured.
    ws.migrations(&[("1_x.sql", "SELECT 1;\n")]);
    for args in [&["deploy"][..], &["plan"]] {
        let run = ws.run(args);
        run.expect_code(3);
        assert!(
            run.stderr().contains(&format!(
                "/postgres` (the database `postgres` on the server of `{db}`, with the same user and password)"
            )),
            "{args:?}: {}",
            run.stderr()
        );
        assert!(run.stderr().contains("password authentication failed"));
        assert!(!run.stderr().contains("not-the-password"));
    }
}

#[test]
fn sigterm_during_a_snapshot_aborts_the_upload() {
    let db = big_db("f_sigterm", 120_000);
    let s3 = S3Server::start();
    let bucket = s3.bucket("f-sigterm");
    let tmp = tempfile::tempdir().unwrap();
    // 6 MB (more than one 5 MiB part), then a stall like a dump stuck
    // behind a slow table.
    let bin = filtered_pg_dump(tmp.path(), "{ head -c 6000000; exec sleep 60; }");
    let ws = Workspace::new(&streaming_config(&db, &bin, &s3, &bucket));
    let child = snapshot_until_first_part(&ws, &s3);
    let started = std::time::Instant::now();
    sigterm(&child);
    let run = Run(child.wait_with_output().unwrap());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "cancelling took {:?}",
        started.elapsed()
    );
    run.expect_code(1);
    assert!(
        run.stderr()
            .contains("cancelled by a signal; the partial upload was discarded"),
        "{}",
        run.stderr()
    );
    assert!(
        s3.pending_uploads().is_empty(),
        "{:?}",
        s3.pending_uploads()
    );
    assert!(s3.objects(&bucket).is_empty(), "{:?}", s3.objects(&bucket));
}

#[test]
fn the_store_going_down_mid_upload_fails_without_a_manifest() {
    let db = big_db("f_store_down", 150_000);
    let mut s3 = S3Server::start();
    let bucket = s3.bucket("f-store-down");
    let tmp = tempfile::tempdir().unwrap();
    // 6 MB, a pause (the store dies then), then the rest of the dump.
    let bin = filtered_pg_dump(tmp.path(), "{ head -c 6000000; sleep 3; cat; }");
    let ws = Workspace::new(&streaming_config(&db, &bin, &s3, &bucket));
    let child = snapshot_until_first_part(&ws, &s3);
    s3.stop();
    let run = Run(child.wait_with_output().unwrap());
    run.expect_code(1);
    assert!(
        run.stderr()
            .contains("uploading the archive failed; no manifest was written"),
        "{}",
        run.stderr()
    );
    assert!(
        !s3.objects(&bucket)
            .iter()
            .any(|k| k.ends_with("manifest.json")),
        "{:?}",
        s3.objects(&bucket)
    );
}
