//! A lint report as people and tools read it: text for a terminal or a
//! CI log, JSON, SARIF 2.1.0 for code scanning, and GitHub workflow
//! annotations.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Finding, Level, LintReport, RULES};

/// The text form: one block per finding, then a count.
pub fn text(report: &LintReport) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let _ = writeln!(
            out,
            "{}:{}: {} {}: {}",
            f.file,
            f.line,
            f.level.as_str(),
            f.rule,
            f.message
        );
        if !f.statement.is_empty() {
            let _ = writeln!(out, "  statement: {}", f.statement);
        }
        if let (Some(table), Some(context)) = (&f.table, &f.context) {
            let _ = writeln!(out, "  table:     {table}: {context}");
        } else if let Some(context) = &f.context {
            let _ = writeln!(out, "  context:   {context}");
        }
        if let Some(measured) = &f.measured {
            let _ = writeln!(out, "  measured:  {measured}");
        }
        if let Some(reason) = &f.allowed {
            let _ = writeln!(out, "  allowed:   {reason}");
        }
        if f.level > Level::Info && f.allowed.is_none() {
            let _ = writeln!(out, "  why:       {}", f.why);
            let _ = writeln!(out, "  instead:   {}", f.safe);
            let _ = writeln!(out, "  see:       {}", f.doc);
        }
    }
    let _ = writeln!(out, "{}", summary(report));
    out
}

/// `3 findings (1 error, 1 warning, 1 info, 0 allowed) in 4 migrations (12 statements)`.
pub fn summary(report: &LintReport) -> String {
    let count = |level: Level| {
        report
            .findings
            .iter()
            .filter(|f| f.level == level && f.allowed.is_none())
            .count()
    };
    let allowed = report
        .findings
        .iter()
        .filter(|f| f.allowed.is_some())
        .count();
    format!(
        "lint: {} finding(s) ({} error, {} warning, {} info, {allowed} allowed) in {} migration(s), {} statement(s){}",
        report.findings.len(),
        count(Level::Error),
        count(Level::Warn),
        count(Level::Info),
        report.files,
        report.statements,
        if report.judged {
            ", judged against the database"
        } else {
            ", without a database (sizes unknown)"
        }
    )
}

/// One GitHub annotation per finding above `info`: on stdout for
/// `--format github`, on stderr beside the other output under GitHub
/// Actions.
pub fn github(report: &LintReport) -> String {
    let mut out = String::new();
    for f in report.findings.iter().filter(|f| f.level > Level::Info) {
        let _ = writeln!(
            out,
            "{}",
            crate::ci::annotation(
                annotation_kind(f),
                Some((&f.file, f.line)),
                Some(&format!("snapguard lint: {}", f.rule)),
                &annotation_text(f),
            )
        );
    }
    out
}

/// The annotation kind a finding shows as.
pub fn annotation_kind(f: &Finding) -> &'static str {
    match (f.level, &f.allowed) {
        (_, Some(_)) => "notice",
        (Level::Error, None) => "error",
        (Level::Warn, None) => "warning",
        _ => "notice",
    }
}

/// A finding's message for an annotation: what, where, why, the way out.
pub fn annotation_text(f: &Finding) -> String {
    let mut text = format!("{}{}", f.message, f.table_context());
    if let Some(reason) = &f.allowed {
        let _ = write!(text, "; allowed: {reason}");
    } else {
        let _ = write!(text, ". {}. Instead: {}. {}", f.why, f.safe, f.doc);
    }
    text
}

/// A relative path as a URI reference (SARIF's `artifactLocation.uri`):
/// every byte but the unreserved ones and `/` percent-encoded, so a file
/// named `1 add #tags.sql` or `café.sql` is one GitHub can find.
fn uri_reference(path: &str) -> String {
    let mut uri = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            uri.push(b as char);
        } else {
            let _ = write!(uri, "%{b:02X}");
        }
    }
    uri
}

/// SARIF 2.1.0, as GitHub code scanning reads it.
pub fn sarif(report: &LintReport) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "shortDescription": { "text": r.why },
                "fullDescription": { "text": format!("{} Instead: {}.", r.why, r.safe) },
                "help": { "text": format!("Instead: {}. {}", r.safe, r.doc) },
                "helpUri": r.doc,
                "defaultConfiguration": { "level": sarif_level(r.level) },
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut message = format!("{}{}", f.message, f.table_context());
            if let Some(measured) = &f.measured {
                let _ = write!(message, "; measured: {measured}");
            }
            let mut result = json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|r| r.id == f.rule),
                "level": sarif_level(f.level),
                "message": { "text": message },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri_reference(&f.file) },
                        "region": { "startLine": f.line },
                    }
                }],
            });
            if let Some(reason) = &f.allowed {
                result["suppressions"] = json!([{ "kind": "inSource", "justification": reason }]);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "snapguard",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

fn sarif_level(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info | Level::Off => "note",
    }
}

/// Markdown for the GitHub job summary: a table of the findings.
pub fn markdown(report: &LintReport) -> String {
    let mut out = String::from("### snapguard lint\n\n");
    if report.findings.is_empty() {
        let _ = writeln!(out, "{}\n", summary(report));
        return out;
    }
    out.push_str("| level | rule | where | what | table |\n|---|---|---|---|---|\n");
    for f in &report.findings {
        let level = if f.allowed.is_some() {
            "allowed"
        } else {
            f.level.as_str()
        };
        let table = match (&f.table, &f.context) {
            (Some(t), Some(c)) => format!("{t}: {c}"),
            (Some(t), None) => t.clone(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "| {level} | [`{}`]({}) | `{}:{}` | {} | {} |",
            f.rule,
            f.doc,
            f.file,
            f.line,
            crate::ci::table_cell(&f.message),
            crate::ci::table_cell(&table)
        );
    }
    let _ = writeln!(out, "\n{}\n", summary(report));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn sarif_paths_are_uri_references() {
        assert_eq!(
            super::uri_reference("migrations/1 add #tags?.sql"),
            "migrations/1%20add%20%23tags%3F.sql"
        );
        assert_eq!(
            super::uri_reference("db/café_100%.sql"),
            "db/caf%C3%A9_100%25.sql"
        );
        assert_eq!(super::uri_reference("a/b-c_d.e~f.sql"), "a/b-c_d.e~f.sql");
    }
}
