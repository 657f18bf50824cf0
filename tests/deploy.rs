//! `snapguard deploy` end to end against a real PostgreSQL, a real
//! S3-compatible server and a local HTTP server for webhooks and health:
//! the happy path with every maintenance switch, a failure at each step for
//! each rollback strategy, a failing restore, a killed runner and
//! `recover`, the fence, two deploys at once, and writes after the snapshot.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::app::*;
use common::*;

#[test]
fn the_happy_path_switches_everything_on_and_off_and_ships_the_release() {
    let app = App::new("dep_happy", "s3");
    app.configure(
        "always",
        "",
        "checks:\n  after:\n    - { name: notes_filled, sql: 'SELECT count(*) FROM items WHERE note IS NULL', expect: { value: 0 } }\n",
    );
    let output = app.ws.path().join("gh_output");
    let summary = app.ws.path().join("gh_summary.md");
    let run = Run(app
        .ws
        .snapguard()
        .args(["deploy", "--release", "v1"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap());
    run.expect_code(0);
    assert!(run.stdout().contains("succeeded"), "{}", run.stdout());
    // Workflow commands go to stderr, which the runner reads too.
    let log = run.stderr();
    assert!(
        log.contains(&format!("::add-mask::{}", pg().password())),
        "the password is masked"
    );
    assert!(
        log.contains("::add-mask::Bearer t0ken"),
        "webhook header values are masked"
    );
    assert!(
        !without_masks(&log).contains(pg().password()),
        "the password appears only in its mask"
    );
    assert!(log.contains("::group::snapguard: migrate"), "{log}");
    assert!(log.contains("::endgroup::"), "{log}");

    // The migration ran, the release hook saw its environment.
    assert_eq!(
        psql(&app.db, "SELECT count(*) FROM items WHERE note IS NOT NULL"),
        "500"
    );
    let env = app.file("release.env");
    assert_eq!(env_file(&env, "SNAPGUARD_RELEASE").as_deref(), Some("v1"));
    assert_eq!(
        env_file(&env, "SNAPGUARD_PREVIOUS_RELEASE").as_deref(),
        Some("")
    );
    let snapshot = env_file(&env, "SNAPGUARD_SNAPSHOT_ID").unwrap();
    assert!(snapshot.contains("dep_happy"), "{env}");

    // Every switch went on, then off, in reverse order.
    assert_eq!(app.file("maintenance.log"), "on\noff\n");
    // The switch went off at the end of a deploy that had succeeded.
    assert_eq!(app.file("outcome.log"), "succeeded\n");
    let requests = app.stub.requests();
    assert_eq!(
        requests.first().map(String::as_str),
        Some("POST /maintenance/on")
    );
    assert!(requests.contains(&"GET /health".to_owned()));
    app.assert_maintenance_off();
    // The clone of a successful deploy is not kept.
    assert!(databases_like("dep_happy__sg_").is_empty());

    // GitHub outputs and summary.
    let outputs = std::fs::read_to_string(&output).unwrap();
    assert!(outputs.contains("outcome=succeeded"), "{outputs}");
    assert!(
        outputs.contains(&format!("snapshot-id={snapshot}")),
        "{outputs}"
    );
    assert!(outputs.contains("applied=1"), "{outputs}");
    assert!(
        outputs.contains("snapshot-uri=s3://dep-happy/prod/snapshots/"),
        "{outputs}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("snapguard deploy: succeeded") && md.contains("notes_filled"),
        "{md}"
    );

    // The ledger knows v1; the next deploy has nothing to do.
    let run = app.ws.run(&["deploy", "--release", "v1"]);
    run.expect_code(0);
    app.configure("always", "", "");
    std::fs::remove_file(app.ws.path().join("maintenance.log")).unwrap();
    let run = Run(app
        .ws
        .snapguard()
        .args(["--config", "snapguard.yml", "plan"])
        .output()
        .unwrap());
    run.expect_code(0);
}

#[test]
fn nothing_pending_and_no_release_command_is_nothing_to_deploy() {
    let app = App::new("dep_nothing", "fs");
    app.configure("never", "", "");
    // Apply the pending migration with the migrator alone.
    app.ws.run(&["migrate"]).expect_code(0);
    let config = app.file("snapguard.yml");
    let without_release: String = config
        .lines()
        .take_while(|l| !l.starts_with("release:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(app.ws.path().join("snapguard.yml"), without_release).unwrap();
    let run = app.deploy("v1");
    run.expect_code(0);
    assert!(
        run.stdout().contains("nothing to deploy"),
        "{}",
        run.stdout()
    );
    assert_eq!(
        app.file("maintenance.log"),
        "",
        "maintenance was never switched on"
    );
    assert!(app.stub.requests().is_empty());
    assert_eq!(app.report()["outcome"], "nothing_to_deploy");
}

/// A failure at `step`, rolled back by `local_clone`'s strategy (`expect`):
/// afterwards the database equals the pre-deploy one, the previous release
/// hook ran with the right environment, maintenance is off, exit 4, and the
/// report says why. One test per step and strategy, so that one failing
/// case cannot hide another.
fn fails_at_and_rolls_back(step: &str, local_clone: &str, expect: &str) {
    let strategy = if local_clone == "always" {
        "clone"
    } else {
        "store"
    };
    let app = App::new(&format!("dep_{step}_{strategy}"), "s3");
    app.configure(local_clone, "", "");
    app.deploy("v1").expect_code(0);
    let before = fingerprint(&app.db);

    let after_check = "checks:\n  after:\n    - { name: impossible, sql: 'SELECT count(*) FROM items', expect: { value: 7 } }\n";
    let (release_extra, extra, why) = match step {
        "migrate" => (
            "",
            "",
            "column \"missing\" of relation \"items\" does not exist",
        ),
        "verify" => ("", after_check, "impossible"),
        "release" => ("; echo release broke >&2; exit 3", "", "exit status: 3"),
        "health" => ("", "", "/…` (release.health.url) was not healthy"),
        other => panic!("no case for step {other}"),
    };
    app.migration(
        "2_widen.sql",
        "ALTER TABLE items ADD COLUMN price numeric;\nUPDATE items SET price = id;\n",
    );
    if step == "migrate" {
        app.migration(
            "3_broken.sql",
            "ALTER TABLE items\n  ALTER COLUMN missing TYPE int;\n",
        );
    }
    app.stub
        .set_status("/health", if step == "health" { 503 } else { 200 });
    app.configure(local_clone, release_extra, extra);
    let _ = std::fs::remove_file(app.ws.path().join("rollback.env"));
    let run = app.deploy("v2");
    run.expect_code(4);
    assert!(
        run.stderr().contains(why) || run.stdout().contains(why),
        "{step}: expected `{why}`\n{}\n{}",
        run.stdout(),
        run.stderr()
    );
    // The cause is a chain, one `caused by:` line per error.
    assert!(
        run.stderr()
            .contains(&format!("caused by: {step} failed\ncaused by: ")),
        "{}",
        run.stderr()
    );
    let report = app.report();
    assert_eq!(report["outcome"], "rolled_back", "{step}");
    assert_eq!(report["failure"]["step"], step, "{step}");
    assert!(
        report["rollback"]["database"]
            .as_str()
            .unwrap()
            .starts_with(expect),
        "{step}: {}",
        report["rollback"]
    );
    if step == "migrate" {
        assert_eq!(report["failure"]["file"], "migrations/3_broken.sql");
        assert_eq!(report["failure"]["line"], 1);
    }
    assert_eq!(
        fingerprint(&app.db),
        before,
        "{step}: the database is not the pre-deploy one"
    );
    app.assert_maintenance_off();
    let rollback = app.file("rollback.env");
    if matches!(step, "release" | "health") {
        assert_eq!(
            env_file(&rollback, "SNAPGUARD_PREVIOUS_RELEASE").as_deref(),
            Some("v1"),
            "{step}"
        );
        assert_eq!(
            env_file(&rollback, "SNAPGUARD_RELEASE").as_deref(),
            Some("v2"),
            "{step}"
        );
    } else {
        assert_eq!(
            rollback, "",
            "{step}: no release happened, so none is rolled back"
        );
    }
}

#[test]
fn a_failed_migration_is_rolled_back_by_the_clone_swap() {
    fails_at_and_rolls_back("migrate", "always", "clone swap");
}

#[test]
fn a_failed_verify_is_rolled_back_by_the_clone_swap() {
    fails_at_and_rolls_back("verify", "always", "clone swap");
}

#[test]
fn a_failed_release_is_rolled_back_by_the_clone_swap() {
    fails_at_and_rolls_back("release", "always", "clone swap");
}

#[test]
fn a_failed_health_check_is_rolled_back_by_the_clone_swap() {
    fails_at_and_rolls_back("health", "always", "clone swap");
}

#[test]
fn a_failed_migration_is_rolled_back_by_the_store_restore() {
    fails_at_and_rolls_back("migrate", "never", "store restore");
}

#[test]
fn a_failed_verify_is_rolled_back_by_the_store_restore() {
    fails_at_and_rolls_back("verify", "never", "store restore");
}

#[test]
fn a_failed_release_is_rolled_back_by_the_store_restore() {
    fails_at_and_rolls_back("release", "never", "store restore");
}

#[test]
fn a_failed_health_check_is_rolled_back_by_the_store_restore() {
    fails_at_and_rolls_back("health", "never", "store restore");
}

#[test]
fn with_transaction_all_a_failed_migration_leaves_nothing_to_restore() {
    let app = App::new("dep_all", "fs");
    app.configure("never", "", "");
    let config = app.file("snapguard.yml").replace(
        "migrations:\n  dir: migrations\n",
        "migrations:\n  dir: migrations\n  transaction: all\n",
    );
    std::fs::write(app.ws.path().join("snapguard.yml"), config).unwrap();
    app.migration(
        "2_broken.sql",
        "ALTER TABLE items ALTER COLUMN missing TYPE int;\n",
    );
    let before = fingerprint(&app.db);
    let run = app.deploy("v1");
    run.expect_code(4);
    let report = app.report();
    assert!(
        report["rollback"]["database"]
            .as_str()
            .unwrap()
            .starts_with("nothing to restore"),
        "{}",
        report["rollback"]
    );
    assert_eq!(fingerprint(&app.db), before);
    app.assert_maintenance_off();
}

#[test]
fn a_restore_that_fails_leaves_maintenance_on_and_says_what_to_do() {
    let app = App::new("dep_restore_fails", "fs");
    // The release command deletes the snapshot's archive, then fails: the
    // rollback has no clone and nothing to restore from.
    app.configure("never", "; rm -f backups/snapshots/*/dump; exit 1", "");
    let run = app.deploy("v1");
    run.expect_code(5);
    let out = run.stdout();
    let err = run.stderr();
    assert!(
        err.contains("release failed") || err.contains("release.command"),
        "{err}"
    );
    assert!(
        err.contains("store restore of"),
        "both errors are kept: {err}"
    );
    assert!(out.contains("next steps, by hand"), "{out}");
    assert!(out.contains("snapguard recover"), "{out}");
    assert!(out.contains("snapguard restore "), "{out}");
    assert_eq!(app.report()["outcome"], "rollback_incomplete");
    // Maintenance stays on: the flag file is there, the role is fenced.
    assert!(app.ws.path().join("maintenance.txt").exists());
    assert!(!app.can_login());
    // The next deploy refuses until a human recovers.
    let run = app.deploy("v2");
    run.expect_code(3);
    run.expect_stderr("snapguard recover");
    // Forced to give up on the database, the human puts the role back:
    // recover cannot restore either, and says so again.
    app.ws.run(&["recover"]).expect_code(5);
    psql("postgres", &format!("ALTER ROLE {} LOGIN", app.role));
}

#[test]
fn a_killed_deploy_blocks_the_next_and_recover_rolls_it_back() {
    let app = App::new("dep_killed", "s3");
    app.configure("always", "", "");
    let before = fingerprint(&app.db);
    let child = deploy_in_migration(&app);
    kill9(child); // no cleanup at all
    assert!(!app.can_login(), "the fence is still up");

    let run = app.deploy("v1");
    run.expect_code(3);
    run.expect_stderr("did not finish");
    run.expect_stderr("snapguard recover");

    // Rolled back, as a failed deploy would be: exit 4.
    let run = app.ws.run(&["recover"]);
    run.expect_code(4);
    assert!(run.stdout().contains("rolled back"), "{}", run.stdout());
    assert_eq!(fingerprint(&app.db), before);
    app.assert_maintenance_off();
    app.ws.run(&["recover"]).expect_code(0);
    let run = app.ws.run(&["recover"]);
    assert!(run.stdout().contains("nothing to recover"));
}

#[test]
fn a_signal_during_a_migration_rolls_back_in_process() {
    let app = App::new("dep_sigterm", "fs");
    app.configure("always", "", "");
    let before = fingerprint(&app.db);
    let mut child = deploy_in_migration(&app);
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    // A second signal once the rollback is under way is only logged: the
    // rollback is not cut short.
    use std::io::BufRead;
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    while !log.contains("rolling back") {
        assert!(
            stderr.read_line(&mut log).unwrap() > 0,
            "no rollback: {log}"
        );
    }
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(4), "{log}");
    assert!(log.contains("cancelling"), "{log}");
    assert!(
        log.contains("still cleaning up; not stopping before it is done"),
        "the second signal landed during the rollback: {log}"
    );
    assert_eq!(fingerprint(&app.db), before);
    app.assert_maintenance_off();
    assert_eq!(app.report()["failure"]["step"], "migrate");
}

/// A signal during a step that runs to its end (an external migrator
/// finishing its work) is the failure of that step, not of the next.
#[test]
fn sigint_during_an_external_migrator_is_reported_at_migrate() {
    let app = App::new("dep_sigint_ext", "fs");
    app.configure("never", "", "");
    let config = app.ws.path().join("snapguard.yml");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "migrations:\n",
        "migrations:\n  command: touch migrator.started; sleep 2\n",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let child = spawn_deploy(&app);
    let started = app.ws.path().join("migrator.started");
    wait_until("the migrator", Duration::from_secs(30), || started.exists());
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let run = Run(child.wait_with_output().unwrap());
    run.expect_code(4);
    let report = app.report();
    assert_eq!(report["failure"]["step"], "migrate", "{report}");
    assert!(
        report["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("cancel"),
        "{report}"
    );
    app.assert_maintenance_off();
}

#[test]
fn the_fence_ends_a_writing_session_and_restores_the_role() {
    let app = App::new("dep_fence", "fs");
    app.configure("never", "", "");
    // An application session writing in a loop, as the fenced role.
    let url = app.role_url();
    let mut writer = std::process::Command::new(pg().bin_dir().join("psql"))
        .args([
            "-X",
            "-q",
            &url,
            "-c",
            "DO $$ BEGIN LOOP INSERT INTO items (name) VALUES ('live'); COMMIT; PERFORM pg_sleep(0.02); END LOOP; END $$",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the writer", Duration::from_secs(10), || {
        psql(
            &app.db,
            "SELECT count(*) > 0 FROM items WHERE name = 'live'",
        ) == "t"
    });
    let run = app.deploy("v1");
    run.expect_code(0);
    let status = writer.wait().unwrap();
    assert!(!status.success(), "the writer's session was ended");
    assert!(app.can_login(), "the role can log in again");
    app.assert_maintenance_off();

    // A deploy role that could not end the application's sessions (no
    // `pg_signal_backend`), nor roll back (no `CREATEDB`, not the owner):
    // refused at preflight with each missing grant, before maintenance or
    // the fence, rather than a fence that never clears mid-deploy.
    psql(
        "postgres",
        "DROP ROLE IF EXISTS dep_fence_deployer; CREATE ROLE dep_fence_deployer LOGIN CREATEROLE PASSWORD 'd'",
    );
    psql(
        &app.db,
        "GRANT USAGE ON SCHEMA snapguard TO dep_fence_deployer; GRANT SELECT ON ALL TABLES IN SCHEMA snapguard TO dep_fence_deployer; GRANT INSERT, UPDATE ON snapguard.deploys TO dep_fence_deployer",
    );
    app.migration("2_more.sql", "ALTER TABLE items ADD COLUMN more int;\n");
    let before = fingerprint(&app.db);
    let config = app
        .file("snapguard.yml")
        .replace(
            &format!("postgres:{}@", pg().password()),
            "dep_fence_deployer:d@",
        )
        .replace("wait: 5s", "wait: 1s");
    std::fs::write(app.ws.path().join("snapguard.yml"), config).unwrap();
    let log_before = app.file("maintenance.log");
    let run = app.deploy("v2");
    run.expect_code(3);
    let err = run.stderr();
    for grant in [
        "`ALTER ROLE \"dep_fence_deployer\" CREATEDB`",
        "`ALTER DATABASE \"dep_fence\" OWNER TO \"dep_fence_deployer\"`",
    ] {
        assert!(err.contains(grant), "{grant}: {err}");
    }
    assert_eq!(fingerprint(&app.db), before);
    assert!(app.can_login());
    assert_eq!(
        app.file("maintenance.log"),
        log_before,
        "maintenance never went on"
    );

    // With what the rollback needs, the fence's own grant is named.
    psql(
        "postgres",
        "ALTER ROLE dep_fence_deployer CREATEDB; ALTER DATABASE dep_fence OWNER TO dep_fence_deployer",
    );
    let run = app.deploy("v2");
    run.expect_code(3);
    run.expect_stderr("`GRANT pg_signal_backend TO \"dep_fence_deployer\"`");
    psql("postgres", "ALTER DATABASE dep_fence OWNER TO postgres");
    assert_eq!(fingerprint(&app.db), before);
}

#[test]
fn a_second_deploy_at_the_same_time_exits_6_and_touches_nothing() {
    let app = App::new("dep_twice", "fs");
    app.configure("never", "", "");
    let first = deploy_in_migration(&app);
    let log_before = app.file("maintenance.log");
    let run = app.deploy("v1");
    run.expect_code(6);
    run.expect_stderr("holds the deploy lock");
    assert_eq!(
        app.file("maintenance.log"),
        log_before,
        "the second deploy switched nothing"
    );
    // Let the first one finish quickly: cancel it, it rolls back.
    sigterm(&first);
    Run(first.wait_with_output().unwrap()).expect_code(4);
    app.assert_maintenance_off();
}

#[test]
fn a_write_after_the_snapshot_makes_the_rollback_refuse_without_force() {
    let app = App::new("dep_guard", "fs");
    // No fence: the release command writes as the application would, then
    // fails, so the rollback has to decide.
    let url = app.role_url();
    let psql_bin = pg().bin_dir().join("psql");
    std::fs::write(
        app.ws.path().join("write.sql"),
        "INSERT INTO items (name) VALUES ('order after snapshot');\n",
    )
    .unwrap();
    app.configure(
        "always",
        &format!(
            "; {} -X -q \"{url}\" -f write.sql; exit 1",
            psql_bin.display()
        ),
        "",
    );
    let config = app.file("snapguard.yml").replace(
        &format!(
            "  - postgres_fence: {{ roles: [{}], wait: 5s }}\n",
            app.role
        ),
        "",
    );
    std::fs::write(app.ws.path().join("snapguard.yml"), config).unwrap();
    let run = app.deploy("v1");
    run.expect_code(5);
    run.expect_stderr("someone may have written");
    run.expect_stderr("--force");
    assert_eq!(
        psql(
            &app.db,
            "SELECT count(*) FROM items WHERE name = 'order after snapshot'"
        ),
        "1",
        "nothing was restored over the write"
    );
    assert!(
        app.ws.path().join("maintenance.txt").exists(),
        "maintenance stays on"
    );

    // Plain `recover`, the first command printed, honours the refusal.
    let run = app.ws.run(&["recover"]);
    run.expect_code(5);
    run.expect_stderr("someone may have written");
    assert_eq!(
        psql(
            &app.db,
            "SELECT count(*) FROM items WHERE name = 'order after snapshot'"
        ),
        "1"
    );
    let run = app.ws.run(&["recover", "--force"]);
    run.expect_code(4);
    assert_eq!(
        psql(
            &app.db,
            "SELECT count(*) FROM items WHERE name = 'order after snapshot'"
        ),
        "0"
    );
    let kept: Vec<String> = databases_like("dep_guard__failed_");
    assert_eq!(kept.len(), 1, "the failed database is kept: {kept:?}");
    assert_eq!(
        psql(
            &kept[0],
            "SELECT count(*) FROM items WHERE name = 'order after snapshot'"
        ),
        "1"
    );
    assert!(!app.ws.path().join("maintenance.txt").exists());
}

#[test]
fn manual_maintenance_and_prune() {
    let app = App::new("dep_manual", "fs");
    app.configure("always", "", "");
    let on = app.ws.run(&["maintenance", "on", "--json"]);
    on.expect_code(0);
    let on: serde_json::Value = serde_json::from_str(&on.stdout()).unwrap();
    assert_eq!(on["maintenance"], "on");
    assert!(on["switches"].as_u64().unwrap() >= 1, "{on}");
    assert!(app.ws.path().join("maintenance.txt").exists());
    assert!(!app.can_login());
    app.ws.run(&["maintenance", "on"]).expect_code(3);
    let off = app.ws.run(&["maintenance", "off", "--json"]);
    off.expect_code(0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&off.stdout()).unwrap()["maintenance"],
        "off"
    );
    app.assert_maintenance_off();

    // Three snapshots, keep the newest one; an old failed database and an
    // orphaned clone go too.
    for _ in 0..3 {
        app.ws.run(&["snapshot"]).expect_code(0);
    }
    let config = app.file("snapguard.yml").replace(
        "  local_clone: always\n",
        "  local_clone: always\n  retention: { keep_last: 1, keep_days: 0 }\n",
    );
    std::fs::write(app.ws.path().join("snapguard.yml"), config).unwrap();
    psql(
        "postgres",
        "DROP DATABASE IF EXISTS dep_manual__failed_20200101t000000z_abcd",
    );
    psql(
        "postgres",
        "CREATE DATABASE dep_manual__failed_20200101t000000z_abcd",
    );
    psql(
        "postgres",
        "DROP DATABASE IF EXISTS dep_manual__sg_20200101t000000z_abcd",
    );
    psql(
        "postgres",
        "CREATE DATABASE dep_manual__sg_20200101t000000z_abcd",
    );
    let run = app.ws.run(&["prune", "--dry-run"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout().matches("would delete snapshot").count(),
        2,
        "{}",
        run.stdout()
    );
    assert!(db_exists("dep_manual__failed_20200101t000000z_abcd"));
    let planned = app.ws.run(&["prune", "--dry-run", "--json"]);
    planned.expect_code(0);
    let planned: serde_json::Value = serde_json::from_str(&planned.stdout()).unwrap();
    assert_eq!(planned["dry_run"], true);
    assert_eq!(
        planned["snapshots"].as_array().unwrap().len(),
        2,
        "{planned}"
    );
    assert_eq!(
        planned["databases"].as_array().unwrap().len(),
        2,
        "{planned}"
    );
    assert_eq!(planned["kept"], 1);
    assert!(db_exists("dep_manual__failed_20200101t000000z_abcd"));
    let pruned = app.ws.run(&["prune", "--json"]);
    pruned.expect_code(0);
    let pruned: serde_json::Value = serde_json::from_str(&pruned.stdout()).unwrap();
    assert_eq!(pruned["dry_run"], false);
    assert_eq!(pruned["snapshots"], planned["snapshots"]);
    let listed = app.ws.run(&["snapshots", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout()).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!db_exists("dep_manual__failed_20200101t000000z_abcd"));
    assert!(!db_exists("dep_manual__sg_20200101t000000z_abcd"));
    assert!(db_exists("dep_manual"));
}

#[test]
fn bad_maintenance_config_names_the_line() {
    let app = App::new("dep_badcfg", "fs");
    std::fs::write(
        app.ws.path().join("snapguard.yml"),
        format!(
            "database:\n  url: {}\nstore:\n  url: file://./b\nmaintenance:\n  - file: {{ path: x }}\n    command: {{ on: a, off: b }}\n  - http: {{ on: {{ url: 'ftp://x' }}, off: {{ url: 'http://x' }} }}\n",
            pg().url(&app.db)
        ),
    )
    .unwrap();
    let run = app.ws.run(&["deploy"]);
    run.expect_code(2);
    run.expect_stderr("snapguard.yml:6");
    run.expect_stderr("exactly one of");
    let _: PathBuf = app.ws.path().join("b");
}

/// Where the notify webhook of the test below listens: a Slack-style path,
/// whose last segment is the hook's secret.
const HOOK_PATH: &str = "/services/T000/B000/hooksecretXYZ";

fn assert_no_hook_secret(run: &Run) {
    for secret in ["hooksecretXYZ", "s3cr3t-hook", "tok-t0ken"] {
        assert!(
            !run.stderr().contains(secret) && !run.stdout().contains(secret),
            "`{secret}` in the output:\n{}\n{}",
            run.stdout(),
            run.stderr()
        );
    }
}

#[test]
fn every_outcome_is_notified_once_and_hooks_see_it_once_settled() {
    let app = App::new("dep_notify", "fs");
    let hook = HttpStub::start();
    app.configure(
        "never",
        "",
        &format!(
            "notify:\n  - url: '{}/services/T000/B000/hooksecretXYZ?token=s3cr3t-hook'\n    headers: {{ X-Token: 'tok-${{HOOK_TOKEN:-t0ken}}' }}\n",
            hook.url
        ),
    );
    app.migration("2_extra.sql", "ALTER TABLE items ADD COLUMN extra text;\n");
    let first = app.deploy("v1");
    first.expect_code(0);
    // The second fails its health check, after the release shipped: the
    // release's rollback hook runs too.
    app.migration("3_more.sql", "ALTER TABLE items ADD COLUMN more text;\n");
    app.stub.set_status("/health", 503);
    let second = app.deploy("v2");
    second.expect_code(4);
    app.stub.set_status("/health", 200);

    let bodies = hook.bodies(HOOK_PATH);
    assert_eq!(bodies.len(), 2, "once per deploy: {bodies:?}");
    let ok: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(ok["snapguard"]["outcome"], "succeeded", "{ok}");
    assert_eq!(ok["snapguard"]["release"], "v1");
    assert!(ok["snapguard"]["deploy_id"].as_str().unwrap().len() > 10);
    assert!(
        ok["text"]
            .as_str()
            .unwrap()
            .starts_with("snapguard deploy of `dep_notify` (release v1): succeeded"),
        "{ok}"
    );
    let failed: serde_json::Value = serde_json::from_str(&bodies[1]).unwrap();
    assert_eq!(failed["snapguard"]["outcome"], "rolled_back", "{failed}");
    assert_eq!(failed["snapguard"]["failed_step"], "health", "{failed}");
    assert!(
        failed["text"]
            .as_str()
            .unwrap()
            .contains("failed at health"),
        "{failed}"
    );
    // The webhook's URL (its path is a Slack-style hook's secret, its
    // query a token) and header are credentials: never in the output.
    for run in [&first, &second] {
        assert_no_hook_secret(run);
    }
    // SNAPGUARD_OUTCOME: empty for the release hook (nothing settled yet),
    // `rolled_back` for the rollback hook, which runs once the database is
    // back.
    assert_eq!(
        env_file(&app.file("release.env"), "SNAPGUARD_OUTCOME").as_deref(),
        Some("")
    );
    assert_eq!(
        env_file(&app.file("rollback.env"), "SNAPGUARD_OUTCOME").as_deref(),
        Some("rolled_back")
    );
    assert_eq!(app.file("outcome.log"), "succeeded\nrolled_back\n");

    // A webhook that fails changes nothing about the deploy.
    hook.set_status(HOOK_PATH, 500);
    let third = app.deploy("v3");
    third.expect_code(0);
    assert!(
        third.stderr().contains("notification failed"),
        "{}",
        third.stderr()
    );
    assert_eq!(hook.bodies(HOOK_PATH).len(), 2 + 3, "three attempts");
    assert_no_hook_secret(&third);
    // Down altogether: the warnings name the host only.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    app.configure(
        "never",
        "",
        &format!(
            "notify:\n  - url: 'http://{closed}{HOOK_PATH}?token=s3cr3t-hook'\n    headers: {{ X-Token: 'tok-${{HOOK_TOKEN:-t0ken}}' }}\n"
        ),
    );
    let fourth = app.deploy("v4");
    fourth.expect_code(0);
    assert!(fourth.stderr().contains("notification failed"));
    assert_no_hook_secret(&fourth);
}
