//! The clone-first window (`snapshot.offsite`): the store snapshot is
//! `pg_dump` of the local clone, streamed while the migrations, checks and
//! release run. Each policy succeeds and fails at each step against a real
//! PostgreSQL and a real S3-compatible server, and the upload itself is
//! broken, cut off by a store outage, and orphaned by a SIGKILL, after
//! which `recover` (run as printed) finishes or discards it.
//!
//! The upload's `pg_dump` is the real one behind a small shell gate
//! (`database.pg_bin_dir`), so a test decides when the dump starts, holds
//! a session on the clone the way a dump does, or dies half-way through
//! its output, without depending on how long anything takes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::app::*;
use common::*;

const POLICIES: [&str; 3] = ["before-migrate", "before-maintenance-off", "after"];

/// `snapguard.yml` for `app` with `snapshot.offsite: policy` (the full
/// switch set of [`App::configure`]) and `extra` YAML.
fn configure(app: &App, policy: &str, release_extra: &str, extra: &str) {
    app.configure(&format!("auto\n  offsite: {policy}"), release_extra, extra);
}

/// Snapshots in the store: (committed, incomplete).
fn snapshots(app: &App) -> (usize, usize) {
    let out = run_ok(
        app.ws
            .snapguard()
            .args(["snapshots", "list", "--all", "--json"]),
    );
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let all = list.as_array().unwrap();
    let committed = all
        .iter()
        .filter(|s| s["complete"].as_bool() == Some(true))
        .count();
    (committed, all.len() - committed)
}

fn clones(app: &App) -> Vec<String> {
    databases_like(&format!("{}__sg_", app.db))
}

fn has_note_column(db: &str) -> bool {
    psql(
        db,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note'",
    ) == "1"
}

/// The committed snapshot restored into a scratch database holds the
/// database as it was before the deploy: 500 items, no `note` column.
fn assert_snapshot_is_before_the_deploy(app: &App) {
    let scratch = format!("{}_check", app.db);
    psql("postgres", &format!("DROP DATABASE IF EXISTS {scratch}"));
    run_ok(
        app.ws
            .snapguard()
            .args(["restore", "latest", "--to", &scratch]),
    );
    assert!(
        !has_note_column(&scratch),
        "the snapshot holds the migrated schema"
    );
    assert_eq!(psql(&scratch, "SELECT count(*) FROM items"), "500");
    psql("postgres", &format!("DROP DATABASE {scratch}"));
}

#[test]
fn each_policy_succeeds_with_one_committed_snapshot_of_the_database_before() {
    for policy in POLICIES {
        let app = App::new(&format!("off_ok_{}", policy.replace('-', "_")), "s3");
        configure(&app, policy, "", "");
        let run = app.deploy("v1");
        run.expect_code(0);
        let report = app.report();
        assert_eq!(report["outcome"], "succeeded", "{policy}");
        assert_eq!(report["snapshot"]["offsite"], policy, "{policy}");
        assert_eq!(report["snapshot"]["committed"], true, "{policy}");
        let steps: Vec<&str> = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["step"].as_str().unwrap())
            .collect();
        // The window's end: maintenance off before the upload only with `after`.
        let upload = steps.iter().position(|s| *s == "offsite snapshot");
        let off = steps.iter().position(|s| *s == "maintenance off").unwrap();
        match policy {
            "before-migrate" => assert_eq!(upload, None, "{steps:?}"),
            "before-maintenance-off" => assert!(upload.unwrap() < off, "{steps:?}"),
            _ => assert!(upload.unwrap() > off, "{steps:?}"),
        }
        assert_eq!(snapshots(&app), (1, 0), "{policy}");
        if policy != "before-migrate" {
            // The journal recorded the upload: its id first, then how it ended.
            let journal = journal(s3(), &format!("off-ok-{policy}")).unwrap();
            let offsite = &journal["snapshot"]["offsite"];
            assert_eq!(offsite["state"], "committed", "{journal}");
            assert_eq!(offsite["id"], report["snapshot"]["id"], "{journal}");
            assert!(offsite["dumped_bytes"].as_u64().unwrap() > 0, "{journal}");
        }
        assert!(
            clones(&app).is_empty(),
            "{policy}: the clone outlived the commit"
        );
        assert!(has_note_column(&app.db), "{policy}");
        app.assert_maintenance_off();
        assert_snapshot_is_before_the_deploy(&app);
    }
}

/// A deploy under `policy` that fails at `step`: rolled back (exit 4),
/// the database as before, maintenance off, the clone swapped in, and one
/// committed snapshot in the store.
fn fails_at(policy: &str, step: &str) {
    let app = App::new(&format!("off_{}_{}", step, policy.replace('-', "_")), "s3");
    let (release_extra, extra) = match step {
        "migrate" => {
            app.migration("2_broken.sql", "SELECT 1/0;\n");
            ("", "")
        }
        "verify" => (
            "",
            "checks:\n  after:\n    - { name: no items, sql: 'SELECT id FROM items', expect: empty }\n",
        ),
        "release" => ("; exit 3", ""),
        "health" => {
            app.stub.set_status("/health", 503);
            ("", "")
        }
        _ => unreachable!(),
    };
    configure(&app, policy, release_extra, extra);
    let before = fingerprint(&app.db);
    let run = app.deploy("v1");
    run.expect_code(4);
    let report = app.report();
    assert_eq!(report["failure"]["step"], step, "{policy}");
    assert_eq!(fingerprint(&app.db), before, "{policy} at {step}");
    app.assert_maintenance_off();
    assert_eq!(snapshots(&app), (1, 0), "{policy} at {step}");
    let restored = report["rollback"]["database"].as_str().unwrap().to_owned();
    if step != "migrate" || policy != "before-migrate" {
        assert!(
            restored.starts_with("clone swap"),
            "{policy} at {step}: {restored}"
        );
    }
    assert!(
        clones(&app).is_empty(),
        "{policy} at {step}: {:?}",
        clones(&app)
    );
}

macro_rules! failing_steps {
    ($($name:ident: $policy:literal at $step:literal;)*) => {
        $(
            #[test]
            fn $name() {
                fails_at($policy, $step);
            }
        )*
    };
}

failing_steps! {
    before_migrate_fails_at_migrate: "before-migrate" at "migrate";
    before_migrate_fails_at_verify: "before-migrate" at "verify";
    before_migrate_fails_at_release: "before-migrate" at "release";
    before_migrate_fails_at_health: "before-migrate" at "health";
    before_off_fails_at_migrate: "before-maintenance-off" at "migrate";
    before_off_fails_at_verify: "before-maintenance-off" at "verify";
    before_off_fails_at_release: "before-maintenance-off" at "release";
    before_off_fails_at_health: "before-maintenance-off" at "health";
    after_fails_at_migrate: "after" at "migrate";
    after_fails_at_verify: "after" at "verify";
    after_fails_at_release: "after" at "release";
    after_fails_at_health: "after" at "health";
}

/// A `pg_bin_dir` whose `pg_dump` runs the real one behind a gate in
/// `dir`: it waits for the file `go`; with `break` it dies after 64 KiB
/// of output; with `hold` it holds a session on the database it was
/// asked to dump (as a dump does) until killed. Version queries pass.
fn gated_bin_dir(dir: &Path) -> PathBuf {
    wrapped_tools(
        dir,
        &format!(
            r#"gate="{gate}"
touch "$gate/started"
if [ -e "$gate/hold" ]; then exec $REAL/psql -X -q -c 'SELECT pg_sleep(3600)'; fi
while [ ! -e "$gate/go" ]; do sleep 0.02; done
if [ -e "$gate/break" ]; then $REAL/pg_dump "$@" | head -c 65536; exit 137; fi
exec $REAL/pg_dump "$@""#,
            gate = dir.display(),
        ),
        "exec $REAL/pg_restore \"$@\"",
    )
}

fn gate(app: &App, name: &str) {
    std::fs::write(app.ws.path().join(name), "").unwrap();
}

/// The deploy, in the background, with the tools in `bin`.
fn spawn_deploy(app: &App, bin: &Path) -> Child {
    app.spawn(
        &[("SNAPGUARD_DATABASE_PG_BIN_DIR", bin)],
        &["deploy", "--release", "v1", "--report", "report.json"],
    )
}

fn run_with(app: &App, bin: &Path, args: &[&str]) -> Run {
    Run(app
        .ws
        .snapguard()
        .env("SNAPGUARD_DATABASE_PG_BIN_DIR", bin)
        .args(args)
        .output()
        .unwrap())
}

/// The journal of the one deploy in `bucket` on `server`, as stored.
/// The deploy's journal as the store serves it: only a PUT `s3s-fs` has
/// finished counts, so a test that kills the deploy on what it reads here
/// does not kill it in the middle of that PUT.
fn journal(server: &S3Server, bucket: &str) -> Option<serde_json::Value> {
    let deploys = server.root.join(bucket).join("prod/deploys");
    let entry = std::fs::read_dir(deploys).ok()?.flatten().next()?;
    let key = format!(
        "prod/deploys/{}/journal.json",
        entry.file_name().to_string_lossy()
    );
    serde_json::from_slice(&server.committed(bucket, &key)?).ok()
}

fn journal_step(server: &S3Server, bucket: &str) -> String {
    journal(server, bucket)
        .and_then(|j| j["step"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[test]
fn a_dump_that_dies_mid_upload_rolls_back_under_before_maintenance_off() {
    let app = App::new("off_broken_bmo", "s3");
    configure(&app, "before-maintenance-off", "", "");
    let bin = gated_bin_dir(app.ws.path());
    gate(&app, "go");
    gate(&app, "break");
    let before = fingerprint(&app.db);
    let run = Run(spawn_deploy(&app, &bin).wait_with_output().unwrap());
    run.expect_code(4);
    run.expect_stderr("requires the store snapshot");
    run.expect_stderr("pg_dump failed");
    assert_eq!(fingerprint(&app.db), before);
    app.assert_maintenance_off();
    assert_eq!(snapshots(&app), (0, 0), "nothing half-made is left");
    assert!(clones(&app).is_empty());
}

/// `offsite: after`, and the dump of the clone dies after 64 KiB: the
/// deploy exits 10 with the release live and the clone kept. Returns its
/// run and the gated `pg_bin_dir` (still breaking until `break` is removed).
fn deploy_whose_upload_breaks_after_maintenance_off(app: &App) -> (Run, PathBuf) {
    configure(app, "after", "", "");
    let bin = gated_bin_dir(app.ws.path());
    gate(app, "go");
    gate(app, "break");
    let run = Run(spawn_deploy(app, &bin).wait_with_output().unwrap());
    run.expect_code(10);
    (run, bin)
}

#[test]
fn a_dump_that_dies_mid_upload_under_after_exits_10_and_recover_as_printed_uploads_the_clone() {
    let app = App::new("off_broken_after", "s3");
    let (run, bin) = deploy_whose_upload_breaks_after_maintenance_off(&app);
    run.expect_stderr("THE STORE SNAPSHOT OF THIS DEPLOY FAILED");
    // The release is live: migrated, maintenance off, the clone kept.
    assert!(has_note_column(&app.db));
    app.assert_maintenance_off();
    assert_eq!(clones(&app).len(), 1);
    assert_eq!(snapshots(&app).0, 0);
    assert_eq!(app.report()["outcome"], "offsite_incomplete");
    // A next deploy is refused until the deploy is finished.
    run_with(&app, &bin, &["deploy", "--release", "v2"]).expect_code(3);

    std::fs::remove_file(app.ws.path().join("break")).unwrap();
    let printed = printed_commands(&run);
    assert_eq!(
        printed.last().map(String::as_str),
        Some("snapguard recover"),
        "{printed:?}"
    );
    let recover = app.ws.run_printed(printed.last().unwrap());
    recover.expect_code(0);
    assert_eq!(snapshots(&app), (1, 0));
    assert!(clones(&app).is_empty(), "the clone outlived the commit");
    assert!(has_note_column(&app.db));
    app.assert_maintenance_off();
    assert_snapshot_is_before_the_deploy(&app);
    app.ws.run(&["recover"]).expect_code(0);
}

/// `after`: the upload failed with maintenance off, then someone dropped the
/// clone, the only copy of the database before the deploy. `recover` cannot
/// take the snapshot any more: not a success (it said "succeeded", exit 0),
/// but exit 5 saying no copy exists; its printed way out closes the deploy.
#[test]
fn the_clone_dropped_before_any_snapshot_is_no_success_for_recover() {
    let app = App::new("off_after_no_copy", "s3");
    let (_, bin) = deploy_whose_upload_breaks_after_maintenance_off(&app);
    let clone = clones(&app).pop().expect("the clone kept for recover");
    psql("postgres", &format!("DROP DATABASE {clone}"));
    std::fs::remove_file(app.ws.path().join("break")).unwrap();

    let recover = run_with(&app, &bin, &["recover"]);
    recover.expect_code(5);
    recover.expect_stderr("passed its steps, but no copy of the database before it exists: its store snapshot never committed and the clone it was taken from is gone; maintenance is off");
    assert!(has_note_column(&app.db), "the deploy's migrations stay");
    app.assert_maintenance_off();
    assert_eq!(snapshots(&app), (0, 0));
    // Asking again says the same.
    run_with(&app, &bin, &["recover"]).expect_code(5);

    let printed = printed_commands(&recover);
    assert_eq!(
        printed,
        ["snapguard snapshot", "snapguard recover --accept-current"],
        "{}",
        recover.stdout()
    );
    for line in &printed {
        app.ws.run_printed(line).expect_code(0);
    }
    assert_eq!(
        snapshots(&app).0,
        1,
        "a snapshot of the database as it is now"
    );
    app.assert_maintenance_off();
    let last = app.ws.run(&["recover"]);
    last.expect_code(0);
    assert!(
        last.stdout().contains("nothing to recover"),
        "{}",
        last.stdout()
    );
}

/// An application whose store is `server` (one a test may stop), and the
/// store's bucket.
fn app_on_its_own_store(name: &str, server: &S3Server) -> (App, String) {
    let app = App::new(name, "fs");
    let bucket = server.bucket(&name.replace('_', "-"));
    let store = format!(
        "store:\n  url: s3://{bucket}/prod\n  endpoint: {}\n  region: us-east-1\n  path_style: true\n",
        server.endpoint
    );
    (App { store, ..app }, bucket)
}

#[test]
fn the_store_down_during_the_upload_after_maintenance_off_then_recover() {
    let mut server = S3Server::start();
    let (app, bucket) = app_on_its_own_store("off_store_down", &server);
    configure(&app, "after", "", "");
    let bin = gated_bin_dir(app.ws.path());
    let child = spawn_deploy(&app, &bin);
    // The steps passed and maintenance is off; the dump waits at its gate.
    wait_until(
        "the upload wait after maintenance off",
        Duration::from_secs(60),
        || journal_step(&server, &bucket) == "offsite",
    );
    assert!(app.ws.path().join("started").exists());
    app.assert_maintenance_off();
    server.stop();
    gate(&app, "go");
    let run = Run(child.wait_with_output().unwrap());
    run.expect_code(10);
    assert_eq!(
        clones(&app).len(),
        1,
        "the clone is the only copy of the database before"
    );

    server.restart();
    let recover = run_with(&app, &bin, &["recover"]);
    recover.expect_code(0);
    let objects = server.objects(&bucket);
    assert_eq!(
        objects
            .iter()
            .filter(|o| o.ends_with("manifest.json"))
            .count(),
        1,
        "{objects:?}"
    );
    assert!(clones(&app).is_empty());
    let journal = journal(&server, &bucket).unwrap();
    assert_eq!(journal["state"], "succeeded");
    assert_eq!(journal["snapshot"]["offsite"]["state"], "committed");
}

/// The store goes down while the window waits for the upload: the deploy
/// rolls back by the clone swap without its store (exit 4) and says its
/// journal there stays open. Once the store is back, the printed `recover`
/// closes it from the database's record of the rollback (exit 4), never
/// finishing it as a success (it exited 5, "manual action is needed",
/// although nothing was left to do).
#[test]
fn the_store_down_during_the_upload_before_maintenance_off_rolls_back_and_recover_closes_it() {
    let mut server = S3Server::start();
    let (app, bucket) = app_on_its_own_store("off_store_down_bmo", &server);
    configure(&app, "before-maintenance-off", "", "");
    let before = fingerprint(&app.db);
    let bin = gated_bin_dir(app.ws.path());
    let child = spawn_deploy(&app, &bin);
    wait_until(
        "the window waiting for the upload",
        Duration::from_secs(60),
        || journal_step(&server, &bucket) == "offsite",
    );
    server.stop();
    gate(&app, "go");
    let run = Run(child.wait_with_output().unwrap());
    run.expect_code(4);
    assert_eq!(fingerprint(&app.db), before);
    app.assert_maintenance_off();
    assert!(clones(&app).is_empty(), "the clone was swapped in");
    let printed = printed_commands(&run);
    assert_eq!(
        printed.last().map(String::as_str),
        Some("snapguard recover"),
        "{}",
        run.stdout()
    );

    server.restart();
    let recover = app.ws.run_printed(printed.last().unwrap());
    recover.expect_code(4);
    recover.expect_stderr("had been rolled back by its runner");
    assert_eq!(fingerprint(&app.db), before);
    app.assert_maintenance_off();
    let objects = server.objects(&bucket);
    assert!(
        !objects.iter().any(|o| o.ends_with("manifest.json")),
        "{objects:?}"
    );
    let ledger = objects.iter().any(|o| o.ends_with("releases.json"));
    assert!(!ledger, "no release was recorded as live: {objects:?}");
    assert_eq!(journal(&server, &bucket).unwrap()["state"], "rolled_back");
    let last = run_with(&app, &bin, &["recover"]);
    last.expect_code(0);
    assert!(
        last.stdout().contains("nothing to recover"),
        "{}",
        last.stdout()
    );
    run_with(&app, &bin, &["deploy", "--release", "v2"]).expect_code(0);
}

#[test]
fn sigkill_while_waiting_for_the_upload_then_recover_finishes_the_deploy() {
    let app = App::new("off_kill_wait", "s3");
    let bucket = "off-kill-wait";
    configure(&app, "before-maintenance-off", "", "");
    let bin = gated_bin_dir(app.ws.path());
    let child = spawn_deploy(&app, &bin);
    wait_until(
        "the window waiting for the upload",
        Duration::from_secs(60),
        || journal_step(s3(), bucket) == "offsite",
    );
    kill9(child);
    assert!(!app.can_login(), "maintenance is still on");
    gate(&app, "go");
    let recover = run_with(&app, &bin, &["recover"]);
    recover.expect_code(0);
    recover.expect_stderr("taking the deploy's store snapshot from its clone again");
    assert_eq!(snapshots(&app), (1, 0));
    assert!(clones(&app).is_empty());
    assert!(has_note_column(&app.db));
    app.assert_maintenance_off();
    assert_snapshot_is_before_the_deploy(&app);
    assert_eq!(journal(s3(), bucket).unwrap()["state"], "succeeded");
}

#[test]
fn sigkill_during_a_migration_with_the_dump_on_the_clone_then_recover_rolls_back() {
    let app = App::new("off_kill_migrate", "s3");
    configure(&app, "before-maintenance-off", "", "");
    let bin = gated_bin_dir(app.ws.path());
    // The dump holds a session on the clone and never finishes: the swap
    // must end it.
    gate(&app, "hold");
    let before = fingerprint(&app.db);
    app.migration("2_slow.sql", "SELECT pg_sleep(30);\n");
    let child = spawn_deploy(&app, &bin);
    wait_until(
        "the slow migration and the dump's session",
        Duration::from_secs(60),
        || {
            let sessions = |db: &str, like: &str| {
                psql(
                    "postgres",
                    &format!(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND query LIKE '{like}%'"
                    ),
                )
            };
            sessions(&app.db, "SELECT pg_sleep(30)") == "1"
                && clones(&app)
                    .first()
                    .is_some_and(|c| sessions(c, "SELECT pg_sleep(3600)") == "1")
        },
    );
    kill9(child);

    let run = run_with(&app, &bin, &["recover"]);
    run.expect_code(4);
    assert_eq!(fingerprint(&app.db), before);
    app.assert_maintenance_off();
    assert!(clones(&app).is_empty(), "the clone was swapped in");
    assert_eq!(
        snapshots(&app),
        (0, 0),
        "the half-done upload was discarded"
    );
    assert_eq!(
        psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(3600)%'"
        ),
        "0"
    );
}

/// Someone drops the local clone; then the slow migration fails.
fn drop_the_clone_then_fail_the_migration(app: &App) {
    let clone = clones(app).pop().unwrap();
    psql("postgres", &format!("DROP DATABASE {clone} WITH (FORCE)"));
    psql(
        "postgres",
        &format!(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE 'SELECT pg_sleep(30)%'",
            app.db
        ),
    );
}

#[test]
fn the_clone_gone_and_the_upload_committed_restores_from_the_store() {
    let app = App::new("off_no_clone", "s3");
    configure(&app, "before-maintenance-off", "", "");
    let before = fingerprint(&app.db);
    app.migration("2_slow.sql", "SELECT pg_sleep(30);\n");
    let child = app
        .ws
        .snapguard()
        .args(["deploy", "--release", "v1", "--report", "report.json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        "the committed upload and the slow migration",
        Duration::from_secs(60),
        || snapshots(&app).0 == 1 && slow_migration_running(&app),
    );
    drop_the_clone_then_fail_the_migration(&app);
    let run = Run(child.wait_with_output().unwrap());
    run.expect_code(4);
    run.expect_stderr("the clone swap failed; restoring from the store");
    assert_eq!(fingerprint(&app.db), before);
    app.assert_maintenance_off();
    assert!(
        app.report()["rollback"]["database"]
            .as_str()
            .unwrap()
            .starts_with("store restore")
    );
}

#[test]
fn neither_clone_nor_store_snapshot_stays_in_maintenance_with_exit_5() {
    let app = App::new("off_neither", "s3");
    configure(&app, "before-maintenance-off", "", "");
    let bin = gated_bin_dir(app.ws.path());
    gate(&app, "go");
    gate(&app, "break");
    app.migration("2_slow.sql", "SELECT pg_sleep(30);\n");
    let child = spawn_deploy(&app, &bin);
    wait_until(
        "the failed upload and the slow migration",
        Duration::from_secs(60),
        || {
            app.ws.path().join("started").exists()
                && slow_migration_running(&app)
                && clones(&app).first().is_some_and(|c| {
                    psql(
                        "postgres",
                        &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{c}'"),
                    ) == "0"
                })
        },
    );
    drop_the_clone_then_fail_the_migration(&app);
    let run = Run(child.wait_with_output().unwrap());
    run.expect_code(5);
    run.expect_stderr("no store snapshot was completed");
    assert!(!app.can_login(), "maintenance stays on");
    assert!(app.ws.path().join("maintenance.txt").exists());
}

/// A managed server (RDS and the like): the runner cannot see the data
/// directory's free space, so `local_clone: auto` clones only databases up
/// to `snapshot.clone_limit` (1 GiB when unset); without a clone the
/// snapshot comes before the migrations whatever `snapshot.offsite` says.
/// Seen here through a role that owns the database but may not read the
/// server's settings: the reason names the grant that would show them.
#[test]
fn on_a_server_whose_disk_cannot_be_seen_auto_clones_up_to_clone_limit() {
    let db = create_db("off_managed");
    psql(
        "postgres",
        "DROP ROLE IF EXISTS off_managed_owner; CREATE ROLE off_managed_owner LOGIN CREATEDB PASSWORD 'owner'",
    );
    psql(
        "postgres",
        &format!("ALTER DATABASE {db} OWNER TO off_managed_owner"),
    );
    let url = format!(
        "postgres://off_managed_owner:owner@127.0.0.1:{}/{db}?sslmode=disable",
        pg().port()
    );
    let ws = Workspace::new(&format!(
        "database:\n  url: {url}\nstore:\n  url: file://./backups\nmigrations:\n  dir: migrations\nsnapshot:\n  offsite: after\n"
    ));
    ws.migrations(&[("1_t.sql", "CREATE TABLE t (id int);\n")]);
    let plan = |limit: Option<&str>| -> serde_json::Value {
        let mut command = ws.snapguard();
        command.args(["plan", "--json"]);
        if let Some(limit) = limit {
            command.env("SNAPGUARD_SNAPSHOT_CLONE_LIMIT", limit);
        }
        serde_json::from_str(&run_ok(&mut command)).unwrap()
    };
    let unset = plan(None);
    assert_eq!(
        unset["local_clone"], "yes",
        "a small database under the default limit"
    );
    assert_eq!(unset["offsite"], "after");
    let small = plan(Some("64KiB"));
    let why = small["local_clone"].as_str().unwrap();
    assert!(
        why.starts_with("no: the server's free disk space cannot be seen"),
        "{why}"
    );
    assert!(
        why.contains("`GRANT pg_read_all_settings TO \"off_managed_owner\"`"),
        "{why}"
    );
    assert!(
        why.contains("is larger than `snapshot.clone_limit` (64.0 KiB)"),
        "{why}"
    );
    assert_eq!(small["offsite"], "before-migrate");
    let large = plan(Some("10GiB"));
    assert_eq!(large["local_clone"], "yes");
    assert_eq!(large["offsite"], "after");
}

/// A `pg_hba.conf` that admits the application's database by name refuses
/// its clone's name: the deploy finds out before anything changes and
/// takes the snapshot from the database before the migrations instead,
/// rather than rolling back every deploy on a failed upload. A server of
/// its own, since the rule would refuse other tests' databases.
#[test]
fn a_clone_that_pg_hba_refuses_falls_back_to_the_snapshot_before_the_migrations() {
    use snapguard::ephemeral::EphemeralServer;
    let server = EphemeralServer::start(&common::server_options()).expect("start PostgreSQL");
    let sql = |db: &str, sql: &str| server.psql(db, &["-c", sql]).expect("psql");
    sql("postgres", "CREATE DATABASE off_hba");
    sql(
        "off_hba",
        "CREATE TABLE items (id int); INSERT INTO items SELECT generate_series(1, 100)",
    );
    let hba = server.data_dir().join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host off_hba,postgres all 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 reject\n{rules}"),
    )
    .unwrap();
    sql("postgres", "SELECT pg_reload_conf()");
    let ws = Workspace::new(&format!(
        "database:\n  url: {}\nstore:\n  url: file://./backups\nmigrations:\n  dir: migrations\nmaintenance:\n  - file: {{ path: maintenance.txt }}\n",
        server.url("off_hba")
    ));
    ws.migrations(&[("1_note.sql", "ALTER TABLE items ADD COLUMN note text;\n")]);
    let run = ws.run(&["deploy", "--release", "v1", "--report", "report.json"]);
    run.expect_code(0);
    run.expect_stderr("the clone cannot be reached for its dump");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["snapshot"]["offsite"], "before-migrate", "{report}");
    assert_eq!(report["snapshot"]["committed"], true);
    let listed = run_ok(ws.snapguard().args(["snapshots", "list", "--json"]));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        sql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'off_hba__sg_%'"
        )
        .trim(),
        "0",
        "the clone was dropped after the success"
    );
}
