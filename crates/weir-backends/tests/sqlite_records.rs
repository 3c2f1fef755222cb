//! The SQLite records sink: upserts on (pk, sk), queries in sk order.

use serde_json::json;
use weir_backends::SqliteRecordsSink;
use weir_ports::{RecordItem, RecordsSink};

fn item(pk: &str, sk: &str, v: serde_json::Value) -> RecordItem {
    RecordItem { pk: pk.into(), sk: sk.into(), item: v }
}

#[tokio::test]
async fn writing_the_same_key_twice_leaves_one_updated_item() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("records.db");
    let sink = SqliteRecordsSink::open(&path).expect("open");
    let pk = "CSV#weir-input/raw/sales.csv";
    sink.put_batch(&[
        item(pk, "ROW#000002", json!({"product": "tea", "quantity": 1})),
        item(pk, "ROW#000003", json!({"product": "ข้าว", "quantity": 2})),
        item("CSV#weir-input/raw/other.csv", "ROW#000002", json!({"other": true})),
    ])
    .await
    .expect("first batch");
    // The redelivered file writes row 2 again with new content.
    sink.put_batch(&[item(pk, "ROW#000002", json!({"product": "tea", "quantity": 5}))])
        .await
        .expect("second batch");
    sink.put_batch(&[]).await.expect("an empty batch is fine");

    let other_process = SqliteRecordsSink::open(&path).expect("second handle");
    let rows = other_process.query(pk, 0).await.expect("query");
    assert_eq!(
        rows,
        [
            item(pk, "ROW#000002", json!({"product": "tea", "quantity": 5})),
            item(pk, "ROW#000003", json!({"product": "ข้าว", "quantity": 2})),
        ]
    );
    assert_eq!(sink.query(pk, 1).await.expect("query").len(), 1);
    assert!(sink.query("CSV#nothing", 10).await.expect("query").is_empty());
}

#[tokio::test]
async fn a_large_batch_is_one_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = SqliteRecordsSink::open(&dir.path().join("records.db")).expect("open");
    let items: Vec<_> = (0..5000).map(|i| item("P", &format!("ROW#{i:06}"), json!({"i": i}))).collect();
    sink.put_batch(&items).await.expect("batch");
    let rows = sink.query("P", 0).await.expect("query");
    assert_eq!(rows.len(), 5000);
    assert_eq!(rows[4999].item, json!({"i": 4999}));
}

/// The suite every records sink passes.
#[tokio::test]
async fn sqlite_records_pass_the_records_sink_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let sink = weir_backends::SqliteRecordsSink::open(&dir.path().join("records.db")).unwrap();
    weir_ports::conformance::records::run_all(std::sync::Arc::new(sink)).await;
}
