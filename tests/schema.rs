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
    complaints_of_each(schema, &[text.to_owned()]).remove(0)
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
        // `snapshot.rds` is read by two providers, each with its own key.
        (
            "snapshot:\n  provider: aurora-clone\n  rds:\n    instance: prod\n",
            "snapshot/rds: 'cluster' is a required property",
        ),
        (
            "snapshot:\n  rds:\n    region: eu-west-1\n",
            "snapshot: 'provider' is a required property",
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

/// Validates many YAML documents in one validator run: for each, the
/// complaints (empty when valid).
fn complaints_of_each(schema: &Path, texts: &[String]) -> Vec<String> {
    let instances: Vec<serde_json::Value> = texts
        .iter()
        .map(|t| serde_saphyr::from_str(t).expect("YAML"))
        .collect();
    let file = schema.with_file_name("instances.json");
    std::fs::write(&file, serde_json::Value::Array(instances).to_string()).unwrap();
    let out = common::run_ok(
        Command::new("python3")
            .args([
                "-c",
                "import json, sys, jsonschema\n\
                 schema = json.load(open(sys.argv[1]))\n\
                 jsonschema.Draft7Validator.check_schema(schema)\n\
                 v = jsonschema.Draft7Validator(schema)\n\
                 print(json.dumps(['; '.join(sorted('/'.join(map(str, e.absolute_path)) + ': ' + e.message for e in v.iter_errors(i))) for i in json.load(open(sys.argv[2]))]))",
            ])
            .arg(schema)
            .arg(&file),
    );
    serde_json::from_str(out.trim()).unwrap()
}

/// The dotted names of every scalar key the schema describes.
fn schema_keys(node: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    let Some(properties) = node["properties"].as_object() else {
        return;
    };
    for (name, value) in properties {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        if ["checks", "maintenance", "notify"].contains(&path.as_str()) {
            continue;
        }
        if value["type"][0] == "object" {
            schema_keys(value, &path, out);
        } else {
            out.push(path);
        }
    }
}

/// `snapshot.provider: pgbackrest` and the keys it needs.
const PGBACKREST: &[(&str, &str)] = &[
    ("snapshot.provider", "pgbackrest"),
    ("snapshot.pgbackrest.stanza", "main"),
    ("snapshot.pgbackrest.stop", "stop"),
    ("snapshot.pgbackrest.start", "start"),
];
const PGBACKREST_BUT_STANZA: &[(&str, &str)] = &[
    ("snapshot.provider", "pgbackrest"),
    ("snapshot.pgbackrest.stop", "stop"),
    ("snapshot.pgbackrest.start", "start"),
];
const PGBACKREST_BUT_STOP: &[(&str, &str)] = &[
    ("snapshot.provider", "pgbackrest"),
    ("snapshot.pgbackrest.stanza", "main"),
    ("snapshot.pgbackrest.start", "start"),
];
const PGBACKREST_BUT_START: &[(&str, &str)] = &[
    ("snapshot.provider", "pgbackrest"),
    ("snapshot.pgbackrest.stanza", "main"),
    ("snapshot.pgbackrest.stop", "stop"),
];

/// `snapshot.provider: rds` and the key it needs.
const RDS: &[(&str, &str)] = &[
    ("snapshot.provider", "rds"),
    ("snapshot.rds.instance", "prod-db"),
];

/// For `key`, a value snapguard takes and one it refuses (YAML), and the
/// other keys the valid one needs beside it.
fn samples(
    key: &str,
) -> (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
) {
    if key.starts_with("lint.rules.") {
        return ("error", "loud", &[]);
    }
    match key {
        "database.url" => ("postgres://app@db.internal/shop", "[a, b]", &[]),
        "database.maintenance_db" | "database.pg_bin_dir" | "migrations.dir" | "release.id" => {
            ("x", "{ a: b }", &[])
        }
        "store.url" => ("s3://bucket/prefix", "[a]", &[]),
        "store.endpoint" | "store.region" | "migrations.command" | "release.command" => {
            ("x", "[x]", &[])
        }
        "store.path_style"
        | "migrations.allow_out_of_order"
        | "migrations.allow_drift"
        | "migrations.allow_missing" => ("true", "maybe", &[]),
        "store.sse" => ("AES256", "aes256", &[]),
        "store.kms_key_id" => ("key-1", "[key]", &[("store.sse", "aws:kms")]),
        "store.part_size" => ("16MiB", "4MiB", &[]),
        "snapshot.compression" => ("gzip", "lz4", &[]),
        "snapshot.compression_level" => ("19", "20", &[]),
        "snapshot.restore_jobs" | "snapshot.retention.keep_last" => ("1", "0", &[]),
        "lint.server_version" => ("16", "9", &[]),
        "lint.time_zone" => ("Etc/UTC", "[x]", &[]),
        "snapshot.retention.keep_days" | "migrations.lock_retries" => ("0", "-1", &[]),
        "snapshot.lock_wait_timeout"
        | "migrations.lock_timeout"
        | "migrations.statement_timeout"
        | "migrations.lock_wait"
        | "release.timeout"
        | "budget.max_downtime"
        | "lint.max_lock_hold" => ("30s", "30 seconds", &[]),
        "snapshot.local_clone" => ("never", "sometimes", &[]),
        "snapshot.clone_limit" | "lint.small_table" => ("1GiB", "1 TB", &[]),
        "snapshot.clone_method" => ("copy", "reflink", &[]),
        "snapshot.offsite" => ("after", "later", &[]),
        "migrations.format" => ("dbmate", "rails", &[]),
        "migrations.transaction" => ("all", "none", &[]),
        "migrations.native_history" => ("read", "write", &[]),
        "migrations.pending_command" => ("x", "[x]", &[("migrations.command", "y")]),
        "release.rollback" => ("x", "[x]", &[("release.command", "y")]),
        "release.health.url" => ("http://app.internal/health", "[x]", &[]),
        "release.health.timeout" | "release.health.interval" => (
            "5s",
            "5 seconds",
            &[("release.health.url", "http://app.internal/health")],
        ),
        "snapshot.provider" => ("pgbackrest", "aurora", &PGBACKREST[1..]),
        "snapshot.rds.instance" => ("prod-db", "[x]", &[("snapshot.provider", "rds")]),
        "snapshot.rds.cluster" => ("prod-db", "[x]", &[("snapshot.provider", "aurora-clone")]),
        "snapshot.rds.region" | "snapshot.rds.endpoint" => ("x", "[x]", RDS),
        "snapshot.rds.wait" => ("30m", "30 minutes", RDS),
        "snapshot.pgbackrest.stanza" => ("main", "[x]", PGBACKREST_BUT_STANZA),
        "snapshot.pgbackrest.config" | "snapshot.pgbackrest.user" | "snapshot.pgbackrest.exec" => {
            ("x", "[x]", PGBACKREST)
        }
        "snapshot.pgbackrest.verify" => ("true", "maybe", PGBACKREST),
        "snapshot.pgbackrest.stop" => ("x", "[x]", PGBACKREST_BUT_STOP),
        "snapshot.pgbackrest.start" => ("x", "[x]", PGBACKREST_BUT_START),
        other => panic!("no sample values for `{other}`: add them here"),
    }
}

/// `keys` as a YAML document (`(dotted key, value as YAML)`).
fn yaml_of(keys: &[(&str, &str)]) -> String {
    fn emit(keys: &[(Vec<&str>, &str)], depth: usize, text: &mut String) {
        let mut seen: Vec<&str> = Vec::new();
        for (path, _) in keys {
            if !seen.contains(&path[depth]) {
                seen.push(path[depth]);
            }
        }
        for name in seen {
            let indent = "  ".repeat(depth);
            let under: Vec<(Vec<&str>, &str)> = keys
                .iter()
                .filter(|(p, _)| p[depth] == name)
                .cloned()
                .collect();
            match under.as_slice() {
                [(path, value)] if path.len() == depth + 1 => {
                    text.push_str(&format!("{indent}{name}: {value}\n"));
                }
                _ => {
                    text.push_str(&format!("{indent}{name}:\n"));
                    emit(&under, depth + 1, text);
                }
            }
        }
    }
    let split: Vec<(Vec<&str>, &str)> = keys
        .iter()
        .map(|(k, v)| (k.split('.').collect(), *v))
        .collect();
    let mut text = String::new();
    emit(&split, 0, &mut text);
    text
}

/// Whether snapguard's loader takes `text` (`config check`: exit 0 or 2).
fn snapguard_takes(text: &str) -> bool {
    let ws = Workspace::new(text);
    let run = ws.run(&["config", "check"]);
    match run.code() {
        0 => true,
        2 => false,
        other => panic!("config check exited {other}: {}", run.stderr()),
    }
}

#[test]
fn snapguard_and_the_schema_agree_on_a_valid_and_an_invalid_value_of_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let schema_path = schema_file(dir.path());
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&schema_path).unwrap()).unwrap();
    let mut keys = Vec::new();
    schema_keys(&schema, "", &mut keys);
    assert!(keys.len() >= 60, "{keys:?}");

    // (document, whether it is valid)
    let mut cases: Vec<(String, bool)> = Vec::new();
    for key in &keys {
        let (valid, invalid, needs) = samples(key);
        let mut with = vec![(key.as_str(), valid)];
        with.extend_from_slice(needs);
        cases.push((yaml_of(&with), true));
        with[0].1 = invalid;
        cases.push((yaml_of(&with), false));
        if !needs.is_empty() {
            // Without the key it needs, or with it empty.
            cases.push((yaml_of(&[(key.as_str(), valid)]), false));
            cases.push((
                yaml_of(&[(key.as_str(), valid), (needs[0].0, "\"\"")]),
                false,
            ));
        }
    }
    // What a range depends on, and the forms a value may take.
    for (text, valid) in [
        (
            "snapshot:\n  compression: gzip\n  compression_level: 9\n",
            true,
        ),
        (
            "snapshot:\n  compression: gzip\n  compression_level: 10\n",
            false,
        ),
        (
            "snapshot:\n  compression: none\n  compression_level: 0\n",
            true,
        ),
        (
            "snapshot:\n  compression: none\n  compression_level: 1\n",
            false,
        ),
        (
            "snapshot:\n  compression: zstd\n  compression_level: 0\n",
            false,
        ),
        ("snapshot:\n  compression_level: \"19\"\n", true),
        ("snapshot:\n  compression_level: 1.5\n", false),
        ("store:\n  sse: AES256\n  kms_key_id: k\n", false),
        ("store:\n  part_size: 5GiB\n", true),
        ("store:\n  part_size: 5369MB\n", false),
        ("store:\n  part_size: 5242880\n", true),
        ("store:\n  part_size: 5242879\n", false),
        ("store:\n  part_size: 5120 MiB\n", true),
        ("migrations:\n  lock_retries: \"7\"\n", true),
        ("migrations:\n  lock_retries: \"-7\"\n", false),
        ("snapshot:\n  retention:\n    keep_last: 010\n", true),
        ("store:\n  path_style: \"false\"\n", true),
        ("store:\n", true),
        ("store:\n  url:\n", true),
        ("snapshot:\n  retention:\n", true),
        ("checks:\n", true),
        ("maintenance:\n", true),
        ("notify:\n", true),
        ("lint:\n  rules:\n    drop_column: off\n", true),
        ("release:\n  health:\n    timeout: 5s\n", false),
    ] {
        cases.push((text.to_owned(), valid));
    }
    let texts: Vec<String> = cases.iter().map(|(t, _)| t.clone()).collect();
    let found = complaints_of_each(&schema_path, &texts);
    let mut disagreements = Vec::new();
    for ((text, valid), complaint) in cases.iter().zip(&found) {
        let by_schema = complaint.is_empty();
        let by_snapguard = snapguard_takes(text);
        if by_schema != *valid || by_snapguard != *valid {
            disagreements.push(format!(
                "{text}  expected {}, snapguard {}, schema {} {complaint}",
                if *valid { "valid" } else { "invalid" },
                if by_snapguard {
                    "takes it"
                } else {
                    "refuses it"
                },
                if by_schema { "takes it" } else { "refuses it:" },
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}

#[test]
fn the_file_plain_init_writes_is_valid_against_its_schema() {
    let ws = Workspace::new("");
    std::fs::remove_file(ws.path().join("snapguard.yml")).unwrap();
    ws.run(&["init"]).expect_code(0);
    let written = std::fs::read_to_string(ws.path().join("snapguard.yml")).unwrap();
    let schema = ws.path().join("snapguard.schema.json");
    assert_eq!(complaints(&schema, &written), "");
    ws.run(&["config", "check"]).expect_code(0);
}
