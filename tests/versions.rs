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

use std::process::Command;

use common::app::*;
use common::*;
use snapguard::ephemeral::{EphemeralOptions, EphemeralServer};

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
    // A pg_restore of 17 or later (at least as new as the archive's
    // pg_dump) into a server before 17: the path that forgives its
    // `SET transaction_timeout` was the one taken, and said so.
    let client_major: u32 = dumped_by.split('.').next().unwrap().parse().unwrap();
    let forgiven = restored.stderr().contains("SET transaction_timeout");
    assert_eq!(
        forgiven,
        client_major >= 17 && pg_major() < 17,
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
    app.migration(
        "3_broken.sql",
        "ALTER TABLE items ALTER COLUMN missing TYPE int;\n",
    );
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
    // A snapguard session no journal write saw counts as snapguard's
    // (`snapguard.sessions`), not as someone else's.
    app.ws.run(&["migrate", "status"]);
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
    assert!(
        drill["errors"].as_array().is_none_or(|e| e.is_empty()),
        "{drill:#}"
    );
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
        (
            "1_widgets.up.sql",
            "CREATE TABLE widgets (id int PRIMARY KEY);\n",
        ),
        ("1_widgets.down.sql", "DROP TABLE widgets;\n"),
        (
            "2_gadgets.up.sql",
            "CREATE TABLE gadgets (id int PRIMARY KEY);\n",
        ),
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
    // Judged with the database's facts (its catalogue read on this major):
    // the finding names the table and what the server says of it.
    assert_eq!(report["judged"], true, "{report:#}");
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["table"].as_str().is_some_and(|t| t.ends_with("big")))
        .unwrap_or_else(|| panic!("no finding on `big`: {report:#}"));
    assert_eq!(finding["level"], "error", "{finding:#}");
    assert!(
        finding["context"]
            .as_str()
            .is_some_and(|c| c.contains("rows")),
        "{finding:#}"
    );
    assert_eq!(
        run.code(),
        9,
        "a rewrite of a table over small_table is an error: {report:#}"
    );
}

/// Makes `app` a managed platform's: its database and table owned by a
/// deploy role without superuser (`CREATEDB`, `CREATEROLE` with `ADMIN
/// OPTION` on the application's role, `pg_signal_backend`), which
/// `snapguard.yml` connects as. Returns the deploy role's name.
fn managed(app: &App, local_clone: &str) -> String {
    let deployer = format!("{}_deployer", app.db);
    psql(
        "postgres",
        &format!(
            "CREATE ROLE {deployer} LOGIN PASSWORD 'deploy' CREATEDB CREATEROLE; \
             GRANT pg_signal_backend TO {deployer}; \
             ALTER DATABASE {db} OWNER TO {deployer}",
            db = app.db
        ),
    );
    if pg_major() >= 16 {
        psql(
            "postgres",
            &format!("GRANT {} TO {deployer} WITH ADMIN OPTION", app.role),
        );
    }
    psql(&app.db, &format!("ALTER TABLE items OWNER TO {deployer}"));
    configure_as(app, local_clone, &deployer);
    deployer
}

/// `app.configure(local_clone)`, connecting as `role`.
fn configure_as(app: &App, local_clone: &str, role: &str) {
    app.configure(local_clone, "", "");
    let url = format!(
        "postgres://{role}:deploy@127.0.0.1:{}/{}?sslmode=disable",
        pg().port(),
        app.db
    );
    let config = app.file("snapguard.yml").replace(&pg().url(&app.db), &url);
    std::fs::write(app.ws.path().join("snapguard.yml"), config).unwrap();
}

#[test]
fn a_managed_role_gets_the_clone_and_both_rollbacks() {
    let app = App::new(&name("managed"), "s3");
    let deployer = managed(&app, "auto");
    let run = app.deploy("v1");
    run.expect_code(0);
    run.expect_stderr("local clone made");
    app.assert_maintenance_off();

    // A failing migration: rolled back by the clone swap under `auto`.
    let before = fingerprint(&app.db);
    app.migration(
        "2_broken.sql",
        "ALTER TABLE items ALTER COLUMN missing TYPE int;\n",
    );
    app.deploy("v2").expect_code(4);
    let report = app.report();
    let database = report["rollback"]["database"].as_str().unwrap().to_owned();
    assert!(database.starts_with("clone"), "{}", report["rollback"]);
    assert_eq!(fingerprint(&app.db), before);
    app.assert_maintenance_off();

    // And by the store restore without a clone.
    configure_as(&app, "never", &deployer);
    app.deploy("v2").expect_code(4);
    let report = app.report();
    let database = report["rollback"]["database"].as_str().unwrap().to_owned();
    assert!(database.starts_with("store"), "{}", report["rollback"]);
    assert_eq!(fingerprint(&app.db), before);
    app.assert_maintenance_off();

    // Killed mid-migration: `recover`, as the same role, rolls back.
    std::fs::remove_file(app.ws.path().join("migrations/2_broken.sql")).unwrap();
    let mut child = deploy_in_migration(&app);
    child.kill().unwrap();
    child.wait().unwrap();
    app.ws.run(&["migrate", "status"]);
    app.ws.run(&["recover"]).expect_code(4);
    assert_eq!(fingerprint(&app.db), before);
    app.assert_maintenance_off();
}

#[test]
fn a_managed_role_missing_a_grant_is_refused_at_preflight_with_it() {
    let app = App::new(&name("managed_short"), "fs");
    let deployer = managed(&app, "auto");
    let before = fingerprint(&app.db);
    let quoted = format!("\"{deployer}\"");

    psql(
        "postgres",
        &format!("REVOKE pg_signal_backend FROM {deployer}"),
    );
    let run = app.deploy("v1");
    run.expect_code(3);
    run.expect_stderr(&format!("`GRANT pg_signal_backend TO {quoted}`"));
    psql(
        "postgres",
        &format!("GRANT pg_signal_backend TO {deployer}"),
    );

    // A snapshot needs only reads; a restore over the database, as the
    // rollback, is refused before anything changes.
    app.ws.run(&["snapshot"]).expect_code(0);
    psql("postgres", &format!("ALTER ROLE {deployer} NOCREATEDB"));
    let run = app.deploy("v1");
    run.expect_code(3);
    run.expect_stderr(&format!("`ALTER ROLE {quoted} CREATEDB`"));
    let run = app.ws.run(&["restore", "latest", "--yes"]);
    run.expect_code(3);
    run.expect_stderr(&format!("`ALTER ROLE {quoted} CREATEDB`"));
    psql("postgres", &format!("ALTER ROLE {deployer} CREATEDB"));

    if pg_major() >= 16 {
        psql("postgres", &format!("REVOKE {} FROM {deployer}", app.role));
        let run = app.deploy("v1");
        run.expect_code(3);
        run.expect_stderr(&format!(
            "`GRANT \"{}\" TO {quoted} WITH ADMIN OPTION`",
            app.role
        ));
    }
    assert_eq!(fingerprint(&app.db), before, "nothing changed");
    assert!(app.can_login(), "the fence never went up");
    assert_eq!(app.file("maintenance.log"), "", "maintenance never went on");
}

/// `snapguard plan --json` in `ws`.
fn plan_json(ws: &Workspace) -> serde_json::Value {
    let run = ws.run(&["plan", "--json"]);
    run.expect_code(0);
    serde_json::from_str(&run.stdout()).unwrap()
}

/// The local clone's files are cloned, not copied, on PostgreSQL 18 over a
/// file system that shares blocks (XFS with reflink, loop-mounted here),
/// and copied everywhere else, and `plan` and the report say which.
#[test]
fn the_clone_shares_blocks_on_18_over_a_reflink_file_system() {
    let db = create_db(&name("clone_method"));
    psql(
        &db,
        "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g",
    );
    let ws = Workspace::new(&format!(
        "database:\n  url: {}\nstore:\n  url: file://./backups\nmigrations:\n  dir: migrations\nsnapshot:\n  local_clone: always\n",
        pg().url(&db)
    ));
    std::fs::create_dir_all(ws.path().join("migrations")).unwrap();
    ws.migrations(&[("1_t.sql", "ALTER TABLE t ADD COLUMN note text;\n")]);
    let plan = plan_json(&ws);
    let detail = plan["clone_method_detail"].as_str().unwrap().to_owned();
    if pg_major() < 18 {
        assert_eq!(plan["clone_method"], "copy", "{plan:#}");
        assert!(detail.contains("cloning came in 18"), "{detail}");
        return;
    }
    // The shared server's directory is on the temporary directory's file
    // system (ext4 on these machines: no shared blocks).
    let tmp_fs = run_ok(
        Command::new("stat")
            .args(["-f", "-c", "%T"])
            .arg(std::env::temp_dir()),
    );
    if !matches!(tmp_fs.trim(), "xfs" | "btrfs" | "zfs") {
        assert_eq!(plan["clone_method"], "copy", "{plan:#}");
        assert!(detail.contains("does not share blocks"), "{detail}");
    }

    // A server whose data directory is on XFS with reflink.
    let mount = ReflinkMount::new("2G");
    let server = EphemeralServer::start(&EphemeralOptions {
        parent_dir: Some(mount.dir.clone()),
        ..server_options()
    })
    .expect("start PostgreSQL on XFS");
    let sql = |db: &str, sql: &str| server.psql(db, &["-c", sql]).expect("psql");
    sql("postgres", "CREATE DATABASE on_xfs");
    sql(
        "on_xfs",
        "CREATE TABLE t AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 100000) g",
    );
    let ws = Workspace::new(&format!(
        "database:\n  url: {}\nstore:\n  url: file://./backups\nmigrations:\n  dir: migrations\n",
        server.url("on_xfs")
    ));
    std::fs::create_dir_all(ws.path().join("migrations")).unwrap();
    ws.migrations(&[("1_t.sql", "ALTER TABLE t ADD COLUMN note text;\n")]);
    let plan = plan_json(&ws);
    assert_eq!(plan["local_clone"], "yes", "{plan:#}");
    assert_eq!(plan["clone_method"], "clone", "{plan:#}");
    assert!(
        plan["clone_method_detail"]
            .as_str()
            .unwrap()
            .contains("XFS with reflink"),
        "{plan:#}"
    );
    let run = ws.run(&["deploy", "--release", "v1", "--report", "report.json"]);
    run.expect_code(0);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["snapshot"]["clone_method"], "clone", "{report:#}");

    // A failure afterwards is rolled back by swapping the cloned copy in.
    let before = sql("on_xfs", "SELECT count(*), sum(g) FROM t");
    ws.migrations(&[("2_broken.sql", "SELECT 1 / 0;\n")]);
    let run = ws.run(&["deploy", "--release", "v2", "--report", "report.json"]);
    run.expect_code(4);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path().join("report.json")).unwrap())
            .unwrap();
    assert!(
        report["rollback"]["database"]
            .as_str()
            .unwrap()
            .starts_with("clone"),
        "{report:#}"
    );
    assert_eq!(sql("on_xfs", "SELECT count(*), sum(g) FROM t"), before);
    drop(server);
    drop(mount);
}

/// A plain SQL dump made by the current pg_dump (18: `\restrict` lines, and
/// `SET transaction_timeout`, which servers before 17 reject) loads in
/// `rehearse --dump` on every major.
#[test]
fn a_plain_dump_from_the_current_pg_dump_loads_in_rehearse() {
    let db = seeded_db(&name("plain"));
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[("1_x.sql", "CREATE TABLE x (id int);\n")]);
    let dump = ws.path().join("plain.sql");
    run_ok(
        Command::new(pg18_bin().join("pg_dump"))
            .arg("-f")
            .arg(&dump)
            .args(["-d", &pg().url(&db)]),
    );
    let text = std::fs::read_to_string(&dump).unwrap();
    assert!(text.contains("\n\\restrict ") && text.contains("SET transaction_timeout = 0;"));
    let target = format!("{db}_copy");
    let run = rehearse(
        &ws,
        &[
            "--dump",
            dump.to_str().unwrap(),
            "--target-url",
            &pg().url(&target),
        ],
    );
    run.expect_code(0);
    assert!(!db_exists(&target), "the copy is dropped afterwards");
}
