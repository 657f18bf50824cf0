//! TLS to the database: a server that refuses unencrypted connections, and
//! the URL's `sslmode` / `sslrootcert` deciding what snapguard (and the
//! `pg_dump` it runs) does.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::*;
use snapguard::ephemeral::EphemeralServer;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issues `<name>.crt` and `<name>.key` for `subject`, signed by the test CA
/// in `dir`, with `extensions` (which also make it a version 3 certificate,
/// as rustls requires).
fn issue(dir: &Path, name: &str, subject: &str, extensions: &str) {
    let ext = format!("{name}.ext");
    std::fs::write(dir.join(&ext), extensions).unwrap();
    let (key, csr, crt) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
    );
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", &key, "-out", &csr,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ],
    );
}

/// A server of its own with a certificate for 127.0.0.1 signed by a test CA
/// (`ca.crt` in `dir`), and a `pg_hba.conf` that rejects every connection
/// without TLS.
fn tls_only_server(dir: &Path) -> EphemeralServer {
    tls_server(dir, "hostnossl all all 127.0.0.1/32 reject\n")
}

/// [`tls_only_server`] with `rules` first in `pg_hba.conf`, and the test CA
/// as the server's trusted root for client certificates.
fn tls_server(dir: &Path, rules_first: &str) -> EphemeralServer {
    let server = EphemeralServer::start(&common::server_options()).expect("start PostgreSQL");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=snapguard test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    issue(
        dir,
        "server",
        "/CN=127.0.0.1",
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    );
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    // The server insists that only its own user can read the key.
    let owner = std::fs::metadata(server.data_dir()).unwrap().uid();
    Command::new("chown")
        .arg(owner.to_string())
        .arg(&key)
        .status()
        .unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hba = server.data_dir().join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("{rules_first}{rules}")).unwrap();
    let cert_sql = format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert.display());
    let key_sql = format!("ALTER SYSTEM SET ssl_key_file = '{}'", key.display());
    let ca_sql = format!(
        "ALTER SYSTEM SET ssl_ca_file = '{}'",
        dir.join("ca.crt").display()
    );
    server
        .psql(
            "postgres",
            &[
                "-c",
                &cert_sql,
                "-c",
                &key_sql,
                "-c",
                &ca_sql,
                "-c",
                "ALTER SYSTEM SET ssl = on",
                "-c",
                "SELECT pg_reload_conf()",
            ],
        )
        .expect("enable TLS");
    server
}

#[test]
fn sslmode_decides_encryption_and_verification() {
    let certs = tempfile::tempdir().unwrap();
    let server = tls_only_server(certs.path());
    let base = server.url("postgres").replace("?sslmode=disable", "");
    let ws = Workspace::new("store:\n  url: file://./backups\n");
    let snapshot = |query: &str| {
        Run(ws
            .snapguard()
            .env("SNAPGUARD_DATABASE_URL", format!("{base}?{query}"))
            .arg("snapshot")
            .output()
            .unwrap())
    };

    let plain = snapshot("sslmode=disable");
    plain.expect_code(3);
    assert!(
        plain.stderr().contains("no encryption"),
        "{}",
        plain.stderr()
    );

    // `require` encrypts without checking the certificate, as libpq does;
    // pg_dump gets the same mode, or the server would reject it.
    snapshot("sslmode=require").expect_code(0);

    let root = certs.path().join("ca.crt");
    snapshot(&format!(
        "sslmode=verify-full&sslrootcert={}",
        root.display()
    ))
    .expect_code(0);

    // A certificate no trusted root vouches for is refused.
    let untrusted = snapshot("sslmode=verify-full");
    untrusted.expect_code(3);
    assert!(
        untrusted.stderr().to_lowercase().contains("certificate"),
        "{}",
        untrusted.stderr()
    );
}

#[test]
fn a_server_that_requires_a_client_certificate_accepts_sslcert_and_sslkey() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    // Only TLS with a client certificate whose CN is the user logs in; no
    // password is asked.
    let server = tls_server(
        dir,
        "hostnossl all all 127.0.0.1/32 reject\nhostssl all all 127.0.0.1/32 cert\n",
    );
    issue(
        dir,
        "client",
        "/CN=postgres",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    );
    std::fs::set_permissions(
        dir.join("client.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let port = server
        .url("postgres")
        .split(':')
        .nth(3)
        .and_then(|p| p.split('/').next())
        .unwrap()
        .to_owned();
    let base = format!(
        "postgres://postgres@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={}",
        dir.join("ca.crt").display()
    );
    let ws = Workspace::new("store:\n  url: file://./backups\n");
    // `snapshot` connects itself and runs pg_dump: both present the certificate.
    let snapshot = |url: &str| {
        Run(ws
            .snapguard()
            .env("SNAPGUARD_DATABASE_URL", url)
            .arg("snapshot")
            .output()
            .unwrap())
    };
    let without = snapshot(&base);
    assert_ne!(without.code(), 0);
    assert!(
        without.stderr().contains("certificate"),
        "{}",
        without.stderr()
    );
    let with = format!(
        "{base}&sslcert={}&sslkey={}",
        dir.join("client.crt").display(),
        dir.join("client.key").display()
    );
    snapshot(&with).expect_code(0);
    // The keyword form, and the libpq variables for the certificate.
    let keywords = format!(
        "host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
        dir.join("ca.crt").display()
    );
    Run(ws
        .snapguard()
        .env("SNAPGUARD_DATABASE_URL", &keywords)
        .env("PGSSLCERT", dir.join("client.crt"))
        .env("PGSSLKEY", dir.join("client.key"))
        .arg("snapshot")
        .output()
        .unwrap())
    .expect_code(0);
}
