//! Object keys: which are safe, and where a job's outputs go.
//!
//! Keys become file paths in the embedded object store, so a key that could climb out of its
//! bucket (`..`, an absolute path, a backslash, NUL) is refused before anything touches a disk.
//! Output keys are a pure function of the source object, so a redelivered event overwrites its
//! own outputs and two different sources can never write to the same place.

/// S3's limit on key length in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// The longest segment (between `/`s) of a key, in bytes. Each segment is a file or folder name
/// in the embedded store, at most 255 bytes on Linux file systems, and weir adds up to 34 to the
/// last one (an output's `.summary.json`, a staging name's `#` and 20 digits); 200 leaves room.
pub const MAX_SEGMENT_LEN: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("object key is empty")]
    Empty,
    #[error("object key is {0} bytes; the limit is {MAX_KEY_LEN}")]
    TooLong(usize),
    #[error("object key {0:?} starts with '/': keys are relative to their bucket")]
    Absolute(String),
    #[error("object key {0:?} contains a '..' or '.' segment, which could escape the bucket")]
    DotSegment(String),
    #[error("object key {0:?} contains a backslash")]
    Backslash(String),
    #[error("object key contains a NUL or control character")]
    ControlChar,
    #[error("object key {0:?} contains an empty segment ('//') or ends with '/'")]
    EmptySegment(String),
    #[error("object key has a segment of {0} bytes between '/'s; the limit is {MAX_SEGMENT_LEN}")]
    SegmentTooLong(usize),
}

/// Checks that `key` names an object inside its bucket.
pub fn validate_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(KeyError::TooLong(key.len()));
    }
    if key.chars().any(|c| c.is_control()) {
        return Err(KeyError::ControlChar);
    }
    if key.starts_with('/') {
        return Err(KeyError::Absolute(key.into()));
    }
    if key.contains('\\') {
        return Err(KeyError::Backslash(key.into()));
    }
    for segment in key.split('/') {
        match segment {
            "." | ".." => return Err(KeyError::DotSegment(key.into())),
            "" => return Err(KeyError::EmptySegment(key.into())),
            s if s.len() > MAX_SEGMENT_LEN => return Err(KeyError::SegmentTooLong(s.len())),
            _ => {}
        }
    }
    Ok(())
}

/// Endings of bucket names kept for weir's own files, which share the data dir with the buckets'
/// folders (`weir.db` and its `-wal`/`-shm`, `records.db`, `outbox.db`, `credentials.toml`,
/// `weir.toml`, `endpoints.json`, `alarms.json`, `run.lock`): a bucket of such a name would take
/// the file's place, or fail on it.
pub const RESERVED_BUCKET_ENDINGS: [&str; 7] =
    [".db", ".db-wal", ".db-shm", ".db-journal", ".toml", ".json", ".lock"];

/// Checks a bucket name as S3 does (3-63 characters of lowercase letters, digits, `-` and `.`,
/// starting and ending with a letter or digit), and that it is not one of weir's own file names
/// ([`RESERVED_BUCKET_ENDINGS`]).
pub fn validate_bucket(name: &str) -> Result<(), String> {
    if let Some(ending) = RESERVED_BUCKET_ENDINGS.iter().find(|e| name.ends_with(*e)) {
        return Err(format!(
            "bucket name {name:?} is reserved: names ending in {ending} are kept for weir's own files in the data dir"
        ));
    }
    let ok_len = (3..=63).contains(&name.len());
    let ok_chars =
        name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let ok_ends = name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok_len && ok_chars && ok_ends && !name.contains("..") {
        Ok(())
    } else {
        Err(format!(
            "bucket name {name:?} is not valid: use 3-63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit"
        ))
    }
}

/// Where a job's outputs are written in the output bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputKeys {
    pub results: String,
    pub summary: String,
    pub errors: String,
}

impl OutputKeys {
    /// `processed/<bucket>/<key>.<ext>`, `reports/<bucket>/<key>.summary.json`,
    /// `errors/<bucket>/<key>.errors.json`: each is the source's own bucket and key under a fixed
    /// prefix with a fixed suffix, which makes the mapping injective.
    pub fn for_source(bucket: &str, key: &str, results_ext: &str) -> OutputKeys {
        OutputKeys {
            results: format!("processed/{bucket}/{key}.{results_ext}"),
            summary: format!("reports/{bucket}/{key}.summary.json"),
            errors: format!("errors/{bucket}/{key}.errors.json"),
        }
    }
}

/// Where an image job's thumbnail of size `size` goes: `thumbnails/<size>/<bucket>/<key>_<size>.<ext>`,
/// the seed's `thumbnails/<size>/<name>_<size>.jpg` with the whole source (bucket, folders and
/// extension) kept, so that `a/x.jpg`, `b/x.jpg` and `a/x.png` do not write over each other.
/// `size` is a checked size name (no `/`), which keeps the mapping injective.
pub fn thumbnail_key(bucket: &str, key: &str, size: &str, ext: &str) -> String {
    format!("thumbnails/{size}/{bucket}/{key}_{size}.{ext}")
}

/// Where an image job's metadata document goes: `metadata/<bucket>/<key>.json`.
pub fn image_metadata_key(bucket: &str, key: &str) -> String {
    format!("metadata/{bucket}/{key}.json")
}

/// Where a rejected source is moved in its own bucket: `failed/YYYY/MM/DD/<source key>`.
///
/// The whole key (not just the file name) keeps `raw/a/x.csv` and `raw/b/x.csv` apart; the date
/// is the job's creation date, so a redelivery on another day finds the same place.
pub fn failed_key(source_key: &str, date: chrono::NaiveDate) -> String {
    format!("failed/{}/{source_key}", date.format("%Y/%m/%d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_keys_that_escape() {
        assert!(validate_key("raw/sales.csv").is_ok());
        assert!(validate_key("raw/ยอดขาย 2024.csv").is_ok());
        for bad in ["", "/etc/passwd", "../x", "raw/../../x", "raw/./x", "a\\b", "a\0b", "a//b", "dir/"] {
            assert!(validate_key(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(validate_key(&"k".repeat(1025)), Err(KeyError::TooLong(1025)));
        assert_eq!(validate_key(&format!("raw/{}.csv", "a".repeat(300))), Err(KeyError::SegmentTooLong(304)));
        assert!(validate_key(&format!("raw/{}/x.csv", "a".repeat(MAX_SEGMENT_LEN))).is_ok());
    }

    #[test]
    fn output_keys_do_not_collide() {
        let a = OutputKeys::for_source("in", "raw/a.csv", "ndjson");
        let b = OutputKeys::for_source("in", "raw/a.csv.ndjson", "ndjson");
        assert_ne!(a.results, b.results);
        assert_ne!(a.summary, OutputKeys::for_source("in2", "raw/a.csv", "ndjson").summary);
        assert_eq!(a.results, "processed/in/raw/a.csv.ndjson");
    }

    #[test]
    fn image_keys_keep_the_whole_source() {
        assert_eq!(
            thumbnail_key("weir-input", "images/cat.jpg", "small", "jpg"),
            "thumbnails/small/weir-input/images/cat.jpg_small.jpg"
        );
        let keys = [
            ("in", "images/a/x.jpg"),
            ("in", "images/b/x.jpg"),
            ("in", "images/a/x.png"),
            ("in2", "images/a/x.jpg"),
        ];
        let mut thumbs: Vec<_> = keys.iter().map(|(b, k)| thumbnail_key(b, k, "small", "jpg")).collect();
        let mut metas: Vec<_> = keys.iter().map(|(b, k)| image_metadata_key(b, k)).collect();
        thumbs.sort();
        thumbs.dedup();
        metas.sort();
        metas.dedup();
        assert_eq!((thumbs.len(), metas.len()), (4, 4));
        assert_eq!(image_metadata_key("in", "images/a/x.jpg"), "metadata/in/images/a/x.jpg.json");
    }

    #[test]
    fn bucket_names() {
        assert!(validate_bucket("weir-input").is_ok());
        assert!(validate_bucket("data.2024").is_ok());
        for own in [
            "records.db",
            "weir.db-wal",
            "outbox.db-shm",
            "weir.toml",
            "credentials.toml",
            "alarms.json",
            "run.lock",
        ] {
            assert!(validate_bucket(own).unwrap_err().contains("reserved"), "{own}");
        }
        assert!(validate_bucket("Weir").is_err());
        assert!(validate_bucket(".tmp").is_err());
    }
}
