//! The embedded object store's S3-endpoint extras: bucket listing, ranged reads, stored ETags.

use bytes::Bytes;
use futures::TryStreamExt;
use weir_backends::LocalObjectStore;
use weir_ports::{ByteStream, Metadata, ObjectStore};

async fn collect(stream: ByteStream) -> Vec<u8> {
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    chunks.concat()
}

#[tokio::test]
async fn lists_only_bucket_folders() {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalObjectStore::open(dir.path()).unwrap();
    s.create_bucket("b-one").await.unwrap();
    s.create_bucket("a-two").await.unwrap();
    std::fs::write(dir.path().join("queue.db"), b"").unwrap();
    std::fs::create_dir_all(dir.path().join(".multipart")).unwrap();
    std::fs::create_dir_all(dir.path().join("Not_A_Bucket")).unwrap();
    let names: Vec<String> = s.list_buckets().await.unwrap().into_iter().map(|b| b.name).collect();
    assert_eq!(names, ["a-two", "b-one"]);
    assert!(s.bucket_exists("a-two").await.unwrap());
    assert!(!s.bucket_exists("missing").await.unwrap());
}

#[tokio::test]
async fn ranged_reads_and_precomputed_etags() {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalObjectStore::open(dir.path()).unwrap();
    s.create_bucket("in-bucket").await.unwrap();
    s.put("in-bucket", "k", Bytes::from_static(b"0123456789"), Metadata::new()).await.unwrap();
    let (info, stream) = s.get_range("in-bucket", "k", 2..5).await.unwrap();
    assert_eq!(info.size, 10);
    assert_eq!(collect(stream).await, b"234");
    let (_, stream) = s.get_range("in-bucket", "k", 7..100).await.unwrap();
    assert_eq!(collect(stream).await, b"789");

    let file = dir.path().join("spool");
    std::fs::write(&file, b"parts").unwrap();
    let meta = Metadata::from([("a".to_string(), "b".to_string())]);
    let info = s.put_file_with_etag("in-bucket", "big", &file, meta.clone(), "abc-2".into()).await.unwrap();
    assert_eq!(info.etag, "abc-2");
    let head = s.head("in-bucket", "big").await.unwrap();
    assert_eq!((head.etag.as_str(), head.metadata), ("abc-2", meta));
}
