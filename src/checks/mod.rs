//! Verification queries: the gate that decides whether a deploy stands.
//!
//! - `checks.before`: preflight assertions, before anything changes.
//! - `checks.after`: the gate after the migrations.
//! - `checks.compare`: a result before the migrations against one after.
//! - Built-in checks: no invalid indexes, no `NOT VALID` constraints left
//!   unvalidated by the migrations.
//!
//! Every query runs read-only with a timeout ([`query`]). A check whose
//! query fails counts as failed, with the server's message as its result.
//! [`Verifier::before`] and [`Verifier::after`] are the two halves a deploy
//! runs around its migrations; `snapguard verify` runs them back to back.

pub mod compare;
pub mod query;

use std::ops::ControlFlow;
use std::time::Instant;

use tokio_postgres::Client;

use self::compare::Captured;
use self::query::QueryFailure;
pub use crate::config::checks::{Check, ChecksConfig, CompareCheck, Expect, Order};

/// When a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Before anything changes.
    Before,
    /// After the migrations.
    After,
    /// Across the migrations.
    Compare,
    /// A built-in check, after the migrations.
    Builtin,
}

/// One check's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// When it ran.
    pub phase: Phase,
    /// Whether it passed.
    pub passed: bool,
    /// What was expected, in words.
    pub expected: String,
    /// What was found, in words.
    pub got: String,
    /// The first few offending rows, when there are any.
    pub rows: Vec<String>,
    /// What differed, for a failed compare check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference: Option<compare::Difference>,
    /// Seconds it took.
    pub seconds: f64,
    /// Where it is defined (`snapguard.yml:12:11`), or `built-in`.
    pub defined_at: String,
}

/// A check's SQL does not parse: found before anything changes.
#[derive(Debug, thiserror::Error)]
#[error("check `{name}` ({defined_at}): {failure}")]
pub struct BadCheck {
    /// The check.
    pub name: String,
    /// Where it is defined.
    pub defined_at: String,
    /// What the server said.
    pub failure: QueryFailure,
}

/// What the before half leaves for the after half.
pub struct BeforeState {
    /// The before checks' results.
    pub results: Vec<CheckResult>,
    captured: Vec<(usize, Result<Captured, QueryFailure>, f64)>,
    /// `NOT VALID` constraints before the migrations; `None` when unknown
    /// (then every unvalidated constraint is reported).
    unvalidated: Option<Vec<String>>,
}

/// Runs the configured checks.
pub struct Verifier<'a> {
    config: &'a ChecksConfig,
}

/// How many offending rows a result shows.
const SAMPLE: usize = 5;

impl<'a> Verifier<'a> {
    /// A verifier for `config`.
    pub fn new(config: &'a ChecksConfig) -> Self {
        Verifier { config }
    }

    /// Parses every check's SQL on the server without running it. Before
    /// checks and compare before-sides must parse fully; after checks may
    /// name objects the migrations have yet to create.
    pub async fn preflight(&self, client: &Client) -> Result<(), BadCheck> {
        let bad = |name: &str, origin: &crate::config::Origin| {
            let (name, defined_at) = (name.to_owned(), origin.to_string());
            move |failure| BadCheck {
                name,
                defined_at,
                failure,
            }
        };
        for c in &self.config.before {
            query::parse(client, &c.sql, false)
                .await
                .map_err(bad(&c.name, &c.origin))?;
        }
        for c in &self.config.after {
            query::parse(client, &c.sql, true)
                .await
                .map_err(bad(&c.name, &c.origin))?;
        }
        for c in &self.config.compare {
            query::parse(client, &c.before, false)
                .await
                .map_err(bad(&c.name, &c.origin))?;
            query::parse(client, &c.after, true)
                .await
                .map_err(bad(&c.name, &c.origin))?;
        }
        Ok(())
    }

    /// Runs the before checks, captures the compare checks' before sides
    /// and, when `track_constraints`, the unvalidated constraints.
    pub async fn before(&self, client: &mut Client, track_constraints: bool) -> BeforeState {
        let results = self.before_checks(client).await;
        let mut state = self.capture(client, track_constraints).await;
        state.results = results;
        state
    }

    /// Runs the before checks only.
    pub async fn before_checks(&self, client: &mut Client) -> Vec<CheckResult> {
        let mut results = Vec::new();
        for c in &self.config.before {
            results.push(run_check(client, c, Phase::Before).await);
        }
        results
    }

    /// Captures the compare checks' before sides and, when
    /// `track_constraints`, the unvalidated constraints; runs no check.
    /// `deploy` calls it once the application is in maintenance, so the
    /// captured data cannot change before the migrations.
    pub async fn capture(&self, client: &mut Client, track_constraints: bool) -> BeforeState {
        let mut captured = Vec::new();
        for (i, c) in self.config.compare.iter().enumerate() {
            let started = Instant::now();
            let side = compare::capture(client, c).await;
            captured.push((i, side, started.elapsed().as_secs_f64()));
        }
        let unvalidated =
            if track_constraints && self.config.builtin_enabled("no_unvalidated_constraints") {
                unvalidated_constraints(client).await.ok()
            } else {
                None
            };
        BeforeState {
            results: Vec::new(),
            captured,
            unvalidated,
        }
    }

    /// Runs the after checks, the compare checks' after sides and the
    /// built-in checks.
    pub async fn after(&self, client: &mut Client, state: BeforeState) -> Vec<CheckResult> {
        let mut results = Vec::new();
        for c in &self.config.after {
            results.push(run_check(client, c, Phase::After).await);
        }
        for (i, side, before_seconds) in state.captured {
            let c = &self.config.compare[i];
            let started = Instant::now();
            let outcome = match side {
                Ok(captured) => compare::compare(client, c, captured).await,
                Err(e) => Err(e),
            };
            let seconds = before_seconds + started.elapsed().as_secs_f64();
            results.push(compare_result(c, outcome, seconds));
        }
        if self.config.builtin_enabled("no_invalid_indexes") {
            results.push(invalid_indexes(client).await);
        }
        if self.config.builtin_enabled("no_unvalidated_constraints") {
            results.push(new_unvalidated(client, state.unvalidated.as_deref()).await);
        }
        results
    }
}

/// Runs one before or after check.
async fn run_check(client: &mut Client, c: &Check, phase: Phase) -> CheckResult {
    let started = Instant::now();
    let mut rows = 0u64;
    let mut sample = Vec::new();
    let mut single: Option<(usize, Option<String>)> = None;
    let expect = c.expect.clone();
    let outcome = query::for_each_batch(client, &c.sql, c.timeout, |batch| {
        for row in batch {
            rows += 1;
            if rows == 1 {
                single = Some((row.len(), row.get(0).map(str::to_owned)));
            }
            if sample.len() < SAMPLE {
                sample.push(query::render(row));
            }
        }
        // `value` and `true` need two rows at most to judge.
        if matches!(expect, Expect::Value(_) | Expect::True) && rows > 1 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .await;
    let (passed, got) = match outcome {
        Err(failure) => (false, format!("error: {failure}")),
        Ok(()) => judge(&c.expect, rows, single),
    };
    let failed_rows = !passed && matches!(c.expect, Expect::Empty | Expect::Rows(_));
    CheckResult {
        name: c.name.clone(),
        phase,
        passed,
        expected: c.expect.to_string(),
        got,
        rows: if failed_rows { sample } else { Vec::new() },
        difference: None,
        seconds: started.elapsed().as_secs_f64(),
        defined_at: c.origin.to_string(),
    }
}

/// Whether `rows` (and the first row's column count and first value) meet
/// `expect`, and what was found, in words.
fn judge(expect: &Expect, rows: u64, first: Option<(usize, Option<String>)>) -> (bool, String) {
    let count = |n: u64| match n {
        1 => "1 row".to_owned(),
        n => format!("{n} rows"),
    };
    match expect {
        Expect::Empty => (rows == 0, count(rows)),
        Expect::Rows(n) => (rows == *n, count(rows)),
        Expect::Value(_) | Expect::True => match (rows, first) {
            (1, Some((1, value))) => {
                let got = value.unwrap_or_else(|| "NULL".into());
                let passed = match expect {
                    Expect::True => got == "t" || got == "true",
                    Expect::Value(want) => same_value(want, &got),
                    _ => unreachable!("matched above"),
                };
                (passed, format!("value {got}"))
            }
            (1, Some((columns, _))) => (false, format!("1 row of {columns} columns")),
            // Reading stops at the first batch: more than one is all we know.
            (0, _) => (false, "0 rows (one row of one column expected)".to_owned()),
            _ => (
                false,
                "more than one row (one row of one column expected)".to_owned(),
            ),
        },
    }
}

/// Equal as text, or as numbers when both are numbers (`0` = `0.00`).
fn same_value(want: &str, got: &str) -> bool {
    if want == got {
        return true;
    }
    match (want.trim().parse::<f64>(), got.trim().parse::<f64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => matches!((want, got), ("true", "t") | ("false", "f")),
    }
}

fn compare_result(
    c: &CompareCheck,
    outcome: Result<Option<compare::Difference>, QueryFailure>,
    seconds: f64,
) -> CheckResult {
    let expected = match c.order {
        Order::Exact => "same rows in the same order",
        Order::Any => "same rows, any order",
    };
    let (passed, got, difference) = match outcome {
        Err(failure) => (false, format!("error: {failure}"), None),
        Ok(None) => (true, "same rows".to_owned(), None),
        Ok(Some(d)) => {
            let got = match c.order {
                Order::Any => format!(
                    "{} rows before, {} after: {} only before, {} only after",
                    d.before_rows, d.after_rows, d.only_before_count, d.only_after_count
                ),
                Order::Exact => format!(
                    "{} rows before, {} after; first difference at row {}",
                    d.before_rows,
                    d.after_rows,
                    d.positions.first().map_or(0, |p| p.0)
                ),
            };
            (false, got, Some(d))
        }
    };
    let rows = difference.as_ref().map_or_else(Vec::new, |d| {
        let mut rows: Vec<String> = d
            .only_before
            .iter()
            .map(|r| format!("before only: {r}"))
            .collect();
        rows.extend(d.only_after.iter().map(|r| format!("after only:  {r}")));
        rows.extend(
            d.positions
                .iter()
                .map(|(p, b, a)| format!("row {p}: before {b} | after {a}")),
        );
        rows
    });
    CheckResult {
        name: c.name.clone(),
        phase: Phase::Compare,
        passed,
        expected: expected.to_owned(),
        got,
        rows,
        difference,
        seconds,
        defined_at: c.origin.to_string(),
    }
}

/// A built-in check's result from a list of offending objects.
fn builtin_result(
    name: &str,
    expected: &str,
    started: Instant,
    found: Result<Vec<String>, QueryFailure>,
) -> CheckResult {
    let (passed, got, rows) = match found {
        Err(e) => (false, format!("error: {e}"), Vec::new()),
        Ok(list) if list.is_empty() => (true, "none".to_owned(), list),
        Ok(list) => (
            false,
            format!("{} found", list.len()),
            list.into_iter().take(SAMPLE).collect(),
        ),
    };
    CheckResult {
        name: name.to_owned(),
        phase: Phase::Builtin,
        passed,
        expected: expected.to_owned(),
        got,
        rows,
        difference: None,
        seconds: started.elapsed().as_secs_f64(),
        defined_at: "built-in".to_owned(),
    }
}

/// Runs a catalog query returning one text column, as a list.
async fn list(client: &mut Client, sql: &str) -> Result<Vec<String>, QueryFailure> {
    let mut out = Vec::new();
    query::for_each_batch(client, sql, std::time::Duration::from_secs(60), |batch| {
        out.extend(batch.iter().map(query::render));
        ControlFlow::Continue(())
    })
    .await?;
    Ok(out)
}

/// A failed `CREATE INDEX CONCURRENTLY` leaves an invalid index behind: it
/// slows every write and is used by no query.
async fn invalid_indexes(client: &mut Client) -> CheckResult {
    let started = Instant::now();
    let found = list(
        client,
        "SELECT format('%I.%I on %s', n.nspname, c.relname, i.indrelid::regclass) \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT i.indisvalid ORDER BY 1",
    )
    .await;
    builtin_result(
        "no_invalid_indexes",
        "no invalid indexes (drop and re-create one a failed CREATE INDEX CONCURRENTLY left)",
        started,
        found,
    )
}

async fn unvalidated_constraints(client: &mut Client) -> Result<Vec<String>, QueryFailure> {
    list(
        client,
        "SELECT format('%I on %s', conname, conrelid::regclass) FROM pg_constraint \
         WHERE NOT convalidated AND contype IN ('c', 'f') ORDER BY 1",
    )
    .await
}

/// `NOT VALID` constraints that were not there before: added by the
/// migrations and never validated, so existing rows were never checked.
async fn new_unvalidated(client: &mut Client, before: Option<&[String]>) -> CheckResult {
    let started = Instant::now();
    let found = unvalidated_constraints(client).await.map(|now| {
        now.into_iter()
            .filter(|c| !before.is_some_and(|b| b.contains(c)))
            .collect()
    });
    builtin_result(
        "no_unvalidated_constraints",
        if before.is_some() {
            "no NOT VALID constraint added without VALIDATE CONSTRAINT"
        } else {
            "no NOT VALID constraints"
        },
        started,
        found,
    )
}

/// One line per failed check: name, where it is defined, expected, got.
pub fn failures(results: &[CheckResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| {
            format!(
                "`{}` ({}): expected {}, got {}",
                r.name, r.defined_at, r.expected, r.got
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_as_text_or_numbers() {
        assert!(same_value("0", "0"));
        assert!(same_value("0", "0.00"));
        assert!(same_value("1e3", "1000"));
        assert!(!same_value("0", "1"));
        assert!(same_value("true", "t"));
        assert!(!same_value("abc", "abd"));
    }

    #[test]
    fn judging_single_values_needs_one_row_of_one_column() {
        let one = |v: &str| Some((1, Some(v.to_owned())));
        assert_eq!(judge(&Expect::True, 1, one("t")), (true, "value t".into()));
        assert_eq!(judge(&Expect::True, 1, one("f")), (false, "value f".into()));
        assert!(judge(&Expect::Value("3".into()), 1, one("3")).0);
        assert_eq!(
            judge(&Expect::Value("3".into()), 0, None),
            (false, "0 rows (one row of one column expected)".into())
        );
        assert_eq!(
            judge(&Expect::Value("3".into()), 1, Some((2, None))),
            (false, "1 row of 2 columns".into())
        );
        assert_eq!(judge(&Expect::Empty, 3, None), (false, "3 rows".into()));
        assert_eq!(judge(&Expect::Rows(3), 3, None), (true, "3 rows".into()));
    }
}
