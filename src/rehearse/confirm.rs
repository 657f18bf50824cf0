//! The lint's static findings held against what the rehearsal measured:
//! each one confirmed (the lock or rewrite was seen) or not seen, and
//! what was seen that no rule predicted added as `measured_lock`. A
//! finding about a lock or a rewrite whose size matters that the
//! rehearsal did not see is refuted on this data: `info`, so it does not
//! fail the rehearsal (the deploy's preflight still judges it against the
//! database it deploys to).

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
        refute_if_unseen(f);
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

/// Lowers a finding the rehearsal did not see to `info`, when its rule is
/// about a lock or rewrite that grows with the table (a rule about what
/// fails or what the running release uses is not refuted by a lock that
/// was not seen).
fn refute_if_unseen(f: &mut Finding) {
    let unseen = f
        .measured
        .as_deref()
        .is_some_and(|m| m.starts_with("not seen"));
    let sized = rules::rule(f.rule).is_some_and(|r| r.sized);
    if unseen && sized && f.level > Level::Info {
        f.level = Level::Info;
        if let Some(m) = f.measured.as_mut() {
            m.push_str("; refuted on this data, so info here (the deploy's preflight still judges it against its database)");
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: &'static str) -> Finding {
        let r = rules::rule(rule).unwrap();
        Finding {
            rule: r.id,
            level: Level::Error,
            file: "migrations/1_a.sql".into(),
            line: 1,
            statement: String::new(),
            message: String::new(),
            table: Some("orders".into()),
            context: None,
            why: r.why,
            safe: r.safe,
            doc: r.doc,
            allowed: None,
            measured: None,
        }
    }

    fn measured(locks: Vec<Hold>) -> Vec<MigrationMeasure> {
        vec![MigrationMeasure {
            version: "1".into(),
            path: "migrations/1_a.sql".into(),
            seconds: 0.1,
            rows: 0,
            wal_bytes: None,
            rewrote: Vec::new(),
            locks,
        }]
    }

    fn judged(rule: &'static str, locks: Vec<Hold>) -> Finding {
        let lint = LintReport {
            findings: vec![finding(rule)],
            ..LintReport::default()
        };
        confirm(lint, &measured(locks), &Settings::default())
            .findings
            .remove(0)
    }

    #[test]
    fn a_lock_hazard_the_rehearsal_did_not_see_is_refuted_and_does_not_fail_it() {
        let unseen = judged("index_not_concurrent", Vec::new());
        assert_eq!(unseen.level, Level::Info);
        assert!(unseen.measured.unwrap().contains("refuted on this data"));

        let seen = judged(
            "index_not_concurrent",
            vec![Hold {
                table: "public.orders".into(),
                mode: Mode::Share,
                seconds: 0.4,
            }],
        );
        assert_eq!(seen.level, Level::Error);
        assert!(seen.measured.unwrap().starts_with("confirmed: SHARE"));

        // What fails, or what the running release uses, is not a lock.
        for rule in [
            "add_column_not_null",
            "drop_table",
            "concurrently_in_transaction",
        ] {
            assert_eq!(judged(rule, Vec::new()).level, Level::Error, "{rule}");
        }
    }
}
