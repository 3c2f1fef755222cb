//! What a plain file cannot hold — the MD5 ETag S3 reports and user metadata (`x-amz-meta-*`) —
//! kept in an extended attribute of the file (`user.weir.meta`).
//!
//! The attribute is set on the staged file before it is renamed into place: it appears, moves
//! and disappears with the object and costs no file of its own (on a busy data dir, every file
//! created and deleted slows the next create). It is trusted only while the file's own
//! fingerprint (inode, size, mtime) is the one it was written for, so a file changed behind
//! weir's back loses its stale ETag.

use std::fs::File;
use std::path::Path;

use serde::{Deserialize, Serialize};
use weir_ports::Metadata;
use xattr::FileExt;

/// The extended attribute holding an object's [`StoredMeta`].
pub(crate) const META_XATTR: &str = "user.weir.meta";

/// `ENODATA`: the file has no such attribute.
const NO_ATTRIBUTE: i32 = 61;

/// `EOPNOTSUPP`: the file system has no extended attributes.
pub(crate) const NOT_SUPPORTED: i32 = 95;

/// What the extended attribute remembers about one object.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredMeta {
    /// The file's own fingerprint when the attribute was written (inode, size, mtime).
    pub fs_etag: String,
    pub etag: String,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

impl StoredMeta {
    /// The ETag and metadata of a file with fingerprint `fs_etag`: the stored ones if they were
    /// written for it, else the fingerprint and none.
    pub(crate) fn resolve(stored: Option<StoredMeta>, fs_etag: String) -> (String, Metadata) {
        match stored {
            Some(s) if s.fs_etag == fs_etag => (s.etag, s.metadata),
            _ => (fs_etag, Metadata::new()),
        }
    }
}

/// The stored ETag and metadata of a file, if it has any that can be read.
pub(crate) fn read(path: &Path) -> Option<StoredMeta> {
    let bytes = xattr::get(path, META_XATTR).ok().flatten()?;
    serde_json::from_slice(&bytes).ok()
}

/// [`read`] on an open file.
pub(crate) fn read_file(file: &File) -> Option<StoredMeta> {
    let bytes = file.get_xattr(META_XATTR).ok().flatten()?;
    serde_json::from_slice(&bytes).ok()
}

/// Sets (or, when the file says all there is to say, removes) a file's stored ETag and metadata.
pub(crate) fn write(file: &File, fs_etag: &str, etag: String, metadata: Metadata) -> std::io::Result<()> {
    if metadata.is_empty() && etag == fs_etag {
        return match file.remove_xattr(META_XATTR) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(NO_ATTRIBUTE) => Ok(()),
            Err(e) => Err(e),
        };
    }
    let body = serde_json::to_vec(&StoredMeta { fs_etag: fs_etag.to_owned(), etag, metadata })
        .expect("object metadata serializes");
    file.set_xattr(META_XATTR, &body)
}

/// Sets and reads back an attribute on a scratch file under `root`.
pub(crate) fn check_support(root: &Path) -> std::io::Result<()> {
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
/// which the attribute must match to be trusted. A test checks the two agree.
pub(crate) fn fingerprint(meta: &std::fs::Metadata) -> String {
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
