//! Progress for long transfers (bytes and rate) and long counted work (a
//! restore's archive entries: percentage and ETA), as a bar on a terminal
//! and as periodic log lines in CI logs (where a bar would print thousands
//! of carriage returns).

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

/// What is known of a transfer's size before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    /// Nothing (an upload of unknown length).
    Unknown,
    /// The exact size (a download whose manifest gives it).
    Exact(u64),
    /// A guess (a dump, sized from the tables it reads): the percentage
    /// is shown as approximate and never reaches 100 before the end.
    Estimate(u64),
}

/// What both kinds of progress share: a bar on a terminal, or, elsewhere,
/// the clock that spaces the log lines [`LINE_INTERVAL`] apart.
struct Shown {
    label: &'static str,
    started: Instant,
    last_line: Instant,
    bar: Option<ProgressBar>,
}

impl Shown {
    /// Starts showing `label`: a bar of `length` (a spinner without one)
    /// drawn with `template` in [`Mode::Bar`], nothing until the first log
    /// line otherwise.
    fn start(label: &'static str, length: Option<u64>, template: &str) -> Shown {
        let bar = (MODE.get().copied() == Some(Mode::Bar)).then(|| {
            let bar = match length {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::no_length(),
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(label);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Shown {
            label,
            started: now,
            last_line: now,
            bar,
        }
    }

    /// Without a bar, whether a log line is due; the interval restarts
    /// when it is.
    fn line_due(&mut self) -> bool {
        let due = self.bar.is_none() && self.last_line.elapsed() >= LINE_INTERVAL;
        if due {
            self.last_line = Instant::now();
        }
        due
    }

    fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Progress of one transfer.
pub struct Progress {
    shown: Shown,
    total: Total,
    bytes: u64,
}

impl Progress {
    /// Starts reporting a transfer.
    pub fn start(label: &'static str, total: Total) -> Self {
        let (length, template) = match total {
            Total::Exact(t) => (
                Some(t),
                "{prefix:>9} [{bar:30}] {percent}% {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            ),
            Total::Estimate(t) => (
                Some(t),
                "{prefix:>9} [{bar:30}] ~{percent}% {bytes}/~{total_bytes} {bytes_per_sec} {eta}",
            ),
            Total::Unknown => (
                None,
                "{prefix:>9} {spinner} {bytes} {bytes_per_sec} {elapsed}",
            ),
        };
        Progress {
            shown: Shown::start(label, length, template),
            total,
            bytes: 0,
        }
    }

    /// Records `n` more bytes.
    pub fn add(&mut self, n: u64) {
        self.bytes += n;
        if let Some(bar) = &self.shown.bar {
            bar.inc(n);
            // An estimate that proved low grows, so the bar stays short of
            // full until the transfer ends.
            if let Total::Estimate(_) = self.total
                && self.bytes >= bar.length().unwrap_or(0)
            {
                bar.set_length(self.bytes + self.bytes / 50);
            }
        } else if self.shown.line_due() {
            tracing::info!("{}: {}", self.shown.label, self.line());
        }
    }

    /// The log line's text: bytes and rate, and against a known or
    /// estimated total the percentage and the time left.
    fn line(&self) -> String {
        let elapsed = self.shown.started.elapsed();
        let done = format!(
            "{} at {}/s",
            format_bytes(self.bytes),
            format_bytes(rate(self.bytes, elapsed))
        );
        let (total, about) = match self.total {
            Total::Unknown => return done,
            Total::Exact(t) => (t, ""),
            Total::Estimate(t) => (t.max(self.bytes + 1), "about "),
        };
        let shown = self.bytes.min(total.saturating_sub(1));
        format!(
            "{done}, {about}{}% of {about}{}{}",
            percent(shown, total),
            format_bytes(total),
            time_left(shown, total, elapsed, about)
        )
    }

    /// Ends the transfer; returns the total and the elapsed time.
    pub fn finish(self) -> (u64, Duration) {
        self.shown.clear();
        (self.bytes, self.shown.started.elapsed())
    }
}

/// Progress counted in items of a known total (a `pg_restore`'s archive
/// entries): a bar with the percentage and ETA on a terminal, a log line
/// every [`LINE_INTERVAL`] elsewhere, and a last line with the total.
pub struct Counted {
    shown: Shown,
    unit: &'static str,
    total: u64,
    done: u64,
}

impl Counted {
    /// Starts counting towards `total` `unit`s.
    pub fn start(label: &'static str, unit: &'static str, total: u64) -> Self {
        let shown = Shown::start(
            label,
            Some(total),
            "{prefix:>9} [{bar:30}] {percent}% {pos}/{len} {msg} {eta}",
        );
        if let Some(bar) = &shown.bar {
            bar.set_message(unit);
        }
        Counted {
            shown,
            unit,
            total,
            done: 0,
        }
    }

    /// One more done. The count never passes `total - 1` before
    /// [`Counted::finish`]: what is counted is an estimate.
    pub fn advance(&mut self) {
        self.done = (self.done + 1).min(self.total.saturating_sub(1));
        if let Some(bar) = &self.shown.bar {
            bar.set_position(self.done);
        } else if self.shown.line_due() {
            tracing::info!(
                "{}: {}% ({} of {} {}){}",
                self.shown.label,
                percent(self.done, self.total),
                self.done,
                self.total,
                self.unit,
                time_left(
                    self.done,
                    self.total,
                    self.shown.started.elapsed(),
                    "about "
                )
            );
        }
    }

    /// Ends the count, everything done.
    pub fn finish(self) {
        self.shown.clear();
        tracing::info!(
            "{}: 100% ({} {}) in {:.1}s",
            self.shown.label,
            self.total,
            self.unit,
            self.shown.started.elapsed().as_secs_f64()
        );
    }
}

/// `, about 12s left` at the rate so far, once something is done.
fn time_left(done: u64, total: u64, elapsed: Duration, about: &str) -> String {
    eta(done, total, elapsed)
        .map(|d| format!(", {about}{}s left", d.as_secs()))
        .unwrap_or_default()
}

/// `done` of `total` as a whole percentage.
fn percent(done: u64, total: u64) -> u64 {
    (done * 100).checked_div(total).unwrap_or(0)
}

/// The time left at the rate so far, once something is done.
fn eta(done: u64, total: u64, elapsed: Duration) -> Option<Duration> {
    (done > 0 && total > done).then(|| elapsed.mul_f64((total - done) as f64 / done as f64))
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

    #[test]
    fn counted_progress_estimates() {
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(0, 0), 0);
        assert_eq!(
            eta(1, 4, Duration::from_secs(10)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(eta(0, 4, Duration::from_secs(10)), None);
        let mut p = Progress::start("dump", Total::Estimate(1000));
        p.bytes = 250;
        assert!(
            p.line().contains(", about 25% of about 1000 B"),
            "{}",
            p.line()
        );
        p.bytes = 5000;
        assert!(
            p.line().contains("about 99% of about"),
            "a low estimate never shows 100%: {}",
            p.line()
        );
        let mut p = Progress::start("download", Total::Exact(2048));
        p.bytes = 1024;
        assert!(p.line().contains(", 50% of 2.0 KiB"), "{}", p.line());
        p.total = Total::Unknown;
        assert!(!p.line().contains('%'));
        let mut c = Counted::start("restore", "archive entries", 3);
        for _ in 0..10 {
            c.advance();
        }
        assert_eq!(c.done, 2, "never 100% before it is done");
    }
}
