//! `snapguard lint`: lock and rewrite hazards in migrations, found in
//! PostgreSQL's own parse tree and judged against the database when one
//! is at hand (a hazard on an empty or new table is not one), then
//! confirmed or refuted by what a rehearsal measured.
//!
//! - [`rules`]: the catalogue (id, why, safe way, manual page, level).
//! - [`parse`]: SQL → statements with their lines (libpg_query).
//! - [`check`]: the rules as code over the parse trees.
//! - [`facts`]: table sizes, row estimates, column types from the database.
//! - [`output`]: text, JSON, SARIF and GitHub annotations.

pub mod builtins;
pub mod check;
pub mod facts;
pub mod output;
pub mod parse;
pub mod renames;
pub mod rules;

use std::collections::HashMap;

use serde::Serialize;

use crate::progress::format_bytes;
pub use check::Mode;
pub use facts::{Facts, TableName, Wanted};
pub use rules::{Level, RULES, Rule};

/// How findings are judged: `lint:` in `snapguard.yml`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Levels set per rule; the rest keep their own.
    pub levels: HashMap<String, Level>,
    /// Tables smaller than this are harmless to lock or rewrite: findings
    /// on them are `info`.
    pub small_table: u64,
    /// `rehearse`: an `ACCESS EXCLUSIVE` held longer than this, that no rule
    /// predicted, is a `measured_lock` finding.
    pub max_lock_hold: std::time::Duration,
    /// The server's major when no database is consulted
    /// (`lint.server_version`).
    pub server_version: Option<u32>,
    /// The session time zone when no database is consulted
    /// (`lint.time_zone`).
    pub time_zone: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            levels: HashMap::new(),
            small_table: 10 * 1024 * 1024,
            max_lock_hold: std::time::Duration::from_secs(1),
            server_version: None,
            time_zone: None,
        }
    }
}

impl Settings {
    /// The settings `lint:` of `snapguard.yml` makes.
    pub fn of(config: &crate::config::LintConfig) -> Settings {
        let mut settings = Settings::default();
        for (rule, level) in &config.levels {
            if let Some(level) = Level::parse(level) {
                settings.levels.insert(rule.clone(), level);
            }
        }
        if let Some(bytes) = config.small_table {
            settings.small_table = bytes;
        }
        if let Some(hold) = config.max_lock_hold {
            settings.max_lock_hold = hold;
        }
        settings.server_version = config.server_version;
        settings.time_zone = config.time_zone.clone();
        settings
    }

    /// The level `rule` is reported at before sizes are considered.
    pub fn level(&self, rule: &Rule) -> Level {
        self.levels.get(rule.id).copied().unwrap_or(rule.level)
    }
}

/// `-- snapguard:allow RULE reason`: silences that rule's finding on the
/// next statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allow {
    /// The comment's line in the file.
    pub line: usize,
    /// The rule.
    pub rule: String,
    /// Why it is fine here; shown in every report.
    pub reason: String,
}

/// One migration to lint.
#[derive(Debug, Clone)]
pub struct Input {
    /// The file, as reports name it.
    pub file: String,
    /// Its SQL (the part that applies: "up").
    pub sql: String,
    /// The file line where `sql` starts.
    pub first_line: usize,
    /// How it runs.
    pub mode: Mode,
    /// Its allow comments.
    pub allows: Vec<Allow>,
}

impl Input {
    /// A migration of a folder, as `migrate` would run it: in snapguard's
    /// transaction unless marked otherwise or running its own blocks (or
    /// every migration in one, with `transaction: all`).
    pub fn of(
        p: &crate::migrate::migrator::PendingMigration,
        transaction_all: bool,
    ) -> Result<Input, LintError> {
        Input::new(
            shown_path(std::path::Path::new(&p.path)),
            p.sql.clone(),
            p.first_line,
            Mode {
                wrapped: transaction_all || (p.transaction && !p.own_transactions),
                batched: p.batched,
                shared: transaction_all,
            },
        )
    }

    /// A migration to lint; its allow comments are read from `sql`.
    pub fn new(
        file: String,
        sql: String,
        first_line: usize,
        mode: Mode,
    ) -> Result<Input, LintError> {
        let allows = allows_in(&sql, first_line).map_err(|(line, message)| LintError::Allow {
            file: file.clone(),
            line,
            message,
        })?;
        Ok(Input {
            file,
            sql,
            first_line,
            mode,
            allows,
        })
    }
}

/// A path as findings name it: relative to the working directory when it
/// is under it, so that annotations and SARIF land on the repository's
/// file.
pub fn shown_path(path: &std::path::Path) -> String {
    let relative = std::env::current_dir().ok().and_then(|cwd| {
        path.strip_prefix(&cwd)
            .ok()
            .map(std::path::Path::to_path_buf)
    });
    relative
        .as_deref()
        .unwrap_or(path)
        .display()
        .to_string()
        .trim_start_matches("./")
        .to_owned()
}

/// Linting could not run.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    /// A malformed allow comment.
    #[error("`{file}:{line}`: {message}")]
    Allow {
        /// The file.
        file: String,
        /// The comment's line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The database could not be asked.
    #[error("reading table facts for lint")]
    Database(#[from] crate::db::DbError),
}

/// Lints `inputs`, judged against the database `db` when given.
pub async fn run(
    inputs: Vec<Input>,
    settings: &Settings,
    db: Option<&tokio_postgres::Client>,
) -> Result<LintReport, LintError> {
    let parsed = Inputs(inputs);
    let facts = match db {
        Some(client) => Some(Facts::read(client, &parsed.wanted()).await?),
        None => None,
    };
    Ok(parsed.judge(settings, facts.as_ref()))
}

/// One hazard found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The rule's id.
    pub rule: &'static str,
    /// How much it matters here.
    pub level: Level,
    /// The migration file.
    pub file: String,
    /// The statement's line.
    pub line: usize,
    /// The statement, cut short.
    pub statement: String,
    /// What matched.
    pub message: String,
    /// The table, when the finding is about one.
    pub table: Option<String>,
    /// What the database says of the table (size, rows), or why the level
    /// was lowered.
    pub context: Option<String>,
    /// Why it hurts.
    pub why: &'static str,
    /// The safe way.
    pub safe: &'static str,
    /// The manual's page.
    pub doc: &'static str,
    /// The allow comment's reason, when one silenced it.
    pub allowed: Option<String>,
    /// What a rehearsal measured for it: confirmed or not seen.
    pub measured: Option<String>,
}

impl Finding {
    /// ` (orders: 1.2 GiB, ~4000000 rows)`: the table and what the
    /// database says of it, for one-line forms; empty without both.
    pub fn table_context(&self) -> String {
        match (&self.table, &self.context) {
            (Some(table), Some(context)) => format!(" ({table}: {context})"),
            _ => String::new(),
        }
    }

    /// Counts towards a failing exit: an error no allow comment silenced.
    pub fn fails(&self) -> bool {
        self.level >= Level::Error && self.allowed.is_none()
    }
}

/// The findings of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LintReport {
    /// Migrations linted.
    pub files: usize,
    /// Statements parsed.
    pub statements: usize,
    /// Whether a database judged the findings.
    pub judged: bool,
    /// The findings, in file order.
    pub findings: Vec<Finding>,
}

impl LintReport {
    /// Findings that fail.
    pub fn failing(&self) -> usize {
        self.findings.iter().filter(|f| f.fails()).count()
    }
}

/// The migrations to judge. Each is parsed when it is read and its tree
/// dropped after: the trees of a long history together are many times
/// its text (73 MiB for lemmy's 600 KB), so asking the database what it
/// must know parses them once more rather than keeping them.
struct Inputs(Vec<Input>);

impl Inputs {
    /// What the database must be asked to judge these migrations.
    fn wanted(&self) -> Wanted {
        let mut wanted = Wanted::default();
        let mut renames = renames::Renames::default();
        for input in &self.0 {
            if let Ok(statements) = parse::statements(&input.sql, input.first_line) {
                check::Checker::wanted(&statements, &mut wanted, &mut renames);
            }
        }
        wanted
    }

    /// The findings, judged against `facts` when given.
    fn judge(&self, settings: &Settings, facts: Option<&Facts>) -> LintReport {
        let mut checker = check::Checker::new(facts, settings);
        let mut report = LintReport {
            files: self.0.len(),
            judged: facts.is_some(),
            ..LintReport::default()
        };
        for input in &self.0 {
            let parsed = parse::statements(&input.sql, input.first_line);
            let hits = match &parsed {
                Ok(statements) => {
                    report.statements += statements.len();
                    checker.check(statements, input.mode)
                }
                Err(failure) => {
                    checker.skip_input();
                    vec![check::Hit {
                        rule: "parse_error",
                        line: failure.line,
                        excerpt: String::new(),
                        table: None,
                        message: failure.message.clone(),
                        new_table: false,
                        created_earlier: false,
                        known_as: None,
                    }]
                }
            };
            let starts: Vec<usize> = match &parsed {
                Ok(statements) => statements.iter().map(|s| s.line).collect(),
                Err(_) => Vec::new(),
            };
            let mut allows: Vec<Option<&Allow>> = input.allows.iter().map(Some).collect();
            for hit in hits {
                if let Some(f) = finding(settings, facts, input, hit, &starts, &mut allows) {
                    report.findings.push(f);
                }
            }
        }
        report
    }
}

/// A hit as a finding: its level from the settings, lowered to `info` on a
/// new or small table; silenced by the first unused allow comment for its
/// rule that precedes its statement and follows the statement before.
fn finding(
    settings: &Settings,
    facts: Option<&Facts>,
    input: &Input,
    hit: check::Hit,
    starts: &[usize],
    allows: &mut [Option<&Allow>],
) -> Option<Finding> {
    let rule = rules::rule(hit.rule).expect("checks only name catalogued rules");
    let mut level = settings.level(rule);
    if level == Level::Off {
        return None;
    }
    let fails_anyway = matches!(
        rule.id,
        "concurrently_in_transaction" | "enum_add_value_in_transaction" | "parse_error"
    );
    let mut context = None;
    if hit.new_table && !fails_anyway {
        level = Level::Info;
        context = Some("created earlier in this deploy: empty, and no release uses it yet".into());
    } else if hit.created_earlier {
        context = Some(
            "created by an earlier migration of these files, which may be applied and filled by now: size unknown (configure a database to judge it)"
                .into(),
        );
    } else if let (Some(table), Some(facts)) = (hit.known_as.as_ref().or(hit.table.as_ref()), facts)
    {
        match facts.table(table) {
            Some(t) => {
                let rows = t
                    .rows
                    .map(|r| format!(", ~{r} rows"))
                    .unwrap_or_else(|| ", never analyzed".into());
                let renamed = hit
                    .known_as
                    .as_ref()
                    .map(|a| format!("`{a}` before a rename earlier in this deploy, "))
                    .unwrap_or_default();
                let size = format!(
                    "{renamed}{}{}{rows}",
                    if t.partitioned { "partitioned, " } else { "" },
                    format_bytes(t.bytes)
                );
                if rule.sized && !t.partitioned && t.bytes < settings.small_table {
                    level = Level::Info;
                    context = Some(format!(
                        "{size}: under lint.small_table ({}), harmless at this size",
                        format_bytes(settings.small_table)
                    ));
                } else {
                    context = Some(size);
                }
            }
            None => {
                context = Some("not in the database (yet)".into());
            }
        }
    }
    let previous = starts
        .iter()
        .rev()
        .find(|l| **l < hit.line)
        .copied()
        .unwrap_or(0);
    let allowed = allows
        .iter_mut()
        .find(|a| a.is_some_and(|a| a.rule == rule.id && a.line < hit.line && a.line >= previous))
        .and_then(Option::take)
        .map(|a| a.reason.clone());
    Some(Finding {
        rule: rule.id,
        level,
        file: input.file.clone(),
        line: hit.line,
        statement: hit.excerpt,
        message: hit.message,
        table: hit.table.map(|t| t.to_string()),
        context,
        why: rule.why,
        safe: rule.safe,
        doc: rule.doc,
        allowed,
        measured: None,
    })
}

/// `-- snapguard:allow RULE reason` lines of `sql` (starting at file line
/// `first_line`); a malformed one is reported with its line.
pub fn allows_in(sql: &str, first_line: usize) -> Result<Vec<Allow>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in sql.lines().enumerate() {
        let Some(rest) = line
            .trim_start()
            .strip_prefix("--")
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix("snapguard:allow"))
        else {
            continue;
        };
        let line_no = first_line + i;
        let (rule, reason) =
            crate::migrate::source::parse_allow(rest).map_err(|message| (line_no, message))?;
        out.push(Allow {
            line: line_no,
            rule,
            reason,
        });
    }
    Ok(out)
}
