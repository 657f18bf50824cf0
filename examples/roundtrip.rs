//! The embedded default: a snapshot-and-restore round trip on a throwaway
//! local PostgreSQL and a local-directory store, no cloud account needed.
//!
//! It seeds a small shop database, takes a snapshot, "breaks" the database
//! the way a bad deploy would, restores the snapshot with the same code path
//! as `snapguard restore`, and shows that the data is back.
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

async fn snapguard(args: &[&str]) {
    let cli = Cli::parse_from(std::iter::once("snapguard").chain(args.iter().copied()));
    if let Err(e) = snapguard::app::run(cli).await {
        eprintln!("error: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            eprintln!("caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(e.exit_code());
    }
}

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

    let store = tempfile::tempdir().expect("a temporary store");
    let store_url = format!("file://{}", store.path().display());
    let url = server.url("shop");
    let base = [
        "--database-url",
        url.as_str(),
        "--store",
        store_url.as_str(),
    ];

    println!("\n== snapguard snapshot");
    snapguard(&[&base[..], &["snapshot"]].concat()).await;

    println!("\n== a bad deploy: orders deleted, a table dropped");
    psql(
        &server,
        "shop",
        &[
            "-c",
            "DELETE FROM billing.orders WHERE id % 2 = 0; DROP VIEW billing.user_totals",
        ],
    );
    println!("   now: {}", counts(&server));

    println!("\n== snapguard snapshots list");
    snapguard(&[&base[..], &["snapshots", "list"]].concat()).await;

    println!("\n== snapguard restore latest --yes");
    snapguard(&[&base[..], &["restore", "latest", "--yes"]].concat()).await;
    println!("\n   after the restore: {}", counts(&server));
    let view = psql(
        &server,
        "shop",
        &["-c", "SELECT count(*) FROM billing.user_totals"],
    );
    println!("   billing.user_totals is back with {view} rows");
    println!("\nDone. The server and the store are removed on exit.");
}
