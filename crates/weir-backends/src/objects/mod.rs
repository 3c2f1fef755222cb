//! The embedded object store: buckets are folders under the data dir.
//!
//! Built on `object_store`'s `LocalFileSystem`, which gives atomic writes (stage, then rename)
//! and the same API weir later uses for S3. What a plain file cannot hold — the MD5 ETag S3
//! reports and user metadata (`x-amz-meta-*`) — is kept in an extended attribute of the file
//! (`user.weir.meta`), set on the staged file before it is renamed into place: it appears, moves
//! and disappears with the object, costs no file of its own (on a busy data dir, every file
//! created and deleted slows the next create), and it is trusted only while the file's own
//! fingerprint (inode, size, mtime) is the one it was written for, so a file changed behind
//! weir's back loses its stale ETag.
//!
//! A move within the store ([`ObjectStore::move_object`], how the pipeline archives a source)
//! links the file under its new key and unlinks the old one: no bytes copied, nothing freed.

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

/// The extended attribute holding an object's [`StoredMeta`].
const META_XATTR: &str = "user.weir.meta";

/// What the extended attribute remembers about one object.
#[derive(Debug, Serialize, Deserialize)]
struct StoredMeta {
    /// The file's own fingerprint when the attribute was written (inode, size, mtime).
    fs_etag: String,
    etag: String,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    metadata: Metadata,
}

impl LocalObjectStore {
    /// Opens (creating if needed) the store rooted at `root`.
    /// Fails when the file system cannot hold extended attributes.
    pub fn open(root: &Path) -> Result<LocalObjectStore, PortError> {
        std::fs::create_dir_all(root)
            .map_err(|e| PortError::unavailable(format!("creating {}", root.display()), e))?;
        let root = root
            .canonicalize()
            .map_err(|e| PortError::unavailable(format!("resolving {}", root.display()), e))?;
        check_xattrs(&root).map_err(|e| {
            let context = if e.raw_os_error() == Some(NOT_SUPPORTED) {
                format!(
                    "{} cannot hold extended attributes (user.*), where weir keeps each object's ETag and metadata; use a data dir on ext4, xfs, btrfs or tmpfs",
                    root.display()
                )
            } else {
                format!("writing to {}", root.display())
            };
            PortError::unavailable(context, e)
        })?;
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

    /// Info for an object, with the stored ETag and metadata if they still describe the file.
    async fn info(&self, bucket: &str, key: &str, meta: &ObjectMeta) -> ObjectInfo {
        let fs_etag = meta.e_tag.clone().unwrap_or_default();
        let stored = match self.object_path(bucket, key) {
            Ok(path) => tokio::task::spawn_blocking(move || read_meta(&path)).await.ok().flatten(),
            Err(_) => None,
        };
        let (etag, metadata) = match stored {
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

    /// Stores a local file as the object, with its ETag and metadata on it before the object
    /// appears: a reader (or a reconcile scan) never sees the object without them.
    async fn store_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        metadata: Metadata,
        etag: Option<String>,
    ) -> Result<ObjectInfo, PortError> {
        let dest = self.object_path(bucket, key)?;
        self.require_bucket(bucket).await?;
        let src = path.to_owned();
        let meta = tokio::task::spawn_blocking(move || publish(&src, &dest, etag, metadata))
            .await
            .map_err(|e| PortError::unavailable("storing file", e))?
            .map_err(|e| PortError::unavailable(format!("storing {bucket}/{key}"), e))?;
        Ok(ObjectInfo { bucket: bucket.into(), key: key.into(), ..meta })
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
        let meta = tokio::task::spawn_blocking(move || -> std::io::Result<ObjectInfo> {
            let staging = staging_path(&dest);
            let result = (|| {
                std::fs::create_dir_all(staging.parent().expect("object paths have a parent"))?;
                let mut f = std::fs::File::create(&staging)?;
                std::io::Write::write_all(&mut f, &data)?;
                // The attribute goes on before the one fsync, which makes data and attribute durable.
                let fs_etag = fs_fingerprint(&f.metadata()?);
                write_meta(&staging, &fs_etag, etag, metadata.clone())?;
                f.sync_all()?;
                publish_staged(&staging, &dest, metadata)
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&staging);
            }
            result
        })
        .await
        .map_err(|e| PortError::unavailable("storing object", e))?
        .map_err(|e| PortError::unavailable(format!("storing {bucket}/{key}"), e))?;
        Ok(ObjectInfo { bucket: bucket.into(), key: key.into(), ..meta })
    }

    async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        metadata: Metadata,
    ) -> Result<ObjectInfo, PortError> {
        self.store_file(bucket, key, path, metadata, None).await
    }

    async fn put_file_with_etag(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        metadata: Metadata,
        etag: String,
    ) -> Result<ObjectInfo, PortError> {
        self.store_file(bucket, key, path, metadata, Some(etag)).await
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
        let (from_path, to_path) =
            (self.object_path(from_bucket, from_key)?, self.object_path(to_bucket, to_key)?);
        match metadata {
            // New metadata: the copy needs an inode of its own, or the source's would change too.
            Some(metadata) if metadata != source.metadata => {
                let etag = source.etag.clone();
                let meta =
                    tokio::task::spawn_blocking(move || copy_bytes(&from_path, &to_path, etag, metadata))
                        .await
                        .map_err(|e| PortError::unavailable("copying object", e))?
                        .map_err(|e| {
                            PortError::unavailable(format!("copying {from_bucket}/{from_key}"), e)
                        })?;
                Ok(ObjectInfo { bucket: to_bucket.into(), key: to_key.into(), ..meta })
            }
            // The same metadata: a hard link shares the file and its attribute. object_store
            // links to a staging name and renames over the target; when the target already is
            // a link to the same file (a repeated copy), POSIX makes that rename a no-op and
            // the staging link would be left behind, so that case copies nothing.
            _ => {
                if !same_file(&from_path, &to_path) {
                    self.store.copy(&from, &to).await.map_err(|e| store_error(e, from_bucket, from_key))?;
                }
                self.head(to_bucket, to_key).await
            }
        }
    }

    /// Links the file under the new key, then unlinks the old one: no bytes copied, the inode
    /// (with its attribute, rewritten first when the metadata changes) moves. Repeating a move
    /// that was cut short finishes it.
    async fn move_object(
        &self,
        from_bucket: &str,
        from_key: &str,
        to_bucket: &str,
        to_key: &str,
        metadata: Option<Metadata>,
    ) -> Result<ObjectInfo, PortError> {
        self.require_bucket(to_bucket).await?;
        let source = self.head(from_bucket, from_key).await?;
        let (from_path, to_path) =
            (self.object_path(from_bucket, from_key)?, self.object_path(to_bucket, to_key)?);
        let metadata = metadata.unwrap_or(source.metadata);
        let etag = source.etag;
        tokio::task::spawn_blocking(move || move_file(&from_path, &to_path, etag, metadata))
            .await
            .map_err(|e| PortError::unavailable("moving object", e))?
            .map_err(|e| PortError::unavailable(format!("moving {from_bucket}/{from_key}"), e))?;
        self.head(to_bucket, to_key).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), PortError> {
        let loc = self.location(bucket, key)?;
        self.require_bucket(bucket).await?;
        match self.store.delete(&loc).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e, bucket, key)),
        }
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
            // Only folders with S3 bucket names: not `.tmp`, nor the SQLite files.
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

/// Moves `src` to `dest` atomically (a rename on the same file system, else a copy to a staging
/// file beside `dest` first), with the ETag and metadata set on the file and both fsynced
/// before the rename, and the folder fsynced after it. A rename keeps the inode and the
/// modification time, so the fingerprint taken before it still describes the object after it.
fn publish(src: &Path, dest: &Path, etag: Option<String>, metadata: Metadata) -> std::io::Result<ObjectInfo> {
    let parent = dest.parent().expect("object paths have a parent");
    std::fs::create_dir_all(parent)?;
    let staged = if same_device(src, parent) {
        src.to_owned()
    } else {
        let probe = staging_path(dest);
        std::fs::copy(src, &probe)?;
        std::fs::remove_file(src)?;
        probe
    };
    let result = (|| {
        let file = std::fs::File::open(&staged)?;
        let fs_etag = fs_fingerprint(&file.metadata()?);
        let etag = etag.unwrap_or_else(|| fs_etag.clone());
        write_meta(&staged, &fs_etag, etag, metadata.clone())?;
        file.sync_all()?;
        publish_staged(&staged, dest, metadata)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    result
}

/// Renames a staged file, already fsynced with its attribute, into place and fsyncs the folder.
fn publish_staged(staged: &Path, dest: &Path, metadata: Metadata) -> std::io::Result<ObjectInfo> {
    let meta = std::fs::metadata(staged)?;
    let etag = match read_meta(staged) {
        Some(m) => m.etag,
        None => fs_fingerprint(&meta),
    };
    std::fs::rename(staged, dest)?;
    sync_dir(dest)?;
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

/// A copy with its own inode: the bytes to a staging file beside `dest`, the attribute, fsync,
/// rename.
fn copy_bytes(src: &Path, dest: &Path, etag: String, metadata: Metadata) -> std::io::Result<ObjectInfo> {
    std::fs::create_dir_all(dest.parent().expect("object paths have a parent"))?;
    let staging = staging_path(dest);
    let result = (|| {
        std::fs::copy(src, &staging)?;
        let file = std::fs::File::open(&staging)?;
        write_meta(&staging, &fs_fingerprint(&file.metadata()?), etag, metadata.clone())?;
        file.sync_all()?;
        publish_staged(&staging, dest, metadata)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    result
}

/// The local move: attribute on the source's inode, a link under the new name (staged, then
/// renamed over whatever is there), the folder fsynced, then the old name removed.
fn move_file(src: &Path, dest: &Path, etag: String, metadata: Metadata) -> std::io::Result<()> {
    let fs_etag = fs_fingerprint(&std::fs::metadata(src)?);
    write_meta(src, &fs_etag, etag, metadata)?;
    if src == dest {
        return Ok(());
    }
    if !same_file(src, dest) {
        std::fs::create_dir_all(dest.parent().expect("object paths have a parent"))?;
        let staging = staging_path(dest);
        std::fs::hard_link(src, &staging)?;
        if let Err(e) = std::fs::rename(&staging, dest) {
            let _ = std::fs::remove_file(&staging);
            return Err(e);
        }
    }
    sync_dir(dest)?;
    std::fs::remove_file(src)
}

/// Fsyncs the folder holding `path`, so that a rename into it survives a power cut.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    dir_sync::sync(path.parent().expect("object paths have a parent"))
}

/// Group commit for folder fsyncs. Busy folders (`raw/` while files arrive, the output folders
/// while jobs finish) take many renames at once, and one fsync makes all renames before it
/// durable; on ext4 a folder fsync costs several times a file's. A caller needs a sync that
/// *started* after its rename: if one is running, it waits for it to end and then runs (or
/// waits for) the next, which covers every caller that arrived meanwhile.
mod dir_sync {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Condvar, LazyLock, Mutex};

    #[derive(Default)]
    struct Folder {
        state: Mutex<State>,
        done: Condvar,
    }

    #[derive(Default)]
    struct State {
        /// Callers so far, numbered; a sync started after caller n covers it.
        requested: u64,
        /// Every caller up to this number is covered by a finished sync.
        synced: u64,
        running: bool,
    }

    static FOLDERS: LazyLock<Mutex<HashMap<PathBuf, Arc<Folder>>>> = LazyLock::new(Default::default);

    pub fn sync(dir: &Path) -> std::io::Result<()> {
        let folder =
            FOLDERS.lock().unwrap_or_else(|p| p.into_inner()).entry(dir.to_owned()).or_default().clone();
        let result = sync_in(&folder, dir);
        // Forget the folder when no one else holds it (no one can take it without the map's
        // lock), so the map holds only folders being written.
        let mut folders = FOLDERS.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&folder) == 2 {
            folders.remove(dir);
        }
        result
    }

    fn sync_in(folder: &Folder, dir: &Path) -> std::io::Result<()> {
        let mut state = folder.state.lock().unwrap_or_else(|p| p.into_inner());
        state.requested += 1;
        let me = state.requested;
        loop {
            if state.synced >= me {
                return Ok(());
            }
            if !state.running {
                state.running = true;
                let covers = state.requested;
                drop(state);
                let result = std::fs::File::open(dir).and_then(|f| f.sync_all());
                state = folder.state.lock().unwrap_or_else(|p| p.into_inner());
                state.running = false;
                if result.is_ok() {
                    state.synced = state.synced.max(covers);
                }
                folder.done.notify_all();
                result?;
                continue;
            }
            state = folder.done.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    #[cfg(test)]
    mod tests {
        /// Many writers syncing one folder at once all return, with fewer fsyncs than writers
        /// (not checked: timing decides), and a folder left idle is forgotten.
        #[test]
        fn concurrent_syncs_of_one_folder_all_finish_and_idle_folders_are_forgotten() {
            let dir = tempfile::tempdir().unwrap();
            let threads: Vec<_> = (0..16)
                .map(|i| {
                    let d = dir.path().to_owned();
                    std::thread::spawn(move || {
                        std::fs::write(d.join(format!("f{i}")), b"x").unwrap();
                        super::sync(&d)
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap().unwrap();
            }
            assert!(!super::FOLDERS.lock().unwrap().contains_key(dir.path()));
            let missing = dir.path().join("missing");
            assert!(super::sync(&missing).is_err(), "a folder that is not there fails");
            assert!(!super::FOLDERS.lock().unwrap().contains_key(&missing));
        }
    }
}

/// The stored ETag and metadata of a file, if it has any that can be read.
fn read_meta(path: &Path) -> Option<StoredMeta> {
    let bytes = xattr::get(path, META_XATTR).ok().flatten()?;
    serde_json::from_slice(&bytes).ok()
}

/// Sets (or, when the file says all there is to say, removes) a file's stored ETag and metadata.
fn write_meta(path: &Path, fs_etag: &str, etag: String, metadata: Metadata) -> std::io::Result<()> {
    if metadata.is_empty() && etag == fs_etag {
        return match xattr::remove(path, META_XATTR) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(NO_ATTRIBUTE) => Ok(()),
            Err(e) => Err(e),
        };
    }
    let body = serde_json::to_vec(&StoredMeta { fs_etag: fs_etag.to_owned(), etag, metadata })
        .expect("object metadata serializes");
    xattr::set(path, META_XATTR, &body)
}

/// `ENODATA`: the file has no such attribute.
const NO_ATTRIBUTE: i32 = 61;

/// `EOPNOTSUPP`: the file system has no extended attributes.
const NOT_SUPPORTED: i32 = 95;

/// Sets and reads back an attribute on a scratch file under `root`.
fn check_xattrs(root: &Path) -> std::io::Result<()> {
    let probe = root.join(format!(".xattr-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    let result = xattr::set(&probe, META_XATTR, b"{}").and_then(|()| match xattr::get(&probe, META_XATTR)? {
        Some(v) if v == b"{}" => Ok(()),
        _ => Err(std::io::Error::other("an attribute that was set does not read back")),
    });
    let _ = std::fs::remove_file(&probe);
    result
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

fn staging_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    // A digits-only `#` suffix is what object_store itself stages with, and lists skip it.
    name.push(format!("#{}", uuid::Uuid::new_v4().as_u128() % 10u128.pow(20)));
    dest.with_file_name(name)
}
