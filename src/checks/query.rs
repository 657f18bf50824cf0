//! Running one check query: read-only, with a timeout, through a cursor so a
//! large result is read in batches and never held whole.

use std::ops::ControlFlow;
use std::time::Duration;

use tokio_postgres::{Client, SimpleQueryMessage, SimpleQueryRow};

/// Rows fetched per round trip.
const BATCH: usize = 5_000;

/// A check query failed on the server (or the connection broke).
#[derive(Debug, Clone)]
pub struct QueryFailure {
    /// The server's message, or the driver's.
    pub message: String,
    /// The SQLSTATE, when the server gave one.
    pub sqlstate: Option<String>,
}

impl std::fmt::Display for QueryFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sqlstate {
            Some(code) => write!(f, "{} (SQLSTATE {code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for QueryFailure {}

impl From<tokio_postgres::Error> for QueryFailure {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => QueryFailure {
                message: db.message().to_owned(),
                sqlstate: Some(db.code().code().to_owned()),
            },
            None => QueryFailure {
                message: e.to_string(),
                sqlstate: None,
            },
        }
    }
}

/// A row as text: `NULL` for nulls, columns joined by `, `.
pub fn render(row: &SimpleQueryRow) -> String {
    (0..row.len())
        .map(|i| row.get(i).unwrap_or("NULL"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `sql` in a `READ ONLY` transaction with `statement_timeout`, handing
/// rows to `each` in batches until it returns `Break` or rows run out. The
/// transaction is rolled back: a check can never change data, and the
/// server refuses one that tries.
pub async fn for_each_batch(
    client: &mut Client,
    sql: &str,
    timeout: Duration,
    mut each: impl FnMut(&[SimpleQueryRow]) -> ControlFlow<()>,
) -> Result<(), QueryFailure> {
    let tx = client.build_transaction().read_only(true).start().await?;
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = '{}ms'",
        timeout.as_millis()
    ))
    .await?;
    if !is_query(sql) {
        // Not a SELECT (an UPDATE, a DO block…): run it as it is, so the
        // server's own refusal is what the user sees.
        let rows = rows(tx.simple_query(sql).await?);
        let _ = each(&rows);
        return Ok(());
    }
    tx.batch_execute(&format!(
        "DECLARE snapguard_check NO SCROLL CURSOR FOR {sql}"
    ))
    .await?;
    loop {
        let batch = rows(
            tx.simple_query(&format!("FETCH {BATCH} FROM snapguard_check"))
                .await?,
        );
        if batch.is_empty() || each(&batch).is_break() {
            break;
        }
    }
    tx.rollback().await?;
    Ok(())
}

fn rows(messages: Vec<SimpleQueryMessage>) -> Vec<SimpleQueryRow> {
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// Whether `sql` can be the body of a cursor.
fn is_query(sql: &str) -> bool {
    let first = sql
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_start_matches('(')
        .to_ascii_uppercase();
    matches!(first.as_str(), "SELECT" | "WITH" | "VALUES" | "TABLE")
}

/// Parses `sql` on the server without running it. With `tolerate_missing`,
/// errors about objects that do not exist yet (an after-check that reads a
/// table the migrations create) are accepted.
pub async fn parse(client: &Client, sql: &str, tolerate_missing: bool) -> Result<(), QueryFailure> {
    match client.prepare(sql).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let failure = QueryFailure::from(e);
            let missing = matches!(
                failure.sqlstate.as_deref(),
                // undefined table, column, function, object; invalid schema name
                Some("42P01" | "42703" | "42883" | "42704" | "3F000")
            );
            if tolerate_missing && missing {
                Ok(())
            } else {
                Err(failure)
            }
        }
    }
}
