//! A PostgreSQL 15 of its own whose WAL a real pgBackRest archives into a
//! repository on local disk (stanza `main`, one full backup taken), with
//! the commands that stop and start it: what `snapshot.provider:
//! pgbackrest` drives, for its tests and its benchmark.

use std::path::{Path, PathBuf};
use std::process::Command;

use snapguard::ephemeral::{EphemeralOptions, EphemeralServer};

use super::{installed, run_ok};

/// pgBackRest 2.45 (Debian's) knows PostgreSQL up to 15.
pub const MAJOR: u32 = 15;

/// The server and its repository.
pub struct Archived {
    pub server: EphemeralServer,
    /// pgBackRest's configuration, repository, logs and locks, and the
    /// server's stop and start scripts.
    pub dir: tempfile::TempDir,
}

pub fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        run_ok(Command::new("id").args([flag, "postgres"]))
            .trim()
            .parse()
            .unwrap()
    };
    (id("-u"), id("-g"))
}

pub fn chown_postgres(path: &Path) {
    let (uid, gid) = postgres_ids();
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

fn pgbackrest_installed() -> PathBuf {
    let found = Command::new("sh")
        .args(["-c", "command -v pgbackrest"])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "pgbackrest is not installed: run scripts/install-test-deps"
    );
    PathBuf::from(String::from_utf8_lossy(&found.stdout).trim())
}

impl Archived {
    /// Starts the server archiving to a new repository (`repo_options`:
    /// more `[global]` lines of `pgbackrest.conf`), creates the stanza and
    /// takes a full backup.
    pub fn start(repo_options: &[&str]) -> Archived {
        pgbackrest_installed();
        let dir = tempfile::tempdir().unwrap();
        for sub in ["", "repo", "log", "lock", "spool"] {
            let p = dir.path().join(sub);
            std::fs::create_dir_all(&p).unwrap();
            chown_postgres(&p);
        }
        let conf = dir.path().join("pgbackrest.conf");
        let (server_bin, client_bin) = installed(MAJOR);
        let server = EphemeralServer::start(&EphemeralOptions {
            major: Some(MAJOR),
            bin_dir: Some(server_bin.clone()),
            client_dir: Some(client_bin),
            parent_dir: None,
            populate: None,
            settings: vec![
                "wal_level = replica".into(),
                "archive_mode = on".into(),
                format!(
                    "archive_command = 'pgbackrest --config={} --stanza=main archive-push %p'",
                    conf.display()
                ),
            ],
        })
        .expect("start PostgreSQL 15");
        let data = server.data_dir();
        std::fs::write(
            &conf,
            format!(
                "[global]\nrepo1-path={d}/repo\nlog-path={d}/log\nlock-path={d}/lock\nspool-path={d}/spool\nlog-level-console=warn\nlog-level-file=off\nstart-fast=y\narchive-timeout=60\n{options}\n[main]\npg1-path={data}\npg1-port={port}\npg1-socket-path={socket}\n",
                d = dir.path().display(),
                options = repo_options.iter().map(|o| format!("{o}\n")).collect::<String>(),
                data = data.display(),
                port = server.port(),
                socket = server.socket_dir().display(),
            ),
        )
        .unwrap();
        chown_postgres(&conf);
        let pg_ctl = server_bin.join("pg_ctl");
        let stop = dir.path().join("stop.sh");
        let start = dir.path().join("start.sh");
        // With the file `kill-runner`, the stop command then SIGKILLs the
        // snapguard that ran it (found up its parents by name): a runner
        // dead in the middle of the point-in-time restore.
        std::fs::write(
            &stop,
            format!(
                "runuser -u postgres -- {} -D {} -m fast -w stop || exit $?\nif [ -e {d}/kill-runner ]; then\n  p=$PPID\n  while [ \"$p\" -gt 1 ] && [ \"$(cat /proc/$p/comm)\" != snapguard ]; do p=$(awk '{{print $4}}' /proc/$p/stat); done\n  kill -9 \"$p\"\nfi\n",
                pg_ctl.display(),
                data.display(),
                d = dir.path().display(),
            ),
        )
        .unwrap();
        // The server as it ran: a standby (which recovery is) refuses to
        // start with a `max_connections` below the primary's ("recovery
        // aborted because of insufficient parameter settings").
        std::fs::write(
            &start,
            format!(
                "exec runuser -u postgres -- {} -D {} -l {}/server.log -w -t 120 -o '-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200' start\n",
                pg_ctl.display(),
                data.display(),
                dir.path().display(),
                server.port(),
                server.socket_dir().display()
            ),
        )
        .unwrap();
        let archived = Archived { server, dir };
        archived.pgbackrest(&["stanza-create"]);
        archived.pgbackrest(&["--type=full", "backup"]);
        archived
    }

    /// Runs `pgbackrest <args>` on the stanza as `postgres`; its stdout.
    pub fn pgbackrest(&self, args: &[&str]) -> String {
        let conf = format!(
            "--config={}",
            self.dir.path().join("pgbackrest.conf").display()
        );
        run_ok(
            Command::new("runuser")
                .args(["-u", "postgres", "--", "pgbackrest", &conf, "--stanza=main"])
                .args(args)
                .current_dir(self.dir.path()),
        )
    }

    /// Runs `sql` in `db`; its output.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        self.server
            .psql(db, &["-c", sql])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `snapguard.yml`'s `snapshot:` section for this cluster's stanza,
    /// `extra` (indented lines) added to it.
    pub fn snapshot_section(&self, extra: &str) -> String {
        format!(
            "snapshot:\n  provider: pgbackrest\n  pgbackrest:\n    stanza: main\n    config: {conf}\n    user: postgres\n    stop: sh {d}/stop.sh\n    start: sh {d}/start.sh\n{extra}",
            conf = self.dir.path().join("pgbackrest.conf").display(),
            d = self.dir.path().display(),
        )
    }

    /// The log of the server as the start command started it.
    pub fn server_log(&self) -> String {
        let path = self.dir.path().join("server.log");
        std::fs::read_to_string(&path).unwrap_or_else(|e| format!("{}: {e}", path.display()))
    }
}
