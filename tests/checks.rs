//! Verification checks against a real PostgreSQL: every expectation passing
//! and failing, a before-check that finds rows that will not cast, a compare
//! check across a real migration, read-only enforcement, built-in checks,
//! and bad check definitions.

mod common;

use common::*;
use snapguard::checks::{CheckResult, Verifier};
use snapguard::config::{Config, Overrides};

fn workspace(db: &str, checks: &str) -> Workspace {
    Workspace::for_db(db, &format!("checks:\n{checks}"))
}

fn results(run: &Run) -> Vec<serde_json::Value> {
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()))
}

fn find<'a>(results: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    results
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no result `{name}`"))
}

#[test]
fn each_expectation_passes_and_fails_with_a_readable_result() {
    let db = create_db("chk_expect");
    psql(
        &db,
        "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2), (3)",
    );
    let ws = workspace(
        &db,
        "  after:
    - { name: empty_ok, sql: 'SELECT x FROM t WHERE x > 5', expect: empty }
    - { name: empty_bad, sql: 'SELECT x, x * 10 FROM t WHERE x > 1 ORDER BY x', expect: empty }
    - { name: rows_ok, sql: 'SELECT x FROM t', expect: { rows: 3 } }
    - { name: rows_bad, sql: 'SELECT x FROM t', expect: { rows: 2 } }
    - { name: value_ok, sql: 'SELECT sum(x)::numeric(10,2) FROM t', expect: { value: 6 } }
    - { name: value_bad, sql: 'SELECT max(x) FROM t', expect: { value: 2 } }
    - { name: value_text, sql: \"SELECT 'shop'\", expect: { value: shop } }
    - { name: value_two_rows, sql: 'SELECT x FROM t', expect: { value: 1 } }
    - { name: true_ok, sql: 'SELECT count(*) = 3 FROM t', expect: true }
    - { name: true_bad, sql: 'SELECT bool_and(x < 3) FROM t', expect: true }
",
    );
    let run = ws.run(&["verify", "--json"]);
    run.expect_code(1);
    let r = results(&run);
    for ok in [
        "empty_ok",
        "rows_ok",
        "value_ok",
        "value_text",
        "true_ok",
        "no_invalid_indexes",
        "no_unvalidated_constraints",
    ] {
        assert_eq!(find(&r, ok)["passed"], true, "{ok}: {}", find(&r, ok));
    }
    let bad = |name: &str, got: &str| {
        let c = find(&r, name);
        assert_eq!(c["passed"], false, "{name}");
        assert_eq!(c["got"], got, "{name}");
    };
    bad("empty_bad", "2 rows");
    assert_eq!(
        find(&r, "empty_bad")["rows"],
        serde_json::json!(["2, 20", "3, 30"])
    );
    bad("rows_bad", "3 rows");
    bad("value_bad", "value 3");
    bad(
        "value_two_rows",
        "more than one row (one row of one column expected)",
    );
    bad("true_bad", "value f");
    run.expect_stderr(
        "5 of 12 checks failed: empty_bad, rows_bad, value_bad, value_two_rows, true_bad",
    );
    // The table a person reads.
    let run = ws.run(&["verify"]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(
        out.contains("empty_bad") && out.contains("FAIL") && out.contains("no rows"),
        "{out}"
    );
    assert!(out.contains("    2, 20"), "{out}");
    assert!(out.contains("defined at snapguard.yml:"), "{out}");
}

#[test]
fn a_before_check_finds_exactly_the_rows_that_will_not_cast_to_jsonb() {
    let db = create_db("chk_jsonb");
    psql(
        &db,
        r#"CREATE TABLE events (id int PRIMARY KEY, payload text);
        INSERT INTO events VALUES
          (1, '{"a": 1}'), (2, ''), (3, '{"note": "nul \u0000 here"}'),
          (4, '[1, 2]'), (5, '{"ok": "\u00e9"}'), (6, '');
        -- PostgreSQL 16 has pg_input_is_valid(payload, 'jsonb'); on 15 a helper.
        CREATE FUNCTION is_valid_jsonb(t text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN PERFORM t::jsonb; RETURN true; EXCEPTION WHEN others THEN RETURN false; END $$;"#,
    );
    let ws = workspace(
        &db,
        "  before:\n    - name: payload_casts_to_jsonb\n      sql: SELECT id FROM events WHERE NOT is_valid_jsonb(payload) ORDER BY id\n      expect: empty\n",
    );
    let run = ws.run(&["verify", "--json"]);
    run.expect_code(1);
    let r = results(&run);
    let c = find(&r, "payload_casts_to_jsonb");
    assert_eq!(c["phase"], "before");
    assert_eq!(c["got"], "3 rows");
    assert_eq!(c["rows"], serde_json::json!(["2", "3", "6"]));
}

/// Loads the workspace's config the way the binary does.
fn load(ws: &Workspace) -> Config {
    Config::load(
        Some(&ws.path().join("snapguard.yml")),
        &Overrides::default(),
    )
    .unwrap()
}

/// Runs the before half, `snapguard migrate`, then the after half.
fn around_migration(ws: &Workspace, db: &str) -> Vec<CheckResult> {
    let config = load(ws);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = snapguard::db::connect(&pg().conn_info(db)).await.unwrap();
        let verifier = Verifier::new(&config.checks);
        verifier.preflight(&client).await.unwrap();
        let state = verifier.before(&mut client, true).await;
        assert!(state.results.iter().all(|r| r.passed));
        ws.run(&["migrate"]).expect_code(0);
        verifier.after(&mut client, state).await
    })
}

const SPLIT_CHECKS: &str = "  compare:
    - name: achievements_survive
      before: SELECT id, a->>'name', (a->>'at')::date FROM users, jsonb_array_elements(data->'achievements') a
      after: SELECT user_id, name, achieved_on FROM user_achievements
      order: any
    - name: stats_survive
      before: SELECT id, (data->>'logins')::int FROM users ORDER BY id
      after: SELECT user_id, logins FROM user_stats ORDER BY user_id
";

fn blob_database(name: &str) -> String {
    let db = create_db(name);
    psql(
        &db,
        "CREATE TABLE users (id int PRIMARY KEY, email text, data jsonb);
         INSERT INTO users SELECT i, 'user' || i || '@example.com',
           jsonb_build_object('logins', i * 3, 'achievements',
             (SELECT coalesce(jsonb_agg(jsonb_build_object('name', 'badge' || b, 'at', date '2026-01-01' + b)), '[]')
              FROM generate_series(1, i % 4) b))
         FROM generate_series(1, 200) i",
    );
    db
}

fn split_migration(ws: &Workspace, lose_one: bool) {
    let filter = if lose_one {
        "WHERE NOT (u.id = 7 AND a->>'name' = 'badge2')"
    } else {
        ""
    };
    std::fs::create_dir_all(ws.path().join("migrations")).unwrap();
    std::fs::write(
        ws.path().join("migrations/1_split_user_data.sql"),
        format!(
            "CREATE TABLE user_stats (user_id int PRIMARY KEY REFERENCES users, logins int NOT NULL);
CREATE TABLE user_achievements (user_id int REFERENCES users, name text, achieved_on date);
INSERT INTO user_stats SELECT id, (data->>'logins')::int FROM users;
INSERT INTO user_achievements
  SELECT u.id, a->>'name', (a->>'at')::date FROM users u, jsonb_array_elements(u.data->'achievements') a {filter};
"
        ),
    )
    .unwrap();
}

#[test]
fn a_compare_check_passes_when_a_blob_is_split_correctly() {
    let db = blob_database("chk_split_ok");
    let ws = workspace(&db, SPLIT_CHECKS);
    split_migration(&ws, false);
    let results = around_migration(&ws, &db);
    for r in &results {
        assert!(r.passed, "{r:?}");
    }
    assert_eq!(psql(&db, "SELECT count(*) FROM user_achievements"), "300");
}

#[test]
fn a_compare_check_names_the_user_whose_achievement_was_lost() {
    let db = blob_database("chk_split_bad");
    let ws = workspace(&db, SPLIT_CHECKS);
    split_migration(&ws, true);
    let results = around_migration(&ws, &db);
    let lost = results
        .iter()
        .find(|r| r.name == "achievements_survive")
        .unwrap();
    assert!(!lost.passed);
    assert_eq!(
        lost.got,
        "300 rows before, 299 after: 1 only before, 0 only after"
    );
    assert_eq!(lost.rows, ["before only: (7,badge2,2026-01-03)"]);
    let stats = results.iter().find(|r| r.name == "stats_survive").unwrap();
    assert!(stats.passed, "{stats:?}");
}

#[test]
fn a_check_cannot_write() {
    let db = create_db("chk_read_only");
    psql(
        &db,
        "CREATE TABLE t (x int); INSERT INTO t VALUES (1); CREATE SEQUENCE s",
    );
    let ws = workspace(
        &db,
        "  after:
    - { name: sneaky_update, sql: 'UPDATE t SET x = 2', expect: empty }
    - { name: sneaky_sequence, sql: \"SELECT nextval('s')\", expect: { value: 1 } }
  skip_builtin: [no_invalid_indexes, no_unvalidated_constraints]
",
    );
    let run = ws.run(&["verify", "--json"]);
    run.expect_code(1);
    let r = results(&run);
    assert_eq!(
        find(&r, "sneaky_update")["got"],
        "error: cannot execute UPDATE in a read-only transaction (SQLSTATE 25006)"
    );
    assert_eq!(
        find(&r, "sneaky_sequence")["got"],
        "error: cannot execute nextval() in a read-only transaction (SQLSTATE 25006)"
    );
    assert_eq!(r.len(), 2, "built-ins skipped by name");
    assert_eq!(psql(&db, "SELECT x FROM t"), "1");
    assert_eq!(
        psql(&db, "SELECT last_value || ',' || is_called FROM s"),
        "1,false"
    );
}

#[test]
fn built_in_checks_find_invalid_indexes_and_unvalidated_constraints() {
    let db = create_db("chk_builtin");
    psql(
        &db,
        "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (1), (-1)",
    );
    // A failed CREATE INDEX CONCURRENTLY leaves an invalid index behind.
    assert!(
        pg().psql(
            &db,
            &["-c", "CREATE UNIQUE INDEX CONCURRENTLY t_x ON t (x)"]
        )
        .is_err()
    );
    psql(
        &db,
        "ALTER TABLE t ADD CONSTRAINT x_positive CHECK (x > 0) NOT VALID",
    );
    let ws = workspace(&db, "  timeout: 10s\n");
    let run = ws.run(&["verify", "--json"]);
    run.expect_code(1);
    let r = results(&run);
    assert_eq!(
        find(&r, "no_invalid_indexes")["rows"],
        serde_json::json!(["public.t_x on t"])
    );
    assert_eq!(
        find(&r, "no_unvalidated_constraints")["rows"],
        serde_json::json!(["x_positive on t"])
    );
    let skipped = workspace(&db, "  skip_builtin: [no_invalid_indexes]\n");
    let r = results(&skipped.run(&["verify", "--json"]));
    assert!(r.iter().all(|c| c["name"] != "no_invalid_indexes"));

    // Across a migration, only constraints the migration added count.
    psql(&db, "DROP INDEX t_x");
    let ws = workspace(&db, "  timeout: 10s\n");
    std::fs::create_dir_all(ws.path().join("migrations")).unwrap();
    std::fs::write(
        ws.path().join("migrations/1_fk.sql"),
        "CREATE TABLE parent (id int PRIMARY KEY);\nCREATE TABLE child (parent_id int);\nALTER TABLE child ADD CONSTRAINT child_parent FOREIGN KEY (parent_id) REFERENCES parent NOT VALID;\n",
    )
    .unwrap();
    let results = around_migration(&ws, &db);
    let c = results
        .iter()
        .find(|r| r.name == "no_unvalidated_constraints")
        .unwrap();
    assert!(!c.passed);
    assert_eq!(
        c.rows,
        ["child_parent on child"],
        "the older x_positive is not blamed on this deploy"
    );
}

#[test]
fn bad_checks_are_refused_before_anything_runs_naming_the_check_and_place() {
    let db = create_db("chk_bad");
    psql(&db, "CREATE TABLE t (x int)");
    let cases: &[(&str, i32, &str)] = &[
        (
            "  after:\n    - { name: typo, sql: 'SELEC x FROM t', expect: empty }\n",
            3,
            "check `typo` (snapguard.yml:7:15): syntax error at or near \"SELEC\" (SQLSTATE 42601)",
        ),
        (
            "  before:\n    - { name: missing_table, sql: 'SELECT x FROM nowhere', expect: empty }\n",
            3,
            "check `missing_table` (snapguard.yml:7:15): relation \"nowhere\" does not exist (SQLSTATE 42P01)",
        ),
        (
            "  after:\n    - { name: e, sql: 'SELECT 1', expect: nothing }\n",
            2,
            "unknown expectation `nothing`",
        ),
        (
            "  after:\n    - { name: f, sql_file: checks/missing.sql, expect: empty }\n",
            2,
            "snapguard.yml:7:28: `sql_file`: check `f`: cannot read `checks/missing.sql`",
        ),
        (
            "  after:\n    - { name: two, sql: 'SELECT 1; SELECT 2', expect: empty }\n",
            2,
            "check `two` must be exactly one query, not 2",
        ),
        (
            "  after:\n    - { name: d, sql: 'SELECT 1', expect: empty }\n    - { name: d, sql: 'SELECT 2', expect: empty }\n",
            2,
            "check name `d` is already used at snapguard.yml:7:15",
        ),
        (
            "  skip_builtin: [no_bad_vibes]\n",
            2,
            "unknown built-in check `no_bad_vibes`",
        ),
        ("  afterwards: []\n", 2, "unknown field `afterwards`"),
    ];
    for (yaml, code, expect) in cases {
        let ws = workspace(&db, yaml);
        let run = ws.run(&["verify"]);
        run.expect_code(*code);
        assert!(
            run.stderr().contains(expect),
            "expected `{expect}` in:\n{}",
            run.stderr()
        );
        assert!(run.stdout().is_empty(), "nothing ran:\n{}", run.stdout());
    }
    // An after check may read a table the migrations will create: it parses
    // at preflight and fails only when it runs.
    let ws = workspace(
        &db,
        "  after:\n    - { name: later, sql: 'SELECT 1 FROM created_by_migration', expect: empty }\n",
    );
    let run = ws.run(&["verify", "--json"]);
    run.expect_code(1);
    assert_eq!(
        find(&results(&run), "later")["got"],
        "error: relation \"created_by_migration\" does not exist (SQLSTATE 42P01)"
    );
    // SQL from a file, relative to the config.
    let ws = workspace(
        &db,
        "  after:\n    - { name: from_file, sql_file: checks/count.sql, expect: { rows: 0 } }\n",
    );
    std::fs::create_dir_all(ws.path().join("checks")).unwrap();
    std::fs::write(
        ws.path().join("checks/count.sql"),
        "-- rows of t\nSELECT x FROM t;\n",
    )
    .unwrap();
    ws.run(&["verify"]).expect_code(0);
}
