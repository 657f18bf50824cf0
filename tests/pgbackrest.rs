//! `snapshot.provider: pgbackrest` end to end: a real PostgreSQL 15 of each
//! test's own (its WAL archived by a real pgBackRest into a repository on
//! local disk, one full backup taken), deployed by snapguard, rolled back by
//! a point-in-time restore of the whole cluster to the deploy's restore
//! point, the server stopped and started by the configured commands.
//!
//! Each test has its cluster to itself: the rollback restarts the server.

mod common;

use std::process::Command;
use std::time::Duration;

use common::pgbackrest::*;
use common::*;

/// A cluster archiving to a pgBackRest repository, with one full backup,
/// and a workspace whose `snapguard.yml` deploys database `app` on it.
struct Cluster {
    archived: Archived,
    ws: Workspace,
}

impl std::ops::Deref for Cluster {
    type Target = Archived;
    fn deref(&self) -> &Archived {
        &self.archived
    }
}

impl Cluster {
    fn new(extra: &str) -> Cluster {
        let cluster = Cluster {
            archived: Archived::start(&[]),
            ws: Workspace::new(""),
        };
        cluster.sql("postgres", "CREATE DATABASE app");
        cluster.sql(
            "app",
            "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g;",
        );
        std::fs::create_dir(cluster.ws.path().join("migrations")).unwrap();
        cluster.write_config(extra);
        cluster
    }

    fn write_config(&self, extra: &str) {
        let config = format!(
            "database:\n  url: {url}\nstore:\n  url: file://./backups\nmigrations:\n  dir: migrations\nmaintenance:\n  - file: {{ path: maintenance.txt }}\n{snapshot}",
            url = self.server.url("app"),
            snapshot = self.snapshot_section(extra),
        );
        std::fs::write(self.ws.path().join("snapguard.yml"), config).unwrap();
    }

    fn migration(&self, file: &str, sql: &str) {
        std::fs::write(self.ws.path().join("migrations").join(file), sql).unwrap();
    }

    fn deploy(&self) -> Run {
        Run(self
            .ws
            .snapguard()
            .args(["deploy", "--release", "v1", "--report", "report.json"])
            .output()
            .unwrap())
    }

    /// What the database holds, to compare before and after: its tables
    /// and their rows, and the history's versions.
    fn state(&self) -> String {
        self.sql(
            "app",
            "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'",
        ) + "|"
            + &self.sql("app", "SELECT count(*) || ' ' || coalesce(sum(id), 0) FROM items")
    }

    fn maintenance_on(&self) -> bool {
        self.ws.path().join("maintenance.txt").exists()
    }

    fn report(&self) -> serde_json::Value {
        self.report_at("report.json")
    }

    fn report_at(&self, file: &str) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.ws.path().join(file)).unwrap()).unwrap()
    }
}

#[test]
fn a_success_records_the_restore_point_and_leaves_the_cluster_running() {
    let c = Cluster::new("");
    c.migration("1_add.sql", "CREATE TABLE added (id int);\n");
    let plan = Run(c.ws.snapguard().arg("plan").output().unwrap());
    plan.expect_code(0);
    assert!(
        plan.stdout()
            .contains("2. pgBackRest restore point in stanza `main`")
            && plan
                .stdout()
                .contains("for the WHOLE cluster: app, postgres, template1"),
        "{}",
        plan.stdout()
    );
    let run = c.deploy();
    run.expect_code(0);
    let report = c.report();
    let id = report["snapshot"]["id"].as_str().unwrap();
    assert!(id.starts_with("snapguard-"), "{report}");
    assert!(
        report["snapshot"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("pgbackrest:main/"),
        "{report}"
    );
    assert!(run.stderr().contains("WHOLE cluster"), "{}", run.stderr());
    assert_eq!(c.sql("app", "SELECT to_regclass('added') IS NOT NULL"), "t");
    assert!(!c.maintenance_on());
    // `snapshots list` shows the restore point beside the store's (none).
    let listed = Run(c
        .ws
        .snapguard()
        .args(["snapshots", "list"])
        .output()
        .unwrap());
    listed.expect_code(0);
    let row = listed
        .stdout()
        .lines()
        .find(|l| l.starts_with(id))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{}", listed.stdout()));
    assert!(row.contains(" app ") && row.contains(" main "), "{row}");
    let json = Run(c
        .ws
        .snapguard()
        .args(["snapshots", "list", "--json"])
        .output()
        .unwrap());
    let rows: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(rows[0]["restore_point"]["name"], id);
    assert_eq!(rows[0]["restore_point"]["deploy_id"], report["deploy_id"]);
}

#[test]
fn a_failed_migration_is_rolled_back_by_a_point_in_time_restore() {
    let c = Cluster::new("");
    let before = c.state();
    c.migration(
        "1_add.sql",
        "CREATE TABLE added (id int);\nINSERT INTO items VALUES (1000, 'new');\n",
    );
    c.migration("2_bad.sql", "SELECT 1/0;\n");
    let run = c.deploy();
    assert_eq!(run.code(), 4, "{}\n{}", run.stderr(), c.server_log());
    assert_eq!(
        c.state(),
        before,
        "the cluster is back at the restore point"
    );
    assert_eq!(c.sql("app", "SELECT to_regclass('added') IS NULL"), "t");
    let report = c.report();
    let database = report["rollback"]["database"].as_str().unwrap();
    assert!(
        database.starts_with("point-in-time restore of the whole cluster"),
        "{report}"
    );
    assert!(!c.maintenance_on(), "maintenance is off again");
    // The server is a primary again, and takes the next deploy.
    assert_eq!(c.sql("app", "SELECT pg_is_in_recovery()"), "f");
    std::fs::remove_file(c.ws.path().join("migrations/2_bad.sql")).unwrap();
    c.deploy().expect_code(0);
}

#[test]
fn broken_archiving_stops_preflight_with_exit_3_and_changes_nothing() {
    let c = Cluster::new("");
    c.sql("postgres", "ALTER SYSTEM SET archive_command = 'false'");
    c.sql("postgres", "SELECT pg_reload_conf()");
    c.sql("postgres", "SELECT pg_switch_wal()");
    c.sql(
        "app",
        "CREATE TABLE churn AS SELECT g FROM generate_series(1, 1000) g",
    );
    c.sql("postgres", "SELECT pg_switch_wal()");
    wait_until("an archive failure", Duration::from_secs(60), || {
        c.sql("postgres", "SELECT failed_count > 0 FROM pg_stat_archiver") == "t"
    });
    c.migration("1_add.sql", "CREATE TABLE added (id int);\n");
    let run = c.deploy();
    run.expect_code(3);
    run.expect_stderr("archiving is failing");
    assert!(!c.maintenance_on());
    assert_eq!(c.sql("app", "SELECT to_regclass('added') IS NULL"), "t");
}

#[test]
fn archiving_off_is_named_at_preflight() {
    let c = Cluster::new("");
    c.sql("postgres", "ALTER SYSTEM SET archive_command = ''");
    c.sql("postgres", "SELECT pg_reload_conf()");
    c.migration("1_add.sql", "CREATE TABLE added (id int);\n");
    let run = c.deploy();
    run.expect_code(3);
    run.expect_stderr("`archive_command` is empty");
    assert!(!c.maintenance_on());
}

impl Cluster {
    /// A deploy whose second migration sleeps, started in the background
    /// and waited on until it is in that migration.
    fn deploy_in_slow_migration(&self) -> std::process::Child {
        self.migration("1_add.sql", "CREATE TABLE added (id int);\n");
        self.migration("2_slow.sql", "SELECT pg_sleep(60);\n");
        let child = self.ws.spawn_quiet(&["deploy", "--release", "v1"]);
        wait_until("the slow migration", Duration::from_secs(120), || {
            self.sql(
                "postgres",
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'",
            ) == "1"
        });
        child
    }

    fn recover(&self) -> Run {
        Run(self.ws.snapguard().arg("recover").output().unwrap())
    }
}

#[test]
fn kill_9_mid_migration_then_recover_restores_the_restore_point() {
    let c = Cluster::new("");
    let before = c.state();
    let child = c.deploy_in_slow_migration();
    kill9(child);
    assert!(c.maintenance_on());
    let run = c.recover();
    assert_eq!(run.code(), 4, "{}\n{}", run.stderr(), c.server_log());
    assert_eq!(c.state(), before);
    assert_eq!(c.sql("app", "SELECT to_regclass('added') IS NULL"), "t");
    assert!(!c.maintenance_on(), "{}", run.stderr());
}

#[test]
fn the_store_copy_beside_the_restore_point_is_what_recover_snapshot_restores() {
    let c = Cluster::new("  offsite: before-migrate\n");
    let before = c.state();
    c.migration("1_add.sql", "CREATE TABLE added (id int);\n");
    let plan = Run(c.ws.snapguard().arg("plan").output().unwrap());
    plan.expect_code(0);
    assert!(
        plan.stdout().contains("then a pg_dump copy to"),
        "{}",
        plan.stdout()
    );
    let started = c.sql("postgres", "SELECT pg_postmaster_start_time()");
    let child = c.deploy_in_slow_migration();
    kill9(child);
    let listed = Run(c
        .ws
        .snapguard()
        .args(["snapshots", "list", "--json"])
        .output()
        .unwrap());
    let rows: serde_json::Value = serde_json::from_str(&listed.stdout()).unwrap();
    let copy = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["manifest"]["database"] == "app")
        .unwrap_or_else(|| panic!("no store copy of app: {rows}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["restore_point"].is_object()),
        "{rows}"
    );
    // The store copy instead of the point-in-time restore: the app
    // database alone, the server not restarted.
    let run = Run(c
        .ws
        .snapguard()
        .args(["recover", "--snapshot", &copy, "--report", "recover.json"])
        .output()
        .unwrap());
    assert_eq!(run.code(), 4, "{}", run.stderr());
    let report = c.report_at("recover.json");
    let database = report["rollback"]["database"].as_str().unwrap();
    assert!(database.starts_with("store restore of"), "{report}");
    assert_eq!(c.state(), before);
    assert_eq!(
        c.sql("postgres", "SELECT pg_postmaster_start_time()"),
        started
    );
    assert!(!c.maintenance_on());
}

#[test]
fn a_write_after_the_restore_point_makes_recover_refuse_with_exit_5() {
    let c = Cluster::new("");
    let child = c.deploy_in_slow_migration();
    // Someone else writes while the deploy runs: a restore would lose it.
    c.sql(
        "app",
        "INSERT INTO items VALUES (9999, 'written after the snapshot')",
    );
    kill9(child);
    let run = c.recover();
    run.expect_code(5);
    run.expect_stderr("after the snapshot");
    assert_eq!(
        c.sql("app", "SELECT count(*) FROM items WHERE id = 9999"),
        "1"
    );
    assert!(
        c.maintenance_on(),
        "maintenance stays on until a human decides"
    );
}

#[test]
fn a_runner_killed_during_the_restore_leaves_recover_saying_how_to_finish_it() {
    let c = Cluster::new("");
    let before = c.state();
    std::fs::write(c.dir.path().join("kill-runner"), "").unwrap();
    c.migration("1_add.sql", "CREATE TABLE added (id int);\n");
    c.migration("2_bad.sql", "SELECT 1/0;\n");
    let run = c.deploy();
    assert_eq!(run.0.status.code(), None, "killed: {}", run.stderr());
    std::fs::remove_file(c.dir.path().join("kill-runner")).unwrap();
    // The server is stopped: recover cannot take its lock, and says why
    // and what to run.
    let recover = c.recover();
    recover.expect_code(5);
    recover.expect_stderr("was restoring the whole cluster to pgBackRest restore point");
    let stderr = recover.stderr();
    let printed: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("pgbackrest ") || l.ends_with("start.sh"))
        .collect();
    assert_eq!(printed.len(), 2, "{stderr}");
    for line in &printed {
        run_ok(Command::new("sh").arg("-c").arg(line));
    }
    // The last printed line closes the deploy keeping the restored cluster
    // (run as printed; it waits for the server to be promoted first).
    let close = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("snapguard "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(close, "snapguard recover --accept-current");
    let closed = c.ws.run_printed(close);
    assert_eq!(closed.code(), 0, "{}\n{}", closed.stderr(), c.server_log());
    assert_eq!(c.state(), before);
    assert!(!c.maintenance_on());
}

#[test]
fn a_role_without_superuser_passes_preflight_with_the_grants_it_names() {
    let c = Cluster::new("");
    c.sql(
        "postgres",
        "CREATE ROLE deployer LOGIN PASSWORD 'deployer-pw'; ALTER DATABASE app OWNER TO deployer",
    );
    c.sql("app", "ALTER TABLE items OWNER TO deployer");
    c.migration("1_add.sql", "CREATE TABLE added (id int);\n");
    let as_deployer = format!(
        "postgres://deployer:deployer-pw@127.0.0.1:{}/app?sslmode=disable",
        c.server.port()
    );
    let config = c.ws.path().join("snapguard.yml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace(&c.server.url("app"), &as_deployer)).unwrap();
    let plan = || Run(c.ws.snapguard().arg("plan").output().unwrap());
    // Without the grants: refused, naming them.
    let refused = plan();
    refused.expect_code(3);
    refused.expect_stderr(
        "GRANT EXECUTE ON FUNCTION pg_create_restore_point(text), pg_switch_wal() TO deployer",
    );
    c.sql(
        "postgres",
        "GRANT EXECUTE ON FUNCTION pg_create_restore_point(text), pg_switch_wal() TO deployer",
    );
    let planned = plan();
    assert_eq!(planned.code(), 0, "{}", planned.stderr());
    assert!(
        planned.stdout().contains("pgBackRest restore point"),
        "{}",
        planned.stdout()
    );
}

/// `rehearse --pgbackrest`: the stanza's newest backup restored into a
/// throwaway server here, the archive replayed to its end (the database
/// was created after the backup: only the WAL has it), the deploy
/// rehearsed on it; production's server, database and repository are left
/// as they were, and the copy's WAL never reaches the repository.
#[test]
fn a_rehearsal_restores_the_newest_backup_here_and_replays_the_archive() {
    let cluster = Cluster::new("");
    cluster.sql("app", "SELECT pg_switch_wal()");
    cluster.pgbackrest(&["check"]);
    let before = cluster.state();
    cluster.migration(
        "1_note.sql",
        "DO $$ BEGIN IF (SELECT count(*) FROM items) <> 500 THEN RAISE EXCEPTION 'the copy lacks the rows'; END IF; END $$;\nALTER TABLE items ADD COLUMN note text;\n",
    );
    let run = Run(cluster
        .ws
        .snapguard()
        .args(["rehearse", "--pgbackrest", "--report", "rehearsal.json"])
        .output()
        .unwrap());
    run.expect_code(0);
    let report = cluster.report_at("rehearsal.json");
    let source = report["source"].as_str().unwrap();
    assert!(
        source.starts_with("PostgreSQL 15 restored here from pgBackRest backup ")
            && source.ends_with("of stanza `main`, its archive replayed to the end"),
        "{report}"
    );
    assert_eq!(report["database"], "app", "{report}");
    let migrated = report["migrations"].as_array().unwrap();
    assert_eq!(migrated.len(), 1, "{report}");
    // Production: as it was, and still archiving.
    assert_eq!(cluster.state(), before);
    assert_eq!(
        cluster.sql(
            "app",
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note'"
        ),
        "0"
    );
    cluster.pgbackrest(&["check"]);
    // The copy promoted to a timeline of its own, with archiving off: no
    // history or segment of it in the repository.
    let archive = cluster.dir.path().join("repo/archive/main");
    let listed = run_ok(
        Command::new("find")
            .arg(&archive)
            .args(["-name", "00000002*"]),
    );
    assert_eq!(listed.trim(), "", "the copy archived into the repository");
}

#[test]
fn rehearse_pgbackrest_needs_the_pgbackrest_provider() {
    let ws = Workspace::new("database:\n  url: postgres://app@127.0.0.1:1/app\n");
    ws.run(&["rehearse", "--pgbackrest"])
        .expect_code(2)
        .expect_stderr("it needs `snapshot.provider: pgbackrest`");
}

/// `verify: true`: the rollback first restores the restore point into a
/// throwaway server here and compares its catalogue with the snapshot's;
/// then restores the cluster as without it.
#[test]
fn a_verified_rollback_proves_the_point_in_a_throwaway_server_first() {
    let c = Cluster::new("    verify: true\n");
    let before = c.state();
    c.migration("1_add.sql", "CREATE TABLE added (id int);\n");
    c.migration("2_bad.sql", "SELECT 1/0;\n");
    let run = c.deploy();
    assert_eq!(run.code(), 4, "{}\n{}", run.stderr(), c.server_log());
    assert!(
        run.stderr()
            .contains("verified: the restore point restores the database as at the snapshot"),
        "{}",
        run.stderr()
    );
    assert_eq!(c.state(), before);
    assert!(!c.maintenance_on());
}

/// `verify: true` with the repository's WAL gone before the rollback: the
/// point cannot come back, which the throwaway server shows while the
/// cluster still runs. The cluster is not stopped: exit 5, the migrated
/// state kept, maintenance on.
#[test]
fn a_restore_point_that_cannot_come_back_is_found_before_the_cluster_is_stopped() {
    let c = Cluster::new("");
    c.write_config(&format!(
        "    verify: true\nrelease:\n  command: find {} -type f -name '0000*' -delete; exit 1\n",
        c.dir.path().join("repo/archive").display()
    ));
    c.migration("1_add.sql", "CREATE TABLE added (id int);\n");
    let started = c.sql("app", "SELECT pg_postmaster_start_time()");
    let run = c.deploy();
    assert_eq!(run.code(), 5, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("could not be restored into a throwaway server here: the cluster is left as it is (not stopped)"),
        "{}",
        run.stderr()
    );
    assert_eq!(c.sql("app", "SELECT pg_postmaster_start_time()"), started);
    assert_eq!(c.sql("app", "SELECT to_regclass('added') IS NOT NULL"), "t");
    assert!(c.maintenance_on());
}
