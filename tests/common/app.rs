//! The application scenario shared by the deploy and recovery tests: a
//! database with a table, an application role, a workspace with
//! migrations, every maintenance switch kind, release hooks that write
//! their environment to files, and a webhook/health stub.

use std::process::Stdio;
use std::time::Duration;

use super::*;

/// An application: its database and role, a workspace with migrations, a
/// webhook/health stub.
pub struct App {
    pub db: String,
    pub role: String,
    pub ws: Workspace,
    pub stub: HttpStub,
    pub store: String,
}

pub const SEED: &str = "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 500) g;";

impl App {
    /// `store` is `s3` or `fs`.
    pub fn new(name: &str, store: &str) -> App {
        let db = create_db(name);
        let role = format!("{name}_app");
        psql(
            "postgres",
            &format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD 'app'"),
        );
        psql(&db, SEED);
        // Database-level properties, which a dump does not carry: every
        // rollback must put them back with the database.
        psql(
            "postgres",
            &format!(
                "ALTER DATABASE {db} SET work_mem = '8MB'; ALTER DATABASE {db} CONNECTION LIMIT 50; COMMENT ON DATABASE {db} IS 'the shop'"
            ),
        );
        psql(
            &db,
            &format!("GRANT ALL ON items TO {role}; GRANT ALL ON SEQUENCE items_id_seq TO {role}"),
        );
        let store = match store {
            "s3" => {
                s3().bucket(&name.replace('_', "-"));
                format!(
                    "store:\n  url: s3://{}/prod\n  endpoint: {}\n  region: us-east-1\n  path_style: true\n",
                    name.replace('_', "-"),
                    s3().endpoint
                )
            }
            _ => "store:\n  url: file://./backups\n".to_owned(),
        };
        let app = App {
            db,
            role,
            ws: Workspace::new(""),
            stub: HttpStub::start(),
            store,
        };
        std::fs::create_dir_all(app.ws.path().join("migrations")).unwrap();
        app.migration(
            "1_add_note.sql",
            "ALTER TABLE items ADD COLUMN note text;\nUPDATE items SET note = 'n' || id;\n",
        );
        app
    }

    /// The URL the application role connects with, as the app would.
    pub fn role_url(&self) -> String {
        format!(
            "postgres://{}:app@127.0.0.1:{}/{}?sslmode=disable",
            self.role,
            pg().port(),
            self.db
        )
    }

    pub fn migration(&self, file: &str, sql: &str) {
        self.ws.migrations(&[(file, sql)]);
    }

    /// Writes `snapguard.yml`: every switch kind, release hooks writing
    /// their environment to files, a health URL, and `extra` YAML.
    pub fn configure(&self, local_clone: &str, release_extra: &str, extra: &str) {
        let config = format!(
            "database:
  url: {url}
{store}snapshot:
  local_clone: {local_clone}
migrations:
  dir: migrations
maintenance:
  - command: {{ on: 'echo on >> maintenance.log', off: 'echo off >> maintenance.log; echo ${{SNAPGUARD_OUTCOME}} >> outcome.log' }}
  - http:
      on: {{ url: '{stub}/maintenance/on', headers: {{ Authorization: 'Bearer ${{HOOK_TOKEN:-t0ken}}' }} }}
      off: {{ method: DELETE, url: '{stub}/maintenance/on' }}
  - file: {{ path: maintenance.txt }}
  - postgres_fence: {{ roles: [{role}], wait: 5s }}
release:
  command: 'env | grep ^SNAPGUARD_ | sort > release.env{release_extra}'
  rollback: 'env | grep ^SNAPGUARD_ | sort > rollback.env'
  health: {{ url: '{stub}/health', timeout: 2s, interval: 200ms }}
{extra}",
            url = pg().url(&self.db),
            store = self.store,
            stub = self.stub.url,
            role = self.role,
        );
        std::fs::write(self.ws.path().join("snapguard.yml"), config).unwrap();
    }

    pub fn deploy(&self, release: &str) -> Run {
        let report = self.ws.path().join("report.json");
        let _ = std::fs::remove_file(&report);
        self.ws.run(&[
            "deploy",
            "--release",
            release,
            "--report",
            report.to_str().unwrap(),
        ])
    }

    pub fn report(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.ws.path().join("report.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.ws.path().join(name)).unwrap_or_default()
    }

    pub fn can_login(&self) -> bool {
        psql(
            "postgres",
            &format!(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = '{}'",
                self.role
            ),
        ) == "t"
    }

    /// Maintenance is off: no flag file, the role can log in, the last
    /// command and webhook calls were the `off` ones.
    pub fn assert_maintenance_off(&self) {
        assert!(
            !self.ws.path().join("maintenance.txt").exists(),
            "flag file left behind"
        );
        assert!(self.can_login(), "the fenced role cannot log in");
        assert_eq!(self.file("maintenance.log").lines().last(), Some("off"));
        assert_eq!(
            self.stub
                .requests()
                .iter()
                .rfind(|r| r.contains("/maintenance/"))
                .map(String::as_str),
            Some("DELETE /maintenance/on")
        );
    }
}

pub fn env_file(text: &str, var: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{var}=")))
        .map(str::to_owned)
}

/// Starts a deploy whose second migration sleeps, and waits until it is in it.
pub fn deploy_in_migration(app: &App) -> std::process::Child {
    app.migration("2_slow.sql", "SELECT pg_sleep(30);\n");
    let child = spawn_deploy(app);
    wait_until("the slow migration", Duration::from_secs(30), || {
        slow_migration_running(app)
    });
    child
}

impl App {
    /// snapguard with `args` in the workspace, started in the background
    /// with `env` added and its output piped.
    pub fn spawn(&self, env: &[(&str, &Path)], args: &[&str]) -> std::process::Child {
        self.ws
            .snapguard()
            .envs(env.iter().copied())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// `deploy --release v1 --report report.json` started in the background,
/// its stderr piped.
pub fn spawn_deploy(app: &App) -> std::process::Child {
    app.ws
        .snapguard()
        .args(["deploy", "--release", "v1", "--report", "report.json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The migration `2_slow.sql` (`SELECT pg_sleep(30)`) is running.
pub fn slow_migration_running(app: &App) -> bool {
    psql(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE 'SELECT pg_sleep(30)%'",
            app.db
        ),
    ) == "1"
}
