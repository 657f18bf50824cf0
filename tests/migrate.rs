//! The migrator against a real PostgreSQL: every folder format, failures at
//! each position in both transaction modes, non-transactional statements,
//! lock timeouts, two migrators, drift, missing files, out-of-order
//! versions, baselines, batched backfills, the external migrator.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// The history: `version kind` per row, in version order.
fn history(db: &str) -> Vec<String> {
    let exists = psql(
        db,
        "SELECT to_regclass('snapguard.schema_migrations') IS NOT NULL",
    );
    if exists != "t" {
        return Vec::new();
    }
    psql(
        db,
        "SELECT version || ' ' || kind FROM snapguard.schema_migrations ORDER BY applied_at, version",
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// Whether snapguard's schema exists: it must not after a run that changed nothing.
fn has_history_schema(db: &str) -> bool {
    psql(
        db,
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'snapguard'",
    ) != "0"
}

fn tables(db: &str) -> Vec<String> {
    psql(
        db,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// A psql session that takes `lock` on `table` and holds it for `hold`.
fn hold_lock(db: &str, table: &str, hold: Duration) -> Child {
    let child = Command::new(pg().bin_dir().join("psql"))
        .args(["-X", "-q", "-d", &pg().url(db), "-c"])
        .arg(format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({}); COMMIT;",
            hold.as_secs_f64()
        ))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the lock is really held.
    wait_until("the lock", Duration::from_secs(10), || {
        psql(
            db,
            &format!(
                "SELECT count(*) FROM pg_locks WHERE relation = '{table}'::regclass AND mode = 'AccessExclusiveLock' AND granted"
            ),
        ) == "1"
    });
    child
}

/// Ends the session [`hold_lock`] holds `table`'s lock with: its lock goes
/// at once (a killed `psql` leaves its backend in `pg_sleep`, holding it).
fn release_lock(db: &str, table: &str) {
    psql(
        db,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE relation = '{table}'::regclass AND mode = 'AccessExclusiveLock' AND granted"
        ),
    );
}

#[test]
fn every_format_applies_records_history_and_then_has_nothing_to_do() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/migrations");
    let cases: &[(&str, &str, usize, &[&str])] = &[
        // Beside the tables the migrations make, the native tool's own
        // history table, kept current (`migrations.native_history: keep`).
        ("snapguard", "snapguard", 5, &["accounts"]),
        (
            "golang-migrate",
            "golang-migrate",
            4,
            &["posts", "schema_migrations", "users"],
        ),
        (
            "dbmate",
            "dbmate",
            3,
            &["project_members", "projects", "schema_migrations"],
        ),
        // sqlx's plain `.sql` layout is snapguard's own (both honour a first
        // `-- no-transaction` line), so detection names it that, and with
        // no `_sqlx_migrations` in the database there is no sqlx history.
        ("sqlx", "snapguard", 3, &["todos"]),
        (
            "diesel",
            "diesel",
            3,
            &["__diesel_schema_migrations", "posts"],
        ),
        ("flyway", "flyway", 6, &["flyway_schema_history", "person"]),
    ];
    for &(folder, format, count, expected_tables) in cases {
        let db = create_db(&format!("mig_format_{}", folder.replace('-', "_")));
        let ws = Workspace::for_db(&db, "");
        copy_dir(&fixtures.join(folder), &ws.path().join("migrations"));
        let run = ws.run(&["migrate"]);
        run.expect_code(0);
        assert!(
            run.stdout()
                .contains(&format!("applied {count} migration(s)")),
            "{folder}: {}",
            run.stdout()
        );
        assert_eq!(history(&db).len(), count, "{folder}");
        assert_eq!(tables(&db), expected_tables, "{folder}");
        // Detected, not configured: the status names the format.
        let status = ws.run(&["migrate", "status"]);
        status.expect_code(0);
        assert!(
            status.stdout().contains(&format!("({format} format)")),
            "{folder}: {}",
            status.stdout()
        );
        let again = ws.run(&["migrate"]);
        again.expect_code(0);
        assert!(
            again.stdout().contains("nothing to migrate"),
            "{}",
            again.stdout()
        );
        assert_eq!(history(&db).len(), count);
    }
    // What the fixtures did, not only that they ran.
    let db = "mig_format_flyway";
    assert_eq!(
        psql(db, "SELECT string_agg(name, ',') FROM person_names"),
        "Axel,Mr. Foo,Ms. Bar"
    );
    assert_eq!(
        psql(
            db,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'person_name_idx'"
        ),
        "1"
    );
    assert_eq!(
        psql(
            "mig_format_dbmate",
            "SELECT string_agg(e::text, ',') FROM unnest(enum_range(NULL::project_state)) e"
        ),
        "draft,live,archived"
    );
    assert_eq!(
        psql(
            "mig_format_golang_migrate",
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'posts_published_idx'::regclass"
        ),
        "t"
    );
}

#[test]
fn sqlx_folders_read_the_same_when_named() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/migrations/sqlx");
    let db = create_db("mig_sqlx_named");
    let ws = Workspace::for_db(&db, "  format: sqlx\n");
    copy_dir(&fixtures, &ws.path().join("migrations"));
    ws.run(&["migrate"]).expect_code(0);
    assert_eq!(history(&db).len(), 3);
}

/// Five migrations creating t1..t5, where the one at `bad` (0-based) fails
/// on line 3 of its file.
fn five_with_a_failure(ws: &Workspace, bad: usize) {
    for i in 0..5 {
        let sql = if i == bad {
            format!(
                "CREATE TABLE t{} (x int);\n-- the next statement fails\nINSERT INTO t{} VALUES ('not a number');\n",
                i + 1,
                i + 1
            )
        } else {
            format!("CREATE TABLE t{} (x int);\n", i + 1)
        };
        ws.migrations(&[(&format!("{}_step.sql", i + 1), &sql)]);
    }
}

/// A migration's own session settings end with it: one that sets
/// `lock_timeout = 0` (a common prelude to a long index build) must not
/// leave the migrations after it without the configured timeouts, nor
/// the session that runs the checks afterwards with them. Each migration
/// sets its own timeouts, whatever the one before did.
#[test]
fn a_migration_that_changes_the_timeouts_changes_them_for_itself_only() {
    for transaction in ["per-migration", "all"] {
        let db = create_db(&format!(
            "mig_own_timeouts_{}",
            transaction.replace('-', "_")
        ));
        let ws = Workspace::for_db(
            &db,
            &format!("  transaction: {transaction}\n  lock_timeout: 7s\n  statement_timeout: 9m\n"),
        );
        let expect = |setting: &str, value: &str| {
            format!(
                "DO $$ BEGIN IF current_setting('{setting}') <> '{value}' THEN \
                 RAISE EXCEPTION '{setting} is %', current_setting('{setting}'); END IF; END $$;\n"
            )
        };
        ws.migrations(&[
            (
                "1_unlimited.sql",
                "SET lock_timeout = 0;\nSET statement_timeout = 0;\nCREATE TABLE a (id int);\n",
            ),
            (
                "2_checks.sql",
                &format!(
                    "{}{}",
                    expect("lock_timeout", "7s"),
                    expect("statement_timeout", "9min")
                ),
            ),
        ]);
        let run = ws.run(&["migrate"]);
        run.expect_code(0);
        assert_eq!(
            history(&db),
            ["1 versioned", "2 versioned"],
            "{transaction}"
        );
    }
}

#[test]
fn a_failure_per_migration_keeps_exactly_the_earlier_ones() {
    for bad in [0, 2, 4] {
        let db = create_db(&format!("mig_fail_per_{bad}"));
        let ws = Workspace::for_db(&db, "");
        five_with_a_failure(&ws, bad);
        let run = ws.run(&["migrate"]);
        run.expect_code(1);
        let err = run.stderr();
        let file = format!("{}_step.sql:3", bad + 1);
        assert!(err.contains(&file), "expected `{file}` in:\n{err}");
        assert!(err.contains("SQLSTATE 22P02"), "{err}");
        assert!(err.contains("statement: INSERT INTO"), "{err}");
        assert!(err.contains("it was rolled back"), "{err}");
        let expected: Vec<String> = (1..=bad).map(|v| format!("{v} versioned")).collect();
        assert_eq!(history(&db), expected, "bad = {bad}");
        let expected_tables: Vec<String> = (1..=bad).map(|v| format!("t{v}")).collect();
        assert_eq!(tables(&db), expected_tables);
    }
}

#[test]
fn a_failure_in_all_mode_leaves_the_database_as_it_was() {
    for bad in [0, 2, 4] {
        let db = create_db(&format!("mig_fail_all_{bad}"));
        psql(
            &db,
            "CREATE TABLE existing (x int); INSERT INTO existing VALUES (1)",
        );
        let before = fingerprint(&db);
        let ws = Workspace::for_db(&db, "  transaction: all\n");
        five_with_a_failure(&ws, bad);
        let run = ws.run(&["migrate"]);
        run.expect_code(1);
        run.expect_stderr(&format!("{}_step.sql:3", bad + 1));
        run.expect_stderr("no migration was applied before it in this run");
        assert_eq!(fingerprint(&db), before, "bad = {bad}");
        assert!(!has_history_schema(&db));
    }
}

#[test]
fn all_mode_refuses_a_migration_that_must_run_outside_a_transaction() {
    let db = create_db("mig_all_cic");
    let ws = Workspace::for_db(&db, "  transaction: all\n");
    ws.migrations(&[
        ("1_t.sql", "CREATE TABLE t (x int);"),
        (
            "2_idx.sql",
            "-- snapguard:no-transaction\nCREATE INDEX CONCURRENTLY t_x ON t (x);",
        ),
    ]);
    let run = ws.run(&["migrate"]);
    run.expect_code(3);
    run.expect_stderr("`migrations/2_idx.sql` must run outside a transaction");
    assert!(tables(&db).is_empty());
    assert!(history(&db).is_empty());
}

#[test]
fn a_concurrent_index_needs_its_directive_and_then_applies() {
    let db = create_db("mig_cic");
    psql(&db, "CREATE TABLE t (x int)");
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[("1_idx.sql", "\n\nCREATE INDEX CONCURRENTLY t_x ON t (x);\n")]);
    let run = ws.run(&["migrate"]);
    run.expect_code(3);
    assert!(
        run.stderr().contains(
            "`migrations/1_idx.sql:3`: CREATE INDEX CONCURRENTLY cannot run inside a transaction"
        ) && run.stderr().contains("-- snapguard:no-transaction"),
        "{}",
        run.stderr()
    );
    assert!(history(&db).is_empty());
    ws.migrations(&[(
        "1_idx.sql",
        "-- snapguard:no-transaction\nCREATE INDEX CONCURRENTLY t_x ON t (x);\n",
    )]);
    ws.run(&["migrate"]).expect_code(0);
    assert_eq!(
        psql(
            &db,
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_x'::regclass"
        ),
        "t"
    );
}

#[test]
fn a_lock_timeout_is_retried_until_the_lock_is_free() {
    let db = create_db("mig_lock_retry");
    psql(&db, "CREATE TABLE busy (x int)");
    let ws = Workspace::for_db(&db, "  lock_timeout: 200ms\n  lock_retries: 8\n");
    ws.migrations(&[("1_col.sql", "ALTER TABLE busy ADD COLUMN y int;")]);
    // The lock goes once `migrate` has timed out on it and is retrying,
    // not after a time the retries may or may not outlast.
    let mut holder = hold_lock(&db, "busy", Duration::from_secs(60));
    let mut migrate = ws
        .snapguard()
        .arg("migrate")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::{BufRead, Read};
    let mut stderr = std::io::BufReader::new(migrate.stderr.take().unwrap());
    let mut log = String::new();
    while !log.contains("lock timeout; retrying") {
        assert!(stderr.read_line(&mut log).unwrap() > 0, "no retry: {log}");
    }
    release_lock(&db, "busy");
    holder.wait().unwrap();
    stderr.read_to_string(&mut log).unwrap();
    let mut out = String::new();
    migrate
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = migrate.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    let run = Run(std::process::Output {
        status,
        stdout: out.into_bytes(),
        stderr: log.into_bytes(),
    });
    assert!(
        run.stdout().contains("lock-timeout retries"),
        "{}",
        run.stdout()
    );
    assert_eq!(history(&db), ["1 versioned"]);
}

#[test]
fn a_lock_that_stays_held_ends_with_a_clear_error() {
    let db = create_db("mig_lock_gives_up");
    psql(&db, "CREATE TABLE busy (x int)");
    let ws = Workspace::for_db(&db, "  lock_timeout: 100ms\n  lock_retries: 1\n");
    ws.migrations(&[("1_col.sql", "ALTER TABLE busy ADD COLUMN y int;")]);
    let mut holder = hold_lock(&db, "busy", Duration::from_secs(60));
    let run = ws.run(&["migrate"]);
    release_lock(&db, "busy");
    holder.wait().unwrap();
    run.expect_code(1);
    let err = run.stderr();
    assert!(err.contains("SQLSTATE 55P03"), "{err}");
    assert!(
        err.contains("still waiting for a lock after every retry"),
        "{err}"
    );
    assert!(history(&db).is_empty());
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'busy'"
        ),
        "1"
    );
}

#[test]
fn a_second_migrator_waits_then_exits_6() {
    let db = create_db("mig_two");
    let ws = Workspace::for_db(&db, "  lock_wait: 500ms\n");
    ws.migrations(&[("1_slow.sql", "SELECT pg_sleep(4);\nCREATE TABLE t (x int);")]);
    let first = ws
        .snapguard()
        .arg("migrate")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first one is applying (so it holds the lock): its
    // `pg_sleep` runs in this database, which no other test uses. Counting
    // advisory locks cluster-wide would see other tests' locks too.
    wait_until(
        "the first migrator to take the lock",
        Duration::from_secs(10),
        || {
            psql(
                &db,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep(4)%' AND state = 'active'",
            ) == "1"
        },
    );
    let second = ws.run(&["migrate"]);
    second.expect_code(6);
    assert!(
        second
            .stderr()
            .contains("another snapguard holds the deploy lock of `mig_two`"),
        "{}",
        second.stderr()
    );
    let first = Run(first.wait_with_output().unwrap());
    first.expect_code(0);
    assert_eq!(history(&db), ["1 versioned"]);
}

#[test]
fn drift_missing_files_and_out_of_order_stop_before_any_change() {
    let db = create_db("mig_drift");
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[
        ("1_a.sql", "CREATE TABLE a (x int);"),
        ("3_c.sql", "CREATE TABLE c (x int);"),
    ]);
    ws.run(&["migrate"]).expect_code(0);

    // Out of order: 2 arrives after 3 was applied.
    ws.migrations(&[("2_b.sql", "CREATE TABLE b (x int);")]);
    let run = ws.run(&["migrate"]);
    run.expect_code(3);
    run.expect_stderr(
        "`migrations/2_b.sql` (version 2) is pending but older than the newest applied version 3",
    );
    let status = ws.run(&["migrate", "status"]);
    status.expect_code(3);
    assert!(
        status.stdout().contains("OUT OF ORDER"),
        "{}",
        status.stdout()
    );
    let allowed = Workspace::for_db(&db, "  allow_out_of_order: true\n");
    copy_dir(
        &ws.path().join("migrations"),
        &allowed.path().join("migrations"),
    );
    allowed.run(&["migrate"]).expect_code(0);
    assert_eq!(history(&db), ["1 versioned", "3 versioned", "2 versioned"]);

    // Drift: an applied file changes.
    ws.migrations(&[("1_a.sql", "CREATE TABLE a (x bigint);")]);
    let run = ws.run(&["migrate"]);
    run.expect_code(3);
    run.expect_stderr("`migrations/1_a.sql` (version 1) changed after it was applied");
    let status = ws.run(&["migrate", "status", "--json"]);
    status.expect_code(3);
    let json: serde_json::Value = serde_json::from_str(&status.stdout()).unwrap();
    assert_eq!(json["entries"][0]["state"], "changed");
    ws.migrations(&[("1_a.sql", "CREATE TABLE a (x int);")]);

    // Missing: an applied file is deleted.
    std::fs::remove_file(ws.path().join("migrations/3_c.sql")).unwrap();
    let run = ws.run(&["migrate"]);
    run.expect_code(3);
    run.expect_stderr("version 3 (`c`) was applied but its file is gone");
    let before = fingerprint(&db);
    ws.migrations(&[("4_d.sql", "CREATE TABLE d (x int);")]);
    ws.run(&["migrate"]).expect_code(3);
    assert_eq!(
        fingerprint(&db),
        before,
        "nothing applied while a file is missing"
    );
}

#[test]
fn a_baseline_adopts_a_database_and_allows_squashing() {
    let db = create_db("mig_baseline");
    // History that lived elsewhere: the tables of versions 1 and 2 exist.
    psql(&db, "CREATE TABLE a (x int); CREATE TABLE b (x int)");
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[
        ("1_a.sql", "CREATE TABLE a (x int);"),
        ("2_b.sql", "CREATE TABLE b (x int);"),
        ("3_c.sql", "CREATE TABLE c (x int);"),
    ]);
    let run = ws.run(&["migrate", "baseline", "--version", "2", "--json"]);
    run.expect_code(0);
    let recorded: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(recorded["baseline"], "2");
    assert_eq!(recorded["covered"], 2);
    ws.run(&["migrate"]).expect_code(0);
    assert_eq!(history(&db), ["2 baseline", "3 versioned"]);
    // A baseline below what is applied would hide history: refused.
    let run = ws.run(&["migrate", "baseline", "--version", "1"]);
    run.expect_code(3);
    run.expect_stderr("already has version 3, above 1");
    // Squash: 3 is folded into a baseline at 3 and every old file deleted.
    ws.run(&["migrate", "baseline", "--version", "3"])
        .expect_code(0);
    for f in ["1_a.sql", "2_b.sql", "3_c.sql"] {
        std::fs::remove_file(ws.path().join("migrations").join(f)).unwrap();
    }
    ws.migrations(&[("4_d.sql", "CREATE TABLE d (x int);")]);
    ws.run(&["migrate"]).expect_code(0);
    assert_eq!(tables(&db), ["a", "b", "c", "d"]);
    let run = ws.run(&["migrate", "baseline", "--version", "x1"]);
    run.expect_code(3);
    run.expect_stderr("`x1` is not a migration version");
}

#[test]
fn a_batched_backfill_of_100000_rows_reports_progress() {
    let db = create_db("mig_batch");
    psql(
        &db,
        "CREATE TABLE events (id bigint PRIMARY KEY, payload text, size int); \
         INSERT INTO events SELECT g, repeat('x', g % 50), NULL FROM generate_series(1, 100000) g",
    );
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[(
            "1_backfill_size.sql",
            "-- snapguard:batch\nUPDATE events SET size = length(payload)\nWHERE id IN (SELECT id FROM events WHERE size IS NULL LIMIT 5000);\n",
        )],
    );
    let run = ws.run(&["migrate"]);
    run.expect_code(0);
    assert_eq!(
        psql(&db, "SELECT count(*) FROM events WHERE size IS NULL"),
        "0"
    );
    assert_eq!(
        psql(&db, "SELECT sum(size) FROM events"),
        psql(&db, "SELECT sum(length(payload)) FROM events")
    );
    let err = run.stderr();
    assert!(
        err.contains("backfilling") && err.contains("rows=5000"),
        "{err}"
    );
    assert!(
        err.contains("backfill done") && err.contains("rows=100000") && err.contains("batches=20"),
        "{err}"
    );
    assert_eq!(history(&db), ["1 versioned"]);
}

#[test]
fn a_dry_run_shows_the_sql_and_changes_nothing() {
    let db = create_db("mig_dry");
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[
        ("1_a.sql", "CREATE TABLE a (x int);"),
        ("2_b.sql", "-- snapguard:no-transaction\nVACUUM;"),
    ]);
    let before = fingerprint(&db);
    let run = ws.run(&["migrate", "--dry-run"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(
        out.contains("-- pending 1 `migrations/1_a.sql` (in a transaction)"),
        "{out}"
    );
    assert!(out.contains("CREATE TABLE a (x int);"), "{out}");
    assert!(
        out.contains("-- pending 2 `migrations/2_b.sql` (outside a transaction)"),
        "{out}"
    );
    assert!(out.contains("nothing was changed"), "{out}");
    assert_eq!(fingerprint(&db), before);
    assert!(!has_history_schema(&db));
}

#[test]
fn bad_folders_fail_preflight_naming_the_file() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("1_a.sql", "SELECT 1;"), ("01_b.sql", "SELECT 2;")],
            "both have version 1",
        ),
        (
            &[("1_a.sql", "-- nothing here\n")],
            "`migrations/1_a.sql` is empty",
        ),
        (
            &[("1_a.sql", "SELECT 1;"), ("2_b.sql", "SELECT 'oops;\n")],
            "`migrations/2_b.sql:1`: unterminated string literal",
        ),
        (
            &[("1_a.sql", "-- snapguard:no-transactoin\nSELECT 1;")],
            "`migrations/1_a.sql:1`: unknown directive `snapguard:no-transactoin`",
        ),
        (
            &[("1_a.up.sql", "SELECT 1;"), ("two.up.sql", "SELECT 2;")],
            "`migrations/two.up.sql`: the name does not fit the golang-migrate format",
        ),
    ];
    for (i, (files, expect)) in cases.iter().enumerate() {
        let db = create_db(&format!("mig_bad_{i}"));
        let ws = Workspace::for_db(&db, "");
        ws.migrations(files);
        let run = ws.run(&["migrate"]);
        run.expect_code(3);
        assert!(
            run.stderr().contains(expect),
            "expected `{expect}` in:\n{}",
            run.stderr()
        );
        assert!(history(&db).is_empty());
        assert!(!has_history_schema(&db));
    }
    // A missing folder is named too.
    let db = create_db("mig_bad_dir");
    let ws = Workspace::new(&format!(
        "database:\n  url: {}\nmigrations:\n  dir: nowhere\n",
        pg().url(&db)
    ));
    let run = ws.run(&["migrate"]);
    run.expect_code(3);
    assert!(
        run.stderr().contains("cannot read the migrations folder")
            && run.stderr().contains("nowhere"),
        "{}",
        run.stderr()
    );
}

#[test]
fn migrate_new_names_the_file_for_the_folder() {
    let db = create_db("mig_new");
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[("0007_first.up.sql", "CREATE TABLE first (x int);")]);
    let run = ws.run(&["migrate", "new", "Add users.email"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("0008_add_users_email.up.sql"),
        "{}",
        run.stdout()
    );
    assert!(
        ws.path()
            .join("migrations/0008_add_users_email.down.sql")
            .is_file()
    );
    // Until it has SQL, it stops `migrate` instead of applying as a no-op.
    let run = ws.run(&["migrate"]);
    run.expect_code(3);
    run.expect_stderr("`migrations/0008_add_users_email.up.sql` is empty");
    assert!(tables(&db).is_empty());
}

#[test]
fn an_external_migrator_gets_the_database_and_decides_by_its_exit_code() {
    let db = create_db("mig_external");
    let psql_bin = pg().bin_dir().join("psql");
    let ws = Workspace::for_db(
        &db,
        &format!(
            "  command: \"{} -X -q \\\"$DATABASE_URL\\\" -c 'CREATE TABLE made_by_tool (x int)' && echo tool-output-line\"\n",
            psql_bin.display()
        ),
    );
    let run = ws.run(&["migrate"]);
    run.expect_code(0);
    assert_eq!(tables(&db), ["made_by_tool"]);
    assert!(
        run.stderr().contains("tool-output-line"),
        "the tool's output is streamed:\n{}",
        run.stderr()
    );
    assert!(
        !run.stdout().lines().any(|l| l == "tool-output-line"),
        "{}",
        run.stdout()
    );
    assert!(!run.stderr().contains(pg().password()) && !run.stdout().contains(pg().password()));

    let failing = Workspace::for_db(&db, "  command: \"echo about to fail; exit 7\"\n");
    let run = failing.run(&["migrate"]);
    run.expect_code(1);
    run.expect_stderr("about to fail");
    run.expect_stderr("exit status: 7");
    let run = failing.run(&["migrate", "status"]);
    run.expect_code(2);
    run.expect_stderr("`migrations.command`");
}

#[test]
fn a_failure_without_a_server_position_still_names_its_statement_and_line() {
    let db = create_db("mig_no_position");
    psql(
        &db,
        "CREATE TABLE orders (id int); INSERT INTO orders VALUES (1)",
    );
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[(
            "1_note.sql",
            "ALTER TABLE orders ADD COLUMN note text;\n\n-- existing rows have no note\nALTER TABLE orders\n  ALTER COLUMN note SET NOT NULL;\n",
        )],
    );
    let run = ws.run(&["migrate"]);
    run.expect_code(1);
    let err = run.stderr();
    assert!(
        err.contains("`migrations/1_note.sql:4`: column \"note\" of relation \"orders\" contains null values (SQLSTATE 23502)"),
        "{err}"
    );
    assert!(err.contains("statement: ALTER TABLE orders\n"), "{err}");
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders'"
        ),
        "1"
    );
}

#[test]
fn a_cancelled_backfill_stops_between_batches_and_resumes() {
    let db = create_db("mig_batch_cancel");
    psql(
        &db,
        "CREATE TABLE items (id int PRIMARY KEY, done bool); INSERT INTO items SELECT g, NULL FROM generate_series(1, 2000) g",
    );
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[(
            "1_fill.sql",
            "-- snapguard:batch 100ms\nUPDATE items SET done = true WHERE id IN (SELECT id FROM items WHERE done IS NULL LIMIT 50);\n",
        )],
    );
    let child = ws
        .snapguard()
        .arg("migrate")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the backfill to start", Duration::from_secs(10), || {
        psql(&db, "SELECT count(*) FROM items WHERE done") != "0"
    });
    sigterm(&child);
    let run = Run(child.wait_with_output().unwrap());
    run.expect_code(1);
    run.expect_stderr("cancelled during `migrations/1_fill.sql` after");
    let done: u32 = psql(&db, "SELECT count(*) FROM items WHERE done")
        .parse()
        .unwrap();
    assert!(
        done > 0 && done < 2000 && done.is_multiple_of(50),
        "{done} rows done: whole batches only"
    );
    assert!(
        history(&db).is_empty(),
        "an unfinished backfill is not recorded"
    );
    ws.run(&["migrate"]).expect_code(0);
    assert_eq!(
        psql(&db, "SELECT count(*) FROM items WHERE done IS NULL"),
        "0"
    );
    assert_eq!(history(&db), ["1 versioned"]);
}

#[test]
fn golang_migrate_files_with_their_own_transaction_blocks_run_as_golang_migrate_runs_them() {
    let db = create_db("mig_golang_blocks");
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[
        (
            "000001_two_blocks.up.sql",
            "BEGIN;\nCREATE TABLE a (x int);\nCOMMIT;\n\nBEGIN;\nCREATE TABLE b (x int);\nINSERT INTO b VALUES (1);\nCOMMIT;\n",
        ),
        ("000001_two_blocks.down.sql", "DROP TABLE b; DROP TABLE a;"),
    ]);
    // `transaction: all` cannot hold them: refused, naming the file.
    let all = Workspace::for_db(&db, "  transaction: all\n");
    copy_dir(
        &ws.path().join("migrations"),
        &all.path().join("migrations"),
    );
    all.run(&["migrate"])
        .expect_code(3)
        .expect_stderr("`migrations/000001_two_blocks.up.sql` must run outside a transaction (a no-transaction directive, or its own BEGIN/COMMIT blocks)");
    assert!(tables(&db).is_empty());

    ws.run(&["migrate"]).expect_code(0);
    assert_eq!(tables(&db), ["a", "b", "schema_migrations"]);
    assert_eq!(psql(&db, "SELECT x FROM b"), "1");

    // A failure inside a later block: that block is rolled back, the
    // earlier one stays (as with golang-migrate), nothing is recorded, and
    // the session is clean for what follows.
    ws.migrations(&[
        (
            "000002_fails_in_second_block.up.sql",
            "BEGIN;\nCREATE TABLE c (x int);\nCOMMIT;\nBEGIN;\nCREATE TABLE d (x int);\nINSERT INTO d VALUES ('not a number');\nCOMMIT;\n",
        ),
        ("000002_fails_in_second_block.down.sql", "SELECT 1;"),
    ]);
    ws.run(&["migrate"])
        .expect_code(1)
        .expect_stderr("000002_fails_in_second_block.up.sql:6");
    assert_eq!(tables(&db), ["a", "b", "c", "schema_migrations"]);
    assert_eq!(history(&db), ["000001 versioned"]);
    assert_eq!(
        psql(&db, "SELECT version || ' ' || dirty FROM schema_migrations"),
        "1 false"
    );
}

#[test]
fn every_problem_in_the_folder_and_history_is_reported_at_once() {
    let db = create_db("mig_all_problems");
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[
        ("1_a.sql", "CREATE TABLE a (x int);"),
        ("2_b.sql", "CREATE TABLE b (x int);"),
        ("4_d.sql", "CREATE TABLE d (x int);"),
    ]);
    ws.run(&["migrate"]).expect_code(0);
    // Two files broken, a third with a bad name: all three named in one run.
    ws.migrations(&[
        ("5_e.sql", "CREATE TABLE e (x int);\nCOMMIT;\n"),
        ("6_f.sql", "SELECT 'unterminated;"),
        ("7-g.sql", "SELECT 1;"),
    ]);
    let run = ws.run(&["migrate"]);
    run.expect_code(3)
        .expect_stderr("3 problems in the migrations folder:")
        .expect_stderr("`migrations/5_e.sql:2`")
        .expect_stderr("`migrations/6_f.sql:1`")
        .expect_stderr("`migrations/7-g.sql`");
    for f in ["5_e.sql", "6_f.sql", "7-g.sql"] {
        std::fs::remove_file(ws.path().join("migrations").join(f)).unwrap();
    }
    // Drift, out of order and a missing file together.
    ws.migrations(&[
        ("1_a.sql", "CREATE TABLE a (x bigint);"),
        ("3_c.sql", "CREATE TABLE c (x int);"),
    ]);
    std::fs::remove_file(ws.path().join("migrations/2_b.sql")).unwrap();
    let before = fingerprint(&db);
    ws.run(&["migrate"])
        .expect_code(3)
        .expect_stderr("3 problems between the migrations folder and the history:")
        .expect_stderr("`migrations/1_a.sql` (version 1) changed")
        .expect_stderr("`migrations/3_c.sql` (version 3) is pending but older")
        .expect_stderr("version 2 (`b`) was applied but its file is gone");
    assert_eq!(fingerprint(&db), before);
}

#[test]
fn a_migration_just_created_is_shown_as_empty_and_only_applying_refuses_it() {
    let db = create_db("mig_empty_new");
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[("20240101000000_a.sql", "CREATE TABLE a (x int);")]);
    ws.run(&["migrate"]).expect_code(0);
    ws.run(&["migrate", "new", "add_b"]).expect_code(0);
    // A second one while the first is still empty.
    let second = ws.run(&["migrate", "new", "add_c"]);
    second.expect_code(0);
    let status = ws.run(&["migrate", "status"]);
    status.expect_code(0);
    assert!(
        status.stdout().contains("1 applied, 0 pending, 2 empty"),
        "{}",
        status.stdout()
    );
    let empty_rows = status
        .stdout()
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("empty"))
        .count();
    assert_eq!(empty_rows, 2, "{}", status.stdout());
    ws.run(&["migrate"])
        .expect_code(3)
        .expect_stderr("2 problems in the migrations folder:");
    assert_eq!(tables(&db), ["a"]);
}

#[test]
fn a_pending_command_saying_nothing_is_pending_spares_the_window_and_the_snapshot() {
    let db = create_db("mig_pending_command");
    let psql_bin = pg().bin_dir().join("psql");
    // The "tool": its migration makes a table; its status check exits 0
    // only when that table exists (as `manage.py migrate --check` does when
    // nothing is left to apply).
    let config = fs_config(
        &db,
        &format!(
            "migrations:\n  dir: migrations\n  command: \"{psql} -X -q \\\"$DATABASE_URL\\\" -c 'CREATE TABLE made_by_tool (x int)'\"\n  pending_command: \"test \\\"$({psql} -X -tA \\\"$DATABASE_URL\\\" -c \\\"SELECT count(*) FROM pg_tables WHERE tablename = 'made_by_tool'\\\")\\\" = 1\"\n",
            psql = psql_bin.display()
        ),
    );
    let ws = Workspace::new(&config);
    std::fs::create_dir_all(ws.path().join("migrations")).unwrap();
    let snapshots = || {
        let run = ws.run(&["snapshots", "list", "--json"]);
        run.expect_code(0);
        let json: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
        json.as_array().map_or(0, Vec::len)
    };

    let plan = ws.run(&["plan"]);
    plan.expect_code(0);
    assert!(
        plan.stdout()
            .contains("(its pending_command: something to apply)"),
        "{}",
        plan.stdout()
    );
    let first = ws.run(&["deploy", "--release", "r1"]);
    first.expect_code(0);
    assert_eq!(tables(&db), ["made_by_tool"]);
    assert_eq!(snapshots(), 1);

    let plan = ws.run(&["plan", "--json"]);
    plan.expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&plan.stdout()).unwrap();
    assert_eq!(json["nothing_to_deploy"], true);
    assert_eq!(json["external_pending"], false);
    let second = ws.run(&["deploy", "--release", "r1"]);
    second.expect_code(0);
    assert!(
        second
            .stderr()
            .contains("the external migrator has nothing to apply"),
        "{}",
        second.stderr()
    );
    assert_eq!(
        snapshots(),
        1,
        "no snapshot for a deploy with nothing to do"
    );
    assert!(!second.stderr().contains(pg().password()));
}
