//! Splitting SQL text (a migration file, a check) into statements.
//!
//! A migration that runs outside a transaction (for `CREATE INDEX
//! CONCURRENTLY`, which refuses to run inside one) must be sent one
//! statement at a time: a multi-statement simple query is an implicit
//! transaction. So the file is split here, the way `psql` does it: a `;`
//! ends a statement unless it is inside a string literal (standard, `E''`
//! with backslash escapes), a quoted identifier, a dollar-quoted string
//! (`$$…$$`, `$tag$…$tag$`), a comment (`--`, nested `/* */`), or a
//! SQL-standard routine body (`BEGIN ATOMIC … END`).
//! <https://www.postgresql.org/docs/current/sql-syntax-lexical.html>

/// One statement of a file, with where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement's text from its first code (leading whitespace and
    /// comments removed) to before the terminating `;`.
    pub sql: String,
    /// The 1-based line of the file where the statement starts.
    pub line: usize,
    /// Byte offsets in the input: from the statement's first code to just
    /// past its `;` (or the end of the input).
    pub span: std::ops::Range<usize>,
}

impl Statement {
    /// The file line of a 1-based character position in [`sql`](Self::sql),
    /// as PostgreSQL reports it in an error (`position`).
    pub fn line_of(&self, position: usize) -> usize {
        self.line
            + self
                .sql
                .chars()
                .take(position.saturating_sub(1))
                .filter(|&c| c == '\n')
                .count()
    }
}

/// The file ends inside something that was opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unterminated {what} starting at line {line}")]
pub struct SplitError {
    /// What was left open, for example "string literal".
    pub what: String,
    /// Where it was opened.
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    /// `'…'`; `escapes` for `E'…'`, where a backslash escapes the next character.
    String { escapes: bool },
    /// `"…"`.
    Identifier,
}

/// Splits `sql` into statements. Statements holding only comments and
/// whitespace are dropped.
pub fn split(sql: &str) -> Result<Vec<Statement>, SplitError> {
    Splitter::new(sql).run()
}

struct Splitter<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
    line: usize,
    out: Vec<Statement>,
    /// Byte offset and line where the current statement's first code (not
    /// whitespace, not a comment) is.
    code_start: usize,
    code_line: usize,
    /// The first words of the current statement, lowercased, to recognise
    /// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
    words: Vec<String>,
    /// Nesting inside `BEGIN ATOMIC … END` (and `CASE … END` within it).
    atomic_depth: usize,
    /// The statement so far has more than comments and whitespace.
    has_code: bool,
}

impl<'a> Splitter<'a> {
    fn new(src: &'a str) -> Self {
        Splitter {
            src,
            chars: src.char_indices().collect(),
            i: 0,
            line: 1,
            out: Vec::new(),
            code_start: 0,
            code_line: 1,
            words: Vec::new(),
            atomic_depth: 0,
            has_code: false,
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).map(|&(_, c)| c)
    }

    fn offset(&self) -> usize {
        self.chars.get(self.i).map_or(self.src.len(), |&(o, _)| o)
    }

    /// Consumes one character, counting lines.
    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        if c == '\n' {
            self.line += 1;
        }
        self.i += 1;
        Some(c)
    }

    /// Notes that the character at the cursor is code, remembering where the
    /// statement's code starts.
    fn mark_code(&mut self) {
        if !self.has_code {
            self.has_code = true;
            self.code_start = self.offset();
            self.code_line = self.line;
        }
    }

    fn run(mut self) -> Result<Vec<Statement>, SplitError> {
        while let Some(c) = self.peek(0) {
            match c {
                '-' if self.peek(1) == Some('-') => self.line_comment(),
                '/' if self.peek(1) == Some('*') => self.block_comment()?,
                '\'' => self.quoted(Quote::String {
                    escapes: self.escape_prefix(),
                })?,
                '"' => self.quoted(Quote::Identifier)?,
                '$' if self.dollar_tag().is_some() => self.dollar_quoted()?,
                ';' if self.atomic_depth == 0 => {
                    let end = self.offset();
                    self.bump();
                    self.finish(end, self.offset());
                }
                c if is_ident_start(c) => self.word(),
                c => {
                    if !c.is_whitespace() {
                        self.mark_code();
                    }
                    self.bump();
                }
            }
        }
        self.finish(self.src.len(), self.src.len());
        Ok(self.out)
    }

    /// Closes the current statement at byte `end`.
    fn finish(&mut self, end: usize, past_terminator: usize) {
        if self.has_code {
            self.out.push(Statement {
                sql: self.src[self.code_start..end].trim_end().to_owned(),
                line: self.code_line,
                span: self.code_start..past_terminator,
            });
        }
        self.words.clear();
        self.atomic_depth = 0;
        self.has_code = false;
    }

    fn line_comment(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
    }

    /// `/* … */`, which nest in PostgreSQL (unlike the SQL standard).
    fn block_comment(&mut self) -> Result<(), SplitError> {
        let line = self.line;
        let mut depth = 0usize;
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some('/'), Some('*')) => {
                    depth += 1;
                    self.i += 2;
                }
                (Some('*'), Some('/')) => {
                    depth -= 1;
                    self.i += 2;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                (Some(_), _) => {
                    self.bump();
                }
                (None, _) => {
                    return Err(SplitError {
                        what: "block comment".into(),
                        line,
                    });
                }
            }
        }
    }

    /// Whether the `'` at the cursor opens an `E'…'` string: an `E` right
    /// before it that is not the end of a longer word.
    fn escape_prefix(&self) -> bool {
        let before = |n: usize| {
            self.i
                .checked_sub(n)
                .and_then(|j| self.chars.get(j))
                .map(|&(_, c)| c)
        };
        matches!(before(1), Some('e' | 'E')) && !before(2).is_some_and(is_ident_char)
    }

    fn quoted(&mut self, quote: Quote) -> Result<(), SplitError> {
        let line = self.line;
        let (close, what) = match quote {
            Quote::String { .. } => ('\'', "string literal"),
            Quote::Identifier => ('"', "quoted identifier"),
        };
        self.mark_code();
        self.bump();
        loop {
            match self.bump() {
                None => {
                    return Err(SplitError {
                        what: what.into(),
                        line,
                    });
                }
                Some('\\') if quote == (Quote::String { escapes: true }) => {
                    self.bump();
                }
                Some(c) if c == close => {
                    // A doubled quote is an escaped quote, not the end.
                    if self.peek(0) == Some(close) {
                        self.bump();
                    } else {
                        return Ok(());
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// The tag of a dollar quote starting at the cursor (`$$` → `""`,
    /// `$fn$` → `"fn"`), or `None` (`$1` is a parameter, `a$b` part of a
    /// name).
    fn dollar_tag(&self) -> Option<String> {
        if self.i > 0 && is_ident_char(self.chars[self.i - 1].1) {
            return None;
        }
        let mut tag = String::new();
        let mut j = 1;
        loop {
            let c = self.peek(j)?;
            if c == '$' {
                return Some(tag);
            }
            let ok = if tag.is_empty() {
                is_ident_start(c)
            } else {
                is_ident_char(c) && c != '$'
            };
            if !ok {
                return None;
            }
            tag.push(c);
            j += 1;
        }
    }

    fn dollar_quoted(&mut self) -> Result<(), SplitError> {
        let line = self.line;
        let tag = self.dollar_tag().expect("checked by the caller");
        let delimiter: Vec<char> = format!("${tag}$").chars().collect();
        self.mark_code();
        self.i += delimiter.len();
        loop {
            if self.peek(0).is_none() {
                return Err(SplitError {
                    what: format!(
                        "dollar-quoted string `{}`",
                        delimiter.iter().collect::<String>()
                    ),
                    line,
                });
            }
            if (0..delimiter.len()).all(|k| self.peek(k) == Some(delimiter[k])) {
                self.i += delimiter.len();
                return Ok(());
            }
            self.bump();
        }
    }

    /// A keyword or identifier: tracks `BEGIN ATOMIC` bodies of routines.
    fn word(&mut self) {
        self.mark_code();
        let mut word = String::new();
        while let Some(c) = self.peek(0).filter(|&c| is_ident_char(c)) {
            word.push(c.to_ascii_lowercase());
            self.bump();
        }
        let is_routine = {
            let w: Vec<&str> = self.words.iter().map(String::as_str).collect();
            matches!(
                w.as_slice(),
                ["create", "function" | "procedure", ..]
                    | ["create", "or", "replace", "function" | "procedure", ..]
            )
        };
        if is_routine {
            let previous = self.words.last().map(String::as_str);
            match word.as_str() {
                "atomic" if previous == Some("begin") => self.atomic_depth += 1,
                "case" if self.atomic_depth > 0 => self.atomic_depth += 1,
                "end" if self.atomic_depth > 0 => self.atomic_depth -= 1,
                _ => {}
            }
        }
        self.words.push(word);
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqls(src: &str) -> Vec<String> {
        split(src).unwrap().into_iter().map(|s| s.sql).collect()
    }

    #[test]
    fn plain_statements_split_on_semicolons() {
        assert_eq!(
            sqls("SELECT 1; SELECT 2;\n\nSELECT 3"),
            vec!["SELECT 1", "SELECT 2", "SELECT 3"]
        );
    }

    #[test]
    fn comments_and_empty_statements_are_dropped() {
        let stmts = split("-- only a comment;\n;;\n/* block; */\nSELECT 1; -- trailing; comment\n")
            .unwrap();
        assert_eq!(
            stmts,
            vec![Statement {
                sql: "SELECT 1".into(),
                line: 4,
                span: 35..44,
            }]
        );
    }

    #[test]
    fn string_literals_hide_semicolons() {
        assert_eq!(
            sqls("INSERT INTO t VALUES ('a;b', 'it''s; fine'); SELECT 2"),
            vec!["INSERT INTO t VALUES ('a;b', 'it''s; fine')", "SELECT 2"]
        );
    }

    #[test]
    fn escape_strings_honour_backslashes() {
        assert_eq!(
            sqls(r"SELECT E'a\';b'; SELECT 2"),
            vec![r"SELECT E'a\';b'", "SELECT 2"]
        );
        // Without the E prefix a backslash is an ordinary character.
        assert_eq!(
            sqls(r"SELECT 'a\'; SELECT 2"),
            vec![r"SELECT 'a\'", "SELECT 2"]
        );
        // `name'…'` is not an E-string just because the name ends in e.
        assert_eq!(
            sqls(r"SELECT some'x\'; SELECT 2"),
            vec![r"SELECT some'x\'", "SELECT 2"]
        );
    }

    #[test]
    fn quoted_identifiers_hide_semicolons() {
        assert_eq!(
            sqls(r#"CREATE TABLE "a;""b" (x int); SELECT 2"#),
            vec![r#"CREATE TABLE "a;""b" (x int)"#, "SELECT 2"]
        );
    }

    #[test]
    fn dollar_quotes_with_and_without_tags() {
        let f = "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $fn$\nBEGIN\n  PERFORM 1; RETURN $$x;$$::int;\nEND\n$fn$";
        assert_eq!(
            sqls(&format!("{f};\nSELECT $$a;b$$; SELECT $1")),
            vec![f, "SELECT $$a;b$$", "SELECT $1"]
        );
        // `$1` and `a$b` are not dollar quotes.
        assert_eq!(sqls("SELECT a$b; SELECT 2"), vec!["SELECT a$b", "SELECT 2"]);
    }

    #[test]
    fn block_comments_nest() {
        assert_eq!(
            sqls("/* outer /* inner; */ still; comment */ SELECT 1; SELECT 2"),
            vec!["SELECT 1", "SELECT 2"]
        );
    }

    #[test]
    fn begin_atomic_bodies_stay_whole() {
        let f = "CREATE OR REPLACE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN a ELSE 0 END + b;\n  SELECT 1;\nEND";
        assert_eq!(sqls(&format!("{f};\nSELECT 2;")), vec![f, "SELECT 2"]);
        // A transaction block is not a routine body.
        assert_eq!(
            sqls("BEGIN; SELECT 1; COMMIT;"),
            vec!["BEGIN", "SELECT 1", "COMMIT"]
        );
    }

    #[test]
    fn lines_are_tracked_for_error_positions() {
        let stmts = split("-- header\n\nSELECT 1;\n\nUPDATE t\n  SET x = 1\n  WHERE y;\n").unwrap();
        assert_eq!(stmts[0].line, 3);
        assert_eq!(stmts[1].line, 5);
        // Position 24 (1-based) is in `WHERE`, on the statement's third line.
        assert_eq!(stmts[1].line_of(24), 7);
    }

    #[test]
    fn unterminated_constructs_are_errors_naming_their_line() {
        assert_eq!(
            split("SELECT 1;\nSELECT 'oops;").unwrap_err(),
            SplitError {
                what: "string literal".into(),
                line: 2
            }
        );
        assert_eq!(split("\n\nSELECT $x$ body").unwrap_err().line, 3);
        assert_eq!(split("/* /* */").unwrap_err().what, "block comment");
        assert_eq!(split("SELECT \"ab").unwrap_err().what, "quoted identifier");
    }
}
