//! `snapshot.provider: aurora-clone` against moto's RDS (cluster `prod`,
//! instances `prod-1` writer and `prod-2`), reached through the recording
//! proxy of `common::rds`. The deploy's database is the tests' local
//! PostgreSQL, which moto's clone does not touch: these tests prove the
//! calls, their order and their arguments, what RDS is left with, and the
//! deploy's exit codes and maintenance, not that the clone holds the data.

mod common;

use common::rds::*;
use common::*;

/// The report's `rollback.database`.
fn rolled_back(ws: &Workspace, report: &str) -> String {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path().join(report)).unwrap()).unwrap();
    report["rollback"]["database"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The clusters and instances a finished swap leaves for snapshot
/// `snapshot`: `prod` (the clone, renamed) and the failed cluster aside;
/// the original instances and the clone's two.
fn assert_swapped(rds: &Rds, snapshot: &str) {
    let short = snapshot.trim_start_matches("snapguard-prod-");
    assert_eq!(
        rds.clusters(),
        vec!["prod".to_owned(), format!("prod-failed-{short}")],
        "{:?}",
        rds.actions()
    );
    let mut instances = rds.instances();
    instances.sort();
    assert_eq!(
        instances,
        vec![
            "prod-1".to_owned(),
            format!("prod-1-{short}"),
            "prod-2".to_owned(),
            format!("prod-2-{short}"),
        ]
    );
}

#[test]
fn a_success_snapshots_the_cluster_and_a_failure_swaps_in_a_clone_made_at_the_snapshot() {
    let rds = Rds::aurora();
    let ws = rds.aurora_workspace("aurora_swap", "prod", "");
    ws.migrations(&[("1_add.sql", "CREATE TABLE added (id int);\n")]);
    let plan = ws.run(&["plan"]);
    plan.expect_code(0);
    assert!(
        plan.stdout().contains(
            "2. Aurora snapshot of cluster `prod` (aurora-postgresql 15.4, 2 instance(s);"
        ),
        "{}",
        plan.stdout()
    );
    assert_eq!(
        rds.count("CreateDBClusterSnapshot"),
        0,
        "plan changes nothing"
    );

    ws.run(&["deploy", "--release", "v1"]).expect_code(0);
    let taken = rds.cluster_snapshots();
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(rds.count("RestoreDBClusterToPointInTime"), 0);
    let listed = ws.run(&["snapshots", "list"]);
    listed.expect_code(0);
    assert!(
        listed
            .stdout()
            .lines()
            .any(|l| l.starts_with(&taken[0]) && l.contains(" available ") && l.ends_with("prod")),
        "{}",
        listed.stdout()
    );

    ws.migrations(&[("2_bad.sql", "SELECT 1 / 0;\n")]);
    let failed = ws.run(&["deploy", "--release", "v2", "--report", "failed.json"]);
    assert_eq!(failed.code(), 4, "{}", failed.stderr());
    let database = rolled_back(&ws, "failed.json");
    let snapshot = rds.cluster_snapshots().into_iter().max().unwrap();
    let short = snapshot.trim_start_matches("snapguard-prod-");
    assert!(
        database.starts_with(
            "Aurora cluster `prod` replaced by a copy-on-write clone of itself as at "
        ) && database.ends_with(&format!(
            "the failed cluster is kept as `prod-failed-{short}`"
        )),
        "{database}"
    );
    // The calls, in order: the clone made (at the snapshot's time, with
    // the cluster's settings) and its instances added while the cluster
    // still serves; then the cluster renamed aside; then the clone renamed
    // to its name.
    let actions = rds.actions();
    let restore = position(&actions, "RestoreDBClusterToPointInTime");
    let instance = position(&actions, "CreateDBInstance");
    let renames: Vec<usize> = (0..actions.len())
        .filter(|&i| actions[i] == "ModifyDBCluster")
        .collect();
    assert_eq!(renames.len(), 2, "{actions:?}");
    assert!(restore < instance && instance < renames[0], "{actions:?}");
    assert_eq!(rds.count("RestoreDBClusterToPointInTime"), 1);
    assert_eq!(rds.count("CreateDBInstance"), 2);
    let clone = &rds.forms("RestoreDBClusterToPointInTime")[0];
    for part in [
        "RestoreType=copy-on-write",
        "SourceDBClusterIdentifier=prod",
        &format!("DBClusterIdentifier=prod-clone-{short}"),
        "RestoreToTime=",
        "Port=5432",
    ] {
        assert!(clone.contains(part), "{part} in {clone}");
    }
    let forms = rds.forms("ModifyDBCluster");
    assert!(
        forms[0].contains("DBClusterIdentifier=prod&")
            && forms[0].contains(&format!("NewDBClusterIdentifier=prod-failed-{short}")),
        "{forms:?}"
    );
    assert!(
        forms[1].contains(&format!("DBClusterIdentifier=prod-clone-{short}"))
            && forms[1].contains("NewDBClusterIdentifier=prod&"),
        "{forms:?}"
    );
    // The writer's twin first, each with its original's class.
    let instances = rds.forms("CreateDBInstance");
    assert!(
        instances[0].contains(&format!("DBInstanceIdentifier=prod-1-{short}"))
            && instances[0].contains("DBInstanceClass=db.r6g.large"),
        "{instances:?}"
    );
    assert!(
        instances[1].contains("DBInstanceClass=db.r6g.xlarge"),
        "{instances:?}"
    );
    assert_swapped(&rds, &snapshot);
    assert!(!ws.path().join("maintenance.txt").exists());
}

/// The runner SIGKILLed once each call of the swap was answered; `recover`,
/// run as the deploy prints it, finishes the swap without repeating any
/// call that was made.
#[test]
fn recover_finishes_a_swap_killed_after_each_of_its_calls() {
    for (n, (kill_after, restores, instances)) in [
        ("RestoreDBClusterToPointInTime", 1, 2),
        ("CreateDBInstance", 1, 2),
        ("ModifyDBCluster", 1, 2),
    ]
    .into_iter()
    .enumerate()
    {
        let rds = Rds::aurora();
        let db = format!("aurora_killed_{n}");
        let ws = rds.aurora_workspace(&db, "prod", "");
        ws.migrations(&[
            ("1_add.sql", "CREATE TABLE added (id int);\n"),
            ("2_bad.sql", "SELECT 1 / 0;\n"),
        ]);
        let mut child = ws.spawn_quiet(&["deploy", "--release", "v1"]);
        rds.kill_after(kill_after, &child);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), None, "{kill_after}: killed by the proxy");
        assert!(ws.path().join("maintenance.txt").exists());

        let recover = ws.run(&["recover", "--report", "recover.json"]);
        assert_eq!(recover.code(), 4, "{kill_after}: {}", recover.stderr());
        assert_eq!(
            rds.count("RestoreDBClusterToPointInTime"),
            restores,
            "{kill_after}: {:?}",
            rds.actions()
        );
        assert_eq!(rds.count("CreateDBInstance"), instances, "{kill_after}");
        assert_eq!(rds.count("ModifyDBCluster"), 2, "{kill_after}");
        let database = rolled_back(&ws, "recover.json");
        let snapshot = rds.cluster_snapshots().pop().unwrap();
        assert!(
            database.starts_with("Aurora cluster `prod` replaced by a copy-on-write clone"),
            "{kill_after}: {database}"
        );
        assert_swapped(&rds, &snapshot);
        assert!(!ws.path().join("maintenance.txt").exists(), "{kill_after}");
        // The deploy is closed: the next one runs.
        std::fs::remove_file(ws.path().join("migrations/2_bad.sql")).unwrap();
        ws.run(&["plan"]).expect_code(0);
    }
}

#[test]
fn the_rollback_waits_until_the_snapshot_time_is_restorable_and_the_clone_is_ready() {
    let rds = Rds::aurora();
    let ws = rds.aurora_workspace("aurora_waits", "prod", "");
    ws.migrations(&[
        ("1_add.sql", "CREATE TABLE added (id int);\n"),
        ("2_bad.sql", "SELECT 1 / 0;\n"),
    ]);
    // Aurora has not yet made the snapshot's time restorable (the check
    // before the swap, the clone's source read, then the first wait), and
    // the clone is `creating`
    // once: each waited out, not taken for done.
    rds.busy(
        "CreateDBClusterSnapshot",
        "DescribeDBClusters",
        "<LatestRestorableTime>",
        "<NotYetRestorable>",
        3,
    );
    rds.busy(
        "RestoreDBClusterToPointInTime",
        "DescribeDBClusters",
        "<Status>available</Status>",
        "<Status>creating</Status>",
        1,
    );
    let run = ws.run(&["deploy", "--release", "v1"]);
    assert_eq!(run.code(), 4, "{}", run.stderr());
    let log = without_masks(&run.stderr());
    assert!(log.contains("no latest restorable time yet"), "{log}");
    assert!(log.contains("waiting for clone `prod-clone-"), "{log}");
    assert_eq!(rds.count("RestoreDBClusterToPointInTime"), 1);
    assert_eq!(rds.count("ModifyDBCluster"), 2);
}

#[test]
fn a_cluster_rds_does_not_have_or_an_instance_of_one_stops_preflight_with_exit_3() {
    let rds = Rds::aurora();
    let ws = rds.aurora_workspace("aurora_unknown", "nope", "");
    ws.migrations(&[("1_add.sql", "CREATE TABLE added (id int);\n")]);
    ws.run(&["deploy"])
        .expect_code(3)
        .expect_stderr("Aurora cluster `nope` does not exist");
    // An instance of the cluster named to `provider: rds`: pointed to
    // `aurora-clone`.
    let member = rds.workspace("aurora_member", "prod-1", "");
    member.migrations(&[("1_add.sql", "CREATE TABLE added (id int);\n")]);
    member
        .run(&["deploy"])
        .expect_code(3)
        .expect_stderr("use `snapshot.provider: aurora-clone` with `snapshot.rds.cluster: prod`");
    assert_eq!(rds.count("CreateDBClusterSnapshot"), 0);
    assert_eq!(rds.count("CreateDBSnapshot"), 0);
    for (db, ws) in [("aurora_unknown", &ws), ("aurora_member", &member)] {
        assert!(!ws.path().join("maintenance.txt").exists());
        assert_eq!(psql(db, "SELECT to_regclass('added') IS NULL"), "t");
    }
}

#[test]
fn prune_deletes_cluster_snapshots_beyond_the_retention_only_when_told() {
    let rds = Rds::aurora();
    let ws = rds.aurora_workspace(
        "aurora_prune",
        "prod",
        "  retention: { keep_last: 1, keep_days: 0 }\n",
    );
    deploy_twice(&ws);
    let mut taken = rds.cluster_snapshots();
    taken.sort();
    assert_eq!(taken.len(), 2, "{taken:?}");
    let plain = ws.run(&["prune"]);
    plain.expect_code(0);
    assert!(
        plain
            .stdout()
            .contains("1 RDS snapshot(s) are beyond snapshot.retention"),
        "{}",
        plain.stdout()
    );
    assert_eq!(rds.count("DeleteDBClusterSnapshot"), 0);
    ws.run(&["prune", "--rds"]).expect_code(0);
    assert_eq!(rds.count("DeleteDBClusterSnapshot"), 1);
    assert_eq!(rds.cluster_snapshots(), vec![taken[1].clone()]);
}

/// After the swap the cluster endpoint's DNS may still lead to the failed
/// cluster for a while: the rollback waits until `database.url` is served
/// by one of the clone's instances (`aurora_db_instance_identifier()`,
/// stood in for here by a function of the test's: the failed writer's
/// name on its first call, then what the test writes once the clone's
/// instances exist), and fails, maintenance on, if it never is.
#[test]
fn the_rollback_waits_until_the_database_is_served_by_the_clone() {
    for (n, served_by_clone) in [(0, true), (1, false)] {
        let rds = Rds::aurora();
        let db = format!("aurora_dns_{n}");
        let ws = rds.aurora_workspace(&db, "prod", "");
        if !served_by_clone {
            let config = std::fs::read_to_string(ws.path().join("snapguard.yml")).unwrap();
            std::fs::write(
                ws.path().join("snapguard.yml"),
                config.replace("    wait: 2m\n", "    wait: 3s\n"),
            )
            .unwrap();
        }
        psql(
            &db,
            "CREATE TABLE aurora_serving (id text); INSERT INTO aurora_serving VALUES ('prod-1'); CREATE SEQUENCE aurora_asked; \
             CREATE FUNCTION aurora_db_instance_identifier() RETURNS text LANGUAGE sql AS $$ SELECT CASE WHEN nextval('aurora_asked') = 1 THEN 'prod-1' ELSE (SELECT id FROM aurora_serving) END $$;",
        );
        ws.migrations(&[("1_bad.sql", "SELECT 1 / 0;\n")]);
        let child = ws
            .snapguard()
            .args(["deploy", "--release", "v1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if served_by_clone {
            // Once the clone has its instances, the endpoint "leads" there.
            while rds.count("ModifyDBCluster") < 2 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let form = &rds.forms("CreateDBInstance")[0];
            let instance = form
                .split('&')
                .find_map(|kv| kv.strip_prefix("DBInstanceIdentifier="))
                .unwrap()
                .to_owned();
            psql(&db, &format!("UPDATE aurora_serving SET id = '{instance}'"));
        }
        let run = Run(child.wait_with_output().unwrap());
        let log = without_masks(&run.stderr());
        assert!(
            log.contains("served by instance `prod-1`, not the clone's"),
            "{log}"
        );
        if served_by_clone {
            assert_eq!(run.code(), 4, "{log}");
            assert!(!ws.path().join("maintenance.txt").exists());
        } else {
            assert_eq!(run.code(), 5, "{log}");
            assert!(
                log.contains("waited 3s (`snapshot.rds.wait`) for `database.url` served by clone"),
                "{log}"
            );
            assert!(ws.path().join("maintenance.txt").exists());
        }
        assert_eq!(rds.count("ModifyDBCluster"), 2);
    }
}
