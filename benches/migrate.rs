//! The migrator's overhead (DESIGN section 9): applying 500 small
//! migrations with `snapguard migrate` against running the same SQL through
//! one `psql` session, measured side by side in one run, on a fresh
//! database each time.
//!
//! Run it with `scripts/bench` or `cargo bench --bench migrate -- [--runs 3]
//! [--count 500]`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

// The same throwaway PostgreSQL as the tests.
#[path = "../tests/common/mod.rs"]
mod common;

/// One small migration: a table, an index, a row, a comment: the shape of
/// a typical schema change.
fn migration(i: usize) -> String {
    format!(
        "CREATE TABLE t{i} (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());\n\
         CREATE INDEX t{i}_name ON t{i} (name);\n\
         INSERT INTO t{i} (id, name) VALUES (1, 'row {i}');\n\
         COMMENT ON TABLE t{i} IS 'migration {i}';\n"
    )
}

fn fresh_database() {
    common::psql("postgres", "DROP DATABASE IF EXISTS bench_migrate");
    common::psql("postgres", "CREATE DATABASE bench_migrate");
}

fn timed(cmd: &mut Command) -> f64 {
    let started = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    seconds
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let (mut runs, mut count) = (3usize, 500usize);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().expect("--runs N").parse().expect("a number"),
            "--count" => count = it.next().expect("--count N").parse().expect("a number"),
            "--bench" => {}
            other => panic!("unknown argument `{other}`; expected --runs N, --count N"),
        }
    }
    let pg = common::pg();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("migrations");
    std::fs::create_dir_all(&dir).unwrap();
    let mut all = String::new();
    for i in 1..=count {
        let sql = migration(i);
        std::fs::write(dir.join(format!("{i:04}_step.sql")), &sql).unwrap();
        // psql in autocommit runs each statement in its own transaction;
        // wrapping each file keeps the comparison per migration.
        all.push_str(&format!("BEGIN;\n{sql}COMMIT;\n"));
    }
    std::fs::write(work.path().join("all.sql"), &all).unwrap();
    let config = |mode: &str| {
        format!(
            "database:\n  url: {}\nmigrations:\n  dir: migrations\n  transaction: {mode}\n",
            pg.url("bench_migrate")
        )
    };
    let snapguard = |mode: &str| -> f64 {
        std::fs::write(work.path().join("snapguard.yml"), config(mode)).unwrap();
        timed(
            Command::new(env!("CARGO_BIN_EXE_snapguard"))
                .arg("migrate")
                .current_dir(work.path())
                .env("CI", "true"),
        )
    };
    let psql = || -> f64 {
        timed(
            Command::new(pg.bin_dir().join("psql"))
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
                .arg(pg.url("bench_migrate"))
                .arg("-f")
                .arg(Path::new(work.path()).join("all.sql")),
        )
    };
    let (mut base, mut per, mut one) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        eprintln!("{count} migrations, run {}/{runs}…", run + 1);
        fresh_database();
        base.push(psql());
        fresh_database();
        per.push(snapguard("per-migration"));
        fresh_database();
        one.push(snapguard("all"));
    }
    let (base, per, one) = (median(base), median(per), median(one));
    println!("migrator overhead: {count} small migrations, median of {runs} runs");
    println!("  psql -f (one session, a transaction per migration)   {base:>7.2} s  1.00");
    println!(
        "  snapguard migrate, transaction: per-migration          {per:>7.2} s  {:.2} × psql (target ≤ 2)",
        per / base
    );
    println!(
        "  snapguard migrate, transaction: all                    {one:>7.2} s  {:.2} × psql",
        one / base
    );
}
