//! The CI templates: every file in `pipeline/` and `action.yml` parses, every
//! snapguard command and flag they use exists (checked against the binary's
//! own `--help`), `shell/deploy.sh` deploys and rolls back end to end, and
//! the action's steps run in a simulated GitHub runner (its `GITHUB_*`
//! files and variables) for a successful and a failing deploy, and its
//! install step takes a published release only when its SHA-256 matches.

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

/// The action's steps with `run:`, in order: (env with `${{ inputs.* }}`
/// and `${{ github.* }}` resolved, the command, the working directory).
fn action_steps(
    inputs: &BTreeMap<&str, String>,
) -> Vec<(BTreeMap<String, String>, String, Option<String>)> {
    let text = std::fs::read_to_string(repo().join("action.yml")).unwrap();
    let action: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(action["runs"]["using"], "composite");
    let resolve = |v: &str| -> String {
        let mut out = v.to_owned();
        // `uses: owner/snapguard@v1`: the action's ref is v1.
        let version = inputs
            .get("version")
            .filter(|v| !v.is_empty())
            .map_or("v1", |v| v.as_str());
        out = out.replace("${{ inputs.version || github.action_ref }}", version);
        for (name, value) in inputs {
            out = out.replace(&format!("${{{{ inputs.{name} }}}}"), value);
        }
        out.replace("${{ github.action_path }}", repo().to_str().unwrap())
            .replace("${{ github.action_repository }}", "owner/snapguard")
    };
    action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|step| {
            let run = step["run"].as_str()?;
            let env = step["env"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), resolve(v.as_str().unwrap_or(""))))
                        .collect()
                })
                .unwrap_or_default();
            assert!(
                !run.contains("${{"),
                "an expression is interpolated into shell text: {run}"
            );
            Some((
                env,
                run.to_owned(),
                step["working-directory"].as_str().map(resolve),
            ))
        })
        .collect()
}

#[test]
fn the_action_runs_in_a_simulated_runner_for_a_good_and_a_failing_deploy() {
    let ws = app("pl_action", "ALTER TABLE items ADD COLUMN note text;\n");
    let home = tempfile::tempdir().unwrap();
    // The binary is "cached" from an earlier run, as actions/cache restores it.
    std::fs::create_dir_all(home.path().join(".snapguard/bin")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_snapguard"),
        home.path().join(".snapguard/bin/snapguard"),
    )
    .unwrap();
    let mut inputs = BTreeMap::new();
    inputs.insert("command", "deploy".to_owned());
    inputs.insert("args", "--release v1".to_owned());
    inputs.insert("config", "snapguard.yml".to_owned());
    inputs.insert("working-directory", ws.path().display().to_string());
    inputs.insert("version", String::new());

    let run_action = |inputs: &BTreeMap<&str, String>| -> (i32, String, String, String) {
        let output = ws.path().join("github_output");
        let summary = ws.path().join("github_summary");
        let _ = std::fs::remove_file(&output);
        let _ = std::fs::remove_file(&summary);
        let mut last = (0, String::new());
        for (env, run, dir) in action_steps(inputs) {
            let out = bash_like(&ws.snapguard())
                .args(["-e", "-c", &run])
                .current_dir(dir.unwrap_or_else(|| ws.path().display().to_string()))
                .env("HOME", home.path())
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_OUTPUT", &output)
                .env("GITHUB_STEP_SUMMARY", &summary)
                .env("GITHUB_PATH", ws.path().join("github_path"))
                .env("GITHUB_SHA", "0123abcd")
                .envs(&env)
                .output()
                .unwrap();
            last = (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            );
            if last.0 != 0 {
                break;
            }
        }
        (
            last.0,
            last.1,
            std::fs::read_to_string(&output).unwrap_or_default(),
            std::fs::read_to_string(&summary).unwrap_or_default(),
        )
    };

    let (code, log, outputs, summary) = run_action(&inputs);
    assert_eq!(code, 0, "{log}");
    assert!(outputs.contains("outcome=succeeded"), "{outputs}");
    assert!(outputs.contains("applied=1"), "{outputs}");
    assert!(
        outputs
            .lines()
            .any(|l| l.starts_with("snapshot-id=") && l.len() > 20),
        "{outputs}"
    );
    assert!(
        outputs
            .lines()
            .any(|l| l.starts_with("deploy-id=") && l.len() > 20),
        "{outputs}"
    );
    assert!(summary.contains("snapguard deploy: succeeded"), "{summary}");

    std::fs::write(
        ws.path().join("migrations/2_bad.sql"),
        "ALTER TABLE items ADD CONSTRAINT small CHECK (id < 10);\n",
    )
    .unwrap();
    inputs.insert("args", "--release v2".to_owned());
    let (code, log, outputs, summary) = run_action(&inputs);
    assert_eq!(code, 4, "{log}");
    assert!(outputs.contains("outcome=rolled_back"), "{outputs}");
    assert!(log.contains("::error file="), "{log}");
    assert!(summary.contains("rolled back"), "{summary}");

    // An unknown command is refused by the run step, not passed to a shell.
    inputs.insert("command", "rm -rf /".to_owned());
    let (code, log, _, _) = run_action(&inputs);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("unsupported command"), "{log}");
}

#[test]
fn the_action_installs_a_published_release_only_when_its_checksum_matches() {
    // `uname -m`, as the install script names the runner's target.
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    // A release "server": file:// URLs laid out as GitHub's download paths.
    let releases = tempfile::tempdir().unwrap();
    let publish = |version: &str, tamper: bool| {
        let dir = releases
            .path()
            .join("owner/snapguard/releases/download")
            .join(version);
        std::fs::create_dir_all(&dir).unwrap();
        // A stand-in binary: what is checked is how it is installed.
        let stage = tempfile::tempdir().unwrap();
        std::fs::write(
            stage.path().join("snapguard"),
            format!("#!/bin/sh\necho snapguard {version}\n"),
        )
        .unwrap();
        let archive = dir.join(format!("snapguard-{target}.tar.gz"));
        let status = Command::new("tar")
            .arg("-czf")
            .arg(&archive)
            .arg("-C")
            .arg(stage.path())
            .arg("snapguard")
            .status()
            .unwrap();
        assert!(status.success());
        let sum = Command::new("sha256sum").arg(&archive).output().unwrap();
        let mut line = String::from_utf8(sum.stdout).unwrap();
        if tamper {
            line.replace_range(0..4, "0000");
        }
        std::fs::write(archive.with_extension("gz.sha256"), line).unwrap();
    };
    publish("v9.9.9", false);
    publish("v6.6.6", true);

    // `cargo` as the build-from-source fallback calls it, recording how.
    let shims = tempfile::tempdir().unwrap();
    std::fs::write(
        shims.path().join("cargo"),
        "#!/bin/sh\necho \"$@\" > \"$HOME/cargo-args\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        shims.path().join("cargo"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let install = |version: &str| {
        let home = tempfile::tempdir().unwrap();
        let mut inputs = BTreeMap::new();
        inputs.insert("version", version.to_owned());
        let (env, run, _) = action_steps(&inputs)
            .into_iter()
            .find(|(_, run, _)| run.contains("install.sh"))
            .expect("an install step");
        let out = Command::new("bash")
            .args(["-e", "-c", &run])
            .env("HOME", home.path())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    shims.path().display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .env("GITHUB_PATH", home.path().join("github_path"))
            .env(
                "SNAPGUARD_DOWNLOAD_URL",
                format!("file://{}", releases.path().display()),
            )
            .envs(&env)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), log, home)
    };

    // Published, checksum right: installed, on the PATH, runs.
    let (code, log, home) = install("v9.9.9");
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("snapguard v9.9.9 downloaded"), "{log}");
    let bin = home.path().join(".snapguard/bin");
    let version = Command::new(bin.join("snapguard"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        "snapguard v9.9.9\n"
    );
    assert!(
        std::fs::read_to_string(home.path().join("github_path"))
            .unwrap()
            .contains(bin.to_str().unwrap())
    );
    assert!(!home.path().join("cargo-args").exists(), "built anyway");

    // Published, checksum wrong: refused, nothing installed, nothing built.
    let (code, log, home) = install("v6.6.6");
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("::error::snapguard v6.6.6"), "{log}");
    assert!(!home.path().join(".snapguard/bin/snapguard").exists());
    assert!(!home.path().join("cargo-args").exists());

    // Not published for this ref: the action's own source is built.
    let (code, log, home) = install("");
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("no published snapguard v1"), "{log}");
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
