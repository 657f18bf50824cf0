//! The CI environment: which system runs us, the release id it implies, and
//! GitHub Actions' workflow commands and files.

use std::io::Write;
use std::path::PathBuf;

/// The release id from the CI's environment: GitHub Actions (`GITHUB_SHA`),
/// GitLab (`CI_COMMIT_SHA`), Codeship (`CI_COMMIT_ID`), else the commit
/// checked out in the working directory (`git rev-parse HEAD`).
pub fn release_id(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    for var in ["GITHUB_SHA", "CI_COMMIT_SHA", "CI_COMMIT_ID"] {
        if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
            return Some(v.trim().to_owned());
        }
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let sha = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !sha.is_empty()).then_some(sha)
}

/// GitHub Actions, when `GITHUB_ACTIONS=true`: workflow commands and the
/// output and summary files.
///
/// The commands go to stderr. The documentation shows them on stdout, but
/// the runner reads both streams through the same command processor
/// (actions/runner `ScriptHandler`: one `OutputManager` per stream), and on
/// stdout they would break `--json` output: stdout carries only the
/// command's result. Hooks' and tools' output is streamed to stderr too, so
/// a mask always comes before anything it hides in that stream.
/// <https://docs.github.com/actions/reference/workflow-commands-for-github-actions>
#[derive(Debug, Clone)]
pub struct GitHub {
    output: Option<PathBuf>,
    summary: Option<PathBuf>,
}

impl GitHub {
    /// `Some` when this process runs under GitHub Actions.
    pub fn from_env() -> Option<GitHub> {
        GitHub::detect(&|v| std::env::var(v).ok())
    }

    /// `Some` when the environment `env` is GitHub Actions'.
    pub fn detect(env: &dyn Fn(&str) -> Option<String>) -> Option<GitHub> {
        (env("GITHUB_ACTIONS").as_deref() == Some("true")).then(|| GitHub {
            output: env("GITHUB_OUTPUT").map(PathBuf::from),
            summary: env("GITHUB_STEP_SUMMARY").map(PathBuf::from),
        })
    }

    /// Starts a collapsible log group.
    pub fn group(&self, title: &str) {
        eprintln!("::group::{}", escape_data(title));
    }

    /// Ends the current log group.
    pub fn end_group(&self) {
        eprintln!("::endgroup::");
    }

    /// An error annotation, on a file and line when known.
    pub fn error(&self, file: Option<(&str, usize)>, message: &str) {
        eprintln!("{}", annotation("error", file, None, message));
    }

    /// Asks the runner to hide `secret` in every later log line.
    pub fn mask(&self, secret: &str) {
        if !secret.is_empty() {
            eprintln!("::add-mask::{}", escape_data(secret));
        }
    }

    /// Appends `name=value` outputs to `$GITHUB_OUTPUT`; each name is one
    /// of [`OUTPUTS`].
    pub fn set_outputs(&self, outputs: &[(&str, String)]) -> std::io::Result<()> {
        debug_assert!(
            outputs.iter().all(|(name, _)| OUTPUTS.contains(name)),
            "an output the action does not declare"
        );
        let Some(path) = &self.output else {
            return Ok(());
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        for (name, value) in outputs {
            // Values are single-line ids and words; a newline would need
            // the heredoc form, so it is replaced instead.
            writeln!(f, "{name}={}", value.replace(['\n', '\r'], " "))?;
        }
        Ok(())
    }

    /// Appends Markdown to `$GITHUB_STEP_SUMMARY`.
    pub fn append_summary(&self, markdown: &str) -> std::io::Result<()> {
        let Some(path) = &self.summary else {
            return Ok(());
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        f.write_all(markdown.as_bytes())
    }
}

/// Every output snapguard writes to `$GITHUB_OUTPUT`; `action.yml` declares
/// each one (a test holds them together).
pub const OUTPUTS: &[&str] = &[
    "deploy-id",
    "outcome",
    "snapshot-id",
    "snapshot-uri",
    "applied",
    "window-seconds",
];

/// A workflow command annotating `file` at `line` (or the run):
/// `::warning file=db/m.sql,line=3,title=…::message`.
pub fn annotation(
    kind: &str,
    file: Option<(&str, usize)>,
    title: Option<&str>,
    message: &str,
) -> String {
    let mut properties = Vec::new();
    if let Some((path, line)) = file {
        properties.push(format!("file={}", escape_property(path)));
        properties.push(format!("line={line}"));
    }
    if let Some(title) = title {
        properties.push(format!("title={}", escape_property(title)));
    }
    let properties = if properties.is_empty() {
        String::new()
    } else {
        format!(" {}", properties.join(","))
    };
    format!("::{kind}{properties}::{}", escape_data(message))
}

/// Escapes a workflow command's message.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `text` as one cell of a Markdown table: a `|` would end the cell and a
/// line break the row (a multi-line error, a migration's SQL), so they are
/// escaped and written as `<br>`.
pub fn table_cell(text: &str) -> String {
    text.trim_end()
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace(['\n', '\r'], "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_id_prefers_the_ci_variables() {
        let env = |name: &str| match name {
            "CI_COMMIT_SHA" => Some("abc123".to_owned()),
            _ => None,
        };
        assert_eq!(release_id(&env).as_deref(), Some("abc123"));
    }

    #[test]
    fn workflow_command_escaping() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }
}
