//! `snapguard config schema` against the configurations snapguard ships and
//! documents: every example app's `snapguard.yml`, the file `init` writes,
//! and the documented full configuration (`docs/configuration.md`), each read with snapguard's own YAML
//! parser and validated by an independent JSON Schema validator (Python's
//! `jsonschema`); and a file with a misspelt key or a bad value is refused
//! by the schema as snapguard refuses it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The schema as `snapguard config schema` prints it, in a file.
fn schema_file(dir: &Path) -> PathBuf {
    let ws = Workspace::new("");
    let run = ws.run(&["config", "schema"]);
    run.expect_code(0);
    let path = dir.join("schema.json");
    std::fs::write(&path, run.stdout()).unwrap();
    path
}

/// Validates the YAML `text` (read with snapguard's parser) against the
/// schema; returns the validator's complaints, empty when valid.
fn complaints(schema: &Path, text: &str) -> String {
    let value: serde_json::Value = serde_saphyr::from_str(text).expect("YAML");
    let instance = schema.with_file_name("instance.json");
    std::fs::write(&instance, value.to_string()).unwrap();
    let out = common::run_ok(
        Command::new("python3")
            .args([
                "-c",
                "import json, sys, jsonschema\n\
                 schema = json.load(open(sys.argv[1]))\n\
                 jsonschema.Draft7Validator.check_schema(schema)\n\
                 errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(json.load(open(sys.argv[2]))), key=str)\n\
                 print('\\n'.join('/'.join(map(str, e.absolute_path)) + ': ' + e.message for e in errors))",
            ])
            .arg(schema)
            .arg(&instance),
    );
    out.trim().to_owned()
}

/// The documented full configuration: the first `yaml` block of
/// `docs/configuration.md`.
fn readme_config() -> String {
    let readme = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    let section = readme
        .split("# Configuration: `snapguard.yml`")
        .nth(1)
        .expect("the configuration section");
    let block = section.split("```yaml\n").nth(1).unwrap();
    block.split("```").next().unwrap().to_owned()
}

#[test]
fn every_shipped_configuration_is_valid_against_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let schema = schema_file(dir.path());
    let mut configs: Vec<(String, String)> = Vec::new();
    for entry in std::fs::read_dir(repo().join("examples")).unwrap() {
        let file = entry.unwrap().path().join("snapguard.yml");
        if file.is_file() {
            configs.push((
                file.display().to_string(),
                std::fs::read_to_string(&file).unwrap(),
            ));
        }
    }
    assert!(configs.len() >= 4, "{configs:?}");
    configs.push(("docs/configuration.md".into(), readme_config()));
    let ws = Workspace::new("");
    std::fs::remove_file(ws.path().join("snapguard.yml")).unwrap();
    ws.run(&["init", "--store", "s3://bucket/prod"])
        .expect_code(0);
    let written = std::fs::read_to_string(ws.path().join("snapguard.yml")).unwrap();
    assert!(written.starts_with("# yaml-language-server: $schema=./snapguard.schema.json"));
    let schema_written = std::fs::read_to_string(ws.path().join("snapguard.schema.json")).unwrap();
    assert_eq!(
        schema_written.trim(),
        std::fs::read_to_string(&schema).unwrap().trim(),
        "init writes the schema `config schema` prints"
    );
    configs.push(("init".into(), written));
    for (name, text) in &configs {
        assert_eq!(complaints(&schema, text), "", "{name}");
    }
}

#[test]
fn the_schema_refuses_what_snapguard_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let schema = schema_file(dir.path());
    for (text, complaint) in [
        (
            "store:\n  buckit: x\n",
            "store: Additional properties are not allowed ('buckit'",
        ),
        (
            "migrations:\n  transaction: sometimes\n",
            "migrations/transaction",
        ),
        (
            "snapshot:\n  lock_wait_timeout: 10 minutes\n",
            "snapshot/lock_wait_timeout",
        ),
        (
            "checks:\n  after:\n    - { name: x, sql: SELECT 1, expect: maybe }\n",
            "checks/after/0/expect",
        ),
        (
            "maintenance:\n  - { file: { path: /tmp/m }, command: { on: a, off: b } }\n",
            "maintenance/0",
        ),
    ] {
        let found = complaints(&schema, text);
        assert!(found.contains(complaint), "{text}: {found}");
        // snapguard refuses the same file (exit 2, configuration error).
        let ws = Workspace::new(text);
        let run = ws.run(&["--database-url", "postgres://u@h/d", "plan"]);
        run.expect_code(2);
    }
    // `${VAR}` references are valid wherever a value goes.
    assert_eq!(
        complaints(
            &schema,
            "snapshot:\n  lock_wait_timeout: ${LOCK_WAIT:-30s}\n  local_clone: ${CLONE}\nstore:\n  path_style: ${PATH_STYLE}\n"
        ),
        ""
    );
}
