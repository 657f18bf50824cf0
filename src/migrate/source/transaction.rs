//! Transaction rules: a file's own `BEGIN`/`COMMIT`, transaction control
//! snapguard refuses, and what a batched migration may contain.

use std::path::Path;

use super::SourceError;
use crate::sqlsplit as split;

/// A file that opens and commits its own transaction (common in
/// golang-migrate folders, which the tool itself never wraps) runs inside
/// snapguard's instead: the `BEGIN` and `COMMIT` are blanked out, keeping
/// every other character where it was so error positions still map to file
/// lines. Left in, the `COMMIT` would end snapguard's transaction early and
/// break `transaction: all`. Any other transaction control is refused.
pub(super) fn without_own_transaction(
    file: &Path,
    sql: String,
    statements: &[split::Statement],
    first_line: usize,
) -> Result<String, SourceError> {
    let control: Vec<(usize, &split::Statement, &str)> = statements
        .iter()
        .enumerate()
        .filter_map(|(i, s)| transaction_control(&s.sql).map(|kind| (i, s, kind)))
        .collect();
    let last = statements.len() - 1;
    match control.as_slice() {
        [] => Ok(sql),
        [(0, begin, "begin"), (end, commit, "commit")] if *end == last => {
            let mut bytes = sql.into_bytes();
            for span in [begin.span.clone(), commit.span.clone()] {
                for b in &mut bytes[span] {
                    if *b != b'\n' {
                        *b = b' ';
                    }
                }
            }
            Ok(String::from_utf8(bytes).expect("only ASCII keywords were blanked"))
        }
        [(_, s, kind), ..] => Err(SourceError::BadDirective {
            path: file.to_path_buf(),
            line: s.line + first_line - 1,
            message: format!(
                "`{kind}` here would interfere with the transaction snapguard runs the migration in; only a `BEGIN` first and a `COMMIT` last are accepted (and ignored), or mark the migration to run outside a transaction"
            ),
        }),
    }
}

/// Whether the file controls its own transactions beyond one `BEGIN` first
/// and one `COMMIT` last (which snapguard's transaction absorbs).
pub(super) fn has_inner_transaction_control(statements: &[split::Statement]) -> bool {
    let control: Vec<(usize, &str)> = statements
        .iter()
        .enumerate()
        .filter_map(|(i, s)| transaction_control(&s.sql).map(|kind| (i, kind)))
        .collect();
    match control.as_slice() {
        [] => false,
        [(0, "begin"), (end, "commit")] => *end != statements.len() - 1,
        _ => true,
    }
}

/// `begin`, `commit` or `rollback` for a statement that controls the
/// transaction (`BEGIN`, `START TRANSACTION`, `COMMIT`, `END`, `ROLLBACK`…).
pub(super) fn transaction_control(sql: &str) -> Option<&'static str> {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(2)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    match words.first().map(String::as_str)? {
        "BEGIN"
            if words.len() == 1
                || matches!(
                    words[1].as_str(),
                    "TRANSACTION" | "WORK" | "ISOLATION" | "READ"
                ) =>
        {
            Some("begin")
        }
        "START" if words.get(1).is_some_and(|w| w == "TRANSACTION") => Some("begin"),
        "COMMIT" | "END"
            if words.len() == 1 || matches!(words[1].as_str(), "TRANSACTION" | "WORK") =>
        {
            Some("commit")
        }
        "ROLLBACK" | "ABORT" | "SAVEPOINT" | "RELEASE" => Some("rollback or savepoint"),
        "PREPARE" if words.get(1).is_some_and(|w| w == "TRANSACTION") => {
            Some("prepare transaction")
        }
        _ => None,
    }
}

/// A batched migration is one data-changing statement: it is repeated until
/// it reports no rows, which only means "done" for `UPDATE`, `DELETE` or
/// `INSERT` (possibly behind a `WITH`).
pub(super) fn check_batch(
    file: &Path,
    statements: &[split::Statement],
    first_line: usize,
) -> Result<(), SourceError> {
    let bad = |line: usize, message: &str| SourceError::BadDirective {
        path: file.to_path_buf(),
        line: line + first_line - 1,
        message: message.to_owned(),
    };
    if let [_, second, ..] = statements {
        return Err(bad(
            second.line,
            "a `snapguard:batch` migration holds exactly one statement, repeated until it changes no rows; move this statement to a migration of its own",
        ));
    }
    let first_word = statements[0]
        .sql
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if !matches!(first_word.as_str(), "UPDATE" | "DELETE" | "INSERT" | "WITH") {
        return Err(bad(
            statements[0].line,
            "a `snapguard:batch` statement must be an UPDATE, DELETE or INSERT that changes a limited number of rows each time, until none are left",
        ));
    }
    Ok(())
}

/// The kind of statement when PostgreSQL refuses to run it in a transaction
/// block. <https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY>
pub(super) fn transaction_refused(sql: &str) -> Option<&'static str> {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(6)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["CREATE", "INDEX", "CONCURRENTLY", ..]
        | ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..] => Some("CREATE INDEX CONCURRENTLY"),
        ["DROP", "INDEX", "CONCURRENTLY", ..] => Some("DROP INDEX CONCURRENTLY"),
        ["REINDEX", rest @ ..]
            if rest.contains(&"CONCURRENTLY")
                || rest.iter().any(|r| r.starts_with("(CONCURRENTLY")) =>
        {
            Some("REINDEX CONCURRENTLY")
        }
        ["VACUUM", ..] => Some("VACUUM"),
        ["CREATE", "DATABASE", ..] => Some("CREATE DATABASE"),
        ["DROP", "DATABASE", ..] => Some("DROP DATABASE"),
        ["ALTER", "SYSTEM", ..] => Some("ALTER SYSTEM"),
        _ => None,
    }
}
