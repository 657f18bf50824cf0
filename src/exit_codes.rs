//! Process exit codes, one constant per outcome (DESIGN section 6).
//!
//! CI systems branch on these, so they are part of the public interface: a
//! value never changes meaning once released.

/// Success, or nothing to do.
pub const SUCCESS: i32 = 0;
/// Internal or runtime error; the printed error chain says what failed.
pub const INTERNAL: i32 = 1;
/// Usage or configuration error: bad flags, broken `snapguard.yml`, a missing
/// environment variable.
pub const USAGE: i32 = 2;
/// A check before any change failed: nothing was changed.
pub const PREFLIGHT: i32 = 3;
/// The deploy failed and was rolled back cleanly.
pub const ROLLED_BACK: i32 = 4;
/// The rollback is incomplete: manual action is needed, maintenance is left on.
pub const ROLLBACK_INCOMPLETE: i32 = 5;
/// Another deploy holds the lock.
pub const LOCKED: i32 = 6;
/// `rehearse`: the estimated maintenance window exceeds `budget.max_downtime`.
pub const OVER_BUDGET: i32 = 7;
/// `rehearse`: the deploy would fail (a before-check, a migration or an
/// after-check failed on the copy); production was not touched.
pub const REHEARSAL_FAILED: i32 = 8;
/// `lint`: a finding at the failing level (`error`) remains, not silenced
/// by a `-- snapguard:allow` comment.
pub const LINT_FINDINGS: i32 = 9;
/// `deploy` (`snapshot.offsite: after`): the deploy succeeded and
/// maintenance is off, but its store snapshot was not committed; the local
/// clone is kept and `snapguard recover` uploads it.
pub const OFFSITE_INCOMPLETE: i32 = 10;

/// Every exit code with what it means, for the manual pages' EXIT STATUS.
pub const MEANINGS: &[(i32, &str)] = &[
    (SUCCESS, "Success, or nothing to do."),
    (
        INTERNAL,
        "Internal or runtime error; the printed error chain says what failed.",
    ),
    (
        USAGE,
        "Usage or configuration error: bad flags, a broken snapguard.yml, a missing environment variable. Nothing was changed.",
    ),
    (
        PREFLIGHT,
        "A check before any change failed: nothing was changed.",
    ),
    (
        ROLLED_BACK,
        "The deploy failed (or was cancelled) and was rolled back cleanly: database, release and maintenance as before.",
    ),
    (
        ROLLBACK_INCOMPLETE,
        "The rollback is incomplete, or recover refused to restore without proof: manual action is needed; maintenance is left on. The printed next steps say what to run.",
    ),
    (
        LOCKED,
        "Another deploy holds the lock: nothing was changed.",
    ),
    (
        OVER_BUDGET,
        "rehearse: the estimated maintenance window exceeds budget.max_downtime.",
    ),
    (
        REHEARSAL_FAILED,
        "rehearse: the deploy would fail on the copy; production was not touched.",
    ),
    (LINT_FINDINGS, "lint: a finding at the error level remains."),
    (
        OFFSITE_INCOMPLETE,
        "deploy with snapshot.offsite: after: the deploy succeeded and maintenance is off, but its store snapshot was not committed; snapguard recover uploads it.",
    ),
];
