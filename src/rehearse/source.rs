//! Where a rehearsal's data comes from: a snapshot in the store, a dump
//! file, or a live database dumped read-only. Each becomes a file in the
//! rehearsal's work directory that the scratch server can load, with what
//! is known about it (database name, server version, how long production's
//! own dump took).

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use crate::codec::Compression;
use crate::db::{self, ConnInfo, DbError};
use crate::pgtools::{self, Program, Tool, ToolError};
use crate::process::{self, ProcessError};
use crate::snapshot::transfer::{self, TransferError};
use crate::snapshot::{self, CatalogError, Manifest};
use crate::store::Store;

/// What to rehearse on.
#[derive(Debug, Clone)]
pub enum Source {
    /// A snapshot id in the store, or `latest`.
    Snapshot(String),
    /// A `pg_dump` file: custom format, a directory archive, or plain SQL,
    /// optionally gzip- or zstd-compressed.
    Dump(PathBuf),
    /// A live database, dumped read-only with `pg_dump`.
    Url(Box<ConnInfo>),
    /// The newest pgBackRest backup of the stanza, restored into the
    /// throwaway server with the archive's WAL replayed (not a file: see
    /// [`super::target::Scratch::restored`]).
    Pgbackrest(Box<crate::config::PgbackrestConfig>),
}

/// The source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A pgBackRest backup is restored by the scratch server itself.
    #[error("a pgBackRest backup is restored into the throwaway server, not read as a dump")]
    Physical,
    /// `--snapshot` needs a store.
    #[error("no store is configured to read the snapshot from (`store.url` or `--store`)")]
    NoStore,
    /// The snapshot could not be found.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Downloading the snapshot failed.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// The dump file is not one.
    #[error("`{}` is not a PostgreSQL dump: {why}", path.display())]
    NotADump {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        why: String,
    },
    /// Reading or writing a file failed.
    #[error("{what} `{}` failed", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Connecting to the live database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// No suitable `pg_dump` / `pg_restore`.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// `pg_dump` or `pg_restore -l` failed.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// How the file is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A `pg_restore` archive (custom or directory format).
    Archive,
    /// Plain SQL for `psql`, compressed or not.
    Plain(Compression),
}

/// A source made local.
#[derive(Debug)]
pub struct Local {
    /// The file (or archive directory) to load.
    pub path: PathBuf,
    /// How to load it.
    pub format: Format,
    /// The database it was dumped from, when the dump says.
    pub database: Option<String>,
    /// The server version it was dumped from, when the dump says.
    pub server_version: Option<String>,
    /// The version of the `pg_dump` that made it, when known: reading an
    /// archive takes a `pg_restore` at least that new.
    pub dumped_by: Option<String>,
    /// Its size on disk.
    pub bytes: u64,
    /// One line for the report, without secrets.
    pub described: String,
    /// The snapshot's manifest, for a store snapshot.
    pub manifest: Option<Manifest>,
    /// How long production's own dump took: the snapshot's recorded
    /// duration, or the `--from-url` dump just taken.
    pub dump_seconds: Option<f64>,
}

impl Local {
    /// The major version it was dumped from, if known.
    pub fn major(&self) -> Option<u32> {
        self.server_version
            .as_deref()
            .and_then(pgtools::parse_major)
    }

    /// The oldest `pg_restore` major that reads it: the `pg_dump`'s that
    /// made it (its archive format), else the server's.
    pub fn restore_major(&self) -> Option<u32> {
        self.dumped_by
            .as_deref()
            .and_then(pgtools::parse_major)
            .or_else(|| self.major())
    }
}

/// Makes `source` a local file in `workdir`.
pub async fn fetch(
    source: &Source,
    store: Option<&Store>,
    workdir: &Path,
    bin_dir: Option<&Path>,
    lock_wait: std::time::Duration,
) -> Result<Local, SourceError> {
    match source {
        Source::Snapshot(which) => {
            let store = store.ok_or(SourceError::NoStore)?;
            from_snapshot(store, which, workdir).await
        }
        Source::Dump(path) => from_file(path, workdir, bin_dir).await,
        Source::Url(info) => from_url(info, workdir, bin_dir, lock_wait).await,
        Source::Pgbackrest(_) => Err(SourceError::Physical),
    }
}

async fn from_snapshot(store: &Store, which: &str, workdir: &Path) -> Result<Local, SourceError> {
    use crate::store::ObjectStore;
    let manifest = snapshot::resolve(store, which).await?;
    let path = workdir.join("snapshot.dump");
    let file = std::fs::File::create(&path).map_err(io("creating", &path))?;
    tracing::info!(snapshot = %manifest.id, uri = %store.uri(&manifest.dump_key), "downloading the snapshot");
    let decoded = transfer::download_verified(
        store,
        &manifest,
        std::io::BufWriter::with_capacity(1 << 20, file),
    )
    .await?;
    let seconds = (manifest.completed_at - manifest.created_at).as_seconds_f64();
    Ok(Local {
        format: Format::Archive,
        database: Some(manifest.database.clone()),
        server_version: Some(manifest.server_version.clone()),
        dumped_by: Some(manifest.pg_dump_version.clone()),
        bytes: decoded.raw_bytes,
        described: format!("snapshot {} ({})", manifest.id, manifest.dump_uri),
        dump_seconds: Some(seconds),
        manifest: Some(manifest),
        path,
    })
}

/// The first bytes of a gzip and a zstd stream, and of a custom archive.
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const ARCHIVE_MAGIC: &[u8] = b"PGDMP";

async fn from_file(
    path: &Path,
    workdir: &Path,
    bin_dir: Option<&Path>,
) -> Result<Local, SourceError> {
    let meta = std::fs::metadata(path).map_err(io("reading", path))?;
    let described = |kind: &str| format!("dump file `{}` ({kind})", path.display());
    if meta.is_dir() {
        if !path.join("toc.dat").is_file() {
            return Err(not_a_dump(path, "a directory without `toc.dat`"));
        }
        return archive_local(path.to_path_buf(), described("directory archive"), bin_dir).await;
    }
    let head = read_head(path, None)?;
    let compression = if head.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let inner = match compression {
        Compression::None => head,
        c => read_head(path, Some(c))?,
    };
    if inner.starts_with(ARCHIVE_MAGIC) {
        if compression == Compression::None {
            return archive_local(path.to_path_buf(), described("custom format"), bin_dir).await;
        }
        // pg_restore -j needs a seekable file: decompress it once.
        let plain = workdir.join("archive.dump");
        let (src, dst) = (path.to_path_buf(), plain.clone());
        tokio::task::spawn_blocking(move || -> Result<(), SourceError> {
            let mut reader = open_decoded(&src, compression)?;
            let mut out = std::fs::File::create(&dst).map_err(io("creating", &dst))?;
            std::io::copy(&mut reader, &mut out).map_err(io("decompressing", &src))?;
            Ok(())
        })
        .await
        .expect("the decompression thread does not panic")?;
        let kind = format!("custom format, {compression}");
        return archive_local(plain, described(&kind), bin_dir).await;
    }
    if inner.is_empty() || std::str::from_utf8(&inner[..inner.len().min(512)]).is_err() {
        return Err(not_a_dump(
            path,
            "neither a custom-format archive nor SQL text",
        ));
    }
    let server_version = plain_header(path, compression)?;
    Ok(Local {
        path: path.to_path_buf(),
        format: Format::Plain(compression),
        database: None,
        server_version,
        dumped_by: None,
        bytes: meta.len(),
        described: described(&match compression {
            Compression::None => "plain SQL".to_owned(),
            c => format!("plain SQL, {c}"),
        }),
        manifest: None,
        dump_seconds: None,
    })
}

async fn from_url(
    info: &ConnInfo,
    workdir: &Path,
    bin_dir: Option<&Path>,
    lock_wait: std::time::Duration,
) -> Result<Local, SourceError> {
    let client = db::connect(info).await?;
    let server = db::server_version(&client).await?;
    drop(client);
    let pg_dump = pgtools::find(Program::PgDump, server.major(), bin_dir)?;
    let path = workdir.join("live.dump");
    // pg_dump reads in one REPEATABLE READ, READ ONLY transaction: the
    // live database is not changed, and only ACCESS SHARE locks are taken.
    let args = vec![
        "--format=custom".to_owned(),
        "--no-password".to_owned(),
        format!("--lock-wait-timeout={}", lock_wait.as_millis()),
        format!("--file={}", path.display()),
        format!("--dbname={}", info.dbname()),
    ];
    tracing::info!(database = %info, "dumping the live database (read-only)");
    let started = Instant::now();
    process::run(&pg_dump.path, &args, info.libpq_env()).await?;
    let seconds = started.elapsed().as_secs_f64();
    let mut local = archive_local(path, format!("live database {info}"), bin_dir).await?;
    local.dump_seconds = Some(seconds);
    local.server_version = local.server_version.or(Some(server.to_string()));
    local.database = Some(info.dbname().to_owned());
    Ok(local)
}

/// A `pg_restore` archive: its header says the database and the version.
async fn archive_local(
    path: PathBuf,
    described: String,
    bin_dir: Option<&Path>,
) -> Result<Local, SourceError> {
    let pg_restore = pgtools::find_newest(Program::PgRestore, bin_dir)?;
    let listing = output(&pg_restore, &["--list".into(), path.display().to_string()]).await?;
    let header = |key: &str| {
        listing.lines().find_map(|l| {
            let rest = l.strip_prefix(';')?.trim_start().strip_prefix(key)?;
            Some(rest.trim().to_owned())
        })
    };
    let bytes = if path.is_dir() {
        dir_size(&path)
    } else {
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
    };
    Ok(Local {
        database: header("Dbname:"),
        server_version: header("Dumped from database version:"),
        dumped_by: header("Dumped by pg_dump version:"),
        format: Format::Archive,
        bytes,
        described,
        manifest: None,
        dump_seconds: None,
        path,
    })
}

/// Plain dumps start with `-- Dumped from database version 15.4 …`.
fn plain_header(path: &Path, compression: Compression) -> Result<Option<String>, SourceError> {
    let reader = std::io::BufReader::new(open_decoded(path, compression)?);
    for line in reader.lines().take(40) {
        let line = line.map_err(io("reading", path))?;
        if let Some(v) = line.strip_prefix("-- Dumped from database version ") {
            return Ok(Some(v.trim().to_owned()));
        }
    }
    Ok(None)
}

/// The file, decompressed as it is read.
pub fn open_decoded(
    path: &Path,
    compression: Compression,
) -> Result<Box<dyn Read + Send>, SourceError> {
    let file = std::fs::File::open(path).map_err(io("opening", path))?;
    let buffered = std::io::BufReader::with_capacity(1 << 20, file);
    Ok(match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered)
                .map_err(io("decompressing", path))?,
        ),
    })
}

/// Up to the first 4 KiB, decompressed with `compression`.
fn read_head(path: &Path, compression: Option<Compression>) -> Result<Vec<u8>, SourceError> {
    let reader = open_decoded(path, compression.unwrap_or(Compression::None))?;
    let mut head = Vec::with_capacity(4096);
    reader
        .take(4096)
        .read_to_end(&mut head)
        .map_err(io("reading", path))?;
    Ok(head)
}

/// Role names a dump's SQL refers to: owners, grantees, `SET SESSION
/// AUTHORIZATION`. The scratch server needs them to exist for the dump to
/// load with its ownership and privileges (and for migrations that grant).
pub fn roles_in(line: &str) -> Vec<String> {
    let after = |keyword: &str| line.rfind(keyword).map(|i| &line[i + keyword.len()..]);
    let list = if line.starts_with("ALTER DEFAULT PRIVILEGES ") {
        if line.contains(" GRANT ") {
            after(" TO ")
        } else {
            after(" FROM ")
        }
    } else if line.starts_with("ALTER ") && line.contains(" OWNER TO ") {
        after(" OWNER TO ")
    } else if line.starts_with("GRANT ") {
        after(" TO ")
    } else if line.starts_with("REVOKE ") {
        after(" FROM ")
    } else if let Some(rest) = line.strip_prefix("SET SESSION AUTHORIZATION ") {
        return ident_list(&rest.replace('\'', "\""));
    } else {
        None
    };
    let mut roles = list.map(ident_list).unwrap_or_default();
    if let Some(i) = line.find(" FOR ROLE ") {
        roles.extend(ident_list(&line[i + " FOR ROLE ".len()..]));
    }
    roles
}

/// `a, "B c", d;` → `a`, `B c`, `d`, stopping at `;` or a keyword.
fn ident_list(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.trim_start().chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == ',') {
            chars.next();
        }
        let mut name = String::new();
        match chars.peek() {
            Some('"') => {
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    name.push(c);
                }
            }
            Some(c) if c.is_alphanumeric() || *c == '_' => {
                while let Some(c) = chars.peek().copied() {
                    if !(c.is_alphanumeric() || c == '_' || c == '$') {
                        break;
                    }
                    name.push(c);
                    chars.next();
                }
                let upper = name.to_uppercase();
                if matches!(
                    upper.as_str(),
                    "WITH" | "GRANTED" | "IN" | "GRANT" | "CASCADE"
                ) {
                    break;
                }
                if matches!(
                    upper.as_str(),
                    "PUBLIC" | "CURRENT_USER" | "SESSION_USER" | "CURRENT_ROLE" | "GROUP"
                ) {
                    continue;
                }
            }
            _ => break,
        }
        if !name.is_empty() {
            out.push(name);
        }
        if chars.peek() != Some(&',') {
            break;
        }
    }
    out
}

/// The roles a local source refers to (see [`roles_in`]).
pub async fn roles(local: &Local, bin_dir: Option<&Path>) -> Result<Vec<String>, SourceError> {
    let mut found = std::collections::BTreeSet::new();
    let mut scan = |text: &str| {
        for line in text.lines() {
            found.extend(roles_in(line));
        }
    };
    match local.format {
        Format::Archive => {
            let pg_restore = pgtools::find_newest(Program::PgRestore, bin_dir)?;
            let schema = output(
                &pg_restore,
                &[
                    "--schema-only".into(),
                    "--file=-".into(),
                    local.path.display().to_string(),
                ],
            )
            .await?;
            scan(&schema);
        }
        Format::Plain(compression) => {
            let path = local.path.clone();
            let lines = tokio::task::spawn_blocking(move || -> Result<Vec<String>, SourceError> {
                let reader = std::io::BufReader::new(open_decoded(&path, compression)?);
                let mut keep = Vec::new();
                for line in reader.split(b'\n') {
                    let line = line.map_err(io("reading", &path))?;
                    // Only statement lines can name roles; COPY data is skipped cheaply.
                    if line.starts_with(b"ALTER ")
                        || line.starts_with(b"GRANT ")
                        || line.starts_with(b"REVOKE ")
                        || line.starts_with(b"SET SESSION AUTHORIZATION ")
                    {
                        keep.push(String::from_utf8_lossy(&line).into_owned());
                    }
                }
                Ok(keep)
            })
            .await
            .expect("the scanning thread does not panic")?;
            scan(&lines.join("\n"));
        }
    }
    Ok(found.into_iter().collect())
}

/// Runs `tool` and returns its stdout.
async fn output(tool: &Tool, args: &[String]) -> Result<String, ProcessError> {
    let command = process::describe(&tool.path, args);
    let out = tokio::process::Command::new(&tool.path)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| ProcessError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(ProcessError::Exited {
            command,
            status: out.status,
            stderr_tail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn not_a_dump(path: &Path, why: &str) -> SourceError {
    SourceError::NotADump {
        path: path.to_path_buf(),
        why: why.to_owned(),
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SourceError {
    let path = path.to_path_buf();
    move |source| SourceError::Io { what, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_found_in_owner_grant_and_revoke_lines() {
        assert_eq!(
            roles_in("ALTER TABLE public.users OWNER TO shop_owner;"),
            ["shop_owner"]
        );
        assert_eq!(
            roles_in("GRANT SELECT,INSERT ON TABLE public.users TO shop_app;"),
            ["shop_app"]
        );
        assert_eq!(
            roles_in("GRANT ALL ON SCHEMA public TO \"Report Reader\" WITH GRANT OPTION;"),
            ["Report Reader"]
        );
        assert_eq!(
            roles_in("REVOKE ALL ON SCHEMA public FROM PUBLIC;"),
            Vec::<String>::new()
        );
        assert_eq!(
            roles_in(
                "ALTER DEFAULT PRIVILEGES FOR ROLE shop_owner IN SCHEMA public GRANT SELECT ON TABLES TO shop_ro;"
            ),
            ["shop_ro", "shop_owner"]
        );
        assert_eq!(
            roles_in("SET SESSION AUTHORIZATION 'migrator';"),
            ["migrator"]
        );
        assert!(roles_in("CREATE TABLE public.grants (id int);").is_empty());
    }
}
