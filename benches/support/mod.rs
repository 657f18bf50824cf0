//! What the benchmarks share: the benchmark database and medians.

use std::process::Command;

use snapguard::ephemeral::EphemeralServer;

/// The benchmark's command line: `[--scales N,N…] [--runs N] [--jobs N]`.
pub struct Args {
    /// `pgbench` scales of the benchmark database (40 ≈ 1.4 GB here).
    pub scales: Vec<u32>,
    /// Runs per scale; medians are reported.
    pub runs: usize,
    /// `pg_restore -j`.
    pub jobs: u32,
}

/// Reads the command line of benchmark `bench` over `defaults`.
pub fn parse_args(bench: &str, defaults: Args) -> Args {
    let mut args = defaults;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--scales" => {
                args.scales = it
                    .next()
                    .expect("--scales N[,N…]")
                    .split(',')
                    .map(|s| s.parse().expect("a number"))
                    .collect()
            }
            "--runs" => args.runs = it.next().expect("--runs N").parse().expect("a number"),
            "--jobs" => args.jobs = it.next().expect("--jobs N").parse().expect("a number"),
            "--bench" => {}
            "--help" | "-h" => {
                println!(
                    "usage: cargo bench --bench {bench} -- [--scales 10,40] [--runs N] [--jobs 2]\n\nscale 40 is about 1.4 GB: pgbench -i -s 40 plus 1.5 M JSONB rows with a GIN index (rows scale with it)."
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument `{other}` (try --help)"),
        }
    }
    args
}

/// The median of `v` (the upper one for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// `min–max` of `v`, for the line beside a median.
pub fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{min:.2}–{max:.2}")
}

/// Builds database `bench`: `pgbench -i -s <scale>` plus `1.5 M × scale / 40`
/// JSONB rows with a GIN index (scale 40 ≈ 1 GB, as DESIGN section 9).
pub fn build_database(pg: &EphemeralServer, scale: u32) {
    let psql = |db: &str, sql: &str| {
        pg.psql(db, &["-c", sql])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    psql("postgres", "DROP DATABASE IF EXISTS bench");
    psql("postgres", "CREATE DATABASE bench");
    let out = Command::new(pg.bin_dir().join("pgbench"))
        .args(["-i", "-q", "-s", &scale.to_string(), &pg.url("bench")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pgbench: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = 1_500_000u64 * scale as u64 / 40;
    psql(
        "bench",
        &format!(
            "CREATE TABLE docs (id bigserial PRIMARY KEY, body jsonb NOT NULL);
             INSERT INTO docs (body) SELECT jsonb_build_object(
                 'user', i, 'name', 'user ' || i, 'plan', (ARRAY['free','pro','team'])[1 + i % 3],
                 'tags', jsonb_build_array('a' || (i % 10), 'b' || (i % 7)),
                 'stats', jsonb_build_object('logins', i % 1000, 'score', (i::bigint * 7919) % 10007),
                 'note', md5(i::text))
             FROM generate_series(1, {rows}) AS i;
             CREATE INDEX docs_body_gin ON docs USING gin (body);"
        ),
    );
    psql("bench", "VACUUM ANALYZE");
}

/// `pg_dump -Fc -Z0 bench > /dev/null` on `pg`, timed after a `sync`: the
/// dump floor the windows are compared with. Declared by the benches that
/// measure it.
#[allow(dead_code)]
pub fn dump_floor(pg: &EphemeralServer) -> f64 {
    let _ = Command::new("sync").status();
    let started = std::time::Instant::now();
    let status = Command::new(pg.bin_dir().join("pg_dump"))
        .args(["-Fc", "-Z0", &pg.url("bench")])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    started.elapsed().as_secs_f64()
}
