//! The CI templates: every file in `pipeline/` and `action.yml` parses, every
//! snapguard command and flag they use exists (checked against the binary's
//! own `--help`), `shell/deploy.sh` deploys and rolls back end to end, and
//! the action's steps run in a simulated GitHub runner (its `GITHUB_*`
//! files and variables, step outputs) for a successful and a failing
//! deploy and other commands, its install step takes a release packaged by
//! `scripts/package` only when its SHA-256 matches (by version, the newest
//! when pinned by SHA, a moved tag re-installed), and every output
//! snapguard writes is declared.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_snapguard"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "snapguard {args:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks `command` exists and takes every `--flag` in `args`.
fn check_invocation(file: &Path, command: &str, args: &[&str]) {
    let top = help(&[]);
    assert!(
        top.lines()
            .any(|l| l.trim_start().starts_with(&format!("{command} "))),
        "{}: `snapguard {command}` is not a command",
        file.display()
    );
    let own = help(&[command]);
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            own.contains(&format!("{flag} "))
                || own.contains(&format!("{flag}\n"))
                || own.contains(&format!("{flag} <")),
            "{}: `snapguard {command}` has no `{flag}`",
            file.display()
        );
    }
}

/// Every `snapguard … CMD --flags` (or the scripts' `"$bin" …`) on a line.
fn shell_invocations(text: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim_start().trim_start_matches("- ");
        if line.starts_with('#') {
            continue;
        }
        // The shell script passes its arguments to `snapguard deploy`.
        if let Some(i) = line.find("shell/deploy.sh") {
            let rest = line[i + "shell/deploy.sh".len()..].trim_start_matches('"');
            found.push((
                "deploy".to_owned(),
                rest.split_whitespace().map(str::to_owned).collect(),
            ));
        }
        for program in ["snapguard ", "\"$bin\" "] {
            // Only where the program is what the line runs.
            let Some(i) = line.find(program) else {
                continue;
            };
            if !matches!(line[..i].trim_end(), "" | "exec" | "run:") {
                continue;
            }
            let mut tokens = line[i + program.len()..].split_whitespace().peekable();
            if tokens.peek() == Some(&"--config") {
                tokens.next();
                tokens.next();
            }
            let Some(command) = tokens.next() else {
                continue;
            };
            if !command.chars().all(|c| c.is_ascii_lowercase()) {
                continue;
            }
            found.push((
                command.to_owned(),
                tokens.map(str::to_owned).collect::<Vec<_>>(),
            ));
        }
    }
    found
}

/// The action's `with: { command, args }` pairs in a workflow.
fn action_uses(value: &serde_json::Value, out: &mut Vec<(String, Vec<String>)>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(with) = map.get("with").and_then(|w| w.as_object())
                && map
                    .get("uses")
                    .and_then(|u| u.as_str())
                    .is_some_and(|u| u.contains("/snapguard"))
            {
                let command = with
                    .get("command")
                    .and_then(|c| c.as_str())
                    .unwrap_or("deploy");
                let args = with.get("args").and_then(|a| a.as_str()).unwrap_or("");
                out.push((
                    command.to_owned(),
                    args.split_whitespace().map(str::to_owned).collect(),
                ));
            }
            map.values().for_each(|v| action_uses(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| action_uses(v, out)),
        _ => {}
    }
}

#[test]
fn every_template_parses_and_uses_only_real_commands_and_flags() {
    let mut all = Vec::new();
    files(&repo().join("pipeline"), &mut all);
    all.push(repo().join("action.yml"));
    let mut checked = 0;
    for file in &all {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        let mut invocations = shell_invocations(&text);
        if name.ends_with(".yml") {
            let value: serde_json::Value = serde_saphyr::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", file.display()));
            action_uses(&value, &mut invocations);
        }
        if name.ends_with(".sh") {
            let out = Command::new("bash")
                .args(["-n"])
                .arg(file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for (command, args) in &invocations {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            check_invocation(file, command, &args);
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} invocations found");
}

/// A database with one table, a workspace with a migration and a config
/// on a local-directory store.
fn app(name: &str, migration: &str) -> Workspace {
    let db = create_db(name);
    psql(
        &db,
        "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 100);",
    );
    let ws = Workspace::new(&fs_config(&db, "migrations:\n  dir: migrations\n"));
    ws.migrations(&[("1_change.sql", migration)]);
    ws
}

#[test]
fn shell_deploy_script_deploys_and_rolls_back_with_snapguards_exit_codes() {
    let script = repo().join("pipeline/shell/deploy.sh");
    let ws = app("pl_shell", "ALTER TABLE items ADD COLUMN note text;\n");
    let mut like = ws.snapguard();
    like.env("SNAPGUARD_BIN", env!("CARGO_BIN_EXE_snapguard"))
        .env_remove("CI");
    let run = Run(bash_like(&like)
        .arg(&script)
        .args(["--release", "v1"])
        .output()
        .unwrap());
    run.expect_code(0);
    assert!(
        run.stdout().contains("snapguard: deployed"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout().contains("of `pl_shell`: succeeded"),
        "no report printed:\n{}",
        run.stdout()
    );
    let report = std::fs::read_to_string(ws.path().join("snapguard-report.json")).unwrap();
    assert!(report.contains("\"succeeded\""), "{report}");

    std::fs::write(
        ws.path().join("migrations/2_bad.sql"),
        "ALTER TABLE items ADD CONSTRAINT small CHECK (id < 10);\n",
    )
    .unwrap();
    let before = fingerprint("pl_shell");
    let mut like = ws.snapguard();
    like.env("SNAPGUARD_BIN", env!("CARGO_BIN_EXE_snapguard"));
    let run = Run(bash_like(&like)
        .arg(&script)
        .args(["--release", "v2"])
        .output()
        .unwrap());
    run.expect_code(4).expect_stderr("rolled back (exit 4)");
    assert_eq!(fingerprint("pl_shell"), before);
}

/// `bash` in the directory and with the environment changes of `like`
/// (a prepared `snapguard` command: clean environment, working directory).
fn bash_like(like: &Command) -> Command {
    let mut bash = Command::new("bash");
    if let Some(dir) = like.get_current_dir() {
        bash.current_dir(dir);
    }
    for (k, v) in like.get_envs() {
        match v {
            Some(v) => bash.env(k, v),
            None => bash.env_remove(k),
        };
    }
    bash
}

/// A step of the action with `run:`: its id, its env (expressions still
/// in), the command, the working directory.
struct Step {
    id: Option<String>,
    env: BTreeMap<String, String>,
    run: String,
    dir: Option<String>,
}

/// The action's steps with `run:`, in order. Checks on the way that no
/// expression is interpolated into shell text.
fn action_steps() -> Vec<Step> {
    let text = std::fs::read_to_string(repo().join("action.yml")).unwrap();
    let action: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(action["runs"]["using"], "composite");
    action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|step| {
            let run = step["run"].as_str()?;
            assert!(
                !run.contains("${{"),
                "an expression is interpolated into shell text: {run}"
            );
            let env = step["env"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            Some(Step {
                id: step["id"].as_str().map(str::to_owned),
                env,
                run: run.to_owned(),
                dir: step["working-directory"].as_str().map(str::to_owned),
            })
        })
        .collect()
}

/// A simulated runner for the action: `uses: owner/snapguard@<action_ref>`,
/// releases served from `releases` (file:// in GitHub's download layout),
/// a `cargo` shim recording a source build.
struct Runner<'a> {
    inputs: BTreeMap<&'static str, String>,
    action_ref: String,
    home: &'a Path,
    releases: &'a Path,
    shims: &'a Path,
}

/// What one run of the action left.
struct Ran {
    code: i32,
    log: String,
    outputs: String,
    summary: String,
}

impl Runner<'_> {
    /// Replaces the expressions the action uses with what a runner would.
    fn resolve(&self, value: &str, steps: &BTreeMap<String, BTreeMap<String, String>>) -> String {
        let mut out = value
            .replace("${{ github.action_path }}", repo().to_str().unwrap())
            .replace("${{ github.action_repository }}", "owner/snapguard")
            .replace("${{ github.action_ref }}", &self.action_ref);
        for (name, v) in &self.inputs {
            out = out.replace(&format!("${{{{ inputs.{name} }}}}"), v);
        }
        for (id, outputs) in steps {
            for (name, v) in outputs {
                out = out.replace(&format!("${{{{ steps.{id}.outputs.{name} }}}}"), v);
            }
        }
        // An output a step did not set is empty, as on a real runner.
        while let Some(start) = out.find("${{ steps.") {
            let end = out[start..].find("}}").expect("a closed expression") + start + 2;
            out.replace_range(start..end, "");
        }
        assert!(
            !out.contains("${{"),
            "an expression the simulation does not know: {out}"
        );
        out
    }

    /// Runs the action's `run:` steps in order, each with its own
    /// `$GITHUB_OUTPUT`, until one fails.
    fn run(&self, like: &Command, workdir: &Path) -> Ran {
        let mut steps: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let summary = workdir.join("github_summary");
        let _ = std::fs::remove_file(&summary);
        let mut ran = Ran {
            code: 0,
            log: String::new(),
            outputs: String::new(),
            summary: String::new(),
        };
        for step in action_steps() {
            let output = workdir.join("github_output");
            let _ = std::fs::remove_file(&output);
            let env: BTreeMap<String, String> = step
                .env
                .iter()
                .map(|(k, v)| (k.clone(), self.resolve(v, &steps)))
                .collect();
            let dir = step
                .dir
                .map(|d| self.resolve(&d, &steps))
                .unwrap_or_else(|| workdir.display().to_string());
            let out = bash_like(like)
                .args(["-e", "-c", &step.run])
                .current_dir(dir)
                .env("HOME", self.home)
                .env(
                    "PATH",
                    format!(
                        "{}:{}",
                        self.shims.display(),
                        std::env::var("PATH").unwrap()
                    ),
                )
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_OUTPUT", &output)
                .env("GITHUB_STEP_SUMMARY", &summary)
                .env("GITHUB_PATH", self.home.join("github_path"))
                .env("GITHUB_SHA", "0123abcd")
                .env(
                    "SNAPGUARD_DOWNLOAD_URL",
                    format!("file://{}", self.releases.display()),
                )
                .envs(&env)
                .output()
                .unwrap();
            ran.code = out.status.code().unwrap_or(-1);
            ran.log.push_str(&String::from_utf8_lossy(&out.stdout));
            ran.log.push_str(&String::from_utf8_lossy(&out.stderr));
            ran.outputs = std::fs::read_to_string(&output).unwrap_or_default();
            if let Some(id) = step.id {
                let parsed = ran
                    .outputs
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                steps.insert(id, parsed);
            }
            if ran.code != 0 {
                break;
            }
        }
        ran.summary = std::fs::read_to_string(&summary).unwrap_or_default();
        ran
    }
}

/// The target the install step asks for on this machine.
fn this_target() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// Packages the test binary with `scripts/package` as release `tag` under
/// `releases` (and as `latest` when asked); `epoch` varies the archive.
fn publish(releases: &Path, tag: &str, epoch: u64) -> PathBuf {
    let dir = releases.join("owner/snapguard/releases/download").join(tag);
    common::run_ok(
        Command::new(repo().join("scripts/package"))
            .args(["--binary", env!("CARGO_BIN_EXE_snapguard"), "--target"])
            .arg(this_target())
            .arg("--out")
            .arg(&dir)
            .env("SOURCE_DATE_EPOCH", epoch.to_string()),
    );
    dir.join(format!("snapguard-{}.tar.gz", this_target()))
}

/// Serves `tag`'s assets as the newest release too.
fn make_latest(releases: &Path, tag: &str) {
    let from = releases.join("owner/snapguard/releases/download").join(tag);
    let to = releases.join("owner/snapguard/releases/latest/download");
    let _ = std::fs::remove_dir_all(&to);
    copy_dir(&from, &to);
}

/// A `cargo` that records how the install step called it and installs a
/// stand-in that says where it came from.
fn cargo_shim() -> tempfile::TempDir {
    let shims = tempfile::tempdir().unwrap();
    std::fs::write(
        shims.path().join("cargo"),
        "#!/bin/sh\necho \"$@\" > \"$HOME/cargo-args\"\n\
         printf '#!/bin/sh\\necho built from source\\n' > \"$HOME/.snapguard/bin/snapguard\"\n\
         chmod +x \"$HOME/.snapguard/bin/snapguard\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        shims.path().join("cargo"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    shims
}

#[test]
fn the_action_runs_in_a_simulated_runner_for_a_good_and_a_failing_deploy() {
    let ws = app("pl_action", "ALTER TABLE items ADD COLUMN note text;\n");
    let home = tempfile::tempdir().unwrap();
    let releases = tempfile::tempdir().unwrap();
    let shims = cargo_shim();
    publish(releases.path(), "v1.0.0", 1);
    let mut runner = Runner {
        inputs: BTreeMap::new(),
        action_ref: "v1.0.0".into(),
        home: home.path(),
        releases: releases.path(),
        shims: shims.path(),
    };
    runner.inputs.insert("command", "deploy".to_owned());
    runner.inputs.insert("args", "--release v1".to_owned());
    runner.inputs.insert("config", "snapguard.yml".to_owned());
    runner
        .inputs
        .insert("working-directory", ws.path().display().to_string());
    runner.inputs.insert("version", String::new());

    let ran = runner.run(&ws.snapguard(), ws.path());
    assert_eq!(ran.code, 0, "{}", ran.log);
    assert!(
        ran.log.contains("installed (SHA-256 checked)"),
        "{}",
        ran.log
    );
    assert!(ran.outputs.contains("outcome=succeeded"), "{}", ran.outputs);
    assert!(ran.outputs.contains("applied=1"), "{}", ran.outputs);
    for output in ["snapshot-id=", "deploy-id="] {
        assert!(
            ran.outputs
                .lines()
                .any(|l| l.starts_with(output) && l.len() > 20),
            "{}",
            ran.outputs
        );
    }
    assert!(
        ran.summary.contains("snapguard deploy: succeeded"),
        "{}",
        ran.summary
    );

    std::fs::write(
        ws.path().join("migrations/2_bad.sql"),
        "ALTER TABLE items ADD CONSTRAINT small CHECK (id < 10);\n",
    )
    .unwrap();
    runner.inputs.insert("args", "--release v2".to_owned());
    let ran = runner.run(&ws.snapguard(), ws.path());
    assert_eq!(ran.code, 4, "{}", ran.log);
    assert!(ran.log.contains("(cached, archive"), "{}", ran.log);
    assert!(
        ran.outputs.contains("outcome=rolled_back"),
        "{}",
        ran.outputs
    );
    // The migrations ran and were undone: none is left applied.
    assert!(
        ran.outputs.lines().any(|l| l == "applied="),
        "{}",
        ran.outputs
    );
    assert!(ran.log.contains("::error file="), "{}", ran.log);
    assert!(ran.summary.contains("rolled back"), "{}", ran.summary);

    // Any snapguard command, with arguments one per line (one holding a
    // space); anything else is refused before it reaches a shell.
    runner.inputs.insert("command", "snapshots".to_owned());
    runner.inputs.insert("args", "list\n--json\n".to_owned());
    let ran = runner.run(&ws.snapguard(), ws.path());
    assert_eq!(ran.code, 0, "{}", ran.log);
    runner.inputs.insert("command", "snapshot".to_owned());
    runner
        .inputs
        .insert("args", "--release\nnightly build 7\n".to_owned());
    let ran = runner.run(&ws.snapguard(), ws.path());
    assert_eq!(ran.code, 0, "{}", ran.log);
    let listed = ws.run(&["snapshots", "list", "--json"]);
    assert!(
        listed.stdout().contains("nightly build 7"),
        "{}",
        listed.stdout()
    );
    runner.inputs.insert("command", "rm -rf /".to_owned());
    let ran = runner.run(&ws.snapguard(), ws.path());
    assert_eq!(ran.code, 2, "{}", ran.log);
    assert!(ran.log.contains("unsupported command"), "{}", ran.log);
}

#[test]
fn the_action_installs_a_published_release_only_when_its_checksum_matches() {
    let releases = tempfile::tempdir().unwrap();
    let shims = cargo_shim();
    let archive = publish(releases.path(), "v9.9.9", 1);

    // The archive as scripts/package lays it out, with a checksum
    // `sha256sum -c` accepts.
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(&archive)
        .output()
        .unwrap();
    let mut names: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    names.sort();
    for expected in [
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "SECURITY.md",
        "snapguard",
        "completions/_snapguard",
        "completions/snapguard.bash",
        "completions/snapguard.fish",
        "man/snapguard.1",
        "man/snapguard-deploy.1",
        "man/snapguard-recover.1",
    ] {
        assert!(
            names.contains(&expected.to_owned()),
            "{expected} in {names:?}"
        );
    }
    // Every file the README links to is in the archive beside it.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for link in readme.split("](").skip(1) {
        let target = link.split(')').next().unwrap().split('#').next().unwrap();
        if target.is_empty() || target.contains("://") {
            continue;
        }
        assert!(
            names.contains(&target.to_owned()),
            "README links to `{target}`, not shipped"
        );
    }
    // Modes are the archive's own, not the packager's umask: packaged
    // again under umask 077, from a PATH without rustc, it is the same
    // archive byte for byte.
    let listing = Command::new("tar")
        .arg("-tvzf")
        .arg(&archive)
        .output()
        .unwrap();
    for line in String::from_utf8_lossy(&listing.stdout).lines() {
        let mode = line.split_whitespace().next().unwrap();
        assert!(
            ["-rw-r--r--", "-rwxr-xr-x", "drwxr-xr-x"].contains(&mode),
            "{line}"
        );
    }
    let again = tempfile::tempdir().unwrap();
    let script = format!(
        "umask 077; exec {} --binary {} --target {} --out {}",
        repo().join("scripts/package").display(),
        env!("CARGO_BIN_EXE_snapguard"),
        this_target(),
        again.path().display()
    );
    common::run_ok(
        Command::new("sh")
            .args(["-c", &script])
            .env("PATH", "/usr/bin:/bin")
            .env("SOURCE_DATE_EPOCH", "1"),
    );
    let name = format!("snapguard-{}.tar.gz", this_target());
    assert_eq!(
        std::fs::read(again.path().join(&name)).unwrap(),
        std::fs::read(&archive).unwrap(),
        "the archive depends on the umask or the toolchain"
    );

    let check = Command::new("sha256sum")
        .arg("-c")
        .arg(archive.file_name().unwrap().to_str().unwrap().to_owned() + ".sha256")
        .current_dir(archive.parent().unwrap())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // Tampered: the archive changed after its checksum was published.
    let tampered = publish(releases.path(), "v6.6.6", 1);
    let mut bytes = std::fs::read(&tampered).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&tampered, bytes).unwrap();

    let install = |version: &str, action_ref: &str, home: &Path| {
        let mut inputs = BTreeMap::new();
        inputs.insert("version", version.to_owned());
        inputs.insert("command", "man".to_owned());
        inputs.insert("args", String::new());
        inputs.insert("config", "snapguard.yml".to_owned());
        inputs.insert("working-directory", home.display().to_string());
        let runner = Runner {
            inputs,
            action_ref: action_ref.into(),
            home,
            releases: releases.path(),
            shims: shims.path(),
        };
        runner.run(&Command::new("true"), home)
    };
    let installed_version = |home: &Path| {
        let out = Command::new(home.join(".snapguard/bin/snapguard"))
            .arg("--version")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };

    // Published, checksum right: installed, on the PATH, runs.
    let home = tempfile::tempdir().unwrap();
    let ran = install("v9.9.9", "v1", home.path());
    assert_eq!(ran.code, 0, "{}", ran.log);
    assert!(ran.log.contains("SHA-256 checked"), "{}", ran.log);
    assert_eq!(
        installed_version(home.path()),
        format!("snapguard {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(
        std::fs::read_to_string(home.path().join("github_path"))
            .unwrap()
            .contains(".snapguard/bin")
    );
    assert!(!home.path().join("cargo-args").exists(), "built anyway");

    // Published, archive tampered: refused, nothing installed, nothing built.
    let home = tempfile::tempdir().unwrap();
    let ran = install("v6.6.6", "v1", home.path());
    assert_eq!(ran.code, 1, "{}", ran.log);
    assert!(ran.log.contains("the download's SHA-256 is"), "{}", ran.log);
    assert!(!home.path().join(".snapguard/bin/snapguard").exists());
    assert!(!home.path().join("cargo-args").exists());

    // A named version that is not published: an error, never a silent
    // source build.
    let home = tempfile::tempdir().unwrap();
    let ran = install("v7.7.7", "v1", home.path());
    assert_eq!(ran.code, 1, "{}", ran.log);
    assert!(
        ran.log.contains("no published release `v7.7.7`"),
        "{}",
        ran.log
    );
    assert!(!home.path().join("cargo-args").exists());

    // No version, the action pinned by commit SHA (or a major tag that is
    // not a release): the newest release.
    make_latest(releases.path(), "v9.9.9");
    for pinned in ["8f2c5a1d9e0b4c7a6f3e2d1c0b9a8f7e6d5c4b3a", "v1"] {
        let home = tempfile::tempdir().unwrap();
        let ran = install("", pinned, home.path());
        assert_eq!(ran.code, 0, "{pinned}: {}", ran.log);
        assert!(
            ran.log.contains("installing the newest release"),
            "{}",
            ran.log
        );
        assert!(home.path().join(".snapguard/bin/snapguard").exists());
    }

    // A tag that moves to a new build: its checksum, and so the cache key,
    // changes, and a binary cached from the old archive is replaced.
    let home = tempfile::tempdir().unwrap();
    publish(releases.path(), "v2", 2);
    let first = install("v2", "v2", home.path());
    assert_eq!(first.code, 0, "{}", first.log);
    publish(releases.path(), "v2", 3);
    let moved = install("v2", "v2", home.path());
    assert_eq!(moved.code, 0, "{}", moved.log);
    assert!(
        moved.log.contains("installed (SHA-256 checked)"),
        "{}",
        moved.log
    );
    assert!(!moved.log.contains("(cached"), "{}", moved.log);
    let key = |log: &str| {
        log.lines()
            .find(|l| l.starts_with("snapguard v2 for"))
            .map(str::to_owned)
    };
    assert_ne!(key(&first.log), key(&moved.log));

    // `version: source` builds the action's own source, asked for.
    let home = tempfile::tempdir().unwrap();
    let ran = install("source", "v1", home.path());
    assert_eq!(ran.code, 0, "{}", ran.log);
    assert!(ran.log.contains("built from source"), "{}", ran.log);
    let args = std::fs::read_to_string(home.path().join("cargo-args")).unwrap();
    assert_eq!(
        args.trim(),
        format!(
            "install --locked --path {} --root {}/.snapguard --bin snapguard",
            repo().display(),
            home.path().display()
        )
    );
}

#[test]
fn every_output_snapguard_writes_is_declared_by_the_action() {
    let text = std::fs::read_to_string(repo().join("action.yml")).unwrap();
    let action: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let declared: Vec<&str> = action["outputs"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for name in snapguard::ci::OUTPUTS {
        assert!(
            declared.contains(name),
            "`{name}` is written but not declared"
        );
        assert_eq!(
            action["outputs"][*name]["value"],
            format!("${{{{ steps.run.outputs.{name} }}}}")
        );
    }
}

/// Every GitHub workflow shipped (templates and the repository's own).
fn github_workflows() -> Vec<PathBuf> {
    let mut out = Vec::new();
    files(&repo().join("pipeline/github-actions"), &mut out);
    files(&repo().join(".github/workflows"), &mut out);
    out.retain(|p| p.extension().is_some_and(|e| e == "yml"));
    out
}

#[test]
fn the_templates_follow_the_runners_conventions() {
    let workflows = github_workflows();
    assert!(workflows.len() >= 4, "{workflows:?}");
    for file in &workflows {
        let text = std::fs::read_to_string(file).unwrap();
        let workflow: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let name = file.display();
        // No apt package the runner image lacks: the runner's own
        // PostgreSQL or a container.
        assert!(
            !text.contains("apt-get install -y postgresql-"),
            "{name}: installs a PostgreSQL package the image does not carry"
        );
        assert!(
            !workflow["permissions"].to_string().contains("id-token"),
            "{name}: OIDC for every job, pull requests included"
        );
        for (job_name, job) in workflow["jobs"].as_object().unwrap() {
            let steps = job["steps"].as_array().unwrap();
            for step in steps {
                if let Some(run) = step["run"].as_str() {
                    assert!(
                        !run.contains("${{"),
                        "{name}/{job_name}: `${{{{ }}}}` in run: {run}"
                    );
                }
                if let Some(uses) = step["uses"].as_str() {
                    let (action, rest) = uses.split_once('@').unwrap();
                    let pinned = rest.len() == 40 && rest.chars().all(|c| c.is_ascii_hexdigit());
                    assert!(
                        pinned || action == "OWNER/snapguard",
                        "{name}/{job_name}: `{uses}` is not pinned by commit SHA"
                    );
                    if pinned {
                        let line = text.lines().find(|l| l.contains(uses)).unwrap();
                        assert!(
                            line.contains("# v"),
                            "{name}: `{uses}` without its version in a comment"
                        );
                    }
                }
            }
            // A job a pull request runs gets nothing of production.
            let on_pull_requests = job["if"]
                .as_str()
                .is_some_and(|c| c.contains("pull_request"))
                || (job["if"].is_null() && workflow["on"].get("pull_request").is_some());
            if on_pull_requests && !file.ends_with("ci.yml") {
                let job_text = job.to_string();
                for forbidden in [
                    "secrets.",
                    "configure-aws-credentials",
                    "id-token",
                    "--snapshot",
                ] {
                    assert!(
                        !job_text.contains(forbidden),
                        "{name}/{job_name}: a pull-request job uses `{forbidden}`"
                    );
                }
                assert!(
                    job["environment"].is_null(),
                    "{name}/{job_name}: a pull-request job in an environment"
                );
            }
        }
    }
    // GitLab: the release binary, a cache path inside the project.
    let gitlab = std::fs::read_to_string(repo().join("pipeline/gitlab/.gitlab-ci.yml")).unwrap();
    assert!(
        !gitlab.contains("cargo install"),
        "GitLab builds from source"
    );
    assert!(gitlab.contains("pipeline/install.sh"));
    let ci: serde_json::Value = serde_saphyr::from_str(&gitlab).unwrap();
    for path in ci[".snapguard"]["cache"]["paths"].as_array().unwrap() {
        let path = path.as_str().unwrap();
        assert!(
            !path.starts_with('/') && !path.starts_with('~'),
            "a cache path outside the project: {path}"
        );
    }
    let mr_job = ci["rehearse"].to_string();
    assert!(
        !mr_job.contains("--snapshot"),
        "merge requests read production snapshots"
    );
    // Codeship Pro: the Dockerfile it names is shipped, and installs the release.
    let services =
        std::fs::read_to_string(repo().join("pipeline/codeship/codeship-services.yml")).unwrap();
    let services: serde_json::Value = serde_saphyr::from_str(&services).unwrap();
    let dockerfile = repo().join(
        services["snapguard"]["build"]["dockerfile"]
            .as_str()
            .unwrap(),
    );
    let dockerfile = std::fs::read_to_string(&dockerfile)
        .unwrap_or_else(|e| panic!("{}: {e}", dockerfile.display()));
    assert!(dockerfile.contains("install.sh") && !dockerfile.contains("cargo install"));
}

/// A GitLab job run as a runner would: the template's variables, then its
/// `before_script` and `script` lines in one shell (the `apt-get` line is
/// skipped: this machine has curl).
fn gitlab_job(job: &str, ws: &Workspace, releases: &Path, sha: &str) -> Run {
    let text = std::fs::read_to_string(repo().join("pipeline/gitlab/.gitlab-ci.yml")).unwrap();
    let ci: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let base = &ci[".snapguard"];
    let lines: Vec<String> = base["before_script"]
        .as_array()
        .unwrap()
        .iter()
        .chain(ci[job]["script"].as_array().unwrap())
        .map(|l| l.as_str().unwrap().to_owned())
        .filter(|l| !l.starts_with("apt-get"))
        .collect();
    let project = ws.path().display().to_string();
    let mut cmd = bash_like(&ws.snapguard());
    cmd.args(["-e", "-c", &lines.join("\n")])
        .env("CI_PROJECT_DIR", &project)
        .env("CI_COMMIT_SHA", sha)
        .env("SNAPGUARD_REPOSITORY", "owner/snapguard")
        .env(
            "SNAPGUARD_DOWNLOAD_URL",
            format!("file://{}", releases.display()),
        )
        .env("PATH", std::env::var("PATH").unwrap());
    for (name, value) in ci["variables"].as_object().unwrap() {
        let value = value.as_str().unwrap().replace("$CI_PROJECT_DIR", &project);
        cmd.env(name, value);
    }
    Run(cmd.output().unwrap())
}

#[test]
fn the_gitlab_template_installs_the_release_and_deploys() {
    let ws = app("pl_gitlab", "ALTER TABLE items ADD COLUMN note text;\n");
    copy_dir(&repo().join("pipeline"), &ws.path().join("pipeline"));
    let releases = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("pipeline/gitlab/.gitlab-ci.yml")).unwrap();
    let ci: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let version = ci["variables"]["SNAPGUARD_VERSION"]
        .as_str()
        .unwrap()
        .to_owned();
    publish(releases.path(), &version, 1);

    let first = gitlab_job("deploy", &ws, releases.path(), "c0ffee1");
    first.expect_code(0);
    assert!(
        first.stdout().contains("SHA-256 checked"),
        "{}",
        first.stdout()
    );
    assert!(
        first.stdout().contains("snapguard: deployed"),
        "{}",
        first.stdout()
    );
    assert!(ws.path().join(".snapguard/snapguard").exists());
    // The next pipeline: the cached binary is kept, the deploy rehearses on
    // the snapshot the first one took, then has nothing to do.
    let second = gitlab_job("deploy", &ws, releases.path(), "c0ffee2");
    second.expect_code(0);
    assert!(
        second.stdout().contains("already installed"),
        "{}",
        second.stdout()
    );
    assert!(second.stdout().contains("rehears"), "{}", second.stdout());
}

#[test]
fn the_codeship_basic_script_installs_the_release_and_deploys() {
    let ws = app("pl_codeship", "ALTER TABLE items ADD COLUMN note text;\n");
    let releases = tempfile::tempdir().unwrap();
    publish(releases.path(), "v9.9.9", 1);
    let home = tempfile::tempdir().unwrap();
    // `snapguard` must not be found on the PATH: the script installs it.
    let path: Vec<String> = std::env::var("PATH")
        .unwrap()
        .split(':')
        .filter(|d| !Path::new(d).join("snapguard").exists())
        .map(str::to_owned)
        .collect();
    let run = Run(bash_like(&ws.snapguard())
        .arg(repo().join("pipeline/codeship/deploy.sh"))
        .env("HOME", home.path())
        .env("PATH", path.join(":"))
        .env("CI_COMMIT_ID", "c0ffee1")
        .env("SNAPGUARD_VERSION", "v9.9.9")
        .env("SNAPGUARD_REPOSITORY", "owner/snapguard")
        .env(
            "SNAPGUARD_DOWNLOAD_URL",
            format!("file://{}", releases.path().display()),
        )
        .output()
        .unwrap());
    run.expect_code(0);
    assert!(run.stdout().contains("SHA-256 checked"), "{}", run.stdout());
    assert!(
        run.stdout().contains("snapguard: deployed"),
        "{}",
        run.stdout()
    );
    assert!(home.path().join(".snapguard/bin/snapguard").exists());
}

/// The commands `snapguard --help` lists, in its order (`help` left out).
fn commands_of_the_binary() -> Vec<String> {
    let text = help(&[]);
    text.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_action_accepts_exactly_the_commands_snapguard_has() {
    let script =
        std::fs::read_to_string(repo().join("pipeline/github-actions/action/run.sh")).unwrap();
    let listed: Vec<String> = script
        .lines()
        .find_map(|line| line.strip_prefix("commands=\""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("run.sh names its commands on one `commands=\"…\"` line")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let binary = commands_of_the_binary();
    assert!(binary.len() >= 16, "{binary:?}");
    assert_eq!(listed, binary, "run.sh's commands and snapguard's differ");
    let action = std::fs::read_to_string(repo().join("action.yml")).unwrap();
    let described = action
        .lines()
        .find(|line| line.contains("a snapguard command:"))
        .unwrap();
    for command in &binary {
        assert!(
            described.contains(&format!(" {command}")),
            "{command}: {described}"
        );
    }

    // Run through the action's own run step: `lint` and `config` work.
    let ws = app(
        "pl_action_cmds",
        "ALTER TABLE items ADD COLUMN note text;\n",
    );
    for (command, args, expect) in [
        ("lint", "migrations", "0"),
        ("config", "schema", "0"),
        ("lint", "--format\nbogus", "2"),
    ] {
        let out = bash_like(&ws.snapguard())
            .arg(repo().join("pipeline/github-actions/action/run.sh"))
            .env("SNAPGUARD_BIN", env!("CARGO_BIN_EXE_snapguard"))
            .env("INPUT_COMMAND", command)
            .env("INPUT_ARGS", args)
            .env("INPUT_CONFIG", "snapguard.yml")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code().map(|c| c.to_string()).as_deref(),
            Some(expect),
            "{command} {args}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A port nothing listens on: connecting is refused at once.
#[test]
fn a_network_failure_is_not_reported_as_a_missing_release() {
    let releases = tempfile::tempdir().unwrap();
    publish(releases.path(), "v1.0.0", 1);
    let unreachable = format!("http://127.0.0.1:{}", closed_port());
    let served = format!("file://{}", releases.path().display());
    let resolve = |base: &str, version: &str| {
        let out = Command::new("bash")
            .arg(repo().join("pipeline/github-actions/action/resolve.sh"))
            .env("SNAPGUARD_DOWNLOAD_URL", base)
            .env("SNAPGUARD_REPOSITORY", "owner/snapguard")
            .env("SNAPGUARD_VERSION", version)
            .env("SNAPGUARD_REF", "v1")
            .env_remove("GITHUB_OUTPUT")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, log) = resolve(&unreachable, "v1.0.0");
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("a network failure, not a missing release"),
        "{log}"
    );
    assert!(!log.contains("no published release"), "{log}");
    // Without a version the action's ref is tried, then the newest: a
    // network failure stops at the first, never falls back.
    let (code, log) = resolve(&unreachable, "");
    assert_eq!(code, Some(1), "{log}");
    assert!(!log.contains("installing the newest release"), "{log}");
    // What is really missing is still named as such.
    let (code, log) = resolve(&served, "v4.4.4");
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("no published release `v4.4.4`"), "{log}");
    let (code, log) = resolve(&served, "v1.0.0");
    assert_eq!(code, Some(0), "{log}");

    // The standalone installer, the same way.
    let home = tempfile::tempdir().unwrap();
    let install = |base: &str, version: &str| {
        let out = Command::new("bash")
            .arg(repo().join("pipeline/install.sh"))
            .env("SNAPGUARD_DOWNLOAD_URL", base)
            .env("SNAPGUARD_VERSION", version)
            .env("SNAPGUARD_REPOSITORY", "owner/snapguard")
            .env("SNAPGUARD_DIR", home.path().join("bin"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, log) = install(&unreachable, "v1.0.0");
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("a network failure, not a missing release"),
        "{log}"
    );
    let (code, log) = install(&served, "v4.4.4");
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("no published release `v4.4.4`"), "{log}");
}
