//! The version matrix: the product's promises on one server of each
//! supported major (13 to 18), each with the client programs snapguard
//! picks itself and with the PostgreSQL 18 client pinned
//! (`scripts/test-matrix` runs this file once per pair, the servers side by
//! side; `SNAPGUARD_TEST_PG_MAJOR` and `SNAPGUARD_TEST_CLIENT` choose).
//! Under the full suite (no variables) it runs on 15 with its own client.
//!
//! Every cell ends in a checked state: the database's fingerprint, the exit
//! code, and what the report or the server says was used.

mod common;

use common::app::*;
use common::*;

/// Every database name is unique per major and client, so two matrix runs
/// against one server could not meet (each run has its own server anyway).
fn name(base: &str) -> String {
    let client = match pinned_client() {
        Some(_) => "c18",
        None => "auto",
    };
    format!("v{}_{client}_{base}", pg_major())
}

/// The server's major version, as the server says.
fn server_major() -> u32 {
    psql("postgres", "SHOW server_version_num")
        .parse::<u32>()
        .unwrap()
        / 10_000
}

#[test]
fn the_server_is_the_major_asked_for() {
    assert_eq!(server_major(), pg_major());
}

#[test]
fn snapshot_and_restore_round_trip() {
    let db = seeded_db(&name("round_trip"));
    let bucket = s3().bucket(&db.replace('_', "-"));
    let ws = Workspace::new(&s3_config(&db, &bucket, ""));
    let before = fingerprint(&db);
    let snap = ws.run(&["snapshot"]);
    snap.expect_code(0);
    let id = snap.snapshot_id();
    psql(&db, "INSERT INTO users (email) VALUES ('late@example.com')");
    assert_ne!(fingerprint(&db), before);

    let shown = ws.run(&["snapshots", "show", &id, "--json"]);
    shown.expect_code(0);
    let manifest: serde_json::Value = serde_json::from_str(&shown.stdout()).unwrap();
    let dumped_by = manifest["pg_dump_version"].as_str().unwrap().to_owned();
    if pinned_client().is_some() {
        assert!(dumped_by.starts_with("18."), "{manifest:#}");
    }

    let restored = ws.run(&["restore", &id, "--yes"]);
    restored.expect_code(0);
    assert_eq!(fingerprint(&db), before, "dumped by pg_dump {dumped_by}");
    // pg_restore 18 into a server before 17: the path that forgives its
    // `SET transaction_timeout` was the one taken, and said so.
    let forgiven = restored.stderr().contains("SET transaction_timeout");
    assert_eq!(
        forgiven,
        pinned_client().is_some() && pg_major() < 17,
        "{}",
        restored.stderr()
    );
}

#[test]
fn a_deploy_succeeds_with_its_local_clone() {
    let app = App::new(&name("deploy_ok"), "s3");
    app.configure("auto", "", "");
    let run = app.deploy("v1");
    run.expect_code(0);
    assert_eq!(
        psql(&app.db, "SELECT count(*) FROM items WHERE note IS NOT NULL"),
        "500"
    );
    let report = app.report();
    assert_eq!(report["outcome"], "succeeded");
    app.assert_maintenance_off();
}

/// A failing migration after one that changed the table: rolled back by
/// `local_clone`'s strategy, the database equal to the one before.
fn failing_migration_rolls_back(local_clone: &str, expect: &str) {
    let app = App::new(&name(&format!("rollback_{local_clone}")), "s3");
    app.configure(local_clone, "", "");
    app.deploy("v1").expect_code(0);
    let before = fingerprint(&app.db);
    app.migration(
        "2_widen.sql",
        "ALTER TABLE items ADD COLUMN price numeric;\nUPDATE items SET price = id;\n",
    );
    app.migration("3_broken.sql", "ALTER TABLE items ALTER COLUMN missing TYPE int;\n");
    let run = app.deploy("v2");
    run.expect_code(4);
    let report = app.report();
    assert_eq!(report["outcome"], "rolled_back");
    let database = report["rollback"]["database"].as_str().unwrap();
    assert!(database.starts_with(expect), "{}", report["rollback"]);
    assert_eq!(fingerprint(&app.db), before);
    app.assert_maintenance_off();
}

#[test]
fn a_failing_migration_is_rolled_back_by_the_clone_swap() {
    failing_migration_rolls_back("always", "clone");
}

#[test]
fn a_failing_migration_is_rolled_back_by_the_store_restore() {
    failing_migration_rolls_back("never", "store");
}

#[test]
fn recover_after_kill_9_mid_migration_rolls_back() {
    let app = App::new(&name("recover"), "s3");
    app.configure("never", "", "");
    let before = fingerprint(&app.db);
    let mut child = deploy_in_migration(&app);
    child.kill().unwrap();
    child.wait().unwrap();
    let run = app.ws.run(&["recover"]);
    run.expect_code(4);
    assert_eq!(fingerprint(&app.db), before);
    app.assert_maintenance_off();
}

#[test]
fn rehearse_drill_rolls_back_both_ways() {
    let app = App::new(&name("drill"), "s3");
    app.configure("auto", "", "");
    let source = ws_snapshot(&app);
    let target = format!("{}_copy", app.db);
    psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {target} WITH (FORCE)"),
    );
    let run = rehearse(
        &app.ws,
        &[
            "--snapshot",
            &source,
            "--target-url",
            &pg().url(&target),
            "--drill",
        ],
    );
    run.expect_code(0);
    let report = report(&app.ws);
    let drill = &report["drill"];
    assert!(drill["errors"].as_array().is_none_or(|e| e.is_empty()), "{drill:#}");
    assert!(!db_exists(&target), "the copy is dropped afterwards");
}

/// Takes a snapshot of `app`'s database; its id.
fn ws_snapshot(app: &App) -> String {
    let run = app.ws.run(&["snapshot"]);
    run.expect_code(0);
    run.snapshot_id()
}

#[test]
fn a_golang_migrate_history_is_adopted() {
    let db = create_db(&name("native"));
    psql(
        &db,
        "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);\
         INSERT INTO schema_migrations VALUES (1, false);\
         CREATE TABLE widgets (id int PRIMARY KEY);",
    );
    let ws = Workspace::for_db(&db, "  format: golang-migrate\n");
    ws.migrations(&[
        ("1_widgets.up.sql", "CREATE TABLE widgets (id int PRIMARY KEY);\n"),
        ("1_widgets.down.sql", "DROP TABLE widgets;\n"),
        ("2_gadgets.up.sql", "CREATE TABLE gadgets (id int PRIMARY KEY);\n"),
        ("2_gadgets.down.sql", "DROP TABLE gadgets;\n"),
    ]);
    ws.run(&["migrate"]).expect_code(0);
    assert_eq!(psql(&db, "SELECT version FROM schema_migrations"), "2");
    assert_eq!(psql(&db, "SELECT to_regclass('gadgets') IS NOT NULL"), "t");
}

#[test]
fn lint_judges_against_the_real_table_sizes() {
    let db = create_db(&name("lint"));
    psql(
        &db,
        "CREATE TABLE big (id int, payload text); \
         INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 60000) g; ANALYZE big;",
    );
    let ws = Workspace::for_db(&db, "lint:\n  small_table: 1MiB\n");
    ws.migrations(&[(
        "1_type.sql",
        "ALTER TABLE big ALTER COLUMN id TYPE bigint;\n",
    )]);
    let run = ws.run(&["lint", "--all", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout(), run.stderr()));
    let text = report.to_string();
    assert!(text.contains("\"big\"") || text.contains("big"), "{report:#}");
    assert_eq!(run.code(), 9, "a rewrite of a table over small_table is an error: {report:#}");
}
