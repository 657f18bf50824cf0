//! A parsed `postgres://` URL that never prints its password.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

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

/// Why a database URL was rejected. The URL itself is never repeated, since
/// it may hold a password.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all, or not `postgres://`.
    #[error("not a PostgreSQL URL; expected `postgres://user:password@host:port/dbname`")]
    NotPostgres,
    /// A query parameter snapguard does not know.
    #[error(
        "unsupported URL parameter `{0}`; supported: sslmode, sslrootcert, host, port, connect_timeout, application_name"
    )]
    UnknownParameter(String),
    /// A parameter with a bad value.
    #[error("bad value for URL parameter `{name}`: {message}")]
    BadParameter {
        /// The parameter.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// Where and how to connect. `Display` and `Debug` redact the password.
#[derive(Clone)]
pub struct ConnInfo {
    host: String,
    port: u16,
    user: String,
    password: Option<Secret>,
    dbname: String,
    sslmode: SslMode,
    sslrootcert: Option<PathBuf>,
    connect_timeout: Duration,
}

impl ConnInfo {
    /// Parses `postgres://user:password@host:port/dbname?sslmode=…`.
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        // libpq accepts `postgres://user@/db?host=/socket/dir`; the WHATWG
        // URL parser refuses a user with an empty host, so stand one in.
        let placeholder = s.contains("@/");
        let patched;
        let s = if placeholder {
            patched = s.replacen("@/", "@socket.invalid/", 1);
            patched.as_str()
        } else {
            s
        };
        let url = Url::parse(s).map_err(|_| UrlError::NotPostgres)?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(UrlError::NotPostgres);
        }
        let decode = |v: &str| percent_decode(v);
        let user = match url.username() {
            "" => std::env::var("USER").unwrap_or_else(|_| "postgres".into()),
            u => decode(u),
        };
        let mut info = ConnInfo {
            host: match url.host_str() {
                Some(h) if !placeholder => h.trim_matches(['[', ']']).to_owned(),
                _ => String::new(),
            },
            port: url.port().unwrap_or(5432),
            password: url.password().map(|p| Secret::new(decode(p))),
            dbname: decode(url.path().trim_start_matches('/')),
            user,
            sslmode: SslMode::Prefer,
            sslrootcert: None,
            connect_timeout: Duration::from_secs(10),
        };
        for (name, value) in url.query_pairs() {
            let bad = |message: &str| UrlError::BadParameter {
                name: name.to_string(),
                message: message.into(),
            };
            match &*name {
                "sslmode" => {
                    info.sslmode = SslMode::parse(&value).ok_or_else(|| {
                        bad("expected disable, allow, prefer, require, verify-ca or verify-full")
                    })?
                }
                "sslrootcert" => info.sslrootcert = Some(PathBuf::from(&*value)),
                "host" => info.host = value.into_owned(),
                "port" => info.port = value.parse().map_err(|_| bad("not a port number"))?,
                "connect_timeout" => {
                    info.connect_timeout = Duration::from_secs(
                        value.parse().map_err(|_| bad("not a number of seconds"))?,
                    )
                }
                // Our own name is always used so sessions are recognisable in
                // pg_stat_activity; accept the parameter for compatibility.
                "application_name" => {}
                other => return Err(UrlError::UnknownParameter(other.to_owned())),
            }
        }
        if info.host.is_empty() {
            info.host = "/var/run/postgresql".into();
        }
        if info.dbname.is_empty() {
            info.dbname = info.user.clone();
        }
        Ok(info)
    }

    /// The database name.
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The role snapguard connects as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The same server and credentials, another database.
    pub fn with_dbname(&self, dbname: &str) -> ConnInfo {
        ConnInfo {
            dbname: dbname.to_owned(),
            ..self.clone()
        }
    }

    /// The host is a Unix-domain socket directory, where libpq never uses
    /// TLS whatever `sslmode` says.
    pub(crate) fn is_socket(&self) -> bool {
        self.host.starts_with('/')
    }

    pub(crate) fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    pub(crate) fn sslrootcert(&self) -> Option<&PathBuf> {
        self.sslrootcert.as_ref()
    }

    /// The driver's configuration for this target.
    pub(crate) fn driver_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        if self.is_socket() {
            c.host_path(&self.host);
        } else {
            c.host(&self.host);
        }
        c.port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("snapguard")
            .connect_timeout(self.connect_timeout)
            .ssl_mode(match self.sslmode {
                // With no TLS on a socket, `require` would refuse to connect.
                _ if self.is_socket() => tokio_postgres::config::SslMode::Disable,
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                _ => tokio_postgres::config::SslMode::Require,
            });
        if let Some(p) = &self.password {
            c.password(p.expose());
        }
        c
    }

    /// The libpq environment for `pg_dump`, `pg_restore` and `psql`. The
    /// password goes through the environment, never the command line, where
    /// any user could read it with `ps`.
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("PGHOST", self.host.clone()),
            ("PGPORT", self.port.to_string()),
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
        if let Some(cert) = &self.sslrootcert {
            env.push(("PGSSLROOTCERT", cert.display().to_string()));
        }
        env
    }

    /// The URL with its password, for a child process's `DATABASE_URL` (an
    /// external migrator). Wrapped so it cannot be printed by accident.
    pub fn secret_url(&self) -> Secret {
        let enc = url_encode;
        let credentials = match &self.password {
            Some(p) => format!("{}:{}", enc(&self.user), enc(p.expose())),
            None => enc(&self.user),
        };
        let mut query = format!("sslmode={}", self.sslmode.as_str());
        if let Some(cert) = &self.sslrootcert {
            query.push_str(&format!(
                "&sslrootcert={}",
                enc(&cert.display().to_string())
            ));
        }
        Secret::new(if self.is_socket() {
            format!(
                "postgresql://{credentials}@/{}?host={}&port={}&{query}",
                enc(&self.dbname),
                enc(&self.host),
                self.port
            )
        } else {
            format!(
                "postgresql://{credentials}@{}:{}/{}?{query}",
                if self.host.contains(':') {
                    format!("[{}]", self.host)
                } else {
                    self.host.clone()
                },
                self.port,
                enc(&self.dbname)
            )
        })
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
fn url_encode(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pw = if self.password.is_some() { ":***" } else { "" };
        if self.is_socket() {
            write!(
                f,
                "postgres://{}{pw}@/{}?host={}&port={}",
                self.user, self.dbname, self.host, self.port
            )
        } else {
            write!(
                f,
                "postgres://{}{pw}@{}:{}/{}",
                self.user, self.host, self.port, self.dbname
            )
        }
    }
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnInfo({self})")
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.host, "db.example");
        assert_eq!(c.port, 6432);
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
        assert_eq!(c.host, "/tmp/sock");
        assert_eq!(c.port, 5433);
        assert!(c.to_string().contains("host=/tmp/sock"));
    }

    #[test]
    fn rejects_other_schemes_and_unknown_parameters() {
        assert!(matches!(
            ConnInfo::parse("mysql://a@b/c"),
            Err(UrlError::NotPostgres)
        ));
        assert!(
            matches!(ConnInfo::parse("postgres://a@b/c?foo=1"), Err(UrlError::UnknownParameter(p)) if p == "foo")
        );
        assert!(matches!(
            ConnInfo::parse("postgres://a@b/c?sslmode=maybe"),
            Err(UrlError::BadParameter { .. })
        ));
    }

    #[test]
    fn percent_decoding_handles_edges() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
