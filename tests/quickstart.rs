//! The README's quick start, run as printed: its script block goes to
//! `bash -e` with the built `snapguard` first on `PATH` and libpq's
//! variables pointing at the test server, as a new user's shell would have
//! them. Then the database and the store are checked against what the
//! comments in the block promise.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{pg, psql};

const DATABASE: &str = "quickstart_shop";

/// The second `sh` block of the README's "Quick start" section (the first
/// is the install command, which the tests' own build stands for).
fn quick_start_script() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("\n## Quick start\n")
        .nth(1)
        .expect("the README has a quick start")
        .split("\n## ")
        .next()
        .unwrap();
    let block = section
        .split("```sh\n")
        .nth(2)
        .expect("the quick start's script block");
    block.split("```").next().unwrap().to_owned()
}

#[test]
fn the_readme_quick_start_runs_as_printed() {
    let script = quick_start_script();
    assert!(script.contains(&format!("createdb {DATABASE}")));
    psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"),
    );
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_snapguard"));
    let path = format!(
        "{}:{}:{}",
        binary.parent().unwrap().display(),
        pg().bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("bash");
    for (k, _) in std::env::vars() {
        if k.starts_with("SNAPGUARD_") || k.starts_with("PG") || k == "DATABASE_URL" {
            command.env_remove(k);
        }
    }
    let out = command
        .args(["-e", "-c", &script])
        .current_dir(work.path())
        .env("PATH", path)
        .env("HOME", home.path())
        .env("CI", "true")
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", pg().port().to_string())
        .env("PGUSER", "postgres")
        .env("PGPASSWORD", pg().password())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the quick start failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The failing deploy said it rolled back, with the documented code.
    assert!(
        stdout.contains("deploy exited 4 (4: rolled back)"),
        "{stdout}"
    );
    assert!(stdout.contains(": rolled back"), "{stdout}");
    // The restore put back the database as it was before v2: v1's table,
    // both rows, no `active` column, one migration recorded.
    assert_eq!(psql(DATABASE, "SELECT count(*) FROM users"), "2");
    assert_eq!(
        psql(
            DATABASE,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'active'"
        ),
        "0"
    );
    assert_eq!(
        psql(
            DATABASE,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM snapguard.schema_migrations"
        ),
        "1"
    );
    // Three snapshots in the store under $HOME: v1's, the rolled-back v2's
    // and the successful v2's.
    let snapshots = std::fs::read_dir(home.path().join("snapguard-store/snapshots"))
        .unwrap()
        .count();
    assert_eq!(snapshots, 3, "{stdout}");
    psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"),
    );
}
