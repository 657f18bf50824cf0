//! The fault matrix of rollback and `recover`: each test drives one way a
//! deploy can be interrupted or refused (SIGKILL and SIGTERM at a step, a
//! writer after the snapshot, a hook that outlives its runner, a second
//! snapguard, a damaged snapshot, a full `$TMPDIR`, bad migration bytes,
//! a store left with half an upload) against a real PostgreSQL and a real
//! S3-compatible server, and checks the documented end state: the
//! database's fingerprint, maintenance, the store, the exit code, and that
//! the next command snapguard printed, run as printed, works.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::app::*;
use common::*;

/// `snapguard.yml` for `app`: the flag-file maintenance switch (easy to
/// observe), the migrations folder, and `extra` YAML.
fn write_config(app: &App, extra: &str) {
    let config = format!(
        "database:\n  url: {url}\n{store}migrations:\n  dir: migrations\nmaintenance:\n  - file: {{ path: maintenance.txt }}\n{extra}",
        url = pg().url(&app.db),
        store = app.store,
    );
    std::fs::write(app.ws.path().join("snapguard.yml"), config).unwrap();
}

fn maintenance_on(app: &App) -> bool {
    app.ws.path().join("maintenance.txt").exists()
}

fn wait_for_file(app: &App, name: &str) {
    let path = app.ws.path().join(name);
    wait_until(name, Duration::from_secs(60), || path.exists());
}

fn items_named(app: &App, name: &str) -> String {
    psql(
        &app.db,
        &format!("SELECT count(*) FROM items WHERE name = '{name}'"),
    )
}

/// The id of the one deploy journaled in the workspace's local store.
fn deploy_journal(app: &App) -> serde_json::Value {
    let dir = app.ws.path().join("backups/deploys");
    let entry = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .next()
        .expect("a deploy journal");
    serde_json::from_str(&std::fs::read_to_string(entry.path().join("journal.json")).unwrap())
        .unwrap()
}

/// Waits until the deploy recorded a child process running `what`.
fn wait_for_child_record(app: &App, what: &str) {
    let dir = app.ws.path().join("backups/deploys");
    wait_until("the child's record", Duration::from_secs(60), || {
        std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read_to_string(e.path().join("children.json"))
                    .is_ok_and(|t| t.contains(what))
            })
    });
}

fn process_alive(pid: &str) -> bool {
    std::process::Command::new("kill")
        .args(["-0", pid.trim()])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

// --- writes after the snapshot -------------------------------------------

/// Defect: with `snapguard.deploys` dropped, an unfinished deploy was
/// invisible to a deploy with another store prefix. The record is gone
/// although the history shows deploys: every command that would change the
/// database refuses (exit 3) until the unfinished deploy is recovered or
/// `recover --accept-current` says none is and recreates the table.
#[test]
fn a_dropped_record_of_deploys_is_refused_not_taken_for_none() {
    let app = App::new("rec_lost", "fs");
    write_config(&app, "snapshot:\n  local_clone: always\n");
    kill9(deploy_in_migration(&app));
    std::fs::remove_file(app.ws.path().join("migrations/2_slow.sql")).unwrap();
    let drop_record = || psql(&app.db, "DROP TABLE snapguard.deploys");
    drop_record();

    let other = |args: &[&str]| {
        let mut all = vec!["--store", "file://./other-backups"];
        all.extend_from_slice(args);
        app.ws.run(&all)
    };
    let lost = "`snapguard.deploys` is missing from `rec_lost`, although deploys ran on it";
    for args in [&["deploy"][..], &["migrate"], &["recover"]] {
        let run = other(args);
        run.expect_code(3);
        run.expect_stderr(lost);
    }
    assert!(maintenance_on(&app), "the unfinished deploy is untouched");
    // Its own store still has its journal: `recover` there rolls it back
    // (the DROP TABLE is a write after the snapshot, hence --force), and
    // the restored database has the record again.
    app.ws.run(&["recover", "--force"]).expect_code(4);
    assert!(!maintenance_on(&app));
    other(&["deploy"]).expect_code(0);

    // Dropped with no deploy unfinished: the way out the refusal names.
    drop_record();
    other(&["deploy"]).expect_code(3);
    other(&["recover", "--accept-current"]).expect_code(0);
    assert_eq!(
        psql(
            &app.db,
            "SELECT to_regclass('snapguard.deploys') IS NOT NULL"
        ),
        "t"
    );
    let run = other(&["deploy"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("nothing to deploy"),
        "{}",
        run.stdout()
    );
}

/// Defect: `recover` swapped the clone in over writes the deploy had refused
/// to lose. Here the runner is killed mid-migration (no fence) and the
/// application then writes through short-lived connections that are gone
/// by the time `recover` runs: only the server's session count remembers.
#[test]
fn recover_applies_the_write_guard_over_the_whole_time_since_the_snapshot() {
    let app = App::new("rec_guard", "fs");
    write_config(&app, "snapshot:\n  local_clone: always\n");
    let child = deploy_in_migration(&app);
    kill9(child);
    let url = app.role_url();
    for i in 0..3 {
        common::run_ok(
            std::process::Command::new(pg().bin_dir().join("psql")).args([
                "-X",
                "-q",
                &url,
                "-c",
                &format!("INSERT INTO items (name) VALUES ('acknowledged {i}')"),
            ]),
        );
    }

    let run = app.ws.run(&["recover"]);
    run.expect_code(5);
    run.expect_stderr(
        "session(s) connected to `rec_guard` after the snapshot that snapguard did not open",
    );
    assert_eq!(
        psql(
            &app.db,
            "SELECT count(*) FROM items WHERE name LIKE 'acknowledged %'"
        ),
        "3",
        "nothing was restored over the writes"
    );
    assert!(maintenance_on(&app));
    // The refusal is recorded: asking again refuses again; `--json` gives
    // the same report as JSON, alone on stdout.
    let again = app.ws.run(&["recover", "--json"]);
    again.expect_code(5);
    let report: serde_json::Value =
        serde_json::from_str(&again.stdout()).unwrap_or_else(|e| panic!("{e}: {}", again.stdout()));
    assert_eq!(report["outcome"], "rollback_incomplete", "{report}");

    // The first way out printed keeps the database as it is, after saying
    // that this leaves the deploy half-applied; the restore is beside it.
    assert!(
        run.stdout().contains("WARNING: the deploy is half-applied, 1 of the 2 migrations it set out to apply (1 (add_note))"),
        "{}",
        run.stdout()
    );
    let printed = printed_commands(&run);
    assert_eq!(
        printed,
        [
            "snapguard recover --accept-current",
            "snapguard recover --force"
        ],
        "{printed:?}"
    );
    let accepted = app.ws.run_printed(&printed[0]);
    accepted.expect_code(0);
    assert!(
        accepted
            .stdout()
            .contains("half-applied: 1 of the 2 migrations"),
        "{}",
        accepted.stdout()
    );
    assert!(
        accepted
            .stdout()
            .contains("the database keeps this deploy's migration(s) 1 (add_note)"),
        "{}",
        accepted.stdout()
    );
    assert_eq!(
        psql(
            &app.db,
            "SELECT count(*) FROM items WHERE name LIKE 'acknowledged %'"
        ),
        "3"
    );
    assert!(!maintenance_on(&app), "maintenance is off");
    let run = app.ws.run(&["recover"]);
    run.expect_code(0);
    assert!(run.stdout().contains("nothing to recover"));
    let run = app.ws.run(&["recover", "--json"]);
    run.expect_code(0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&run.stdout()).unwrap()["outcome"],
        "nothing_to_recover"
    );
}

/// Defect (issue 27, 1): an application's pooled session, connected since
/// before the deploy (no fence, so the clone could not be made and the
/// snapshot came first), writes during a slow migration and disconnects;
/// the runner is then killed. The server's session counter never saw a new
/// session, and nobody is connected when `recover` looks: the guard said
/// "no write after the snapshot" and restored over 5 acknowledged rows.
/// It now accounts for every session connected at the snapshot.
#[test]
fn a_pooled_session_that_wrote_and_left_after_the_snapshot_makes_recover_refuse() {
    use std::io::Write;
    let app = App::new("rec_pooled", "fs");
    write_config(&app, "");
    let mut pooled = std::process::Command::new(pg().bin_dir().join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &app.role_url()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the pooled session", Duration::from_secs(10), || {
        psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = '{}'",
                app.role
            ),
        ) == "1"
    });
    let child = deploy_in_migration(&app);
    let mut stdin = pooled.stdin.take().unwrap();
    writeln!(
        stdin,
        "INSERT INTO items (name) SELECT 'acked' FROM generate_series(1, 5);\n\\q"
    )
    .unwrap();
    drop(stdin);
    // Acknowledged: psql stops with an error status on any failure. (Not
    // counted here: a session of the test's own would be one the guard
    // cannot account for either.)
    assert!(pooled.wait().unwrap().success());
    kill9(child);

    let run = app.ws.run(&["recover"]);
    run.expect_code(5);
    run.expect_stderr("was connected to `rec_pooled` at the snapshot");
    run.expect_stderr("has left since: it may have written after the snapshot");
    assert_eq!(
        items_named(&app, "acked"),
        "5",
        "every acknowledged write survives"
    );
    assert!(maintenance_on(&app));
    // `--force`, printed beside it, still restores (losing them, knowingly).
    let printed = printed_commands(&run);
    assert!(
        printed.iter().any(|c| c == "snapguard recover --force"),
        "{printed:?}"
    );
    app.ws.run(&["recover", "--force"]).expect_code(4);
    assert_eq!(items_named(&app, "acked"), "0");
    assert!(!maintenance_on(&app));
}

/// Defect: the refusal repeated one line per 100 ms sample. A writer active
/// for a second and a half is one line, with its first and last sighting.
/// The operator ran snapguard with its config elsewhere and the store and
/// database given as flags: every command it prints repeats them, so each
/// runs as printed (before, `snapguard recover --accept-current` found no
/// config and exited 2).
#[test]
fn printed_commands_repeat_the_global_flags_the_operator_gave() {
    let app = App::new("rec_flags", "fs");
    let dir = app.ws.path().join("deploy env");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("prod.yml"),
        format!(
            "migrations:\n  dir: {}\nmaintenance:\n  - file: {{ path: maintenance.txt }}\nsnapshot:\n  local_clone: always\n",
            app.ws.path().join("migrations").display()
        ),
    )
    .unwrap();
    std::fs::remove_file(app.ws.path().join("snapguard.yml")).unwrap();
    let store = format!("file://{}", app.ws.path().join("backups").display());
    let url = pg().url(&app.db);
    let flags = [
        "--config",
        "deploy env/prod.yml",
        "--store",
        store.as_str(),
        "--database-url",
        url.as_str(),
    ];
    app.migration("2_slow.sql", "SELECT pg_sleep(30);\n");
    let child = app
        .ws
        .snapguard()
        .args(flags)
        .args(["deploy", "--release", "v1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the slow migration", Duration::from_secs(30), || {
        slow_migration_running(&app)
    });
    kill9(child);
    // A write after the snapshot through a session snapguard did not open.
    psql(&app.db, "INSERT INTO items (name) VALUES ('acknowledged')");

    let mut args = flags.to_vec();
    args.push("recover");
    let run = app.ws.run(&args);
    run.expect_code(5);
    let printed = printed_commands(&run);
    let conn = pg().conn_info(&app.db);
    let password = conn.password().unwrap().expose().to_owned();
    let accept = format!(
        "snapguard --config 'deploy env/prod.yml' --store {store} --database-url '{}' recover --accept-current",
        conn.public_url()
    );
    assert_eq!(printed.first(), Some(&accept), "{printed:?}");
    assert!(
        printed
            .iter()
            .all(|p| p.starts_with("snapguard --config 'deploy env/prod.yml' --store ")),
        "{printed:?}"
    );
    // The password is never printed; the steps say where to give it.
    assert!(!run.stdout().contains(&password) && !run.stderr().contains(&password));
    assert!(
        run.stdout()
            .contains("the password given in --database-url is not printed: set PGPASSWORD"),
        "{}",
        run.stdout()
    );
    app.ws
        .run_printed_with(&accept, &[("PGPASSWORD", &password)])
        .expect_code(0);
    assert!(!dir.join("maintenance.txt").exists(), "maintenance is off");
    assert_eq!(items_named(&app, "acknowledged"), "1");
}

#[test]
fn the_write_guard_reports_one_line_per_session() {
    let app = App::new("rec_sightings", "fs");
    let url = app.role_url();
    let psql_bin = pg().bin_dir().join("psql");
    std::fs::write(
        app.ws.path().join("write.sql"),
        "DO $$ BEGIN FOR i IN 1..30 LOOP INSERT INTO items (name) VALUES ('late'); COMMIT; PERFORM pg_sleep(0.05); END LOOP; END $$;\n",
    )
    .unwrap();
    write_config(
        &app,
        &format!(
            "snapshot:\n  local_clone: always\nrelease:\n  command: '{} -X -q \"{url}\" -f write.sql; exit 1'\n",
            psql_bin.display()
        ),
    );
    let run = app.deploy("v1");
    run.expect_code(5);
    let stderr = run.stderr();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("was active after the snapshot"))
        .map(|l| &l[l.find("session pid ").unwrap()..])
        .collect();
    // The same refusal appears in the log and in the error chain; one
    // session, so one distinct line.
    let mut distinct = lines.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 1, "{}", run.stderr());
    assert!(
        !distinct[0].contains("in 1 sample(s)"),
        "seen more than once: {}",
        distinct[0]
    );
    assert!(distinct[0].contains("first seen") && distinct[0].contains("last seen"));
    assert!(run.stderr().len() < 8_000, "{} bytes", run.stderr().len());
    assert_eq!(items_named(&app, "late"), "30");
}

// --- hooks and their children -------------------------------------------

/// Defect: a timed-out hook's shell was stopped but its children ran on.
#[test]
fn a_hook_that_times_out_is_ended_with_everything_it_started() {
    let app = App::new("rec_timeout", "fs");
    write_config(
        &app,
        "snapshot:\n  local_clone: always\nrelease:\n  command: '(sleep 2; touch late.txt) & sleep 60'\n  timeout: 1s\n",
    );
    let before = fingerprint(&app.db);
    let run = app.deploy("v1");
    run.expect_code(4);
    run.expect_stderr("did not finish within 1s");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !app.ws.path().join("late.txt").exists(),
        "the hook's child outlived the hook"
    );
    assert_eq!(fingerprint(&app.db), before);
    assert!(!maintenance_on(&app));
}

/// Defect: after kill -9 of snapguard during `release.command`, `recover`
/// rolled back while the orphaned release kept going, and it finished
/// deploying over the rollback.
#[test]
fn recover_ends_a_release_hook_left_running_before_it_rolls_back() {
    let app = App::new("rec_orphan", "fs");
    write_config(
        &app,
        "snapshot:\n  local_clone: always\nrelease:\n  command: 'touch started; sleep 8; touch released.txt'\n  rollback: 'touch rolled_back.txt'\n",
    );
    let before = fingerprint(&app.db);
    let child = app.spawn(&[], &["deploy", "--release", "v1"]);
    wait_for_file(&app, "started");
    wait_for_child_record(&app, "released.txt");
    kill9(child);

    let run = app.ws.run(&["recover"]);
    run.expect_code(4);
    run.expect_stderr("left this command running; ending it before the rollback");
    // Past the moment the release would have finished.
    std::thread::sleep(Duration::from_secs(9));
    assert!(
        !app.ws.path().join("released.txt").exists(),
        "the orphaned release finished after the rollback"
    );
    assert!(app.ws.path().join("rolled_back.txt").exists());
    assert_eq!(fingerprint(&app.db), before);
    assert!(!maintenance_on(&app));
}

/// Defect: a signal during `release.command` was dropped when no health
/// check followed; the deploy ended "succeeded".
#[test]
fn sigterm_during_the_release_without_a_health_check_rolls_back() {
    let app = App::new("rec_release_term", "fs");
    write_config(
        &app,
        "snapshot:\n  local_clone: always\nrelease:\n  command: 'touch started; sleep 2'\n  rollback: 'touch rolled_back.txt'\n",
    );
    let before = fingerprint(&app.db);
    let child = app.spawn(&[], &["deploy", "--release", "v1"]);
    wait_for_file(&app, "started");
    sigterm(&child);
    let run = Run(child.wait_with_output().unwrap());
    run.expect_code(4);
    // The signal came during the release, which ran to its end: the
    // failure is the release's, and says what did not start.
    run.expect_stderr("cancelled by a signal; maintenance off did not start");
    assert!(
        run.stderr().contains("step=\"release\""),
        "{}",
        run.stderr()
    );
    assert!(app.ws.path().join("rolled_back.txt").exists());
    assert_eq!(fingerprint(&app.db), before);
    assert!(!maintenance_on(&app));
}

// --- a store restore killed half-way -------------------------------------

/// Defect: kill -9 during a store-restore rollback left `<db>__restore_<id>`
/// (on which `recover` failed forever), a running `pg_restore` and the
/// downloaded archive in `$TMPDIR`.
#[test]
fn a_store_restore_killed_half_way_is_recovered_and_leaves_nothing_behind() {
    let app = App::new("rec_restore_kill", "fs");
    let tools = tempfile::tempdir().unwrap();
    let gate = tools.path().join("block");
    let reached = tools.path().join("restoring");
    let pid_file = tools.path().join("pg_restore.pid");
    let bin = wrapped_tools(
        tools.path(),
        "exec $REAL/pg_dump \"$@\"",
        &format!(
            "if [ \"$1\" != -l ] && [ -e {gate} ]; then echo $$ > {pid}; touch {reached}; sleep 600; fi\nexec $REAL/pg_restore \"$@\"",
            gate = gate.display(),
            pid = pid_file.display(),
            reached = reached.display()
        ),
    );
    let scratch = tempfile::tempdir().unwrap();
    write_config(
        &app,
        "snapshot:\n  local_clone: never\nchecks:\n  after:\n    - { name: fails, sql: 'SELECT 1', expect: { value: 2 } }\n",
    );
    let config = std::fs::read_to_string(app.ws.path().join("snapguard.yml"))
        .unwrap()
        .replacen(
            "database:\n",
            &format!("database:\n  pg_bin_dir: {}\n", bin.display()),
            1,
        );
    std::fs::write(app.ws.path().join("snapguard.yml"), config).unwrap();
    let before = fingerprint(&app.db);
    std::fs::write(&gate, "").unwrap();
    let child = app
        .ws
        .snapguard()
        .args(["deploy", "--release", "v1"])
        .env("TMPDIR", scratch.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the rollback's pg_restore", Duration::from_secs(60), || {
        reached.exists()
    });
    wait_for_child_record(&app, "--jobs");
    kill9(child);
    let orphan = std::fs::read_to_string(&pid_file).unwrap();
    assert!(process_alive(&orphan), "the orphaned pg_restore runs on");
    assert_eq!(databases_like("rec_restore_kill__restore_").len(), 1);
    assert!(std::fs::read_dir(scratch.path()).unwrap().next().is_some());

    // A CI cancel (SIGTERM) of `recover` in the middle of its own
    // restore: it ends the dead runner's pg_restore and its own, drops the
    // partial database, removes its scratch files, and says to run it again.
    std::fs::remove_file(&reached).unwrap();
    let recover = app
        .ws
        .snapguard()
        .arg("recover")
        .env("TMPDIR", scratch.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("recover's pg_restore", Duration::from_secs(60), || {
        reached.exists()
    });
    assert!(!process_alive(&orphan), "the orphaned pg_restore was ended");
    let own = std::fs::read_to_string(&pid_file).unwrap();
    sigterm(&recover);
    let run = Run(recover.wait_with_output().unwrap());
    run.expect_code(5);
    run.expect_stderr("cancelled by a signal before the swap");
    assert!(!process_alive(&own), "recover's pg_restore was ended");
    assert!(databases_like("rec_restore_kill__restore_").is_empty());
    assert!(maintenance_on(&app));
    assert!(
        std::fs::read_dir(scratch.path()).unwrap().next().is_none(),
        "recover's scratch files were removed"
    );

    std::fs::remove_file(&gate).unwrap();
    let printed = printed_commands(&run);
    assert_eq!(
        printed.first().map(String::as_str),
        Some("snapguard recover"),
        "{printed:?}"
    );
    let run = app.ws.run_printed(&printed[0]);
    run.expect_code(4);
    assert_eq!(fingerprint(&app.db), before);
    assert!(databases_like("rec_restore_kill__restore_").is_empty());
    assert!(!maintenance_on(&app));
    let left: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .flatten()
        .collect();
    assert!(
        left.is_empty(),
        "scratch files outlived their process: {left:?}"
    );
}

// --- another snapguard in the window -------------------------------------

/// Defect: a plain `migrate` started during a deploy's snapshot applied its
/// migrations inside the deploy's window.
#[test]
fn a_migrate_during_a_deploy_window_is_refused_with_exit_6() {
    let app = App::new("rec_window", "fs");
    let tools = tempfile::tempdir().unwrap();
    let gate = tools.path().join("block");
    let reached = tools.path().join("dumping");
    let bin = wrapped_tools(
        tools.path(),
        &format!(
            "touch {reached}; while [ -e {gate} ]; do sleep 0.05; done\nexec $REAL/pg_dump \"$@\"",
            gate = gate.display(),
            reached = reached.display()
        ),
        "exec $REAL/pg_restore \"$@\"",
    );
    // The snapshot before the migrations, so the gated dump holds the
    // window before anything is applied.
    write_config(
        &app,
        "snapshot:\n  local_clone: always\n  offsite: before-migrate\n",
    );
    let config = std::fs::read_to_string(app.ws.path().join("snapguard.yml"))
        .unwrap()
        .replacen(
            "database:\n",
            &format!("database:\n  pg_bin_dir: {}\n", bin.display()),
            1,
        );
    std::fs::write(app.ws.path().join("snapguard.yml"), config).unwrap();
    std::fs::write(&gate, "").unwrap();
    let deploy = app.spawn(&[], &["deploy", "--release", "v1"]);
    wait_until("the snapshot", Duration::from_secs(60), || reached.exists());

    let run = app.ws.run(&["migrate"]);
    run.expect_code(6);
    run.expect_stderr("holds the deploy lock");
    app.ws.run(&["maintenance", "off"]).expect_code(6);
    assert_eq!(
        psql(
            &app.db,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'snapguard' AND tablename = 'schema_migrations'"
        ),
        "0",
        "the migrate applied nothing"
    );

    std::fs::remove_file(&gate).unwrap();
    Run(deploy.wait_with_output().unwrap()).expect_code(0);
    assert_eq!(
        psql(
            &app.db,
            "SELECT count(*) FROM snapguard.schema_migrations WHERE deploy_id IS NOT NULL"
        ),
        "1",
        "the deploy applied the migration itself"
    );
}

/// Defect: "nothing to restore: the database did not change" was assumed
/// from the failed step. Here the migrations run in one transaction that
/// rolls back, while the catalogue changed under the deploy: the rollback
/// sees the difference and restores.
#[test]
fn did_not_change_is_proven_from_the_catalogue_not_assumed() {
    let app = App::new("rec_catalogue", "fs");
    psql(&app.db, "CREATE TABLE gate (x int)");
    app.migration(
        "2_wait_then_fail.sql",
        "DO $$ BEGIN WHILE NOT EXISTS (SELECT 1 FROM gate) LOOP PERFORM pg_sleep(0.05); END LOOP; END $$;\nSELECT 1/0;\n",
    );
    write_config(&app, "snapshot:\n  local_clone: always\n");
    let config = std::fs::read_to_string(app.ws.path().join("snapguard.yml"))
        .unwrap()
        .replace(
            "migrations:\n  dir: migrations\n",
            "migrations:\n  dir: migrations\n  transaction: all\n",
        );
    std::fs::write(app.ws.path().join("snapguard.yml"), config).unwrap();
    let before = fingerprint(&app.db);
    // `--force`: the test's own session would otherwise (rightly) make the
    // write guard refuse; what is tested is the decision to restore.
    let child = app.spawn(&[], &["deploy", "--release", "v1", "--force"]);
    wait_until("the waiting migration", Duration::from_secs(60), || {
        psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'rec_catalogue' AND query LIKE 'DO $$ BEGIN WHILE%'",
        ) == "1"
    });
    psql(
        &app.db,
        "CREATE TABLE sneaky (x int); INSERT INTO gate VALUES (1);",
    );
    let run = Run(child.wait_with_output().unwrap());
    run.expect_code(4);
    assert!(
        !run.stdout().contains("nothing to restore"),
        "{}",
        run.stdout()
    );
    // The gate row and the sneaky table came after the snapshot: restored away.
    assert_eq!(fingerprint(&app.db), before);
    assert!(!maintenance_on(&app));
}

/// Defect: after kill -9 mid-migration, a deploy using another store prefix
/// went ahead, and `recover` on the first prefix then swapped its old clone
/// in over that deploy.
#[test]
fn an_unfinished_deploy_is_seen_from_any_store_and_recover_keeps_later_history() {
    let app = App::new("rec_prefix", "fs");
    write_config(&app, "snapshot:\n  local_clone: always\n");
    kill9(deploy_in_migration(&app));
    std::fs::remove_file(app.ws.path().join("migrations/2_slow.sql")).unwrap();

    let other = ["--store", "file://./other-backups"];
    let run = app
        .ws
        .run(&[other[0], other[1], "deploy", "--release", "v2"]);
    run.expect_code(3);
    run.expect_stderr("did not finish");
    let hint = "`snapguard --store file://./backups/ recover`";
    run.expect_stderr(hint);
    let run = app.ws.run(&[other[0], other[1], "recover"]);
    run.expect_code(3);
    run.expect_stderr(hint);
    app.ws.run(&[other[0], other[1], "migrate"]).expect_code(3);

    // History the deploy did not create (an older snapguard, a hand-run
    // migrator): rolling back would undo it silently, so recover refuses.
    psql(
        &app.db,
        "INSERT INTO snapguard.schema_migrations (version, name, kind, checksum, duration_ms, deploy_id) VALUES ('99', 'later', 'versioned', 'x', 1, 'someone-else')",
    );
    let current = fingerprint(&app.db);
    // The command the refusal named, run as printed.
    let run = app.ws.run_printed(hint.trim_matches('`'));
    run.expect_code(5);
    run.expect_stderr("history this deploy did not create: migration 99 (later)");
    assert_eq!(fingerprint(&app.db), current, "nothing was rolled back");
    // The way out repeats the `--store` the operator gave.
    let accept = "snapguard --store file://./backups/ recover --accept-current";
    let printed = printed_commands(&run);
    assert!(printed.iter().any(|c| c == accept), "{printed:?}");
    app.ws.run_printed(accept).expect_code(0);
    assert_eq!(fingerprint(&app.db), current);
    assert!(!maintenance_on(&app));
    // Closed in the database too: the other prefix may deploy now (once
    // the stand-in for later history, which has no file, is gone).
    psql(
        &app.db,
        "DELETE FROM snapguard.schema_migrations WHERE version = '99'",
    );
    let run = app
        .ws
        .run(&[other[0], other[1], "deploy", "--release", "v2"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("nothing to deploy"),
        "{}",
        run.stdout()
    );
}

// --- a damaged snapshot ---------------------------------------------------

fn corrupt(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

/// Defect: when the only snapshot failed its checksum, every command
/// refused and maintenance stayed on. Two documented ways out.
#[test]
fn a_damaged_snapshot_can_be_replaced_by_another_or_accepted_as_is() {
    for way in ["another snapshot", "accept current"] {
        let name = if way == "another snapshot" {
            "rec_damaged_other"
        } else {
            "rec_damaged_accept"
        };
        let app = App::new(name, "fs");
        write_config(&app, "snapshot:\n  local_clone: never\n");
        let before = fingerprint(&app.db);
        let good = app.ws.run(&["snapshot"]);
        good.expect_code(0);
        let good = good.snapshot_id();
        // Acknowledged writes between the older snapshot and the deploy
        // (issue 27, 2): restoring the older one would lose them.
        psql(
            &app.db,
            "INSERT INTO items (name) SELECT 'between' FROM generate_series(1, 8)",
        );
        kill9(deploy_in_migration(&app));
        let journal = deploy_journal(&app);
        let id = journal["snapshot"]["id"].as_str().unwrap().to_owned();
        corrupt(&app.ws.path().join(format!("backups/snapshots/{id}/dump")));

        let run = app.ws.run(&["recover"]);
        run.expect_code(5);
        run.expect_stderr("checksum mismatch");
        assert!(maintenance_on(&app));
        let printed = printed_commands(&run);
        let other = format!("snapguard recover --snapshot {good}");
        assert!(printed.contains(&other), "{printed:?}");
        assert!(
            printed
                .iter()
                .any(|c| c == "snapguard recover --accept-current"),
            "{printed:?}"
        );

        if way == "another snapshot" {
            // As printed, it refuses, naming what it would discard.
            let run = app.ws.run_printed(&other);
            run.expect_code(5);
            run.expect_stderr(&format!("snapshot {good} was taken"));
            run.expect_stderr("is in neither and a restore of");
            assert_eq!(items_named(&app, "between"), "8", "nothing was restored");
            assert!(maintenance_on(&app));
            // The way on it prints carries the snapshot and `--force`.
            let forced = format!("snapguard recover --snapshot {good} --force");
            let printed = printed_commands(&run);
            assert!(printed.contains(&forced), "{printed:?}");
            let run = app.ws.run_printed(&forced);
            run.expect_code(4);
            assert_eq!(
                fingerprint(&app.db),
                before,
                "knowingly back to the older snapshot"
            );
        } else {
            let run = app.ws.run(&["recover", "--accept-current"]);
            run.expect_code(0);
            assert!(
                run.stdout().contains("migration(s) 1 (add_note)"),
                "{}",
                run.stdout()
            );
            assert_eq!(
                psql(&app.db, "SELECT count(*) FROM items WHERE note IS NOT NULL"),
                "508",
                "the 500 seeded rows and the 8 written before the deploy"
            );
        }
        assert!(!maintenance_on(&app), "{way}: maintenance is off");
        let run = app.ws.run(&["recover"]);
        run.expect_code(0);
        assert!(run.stdout().contains("nothing to recover"), "{way}");
    }
}

// --- local disk -----------------------------------------------------------

/// A small tmpfs, unmounted when dropped.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs as $TMPDIR and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

/// Defect: a full `$TMPDIR` was reported as a damaged snapshot.
#[test]
fn a_full_tmpdir_is_named_with_the_room_needed_never_as_damage() {
    let db = create_db("rec_tmpdir");
    psql(
        &db,
        "CREATE TABLE blobs AS SELECT i, md5(i::text) || md5((i * 7)::text) AS v FROM generate_series(1, 60000) AS i",
    );
    let ws = Workspace::new(&fs_config(
        &db,
        "migrations:\n  dir: migrations\nsnapshot:\n  local_clone: never\n",
    ));
    std::fs::create_dir_all(ws.path().join("migrations")).unwrap();
    std::fs::write(
        ws.path().join("migrations/1_a.sql"),
        "CREATE TABLE a (x int);\n",
    )
    .unwrap();
    let snap = ws.run(&["snapshot"]);
    snap.expect_code(0);
    let id = snap.snapshot_id();
    let disk = SmallDisk::mount("1m");

    let run = Run(ws
        .snapguard()
        .args(["restore", &id, "--to", "rec_tmpdir_copy"])
        .env("TMPDIR", disk.0.path())
        .output()
        .unwrap());
    run.expect_code(3);
    run.expect_stderr("not enough free space in");
    run.expect_stderr("(`TMPDIR`)");
    assert!(!run.stderr().contains("damaged"), "{}", run.stderr());
    assert!(!db_exists("rec_tmpdir_copy"));

    // A deploy whose way back is a store restore checks the room first.
    let run = with_tmpdir(&ws, disk.0.path(), &["deploy"]);
    run.expect_code(3);
    run.expect_stderr("not enough free space in");
    assert_eq!(psql(&db, "SELECT to_regclass('public.a') IS NULL"), "t");
}

/// Defect: the room check took the newest snapshot's size, so a database
/// that had grown since passed preflight and its rollback then refused
/// (exit 5, maintenance on). The size now counts.
#[test]
fn a_database_grown_since_its_last_snapshot_needs_room_for_its_size_now() {
    let db = create_db("rec_tmpdir_grown");
    psql(&db, "CREATE TABLE blobs (i int, v text)");
    let ws = Workspace::new(&fs_config(
        &db,
        "migrations:\n  dir: migrations\nsnapshot:\n  local_clone: never\n",
    ));
    std::fs::create_dir_all(ws.path().join("migrations")).unwrap();
    std::fs::write(
        ws.path().join("migrations/1_a.sql"),
        "CREATE TABLE a (x int);\n",
    )
    .unwrap();
    ws.run(&["snapshot"]).expect_code(0);
    // Room for the snapshot's archive (and the 16 MB headroom), not for
    // the database as it is after 60 MB more.
    let disk = SmallDisk::mount("40m");
    with_tmpdir(&ws, disk.0.path(), &["plan"]).expect_code(0);
    psql(
        &db,
        "INSERT INTO blobs SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 350000) AS i",
    );
    for command in ["plan", "deploy"] {
        let run = with_tmpdir(&ws, disk.0.path(), &[command]);
        run.expect_code(3);
        run.expect_stderr("not enough free space in");
    }
    assert_eq!(psql(&db, "SELECT to_regclass('public.a') IS NULL"), "t");
}

/// Runs `args` with `TMPDIR` set to `tmpdir`.
fn with_tmpdir(ws: &Workspace, tmpdir: &Path, args: &[&str]) -> Run {
    Run(ws
        .snapguard()
        .args(args)
        .env("TMPDIR", tmpdir)
        .output()
        .unwrap())
}

/// Defect: a store restore brought a database in its own tablespace back
/// in `pg_default`, and the clone's room was checked on the data
/// directory's disk, not the tablespace's. Here the tablespace is a 64 MB
/// disk: too small for a clone (the data directory's disk is not), so the
/// rollback restores from the store, into the tablespace.
#[test]
fn a_database_in_its_own_tablespace_is_checked_and_restored_where_it_lives() {
    let disk = tempfile::tempdir().unwrap();
    let uid = String::from_utf8(
        std::process::Command::new("id")
            .args(["-u", "postgres"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o"])
        .arg(format!("size=64m,mode=700,uid={}", uid.trim()))
        .arg("tmpfs")
        .arg(disk.path())
        .status()
        .unwrap();
    assert!(mounted.success(), "this test mounts a tmpfs and needs root");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            psql("postgres", "DROP DATABASE IF EXISTS rec_ts WITH (FORCE)");
            let failed = databases_like("rec_ts__");
            for db in failed {
                psql("postgres", &format!("DROP DATABASE \"{db}\" WITH (FORCE)"));
            }
            psql("postgres", "DROP TABLESPACE IF EXISTS rec_ts_space");
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(disk.path());
    psql("postgres", "DROP DATABASE IF EXISTS rec_ts WITH (FORCE)");
    psql("postgres", "DROP TABLESPACE IF EXISTS rec_ts_space");
    psql(
        "postgres",
        &format!(
            "CREATE TABLESPACE rec_ts_space LOCATION '{}'",
            disk.path().display()
        ),
    );
    psql("postgres", "CREATE DATABASE rec_ts TABLESPACE rec_ts_space");
    psql(
        "rec_ts",
        "CREATE TABLE items (id serial PRIMARY KEY, name text); INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 500) g",
    );
    let tablespace = || {
        psql(
            "postgres",
            "SELECT t.spcname FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname = 'rec_ts'",
        )
    };
    let ws = Workspace::for_db("rec_ts", "store:\n  url: file://./backups\n");
    ws.migrations(&[
        ("1_add.sql", "CREATE TABLE added (x int);\n"),
        ("2_fail.sql", "SELECT 1 / 0;\n"),
    ]);
    let before = fingerprint("rec_ts");
    let run = ws.run(&["deploy"]);
    run.expect_code(4);
    run.expect_stderr("not enough free disk space for a clone");
    assert!(
        run.stdout().contains("store restore of"),
        "{}",
        run.stdout()
    );
    assert_eq!(fingerprint("rec_ts"), before);
    assert_eq!(tablespace(), "rec_ts_space");
}

// --- bad migration bytes --------------------------------------------------

/// Defect: a migration with a NUL byte planned and dry-ran fine and failed
/// mid-deploy; non-UTF-8 gave no position.
#[test]
fn bad_bytes_in_a_migration_stop_preflight_with_their_position() {
    let app = App::new("rec_bytes", "fs");
    write_config(&app, "snapshot:\n  local_clone: always\n");
    let before = fingerprint(&app.db);
    for (file, bytes, expect) in [
        (
            "2_nul.sql",
            b"UPDATE items SET name = name;\nSELECT 'a\0b';\n".to_vec(),
            "`migrations/2_nul.sql:2:10`: a NUL byte",
        ),
        (
            "2_latin1.sql",
            b"-- caf\xe9\nSELECT 1;\n".to_vec(),
            "`migrations/2_latin1.sql:1:7`: invalid UTF-8",
        ),
    ] {
        let path = app.ws.path().join("migrations").join(file);
        std::fs::write(&path, bytes).unwrap();
        for command in [&["plan"][..], &["migrate", "--dry-run"], &["deploy"]] {
            let run = app.ws.run(command);
            run.expect_code(3);
            run.expect_stderr(expect);
        }
        assert!(!maintenance_on(&app));
        assert!(
            !app.ws.path().join("backups/snapshots").exists(),
            "nothing was snapshotted"
        );
        std::fs::remove_file(path).unwrap();
    }
    assert_eq!(fingerprint(&app.db), before);
}

// --- secrets --------------------------------------------------------------

/// Defect: the percent-encoded `DATABASE_URL` handed to an external
/// migrator was not masked under GitHub Actions.
#[test]
fn every_form_of_the_password_is_masked_for_github_actions() {
    let db = create_db("rec_mask");
    let password = "p@ss:w/rd%20x";
    psql(
        "postgres",
        &format!(
            "DROP ROLE IF EXISTS rec_mask_deployer; CREATE ROLE rec_mask_deployer LOGIN SUPERUSER PASSWORD '{password}'"
        ),
    );
    let encoded = "p%40ss%3Aw%2Frd%2520x";
    let url = format!(
        "postgres://rec_mask_deployer:{encoded}@127.0.0.1:{}/{db}?sslmode=disable",
        pg().port()
    );
    let ws = Workspace::new(&format!(
        "database:\n  url: {url}\nstore:\n  url: file://./backups\nsnapshot:\n  local_clone: never\nmigrations:\n  command: 'echo \"migrator sees $DATABASE_URL\"'\n"
    ));
    let run = Run(ws
        .snapguard()
        .args(["deploy", "--release", "v1", "--json"])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap());
    run.expect_code(0);
    // stdout is the report alone, valid JSON, workflow commands and all.
    let report: serde_json::Value =
        serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()));
    assert_eq!(report["outcome"], "succeeded", "{report}");
    let out = run.stderr();
    // As the runner reads them: `%`, CR and LF are escaped in commands.
    let masked: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("::add-mask::"))
        .map(|m| {
            m.replace("%0D", "\r")
                .replace("%0A", "\n")
                .replace("%25", "%")
        })
        .collect();
    assert!(masked.iter().any(|m| m == password), "{masked:?}");
    assert!(masked.iter().any(|m| m == encoded), "{masked:?}");
    assert!(
        masked
            .iter()
            .any(|m| m.starts_with("postgresql://") && m.contains(encoded)),
        "{masked:?}"
    );
    // The masks come before the first step (and so before any hook runs).
    let first_group = out.find("::group::").expect("a log group per step");
    assert!(out.rfind("::add-mask::").unwrap() < first_group, "{out}");
    assert!(
        run.stderr().contains("migrator sees postgresql://"),
        "{}",
        run.stderr()
    );
}

// --- the store ------------------------------------------------------------

/// Defect: multipart uploads orphaned by a kill -9 were visible to nothing.
/// `recover` aborts the dead deploy's own (on `moto`, which lists them).
#[test]
fn recover_aborts_the_multipart_upload_a_killed_deploy_left() {
    let app = App::new("rec_upload", "fs");
    let moto = MotoServer::start();
    let bucket = moto.bucket("rec-upload");
    let tools = tempfile::tempdir().unwrap();
    let pid_file = tools.path().join("pg_dump.pid");
    // Three parts' worth of bytes, then a dump that never ends.
    let bin = wrapped_tools(
        tools.path(),
        &format!(
            "echo $$ > {}; head -c 12000000 /dev/urandom; exec sleep 600",
            pid_file.display()
        ),
        "exec $REAL/pg_restore \"$@\"",
    );
    let config = moto
        .config(
            &app.db,
            &bucket,
            "  part_size: 5MiB\nsnapshot:\n  compression: none\n  local_clone: always\n  offsite: before-migrate\nmigrations:\n  dir: migrations\nmaintenance:\n  - file: { path: maintenance.txt }\n",
        )
        .replacen(
            "database:\n",
            &format!("database:\n  pg_bin_dir: {}\n", bin.display()),
            1,
        );
    std::fs::write(app.ws.path().join("snapguard.yml"), config).unwrap();
    let child = app.spawn(&[], &["deploy", "--release", "v1"]);
    wait_until("a part uploaded", Duration::from_secs(60), || {
        !moto.incomplete_uploads(&bucket).is_empty()
    });
    kill9(child);
    let dump_pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(process_alive(&dump_pid));

    let run = app.ws.run(&["recover"]);
    run.expect_code(4);
    run.expect_stderr("aborted the deploy's incomplete snapshot upload");
    assert!(
        moto.incomplete_uploads(&bucket).is_empty(),
        "{:?}",
        moto.incomplete_uploads(&bucket)
    );
    assert!(!process_alive(&dump_pid), "the dump outlived its runner");
    assert!(!maintenance_on(&app));
}

/// `prune` aborts incomplete uploads a day old; in a local store they are
/// partial files.
#[test]
fn prune_removes_a_day_old_partial_upload() {
    let db = create_db("rec_prune_partial");
    let ws = Workspace::new(&fs_config(&db, ""));
    let dir = ws
        .path()
        .join("backups/snapshots/20261101T000000Z-rec_prune_partial-abcd");
    std::fs::create_dir_all(&dir).unwrap();
    let partial = dir.join(".sg-tmp-1a2b-dump");
    std::fs::write(&partial, vec![0u8; 1000]).unwrap();
    let today = ws.path().join(format!(
        "backups/snapshots/{}-rec_prune_partial-ef01",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::create_dir_all(&today).unwrap();
    let fresh = today.join(".sg-tmp-3c4d-dump");
    std::fs::write(&fresh, vec![0u8; 1000]).unwrap();
    let status = std::process::Command::new("touch")
        .args(["-d", "2 days ago"])
        .arg(&partial)
        .status()
        .unwrap();
    assert!(status.success());
    let run = ws.run(&["prune", "--dry-run"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains(
            "would abort incomplete upload snapshots/20261101T000000Z-rec_prune_partial-abcd/dump"
        ),
        "{}",
        run.stdout()
    );
    assert!(partial.exists());
    ws.run(&["prune"]).expect_code(0);
    assert!(!partial.exists());
    assert!(fresh.exists(), "a fresh upload may still be running");
}

/// `recover` ends the sessions its dead runner left, and never its own:
/// one of its own, closed a moment before, can still be on the server
/// (under load it was), and ending it counted it twice, once as the
/// runner's and once as `recover`'s, which excused someone else's write.
#[test]
fn recover_ends_only_the_sessions_that_began_before_it() {
    use snapguard::db;
    use snapguard::snapshot::guard;
    let app = App::new("rec_own_sessions", "fs");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let admin = db::connect(&pg().conn_info("postgres")).await.unwrap();
        let info = pg().conn_info(&app.db);
        let pid = |client: tokio_postgres::Client| async move {
            let pid: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])
                .await
                .unwrap()
                .get(0);
            (client, pid)
        };
        let (runner, runner_pid) = pid(db::connect(&info).await.unwrap()).await;
        let began = db::admin::server_time(&admin).await.unwrap();
        let (own, _) = pid(db::connect(&info).await.unwrap()).await;

        let ended = guard::end_dead_runner_sessions(&admin, &app.db, &began)
            .await
            .unwrap();
        assert_eq!(
            ended.iter().map(|s| s.pid).collect::<Vec<_>>(),
            [runner_pid]
        );
        assert!(
            own.simple_query("SELECT 1").await.is_ok(),
            "recover's own session is left alone"
        );
        assert!(runner.simple_query("SELECT 1").await.is_err());
    });
}

/// Issue 27, 3: snapguard's own sessions that no journal write saw — a
/// `migrate status` the operator ran while the deploy was in its slow
/// migration (after the runner's last journal write) and another after
/// the `kill -9`, before `recover` — were counted as someone else's, and
/// `recover` refused (exit 5). Every snapguard session takes a number from
/// `snapguard.sessions`, so `recover` counts them all and rolls back.
#[test]
fn snapguard_sessions_no_journal_saw_do_not_make_recover_refuse() {
    let app = App::new("rec_registry", "fs");
    write_config(&app, "snapshot:\n  local_clone: always\n");
    let before = fingerprint(&app.db);
    let child = deploy_in_migration(&app);
    let status = || {
        let run = app.ws.run(&["migrate", "status"]);
        assert!(run.stdout().contains("2_slow"), "{}", run.stdout());
    };
    status();
    kill9(child);
    status();

    let run = app.ws.run(&["recover"]);
    run.expect_code(4);
    assert!(!run.stderr().contains("did not open"), "{}", run.stderr());
    assert_eq!(fingerprint(&app.db), before, "the database is restored");
    assert!(!maintenance_on(&app), "maintenance is off");
}

/// The session counter is "now minus then" only while the server keeps
/// counting: after `pg_stat_reset()` (or a crash, or a standby promoted)
/// it starts again from zero, and a foreign writer's sessions before the
/// reset vanish from it. The old guard read the negative difference as
/// "no one else connected" and restored over the acknowledged rows.
#[test]
fn statistics_reset_after_the_snapshot_makes_recover_refuse() {
    let app = App::new("rec_stats_reset", "fs");
    write_config(&app, "snapshot:\n  local_clone: always\n");
    let child = deploy_in_migration(&app);
    kill9(child);
    let url = app.role_url();
    let psql_c = |sql: &str| {
        common::run_ok(
            std::process::Command::new(pg().bin_dir().join("psql"))
                .args(["-X", "-q", &url, "-c", sql]),
        )
    };
    psql_c("INSERT INTO items (name) VALUES ('acknowledged')");
    psql(&app.db, "SELECT pg_stat_reset()");

    let run = app.ws.run(&["recover"]);
    run.expect_code(5);
    run.expect_stderr("the statistics of `rec_stats_reset` were reset since the snapshot");
    assert_eq!(
        psql(
            &app.db,
            "SELECT count(*) FROM items WHERE name = 'acknowledged'"
        ),
        "1",
        "nothing was restored over the write"
    );
    assert!(maintenance_on(&app));
}
