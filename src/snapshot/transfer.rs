//! Moving archives out of the store: streamed download through the decoder
//! into a sink, and the table-of-contents check that proves an archive is
//! readable by `pg_restore`.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::codec::Compression;
use crate::codec::{self, CHANNEL_DEPTH, DecodeError, Decoded};
use crate::pgtools::Tool;
use crate::process::ProcessError;
use crate::process::group::GroupGuard;
use crate::progress::{Progress, Total};
use crate::store::{ObjectStore, StoreError};

/// Reading an archive back failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The download broke off.
    #[error("reading `{uri}` failed")]
    Read {
        /// The object.
        uri: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes do not decompress.
    #[error("`{uri}` is damaged")]
    Decode {
        /// The object.
        uri: String,
        /// The decoder's error.
        #[source]
        source: DecodeError,
    },
    /// Writing what was downloaded failed on this machine (a full disk, a
    /// reader that failed): the archive itself was not found damaged.
    #[error(
        "writing the archive read from `{uri}` on this machine failed; the archive itself was not found damaged"
    )]
    LocalWrite {
        /// The object.
        uri: String,
        /// The local error.
        #[source]
        source: std::io::Error,
    },
    /// What the store returned is not what was uploaded.
    #[error(
        "checksum mismatch for `{uri}`: the manifest records sha256 {expected} ({expected_bytes} bytes) but the store returned {actual} ({actual_bytes} bytes); the archive is corrupt or was replaced"
    )]
    ChecksumMismatch {
        /// The object.
        uri: String,
        /// From the manifest.
        expected: String,
        /// Computed from the download.
        actual: String,
        /// From the manifest.
        expected_bytes: u64,
        /// Downloaded.
        actual_bytes: u64,
    },
    /// `pg_restore -l` exited cleanly but printed no archive header.
    #[error("`pg_restore -l` does not list `{uri}` as a custom-format archive")]
    NotCustomFormat {
        /// The archive.
        uri: String,
    },
    /// `pg_restore -l` cannot read the archive.
    #[error("`pg_restore -l` cannot read the archive `{uri}`")]
    Toc {
        /// The archive.
        uri: String,
        /// How `pg_restore` failed.
        #[source]
        source: ProcessError,
    },
}

/// Streams `key` through the decoder into `sink`, with progress.
pub async fn download_decoded<W: Write + Send + 'static>(
    store: &impl ObjectStore,
    key: &str,
    compression: Compression,
    sink: W,
    progress: Option<Progress>,
) -> Result<Decoded, TransferError> {
    let uri = store.uri(key);
    let mut reader = store.open(key).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
    let decoder = codec::spawn_decoder(compression, rx, sink);
    let mut progress = progress;
    let mut read_error = None;
    let mut buf = BytesMut::new();
    loop {
        let chunk = match codec::next_chunk(&mut reader, &mut buf).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        };
        if let Some(p) = progress.as_mut() {
            p.add(chunk.len() as u64);
        }
        if tx.send(chunk).await.is_err() {
            break;
        }
    }
    drop(tx);
    if let Some(p) = progress {
        p.finish();
    }
    let decoded = decoder.await.expect("decoder thread panicked");
    if let Some(source) = read_error {
        return Err(TransferError::Read { uri, source });
    }
    decoded.map_err(|source| match source {
        DecodeError::Sink(source) => TransferError::LocalWrite { uri, source },
        source => TransferError::Decode { uri, source },
    })
}

/// Downloads `key`, decodes it into `sink` and checks the result against
/// the manifest's hash and size.
pub async fn download_verified<W: Write + Send + 'static>(
    store: &impl ObjectStore,
    manifest: &super::Manifest,
    sink: W,
) -> Result<Decoded, TransferError> {
    let uri = store.uri(&manifest.dump_key);
    let progress = Progress::start("download", Total::Exact(manifest.size_bytes));
    let mismatch = |actual: String, actual_bytes| TransferError::ChecksumMismatch {
        uri: uri.clone(),
        expected: manifest.sha256.clone(),
        actual,
        expected_bytes: manifest.size_bytes,
        actual_bytes,
    };
    match download_decoded(
        store,
        &manifest.dump_key,
        manifest.compression,
        sink,
        Some(progress),
    )
    .await
    {
        Ok(d) if d.sha256 != manifest.sha256 || d.stored_bytes != manifest.size_bytes => {
            Err(mismatch(d.sha256, d.stored_bytes))
        }
        // A damaged download with the wrong hash is reported as a mismatch:
        // that is the cause, the decoder's complaint only a symptom.
        Err(TransferError::Decode {
            source: DecodeError::Corrupt { sha256, .. },
            ..
        }) if sha256 != manifest.sha256 => Err(mismatch(sha256, 0)),
        other => other,
    }
}

/// Reads the table of contents of the stored archive `key` with
/// `pg_restore -l`, downloading only as much as `pg_restore` reads, and
/// returns the number of entries.
pub async fn list_toc(
    store: &impl ObjectStore,
    key: &str,
    compression: Compression,
    pg_restore: &Tool,
) -> Result<usize, TransferError> {
    let uri = store.uri(key);
    let command = format!("{} -l", pg_restore.path.display());
    let mut child = Command::new(&pg_restore.path)
        .arg("-l")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| toc_spawn_failed(&uri, &command, source))?;
    let group = GroupGuard::track(Some(child.id()), &command);
    let stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let transfer = download_decoded(store, key, compression, stdin, None).await;
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("wait thread panicked");
    group.release();
    let listing = out_reader.join().unwrap_or_default();
    let errors = err_reader.join().unwrap_or_default();
    let status = status.map_err(|source| toc_spawn_failed(&uri, &command, source))?;
    if !status.success() {
        return Err(toc_exited(uri, command, status, &errors));
    }
    transfer?;
    count_entries(&listing).ok_or(TransferError::NotCustomFormat { uri })
}

/// Runs `pg_restore -l` on a local archive and returns the number of entries.
pub async fn list_toc_file(path: &Path, pg_restore: &Tool) -> Result<usize, TransferError> {
    let uri = path.display().to_string();
    let command = format!("{} -l {uri}", pg_restore.path.display());
    let out = tokio::process::Command::new(&pg_restore.path)
        .arg("-l")
        .arg(path)
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| toc_spawn_failed(&uri, &command, source))?;
    if !out.status.success() {
        return Err(toc_exited(
            uri,
            command,
            out.status,
            &String::from_utf8_lossy(&out.stderr),
        ));
    }
    count_entries(&String::from_utf8_lossy(&out.stdout))
        .ok_or(TransferError::NotCustomFormat { uri })
}

fn toc_spawn_failed(uri: &str, command: &str, source: std::io::Error) -> TransferError {
    TransferError::Toc {
        uri: uri.to_owned(),
        source: ProcessError::Spawn {
            command: command.to_owned(),
            source,
        },
    }
}

fn toc_exited(
    uri: String,
    command: String,
    status: std::process::ExitStatus,
    stderr: &str,
) -> TransferError {
    TransferError::Toc {
        uri,
        source: ProcessError::Exited {
            command,
            status,
            stderr_tail: stderr.trim().to_owned(),
        },
    }
}

/// The number of entries in a `pg_restore -l` listing, or `None` when the
/// listing lacks the archive header. An empty database has no entries at
/// all, so the header is what proves the archive was read.
fn count_entries(listing: &str) -> Option<usize> {
    if !listing.lines().any(|l| {
        l.trim_start_matches([';', ' '])
            .starts_with("Format: CUSTOM")
    }) {
        return None;
    }
    Some(
        listing
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
            .count(),
    )
}

#[cfg(test)]
mod tests {
    use super::count_entries;

    #[test]
    fn a_listing_needs_the_archive_header() {
        let empty_db = ";\n; Archive created at 2026-11-21 06:25:44 UTC\n;     dbname: postgres\n;     Format: CUSTOM\n;\n;\n; Selected TOC Entries:\n;\n";
        assert_eq!(count_entries(empty_db), Some(0));
        let with_table = format!("{empty_db}215; 1259 16385 TABLE public users postgres\n");
        assert_eq!(count_entries(&with_table), Some(1));
        assert_eq!(count_entries(""), None);
    }
}
