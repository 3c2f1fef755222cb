//! Folder markers: empty objects whose key ends in `/` (`csv/`), which the S3 console, setup
//! scripts (`aws s3api put-object --key csv/`) and some clients make, and S3 accepts as objects.
//!
//! A bucket's folders are real folders here, so a marker cannot be a file under its key. It is
//! the folder itself, marked by an extended attribute (`user.weir.folder`) holding what S3 keeps
//! of the object: its upload time and user metadata (its ETag is the empty body's MD5). Listings
//! add the marked folders under the listed prefix; deleting the marker removes the attribute
//! (and the folder, when nothing else is in it). Only empty bodies are taken: a key ending in `/`
//! with content could not be told apart from the folder's own objects.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use weir_core::keys::validate_key;
use weir_ports::{Metadata, ObjectInfo, PortError};

/// The extended attribute that marks a folder as a folder-marker object.
const FOLDER_XATTR: &str = "user.weir.folder";

/// The ETag of an empty body (its MD5), as S3 reports for a folder marker.
pub(crate) const EMPTY_ETAG: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// `ENODATA`: the folder has no such attribute.
const NO_ATTRIBUTE: i32 = 61;

/// What the attribute holds.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    created: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    metadata: Metadata,
}

/// Whether `key` names a folder marker (ends in `/`).
pub(crate) fn is_marker(key: &str) -> bool {
    key.ends_with('/')
}

/// Checks a marker key: the folder it names (without the last `/`) must be a valid key.
pub(crate) fn check(key: &str) -> Result<&str, PortError> {
    let folder = key.strip_suffix('/').unwrap_or(key);
    validate_key(folder).map_err(|e| PortError::Invalid(format!("folder marker {key:?}: {e}")))?;
    Ok(folder)
}

fn info(bucket: &str, key: &str, marker: Marker) -> ObjectInfo {
    ObjectInfo {
        bucket: bucket.into(),
        key: key.into(),
        size: 0,
        etag: EMPTY_ETAG.into(),
        last_modified: marker.created,
        metadata: marker.metadata,
    }
}

fn read(dir: &Path) -> Option<Marker> {
    let bytes = xattr::get(dir, FOLDER_XATTR).ok().flatten()?;
    serde_json::from_slice(&bytes).ok()
}

/// The marker at folder `dir` (key `key`), or `NotFound`.
pub(crate) fn head(bucket: &str, key: &str, dir: &Path) -> Result<ObjectInfo, PortError> {
    match std::fs::metadata(dir) {
        Ok(stat) if stat.is_dir() => {}
        _ => return Err(PortError::NotFound(format!("object {bucket}/{key}"))),
    }
    read(dir)
        .map(|m| info(bucket, key, m))
        .ok_or_else(|| PortError::NotFound(format!("object {bucket}/{key}")))
}

/// Makes folder `dir` (and its parents) and marks it; a marker there already is replaced.
pub(crate) fn put(bucket: &str, key: &str, dir: &Path, metadata: Metadata) -> Result<ObjectInfo, PortError> {
    let doing = || format!("storing the folder marker {bucket}/{key}");
    if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
        return Err(PortError::Invalid(format!(
            "{bucket}/{} is an object, so {key} cannot be a folder in this store",
            key.trim_end_matches('/')
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| PortError::unavailable(doing(), e))?;
    let marker = Marker { created: Utc::now(), metadata };
    let body = serde_json::to_vec(&marker).expect("a folder marker serializes");
    xattr::set(dir, FOLDER_XATTR, &body).map_err(|e| PortError::unavailable(doing(), e))?;
    Ok(info(bucket, key, marker))
}

/// Removes the marker at folder `dir` (a missing one is no error, as on S3), and the folder if
/// it is empty now. Returns whether a marker was there.
pub(crate) fn delete(bucket: &str, key: &str, dir: &Path) -> Result<bool, PortError> {
    let had = match xattr::remove(dir, FOLDER_XATTR) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(NO_ATTRIBUTE) || e.kind() == std::io::ErrorKind::NotFound => false,
        Err(_) if !dir.is_dir() => false,
        Err(e) => {
            return Err(PortError::unavailable(format!("deleting the folder marker {bucket}/{key}"), e))
        }
    };
    // Only an empty folder goes; one with objects stays (S3 has no folders to remove).
    let _ = std::fs::remove_dir(dir);
    Ok(had)
}

/// Whether folder `dir` is a folder marker.
pub(crate) fn is_marked(dir: &Path) -> bool {
    xattr::get(dir, FOLDER_XATTR).ok().flatten().is_some()
}
