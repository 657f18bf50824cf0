//! The example apps of DESIGN section 10 (`examples/`): each is rehearsed
//! as its README says and gives the result the README promises, and the
//! variant its README warns about fails the way it says. Each test works on
//! a copy of the example, so the source tree is never written to.

mod common;

use std::path::Path;

use common::*;

/// A copy of `examples/<name>` to run in.
fn example(name: &str) -> Workspace {
    let ws = Workspace::new("");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name),
        ws.path(),
    );
    ws
}

/// Replaces `from` (which must be there) with `to` in the copy's `file`.
fn edit(ws: &Workspace, file: &str, from: &str, to: &str) {
    let path = ws.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "`{from}` not in {file}");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

fn check<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {:#}", r["checks"]))
}

fn all_checks_passed(r: &serde_json::Value) -> bool {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["passed"] == true)
}

#[test]
fn rails_release_fails_on_its_data_is_rolled_back_and_ships_once_fixed() {
    const FAILING: &str = "db/migrations/20261120100100_orders_total_nonnegative.sql:4";
    let app = example("rails-release");

    // The dry run on a copy of production names the migration and line.
    rehearse(&app, &["--dump", "seed.sql"])
        .expect_code(8)
        .expect_stderr(FAILING)
        .expect_stderr("violated by some row");
    assert_eq!(report(&app)["outcome"], "failed");

    // "Production": the seed in a database of its own, release v1 live.
    let db = create_db("ex_rails_shop");
    pg().psql(
        &db,
        &["-f", &app.path().join("seed.sql").display().to_string()],
    )
    .unwrap();
    let shell = |script: &str| {
        let status = std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(app.path())
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    };
    shell("sh bin/release deploy v1");
    let current = || std::fs::read_to_string(app.path().join("releases/current")).unwrap();
    let deploy = |release: &str, env: &[(&str, &str)]| {
        Run(app
            .snapguard()
            .env("DATABASE_URL", pg().url(&db))
            .envs(env.iter().copied())
            .args(["deploy", "--release", release])
            .output()
            .unwrap())
    };
    let maintenance_page = app.path().join("public/system/maintenance.html");

    // The deploy fails at the constraint: the database is as before, v1
    // still live, the maintenance page gone.
    let before = fingerprint(&db);
    deploy("v2", &[])
        .expect_code(4)
        .expect_stderr(FAILING)
        .expect_stderr("deploy failed and was rolled back");
    assert_eq!(fingerprint(&db), before, "the database was not restored");
    assert_eq!(current(), "v1\n");
    assert!(!maintenance_page.exists());

    // With the fix the rehearsal passes (money per customer unchanged) and
    // the deploy ships v2.
    shell("cp fix/20261120100050_move_refunds_out_of_orders.sql db/migrations/");
    rehearse(&app, &["--dump", "seed.sql"]).expect_code(0);
    let r = report(&app);
    assert_eq!(check(&r, "balance_per_customer")["passed"], true);
    assert_eq!(
        migration(&r, "20261120100050_move_refunds_out_of_orders.sql")["rows"],
        114,
        "57 refunds copied and 57 orders deleted"
    );
    deploy("v2", &[]).expect_code(0);
    assert_eq!(current(), "v2\n");
    assert_eq!(psql(&db, "SELECT count(*) FROM refunds"), "57");
    assert!(!maintenance_page.exists());

    // v3 switches, then fails to boot: `release.rollback` puts v2 back.
    // The compare check was v2's (orders became orders + refunds); with v2
    // shipped the team drops it, as the README says.
    let config = std::fs::read_to_string(app.path().join("snapguard.yml")).unwrap();
    let (head, tail) = config.split_once("  compare:\n").unwrap();
    let rest = &tail[tail.find("release:\n").unwrap()..];
    std::fs::write(app.path().join("snapguard.yml"), format!("{head}{rest}")).unwrap();
    let v2 = fingerprint(&db);
    deploy(
        "v3",
        &[(
            "SNAPGUARD_RELEASE_COMMAND",
            "sh bin/release deploy \"$SNAPGUARD_RELEASE\" && echo v3 does not boot >&2 && exit 1",
        )],
    )
    .expect_code(4)
    .expect_stderr("v3 does not boot");
    assert_eq!(current(), "v2\n");
    assert!(
        std::fs::read_to_string(app.path().join("releases/log"))
            .unwrap()
            .trim_end()
            .ends_with("rollback v2")
    );
    assert_eq!(fingerprint(&db), v2);
    assert!(!maintenance_page.exists());
}

#[test]
fn jsonb_column_repairs_the_bad_rows_and_fails_without_the_repair() {
    let app = example("jsonb-column");
    rehearse(&app, &["--dump", "seed.sql", "--drill"]).expect_code(0);
    let r = report(&app);
    assert_eq!(r["outcome"], "passed");
    assert_eq!(migration(&r, "repair_json_text.sql")["rows"], 792);
    let change = migration(&r, "json_text_to_jsonb.sql");
    assert_eq!(
        change["rewrote"],
        serde_json::json!(["public.accounts", "public.events"])
    );
    assert!(all_checks_passed(&r), "{:#}", r["checks"]);
    assert_eq!(r["drill"]["verified"].as_array().unwrap().len(), 2);

    // Without the repair, the type change fails on the copy, named.
    std::fs::remove_file(
        app.path()
            .join("db/migrations/20261110090000_repair_json_text.sql"),
    )
    .unwrap();
    rehearse(&app, &["--dump", "seed.sql"])
        .expect_code(8)
        .expect_stderr("20261110090100_json_text_to_jsonb.sql:7");
}

#[test]
fn jsonb_normalize_loses_no_value_and_the_compare_check_catches_a_lossy_copy() {
    let app = example("jsonb-normalize");
    rehearse(&app, &["--dump", "seed.sql"]).expect_code(0);
    let r = report(&app);
    assert_eq!(r["outcome"], "passed");
    let group = migration(&r, "3 migrations in one transaction");
    assert_eq!(group["rows"], 39830);
    for name in [
        "stats_survive",
        "achievements_survive",
        "rest_of_data_unchanged",
        "no_moved_keys_left_in_data",
    ] {
        assert_eq!(check(&r, name)["passed"], true, "{name}");
    }

    // Keeping the latest of a double award changes 82 players' dates.
    edit(
        &app,
        "db/migrations/20261118090100_copy_stats_and_achievements.up.sql",
        "(a ->> 'earned_at')::timestamptz;",
        "(a ->> 'earned_at')::timestamptz DESC;",
    );
    rehearse(&app, &["--dump", "seed.sql"])
        .expect_code(8)
        .expect_stderr("`achievements_survive`")
        .expect_stderr("82 only before, 82 only after");
}

#[test]
fn jsonb_gin_index_builds_concurrently_and_the_roll_up_handles_string_tags() {
    let app = example("jsonb-gin-index");
    rehearse(&app, &["--dump", "seed.sql"]).expect_code(0);
    let r = report(&app);
    assert_eq!(r["outcome"], "passed");
    let index = migration(&r, "20261115080000_index_product_metadata.sql");
    let locks = index["locks"].as_array().unwrap();
    assert!(!locks.is_empty(), "the index build was not seen: {index:#}");
    assert!(
        locks
            .iter()
            .all(|l| l["table"] == "public.products" && l["mode"] == "ShareUpdateExclusive"),
        "{index:#}"
    );
    assert_eq!(index["rewrote"], serde_json::json!([]));
    assert!(all_checks_passed(&r), "{:#}", r["checks"]);
    assert_eq!(check(&r, "no_invalid_indexes")["passed"], true);

    // The naive roll-up fails on the rows whose tags are a string.
    edit(
        &app,
        "snapguard.yml",
        "jsonb_array_elements_text(CASE jsonb_typeof(metadata -> 'tags')
                                       WHEN 'array' THEN metadata -> 'tags'
                                       ELSE '[]' END) AS tag",
        "jsonb_array_elements_text(metadata -> 'tags') AS tag",
    );
    rehearse(&app, &["--dump", "seed.sql"])
        .expect_code(8)
        .expect_stderr("`tag_roll_up`")
        .expect_stderr("cannot extract elements from a scalar");
}
