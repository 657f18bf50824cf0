//! The lint's static findings held against what the rehearsal measured:
//! each one confirmed (the lock or rewrite was seen) or not seen, and
//! what was seen that no rule predicted added as `measured_lock`.

use crate::lint::{Finding, Level, LintReport, Settings, rules, shown_path};

use super::locks::{Hold, Mode};
use super::report::MigrationMeasure;

/// Rules whose hazard is a rewrite of the table.
const REWRITES: &[&str] = &[
    "column_type_rewrite",
    "add_column_volatile_default",
    "vacuum_full",
    "cluster",
];

/// `lint` with each finding's `measured` filled in from `measures`, and
/// the measured-only findings appended.
pub fn confirm(
    mut lint: LintReport,
    measures: &[MigrationMeasure],
    settings: &Settings,
) -> LintReport {
    for f in &mut lint.findings {
        let Some(m) = measure_of(measures, &f.file) else {
            continue;
        };
        let Some(table) = f.table.clone() else {
            continue;
        };
        let rewrote = m.rewrote.iter().any(|t| same_table(t, &table));
        let hold = strongest_hold(&m.locks, &table);
        f.measured = Some(match (rewrote, hold) {
            (true, Some(h)) => format!(
                "confirmed: rewrote {table}, {} held {:.2}s",
                h.mode.as_sql(),
                h.seconds
            ),
            (true, None) => format!("confirmed: rewrote {table}"),
            (false, Some(h)) if !REWRITES.contains(&f.rule) && h.mode >= Mode::Share => {
                format!(
                    "confirmed: {} on {table} held {:.2}s",
                    h.mode.as_sql(),
                    h.seconds
                )
            }
            (false, Some(h)) => format!(
                "not seen: only {} on {table} ({:.2}s) and no rewrite",
                h.mode.as_sql(),
                h.seconds
            ),
            (false, None) => {
                format!("not seen: no lock on {table} lasted a sample (about 50 ms) and no rewrite")
            }
        });
    }
    let rule = rules::rule("measured_lock").expect("a catalogued rule");
    let level = settings.level(rule);
    if level == Level::Off {
        return lint;
    }
    for m in measures {
        let file = shown_path(std::path::Path::new(&m.path));
        let predicted = |table: &str| {
            lint.findings
                .iter()
                .any(|f| f.file == file && f.table.as_deref().is_some_and(|t| same_table(table, t)))
        };
        let mut seen: Vec<(String, String)> = Vec::new();
        for h in &m.locks {
            if h.mode == Mode::AccessExclusive
                && h.seconds > settings.max_lock_hold.as_secs_f64()
                && !predicted(&h.table)
            {
                seen.push((
                    h.table.clone(),
                    format!(
                        "ACCESS EXCLUSIVE on {} held {:.2}s (over lint.max_lock_hold, {:.2}s)",
                        h.table,
                        h.seconds,
                        settings.max_lock_hold.as_secs_f64()
                    ),
                ));
            }
        }
        for t in &m.rewrote {
            if predicted(t) {
                continue;
            }
            // One finding per table: a rewrite that also held its lock too
            // long says both, whichever the sampler's timing showed first.
            match seen.iter_mut().find(|(s, _)| s == t) {
                Some((_, message)) => *message = format!("rewrote {t}; {message}"),
                None => seen.push((t.clone(), format!("rewrote {t}"))),
            }
        }
        for (table, message) in seen {
            lint.findings.push(Finding {
                rule: rule.id,
                level,
                file: file.clone(),
                line: 1,
                statement: String::new(),
                message,
                table: Some(table),
                context: None,
                why: rule.why,
                safe: rule.safe,
                doc: rule.doc,
                allowed: None,
                measured: Some("measured by the rehearsal; no rule predicted it".into()),
            });
        }
    }
    lint
}

fn measure_of<'m>(measures: &'m [MigrationMeasure], file: &str) -> Option<&'m MigrationMeasure> {
    measures
        .iter()
        .find(|m| shown_path(std::path::Path::new(&m.path)) == file)
}

/// `public.orders` (as measured) is `orders` (as written).
fn same_table(measured: &str, written: &str) -> bool {
    measured == written
        || measured
            .rsplit_once('.')
            .is_some_and(|(_, name)| name == written)
}

fn strongest_hold<'h>(holds: &'h [Hold], table: &str) -> Option<&'h Hold> {
    holds
        .iter()
        .filter(|h| same_table(&h.table, table))
        .max_by(|a, b| a.mode.cmp(&b.mode).then(a.seconds.total_cmp(&b.seconds)))
}
