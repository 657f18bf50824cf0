//! Standard output, snapguard's result channel: reports, JSON, listings,
//! completion scripts.
//!
//! A reader that stops early (`snapguard snapshots list | head -1`) is not
//! a failure: once the pipe is closed, what is left to print is dropped and
//! the command goes on to its end with its own exit code. It never stops a
//! command half-way (a deploy whose report nobody reads still finishes its
//! steps), and it never panics, as `println!` does on a closed pipe. Any
//! other write error is said once on stderr.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write failed: later output is dropped without a word.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to stdout; see the module's rules. Used through
/// [`out!`](crate::out) and [`outln!`](crate::outln).
pub fn write_fmt(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("warning: cannot write to standard output ({e}); the rest of it is dropped");
        }
    }
}

/// Writes `bytes` to stdout as [`write_fmt`] does.
pub fn write_bytes(bytes: &[u8]) {
    write_fmt(format_args!("{}", String::from_utf8_lossy(bytes)));
}

/// `print!` to [`stdout`](crate::stdout), which a closed pipe does not
/// turn into a panic.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write_fmt(format_args!($($arg)*))
    };
}

/// `println!` to [`stdout`](crate::stdout), which a closed pipe does not
/// turn into a panic.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::stdout::write_fmt(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}
