//! Database-level administration: the properties a dump does not carry,
//! creating, renaming and dropping databases, and the sessions that block a
//! rename.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use super::DbError;

/// Quotes an identifier for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for SQL (`standard_conforming_strings` is on in
/// every supported server).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// What `pg_dump` without `--create` leaves out: the database's own
/// attributes. Recorded in each manifest at snapshot time so a restore can put
/// them back, even on another server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseProperties {
    /// The owner role.
    pub owner: String,
    /// The encoding, for example `UTF8`.
    pub encoding: String,
    /// `LC_COLLATE`.
    pub collate: String,
    /// `LC_CTYPE`.
    pub ctype: String,
    /// `libc`, `icu` (PostgreSQL 15 and later) or `builtin` (17 and
    /// later); `None` before 15, where every database is `libc`.
    pub locale_provider: Option<String>,
    /// The provider's locale when it is not `libc`: the ICU locale, or the
    /// builtin provider's (`C.UTF-8`). Manifests written before PostgreSQL 17
    /// support call it `icu_locale`.
    #[serde(alias = "icu_locale")]
    pub locale: Option<String>,
    /// `ICU_RULES` (PostgreSQL 16 and later).
    #[serde(default)]
    pub icu_rules: Option<String>,
    /// `CONNECTION LIMIT` (-1 for none).
    pub connection_limit: i32,
    /// Whether connections are allowed.
    pub allow_connections: bool,
    /// The ACL items in their text form; `None` means the default privileges.
    pub acl: Option<Vec<String>>,
    /// `ALTER DATABASE … SET` and `ALTER ROLE … IN DATABASE … SET`.
    pub settings: Vec<RoleSetting>,
    /// `COMMENT ON DATABASE`.
    pub comment: Option<String>,
    /// The database's tablespace when it is not `pg_default`: a restore
    /// puts the database back where its data lived.
    #[serde(default)]
    pub tablespace: Option<String>,
}

/// One `pg_db_role_setting` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSetting {
    /// The role, or `None` for every role.
    pub role: Option<String>,
    /// `name=value` entries as PostgreSQL stores them.
    pub config: Vec<String>,
}

/// A session connected to a database.
#[derive(Debug, Clone)]
pub struct Session {
    /// The backend's process id.
    pub pid: i32,
    /// The role.
    pub user: Option<String>,
    /// `application_name`.
    pub application: Option<String>,
    /// The client address, `None` for a Unix socket.
    pub client: Option<String>,
    /// `active`, `idle`, `idle in transaction`…
    pub state: Option<String>,
}

impl std::fmt::Display for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} user `{}` application `{}` from {} ({})",
            self.pid,
            self.user.as_deref().unwrap_or("?"),
            self.application.as_deref().unwrap_or(""),
            self.client.as_deref().unwrap_or("local socket"),
            self.state.as_deref().unwrap_or("unknown state"),
        )
    }
}

impl DatabaseProperties {
    /// Reads the properties of `name`, or `None` if it does not exist.
    pub async fn read(client: &Client, name: &str) -> Result<Option<Self>, DbError> {
        let server = super::server_version(client).await?;
        let sql = format!(
            "SELECT pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate::text, d.datctype::text, \
             {}, d.datconnlimit, d.datallowconn, d.datacl::text[], shobj_description(d.oid, 'pg_database'), \
             NULLIF(t.spcname::text, 'pg_default') \
             FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname = $1",
            locale_columns(server.major())
        );
        let what = format!("reading the properties of database `{name}`");
        let Some(row) = client
            .query_opt(&sql, &[&name])
            .await
            .map_err(DbError::query(what.clone()))?
        else {
            return Ok(None);
        };
        let provider: Option<String> = row.get(4);
        let settings = client
            .query(
                "SELECT r.rolname, s.setconfig FROM pg_db_role_setting s \
                 JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole \
                 WHERE d.datname = $1 ORDER BY r.rolname NULLS FIRST",
                &[&name],
            )
            .await
            .map_err(DbError::query(what))?
            .into_iter()
            .map(|r| RoleSetting { role: r.get(0), config: r.get(1) })
            .collect();
        Ok(Some(DatabaseProperties {
            owner: row.get(0),
            encoding: row.get(1),
            collate: row.get(2),
            ctype: row.get(3),
            locale_provider: provider.map(|p| provider_name(&p).to_owned()),
            locale: row.get(5),
            icu_rules: row.get(6),
            connection_limit: row.get(7),
            allow_connections: row.get(8),
            acl: row.get(9),
            settings,
            comment: row.get(10),
            tablespace: row.get(11),
        }))
    }
}

/// The locale provider, its locale and the ICU rules, as three columns of
/// `pg_database d` for a server of `major`: the provider came in 15
/// (`datlocprovider`, `daticulocale`), the rules in 16 (`daticurules`), and
/// 17 renamed `daticulocale` to `datlocale` when it added the builtin
/// provider. <https://www.postgresql.org/docs/17/catalog-pg-database.html>
fn locale_columns(major: u32) -> &'static str {
    match major {
        ..=14 => "NULL::text, NULL::text, NULL::text",
        15 => "d.datlocprovider::text, d.daticulocale, NULL::text",
        16 => "d.datlocprovider::text, d.daticulocale, d.daticurules",
        _ => "d.datlocprovider::text, d.datlocale, d.daticurules",
    }
}

/// `datlocprovider`'s letter as `CREATE DATABASE … LOCALE_PROVIDER` spells it.
fn provider_name(letter: &str) -> &'static str {
    match letter {
        "i" => "icu",
        "b" => "builtin",
        _ => "libc",
    }
}

/// Whether a database named `name` exists.
pub async fn exists(client: &Client, name: &str) -> Result<bool, DbError> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&name],
        )
        .await
        .map_err(DbError::query(format!("looking up database `{name}`")))?;
    Ok(row.get(0))
}

/// Creates an empty database from `template0` with the encoding and locale
/// of `props`, so the restored data sorts and compares as it did.
pub async fn create_empty(
    client: &Client,
    name: &str,
    props: &DatabaseProperties,
) -> Result<(), DbError> {
    let mut sql = format!(
        "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}",
        quote_ident(name),
        quote_literal(&props.encoding),
        quote_literal(&props.collate),
        quote_literal(&props.ctype),
    );
    match props.locale_provider.as_deref() {
        Some("icu") => {
            sql.push_str(" LOCALE_PROVIDER icu");
            if let Some(icu) = &props.locale {
                sql.push_str(&format!(" ICU_LOCALE {}", quote_literal(icu)));
            }
            if let Some(rules) = &props.icu_rules {
                sql.push_str(&format!(" ICU_RULES {}", quote_literal(rules)));
            }
        }
        Some("builtin") => {
            sql.push_str(" LOCALE_PROVIDER builtin");
            if let Some(locale) = &props.locale {
                sql.push_str(&format!(" BUILTIN_LOCALE {}", quote_literal(locale)));
            }
        }
        _ => {}
    }
    if let Some(tablespace) = &props.tablespace {
        let here = client
            .query_opt(
                "SELECT 1 FROM pg_tablespace WHERE spcname = $1",
                &[tablespace],
            )
            .await
            .map_err(DbError::query(format!(
                "looking for tablespace `{tablespace}`"
            )))?
            .is_some();
        if here {
            sql.push_str(&format!(" TABLESPACE {}", quote_ident(tablespace)));
        } else {
            // Another server (a rehearsal's, a restore elsewhere): the data
            // is what matters there, not where it lived.
            tracing::warn!(
                database = name,
                tablespace,
                "the snapshot's database lived in a tablespace this server does not have; restoring into the default tablespace"
            );
        }
    }
    client
        .batch_execute(&sql)
        .await
        .map_err(DbError::query(format!("creating database `{name}`")))
}

/// Puts `props` on database `name`: settings, connection limit, comment and,
/// unless `no_owner`, the owner and privileges. Roles that do not exist on
/// this server are skipped and returned, so the caller can warn.
pub async fn apply_properties(
    client: &Client,
    name: &str,
    props: &DatabaseProperties,
    no_owner: bool,
) -> Result<Vec<String>, DbError> {
    let db = quote_ident(name);
    let mut statements = Vec::new();
    let mut skipped = Vec::new();
    let roles: Vec<String> = client
        .query("SELECT rolname FROM pg_roles", &[])
        .await
        .map_err(DbError::query("listing roles"))?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let role_exists = |r: &str| roles.iter().any(|x| x == r);

    if !no_owner {
        if role_exists(&props.owner) {
            statements.push(format!(
                "ALTER DATABASE {db} OWNER TO {}",
                quote_ident(&props.owner)
            ));
        } else {
            skipped.push(props.owner.clone());
        }
    }
    if props.connection_limit != -1 {
        statements.push(format!(
            "ALTER DATABASE {db} CONNECTION LIMIT {}",
            props.connection_limit
        ));
    }
    if let Some(comment) = &props.comment {
        statements.push(format!(
            "COMMENT ON DATABASE {db} IS {}",
            quote_literal(comment)
        ));
    }
    for setting in &props.settings {
        let target = match &setting.role {
            None => format!("ALTER DATABASE {db}"),
            Some(role) if role_exists(role) => {
                format!("ALTER ROLE {} IN DATABASE {db}", quote_ident(role))
            }
            Some(role) => {
                skipped.push(role.clone());
                continue;
            }
        };
        for entry in &setting.config {
            let Some((key, value)) = entry.split_once('=') else {
                continue;
            };
            statements.push(format!(
                "{target} SET {} TO {}",
                quote_ident(key),
                setting_value(key, value)
            ));
        }
    }
    if let (Some(acl), false) = (&props.acl, no_owner) {
        statements.push(format!(
            "REVOKE ALL ON DATABASE {db} FROM PUBLIC, {}",
            quote_ident(&props.owner)
        ));
        for item in acl {
            let Some(grant) = AclItem::parse(item) else {
                continue;
            };
            if let Some(role) = &grant.grantee
                && !role_exists(role)
            {
                skipped.push(role.clone());
                continue;
            }
            statements.extend(grant.statements(&db));
        }
    }
    for sql in statements {
        client
            .batch_execute(&sql)
            .await
            .map_err(DbError::query(format!(
                "carrying database properties over to `{name}`"
            )))?;
    }
    skipped.sort();
    skipped.dedup();
    Ok(skipped)
}

/// Variables whose stored value is a list of quoted items, as pg_dumpall
/// treats them (`GUC_LIST_QUOTE`): each item must be passed as its own literal.
const LIST_SETTINGS: &[&str] = &[
    "search_path",
    "temp_tablespaces",
    "session_preload_libraries",
    "shared_preload_libraries",
    "local_preload_libraries",
    "unix_socket_directories",
];

fn setting_value(key: &str, value: &str) -> String {
    if LIST_SETTINGS.contains(&key.to_ascii_lowercase().as_str()) {
        split_guc_list(value)
            .iter()
            .map(|v| quote_literal(v))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        quote_literal(value)
    }
}

/// Splits `"$user", public` into `$user` and `public`.
fn split_guc_list(value: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        item.push('"');
                    } else {
                        break;
                    }
                } else {
                    item.push(c);
                }
            }
            while chars.peek().is_some_and(|&c| c != ',') {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                item.push(c);
                chars.next();
            }
            item = item.trim_end().to_owned();
        }
        if !item.is_empty() {
            items.push(item);
        }
        if chars.next().is_none() {
            return items;
        }
    }
}

/// One `aclitem`: `grantee=privileges/grantor`, privileges `C`, `T`, `c`,
/// each followed by `*` when grantable.
/// <https://www.postgresql.org/docs/current/ddl-priv.html#PRIVILEGE-ABBREVS-TABLE>
#[derive(Debug, PartialEq, Eq)]
struct AclItem {
    grantee: Option<String>,
    privileges: Vec<(&'static str, bool)>,
}

impl AclItem {
    fn parse(item: &str) -> Option<AclItem> {
        let (grantee, rest) = split_role(item)?;
        let rest = rest.strip_prefix('=')?;
        let privs = rest.split('/').next()?;
        let mut privileges = Vec::new();
        let mut chars = privs.chars().peekable();
        while let Some(c) = chars.next() {
            let name = match c {
                'C' => "CREATE",
                'T' => "TEMPORARY",
                'c' => "CONNECT",
                _ => continue,
            };
            let grantable = chars.peek() == Some(&'*');
            if grantable {
                chars.next();
            }
            privileges.push((name, grantable));
        }
        Some(AclItem {
            grantee: (!grantee.is_empty()).then_some(grantee),
            privileges,
        })
    }

    fn statements(&self, db: &str) -> Vec<String> {
        let to = self
            .grantee
            .as_deref()
            .map_or("PUBLIC".to_owned(), quote_ident);
        self.privileges
            .iter()
            .map(|(p, grantable)| {
                let option = if *grantable { " WITH GRANT OPTION" } else { "" };
                format!("GRANT {p} ON DATABASE {db} TO {to}{option}")
            })
            .collect()
    }
}

/// Splits a possibly double-quoted role name off the front of an aclitem.
fn split_role(item: &str) -> Option<(String, &str)> {
    if let Some(rest) = item.strip_prefix('"') {
        let mut name = String::new();
        let mut iter = rest.char_indices().peekable();
        while let Some((i, c)) = iter.next() {
            if c == '"' {
                if iter.peek().map(|(_, c)| *c) == Some('"') {
                    iter.next();
                    name.push('"');
                } else {
                    return Some((name, &rest[i + 1..]));
                }
            } else {
                name.push(c);
            }
        }
        None
    } else {
        let end = item.find('=')?;
        Some((item[..end].to_owned(), &item[end..]))
    }
}

/// The client sessions connected to `name`, other than this one (an
/// autovacuum worker is no one's session; a rename or drop ends it itself).
pub async fn sessions(client: &Client, name: &str) -> Result<Vec<Session>, DbError> {
    let rows = client
        .query(
            "SELECT pid, usename::text, application_name, client_addr::text, state FROM pg_stat_activity \
             WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY pid",
            &[&name],
        )
        .await
        .map_err(DbError::query(format!("listing sessions on `{name}`")))?;
    Ok(rows
        .into_iter()
        .map(|r| Session {
            pid: r.get(0),
            user: r.get(1),
            application: r.get(2),
            client: r.get(3),
            state: r.get(4),
        })
        .collect())
}

/// Ends every other session on `name`.
pub async fn terminate_sessions(client: &Client, name: &str) -> Result<(), DbError> {
    client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&name],
        )
        .await
        .map_err(DbError::query(format!("ending sessions on `{name}`")))?;
    Ok(())
}

/// One server session: its backend pid and `backend_start`, which tell it
/// from a later session given the same pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionId {
    /// The backend pid.
    pub pid: i32,
    /// `backend_start`, as text.
    pub since: String,
}

impl SessionId {
    /// From a row whose first two columns are `pid` and
    /// `coalesce(backend_start::text, '')`.
    pub fn from_row(row: &tokio_postgres::Row) -> Self {
        SessionId {
            pid: row.get(0),
            since: row.get(1),
        }
    }
}

/// Ends the sessions of application `application` on `name` that began
/// before `began_before` (a server timestamp; not this session); returns
/// those it ended.
pub async fn terminate_sessions_of(
    client: &Client,
    name: &str,
    application: &str,
    began_before: &ServerTime,
) -> Result<Vec<SessionId>, DbError> {
    let rows = client
        .query(
            // Materialized first: in one WHERE the planner may call
            // pg_terminate_backend on rows the other conditions exclude.
            "WITH chosen AS MATERIALIZED ( \
                 SELECT pid, backend_start FROM pg_stat_activity \
                 WHERE datname = $1 AND application_name = $2 AND pid <> pg_backend_pid() \
                   AND backend_start < $3::text::timestamptz) \
             SELECT pid, coalesce(backend_start::text, '') FROM chosen WHERE pg_terminate_backend(pid)",
            &[&name, &application, &began_before.0],
        )
        .await
        .map_err(DbError::query(format!(
            "ending the `{application}` sessions on `{name}`"
        )))?;
    Ok(rows.iter().map(SessionId::from_row).collect())
}

/// A moment by the server's clock (`clock_timestamp()`, as text), to
/// compare with what the server records (`backend_start`): the client's
/// clock may differ from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTime(String);

/// The server's clock now.
pub async fn server_time(client: &Client) -> Result<ServerTime, DbError> {
    let row = client
        .query_one("SELECT clock_timestamp()::text", &[])
        .await
        .map_err(DbError::query("reading the server's clock"))?;
    Ok(ServerTime(row.get(0)))
}

/// Allows or forbids new connections to `name` (`ALLOW_CONNECTIONS`). While
/// forbidden, nobody can connect, superusers included, so sessions cannot
/// reappear between the check and a rename.
pub async fn set_allow_connections(
    client: &Client,
    name: &str,
    allow: bool,
) -> Result<(), DbError> {
    client
        .batch_execute(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS {allow}",
            quote_ident(name)
        ))
        .await
        .map_err(DbError::query(format!(
            "setting ALLOW_CONNECTIONS {allow} on `{name}`"
        )))
}

/// Renames databases in one transaction: either every rename happens or none.
pub async fn rename_all(client: &mut Client, renames: &[(&str, &str)]) -> Result<(), DbError> {
    let what = || {
        renames
            .iter()
            .map(|(a, b)| format!("`{a}` → `{b}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let tx = client
        .transaction()
        .await
        .map_err(DbError::query(format!("renaming {}", what())))?;
    for (from, to) in renames {
        tx.batch_execute(&format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_ident(from),
            quote_ident(to)
        ))
        .await
        .map_err(DbError::query(format!("renaming {}", what())))?;
    }
    tx.commit()
        .await
        .map_err(DbError::query(format!("renaming {}", what())))
}

/// Drops `name` if it exists.
pub async fn drop_database(client: &Client, name: &str) -> Result<(), DbError> {
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(name)))
        .await
        .map_err(DbError::query(format!("dropping database `{name}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident(r#"we"ird"#), r#""we""ird""#);
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn list_settings_are_split_into_literals() {
        assert_eq!(
            split_guc_list(r#""$user", public"#),
            vec!["$user", "public"]
        );
        assert_eq!(
            split_guc_list(r#"a,"b ""c""", d e"#),
            vec!["a", r#"b "c""#, "d e"]
        );
        assert_eq!(
            setting_value("search_path", r#""$user", public"#),
            "'$user', 'public'"
        );
        assert_eq!(setting_value("work_mem", "64MB"), "'64MB'");
    }

    #[test]
    fn acl_items_parse() {
        let item = AclItem::parse("app=Tc*/owner").unwrap();
        assert_eq!(item.grantee.as_deref(), Some("app"));
        assert_eq!(
            item.privileges,
            vec![("TEMPORARY", false), ("CONNECT", true)]
        );
        let public = AclItem::parse("=c/owner").unwrap();
        assert_eq!(public.grantee, None);
        assert_eq!(
            public.statements("\"db\""),
            vec!["GRANT CONNECT ON DATABASE \"db\" TO PUBLIC"]
        );
        let quoted = AclItem::parse(r#""my ""role"""=C/o"#).unwrap();
        assert_eq!(quoted.grantee.as_deref(), Some(r#"my "role""#));
    }
}
