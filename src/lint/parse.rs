//! A migration's SQL through PostgreSQL's own parser (libpg_query, via the
//! `pg_query` crate): the statements, each with the file line it starts on.

use pg_query::NodeEnum;

/// One top-level statement.
#[derive(Debug)]
pub struct Statement {
    /// Its parse tree.
    pub node: NodeEnum,
    /// The 1-based line of the file where its first word is.
    pub line: usize,
    /// Its text, whitespace collapsed and cut short, for reports.
    pub excerpt: String,
}

/// The SQL does not parse; `line` is the file line the parser points at,
/// when it says.
#[derive(Debug)]
pub struct ParseFailure {
    /// What the parser said.
    pub message: String,
    /// Where, as a file line.
    pub line: usize,
}

/// The longest statement excerpt shown.
const EXCERPT_CHARS: usize = 100;

/// Parses `sql`, which starts at line `first_line` of its file.
pub fn statements(sql: &str, first_line: usize) -> Result<Vec<Statement>, ParseFailure> {
    let parsed = pg_query::parse(sql, 0).map_err(|e| ParseFailure {
        message: e.to_string(),
        line: first_line,
    })?;
    let mut out = Vec::new();
    for raw in parsed.protobuf.stmts {
        let Some(node) = raw.stmt.and_then(|n| n.node) else {
            continue;
        };
        let start = usize::try_from(raw.stmt_location)
            .unwrap_or(0)
            .min(sql.len());
        let end = if raw.stmt_len > 0 {
            (start + usize::try_from(raw.stmt_len).unwrap_or(0)).min(sql.len())
        } else {
            sql.len()
        };
        let text = sql.get(start..end).unwrap_or("");
        let skipped = leading_noise(text);
        let line = first_line + sql[..start + skipped].matches('\n').count();
        out.push(Statement {
            node,
            line,
            excerpt: excerpt(&text[skipped..]),
        });
    }
    Ok(out)
}

/// Bytes of whitespace and comments before a statement's first word: the
/// parser's location starts right after the previous statement.
fn leading_noise(text: &str) -> usize {
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = trimmed.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return text.len() - trimmed.len();
        }
    }
}

fn excerpt(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= EXCERPT_CHARS {
        collapsed
    } else {
        let cut: String = collapsed.chars().take(EXCERPT_CHARS - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_point_at_each_statement_first_word() {
        let sql = "-- a comment\nCREATE TABLE a (id int);\n\n/* block\n comment */\n  CREATE INDEX i ON a (id);\nSELECT 1";
        let s = statements(sql, 3).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].line, 4);
        assert_eq!(s[1].line, 8);
        assert_eq!(s[1].excerpt, "CREATE INDEX i ON a (id)");
        assert_eq!(s[2].line, 9);
        assert!(matches!(s[1].node, NodeEnum::IndexStmt(_)));
    }

    #[test]
    fn what_postgres_accepts_parses() {
        let sql = "DO $$ BEGIN RAISE NOTICE 'x;y'; END $$;\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS $f$ SELECT 1; $f$;\nCOMMENT ON TABLE a IS 'it''s';";
        assert_eq!(statements(sql, 1).unwrap().len(), 3);
        let bad = statements("CREATE TABEL a ();", 5).unwrap_err();
        assert!(bad.message.contains("syntax error"), "{}", bad.message);
    }
}
