//! What the deploy benchmarks (`deploy`, `window`, `clone`) share: their
//! store and work directory, running one deploy and reading its report.
//! Declared by those only, so the snapshot bench does not carry it unused.

use std::path::Path;
use std::process::Command;

use super::common;

/// The bench's S3 server (bucket `bench`) and a work directory with an
/// empty `migrations/`, where the deploys run.
pub fn setup() -> (common::S3Server, tempfile::TempDir) {
    let s3 = common::S3Server::start();
    s3.bucket("bench");
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("migrations")).unwrap();
    (s3, work)
}

/// Writes the trivial migration `migrations/<n>_trivial.sql` (one new
/// table) in `dir` and runs `snapguard deploy --release r<n> --json` there
/// against the bench's S3 server; asserts its exit code and returns the
/// report.
pub fn deploy(dir: &Path, s3: &common::S3Server, n: usize, expected: i32) -> serde_json::Value {
    std::fs::write(
        dir.join(format!("migrations/{n}_trivial.sql")),
        format!("CREATE TABLE bench_trivial_{n} (x int);\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_snapguard"))
        .args(["deploy", "--release", &format!("r{n}"), "--json"])
        .current_dir(dir)
        .env("CI", "true")
        .env("AWS_ACCESS_KEY_ID", &s3.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &s3.secret_key)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(expected),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The seconds of step `name` in a deploy report, if it ran.
pub fn step_seconds(report: &serde_json::Value, name: &str) -> Option<f64> {
    report["steps"]
        .as_array()?
        .iter()
        .find(|s| s["step"] == name)
        .and_then(|s| s["seconds"].as_f64())
}
