//! Per-migration options: the `-- snapguard:…` directive lines every
//! format accepts (timeouts, no transaction, batches).

use std::path::Path;
use std::time::Duration;

use super::SourceError;

/// Per-migration options from directives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// Run inside a transaction (the default).
    pub transaction: bool,
    /// `statement_timeout` for this migration.
    pub statement_timeout: Option<Duration>,
    /// `lock_timeout` for this migration.
    pub lock_timeout: Option<Duration>,
    /// A batched data migration: its one statement runs again and again,
    /// each time in its own transaction, until it changes no rows.
    pub batch: Option<Batch>,
    /// The file runs its own `BEGIN … COMMIT` blocks (golang-migrate sends a
    /// file as it is): it runs outside snapguard's transaction, and a
    /// failure is not retried, since it may fall inside one of its blocks.
    pub own_transactions: bool,
}

/// `-- snapguard:batch [pause]`: how a batched migration repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Batch {
    /// The pause between batches, which lets replicas and autovacuum keep up.
    pub pause: Duration,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            transaction: true,
            statement_timeout: None,
            lock_timeout: None,
            batch: None,
            own_transactions: false,
        }
    }
}

/// `-- snapguard:…` comment lines, in any format.
pub(super) fn apply_snapguard_directives(
    file: &Path,
    text: &str,
    d: &mut Directives,
) -> Result<(), SourceError> {
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("--").map(str::trim_start) else {
            continue;
        };
        let Some(directive) = rest.strip_prefix("snapguard:") else {
            continue;
        };
        let bad = |message: String| SourceError::BadDirective {
            path: file.to_path_buf(),
            line: i + 1,
            message,
        };
        let mut words = directive.split_whitespace();
        let duration = |value: Option<&str>, name: &str| -> Result<Duration, SourceError> {
            let v = value
                .ok_or_else(|| bad(format!("`snapguard:{name}` needs a duration, like `15m`")))?;
            crate::config::parse_duration(v).map_err(bad)
        };
        match words.next() {
            Some("no-transaction") => d.transaction = false,
            Some("statement-timeout") => {
                d.statement_timeout = Some(duration(words.next(), "statement-timeout")?)
            }
            Some("lock-timeout") => d.lock_timeout = Some(duration(words.next(), "lock-timeout")?),
            Some("batch") => {
                let pause = match words.next() {
                    Some(v) => crate::config::parse_duration(v).map_err(bad)?,
                    None => Duration::ZERO,
                };
                d.batch = Some(Batch { pause });
            }
            // Read by `snapguard lint`; checked here so that a bad one stops
            // every command that reads the folder, with its line.
            Some("allow") => {
                parse_allow(directive.trim_start().trim_start_matches("allow")).map_err(bad)?;
            }
            other => {
                return Err(bad(format!(
                    "unknown directive `snapguard:{}`; known: no-transaction, statement-timeout, lock-timeout, batch, allow",
                    other.unwrap_or("")
                )));
            }
        }
    }
    Ok(())
}

/// The words after `snapguard:allow`: a lint rule's id, then a reason.
pub fn parse_allow(rest: &str) -> Result<(String, String), String> {
    let rest = rest.trim();
    let (id, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !crate::config::lint_rule_ids().any(|known| known == id) {
        return Err(format!(
            "`snapguard:allow` names no rule `{id}`; rules: {}",
            crate::config::lint_rule_ids()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if reason.trim().is_empty() {
        return Err(format!(
            "`snapguard:allow {id}` needs a reason after the rule, shown in every report"
        ));
    }
    Ok((id.to_owned(), reason.trim().to_owned()))
}
