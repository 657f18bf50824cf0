//! The password file, `~/.pgpass` or `PGPASSFILE`, read as libpq reads it:
//! `host:port:database:user:password` lines, `*` matching anything, `\`
//! escaping `:` and `\`, the first matching line winning, and the file
//! ignored when group or others can read it.
//! <https://www.postgresql.org/docs/current/libpq-pgpass.html>

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// What a line must match.
pub(super) struct Target<'a> {
    /// The host as given; a Unix-socket directory is also matched as
    /// `localhost` when it is the default one.
    pub host: &'a str,
    pub port: u16,
    pub dbname: &'a str,
    pub user: &'a str,
}

/// The default socket directory, which `localhost` in the file stands for.
pub(super) const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// The password for `target` in the file at `path`, if it has one.
pub(super) fn lookup(path: &Path, target: &Target<'_>) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(file = %path.display(), "the password file is readable by group or others; ignored, as libpq ignores it (chmod 0600 it)");
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|line| matching(line, target))
}

fn matching(line: &str, t: &Target<'_>) -> Option<String> {
    let fields = split(line);
    let [host, port, dbname, user, password] = fields.as_slice() else {
        return None;
    };
    let host_ok =
        host == "*" || host == t.host || (host == "localhost" && t.host == DEFAULT_SOCKET_DIR);
    let ok = host_ok
        && (port == "*" || *port == t.port.to_string())
        && (dbname == "*" || dbname == t.dbname)
        && (user == "*" || user == t.user);
    ok.then(|| password.clone())
}

/// The fields of a line, `\:` and `\\` unescaped.
fn split(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().unwrap().extend(chars.next()),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str, mode: u32) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        f
    }

    fn target<'a>(host: &'a str, dbname: &'a str) -> Target<'a> {
        Target {
            host,
            port: 5432,
            dbname,
            user: "app",
        }
    }

    #[test]
    fn first_matching_line_wins_with_wildcards_and_escapes() {
        let f = file(
            "# comment\nother:5432:shop:app:no\ndb:5432:shop:app:pa\\:ss\\\\w\n*:*:*:app:fallback\n",
            0o600,
        );
        assert_eq!(
            lookup(f.path(), &target("db", "shop")).as_deref(),
            Some(r"pa:ss\w")
        );
        assert_eq!(
            lookup(f.path(), &target("db", "crm")).as_deref(),
            Some("fallback")
        );
        let local = file("localhost:5432:*:app:sock\n", 0o600);
        assert_eq!(
            lookup(local.path(), &target(DEFAULT_SOCKET_DIR, "x")).as_deref(),
            Some("sock")
        );
        assert_eq!(lookup(local.path(), &target("/tmp", "x")), None);
    }

    #[test]
    fn a_file_others_can_read_is_ignored() {
        let f = file("*:*:*:*:secret\n", 0o644);
        assert_eq!(lookup(f.path(), &target("db", "shop")), None);
    }
}
