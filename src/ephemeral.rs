//! A throwaway local PostgreSQL server: `initdb` in a temporary directory,
//! listening on loopback on a free port, removed when dropped.
//!
//! The server refuses to run as root, so when snapguard runs as root (CI
//! containers) the directory is handed to the `postgres` user and the server
//! programs run through `runuser`. A watchdog process stops the server and
//! removes the directory if this process dies without dropping it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::db::ConnInfo;
use crate::process::ProcessError;

/// The server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EphemeralError {
    /// No `initdb` was found.
    #[error(
        "no PostgreSQL server binaries found under `/usr/lib/postgresql/*/bin` (install e.g. `postgresql-15`)"
    )]
    NoServerBinaries,
    /// Running as root, but there is no `postgres` user to run the server as.
    #[error("running as root and there is no `postgres` user to run the server as")]
    NoPostgresUser,
    /// Running as root, but `runuser` (which runs the server as `postgres`)
    /// is nowhere to be found.
    #[error(
        "running as root, the throwaway server must run as `postgres` through `runuser`, which is not on PATH nor in /usr/sbin or /sbin (Debian and Ubuntu: package util-linux)"
    )]
    NoRunuser,
    /// A file operation failed.
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
    /// `initdb` or `pg_ctl` failed.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// Options for [`EphemeralServer::start`].
#[derive(Debug, Clone, Default)]
pub struct EphemeralOptions {
    /// The major version to run; the newest installed when `None` or when
    /// that version is not installed.
    pub major: Option<u32>,
    /// The directory holding `initdb`, `pg_ctl` and `postgres`, instead of
    /// looking under `/usr/lib/postgresql` (a server installed elsewhere,
    /// such as the version matrix's). `major` is then read from `postgres`.
    pub bin_dir: Option<PathBuf>,
    /// The directory holding the client programs (`psql`, `pg_dump`) that
    /// go with this server; the server's own directory when `None`.
    pub client_dir: Option<PathBuf>,
    /// Where the server's directory is made; the temporary directory when
    /// `None` (a file system of its own, such as a copy-on-write one).
    pub parent_dir: Option<PathBuf>,
    /// Lines added to `postgresql.conf` before the first start (`archive_mode
    /// = on`): settings a restart keeps, unlike the command line's.
    pub settings: Vec<String>,
    /// Fills the data directory instead of `initdb` (a backup restored
    /// into it); `None`: `initdb`.
    pub populate: Option<Populate>,
}

/// A command that fills the data directory with a cluster (`pgbackrest
/// restore`), run as the server's user instead of `initdb`. The server
/// then runs on it with a configuration of ours (the cluster's own
/// `postgresql.conf` and `pg_hba.conf` are ignored: they name production's
/// ports, archive command, libraries and clients) and archiving off, and
/// the superuser `postgres`, which the cluster must have, gets the
/// server's random password.
#[derive(Debug, Clone)]
pub struct Populate {
    /// The program and its arguments; `{data}` stands for the data
    /// directory and `{dir}` for the server's directory around it.
    pub argv: Vec<String>,
    /// How long the server may take to start: it replays WAL first.
    pub start_within: std::time::Duration,
}

/// A running throwaway server.
pub struct EphemeralServer {
    dir: PathBuf,
    /// `initdb`, `pg_ctl`, `postgres`.
    server_dir: PathBuf,
    client_dir: PathBuf,
    major: u32,
    port: u16,
    password: String,
    run_as: Option<String>,
    /// `runuser`, found where root has it even when `PATH` lacks `/usr/sbin`.
    runuser: PathBuf,
    watchdog: Option<std::process::Child>,
    kept: bool,
}

impl EphemeralServer {
    /// Creates, starts and returns a server. Blocks for a second or two.
    pub fn start(options: &EphemeralOptions) -> Result<Self, EphemeralError> {
        let (major, bin_dir) = match &options.bin_dir {
            Some(dir) => (
                installed_major(dir).ok_or(EphemeralError::NoServerBinaries)?,
                dir.clone(),
            ),
            None => server_binaries(options.major).ok_or(EphemeralError::NoServerBinaries)?,
        };
        let client_dir = options
            .client_dir
            .clone()
            .unwrap_or_else(|| bin_dir.clone());
        let run_as = crate::process::is_root().then(|| "postgres".to_owned());
        let owner = match &run_as {
            Some(user) => Some(user_ids(user).ok_or(EphemeralError::NoPostgresUser)?),
            None => None,
        };
        let runuser = match &run_as {
            Some(_) => find_runuser().ok_or(EphemeralError::NoRunuser)?,
            None => PathBuf::from("runuser"),
        };
        let parent = options
            .parent_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        let dir = parent.join(format!(
            "snapguard-pg-{}-{}",
            std::process::id(),
            crate::random::hex4()
        ));
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| EphemeralError::Io { what, path, source }
        };
        std::fs::create_dir(&dir).map_err(io("creating", &dir))?;
        // A throwaway server on loopback: 64 random bits are plenty.
        let password = format!(
            "sg{}",
            (0..4).map(|_| crate::random::hex4()).collect::<String>()
        );
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, &password).map_err(io("writing", &pwfile))?;
        if let Some((uid, gid)) = owner {
            for p in [&dir, &pwfile] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))
                    .map_err(io("changing the owner of", p))?;
            }
        }
        let mut server = EphemeralServer {
            dir,
            server_dir: bin_dir,
            client_dir,
            major,
            port: 0,
            password,
            run_as,
            runuser,
            watchdog: None,
            kept: false,
        };
        server.watchdog = server.spawn_watchdog().ok();
        let data = server.data_dir();
        if let Some(populate) = &options.populate {
            server.populate(populate, owner)?;
            let options = populate_options(&server.dir);
            return server.start_server(&options, populate.start_within);
        }
        server.run(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                &format!("--pwfile={}", pwfile.display()),
                "--no-sync",
            ],
        )?;
        if !options.settings.is_empty() {
            let conf = data.join("postgresql.conf");
            let mut text = std::fs::read_to_string(&conf).map_err(io("reading", &conf))?;
            for line in &options.settings {
                text.push_str(line);
                text.push('\n');
            }
            std::fs::write(&conf, text).map_err(io("writing", &conf))?;
        }
        server.start_server("", std::time::Duration::from_secs(60))
    }

    /// Starts the server on a free port (three tries: a port free a
    /// moment ago may be taken), with `extra` server options.
    fn start_server(
        mut self,
        extra: &str,
        within: std::time::Duration,
    ) -> Result<Self, EphemeralError> {
        let data = self.data_dir();
        let mut last_error = None;
        for _ in 0..3 {
            self.port = free_port();
            let opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 {extra}",
                self.port,
                self.dir.display()
            );
            let log = self.dir.join("server.log");
            match self.run(
                "pg_ctl",
                &[
                    "-D",
                    &data.display().to_string(),
                    "-l",
                    &log.display().to_string(),
                    "-w",
                    "-t",
                    &within.as_secs().max(1).to_string(),
                    "-o",
                    &opts,
                    "start",
                ],
            ) {
                Ok(()) => break,
                Err(e) => last_error = Some(e),
            }
        }
        if let Some(e) = last_error.filter(|_| !self.running()) {
            self.port = 0;
            return Err(e);
        }
        if extra.is_empty() {
            return Ok(self);
        }
        // `pg_ctl -w` returns once the server runs, recovering or not;
        // with hot standby off it takes connections only once the WAL is
        // replayed and it is promoted. Then a populated cluster's superuser,
        // which has production's password (or none), gets ours, over the
        // socket only this machine's root and the server's user reach: a
        // write, so it also proves recovery over.
        let sql = format!("ALTER ROLE postgres PASSWORD '{}'", self.password);
        let deadline = std::time::Instant::now() + within;
        loop {
            match self.socket_psql(&sql) {
                Ok(()) => break,
                Err(e) if std::time::Instant::now() < deadline && still_recovering(&e) => {
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self)
    }

    /// Runs `sql` through `psql` over the server's socket, as `postgres`;
    /// on standard input, which `ps` does not show (it holds a password).
    fn socket_psql(&self, sql: &str) -> Result<(), ProcessError> {
        use std::io::Write;
        let psql = self.client_dir.join("psql");
        let (dir, port) = (self.dir.display().to_string(), self.port.to_string());
        let command = "psql -h <socket> -U postgres -f -".to_owned();
        let spawned = |source| ProcessError::Spawn {
            command: command.clone(),
            source,
        };
        let mut child = Command::new(&psql)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", &dir, "-p", &port])
            .args(["-U", "postgres", "-d", "postgres", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawned)?;
        // A write error means psql ended first; its status says why.
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(sql.as_bytes());
        }
        let out = child.wait_with_output().map_err(spawned)?;
        if out.status.success() {
            return Ok(());
        }
        Err(ProcessError::Exited {
            command,
            status: out.status,
            stderr_tail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }

    /// Whether the server answers `pg_ctl status`.
    fn running(&self) -> bool {
        self.port != 0
            && self
                .run(
                    "pg_ctl",
                    &["-D", &self.data_dir().display().to_string(), "status"],
                )
                .is_ok()
    }

    /// Runs `populate` into the (new, empty) data directory, as the
    /// server's user, and writes the configuration the server runs with.
    fn populate(
        &self,
        populate: &Populate,
        owner: Option<(u32, u32)>,
    ) -> Result<(), EphemeralError> {
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| EphemeralError::Io { what, path, source }
        };
        let data = self.data_dir();
        std::fs::create_dir(&data).map_err(io("creating", &data))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
            .map_err(io("setting the mode of", &data))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&data, Some(uid), Some(gid))
                .map_err(io("changing the owner of", &data))?;
        }
        let argv: Vec<String> = populate
            .argv
            .iter()
            .map(|a| {
                a.replace("{data}", &data.display().to_string())
                    .replace("{dir}", &self.dir.display().to_string())
            })
            .collect();
        let (program, args) = argv.split_first().expect("a command to run");
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new(&self.runuser);
                c.args(["-u", user, "--", program]);
                c
            }
            None => Command::new(program),
        };
        cmd.args(args).stdin(Stdio::null()).current_dir(&self.dir);
        let described = argv.join(" ");
        let out = cmd.output().map_err(|source| ProcessError::Spawn {
            command: described.clone(),
            source,
        })?;
        if !out.status.success() {
            return Err(ProcessError::Exited {
                command: described,
                status: out.status,
                stderr_tail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            }
            .into());
        }
        for (name, text) in [
            (
                "postgresql.conf",
                "# snapguard: a restored copy, run on loopback\n",
            ),
            (
                "pg_hba.conf",
                "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
            ),
        ] {
            let path = self.dir.join(name);
            std::fs::write(&path, text).map_err(io("writing", &path))?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                    .map_err(io("changing the owner of", &path))?;
            }
        }
        Ok(())
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of the server's Unix-domain socket (local
    /// connections are trusted).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The server's major version.
    pub fn major(&self) -> u32 {
        self.major
    }

    /// The directory holding the client programs that go with this server
    /// (`pg_dump`, `pg_restore`, `psql`).
    pub fn bin_dir(&self) -> &Path {
        &self.client_dir
    }

    /// A URL for database `db` as the superuser `postgres`, over TCP with a
    /// password, as a real deployment would connect.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{db}?sslmode=disable",
            self.password, self.port
        )
    }

    /// The same as [`url`](Self::url), parsed.
    pub fn conn_info(&self, db: &str) -> ConnInfo {
        ConnInfo::parse(&self.url(db)).expect("our own URL parses")
    }

    /// The superuser's password (random per server).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Runs this server's `psql` on database `db` as the superuser, with
    /// `ON_ERROR_STOP` and unaligned, tuples-only output; returns stdout.
    pub fn psql(&self, db: &str, args: &[&str]) -> Result<String, ProcessError> {
        let program = self.client_dir.join("psql");
        let mut all = vec!["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"];
        let url = self.url(db);
        all.push(&url);
        all.extend_from_slice(args);
        let command = format!("psql -d {db} {}", args.join(" "));
        let out = Command::new(&program)
            .args(&all)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| ProcessError::Spawn {
                command: command.clone(),
                source,
            })?;
        if !out.status.success() {
            let stderr_tail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            return Err(ProcessError::Exited {
                command,
                status: out.status,
                stderr_tail,
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Leaves the server running after this process exits (`rehearse
    /// --keep`); returns the command that stops it and removes its files.
    pub fn keep(mut self) -> String {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        self.kept = true;
        let pg_ctl = self.server_dir.join("pg_ctl");
        let stop = format!(
            "{} -D {} -m fast stop && rm -rf {}",
            pg_ctl.display(),
            self.data_dir().display(),
            self.dir.display()
        );
        match &self.run_as {
            Some(user) => format!("{} -u {user} -- {stop}", self.runuser.display()),
            None => stop,
        }
    }

    /// The data directory (owned by the server's user).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.server_dir.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new(&self.runuser);
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), EphemeralError> {
        let mut cmd = self.command(program);
        cmd.args(args).stdin(Stdio::null()).current_dir(&self.dir);
        let described = format!("{program} {}", args.join(" "));
        let out = cmd.output().map_err(|source| ProcessError::Spawn {
            command: match &self.run_as {
                Some(user) => format!("{} -u {user} -- {described}", self.runuser.display()),
                None => described.clone(),
            },
            source,
        })?;
        if out.status.success() {
            return Ok(());
        }
        let mut tail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if let Ok(log) = std::fs::read_to_string(self.dir.join("server.log")) {
            tail.push_str(&format!(
                "\nserver log:\n{}",
                log.lines()
                    .rev()
                    .take(10)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
        Err(ProcessError::Exited {
            command: described,
            status: out.status,
            stderr_tail: tail,
        }
        .into())
    }

    /// A detached shell that waits for this process to exit, then stops the
    /// server and removes its directory.
    fn spawn_watchdog(&self) -> std::io::Result<std::process::Child> {
        let pg_ctl = self.server_dir.join("pg_ctl");
        let stop = match &self.run_as {
            Some(user) => format!(
                "{} -u {user} -- {} -D {} -m immediate stop",
                self.runuser.display(),
                pg_ctl.display(),
                self.data_dir().display()
            ),
            None => format!(
                "{} -D {} -m immediate stop",
                pg_ctl.display(),
                self.data_dir().display()
            ),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    }
}

impl Drop for EphemeralServer {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        if self.port != 0 {
            let data = self.data_dir().display().to_string();
            let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// `runuser`: on `PATH`, else where util-linux installs it (a root shell
/// whose `PATH` lacks `/usr/sbin` is common in containers and CI images).
fn find_runuser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join("runuser"))
        .find(|candidate| candidate.is_file())
}

/// Whether the server binaries of `major` are installed (under
/// `/usr/lib/postgresql`).
pub fn has_server(major: u32) -> bool {
    server_binaries(Some(major)).is_some_and(|(found, _)| found == major)
}

/// Picks the requested major version's binaries, else the newest installed.
fn server_binaries(major: Option<u32>) -> Option<(u32, PathBuf)> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort_by_key(|(v, _)| *v);
    if let Some(hit) = major.and_then(|m| found.iter().find(|(v, _)| *v == m)) {
        return Some(hit.clone());
    }
    found.pop()
}

/// The major version of the `postgres` in `dir` (`postgres (PostgreSQL) 17.10`).
fn installed_major(dir: &Path) -> Option<u32> {
    let out = Command::new(dir.join("postgres"))
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split(')').nth(1)?.trim();
    crate::pgtools::parse_major(version)
}

/// The uid and gid of `user`, from `/etc/passwd`.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != user {
            return None;
        }
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

/// The server options for a populated cluster in `dir`: our configuration
/// and client rules, no archiving (its WAL must never reach production's
/// repository), no hot standby while it recovers (so `pg_ctl -w` waits
/// for the end of recovery, and production's `max_connections` need not
/// be matched), no preloaded libraries (production's may not be installed
/// here).
fn populate_options(dir: &Path) -> String {
    format!(
        "-c config_file={d}/postgresql.conf -c hba_file={d}/pg_hba.conf -c archive_mode=off -c hot_standby=off -c shared_preload_libraries=''",
        d = dir.display()
    )
}

/// Whether `e`, from `psql`, is a server still replaying WAL (or starting
/// up), which refuses connections with hot standby off.
fn still_recovering(e: &ProcessError) -> bool {
    match e {
        ProcessError::Exited { stderr_tail, .. } => {
            stderr_tail.contains("not accepting connections")
                || stderr_tail.contains("is starting up")
        }
        _ => false,
    }
}

/// A port that was free a moment ago; the caller retries if it is taken.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(54_329)
}
