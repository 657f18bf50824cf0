//! Running child processes, with the two kinds of failure the house style
//! distinguishes: could not start, and ran but failed. Every child leads a
//! process group of its own ([`group`]).

pub mod group;

use std::collections::VecDeque;
use std::process::ExitStatus;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt};

/// A child process failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started.
    #[error("cannot start `{command}`")]
    Spawn {
        /// The program and its arguments (never secrets: those go through the
        /// environment).
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The program ran and failed.
    #[error("`{command}` {status}{}", tail_suffix(stderr_tail))]
    Exited {
        /// The program and its arguments.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// The last lines it wrote to stderr.
        stderr_tail: String,
    },
}

fn tail_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {tail}")
    }
}

/// How many stderr lines to keep for error messages.
const TAIL_LINES: usize = 20;

/// Reads a child's stderr to the end, logging each line at debug level and
/// keeping the last few for an error message.
pub async fn collect_stderr(stderr: impl AsyncRead + Unpin, program: &str) -> String {
    collect_stderr_lines(stderr, program, |_| {}).await
}

/// [`collect_stderr`], handing each line to `on_line` as it arrives (for
/// progress read from a child's verbose output).
pub async fn collect_stderr_lines(
    stderr: impl AsyncRead + Unpin,
    program: &str,
    mut on_line: impl FnMut(&str),
) -> String {
    let mut reader = tokio::io::BufReader::new(stderr);
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end();
        if line.trim().is_empty() {
            continue;
        }
        tracing::debug!(program, "{line}");
        on_line(line);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.to_owned());
    }
    Vec::from(tail).join("\n")
}

/// Renders a program and its arguments for messages.
pub fn describe(program: &std::path::Path, args: &[String]) -> String {
    let mut s = program.display().to_string();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// Runs `program` to completion with stdin and stdout closed and `env`
/// added (where connection secrets go, never the arguments), keeping the
/// tail of its stderr for the error.
pub async fn run(
    program: &std::path::Path,
    args: &[String],
    env: Vec<(&'static str, String)>,
) -> Result<(), ProcessError> {
    run_with_lines(program, args, env, |_| {}).await
}

/// [`run`], handing each stderr line to `on_line` as it arrives.
pub async fn run_with_lines(
    program: &std::path::Path,
    args: &[String],
    env: Vec<(&'static str, String)>,
    on_line: impl FnMut(&str),
) -> Result<(), ProcessError> {
    run_child(program, args, env, Stdout::Closed, on_line)
        .await
        .map(drop)
}

/// [`run`], keeping what the program writes to stdout (a report it prints,
/// such as `pgbackrest info --output=json`).
pub async fn output(
    program: &std::path::Path,
    args: &[String],
    env: Vec<(&'static str, String)>,
) -> Result<String, ProcessError> {
    run_child(program, args, env, Stdout::Kept, |_| {}).await
}

/// What becomes of a child's standard output.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stdout {
    Closed,
    Kept,
}

/// Runs `program` as the leader of its own process group to its end; its
/// stdout when `stdout` keeps it (else empty).
async fn run_child(
    program: &std::path::Path,
    args: &[String],
    env: Vec<(&'static str, String)>,
    stdout: Stdout,
    on_line: impl FnMut(&str),
) -> Result<String, ProcessError> {
    let command = describe(program, args);
    let spawn_failed = |source| ProcessError::Spawn {
        command: command.clone(),
        source,
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(env)
        .stdin(std::process::Stdio::null())
        .stdout(match stdout {
            Stdout::Closed => std::process::Stdio::null(),
            Stdout::Kept => std::process::Stdio::piped(),
        })
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_failed)?;
    let group = group::GroupGuard::track(child.id(), &command);
    let stderr = child.stderr.take().expect("stderr is piped");
    let name = program
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("child process");
    let read_stdout = async {
        let mut out = String::new();
        if let Some(mut pipe) = child.stdout.take() {
            // A read error ends the output early; the exit status says
            // whether the program succeeded.
            let _ = pipe.read_to_string(&mut out).await;
        }
        out
    };
    let (out, stderr_tail) = tokio::join!(read_stdout, collect_stderr_lines(stderr, name, on_line));
    let status = child.wait().await.map_err(spawn_failed)?;
    group.release();
    if status.success() {
        Ok(out)
    } else {
        Err(ProcessError::Exited {
            command,
            status,
            stderr_tail,
        })
    }
}

/// Whether this process runs as root (the server and `initdb` refuse it;
/// commands are then run as another user).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
