//! The top-level error of a command, and how it maps to an exit code.
//!
//! Module errors say *what* failed; this type adds *how far* the command got,
//! because that decides the exit code: a failure before anything changed is
//! [`exit_codes::PREFLIGHT`], whatever its cause.

use crate::exit_codes;

/// An error and its causes on one line, `a: b: c`, for logs and reports.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A boxed error from any module, kept whole so `main` can print its chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error with what it means for the command, above its cause.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct Described {
    /// What the failure means.
    pub what: String,
    /// The failure.
    #[source]
    pub source: BoxError,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `snapguard.yml`, the environment or the flags are wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The command was called in a way it refuses, for example a destructive
    /// command without a terminal and without `--yes`.
    #[error("{0}")]
    Usage(String),
    /// The command stopped before it changed anything.
    #[error("{step} stopped before changing anything")]
    NothingChanged {
        /// The command or step, for example `restore`.
        step: &'static str,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
    /// Another run holds the lock this command needs.
    #[error("{step} did not start")]
    Locked {
        /// The command or step, for example `migrate`.
        step: &'static str,
        /// Who holds what, and how long this run waited.
        #[source]
        source: BoxError,
    },
    /// The deploy failed and was rolled back cleanly.
    #[error("deploy failed and was rolled back")]
    RolledBack(#[source] BoxError),
    /// The deploy failed and its rollback could not finish.
    #[error("deploy failed and the rollback is incomplete: manual action is needed")]
    RollbackIncomplete(#[source] BoxError),
    /// A rehearsal's estimated window exceeds `budget.max_downtime`.
    #[error("the rehearsed deploy is over its downtime budget")]
    OverBudget(#[source] BoxError),
    /// A rehearsal found that the deploy would fail.
    #[error("the rehearsed deploy would fail; production was not touched")]
    RehearsalFailed(#[source] BoxError),
    /// The deploy succeeded and maintenance is off, but its store snapshot
    /// (`snapshot.offsite: after`) was not committed.
    #[error("the deploy's store snapshot is incomplete: `snapguard recover` finishes it")]
    OffsiteIncomplete(#[source] BoxError),
    /// `lint` found hazards at the failing level.
    #[error("{0} lint finding(s) at the error level")]
    LintFindings(usize),
    /// The command failed after it started its work; the chain says where and
    /// what state it left behind.
    #[error("{step} failed")]
    Failed {
        /// The command or step, for example `snapshot`.
        step: &'static str,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// Wraps a failure that happened before anything was changed.
    pub fn nothing_changed(step: &'static str, source: impl Into<BoxError>) -> Self {
        Error::NothingChanged {
            step,
            source: source.into(),
        }
    }

    /// Wraps a failure that happened while the command was doing its work.
    pub fn failed(step: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Failed {
            step,
            source: source.into(),
        }
    }

    /// The one mapping from an error to how the command ended: the
    /// documented exit code, and the outcome a deploy's (or `recover`'s)
    /// report and the action's `outcome` output give it. Both come from
    /// here, so they cannot disagree.
    pub fn ending(&self) -> (i32, Outcome) {
        match self {
            Error::Config(_) | Error::Usage(_) => (exit_codes::USAGE, Outcome::PreflightFailed),
            Error::NothingChanged { .. } => (exit_codes::PREFLIGHT, Outcome::PreflightFailed),
            Error::LintFindings(_) => (exit_codes::LINT_FINDINGS, Outcome::PreflightFailed),
            Error::Locked { .. } => (exit_codes::LOCKED, Outcome::Locked),
            Error::Failed { .. } => (exit_codes::INTERNAL, Outcome::Failed),
            Error::RolledBack(_) => (exit_codes::ROLLED_BACK, Outcome::RolledBack),
            Error::RollbackIncomplete(_) => {
                (exit_codes::ROLLBACK_INCOMPLETE, Outcome::RollbackIncomplete)
            }
            Error::OverBudget(_) => (exit_codes::OVER_BUDGET, Outcome::Failed),
            Error::RehearsalFailed(_) => (exit_codes::REHEARSAL_FAILED, Outcome::Failed),
            Error::OffsiteIncomplete(_) => {
                (exit_codes::OFFSITE_INCOMPLETE, Outcome::OffsiteIncomplete)
            }
        }
    }

    /// The documented exit code for this error.
    pub fn exit_code(&self) -> i32 {
        self.ending().0
    }
}

/// How a deploy (or `recover`) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Everything ran; the new release is live.
    Succeeded,
    /// No pending migration and no release command: nothing was done.
    NothingToDeploy,
    /// A step failed or the job was cancelled; everything was put back.
    RolledBack,
    /// The rollback could not finish; maintenance is still on.
    RollbackIncomplete,
    /// Preflight refused: nothing was changed.
    PreflightFailed,
    /// Another deploy holds the lock: nothing was changed.
    Locked,
    /// `recover --accept-current`: the database was kept as it was, the
    /// deploy closed and maintenance switched off.
    AcceptedCurrent,
    /// The release is live and maintenance off, but the deploy's store
    /// snapshot (`snapshot.offsite: after`) is not committed.
    OffsiteIncomplete,
    /// The command failed while working (exit 1): the error chain says
    /// where; `snapguard recover` finds out what is left to do.
    Failed,
}

impl Outcome {
    /// How a deploy (or `recover`) that returned `result` ended: `ok` when
    /// it returned no error (`succeeded`, `nothing_to_deploy` or
    /// `accepted_current`), else the error's ([`Error::ending`]).
    pub fn of(result: &Result<(), Error>, ok: Outcome) -> Outcome {
        match result {
            Ok(()) => ok,
            Err(e) => e.ending().1,
        }
    }

    /// The word used in outputs and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::NothingToDeploy => "nothing_to_deploy",
            Outcome::RolledBack => "rolled_back",
            Outcome::RollbackIncomplete => "rollback_incomplete",
            Outcome::PreflightFailed => "preflight_failed",
            Outcome::Locked => "locked",
            Outcome::AcceptedCurrent => "accepted_current",
            Outcome::OffsiteIncomplete => "offsite_incomplete",
            Outcome::Failed => "failed",
        }
    }

    /// Every outcome, for documentation checks.
    pub const ALL: &'static [Outcome] = &[
        Outcome::Succeeded,
        Outcome::NothingToDeploy,
        Outcome::RolledBack,
        Outcome::RollbackIncomplete,
        Outcome::PreflightFailed,
        Outcome::Locked,
        Outcome::AcceptedCurrent,
        Outcome::OffsiteIncomplete,
        Outcome::Failed,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant's exit code and outcome, each exit code a row of the
    /// table in docs/failures.md and every outcome a value the action's
    /// `outcome` output documents. (`Failed` was `rollback_incomplete` in
    /// the report while the process exited 1.)
    #[test]
    fn every_error_ends_with_one_documented_exit_code_and_outcome() {
        let x = || BoxError::from("x");
        let cases = [
            (
                Error::Config(crate::config::ConfigError::NotFound {
                    path: "snapguard.yml".into(),
                }),
                2,
                Outcome::PreflightFailed,
            ),
            (Error::Usage("x".into()), 2, Outcome::PreflightFailed),
            (
                Error::NothingChanged {
                    step: "deploy",
                    source: x(),
                },
                3,
                Outcome::PreflightFailed,
            ),
            (Error::LintFindings(1), 9, Outcome::PreflightFailed),
            (
                Error::Locked {
                    step: "deploy",
                    source: x(),
                },
                6,
                Outcome::Locked,
            ),
            (
                Error::Failed {
                    step: "deploy",
                    source: x(),
                },
                1,
                Outcome::Failed,
            ),
            (Error::RolledBack(x()), 4, Outcome::RolledBack),
            (
                Error::RollbackIncomplete(x()),
                5,
                Outcome::RollbackIncomplete,
            ),
            (Error::OverBudget(x()), 7, Outcome::Failed),
            (Error::RehearsalFailed(x()), 8, Outcome::Failed),
            (
                Error::OffsiteIncomplete(x()),
                10,
                Outcome::OffsiteIncomplete,
            ),
        ];
        let failures = include_str!("../docs/failures.md");
        for (error, code, outcome) in &cases {
            assert_eq!(error.ending(), (*code, *outcome), "{error:?}");
            assert_eq!(error.exit_code(), *code);
            assert_eq!(
                Outcome::of(&Err(error_like(error)), Outcome::Succeeded),
                *outcome
            );
            assert!(
                failures.contains(&format!("\n| {code} | ")),
                "exit {code} is not in docs/failures.md's table"
            );
            assert!(
                exit_codes::MEANINGS.iter().any(|(c, _)| c == code),
                "exit {code} has no meaning in exit_codes::MEANINGS"
            );
        }
        let action = include_str!("../action.yml");
        for outcome in Outcome::ALL {
            assert!(
                action.contains(outcome.as_str()),
                "the action's outcome output does not list `{}`",
                outcome.as_str()
            );
        }
    }

    /// A second error of the same variant (errors are not `Clone`).
    fn error_like(error: &Error) -> Error {
        let x = || BoxError::from("x");
        match error {
            Error::Config(_) => Error::Usage("x".into()),
            Error::Usage(_) => Error::Usage("x".into()),
            Error::NothingChanged { step, .. } => Error::NothingChanged { step, source: x() },
            Error::LintFindings(n) => Error::LintFindings(*n),
            Error::Locked { step, .. } => Error::Locked { step, source: x() },
            Error::Failed { step, .. } => Error::Failed { step, source: x() },
            Error::RolledBack(_) => Error::RolledBack(x()),
            Error::RollbackIncomplete(_) => Error::RollbackIncomplete(x()),
            Error::OverBudget(_) => Error::OverBudget(x()),
            Error::RehearsalFailed(_) => Error::RehearsalFailed(x()),
            Error::OffsiteIncomplete(_) => Error::OffsiteIncomplete(x()),
        }
    }
}
