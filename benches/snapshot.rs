//! The performance benchmark (DESIGN section 9): builds a database of a
//! chosen size, runs an S3-compatible server on loopback, and prints medians
//! and ratios against `pg_dump` / `pg_restore` measured in the same run,
//! plus peak memory.
//!
//! Run it with `scripts/bench` (or `cargo bench --bench snapshot -- --help`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

// The same throwaway PostgreSQL and s3s-fs fixtures as the tests.
#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use support::{Args, build_database, median, parse_args, spread};

/// A wall time and the peak resident memory of the measured process.
#[derive(Clone, Copy)]
struct Sample {
    seconds: f64,
    peak_kib: Option<u64>,
}

/// Runs `script` under `sh -c` after a `sync`, timed, with GNU time recording the peak RSS
/// of the main process (the pipeline's first command when it is a pipeline
/// does not matter: we only read peaks for single commands).
fn measure(script: &str, env: &[(&str, String)], cwd: &Path) -> Sample {
    let rss = tempfile::NamedTempFile::new().unwrap();
    // The previous command's dirty pages are written out untimed, so that
    // no command pays for the one before it.
    let _ = Command::new("sync").status();
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(rss.path())
        .args(["sh", "-c", script])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run /usr/bin/time (apt-get install time)");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "`{script}` failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peak_kib = std::fs::read_to_string(rss.path())
        .ok()
        .and_then(|s| s.lines().last()?.trim().parse().ok());
    Sample { seconds, peak_kib }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let args = parse_args(
        "snapshot",
        Args {
            scales: vec![40],
            runs: 3,
            jobs: 2,
        },
    );
    let pg = common::pg();
    let s3 = common::S3Server::start();
    s3.bucket("bench");
    let work = tempfile::tempdir().unwrap();
    let bin = pg.bin_dir().display().to_string();
    let snapguard = env!("CARGO_BIN_EXE_snapguard");
    let env: Vec<(&str, String)> = vec![
        (
            "PATH",
            format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()),
        ),
        ("PGHOST", "127.0.0.1".into()),
        ("PGPORT", pg.port().to_string()),
        ("PGUSER", "postgres".into()),
        ("PGPASSWORD", pg.password().into()),
        ("AWS_ACCESS_KEY_ID", s3.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", s3.secret_key.clone()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("CI", "true".into()),
    ];
    let config = |compression: &str, level: u32| {
        format!(
            "database:\n  url: {}\nstore:\n  url: s3://bench/snapguard\n  endpoint: {}\n  path_style: true\nsnapshot:\n  compression: {compression}\n  compression_level: {level}\n  restore_jobs: {}\n",
            pg.url("bench"),
            s3.endpoint,
            args.jobs
        )
    };
    std::fs::write(work.path().join("snapguard.yml"), config("zstd", 1)).unwrap();
    let aws = which("aws");

    let mut memory_rows = Vec::new();
    for &scale in &args.scales {
        eprintln!("building the scale-{scale} database…");
        build_database(pg, scale);
        let size = common::psql("bench", "SELECT pg_database_size('bench')")
            .parse::<u64>()
            .unwrap();
        let mut floor = Vec::new();
        let mut default_dump = Vec::new();
        let mut scripted = Vec::new();
        let mut snap = Vec::new();
        let mut snap_peak = Vec::new();
        let mut local_restore = Vec::new();
        let mut sg_restore = Vec::new();
        let mut restore_peak = Vec::new();
        let mut stored = 0u64;
        let mut default_size = 0u64;
        for run in 0..args.runs {
            eprintln!("scale {scale}, run {}/{}…", run + 1, args.runs);
            floor.push(measure("pg_dump -Fc -Z0 bench > /dev/null", &env, work.path()).seconds);
            default_dump
                .push(measure("pg_dump -Fc bench > default.dump", &env, work.path()).seconds);
            default_size = std::fs::metadata(work.path().join("default.dump"))
                .unwrap()
                .len();
            if let Some(aws) = &aws {
                let script = format!(
                    "pg_dump -Fc bench | {aws} --endpoint-url {} s3 cp - s3://bench/scripted.dump",
                    s3.endpoint
                );
                scripted.push(measure(&script, &env, work.path()).seconds);
            }
            let s = measure(
                &format!("{snapguard} snapshot > snapshot.out"),
                &env,
                work.path(),
            );
            snap.push(s.seconds);
            snap_peak.push(s.peak_kib.unwrap_or(0));
            let (id, object) = last_snapshot(work.path(), &s3);
            stored = std::fs::metadata(&object).unwrap().len();

            // The same archive, decompressed to a local file, restored by pg_restore alone.
            let plain = work.path().join("same.dump");
            let unpack = Command::new("zstd")
                .args(["-d", "-q", "-f", "-o"])
                .arg(&plain)
                .arg(&object)
                .status()
                .unwrap();
            assert!(unpack.success(), "zstd -d failed (apt-get install zstd)");
            common::psql("postgres", "DROP DATABASE IF EXISTS local_restore");
            common::psql(
                "postgres",
                "CREATE DATABASE local_restore TEMPLATE template0",
            );
            local_restore.push(
                measure(
                    &format!("pg_restore -j {} -d local_restore same.dump", args.jobs),
                    &env,
                    work.path(),
                )
                .seconds,
            );
            common::psql("postgres", "DROP DATABASE local_restore");

            common::psql("postgres", "DROP DATABASE IF EXISTS sg_restore");
            let r = measure(
                &format!("{snapguard} restore {id} --to sg_restore --yes --no-analyze"),
                &env,
                work.path(),
            );
            sg_restore.push(r.seconds);
            restore_peak.push(r.peak_kib.unwrap_or(0));
            common::psql("postgres", "DROP DATABASE sg_restore");
        }
        let f = median(floor.clone());
        println!();
        println!(
            "scale {scale}: database {:.2} GB, {} runs (medians), pg_restore -j {}",
            size as f64 / 1e9,
            args.runs,
            args.jobs
        );
        println!(
            "{:<58} {:>9} {:>8}  target  (min–max seconds)",
            "what", "seconds", "ratio"
        );
        let row = |what: &str, v: &[f64], base: f64, target: &str| {
            let s = median(v.to_vec());
            println!(
                "{what:<58} {s:>9.2} {:>8.2}  {target}  ({})",
                s / base,
                spread(v)
            )
        };
        row("pg_dump -Fc -Z0 bench > /dev/null (floor)", &floor, f, "");
        row(
            "pg_dump -Fc bench > file (default compression)",
            &default_dump,
            f,
            "",
        );
        if !scripted.is_empty() {
            row(
                "pg_dump -Fc bench | aws s3 cp - s3://… (scripted today)",
                &scripted,
                f,
                "",
            );
        } else {
            println!(
                "{:<58} (aws CLI not installed: skipped)",
                "pg_dump -Fc bench | aws s3 cp - s3://…"
            );
        }
        row(
            "snapguard snapshot → S3 (zstd 1, the default)",
            &snap,
            f,
            "≤ 1.15 × floor",
        );
        let lr = median(local_restore.clone());
        row(
            &format!(
                "pg_restore -j {} from a local file (same archive)",
                args.jobs
            ),
            &local_restore,
            lr,
            "",
        );
        row(
            "snapguard restore from S3 (--no-analyze)",
            &sg_restore,
            lr,
            "≤ 1.15 × pg_restore",
        );
        println!(
            "{:<58} {:>9} {:>8.2}  ≤ 1.10 ({} vs {} bytes)",
            "stored size vs pg_dump -Fc default",
            "",
            stored as f64 / default_size as f64,
            stored,
            default_size
        );
        let peak = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
        memory_rows.push((scale, size, peak(&snap_peak), peak(&restore_peak)));

        // One run of each compression choice, for the README's table.
        println!(
            "compression survey (one run each): seconds vs floor, stored size vs pg_dump -Fc default"
        );
        for (compression, level) in [
            ("zstd", 1),
            ("zstd", 3),
            ("zstd", 6),
            ("gzip", 1),
            ("none", 0),
        ] {
            std::fs::write(
                work.path().join("snapguard.yml"),
                config(compression, level),
            )
            .unwrap();
            let s = measure(
                &format!("{snapguard} snapshot > snapshot.out"),
                &env,
                work.path(),
            );
            let bytes = std::fs::metadata(last_snapshot(work.path(), &s3).1)
                .unwrap()
                .len();
            println!(
                "  {compression:<5} level {level}: {:>6.2} s ({:.2} × floor), size {:.2} × default",
                s.seconds,
                s.seconds / f,
                bytes as f64 / default_size as f64
            );
        }
        std::fs::write(work.path().join("snapguard.yml"), config("zstd", 1)).unwrap();
    }
    println!();
    println!("peak resident memory (max over runs)");
    for (scale, size, snap, restore) in memory_rows {
        println!(
            "  scale {scale:>3} ({:.2} GB): snapguard snapshot {:.1} MiB, snapguard restore {:.1} MiB  (target ≤ 100 MiB)",
            size as f64 / 1e9,
            mib(snap),
            mib(restore)
        );
    }
}

/// The id printed by the last `snapguard snapshot > snapshot.out`, and
/// where `s3s-fs` keeps its archive.
fn last_snapshot(work: &Path, s3: &common::S3Server) -> (String, std::path::PathBuf) {
    let out = std::fs::read_to_string(work.join("snapshot.out")).unwrap();
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("snapshot "))
        .expect("a snapshot id")
        .trim()
        .to_owned();
    let object = s3
        .root
        .join("bench/snapguard/snapshots")
        .join(&id)
        .join("dump");
    (id, object)
}

fn which(program: &str) -> Option<String> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
