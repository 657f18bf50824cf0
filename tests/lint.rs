//! `snapguard lint` against a real PostgreSQL: one fixture per rule that
//! triggers it and a safe variant that does not (`tests/fixtures/lint`),
//! judged with and without the database; sizes, new tables, allow
//! comments, levels, the output formats, and the deploy preflight that a
//! lint error stops before anything changes.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{Workspace, create_db, pg, psql};
use serde_json::Value;
use snapguard::lint::RULES;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lint")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A database holding `tests/fixtures/lint/schema.sql`, made once; lint
/// only reads it.
fn schema_db() -> &'static str {
    static DB: OnceLock<String> = OnceLock::new();
    DB.get_or_init(|| {
        let db = create_db("lint_schema");
        let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/schema.sql");
        pg().psql(&db, &["-f", &schema.display().to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
        db
    })
}

/// A workspace whose only migration is `sql`; with `db`, the config
/// names it.
fn workspace(db: Option<&str>, sql: &str, lint: &str) -> Workspace {
    let ws = match db {
        Some(db) => Workspace::for_db(db, lint),
        None => {
            let ws = Workspace::new(&format!("migrations:\n  dir: migrations\n{lint}"));
            std::fs::create_dir_all(ws.path().join("migrations")).unwrap();
            ws
        }
    };
    std::fs::write(ws.path().join("migrations/1_fixture.sql"), sql).unwrap();
    ws
}

/// `lint --all --format json`: the report and the exit code. A migration
/// the folder itself refuses (exit 3: CREATE INDEX CONCURRENTLY in a
/// transaction, a BEGIN without its COMMIT, which stop every command
/// reading the folder) is linted as a loose file instead.
fn lint_json(ws: &Workspace) -> (Value, i32) {
    let mut run = ws.run(&["lint", "--all", "--format", "json"]);
    if run.code() == 3 {
        let migration = ws.path().join("migrations/1_fixture.sql");
        std::fs::rename(&migration, ws.path().join("loose.sql")).unwrap();
        run = ws.run(&["lint", "loose.sql", "--format", "json"]);
    }
    let report: Value = serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout(), run.stderr()));
    (report, run.code())
}

fn rules_found(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect()
}

/// `lint.small_table: 0`: every existing table counts as large, so each
/// rule shows at its own level.
const ALL_LARGE: &str = "lint:\n  small_table: 0\n";

/// The fixture pair of `rule`, with and without the database.
fn check_rule(rule: &str) {
    let db = schema_db();
    let bad = fixture(&format!("{rule}.sql"));
    let safe = fixture(&format!("{rule}.safe.sql"));
    let level = RULES.iter().find(|r| r.id == rule).unwrap().level;

    // Without a database, on the text alone, the hazard is found.
    let (report, _) = lint_json(&workspace(None, &bad, ALL_LARGE));
    assert!(
        rules_found(&report).contains(&rule.to_owned()),
        "{rule} without a database: {report:#}"
    );
    assert_eq!(report["judged"], false);

    // Judged against the database.
    let (report, code) = lint_json(&workspace(Some(db), &bad, ALL_LARGE));
    let found = rules_found(&report);
    if rule == "enum_add_value_in_transaction" {
        // PostgreSQL 12+ accepts ADD VALUE in a transaction: the server
        // the database runs clears it.
        assert!(!found.contains(&rule.to_owned()), "{report:#}");
        assert_eq!(code, 0);
    } else {
        assert!(found.contains(&rule.to_owned()), "{rule}: {report:#}");
        let finding = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == rule)
            .unwrap();
        assert!(
            finding["file"].as_str().unwrap().ends_with(".sql"),
            "{finding:#}"
        );
        assert!(finding["line"].as_u64().unwrap() >= 1);
        assert!(
            finding["doc"]
                .as_str()
                .unwrap()
                .starts_with("https://www.postgresql.org/docs/")
        );
        let expected = match level {
            snapguard::lint::Level::Error => 9,
            _ => 0,
        };
        assert_eq!(code, expected, "{rule}: {report:#}");
    }

    // The safe variant is clean of this rule (at most `info`: harmless
    // here), judged against the database.
    let (report, _) = lint_json(&workspace(Some(db), &safe, ALL_LARGE));
    let flagged = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == rule && f["level"] != "info");
    assert!(!flagged, "{rule}'s safe variant: {report:#}");
}

macro_rules! rule_tests {
    ($($rule:ident),* $(,)?) => {
        $(
            #[test]
            fn $rule() {
                check_rule(stringify!($rule));
            }
        )*

        #[test]
        fn every_static_rule_has_a_fixture_pair_and_a_test() {
            let tested = [$(stringify!($rule)),*];
            for r in RULES {
                if r.id == "measured_lock" {
                    continue; // found by a rehearsal, not in the text
                }
                assert!(tested.contains(&r.id), "no test for {}", r.id);
            }
        }
    };
}

rule_tests!(
    index_not_concurrent,
    constraint_not_valid,
    set_not_null,
    column_type_rewrite,
    add_column_volatile_default,
    unique_without_index,
    drop_column,
    rename_column,
    rename_table,
    vacuum_full,
    cluster,
    reindex_not_concurrent,
    drop_index_not_concurrent,
    lock_table,
    concurrently_in_transaction,
    unclosed_transaction,
    rename_schema,
    rename_enum_value,
    drop_table,
    add_column_not_null,
    set_logged,
    refresh_matview_not_concurrent,
    unbatched_data_change,
    enum_add_value_in_transaction,
    partition_lock,
    parse_error,
);

#[test]
fn small_and_new_tables_are_not_hazards() {
    let db = schema_db();
    // Default lint.small_table (10 MiB): the fixture tables are small.
    let sql = "CREATE INDEX orders_total_idx ON orders (total);\nCREATE TABLE fresh (id int);\nCREATE INDEX fresh_id ON fresh (id);\nALTER TABLE fresh ADD CONSTRAINT fresh_pos CHECK (id > 0);\n";
    let (report, code) = lint_json(&workspace(Some(db), sql, ""));
    assert_eq!(code, 0, "{report:#}");
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 3, "{report:#}");
    assert!(findings.iter().all(|f| f["level"] == "info"), "{report:#}");
    assert!(
        findings[0]["context"]
            .as_str()
            .unwrap()
            .contains("under lint.small_table")
    );
    assert!(
        findings[1]["context"]
            .as_str()
            .unwrap()
            .contains("created earlier in this deploy")
    );
    // The same index on a large table: an error naming its size and rows.
    let (report, code) = lint_json(&workspace(Some(db), sql, ALL_LARGE));
    assert_eq!(code, 9);
    let first = &report["findings"][0];
    assert_eq!(first["level"], "error");
    assert_eq!(first["table"], "orders");
    assert!(
        first["context"].as_str().unwrap().contains("~5000 rows"),
        "{first:#}"
    );
}

#[test]
fn an_allow_comment_silences_one_finding_and_its_reason_is_reported() {
    let db = schema_db();
    let sql = "-- snapguard:allow index_not_concurrent orders is written only by the nightly import\nCREATE INDEX a ON orders (total);\nCREATE INDEX b ON orders (note);\n";
    let (report, code) = lint_json(&workspace(Some(db), sql, ALL_LARGE));
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2);
    assert_eq!(
        findings[0]["allowed"],
        "orders is written only by the nightly import"
    );
    assert_eq!(findings[0]["line"], 2);
    assert!(findings[1]["allowed"].is_null(), "one comment, one finding");
    assert_eq!(code, 9, "the second index still fails");

    // A comment naming no rule, or giving no reason, is refused with its line.
    for (comment, says) in [
        (
            "-- snapguard:allow no_such_rule because",
            "names no rule `no_such_rule`",
        ),
        ("-- snapguard:allow index_not_concurrent", "needs a reason"),
    ] {
        let ws = workspace(
            Some(db),
            &format!("{comment}\nCREATE INDEX c ON orders (id);\n"),
            "",
        );
        let run = ws.run(&["lint", "--all"]);
        assert_eq!(run.code(), 3, "{}", run.stderr());
        assert!(run.stderr().contains("1_fixture.sql:1"), "{}", run.stderr());
        assert!(run.stderr().contains(says), "{}", run.stderr());
    }
}

#[test]
fn levels_are_configured_per_rule() {
    let db = schema_db();
    let sql = fixture("index_not_concurrent.sql");
    let config = format!("{ALL_LARGE}  rules:\n    index_not_concurrent: warn\n");
    let (report, code) = lint_json(&workspace(Some(db), &sql, &config));
    assert_eq!(code, 0);
    assert_eq!(report["findings"][0]["level"], "warn");
    let config = format!("{ALL_LARGE}  rules:\n    index_not_concurrent: off\n");
    let (report, _) = lint_json(&workspace(Some(db), &sql, &config));
    assert_eq!(report["findings"].as_array().unwrap().len(), 0);
    // A level that is no level is a configuration error naming the key.
    let ws = workspace(
        Some(db),
        &sql,
        "lint:\n  rules:\n    index_not_concurrent: loud\n",
    );
    let run = ws.run(&["lint"]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr().contains("lint.rules.index_not_concurrent"),
        "{}",
        run.stderr()
    );
    // So is a rule that does not exist.
    let ws = workspace(Some(db), &sql, "lint:\n  rules:\n    no_such_rule: warn\n");
    assert_eq!(ws.run(&["lint"]).code(), 2);
}

#[test]
fn only_pending_migrations_are_linted_unless_all() {
    let db = create_db("lint_pending");
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[("1_create.sql", "CREATE TABLE t (id int, v text);")]);
    ws.run(&["migrate"]).expect_code(0);
    ws.migrations(&[
        ("1_create.sql", "CREATE TABLE t (id int, v text);"),
        ("2_rename.sql", "ALTER TABLE t RENAME COLUMN v TO w;"),
    ]);
    let run = ws.run(&["lint", "--format", "json"]);
    let report: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(report["files"], 1, "only 2 is pending: {report:#}");
    assert_eq!(report["findings"][0]["rule"], "rename_column");
    let run = ws.run(&["lint", "--all", "--format", "json"]);
    let report: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(report["files"], 2);
    // With every migration, t is created in 1, but the database has it
    // (1 is applied): the rename is judged as on the table the running
    // release uses (issue 28, 8: it was `info`, as if new).
    assert_eq!(report["findings"][0]["level"], "warn", "{report:#}");
}

/// Issue 28, 8: without a database, a table created by an earlier file of
/// the folder may have been applied and filled long ago: its findings are
/// judged at full level, saying its size is unknown. Only a table the same
/// migration created is new.
#[test]
fn a_table_an_earlier_file_created_is_of_unknown_size_without_a_database() {
    let ws = Workspace::new("migrations:\n  dir: migrations\n");
    ws.migrations(&[
        ("1_create.sql", "CREATE TABLE big (id int);\n"),
        ("2_index.sql", "CREATE INDEX big_id ON big (id);\n"),
    ]);
    let run = ws.run(&["lint", "--all", "--format", "json"]);
    let report: Value = serde_json::from_str(&run.stdout()).unwrap();
    let index = finding(&report, "index_not_concurrent");
    assert_eq!(index["level"], "error", "{report:#}");
    assert!(
        index["context"]
            .as_str()
            .unwrap()
            .contains("created by an earlier migration of these files"),
        "{report:#}"
    );
    assert_eq!(run.code(), 9);

    ws.migrations(&[(
        "1_create.sql",
        "CREATE TABLE big (id int);\nCREATE INDEX big_id ON big (id);\n",
    )]);
    std::fs::remove_file(ws.path().join("migrations/2_index.sql")).unwrap();
    let run = ws.run(&["lint", "--all", "--format", "json"]);
    let report: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(
        finding(&report, "index_not_concurrent")["level"],
        "info",
        "{report:#}"
    );
    assert_eq!(run.code(), 0);
}

#[test]
fn sarif_and_github_outputs() {
    let db = schema_db();
    let sql = "-- snapguard:allow drop_column the release of last week stopped reading it\nALTER TABLE orders DROP COLUMN note;\nCREATE INDEX a ON orders (total);\n";
    let ws = workspace(Some(db), sql, ALL_LARGE);
    let run = ws.run(&["lint", "--all", "--format", "sarif"]);
    assert_eq!(run.code(), 9);
    let sarif: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let driver = &sarif["runs"][0]["tool"]["driver"];
    assert_eq!(driver["name"], "snapguard");
    assert_eq!(driver["rules"].as_array().unwrap().len(), RULES.len());
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["ruleId"], "drop_column");
    assert_eq!(
        results[0]["suppressions"][0]["justification"],
        "the release of last week stopped reading it"
    );
    assert_eq!(results[1]["ruleId"], "index_not_concurrent");
    assert_eq!(results[1]["level"], "error");
    let location = &results[1]["locations"][0]["physicalLocation"];
    assert_eq!(
        location["artifactLocation"]["uri"],
        "migrations/1_fixture.sql"
    );
    assert_eq!(location["region"]["startLine"], 3);
    // The rule index points at the rule.
    let index = results[1]["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(driver["rules"][index]["id"], "index_not_concurrent");

    let run = ws.run(&["lint", "--all", "--format", "github"]);
    let out = run.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout());
    assert!(lines[0].starts_with(
        "::notice file=migrations/1_fixture.sql,line=2,title=snapguard lint%3A drop_column::"
    ));
    assert!(lines[1].starts_with("::error file=migrations/1_fixture.sql,line=3,title=snapguard lint%3A index_not_concurrent::"));
}

#[test]
fn under_github_actions_text_output_annotates_on_stderr_and_writes_the_summary() {
    let db = schema_db();
    let ws = workspace(Some(db), &fixture("index_not_concurrent.sql"), ALL_LARGE);
    let summary = ws.path().join("summary.md");
    let run = ws
        .snapguard()
        .args(["lint", "--all"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(9));
    assert!(
        !stdout.contains("::error"),
        "workflow commands stay off stdout"
    );
    assert!(
        stderr.contains("::error file=migrations/1_fixture.sql,line=1,"),
        "{stderr}"
    );
    let md = std::fs::read_to_string(summary).unwrap();
    assert!(md.contains("| error | [`index_not_concurrent`]"), "{md}");
}

#[test]
fn a_lint_error_stops_the_deploy_before_anything_changes() {
    let db = create_db("lint_deploy");
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/schema.sql");
    pg().psql(&db, &["-f", &schema.display().to_string()])
        .unwrap();
    let store = tempfile::tempdir().unwrap();
    let ws = Workspace::for_db(
        &db,
        &format!(
            "store:\n  url: file://{}\n{ALL_LARGE}",
            store.path().display()
        ),
    );
    ws.migrations(&[("1_index.sql", &fixture("index_not_concurrent.sql"))]);
    let before = common::fingerprint(&db);
    let run = ws.run(&["deploy"]);
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("lint found 1 hazard(s) at the error level"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr()
            .contains("migrations/1_index.sql:1: index_not_concurrent"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("orders: "),
        "names the table's size: {}",
        run.stderr()
    );
    assert_eq!(common::fingerprint(&db), before, "nothing changed");
    let stored: Vec<PathBuf> = walk(store.path());
    assert!(
        stored
            .iter()
            .all(|p| !p.to_string_lossy().contains("snapshots/")),
        "no snapshot taken: {stored:?}"
    );
    // `plan` refuses the same way.
    assert_eq!(ws.run(&["plan"]).code(), 3);
    // Allowed with a reason, the deploy goes ahead and the plan shows it.
    ws.migrations(&[(
        "1_index.sql",
        &format!(
            "-- snapguard:allow index_not_concurrent built during the nightly window\n{}",
            fixture("index_not_concurrent.sql")
        ),
    )]);
    let plan = ws.run(&["plan"]);
    assert_eq!(plan.code(), 0, "{}", plan.stderr());
    assert!(
        plan.stdout()
            .contains("[allowed: built during the nightly window]"),
        "{}",
        plan.stdout()
    );
    ws.run(&["deploy"]).expect_code(0);
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_account_idx'"
        ),
        "1"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn the_config_schema_has_a_level_key_for_every_rule() {
    let ws = Workspace::new("");
    let run = ws.run(&["config", "schema"]);
    let schema: Value = serde_json::from_str(&run.stdout()).unwrap();
    let text = schema.to_string();
    for r in RULES {
        assert!(
            text.contains(&format!("\"{}\"", r.id)),
            "no schema key for {}",
            r.id
        );
    }
}

#[test]
fn a_validated_not_null_check_in_the_database_clears_set_not_null() {
    let db = create_db("lint_not_null_check");
    psql(
        &db,
        "CREATE TABLE people (id int, email text); \
         ALTER TABLE people ADD CONSTRAINT people_email_nn CHECK (email IS NOT NULL)",
    );
    let sql = "ALTER TABLE people ALTER COLUMN email SET NOT NULL;\n";
    let (report, code) = lint_json(&workspace(Some(&db), sql, ALL_LARGE));
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        report["findings"].as_array().unwrap().len(),
        0,
        "{report:#}"
    );
    // Not yet validated, the check does not spare the scan.
    psql(
        &db,
        "ALTER TABLE people DROP CONSTRAINT people_email_nn; \
         ALTER TABLE people ADD CONSTRAINT people_email_nn CHECK (email IS NOT NULL) NOT VALID",
    );
    let (report, code) = lint_json(&workspace(Some(&db), sql, ALL_LARGE));
    assert_eq!(code, 9);
    assert_eq!(report["findings"][0]["rule"], "set_not_null");
}

/// The finding of `rule` in `report`.
fn finding<'a>(report: &'a Value, rule: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} finding: {report:#}"))
}

/// A table renamed earlier in the run is the table it was: its size is the
/// old name's, and a table created in the run stays new under any name or
/// spelling (`fresh2`, `public.fresh2`). Before, the new name was "not in
/// the database (yet)" and every finding on it an error.
#[test]
fn renamed_and_schema_qualified_tables_are_judged_as_the_run_leaves_them() {
    let db = schema_db();
    let sql = "CREATE TABLE fresh (id int);\n\
               ALTER TABLE fresh RENAME TO fresh2;\n\
               CREATE INDEX fresh2_id ON public.fresh2 (id);\n\
               ALTER TABLE orders RENAME TO purchases;\n\
               CREATE INDEX purchases_total ON purchases (total);\n";
    for lint in ["", ALL_LARGE] {
        let (report, _) = lint_json(&workspace(Some(db), sql, lint));
        let indexes: Vec<&Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "index_not_concurrent")
            .collect();
        assert_eq!(indexes.len(), 2, "{report:#}");
        assert_eq!(indexes[0]["level"], "info", "{report:#}");
        assert!(
            indexes[0]["context"]
                .as_str()
                .unwrap()
                .contains("created earlier in this deploy"),
            "{report:#}"
        );
        let renamed = indexes[1];
        let context = renamed["context"].as_str().unwrap();
        assert!(
            context.contains("`orders` before a rename earlier in this deploy"),
            "{context}"
        );
        assert!(context.contains("~5000 rows"), "{context}");
        assert_eq!(
            renamed["level"],
            if lint.is_empty() { "info" } else { "error" },
            "{report:#}"
        );
    }
    // Without a database the same holds for the table created in the run.
    let (report, _) = lint_json(&workspace(None, sql, ""));
    assert_eq!(
        finding(&report, "index_not_concurrent")["level"],
        "info",
        "{report:#}"
    );

    // `SET search_path` moves where unqualified names resolve.
    let sql = "CREATE SCHEMA app;\nSET search_path TO app, public;\nCREATE TABLE events (id int);\nCREATE INDEX events_id ON app.events (id);\n";
    let (report, _) = lint_json(&workspace(Some(db), sql, ALL_LARGE));
    assert_eq!(
        finding(&report, "index_not_concurrent")["level"],
        "info",
        "{report:#}"
    );
}

/// Columns, schemas and constraints renamed earlier in the run are what
/// they were: a type change of a renamed column is judged from the type
/// the database has under its first name (it was "not consulted", an
/// error), a renamed schema's table has its size, and a renamed `NOT
/// VALID` check is still the one validated in the same transaction.
#[test]
fn renamed_columns_schemas_and_constraints_are_judged_by_their_first_names() {
    let db = schema_db();
    let sql = "ALTER TABLE orders RENAME COLUMN total TO amount;\n\
               ALTER TABLE orders ALTER COLUMN amount TYPE numeric(12,2);\n\
               ALTER TABLE accounts RENAME TO users;\n\
               ALTER TABLE users RENAME COLUMN name TO full_name;\n\
               ALTER TABLE users ALTER COLUMN full_name TYPE varchar(10);\n\
               ALTER TABLE orders ADD CONSTRAINT note_set CHECK (note IS NOT NULL) NOT VALID;\n\
               ALTER TABLE orders RENAME CONSTRAINT note_set TO note_present;\n\
               ALTER TABLE orders VALIDATE CONSTRAINT note_present;\n\
               ALTER TABLE orders RENAME COLUMN note TO remark;\n\
               ALTER TABLE orders ALTER COLUMN remark SET NOT NULL;\n\
               ALTER SCHEMA public RENAME TO shop;\n\
               CREATE INDEX orders_account ON shop.orders (account_id);\n";
    let (report, _) = lint_json(&workspace(Some(db), sql, ALL_LARGE));
    let rewrites: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "column_type_rewrite")
        .collect();
    // numeric(10,2) → (12,2) widens in place; varchar(20) → (10) rewrites,
    // and says so from the type the database has.
    assert_eq!(rewrites.len(), 1, "{report:#}");
    let message = rewrites[0]["message"].as_str().unwrap();
    assert!(
        message.contains("full_name TYPE varchar(10) (from character varying(20))"),
        "{message}"
    );
    assert!(
        rewrites[0]["context"]
            .as_str()
            .unwrap()
            .contains("`accounts` before a rename earlier in this deploy, "),
        "{report:#}"
    );
    let validate = finding(&report, "constraint_not_valid");
    assert!(
        validate["message"]
            .as_str()
            .unwrap()
            .starts_with("VALIDATE CONSTRAINT note_present in the same transaction"),
        "{report:#}"
    );
    assert!(
        !rules_found(&report).contains(&"set_not_null".to_owned()),
        "the renamed check prepared the renamed column: {report:#}"
    );
    let index = finding(&report, "index_not_concurrent");
    assert_eq!(index["level"], "error", "{report:#}");
    let context = index["context"].as_str().unwrap();
    assert!(
        context.contains("`public.orders` before a rename earlier in this deploy"),
        "{context}"
    );
    assert!(context.contains("~5000 rows"), "{context}");
}

/// A deploy whose migrations rename a small table and then index it goes
/// ahead; the same on a table lint judges large is refused at preflight.
#[test]
fn a_deploy_that_renames_then_alters_a_table_is_judged_by_its_real_size() {
    for (lint, code) in [("", 0), (ALL_LARGE, 3)] {
        let db = create_db(if lint.is_empty() {
            "lint_rename_small"
        } else {
            "lint_rename_large"
        });
        let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/schema.sql");
        pg().psql(&db, &["-f", &schema.display().to_string()])
            .unwrap();
        let ws = Workspace::for_db(&db, &format!("store:\n  url: file://./backups\n{lint}"));
        ws.migrations(&[
            ("1_rename.sql", "ALTER TABLE orders RENAME TO purchases;\n"),
            (
                "2_index.sql",
                "CREATE INDEX purchases_total ON purchases (total);\n",
            ),
        ]);
        let run = ws.run(&["deploy"]);
        assert_eq!(run.code(), code, "{}\n{}", run.stdout(), run.stderr());
        if code == 3 {
            assert!(
                run.stderr()
                    .contains("`orders` before a rename earlier in this deploy"),
                "{}",
                run.stderr()
            );
        }
    }
}

/// A file no folder format names (Prisma's `migration.sql`, a 20-digit
/// version) still says how it runs: its directive is honoured, so
/// `CREATE INDEX CONCURRENTLY` there is not a transaction error whose
/// advice is the directive already present.
#[test]
fn a_file_of_no_known_format_is_linted_as_its_own_directives_say() {
    let ws = Workspace::new("");
    let dir = ws
        .path()
        .join("prisma/migrations/20240101000000000000_add_index");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("migration.sql");
    let rules_of = |sql: &str| {
        std::fs::write(&file, sql).unwrap();
        let run = ws.run(&["lint", &file.display().to_string(), "--format", "json"]);
        let report: Value = serde_json::from_str(&run.stdout())
            .unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout(), run.stderr()));
        rules_found(&report)
    };
    let index = "CREATE INDEX CONCURRENTLY users_email ON users (email);\n";
    assert!(rules_of(index).contains(&"concurrently_in_transaction".to_owned()));
    for marked in [
        format!("-- snapguard:no-transaction\n{index}"),
        format!("-- no-transaction\n{index}"),
        format!(
            "-- migrate:up transaction:false\n{index}-- migrate:down\nDROP INDEX users_email;\n"
        ),
    ] {
        let rules = rules_of(&marked);
        assert!(
            !rules.contains(&"concurrently_in_transaction".to_owned()),
            "{marked}: {rules:?}"
        );
    }
}

/// False alarms of the real corpora, without a database: `ON ONLY` (which
/// rejects CONCURRENTLY), `VACUUM (FULL FALSE)`, and data changes on the
/// catalogues and the migration tools' history tables.
#[test]
fn what_cannot_be_done_otherwise_or_is_not_a_hazard_is_not_flagged() {
    for (sql, rule) in [
        (
            "CREATE INDEX measurements_at ON ONLY measurements (at);\n",
            "index_not_concurrent",
        ),
        (
            "-- snapguard:no-transaction\nVACUUM (FULL FALSE, ANALYZE) orders;\n",
            "vacuum_full",
        ),
        (
            "-- snapguard:no-transaction\nVACUUM (FULL off) orders;\n",
            "vacuum_full",
        ),
        (
            "UPDATE pg_index SET indisvalid = true WHERE indexrelid = 'x'::regclass;\n",
            "unbatched_data_change",
        ),
        (
            "DELETE FROM _sqlx_migrations WHERE version = 20240101000000;\n",
            "unbatched_data_change",
        ),
        (
            "DELETE FROM public.schema_migrations WHERE version = '1';\n",
            "unbatched_data_change",
        ),
    ] {
        let (report, _) = lint_json(&workspace(None, sql, ""));
        assert!(
            !rules_found(&report).contains(&rule.to_owned()),
            "{sql}: {report:#}"
        );
    }
    // The same statements on an application table still are.
    for (sql, rule) in [
        (
            "CREATE INDEX measurements_at ON measurements (at);\n",
            "index_not_concurrent",
        ),
        (
            "-- snapguard:no-transaction\nVACUUM (FULL TRUE) orders;\n",
            "vacuum_full",
        ),
        (
            "-- snapguard:no-transaction\nVACUUM (FULL) orders;\n",
            "vacuum_full",
        ),
        (
            "DELETE FROM orders WHERE total < 0;\n",
            "unbatched_data_change",
        ),
    ] {
        let (report, _) = lint_json(&workspace(None, sql, ""));
        assert!(
            rules_found(&report).contains(&rule.to_owned()),
            "{sql}: {report:#}"
        );
    }
}

/// `pg_class.relfilenode` of `table` in `db`: a rewrite changes it.
fn relfilenode(db: &str, table: &str) -> String {
    psql(
        db,
        &format!("SELECT relfilenode FROM pg_class WHERE oid = '{table}'::regclass"),
    )
}

/// Hazards the rules missed: serial and identity columns rewrite the table
/// (the server says so: its file changes), a new column's foreign key with
/// a default checks every row, DROP INDEX without CONCURRENTLY; and DROP
/// INDEX CONCURRENTLY in a transaction fails.
#[test]
fn serial_and_identity_columns_foreign_keys_with_defaults_and_drop_index_are_found() {
    let db = create_db("lint_missed");
    psql(
        &db,
        "CREATE TABLE parents (id int PRIMARY KEY); INSERT INTO parents VALUES (1);\
         CREATE TABLE kids (id int, note text); INSERT INTO kids SELECT g, 'n' FROM generate_series(1, 2000) g;\
         CREATE INDEX kids_note ON kids (note);",
    );
    for (sql, rule, rewrites) in [
        (
            "ALTER TABLE kids ADD COLUMN seq bigserial;\n",
            "add_column_volatile_default",
            Some(true),
        ),
        (
            "ALTER TABLE kids ADD COLUMN seq2 serial;\n",
            "add_column_volatile_default",
            Some(true),
        ),
        (
            "ALTER TABLE kids ADD COLUMN ident int GENERATED ALWAYS AS IDENTITY;\n",
            "add_column_volatile_default",
            Some(true),
        ),
        (
            "ALTER TABLE kids ADD COLUMN parent int NOT NULL DEFAULT 1 REFERENCES parents (id);\n",
            "constraint_not_valid",
            None,
        ),
        ("DROP INDEX kids_note;\n", "drop_index_not_concurrent", None),
    ] {
        let (report, _) = lint_json(&workspace(Some(&db), sql, ALL_LARGE));
        assert!(
            rules_found(&report).contains(&rule.to_owned()),
            "{sql}: {report:#}"
        );
        if let Some(rewrites) = rewrites {
            let before = relfilenode(&db, "kids");
            psql(&db, sql);
            assert_eq!(
                relfilenode(&db, "kids") != before,
                rewrites,
                "{sql}: the server's own answer"
            );
        }
    }
    // What is safe is not flagged.
    for (sql, rule) in [
        (
            "ALTER TABLE kids ADD COLUMN plain int;\n",
            "add_column_volatile_default",
        ),
        (
            "ALTER TABLE kids ADD COLUMN parent2 int REFERENCES parents (id);\n",
            "constraint_not_valid",
        ),
        (
            "-- snapguard:no-transaction\nDROP INDEX CONCURRENTLY kids_note;\n",
            "drop_index_not_concurrent",
        ),
    ] {
        let (report, _) = lint_json(&workspace(Some(&db), sql, ALL_LARGE));
        assert!(
            !rules_found(&report).contains(&rule.to_owned()),
            "{sql}: {report:#}"
        );
    }
    let before = relfilenode(&db, "kids");
    psql(&db, "ALTER TABLE kids ADD COLUMN plain int");
    assert_eq!(
        relfilenode(&db, "kids"),
        before,
        "a plain ADD COLUMN does not rewrite"
    );
    // DROP INDEX CONCURRENTLY in a transaction fails: as a loose file (the
    // folder itself refuses it) it is an error.
    let ws = Workspace::new("");
    std::fs::write(
        ws.path().join("drop.sql"),
        "DROP INDEX CONCURRENTLY kids_note;\n",
    )
    .unwrap();
    let run = ws.run(&["lint", "drop.sql", "--format", "json"]);
    assert_eq!(run.code(), 9, "{}", run.stdout());
    let report: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert!(
        rules_found(&report).contains(&"concurrently_in_transaction".to_owned()),
        "{report:#}"
    );
}

fn findings_of<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

/// Issue 28, 10: `VALIDATE` in the transaction that added the constraint
/// `NOT VALID` scans under the `ADD`'s lock, held to the end: the safe way
/// undone. In a migration of its own it is the safe way.
#[test]
fn validating_in_the_transaction_that_added_not_valid_is_found() {
    let db = schema_db();
    let add = "ALTER TABLE orders ADD CONSTRAINT orders_total_pos CHECK (total > 0) NOT VALID;\n";
    let validate = "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_pos;\n";
    let add_fk = "ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk;\n";
    for same in [format!("{add}{validate}"), add_fk.to_owned()] {
        let (report, code) = lint_json(&workspace(Some(db), &same, ALL_LARGE));
        let hits = findings_of(&report, "constraint_not_valid");
        assert_eq!(hits.len(), 1, "{report:#}");
        assert!(
            hits[0]["message"]
                .as_str()
                .unwrap()
                .contains("in the same transaction as its ADD … NOT VALID"),
            "{report:#}"
        );
        assert_eq!(code, 9);
    }

    // The next migration: another transaction.
    let ws = workspace(Some(db), add, ALL_LARGE);
    std::fs::write(ws.path().join("migrations/2_validate.sql"), validate).unwrap();
    let (report, code) = lint_json(&ws);
    assert!(
        findings_of(&report, "constraint_not_valid").is_empty(),
        "{report:#}"
    );
    assert_eq!(code, 0, "{report:#}");
    // Outside a transaction each statement commits on its own.
    let own = format!("-- snapguard:no-transaction\n{add}{validate}");
    let (report, _) = lint_json(&workspace(Some(db), &own, ALL_LARGE));
    assert!(
        findings_of(&report, "constraint_not_valid").is_empty(),
        "{report:#}"
    );
}

/// Issue 28, 12: `lint FILE` finds what PostgreSQL refuses in a
/// transaction block (the folder check refuses the same file, exit 3),
/// and a NOT NULL column added to a table this run created is no hazard.
#[test]
fn a_loose_file_is_held_to_the_transaction_rules_of_the_folder() {
    let ws = Workspace::new("migrations:\n  dir: migrations\n");
    for (sql, refused) in [
        ("VACUUM orders;\n", true),
        ("ALTER SYSTEM SET work_mem = '8MB';\n", true),
        ("-- snapguard:no-transaction\nVACUUM orders;\n", false),
        ("VACUUM (FULL FALSE) orders;\n", true),
    ] {
        std::fs::write(ws.path().join("loose.sql"), sql).unwrap();
        let run = ws.run(&["lint", "loose.sql", "--format", "json"]);
        let report: Value = serde_json::from_str(&run.stdout()).unwrap();
        let hits = findings_of(&report, "concurrently_in_transaction");
        assert_eq!(hits.len(), usize::from(refused), "{sql}: {report:#}");
        assert_eq!(run.code(), if refused { 9 } else { 0 }, "{sql}: {report:#}");
    }
    let fresh = "CREATE TABLE fresh (id int);\nALTER TABLE fresh ADD COLUMN name text NOT NULL;\n";
    let (report, _) = lint_json(&workspace(None, fresh, ALL_LARGE));
    assert!(
        findings_of(&report, "add_column_not_null").is_empty(),
        "{report:#}"
    );
}

/// Issue 28, 6: without a database, `lint.server_version` (or
/// `SNAPGUARD_LINT_SERVER_VERSION`) says which server the migrations will
/// run on: `ADD VALUE` in a transaction fails only before 12.
#[test]
fn the_server_version_can_be_given_without_a_database() {
    let sql = "ALTER TYPE mood ADD VALUE 'great';\n";
    let (report, code) = lint_json(&workspace(None, sql, ""));
    let hits = findings_of(&report, "enum_add_value_in_transaction");
    assert_eq!(hits.len(), 1, "{report:#}");
    assert!(
        hits[0]["message"]
            .as_str()
            .unwrap()
            .contains("set `lint.server_version`"),
        "{report:#}"
    );
    assert_eq!(code, 9);

    let ws = workspace(None, sql, "lint:\n  server_version: 16\n");
    let (report, code) = lint_json(&ws);
    assert!(
        findings_of(&report, "enum_add_value_in_transaction").is_empty(),
        "{report:#}"
    );
    assert_eq!(code, 0, "{report:#}");

    let ws = workspace(None, sql, "");
    let run = ws
        .snapguard()
        .args(["lint", "--all", "--format", "json"])
        .env("SNAPGUARD_LINT_SERVER_VERSION", "11")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        findings_of(&report, "enum_add_value_in_transaction").len(),
        1,
        "{report:#}"
    );

    let ws = workspace(None, sql, "lint:\n  server_version: 16.4\n");
    let run = ws.run(&["lint", "--all"]);
    run.expect_code(2);
    run.expect_stderr("lint.server_version");
}

/// Issue 28, 4: a type change is judged from the type the run left the
/// column with, not the database's. `numeric(10,2)` → `(12,4)` rewrites;
/// then `(12,4)` → `(14,4)` does not (judged "from numeric(10,2)" it was
/// a rewrite too). The server agrees: the relfilenode changes once.
#[test]
fn a_type_change_is_judged_from_the_type_the_run_left() {
    let db = schema_db();
    let first = "ALTER TABLE accounts ALTER COLUMN balance TYPE numeric(12,4);\n";
    let second = "ALTER TABLE accounts ALTER COLUMN balance TYPE numeric(14,4);\n";
    let (report, _) = lint_json(&workspace(Some(db), &format!("{first}{second}"), ALL_LARGE));
    let rewrites = findings_of(&report, "column_type_rewrite");
    assert_eq!(rewrites.len(), 1, "{report:#}");
    assert_eq!(rewrites[0]["line"], 1, "{report:#}");

    // What the server does with the same two statements.
    let scratch = create_db("lint_type_run");
    psql(
        &scratch,
        "CREATE TABLE accounts (id int, balance numeric(10,2)); INSERT INTO accounts VALUES (1, 2.5)",
    );
    let node = || {
        psql(
            &scratch,
            "SELECT relfilenode FROM pg_class WHERE relname = 'accounts'",
        )
    };
    let before = node();
    psql(&scratch, first);
    let after_first = node();
    psql(&scratch, second);
    assert_ne!(before, after_first, "numeric(10,2) → (12,4) rewrites");
    assert_eq!(after_first, node(), "numeric(12,4) → (14,4) does not");
}

/// Issue 28, 3: every type change is judged as the server makes it: lint
/// reports `column_type_rewrite` exactly when the server gives the table a
/// new relfilenode for the same statement (typmod rules, binary-coercible
/// casts from `pg_cast`, `timestamp` ↔ `timestamptz` in a UTC session, a
/// `USING` that is only the column cast to its new type).
#[test]
fn type_changes_are_judged_as_the_server_makes_them() {
    let db = create_db("lint_type_rules");
    let cases = [
        ("varchar(20)", "TYPE varchar(40)"),
        ("varchar(40)", "TYPE varchar(20)"),
        ("varchar(20)", "TYPE text"),
        ("text", "TYPE varchar(10)"),
        ("text", "TYPE varchar"),
        ("cidr", "TYPE inet"),
        ("inet", "TYPE cidr"),
        ("interval(3)", "TYPE interval"),
        ("interval(3)", "TYPE interval(6)"),
        ("interval(6)", "TYPE interval(3)"),
        ("timestamp(3)", "TYPE timestamp(6)"),
        ("timestamp(6)", "TYPE timestamp(3)"),
        ("timestamp", "TYPE timestamptz"),
        ("timestamptz", "TYPE timestamp"),
        ("time(3)", "TYPE time"),
        ("varchar(20)", "TYPE text USING c::text"),
        ("varchar(20)", "TYPE text USING lower(c)"),
        ("numeric(10,2)", "TYPE numeric(12,2)"),
        ("numeric(10,2)", "TYPE numeric(12,4)"),
        ("numeric(10,2)", "TYPE numeric"),
        ("integer", "TYPE bigint"),
        ("integer", "TYPE int4"),
        ("text", "TYPE jsonb USING c::jsonb"),
    ];
    let zone = psql(&db, "SHOW TimeZone");
    for (i, (from, change)) in cases.iter().enumerate() {
        let table = format!("t{i}");
        psql(
            &db,
            &format!("CREATE TABLE {table} (c {from}); INSERT INTO {table} VALUES (NULL)"),
        );
        let sql = format!("ALTER TABLE {table} ALTER COLUMN c {change};\n");
        let (report, _) = lint_json(&workspace(Some(&db), &sql, ALL_LARGE));
        let said = !findings_of(&report, "column_type_rewrite").is_empty();
        let node = || {
            psql(
                &db,
                &format!("SELECT relfilenode FROM pg_class WHERE relname = '{table}'"),
            )
        };
        let before = node();
        psql(&db, &sql);
        let rewrote = node() != before;
        assert_eq!(
            said, rewrote,
            "{from} → {change} (session time zone {zone}): lint says rewrite: {said}, the server rewrote: {rewrote}\n{report:#}"
        );
    }
}

/// Precision on a real history, not our fixtures: every error lint
/// reports on lemmy's 342 migrations (2,664 statements, linted as a
/// folder without a database) is listed in `corpus/lemmy.judged` with a
/// verdict and why. The errors must equal that list (a new one, or one
/// gone, is judged there first) and none may be judged false.
#[test]
fn every_error_on_a_real_migration_history_is_judged() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/corpus/lemmy");
    // lemmy's 81 `timestamp` → `timestamptz` changes are in place: the
    // migration sets `timezone = 'UTC'` first, for that reason.
    let ws = Workspace::new("lint:\n  server_version: 16\n");
    let run = ws.run(&["lint", &corpus.display().to_string(), "--format", "json"]);
    assert_eq!(run.code(), 9, "{}", run.stderr());
    let report: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(report["files"], 342, "{}", run.stderr());
    assert_eq!(report["statements"], 2664);
    let prefix = format!("{}/", corpus.display());
    let mut errors: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == "error")
        .map(|f| {
            let file = f["file"].as_str().unwrap();
            let file = file.strip_prefix(&prefix).unwrap_or(file);
            format!("{file}:{} {}", f["line"], f["rule"].as_str().unwrap())
        })
        .collect();
    let judged = fixture("corpus/lemmy.judged");
    let mut listed = Vec::new();
    for line in judged
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let parts: Vec<&str> = line.splitn(4, ' ').collect();
        assert_eq!(
            parts.len(),
            4,
            "`<file>:<line> <rule> <verdict> <why>`: {line}"
        );
        assert_eq!(parts[2], "true", "a false error: {line}");
        listed.push(format!("{} {}", parts[0], parts[1]));
    }
    errors.sort();
    listed.sort();
    let unjudged: Vec<&String> = errors.iter().filter(|e| !listed.contains(e)).collect();
    let gone: Vec<&String> = listed.iter().filter(|l| !errors.contains(l)).collect();
    assert!(
        unjudged.is_empty() && gone.is_empty() && errors.len() == listed.len(),
        "errors not judged in lemmy.judged: {unjudged:#?}\njudged but no longer reported: {gone:#?}"
    );
}

/// A default's function is judged as volatile by what is known of it: a
/// function the run creates is as its `CREATE FUNCTION` says (volatile
/// unless `STABLE` or `IMMUTABLE`); without a database, a built-in one as
/// PostgreSQL's catalogue says, and any other has an unknown volatility,
/// said as such (it passed as harmless before).
#[test]
fn a_default_function_is_judged_by_what_is_known_of_it() {
    let sql = "ALTER TABLE orders ADD COLUMN a text DEFAULT next_code();\n\
               CREATE FUNCTION stable_code() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'x' $$;\n\
               ALTER TABLE orders ADD COLUMN b text DEFAULT stable_code();\n\
               CREATE FUNCTION random_code() RETURNS text LANGUAGE sql AS $$ SELECT md5(random()::text) $$;\n\
               ALTER TABLE orders ADD COLUMN c text DEFAULT random_code();\n\
               ALTER TABLE orders ADD COLUMN d text DEFAULT md5('x');\n\
               ALTER TABLE orders ADD COLUMN e bytea DEFAULT gen_random_bytes(8);\n\
               ALTER TABLE orders ADD COLUMN f timestamptz DEFAULT now() + make_interval(days => 1);\n";
    let messages = |db: Option<&str>| -> Vec<String> {
        let (report, _) = lint_json(&workspace(db, sql, ALL_LARGE));
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "add_column_volatile_default")
            .map(|f| f["message"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        messages(None),
        [
            "ADD COLUMN a DEFAULT next_code(…): volatility unknown, not a built-in function and the database was not asked (a volatile default is computed for every row)",
            "ADD COLUMN c DEFAULT random_code(…): volatile, computed for every row",
            "ADD COLUMN e DEFAULT gen_random_bytes(…): volatile, computed for every row",
        ]
    );
    // The database does not have `next_code` (a migration would fail on
    // it) nor pgcrypto: only the run's own function is known volatile.
    assert_eq!(
        messages(Some(schema_db())),
        ["ADD COLUMN c DEFAULT random_code(…): volatile, computed for every row"]
    );
}

/// A `SET TIME ZONE` in the run sets the zone a later `timestamp` →
/// `timestamptz` change runs in; and with `transaction: all` a `VALIDATE`
/// in a later migration is still in the transaction of the `ADD … NOT
/// VALID`, holding its lock through the scan.
#[test]
fn a_session_time_zone_and_a_shared_transaction_are_followed() {
    let sql = |zone: &str| {
        format!(
            "CREATE TABLE stamps (at timestamp);\nSET TIME ZONE '{zone}';\n\
             ALTER TABLE stamps ALTER COLUMN at TYPE timestamptz;\n"
        )
    };
    let rewrites = |zone: &str| {
        let ws = workspace(None, &sql(zone), "lint:\n  server_version: 16\n");
        let (report, _) = lint_json(&ws);
        rules_found(&report)
            .iter()
            .filter(|r| *r == "column_type_rewrite")
            .count()
    };
    assert_eq!(rewrites("UTC"), 0);
    assert_eq!(rewrites("Europe/Paris"), 1);
    // Without a `SET`, `lint.time_zone` says the zone migrations run in.
    let configured = |zone: &str| {
        let sql = "CREATE TABLE stamps (at timestamp);\nALTER TABLE stamps ALTER COLUMN at TYPE timestamptz;\n";
        let lint = format!("lint:\n  server_version: 16\n  time_zone: {zone}\n");
        let (report, _) = lint_json(&workspace(None, sql, &lint));
        rules_found(&report)
            .iter()
            .filter(|r| *r == "column_type_rewrite")
            .count()
    };
    assert_eq!(configured("Etc/UTC"), 0);
    assert_eq!(configured("America/New_York"), 1);

    for (transaction, same) in [("all", true), ("per-migration", false)] {
        let ws = Workspace::new(&format!(
            "database:\n  url: {}\nmigrations:\n  dir: migrations\n  transaction: {transaction}\nlint:\n  small_table: 0\n",
            pg().url(schema_db())
        ));
        ws.migrations(&[
            (
                "1_add.sql",
                "ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total >= 0) NOT VALID;\n",
            ),
            (
                "2_validate.sql",
                "ALTER TABLE orders VALIDATE CONSTRAINT total_positive;\n",
            ),
        ]);
        let (report, _) = lint_json(&ws);
        assert_eq!(
            rules_found(&report).contains(&"constraint_not_valid".to_owned()),
            same,
            "{transaction}: {report:#}"
        );
    }
}
