//! `${VAR}` in values read from the file: expanded from the environment,
//! `${VAR:-default}` when unset or empty, `$$` for a literal `$`, and the
//! variables snapguard sets for hooks left for the shell.

use super::{ConfigError, Origin, UnsetVar};

/// Variables snapguard sets for the commands it runs (release hooks,
/// maintenance commands). `${NAME}` of these in a command is left for the
/// shell, not expanded when the file is read.
pub const HOOK_VARS: &[&str] = &[
    "SNAPGUARD_RELEASE",
    "SNAPGUARD_PREVIOUS_RELEASE",
    "SNAPGUARD_SNAPSHOT_ID",
    "SNAPGUARD_DEPLOY_ID",
    "SNAPGUARD_OUTCOME",
];

/// `env`, except that [`HOOK_VARS`] expand to themselves.
pub(crate) fn keep_hook_vars(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if HOOK_VARS.contains(&name) {
        Some(format!("${{{name}}}"))
    } else {
        env(name)
    }
}

/// `database.url` and `store.url` usually come from CI secrets a developer's
/// machine does not have: an unset `${VAR}` in them is kept and reported by
/// the command that needs the value, so `migrate new` or `rehearse --dump`
/// still run without it.
pub(super) fn defer_unset<T>(
    resolved: Result<Option<T>, ConfigError>,
    unset: &mut Vec<UnsetVar>,
) -> Result<Option<T>, ConfigError> {
    match resolved {
        Err(ConfigError::MissingVar { origin, key, var }) => {
            unset.push(UnsetVar { origin, key, var });
            Ok(None)
        }
        other => other,
    }
}

/// Expands `${VAR}` in a value read from the file at `origin`.
pub(crate) fn interpolate_at(
    raw: &str,
    origin: &Origin,
    key: &'static str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    interpolate(raw, env).map_err(|e| match e {
        InterpolationError::Unset(var) => ConfigError::MissingVar {
            origin: origin.clone(),
            key,
            var,
        },
        InterpolationError::Syntax(message) => ConfigError::Invalid {
            origin: origin.clone(),
            key,
            message,
        },
    })
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum InterpolationError {
    Unset(String),
    Syntax(String),
}

/// Expands `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`.
pub(super) fn interpolate(
    raw: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let end = after.find('}').ok_or_else(|| {
                InterpolationError::Syntax("unterminated `${`; close it with `}`".into())
            })?;
            let inner = &after[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if !is_var_name(name) {
                return Err(InterpolationError::Syntax(format!(
                    "`${{{inner}}}` is not a valid variable reference"
                )));
            }
            // As in shells and compose files, `:-` also covers a variable
            // set but empty (GitHub Actions sets a missing secret to "").
            match (env(name), default) {
                (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(InterpolationError::Unset(name.to_owned())),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}
