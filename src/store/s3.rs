//! S3 and S3-compatible stores through `aws-sdk-s3`.
//!
//! Uploads are multipart and streaming: parts are cut from the incoming
//! bytes, up to [`MAX_IN_FLIGHT`] are sent at once, and the part size grows
//! with [`super::part_size`] so 10,000 parts cover any dump. A failed or
//! dropped upload is aborted so no orphan parts are billed. Transient errors
//! are retried by the SDK's standard retry strategy.
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html>

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use bytes::{Bytes, BytesMut};
use tokio::task::JoinSet;

use super::{
    IncompleteUpload, MAX_PARTS, ObjectMeta, ObjectReader, ObjectStore, ObjectUpload, StoreError,
    part_size,
};
use super::{S3Options, Sse};

/// Parts uploaded concurrently; with 8 MiB parts this bounds the upload's
/// buffers to about 40 MiB.
const MAX_IN_FLIGHT: usize = 4;

/// The AWS SDKs' shared configuration: the standard credential chain,
/// and `region` if given, else the environment's (`AWS_REGION`, the
/// profile), else `us-east-1`. The store's client and `snapshot.provider:
/// rds`'s are built from it.
pub async fn aws_shared_config(region: Option<String>) -> aws_config::SdkConfig {
    let region = RegionProviderChain::first_try(region.map(Region::new))
        .or_default_provider()
        .or_else(Region::new("us-east-1"));
    aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .load()
        .await
}

/// A bucket and prefix on S3 or an S3-compatible server.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    sse: Option<Sse>,
    first_part_size: u64,
}

impl S3Store {
    /// Builds a client with the standard credential chain.
    pub async fn new(bucket: &str, prefix: &str, config: &S3Options) -> Self {
        let shared = aws_shared_config(config.region.clone()).await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .build(),
            )
            .force_path_style(config.path_style);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        S3Store {
            client: Client::from_conf(builder.build()),
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            sse: config.sse.clone(),
            first_part_size: config.part_size,
        }
    }

    fn key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    fn classify<E>(
        &self,
        op: &'static str,
        key: &str,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        classify(op, &self.bucket, self.uri(key), err)
    }
}

fn classify<E>(
    op: &'static str,
    bucket: &str,
    uri: String,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    match (err.code(), status) {
        (Some("NoSuchBucket"), _) => StoreError::NoSuchBucket {
            bucket: bucket.to_owned(),
        },
        (Some("NoSuchKey" | "NotFound"), _) | (None, Some(404)) => StoreError::NotFound { uri },
        (
            Some(
                code @ ("AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"
                | "Forbidden"),
            ),
            _,
        ) => StoreError::AccessDenied {
            op,
            uri,
            code: code.to_owned(),
        },
        (None, Some(403)) => StoreError::AccessDenied {
            op,
            uri,
            code: "403 Forbidden".into(),
        },
        _ if no_credentials(&err) => {
            // The chain's own account (each provider's failure) is long and
            // says nothing the one line does not; kept for `-v`.
            tracing::debug!(error = ?err, "the AWS credential chain found nothing");
            StoreError::NoCredentials { op, uri }
        }
        _ => StoreError::Request {
            op,
            uri,
            source: Box::new(err),
        },
    }
}

/// Whether the request failed because the credential chain had nothing:
/// a [`CredentialsError`] anywhere in the error's chain.
///
/// [`CredentialsError`]: aws_credential_types::provider::error::CredentialsError
fn no_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some()
        {
            return true;
        }
        next = e.source();
    }
    false
}

impl ObjectStore for S3Store {
    type Upload = S3Upload;

    fn uri(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(key))
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        // HeadBucket tells a missing bucket apart clearly. A policy that
        // allows object writes but not `s3:ListBucket` answers 403 here; the
        // probe write below is the real test then.
        if let Err(e) = self.client.head_bucket().bucket(&self.bucket).send().await {
            match self.classify("checking the bucket of", "", e) {
                StoreError::NotFound { .. } | StoreError::NoSuchBucket { .. } => {
                    return Err(StoreError::NoSuchBucket {
                        bucket: self.bucket.clone(),
                    });
                }
                StoreError::AccessDenied { .. } => {}
                other => return Err(other),
            }
        }
        let key = format!(".snapguard-probe-{}", crate::random::hex4());
        self.put(&key, Bytes::from_static(b"snapguard")).await?;
        self.delete(&key).await
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        let (sse, kms) = sse_params(&self.sse);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .body(ByteStream::from(body))
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .send()
            .await
            .map_err(|e| self.classify("writing", key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
            .map_err(|e| self.classify("reading", key, e))?;
        let body = out.body.collect().await.map_err(|e| StoreError::Request {
            op: "reading",
            uri: self.uri(key),
            source: Box::new(e),
        })?;
        Ok(body.into_bytes())
    }

    async fn open(&self, key: &str) -> Result<ObjectReader, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
            .map_err(|e| self.classify("reading", key, e))?;
        Ok(Box::pin(out.body.into_async_read()))
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => match self.classify("reading metadata of", key, e) {
                StoreError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let full = self.key(prefix);
        let strip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.classify("listing", prefix, e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                out.push(ObjectMeta {
                    key: key.get(strip..).unwrap_or(key).to_owned(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                });
            }
        }
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
            .map_err(|e| self.classify("deleting", key, e))?;
        Ok(())
    }

    async fn incomplete_uploads(&self, prefix: &str) -> Result<Vec<IncompleteUpload>, StoreError> {
        let full = self.key(prefix);
        let strip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&full)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| self.classify("listing incomplete uploads under", prefix, e))?;
            for u in page.uploads() {
                let (Some(key), Some(id)) = (u.key(), u.upload_id()) else {
                    continue;
                };
                out.push(IncompleteUpload {
                    key: key.get(strip..).unwrap_or(key).to_owned(),
                    id: id.to_owned(),
                    initiated: u
                        .initiated()
                        .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
                });
            }
            if !page.is_truncated().unwrap_or(false) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                break;
            }
        }
        Ok(out)
    }

    async fn abort_incomplete(&self, upload: &IncompleteUpload) -> Result<(), StoreError> {
        abort_upload(self, &upload.key, &upload.id).await
    }

    async fn upload(&self, key: &str) -> Result<S3Upload, StoreError> {
        Ok(S3Upload {
            store: self.clone(),
            key: key.to_owned(),
            buf: BytesMut::with_capacity(self.first_part_size as usize),
            upload_id: None,
            next_part: 1,
            in_flight: JoinSet::new(),
            done: Vec::new(),
            written: 0,
        })
    }
}

fn sse_params(sse: &Option<Sse>) -> (Option<ServerSideEncryption>, Option<String>) {
    match sse {
        None => (None, None),
        Some(Sse::Aes256) => (Some(ServerSideEncryption::Aes256), None),
        Some(Sse::Kms { key_id }) => (Some(ServerSideEncryption::AwsKms), key_id.clone()),
    }
}

/// A multipart upload in progress. Objects smaller than one part are sent
/// with a single `PutObject` on finish instead.
pub struct S3Upload {
    store: S3Store,
    key: String,
    buf: BytesMut,
    upload_id: Option<String>,
    next_part: u32,
    in_flight: JoinSet<Result<CompletedPart, StoreError>>,
    done: Vec<CompletedPart>,
    written: u64,
}

impl S3Upload {
    fn current_part_size(&self) -> usize {
        part_size(self.store.first_part_size, self.next_part) as usize
    }

    async fn upload_id(&mut self) -> Result<String, StoreError> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let (sse, kms) = sse_params(&self.store.sse);
        let out = self
            .store
            .client
            .create_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.store.key(&self.key))
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .send()
            .await
            .map_err(|e| self.store.classify("starting the upload of", &self.key, e))?;
        let id = out.upload_id().unwrap_or_default().to_owned();
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    /// Sends `body` as the next part, waiting first if too many are in flight.
    async fn send_part(&mut self, body: Bytes) -> Result<(), StoreError> {
        if self.next_part > MAX_PARTS {
            return Err(StoreError::Request {
                op: "uploading",
                uri: self.store.uri(&self.key),
                source: format!("more than {MAX_PARTS} parts; raise `store.part_size`").into(),
            });
        }
        let upload_id = self.upload_id().await?;
        while self.in_flight.len() >= MAX_IN_FLIGHT {
            self.join_one().await?;
        }
        let number = self.next_part as i32;
        self.next_part += 1;
        let store = self.store.clone();
        let key = self.key.clone();
        self.in_flight.spawn(async move {
            let out = store
                .client
                .upload_part()
                .bucket(&store.bucket)
                .key(store.key(&key))
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| store.classify("uploading a part of", &key, e))?;
            Ok(CompletedPart::builder()
                .set_e_tag(out.e_tag().map(str::to_owned))
                .part_number(number)
                .build())
        });
        Ok(())
    }

    async fn join_one(&mut self) -> Result<(), StoreError> {
        if let Some(joined) = self.in_flight.join_next().await {
            let part = joined.map_err(|e| StoreError::Request {
                op: "uploading",
                uri: self.store.uri(&self.key),
                source: Box::new(e),
            })??;
            self.done.push(part);
        }
        Ok(())
    }
}

impl ObjectUpload for S3Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.written += chunk.len() as u64;
        self.buf.extend_from_slice(&chunk);
        loop {
            let size = self.current_part_size();
            if self.buf.len() < size {
                return Ok(());
            }
            let part = self.buf.split_to(size).freeze();
            self.buf.reserve(self.current_part_size());
            self.send_part(part).await?;
        }
    }

    async fn finish(mut self) -> Result<u64, StoreError> {
        if self.upload_id.is_none() {
            let body = std::mem::take(&mut self.buf).freeze();
            self.store.put(&self.key, body).await?;
            return Ok(self.written);
        }
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf).freeze();
            self.send_part(last).await?;
        }
        while !self.in_flight.is_empty() {
            self.join_one().await?;
        }
        let mut parts = std::mem::take(&mut self.done);
        parts.sort_by_key(|p| p.part_number());
        let upload_id = self.upload_id.clone().unwrap_or_default();
        self.store
            .client
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.store.key(&self.key))
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                self.store
                    .classify("completing the upload of", &self.key, e)
            })?;
        tracing::debug!(uri = %self.store.uri(&self.key), parts = self.next_part - 1, "multipart upload completed");
        self.upload_id = None;
        Ok(self.written)
    }

    async fn abort(mut self) -> Result<(), StoreError> {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        let Some(upload_id) = self.upload_id.take() else {
            return Ok(());
        };
        abort_upload(&self.store, &self.key, &upload_id).await
    }
}

async fn abort_upload(store: &S3Store, key: &str, upload_id: &str) -> Result<(), StoreError> {
    store
        .client
        .abort_multipart_upload()
        .bucket(&store.bucket)
        .key(store.key(key))
        .upload_id(upload_id)
        .send()
        .await
        .map_err(|e| store.classify("aborting the upload of", key, e))?;
    tracing::debug!(uri = %store.uri(key), "multipart upload aborted");
    Ok(())
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        self.in_flight.abort_all();
        let store = self.store.clone();
        let key = self.key.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = abort_upload(&store, &key, &upload_id).await {
                    tracing::warn!(error = %e, "could not abort an abandoned multipart upload; a bucket lifecycle rule for incomplete uploads will remove it");
                }
            });
        }
    }
}
