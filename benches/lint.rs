//! `snapguard lint` speed and peak memory: 1,000 generated migrations of
//! the shapes real folders hold (tables, columns, indexes, constraints,
//! backfills, a PL/pgSQL function), and lemmy's real history (342
//! migrations, 2,664 statements, `tests/fixtures/lint/corpus/lemmy`),
//! linted without a database by the binary, beside `squawk` on the same
//! files when it is installed (`pip install squawk-cli`), the two
//! interleaved; medians of the runs with min–max. Targets: under one
//! second, peak memory ≤ 30 MiB.
//!
//! Run it with `scripts/bench lint` or `cargo bench --bench lint -- [--runs 5]
//! [--count 1000]`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// One run of `command` in `dir` under `/usr/bin/time`: wall seconds and
/// peak resident memory in KiB.
fn measured(command: &[&str], dir: &Path) -> (f64, u64) {
    let report = dir.join("time.out");
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%e %M", "-o"])
        .arg(&report)
        .args(command)
        .current_dir(dir)
        .env("CI", "true")
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("/usr/bin/time (scripts/bench installs it)");
    // lint exits 9 when it finds errors, squawk 1: both measured.
    assert!(status.code().is_some(), "{command:?} was killed");
    let text = std::fs::read_to_string(&report).unwrap();
    let last = text.lines().last().unwrap_or_default();
    let (secs, kib) = last.split_once(' ').expect("`%e %M`");
    (secs.parse().unwrap(), kib.parse().unwrap())
}

/// `median (min–max)` of `values`.
fn spread(mut values: Vec<f64>, unit: &str) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "{:.2}{unit} ({:.2}–{:.2})",
        values[values.len() / 2],
        values[0],
        values[values.len() - 1]
    )
}

fn migration(i: usize) -> String {
    match i % 5 {
        0 => format!(
            "CREATE TABLE t{i} (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());\n\
             CREATE INDEX t{i}_name ON t{i} (name);\n"
        ),
        1 => format!(
            "ALTER TABLE t{p} ADD COLUMN note varchar(200);\n\
             ALTER TABLE t{p} ADD CONSTRAINT t{p}_name_len CHECK (char_length(name) < 500) NOT VALID;\n",
            p = i - 1
        ),
        2 => format!(
            "UPDATE t{p} SET note = lower(name) WHERE note IS NULL;\n\
             ALTER TABLE t{p} ALTER COLUMN note TYPE text;\n",
            p = i - 2
        ),
        3 => format!(
            "CREATE FUNCTION touch_{i}() RETURNS trigger LANGUAGE plpgsql AS $$\n\
             BEGIN NEW.created_at := now(); RETURN NEW; END;\n$$;\n\
             COMMENT ON FUNCTION touch_{i}() IS 'migration {i}; with a semicolon';\n"
        ),
        _ => format!(
            "ALTER TABLE t{p} RENAME COLUMN note TO remark;\n\
             DROP INDEX IF EXISTS t{p}_name;\n",
            p = i - 4
        ),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let runs = flag("--runs", 5);
    let count = flag("--count", 1000);
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    for i in 0..count {
        std::fs::write(migrations.join(format!("{}_m{i}.sql", i + 1)), migration(i)).unwrap();
    }
    std::fs::write(
        dir.path().join("snapguard.yml"),
        "migrations:\n  dir: migrations\n",
    )
    .unwrap();
    let mut seconds = Vec::new();
    let mut findings = String::new();
    for _ in 0..runs {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_snapguard"))
            .args(["lint", "--all", "-q"])
            .current_dir(dir.path())
            .env("CI", "true")
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        seconds.push(started.elapsed().as_secs_f64());
        findings = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned();
    }
    seconds.sort_by(f64::total_cmp);
    println!(
        "lint: {count} migrations, median {:.3}s (min {:.3}s, max {:.3}s) over {runs} runs, target < 1s; {findings}",
        seconds[seconds.len() / 2],
        seconds[0],
        seconds[seconds.len() - 1]
    );

    // The real history, snapguard and squawk interleaved.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/corpus/lemmy");
    let corpus = corpus.display().to_string();
    std::fs::write(
        dir.path().join("snapguard.yml"),
        "lint:\n  server_version: 16\n",
    )
    .unwrap();
    let files: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .filter_map(|e| {
            let up = e.ok()?.path().join("up.sql");
            up.is_file().then(|| up.display().to_string())
        })
        .collect();
    let squawk = Command::new("squawk").arg("--version").output().is_ok();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ours.push(measured(
            &[
                env!("CARGO_BIN_EXE_snapguard"),
                "lint",
                &corpus,
                "--format",
                "json",
            ],
            dir.path(),
        ));
        if squawk {
            let mut command = vec!["squawk"];
            command.extend(files.iter().map(String::as_str));
            theirs.push(measured(&command, dir.path()));
        }
    }
    let line = |name: &str, runs: &[(f64, u64)]| {
        println!(
            "{name}: {} wall, peak memory {} (median, min–max of {})",
            spread(runs.iter().map(|r| r.0).collect(), "s"),
            spread(runs.iter().map(|r| r.1 as f64 / 1024.0).collect(), " MiB"),
            runs.len()
        )
    };
    println!("lemmy's history ({} migrations), no database:", files.len());
    line("  snapguard lint", &ours);
    if squawk {
        line("  squawk", &theirs);
    } else {
        println!("  squawk: not installed (pip install squawk-cli)");
    }
}
