//! `snapshot.provider: pgbackrest` beside `pg_dump`: on one PostgreSQL 15
//! archiving to a pgBackRest repository on local disk (lz4, two
//! processes), the maintenance window of a deploy with one trivial
//! migration, and the rollback of one whose second migration fails, for
//! each provider, with `pg_dump -Fc -Z0 > /dev/null` of the same database
//! (the dump floor) measured in the same run. The providers alternate
//! which goes first.
//!
//! `pg_dump` runs as configured by default (a local clone, the store
//! snapshot streamed from it before maintenance comes off; the rollback
//! swaps the clone in). `pgbackrest` makes a restore point; its rollback
//! restores the whole cluster in place (`--delta`) from the full backup
//! taken after the database was built and replays the WAL since: the runs
//! before add to what is replayed, as a day's writes would.
//!
//! Run it with `scripts/bench pitr [--scales 30,140] [--runs 5]` (scale 30
//! is about 1 GB, 140 about 5 GB).

use std::process::Command;
use std::time::Instant;

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/deploys.rs"]
mod deploys;
mod support;

use common::pgbackrest::Archived;
use deploys::step_seconds;
use support::{Args, build_database, dump_floor, median, parse_args, spread};

const PROVIDERS: [&str; 2] = ["pg_dump", "pgbackrest"];

/// One provider's figures at one scale.
#[derive(Default)]
struct Figures {
    snapshot: Vec<f64>,
    window: Vec<f64>,
    rollback: Vec<f64>,
    failed_window: Vec<f64>,
}

fn main() {
    let Args { scales, runs, .. } = parse_args(
        "pitr",
        Args {
            scales: vec![30, 140],
            runs: 5,
            jobs: 2,
        },
    );
    let cluster = Archived::start(&["compress-type=lz4", "process-max=2"]);
    let (s3, work) = deploys::setup();
    let dir = work.path();
    let mut n = 0usize;
    let mut deploy = |provider: &str, failing: bool| -> serde_json::Value {
        n += 1;
        let snapshot = match provider {
            "pgbackrest" => cluster.snapshot_section(""),
            _ => String::new(),
        };
        std::fs::write(
            dir.join("snapguard.yml"),
            format!(
                "database:\n  url: {}\nstore:\n  url: s3://bench/pitr\n  endpoint: {}\n  path_style: true\n  region: us-east-1\nmigrations:\n  dir: migrations\nmaintenance:\n  - file: {{ path: maintenance.txt }}\n{snapshot}",
                cluster.server.url("bench"),
                s3.endpoint
            ),
        )
        .unwrap();
        let fail = dir.join("migrations/9999_fail.sql");
        let _ = std::fs::remove_file(&fail);
        if failing {
            std::fs::write(&fail, "SELECT 1 / 0;\n").unwrap();
        }
        let _ = Command::new("sync").status();
        let report = deploys::deploy(dir, &s3, n, if failing { 4 } else { 0 });
        if failing {
            // The database is back: the next deploy starts alike, without
            // the failed copy a clone swap keeps.
            std::fs::remove_file(dir.join(format!("migrations/{n}_trivial.sql"))).unwrap();
            let kept = cluster.sql(
                "postgres",
                "SELECT string_agg(quote_ident(datname), ' ') FROM pg_database WHERE datname LIKE 'bench\\_\\_failed\\_%'",
            );
            for name in kept.split_whitespace() {
                cluster.sql("postgres", &format!("DROP DATABASE {name}"));
            }
        }
        report
    };

    let mut out = Vec::new();
    for &scale in &scales {
        eprintln!("building the scale-{scale} database…");
        build_database(&cluster.server, scale);
        let size: u64 = cluster
            .sql("bench", "SELECT pg_database_size('bench')")
            .parse()
            .unwrap();
        eprintln!("a full backup of it…");
        let started = Instant::now();
        cluster.pgbackrest(&["--type=full", "backup"]);
        let backup = started.elapsed().as_secs_f64();
        let mut floor = vec![];
        let mut figures = [Figures::default(), Figures::default()];
        for run in 0..runs {
            eprintln!("scale {scale}, run {}/{runs}…", run + 1);
            floor.push(dump_floor(&cluster.server));
            for k in 0..PROVIDERS.len() {
                let i = (run + k) % PROVIDERS.len();
                let ok = deploy(PROVIDERS[i], false);
                figures[i]
                    .window
                    .push(ok["downtime_seconds"].as_f64().unwrap());
                figures[i]
                    .snapshot
                    .push(step_seconds(&ok, "snapshot").unwrap());
                let failed = deploy(PROVIDERS[i], true);
                let how = failed["rollback"]["database"].as_str().unwrap_or_default();
                let expected = match PROVIDERS[i] {
                    "pgbackrest" => "point-in-time restore",
                    _ => "clone swap",
                };
                assert!(how.starts_with(expected), "{failed}");
                figures[i]
                    .rollback
                    .push(step_seconds(&failed, "rollback: database").unwrap());
                figures[i]
                    .failed_window
                    .push(failed["downtime_seconds"].as_f64().unwrap());
            }
        }
        let f = median(floor.clone());
        out.push(format!(
            "scale {scale} ({:.2} GB; its full backup took {backup:.1} s), medians of {runs} runs (min–max)",
            size as f64 / 1e9
        ));
        out.push(format!(
            "  dump floor pg_dump -Fc -Z0 > /dev/null          {f:>7.2} s ({})",
            spread(&floor)
        ));
        for (provider, fig) in PROVIDERS.iter().zip(&figures) {
            let line = |what: &str, v: &[f64]| {
                let m = median(v.to_vec());
                format!(
                    "  {provider:<10} {what:<36} {m:>7.2} s ({}) = {:.2} × floor",
                    spread(v),
                    m / f
                )
            };
            out.push(line("snapshot step", &fig.snapshot));
            out.push(line("window, deploy that succeeds", &fig.window));
            out.push(line("rollback: database", &fig.rollback));
            out.push(line("window, deploy rolled back", &fig.failed_window));
        }
    }
    println!();
    for line in out {
        println!("{line}");
    }
}
