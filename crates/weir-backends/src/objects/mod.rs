//! The embedded object store: buckets are folders under the data dir.
//!
//! Keys map to paths as `object_store`'s `LocalFileSystem` maps them, and range reads go
//! through it. Listings page through the folder tree in key order with bounded memory
//! ([`listing`]). The calls on the event path (head, get, put, move, delete) are plain
//! syscalls made on the calling thread instead: each takes microseconds, and at a thousand small
//! files a second, `LocalFileSystem`'s thread handoff per call cost more CPU than the file work
//! itself. Bodies over [`INLINE_BYTES`] are read and written on blocking threads.
//!
//! Every write is atomic and durable when it returns, as on S3. The bytes go to a file without a
//! name (`O_TMPFILE`) in the key's folder, which is made durable, then named and renamed over
//! the key, and the rename is made durable: a process killed on the way leaves nothing behind.
//! (Where the file system has no `O_TMPFILE`, the file is staged under a `#<digits>` name beside
//! the key, which listings skip.) A move links the file under its new key, makes the link
//! durable, then removes the old name, so the object is always under at least one key. A copy is
//! a file of its own: metadata lives on the inode, so two keys never share one. The "made
//! durable" steps are group commits ([`durable`]): one `syncfs` for every write waiting at that
//! moment, instead of an `fsync` per file and per folder.
//!
//! ETags and user metadata live in an extended attribute of each file ([`meta`]). The
//! pipeline's spooled outputs live in a scratch folder per process ([`scratch`]), which the next
//! start sweeps.

mod durable;
mod folders;
mod keylock;
mod listing;
mod meta;
mod scratch;

use std::fs::File;
use std::io::{Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectStore as _};
use weir_core::keys::{validate_bucket, validate_key};
use weir_ports::{
    clamp_page, BucketInfo, ByteStream, Metadata, ObjectInfo, ObjectPage, ObjectStore, PortError, PutBody,
    PutItem,
};

use durable::Durability;
use keylock::KeyLocks;
use meta::StoredMeta;
use scratch::ProcessDir;

/// Bodies up to this size are read and written on the calling thread; larger ones on a
/// blocking thread.
pub const INLINE_BYTES: u64 = 256 * 1024;

/// Buckets as folders under one root directory.
#[derive(Clone)]
pub struct LocalObjectStore {
    root: PathBuf,
    store: Arc<LocalFileSystem>,
    durability: Durability,
    /// Held while a key's name changes (see [`keylock`]).
    locks: Arc<KeyLocks>,
    /// Where the pipeline spools what it will store (see [`scratch`]).
    scratch: Arc<ProcessDir>,
}

impl std::fmt::Debug for LocalObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalObjectStore").field("root", &self.root).finish()
    }
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
        meta::check_support(&root).map_err(|e| {
            let context = if e.raw_os_error() == Some(meta::NOT_SUPPORTED) {
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
            .with_automatic_cleanup(false);
        let durability = Durability::start(&root).map_err(|e| {
            PortError::unavailable(format!("starting the sync thread for {}", root.display()), e)
        })?;
        let scratch = ProcessDir::create(&root).map_err(|e| {
            PortError::unavailable(format!("creating a scratch folder in {}", root.display()), e)
        })?;
        let locks = KeyLocks::open(&root)
            .map_err(|e| PortError::unavailable(format!("opening the key locks in {}", root.display()), e))?;
        Ok(LocalObjectStore {
            root,
            store: Arc::new(store),
            durability,
            locks: Arc::new(locks),
            scratch: Arc::new(scratch),
        })
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

    /// The folder a folder marker (`key` ending in `/`) is, in an existing bucket.
    fn marker_dir(&self, bucket: &str, key: &str) -> Result<PathBuf, PortError> {
        let folder = folders::check(key)?;
        self.existing_bucket_path(bucket, folder)
    }

    fn require_bucket(&self, bucket: &str) -> Result<(), PortError> {
        validate_bucket(bucket).map_err(PortError::Invalid)?;
        match std::fs::metadata(self.bucket_dir(bucket)) {
            Ok(m) if m.is_dir() => Ok(()),
            _ => Err(PortError::NoSuchBucket(bucket.to_owned())),
        }
    }

    /// The path of an object in an existing bucket.
    fn existing_bucket_path(&self, bucket: &str, key: &str) -> Result<PathBuf, PortError> {
        let path = self.object_path(bucket, key)?;
        self.require_bucket(bucket)?;
        Ok(path)
    }

    /// Waits for a sync that started after the call (see [`durable`]).
    async fn sync(&self, doing: impl FnOnce() -> String) -> Result<(), PortError> {
        self.durability.sync().await.map_err(|e| PortError::unavailable(doing(), e))
    }

    /// Publishes staged files, whose bytes and attributes are written, under their keys in
    /// order: makes them durable, renames each into place, makes the renames durable. Staged
    /// files not yet renamed are removed if a step fails.
    async fn publish(&self, bucket: &str, staged: Vec<Staged>) -> Result<Vec<ObjectInfo>, PortError> {
        let doing = |key: &str| format!("storing {bucket}/{key}");
        let first_key = staged.first().map(|s| s.info.key.clone()).unwrap_or_default();
        if let Err(e) = self.sync(|| doing(&first_key)).await {
            staged.into_iter().for_each(Staged::discard);
            return Err(e);
        }
        let mut infos = Vec::with_capacity(staged.len());
        let mut rest = staged.into_iter();
        while let Some(s) = rest.next() {
            if let Err(e) = self.locks.with(&s.dest, || s.file.publish(&s.dest)) {
                rest.for_each(|s| s.discard());
                return Err(PortError::unavailable(doing(&s.info.key), e));
            }
            infos.push(s.info);
        }
        self.sync(|| doing(&first_key)).await?;
        Ok(infos)
    }

    /// Writes `data`, with its ETag and metadata, to a file that is not under its key yet.
    async fn stage_bytes(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        metadata: Metadata,
    ) -> Result<Staged, PortError> {
        let dest = self.existing_bucket_path(bucket, key)?;
        let doing = || format!("storing {bucket}/{key}");
        let len = data.len() as u64;
        let write = {
            let (dest, metadata) = (dest.clone(), metadata.clone());
            move || -> std::io::Result<(std::fs::Metadata, String, StagedFile)> {
                let etag = hex::encode(Md5::digest(&data));
                let (mut f, staged) = StagedFile::create(&dest)?;
                let written = (|| {
                    f.write_all(&data)?;
                    let stat = f.metadata()?;
                    meta::write(&f, &meta::fingerprint(&stat), etag.clone(), metadata)?;
                    Ok(stat)
                })();
                match written {
                    Ok(stat) => Ok((stat, etag, staged)),
                    Err(e) => {
                        staged.discard();
                        Err(e)
                    }
                }
            }
        };
        let written = if len > INLINE_BYTES {
            tokio::task::spawn_blocking(write).await.map_err(|e| PortError::unavailable(doing(), e))?
        } else {
            write()
        };
        let (stat, etag, file) = written.map_err(|e| PortError::unavailable(doing(), e))?;
        Ok(Staged { info: object_info(bucket, key, &stat, etag, metadata), dest, file })
    }

    /// Makes a local file the staged object (moving it, or copying it when it is on another
    /// file system), with its ETag and metadata.
    async fn stage_file(
        &self,
        bucket: &str,
        key: &str,
        file: &Path,
        metadata: Metadata,
        etag: Option<String>,
    ) -> Result<Staged, PortError> {
        let dest = self.existing_bucket_path(bucket, key)?;
        let doing = || format!("storing {bucket}/{key}");
        let parent = dest.parent().expect("object paths have a parent").to_owned();
        std::fs::create_dir_all(&parent).map_err(|e| PortError::unavailable(doing(), e))?;
        let path = if same_device(file, &parent) {
            file.to_owned()
        } else {
            // Another file system: copy beside the key first, on a blocking thread.
            let (src, probe) = (file.to_owned(), staging_path(&dest));
            let copy = probe.clone();
            let copied = tokio::task::spawn_blocking(move || {
                std::fs::copy(&src, &copy)?;
                std::fs::remove_file(&src)
            })
            .await
            .map_err(|e| PortError::unavailable(doing(), e))?;
            if let Err(e) = copied {
                let _ = std::fs::remove_file(&probe);
                return Err(PortError::unavailable(doing(), e));
            }
            probe
        };
        let described = (|| {
            let f = File::open(&path)?;
            let stat = f.metadata()?;
            let fs_etag = meta::fingerprint(&stat);
            let etag = etag.unwrap_or_else(|| fs_etag.clone());
            meta::write(&f, &fs_etag, etag.clone(), metadata.clone())?;
            Ok::<_, std::io::Error>(object_info(bucket, key, &stat, etag, metadata))
        })();
        match described {
            Ok(info) => Ok(Staged { info, dest, file: StagedFile::Named(path) }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(PortError::unavailable(doing(), e))
            }
        }
    }

    /// Copies an object's bytes from its open file `from`, with `source`'s ETag and `metadata`,
    /// to a file that is not under `dest` yet: on the calling thread when small, else on a
    /// blocking thread.
    async fn stage_copy(
        &self,
        from: &File,
        source: &ObjectInfo,
        bucket: &str,
        key: &str,
        dest: &Path,
        metadata: Metadata,
    ) -> Result<Staged, PortError> {
        let doing = || format!("copying {}/{} to {bucket}/{key}", source.bucket, source.key);
        let from = from.try_clone().map_err(|e| PortError::unavailable(doing(), e))?;
        let copy = {
            let (dest, etag, metadata) = (dest.to_owned(), source.etag.clone(), metadata.clone());
            move || -> std::io::Result<(std::fs::Metadata, StagedFile)> {
                // From the start, whatever the shared offset of the open file is.
                let mut src = from;
                std::io::Seek::seek(&mut src, std::io::SeekFrom::Start(0))?;
                let (mut f, staged) = StagedFile::create(&dest)?;
                let copied = (|| {
                    // `copy_file_range` between two files, on Linux.
                    std::io::copy(&mut src, &mut f)?;
                    let stat = f.metadata()?;
                    meta::write(&f, &meta::fingerprint(&stat), etag, metadata)?;
                    Ok(stat)
                })();
                match copied {
                    Ok(stat) => Ok((stat, staged)),
                    Err(e) => {
                        staged.discard();
                        Err(e)
                    }
                }
            }
        };
        let copied = if source.size > INLINE_BYTES {
            tokio::task::spawn_blocking(copy).await.map_err(|e| PortError::unavailable(doing(), e))?
        } else {
            copy()
        };
        let (stat, file) = copied.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => io_error(e, &source.bucket, &source.key),
            _ => PortError::unavailable(doing(), e),
        })?;
        let info = object_info(bucket, key, &stat, source.etag.clone(), metadata);
        Ok(Staged { info, dest: dest.to_owned(), file })
    }

    /// Opens an object's file: the one version whose bytes, ETag and metadata are read from
    /// here on, whatever is renamed over the key meanwhile.
    fn open_object(&self, bucket: &str, key: &str, path: &Path) -> Result<(File, ObjectInfo), PortError> {
        let file = File::open(path).map_err(|e| io_error(e, bucket, key))?;
        let stat = file.metadata().map_err(|e| io_error(e, bucket, key))?;
        if !stat.is_file() {
            return Err(PortError::NotFound(format!("object {bucket}/{key}")));
        }
        let info = self.info_of(bucket, key, &stat, meta::read_file(&file));
        Ok((file, info))
    }

    /// Stores one staged object.
    async fn publish_one(&self, bucket: &str, staged: Staged) -> Result<ObjectInfo, PortError> {
        let mut infos = self.publish(bucket, vec![staged]).await?;
        Ok(infos.pop().expect("one object published"))
    }

    /// Info for an object from its file's metadata, with the stored ETag and metadata if they
    /// still describe the file.
    fn info_of(
        &self,
        bucket: &str,
        key: &str,
        stat: &std::fs::Metadata,
        stored: Option<StoredMeta>,
    ) -> ObjectInfo {
        let (etag, metadata) = StoredMeta::resolve(stored, meta::fingerprint(stat));
        object_info(bucket, key, stat, etag, metadata)
    }

    /// `head` on a path: a file, not a folder.
    fn head_path(&self, bucket: &str, key: &str, path: &Path) -> Result<ObjectInfo, PortError> {
        match std::fs::metadata(path) {
            Ok(stat) if stat.is_file() => Ok(self.info_of(bucket, key, &stat, meta::read(path))),
            Ok(_) => Err(PortError::NotFound(format!("object {bucket}/{key}"))),
            Err(e) => Err(io_error(e, bucket, key)),
        }
    }

    /// Stores a folder marker ([`folders`]), durable when it returns.
    async fn put_marker(&self, bucket: &str, key: &str, metadata: Metadata) -> Result<ObjectInfo, PortError> {
        let dir = self.marker_dir(bucket, key)?;
        let info = self
            .locks
            .with(&dir, || Ok(folders::put(bucket, key, &dir, metadata)))
            .map_err(|e| PortError::unavailable(format!("storing {bucket}/{key}"), e))??;
        self.sync(|| format!("storing {bucket}/{key}")).await?;
        Ok(info)
    }

    /// A folder marker from a spooled file, which must be empty (and is removed).
    async fn put_marker_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        metadata: Metadata,
    ) -> Result<ObjectInfo, PortError> {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let _ = std::fs::remove_file(path);
        if len > 0 {
            return Err(marker_not_empty(key));
        }
        self.put_marker(bucket, key, metadata).await
    }
}

/// How much of a large object one blocking read takes.
const READ_CHUNK: usize = 1 << 20;

/// The rest of an open file as a stream of chunks, each read on a blocking thread.
fn read_chunks(file: File, bucket: &str, key: &str) -> ByteStream {
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    futures::stream::try_unfold(Some(file), move |file| {
        let (bucket, key) = (bucket.clone(), key.clone());
        async move {
            let Some(mut file) = file else { return Ok(None) };
            let read = tokio::task::spawn_blocking(move || {
                let mut chunk = Vec::with_capacity(READ_CHUNK);
                (&mut file).take(READ_CHUNK as u64).read_to_end(&mut chunk).map(|_| (chunk, file))
            })
            .await
            .map_err(|e| PortError::unavailable(format!("reading {bucket}/{key}"), e))?;
            match read {
                Ok((chunk, _)) if chunk.is_empty() => Ok(None),
                Ok((chunk, file)) => Ok(Some((Bytes::from(chunk), Some(file)))),
                Err(e) => Err(io_error(e, &bucket, &key)),
            }
        }
    })
    .boxed()
}

/// An object written but not yet under its key.
struct Staged {
    info: ObjectInfo,
    dest: PathBuf,
    file: StagedFile,
}

impl Staged {
    fn discard(self) {
        self.file.discard();
    }
}

/// The file of a [`Staged`] object.
enum StagedFile {
    /// A file without a name (`O_TMPFILE`) on the key's file system: a process that dies before
    /// publishing it leaves nothing behind.
    Unnamed(File),
    /// A named file: the pipeline's spooled output, or a staging name beside the key where the
    /// file system has no `O_TMPFILE`.
    Named(PathBuf),
}

impl StagedFile {
    /// A new file to be published as `dest` (whose folder is created), open for writing.
    fn create(dest: &Path) -> std::io::Result<(File, StagedFile)> {
        let parent = dest.parent().expect("object paths have a parent");
        in_folder(parent, || Self::create_in(parent, dest))
    }

    fn create_in(parent: &Path, dest: &Path) -> std::io::Result<(File, StagedFile)> {
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::{Mode, OFlags};
            let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
            match rustix::fs::open(parent, flags, Mode::from_raw_mode(0o600)) {
                Ok(fd) => {
                    let file = File::from(fd);
                    return Ok((file.try_clone()?, StagedFile::Unnamed(file)));
                }
                // File systems without O_TMPFILE say so in one of these ways.
                Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR | rustix::io::Errno::INVAL) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let path = staging_path(dest);
        Ok((File::create(&path)?, StagedFile::Named(path)))
    }

    /// Puts the file under `dest`, replacing what is there. An unnamed file is linked as `dest`
    /// when no object is there yet; else it gets a staging name beside `dest` (a file cannot be
    /// linked over another), then is renamed within the folder: nothing waits between the two.
    fn publish(self, dest: &Path) -> std::io::Result<()> {
        match self {
            StagedFile::Named(path) => std::fs::rename(&path, dest).inspect_err(|_| {
                let _ = std::fs::remove_file(&path);
            }),
            StagedFile::Unnamed(file) => link_or_replace(dest, |name| link_open(&file, name)),
        }
    }

    fn discard(self) {
        if let StagedFile::Named(path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Runs `make`, which makes something in `folder`; if the folder is missing, creates it (and
/// its parents) and runs `make` again. The folder of a key usually exists, so the usual cost
/// is no extra call.
fn in_folder<T>(folder: &Path, mut make: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    match make() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !folder.is_dir() => {
            std::fs::create_dir_all(folder)?;
            make()
        }
        other => other,
    }
}

/// Gives a file the name `dest` with `link` (which makes a new name for the file): as `dest`
/// itself when nothing has that name (one directory change), else as a staging name beside
/// `dest` that is renamed over it (a link cannot replace a name).
fn link_or_replace(dest: &Path, link: impl Fn(&Path) -> std::io::Result<()>) -> std::io::Result<()> {
    match link(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let name = staging_path(dest);
            link(&name)?;
            std::fs::rename(&name, dest).inspect_err(|_| {
                let _ = std::fs::remove_file(&name);
            })
        }
        other => other,
    }
}

/// Gives an open file (an `O_TMPFILE` file, or one that has names) a new name, through
/// `/proc/self/fd` (which needs no privilege, unlike `AT_EMPTY_PATH`).
#[cfg(target_os = "linux")]
fn link_open(file: &File, name: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::linkat(rustix::fs::CWD, fd_path, rustix::fs::CWD, name, rustix::fs::AtFlags::SYMLINK_FOLLOW)
        .map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn link_open(_: &File, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other("open files are linked on Linux only"))
}

fn object_info(
    bucket: &str,
    key: &str,
    stat: &std::fs::Metadata,
    etag: String,
    metadata: Metadata,
) -> ObjectInfo {
    ObjectInfo {
        bucket: bucket.into(),
        key: key.into(),
        size: stat.len(),
        etag,
        last_modified: stat
            .modified()
            .map(chrono::DateTime::<chrono::Utc>::from)
            .unwrap_or_else(|_| chrono::Utc::now()),
        metadata,
    }
}

#[async_trait]
impl ObjectStore for LocalObjectStore {
    async fn create_bucket(&self, bucket: &str) -> Result<(), PortError> {
        validate_bucket(bucket).map_err(PortError::Invalid)?;
        std::fs::create_dir_all(self.bucket_dir(bucket))
            .map_err(|e| PortError::unavailable(format!("creating bucket folder for {bucket}"), e))?;
        self.sync(|| format!("creating bucket folder for {bucket}")).await
    }

    fn local_scratch(&self) -> Option<PathBuf> {
        Some(self.scratch.path().to_owned())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, PortError> {
        if folders::is_marker(key) {
            return folders::head(bucket, key, &self.marker_dir(bucket, key)?);
        }
        let path = self.existing_bucket_path(bucket, key)?;
        self.head_path(bucket, key, &path)
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<(ObjectInfo, ByteStream), PortError> {
        if folders::is_marker(key) {
            let info = folders::head(bucket, key, &self.marker_dir(bucket, key)?)?;
            return Ok((info, futures::stream::empty().boxed()));
        }
        let path = self.existing_bucket_path(bucket, key)?;
        let (mut file, info) = self.open_object(bucket, key, &path)?;
        if info.size > INLINE_BYTES {
            // From the file just opened (the bytes are the ETag's, whatever is renamed over
            // the key meanwhile), in chunks read on blocking threads.
            return Ok((info, read_chunks(file, bucket, key)));
        }
        let mut body = Vec::with_capacity(info.size as usize);
        file.read_to_end(&mut body).map_err(|e| io_error(e, bucket, key))?;
        Ok((info, futures::stream::once(futures::future::ready(Ok(Bytes::from(body)))).boxed()))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        metadata: Metadata,
    ) -> Result<ObjectInfo, PortError> {
        if folders::is_marker(key) {
            if !data.is_empty() {
                return Err(marker_not_empty(key));
            }
            return self.put_marker(bucket, key, metadata).await;
        }
        let staged = self.stage_bytes(bucket, key, data, metadata).await?;
        self.publish_one(bucket, staged).await
    }

    async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        metadata: Metadata,
    ) -> Result<ObjectInfo, PortError> {
        if folders::is_marker(key) {
            return self.put_marker_file(bucket, key, path, metadata).await;
        }
        let staged = self.stage_file(bucket, key, path, metadata, None).await?;
        self.publish_one(bucket, staged).await
    }

    async fn put_file_with_etag(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        metadata: Metadata,
        etag: String,
    ) -> Result<ObjectInfo, PortError> {
        if folders::is_marker(key) {
            return self.put_marker_file(bucket, key, path, metadata).await;
        }
        let staged = self.stage_file(bucket, key, path, metadata, Some(etag)).await?;
        self.publish_one(bucket, staged).await
    }

    /// Stages every object, then publishes them together: two syncs in all.
    async fn put_all(&self, bucket: &str, items: Vec<PutItem>) -> Result<Vec<ObjectInfo>, PortError> {
        let mut staged = Vec::with_capacity(items.len());
        for item in items {
            let one = match item.body {
                PutBody::Bytes(data) => self.stage_bytes(bucket, &item.key, data, item.metadata).await,
                PutBody::File(path) => self.stage_file(bucket, &item.key, &path, item.metadata, None).await,
            };
            match one {
                Ok(s) => staged.push(s),
                Err(e) => {
                    staged.into_iter().for_each(Staged::discard);
                    return Err(e);
                }
            }
        }
        self.publish(bucket, staged).await
    }

    /// A copy has an inode of its own (`copy_file_range` on Linux), never a link to the source:
    /// a later change of either object's metadata, an attribute of the inode, must not reach
    /// the other.
    async fn copy(
        &self,
        from_bucket: &str,
        from_key: &str,
        to_bucket: &str,
        to_key: &str,
        metadata: Option<Metadata>,
    ) -> Result<ObjectInfo, PortError> {
        if folders::is_marker(from_key) || folders::is_marker(to_key) {
            let source = self.head(from_bucket, from_key).await?;
            if source.size > 0 {
                return Err(marker_not_empty(to_key));
            }
            return self.put(to_bucket, to_key, Bytes::new(), metadata.unwrap_or(source.metadata)).await;
        }
        let from_path = self.existing_bucket_path(from_bucket, from_key)?;
        let to_path = self.existing_bucket_path(to_bucket, to_key)?;
        let (file, source) = self.open_object(from_bucket, from_key, &from_path)?;
        let metadata = metadata.unwrap_or_else(|| source.metadata.clone());
        let staged = self.stage_copy(&file, &source, to_bucket, to_key, &to_path, metadata).await?;
        self.publish_one(to_bucket, staged).await
    }

    /// Links the source's file under the new key, then unlinks the old name if it still names
    /// that file: no bytes copied, the inode (with its attribute, rewritten first when the
    /// metadata changes) moves, and a version written under the old key meanwhile stays.
    /// Repeating a move that was cut short finishes it.
    async fn move_object(
        &self,
        from_bucket: &str,
        from_key: &str,
        to_bucket: &str,
        to_key: &str,
        metadata: Option<Metadata>,
        if_match: Option<&str>,
    ) -> Result<ObjectInfo, PortError> {
        if folders::is_marker(from_key) || folders::is_marker(to_key) {
            let source = self.head(from_bucket, from_key).await?;
            if if_match.is_some_and(|want| want.trim_matches('"') != source.etag) {
                return Err(PortError::NotFound(format!("this version of {from_bucket}/{from_key}")));
            }
            let info = self.copy(from_bucket, from_key, to_bucket, to_key, metadata).await?;
            self.delete_version(from_bucket, from_key, &source.etag).await?;
            return Ok(info);
        }
        let from_path = self.existing_bucket_path(from_bucket, from_key)?;
        let to_path = self.existing_bucket_path(to_bucket, to_key)?;
        let doing = || format!("moving {from_bucket}/{from_key} to {to_bucket}/{to_key}");
        // The version that moves: this open file, whatever is renamed over the key from now on.
        let (file, source) = self.open_object(from_bucket, from_key, &from_path)?;
        if if_match.is_some_and(|want| want.trim_matches('"') != source.etag.trim_matches('"')) {
            return Err(PortError::NotFound(format!("this version of {from_bucket}/{from_key}")));
        }
        let metadata = metadata.unwrap_or_else(|| source.metadata.clone());
        let stat = file.metadata().map_err(|e| io_error(e, from_bucket, from_key))?;
        let cut_short = from_path != to_path && is_file(&to_path, &stat);
        if !cut_short && from_path != to_path && link_count(&stat) > 1 {
            // The inode is another key's too (a linked copy made by an earlier weir): writing
            // the new metadata on it would change that object, so this move copies.
            let staged = self.stage_copy(&file, &source, to_bucket, to_key, &to_path, metadata).await?;
            self.publish_one(to_bucket, staged).await?;
        } else {
            // The attribute on the source's inode first, so the object appears under its new
            // key with it.
            meta::write(&file, &meta::fingerprint(&stat), source.etag.clone(), metadata)
                .map_err(|e| io_error(e, from_bucket, from_key))?;
            if from_path == to_path {
                self.sync(doing).await?;
                return self.head_path(to_bucket, to_key, &to_path);
            }
            if !cut_short {
                let folder = to_path.parent().expect("object paths have a parent");
                let linked = in_folder(folder, || {
                    self.locks.with(&to_path, || link_or_replace(&to_path, |name| link_open(&file, name)))
                });
                linked.map_err(|e| match e.kind() {
                    // The file lost its last name since it was opened: deleted meanwhile.
                    std::io::ErrorKind::NotFound => io_error(e, from_bucket, from_key),
                    _ => PortError::unavailable(doing(), e),
                })?;
            }
            // The new name must be on disk before the old one goes.
            self.sync(doing).await?;
        }
        let removed = self.locks.with(&from_path, || match std::fs::metadata(&from_path) {
            Ok(now) if same_inode(&now, &stat) => std::fs::remove_file(&from_path).map(|()| true),
            Ok(_) => Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        });
        if removed.map_err(|e| PortError::unavailable(doing(), e))? {
            self.sync(doing).await?;
        }
        self.head_path(to_bucket, to_key, &to_path)
    }

    /// Under the key's lock, so no write lands between the look and the unlink.
    async fn delete_version(&self, bucket: &str, key: &str, etag: &str) -> Result<bool, PortError> {
        if folders::is_marker(key) {
            let dir = self.marker_dir(bucket, key)?;
            if etag.trim_matches('"') != folders::EMPTY_ETAG {
                return Ok(false);
            }
            let removed = self
                .locks
                .with(&dir, || Ok(folders::delete(bucket, key, &dir)))
                .map_err(|e| PortError::unavailable(format!("deleting {bucket}/{key}"), e))??;
            self.sync(|| format!("deleting {bucket}/{key}")).await?;
            return Ok(removed);
        }
        let path = self.existing_bucket_path(bucket, key)?;
        let etag = etag.trim_matches('"');
        let removed = self.locks.with(&path, || match std::fs::metadata(&path) {
            Ok(stat) if stat.is_file() => {
                let (current, _) = StoredMeta::resolve(meta::read(&path), meta::fingerprint(&stat));
                if current.trim_matches('"') == etag {
                    std::fs::remove_file(&path).map(|()| true)
                } else {
                    Ok(false)
                }
            }
            Ok(_) => Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        });
        let removed = removed.map_err(|e| PortError::unavailable(format!("deleting {bucket}/{key}"), e))?;
        if removed {
            self.sync(|| format!("deleting {bucket}/{key}")).await?;
        }
        Ok(removed)
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), PortError> {
        if folders::is_marker(key) {
            let dir = self.marker_dir(bucket, key)?;
            self.locks
                .with(&dir, || Ok(folders::delete(bucket, key, &dir)))
                .map_err(|e| PortError::unavailable(format!("deleting {bucket}/{key}"), e))??;
            return self.sync(|| format!("deleting {bucket}/{key}")).await;
        }
        let path = self.existing_bucket_path(bucket, key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => self.sync(|| format!("deleting {bucket}/{key}")).await,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            // A folder under the key is not an object: nothing to delete, as on S3.
            Err(_) if path.is_dir() => Ok(()),
            Err(e) => Err(PortError::unavailable(format!("deleting {bucket}/{key}"), e)),
        }
    }

    /// A walk of the bucket's folders in key order that holds at most a page of names per
    /// folder level (see [`listing`]), on a blocking thread: one `readdir` pass per folder
    /// walked, a `stat` and an attribute read per key of the page.
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        max_keys: usize,
    ) -> Result<ObjectPage, PortError> {
        self.require_bucket(bucket)?;
        let max_keys = clamp_page(max_keys);
        let (this, bucket_name) = (self.clone(), bucket.to_owned());
        let (prefix, after) = (prefix.to_owned(), start_after.map(str::to_owned));
        tokio::task::spawn_blocking(move || {
            let dir = this.bucket_dir(&bucket_name);
            // One more than the page, to know whether another page follows.
            let mut found = listing::first_keys(&dir, &prefix, after.as_deref(), max_keys + 1)
                .map_err(|e| PortError::unavailable(format!("listing {bucket_name}/{prefix}"), e))?;
            let more = found.len() > max_keys;
            found.truncate(max_keys);
            let next_after = more.then(|| found.last().map(|f| f.key.clone())).flatten();
            let mut objects = Vec::with_capacity(found.len());
            for f in found {
                if f.marker {
                    // A folder marker ([`folders`]): the marked folder is the object.
                    match folders::head(&bucket_name, &f.key, &f.path) {
                        Ok(info) => objects.push(info),
                        Err(PortError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                    continue;
                }
                match std::fs::metadata(&f.path) {
                    Ok(stat) if stat.is_file() => {
                        objects.push(this.info_of(&bucket_name, &f.key, &stat, meta::read(&f.path)))
                    }
                    // Deleted since the walk saw it, or not a file: not an object.
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(e, &bucket_name, &f.key)),
                }
            }
            Ok(ObjectPage { objects, next_after })
        })
        .await
        .map_err(|e| PortError::unavailable(format!("listing {bucket}"), e))?
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, PortError> {
        let entries = std::fs::read_dir(&self.root)
            .map_err(|e| PortError::unavailable(format!("listing {}", self.root.display()), e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| PortError::unavailable("listing buckets", e))?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            let Ok(meta) = entry.metadata() else { continue };
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
        match self.require_bucket(bucket) {
            Ok(()) => Ok(true),
            Err(PortError::NoSuchBucket(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        range: Range<u64>,
    ) -> Result<(ObjectInfo, ByteStream), PortError> {
        if folders::is_marker(key) {
            let info = folders::head(bucket, key, &self.marker_dir(bucket, key)?)?;
            return Ok((info, futures::stream::empty().boxed()));
        }
        let path = self.existing_bucket_path(bucket, key)?;
        let info = self.head_path(bucket, key, &path)?;
        if range.start >= range.end {
            return Ok((info, futures::stream::empty().boxed()));
        }
        let loc = self.location(bucket, key)?;
        let options = GetOptions { range: Some(GetRange::Bounded(range)), ..Default::default() };
        let result = self.store.get_opts(&loc, options).await.map_err(|e| store_error(e, bucket, key))?;
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let stream = result.into_stream().map_err(move |e| store_error(e, &b, &k)).boxed();
        Ok((info, stream))
    }
}

/// Whether two stats are of one file.
#[cfg(unix)]
fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_inode(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}

/// Whether `path` names the file `stat` describes.
fn is_file(path: &Path, stat: &std::fs::Metadata) -> bool {
    std::fs::metadata(path).is_ok_and(|m| same_inode(&m, stat))
}

/// How many names the file has.
#[cfg(unix)]
fn link_count(stat: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    stat.nlink()
}

#[cfg(not(unix))]
fn link_count(_: &std::fs::Metadata) -> u64 {
    1
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

/// A failed file operation on an object: a missing file is `NotFound`.
/// A key ending in `/` with content: only empty folder markers are stored.
fn marker_not_empty(key: &str) -> PortError {
    PortError::Invalid(format!(
        "{key:?} ends in `/`, a folder marker: it must be empty (objects go under it, e.g. {key}name.csv)"
    ))
}

fn io_error(e: std::io::Error, bucket: &str, key: &str) -> PortError {
    if e.kind() == std::io::ErrorKind::NotFound {
        PortError::NotFound(format!("object {bucket}/{key}"))
    } else {
        PortError::unavailable(format!("object store ({bucket}/{key})"), e)
    }
}

fn store_error(e: object_store::Error, bucket: &str, key: &str) -> PortError {
    match e {
        object_store::Error::NotFound { .. } => PortError::NotFound(format!("object {bucket}/{key}")),
        object_store::Error::InvalidPath { .. } => PortError::Invalid(format!("object key {key:?}: {e}")),
        other => PortError::unavailable(format!("object store ({bucket}/{key})"), other),
    }
}

fn staging_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    // A digits-only `#` suffix is what object_store itself stages with, and lists skip it.
    name.push(format!("#{}", uuid::Uuid::new_v4().as_u128() % 10u128.pow(20)));
    dest.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt as _;

    use super::*;

    /// The fingerprint the attribute is checked against is the ETag `object_store` lists a file
    /// with, so listed objects keep their stored ETags.
    #[tokio::test]
    async fn the_fingerprint_is_object_stores_etag() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalObjectStore::open(dir.path()).unwrap();
        store.create_bucket("bkt").await.unwrap();
        store.put("bkt", "k/x.csv", Bytes::from_static(b"abc"), Metadata::new()).await.unwrap();
        let listed =
            store.store.head(&StorePath::from("bkt/k/x.csv")).await.expect("object_store reads the object");
        let stat = std::fs::metadata(dir.path().join("bkt/k/x.csv")).unwrap();
        assert_eq!(listed.e_tag.unwrap(), meta::fingerprint(&stat));
    }
}
