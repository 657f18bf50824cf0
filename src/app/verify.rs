//! `snapguard verify`: the before and after checks (and the built-in ones)
//! against the database as it is, as a table or JSON.

use crate::checks::{CheckResult, Phase, Verifier};
use crate::config::Config;
use crate::db;
use crate::error::Error;

use super::print_json;

/// Runs every check; fails (exit 1) when one does not pass.
pub async fn run(config: &Config, json: bool) -> Result<(), Error> {
    let info = config.database_url()?;
    let mut client = db::connect(info)
        .await
        .map_err(|e| Error::nothing_changed("verify", e))?;
    let verifier = Verifier::new(&config.checks);
    verifier
        .preflight(&client)
        .await
        .map_err(|e| Error::nothing_changed("verify", e))?;
    // Back to back, the compare checks' two queries see the same database,
    // and every NOT VALID constraint is reported (there is no "before").
    let mut state = verifier.before(&mut client, false).await;
    let mut results = std::mem::take(&mut state.results);
    results.extend(verifier.after(&mut client, state).await);
    if json {
        print_json(&results);
    } else {
        print_table(&results);
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    if failed == 0 {
        return Ok(());
    }
    let names: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.name.as_str())
        .collect();
    Err(Error::failed(
        "verify",
        format!(
            "{failed} of {} checks failed: {}",
            results.len(),
            names.join(", ")
        ),
    ))
}

fn print_table(results: &[CheckResult]) {
    crate::outln!(
        "{:<32} {:<8} {:<6} {:<34} {:<34} {:>8}",
        "CHECK",
        "PHASE",
        "RESULT",
        "EXPECTED",
        "GOT",
        "SECONDS"
    );
    for r in results {
        let phase = match r.phase {
            Phase::Before => "before",
            Phase::After => "after",
            Phase::Compare => "compare",
            Phase::Builtin => "built-in",
        };
        crate::outln!(
            "{:<32} {:<8} {:<6} {:<34} {:<34} {:>8.2}",
            r.name,
            phase,
            if r.passed { "ok" } else { "FAIL" },
            r.expected,
            r.got,
            r.seconds
        );
        if !r.passed {
            crate::outln!("    defined at {}", r.defined_at);
            for row in &r.rows {
                crate::outln!("    {row}");
            }
        }
    }
}
