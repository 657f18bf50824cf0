//! Snapshot and restore round trips against a real PostgreSQL and a real
//! S3-compatible server: the restored database equals the original.

mod common;

use common::*;

/// Snapshot, change the database, restore: the result equals the state at
/// snapshot time, the changed database is kept under its new name, and the
/// database-level settings and grants come back.
fn round_trip(ws: &Workspace, db: &str) {
    psql(
        "postgres",
        &format!("ALTER DATABASE {db} SET work_mem = '64MB'"),
    );
    psql(
        "postgres",
        &format!("ALTER DATABASE {db} SET search_path = \"$user\", public, billing"),
    );
    psql(
        "postgres",
        "DO $$ BEGIN CREATE ROLE sg_app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    );
    psql(
        "postgres",
        &format!("ALTER ROLE sg_app IN DATABASE {db} SET statement_timeout = '5s'"),
    );
    psql(
        "postgres",
        &format!("REVOKE CONNECT, TEMPORARY ON DATABASE {db} FROM PUBLIC"),
    );
    psql(
        "postgres",
        &format!("GRANT CONNECT ON DATABASE {db} TO sg_app"),
    );
    psql(
        "postgres",
        &format!("COMMENT ON DATABASE {db} IS 'the shop'"),
    );
    psql(
        "postgres",
        &format!("ALTER DATABASE {db} CONNECTION LIMIT 50"),
    );
    let before = fingerprint(db);
    let props_sql = format!(
        "SELECT d.datacl::text, d.datconnlimit, shobj_description(d.oid, 'pg_database'), \
         (SELECT string_agg(coalesce(r.rolname, '*') || ':' || array_to_string(s.setconfig, ';'), ' ' ORDER BY r.rolname NULLS FIRST) \
          FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE s.setdatabase = d.oid) \
         FROM pg_database d WHERE datname = '{db}'"
    );
    let props_before = psql("postgres", &props_sql);

    let snap = ws.run(&["snapshot"]);
    snap.expect_code(0);
    let id = snap.snapshot_id();

    psql(
        db,
        "INSERT INTO users (email) VALUES ('late@example.com'); CREATE TABLE made_after (x int)",
    );
    assert_ne!(fingerprint(db), before);

    let listed = ws.run(&["snapshots", "list"]);
    listed.expect_code(0);
    assert!(listed.stdout().contains(&id), "{}", listed.stdout());

    let restored = ws.run(&["restore", &id, "--yes"]);
    restored.expect_code(0);
    assert_eq!(
        fingerprint(db),
        before,
        "restored database differs from the snapshot"
    );
    // pg_restore's progress: the archive's entries, counted to the end.
    let entries = restored
        .stderr()
        .lines()
        .find(|l| l.contains("restore: 100% (") && l.contains("archive entries"))
        .map(str::to_owned);
    assert!(entries.is_some(), "{}", restored.stderr());
    assert_eq!(
        psql("postgres", &props_sql),
        props_before,
        "database-level properties were not carried over"
    );

    let replaced: Vec<_> = databases_like(&format!("{db}__replaced_"));
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_eq!(
        psql(
            &replaced[0],
            "SELECT count(*) FROM users WHERE email = 'late@example.com'"
        ),
        "1"
    );
    assert!(databases_like(&format!("{db}__restore_")).is_empty());
}

#[test]
fn round_trip_through_s3() {
    let db = seeded_db("rt_s3");
    let s3 = S3Server::start();
    let bucket = s3.bucket("rt-s3");
    let ws = Workspace::new(&s3.config(&db, &bucket, ""));
    round_trip(&ws, &db);
    assert!(
        s3.objects(&bucket)
            .iter()
            .any(|k| k.ends_with("/manifest.json"))
    );
    assert!(s3.pending_uploads().is_empty());
}

#[test]
fn round_trip_through_a_local_directory() {
    let db = seeded_db("rt_fs");
    let ws = Workspace::new(&fs_config(&db, ""));
    round_trip(&ws, &db);
}

#[test]
fn gzip_and_uncompressed_archives_round_trip_too() {
    for compression in ["gzip", "none"] {
        let db = seeded_db(&format!("rt_{compression}"));
        let ws = Workspace::new(&fs_config(
            &db,
            &format!("snapshot:\n  compression: {compression}\n"),
        ));
        let before = fingerprint(&db);
        let id = ws.run(&["snapshot"]).expect_code(0).snapshot_id();
        psql(&db, "DELETE FROM billing.orders WHERE id % 2 = 0");
        ws.run(&["restore", &id, "--yes"]).expect_code(0);
        assert_eq!(fingerprint(&db), before, "{compression}");
    }
}

#[test]
fn restore_to_a_side_database_leaves_the_original_alone() {
    let db = seeded_db("rt_side");
    let ws = Workspace::new(&fs_config(&db, ""));
    let before = fingerprint(&db);
    ws.run(&["snapshot"]).expect_code(0);
    psql(&db, "UPDATE users SET email = email || '.changed'");
    let changed = fingerprint(&db);
    ws.run(&["restore", "latest", "--to", "rt_side_copy"])
        .expect_code(0);
    assert_eq!(fingerprint(&db), changed, "the original was touched");
    assert_eq!(fingerprint("rt_side_copy"), before);
}

#[test]
fn the_archive_restores_by_hand_with_standard_tools() {
    let db = seeded_db("rt_hand");
    let ws = Workspace::new(&fs_config(&db, ""));
    let before = fingerprint(&db);
    let id = ws.run(&["snapshot"]).expect_code(0).snapshot_id();
    let show = ws.run(&["snapshots", "show", &id]);
    show.expect_code(0);
    // Run the exact commands `snapshots show` prints, with the standard
    // tools only, against the test server.
    let mut script = String::from("set -e\n");
    let mut in_commands = false;
    for line in show.stdout().lines() {
        if line.starts_with("restore by hand") {
            in_commands = true;
            continue;
        }
        if in_commands {
            script.push_str(line.trim());
            script.push('\n');
        }
    }
    assert!(script.contains("zstd -d"), "{script}");
    let bin = pg().bin_dir().display().to_string();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(ws.path())
        .env("PATH", format!("{bin}:{}", std::env::var("PATH").unwrap()))
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", pg().port().to_string())
        .env("PGUSER", "postgres")
        .env("PGPASSWORD", pg().password())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fingerprint(&format!("{db}_restored")), before);
}

#[test]
fn a_dropped_database_is_restored_under_its_name() {
    let db = seeded_db("rt_disaster");
    let ws = Workspace::new(&fs_config(&db, ""));
    let before = fingerprint(&db);
    ws.run(&["snapshot"]).expect_code(0);
    psql("postgres", &format!("DROP DATABASE {db}"));
    ws.run(&["restore", "latest"]).expect_code(0);
    assert_eq!(fingerprint(&db), before);
    assert!(databases_like(&format!("{db}__")).is_empty());
}

#[test]
fn no_owner_restores_without_owners_or_grants() {
    let db = seeded_db("rt_noowner");
    psql(
        "postgres",
        "DO $$ BEGIN CREATE ROLE sg_owner; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    );
    psql(
        &db,
        "CREATE TABLE owned (x int); ALTER TABLE owned OWNER TO sg_owner",
    );
    let ws = Workspace::new(&fs_config(&db, ""));
    ws.run(&["snapshot"]).expect_code(0);
    ws.run(&["restore", "latest", "--to", "rt_noowner_copy", "--no-owner"])
        .expect_code(0);
    assert_eq!(
        psql(
            "rt_noowner_copy",
            "SELECT tableowner FROM pg_tables WHERE tablename = 'owned'"
        ),
        "postgres"
    );
    assert_eq!(
        psql(
            &db,
            "SELECT tableowner FROM pg_tables WHERE tablename = 'owned'"
        ),
        "sg_owner"
    );
}
