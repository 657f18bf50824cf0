//! Connections as libpq makes them, against the real server: the password
//! from `PGPASSWORD` or a password file, the `PG*` defaults under the
//! keyword form, `options`, several hosts, `target_session_attrs`, and
//! refusals by name. Each case runs `snapshot` (snapguard's own sessions
//! and the `pg_dump` it starts) or `migrate` against it.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

/// A workspace with a local store and a migrations folder, and no
/// `database.url`: each case passes its own.
fn workspace() -> Workspace {
    let ws = Workspace::new("store:\n  url: file://./backups\nmigrations:\n  dir: migrations\n");
    std::fs::create_dir_all(ws.path().join("migrations")).unwrap();
    ws
}

/// Runs `args` with `url` as the database and `env` added.
fn run(ws: &Workspace, url: &str, env: &[(&str, String)], args: &[&str]) -> Run {
    let mut cmd = ws.snapguard();
    cmd.env("SNAPGUARD_DATABASE_URL", url);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run(cmd.args(args).output().unwrap())
}

#[test]
fn the_password_comes_from_the_environment_or_the_password_file() {
    let db = create_db("connect_password");
    let ws = workspace();
    let port = pg().port();
    let without = format!("postgres://postgres@127.0.0.1:{port}/{db}?sslmode=disable");

    let refused = run(&ws, &without, &[], &["snapshot"]);
    assert_ne!(refused.code(), 0);
    assert!(
        refused.stderr().contains("password"),
        "{}",
        refused.stderr()
    );

    let env = [("PGPASSWORD", pg().password().to_owned())];
    run(&ws, &without, &env, &["snapshot"]).expect_code(0);

    let file = ws.path().join("pgpass");
    std::fs::write(
        &file,
        format!(
            "# another server first\nelsewhere:*:*:*:wrong\n127.0.0.1:{port}:{db}:postgres:{}\n",
            pg().password()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = [("PGPASSFILE", file.display().to_string())];
    let from_file = run(&ws, &without, &env, &["snapshot"]);
    from_file.expect_code(0);
    assert!(!from_file.stderr().contains(pg().password()));
    // A file others can read is ignored, as libpq ignores it.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let ignored = run(&ws, &without, &env, &["snapshot"]);
    assert_ne!(ignored.code(), 0);
    assert!(
        ignored.stderr().contains("group or others"),
        "{}",
        ignored.stderr()
    );
}

#[test]
fn the_keyword_form_with_pg_defaults_options_and_several_hosts() {
    let db = create_db("connect_forms");
    psql(&db, "CREATE SCHEMA app");
    let ws = workspace();
    ws.migrations(&[("1_items.sql", "CREATE TABLE items (id int);")]);
    let port = pg().port();
    let env = [
        ("PGHOST", "127.0.0.1".to_owned()),
        ("PGPORT", port.to_string()),
        ("PGUSER", "postgres".to_owned()),
        ("PGPASSWORD", pg().password().to_owned()),
        ("PGSSLMODE", "disable".to_owned()),
    ];
    // Only the database and the session options in the string; the rest
    // from the environment. `search_path` puts the unqualified table in `app`.
    let keywords = format!("dbname={db} options='-c search_path=app'");
    run(&ws, &keywords, &env, &["migrate"]).expect_code(0);
    assert_eq!(
        psql(
            &db,
            "SELECT schemaname FROM pg_tables WHERE tablename = 'items'"
        ),
        "app"
    );
    run(&ws, &keywords, &env, &["snapshot"]).expect_code(0);

    // Two hosts: the first refuses connections, the second is the server;
    // both snapguard and pg_dump go on to the second.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let two = format!(
        "postgresql://postgres:{}@127.0.0.1:{closed_port},127.0.0.1:{port}/{db}?sslmode=disable&target_session_attrs=read-write",
        pg().password()
    );
    run(&ws, &two, &[], &["snapshot"]).expect_code(0);

    // Refused by name, before anything connects.
    for (url, named) in [
        (
            format!("postgres://postgres@127.0.0.1:{port}/{db}?target_session_attrs=standby"),
            "`target_session_attrs`",
        ),
        (
            format!("postgres://postgres@127.0.0.1:{port}/{db}?service=prod"),
            "`service`",
        ),
        (
            format!("host=127.0.0.1 dbname={db} sslpassword=x"),
            "`sslpassword`",
        ),
    ] {
        let refused = run(&ws, &url, &[], &["snapshot"]);
        refused.expect_code(2);
        assert!(
            refused.stderr().contains(named),
            "{url}: {}",
            refused.stderr()
        );
    }
}

/// A connection string of another scheme, in any case, with a password:
/// refused (exit 2) without echoing any of it; under GitHub Actions it is
/// masked before anything parses it.
#[test]
fn a_connection_string_snapguard_cannot_read_is_never_echoed() {
    let ws = workspace();
    for url in [
        "postgresql+psycopg2://app:Sekr3tPw@db.example/shop?sslmode=require",
        "POSTGRES+asyncpg://app:Sekr3tPw@db.example/shop?sslmode=require",
        "host=db.example user=app Sekr3tPw dbname=shop",
    ] {
        for actions in [false, true] {
            let mut cmd = ws.snapguard();
            cmd.args(["--database-url", url, "migrate", "status"]);
            if actions {
                cmd.env("GITHUB_ACTIONS", "true");
            }
            let run = Run(cmd.output().unwrap());
            run.expect_code(2);
            let (out, err) = (run.stdout(), run.stderr());
            let leaks: Vec<&str> = err
                .lines()
                .chain(out.lines())
                .filter(|l| l.contains("Sekr3tPw") && !l.starts_with("::add-mask::"))
                .collect();
            assert!(leaks.is_empty(), "{url}: {leaks:?}");
            assert_eq!(
                run.stderr().contains(&format!("::add-mask::{url}")),
                actions,
                "{}",
                run.stderr()
            );
        }
    }
}
