//! Finding `pg_dump`, `pg_restore` and `psql` of a major version at least the
//! server's, and describing them.
//!
//! An older `pg_dump` refuses to dump a newer server ("aborting because of
//! server version mismatch"), and an older `pg_restore` cannot read a newer
//! archive, so the choice is checked before anything starts.
//! <https://www.postgresql.org/docs/current/app-pgdump.html>
//!
//! The rule: the server's own major first, else the *nearest* newer one,
//! never the newest for its own sake. Every client newer than the server is
//! a risk on the way back: `pg_restore` 17 and later sets
//! `transaction_timeout`, which servers before 17 reject (see
//! [`sets_transaction_timeout`]).

use std::path::{Path, PathBuf};

/// One of the PostgreSQL client programs snapguard runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// `pg_dump`.
    PgDump,
    /// `pg_restore`.
    PgRestore,
    /// `psql`.
    Psql,
}

impl Program {
    /// The executable's name.
    pub fn name(self) -> &'static str {
        match self {
            Program::PgDump => "pg_dump",
            Program::PgRestore => "pg_restore",
            Program::Psql => "psql",
        }
    }
}

/// A client program that was found and is recent enough.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Where it is.
    pub path: PathBuf,
    /// Its major version.
    pub major: u32,
    /// Its full version, for example `15.18`.
    pub version: String,
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("program");
        write!(f, "{name} {} (`{}`)", self.version, self.path.display())
    }
}

/// A client program could not be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// No such program in any place searched.
    #[error("`{program}` not found (searched {}); install the PostgreSQL {min_major} client (e.g. `apt-get install postgresql-client-{min_major}`) or set `database.pg_bin_dir`", searched.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", "))]
    NotFound {
        /// The program.
        program: &'static str,
        /// The smallest acceptable major version.
        min_major: u32,
        /// The directories searched.
        searched: Vec<PathBuf>,
    },
    /// Only older versions exist.
    #[error("`{program}` must be version {min_major} or newer to work with this server, but only {} found; install postgresql-client-{min_major} or set `database.pg_bin_dir`", found.iter().map(|(p, v)| format!("{v} at `{}`", p.display())).collect::<Vec<_>>().join(", "))]
    TooOld {
        /// The program.
        program: &'static str,
        /// The smallest acceptable major version.
        min_major: u32,
        /// What was found: path and version.
        found: Vec<(PathBuf, String)>,
    },
}

/// Finds `program` with a major version of at least `min_major`.
///
/// With `bin_dir` set only that directory is used. Otherwise `PATH` and
/// `/usr/lib/postgresql/<major>/bin` are searched; the server's own major
/// version is preferred (its dumps restore with the same major's tools by
/// hand), then the nearest newer one.
pub fn find(program: Program, min_major: u32, bin_dir: Option<&Path>) -> Result<Tool, ToolError> {
    find_by(program, min_major, bin_dir, Pick::NearestNewer)
}

/// Finds the newest `program`: for reading an archive whose version is not
/// known yet (a newer `pg_restore` reads every older archive).
pub fn find_newest(program: Program, bin_dir: Option<&Path>) -> Result<Tool, ToolError> {
    find_by(program, 0, bin_dir, Pick::Newest)
}

/// Which of the programs found [`find_by`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    /// `min_major` itself, else the nearest newer.
    NearestNewer,
    /// The newest.
    Newest,
}

fn find_by(
    program: Program,
    min_major: u32,
    bin_dir: Option<&Path>,
    pick: Pick,
) -> Result<Tool, ToolError> {
    let dirs = match bin_dir {
        Some(d) => vec![d.to_path_buf()],
        None => search_dirs(min_major),
    };
    let mut found = Vec::new();
    for dir in &dirs {
        let path = dir.join(program.name());
        if !path.is_file() {
            continue;
        }
        let duplicate = found
            .iter()
            .any(|(p, _): &(PathBuf, String)| same_file(p, &path));
        if let (Some(version), false) = (version_of(&path), duplicate) {
            let exact = parse_major(&version) == Some(min_major);
            found.push((path, version));
            if exact && pick == Pick::NearestNewer {
                // The server's own major version: the best choice, so the
                // remaining candidates need not be run.
                break;
            }
        }
    }
    let best = match pick {
        Pick::NearestNewer => choose(&found, min_major),
        Pick::Newest => found
            .iter()
            .filter_map(|(path, version)| {
                Some(Tool {
                    path: path.clone(),
                    major: parse_major(version)?,
                    version: version.clone(),
                })
            })
            .max_by_key(|t| t.major),
    };
    match best {
        Some(tool) => Ok(tool),
        None if found.is_empty() => Err(ToolError::NotFound {
            program: program.name(),
            min_major,
            searched: dirs,
        }),
        None => Err(ToolError::TooOld {
            program: program.name(),
            min_major,
            found,
        }),
    }
}

/// Of the programs `found` (path and version), the one of `min_major`
/// itself, else the nearest newer major; `None` if all are older.
fn choose(found: &[(PathBuf, String)], min_major: u32) -> Option<Tool> {
    found
        .iter()
        .filter_map(|(path, version)| {
            let major = parse_major(version)?;
            (major >= min_major).then(|| Tool {
                path: path.clone(),
                major,
                version: version.clone(),
            })
        })
        .min_by_key(|t| t.major)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The server's own major version's directory first, then `PATH`, then the
/// other installed versions, newest first. On Debian `PATH` holds
/// `pg_wrapper`, a Perl script that costs a few hundred milliseconds per
/// call, so the real binaries are looked at first.
fn search_dirs(preferred_major: u32) -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(format!(
        "/usr/lib/postgresql/{preferred_major}/bin"
    ))];
    dirs.extend(
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    versioned.sort_by_key(|v| std::cmp::Reverse(v.0));
    dirs.extend(versioned.into_iter().map(|(_, d)| d));
    let mut unique: Vec<PathBuf> = Vec::with_capacity(dirs.len());
    for d in dirs {
        if !unique.contains(&d) {
            unique.push(d);
        }
    }
    unique
}

/// Whether `pg_restore` (or `pg_dump`'s script) of `client_major` sets
/// `transaction_timeout` in every session it opens: 17 and later do, and a
/// server before 17 answers `unrecognized configuration parameter
/// "transaction_timeout"`. <https://www.postgresql.org/docs/17/runtime-config-client.html>
pub fn sets_transaction_timeout(client_major: u32, server_major: u32) -> bool {
    client_major >= 17 && server_major < 17
}

/// Whether `psql` of `version` knows `\restrict` and `\unrestrict`, which
/// plain dumps carry from pg_dump 18.0, 17.6, 16.10, 15.14, 14.19 and 13.22
/// on (CVE-2025-8714); an older `psql` stops at them ("invalid command").
pub fn psql_knows_restrict(version: &str) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    match major {
        18.. => true,
        17 => minor >= 6,
        16 => minor >= 10,
        15 => minor >= 14,
        14 => minor >= 19,
        13 => minor >= 22,
        _ => false,
    }
}

/// What a plain SQL dump must lose to load through this `psql` into this
/// server, each line blanked rather than removed so that psql's errors
/// still name the dump's own line numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainAdapter {
    /// Blank the header's `SET transaction_timeout = 0;` (pg_dump 17 and
    /// later; a server before 17 rejects it).
    pub drop_transaction_timeout: bool,
    /// Blank `\restrict` / `\unrestrict` (a `psql` that predates them).
    pub drop_restrict: bool,
}

impl PlainAdapter {
    /// The header: pg_dump writes its `SET`s and `\restrict` first.
    const HEADER_LINES: usize = 64;

    /// For loading into a server of `server_major` with `psql` `psql_version`.
    pub fn new(server_major: u32, psql_version: &str) -> Self {
        PlainAdapter {
            drop_transaction_timeout: server_major < 17,
            drop_restrict: !psql_knows_restrict(psql_version),
        }
    }

    /// Whether line `number` (from 1) is kept. `\unrestrict` ends the dump
    /// and no COPY data line can start with one backslash and a letter
    /// (COPY doubles backslashes), so it is recognised anywhere.
    pub fn keeps(&self, number: usize, line: &str) -> bool {
        let header = number <= Self::HEADER_LINES;
        let restrict =
            (header && line.starts_with("\\restrict ")) || line.starts_with("\\unrestrict ");
        let timeout = header && line.trim_end() == "SET transaction_timeout = 0;";
        !(self.drop_restrict && restrict || self.drop_transaction_timeout && timeout)
    }
}

/// Runs `program --version` and returns the version number it prints.
fn version_of(path: &Path) -> Option<String> {
    let out = std::process::Command::new(path)
        .arg("--version")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

/// `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → `15.18`.
fn parse_version(output: &str) -> Option<String> {
    let after = output.split(')').nth(1)?.trim_start();
    let version: String = after
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!version.is_empty()).then_some(version)
}

/// `15.18` → 15, `16beta1` → 16.
pub fn parse_major(version: &str) -> Option<u32> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(
            parse_version("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n").as_deref(),
            Some("15.18")
        );
        assert_eq!(
            parse_version("pg_restore (PostgreSQL) 17.2\n").as_deref(),
            Some("17.2")
        );
        assert_eq!(parse_version("garbage"), None);
        assert_eq!(parse_major("15.18"), Some(15));
    }

    #[test]
    fn the_servers_own_major_first_then_the_nearest_newer() {
        let found = |versions: &[&str]| -> Vec<(PathBuf, String)> {
            versions
                .iter()
                .map(|v| (PathBuf::from(format!("/pg/{v}/pg_dump")), v.to_string()))
                .collect()
        };
        let pick = |versions: &[&str], server| choose(&found(versions), server).map(|t| t.version);
        assert_eq!(
            pick(&["18.6", "15.18", "13.23"], 13).as_deref(),
            Some("13.23")
        );
        assert_eq!(
            pick(&["18.6", "15.18", "16.2"], 13).as_deref(),
            Some("15.18")
        );
        assert_eq!(pick(&["18.6", "15.18"], 16).as_deref(), Some("18.6"));
        assert_eq!(pick(&["15.18", "14.1"], 16), None);
        assert!(sets_transaction_timeout(18, 16));
        assert!(!sets_transaction_timeout(18, 17));
        assert!(!sets_transaction_timeout(16, 13));
    }

    #[test]
    fn plain_dumps_lose_only_what_the_server_or_psql_cannot_take() {
        assert!(psql_knows_restrict("15.18"));
        assert!(!psql_knows_restrict("15.13"));
        assert!(psql_knows_restrict("13.22"));
        assert!(!psql_knows_restrict("12.22"));
        let old = PlainAdapter::new(15, "15.13");
        assert!(!old.keeps(5, "\\restrict abc"));
        assert!(!old.keeps(13, "SET transaction_timeout = 0;"));
        assert!(!old.keeps(90_000, "\\unrestrict abc"));
        assert!(old.keeps(13, "SET lock_timeout = 0;"));
        // Past the header, the same text is data and stays.
        assert!(old.keeps(500, "SET transaction_timeout = 0;"));
        let new = PlainAdapter::new(17, "18.6");
        assert!(new.keeps(5, "\\restrict abc"));
        assert!(new.keeps(13, "SET transaction_timeout = 0;"));
    }

    #[test]
    fn a_fake_old_pg_dump_is_refused_with_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("pg_dump");
        std::fs::write(&fake, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let err = find(Program::PgDump, 15, Some(dir.path())).unwrap_err();
        assert!(matches!(err, ToolError::TooOld { .. }));
        assert!(err.to_string().contains("9.6.24"), "{err}");
        let err = find(Program::PgRestore, 15, Some(dir.path())).unwrap_err();
        assert!(matches!(err, ToolError::NotFound { .. }), "{err}");
    }
}
