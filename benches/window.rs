//! The maintenance window per `snapshot.offsite` policy: a deploy with one
//! trivial migration on the benchmark database, its window (maintenance on
//! → off, the report's `downtime_seconds`) beside `pg_dump -Fc -Z0 >
//! /dev/null` of the same database (the dump floor) and the local clone
//! (`CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY`), each measured in
//! the same run after a `sync` (and `pg_dump -Fd -j 2`, the parallel dump
//! a snapshot without a clone could use), the policies in a rotating order so that no
//! one always runs first. Targets for `after`: window ≤ clone + migration
//! + 1 s, and ≤ 0.25 × the dump floor at the larger size.
//!
//! Run it with `scripts/bench window [--scales 10,40] [--runs 5]`.

use std::process::Command;
use std::time::Instant;

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/deploys.rs"]
mod deploys;
mod support;

use deploys::step_seconds;
use support::{Args, build_database, dump_floor, median, parse_args, spread};

const POLICIES: [&str; 3] = ["before-migrate", "before-maintenance-off", "after"];

fn main() {
    let Args { scales, runs, .. } = parse_args(
        "window",
        Args {
            scales: vec![10, 40],
            runs: 5,
            jobs: 2,
        },
    );
    let pg = common::pg();
    let (s3, work) = deploys::setup();
    let dir = work.path();
    let mut n = 0usize;
    let mut deploy = |policy: &str| -> serde_json::Value {
        n += 1;
        std::fs::write(
            dir.join("snapguard.yml"),
            format!(
                "database:\n  url: {}\nstore:\n  url: s3://bench/window\n  endpoint: {}\n  path_style: true\n  region: us-east-1\nsnapshot:\n  local_clone: always\n  offsite: {policy}\nmigrations:\n  dir: migrations\nmaintenance:\n  - file: {{ path: maintenance.txt }}\n",
                pg.url("bench"),
                s3.endpoint
            ),
        )
        .unwrap();
        let _ = Command::new("sync").status();
        deploys::deploy(dir, &s3, n, 0)
    };
    let step = |report: &serde_json::Value, name: &str| step_seconds(report, name).unwrap_or(0.0);

    let mut out = Vec::new();
    for &scale in &scales {
        eprintln!("building the scale-{scale} database…");
        build_database(pg, scale);
        let size: u64 = common::psql("bench", "SELECT pg_database_size('bench')")
            .parse()
            .unwrap();
        let (mut floor, mut clone, mut migrate) = (vec![], vec![], vec![]);
        let mut parallel = vec![];
        let (mut single_local, mut directory_local) = (vec![], vec![]);
        let mut window = [vec![], vec![], vec![]];
        let mut upload = vec![];
        for run in 0..runs {
            eprintln!("scale {scale}, run {}/{runs}…", run + 1);
            floor.push(dump_floor(common::pg()));
            parallel.push(parallel_dump(dir));
            single_local.push(timed_shell(
                dir,
                "pg_dump -Fc -Z0 bench | zstd -1 -q > single.zst && rm single.zst",
            ));
            directory_local.push(timed_shell(
                dir,
                "pg_dump -Fd -Z0 -j 2 -f dir.d bench && zstd -1 -q -T2 --rm dir.d/* && rm -r dir.d",
            ));
            clone.push(clone_time());
            for k in 0..POLICIES.len() {
                let i = (run + k) % POLICIES.len();
                let report = deploy(POLICIES[i]);
                window[i].push(report["downtime_seconds"].as_f64().unwrap());
                if POLICIES[i] == "after" {
                    migrate.push(step(&report, "migrate"));
                    upload.push(step(&report, "offsite snapshot"));
                }
            }
        }
        let f = median(floor.clone());
        let c = median(clone.clone());
        let m = median(migrate.clone());
        out.push(format!(
            "scale {scale} ({:.2} GB), medians of {runs} runs (min–max)",
            size as f64 / 1e9
        ));
        out.push(format!(
            "  dump floor pg_dump -Fc -Z0 > /dev/null   {f:>6.2} s ({})",
            spread(&floor)
        ));
        out.push(format!(
            "  parallel dump pg_dump -Fd -Z0 -j 2 (files) {:>6.2} s ({}) = {:.2} × floor",
            median(parallel.clone()),
            spread(&parallel),
            median(parallel.clone()) / f
        ));
        out.push(format!(
            "  to a local compressed archive: single stream (pg_dump -Fc -Z0 | zstd -1) {:.2} s ({}), directory (pg_dump -Fd -Z0 -j 2, then zstd -1 -T2 per file) {:.2} s ({}) = {:.2} × single",
            median(single_local.clone()),
            spread(&single_local),
            median(directory_local.clone()),
            spread(&directory_local),
            median(directory_local.clone()) / median(single_local.clone())
        ));
        out.push(format!(
            "  local clone (FILE_COPY)                   {c:>6.2} s ({})",
            spread(&clone)
        ));
        out.push(format!(
            "  migrate step (one trivial migration)      {m:>6.2} s ({})",
            spread(&migrate)
        ));
        for (i, policy) in POLICIES.iter().enumerate() {
            let w = median(window[i].clone());
            out.push(format!(
                "  window, offsite: {policy:<22} {w:>6.2} s ({}) = {:.2} × floor",
                spread(&window[i]),
                w / f
            ));
        }
        let after = median(window[2].clone());
        out.push(format!(
            "  after: window {after:.2} s vs clone + migrate + 1 s = {:.2} s ({}); {:.2} × floor (target ≤ 0.25 at the larger size); the upload went on {:.2} s ({}) after maintenance off",
            c + m + 1.0,
            if after <= c + m + 1.0 { "met" } else { "missed" },
            after / f,
            median(upload.clone()),
            spread(&upload)
        ));
    }
    println!();
    for line in out {
        println!("{line}");
    }
}

/// `pg_dump -Fd -Z0 -j 2` into a directory (one file per table, as a
/// parallel snapshot would stream them), timed after a `sync`: whether a
/// parallel dump beats the single stream's floor on this machine.
fn parallel_dump(dir: &std::path::Path) -> f64 {
    let pg = common::pg();
    let out = dir.join("parallel.dir");
    let _ = std::fs::remove_dir_all(&out);
    let _ = Command::new("sync").status();
    let started = Instant::now();
    common::run_ok(
        Command::new(pg.bin_dir().join("pg_dump"))
            .args(["-Fd", "-Z0", "-j", "2", "-f"])
            .arg(&out)
            .arg(pg.url("bench")),
    );
    let seconds = started.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&out).unwrap();
    seconds
}

/// `script` under `sh -c` in `dir` with the benchmark server's libpq
/// variables, timed after a `sync`.
fn timed_shell(dir: &std::path::Path, script: &str) -> f64 {
    let pg = common::pg();
    let _ = Command::new("sync").status();
    let started = Instant::now();
    common::run_ok(
        Command::new("sh")
            .args(["-c", script])
            .current_dir(dir)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    pg.bin_dir().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .envs(pg.conn_info("bench").libpq_env()),
    );
    started.elapsed().as_secs_f64()
}

/// `CREATE DATABASE … TEMPLATE bench STRATEGY FILE_COPY`, timed after a
/// `sync`, then dropped.
fn clone_time() -> f64 {
    common::psql("postgres", "DROP DATABASE IF EXISTS bench_clone");
    let _ = Command::new("sync").status();
    let started = Instant::now();
    common::psql(
        "postgres",
        "CREATE DATABASE bench_clone TEMPLATE bench STRATEGY FILE_COPY",
    );
    let seconds = started.elapsed().as_secs_f64();
    common::psql("postgres", "DROP DATABASE bench_clone");
    seconds
}
