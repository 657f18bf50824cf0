//! Compression and hashing of the archive stream.
//!
//! Both run on blocking threads (CPU work stays off the async workers) and
//! talk to the async side through bounded channels, so memory stays at a few
//! chunks whatever the dump's size. The SHA-256 is always of the *stored*
//! (compressed) bytes: it is what a download must reproduce.

use std::io::{self, Write};

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How the archive is compressed in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// zstd frames (`zstd -d` reads them).
    Zstd,
    /// gzip (`gunzip` reads it).
    Gzip,
    /// The custom-format archive as `pg_dump -Z0` writes it.
    None,
}

impl Compression {
    /// The default level for this algorithm.
    pub fn default_level(self) -> i32 {
        match self {
            Compression::Zstd => 1,
            Compression::Gzip => 1,
            Compression::None => 0,
        }
    }

    /// The levels this algorithm accepts.
    pub fn valid_levels(self) -> std::ops::RangeInclusive<i32> {
        match self {
            Compression::Zstd => 1..=19,
            Compression::Gzip => 1..=9,
            Compression::None => 0..=0,
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        })
    }
}

/// The size of the chunks passed between stages.
pub const CHUNK: usize = 1024 * 1024;

/// How many chunks may wait in each channel.
pub const CHANNEL_DEPTH: usize = 8;

/// Reads the next chunk of up to [`CHUNK`] bytes from `reader`, or `None` at
/// the end. A pipe yields at most 64 KiB per read; gathering them into
/// `buf` (which is reused and never zero-filled) keeps the per-chunk costs
/// of the stages after it low.
pub async fn next_chunk<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> io::Result<Option<Bytes>> {
    buf.reserve(CHUNK.saturating_sub(buf.capacity()));
    while buf.len() < CHUNK {
        if reader.read_buf(buf).await? == 0 {
            break;
        }
    }
    Ok((!buf.is_empty()).then(|| buf.split().freeze()))
}

/// What an encoder produced.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// SHA-256 of the stored bytes, lowercase hex.
    pub sha256: String,
    /// Bytes after compression.
    pub stored_bytes: u64,
    /// Bytes before compression.
    pub raw_bytes: u64,
}

/// What a decoder consumed and produced.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// SHA-256 of the stored bytes that came in, lowercase hex.
    pub sha256: String,
    /// Bytes that came in.
    pub stored_bytes: u64,
    /// Bytes written out after decompression.
    pub raw_bytes: u64,
    /// The sink stopped accepting data before the end (a reader such as
    /// `pg_restore -l` that needs only the head of the archive).
    pub sink_closed: bool,
}

/// Decoding failed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The stored bytes are not valid for the compression.
    #[error("the archive does not decompress as {compression}")]
    Corrupt {
        /// The compression tried.
        compression: Compression,
        /// The hash of everything that came in, so the caller can tell a
        /// checksum mismatch from a corrupt upload.
        sha256: String,
        /// The decompressor's error.
        #[source]
        source: io::Error,
    },
    /// Writing the decompressed bytes failed.
    #[error("writing the decompressed archive failed")]
    Sink(#[source] io::Error),
}

/// Forwards everything written to it as hashed, counted chunks on a channel.
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    hasher: Sha256,
    count: u64,
}

impl ChannelWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.hasher.update(&chunk);
        self.count += chunk.len() as u64;
        self.tx
            .blocking_send(Bytes::from(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped reading"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

enum Encoder<W: Write> {
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Gzip(flate2::write::GzEncoder<W>),
    None(W),
}

impl<W: Write> Encoder<W> {
    fn new(compression: Compression, level: i32, inner: W) -> io::Result<Self> {
        Ok(match compression {
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(inner, level)?),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                inner,
                flate2::Compression::new(level as u32),
            )),
            Compression::None => Encoder::None(inner),
        })
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Zstd(e) => e.write_all(data),
            Encoder::Gzip(e) => e.write_all(data),
            Encoder::None(w) => w.write_all(data),
        }
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Zstd(e) => e.finish(),
            Encoder::Gzip(e) => e.finish(),
            Encoder::None(w) => Ok(w),
        }
    }
}

/// Starts a thread that compresses the chunks from `input`, hashes the
/// result and sends it on `output` in [`CHUNK`]-sized pieces. It ends when
/// `input` closes (returning the totals) or `output` is dropped (an error).
pub fn spawn_encoder(
    compression: Compression,
    level: i32,
    mut input: mpsc::Receiver<Bytes>,
    output: mpsc::Sender<Bytes>,
) -> JoinHandle<io::Result<Encoded>> {
    tokio::task::spawn_blocking(move || {
        let sink = ChannelWriter {
            tx: output,
            buf: Vec::with_capacity(CHUNK),
            hasher: Sha256::new(),
            count: 0,
        };
        let mut encoder = Encoder::new(compression, level, sink)?;
        let mut raw_bytes = 0u64;
        while let Some(chunk) = input.blocking_recv() {
            raw_bytes += chunk.len() as u64;
            encoder.write_all(&chunk)?;
        }
        let mut sink = encoder.finish()?;
        sink.flush()?;
        Ok(Encoded {
            sha256: hex::encode(sink.hasher.finalize()),
            stored_bytes: sink.count,
            raw_bytes,
        })
    })
}

enum Decoder<W: Write> {
    Zstd(zstd::stream::write::Decoder<'static, W>),
    Gzip(flate2::write::GzDecoder<W>),
    None(W),
}

impl<W: Write> Decoder<W> {
    fn new(compression: Compression, inner: W) -> io::Result<Self> {
        Ok(match compression {
            Compression::Zstd => Decoder::Zstd(zstd::stream::write::Decoder::new(inner)?),
            Compression::Gzip => Decoder::Gzip(flate2::write::GzDecoder::new(inner)),
            Compression::None => Decoder::None(inner),
        })
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Decoder::Zstd(d) => d.write_all(data),
            Decoder::Gzip(d) => d.write_all(data),
            Decoder::None(w) => w.write_all(data),
        }
    }

    /// Flushes what the decompressor still holds into the sink, keeping
    /// the decoder, so that a failure can still be traced to the sink.
    fn try_finish(&mut self) -> io::Result<()> {
        match self {
            Decoder::Zstd(d) => d.flush()?,
            Decoder::Gzip(d) => d.try_finish()?,
            Decoder::None(_) => {}
        }
        match self {
            Decoder::Zstd(d) => d.get_mut().flush(),
            Decoder::Gzip(d) => d.get_mut().flush(),
            Decoder::None(w) => w.flush(),
        }
    }

    fn sink(&self) -> &W {
        match self {
            Decoder::Zstd(d) => d.get_ref(),
            Decoder::Gzip(d) => d.get_ref(),
            Decoder::None(w) => w,
        }
    }
}

/// The decoder's view of the real sink: counts what is written, and marks
/// the sink's own failures so they can be told from bad input (`Sink` vs
/// `Corrupt`), since a decompressor reports both as `io::Error`.
struct Sink<W> {
    inner: W,
    count: u64,
    failed: Option<io::ErrorKind>,
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self
            .inner
            .write(data)
            .inspect_err(|e| self.failed = Some(e.kind()))?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner
            .flush()
            .inspect_err(|e| self.failed = Some(e.kind()))
    }
}

/// Starts a thread that hashes the stored chunks from `input`, decompresses
/// them and writes the result to `sink`. If the sink closes early (broken
/// pipe) the rest of the input is discarded and `sink_closed` is set.
pub fn spawn_decoder<W: Write + Send + 'static>(
    compression: Compression,
    mut input: mpsc::Receiver<Bytes>,
    sink: W,
) -> JoinHandle<Result<Decoded, DecodeError>> {
    tokio::task::spawn_blocking(move || {
        let mut hasher = Sha256::new();
        let mut stored_bytes = 0u64;
        let sink = Sink {
            inner: sink,
            count: 0,
            failed: None,
        };
        let mut decoder = Decoder::new(compression, sink).map_err(DecodeError::Sink)?;
        let mut failure: Option<io::Error> = None;
        while let Some(chunk) = input.blocking_recv() {
            hasher.update(&chunk);
            stored_bytes += chunk.len() as u64;
            if failure.is_none()
                && let Err(e) = decoder.write_all(&chunk)
            {
                failure = Some(e);
                if decoder_sink_failure(&decoder) == Some(io::ErrorKind::BrokenPipe) {
                    // The reader has what it wanted; stop the download.
                    break;
                }
            }
            // After bad input, keep hashing the rest: a checksum mismatch
            // explains a decompression error and is reported instead.
        }
        // The last bytes leave the decompressor only here; a reader that
        // closed its end after taking what it needed (`pg_restore -l` stops
        // after the table of contents) shows up now as a broken pipe, which
        // is not damage.
        if failure.is_none()
            && let Err(e) = decoder.try_finish()
        {
            failure = Some(e);
        }
        let sink = decoder.sink();
        let (raw_bytes, sink_failed) = (sink.count, sink.failed);
        let sha256 = hex::encode(hasher.finalize());
        match (failure, sink_failed) {
            (None, _) => Ok(Decoded {
                sha256,
                stored_bytes,
                raw_bytes,
                sink_closed: false,
            }),
            (Some(_), Some(io::ErrorKind::BrokenPipe)) => Ok(Decoded {
                sha256,
                stored_bytes,
                raw_bytes,
                sink_closed: true,
            }),
            (Some(e), Some(_)) => Err(DecodeError::Sink(e)),
            (Some(source), None) => Err(DecodeError::Corrupt {
                compression,
                sha256,
                source,
            }),
        }
    })
}

fn decoder_sink_failure<W: Write>(decoder: &Decoder<Sink<W>>) -> Option<io::ErrorKind> {
    decoder.sink().failed
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip(compression: Compression, data: Vec<u8>) -> (Encoded, Decoded, Vec<u8>) {
        let (raw_tx, raw_rx) = mpsc::channel(CHANNEL_DEPTH);
        let (out_tx, mut out_rx) = mpsc::channel(CHANNEL_DEPTH);
        let encoder = spawn_encoder(compression, compression.default_level(), raw_rx, out_tx);
        let feed = tokio::spawn(async move {
            for piece in data.chunks(300_000) {
                raw_tx.send(Bytes::copy_from_slice(piece)).await.unwrap();
            }
        });
        let mut stored = Vec::new();
        while let Some(c) = out_rx.recv().await {
            stored.extend_from_slice(&c);
        }
        feed.await.unwrap();
        let encoded = encoder.await.unwrap().unwrap();
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let decoder = spawn_decoder(compression, rx, Vec::new());
        for piece in stored.chunks(70_000) {
            tx.send(Bytes::copy_from_slice(piece)).await.unwrap();
        }
        drop(tx);
        let decoded = decoder.await.unwrap().unwrap();
        (encoded, decoded, stored)
    }

    #[tokio::test]
    async fn every_compression_round_trips_with_matching_hashes() {
        let data: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 7919) as u8)
            .collect();
        for c in [Compression::Zstd, Compression::Gzip, Compression::None] {
            let (enc, dec, stored) = round_trip(c, data.clone()).await;
            assert_eq!(enc.raw_bytes, data.len() as u64);
            assert_eq!(enc.stored_bytes, stored.len() as u64);
            assert_eq!(enc.sha256, dec.sha256, "{c}");
            assert_eq!(dec.raw_bytes, data.len() as u64, "{c}");
            if c != Compression::None {
                assert!(enc.stored_bytes < enc.raw_bytes, "{c} did not compress");
            }
        }
    }

    #[tokio::test]
    async fn chunks_are_gathered_to_full_size() {
        let data = vec![7u8; 2 * CHUNK + 5];
        let mut reader = &data[..];
        let mut buf = BytesMut::new();
        let mut sizes = Vec::new();
        while let Some(chunk) = next_chunk(&mut reader, &mut buf).await.unwrap() {
            sizes.push(chunk.len());
        }
        assert_eq!(sizes, vec![CHUNK, CHUNK, 5]);
    }

    #[tokio::test]
    async fn garbage_is_reported_as_corrupt_with_its_hash() {
        let (tx, rx) = mpsc::channel(2);
        let decoder = spawn_decoder(Compression::Zstd, rx, Vec::new());
        tx.send(Bytes::from_static(b"this is not zstd at all"))
            .await
            .unwrap();
        drop(tx);
        let err = decoder.await.unwrap().unwrap_err();
        assert!(
            matches!(err, DecodeError::Corrupt { ref sha256, .. } if sha256.len() == 64),
            "{err}"
        );
    }

    /// Takes `room` bytes, then fails every write with `kind`, as a pipe
    /// whose reader has gone or a full disk does.
    struct Limited {
        room: usize,
        kind: io::ErrorKind,
    }

    impl Write for Limited {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from(self.kind));
            }
            let n = data.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    async fn decode_into(
        compression: Compression,
        data: &[u8],
        sink: Limited,
    ) -> Result<Decoded, DecodeError> {
        let (raw_tx, raw_rx) = mpsc::channel(CHANNEL_DEPTH);
        let (out_tx, mut out_rx) = mpsc::channel(CHANNEL_DEPTH);
        let encoder = spawn_encoder(compression, compression.default_level(), raw_rx, out_tx);
        raw_tx.send(Bytes::copy_from_slice(data)).await.unwrap();
        drop(raw_tx);
        let mut stored = Vec::new();
        while let Some(c) = out_rx.recv().await {
            stored.extend_from_slice(&c);
        }
        encoder.await.unwrap().unwrap();
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let decoder = spawn_decoder(compression, rx, sink);
        for piece in stored.chunks(65_536) {
            if tx.send(Bytes::copy_from_slice(piece)).await.is_err() {
                break;
            }
        }
        drop(tx);
        decoder.await.unwrap()
    }

    #[tokio::test]
    async fn a_reader_that_stops_early_is_not_corruption_at_any_size() {
        // The decompressor holds the tail of small archives until the end,
        // so a reader that closes after the head used to be reported as
        // damage exactly for archives of a new app's size.
        for c in [Compression::Zstd, Compression::Gzip, Compression::None] {
            for size in [
                0usize, 1, 4_000, 70_000, 85_000, 100_000, 300_000, 2_500_000,
            ] {
                let data: Vec<u8> = (0..size)
                    .map(|i| (i % 253) as u8 ^ (i / 4099) as u8)
                    .collect();
                for room in [0usize, 1_000, size / 2] {
                    let sink = Limited {
                        room,
                        kind: io::ErrorKind::BrokenPipe,
                    };
                    let decoded = decode_into(c, &data, sink).await;
                    match decoded {
                        Ok(d) => {
                            assert!(d.sink_closed || room >= size, "{c} size {size} room {room}")
                        }
                        Err(e) => panic!("{c} size {size} room {room}: {e}"),
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn a_full_disk_is_a_sink_error_not_corruption() {
        let data = vec![42u8; 500_000];
        for c in [Compression::Zstd, Compression::Gzip, Compression::None] {
            let sink = Limited {
                room: 10_000,
                kind: io::ErrorKind::StorageFull,
            };
            let err = decode_into(c, &data, sink).await.unwrap_err();
            assert!(
                matches!(err, DecodeError::Sink(ref e) if e.kind() == io::ErrorKind::StorageFull),
                "{c}: {err:?}"
            );
        }
    }
}
