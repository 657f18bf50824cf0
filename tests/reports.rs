//! The rendered reports, pinned as snapshots (`insta`): what `deploy`,
//! `rehearse` and `plan` print, as text, JSON and the GitHub job summary.
//! A change to a report shows up here as a diff to review (`cargo insta
//! review`, or `INSTA_UPDATE=always cargo test --test reports` and `git
//! diff`).

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use snapguard::checks::{CheckResult, Phase};
use snapguard::config::{Config, Overrides};
use snapguard::deploy::Found;
use snapguard::deploy::plan;
use snapguard::migrate::apply::Applied;
use snapguard::migrate::migrator::PendingMigration;
use snapguard::rehearse::locks::{Hold, Mode};
use snapguard::rehearse::report::{
    Drill, DrillRollback, MigrationMeasure, RehearsalReport, Verdict,
};
use snapguard::report::{FailureReport, Outcome, Report, RollbackReport, SnapshotSummary};
use snapguard::store::Store;
use snapguard::store::fs::FsStore;

const ID: &str = "20261130T120000Z-shop-3fa9";

fn check(name: &str, phase: Phase, passed: bool) -> CheckResult {
    CheckResult {
        name: name.into(),
        phase,
        passed,
        expected: "empty".into(),
        got: if passed {
            "empty".into()
        } else {
            "2 rows".into()
        },
        rows: if passed {
            Vec::new()
        } else {
            vec!["(17, 'bad')".into(), "(23, 'worse')".into()]
        },
        difference: None,
        seconds: 0.12,
        defined_at: "snapguard.yml:14:11".into(),
    }
}

fn deploy_report(failed: bool) -> Report {
    let mut r = Report::new("shop");
    r.started_at = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
    r.finished_at = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 9).unwrap();
    r.deploy_id = Some(ID.into());
    r.release = Some("v42".into());
    r.previous_release = Some("v41".into());
    r.downtime_seconds = Some(8.25);
    r.pending = vec![
        "migrations/7_notes.sql".into(),
        "migrations/8_index.sql".into(),
    ];
    r.step("preflight", true, 0.41, "2 migration(s) pending");
    r.step("maintenance on", true, 0.2, "2 switch(es)");
    r.step("snapshot", true, 3.5, format!("{ID} (1.2 MiB) in 3.1s"));
    r.snapshot = Some(SnapshotSummary {
        id: ID.into(),
        uri: format!("s3://backups/prod/snapshots/{ID}.dump.zst"),
        size_bytes: 1_258_291,
        clone: Some("shop__sg_20261130t120000z_3fa9".into()),
        seconds: 3.1,
        clone_seconds: Some(0.3),
        clone_method: Some("copy"),
        offsite: snapguard::config::Offsite::BeforeMigrate,
        committed: true,
    });
    r.migrations = vec![Applied {
        version: "7".into(),
        path: "migrations/7_notes.sql".into(),
        seconds: 1.5,
        retries: 0,
        rows: 500,
    }];
    r.checks = vec![check("no_orphans", Phase::Before, true)];
    if failed {
        r.outcome = Outcome::RolledBack;
        r.step(
            "migrate",
            false,
            2.0,
            "migration `migrations/8_index.sql` failed at line 3",
        );
        r.failure = Some(FailureReport {
            step: "migrate".into(),
            message: "migration `migrations/8_index.sql` failed at line 3: relation \"itemz\" does not exist (SQLSTATE 42P01)".into(),
            file: Some("migrations/8_index.sql".into()),
            line: Some(3),
        });
        r.step(
            "rollback: database",
            true,
            0.1,
            "clone swap from `shop__sg_20261130t120000z_3fa9`",
        );
        r.step("rollback: maintenance off", true, 0.1, "");
        r.rollback = Some(RollbackReport {
            database: "clone swap from `shop__sg_20261130t120000z_3fa9`".into(),
            failed_database_kept_as: Some("shop__failed_20261130t120000z_3fa9".into()),
            restore_seconds: 0.1,
            write_guard: Some("no write after the snapshot: no other session seen during the deploy or now, the server's session counter matches snapguard's own sessions".into()),
            release_rolled_back: false,
            errors: Vec::new(),
        });
    } else {
        r.step("migrate", true, 2.0, "2 applied");
        r.step("verify", true, 0.5, "3 check(s) passed");
        r.step("release", true, 1.0, "v42");
        r.step("health", true, 0.4, "healthy");
        r.step("maintenance off", true, 0.2, "");
        r.checks.push(check("notes_filled", Phase::After, true));
    }
    r
}

#[test]
fn a_successful_deploy_report() {
    let r = deploy_report(false);
    insta::assert_snapshot!("deploy_succeeded_text", r.render());
    insta::assert_snapshot!("deploy_succeeded_markdown", r.markdown());
    insta::assert_snapshot!("deploy_succeeded_json", r.to_json());
}

#[test]
fn a_rolled_back_deploy_report() {
    let r = deploy_report(true);
    insta::assert_snapshot!("deploy_rolled_back_text", r.render());
    insta::assert_snapshot!("deploy_rolled_back_markdown", r.markdown());
    insta::assert_snapshot!("deploy_rolled_back_json", r.to_json());
}

fn rehearsal_report() -> RehearsalReport {
    let mut r = RehearsalReport::new();
    r.started_at = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
    r.finished_at = Utc.with_ymd_and_hms(2026, 11, 30, 12, 1, 0).unwrap();
    r.outcome = Verdict::Passed;
    r.database = "shop".into();
    r.source = format!("snapshot {ID} (s3://backups/prod)");
    r.source_version = Some("15.8".into());
    r.target = "a throwaway PostgreSQL 15 on 127.0.0.1".into();
    r.roles_created = vec!["shop_app".into()];
    r.step("source", true, 2.0, "snapshot (1.2 MiB)");
    r.step("restore", true, 4.0, "into `shop`, with ANALYZE");
    r.step("preflight", true, 0.3, "1 migration(s) pending");
    r.step("migrate", true, 1.6, "1 applied, 1.50s of migration time");
    r.step("verify", true, 0.4, "1 check(s) passed");
    r.step(
        "rollback: database",
        true,
        0.09,
        "clone swap from `shop__sg_20261130t120000z_3fa9`",
    );
    r.step("rollback: maintenance off", true, 0.0, "");
    r.pending = vec!["migrations/7_notes.sql".into()];
    r.migrations = vec![MigrationMeasure {
        version: "7".into(),
        path: "migrations/7_notes.sql".into(),
        seconds: 1.5,
        rows: 500,
        wal_bytes: Some(2_400_000),
        rewrote: vec!["public.items".into()],
        locks: vec![Hold {
            table: "public.items".into(),
            mode: Mode::AccessExclusive,
            seconds: 1.45,
        }],
    }];
    r.checks = vec![check("notes_filled", Phase::After, true)];
    r.window.snapshot_seconds = 3.1;
    r.window.snapshot_basis = format!("production's snapshot {ID} took this long");
    r.window.clone_seconds = 0.3;
    r.window.migrations_seconds = 1.5;
    r.window.checks_seconds = 0.4;
    r.window.offsite = Some(snapguard::config::Offsite::BeforeMigrate);
    r.window.total_seconds = 5.3;
    r.window.budget_seconds = Some(60.0);
    r.window.estimated = true;
    r.window.costliest =
        vec!["`migrations/7_notes.sql` 1.50s, ACCESS EXCLUSIVE on public.items 1.45s".into()];
    let journal: Vec<String> = [
        "maintenance on",
        "snapshot",
        "migrate",
        "verify",
        "rollback: database",
        "rollback: maintenance off",
        "rolled back",
    ]
    .map(String::from)
    .to_vec();
    let guard = "no write after the snapshot: no other session seen during the deploy or now, the server's session counter matches snapguard's own sessions";
    r.drill = Some(Drill {
        clone_seconds: Some(0.3),
        clone_swap_seconds: Some(0.09),
        store_restore_seconds: Some(1.1),
        snapshot: Some(format!("{ID} from the rehearsal's local-directory store")),
        rollbacks: vec![
            DrillRollback {
                how: "clone swap".into(),
                outcome: "rolled_back".into(),
                database: "clone swap from `shop__sg_20261130t120000z_3fa9`".into(),
                write_guard: Some(guard.into()),
                journal: journal.clone(),
                seconds: 0.09,
            },
            DrillRollback {
                how: "store restore".into(),
                outcome: "rolled_back".into(),
                database: format!("store restore of {ID}"),
                write_guard: Some(guard.into()),
                journal,
                seconds: 1.1,
            },
        ],
        verified: vec![
            "after the clone swap, all 1 migration(s) are pending again".into(),
            "after the store restore, all 1 migration(s) are pending again".into(),
        ],
        errors: Vec::new(),
    });
    r
}

#[test]
fn a_rehearsal_report_with_its_drill() {
    let r = rehearsal_report();
    insta::assert_snapshot!("rehearsal_text", r.render());
    insta::assert_snapshot!("rehearsal_markdown", r.markdown());
    insta::assert_snapshot!("rehearsal_json", r.to_json());
}

fn plan_config(dir: &std::path::Path) -> Config {
    let path = dir.join("snapguard.yml");
    std::fs::write(
        &path,
        "database:\n  url: postgres://deployer@db.internal:5432/shop\nstore:\n  url: file://./backups\nmigrations:\n  dir: migrations\n  transaction: per-migration\nmaintenance:\n  - file: { path: /srv/shop/maintenance.txt }\nchecks:\n  after:\n    - { name: notes_filled, sql: 'SELECT id FROM items WHERE note IS NULL', expect: empty }\nrelease:\n  command: ./ship.sh\n  health: { url: 'https://shop.example/health' }\n",
    )
    .unwrap();
    Config::load_with_env(Some(&path), &Overrides::default(), &|_| None).unwrap()
}

fn found(nothing: bool) -> Found {
    let pending = |version: &str, path: &str, transaction: bool| PendingMigration {
        version: version.into(),
        path: path.into(),
        transaction,
        batched: false,
        sql: String::new(),
        first_line: 1,
        own_transactions: false,
    };
    let rule = snapguard::lint::rules::rule("drop_column").unwrap();
    let warning = snapguard::lint::Finding {
        rule: rule.id,
        level: snapguard::lint::Level::Warn,
        file: "migrations/7_notes.sql".into(),
        line: 3,
        statement: "ALTER TABLE notes DROP COLUMN body".into(),
        message: "DROP COLUMN body".into(),
        table: Some("notes".into()),
        context: Some("48.0 MiB, ~120000 rows".into()),
        why: rule.why,
        safe: rule.safe,
        doc: rule.doc,
        allowed: None,
        measured: None,
    };
    Found {
        lint: snapguard::lint::LintReport {
            files: 2,
            statements: 4,
            judged: true,
            findings: if nothing { Vec::new() } else { vec![warning] },
        },
        server_version: "15.8".into(),
        database_bytes: 48 * 1024 * 1024,
        pending: if nothing {
            Vec::new()
        } else {
            vec![
                pending("7", "migrations/7_notes.sql", true),
                pending("8", "migrations/8_index.sql", false),
            ]
        },
        external_command: None,
        external_pending: None,
        local_clone: Err("`snapshot.local_clone: never`".into()),
        provider: None,
        tools: vec![
            "pg_dump 15.8 (`/usr/lib/postgresql/15/bin/pg_dump`)".into(),
            "pg_restore 15.8 (`/usr/lib/postgresql/15/bin/pg_restore`)".into(),
        ],
        release: Some("v42".into()),
        previous_release: Some("v41".into()),
        nothing_to_deploy: nothing,
    }
}

#[test]
fn the_plan_as_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = plan_config(dir.path());
    let store = Store::Fs(FsStore::new(PathBuf::from("/srv/backups")));
    insta::assert_snapshot!(
        "plan_text",
        plan::text(&found(false), &config, &store, "shop")
    );
    insta::assert_snapshot!(
        "plan_json",
        serde_json::to_string_pretty(&plan::json(&found(false), &config, &store, "shop")).unwrap()
    );
    insta::assert_snapshot!(
        "plan_nothing_text",
        plan::text(&found(true), &config, &store, "shop")
    );
}
