//! Compare checks stay in bounded memory: `snapguard verify` with compare
//! checks over 1,000,000 rows (both row orders), timed, with the peak
//! resident memory of the process.
//!
//! Run it with `scripts/bench checks` or `cargo bench --bench checks -- [--rows N]`.

use std::process::Command;
use std::time::Instant;

// The same throwaway PostgreSQL as the tests.
#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let mut rows = 1_000_000u64;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rows" => rows = it.next().expect("--rows N").parse().expect("a number"),
            "--bench" => {}
            other => panic!("unknown argument `{other}`; expected --rows N"),
        }
    }
    let pg = common::pg();
    common::psql("postgres", "DROP DATABASE IF EXISTS bench_checks");
    common::psql("postgres", "CREATE DATABASE bench_checks");
    common::psql(
        "bench_checks",
        &format!(
            "CREATE TABLE users (id bigint PRIMARY KEY, data jsonb);
             INSERT INTO users SELECT i, jsonb_build_object('name', 'user ' || i, 'logins', i % 1000, 'note', md5(i::text))
             FROM generate_series(1, {rows}) i"
        ),
    );
    common::psql("bench_checks", "VACUUM ANALYZE users");
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("snapguard.yml"),
        format!(
            "database:\n  url: {}\nchecks:\n  timeout: 10m\n  compare:\n    - name: exact_order\n      before: SELECT id, data->>'name', data->>'note' FROM users ORDER BY id\n    - name: any_order\n      before: SELECT id, data->>'name', data->>'note' FROM users\n      after: SELECT id, data->>'name', data->>'note' FROM users ORDER BY id DESC\n      order: any\n",
            pg.url("bench_checks")
        ),
    )
    .unwrap();
    let rss = tempfile::NamedTempFile::new().unwrap();
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(rss.path())
        .arg(env!("CARGO_BIN_EXE_snapguard"))
        .args(["verify", "--json"])
        .current_dir(work.path())
        .env("CI", "true")
        .output()
        .expect("run /usr/bin/time (apt-get install time)");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "verify failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let peak_kib: u64 = std::fs::read_to_string(rss.path())
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!(
        "compare checks over {rows} rows (each side read once, the before side spilled to a temporary file)"
    );
    for r in results.as_array().unwrap() {
        println!(
            "  {:<28} {:<6} {:>7.2} s",
            r["name"].as_str().unwrap(),
            if r["passed"] == true { "ok" } else { "FAIL" },
            r["seconds"].as_f64().unwrap()
        );
    }
    println!(
        "  snapguard verify in all: {seconds:.2} s, peak resident memory {:.1} MiB",
        peak_kib as f64 / 1024.0
    );
}
