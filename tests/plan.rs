//! `snapguard plan` is the deploy's own preflight: for every preflight
//! failure it exits as `deploy` does, with the same cause, and neither
//! changes anything; when preflight passes it prints what `deploy` would
//! do.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::app::*;
use common::*;

/// The `caused by:` lines of a run: the refusal's cause, without the
/// first line (which names the command).
fn causes(run: &Run) -> Vec<String> {
    run.stderr()
        .lines()
        .filter(|l| l.starts_with("caused by: "))
        .map(str::to_owned)
        .collect()
}

/// Runs `plan`, then `deploy`: both exit `code`, both name `expect`, with
/// the same causes, and the database, the switches and the store are as
/// before.
fn plan_refuses_as_deploy_does(app: &App, code: i32, expect: &str) {
    let before = fingerprint(&app.db);
    let plan = app.ws.run(&["plan", "--release", "v1"]);
    plan.expect_code(code);
    plan.expect_stderr(expect);
    plan.expect_stderr("error: plan ");
    let deploy = app.deploy("v1");
    deploy.expect_code(code);
    deploy.expect_stderr(expect);
    assert!(
        deploy.stdout().contains(" (not begun, no id): "),
        "{}",
        deploy.stdout()
    );
    assert_eq!(causes(&plan), causes(&deploy), "{}", plan.stderr());
    assert!(!causes(&plan).is_empty(), "{}", plan.stderr());
    assert_eq!(fingerprint(&app.db), before);
    assert!(
        !app.ws.path().join("maintenance.log").exists(),
        "no switch went on"
    );
    assert!(
        !app.ws.path().join("backups/snapshots").exists(),
        "nothing was snapshotted"
    );
}

/// `snapguard.yml` with `line` added under `database:`.
fn with_database_setting(app: &App, line: &str) {
    let path = app.ws.path().join("snapguard.yml");
    let config = std::fs::read_to_string(&path).unwrap().replacen(
        "database:\n",
        &format!("database:\n  {line}\n"),
        1,
    );
    std::fs::write(path, config).unwrap();
}

#[test]
fn a_too_old_pg_dump_stops_plan_as_it_stops_deploy() {
    let app = App::new("plan_oldtools", "fs");
    app.configure("never", "", "");
    let bin = app.ws.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let fake = bin.join("pg_dump");
    std::fs::write(&fake, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 12.19'\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    with_database_setting(&app, &format!("pg_bin_dir: {}", bin.display()));
    plan_refuses_as_deploy_does(&app, 3, "must be version 15 or newer");
}

#[test]
fn an_unwritable_store_stops_plan_as_it_stops_deploy() {
    let app = App::new("plan_store", "fs");
    // The store's directory would be inside a regular file.
    std::fs::write(app.ws.path().join("blocker"), "").unwrap();
    app.configure("never", "", "");
    let path = app.ws.path().join("snapguard.yml");
    let config = std::fs::read_to_string(&path)
        .unwrap()
        .replace("file://./backups", "file://./blocker/backups");
    std::fs::write(path, config).unwrap();
    plan_refuses_as_deploy_does(&app, 3, "blocker/backups");
}

#[test]
fn a_failing_before_check_stops_plan_as_it_stops_deploy() {
    let app = App::new("plan_before", "fs");
    app.configure(
        "never",
        "",
        "checks:\n  before:\n    - { name: no_items, sql: 'SELECT id FROM items', expect: empty }\n",
    );
    plan_refuses_as_deploy_does(&app, 3, "before-check(s) failed: `no_items`");
}

#[test]
fn a_bad_check_stops_plan_as_it_stops_deploy() {
    let app = App::new("plan_badcheck", "fs");
    app.configure(
        "never",
        "",
        "checks:\n  after:\n    - { name: typo, sql: 'SELEC 1', expect: empty }\n",
    );
    plan_refuses_as_deploy_does(&app, 3, "check `typo`");
}

#[test]
fn a_broken_migration_stops_plan_as_it_stops_deploy() {
    let app = App::new("plan_badfile", "fs");
    app.configure("never", "", "");
    app.migration("2_bad.sql", "BEGIN;\nSELECT 1;\n");
    plan_refuses_as_deploy_does(&app, 3, "2_bad.sql");
}

/// Holds the deploy lock of `db` from a `psql` session until killed.
fn hold_lock(db: &str) -> Child {
    let mut child = Command::new("psql")
        .arg(pg().url("postgres"))
        .args(["-v", "ON_ERROR_STOP=1", "-qAt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::{BufRead, Write};
    let mut stdin = child.stdin.take().unwrap();
    writeln!(
        stdin,
        "SELECT pg_advisory_lock(1936613744, hashtext('{db}'));\nSELECT 'held';"
    )
    .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "held" {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "psql ended");
    }
    // Keep stdin open: psql holds the session (and the lock) until killed.
    std::mem::forget(stdin);
    child
}

#[test]
fn a_held_lock_stops_plan_with_exit_6_without_taking_it() {
    let app = App::new("plan_locked", "fs");
    app.configure("never", "", "");
    let mut holder = hold_lock(&app.db);
    plan_refuses_as_deploy_does(&app, 6, "another snapguard holds the deploy lock");
    holder.kill().unwrap();
    holder.wait().unwrap();
    // This database's lock only (other tests deploy beside this one), and
    // once the killed holder's backend has gone: it notices its client's
    // end on its own time.
    let held = || {
        psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid::int4 = 1936613744 \
                 AND objid::int4 = hashtext('{}')",
                app.db
            ),
        )
    };
    wait_until(
        "the holder's session to end",
        Duration::from_secs(30),
        || held() == "0",
    );
    // Once free, plan passes and leaves the lock free for the deploy.
    app.ws.run(&["plan"]).expect_code(0);
    assert_eq!(held(), "0");
}

#[test]
fn plan_prints_what_deploy_would_do() {
    let app = App::new("plan_prints", "fs");
    app.configure("never", "", "");
    app.migration(
        "2_index.sql",
        "-- snapguard:no-transaction\nCREATE INDEX CONCURRENTLY items_name ON items (name);\n",
    );
    let run = app.ws.run(&["plan", "--release", "v2"]);
    run.expect_code(0);
    let out = run.stdout();
    for expected in [
        "preflight passed",
        "transaction: per-migration",
        "1_add_note.sql",
        "2_index.sql  [no transaction]",
        "release v2 with `env",
        "(previous: none recorded)",
    ] {
        assert!(out.contains(expected), "{expected} in:\n{out}");
    }
    assert!(!out.contains("PerMigration"), "{out}");
    let run = app.ws.run(&["plan", "--release", "v2", "--json"]);
    run.expect_code(0);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(plan["transaction"], "per-migration");
    assert_eq!(plan["release"], "v2");
    assert_eq!(plan["pending"].as_array().unwrap().len(), 2);
    assert_eq!(plan["nothing_to_deploy"], false);

    // After a deploy the previous release is the one shipped.
    app.deploy("v2").expect_code(0);
    let run = app.ws.run(&["plan", "--release", "v3", "--json"]);
    run.expect_code(0);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(plan["previous_release"], "v2");
    assert_eq!(plan["pending"].as_array().unwrap().len(), 0);
}

#[test]
fn a_plan_without_switches_or_release_command_says_so() {
    let db = seeded_db("plan_bare");
    let ws = Workspace::new(&fs_config(&db, "migrations:\n  dir: migrations\n"));
    ws.migrations(&[("1_note.sql", "ALTER TABLE items ADD COLUMN note text;\n")]);
    let run = ws.run(&["plan", "--release", "v7"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(
        out.contains("  1. maintenance on: no switch configured"),
        "{out}"
    );
    assert!(!out.contains("maintenance on:\n"), "{out}");
    assert!(
        out.contains("  5. release v7: recorded only, no `release.command` runs"),
        "{out}"
    );
}
