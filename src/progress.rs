//! Progress for long transfers: bytes and rate, as a bar on a terminal and
//! as periodic log lines in CI logs (where a bar would print thousands of
//! carriage returns).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How progress is shown, decided once by [`crate::logging::init`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An animated bar on stderr.
    Bar,
    /// A log line every [`LINE_INTERVAL`].
    Lines,
}

static MODE: OnceLock<Mode> = OnceLock::new();

/// How often a progress line is logged in [`Mode::Lines`].
pub const LINE_INTERVAL: Duration = Duration::from_secs(5);

/// Sets the mode for the process; later calls are ignored.
pub fn set_mode(mode: Mode) {
    let _ = MODE.set(mode);
}

/// Progress of one transfer.
pub struct Progress {
    label: &'static str,
    bytes: u64,
    started: Instant,
    last_line: Instant,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts reporting a transfer; `total` is known for downloads.
    pub fn start(label: &'static str, total: Option<u64>) -> Self {
        let bar = (MODE.get().copied() == Some(Mode::Bar)).then(|| {
            let bar = match total {
                Some(t) => ProgressBar::new(t).with_style(
                    ProgressStyle::with_template(
                        "{prefix:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                ),
                None => ProgressBar::no_length().with_style(
                    ProgressStyle::with_template(
                        "{prefix:>9} {spinner} {bytes} {bytes_per_sec} {elapsed}",
                    )
                    .expect("valid template"),
                ),
            };
            bar.set_prefix(label);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            label,
            bytes: 0,
            started: now,
            last_line: now,
            bar,
        }
    }

    /// Records `n` more bytes.
    pub fn add(&mut self, n: u64) {
        self.bytes += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        } else if self.last_line.elapsed() >= LINE_INTERVAL {
            self.last_line = Instant::now();
            tracing::info!(
                "{}: {} at {}/s",
                self.label,
                format_bytes(self.bytes),
                format_bytes(rate(self.bytes, self.started.elapsed()))
            );
        }
    }

    /// Ends the transfer; returns the total and the elapsed time.
    pub fn finish(self) -> (u64, Duration) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        (self.bytes, self.started.elapsed())
    }
}

/// Bytes per second.
pub fn rate(bytes: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        0
    } else {
        (bytes as f64 / secs) as u64
    }
}

/// `1536` → `1.5 KiB`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_format() {
        assert_eq!(format_bytes(12), "12 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(rate(1000, Duration::from_secs(2)), 500);
    }
}
