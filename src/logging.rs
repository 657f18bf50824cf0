//! `tracing` output: readable on a terminal, compact with timestamps in CI
//! logs, JSON for machines. Logs go to stderr; command results to stdout.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::progress;

/// The `--log-format` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text; colours and a progress bar on a terminal, plain lines elsewhere.
    Auto,
    /// Plain text lines with timestamps.
    Text,
    /// One JSON object per line.
    Json,
}

/// True when running under a CI system (they all set `CI`).
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// Bars only on a terminal, in the plain format, and not under `-q`; else
/// progress lines, which `-q` (warnings only) hides too.
fn progress_mode(terminal: bool, format: LogFormat, verbosity: i8) -> progress::Mode {
    if terminal && format == LogFormat::Auto && verbosity >= 0 {
        progress::Mode::Bar
    } else {
        progress::Mode::Lines
    }
}

/// Installs the global subscriber. `verbosity` is 0 by default, positive for
/// `-v`, negative for `-q`. `SNAPGUARD_LOG` (an `EnvFilter` directive)
/// overrides it.
pub fn init(format: LogFormat, verbosity: i8) {
    let default = match verbosity {
        // The AWS credential chain warns for each source it tries in vain;
        // a store error says it in one line.
        i8::MIN..=-1 => "snapguard=warn,warn,aws_config=error",
        0 => "snapguard=info,warn,aws_config=error",
        1 => "snapguard=debug,warn",
        _ => "snapguard=trace,info",
    };
    let filter =
        EnvFilter::try_from_env("SNAPGUARD_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let terminal = std::io::stderr().is_terminal() && !in_ci();
    progress::set_mode(progress_mode(terminal, format, verbosity));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Auto if terminal => builder.without_time().init(),
        _ => builder.with_ansi(false).compact().init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hides_the_progress_bar() {
        assert_eq!(progress_mode(true, LogFormat::Auto, 0), progress::Mode::Bar);
        assert_eq!(
            progress_mode(true, LogFormat::Auto, -1),
            progress::Mode::Lines
        );
        assert_eq!(
            progress_mode(true, LogFormat::Json, 0),
            progress::Mode::Lines
        );
        assert_eq!(
            progress_mode(false, LogFormat::Auto, 0),
            progress::Mode::Lines
        );
    }
}
