//! Compare checks: a query's result before the migrations against a
//! query's result after. The before side is streamed to a temporary file
//! (never held in memory); the after side is streamed and walked against it
//! in one pass. With `order: any` both sides are sorted by the server by
//! their row text, so the walk is a merge.

use std::cmp::Ordering;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::ops::ControlFlow;

use tokio_postgres::Client;

use super::query::{self, QueryFailure};
use crate::config::checks::{CompareCheck, Order};

/// How many differing rows of each side a report shows.
const SAMPLE: usize = 5;

/// The before side of a compare check, on disk.
pub struct Captured {
    rows: u64,
    file: std::fs::File,
}

/// What differed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Difference {
    /// Rows before.
    pub before_rows: u64,
    /// Rows after.
    pub after_rows: u64,
    /// With `order: any`: rows only before (first few) and how many.
    pub only_before: Vec<String>,
    /// Count of rows only before.
    pub only_before_count: u64,
    /// With `order: any`: rows only after (first few) and how many.
    pub only_after: Vec<String>,
    /// Count of rows only after.
    pub only_after_count: u64,
    /// With `order: exact`: the first differing positions, 1-based, with
    /// each side's row (`-` past the end of a side).
    pub positions: Vec<(u64, String, String)>,
}

/// The query for one side: each row as one text value (its composite text
/// form), sorted by that text in bytewise order for `order: any`.
fn side_sql(sql: &str, order: Order) -> String {
    match order {
        Order::Exact => format!("SELECT t::text FROM ({sql}) t"),
        Order::Any => format!("SELECT t::text FROM ({sql}) t ORDER BY t::text COLLATE \"C\""),
    }
}

/// Streams one side's rows (as text) to `each`, stopping at its first
/// I/O error (the temporary file), which is returned as the failure.
async fn each_row(
    client: &mut Client,
    sql: &str,
    check: &CompareCheck,
    mut each: impl FnMut(&str) -> std::io::Result<()>,
) -> Result<(), QueryFailure> {
    let mut io_error = None;
    query::for_each_batch(
        client,
        &side_sql(sql, check.order),
        check.timeout,
        |batch| {
            for row in batch {
                if let Err(e) = each(row.get(0).unwrap_or_default()) {
                    io_error = Some(e);
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        },
    )
    .await?;
    match io_error {
        Some(e) => Err(io_failure(e)),
        None => Ok(()),
    }
}

/// Runs the before side and stores its rows in a temporary file.
pub async fn capture(client: &mut Client, check: &CompareCheck) -> Result<Captured, QueryFailure> {
    let file = tempfile::tempfile().map_err(io_failure)?;
    let mut out = BufWriter::new(file);
    let mut rows = 0u64;
    each_row(client, &check.before, check, |text| {
        rows += 1;
        write_record(&mut out, text)
    })
    .await?;
    let mut file = out.into_inner().map_err(|e| io_failure(e.into_error()))?;
    file.rewind().map_err(io_failure)?;
    Ok(Captured { rows, file })
}

/// Runs the after side and walks it against `captured`; `None` when equal.
pub async fn compare(
    client: &mut Client,
    check: &CompareCheck,
    captured: Captured,
) -> Result<Option<Difference>, QueryFailure> {
    let mut before = Records {
        reader: BufReader::new(captured.file),
    };
    let mut diff = Difference {
        before_rows: captured.rows,
        ..Difference::default()
    };
    let mut pending: Option<String> = None;
    let mut position = 0u64;
    let order = check.order;
    each_row(client, &check.after, check, |after| {
        diff.after_rows += 1;
        position += 1;
        step(&mut before, &mut pending, after, order, position, &mut diff)
    })
    .await?;
    // What is left on the before side has no partner after.
    loop {
        let next = match pending.take() {
            Some(p) => Some(p),
            None => before.next().map_err(io_failure)?,
        };
        let Some(row) = next else { break };
        position += 1;
        match order {
            Order::Any => note(&mut diff.only_before, &mut diff.only_before_count, row),
            Order::Exact => {
                if diff.positions.len() < SAMPLE {
                    diff.positions.push((position, row, "-".into()));
                }
                diff.only_before_count += 1;
            }
        }
    }
    let equal =
        diff.only_before_count == 0 && diff.only_after_count == 0 && diff.positions.is_empty();
    Ok((!equal).then_some(diff))
}

/// One after row against the before side.
fn step(
    before: &mut Records,
    pending: &mut Option<String>,
    after: &str,
    order: Order,
    position: u64,
    diff: &mut Difference,
) -> std::io::Result<()> {
    match order {
        Order::Exact => match before.next()? {
            Some(b) if b == after => {}
            Some(b) => {
                if diff.positions.len() < SAMPLE {
                    diff.positions.push((position, b, after.to_owned()));
                }
                diff.only_before_count += 1;
                diff.only_after_count += 1;
            }
            None => {
                if diff.positions.len() < SAMPLE {
                    diff.positions
                        .push((position, "-".into(), after.to_owned()));
                }
                diff.only_after_count += 1;
            }
        },
        Order::Any => loop {
            let b = match pending.take() {
                Some(p) => Some(p),
                None => before.next()?,
            };
            match b {
                None => {
                    note(
                        &mut diff.only_after,
                        &mut diff.only_after_count,
                        after.to_owned(),
                    );
                    break;
                }
                // Both sides are sorted bytewise (COLLATE "C"), as `str` compares.
                Some(b) => match b.as_str().cmp(after) {
                    Ordering::Equal => break,
                    Ordering::Less => note(&mut diff.only_before, &mut diff.only_before_count, b),
                    Ordering::Greater => {
                        *pending = Some(b);
                        note(
                            &mut diff.only_after,
                            &mut diff.only_after_count,
                            after.to_owned(),
                        );
                        break;
                    }
                },
            }
        },
    }
    Ok(())
}

fn note(sample: &mut Vec<String>, count: &mut u64, row: String) {
    if sample.len() < SAMPLE {
        sample.push(row);
    }
    *count += 1;
}

/// Length-prefixed records, so any text (newlines included) round-trips.
fn write_record(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    out.write_all(&(text.len() as u64).to_le_bytes())?;
    out.write_all(text.as_bytes())
}

struct Records {
    reader: BufReader<std::fs::File>,
}

impl Records {
    fn next(&mut self) -> std::io::Result<Option<String>> {
        if self.reader.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let mut len = [0u8; 8];
        self.reader.read_exact(&mut len)?;
        let mut buf = vec![0u8; u64::from_le_bytes(len) as usize];
        self.reader.read_exact(&mut buf)?;
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }
}

fn io_failure(e: std::io::Error) -> QueryFailure {
    QueryFailure {
        message: format!("cannot use the temporary file for the compare check: {e}"),
        sqlstate: None,
    }
}
