//! A local directory as the store: the embedded default and rehearsals.
//!
//! Writes go to a temporary file beside the target, are synced, then renamed,
//! so a reader never sees half an object and a crash leaves only a temporary
//! file that listings ignore.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::{IncompleteUpload, ObjectMeta, ObjectReader, ObjectStore, ObjectUpload, StoreError};

/// Temporary files start with this; listings skip them.
const TMP_PREFIX: &str = ".sg-tmp-";

/// A store in a local directory.
pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: PathBuf) -> Self {
        FsStore { root }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object");
    target.with_file_name(format!("{TMP_PREFIX}{}-{name}", crate::random::hex4()))
}

async fn create_parent(path: &Path) -> Result<(), StoreError> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io("creating directory", parent))?;
    }
    Ok(())
}

impl ObjectStore for FsStore {
    type Upload = FsUpload;

    fn uri(&self, key: &str) -> String {
        format!("file://{}", self.path(key).display())
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        let probe = self.path(&format!("{TMP_PREFIX}probe-{}", crate::random::hex4()));
        create_parent(&probe).await?;
        tokio::fs::write(&probe, b"snapguard")
            .await
            .map_err(io("writing", &probe))?;
        tokio::fs::remove_file(&probe)
            .await
            .map_err(io("removing", &probe))
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        let mut upload = self.upload(key).await?;
        upload.write(body).await?;
        upload.finish().await.map(|_| ())
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = self.path(key);
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Bytes::from(data)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound { uri: self.uri(key) })
            }
            Err(e) => Err(io("reading", &path)(e)),
        }
    }

    async fn open(&self, key: &str) -> Result<ObjectReader, StoreError> {
        let path = self.path(key);
        match tokio::fs::File::open(&path).await {
            Ok(f) => Ok(Box::pin(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound { uri: self.uri(key) })
            }
            Err(e) => Err(io("opening", &path)(e)),
        }
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let path = self.path(key);
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("reading metadata of", &path)(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || list_blocking(&root, &prefix))
            .await
            .expect("listing task panicked")
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("removing", &path)(e)),
        }
    }

    async fn incomplete_uploads(&self, prefix: &str) -> Result<Vec<IncompleteUpload>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || partial_files(&root, &prefix))
            .await
            .expect("listing thread panicked")
    }

    async fn abort_incomplete(&self, upload: &IncompleteUpload) -> Result<(), StoreError> {
        let path = PathBuf::from(&upload.id);
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("removing", &path)(e)),
            _ => Ok(()),
        }
    }

    async fn upload(&self, key: &str) -> Result<FsUpload, StoreError> {
        let target = self.path(key);
        create_parent(&target).await?;
        let temp = temp_path(&target);
        let file = tokio::fs::File::create(&temp)
            .await
            .map_err(io("creating", &temp))?;
        Ok(FsUpload {
            file: Some(file),
            temp,
            target,
            written: 0,
        })
    }
}

fn list_blocking(root: &Path, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io("listing", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io("listing", &dir))?;
            let path = entry.path();
            let meta = entry.metadata().map_err(io("reading metadata of", &path))?;
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                continue;
            }
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let key = rel
                .to_string_lossy()
                .replace(std::path::MAIN_SEPARATOR, "/");
            if key.starts_with(prefix) {
                out.push(ObjectMeta {
                    key,
                    size: meta.len(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Temporary files under `prefix`: uploads a killed process never finished.
fn partial_files(root: &Path, prefix: &str) -> Result<Vec<IncompleteUpload>, StoreError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io("listing", &dir)(e)),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(TMP_PREFIX) else {
                continue;
            };
            // `.sg-tmp-<4 hex>-<name>`.
            let target = rest.get(5..).unwrap_or(rest);
            let Ok(rel) = path
                .with_file_name(target)
                .strip_prefix(root)
                .map(Path::to_path_buf)
            else {
                continue;
            };
            let key = rel
                .to_string_lossy()
                .replace(std::path::MAIN_SEPARATOR, "/");
            if key.starts_with(prefix) {
                out.push(IncompleteUpload {
                    key,
                    id: path.display().to_string(),
                    initiated: meta
                        .modified()
                        .ok()
                        .map(chrono::DateTime::<chrono::Utc>::from),
                });
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// An upload into a temporary file, renamed into place on finish.
pub struct FsUpload {
    file: Option<tokio::fs::File>,
    temp: PathBuf,
    target: PathBuf,
    written: u64,
}

impl ObjectUpload for FsUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        let file = self.file.as_mut().expect("upload used after finish");
        file.write_all(&chunk)
            .await
            .map_err(io("writing", &self.temp))?;
        self.written += chunk.len() as u64;
        Ok(())
    }

    async fn finish(mut self) -> Result<u64, StoreError> {
        let mut file = self.file.take().expect("upload finished twice");
        file.flush().await.map_err(io("writing", &self.temp))?;
        file.sync_all().await.map_err(io("syncing", &self.temp))?;
        drop(file);
        tokio::fs::rename(&self.temp, &self.target)
            .await
            .map_err(io("renaming into place", &self.target))?;
        Ok(self.written)
    }

    async fn abort(mut self) -> Result<(), StoreError> {
        self.file.take();
        tokio::fs::remove_file(&self.temp)
            .await
            .map_err(io("removing", &self.temp))
    }
}

impl Drop for FsUpload {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}
