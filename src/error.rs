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

    /// The documented exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Usage(_) => exit_codes::USAGE,
            Error::NothingChanged { .. } => exit_codes::PREFLIGHT,
            Error::Locked { .. } => exit_codes::LOCKED,
            Error::Failed { .. } => exit_codes::INTERNAL,
            Error::RolledBack(_) => exit_codes::ROLLED_BACK,
            Error::RollbackIncomplete(_) => exit_codes::ROLLBACK_INCOMPLETE,
            Error::OverBudget(_) => exit_codes::OVER_BUDGET,
            Error::RehearsalFailed(_) => exit_codes::REHEARSAL_FAILED,
            Error::LintFindings(_) => exit_codes::LINT_FINDINGS,
            Error::OffsiteIncomplete(_) => exit_codes::OFFSITE_INCOMPLETE,
        }
    }
}
