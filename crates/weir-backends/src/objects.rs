//! The embedded object store: buckets are folders under the data dir.
//!
//! Built on `object_store`'s `LocalFileSystem`, which gives atomic, fsynced writes (stage, then
//! rename) and the same API weir later uses for S3. What a plain folder cannot hold — the MD5
//! ETag S3 reports and user metadata (`x-amz-meta-*`) — is kept in a sidecar JSON file under
//! `<data dir>/.meta/<bucket>/<key>.meta.json`, outside every bucket, and trusted only while the
//! object on disk is the one it was written for.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore as _, ObjectStoreExt as _};
use serde::{Deserialize, Serialize};
use weir_core::keys::{validate_bucket, validate_key};
use weir_ports::{BucketInfo, ByteStream, Metadata, ObjectInfo, ObjectStore, PortError};

/// Buckets as folders under one root directory.
#[derive(Debug, Clone)]
pub struct LocalObjectStore {
    root: PathBuf,
    store: Arc<LocalFileSystem>,
}

/// What the sidecar remembers about one object.
#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    /// The file's own fingerprint when the sidecar was written (inode, size, mtime).
    fs_etag: String,
    etag: String,
    metadata: Metadata,
}

impl LocalObjectStore {
    /// Opens (creating if needed) the store rooted at `root`.
    pub fn open(root: &Path) -> Result<LocalObjectStore, PortError> {
        std::fs::create_dir_all(root.join(".meta"))
            .map_err(|e| PortError::unavailable(format!("creating {}", root.display()), e))?;
        let root = root
            .canonicalize()
            .map_err(|e| PortError::unavailable(format!("resolving {}", root.display()), e))?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| PortError::unavailable(format!("opening {}", root.display()), e))?
            .with_fsync(true)
            .with_automatic_cleanup(false);
        Ok(LocalObjectStore { root, store: Arc::new(store) })
    }

    /// The folder that holds a bucket.
    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.join(bucket)
    }

    /// Where an object lives on disk (after checking that the key stays inside its bucket).
    pub fn object_path(&self, bucket: &str, key: &str) -> Result<PathBuf, PortError> {
        let loc = self.location(bucket, key)?;
        self.store.path_to_filesystem(&loc).map_err(|e| PortError::Invalid(e.to_string()))
    }

    fn location(&self, bucket: &str, key: &str) -> Result<StorePath, PortError> {
        validate_bucket(bucket).map_err(PortError::Invalid)?;
        validate_key(key).map_err(|e| PortError::Invalid(e.to_string()))?;
        StorePath::parse(format!("{bucket}/{key}"))
            .map_err(|e| PortError::Invalid(format!("object key {key:?}: {e}")))
    }

    async fn require_bucket(&self, bucket: &str) -> Result<(), PortError> {
        validate_bucket(bucket).map_err(PortError::Invalid)?;
        match tokio::fs::metadata(self.bucket_dir(bucket)).await {
            Ok(m) if m.is_dir() => Ok(()),
            _ => Err(PortError::NotFound(format!("bucket {bucket}"))),
        }
    }

    fn sidecar_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(".meta").join(bucket).join(format!("{key}.meta.json"))
    }

    async fn write_sidecar(&self, bucket: &str, key: &str, sidecar: &Sidecar) -> Result<(), PortError> {
        let path = self.sidecar_path(bucket, key);
        let body = serde_json::to_vec(sidecar).expect("sidecar serializes");
        tokio::task::spawn_blocking(move || write_atomically(&path, &body))
            .await
            .map_err(|e| PortError::unavailable("writing object metadata", e))?
            .map_err(|e| PortError::unavailable("writing object metadata", e))
    }

    async fn read_sidecar(&self, bucket: &str, key: &str) -> Option<Sidecar> {
        let bytes = tokio::fs::read(self.sidecar_path(bucket, key)).await.ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Info for an object, with the sidecar's ETag and metadata if it still describes the file.
    async fn info(&self, bucket: &str, key: &str, meta: &ObjectMeta) -> ObjectInfo {
        let fs_etag = meta.e_tag.clone().unwrap_or_default();
        let (etag, metadata) = match self.read_sidecar(bucket, key).await {
            Some(s) if s.fs_etag == fs_etag => (s.etag, s.metadata),
            _ => (fs_etag, Metadata::new()),
        };
        ObjectInfo {
            bucket: bucket.into(),
            key: key.into(),
            size: meta.size,
            etag,
            last_modified: meta.last_modified,
            metadata,
        }
    }

    /// Stores a local file as the object, with its sidecar in place before the object appears:
    /// a reader (or a reconcile scan) never sees the object without its ETag and metadata.
    async fn store_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        metadata: Metadata,
        etag: Option<String>,
        synced: bool,
    ) -> Result<ObjectInfo, PortError> {
        let dest = self.object_path(bucket, key)?;
        self.require_bucket(bucket).await?;
        let (src, sidecar) = (path.to_owned(), self.sidecar_path(bucket, key));
        let meta =
            tokio::task::spawn_blocking(move || publish(&src, &dest, &sidecar, etag, metadata, synced))
                .await
                .map_err(|e| PortError::unavailable("storing file", e))?
                .map_err(|e| PortError::unavailable(format!("storing {bucket}/{key}"), e))?;
        Ok(ObjectInfo { bucket: bucket.into(), key: key.into(), ..meta })
    }

    async fn record(
        &self,
        bucket: &str,
        key: &str,
        etag: Option<String>,
        metadata: Metadata,
    ) -> Result<ObjectInfo, PortError> {
        let loc = self.location(bucket, key)?;
        let meta = self.store.head(&loc).await.map_err(|e| store_error(e, bucket, key))?;
        let fs_etag = meta.e_tag.clone().unwrap_or_default();
        let etag = etag.unwrap_or_else(|| fs_etag.clone());
        if metadata.is_empty() && etag == fs_etag {
            // Nothing to remember beyond what the file says; drop any stale sidecar.
            let _ = tokio::fs::remove_file(self.sidecar_path(bucket, key)).await;
        } else {
            self.write_sidecar(
                bucket,
                key,
                &Sidecar { fs_etag, etag: etag.clone(), metadata: metadata.clone() },
            )
            .await?;
        }
        Ok(ObjectInfo {
            bucket: bucket.into(),
            key: key.into(),
            size: meta.size,
            etag,
            last_modified: meta.last_modified,
            metadata,
        })
    }
}

#[async_trait]
impl ObjectStore for LocalObjectStore {
    async fn create_bucket(&self, bucket: &str) -> Result<(), PortError> {
        validate_bucket(bucket).map_err(PortError::Invalid)?;
        tokio::fs::create_dir_all(self.bucket_dir(bucket))
            .await
            .map_err(|e| PortError::unavailable(format!("creating bucket folder for {bucket}"), e))
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, PortError> {
        let loc = self.location(bucket, key)?;
        self.require_bucket(bucket).await?;
        let meta = self.store.head(&loc).await.map_err(|e| store_error(e, bucket, key))?;
        Ok(self.info(bucket, key, &meta).await)
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<(ObjectInfo, ByteStream), PortError> {
        let loc = self.location(bucket, key)?;
        self.require_bucket(bucket).await?;
        let result = self.store.get(&loc).await.map_err(|e| store_error(e, bucket, key))?;
        let info = self.info(bucket, key, &result.meta).await;
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let stream = result.into_stream().map_err(move |e| store_error(e, &b, &k)).boxed();
        Ok((info, stream))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        metadata: Metadata,
    ) -> Result<ObjectInfo, PortError> {
        let dest = self.object_path(bucket, key)?;
        self.require_bucket(bucket).await?;
        let etag = hex::encode(Md5::digest(&data));
        let staging = staging_path(&dest);
        let written = {
            let staging = staging.clone();
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                std::fs::create_dir_all(staging.parent().expect("object paths have a parent"))?;
                let mut f = std::fs::File::create(&staging)?;
                std::io::Write::write_all(&mut f, &data)?;
                f.sync_all()
            })
            .await
            .map_err(|e| PortError::unavailable("storing object", e))?
        };
        if let Err(e) = written {
            let _ = std::fs::remove_file(&staging);
            return Err(PortError::unavailable(format!("storing {bucket}/{key}"), e));
        }
        self.store_file(bucket, key, &staging, metadata, Some(etag), true).await
    }

    async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        metadata: Metadata,
    ) -> Result<ObjectInfo, PortError> {
        self.store_file(bucket, key, path, metadata, None, false).await
    }

    async fn put_file_with_etag(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        metadata: Metadata,
        etag: String,
    ) -> Result<ObjectInfo, PortError> {
        self.store_file(bucket, key, path, metadata, Some(etag), false).await
    }

    async fn copy(
        &self,
        from_bucket: &str,
        from_key: &str,
        to_bucket: &str,
        to_key: &str,
        metadata: Option<Metadata>,
    ) -> Result<ObjectInfo, PortError> {
        let from = self.location(from_bucket, from_key)?;
        let to = self.location(to_bucket, to_key)?;
        self.require_bucket(from_bucket).await?;
        self.require_bucket(to_bucket).await?;
        let source = self.head(from_bucket, from_key).await?;
        // object_store copies by hard-linking to a staging name and renaming over the target;
        // when the target already is a link to the same file (a repeated copy), POSIX makes
        // that rename a no-op and the staging link would be left behind. It is the same
        // object already, so there is nothing to copy.
        if !same_file(&self.object_path(from_bucket, from_key)?, &self.object_path(to_bucket, to_key)?) {
            self.store.copy(&from, &to).await.map_err(|e| store_error(e, from_bucket, from_key))?;
        }
        self.record(to_bucket, to_key, Some(source.etag), metadata.unwrap_or(source.metadata)).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), PortError> {
        let loc = self.location(bucket, key)?;
        self.require_bucket(bucket).await?;
        match self.store.delete(&loc).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(store_error(e, bucket, key)),
        }
        let _ = tokio::fs::remove_file(self.sidecar_path(bucket, key)).await;
        Ok(())
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, PortError> {
        self.require_bucket(bucket).await?;
        // object_store lists whole path segments; S3 prefixes are plain string prefixes, so list
        // the deepest folder the prefix names and filter.
        let dir = match prefix.rfind('/') {
            Some(i) => format!("{bucket}/{}", &prefix[..i]),
            None => bucket.to_owned(),
        };
        let dir =
            StorePath::parse(&dir).map_err(|e| PortError::Invalid(format!("prefix {prefix:?}: {e}")))?;
        let metas: Vec<ObjectMeta> = match self.store.list(Some(&dir)).try_collect().await {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(store_error(e, bucket, prefix)),
        };
        let mut out = Vec::new();
        for meta in metas {
            let full = meta.location.as_ref();
            let Some(key) = full.strip_prefix(bucket).and_then(|k| k.strip_prefix('/')) else { continue };
            if key.starts_with(prefix) {
                out.push(self.info(bucket, key, &meta).await);
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, PortError> {
        let mut entries = tokio::fs::read_dir(&self.root)
            .await
            .map_err(|e| PortError::unavailable(format!("listing {}", self.root.display()), e))?;
        let mut out = Vec::new();
        while let Some(entry) =
            entries.next_entry().await.map_err(|e| PortError::unavailable("listing buckets", e))?
        {
            let Ok(name) = entry.file_name().into_string() else { continue };
            let Ok(meta) = entry.metadata().await else { continue };
            // Only folders with S3 bucket names: not `.meta`, `.tmp`, nor the SQLite files.
            if !meta.is_dir() || validate_bucket(&name).is_err() {
                continue;
            }
            let created = meta.created().or_else(|_| meta.modified()).ok().map(chrono::DateTime::from);
            out.push(BucketInfo { name, created });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn bucket_exists(&self, bucket: &str) -> Result<bool, PortError> {
        match self.require_bucket(bucket).await {
            Ok(()) => Ok(true),
            Err(PortError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        range: Range<u64>,
    ) -> Result<(ObjectInfo, ByteStream), PortError> {
        let loc = self.location(bucket, key)?;
        self.require_bucket(bucket).await?;
        if range.start >= range.end {
            let info = self.head(bucket, key).await?;
            return Ok((info, futures::stream::empty().boxed()));
        }
        let options = GetOptions { range: Some(GetRange::Bounded(range)), ..Default::default() };
        let result = self.store.get_opts(&loc, options).await.map_err(|e| store_error(e, bucket, key))?;
        let info = self.info(bucket, key, &result.meta).await;
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let stream = result.into_stream().map_err(move |e| store_error(e, &b, &k)).boxed();
        Ok((info, stream))
    }
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> bool {
    false
}

/// Whether a rename from `file` into `dir` stays on one file system.
#[cfg(unix)]
fn same_device(file: &Path, dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(file), std::fs::metadata(dir)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_device(_: &Path, _: &Path) -> bool {
    false
}

fn store_error(e: object_store::Error, bucket: &str, key: &str) -> PortError {
    match e {
        object_store::Error::NotFound { .. } => PortError::NotFound(format!("object {bucket}/{key}")),
        object_store::Error::InvalidPath { .. } => PortError::Invalid(format!("object key {key:?}: {e}")),
        other => PortError::unavailable(format!("object store ({bucket}/{key})"), other),
    }
}

/// Moves `src` to `dest` atomically, writing the sidecar first (rename on the same file
/// system, else a copy to a staging file beside `dest`), fsyncing file (unless the caller
/// already has: `synced`) and folder. A rename keeps the inode and the modification time, so
/// the fingerprint taken before it still describes the object after it.
fn publish(
    src: &Path,
    dest: &Path,
    sidecar: &Path,
    etag: Option<String>,
    metadata: Metadata,
    synced: bool,
) -> std::io::Result<ObjectInfo> {
    let parent = dest.parent().expect("object paths have a parent");
    std::fs::create_dir_all(parent)?;
    let staged = if same_device(src, parent) {
        if !synced {
            std::fs::File::open(src)?.sync_all()?;
        }
        src.to_owned()
    } else {
        let probe = staging_path(dest);
        std::fs::copy(src, &probe)?;
        std::fs::File::open(&probe)?.sync_all()?;
        std::fs::remove_file(src)?;
        probe
    };
    let meta = std::fs::metadata(&staged)?;
    let fs_etag = fs_fingerprint(&meta);
    let etag = etag.unwrap_or_else(|| fs_etag.clone());
    if metadata.is_empty() && etag == fs_etag {
        let _ = std::fs::remove_file(sidecar);
    } else {
        let body = serde_json::to_vec(&Sidecar { fs_etag, etag: etag.clone(), metadata: metadata.clone() })
            .expect("sidecar serializes");
        write_atomically(sidecar, &body)?;
    }
    if let Err(e) = std::fs::rename(&staged, dest) {
        let _ = std::fs::remove_file(&staged);
        return Err(e);
    }
    std::fs::File::open(parent)?.sync_all()?;
    Ok(ObjectInfo {
        bucket: String::new(),
        key: String::new(),
        size: meta.len(),
        etag,
        last_modified: meta
            .modified()
            .map(chrono::DateTime::<chrono::Utc>::from)
            .unwrap_or_else(|_| chrono::Utc::now()),
        metadata,
    })
}

/// The ETag `object_store`'s `LocalFileSystem` reports for a file (inode, mtime in µs, size),
/// which the sidecar must match to be trusted. A test checks the two agree.
fn fs_fingerprint(meta: &std::fs::Metadata) -> String {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0u64;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::SystemTime::UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_micros();
    format!("\"{inode:x}-{mtime:x}-{:x}\"", meta.len())
}

fn write_atomically(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let parent = path.parent().expect("sidecar paths have a parent");
    std::fs::create_dir_all(parent)?;
    let staging = staging_path(path);
    std::fs::write(&staging, body)?;
    std::fs::rename(&staging, path)
}

fn staging_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    // A digits-only `#` suffix is what object_store itself stages with, and lists skip it.
    name.push(format!("#{}", uuid::Uuid::new_v4().as_u128() % 10u128.pow(20)));
    dest.with_file_name(name)
}
