//! Object storage for snapshots, journals and reports.
//!
//! [`ObjectStore`] is the seam: S3 (and S3-compatible servers) in [`s3`], a
//! local directory in [`fs`]. Keys are relative to the configured prefix, for
//! example `snapshots/<id>/manifest.json` (DESIGN section 5). Large objects go
//! through [`ObjectUpload`], which streams: nothing holds a whole dump in
//! memory.

pub mod fs;
pub mod s3;

use std::path::{Path, PathBuf};
use std::pin::Pin;

use bytes::Bytes;
use tokio::io::AsyncRead;

/// Where the store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// `s3://bucket/prefix`.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix, without leading or trailing `/` (may be empty).
        prefix: String,
    },
    /// `file:///path`: a local directory.
    Fs {
        /// The directory.
        root: PathBuf,
    },
}

impl StoreLocation {
    /// Parses `s3://bucket/prefix` or `file:///path` (`file://./rel` is
    /// relative to `base_dir`, the config file's directory).
    pub fn parse(url: &str, base_dir: &Path) -> Result<Self, String> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err("an S3 URL needs a bucket: `s3://bucket/prefix`".into());
            }
            Ok(StoreLocation::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            })
        } else if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err("a file URL needs a path: `file:///var/backups/snapguard`".into());
            }
            Ok(StoreLocation::Fs {
                root: base_dir.join(path),
            })
        } else {
            Err(format!(
                "`{url}` is not a store URL; expected `s3://bucket/prefix` or `file:///path`"
            ))
        }
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            StoreLocation::Fs { root } => write!(f, "file://{}", root.display()),
        }
    }
}

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("`{uri}` does not exist")]
    NotFound {
        /// The object.
        uri: String,
    },
    /// The bucket does not exist.
    #[error("bucket `{bucket}` does not exist (or is not visible with these credentials)")]
    NoSuchBucket {
        /// The bucket.
        bucket: String,
    },
    /// The credentials were refused.
    #[error(
        "{op} `{uri}`: access denied ({code}); check the AWS credentials and the bucket policy"
    )]
    AccessDenied {
        /// What was being done.
        op: &'static str,
        /// The object or bucket.
        uri: String,
        /// The service's error code, for example `InvalidAccessKeyId`.
        code: String,
    },
    /// No source in the AWS credential chain had credentials.
    #[error(
        "{op} `{uri}`: no AWS credentials found; tried the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), \
         AWS_PROFILE and the shared files (~/.aws/config, ~/.aws/credentials), web identity \
         (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN), the ECS container endpoint and the EC2 instance metadata. \
         Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or assume a role (in GitHub Actions: \
         aws-actions/configure-aws-credentials)"
    )]
    NoCredentials {
        /// What was being done.
        op: &'static str,
        /// The object or bucket.
        uri: String,
    },
    /// The store could not be reached or answered with an error.
    #[error("{op} `{uri}` failed")]
    Request {
        /// What was being done.
        op: &'static str,
        /// The object or bucket.
        uri: String,
        /// The SDK's error, with its chain.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A local file operation failed.
    #[error("{op} `{}` failed", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The object's size after upload is not what was written.
    #[error("`{uri}` holds {stored} bytes after upload, but {written} were written")]
    SizeMismatch {
        /// The object.
        uri: String,
        /// Bytes written.
        written: u64,
        /// Bytes stored.
        stored: u64,
    },
}

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key, relative to the prefix.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// An upload that was started and never finished nor aborted: S3
/// multipart parts (billed, invisible to listings) or a partial file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IncompleteUpload {
    /// The key it was for, relative to the prefix.
    pub key: String,
    /// The S3 upload id, or the partial file's path.
    pub id: String,
    /// When it was started (S3) or last written (a file).
    pub initiated: Option<chrono::DateTime<chrono::Utc>>,
}

/// A byte stream read from the store.
pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

/// The object store seam.
pub trait ObjectStore: Send + Sync {
    /// The streaming upload this store hands out.
    type Upload: ObjectUpload;

    /// The full address of `key`, for messages and manifests.
    fn uri(&self, key: &str) -> String;

    /// Writes and deletes a small probe object, proving the store is
    /// reachable, the credentials work and the prefix is writable.
    fn check_writable(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a small object whole (manifests, journals).
    fn put(&self, key: &str, body: Bytes) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reads a small object whole.
    fn get(&self, key: &str) -> impl Future<Output = Result<Bytes, StoreError>> + Send;

    /// Opens an object for streaming.
    fn open(&self, key: &str) -> impl Future<Output = Result<ObjectReader, StoreError>> + Send;

    /// The size of an object, or `None` if it does not exist.
    fn size(&self, key: &str) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// Lists every object whose key starts with `prefix`.
    fn list(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<ObjectMeta>, StoreError>> + Send;

    /// Deletes an object; deleting a missing object is not an error.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Starts a streaming upload to `key`. Nothing is visible at `key` until
    /// [`ObjectUpload::finish`] succeeds.
    fn upload(&self, key: &str) -> impl Future<Output = Result<Self::Upload, StoreError>> + Send;

    /// Uploads under `prefix` that a killed process or a store outage left
    /// unfinished.
    fn incomplete_uploads(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<IncompleteUpload>, StoreError>> + Send;

    /// Discards one of them.
    fn abort_incomplete(
        &self,
        upload: &IncompleteUpload,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A streaming upload in progress.
///
/// Dropping it without calling [`finish`](ObjectUpload::finish) or
/// [`abort`](ObjectUpload::abort) aborts it in the background, so a cancelled
/// snapshot leaves no orphan parts.
pub trait ObjectUpload: Send {
    /// Appends bytes.
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Makes the object visible; returns its size.
    fn finish(self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Discards everything written.
    fn abort(self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Server-side encryption for S3 objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sse {
    /// SSE-S3 (`AES256`).
    Aes256,
    /// SSE-KMS with an optional key id (the bucket's default key otherwise).
    Kms {
        /// `store.kms_key_id`.
        key_id: Option<String>,
    },
}

/// How to reach an S3-compatible store: the `store.*` keys besides the URL,
/// as plain values.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// `store.endpoint`: an S3-compatible endpoint instead of AWS.
    pub endpoint: Option<String>,
    /// `store.region`: the S3 region; the AWS chain decides when unset.
    pub region: Option<String>,
    /// `store.path_style`: path-style addressing, needed by most
    /// S3-compatible servers.
    pub path_style: bool,
    /// `store.sse`: server-side encryption.
    pub sse: Option<Sse>,
    /// `store.part_size`: the first multipart part size in bytes; it grows
    /// so that 10,000 parts cover any object.
    pub part_size: u64,
}

/// The default first part size: 8 MiB, so 10,000 growing parts cover 5 TiB.
pub const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;
/// S3 refuses parts smaller than 5 MiB (except the last).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// The configured store: one of the implementations, chosen by URL.
pub enum Store {
    /// S3 or S3-compatible.
    S3(s3::S3Store),
    /// A local directory.
    Fs(fs::FsStore),
}

impl Store {
    /// Builds the store `config` names. For S3 this resolves credentials
    /// through the standard AWS chain (environment, profile, web identity /
    /// OIDC, container and instance roles) but makes no request yet.
    pub async fn open(location: &StoreLocation, options: &S3Options) -> Store {
        match location {
            StoreLocation::S3 { bucket, prefix } => {
                Store::S3(s3::S3Store::new(bucket, prefix, options).await)
            }
            StoreLocation::Fs { root } => Store::Fs(fs::FsStore::new(root.clone())),
        }
    }
}

/// The upload of whichever store is configured.
pub enum Upload {
    /// An S3 multipart upload.
    S3(s3::S3Upload),
    /// A temporary file renamed into place.
    Fs(fs::FsUpload),
}

impl ObjectStore for Store {
    type Upload = Upload;

    fn uri(&self, key: &str) -> String {
        match self {
            Store::S3(s) => s.uri(key),
            Store::Fs(s) => s.uri(key),
        }
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        match self {
            Store::S3(s) => s.check_writable().await,
            Store::Fs(s) => s.check_writable().await,
        }
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        match self {
            Store::S3(s) => s.put(key, body).await,
            Store::Fs(s) => s.put(key, body).await,
        }
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        match self {
            Store::S3(s) => s.get(key).await,
            Store::Fs(s) => s.get(key).await,
        }
    }

    async fn open(&self, key: &str) -> Result<ObjectReader, StoreError> {
        match self {
            Store::S3(s) => s.open(key).await,
            Store::Fs(s) => s.open(key).await,
        }
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match self {
            Store::S3(s) => s.size(key).await,
            Store::Fs(s) => s.size(key).await,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        match self {
            Store::S3(s) => s.list(prefix).await,
            Store::Fs(s) => s.list(prefix).await,
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Store::S3(s) => s.delete(key).await,
            Store::Fs(s) => s.delete(key).await,
        }
    }

    async fn incomplete_uploads(&self, prefix: &str) -> Result<Vec<IncompleteUpload>, StoreError> {
        match self {
            Store::S3(s) => s.incomplete_uploads(prefix).await,
            Store::Fs(s) => s.incomplete_uploads(prefix).await,
        }
    }

    async fn abort_incomplete(&self, upload: &IncompleteUpload) -> Result<(), StoreError> {
        match self {
            Store::S3(s) => s.abort_incomplete(upload).await,
            Store::Fs(s) => s.abort_incomplete(upload).await,
        }
    }

    async fn upload(&self, key: &str) -> Result<Upload, StoreError> {
        Ok(match self {
            Store::S3(s) => Upload::S3(s.upload(key).await?),
            Store::Fs(s) => Upload::Fs(s.upload(key).await?),
        })
    }
}

impl ObjectUpload for Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        match self {
            Upload::S3(u) => u.write(chunk).await,
            Upload::Fs(u) => u.write(chunk).await,
        }
    }

    async fn finish(self) -> Result<u64, StoreError> {
        match self {
            Upload::S3(u) => u.finish().await,
            Upload::Fs(u) => u.finish().await,
        }
    }

    async fn abort(self) -> Result<(), StoreError> {
        match self {
            Upload::S3(u) => u.abort().await,
            Upload::Fs(u) => u.abort().await,
        }
    }
}

/// The most parts S3 accepts in one multipart upload.
pub const MAX_PARTS: u32 = 10_000;

/// The size of part `n` (1-based) when the first part is `first`: the size
/// doubles every 1,000 parts, so 10,000 parts starting at 8 MiB hold about
/// 8 TB, more than S3's 5 TiB object limit, while small dumps keep small
/// parts (and small buffers). Capped at S3's 5 GiB part limit.
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html>
pub fn part_size(first: u64, n: u32) -> u64 {
    let doublings = (n.saturating_sub(1) / 1_000).min(20);
    (first << doublings).min(5 << 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_so_ten_thousand_cover_five_tib() {
        let first = DEFAULT_PART_SIZE;
        assert_eq!(part_size(first, 1), first);
        assert_eq!(part_size(first, 1000), first);
        assert_eq!(part_size(first, 1001), 2 * first);
        let total: u64 = (1..=MAX_PARTS).map(|n| part_size(first, n)).sum();
        assert!(total >= 5 << 40, "10,000 parts hold only {total} bytes");
        assert!((1..=MAX_PARTS).all(|n| part_size(first, n) <= 5 << 30));
    }

    #[test]
    fn locations_parse() {
        let base = Path::new("/etc/app");
        assert_eq!(
            StoreLocation::parse("s3://b/a/b/", base).unwrap(),
            StoreLocation::S3 {
                bucket: "b".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            StoreLocation::parse("file:///srv/x", base).unwrap(),
            StoreLocation::Fs {
                root: "/srv/x".into()
            }
        );
        assert_eq!(
            StoreLocation::parse("file://./x", base).unwrap(),
            StoreLocation::Fs {
                root: "/etc/app/./x".into()
            }
        );
        assert!(StoreLocation::parse("s3:///x", base).is_err());
        assert!(StoreLocation::parse("gs://x", base).is_err());
    }
}
