//! `snapguard init`: the scaffold is a working project (its config loads,
//! its folder takes migrations in the chosen format, `plan` and `migrate`
//! run with it), and nothing is overwritten without `--force`.

mod common;

use common::*;
use std::process::Command;

/// An empty project directory.
fn project() -> Workspace {
    let ws = Workspace::new("");
    std::fs::remove_file(ws.path().join("snapguard.yml")).unwrap();
    ws
}

fn read(ws: &Workspace, file: &str) -> String {
    std::fs::read_to_string(ws.path().join(file)).unwrap()
}

#[test]
fn the_scaffold_is_a_working_project_in_the_chosen_format() {
    let ws = project();
    let run = ws.run(&["init", "--format", "flyway"]);
    run.expect_code(0);
    for file in [
        "snapguard.yml",
        "db/migrations/README.md",
        ".github/workflows/deploy.yml",
    ] {
        assert!(
            run.stdout().contains(&format!("created {file}\n")),
            "{file}"
        );
    }
    assert!(read(&ws, "snapguard.yml").contains("  format: flyway\n"));
    assert!(read(&ws, "db/migrations/README.md").contains("V1__create_users.sql"));
    let workflow: serde_json::Value =
        serde_saphyr::from_str(&read(&ws, ".github/workflows/deploy.yml")).unwrap();
    assert_eq!(
        workflow["jobs"]["deploy"]["concurrency"]["cancel-in-progress"],
        false
    );

    // The folder takes migrations named for its format.
    ws.run(&["migrate", "new", "create_items"]).expect_code(0);
    let migration = ws.path().join("db/migrations/V1__create_items.sql");
    assert!(migration.is_file());
    std::fs::write(&migration, "CREATE TABLE items (id int PRIMARY KEY);\n").unwrap();

    // The configuration loads and works: the database from DATABASE_URL,
    // as the template says, the store from the environment.
    let db = create_db("init_project");
    let store = tempfile::tempdir().unwrap();
    let with_env = |args: &[&str]| {
        Run(ws
            .snapguard()
            .env("DATABASE_URL", pg().url(&db))
            .env(
                "SNAPGUARD_STORE_URL",
                format!("file://{}", store.path().display()),
            )
            .args(args)
            .output()
            .unwrap())
    };
    let plan = with_env(&["plan"]);
    plan.expect_code(0);
    assert!(
        plan.stdout().contains("V1__create_items.sql"),
        "{}",
        plan.stdout()
    );
    with_env(&["migrate"]).expect_code(0);
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'items'"
        ),
        "1"
    );
}

#[test]
fn nothing_is_overwritten_without_force() {
    let ws = project();
    ws.run(&["init", "--no-workflow"]).expect_code(0);
    assert!(!ws.path().join(".github").exists());
    std::fs::write(ws.path().join("snapguard.yml"), "# mine\n").unwrap();
    ws.run(&["init"])
        .expect_code(3)
        .expect_stderr("`snapguard.yml`, `db/migrations/README.md`, `snapguard.schema.json` already exist; nothing was written (--force overwrites)");
    assert_eq!(read(&ws, "snapguard.yml"), "# mine\n");
    assert!(
        !ws.path().join(".github").exists(),
        "a refusal wrote the workflow"
    );

    ws.run(&["init", "--force"]).expect_code(0);
    let config = read(&ws, "snapguard.yml");
    assert!(
        config.starts_with(
            "# yaml-language-server: $schema=./snapguard.schema.json\n# snapguard.yml"
        ),
        "{config}"
    );
    assert!(ws.path().join("snapguard.schema.json").is_file());
    assert!(ws.path().join(".github/workflows/deploy.yml").is_file());
}

#[test]
fn an_existing_folder_is_kept_and_a_config_elsewhere_is_named_in_the_workflow() {
    let ws = project();
    let migrations = ws.path().join("deploy/db/migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::write(
        migrations.join("20260101000000_users.up.sql"),
        "CREATE TABLE users (id int);\n",
    )
    .unwrap();
    let run = ws.run(&[
        "--config",
        "deploy/snapguard.yml",
        "--store",
        "s3://shop-backups/production",
        "init",
    ]);
    run.expect_code(0);
    assert!(
        run.stdout()
            .contains("kept the 1 golang-migrate migrations in deploy/db/migrations"),
        "{}",
        run.stdout()
    );
    assert!(!migrations.join("README.md").exists());
    let config = read(&ws, "deploy/snapguard.yml");
    assert!(config.contains("  url: s3://shop-backups/production\n"));
    assert!(config.contains("  format: golang-migrate\n"));
    // Every snapguard step of the workflow names the config.
    let workflow = read(&ws, ".github/workflows/deploy.yml");
    assert_eq!(
        workflow.matches("config: deploy/snapguard.yml").count(),
        workflow.matches("uses: OWNER/snapguard@").count(),
        "{workflow}"
    );

    // A format that does not match the folder is refused; nothing written.
    let other = project();
    std::fs::create_dir_all(other.path().join("db/migrations")).unwrap();
    std::fs::write(
        other.path().join("db/migrations/V1__users.sql"),
        "CREATE TABLE users (id int);\n",
    )
    .unwrap();
    other
        .run(&["init", "--format", "diesel"])
        .expect_code(3)
        .expect_stderr("holds flyway migrations, not diesel");
    assert!(!other.path().join("snapguard.yml").exists());
    other
        .run(&["init", "--format", "auto"])
        .expect_code(2)
        .expect_stderr("name the format to scaffold");
}

/// The value of a GitHub expression the rehearsal job uses; any other
/// expression fails the test (it would need a real runner to mean something).
fn step_condition(expr: Option<&str>) -> bool {
    match expr {
        None => true,
        Some("github.event_name == 'pull_request'") => true,
        Some(other) => panic!("the test does not evaluate `if: {other}`"),
    }
}

#[test]
fn the_first_pull_request_rehearses_as_the_generated_workflow_runs_it() {
    let ws = project();
    let init = ws.run(&["init"]);
    init.expect_code(0);
    assert!(
        init.stdout().contains("created db/rehearsal.sql\n"),
        "{}",
        init.stdout()
    );
    assert!(!init.stdout().contains("READ_ROLE"), "{}", init.stdout());
    // The new team's first pull request: one migration.
    ws.run(&["migrate", "new", "create_items"]).expect_code(0);
    let migration = std::fs::read_dir(ws.path().join("db/migrations"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "sql"))
        .unwrap();
    std::fs::write(&migration, "CREATE TABLE items (id int PRIMARY KEY);\n").unwrap();

    let workflow: serde_json::Value =
        serde_saphyr::from_str(&read(&ws, ".github/workflows/deploy.yml")).unwrap();
    let job = &workflow["jobs"]["rehearse"];
    assert!(step_condition(job["if"].as_str()));
    // The runner's files: a PostgreSQL newer than this machine's under the
    // image's folder (the step reads `/usr/lib/postgresql`), and the files
    // GitHub gives every step.
    let runner = tempfile::tempdir().unwrap();
    let image = runner.path().join("postgresql");
    std::fs::create_dir_all(image.join("18")).unwrap();
    std::os::unix::fs::symlink(pg18_bin(), image.join("18/bin")).unwrap();
    let github_path = runner.path().join("path");
    let github_output = runner.path().join("output");
    let summary = runner.path().join("summary");
    for file in [&github_path, &github_output, &summary] {
        std::fs::write(file, "").unwrap();
    }
    let mut ran_rehearsal = false;
    for step in job["steps"].as_array().unwrap() {
        if !step_condition(step["if"].as_str()) {
            continue;
        }
        let mut command = if let Some(script) = step["run"].as_str() {
            let script = script.replace("/usr/lib/postgresql", &image.display().to_string());
            let mut bash = Command::new("bash");
            bash.args(["-e", "-c", &script]);
            bash
        } else {
            let uses = step["uses"].as_str().unwrap();
            if uses.starts_with("actions/checkout@") {
                continue;
            }
            assert!(uses.starts_with("OWNER/snapguard@"), "{uses}");
            let with = &step["with"];
            let mut run = Command::new("bash");
            run.arg(repo_file("pipeline/github-actions/action/run.sh"))
                .env("SNAPGUARD_BIN", env!("CARGO_BIN_EXE_snapguard"))
                .env(
                    "INPUT_COMMAND",
                    with["command"].as_str().unwrap_or("deploy"),
                )
                .env("INPUT_ARGS", with["args"].as_str().unwrap_or(""))
                .env(
                    "INPUT_CONFIG",
                    with["config"].as_str().unwrap_or("snapguard.yml"),
                );
            ran_rehearsal |= with["command"] == "rehearse";
            run
        };
        // A pull request's job has no secret and no store: no
        // DATABASE_URL, no AWS credentials (the workspace's test keys are
        // taken away too).
        let base = ws.snapguard();
        command.current_dir(ws.path());
        for (k, v) in base.get_envs() {
            match v {
                Some(v) => command.env(k, v),
                None => command.env_remove(k),
            };
        }
        let added = std::fs::read_to_string(&github_path).unwrap();
        let mut path: Vec<std::path::PathBuf> = added.lines().map(Into::into).collect();
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let out = command
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("SNAPGUARD_DATABASE_PG_BIN_DIR")
            .env("PATH", std::env::join_paths(path).unwrap())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_PATH", &github_path)
            .env("GITHUB_OUTPUT", &github_output)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "step {:?} failed ({:?}):\n{}{}",
            step["name"].as_str().or(step["uses"].as_str()),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(ran_rehearsal, "the job has no rehearsal step");
    let outputs = std::fs::read_to_string(&github_output).unwrap();
    assert!(outputs.contains("outcome=passed"), "{outputs}");
}

/// A file of this repository.
fn repo_file(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}
