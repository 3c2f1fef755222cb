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

use crate::{Metadata, ObjectPage, ObjectPages, ObjectStore, PortError, PutBody, PutItem, MAX_PAGE_KEYS};

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
    pages_come_in_key_order(open().await).await;
    pages_of_a_prefix_that_is_not_a_folder(open().await).await;
    pages_see_keys_added_and_removed_between_them(open().await).await;
    ranges(open().await).await;
    put_all_stores_every_item(open().await).await;
    missing_buckets_and_escaping_keys(open().await).await;
    delete_version_removes_only_that_version(open().await).await;
    moves_take_only_the_version_asked_for(open().await).await;
    folder_markers_are_empty_objects(open().await).await;
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

/// The keys `list` gives for `prefix` in `in-bucket`.
async fn listed(case: &str, s: &Store, prefix: &str) -> Vec<String> {
    s.list("in-bucket", prefix).await.unwrap_or_else(|e| fail(case, e)).into_iter().map(|o| o.key).collect()
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
    let keys = |prefix: &'static str| listed(case, &s, prefix);
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

/// A folder marker (`csv/`: an empty object whose key ends in `/`, which the S3 console, setup
/// scripts and some clients make) is an object like any other: it heads and gets (no bytes, the
/// empty body's MD5, its metadata), lists in key order among the objects under it, copies, and
/// goes by `delete_version` and `delete`. A folder that no marker names is no object; a key
/// with an empty segment before the `/` is refused.
pub async fn folder_markers_are_empty_objects(s: Store) {
    let case = "folder_markers_are_empty_objects";
    let meta = Metadata::from([("made-by".to_string(), "setup.sh".to_string())]);
    let marker =
        s.put("in-bucket", "csv/", Bytes::new(), meta.clone()).await.unwrap_or_else(|e| fail(case, e));
    if marker.size != 0 || marker.etag.trim_matches('"') != md5(b"") {
        fail(case, format!("put answered {marker:?}"));
    }
    let head = s.head("in-bucket", "csv/").await.unwrap_or_else(|e| fail(case, e));
    if head.key != "csv/" || head.size != 0 || head.metadata != meta {
        fail(case, format!("head answered {head:?}"));
    }
    if !read(case, &s, "in-bucket", "csv/").await.is_empty() {
        fail(case, "a marker's body is not empty");
    }
    put_keys(case, &s, &["csv/a.csv"]).await;
    s.put("in-bucket", "csv/deep/er/", Bytes::new(), Metadata::new()).await.unwrap_or_else(|e| fail(case, e));
    let keys = |prefix: &'static str| listed(case, &s, prefix);
    for (prefix, want) in [
        ("", &["csv/", "csv/a.csv", "csv/deep/er/"][..]),
        ("csv/", &["csv/", "csv/a.csv", "csv/deep/er/"][..]),
        ("csv/d", &["csv/deep/er/"][..]),
        ("raw/", &[][..]),
    ] {
        let got = keys(prefix).await;
        if got != want {
            fail(case, format!("prefix {prefix:?}: {got:?}, want {want:?}"));
        }
    }
    gone(case, s.head("in-bucket", "csv/deep/").await, "a folder no marker names");
    if !matches!(s.put("in-bucket", "a//", Bytes::new(), Metadata::new()).await, Err(PortError::Invalid(_))) {
        fail(case, "the marker key a// was taken");
    }
    let copied =
        s.copy("in-bucket", "csv/", "out-bucket", "kept/", None).await.unwrap_or_else(|e| fail(case, e));
    if copied.metadata != meta || copied.size != 0 {
        fail(case, format!("the copied marker: {copied:?}"));
    }
    if s.delete_version("in-bucket", "csv/", "0123456789abcdef0123456789abcdef")
        .await
        .unwrap_or_else(|e| fail(case, e))
    {
        fail(case, "delete_version of another version removed the marker");
    }
    if !s.delete_version("in-bucket", "csv/", &marker.etag).await.unwrap_or_else(|e| fail(case, e)) {
        fail(case, "delete_version of the marker did not remove it");
    }
    if keys("csv/").await != ["csv/a.csv", "csv/deep/er/"] {
        fail(case, format!("after removing the marker: {:?}", keys("csv/").await));
    }
    for _ in 0..2 {
        s.delete("in-bucket", "csv/deep/er/").await.unwrap_or_else(|e| fail(case, e));
    }
    if keys("").await != ["csv/a.csv"] {
        fail(case, format!("after deleting the deeper marker: {:?}", keys("").await));
    }
}

/// Keys whose byte order differs from a folder-by-folder walk: `-` and `.` sort before `/`,
/// `0` after it, and a multi-byte character after every ASCII one.
const TRICKY_KEYS: [&str; 11] =
    ["p/a/b", "p/a-c", "p/a0", "p/a/c/d", "p/ab", "p/a.txt", "p/z", "p/ข.csv", "p/b", "o.csv", "q/x"];

async fn put_keys(case: &str, s: &Store, keys: &[&str]) {
    for k in keys {
        s.put("in-bucket", k, Bytes::from(k.to_string()), Metadata::new())
            .await
            .unwrap_or_else(|e| fail(case, format!("put {k}: {e}")));
    }
}

fn sorted_with_prefix(keys: &[&str], prefix: &str) -> Vec<String> {
    let mut want: Vec<String> =
        keys.iter().filter(|k| k.starts_with(prefix)).map(|k| k.to_string()).collect();
    want.sort();
    want
}

async fn page(case: &str, s: &Store, prefix: &str, after: Option<&str>, max_keys: usize) -> ObjectPage {
    s.list_page("in-bucket", prefix, after, max_keys)
        .await
        .unwrap_or_else(|e| fail(case, format!("list_page({prefix:?}, after {after:?}, {max_keys}): {e}")))
}

/// Every page of `prefix` at `max_keys` a page, checking each page's bounds and continuation.
async fn all_pages(case: &str, s: &Store, prefix: &str, max_keys: usize) -> Vec<String> {
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let p = page(case, s, prefix, after.as_deref(), max_keys).await;
        let page_keys: Vec<String> = p.objects.iter().map(|o| o.key.clone()).collect();
        if page_keys.len() > max_keys.max(1) {
            fail(case, format!("{max_keys} keys a page, got {page_keys:?}"));
        }
        if p.next_after.as_ref().is_some_and(|next| Some(next) < page_keys.last()) {
            fail(
                case,
                format!("next_after {:?} is before the page's last key ({page_keys:?})", p.next_after),
            );
        }
        if p.next_after.is_some() && page_keys.is_empty() {
            fail(case, format!("an empty page that is not the last, at {max_keys} a page"));
        }
        keys.extend(page_keys);
        match p.next_after {
            Some(next) => after = Some(next),
            None => return keys,
        }
    }
    fail(case, format!("prefix {prefix:?} at {max_keys} a page never ends"))
}

/// Pages of every size give the whole prefix in key (byte) order, each page at most its size,
/// continuing after the last key of the page before; the last page says there is no more. An
/// empty prefix is the whole bucket; a `start_after` before the prefix is no bound, one past it
/// leaves nothing; an empty bucket's one page is empty and final; a missing bucket is
/// `NoSuchBucket`.
pub async fn pages_come_in_key_order(s: Store) {
    let case = "pages_come_in_key_order";
    let first = page(case, &s, "", None, 10).await;
    if !first.objects.is_empty() || first.next_after.is_some() {
        fail(case, format!("an empty bucket's page: {first:?}"));
    }
    put_keys(case, &s, &TRICKY_KEYS).await;
    let want = sorted_with_prefix(&TRICKY_KEYS, "p/");
    for max_keys in [1, 2, 3, want.len() - 1, want.len(), want.len() + 1, MAX_PAGE_KEYS, 0] {
        let got = all_pages(case, &s, "p/", max_keys).await;
        if got != want {
            fail(case, format!("prefix p/ at {max_keys} a page: {got:?}, want {want:?}"));
        }
    }
    let exact = page(case, &s, "p/", None, want.len()).await;
    if exact.objects.len() != want.len() || exact.next_after.is_some() {
        fail(case, format!("a page holding exactly the rest must be the last: {exact:?}"));
    }
    let whole = all_pages(case, &s, "", 4).await;
    if whole != sorted_with_prefix(&TRICKY_KEYS, "") {
        fail(case, format!("the whole bucket (empty prefix): {whole:?}"));
    }
    let from_before = page(case, &s, "p/", Some("a"), 1000).await;
    if from_before.objects.iter().map(|o| o.key.clone()).collect::<Vec<_>>() != want {
        fail(case, format!("start_after before the prefix: {from_before:?}"));
    }
    let past = page(case, &s, "p/", Some("p0"), 1000).await;
    if !past.objects.is_empty() || past.next_after.is_some() {
        fail(case, format!("start_after past the prefix: {past:?}"));
    }
    let mid = page(case, &s, "p/", Some("p/a/b"), 1000).await;
    if mid.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>() != want[3..] {
        fail(case, format!("start_after p/a/b: {mid:?}"));
    }
    let info = &page(case, &s, "p/z", None, 1).await.objects[0];
    if info.size != 3 || info.etag.trim_matches('"') != md5(b"p/z") {
        fail(case, format!("a listed object's size and ETag: {info:?}"));
    }
    match s.list_page("no-such-bucket", "", None, 10).await {
        Err(PortError::NoSuchBucket(_)) => {}
        other => fail(case, format!("a missing bucket: {other:?}")),
    }
}

/// A prefix is a string, not a folder: `p/a` takes `p/a-c`, `p/a.txt`, everything under
/// `p/a/`, `p/a0` and `p/ab`, in that order, page after page; a prefix naming a file's folder
/// that does not exist, or a file as if it were a folder, lists nothing.
pub async fn pages_of_a_prefix_that_is_not_a_folder(s: Store) {
    let case = "pages_of_a_prefix_that_is_not_a_folder";
    put_keys(case, &s, &TRICKY_KEYS).await;
    for prefix in ["p/a", "p/a/", "p/a/c", "p", "p/ข", "o", "q/x"] {
        let want = sorted_with_prefix(&TRICKY_KEYS, prefix);
        for max_keys in [1, 2, 1000] {
            let got = all_pages(case, &s, prefix, max_keys).await;
            if got != want {
                fail(case, format!("prefix {prefix:?} at {max_keys} a page: {got:?}, want {want:?}"));
            }
        }
    }
    for prefix in ["p/a/b/", "p/b/x", "nothing/", "p/c"] {
        let got = all_pages(case, &s, prefix, 2).await;
        if !got.is_empty() {
            fail(case, format!("prefix {prefix:?}: {got:?}"));
        }
    }
}

/// Between two pages the bucket changes: a key added after the last one listed is listed, one
/// added before it is not, one removed before its page is read is not; nothing repeats.
/// [`ObjectPages`] reads the same way.
pub async fn pages_see_keys_added_and_removed_between_them(s: Store) {
    let case = "pages_see_keys_added_and_removed_between_them";
    let keys: Vec<String> = (0..10).map(|i| format!("c/{i:02}.csv")).collect();
    put_keys(case, &s, &keys.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let first = page(case, &s, "c/", None, 4).await;
    let after = first.next_after.clone().unwrap_or_else(|| fail(case, format!("a first page: {first:?}")));
    if after != "c/03.csv" {
        fail(case, format!("the first page ends at {after}"));
    }
    put_keys(case, &s, &["c/00a.csv", "c/05a.csv", "c/99.csv"]).await;
    for gone in ["c/01.csv", "c/06.csv", "c/07.csv"] {
        s.delete("in-bucket", gone).await.unwrap_or_else(|e| fail(case, e));
    }
    let mut rest = Vec::new();
    let mut pages = ObjectPages::new(s.as_ref(), "in-bucket", "c/", 2).starting_after(Some(after));
    while let Some(p) = pages.next().await.unwrap_or_else(|e| fail(case, e)) {
        if p.len() > 2 {
            fail(case, format!("a page of {} at 2 a page", p.len()));
        }
        rest.extend(p.into_iter().map(|o| o.key));
    }
    let want = ["c/04.csv", "c/05.csv", "c/05a.csv", "c/08.csv", "c/09.csv", "c/99.csv"];
    if rest != want {
        fail(case, format!("after the changes: {rest:?}, want {want:?}"));
    }
}
