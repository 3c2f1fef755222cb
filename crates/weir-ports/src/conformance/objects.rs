//! The object store conformance suite: S3's semantics as the pipeline relies on them, for every
//! [`ObjectStore`] adapter (folders embedded, S3 on AWS, in memory for tests).
//!
//! An adapter's test calls [`run_all`] with a function that opens a store whose buckets
//! `in-bucket` and `out-bucket` exist and are empty; every case opens its own. Adapter-specific
//! behaviour (files on disk, multipart) stays in the adapter's own tests.
//!
//! Failures panic with `object store conformance <case>: <what went wrong>`.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;

use crate::{Metadata, ObjectStore, PortError, PutBody, PutItem};

/// One store, for one case.
pub type Store = Arc<dyn ObjectStore>;

/// The buckets every store a case gets has.
pub const BUCKETS: [&str; 2] = ["in-bucket", "out-bucket"];

/// Runs every case, each on a fresh store from `open`.
pub async fn run_all<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Store>,
{
    put_get_head_round_trip(open().await).await;
    overwrite_and_delete(open().await).await;
    copies_keep_or_replace_metadata(open().await).await;
    listings_use_string_prefixes(open().await).await;
    ranges(open().await).await;
    put_all_stores_every_item(open().await).await;
    missing_buckets_and_escaping_keys(open().await).await;
    delete_version_removes_only_that_version(open().await).await;
    moves_take_only_the_version_asked_for(open().await).await;
}

fn fail(case: &str, what: impl std::fmt::Display) -> ! {
    panic!("object store conformance {case}: {what}")
}

fn md5(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(data))
}

async fn read(case: &str, s: &Store, bucket: &str, key: &str) -> Vec<u8> {
    let (_, stream) =
        s.get(bucket, key).await.unwrap_or_else(|e| fail(case, format!("get {bucket}/{key}: {e}")));
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap_or_else(|e| fail(case, e));
    chunks.concat()
}

fn gone(case: &str, r: Result<crate::ObjectInfo, PortError>, what: &str) {
    match r {
        Err(PortError::NotFound(_)) => {}
        other => fail(case, format!("{what}: expected NotFound, got {other:?}")),
    }
}

/// The ETag is the MD5 of the content (as S3's for a single PUT), metadata comes back as
/// written, and the bytes are the bytes.
pub async fn put_get_head_round_trip(s: Store) {
    let case = "put_get_head_round_trip";
    let meta = Metadata::from([("owner".to_string(), "ann".to_string())]);
    let body = Bytes::from_static("hello, ยอดขาย\n".as_bytes());
    let info = s
        .put("in-bucket", "raw/a b/ข.csv", body.clone(), meta.clone())
        .await
        .unwrap_or_else(|e| fail(case, e));
    if info.etag.trim_matches('"') != md5(&body) || info.size != body.len() as u64 {
        fail(case, format!("put answered {info:?}"));
    }
    let head = s.head("in-bucket", "raw/a b/ข.csv").await.unwrap_or_else(|e| fail(case, e));
    if head.etag.trim_matches('"') != md5(&body) || head.metadata != meta || head.size != body.len() as u64 {
        fail(case, format!("head answered {head:?}"));
    }
    if read(case, &s, "in-bucket", "raw/a b/ข.csv").await != body {
        fail(case, "the bytes read back differ");
    }
    gone(case, s.head("in-bucket", "raw/missing.csv").await, "head of a missing key");
    if !matches!(s.get("in-bucket", "raw/missing.csv").await, Err(PortError::NotFound(_))) {
        fail(case, "get of a missing key is not NotFound");
    }
}

/// A put replaces the object; deleting one (or a missing one) succeeds.
pub async fn overwrite_and_delete(s: Store) {
    let case = "overwrite_and_delete";
    s.put("in-bucket", "k.csv", Bytes::from_static(b"one"), Metadata::new())
        .await
        .unwrap_or_else(|e| fail(case, e));
    let two = Metadata::from([("v".to_string(), "2".to_string())]);
    let info = s
        .put("in-bucket", "k.csv", Bytes::from_static(b"two"), two.clone())
        .await
        .unwrap_or_else(|e| fail(case, e));
    let head = s.head("in-bucket", "k.csv").await.unwrap_or_else(|e| fail(case, e));
    if head.etag != info.etag || head.metadata != two || read(case, &s, "in-bucket", "k.csv").await != b"two"
    {
        fail(case, format!("after an overwrite: {head:?}"));
    }
    s.delete("in-bucket", "k.csv").await.unwrap_or_else(|e| fail(case, e));
    gone(case, s.head("in-bucket", "k.csv").await, "a deleted key");
    s.delete("in-bucket", "k.csv")
        .await
        .unwrap_or_else(|e| fail(case, format!("deleting a missing key: {e}")));
}

/// `copy` with `None` keeps the source's metadata (S3 COPY), with `Some` replaces it (REPLACE);
/// the copy keeps the source's ETag (same bytes).
pub async fn copies_keep_or_replace_metadata(s: Store) {
    let case = "copies_keep_or_replace_metadata";
    let meta = Metadata::from([("a".to_string(), "1".to_string())]);
    let src = s
        .put("in-bucket", "src.csv", Bytes::from_static(b"abc"), meta.clone())
        .await
        .unwrap_or_else(|e| fail(case, e));
    let kept = s
        .copy("in-bucket", "src.csv", "out-bucket", "kept.csv", None)
        .await
        .unwrap_or_else(|e| fail(case, e));
    let other = Metadata::from([("b".to_string(), "2".to_string())]);
    let replaced = s
        .copy("in-bucket", "src.csv", "out-bucket", "replaced.csv", Some(other.clone()))
        .await
        .unwrap_or_else(|e| fail(case, e));
    for (what, info, want) in [("kept", &kept, &meta), ("replaced", &replaced, &other)] {
        let head = s.head("out-bucket", &info.key).await.unwrap_or_else(|e| fail(case, e));
        if head.metadata != *want || head.etag.trim_matches('"') != src.etag.trim_matches('"') {
            fail(case, format!("{what}: {head:?}"));
        }
    }
    if read(case, &s, "out-bucket", "kept.csv").await != b"abc" {
        fail(case, "the copy's bytes differ");
    }
    if s.head("in-bucket", "src.csv").await.unwrap_or_else(|e| fail(case, e)).metadata != meta {
        fail(case, "copying changed the source");
    }
}

/// Listings are by string prefix (not folder), in key order.
pub async fn listings_use_string_prefixes(s: Store) {
    let case = "listings_use_string_prefixes";
    for k in ["raw/b.csv", "raw/a.csv", "raw2/c.csv", "raw/sub/d.csv", "other.csv"] {
        s.put("in-bucket", k, Bytes::from_static(b"x"), Metadata::new())
            .await
            .unwrap_or_else(|e| fail(case, e));
    }
    let keys = |prefix: &'static str| {
        let s = s.clone();
        async move {
            s.list("in-bucket", prefix)
                .await
                .unwrap_or_else(|e| fail(case, e))
                .into_iter()
                .map(|o| o.key)
                .collect::<Vec<_>>()
        }
    };
    if keys("raw/").await != ["raw/a.csv", "raw/b.csv", "raw/sub/d.csv"] {
        fail(case, format!("prefix raw/: {:?}", keys("raw/").await));
    }
    if keys("raw").await != ["raw/a.csv", "raw/b.csv", "raw/sub/d.csv", "raw2/c.csv"] {
        fail(case, format!("prefix raw: {:?}", keys("raw").await));
    }
    if keys("").await.len() != 5 || !keys("nothing/").await.is_empty() {
        fail(case, "the whole bucket, or an empty prefix");
    }
}

/// A range read gives the bytes of the range, stopping at the end of the object.
pub async fn ranges(s: Store) {
    let case = "ranges";
    s.put("in-bucket", "r.bin", Bytes::from_static(b"0123456789"), Metadata::new())
        .await
        .unwrap_or_else(|e| fail(case, e));
    for (range, want) in [(2..5, &b"234"[..]), (8..100, &b"89"[..])] {
        let (_, stream) =
            s.get_range("in-bucket", "r.bin", range.clone()).await.unwrap_or_else(|e| fail(case, e));
        let got: Vec<Bytes> = stream.try_collect().await.unwrap_or_else(|e| fail(case, e));
        if got.concat() != want {
            fail(case, format!("{range:?}: {:?}", got.concat()));
        }
    }
}

/// `put_all` stores every item as a put would, files included.
pub async fn put_all_stores_every_item(s: Store) {
    let case = "put_all_stores_every_item";
    let dir = std::env::temp_dir().join(format!("weir-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(case, e));
    let file = s.local_scratch().unwrap_or(dir.clone()).join(format!("put-all-{}", md5(case.as_bytes())));
    std::fs::write(&file, b"from a file").unwrap_or_else(|e| fail(case, e));
    let items = vec![
        PutItem {
            key: "a.json".into(),
            body: PutBody::Bytes(Bytes::from_static(b"{}")),
            metadata: Metadata::new(),
        },
        PutItem { key: "b/c.ndjson".into(), body: PutBody::File(file), metadata: Metadata::new() },
    ];
    let stored = s.put_all("out-bucket", items).await.unwrap_or_else(|e| fail(case, e));
    if stored.len() != 2 || read(case, &s, "out-bucket", "b/c.ndjson").await != b"from a file" {
        fail(case, format!("stored {stored:?}"));
    }
    if read(case, &s, "out-bucket", "a.json").await != b"{}" {
        fail(case, "the bytes item");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A missing bucket is `NoSuchBucket` (a set-up problem, retried), not a missing object; keys
/// that would escape their bucket are refused before anything is written.
pub async fn missing_buckets_and_escaping_keys(s: Store) {
    let case = "missing_buckets_and_escaping_keys";
    for r in [
        s.head("no-such-bucket", "k").await.map(drop),
        s.put("no-such-bucket", "k", Bytes::from_static(b"x"), Metadata::new()).await.map(drop),
    ] {
        if !matches!(r, Err(PortError::NoSuchBucket(_))) {
            fail(case, format!("a missing bucket: {r:?}"));
        }
    }
    match s.bucket_exists("no-such-bucket").await {
        Ok(false) => {}
        other => fail(case, format!("bucket_exists of a missing bucket: {other:?}")),
    }
    for key in ["../escape.csv", "/abs.csv", "a/../../b", "a//b", "a\0b"] {
        let r = s.put("in-bucket", key, Bytes::from_static(b"x"), Metadata::new()).await;
        if !matches!(r, Err(PortError::Invalid(_))) {
            fail(case, format!("{key:?}: {r:?}"));
        }
    }
}

/// `delete_version` removes the object only while it is that version.
pub async fn delete_version_removes_only_that_version(s: Store) {
    let case = "delete_version_removes_only_that_version";
    let v1 = s
        .put("in-bucket", "d.csv", Bytes::from_static(b"one"), Metadata::new())
        .await
        .unwrap_or_else(|e| fail(case, e));
    let v2 = s
        .put("in-bucket", "d.csv", Bytes::from_static(b"two"), Metadata::new())
        .await
        .unwrap_or_else(|e| fail(case, e));
    if s.delete_version("in-bucket", "d.csv", &v1.etag).await.unwrap_or_else(|e| fail(case, e)) {
        fail(case, "deleted v2 when asked for v1");
    }
    if read(case, &s, "in-bucket", "d.csv").await != b"two" {
        fail(case, "v2 is not there any more");
    }
    if !s.delete_version("in-bucket", "d.csv", &v2.etag).await.unwrap_or_else(|e| fail(case, e)) {
        fail(case, "did not delete v2");
    }
    gone(case, s.head("in-bucket", "d.csv").await, "a deleted version");
}

/// A move with `if_match` takes only that version and leaves a newer one; a move repeated
/// after it happened (its answer lost) finds the destination and says `NotFound` for the
/// source, which the pipeline reads as done; a move keeps the ETag and sets the metadata.
pub async fn moves_take_only_the_version_asked_for(s: Store) {
    let case = "moves_take_only_the_version_asked_for";
    let v1 = s
        .put("in-bucket", "m.csv", Bytes::from_static(b"one"), Metadata::new())
        .await
        .unwrap_or_else(|e| fail(case, e));
    let v2 = s
        .put("in-bucket", "m.csv", Bytes::from_static(b"two"), Metadata::new())
        .await
        .unwrap_or_else(|e| fail(case, e));
    let r = s.move_object("in-bucket", "m.csv", "out-bucket", "m.csv", None, Some(&v1.etag)).await;
    if !matches!(r, Err(PortError::NotFound(_))) {
        fail(case, format!("moving v1 when the key holds v2: {r:?}"));
    }
    if read(case, &s, "in-bucket", "m.csv").await != b"two" {
        fail(case, "a refused move removed v2");
    }
    let meta = Metadata::from([("job_id".to_string(), "j-1".to_string())]);
    let moved = s
        .move_object("in-bucket", "m.csv", "out-bucket", "m.csv", Some(meta.clone()), Some(&v2.etag))
        .await
        .unwrap_or_else(|e| fail(case, e));
    if moved.etag.trim_matches('"') != v2.etag.trim_matches('"') || moved.metadata != meta {
        fail(case, format!("the moved object: {moved:?}"));
    }
    gone(case, s.head("in-bucket", "m.csv").await, "the moved source");
    if read(case, &s, "out-bucket", "m.csv").await != b"two" {
        fail(case, "the destination's bytes");
    }
    let again = s.move_object("in-bucket", "m.csv", "out-bucket", "m.csv", Some(meta), Some(&v2.etag)).await;
    if !matches!(again, Err(PortError::NotFound(_))) {
        fail(case, format!("repeating a move that happened: {again:?}"));
    }
    // Without if_match, whatever version is there moves.
    s.put("in-bucket", "n.csv", Bytes::from_static(b"any"), Metadata::new())
        .await
        .unwrap_or_else(|e| fail(case, e));
    s.move_object("in-bucket", "n.csv", "in-bucket", "moved/n.csv", None, None)
        .await
        .unwrap_or_else(|e| fail(case, e));
    if read(case, &s, "in-bucket", "moved/n.csv").await != b"any" {
        fail(case, "a move within a bucket");
    }
}
