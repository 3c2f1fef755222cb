//! The object store port: buckets of keyed byte objects with S3's semantics.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::StreamExt;

use crate::PortError;

/// User metadata (`x-amz-meta-*` without the prefix).
pub type Metadata = BTreeMap<String, String>;

/// A stream of an object's bytes, in order.
pub type ByteStream = BoxStream<'static, Result<Bytes, PortError>>;

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInfo {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// Without quotes. The MD5 hex of the content for objects weir wrote, as S3 computes it.
    pub etag: String,
    pub last_modified: DateTime<Utc>,
    pub metadata: Metadata,
}

/// One object of an [`ObjectStore::put_all`].
#[derive(Debug, Clone)]
pub struct PutItem {
    pub key: String,
    pub body: PutBody,
    pub metadata: Metadata,
}

/// Where a [`PutItem`]'s bytes are.
#[derive(Debug, Clone)]
pub enum PutBody {
    Bytes(Bytes),
    /// A local file, which the store may move rather than copy (as in
    /// [`ObjectStore::put_file`]).
    File(std::path::PathBuf),
}

/// A bucket, as S3's ListBuckets reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketInfo {
    pub name: String,
    pub created: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Creates the bucket if it does not exist.
    async fn create_bucket(&self, bucket: &str) -> Result<(), PortError>;

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, PortError>;

    /// The object's info and a stream of its bytes. `NotFound` if it does not exist.
    async fn get(&self, bucket: &str, key: &str) -> Result<(ObjectInfo, ByteStream), PortError>;

    /// Stores `data` under the key, replacing any object there. Readers see the old object or
    /// the new one, never a part.
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        metadata: Metadata,
    ) -> Result<ObjectInfo, PortError>;

    /// Stores the contents of a local file (which the store may move rather than copy; the
    /// caller must not use `path` afterwards). Atomic like [`ObjectStore::put`].
    async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        metadata: Metadata,
    ) -> Result<ObjectInfo, PortError>;

    /// A local folder on the store's own file system for files that will be stored with
    /// [`ObjectStore::put_file`] (which then moves them rather than copying), and which the store
    /// cleans up after a crash. `None` for stores that are not local.
    fn local_scratch(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// Stores several objects in one bucket, as [`ObjectStore::put`] and
    /// [`ObjectStore::put_file`] would one after the other: each appears whole, in the order
    /// given. Stores that can make them durable together do, for one sync instead of one per
    /// object. On an error, the objects before the failing one may have been stored.
    async fn put_all(&self, bucket: &str, items: Vec<PutItem>) -> Result<Vec<ObjectInfo>, PortError> {
        let mut stored = Vec::with_capacity(items.len());
        for item in items {
            stored.push(match item.body {
                PutBody::Bytes(data) => self.put(bucket, &item.key, data, item.metadata).await?,
                PutBody::File(path) => self.put_file(bucket, &item.key, &path, item.metadata).await?,
            });
        }
        Ok(stored)
    }

    /// Server-side copy. `metadata: None` keeps the source's metadata (S3 `COPY`), `Some`
    /// replaces it (S3 `REPLACE`).
    async fn copy(
        &self,
        from_bucket: &str,
        from_key: &str,
        to_bucket: &str,
        to_key: &str,
        metadata: Option<Metadata>,
    ) -> Result<ObjectInfo, PortError>;

    /// Deletes the object; deleting a missing object succeeds, as in S3.
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), PortError>;

    /// Deletes the object if it is still the version with ETag `etag`: a newer version written
    /// under the key meanwhile is never removed (nor is anything, if the key holds another
    /// version or nothing). Returns whether it deleted.
    async fn delete_version(&self, bucket: &str, key: &str, etag: &str) -> Result<bool, PortError>;

    /// Moves an object to another key (and bucket), with `metadata` as in [`ObjectStore::copy`]:
    /// a copy, then the delete of the source. Stores that can rename do it without copying
    /// bytes. With `if_match`, only the version with that ETag moves, and only it is removed
    /// from the source key: `NotFound` if the key holds another version, and a version written
    /// during the move stays. `NotFound` if the source does not exist; repeating a move cut
    /// short finishes it.
    async fn move_object(
        &self,
        from_bucket: &str,
        from_key: &str,
        to_bucket: &str,
        to_key: &str,
        metadata: Option<Metadata>,
        if_match: Option<&str>,
    ) -> Result<ObjectInfo, PortError> {
        let source = self.head(from_bucket, from_key).await?;
        let etag = source.etag.trim_matches('"').to_owned();
        if if_match.is_some_and(|want| want.trim_matches('"') != etag) {
            return Err(PortError::NotFound(format!("this version of {from_bucket}/{from_key}")));
        }
        let info = self.copy(from_bucket, from_key, to_bucket, to_key, metadata).await?;
        if info.etag.trim_matches('"') != etag {
            // Replaced between the look and the copy: what was copied is the newer version,
            // which stays where it is; the copy is only a copy.
            return Err(PortError::NotFound(format!("this version of {from_bucket}/{from_key}")));
        }
        self.delete_version(from_bucket, from_key, &etag).await?;
        Ok(info)
    }

    /// One page of the objects whose key starts with `prefix`, as S3's ListObjectsV2 with
    /// `StartAfter`: in key order (by the keys' UTF-8 bytes), only keys after `start_after`
    /// (every key when `None`), at most `max_keys` of them ([`clamp_page`] bounds it to
    /// `1..=`[`MAX_PAGE_KEYS`]).
    ///
    /// The next page starts after the [`ObjectPage::next_after`] of this one. Between pages the
    /// bucket may change, as on S3: a key added after the last key listed, or one still there,
    /// is listed on a later page; one removed before its page is read is not; one added before
    /// the last key listed is not listed at all. A listing never repeats a key nor goes back.
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        max_keys: usize,
    ) -> Result<ObjectPage, PortError>;

    /// Every object whose key starts with `prefix`, in key order, in memory at once: only for
    /// prefixes that are small by construction (a year of daily reports, a test's bucket).
    /// Anything that can grow with the data pages through [`ObjectStore::list_page`] (or
    /// [`ObjectPages`]) instead.
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, PortError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.list_page(bucket, prefix, after.as_deref(), MAX_PAGE_KEYS).await?;
            out.extend(page.objects);
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Every bucket, by name. Stores that cannot enumerate their buckets say so.
    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, PortError> {
        Err(PortError::Invalid("this object store cannot list its buckets".into()))
    }

    /// Whether the bucket exists.
    async fn bucket_exists(&self, bucket: &str) -> Result<bool, PortError> {
        match self.list_page(bucket, "", None, 1).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The object's info and the bytes in `range` (end exclusive; an end past the object's size
    /// stops at the size). The caller checks the range against `head` first, as S3 does.
    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        range: Range<u64>,
    ) -> Result<(ObjectInfo, ByteStream), PortError> {
        let (info, stream) = self.get(bucket, key).await?;
        Ok((info, slice_stream(stream, range)))
    }

    /// [`ObjectStore::put_file`] with the ETag the caller computed while writing the file (the
    /// MD5 hex, or S3's multipart form `<md5 of the part md5s>-<parts>`), which the store keeps
    /// instead of reading the file again. Stores that compute ETags themselves ignore it.
    async fn put_file_with_etag(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        metadata: Metadata,
        etag: String,
    ) -> Result<ObjectInfo, PortError> {
        let _ = etag;
        self.put_file(bucket, key, path, metadata).await
    }
}

/// The most keys one [`ObjectStore::list_page`] returns (S3's own limit).
pub const MAX_PAGE_KEYS: usize = 1000;

/// A page size within `1..=`[`MAX_PAGE_KEYS`].
pub fn clamp_page(max_keys: usize) -> usize {
    max_keys.clamp(1, MAX_PAGE_KEYS)
}

/// One page of a listing ([`ObjectStore::list_page`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectPage {
    /// In key order.
    pub objects: Vec<ObjectInfo>,
    /// The key the next page starts after (the last key of this one, or past it when keys
    /// vanished while the page was read); `None` when no key of the prefix followed.
    pub next_after: Option<String>,
}

/// A listing read page by page ([`ObjectStore::list_page`]): at most one page is in memory,
/// however many objects the prefix holds.
///
/// ```text
/// let mut pages = ObjectPages::new(&*store, "bucket", "archive/", 500);
/// while let Some(page) = pages.next().await? { /* ... */ }
/// ```
pub struct ObjectPages<'a, S: ObjectStore + ?Sized> {
    store: &'a S,
    bucket: String,
    prefix: String,
    page_keys: usize,
    after: Option<String>,
    done: bool,
}

impl<'a, S: ObjectStore + ?Sized> ObjectPages<'a, S> {
    /// Pages of `page_keys` objects (clamped as in [`clamp_page`]) from the start of `prefix`.
    pub fn new(store: &'a S, bucket: &str, prefix: &str, page_keys: usize) -> Self {
        ObjectPages {
            store,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            page_keys,
            after: None,
            done: false,
        }
    }

    /// Starts after `key` instead (a checkpoint).
    pub fn starting_after(mut self, key: Option<String>) -> Self {
        self.after = key;
        self
    }

    /// The next page, `None` once the listing is complete. Never an empty page.
    pub async fn next(&mut self) -> Result<Option<Vec<ObjectInfo>>, PortError> {
        while !self.done {
            let page = self
                .store
                .list_page(&self.bucket, &self.prefix, self.after.as_deref(), self.page_keys)
                .await?;
            match page.next_after {
                Some(next) => self.after = Some(next),
                None => self.done = true,
            }
            if !page.objects.is_empty() {
                return Ok(Some(page.objects));
            }
        }
        Ok(None)
    }
}

/// The bytes of `stream` that fall in `range` (positions counted from the stream's start); stops
/// reading once the range is done.
pub fn slice_stream(stream: ByteStream, range: Range<u64>) -> ByteStream {
    stream
        .scan(0u64, move |pos, chunk| {
            if *pos >= range.end {
                return futures::future::ready(None);
            }
            let item = match chunk {
                Err(e) => Some(Err(e)),
                Ok(bytes) => {
                    let (start, end) = (*pos, *pos + bytes.len() as u64);
                    *pos = end;
                    let (from, to) = (range.start.max(start), range.end.min(end));
                    (from < to).then(|| Ok(bytes.slice((from - start) as usize..(to - start) as usize)))
                }
            };
            futures::future::ready(Some(item))
        })
        .filter_map(futures::future::ready)
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slices_across_chunks() {
        let chunks: Vec<Result<Bytes, PortError>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"def")),
            Ok(Bytes::from_static(b"gh")),
        ];
        let sliced: Vec<Bytes> =
            slice_stream(futures::stream::iter(chunks).boxed(), 2..7).map(|c| c.unwrap()).collect().await;
        assert_eq!(sliced.concat(), b"cdefg");
    }
}
