//! TLS to the database: a server that refuses unencrypted connections, and
//! the URL's `sslmode` / `sslrootcert` deciding what snapguard (and the
//! `pg_dump` it runs) does.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::*;
use snapguard::ephemeral::{EphemeralOptions, EphemeralServer};

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

/// A server of its own with a certificate for 127.0.0.1 signed by a test CA
/// (`ca.crt` in `dir`), and a `pg_hba.conf` that rejects every connection
/// without TLS.
fn tls_only_server(dir: &Path) -> EphemeralServer {
    let server =
        EphemeralServer::start(&EphemeralOptions { major: Some(15) }).expect("start PostgreSQL");
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
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
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "server.crt",
        ],
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
    std::fs::write(
        &hba,
        format!("hostnossl all all 127.0.0.1/32 reject\n{rules}"),
    )
    .unwrap();
    let cert_sql = format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert.display());
    let key_sql = format!("ALTER SYSTEM SET ssl_key_file = '{}'", key.display());
    server
        .psql(
            "postgres",
            &[
                "-c",
                &cert_sql,
                "-c",
                &key_sql,
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
