//! Every secret snapguard is given, in every form it could be printed in,
//! stays out of everything it writes: stdout, stderr, the reports, the
//! journal and every other object in the store, the GitHub outputs and the
//! job summary. The commands run as a team runs them (plan, deploy that
//! succeeds, deploy that rolls back with the webhook down, a killed deploy
//! and its recover, rehearse, verify), with and without `GITHUB_ACTIONS`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// The database password: characters that change when percent-encoded.
const DB_PASSWORD: &str = "Sekr3t/p@ss:w%rd";
/// A Slack-style webhook: the path and the query are the secret.
const HOOK_PATH: &str = "/services/T111/B222/hookpathsecret";
const HOOK_QUERY: &str = "token=hookquerysecret";
/// Header values of the webhook and of a maintenance switch.
const HOOK_HEADER: &str = "hookheadersecret";
const SWITCH_HEADER: &str = "switchheadersecret";
/// The health URL's query.
const HEALTH_QUERY: &str = "key=healthquerysecret";

/// Each secret in each form it could leak in.
fn secret_forms() -> Vec<(&'static str, String)> {
    let encoded: String = url::form_urlencoded::byte_serialize(DB_PASSWORD.as_bytes()).collect();
    vec![
        ("database password", DB_PASSWORD.to_owned()),
        ("database password, percent-encoded", encoded),
        ("S3 secret key", s3().secret_key.clone()),
        ("webhook path", "hookpathsecret".to_owned()),
        ("webhook query", "hookquerysecret".to_owned()),
        ("webhook header", HOOK_HEADER.to_owned()),
        ("switch header", SWITCH_HEADER.to_owned()),
        ("health query", "healthquerysecret".to_owned()),
    ]
}

/// Every file under `dir`, with its contents.
fn files_under(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
}

/// Fails naming each secret form found in `text`, and where.
fn assert_clean(place: &str, text: &[u8], leaks: &mut Vec<String>) {
    let text = String::from_utf8_lossy(text);
    let text = without_masks(&text);
    for (what, form) in secret_forms() {
        if text.contains(&form) {
            leaks.push(format!("{what} (`{form}`) in {place}"));
        }
    }
}

struct Scene {
    ws: Workspace,
    db: String,
    url: String,
    bucket: String,
    hook: HttpStub,
    switch: HttpStub,
}

impl Scene {
    fn new(name: &str) -> Scene {
        let db = seeded_db(name);
        psql(
            &db,
            "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 100);",
        );
        let role = format!("{name}_owner");
        psql(
            "postgres",
            &format!(
                "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{DB_PASSWORD}'"
            ),
        );
        let encoded: String =
            url::form_urlencoded::byte_serialize(DB_PASSWORD.as_bytes()).collect();
        let url = format!(
            "postgres://{role}:{encoded}@127.0.0.1:{}/{db}?sslmode=disable",
            pg().port()
        );
        let bucket = s3().bucket(&name.replace('_', "-"));
        let hook = HttpStub::start();
        let switch = HttpStub::start();
        let ws = Workspace::new(&format!(
            "database:
  url: ${{SECRET_DB_URL}}
store:
  url: s3://{bucket}/prod
  endpoint: {endpoint}
  region: us-east-1
  path_style: true
snapshot:
  local_clone: never
migrations:
  dir: migrations
maintenance:
  - http:
      on: {{ url: '{switch}/maintenance', headers: {{ Authorization: 'Bearer {SWITCH_HEADER}' }} }}
      off: {{ method: DELETE, url: '{switch}/maintenance', headers: {{ Authorization: 'Bearer {SWITCH_HEADER}' }} }}
notify:
  - url: '{hook}{HOOK_PATH}?{HOOK_QUERY}'
    headers: {{ X-Api-Key: '{HOOK_HEADER}' }}
release:
  health: {{ url: '{switch}/health?{HEALTH_QUERY}', timeout: 2s, interval: 200ms }}
",
            endpoint = s3().endpoint,
            switch = switch.url,
            hook = hook.url,
        ));
        std::fs::create_dir_all(ws.path().join("migrations")).unwrap();
        Scene {
            ws,
            db,
            url,
            bucket,
            hook,
            switch,
        }
    }

    /// `snapguard args`, with the database URL from the environment and,
    /// when `github`, as a GitHub Actions step.
    fn command(&self, github: bool, args: &[&str]) -> Command {
        let mut command = self.ws.snapguard();
        command.env("SECRET_DB_URL", &self.url).args(args);
        if github {
            command
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_OUTPUT", self.ws.path().join("github_output"))
                .env("GITHUB_STEP_SUMMARY", self.ws.path().join("github_summary"));
        }
        command
    }

    fn run(&self, github: bool, args: &[&str], code: i32, leaks: &mut Vec<String>) {
        let run = Run(self.command(github, args).output().unwrap());
        let place = format!(
            "{} `snapguard {}`",
            if github {
                "under Actions,"
            } else {
                "outside Actions,"
            },
            args.join(" ")
        );
        assert_eq!(
            run.code(),
            code,
            "{place}: {}\n{}",
            run.stdout(),
            run.stderr()
        );
        assert_clean(&format!("stdout of {place}"), &run.0.stdout, leaks);
        assert_clean(&format!("stderr of {place}"), &run.0.stderr, leaks);
    }
}

#[test]
fn no_secret_in_any_form_reaches_any_output_of_any_command() {
    let scene = Scene::new("sec_all");
    let mut leaks = Vec::new();
    for github in [false, true] {
        let n = if github { 10 } else { 0 };
        scene.ws.migrations(&[(
            &format!("{}_note.sql", n + 1),
            &format!("ALTER TABLE items ADD COLUMN note{n} text;\n"),
        )]);
        scene.run(github, &["plan", "--release", "v1"], 0, &mut leaks);
        scene.run(
            github,
            &["plan", "--release", "v1", "--json"],
            0,
            &mut leaks,
        );
        scene.run(
            github,
            &["deploy", "--release", "v1", "--report", "r1.json"],
            0,
            &mut leaks,
        );

        // The webhook down, and a deploy that rolls back.
        scene.hook.set_status(HOOK_PATH, 500);
        scene.ws.migrations(&[(
            &format!("{}_bad.sql", n + 2),
            "ALTER TABLE items ADD CONSTRAINT small CHECK (id < 10);\n",
        )]);
        scene.run(
            github,
            &["deploy", "--release", "v2", "--report", "r2.json"],
            4,
            &mut leaks,
        );
        std::fs::remove_file(
            scene
                .ws
                .path()
                .join(format!("migrations/{}_bad.sql", n + 2)),
        )
        .unwrap();
        scene.hook.set_status(HOOK_PATH, 200);

        // A deploy killed mid-migration, then `recover`.
        scene
            .ws
            .migrations(&[(&format!("{}_slow.sql", n + 3), "SELECT pg_sleep(30);\n")]);
        let mut child = scene
            .command(github, &["deploy", "--release", "v3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("the slow migration", Duration::from_secs(60), || {
            psql(
                "postgres",
                &format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE 'SELECT pg_sleep(30)%'",
                    scene.db
                ),
            ) == "1"
        });
        child.kill().unwrap();
        child.wait().unwrap();
        std::fs::remove_file(
            scene
                .ws
                .path()
                .join(format!("migrations/{}_slow.sql", n + 3)),
        )
        .unwrap();
        scene.run(github, &["recover", "--report", "r3.json"], 4, &mut leaks);

        scene.run(
            github,
            &["rehearse", "--snapshot", "latest", "--report", "r4.json"],
            0,
            &mut leaks,
        );
        scene.run(github, &["verify"], 0, &mut leaks);
        scene.run(github, &["snapshots", "list"], 0, &mut leaks);
        scene.run(github, &["-vv", "maintenance", "on"], 0, &mut leaks);
        scene.run(github, &["-vv", "maintenance", "off"], 0, &mut leaks);
    }
    // Everything written: the reports and GitHub files in the workspace,
    // every object of the store (journals, reports, manifests, archives).
    let mut written = Vec::new();
    files_under(scene.ws.path(), &mut written);
    files_under(&s3().root.join(&scene.bucket), &mut written);
    assert!(
        written.iter().any(|(p, _)| p.ends_with("journal.json")),
        "no journal was found to check"
    );
    for name in [
        "r1.json",
        "r2.json",
        "r3.json",
        "r4.json",
        "github_output",
        "github_summary",
    ] {
        assert!(
            scene.ws.path().join(name).is_file(),
            "{name} was not written"
        );
    }
    for (path, bytes) in &written {
        if path.ends_with("snapguard.yml") {
            continue; // the configuration holds the secrets it is given
        }
        assert_clean(&path.display().to_string(), bytes, &mut leaks);
    }
    assert!(
        scene.hook.requests().len() >= 4,
        "the webhook was not called"
    );
    assert!(
        !scene.switch.requests().is_empty(),
        "the switch was not called"
    );
    assert!(
        leaks.is_empty(),
        "{} leak(s):\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}
