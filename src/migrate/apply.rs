//! Applying pending migrations.
//!
//! Every migration runs with `lock_timeout` set, so it never queues behind a
//! long transaction while blocking the application; a lock timeout
//! (SQLSTATE 55P03) is retried with backoff, any other error is final.
//! <https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-LOCK-TIMEOUT>

use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tokio_postgres::error::ErrorPosition;

use tokio_postgres::SimpleQueryMessage;

use super::history::{self, Record};
use super::native::{self, Tool};
use super::plan::history_key;
use super::source::{Batch, Migration};
use crate::cancel::Cancel;
pub use crate::config::TransactionMode;
use crate::db::DbError;
use crate::sqlsplit as split;

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Per migration or all in one.
    pub mode: TransactionMode,
    /// `lock_timeout` unless a migration sets its own.
    pub lock_timeout: Duration,
    /// Retries after a lock timeout.
    pub lock_retries: u32,
    /// `statement_timeout` unless a migration sets its own.
    pub statement_timeout: Duration,
    /// Recorded in the history.
    pub release_id: Option<String>,
    /// Recorded in the history.
    pub deploy_id: Option<String>,
    /// The native tool whose history table is kept current beside
    /// snapguard's (`migrations.native_history: keep`).
    pub native: Option<Tool>,
}

/// A migration that was applied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    /// The history key.
    pub version: String,
    /// The file.
    pub path: String,
    /// Seconds it took (the last attempt).
    pub seconds: f64,
    /// Lock-timeout retries it needed.
    pub retries: u32,
    /// Rows its statements' command tags reported (`UPDATE 12` → 12; a
    /// `SELECT` counts the rows it returned), summed.
    pub rows: u64,
}

/// A migration failed on the server.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The file.
    pub path: String,
    /// The file line of the error: the server's position in the statement,
    /// else the statement's first line.
    pub line: usize,
    /// The statement that failed (its first line).
    pub statement: String,
    /// The SQLSTATE.
    pub sqlstate: String,
    /// The server's message.
    pub message: String,
    /// `DETAIL`.
    pub detail: Option<String>,
    /// `HINT`.
    pub hint: Option<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}:{}`: {} (SQLSTATE {})\n  statement: {}",
            self.path, self.line, self.message, self.sqlstate, self.statement
        )?;
        if let Some(d) = &self.detail {
            write!(f, "\n  detail: {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Applying failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// `transaction: all` with a migration that cannot run in a transaction.
    #[error(
        "`{0}` must run outside a transaction (a no-transaction directive, or its own BEGIN/COMMIT blocks), which `transaction: all` cannot do; use `transaction: per-migration`, or drop what keeps it out of one"
    )]
    NeedsNoTransaction(String),
    /// A migration failed; earlier ones in `per-migration` mode stay applied.
    #[error("migration failed: {failure}{}{}", locks_note(*.gave_up_on_locks), state_note(.applied, *.rolled_back))]
    Migration {
        /// What the server said, where.
        failure: Box<Failure>,
        /// What was applied (and committed) before it.
        applied: Vec<Applied>,
        /// Whether it was still timing out on locks after every retry.
        gave_up_on_locks: bool,
        /// Whether the failing migration was rolled back whole (it ran in a
        /// transaction); outside one, its earlier statements stay committed.
        rolled_back: bool,
    },
    /// Cancelled (SIGINT / SIGTERM) between migrations or batches.
    #[error("cancelled{}; {}", during.as_ref().map(|d| format!(" during {d}")).unwrap_or_default(), applied_note(.applied))]
    Cancelled {
        /// What was applied (and committed) before.
        applied: Vec<Applied>,
        /// The batched migration that was stopped, if any.
        during: Option<String>,
    },
    /// The database failed outside a migration.
    #[error(transparent)]
    Db(#[from] DbError),
}

fn locks_note(gave_up: bool) -> &'static str {
    if gave_up {
        "\n  it was still waiting for a lock after every retry (`migrations.lock_timeout`, `migrations.lock_retries`): a long transaction holds a conflicting lock; find it in pg_stat_activity"
    } else {
        ""
    }
}

/// What the failure left behind, for the message.
fn state_note(applied: &[Applied], rolled_back: bool) -> String {
    let failed = if rolled_back {
        "it was rolled back"
    } else {
        "it ran outside a transaction: its statements before the failing one stay committed"
    };
    format!("\n  state: {failed}; {}", applied_note(applied))
}

fn applied_note(applied: &[Applied]) -> String {
    /// More than this many are summarised by their first and last: a
    /// project adopting snapguard may apply hundreds in one run.
    const LISTED: usize = 5;
    let versions: Vec<&str> = applied.iter().map(|a| a.version.as_str()).collect();
    if versions.is_empty() {
        return "no migration was applied before it in this run".to_owned();
    }
    if versions.len() <= LISTED {
        return format!(
            "applied and recorded before it in this run: {}",
            versions.join(", ")
        );
    }
    format!(
        "applied and recorded before it in this run: {} migrations, {} to {} (`snapguard migrate status` lists them)",
        versions.len(),
        versions[0],
        versions[versions.len() - 1]
    )
}

/// Refuses `transaction: all` when a pending migration cannot run in one.
pub fn check_mode(pending: &[&Migration], mode: TransactionMode) -> Result<(), ApplyError> {
    match pending.iter().find(|m| !m.directives.transaction) {
        Some(m) if mode == TransactionMode::All => {
            Err(ApplyError::NeedsNoTransaction(m.path.display().to_string()))
        }
        _ => Ok(()),
    }
}

/// Applies `pending` in order on `client`, creating the history table
/// first if needed (inside the one transaction in `all` mode, so a failure
/// leaves no trace). Cancellation is honoured between migrations and
/// between batches; a running statement is bounded by `statement_timeout`.
pub async fn apply(
    client: &mut Client,
    pending: &[&Migration],
    options: &ApplyOptions,
    cancel: &Cancel,
) -> Result<Vec<Applied>, ApplyError> {
    check_mode(pending, options.mode)?;
    if options.mode == TransactionMode::All {
        return in_transaction_with_retries(client, pending, options, true).await;
    }
    history::ensure(client).await?;
    if let Some(tool) = options.native {
        native::ensure(&*client, tool).await?;
    }
    let mut done = Vec::new();
    for m in pending {
        if cancel.is_cancelled() {
            return Err(ApplyError::Cancelled {
                applied: done,
                during: None,
            });
        }
        let result = if m.directives.transaction {
            in_transaction_with_retries(client, std::slice::from_ref(m), options, false).await
        } else {
            outside_transaction(client, m, options, cancel)
                .await
                .map(|a| vec![a])
        };
        match result {
            Ok(a) => done.extend(a),
            Err(ApplyError::Migration {
                failure,
                gave_up_on_locks,
                ..
            }) => {
                return Err(ApplyError::Migration {
                    failure,
                    applied: done,
                    gave_up_on_locks,
                    rolled_back: m.directives.transaction,
                });
            }
            Err(ApplyError::Cancelled { during, .. }) => {
                return Err(ApplyError::Cancelled {
                    applied: done,
                    during,
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// One attempt's failure.
enum Attempt {
    LockTimeout(Box<Failure>),
    Failed(Box<Failure>),
    Db(DbError),
}

/// After a failed attempt: waits and returns `None` when a lock timeout may
/// be retried (0.5 s, 1 s, 2 s… at most 10 s apart), else the final error.
async fn retry_or_fail(
    attempt: Attempt,
    tries: &mut u32,
    options: &ApplyOptions,
) -> Option<ApplyError> {
    match attempt {
        Attempt::LockTimeout(failure) if *tries < options.lock_retries => {
            let wait = Duration::from_millis(500 << (*tries).min(5)).min(Duration::from_secs(10));
            *tries += 1;
            tracing::warn!(migration = %failure.path, retry = *tries, of = options.lock_retries, wait_ms = wait.as_millis() as u64, "lock timeout; retrying");
            tokio::time::sleep(wait).await;
            None
        }
        Attempt::LockTimeout(failure) => Some(ApplyError::Migration {
            failure,
            applied: Vec::new(),
            gave_up_on_locks: true,
            rolled_back: true,
        }),
        Attempt::Failed(failure) => Some(ApplyError::Migration {
            failure,
            applied: Vec::new(),
            gave_up_on_locks: false,
            rolled_back: true,
        }),
        Attempt::Db(e) => Some(ApplyError::Db(e)),
    }
}

async fn in_transaction_with_retries(
    client: &mut Client,
    ms: &[&Migration],
    options: &ApplyOptions,
    create_history: bool,
) -> Result<Vec<Applied>, ApplyError> {
    let mut tries = 0;
    loop {
        match apply_in_transaction(client, ms, options, tries, create_history).await {
            Ok(done) => return Ok(done),
            Err(attempt) => {
                if let Some(e) = retry_or_fail(attempt, &mut tries, options).await {
                    return Err(e);
                }
            }
        }
    }
}

const LOCK_NOT_AVAILABLE: &str = "55P03";

fn timeouts(m: &Migration, options: &ApplyOptions, scope: &str) -> String {
    let lock = m.directives.lock_timeout.unwrap_or(options.lock_timeout);
    let statement = m
        .directives
        .statement_timeout
        .unwrap_or(options.statement_timeout);
    format!(
        "SET {scope} lock_timeout = '{}ms'; SET {scope} statement_timeout = '{}ms'",
        lock.as_millis(),
        statement.as_millis()
    )
}

/// Applies `ms` in one transaction with their history rows.
async fn apply_in_transaction(
    client: &mut Client,
    ms: &[&Migration],
    options: &ApplyOptions,
    retries: u32,
    create_history: bool,
) -> Result<Vec<Applied>, Attempt> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| Attempt::Db(DbError::query("starting a transaction")(e)))?;
    if create_history {
        history::ensure(&tx).await.map_err(Attempt::Db)?;
        if let Some(tool) = options.native {
            native::ensure(&tx, tool).await.map_err(Attempt::Db)?;
        }
    }
    let mut done = Vec::new();
    for m in ms {
        tracing::info!(migration = %m.path.display(), "applying");
        let started = Instant::now();
        let set_timeouts = timeouts(m, options, "LOCAL");
        // Statement by statement, as psql sends a file: a failure then
        // always names its statement and line, even when the server gives
        // no position (a constraint check, a lock timeout).
        let statements = split::split(&m.sql).expect("checked when the folder was read");
        let mut rows = 0;
        for (i, statement) in statements.iter().enumerate() {
            let result = if i == 0 {
                // The timeouts go with the first statement, in one round
                // trip: requests issued together are sent without waiting
                // for the answers, which come back in order.
                let (set, first) = tokio::join!(
                    tx.batch_execute(&set_timeouts),
                    tx.simple_query(&statement.sql)
                );
                set.map_err(|e| Attempt::Db(DbError::query("setting timeouts")(e)))?;
                first
            } else {
                tx.simple_query(&statement.sql).await
            };
            match result {
                Ok(messages) => rows += changed_rows(&messages),
                Err(e) => return Err(classify(m, e, statement)),
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        write_history(&tx, m, seconds, options)
            .await
            .map_err(Attempt::Db)?;
        done.push(Applied {
            version: history_key(m),
            path: m.path.display().to_string(),
            seconds,
            retries,
            rows,
        });
    }
    tx.commit()
        .await
        .map_err(|e| Attempt::Db(DbError::query("committing migrations")(e)))?;
    for a in &done {
        tracing::info!(migration = %a.path, seconds = format!("{:.2}", a.seconds), "applied");
    }
    Ok(done)
}

/// Applies a migration statement by statement, outside any transaction;
/// each statement is retried on its own after a lock timeout. A batched
/// migration repeats its one statement until it changes no rows.
async fn outside_transaction(
    client: &mut Client,
    m: &Migration,
    options: &ApplyOptions,
    cancel: &Cancel,
) -> Result<Applied, ApplyError> {
    tracing::info!(migration = %m.path.display(), "applying outside a transaction");
    // A statement inside one of the file's own blocks cannot be retried
    // alone: the failure aborted the block.
    let no_retries;
    let options = if m.directives.own_transactions {
        no_retries = ApplyOptions {
            lock_retries: 0,
            ..options.clone()
        };
        &no_retries
    } else {
        options
    };
    let statements = split::split(&m.sql).expect("checked when the folder was read");
    client
        .batch_execute(&timeouts(m, options, "SESSION"))
        .await
        .map_err(DbError::query("setting timeouts"))?;
    let started = Instant::now();
    let mut tries = 0;
    let rows = match m.directives.batch {
        Some(batch) => {
            let statement = statements
                .first()
                .expect("checked when the folder was read");
            batched(client, m, statement, batch, options, cancel).await
        }
        None => {
            let mut result = Ok(0);
            for statement in &statements {
                match run_statement(client, m, statement, options, &mut tries).await {
                    Ok(n) => result = result.map(|total| total + n),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            result
        }
    };
    if rows.is_err() && m.directives.own_transactions {
        // End the file's block the failure aborted, so that the session
        // takes commands again (outside a block this is only a warning).
        // The migration's failure is what to report, whatever this says.
        if let Err(e) = client.batch_execute("ROLLBACK").await {
            tracing::warn!(error = %e, "rolling back the migration's own transaction failed");
        }
    }
    let reset = client
        .batch_execute("RESET lock_timeout; RESET statement_timeout")
        .await;
    let rows = rows?;
    reset.map_err(DbError::query("resetting timeouts"))?;
    let seconds = started.elapsed().as_secs_f64();
    write_history(&*client, m, seconds, options).await?;
    tracing::info!(migration = %m.path.display(), seconds = format!("{seconds:.2}"), "applied");
    Ok(Applied {
        version: history_key(m),
        path: m.path.display().to_string(),
        seconds,
        retries: tries,
        rows,
    })
}

/// Runs one statement in autocommit, retrying lock timeouts; returns the
/// rows it changed.
async fn run_statement(
    client: &Client,
    m: &Migration,
    statement: &split::Statement,
    options: &ApplyOptions,
    tries: &mut u32,
) -> Result<u64, ApplyError> {
    loop {
        match client.simple_query(&statement.sql).await {
            Ok(messages) => return Ok(changed_rows(&messages)),
            Err(e) => {
                if let Some(err) = retry_or_fail(classify(m, e, statement), tries, options).await {
                    return Err(err);
                }
            }
        }
    }
}

/// The rows a statement's command tags report (`UPDATE 12` → 12; a
/// `SELECT` counts the rows it returned).
fn changed_rows(messages: &[SimpleQueryMessage]) -> u64 {
    messages
        .iter()
        .map(|msg| match msg {
            SimpleQueryMessage::CommandComplete(n) => *n,
            _ => 0,
        })
        .sum()
}

/// Repeats a batched migration's statement, each run its own transaction,
/// until it changes no rows; logs rows so far and the rate every few
/// seconds. Every batch gets the full lock-timeout retries.
async fn batched(
    client: &Client,
    m: &Migration,
    statement: &split::Statement,
    batch: Batch,
    options: &ApplyOptions,
    cancel: &Cancel,
) -> Result<u64, ApplyError> {
    let started = Instant::now();
    let mut last_report = started;
    let (mut total, mut batches) = (0u64, 0u64);
    loop {
        let mut tries = 0;
        let rows = run_statement(client, m, statement, options, &mut tries).await?;
        if rows == 0 {
            break;
        }
        total += rows;
        batches += 1;
        if batches == 1 || last_report.elapsed() >= PROGRESS_EVERY {
            last_report = Instant::now();
            tracing::info!(migration = %m.path.display(), rows = total, batches, rows_per_second = rate(total, started), "backfilling");
        }
        if cancel.is_cancelled() {
            return Err(ApplyError::Cancelled {
                applied: Vec::new(),
                during: Some(format!(
                    "`{}` after {batches} batches ({total} rows committed; running it again continues where it stopped)",
                    m.path.display()
                )),
            });
        }
        if !batch.pause.is_zero() {
            tokio::time::sleep(batch.pause).await;
        }
    }
    tracing::info!(migration = %m.path.display(), rows = total, batches, rows_per_second = rate(total, started), "backfill done");
    Ok(total)
}

/// How often a batched migration reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

fn rate(rows: u64, since: Instant) -> u64 {
    (rows as f64 / since.elapsed().as_secs_f64().max(0.001)) as u64
}

async fn write_history(
    client: &impl tokio_postgres::GenericClient,
    m: &Migration,
    seconds: f64,
    options: &ApplyOptions,
) -> Result<(), DbError> {
    let key = history_key(m);
    history::record(
        client,
        &Record {
            version: &key,
            name: &m.name,
            kind: if m.version.is_some() {
                "versioned"
            } else {
                "repeatable"
            },
            checksum: &m.checksum,
            duration_ms: (seconds * 1000.0) as i64,
            release_id: options.release_id.as_deref(),
            deploy_id: options.deploy_id.as_deref(),
        },
    )
    .await?;
    match options.native {
        Some(tool) => native::record(client, tool, m, seconds).await,
        None => Ok(()),
    }
}

/// Turns a server error into a [`Failure`] that names the file line: the
/// server's position counts characters of the statement that was sent.
fn classify(m: &Migration, e: tokio_postgres::Error, statement: &split::Statement) -> Attempt {
    let Some(db) = e.as_db_error() else {
        return Attempt::Db(DbError::Query {
            what: format!("applying `{}`", m.path.display()),
            source: e,
        });
    };
    let position = match db.position() {
        Some(ErrorPosition::Original(p)) => Some(*p as usize),
        _ => None,
    };
    let line = m.first_line - 1 + position.map_or(statement.line, |p| statement.line_of(p));
    let failure = Box::new(Failure {
        path: m.path.display().to_string(),
        line,
        statement: statement.sql.lines().next().unwrap_or_default().to_owned(),
        sqlstate: db.code().code().to_owned(),
        message: db.message().to_owned(),
        detail: db.detail().map(str::to_owned),
        hint: db.hint().map(str::to_owned),
    });
    if db.code().code() == LOCK_NOT_AVAILABLE {
        Attempt::LockTimeout(failure)
    } else {
        Attempt::Failed(failure)
    }
}

#[cfg(test)]
mod note_tests {
    use super::*;

    fn applied(n: usize) -> Vec<Applied> {
        (1..=n)
            .map(|i| Applied {
                version: i.to_string(),
                path: format!("{i}_x.sql"),
                seconds: 0.0,
                retries: 0,
                rows: 0,
            })
            .collect()
    }

    #[test]
    fn hundreds_of_applied_versions_are_summarised_on_one_short_line() {
        assert_eq!(
            applied_note(&applied(0)),
            "no migration was applied before it in this run"
        );
        assert_eq!(
            applied_note(&applied(5)),
            "applied and recorded before it in this run: 1, 2, 3, 4, 5"
        );
        let many = applied_note(&applied(300));
        assert_eq!(
            many,
            "applied and recorded before it in this run: 300 migrations, 1 to 300 (`snapguard migrate status` lists them)"
        );
    }
}
