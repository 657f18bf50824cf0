//! The local clone on PostgreSQL 18 over a file system that shares blocks:
//! `CREATE DATABASE … STRATEGY FILE_COPY` with `file_copy_method = clone`
//! beside `copy` on the same server and disk, and the maintenance window of
//! an `offsite: after` deploy with one trivial migration under each
//! (`snapshot.clone_method: auto`, which picks `clone` there, and `copy`),
//! A/B interleaved in a rotating order, at each size. Targets (issue 26):
//! the clone under 0.5 s and the window under 1 s at 1 GB and 5 GB.
//!
//! Run it with `scripts/bench clone [--scales 40,200] [--runs 5]`: the
//! script makes and loop-mounts an XFS file system with reflink (as root)
//! and starts the PostgreSQL 18 server on it.

use std::process::Command;
use std::time::Instant;

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/deploys.rs"]
mod deploys;
mod support;

use deploys::step_seconds;
use support::{Args, build_database, median, parse_args, spread};

const METHODS: [&str; 2] = ["clone", "copy"];

fn main() {
    let Args { scales, runs, .. } = parse_args(
        "clone",
        Args {
            scales: vec![40, 200],
            runs: 5,
            jobs: 2,
        },
    );
    let pg = common::pg();
    assert_eq!(pg.major(), 18, "run through `scripts/bench clone`");
    let fs = common::run_ok(
        Command::new("stat")
            .args(["-f", "-c", "%T"])
            .arg(pg.data_dir()),
    );
    eprintln!("PostgreSQL 18 with its data directory on {}", fs.trim());
    let (s3, work) = deploys::setup();
    let dir = work.path();
    let mut n = 0usize;
    let mut deploy = |method: &str| -> serde_json::Value {
        n += 1;
        let setting = if method == "clone" { "auto" } else { "copy" };
        std::fs::write(
            dir.join("snapguard.yml"),
            format!(
                "database:\n  url: {}\n  pg_bin_dir: {}\nstore:\n  url: s3://bench/clone\n  endpoint: {}\n  path_style: true\n  region: us-east-1\nsnapshot:\n  local_clone: always\n  clone_method: {setting}\n  offsite: after\nmigrations:\n  dir: migrations\nmaintenance:\n  - file: {{ path: maintenance.txt }}\n",
                pg.url("bench"),
                pg.bin_dir().display(),
                s3.endpoint
            ),
        )
        .unwrap();
        let _ = Command::new("sync").status();
        let report = deploys::deploy(dir, &s3, n, 0);
        assert_eq!(report["snapshot"]["clone_method"], method, "{report:#}");
        report
    };

    let mut out = Vec::new();
    for &scale in &scales {
        eprintln!("building the scale-{scale} database…");
        build_database(pg, scale);
        let size: u64 = common::psql("bench", "SELECT pg_database_size('bench')")
            .parse()
            .unwrap();
        let mut raw = [vec![], vec![]];
        let mut window = [vec![], vec![]];
        let mut clone_step = [vec![], vec![]];
        let mut snapshot_step = [vec![], vec![]];
        for run in 0..runs {
            eprintln!("scale {scale}, run {}/{runs}…", run + 1);
            for k in 0..METHODS.len() {
                let i = (run + k) % METHODS.len();
                raw[i].push(clone_time(METHODS[i]));
            }
            for k in 0..METHODS.len() {
                let i = (run + k) % METHODS.len();
                let report = deploy(METHODS[i]);
                window[i].push(report["downtime_seconds"].as_f64().unwrap());
                clone_step[i].push(report["snapshot"]["clone_seconds"].as_f64().unwrap());
                snapshot_step[i].push(step_seconds(&report, "snapshot").unwrap());
            }
        }
        out.push(format!(
            "scale {scale} ({:.2} GB) on {}, medians of {runs} runs (min–max)",
            size as f64 / 1e9,
            fs.trim()
        ));
        for (i, method) in METHODS.iter().enumerate() {
            out.push(format!(
                "  file_copy_method = {method:<5}: CREATE DATABASE … TEMPLATE {:>6.3} s ({}); deploy's clone {:>6.3} s ({}) in its snapshot step {:>6.3} s ({}); window (offsite: after, one trivial migration) {:>6.3} s ({})",
                median(raw[i].clone()),
                spread(&raw[i]),
                median(clone_step[i].clone()),
                spread(&clone_step[i]),
                median(snapshot_step[i].clone()),
                spread(&snapshot_step[i]),
                median(window[i].clone()),
                spread(&window[i]),
            ));
        }
        let (c, w) = (median(raw[0].clone()), median(window[0].clone()));
        out.push(format!(
            "  clone: {c:.3} s (target < 0.5 s: {}), {:.1}× faster than copy; window {w:.3} s (target < 1 s: {})",
            if c < 0.5 { "met" } else { "missed" },
            median(raw[1].clone()) / c,
            if w < 1.0 { "met" } else { "missed" },
        ));
    }
    println!();
    for line in out {
        println!("{line}");
    }
}

/// `CREATE DATABASE bench_clone TEMPLATE bench STRATEGY FILE_COPY` with
/// `file_copy_method = method`, timed after a `sync`, then dropped.
fn clone_time(method: &str) -> f64 {
    let pg = common::pg();
    common::psql("postgres", "DROP DATABASE IF EXISTS bench_clone");
    let _ = Command::new("sync").status();
    let set = format!("SET file_copy_method = {method}");
    let started = Instant::now();
    pg.psql(
        "postgres",
        &[
            "-c",
            &set,
            "-c",
            "CREATE DATABASE bench_clone TEMPLATE bench STRATEGY FILE_COPY",
        ],
    )
    .expect("clone");
    let seconds = started.elapsed().as_secs_f64();
    common::psql("postgres", "DROP DATABASE bench_clone");
    seconds
}
