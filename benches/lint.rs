//! `snapguard lint` speed: 1,000 generated migrations of the shapes real
//! folders hold (tables, columns, indexes, constraints, backfills, a
//! PL/pgSQL function), linted without a database by the binary, median of
//! the runs with min–max. The target is under one second.
//!
//! Run it with `scripts/bench lint` or `cargo bench --bench lint -- [--runs 5]
//! [--count 1000]`.

use std::process::Command;
use std::time::Instant;

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
}
