//! The migrator's overhead (DESIGN section 9): applying 500 small
//! migrations with `snapguard migrate` against running the same SQL through
//! one `psql` session (a transaction per migration) and through one `psql
//! -1` per file, interleaved in one run, on a fresh database each time:
//! medians with min–max.
//!
//! Run it with `scripts/bench migrate` or `cargo bench --bench migrate --
//! [--runs 5] [--count 500]`.

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

/// (median, min, max).
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let (mut runs, mut count) = (5usize, 500usize);
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
    let per_file = || -> f64 {
        let started = Instant::now();
        for i in 1..=count {
            let file = dir.join(format!("{i:04}_step.sql"));
            let out = Command::new(pg.bin_dir().join("psql"))
                .args(["-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d"])
                .arg(pg.url("bench_migrate"))
                .arg("-f")
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        started.elapsed().as_secs_f64()
    };
    let (mut base, mut files, mut per, mut one) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        eprintln!("{count} migrations, run {}/{runs}…", run + 1);
        fresh_database();
        base.push(psql());
        fresh_database();
        per.push(snapguard("per-migration"));
        fresh_database();
        files.push(per_file());
        fresh_database();
        one.push(snapguard("all"));
    }
    // Each run's ratio against the psql session of the same run.
    let ratio = |of: &[f64]| spread(of.iter().zip(&base).map(|(a, b)| a / b).collect());
    let row = |name: &str, of: &[f64]| {
        let (median, min, max) = spread(of.to_vec());
        let (r, rmin, rmax) = ratio(of);
        println!(
            "  {name:<52} {median:>6.2} s ({min:.2}–{max:.2})  {r:.2} × psql ({rmin:.2}–{rmax:.2})"
        );
    };
    println!(
        "migrator overhead: {count} small migrations, median of {runs} interleaved runs (min–max)"
    );
    row("psql -f (one session, a transaction per migration)", &base);
    row("psql -1 -f per file (a session per migration)", &files);
    row("snapguard migrate, transaction: per-migration", &per);
    row("snapguard migrate, transaction: all", &one);
    println!("  target: snapguard per-migration ≤ 1.3 × the psql session");
}
