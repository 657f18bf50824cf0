//! The embedded default: snapshot, migrate, restore on a throwaway local
//! PostgreSQL and a local-directory store, no cloud account needed.
//!
//! It seeds a small shop database, takes a snapshot, runs a release's
//! migrations (a data migration that deletes too much, then one that fails
//! on the server), restores the snapshot with the same code path as
//! `snapguard restore`, and shows that the data is back.
//!
//! Run it with `scripts/demo` (which installs PostgreSQL if it is missing).

use std::path::Path;

use clap::Parser;
use snapguard::cli::Cli;
use snapguard::ephemeral::{EphemeralOptions, EphemeralServer};

fn psql(server: &EphemeralServer, db: &str, args: &[&str]) -> String {
    server.psql(db, args).unwrap_or_else(|e| panic!("{e}"))
}

fn counts(server: &EphemeralServer) -> String {
    psql(
        server,
        "shop",
        &[
            "-c",
            "SELECT (SELECT count(*) FROM users) || ' users, ' || (SELECT count(*) FROM billing.orders) || ' orders'",
        ],
    )
}

/// Runs a snapguard command in-process; prints its error chain like the
/// binary and returns its exit code.
async fn snapguard(args: &[&str]) -> i32 {
    let cli = Cli::parse_from(std::iter::once("snapguard").chain(args.iter().copied()));
    match snapguard::app::run(cli).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                eprintln!("caused by: {cause}");
                source = cause.source();
            }
            e.exit_code()
        }
    }
}

/// Stops the demo when a step that must succeed did not.
fn must(code: i32) {
    if code != 0 {
        std::process::exit(code);
    }
}

/// The release's migrations: the first deletes more than it should, the
/// second fails on the server.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "20261121090000_archive_old_orders.sql",
        "-- Meant to archive old orders; the condition is wrong.\nDELETE FROM billing.orders WHERE id % 2 = 0;\nDROP VIEW billing.user_totals;\n",
    ),
    (
        "20261121090100_require_order_note.sql",
        "ALTER TABLE billing.orders ADD COLUMN note text;\n-- Fails: existing rows have no note.\nALTER TABLE billing.orders ALTER COLUMN note SET NOT NULL;\n",
    ),
];

#[tokio::main]
async fn main() {
    snapguard::logging::init(snapguard::logging::LogFormat::Auto, 0);
    println!("== starting a throwaway PostgreSQL");
    let server = EphemeralServer::start(&EphemeralOptions::default()).expect("start PostgreSQL");
    psql(&server, "postgres", &["-c", "CREATE DATABASE shop"]);
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed.sql");
    psql(&server, "shop", &["-f", &seed.display().to_string()]);
    println!(
        "   PostgreSQL {} on port {}; database `shop`: {}",
        server.major(),
        server.port(),
        counts(&server)
    );

    let work = tempfile::tempdir().expect("a temporary directory");
    let migrations = work.path().join("migrations");
    std::fs::create_dir_all(&migrations).expect("create the migrations folder");
    for (name, sql) in MIGRATIONS {
        std::fs::write(migrations.join(name), sql).expect("write a migration");
    }
    let config = work.path().join("snapguard.yml");
    std::fs::write(
        &config,
        format!(
            "database:\n  url: {}\nstore:\n  url: file://{}/store\nmigrations:\n  dir: migrations\n",
            server.url("shop"),
            work.path().display()
        ),
    )
    .expect("write snapguard.yml");
    let config = config.display().to_string();
    let run = |args: &[&'static str]| {
        let args: Vec<&str> = ["--config", config.as_str()]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        async move { snapguard(&args).await }
    };

    println!("\n== snapguard snapshot");
    must(run(&["snapshot"]).await);

    println!("\n== snapguard migrate --dry-run");
    must(run(&["migrate", "--dry-run"]).await);

    println!("\n== snapguard migrate: a bad release");
    let code = run(&["migrate"]).await;
    println!(
        "   snapguard migrate exited with {code}; now: {}",
        counts(&server)
    );

    println!("\n== snapguard migrate status");
    run(&["migrate", "status"]).await;

    println!("\n== snapguard snapshots list");
    run(&["snapshots", "list"]).await;

    println!("\n== snapguard restore latest --yes");
    must(run(&["restore", "latest", "--yes"]).await);
    println!("\n   after the restore: {}", counts(&server));
    let view = psql(
        &server,
        "shop",
        &["-c", "SELECT count(*) FROM billing.user_totals"],
    );
    println!("   billing.user_totals is back with {view} rows");
    println!("\nDone. The server and the store are removed on exit.");
}
