//! Adopting a database another migration tool migrated: its history table is
//! read (nothing is applied twice), a failed migration it records stops
//! snapguard as it stops the tool, and snapguard keeps the table current so
//! that the tool, run again, finds nothing to do.
//!
//! sqlx, dbmate and diesel run as the real tools (`scripts/install-test-deps`
//! installs them); golang-migrate and Flyway do not install from the
//! registries here, so their tables are made exactly as their sources make
//! them, with the rows they write.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

/// A native tool's binary: on `PATH`, or where `cargo install` puts it.
fn tool(name: &str) -> PathBuf {
    let cargo_bin = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"))
        .join("bin")
        .join(name);
    let on_path = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file());
    on_path
        .or_else(|| cargo_bin.is_file().then_some(cargo_bin))
        .unwrap_or_else(|| panic!("`{name}` is not installed; run scripts/install-test-deps"))
}

/// Runs a native tool, failing the test when it fails; returns its stdout
/// and stderr together.
fn run_tool(cmd: &mut Command) -> String {
    let out = cmd.output().expect("start the native tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn status_json(ws: &Workspace) -> serde_json::Value {
    let run = ws.run(&["migrate", "status", "--json"]);
    run.expect_code(0);
    serde_json::from_str(&run.stdout()).unwrap()
}

/// `version state recorded-in` for every entry of `migrate status`.
fn states(ws: &Workspace) -> Vec<String> {
    let json = status_json(ws);
    json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["version"].as_str().unwrap(),
                e["state"].as_str().unwrap(),
                e["applied"]["table"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

/// Runs `migrate` and checks it applied `count` migrations.
fn migrate_applies(ws: &Workspace, count: usize) {
    let run = ws.run(&["migrate"]);
    run.expect_code(0);
    let applied = format!("applied {count} migration(s)");
    assert!(run.stdout().contains(&applied), "{}", run.stdout());
}

fn migrations_dir(ws: &Workspace) -> PathBuf {
    ws.path().join("migrations")
}

fn public_tables(db: &str) -> String {
    psql(
        db,
        "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'",
    )
}

const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n";
const NAME: &str = "ALTER TABLE users ADD COLUMN name text;\n";
const INDEX: &str = "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);\n";
const BACKFILL: &str = "UPDATE users SET name = email WHERE name IS NULL;\n";

#[test]
fn sqlx_database_is_adopted_and_sqlx_finds_nothing_to_do_afterwards() {
    let db = create_db("native_sqlx");
    // No `format:`: the plain `.sql` layout is told from snapguard's own by
    // the `_sqlx_migrations` table.
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[
        ("20240101000000_create_users.sql", USERS),
        ("20240102000000_add_name.sql", NAME),
    ]);
    let sqlx = || {
        let mut c = Command::new(tool("sqlx"));
        c.current_dir(ws.path());
        c
    };
    let url = pg().url(&db);
    run_tool(sqlx().args([
        "migrate",
        "run",
        "--source",
        "migrations",
        "--database-url",
        &url,
    ]));

    assert_eq!(
        states(&ws),
        [
            "20240101000000 applied _sqlx_migrations",
            "20240102000000 applied _sqlx_migrations"
        ]
    );
    assert!(
        ws.run(&["migrate", "status"])
            .stdout()
            .contains("(sqlx format)")
    );

    ws.migrations(&[
        (
            "20240103000000_index_email.sql",
            &format!("-- no-transaction\n{INDEX}"),
        ),
        ("20240104000000_backfill.sql", BACKFILL),
    ]);
    migrate_applies(&ws, 2);
    assert_eq!(
        psql(
            &db,
            "SELECT string_agg(version || ':' || description || ':' || success, ',' ORDER BY version) FROM _sqlx_migrations"
        ),
        "20240101000000:create users:true,20240102000000:add name:true,\
         20240103000000:index email:true,20240104000000:backfill:true"
    );

    // sqlx agrees: every version installed, and `run` (which checks every
    // applied checksum against its file) applies nothing.
    let info = run_tool(sqlx().args([
        "migrate",
        "info",
        "--source",
        "migrations",
        "--database-url",
        &url,
    ]));
    assert_eq!(info.matches("installed").count(), 4, "{info}");
    assert!(!info.contains("pending"), "{info}");
    let again = run_tool(sqlx().args([
        "migrate",
        "run",
        "--source",
        "migrations",
        "--database-url",
        &url,
    ]));
    assert!(!again.contains("Applied"), "{again}");
    // A changed file is drift to both.
    ws.migrations(&[(
        "20240102000000_add_name.sql",
        "ALTER TABLE users ADD COLUMN name varchar(80);\n",
    )]);
    ws.run(&["migrate"])
        .expect_code(3)
        .expect_stderr("(version 20240102000000) changed after it was applied");
    ws.migrations(&[("20240102000000_add_name.sql", NAME)]);

    // A harmless edit (a comment) to a migration both tables record:
    // `migrate repair` accepts it in both, and logs who did.
    let index_file = "20240103000000_index_email.sql";
    ws.migrations(&[(
        index_file,
        &format!("-- no-transaction\n-- speeds up login\n{INDEX}"),
    )]);
    ws.run(&["migrate"])
        .expect_code(3)
        .expect_stderr("(version 20240103000000) changed after it was applied");
    ws.run(&["migrate", "repair", "--version", "20240104000000"])
        .expect_code(3)
        .expect_stderr("version 20240104000000 has nothing to repair");
    let repaired = ws.run(&["migrate", "repair"]);
    repaired.expect_code(0);
    assert_eq!(
        repaired.stdout().matches("repaired 20240103000000").count(),
        2,
        "{}",
        repaired.stdout()
    );
    assert_eq!(
        psql(
            &db,
            "SELECT string_agg(history_table || ' ' || repaired_by, ',' ORDER BY history_table) FROM snapguard.migration_repairs"
        ),
        "_sqlx_migrations postgres,snapguard.schema_migrations postgres"
    );
    let after = ws.run(&["migrate"]);
    after.expect_code(0);
    assert!(
        after.stdout().contains("nothing to migrate"),
        "{}",
        after.stdout()
    );
    run_tool(sqlx().args([
        "migrate",
        "run",
        "--source",
        "migrations",
        "--database-url",
        &url,
    ]));

    // A migration sqlx records as failed stops snapguard before anything changes.
    psql(
        &db,
        "UPDATE _sqlx_migrations SET success = false WHERE version = 20240104000000",
    );
    ws.migrations(&[("20240105000000_more.sql", "CREATE TABLE more (x int);\n")]);
    let before = fingerprint(&db);
    ws.run(&["migrate"]).expect_code(3).expect_stderr(
        "sqlx records version 20240104000000 as failed (success = false) in `_sqlx_migrations`",
    );
    // `plan` (the deploy's preflight) stops the same way.
    let planned = Workspace::new(&fs_config(&db, "migrations:\n  dir: migrations\n"));
    copy_dir(&migrations_dir(&ws), &migrations_dir(&planned));
    planned
        .run(&["plan"])
        .expect_code(3)
        .expect_stderr("sqlx records version 20240104000000 as failed");
    let status = ws.run(&["migrate", "status"]);
    status
        .expect_code(3)
        .expect_stderr("sqlx records version 20240104000000 as failed");
    assert_eq!(fingerprint(&db), before);
}

#[test]
fn dbmate_database_is_adopted_and_dbmate_finds_nothing_to_do_afterwards() {
    let db = create_db("native_dbmate");
    // Through a whole deploy this time: preflight, snapshot, migrate.
    let ws = Workspace::new(&fs_config(&db, "migrations:\n  dir: migrations\n"));
    let up = |sql: &str| format!("-- migrate:up\n{sql}\n-- migrate:down\nSELECT 1;\n");
    ws.migrations(&[
        ("20240101000000_create_users.sql", &up(USERS)),
        ("20240102000000_add_name.sql", &up(NAME)),
    ]);
    let dbmate = |args: &[&str]| {
        let mut c = Command::new(tool("dbmate"));
        c.current_dir(ws.path())
            .args([
                "--url",
                &pg().url(&db),
                "--migrations-dir",
                "migrations",
                "--no-dump-schema",
            ])
            .args(args);
        run_tool(&mut c)
    };
    dbmate(&["up"]);
    assert_eq!(
        states(&ws),
        [
            "20240101000000 applied schema_migrations",
            "20240102000000 applied schema_migrations"
        ]
    );

    ws.migrations(&[
        (
            "20240103000000_index_email.sql",
            &format!("-- migrate:up transaction:false\n{INDEX}\n-- migrate:down\nSELECT 1;\n"),
        ),
        ("20240104000000_backfill.sql", &up(BACKFILL)),
    ]);
    let plan = ws.run(&["plan", "--json"]);
    plan.expect_code(0);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout()).unwrap();
    let pending: Vec<&str> = plan["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["version"].as_str().unwrap())
        .collect();
    assert_eq!(pending, ["20240103000000", "20240104000000"]);
    ws.run(&["deploy", "--release", "r2"]).expect_code(0);
    assert_eq!(
        psql(
            &db,
            "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations"
        ),
        "20240101000000,20240102000000,20240103000000,20240104000000"
    );
    let status = dbmate(&["status"]);
    assert_eq!(status.matches("[X]").count(), 4, "{status}");
    assert!(status.contains("Pending: 0"), "{status}");
    let again = dbmate(&["up"]);
    assert!(!again.contains("Applying"), "{again}");
}

/// dbmate keeps its table in the first schema of its URL's `search_path`,
/// creating that schema when missing; snapguard, given the same
/// `search_path` (libpq's form: `options=-c search_path=…`), keeps it
/// there too, so dbmate finds every migration applied.
#[test]
fn dbmate_with_its_own_schema_first_in_the_search_path_finds_what_snapguard_applied() {
    let db = create_db("native_dbmate_path");
    psql(&db, "CREATE SCHEMA app");
    let url = format!("{}&options=-c%20search_path%3Ddbmate%2Capp", pg().url(&db));
    let ws = Workspace::new(&format!(
        "database:\n  url: '{url}'\nstore:\n  url: file://./backups\nmigrations:\n  dir: migrations\n  format: dbmate\n"
    ));
    let up = |sql: &str| format!("-- migrate:up\n{sql}\n-- migrate:down\nSELECT 1;\n");
    ws.migrations(&[
        (
            "20240101000000_create_users.sql",
            &up("CREATE TABLE app.users (id bigint PRIMARY KEY, email text NOT NULL);"),
        ),
        (
            "20240102000000_add_name.sql",
            &up("ALTER TABLE app.users ADD COLUMN name text;"),
        ),
    ]);
    ws.run(&["deploy", "--release", "r1"]).expect_code(0);
    assert_eq!(
        psql(
            &db,
            "SELECT string_agg(version, ',' ORDER BY version) FROM dbmate.schema_migrations"
        ),
        "20240101000000,20240102000000"
    );
    assert_eq!(
        psql(&db, "SELECT to_regclass('app.schema_migrations') IS NULL"),
        "t",
        "snapguard wrote the table where dbmate never looks"
    );
    // The real dbmate, with the search_path in its own URL form.
    let dbmate_url = format!("{}&search_path=dbmate,app", pg().url(&db));
    let dbmate = |args: &[&str]| {
        let mut c = Command::new(tool("dbmate"));
        c.current_dir(ws.path())
            .args([
                "--url",
                &dbmate_url,
                "--migrations-dir",
                "migrations",
                "--no-dump-schema",
            ])
            .args(args);
        run_tool(&mut c)
    };
    let status = dbmate(&["status"]);
    assert_eq!(status.matches("[X]").count(), 2, "{status}");
    assert!(status.contains("Pending: 0"), "{status}");
    // dbmate applies the next one; snapguard sees it as applied.
    ws.migrations(&[(
        "20240103000000_add_age.sql",
        &up("ALTER TABLE app.users ADD COLUMN age int;"),
    )]);
    let applied = dbmate(&["up"]);
    assert!(applied.contains("20240103000000"), "{applied}");
    let plan = ws.run(&["plan", "--json"]);
    plan.expect_code(0);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout()).unwrap();
    assert_eq!(plan["pending"].as_array().unwrap().len(), 0, "{plan}");
}

#[test]
fn diesel_database_is_adopted_and_diesel_finds_nothing_to_do_afterwards() {
    let db = create_db("native_diesel");
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[
        ("2024-01-01-000000_create_users/up.sql", USERS),
        (
            "2024-01-01-000000_create_users/down.sql",
            "DROP TABLE users;\n",
        ),
        ("2024-01-02-000000_add_name/up.sql", NAME),
        (
            "2024-01-02-000000_add_name/down.sql",
            "ALTER TABLE users DROP COLUMN name;\n",
        ),
    ]);
    let diesel = |args: &[&str]| {
        let mut c = Command::new(tool("diesel"));
        c.current_dir(ws.path()).args(args).args([
            "--database-url",
            &pg().url(&db),
            "--migration-dir",
            "migrations",
        ]);
        run_tool(&mut c)
    };
    diesel(&["migration", "run"]);
    assert_eq!(
        states(&ws),
        [
            "20240101000000 applied __diesel_schema_migrations",
            "20240102000000 applied __diesel_schema_migrations"
        ]
    );

    ws.migrations(&[
        ("2024-01-03-000000_index_email/up.sql", INDEX),
        (
            "2024-01-03-000000_index_email/down.sql",
            "DROP INDEX users_email_idx;\n",
        ),
        (
            "2024-01-03-000000_index_email/metadata.toml",
            "run_in_transaction = false\n",
        ),
        ("2024-01-04-000000_backfill/up.sql", BACKFILL),
        ("2024-01-04-000000_backfill/down.sql", "SELECT 1;\n"),
    ]);
    migrate_applies(&ws, 2);
    assert_eq!(
        psql(
            &db,
            "SELECT string_agg(version, ',' ORDER BY version) FROM __diesel_schema_migrations"
        ),
        "20240101000000,20240102000000,20240103000000,20240104000000"
    );
    let pending = diesel(&["migration", "pending"]);
    assert_eq!(pending.trim(), "false", "{pending}");
    let list = diesel(&["migration", "list"]);
    assert_eq!(list.matches("[X]").count(), 4, "{list}");
}

/// golang-migrate's table and row as its postgres driver writes them.
fn golang_at(db: &str, version: i64, dirty: bool) {
    psql(
        db,
        &format!(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, dirty boolean not null);
             TRUNCATE schema_migrations;
             INSERT INTO schema_migrations (version, dirty) VALUES ({version}, {dirty});"
        ),
    );
}

#[test]
fn golang_migrate_database_is_adopted_and_its_version_moves_up() {
    let db = create_db("native_golang");
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[
        ("000001_create_users.up.sql", USERS),
        ("000001_create_users.down.sql", "DROP TABLE users;"),
        ("000002_add_name.up.sql", NAME),
        ("000002_add_name.down.sql", "SELECT 1;"),
    ]);
    // What golang-migrate leaves after `up` of both.
    psql(&db, &format!("{USERS}{NAME}"));
    golang_at(&db, 2, false);
    assert_eq!(
        states(&ws),
        [
            "000001 applied schema_migrations",
            "000002 applied schema_migrations"
        ]
    );

    ws.migrations(&[
        ("000003_index_email.up.sql", INDEX),
        ("000003_index_email.down.sql", "SELECT 1;"),
        ("000004_backfill.up.sql", BACKFILL),
        ("000004_backfill.down.sql", "SELECT 1;"),
    ]);
    migrate_applies(&ws, 2);
    // One row, at the last version, clean: what `migrate version` reads.
    assert_eq!(
        psql(&db, "SELECT version || ' ' || dirty FROM schema_migrations"),
        "4 false"
    );

    // Dirty: golang-migrate stops until `migrate force`; so does snapguard.
    golang_at(&db, 4, true);
    ws.migrations(&[("000005_more.up.sql", "CREATE TABLE more (x int);")]);
    let before = fingerprint(&db);
    ws.run(&["migrate"])
        .expect_code(3)
        .expect_stderr("golang-migrate records version 4 as dirty (a migration failed midway) in `schema_migrations`")
        .expect_stderr("`migrate force <version>`");
    assert_eq!(fingerprint(&db), before);
    // `migrate status` names the dirty version, and shows a migration just
    // made by `migrate new` as empty rather than failing on it.
    ws.migrations(&[("000006_wip.up.sql", "")]);
    let status = ws.run(&["migrate", "status"]);
    status
        .expect_code(3)
        .expect_stderr("golang-migrate records version 4 as dirty");
    assert!(status.stdout().contains("1 empty"), "{}", status.stdout());
    std::fs::remove_file(ws.path().join("migrations/000006_wip.up.sql")).unwrap();
    golang_at(&db, 4, false);
    ws.run(&["migrate"]).expect_code(0);
    assert_eq!(
        psql(&db, "SELECT version || ' ' || dirty FROM schema_migrations"),
        "5 false"
    );
}

/// Flyway's checksum computed apart from snapguard's code: Python's zlib
/// CRC-32 over the file's lines without terminators, as a signed int.
fn flyway_checksum(path: &std::path::Path) -> i32 {
    let out = common::run_ok(
        Command::new("python3")
            .args([
                "-c",
                "import sys, zlib\n\
             text = open(sys.argv[1], encoding='utf-8-sig', newline='').read()\n\
             crc = 0\n\
             for line in text.splitlines():\n    crc = zlib.crc32(line.encode('utf-8'), crc)\n\
             print(crc - (1 << 32) if crc >= (1 << 31) else crc)",
            ])
            .arg(path),
    );
    out.trim().parse().unwrap()
}

#[test]
fn flyway_database_is_adopted_with_its_checksums_and_kept_in_its_format() {
    let db = create_db("native_flyway");
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[
        // Windows line endings: Flyway's checksum ignores them.
        ("V1__Create_users.sql", &USERS.replace('\n', "\r\n")),
        ("V1_1__Add_name.sql", NAME),
        (
            "R__users_view.sql",
            "CREATE OR REPLACE VIEW users_view AS SELECT id FROM users;\n",
        ),
    ]);
    let migrations = ws.path().join("migrations");
    let sum = |f: &str| flyway_checksum(&migrations.join(f));
    // What Flyway leaves after `migrate`: its table, then a row per script.
    psql(
        &db,
        &format!(
            "{USERS}{NAME}CREATE VIEW users_view AS SELECT id FROM users;
             CREATE TABLE flyway_schema_history (
                 installed_rank INT NOT NULL, version VARCHAR(50), description VARCHAR(200) NOT NULL,
                 type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, checksum INTEGER,
                 installed_by VARCHAR(100) NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT now(),
                 execution_time INTEGER NOT NULL, success BOOLEAN NOT NULL,
                 CONSTRAINT flyway_schema_history_pk PRIMARY KEY (installed_rank));
             INSERT INTO flyway_schema_history VALUES
                 (1, '1', 'Create users', 'SQL', 'V1__Create_users.sql', {}, 'app', now(), 5, true),
                 (2, '1.1', 'Add name', 'SQL', 'V1_1__Add_name.sql', {}, 'app', now(), 3, true),
                 (3, NULL, 'users view', 'SQL', 'R__users_view.sql', {}, 'app', now(), 2, true);",
            sum("V1__Create_users.sql"),
            sum("V1_1__Add_name.sql"),
            sum("R__users_view.sql"),
        ),
    );
    assert_eq!(
        states(&ws),
        [
            "1 applied flyway_schema_history",
            "1_1 applied flyway_schema_history",
            "R__users_view applied flyway_schema_history"
        ]
    );

    ws.migrations(&[
        ("V2__Index_email.sql", INDEX),
        ("V3__Backfill.sql", BACKFILL),
        // A changed repeatable runs again, as Flyway would run it.
        (
            "R__users_view.sql",
            "CREATE OR REPLACE VIEW users_view AS SELECT id, email FROM users;\n",
        ),
    ]);
    migrate_applies(&ws, 3);
    // The rows Flyway itself would have written: next rank, its version
    // spelling, description, script and checksum.
    assert_eq!(
        psql(
            &db,
            "SELECT string_agg(concat_ws('|', installed_rank, version, description, type, script, checksum, success), ',' ORDER BY installed_rank) \
             FROM flyway_schema_history WHERE installed_rank > 3"
        ),
        format!(
            "4|2|Index email|SQL|V2__Index_email.sql|{}|t,5|3|Backfill|SQL|V3__Backfill.sql|{}|t,6|users view|SQL|R__users_view.sql|{}|t",
            sum("V2__Index_email.sql"),
            sum("V3__Backfill.sql"),
            sum("R__users_view.sql")
        )
    );
    assert!(
        states(&ws).iter().all(|s| s.contains(" applied ")),
        "{:?}",
        states(&ws)
    );

    // A failed row stops snapguard as it stops Flyway.
    psql(
        &db,
        "UPDATE flyway_schema_history SET success = false WHERE version = '3'",
    );
    ws.migrations(&[("V4__More.sql", "CREATE TABLE more (x int);\n")]);
    ws.run(&["migrate"])
        .expect_code(3)
        .expect_stderr(
            "Flyway records version 3 as failed (success = false) in `flyway_schema_history`",
        )
        .expect_stderr("`flyway repair`");
    assert_eq!(psql(&db, "SELECT to_regclass('more') IS NULL"), "t");
}

#[test]
fn a_new_database_gets_the_native_table_unless_told_otherwise() {
    // Starting fresh with a dbmate folder: the table dbmate would create is
    // there afterwards, so the team can switch back to dbmate.
    let db = create_db("native_fresh");
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[(
        "20240101000000_create_users.sql",
        &format!("-- migrate:up\n{USERS}"),
    )]);
    ws.run(&["migrate"]).expect_code(0);
    assert_eq!(public_tables(&db), "schema_migrations,users");
    assert_eq!(
        psql(&db, "SELECT version FROM schema_migrations"),
        "20240101000000"
    );

    // `read`: what the table says counts, but it is never written.
    let db = create_db("native_read_only");
    let ws = Workspace::for_db(&db, "  native_history: read\n");
    ws.migrations(&[(
        "20240101000000_create_users.sql",
        &format!("-- migrate:up\n{USERS}"),
    )]);
    ws.run(&["migrate"]).expect_code(0);
    assert_eq!(public_tables(&db), "users");

    // A `schema_migrations` that is not the format's own (golang-migrate's,
    // for a dbmate folder it would be fine; Rails' lacks `dirty` for a
    // golang-migrate folder) is named, and nothing is applied.
    let db = create_db("native_wrong_table");
    psql(
        &db,
        "CREATE TABLE schema_migrations (version varchar PRIMARY KEY)",
    );
    let ws = Workspace::for_db(&db, "");
    ws.migrations(&[("000001_create_users.up.sql", USERS)]);
    ws.run(&["migrate"])
        .expect_code(3)
        .expect_stderr("`schema_migrations` exists but is not golang-migrate's history table: it has no column(s) dirty");
    assert_eq!(public_tables(&db), "schema_migrations");
    let off = Workspace::for_db(&db, "  native_history: ignore\n");
    off.migrations(&[("000001_create_users.up.sql", USERS)]);
    off.run(&["migrate"]).expect_code(0);
    assert_eq!(public_tables(&db), "schema_migrations,users");
}
