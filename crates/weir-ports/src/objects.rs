//! The object store port: buckets of keyed byte objects with S3's semantics.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

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

    /// Objects whose key starts with `prefix`, in key order.
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, PortError>;
}
