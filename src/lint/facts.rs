//! What the database says about the tables the migrations touch: size,
//! row estimate, whether partitioned, a column's current type, whether a
//! validated `IS NOT NULL` check exists, a function's volatility. Read
//! once, before the rules run; the rules themselves stay synchronous.

use std::collections::{HashMap, HashSet};

use tokio_postgres::Client;

use crate::db::DbError;

/// A table name as written: schema when qualified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    /// The schema, when the statement names one.
    pub schema: Option<String>,
    /// The table.
    pub name: String,
}

impl TableName {
    /// From a parse tree's range variable.
    pub fn of(rv: &pg_query::protobuf::RangeVar) -> TableName {
        TableName {
            schema: (!rv.schemaname.is_empty()).then(|| rv.schemaname.clone()),
            name: rv.relname.clone(),
        }
    }

    /// Quoted for `to_regclass`, which resolves it as the migration's
    /// session would (through `search_path`).
    fn regclass(&self) -> String {
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        match &self.schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(&self.name)),
            None => quote(&self.name),
        }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One existing table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// `pg_table_size`: heap, TOAST, free-space and visibility maps.
    pub bytes: u64,
    /// `reltuples`, when the table was ever analyzed.
    pub rows: Option<u64>,
    /// A partitioned table (its partitions hold the rows).
    pub partitioned: bool,
}

/// What the rules ask the database.
#[derive(Debug, Default)]
pub struct Wanted {
    /// Tables.
    pub tables: HashSet<TableName>,
    /// (table, column) whose current type matters.
    pub columns: HashSet<(TableName, String)>,
    /// Functions called in a new column's default.
    pub functions: HashSet<String>,
}

/// The answers. Absent entries mean "not there" (a table created by an
/// earlier migration of this deploy, or a typo the migration will hit).
#[derive(Debug, Default)]
pub struct Facts {
    /// The server's major version.
    pub server_major: u32,
    /// The session's current schema: where an unqualified name lands.
    pub current_schema: Option<String>,
    tables: HashMap<TableName, Table>,
    column_types: HashMap<(TableName, String), String>,
    not_null_checks: HashSet<(TableName, String)>,
    volatile: HashSet<String>,
    /// Casts PostgreSQL makes by relabelling (`pg_cast.castmethod = 'b'`),
    /// by `format_type` names.
    pub binary_casts: HashSet<(String, String)>,
    /// The session time zone is one that never leaves UTC.
    pub utc: Option<bool>,
}

/// Time zones whose offset is zero all year: with one of these as the
/// session's, PostgreSQL 12+ changes `timestamp` ↔ `timestamptz` in place.
const UTC_ZONES: &[&str] = &[
    "utc",
    "etc/utc",
    "uct",
    "etc/uct",
    "gmt",
    "etc/gmt",
    "gmt0",
    "etc/gmt0",
    "etc/gmt+0",
    "etc/gmt-0",
    "greenwich",
    "etc/greenwich",
    "universal",
    "etc/universal",
    "zulu",
    "etc/zulu",
];

/// `zone` (a `TimeZone` setting) never leaves UTC.
pub fn is_utc(zone: &str) -> bool {
    UTC_ZONES.contains(&zone.to_ascii_lowercase().as_str())
}

impl Facts {
    /// Asks the database `client` what `wanted` needs: one query per kind
    /// of fact, however many tables, so a remote server costs three round
    /// trips and not one per table.
    pub async fn read(client: &Client, wanted: &Wanted) -> Result<Facts, DbError> {
        let server = crate::db::server_version(client).await?;
        let current_schema: Option<String> = client
            .query_one("SELECT current_schema()::text", &[])
            .await
            .map_err(DbError::query("reading the current schema for lint"))?
            .get(0);
        let mut facts = Facts {
            server_major: server.major(),
            current_schema,
            ..Facts::default()
        };
        // Names go to the server as `to_regclass` text; each answer row
        // says which name it answers.
        let by_regclass: HashMap<String, &TableName> =
            wanted.tables.iter().map(|t| (t.regclass(), t)).collect();
        let names: Vec<&String> = by_regclass.keys().collect();
        let rows = client
            .query(
                "SELECT w.name, c.relkind = 'p', pg_table_size(c.oid), c.reltuples::float8 \
                 FROM unnest($1::text[]) AS w(name) JOIN pg_class c ON c.oid = to_regclass(w.name)",
                &[&names],
            )
            .await
            .map_err(DbError::query("reading table sizes for lint"))?;
        for row in rows {
            let name: String = row.get(0);
            let rows: f64 = row.get(3);
            facts.tables.insert(
                by_regclass[&name].clone(),
                Table {
                    partitioned: row.get(1),
                    bytes: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
                    // -1: never vacuumed or analyzed (PostgreSQL 14+);
                    // older servers say 0 for both "empty" and "unknown".
                    rows: (rows >= 0.0).then_some(rows as u64),
                },
            );
        }
        let columns: Vec<&(TableName, String)> = wanted.columns.iter().collect();
        let relations: Vec<String> = columns.iter().map(|(t, _)| t.regclass()).collect();
        let names: Vec<&String> = columns.iter().map(|(_, c)| c).collect();
        let rows = client
            .query(
                "SELECT w.i::int, format_type(a.atttypid, a.atttypmod), \
                        EXISTS (SELECT 1 FROM pg_constraint k \
                                WHERE k.conrelid = a.attrelid AND k.contype = 'c' AND k.convalidated \
                                  AND pg_get_constraintdef(k.oid) = format('CHECK ((%I IS NOT NULL))', a.attname)) \
                 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(rel, col, i) \
                 JOIN pg_attribute a ON a.attrelid = to_regclass(w.rel) AND a.attname = w.col AND NOT a.attisdropped",
                &[&relations, &names],
            )
            .await
            .map_err(DbError::query("reading column types for lint"))?;
        for row in rows {
            let i = usize::try_from(row.get::<_, i32>(0) - 1).expect("ordinality starts at 1");
            let key = columns[i].clone();
            if row.get::<_, bool>(2) {
                facts.not_null_checks.insert(key.clone());
            }
            facts.column_types.insert(key, row.get(1));
        }
        let functions: Vec<&String> = wanted.functions.iter().collect();
        let rows = client
            .query(
                "SELECT proname::text FROM pg_proc WHERE proname = ANY($1::text[]) \
                 GROUP BY proname HAVING bool_or(provolatile = 'v')",
                &[&functions],
            )
            .await
            .map_err(DbError::query("reading function volatility for lint"))?;
        facts.volatile = rows.into_iter().map(|r| r.get(0)).collect();
        let rows = client
            .query(
                "SELECT format_type(castsource, NULL), format_type(casttarget, NULL) \
                 FROM pg_cast WHERE castmethod = 'b'",
                &[],
            )
            .await
            .map_err(DbError::query(
                "reading the binary-coercible casts for lint",
            ))?;
        facts.binary_casts = rows.into_iter().map(|r| (r.get(0), r.get(1))).collect();
        let zone: String = client
            .query_one("SELECT current_setting('TimeZone')", &[])
            .await
            .map_err(DbError::query("reading the session time zone for lint"))?
            .get(0);
        facts.utc = Some(facts.server_major >= 12 && is_utc(&zone));
        Ok(facts)
    }

    /// The table, when it exists.
    pub fn table(&self, name: &TableName) -> Option<Table> {
        self.tables.get(name).copied()
    }

    /// The column's type as `format_type` writes it.
    pub fn column_type(&self, table: &TableName, column: &str) -> Option<&str> {
        self.column_types
            .get(&(table.clone(), column.to_owned()))
            .map(String::as_str)
    }

    /// A validated `CHECK (column IS NOT NULL)` exists.
    pub fn has_not_null_check(&self, table: &TableName, column: &str) -> bool {
        self.not_null_checks
            .contains(&(table.clone(), column.to_owned()))
    }

    /// The function (any overload) is volatile.
    pub fn is_volatile(&self, function: &str) -> bool {
        self.volatile.contains(function)
    }
}
