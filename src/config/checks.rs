//! The `checks` section of `snapguard.yml`: what the YAML looks like, and
//! turning it into validated [`Check`]s and [`CompareCheck`]s that remember
//! where in the file they were written.
//!
//! Check SQL is taken literally: no `${VAR}` interpolation, since `$` is part
//! of SQL (`$1`, dollar quotes).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

use super::{ConfigError, Origin, Scalar, parse_duration};

/// What a check's result must be.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// No rows.
    Empty,
    /// Exactly this many rows.
    Rows(u64),
    /// One row, one column, equal to this as text, or as a number when both
    /// sides are numbers (`0` equals `0.00`).
    Value(String),
    /// One row, one column, `true`.
    True,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Empty => f.write_str("no rows"),
            Expect::Rows(n) => write!(f, "{n} rows"),
            Expect::Value(v) => write!(f, "value {v}"),
            Expect::True => f.write_str("true"),
        }
    }
}

/// Row order in a compare check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    /// Rows must come in the same order (the queries' own `ORDER BY`).
    Exact,
    /// Rows are compared as a multiset.
    Any,
}

/// A `before` or `after` check.
#[derive(Debug, Clone)]
pub struct Check {
    /// Its name, unique across all checks.
    pub name: String,
    /// The SQL.
    pub sql: String,
    /// What the result must be.
    pub expect: Expect,
    /// `statement_timeout` while it runs.
    pub timeout: Duration,
    /// Where it is defined, for error messages.
    pub origin: Origin,
}

/// A `compare` check: `before` runs before the migrations, `after` (the
/// same SQL unless given) after; the results must be equal.
#[derive(Debug, Clone)]
pub struct CompareCheck {
    /// Its name.
    pub name: String,
    /// Run before the migrations.
    pub before: String,
    /// Run after the migrations.
    pub after: String,
    /// Row order.
    pub order: Order,
    /// `statement_timeout` for each side.
    pub timeout: Duration,
    /// Where it is defined.
    pub origin: Origin,
}

/// Built-in checks, each on unless skipped by name.
pub const BUILTINS: &[&str] = &["no_invalid_indexes", "no_unvalidated_constraints"];

/// The validated `checks` section.
#[derive(Debug, Clone, Default)]
pub struct ChecksConfig {
    /// Preflight assertions.
    pub before: Vec<Check>,
    /// The verification gate.
    pub after: Vec<Check>,
    /// Results that must survive the migrations.
    pub compare: Vec<CompareCheck>,
    /// Built-in checks turned off by name.
    pub skip_builtin: Vec<String>,
}

impl ChecksConfig {
    /// Whether the built-in check `name` runs.
    pub fn builtin_enabled(&self, name: &str) -> bool {
        !self.skip_builtin.iter().any(|s| s == name)
    }
}

/// The default `timeout` of a check.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileChecks {
    before: Option<Vec<FileCheck>>,
    after: Option<Vec<FileCheck>>,
    compare: Option<Vec<FileCompare>>,
    timeout: Option<Spanned<String>>,
    skip_builtin: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCheck {
    name: Spanned<String>,
    sql: Option<String>,
    sql_file: Option<Spanned<String>>,
    expect: Spanned<Expect>,
    timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCompare {
    name: Spanned<String>,
    before: Option<String>,
    before_file: Option<Spanned<String>>,
    after: Option<String>,
    after_file: Option<Spanned<String>>,
    order: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ExpectVisitor;
        const HELP: &str = "`empty`, `true`, `{ rows: N }` or `{ value: X }`";
        impl<'de> Visitor<'de> for ExpectVisitor {
            type Value = Expect;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(HELP)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Expect, E> {
                match v {
                    "empty" => Ok(Expect::Empty),
                    "true" => Ok(Expect::True),
                    other => Err(E::custom(format!(
                        "unknown expectation `{other}`; expected {HELP}"
                    ))),
                }
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Expect, E> {
                if v {
                    Ok(Expect::True)
                } else {
                    Err(E::custom(format!(
                        "`expect: false` is not an expectation; write the query so it returns true, or use {HELP}"
                    )))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Expect, A::Error> {
                let key: String = map.next_key()?.ok_or_else(|| {
                    de::Error::custom(format!("empty expectation; expected {HELP}"))
                })?;
                let expect = match key.as_str() {
                    "rows" => Expect::Rows(map.next_value()?),
                    "value" => Expect::Value(map.next_value::<Scalar>()?.0),
                    other => {
                        return Err(de::Error::custom(format!(
                            "unknown expectation `{other}`; expected {HELP}"
                        )));
                    }
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(format!(
                        "one expectation per check; expected {HELP}"
                    )));
                }
                Ok(expect)
            }
        }
        d.deserialize_any(ExpectVisitor)
    }
}

/// Resolves the parsed section; `path` is the config file, `base_dir` its
/// directory (where `sql_file` paths start).
pub(crate) fn resolve(
    file: Option<FileChecks>,
    path: &Path,
    base_dir: &Path,
) -> Result<ChecksConfig, ConfigError> {
    let Some(file) = file else {
        return Ok(ChecksConfig::default());
    };
    let at = |s: &serde_saphyr::Location| Origin::File {
        path: path.to_path_buf(),
        line: s.line(),
        column: s.column(),
    };
    let invalid = |origin: Origin, key: &'static str, message: String| ConfigError::Invalid {
        origin,
        key,
        message,
    };
    let duration =
        |value: &Option<Spanned<String>>, key: &'static str, default: Duration| match value {
            Some(v) => parse_duration(&v.value).map_err(|m| invalid(at(&v.referenced), key, m)),
            None => Ok(default),
        };
    let default_timeout = duration(&file.timeout, "checks.timeout", DEFAULT_TIMEOUT)?;
    // Inline SQL, or the text of a file relative to the config file.
    let sql = |inline: Option<String>,
               from_file: &Option<Spanned<String>>,
               name: &Spanned<String>,
               key: &'static str,
               file_key: &'static str|
     -> Result<Option<String>, ConfigError> {
        match (inline, from_file) {
            (Some(_), Some(f)) => Err(invalid(
                at(&f.referenced),
                file_key,
                format!(
                    "check `{}` has both `{key}` and `{file_key}`; keep one",
                    name.value
                ),
            )),
            (Some(s), None) => Ok(Some(s)),
            (None, Some(f)) => {
                let full = base_dir.join(&f.value);
                std::fs::read_to_string(&full).map(Some).map_err(|e| {
                    invalid(
                        at(&f.referenced),
                        file_key,
                        format!(
                            "check `{}`: cannot read `{}`: {e}",
                            name.value,
                            full.display()
                        ),
                    )
                })
            }
            (None, None) => Ok(None),
        }
    };
    // A check is one query; its text is kept without the trailing `;` so it
    // can be wrapped in a cursor.
    let one_query =
        |sql: String, name: &Spanned<String>, key: &'static str| -> Result<String, ConfigError> {
            let origin = at(&name.referenced);
            match crate::sqlsplit::split(&sql) {
                Ok(statements) if statements.len() == 1 => Ok(statements[0].sql.clone()),
                Ok(statements) => Err(invalid(
                    origin,
                    key,
                    format!(
                        "check `{}` must be exactly one query, not {}",
                        name.value,
                        statements.len()
                    ),
                )),
                Err(e) => Err(invalid(origin, key, format!("check `{}`: {e}", name.value))),
            }
        };
    let mut names: Vec<(String, Origin)> = Vec::new();
    let mut claim = |name: &Spanned<String>, key: &'static str| -> Result<(), ConfigError> {
        let origin = at(&name.referenced);
        if name.value.trim().is_empty() {
            return Err(invalid(origin, key, "a check needs a name".into()));
        }
        if let Some((_, first)) = names.iter().find(|(n, _)| *n == name.value) {
            return Err(invalid(
                origin,
                key,
                format!("check name `{}` is already used at {first}", name.value),
            ));
        }
        names.push((name.value.clone(), origin));
        Ok(())
    };
    let mut plain = |list: Option<Vec<FileCheck>>,
                     key: &'static str|
     -> Result<Vec<Check>, ConfigError> {
        let mut out = Vec::new();
        for c in list.unwrap_or_default() {
            claim(&c.name, key)?;
            let sql = sql(c.sql, &c.sql_file, &c.name, "sql", "sql_file")?.ok_or_else(|| {
                invalid(
                    at(&c.name.referenced),
                    key,
                    format!("check `{}` needs `sql` or `sql_file`", c.name.value),
                )
            })?;
            out.push(Check {
                timeout: duration(&c.timeout, key, default_timeout)?,
                origin: at(&c.name.referenced),
                sql: one_query(sql, &c.name, key)?,
                name: c.name.value,
                expect: c.expect.value,
            });
        }
        Ok(out)
    };
    let before = plain(file.before, "checks.before")?;
    let after = plain(file.after, "checks.after")?;
    let mut compare = Vec::new();
    for c in file.compare.unwrap_or_default() {
        claim(&c.name, "checks.compare")?;
        let before =
            sql(c.before, &c.before_file, &c.name, "before", "before_file")?.ok_or_else(|| {
                invalid(
                    at(&c.name.referenced),
                    "checks.compare",
                    format!(
                        "compare check `{}` needs `before` or `before_file`",
                        c.name.value
                    ),
                )
            })?;
        let after = sql(c.after, &c.after_file, &c.name, "after", "after_file")?
            .unwrap_or_else(|| before.clone());
        let order = match &c.order {
            None => Order::Exact,
            Some(o) => match o.value.as_str() {
                "exact" => Order::Exact,
                "any" => Order::Any,
                other => {
                    return Err(invalid(
                        at(&o.referenced),
                        "checks.compare",
                        format!("unknown order `{other}`; expected `exact` or `any`"),
                    ));
                }
            },
        };
        compare.push(CompareCheck {
            timeout: duration(&c.timeout, "checks.compare", default_timeout)?,
            origin: at(&c.name.referenced),
            before: one_query(before, &c.name, "checks.compare")?,
            after: one_query(after, &c.name, "checks.compare")?,
            name: c.name.value,
            order,
        });
    }
    let mut skip_builtin = Vec::new();
    for s in file.skip_builtin.unwrap_or_default() {
        if !BUILTINS.contains(&s.value.as_str()) {
            return Err(invalid(
                at(&s.referenced),
                "checks.skip_builtin",
                format!(
                    "unknown built-in check `{}`; known: {}",
                    s.value,
                    BUILTINS.join(", ")
                ),
            ));
        }
        skip_builtin.push(s.value);
    }
    Ok(ChecksConfig {
        before,
        after,
        compare,
        skip_builtin,
    })
}
