//! The command line: configuration errors with their positions and exit
//! codes, and secrets that never reach any output.

mod common;

use common::*;

#[test]
fn configuration_errors_name_the_place_and_exit_2() {
    let cases: &[(&str, &str)] = &[
        ("database:\n  url: [broken\n", "snapguard.yml:2:"),
        (
            "store:\n  url: file://./b\n  buckit: x\n",
            "snapguard.yml:3:3: unknown field `buckit`",
        ),
        (
            "store:\n  url: ${SG_TEST_UNSET_VAR}\n",
            "snapguard.yml:2:8: `store.url`: environment variable `SG_TEST_UNSET_VAR` is not set",
        ),
        (
            "snapshot:\n  lock_wait_timeout: forever\n",
            "snapguard.yml:2:22: `snapshot.lock_wait_timeout`: `forever` is not a duration",
        ),
        (
            "store:\n  url: file://./b\n  part_size: 1MiB\n",
            "`store.part_size`: `1MiB` is below S3's minimum part size",
        ),
        (
            "snapshot:\n  compression: brotli\n",
            "`snapshot.compression`: unknown value `brotli`; expected `zstd`, `gzip` or `none`",
        ),
        (
            "store:\n  url: ftp://host/x\n",
            "`store.url`: `ftp://host/x` is not a store URL",
        ),
        (
            "budget:\n  max_downtime: soon\n",
            "snapguard.yml:2:17: `budget.max_downtime`: `soon` is not a duration",
        ),
        (
            "budget:\n  max_window: 1m\n",
            "snapguard.yml:2:3: unknown field `max_window`, expected one of max_downtime",
        ),
        (
            "release:\n  rollback: undo\n",
            "`release.rollback`: needs `release.command`",
        ),
        (
            "release:\n  command: ship\n  health: { url: 'ftp://x' }\n",
            "`release.health.url`: `ftp:` URLs are not supported",
        ),
        (
            "snapshot:\n  local_clone: maybe\n",
            "`snapshot.local_clone`: unknown value `maybe`",
        ),
        (
            "migrations:\n  transaction: sometimes\n",
            "`migrations.transaction`: unknown value `sometimes`",
        ),
    ];
    for (yaml, expect) in cases {
        let ws = Workspace::new(yaml);
        let run = ws.run(&["snapshots", "list"]);
        assert_eq!(run.code(), 2, "{yaml}\n{}", run.stderr());
        assert!(
            run.stderr().contains(expect),
            "expected `{expect}` in:\n{}",
            run.stderr()
        );
        assert!(run.stdout().is_empty());
    }
}

#[test]
fn missing_settings_say_how_to_set_them() {
    let ws = Workspace::new("# empty\n");
    let run = ws.run(&["snapshot"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("`database.url` is not configured")
            && run.stderr().contains("SNAPGUARD_DATABASE_URL"),
        "{}",
        run.stderr()
    );
    let run = Run(ws
        .snapguard()
        .args(["--config", "elsewhere.yml", "snapshots", "list"])
        .output()
        .unwrap());
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("config file `elsewhere.yml` does not exist"),
        "{}",
        run.stderr()
    );
}

#[test]
fn environment_and_flags_override_the_file() {
    let db = seeded_db("cli_precedence");
    let ws = Workspace::new(
        "database:\n  url: postgres://nobody@127.0.0.1:1/none\nstore:\n  url: file://./from-file\n",
    );
    let run = Run(ws
        .snapguard()
        .env("SNAPGUARD_DATABASE_URL", pg().url(&db))
        .args(["--store", "file://./from-flag", "snapshot"])
        .env("SNAPGUARD_STORE_URL", "file://./from-env")
        .output()
        .unwrap());
    run.expect_code(0);
    assert!(ws.path().join("from-flag/snapshots").is_dir());
    assert!(!ws.path().join("from-env").exists() && !ws.path().join("from-file").exists());
}

#[test]
fn usage_errors_exit_2() {
    let ws = Workspace::new("");
    let run = ws.run(&["snapshot", "--no-such-flag"]);
    run.expect_code(2);
    let run = ws.run(&["restore"]);
    run.expect_code(2);
}

/// Every byte the binary prints, in every log format and verbosity, on
/// success and on failure, is free of the database password and the S3
/// secret key.
#[test]
fn secrets_never_reach_any_output() {
    let db = seeded_db("cli_secrets");
    let bucket = s3().bucket("cli-secrets");
    let ws = Workspace::new(&s3_config(&db, &bucket, ""));
    let mut outputs = Vec::new();
    for format in ["auto", "text", "json"] {
        for verbosity in ["-q", "-v", "-vv"] {
            let run = Run(ws
                .snapguard()
                .args(["--log-format", format, verbosity, "snapshot"])
                .output()
                .unwrap());
            run.expect_code(0);
            outputs.push(run);
        }
    }
    let id = outputs[0].snapshot_id();
    outputs.push(ws.run(&["-vv", "snapshots", "show", &id]));
    outputs.push(ws.run(&[
        "-vv",
        "--log-format",
        "json",
        "restore",
        &id,
        "--yes",
        "--to",
        "cli_secrets_copy",
    ]));
    // Failures print URLs and SDK errors: they must be redacted too.
    let bad_db = pg().url(&db).replace("/cli_secrets?", "/no_such_db?");
    outputs.push(Run(ws
        .snapguard()
        .env("SNAPGUARD_DATABASE_URL", &bad_db)
        .args(["-vv", "snapshot"])
        .output()
        .unwrap()));
    outputs.push(Run(ws
        .snapguard()
        .env("AWS_SECRET_ACCESS_KEY", format!("{}x", s3().secret_key))
        .args(["-vv", "snapshot"])
        .output()
        .unwrap()));
    outputs.push(Run(ws
        .snapguard()
        .env(
            "SNAPGUARD_DATABASE_URL",
            format!("mysql://u:{}@h/db", pg().password()),
        )
        .args(["snapshot"])
        .output()
        .unwrap()));
    assert!(
        outputs.iter().any(|r| r.code() != 0),
        "the failure cases did not fail"
    );
    for run in &outputs {
        for text in [run.stdout(), run.stderr()] {
            assert!(
                !text.contains(pg().password()),
                "database password leaked:\n{text}"
            );
            assert!(
                !text.contains(&s3().secret_key),
                "S3 secret key leaked:\n{text}"
            );
        }
    }
}

#[test]
fn a_unix_socket_url_connects_without_tls_as_libpq_does() {
    // The default sslmode is `prefer`; libpq never uses TLS on a socket.
    let db = create_db("cli_socket");
    let ws = Workspace::new("migrations:\n  dir: migrations\n");
    std::fs::create_dir_all(ws.path().join("migrations")).unwrap();
    let url = format!(
        "postgres://postgres@/{db}?host={}&port={}",
        pg().socket_dir().display(),
        pg().port()
    );
    let run = ws.run(&["--database-url", &url, "migrate", "status", "--json"]);
    run.expect_code(0);
    let status: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert!(status.is_object() || status.is_array(), "{status}");
}

#[test]
fn completions_and_the_manual_page_need_no_configuration() {
    // Even a broken configuration file does not stand in their way.
    let ws = Workspace::new("database: [broken\n");
    for shell in ["bash", "zsh", "fish"] {
        let run = ws.run(&["completions", shell]);
        run.expect_code(0);
        let out = run.stdout();
        assert!(
            out.contains("snapguard") && out.contains("rehearse") && out.contains("database-url"),
            "{shell}: {out}"
        );
    }
    ws.run(&["completions", "tcsh"]).expect_code(2);
    let man = ws.run(&["man"]);
    man.expect_code(0);
    assert!(
        man.stdout().starts_with(".ie") || man.stdout().contains(".TH snapguard 1"),
        "{}",
        man.stdout()
    );
    assert!(man.stdout().contains("rehearse"), "{}", man.stdout());
    // Global flags have a heading of their own in every command's help.
    let help = ws.run(&["deploy", "--help"]);
    help.expect_code(0);
    assert!(
        help.stdout().contains("Global options:"),
        "{}",
        help.stdout()
    );
}

/// A reader that stops early (`| head -1`) is not a failure: with the pipe
/// closed before a byte is written, each command still ends with its own
/// exit code and no panic (it was exit 101, "failed printing to stdout").
#[test]
fn a_closed_stdout_ends_the_output_not_the_command() {
    let ws = Workspace::new("store:\n  url: file://./backups\n");
    for args in [
        &["completions", "bash"][..],
        &["man"],
        &["config", "schema"],
        &["snapshots", "list", "--json"],
    ] {
        let mut child = ws
            .snapguard()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("cannot write"), "{args:?}: {stderr}");
    }
}

/// Issue 28: `lint --help` lists every rule with its level; `-h` stays
/// short.
#[test]
fn lint_help_lists_the_rules() {
    let ws = Workspace::new("");
    let long = ws.run(&["lint", "--help"]);
    long.expect_code(0);
    for rule in snapguard::lint::RULES {
        assert!(
            long.stdout()
                .lines()
                .any(|l| l.trim_start().starts_with(rule.id) && l.contains(rule.level.as_str())),
            "{} missing from:\n{}",
            rule.id,
            long.stdout()
        );
    }
    let short = ws.run(&["lint", "-h"]);
    short.expect_code(0);
    assert!(
        !short.stdout().contains("index_not_concurrent"),
        "{}",
        short.stdout()
    );
}
