//! The deploy benchmark: on the benchmark database at two sizes, the
//! rollback by clone swap (target ≤ 3 s whatever the size), the rollback by
//! store restore against `pg_restore -j N` from a local file measured in the
//! same run (target ≤ 1.15 ×), and the downtime a deploy with one trivial
//! migration adds over its snapshot (`snapshot.offsite: before-migrate`,
//! the order whose window holds the snapshot; `benches/window.rs` compares
//! the policies).
//!
//! Run it with `scripts/bench deploy [--scales 10,40] [--jobs 2]`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/deploys.rs"]
mod deploys;
mod support;

use deploys::step_seconds;
use support::{Args, build_database, median, parse_args, spread};

fn main() {
    let Args { scales, runs, jobs } = parse_args(
        "deploy",
        Args {
            scales: vec![10, 40],
            runs: 1,
            jobs: 2,
        },
    );
    let pg = common::pg();
    let (s3, work) = deploys::setup();
    let dir = work.path();
    let config = |clone: &str| {
        format!(
            "database:\n  url: {}\nstore:\n  url: s3://bench/deploys\n  endpoint: {}\n  path_style: true\n  region: us-east-1\nsnapshot:\n  restore_jobs: {jobs}\n  local_clone: {clone}\n  offsite: before-migrate\nmigrations:\n  dir: migrations\nmaintenance:\n  - file: {{ path: maintenance.txt }}\n",
            pg.url("bench"),
            s3.endpoint
        )
    };
    let deploy = |clone: &str, failing: bool, n: usize| -> serde_json::Value {
        std::fs::write(dir.join("snapguard.yml"), config(clone)).unwrap();
        let _ = std::fs::remove_file(dir.join("migrations/9999_fail.sql"));
        if failing {
            std::fs::write(dir.join("migrations/9999_fail.sql"), "SELECT 1 / 0;\n").unwrap();
        }
        let report = deploys::deploy(dir, &s3, n, if failing { 4 } else { 0 });
        if failing {
            // The database is back; drop the kept failed copy and the
            // migration so the next round starts alike.
            std::fs::remove_file(dir.join(format!("migrations/{n}_trivial.sql"))).unwrap();
            for name in common::databases_like("bench__failed_") {
                common::psql("postgres", &format!("DROP DATABASE \"{name}\""));
            }
        }
        report
    };
    let step = |report: &serde_json::Value, name: &str| -> f64 {
        step_seconds(report, name).unwrap_or_else(|| panic!("no step `{name}` in {report}"))
    };

    let mut n = 0;
    let mut rows = Vec::new();
    let mut ranges = Vec::new();
    for &scale in &scales {
        eprintln!("building the scale-{scale} database…");
        build_database(pg, scale);
        let size: u64 = common::psql("bench", "SELECT pg_database_size('bench')")
            .parse()
            .unwrap();
        let (mut snapshot, mut downtime, mut swap, mut store_restore, mut local) =
            (vec![], vec![], vec![], vec![], vec![]);
        for run in 0..runs {
            eprintln!("scale {scale}, run {}/{runs}…", run + 1);
            n += 1;
            let ok = deploy("always", false, n);
            snapshot.push(step(&ok, "snapshot"));
            downtime.push(ok["downtime_seconds"].as_f64().unwrap());
            n += 1;
            for (clone, strategy, into) in [
                ("always", "clone swap", &mut swap),
                ("never", "store restore", &mut store_restore),
            ] {
                n += 1;
                let report = deploy(clone, true, n);
                let used = report["rollback"]["database"].as_str().unwrap_or_default();
                assert!(used.starts_with(strategy), "{used}");
                into.push(step(&report, "rollback: database"));
            }
            local.push(pg_restore_local(dir, jobs));
        }
        let added: Vec<f64> = downtime.iter().zip(&snapshot).map(|(d, s)| d - s).collect();
        ranges.push(format!(
            "  scale {scale:>3} min–max: clone swap {}, store restore {}, local pg_restore {}, downtime {}, snapshot step {}, added {}",
            spread(&swap),
            spread(&store_restore),
            spread(&local),
            spread(&downtime),
            spread(&snapshot),
            spread(&added)
        ));
        rows.push((
            scale,
            size,
            median(snapshot),
            median(downtime),
            median(swap),
            median(store_restore),
            median(local),
        ));
    }
    println!("\ndeploy and rollback, medians of {runs} run(s), pg_restore -j {jobs}");
    for (scale, size, snap, down, swap, restore, local) in rows {
        println!("  scale {scale:>3} ({:.2} GB)", size as f64 / 1e9);
        println!("    rollback by clone swap                     {swap:>7.2} s   (target ≤ 3 s)");
        println!(
            "    rollback by store restore (incl. ANALYZE)  {restore:>7.2} s   {:.2} × pg_restore -j {jobs} + ANALYZE from a local file ({local:.2} s; target ≤ 1.15)",
            restore / local
        );
        println!(
            "    deploy, one trivial migration: downtime    {down:>7.2} s   snapshot step {snap:.2} s, added {:.2} s ({:.2} × the snapshot step)",
            down - snap,
            down / snap
        );
    }
    for line in ranges {
        println!("{line}");
    }
}

/// `pg_dump -Fc -Z0` to a local file (untimed), then `createdb` +
/// `pg_restore -j N` + `ANALYZE` timed: what the store restore does,
/// without the store. The rollback includes `ANALYZE` (a restored database
/// without statistics gives production slow plans), so the floor does too.
fn pg_restore_local(dir: &Path, jobs: u32) -> f64 {
    let pg = common::pg();
    let file = dir.join("local.dump");
    common::run_ok(
        Command::new(pg.bin_dir().join("pg_dump"))
            .args(["-Fc", "-Z0", "-f"])
            .arg(&file)
            .arg(pg.url("bench")),
    );
    common::psql("postgres", "DROP DATABASE IF EXISTS bench_local");
    let started = Instant::now();
    common::psql("postgres", "CREATE DATABASE bench_local TEMPLATE template0");
    common::run_ok(
        Command::new(pg.bin_dir().join("pg_restore"))
            .args([
                &format!("-j{jobs}"),
                "--exit-on-error",
                "-d",
                &pg.url("bench_local"),
            ])
            .arg(&file),
    );
    common::psql("bench_local", "ANALYZE");
    let seconds = started.elapsed().as_secs_f64();
    common::psql("postgres", "DROP DATABASE bench_local");
    std::fs::remove_file(file).unwrap();
    seconds
}
