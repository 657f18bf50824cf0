//! PostgreSQL connections: parsing the URL, TLS, the server version, the
//! database-level administration that snapshots and restores need, and the
//! per-database deploy lock.
//!
//! There is deliberately no trait in front of `tokio_postgres::Client`: the
//! product talks to a real server, and so do its tests.

pub mod admin;
mod conninfo;
pub mod lock;
pub mod privileges;
pub mod registry;
pub mod swap;
mod tls;

pub use admin::{DatabaseProperties, RoleSetting, Session, quote_ident, quote_literal};
pub use conninfo::{ConnInfo, Secret, SslMode, UrlError, names_a_password};

use std::collections::BTreeMap;

use tokio_postgres::Client;

/// A failure talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The connection could not be made (network, authentication, TLS).
    #[error("cannot connect to {target}")]
    Connect {
        /// The redacted URL, quoted (and the configured database when it
        /// is another).
        target: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// TLS could not be set up from the URL's `sslmode` / `sslrootcert`.
    #[error("cannot set up TLS for `{target}`: {message}")]
    Tls {
        /// The redacted URL.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// A statement failed.
    #[error("{what} failed")]
    Query {
        /// What snapguard was doing, for example `reading the server version`.
        what: String,
        /// The driver's error, with the server's message in its chain.
        #[source]
        source: tokio_postgres::Error,
    },
}

impl DbError {
    /// The server itself is not there to answer: no connection could be
    /// opened at all (refused, unreachable), or it is starting up or
    /// shutting down. Not a refused login or a failed statement.
    pub fn server_down(&self) -> bool {
        use tokio_postgres::error::SqlState;
        match self {
            DbError::Connect { source, .. } => match source.code() {
                None => true,
                Some(code) => [
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                ]
                .contains(code),
            },
            DbError::Tls { .. } | DbError::Query { .. } => false,
        }
    }

    pub(crate) fn query(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> DbError {
        let what = what.into();
        move |source| DbError::Query { what, source }
    }
}

/// A PostgreSQL server version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    /// `server_version_num`, for example `150018`.
    pub num: u32,
}

/// A server older than snapguard supports.
#[derive(Debug, thiserror::Error)]
#[error(
    "PostgreSQL {version} is not supported: snapguard supports PostgreSQL {} to {} (every catalogue query and the way back are tested on each); upgrade the server",
    ServerVersion::OLDEST_SUPPORTED,
    ServerVersion::NEWEST_TESTED
)]
pub struct Unsupported {
    /// The server's version.
    pub version: ServerVersion,
}

impl ServerVersion {
    /// The oldest major snapguard runs against: PostgreSQL 13 (12 left
    /// community support in November 2024).
    pub const OLDEST_SUPPORTED: u32 = 13;
    /// The newest major the version matrix proves.
    pub const NEWEST_TESTED: u32 = 18;

    /// The major version (`15` for 15.18; `9` style minors are not supported).
    pub fn major(self) -> u32 {
        self.num / 10_000
    }

    /// Refuses a server older than [`Self::OLDEST_SUPPORTED`]. A newer one
    /// than [`Self::NEWEST_TESTED`] is warned about, not refused: its
    /// catalogue is read as the newest tested major's.
    pub fn check_supported(self) -> Result<(), Unsupported> {
        if self.major() < Self::OLDEST_SUPPORTED {
            return Err(Unsupported { version: self });
        }
        if self.major() > Self::NEWEST_TESTED {
            tracing::warn!(
                server = %self,
                newest_tested = Self::NEWEST_TESTED,
                "this PostgreSQL is newer than any snapguard was tested on"
            );
        }
        Ok(())
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major(), self.num % 10_000)
    }
}

/// Sessions this process opened, per database name. The deploy's write
/// guard compares the server's session counter against it: any session the
/// server counted beyond these came from someone else.
static OPENED: std::sync::Mutex<BTreeMap<String, u64>> = std::sync::Mutex::new(BTreeMap::new());

/// How many sessions this process has opened to database `dbname`.
pub fn sessions_opened(dbname: &str) -> u64 {
    let opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
    opened.get(dbname).copied().unwrap_or(0)
}

/// Counts a session opened to `dbname` by a child process (`pg_dump`).
pub fn count_session(dbname: &str) {
    let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
    *opened.entry(dbname.to_owned()).or_default() += 1;
}

/// Connects to `info`, spawning the connection task on the current runtime.
pub async fn connect(info: &ConnInfo) -> Result<Client, DbError> {
    let config = info.driver_config();
    let client = if info.is_socket() {
        // libpq never uses TLS on a Unix-domain socket, and a TLS connector
        // cannot be made for a socket's empty host name.
        establish(&config, tokio_postgres::NoTls, info).await?
    } else {
        establish(&config, tls::connector(info)?, info).await?
    };
    // Counted once connected, never for an attempt that failed: the write
    // guard takes every session counted here for one of the server's, and
    // an attempt the server refused would excuse someone else's session.
    // (One the server accepted but we failed on goes uncounted, which
    // can only make the guard refuse.)
    count_session(info.dbname());
    registry::register(&client).await;
    Ok(client)
}

/// Connects with `tls` and drives the connection on its own task.
async fn establish<T>(
    config: &tokio_postgres::Config,
    tls: T,
    info: &ConnInfo,
) -> Result<Client, DbError>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config
        .connect(tls)
        .await
        .map_err(|source| DbError::Connect {
            target: info.described(),
            source,
        })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "database connection closed with an error");
        }
    });
    Ok(client)
}

/// Reads `server_version_num`.
pub async fn server_version(client: &Client) -> Result<ServerVersion, DbError> {
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int4", &[])
        .await
        .map_err(DbError::query("reading the server version"))?;
    let num: i32 = row.get(0);
    Ok(ServerVersion { num: num as u32 })
}

/// The current WAL insert position, or `None` on a standby (where there is
/// no insert position to record).
pub async fn current_wal_lsn(client: &Client) -> Result<Option<String>, DbError> {
    let row = client
        .query_one(
            "SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END",
            &[],
        )
        .await
        .map_err(DbError::query("reading the WAL position"))?;
    Ok(row.get(0))
}

/// Whether the relation `name` (schema-qualified) exists.
pub async fn relation_exists(
    client: &impl tokio_postgres::GenericClient,
    name: &str,
) -> Result<bool, DbError> {
    Ok(client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await
        .map_err(DbError::query(format!("looking for `{name}`")))?
        .get(0))
}

#[cfg(test)]
mod version_tests {
    use super::ServerVersion;

    #[test]
    fn servers_before_13_are_refused_and_newer_than_18_only_warned_about() {
        let refused = ServerVersion { num: 120_022 }
            .check_supported()
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "PostgreSQL 12.22 is not supported: snapguard supports PostgreSQL 13 to 18 (every catalogue query and the way back are tested on each); upgrade the server"
        );
        for num in [130_023, 150_018, 180_006, 190_000] {
            assert!(ServerVersion { num }.check_supported().is_ok(), "{num}");
        }
    }
}

#[cfg(test)]
mod session_count_tests {
    use super::*;

    /// The write guard takes each counted session for one the server
    /// counted; a refused attempt is not one.
    #[tokio::test]
    async fn a_connection_that_failed_is_not_counted() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let info = ConnInfo::parse(&format!(
            "postgres://nobody@127.0.0.1:{port}/never_counted?connect_timeout=2"
        ))
        .unwrap();
        assert!(connect(&info).await.is_err());
        assert_eq!(sessions_opened("never_counted"), 0);
    }
}
