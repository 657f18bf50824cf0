//! snapguard: safe PostgreSQL deploys.
//!
//! This crate is the library behind the `snapguard` binary. It takes
//! `pg_dump` snapshots into object storage, lists them, restores them by
//! swapping databases, and applies migrations, with every step checked
//! before anything changes.
//!
//! # Layout
//!
//! Floors, each using only the floors below it (DESIGN section 8);
//! `tests/layering.rs` holds them as data and fails on an import that
//! climbs.
//!
//! Face and command runners:
//! - [`cli`]: the command-line types (clap), nothing else.
//! - [`app`]: turns a parsed command line into inputs, calls the pipeline or
//!   a step, prints; runs no SQL of its own.
//!
//! Pipeline:
//! - [`deploy`]: the deploy's preflight (also `plan`), steps, journal,
//!   rollback and `recover`.
//! - [`rehearse`]: the deploy's own pipeline on a scratch copy, its migrate
//!   step measured; the drill.
//!
//! Steps, one capability each:
//! - [`snapshot`]: ids, manifests, taking, listing, verifying and restoring
//!   snapshots; the local clone and the write guard.
//! - [`migrate`]: the migration engine: folder formats, history, planning,
//!   applying, external migrators.
//! - [`lint`]: lock and rewrite hazards in migrations, judged against the
//!   database's table sizes and the server's rules.
//! - [`notify`]: every deploy's and recovery's outcome, sent to `notify:`
//!   webhooks.
//! - [`checks`]: verification queries (before, after, compare, built-in),
//!   read-only.
//! - [`maintenance`]: the switches that take the application offline, in a
//!   deploy and by hand.
//! - [`release`]: the release hooks, the health check and the ledger of
//!   releases.
//! - [`prune`]: retention: what may be deleted, and deleting it.
//! - [`init`]: `snapguard init`, the scaffold of a new project.
//!
//! Report and outputs:
//! - [`report`]: the deploy's report (text, JSON, GitHub job summary) and
//!   `plan`'s output.
//! - [`ci`]: GitHub Actions and other CI: log groups, masks, outputs, the
//!   release id.
//! - [`logging`]: `tracing` output for terminals, CI logs and machines.
//! - [`exit_codes`]: the documented process exit codes.
//! - [`error`]: the top-level [`Error`] and its exit code.
//!
//! Configuration:
//! - [`config`]: `snapguard.yml` + environment + flags → one validated
//!   `Config`; it imports no step module.
//!
//! Infrastructure (plain values in, never config sections):
//! - [`db`]: connections (TLS), server version and the supported majors,
//!   database administration, what the connected role may do
//!   (`db::privileges`), the deploy lock, the database swap.
//! - [`store`]: the object store seam; S3 and local-directory implementations.
//! - [`codec`]: compression and hashing of the archive stream, off the async
//!   threads.
//! - [`pgtools`]: finding `pg_dump` / `pg_restore` / `psql` of the right
//!   major version, and what a newer client needs against an older server.
//! - [`process`]: child processes, each leading a process group of its own.
//! - [`shell`]: the user's shell commands (switches, hooks, external
//!   migrators) through `sh -c`, with a timeout.
//! - [`http`]: webhooks and health checks, with secrets redacted.
//! - [`sqlsplit`]: splitting SQL text into statements, as `psql` does.
//! - [`ephemeral`]: a throwaway local PostgreSQL server.
//! - [`scratch`]: scratch space in `$TMPDIR`, its free room, and what killed
//!   runs left there.
//! - [`progress`]: byte counts and rates, as a bar or as periodic log lines.
//! - [`stdout`]: the result channel, which a closed pipe ends quietly.
//! - [`cancel`]: SIGINT / SIGTERM as a request to stop at a safe point.
//! - [`random`]: short random suffixes for ids and temporary names.

pub mod app;
pub mod cancel;
pub mod checks;
pub mod ci;
pub mod cli;
pub mod codec;
pub mod config;
pub mod db;
pub mod deploy;
pub mod ephemeral;
pub mod error;
pub mod exit_codes;
pub mod http;
pub mod init;
pub mod lint;
pub mod logging;
pub mod maintenance;
pub mod migrate;
pub mod notify;
pub mod pgtools;
pub mod process;
pub mod progress;
pub mod prune;
pub mod random;
pub mod rehearse;
pub mod release;
pub mod report;
pub mod scratch;
pub mod shell;
pub mod snapshot;
pub mod sqlsplit;
pub mod stdout;
pub mod store;

pub use error::Error;
