//! snapguard: safe PostgreSQL deploys.
//!
//! This crate is the library behind the `snapguard` binary. It takes
//! `pg_dump` snapshots into object storage, lists them, restores them by
//! swapping databases, and applies migrations, with every step checked
//! before anything changes.
//!
//! # Layout
//!
//! - [`cli`]: the command-line types (clap), nothing else.
//! - [`app`]: runs a parsed command line; maps failures to [`Error`].
//! - [`cancel`]: SIGINT / SIGTERM as a request to stop at a safe point.
//! - [`config`]: `snapguard.yml` + environment + flags → one validated `Config`.
//! - [`db`]: connections (TLS), server version, database-level administration.
//! - [`pgtools`]: finding `pg_dump` / `pg_restore` of the right major version.
//! - [`process`]: child processes, each leading a process group of its own; errors and stderr capture.
//! - [`random`]: short random suffixes for ids and temporary names.
//! - [`store`]: the object store seam; S3 and local-directory implementations.
//! - [`snapshot`]: ids, manifests, taking, listing, verifying and restoring snapshots.
//! - [`codec`]: compression and hashing of the archive stream, off the async threads.
//! - [`progress`]: byte counts and rates, as a bar or as periodic log lines.
//! - [`checks`]: verification queries (before, after, compare, built-in), read-only.
//! - [`migrate`]: the migration engine: folder formats, statement splitter, history, planning, applying, external migrators.
//! - [`logging`]: `tracing` output for terminals, CI logs and machines.
//! - [`init`]: `snapguard init`, the scaffold of a new project.
//! - [`ephemeral`]: a throwaway local PostgreSQL server.
//! - [`scratch`]: scratch space in `$TMPDIR`, its free room, and what killed runs left there.
//! - [`exit_codes`]: the documented process exit codes.

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
pub mod logging;
pub mod maintenance;
pub mod migrate;
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
pub mod store;

pub use error::Error;
