//! A connection as libpq makes it: a `postgres://` URL (several hosts
//! allowed) or a `keyword=value` string, with the `PG*` environment and the
//! password file for what it leaves out; it never prints its password.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

mod parse;
mod pgpass;

/// A secret string: its `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for handing to the driver or a child's environment.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// libpq's `sslmode` values.
/// <https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-PROTECTION>
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it, without verifying the certificate
    /// (`allow` is treated the same way).
    Prefer,
    /// TLS required; the certificate is verified only when `sslrootcert` is given.
    Require,
    /// TLS required and the certificate chain verified. rustls also checks the
    /// host name, so this behaves as `verify-full`.
    VerifyCa,
    /// TLS required, chain and host name verified.
    VerifyFull,
}

impl SslMode {
    fn parse(v: &str) -> Option<Self> {
        Some(match v {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Why a connection string was rejected. The string itself is never
/// repeated, since it may hold a password.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// Neither a `postgres://` URL nor a `keyword=value` string.
    #[error(
        "not a PostgreSQL connection string; expected `postgres://user:password@host:port/dbname` or `host=… dbname=… user=…`"
    )]
    NotPostgres,
    /// Empty (an unset variable that was still passed on).
    #[error("the connection string is empty")]
    Empty,
    /// A URL of another scheme (`postgresql+psycopg2://`, `mysql://`).
    #[error(
        "`{0}://` is not a PostgreSQL connection URL; snapguard takes `postgres://` or `postgresql://` (or `host=… dbname=…`)"
    )]
    Scheme(String),
    /// A parameter snapguard does not know.
    #[error(
        "unsupported connection parameter `{0}`; supported: host, port, user, password, passfile, dbname, sslmode, sslrootcert, sslcert, sslkey, options, target_session_attrs, connect_timeout, application_name"
    )]
    UnknownParameter(String),
    /// A parameter with a bad value.
    #[error("bad value for connection parameter `{name}`: {message}")]
    BadParameter {
        /// The parameter.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// libpq's `target_session_attrs`, as far as a tool that writes can use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAttrs {
    /// Any server.
    Any,
    /// A server that takes writes (`read-write`; `primary` is checked the
    /// same way).
    ReadWrite,
}

/// Where and how to connect. `Display` and `Debug` redact the password.
#[derive(Clone)]
pub struct ConnInfo {
    /// Host names or socket directories, tried in order.
    hosts: Vec<String>,
    /// One port per host.
    ports: Vec<u16>,
    user: String,
    password: Option<Secret>,
    dbname: String,
    sslmode: SslMode,
    sslrootcert: Option<PathBuf>,
    sslcert: Option<PathBuf>,
    sslkey: Option<PathBuf>,
    /// Server options for every session (`-c search_path=app`).
    options: Option<String>,
    target_session_attrs: SessionAttrs,
    connect_timeout: Duration,
    /// The configured database, when this is another on its server (the
    /// maintenance database, a clone): an error then names both, so a
    /// refused password is not taken for a wrong database name.
    reached_for: Option<String>,
}

impl ConnInfo {
    /// Parses a connection string as libpq does, with the process
    /// environment for what it leaves out.
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        Self::parse_with_env(s, &|name| std::env::var(name).ok())
    }

    /// [`ConnInfo::parse`] with an explicit environment. A value comes from
    /// the string, else from its `PG*` variable, else libpq's default; the
    /// password, when neither gives one, from the password file.
    pub fn parse_with_env(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, UrlError> {
        let given = parse::pairs(s)?;
        let value = |keyword: &str, var: &str| -> Option<String> {
            given
                .iter()
                .rev()
                .find(|(k, _)| k == keyword)
                .map(|(_, v)| v.clone())
                .or_else(|| env(var))
                .filter(|v| !v.is_empty())
        };
        let bad = |name: &str, message: &str| UrlError::BadParameter {
            name: name.into(),
            message: message.into(),
        };
        let user = value("user", "PGUSER")
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "postgres".into());
        let hosts: Vec<String> = value("host", "PGHOST")
            .unwrap_or_else(|| pgpass::DEFAULT_SOCKET_DIR.into())
            .split(',')
            .map(|h| match h.trim() {
                "" => pgpass::DEFAULT_SOCKET_DIR.to_owned(),
                h => h.to_owned(),
            })
            .collect();
        let port_list = value("port", "PGPORT").unwrap_or_default();
        let mut ports = Vec::new();
        for p in port_list.split(',') {
            ports.push(match p.trim() {
                "" => 5432,
                p => p.parse().map_err(|_| bad("port", "not a port number"))?,
            });
        }
        // libpq: one port for every host, or one per host.
        let ports = match ports.len() {
            1 => vec![ports[0]; hosts.len()],
            n if n == hosts.len() => ports,
            _ => return Err(bad("port", "give one port, or one per host")),
        };
        let dbname = value("dbname", "PGDATABASE").unwrap_or_else(|| user.clone());
        let sslmode = match value("sslmode", "PGSSLMODE") {
            Some(v) => SslMode::parse(&v).ok_or_else(|| {
                bad(
                    "sslmode",
                    "expected disable, allow, prefer, require, verify-ca or verify-full",
                )
            })?,
            None => SslMode::Prefer,
        };
        let target_session_attrs = match value("target_session_attrs", "PGTARGETSESSIONATTRS")
            .as_deref()
        {
            None | Some("any") => SessionAttrs::Any,
            Some("read-write") | Some("primary") => SessionAttrs::ReadWrite,
            Some(other @ ("read-only" | "standby" | "prefer-standby")) => {
                return Err(bad(
                    "target_session_attrs",
                    &format!(
                        "`{other}` would pick a server that cannot take the deploy's writes; use any, read-write or primary"
                    ),
                ));
            }
            Some(_) => {
                return Err(bad(
                    "target_session_attrs",
                    "expected any, read-write or primary",
                ));
            }
        };
        let connect_timeout = match value("connect_timeout", "PGCONNECT_TIMEOUT") {
            Some(v) => Duration::from_secs(
                v.parse()
                    .map_err(|_| bad("connect_timeout", "not a number of seconds"))?,
            ),
            None => Duration::from_secs(10),
        };
        let path = |keyword: &str, var: &str| value(keyword, var).map(PathBuf::from);
        let (sslcert, sslkey) = (path("sslcert", "PGSSLCERT"), path("sslkey", "PGSSLKEY"));
        if sslcert.is_some() != sslkey.is_some() {
            return Err(bad(
                if sslcert.is_some() {
                    "sslkey"
                } else {
                    "sslcert"
                },
                "a client certificate needs both `sslcert` and `sslkey`",
            ));
        }
        let password = value("password", "PGPASSWORD").or_else(|| {
            let file = value("passfile", "PGPASSFILE")
                .map(PathBuf::from)
                .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
            pgpass::lookup(
                &file,
                &pgpass::Target {
                    host: &hosts[0],
                    port: ports[0],
                    dbname: &dbname,
                    user: &user,
                },
            )
        });
        // `application_name` is accepted for compatibility: snapguard's own
        // name is always used, so its sessions are recognisable.
        Ok(ConnInfo {
            hosts,
            ports,
            password: password.map(Secret::new),
            dbname,
            user,
            sslmode,
            sslrootcert: path("sslrootcert", "PGSSLROOTCERT"),
            sslcert,
            sslkey,
            options: value("options", "PGOPTIONS"),
            target_session_attrs,
            connect_timeout,
            reached_for: None,
        })
    }

    /// The database name.
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The host names (or socket directories) tried, in order.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The role snapguard connects as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The same server and credentials, another database.
    pub fn with_dbname(&self, dbname: &str) -> ConnInfo {
        let configured = self.reached_for.as_ref().unwrap_or(&self.dbname);
        ConnInfo {
            dbname: dbname.to_owned(),
            reached_for: (configured != dbname).then(|| configured.clone()),
            ..self.clone()
        }
    }

    /// What a connection error names: the URL quoted, and the configured
    /// database when this is another on its server.
    pub(crate) fn described(&self) -> String {
        match &self.reached_for {
            Some(configured) => format!(
                "`{self}` (the database `{}` on the server of `{configured}`, with the same user and password)",
                self.dbname
            ),
            None => format!("`{self}`"),
        }
    }

    /// The (first) host is a Unix-domain socket directory, where libpq never
    /// uses TLS whatever `sslmode` says.
    pub(crate) fn is_socket(&self) -> bool {
        self.hosts[0].starts_with('/')
    }

    pub(crate) fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    pub(crate) fn sslrootcert(&self) -> Option<&PathBuf> {
        self.sslrootcert.as_ref()
    }

    /// The client certificate and its key, when the server wants one.
    pub(crate) fn client_cert(&self) -> Option<(&PathBuf, &PathBuf)> {
        self.sslcert.as_ref().zip(self.sslkey.as_ref())
    }

    /// The driver's configuration for this target.
    pub(crate) fn driver_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        for (host, port) in self.hosts.iter().zip(&self.ports) {
            if host.starts_with('/') {
                c.host_path(host);
            } else {
                c.host(host);
            }
            c.port(*port);
        }
        c.user(&self.user)
            .dbname(&self.dbname)
            .application_name("snapguard")
            .connect_timeout(self.connect_timeout)
            .target_session_attrs(match self.target_session_attrs {
                SessionAttrs::Any => tokio_postgres::config::TargetSessionAttrs::Any,
                SessionAttrs::ReadWrite => tokio_postgres::config::TargetSessionAttrs::ReadWrite,
            })
            .ssl_mode(match self.sslmode {
                // With no TLS on a socket, `require` would refuse to connect.
                _ if self.is_socket() => tokio_postgres::config::SslMode::Disable,
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                _ => tokio_postgres::config::SslMode::Require,
            });
        if let Some(o) = &self.options {
            c.options(o);
        }
        if let Some(p) = &self.password {
            c.password(p.expose());
        }
        c
    }

    /// The libpq environment for `pg_dump`, `pg_restore` and `psql`. The
    /// password goes through the environment, never the command line, where
    /// any user could read it with `ps`.
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
        let mut env = vec![
            ("PGHOST", self.hosts.join(",")),
            ("PGPORT", ports.join(",")),
            ("PGUSER", self.user.clone()),
            ("PGDATABASE", self.dbname.clone()),
            ("PGSSLMODE", self.sslmode.as_str().to_owned()),
            (
                "PGCONNECT_TIMEOUT",
                self.connect_timeout.as_secs().to_string(),
            ),
            ("PGAPPNAME", "snapguard".to_owned()),
        ];
        if let Some(p) = &self.password {
            env.push(("PGPASSWORD", p.expose().to_owned()));
        }
        for (var, path) in [
            ("PGSSLROOTCERT", &self.sslrootcert),
            ("PGSSLCERT", &self.sslcert),
            ("PGSSLKEY", &self.sslkey),
        ] {
            if let Some(path) = path {
                env.push((var, path.display().to_string()));
            }
        }
        if let Some(o) = &self.options {
            env.push(("PGOPTIONS", o.clone()));
        }
        if self.target_session_attrs == SessionAttrs::ReadWrite {
            env.push(("PGTARGETSESSIONATTRS", "read-write".into()));
        }
        env
    }

    /// The URL with its password, for a child process's `DATABASE_URL` (an
    /// external migrator). Wrapped so it cannot be printed by accident.
    pub fn secret_url(&self) -> Secret {
        Secret::new(self.url(self.password.as_ref()))
    }

    /// The URL without its password: safe to print, and complete for a
    /// command the user runs with the password in `PGPASSWORD`.
    pub fn public_url(&self) -> String {
        self.url(None)
    }

    fn url(&self, password: Option<&Secret>) -> String {
        let enc = url_encode;
        let credentials = match password {
            Some(p) => format!("{}:{}", enc(&self.user), enc(p.expose())),
            None => enc(&self.user),
        };
        let mut query = format!("sslmode={}", self.sslmode.as_str());
        for (name, value) in [
            (
                "sslrootcert",
                self.sslrootcert.as_ref().map(|p| p.display().to_string()),
            ),
            (
                "sslcert",
                self.sslcert.as_ref().map(|p| p.display().to_string()),
            ),
            (
                "sslkey",
                self.sslkey.as_ref().map(|p| p.display().to_string()),
            ),
            ("options", self.options.clone()),
            (
                "target_session_attrs",
                (self.target_session_attrs == SessionAttrs::ReadWrite).then(|| "read-write".into()),
            ),
        ] {
            if let Some(v) = value {
                query.push_str(&format!("&{name}={}", enc(&v)));
            }
        }
        if self.is_socket() {
            format!(
                "postgresql://{credentials}@/{}?host={}&port={}&{query}",
                enc(&self.dbname),
                enc(&self.hosts.join(",")),
                self.ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            )
        } else {
            format!(
                "postgresql://{credentials}@{}/{}?{query}",
                self.host_list(),
                enc(&self.dbname)
            )
        }
    }

    /// `host:port[,host:port…]`, IPv6 addresses bracketed.
    fn host_list(&self) -> String {
        self.hosts
            .iter()
            .zip(&self.ports)
            .map(|(h, p)| {
                if h.contains(':') {
                    format!("[{h}]:{p}")
                } else {
                    format!("{h}:{p}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The password, if the URL has one, for masking in CI logs.
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }

    /// Every form in which snapguard hands the password to a child or a
    /// log could show it: as is, percent-encoded as in [`Self::secret_url`],
    /// and that whole URL. Each must be masked, not only the first.
    pub fn secret_forms(&self) -> Vec<String> {
        let Some(p) = &self.password else {
            return Vec::new();
        };
        let mut forms = vec![p.expose().to_owned(), url_encode(p.expose())];
        forms.push(self.secret_url().expose().to_owned());
        forms.retain(|f| !f.is_empty());
        // Longest first, so that masking one form never breaks up another.
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        forms
    }
}

/// Percent-encodes every byte but ASCII letters and digits, which is valid
/// in any part of a URL.
/// Whether the connection string itself gives a password (not the
/// environment or the password file).
pub fn names_a_password(s: &str) -> bool {
    parse::pairs(s).is_ok_and(|pairs| pairs.iter().any(|(k, _)| k == "password"))
}

fn url_encode(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pw = if self.password.is_some() { ":***" } else { "" };
        if self.is_socket() {
            let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
            write!(
                f,
                "postgres://{}{pw}@/{}?host={}&port={}",
                self.user,
                self.dbname,
                self.hosts.join(","),
                ports.join(",")
            )
        } else {
            write!(
                f,
                "postgres://{}{pw}@{}/{}",
                self.user,
                self.host_list(),
                self.dbname
            )
        }
    }
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnInfo({self})")
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn no_error_echoes_an_unparsed_string() {
        let none = |_: &str| None;
        for (given, expected) in [
            (
                "postgresql+psycopg2://app:Sekr3tPw@host/db?sslmode=require",
                "`postgresql+psycopg2://` is not a PostgreSQL connection URL",
            ),
            (
                "mysql://app:Sekr3tPw@host/db",
                "`mysql://` is not a PostgreSQL connection URL",
            ),
            ("", "the connection string is empty"),
            ("   ", "the connection string is empty"),
            (
                "host=h Sekr3tPw@x=1",
                "unsupported connection parameter `(not shown: not a parameter name)`",
            ),
            (
                "host=h user=app Sekr3tPw dbname=x",
                "bad value for connection parameter `(not shown: not a parameter name)`",
            ),
            (
                "postgres://app:pw@h/db?Sekr3tPw",
                "bad value for connection parameter `(not shown: not a parameter name)`",
            ),
        ] {
            let e = ConnInfo::parse_with_env(given, &none)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(expected), "{given}: {e}");
            assert!(!e.contains("Sekr3tPw"), "{given}: {e}");
        }
        // A known name is still named.
        let e = ConnInfo::parse_with_env("host=h sslcompression=1", &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`sslcompression`"), "{e}");
        // Schemes are case-insensitive.
        let url = ConnInfo::parse_with_env("POSTGRES://app@h:5433/db", &none).unwrap();
        assert_eq!((url.dbname(), url.user()), ("db", "app"));
    }

    #[test]
    fn secret_url_parses_back_to_the_same_target() {
        for url in [
            "postgres://app:p%40ss%2Fw@db.example:6432/shop?sslmode=verify-full",
            "postgres://app@/shop?host=/var/run/postgresql&port=5433",
        ] {
            let c = ConnInfo::parse(url).unwrap();
            let back = ConnInfo::parse(c.secret_url().expose()).unwrap();
            assert_eq!(back.to_string(), c.to_string());
            assert_eq!(back.password(), c.password());
            assert_eq!(back.sslmode(), c.sslmode());
        }
        assert_eq!(
            ConnInfo::parse("postgres://a:b@h/d")
                .unwrap()
                .secret_url()
                .to_string(),
            "***"
        );
    }

    #[test]
    fn parses_a_full_url() {
        let c = ConnInfo::parse("postgres://app:p%40ss@db.example:6432/shop?sslmode=verify-full")
            .unwrap();
        assert_eq!(c.user(), "app");
        assert_eq!(c.password().unwrap().expose(), "p@ss");
        assert_eq!(c.hosts, ["db.example"]);
        assert_eq!(c.ports, [6432]);
        assert_eq!(c.dbname(), "shop");
        assert_eq!(c.sslmode(), SslMode::VerifyFull);
    }

    #[test]
    fn display_and_debug_redact_the_password() {
        let c = ConnInfo::parse("postgresql://app:hunter2@h/shop").unwrap();
        assert_eq!(c.to_string(), "postgres://app:***@h:5432/shop");
        assert!(!format!("{c:?}").contains("hunter2"));
        let env = c.libpq_env();
        assert!(env.contains(&("PGPASSWORD", "hunter2".into())));
    }

    #[test]
    fn socket_hosts_and_defaults() {
        let c = ConnInfo::parse("postgres://app@/shop?host=/tmp/sock&port=5433").unwrap();
        assert_eq!(c.hosts, ["/tmp/sock"]);
        assert_eq!(c.ports, [5433]);
        assert!(c.to_string().contains("host=/tmp/sock"));
    }

    #[test]
    fn rejects_other_schemes_and_unknown_parameters() {
        assert!(matches!(
            ConnInfo::parse("mysql://a@b/c"),
            Err(UrlError::Scheme(_))
        ));
        assert!(
            matches!(ConnInfo::parse("postgres://a@b/c?foo=1"), Err(UrlError::UnknownParameter(p)) if p == "foo")
        );
        assert!(matches!(
            ConnInfo::parse("postgres://a@b/c?sslmode=maybe"),
            Err(UrlError::BadParameter { .. })
        ));
    }

    /// Parses with only `vars` in the environment.
    fn with_env(s: &str, vars: &[(&str, &str)]) -> Result<ConnInfo, UrlError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ConnInfo::parse_with_env(s, &move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn the_environment_fills_what_the_string_leaves_out() {
        let env = [
            ("PGHOST", "envhost"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
            ("PGDATABASE", "envdb"),
            ("PGPASSWORD", "envpw"),
            ("PGOPTIONS", "-c search_path=app"),
        ];
        let c = with_env("postgresql://", &env).unwrap();
        assert_eq!(c.to_string(), "postgres://envuser:***@envhost:6000/envdb");
        assert_eq!(c.password().unwrap().expose(), "envpw");
        assert!(
            c.libpq_env()
                .contains(&("PGOPTIONS", "-c search_path=app".into()))
        );
        // The string wins over the environment.
        let c = with_env("postgres://app:pw@db/shop", &env).unwrap();
        assert_eq!(c.to_string(), "postgres://app:***@db:6000/shop");
        assert_eq!(c.password().unwrap().expose(), "pw");
        // Nothing anywhere: libpq's defaults.
        let c = with_env("dbname=shop", &[("USER", "deployer")]).unwrap();
        assert_eq!(
            c.to_string(),
            "postgres://deployer@/shop?host=/var/run/postgresql&port=5432"
        );
    }

    #[test]
    fn several_hosts_and_the_keyword_form() {
        let c = with_env(
            "postgresql://app@db1:5432,db2:5433/shop?target_session_attrs=read-write",
            &[],
        )
        .unwrap();
        assert_eq!(c.to_string(), "postgres://app@db1:5432,db2:5433/shop");
        let env = c.libpq_env();
        assert!(env.contains(&("PGHOST", "db1,db2".into())));
        assert!(env.contains(&("PGPORT", "5432,5433".into())));
        assert!(env.contains(&("PGTARGETSESSIONATTRS", "read-write".into())));
        let back = ConnInfo::parse(c.secret_url().expose()).unwrap();
        assert_eq!(back.to_string(), c.to_string());
        let c = with_env("host=db port=6432 dbname=shop user=app password='a b'", &[]).unwrap();
        assert_eq!(c.to_string(), "postgres://app:***@db:6432/shop");
        assert_eq!(c.password().unwrap().expose(), "a b");
        assert!(matches!(
            with_env("host=h1,h2,h3 port=1,2 user=a", &[]),
            Err(UrlError::BadParameter { .. })
        ));
    }

    #[test]
    fn refusals_name_the_parameter() {
        let err = with_env("postgres://a@h/d?target_session_attrs=standby", &[]).unwrap_err();
        assert!(err.to_string().contains("`target_session_attrs`"), "{err}");
        let err = with_env("postgres://a@h/d?sslcert=/c.crt", &[]).unwrap_err();
        assert!(err.to_string().contains("`sslkey`"), "{err}");
        let err = with_env("postgres://a@h/d?sslpassword=x", &[]).unwrap_err();
        assert!(err.to_string().contains("`sslpassword`"), "{err}");
    }

    #[test]
    fn the_password_file_is_used_only_without_a_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(&file, "db:5432:shop:app:from-file\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let passfile = file.display().to_string();
        let env = [("PGPASSFILE", passfile.as_str())];
        let c = with_env("postgres://app@db/shop", &env).unwrap();
        assert_eq!(c.password().unwrap().expose(), "from-file");
        let c = with_env("postgres://app:given@db/shop", &env).unwrap();
        assert_eq!(c.password().unwrap().expose(), "given");
        let c = with_env("postgres://app@db/other", &env).unwrap();
        assert!(c.password().is_none());
    }
}
