//! `snapshot.provider: rds` against moto's RDS, reached through the
//! recording proxy of `common::rds`. The deploy's database is the tests'
//! local PostgreSQL, which moto's "restore" does not touch.

mod common;

use common::rds::*;
use common::*;

#[test]
fn a_success_snapshots_the_instance_and_a_failure_restores_it_under_its_name() {
    let rds = Rds::start();
    // With a pg_dump copy to the store beside the RDS snapshot.
    let ws = rds.workspace("rds_swap", "prod", "  offsite: before-migrate\n");
    ws.migrations(&[("1_add.sql", "CREATE TABLE added (id int);\n")]);
    let plan = ws.run(&["plan"]);
    plan.expect_code(0);
    assert!(
        plan.stdout()
            .contains("2. RDS snapshot of instance `prod` (postgres, db.t3.micro;"),
        "{}",
        plan.stdout()
    );
    assert_eq!(rds.count("CreateDBSnapshot"), 0, "plan changes nothing");

    let ok = ws.run(&["deploy", "--release", "v1", "--report", "ok.json"]);
    ok.expect_code(0);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path().join("ok.json")).unwrap()).unwrap();
    let snapshot = report["snapshot"]["id"].as_str().unwrap().to_owned();
    assert!(snapshot.starts_with("snapguard-prod-"), "{report}");
    assert_eq!(rds.snapshots(), vec![snapshot.clone()]);
    assert_eq!(rds.count("ModifyDBInstance"), 0);
    assert!(ok.stderr().contains("WHOLE instance"), "{}", ok.stderr());
    let listed = ws.run(&["snapshots", "list"]);
    listed.expect_code(0);
    assert!(
        listed
            .stdout()
            .lines()
            .any(|l| l.starts_with(&snapshot) && l.contains(" available ") && l.ends_with("prod")),
        "{}",
        listed.stdout()
    );
    assert!(
        listed
            .stdout()
            .lines()
            .any(|l| l.contains("-rds_swap-") && l.contains(" rds_swap ")),
        "the store copy: {}",
        listed.stdout()
    );

    ws.migrations(&[
        ("2_more.sql", "CREATE TABLE more (id int);\n"),
        ("3_bad.sql", "SELECT 1 / 0;\n"),
    ]);
    let failed = ws.run(&["deploy", "--release", "v2", "--report", "failed.json"]);
    assert_eq!(failed.code(), 4, "{}", failed.stderr());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path().join("failed.json")).unwrap())
            .unwrap();
    let second = report["snapshot"]["id"].as_str().unwrap().to_owned();
    let aside = second.replacen("snapguard-prod-", "prod-failed-", 1);
    let database = report["rollback"]["database"].as_str().unwrap();
    assert!(
        database.starts_with(&format!(
            "RDS instance `prod` restored from snapshot `{second}`; the failed instance is kept as `{aside}`"
        )),
        "{report}"
    );
    // The calls, in order: the snapshot taken and waited on; at the
    // rollback, the snapshot checked, the instance renamed aside, the
    // snapshot restored under its name.
    let actions = rds.actions();
    let create = actions
        .iter()
        .rposition(|a| a == "CreateDBSnapshot")
        .unwrap();
    let rename = position(&actions, "ModifyDBInstance");
    let restore = position(&actions, "RestoreDBInstanceFromDBSnapshot");
    assert!(
        actions[create..rename]
            .iter()
            .any(|a| a == "DescribeDBSnapshots")
            && create < rename
            && rename < restore,
        "{actions:?}"
    );
    assert_eq!(rds.count("ModifyDBInstance"), 1, "{actions:?}");
    assert_eq!(
        rds.count("RestoreDBInstanceFromDBSnapshot"),
        1,
        "{actions:?}"
    );
    let mut instances = rds.instances();
    instances.sort();
    assert_eq!(instances, vec!["prod".to_owned(), aside]);
    assert!(!ws.path().join("maintenance.txt").exists());
}

#[test]
fn recover_finishes_a_swap_whose_runner_was_killed_between_rename_and_restore() {
    let rds = Rds::start();
    let ws = rds.workspace("rds_killed", "prod", "");
    ws.migrations(&[
        ("1_add.sql", "CREATE TABLE added (id int);\n"),
        ("2_bad.sql", "SELECT 1 / 0;\n"),
    ]);
    let mut child = ws.spawn_quiet(&["deploy", "--release", "v1"]);
    rds.kill_after("ModifyDBInstance", &child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by the proxy: {status:?}");
    assert_eq!(rds.count("ModifyDBInstance"), 1);
    assert_eq!(rds.count("RestoreDBInstanceFromDBSnapshot"), 0);
    assert!(!rds.instances().contains(&"prod".to_owned()));
    assert!(ws.path().join("maintenance.txt").exists());

    let recover = ws.run(&["recover", "--report", "recover.json"]);
    assert_eq!(recover.code(), 4, "{}", recover.stderr());
    // Not renamed twice; restored once.
    assert_eq!(rds.count("ModifyDBInstance"), 1, "{:?}", rds.actions());
    assert_eq!(rds.count("RestoreDBInstanceFromDBSnapshot"), 1);
    assert!(rds.instances().contains(&"prod".to_owned()));
    assert!(!ws.path().join("maintenance.txt").exists());
    // The deploy is closed: the next one runs.
    std::fs::remove_file(ws.path().join("migrations/2_bad.sql")).unwrap();
    ws.run(&["plan"]).expect_code(0);
}

#[test]
fn an_instance_rds_does_not_have_stops_preflight_with_exit_3_and_changes_nothing() {
    let rds = Rds::start();
    let ws = rds.workspace("rds_unknown", "nope", "");
    ws.migrations(&[("1_add.sql", "CREATE TABLE added (id int);\n")]);
    let run = ws.run(&["deploy"]);
    run.expect_code(3)
        .expect_stderr("RDS instance `nope` does not exist");
    assert_eq!(rds.count("CreateDBSnapshot"), 0);
    assert!(!ws.path().join("maintenance.txt").exists());
    assert_eq!(
        psql("rds_unknown", "SELECT to_regclass('added') IS NULL"),
        "t"
    );
}

#[test]
fn a_snapshot_gone_before_the_rollback_leaves_the_instance_where_it_is() {
    let rds = Rds::start();
    // The release deletes every manual snapshot, then fails: the rollback
    // finds nothing to restore and must not rename the instance aside.
    let ws = rds.workspace(
        "rds_gone",
        "prod",
        "release:\n  command: python3 drop_snapshots.py; exit 1\n",
    );
    std::fs::write(
        ws.path().join("drop_snapshots.py"),
        format!(
            "import boto3\nc = boto3.client('rds', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='a', aws_secret_access_key='b')\nfor s in c.describe_db_snapshots(SnapshotType='manual')['DBSnapshots']:\n    c.delete_db_snapshot(DBSnapshotIdentifier=s['DBSnapshotIdentifier'])\n",
            rds.moto.endpoint
        ),
    )
    .unwrap();
    ws.migrations(&[("1_add.sql", "CREATE TABLE added (id int);\n")]);
    let run = ws.run(&["deploy", "--release", "v1"]);
    assert_eq!(run.code(), 5, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("is missing: the instance is left as it is"),
        "{}",
        run.stderr()
    );
    assert_eq!(rds.count("ModifyDBInstance"), 0, "{:?}", rds.actions());
    assert_eq!(rds.instances(), vec!["prod".to_owned()]);
    // The database is not known good: maintenance stays on.
    assert!(ws.path().join("maintenance.txt").exists());
}

#[test]
fn the_deploy_waits_while_rds_takes_the_snapshot_and_restores_it() {
    let rds = Rds::start();
    let ws = rds.workspace("rds_waits", "prod", "");
    ws.migrations(&[
        ("1_add.sql", "CREATE TABLE added (id int);\n"),
        ("2_bad.sql", "SELECT 1 / 0;\n"),
    ]);
    // The snapshot still `creating` once, the restored instance still
    // `creating` once: each waited out, not taken for done.
    rds.busy(
        "CreateDBSnapshot",
        "DescribeDBSnapshots",
        "<Status>available</Status>",
        "<Status>creating</Status><PercentProgress>40</PercentProgress>",
        1,
    );
    rds.busy(
        "RestoreDBInstanceFromDBSnapshot",
        "DescribeDBInstances",
        "<DBInstanceStatus>available</DBInstanceStatus>",
        "<DBInstanceStatus>creating</DBInstanceStatus>",
        1,
    );
    let run = ws.run(&["deploy", "--release", "v1"]);
    assert_eq!(run.code(), 4, "{}", run.stderr());
    let log = without_masks(&run.stderr());
    assert!(
        log.contains("waiting for the RDS snapshot") && log.contains("percent=40"),
        "{log}"
    );
    assert!(log.contains("status=creating"), "{log}");
    let actions = rds.actions();
    let restore = position(&actions, "RestoreDBInstanceFromDBSnapshot");
    assert!(
        actions[restore..]
            .iter()
            .filter(|a| *a == "DescribeDBInstances")
            .count()
            >= 2,
        "the restored instance was asked again: {actions:?}"
    );
}

#[test]
fn a_snapshot_not_available_within_the_wait_fails_the_deploy_before_any_migration() {
    let rds = Rds::start();
    let ws = rds.workspace("rds_slow", "prod", "");
    let config = std::fs::read_to_string(ws.path().join("snapguard.yml")).unwrap();
    std::fs::write(
        ws.path().join("snapguard.yml"),
        config.replace("    wait: 2m\n", "    wait: 1s\n"),
    )
    .unwrap();
    ws.migrations(&[("1_add.sql", "CREATE TABLE added (id int);\n")]);
    rds.busy(
        "CreateDBSnapshot",
        "DescribeDBSnapshots",
        "<Status>available</Status>",
        "<Status>creating</Status>",
        usize::MAX,
    );
    let run = ws.run(&["deploy", "--release", "v1"]);
    assert_eq!(run.code(), 4, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("waited 1s (`snapshot.rds.wait`) for snapshot `snapguard-prod-"),
        "{}",
        run.stderr()
    );
    assert_eq!(psql("rds_slow", "SELECT to_regclass('added') IS NULL"), "t");
    assert_eq!(rds.count("ModifyDBInstance"), 0);
    assert!(!ws.path().join("maintenance.txt").exists());
}

#[test]
fn prune_deletes_rds_snapshots_beyond_the_retention_only_when_told() {
    let rds = Rds::start();
    let ws = rds.workspace(
        "rds_prune",
        "prod",
        "  retention: { keep_last: 1, keep_days: 0 }\n",
    );
    deploy_twice(&ws);
    let mut taken = rds.snapshots();
    taken.sort();
    assert_eq!(taken.len(), 2, "{taken:?}");
    let (older, newer) = (taken[0].clone(), taken[1].clone());
    // Left to RDS unless told: said, not done.
    let plain = ws.run(&["prune"]);
    plain.expect_code(0);
    assert!(
        plain
            .stdout()
            .contains("1 RDS snapshot(s) are beyond snapshot.retention"),
        "{}",
        plain.stdout()
    );
    let dry = ws.run(&["prune", "--rds", "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stdout()
            .contains(&format!("would delete RDS snapshot {older}")),
        "{}",
        dry.stdout()
    );
    assert_eq!(rds.count("DeleteDBSnapshot"), 0);
    ws.run(&["prune", "--rds"]).expect_code(0);
    assert_eq!(rds.count("DeleteDBSnapshot"), 1);
    assert_eq!(rds.snapshots(), vec![newer]);

    // RDS out of reach: plain `prune` still prunes the store, saying so;
    // `--rds` cannot do what it was asked.
    let config = std::fs::read_to_string(ws.path().join("snapguard.yml")).unwrap();
    std::fs::write(
        ws.path().join("snapguard.yml"),
        config.replace(
            &rds.endpoint,
            &format!("http://127.0.0.1:{}", closed_port()),
        ),
    )
    .unwrap();
    let unreachable = ws.run(&["prune"]);
    unreachable.expect_code(0);
    assert!(
        unreachable
            .stderr()
            .contains("cannot list the RDS snapshots; pruning the store only"),
        "{}",
        unreachable.stderr()
    );
    ws.run(&["prune", "--rds"]).expect_code(3);
}

/// A rehearsal's deploy runs on a copy: with `provider: rds` it must not
/// snapshot production's instance, nor, when the rehearsed migration
/// fails, rename it aside. It snapshots the copy with pg_dump instead.
#[test]
fn a_rehearsal_never_calls_rds() {
    let rds = Rds::start();
    let ws = rds.workspace("rds_rehearsed", "prod", "");
    ws.migrations(&[
        ("1_add.sql", "CREATE TABLE added (id int);\n"),
        ("2_bad.sql", "SELECT 1 / 0;\n"),
    ]);
    let run = ws
        .snapguard()
        .args(["rehearse", "--report", "report.json"])
        .env("SNAPGUARD_FROM_URL", pg().url("rds_rehearsed"))
        .output()
        .unwrap();
    let run = Run(run);
    run.expect_code(8).expect_stderr("2_bad.sql:1");
    assert!(
        run.stderr()
            .contains("the rehearsal snapshots the copy with pg_dump"),
        "{}",
        run.stderr()
    );
    assert_eq!(rds.actions(), Vec::<String>::new());
    // The rehearsed deploy's rollback was the copy's own.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["failure"]["step"], "migrate", "{report}");
    assert_eq!(
        psql("rds_rehearsed", "SELECT to_regclass('added') IS NULL"),
        "t"
    );
}
