//! `snapguard rehearse` end to end: from a store snapshot (S3), a custom
//! dump, a plain gzipped dump and a live URL, each into its own throwaway
//! server (or `--target-url`); lock observations against known holds; the
//! budget; a failing migration; the failure drill. Every test checks that
//! the source database did not change.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// A source database with a role-owned table, a grant and enough rows for
/// a `CREATE INDEX CONCURRENTLY` to last a few sampling intervals.
fn source_db(name: &str) -> String {
    let db = create_db(name);
    psql(
        "postgres",
        &format!(
            "DROP ROLE IF EXISTS {name}_owner; CREATE ROLE {name}_owner NOLOGIN;
             DROP ROLE IF EXISTS {name}_reader; CREATE ROLE {name}_reader NOLOGIN"
        ),
    );
    psql(
        &db,
        &format!(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL, balance text NOT NULL);
             INSERT INTO accounts SELECT g, 'u' || g || '@example.com', (g % 1000)::text FROM generate_series(1, 300000) g;
             ALTER TABLE accounts OWNER TO {name}_owner;
             GRANT SELECT ON accounts TO {name}_reader;
             ANALYZE accounts;"
        ),
    );
    db
}

fn pg_dump(db: &str, args: &[&str], out: &Path) {
    let status = Command::new(pg().bin_dir().join("pg_dump"))
        .args(args)
        .arg(format!("--file={}", out.display()))
        .arg(pg().url(db))
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_store_snapshot_is_rehearsed_with_a_drill_of_both_rollbacks() {
    let db = source_db("rh_snap");
    let ws = Workspace::new(&s3_config(
        &db,
        &s3().bucket("rh-snap"),
        // The type change rewrites a 17 MiB table: lint's error, lowered to
        // a warning here as a team that accepts the rewrite would.
        "migrations:\n  dir: migrations\nchecks:\n  compare:\n    - { name: ids, before: SELECT id FROM accounts ORDER BY id, after: SELECT id FROM accounts ORDER BY id }\nlint:\n  rules:\n    column_type_rewrite: warn\n",
    ));
    ws.run(&["snapshot"]).expect_code(0);
    ws.migrations(&[
        (
            "1_balance_numeric.sql",
            "ALTER TABLE accounts ALTER COLUMN balance TYPE numeric USING balance::numeric;\n",
        ),
        (
            "2_touch.sql",
            "UPDATE accounts SET email = lower(email) WHERE id <= 1000;\n",
        ),
    ]);
    let before = fingerprint(&db);
    let summary = ws.path().join("summary.md");
    let run = ws
        .snapguard()
        .args([
            "rehearse",
            "--snapshot",
            "latest",
            "--drill",
            "--report",
            "report.json",
        ])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    let run = Run(run);
    run.expect_code(0);
    // The drill's rollbacks are asked for: a passing drill logs no error.
    assert!(!run.stderr().contains("ERROR"), "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("drill: rolling back as a failed deploy would"),
        "{}",
        run.stderr()
    );
    let r = report(&ws);
    assert_eq!(r["outcome"], "passed");
    assert!(r["source"].as_str().unwrap().starts_with("snapshot "));
    assert!(
        r["window"]["snapshot_basis"]
            .as_str()
            .unwrap()
            .contains("production's snapshot")
    );
    let first = migration(&r, "1_balance_numeric.sql");
    assert_eq!(first["rewrote"][0], "public.accounts", "{first:#}");
    assert!(
        first["wal_bytes"].as_u64().unwrap() > 1_000_000,
        "{first:#}"
    );
    assert_eq!(migration(&r, "2_touch.sql")["rows"], 1000);
    let drill = &r["drill"];
    assert!(
        drill["clone_swap_seconds"]
            .as_f64()
            .is_some_and(|s| s > 0.0),
        "{drill:#}"
    );
    assert!(
        drill["store_restore_seconds"]
            .as_f64()
            .is_some_and(|s| s > 0.0),
        "{drill:#}"
    );
    // The store restore is the production rollback's: the snapshot the
    // rehearsed deploy took of the copy (production's own snapshot was
    // downloaded, verified and loaded as the source).
    assert!(
        drill["snapshot"]
            .as_str()
            .unwrap()
            .contains("the rehearsal's local-directory store"),
        "{drill:#}"
    );
    // Both rollbacks are the deploy's own: the write guard judged, the
    // journal went through the rollback's steps.
    let rollbacks = drill["rollbacks"].as_array().unwrap();
    assert_eq!(rollbacks.len(), 2, "{drill:#}");
    for (rollback, how) in rollbacks.iter().zip(["clone swap", "store restore"]) {
        assert_eq!(rollback["how"], how, "{drill:#}");
        assert_eq!(rollback["outcome"], "rolled_back", "{drill:#}");
        assert!(
            rollback["write_guard"]
                .as_str()
                .unwrap()
                .starts_with("no write after the snapshot"),
            "{drill:#}"
        );
        let journal: Vec<&str> = rollback["journal"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(
            journal,
            [
                "maintenance on",
                "snapshot",
                "migrate",
                "verify",
                "rollback: database",
                "rollback: maintenance off",
                "rolled back"
            ],
            "{drill:#}"
        );
    }
    assert_eq!(drill["verified"].as_array().unwrap().len(), 2, "{drill:#}");
    assert!(drill["errors"].as_array().unwrap().is_empty(), "{drill:#}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("snapguard rehearsal: passed"), "{md}");
    assert!(md.contains("Failure drill: clone swap"), "{md}");
    assert_eq!(fingerprint(&db), before, "the source database changed");
}

#[test]
fn locks_are_observed_per_table_with_their_hold_times_and_the_budget_is_enforced() {
    let db = source_db("rh_locks");
    let ws = Workspace::new("migrations:\n  dir: migrations\nbudget:\n  max_downtime: 1s\n");
    let dump = ws.path().join("prod.dump");
    pg_dump(&db, &["-Fc"], &dump);
    ws.migrations(
        &[
            (
                "1_hold_exclusive.sql",
                "LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(2);\n",
            ),
            (
                "2_index_concurrently.sql",
                "-- snapguard:no-transaction\nCREATE INDEX CONCURRENTLY accounts_email_md5 ON accounts (md5(email || balance));\n",
            ),
        ],
    );
    let before = fingerprint(&db);
    let run = rehearse(&ws, &["--dump", "prod.dump"]);
    run.expect_code(7)
        .expect_stderr("over its downtime budget")
        .expect_stderr("1_hold_exclusive.sql");
    let r = report(&ws);
    assert_eq!(r["outcome"], "over_budget");
    assert!(r["target"].as_str().unwrap().contains("PostgreSQL 15"));

    let held = migration(&r, "1_hold_exclusive.sql");
    let lock = &held["locks"][0];
    assert_eq!(lock["table"], "public.accounts", "{held:#}");
    assert_eq!(lock["mode"], "AccessExclusive", "{held:#}");
    // The lock is held from the LOCK statement to the commit: the
    // migration's own duration, about two seconds.
    let truth = held["seconds"].as_f64().unwrap();
    let seen = lock["seconds"].as_f64().unwrap();
    assert!((truth - 2.0).abs() < 0.1, "migration took {truth}");
    assert!((seen - truth).abs() < 0.15, "held {seen}s, truth {truth}s");

    let cic = migration(&r, "2_index_concurrently.sql");
    let locks = cic["locks"].as_array().unwrap();
    assert!(
        !locks.is_empty(),
        "CREATE INDEX CONCURRENTLY not seen: {cic:#}"
    );
    assert!(
        locks.iter().all(|l| l["mode"] == "ShareUpdateExclusive"),
        "{cic:#}"
    );
    assert!(
        r["window"]["costliest"][0]
            .as_str()
            .unwrap()
            .contains("1_hold_exclusive.sql")
    );
    assert_eq!(fingerprint(&db), before, "the source database changed");
}

#[test]
fn a_plain_gzipped_dump_loads_with_its_roles_on_a_target_server_that_is_cleaned_up() {
    let db = source_db("rh_plain");
    let ws = Workspace::new(
        "migrations:\n  dir: migrations\nchecks:\n  after:\n    - { name: readers_can_read, sql: \"SELECT has_table_privilege('rh_plain_reader', 'accounts', 'SELECT')\", expect: true }\n",
    );
    let sql = ws.path().join("prod.sql");
    pg_dump(&db, &[], &sql);
    let status = Command::new("gzip").arg(&sql).status().unwrap();
    assert!(status.success());
    ws.migrations(&[(
        "1_grant.sql",
        "CREATE TABLE audit (id int);\nGRANT SELECT ON audit TO rh_plain_reader;\n",
    )]);
    let before = fingerprint(&db);
    let target = pg().url("rh_plain_rehearsal");
    let run = rehearse(&ws, &["--dump", "prod.sql.gz", "--target-url", &target]);
    run.expect_code(0);
    let r = report(&ws);
    assert!(
        r["source"].as_str().unwrap().contains("plain SQL, gzip"),
        "{}",
        r["source"]
    );
    assert_eq!(r["database"], "rh_plain_rehearsal");
    assert_eq!(r["checks"][0]["passed"], true, "{:#}", r["checks"]);
    assert!(
        !db_exists("rh_plain_rehearsal"),
        "the scratch database was left behind"
    );
    assert_eq!(fingerprint(&db), before, "the source database changed");

    // A throwaway server lacks the roles: they are created for the load.
    // Run as root from a `PATH` without `/usr/sbin` (a container's root
    // shell): `runuser`, which starts the server as `postgres`, is found
    // where util-linux puts it.
    std::fs::remove_file(ws.path().join("report.json")).unwrap();
    let mut command = ws.snapguard();
    let path = command
        .get_envs()
        .find(|(k, _)| *k == "PATH")
        .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()))
        .unwrap_or_else(|| std::env::var("PATH").unwrap());
    let without_sbin: Vec<&str> = path.split(':').filter(|d| !d.ends_with("/sbin")).collect();
    let run = Run(command
        .env("PATH", without_sbin.join(":"))
        .args([
            "rehearse",
            "--report",
            "report.json",
            "--dump",
            "prod.sql.gz",
        ])
        .output()
        .unwrap());
    run.expect_code(0);
    let roles = report(&ws)["roles_created"].clone();
    assert_eq!(
        roles,
        serde_json::json!(["rh_plain_owner", "rh_plain_reader"]),
        "{roles:#}"
    );
}

#[test]
fn a_failing_migration_on_a_live_copy_names_file_and_line_and_leaves_production_alone() {
    let db = source_db("rh_live");
    let ws = Workspace::new("migrations:\n  dir: migrations\n");
    ws.migrations(
        &[
            ("1_ok.sql", "ALTER TABLE accounts ADD COLUMN note text;\n"),
            (
                "2_bad.sql",
                "-- a constraint the data violates\nUPDATE accounts SET note = 'x';\nALTER TABLE accounts\n  ADD CONSTRAINT small CHECK (id < 10);\n",
            ),
        ],
    );
    let before = fingerprint(&db);
    let databases = databases_like("rh_live");
    let run = ws
        .snapguard()
        .args(["rehearse", "--report", "report.json"])
        .env("SNAPGUARD_FROM_URL", pg().url(&db))
        .output()
        .unwrap();
    let run = Run(run);
    run.expect_code(8).expect_stderr("2_bad.sql:3");
    assert!(
        !run.stderr().contains(pg().password()) && !run.stdout().contains(pg().password()),
        "the password was printed"
    );
    let r = report(&ws);
    assert_eq!(r["outcome"], "failed");
    assert!(r["source"].as_str().unwrap().starts_with("live database"));
    let failure = &r["failure"];
    assert_eq!(failure["step"], "migrate");
    assert!(failure["file"].as_str().unwrap().ends_with("2_bad.sql"));
    assert_eq!(failure["line"], 3);
    assert_eq!(fingerprint(&db), before, "the source database changed");
    assert_eq!(
        databases_like("rh_live"),
        databases,
        "a database appeared on the source server"
    );
}

#[test]
fn bad_sources_and_targets_are_refused_naming_them() {
    let db = create_db("rh_bad");
    let ws = Workspace::new(&format!(
        "database:\n  url: {}\nmigrations:\n  dir: migrations\n",
        pg().url(&db)
    ));
    std::fs::create_dir_all(ws.path().join("migrations")).unwrap();
    // A snapshot source needs a store.
    ws.run(&["rehearse"])
        .expect_code(2)
        .expect_stderr("rehearse needs a store");
    // A file that is not a dump: the report says there is no estimate
    // (not a 0 s window), and knows the budget.
    std::fs::write(ws.path().join("notes.bin"), [0u8, 159, 146, 150, 0, 1]).unwrap();
    let run = ws.run(&["rehearse", "--dump", "notes.bin"]);
    run.expect_code(1)
        .expect_stderr("`notes.bin` is not a PostgreSQL dump");
    let out = run.stdout();
    assert!(out.starts_with("rehearsal: failed\n"), "{out}");
    assert!(
        out.contains("no estimated maintenance window: the rehearsal stopped before it measured the migrations"),
        "{out}"
    );
    assert!(!out.contains("budget.max_downtime set"), "{out}");
    assert!(!out.contains("``"), "{out}");
    // A missing dump file, with a budget set: the budget is known.
    let mut config = std::fs::read_to_string(ws.path().join("snapguard.yml")).unwrap();
    config.push_str("budget:\n  max_downtime: 90s\n");
    std::fs::write(ws.path().join("snapguard.yml"), config).unwrap();
    let run = ws.run(&["rehearse", "--dump", "missing.dump"]);
    run.expect_code(1).expect_stderr("missing.dump");
    assert!(
        run.stdout()
            .contains("budget.max_downtime 90s: not compared"),
        "{}",
        run.stdout()
    );
    // The production database as the target.
    let dump = ws.path().join("x.dump");
    pg_dump(&db, &["-Fc"], &dump);
    ws.run(&[
        "rehearse",
        "--dump",
        "x.dump",
        "--target-url",
        &pg().url(&db),
    ])
    .expect_code(1)
    .expect_stderr("a rehearsal never runs on the production database");
    // An existing database as the target.
    ws.run(&[
        "rehearse",
        "--dump",
        "x.dump",
        "--target-url",
        &pg().url("postgres"),
    ])
    .expect_code(1)
    .expect_stderr("`postgres` already exists on the target server");
}

/// Defect: a snapshot a deploy took holds that deploy's open row in
/// `snapguard.deploys`, so a rehearsal on it (`--snapshot latest` after
/// any deploy) stopped at the rehearsed deploy's preflight.
#[test]
fn the_snapshot_a_deploy_took_is_rehearsed() {
    let db = create_db("rh_after_deploy");
    psql(
        &db,
        "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 100)",
    );
    let ws = Workspace::new(&fs_config(&db, "migrations:\n  dir: migrations\n"));
    ws.migrations(&[("1_note.sql", "ALTER TABLE items ADD COLUMN note text;\n")]);
    ws.run(&["deploy", "--release", "v1"]).expect_code(0);
    ws.migrations(&[("2_filled.sql", "UPDATE items SET note = 'x';\n")]);
    let run = rehearse(&ws, &["--snapshot", "latest", "--drill"]);
    run.expect_code(0);
    assert!(run.stdout().contains("passed"), "{}", run.stdout());
    // The newest snapshot predates deploy v1's migration, which production
    // has: applied first on the copy, and not counted.
    let r = report(&ws);
    let measured: Vec<&str> = r["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(measured, ["migrations/2_filled.sql"], "{r:#}");
    let catch_up = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "catch up")
        .unwrap_or_else(|| panic!("no catch-up step: {r:#}"));
    let detail = catch_up["detail"].as_str().unwrap();
    assert!(
        detail.contains("(release v1): its 1 migration(s) (1), which production already has, were applied first and are not counted"),
        "{detail}"
    );

    // A deploy that rolled back left nothing applied: the snapshot it took
    // is production as it is, and every pending migration counts.
    ws.migrations(&[(
        "3_bad.sql",
        "ALTER TABLE items ADD CONSTRAINT small CHECK (id < 10);\n",
    )]);
    ws.run(&["deploy", "--release", "v2"]).expect_code(4);
    std::fs::remove_file(ws.path().join("migrations/3_bad.sql")).unwrap();
    rehearse(&ws, &["--snapshot", "latest"]).expect_code(0);
    let r = report(&ws);
    assert_eq!(r["migrations"].as_array().unwrap().len(), 1, "{r:#}");
    assert!(
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["step"] == "catch up"
                && s["detail"]
                    .as_str()
                    .unwrap()
                    .contains("which left no migration applied")),
        "{r:#}"
    );
    // Production's own record is untouched: the deploy finished there.
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM snapguard.deploys WHERE finished_at IS NULL"
        ),
        "0"
    );
}

#[test]
fn lint_findings_are_confirmed_by_the_measured_locks_and_the_measurement_finds_what_no_rule_does() {
    let db = source_db("rh_lint");
    let ws = Workspace::new(
        "migrations:\n  dir: migrations\nlint:\n  small_table: 0\n  max_lock_hold: 500ms\n",
    );
    let dump = ws.path().join("prod.dump");
    pg_dump(&db, &["-Fc"], &dump);
    ws.migrations(&[
        (
            // A rule predicts it (lock_table) and the sampler sees it held.
            "1_lock.sql",
            "LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(1);\n",
        ),
        (
            // No rule predicts that TRUNCATE replaces the table's storage:
            // only the measurement finds it.
            "2_truncate.sql",
            "TRUNCATE accounts;\n",
        ),
    ]);
    let run = rehearse(&ws, &["--dump", "prod.dump"]);
    run.expect_code(0);
    let r = report(&ws);
    let findings = r["lint"]["findings"].as_array().unwrap();
    let lock = findings
        .iter()
        .find(|f| f["rule"] == "lock_table")
        .unwrap_or_else(|| panic!("{r:#}"));
    let measured = lock["measured"].as_str().unwrap();
    assert!(
        measured.starts_with("confirmed: ACCESS EXCLUSIVE on accounts held"),
        "{measured}"
    );
    let only_measured = findings
        .iter()
        .find(|f| f["rule"] == "measured_lock")
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(only_measured["file"], "migrations/2_truncate.sql");
    assert!(
        only_measured["message"]
            .as_str()
            .unwrap()
            .contains("rewrote public.accounts"),
        "{only_measured:#}"
    );
    assert!(
        run.stdout().contains("lint warn measured_lock"),
        "{}",
        run.stdout()
    );

    // A lint error: the rehearsal measures it, and says the deploy's
    // preflight would stop on it (exit 8).
    std::fs::remove_dir_all(ws.path().join("migrations")).unwrap();
    ws.migrations(&[(
        "1_index.sql",
        "CREATE INDEX accounts_email_idx2 ON accounts (email);\n",
    )]);
    let run = rehearse(&ws, &["--dump", "prod.dump"]);
    run.expect_code(8)
        .expect_stderr("lint finding(s) at the error level");
    let r = report(&ws);
    assert_eq!(r["lint"]["findings"][0]["rule"], "index_not_concurrent");
    assert!(r["lint"]["findings"][0]["measured"].is_string(), "{r:#}");
}

/// The estimated window counts the snapshot as `snapshot.offsite` places
/// it: inside the window, beside the migrations (the longer of the two),
/// or after the window. A budget check on the sum would refuse deploys
/// whose window no longer holds the dump.
#[test]
fn the_estimated_window_follows_the_offsite_policy() {
    let db = source_db("rh_offsite");
    for policy in ["before-migrate", "before-maintenance-off", "after"] {
        let ws = Workspace::new(&format!(
            "migrations:\n  dir: migrations\nsnapshot:\n  offsite: {policy}\n"
        ));
        ws.migrations(&[("1_note.sql", "ALTER TABLE accounts ADD COLUMN note text;\n")]);
        let run = ws
            .snapguard()
            .args(["rehearse", "--report", "report.json"])
            .env("SNAPGUARD_FROM_URL", pg().url(&db))
            .output()
            .unwrap();
        Run(run).expect_code(0);
        let w = &report(&ws)["window"];
        assert_eq!(w["offsite"], policy, "{w:#}");
        let f = |k: &str| w[k].as_f64().unwrap();
        let (snapshot, clone) = (f("snapshot_seconds"), f("clone_seconds"));
        let work = f("migrations_seconds") + f("checks_seconds");
        assert!(snapshot > 0.0 && clone > 0.0, "{w:#}");
        let expected = match policy {
            "before-migrate" => snapshot + clone + work,
            "before-maintenance-off" => clone + snapshot.max(work),
            _ => clone + work,
        };
        assert!(
            (f("total_seconds") - expected).abs() < 1e-9,
            "{policy}: {w:#}"
        );
    }
}
