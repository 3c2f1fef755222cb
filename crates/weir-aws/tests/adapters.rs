//! The S3, DynamoDB and SNS adapters against a moto server this test starts, checked through
//! the ports and, where another client's view matters, through the AWS CLI and the SDK.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use weir_aws::dynamo::{ensure_tables, write_with_retries};
use weir_aws::{DynamoJobStore, DynamoRecordsSink, S3ObjectStore, S3Settings, SnsNotifier};
use weir_ports::{JobStore, Notification, Notifier, ObjectStore, RecordItem, RecordsSink};

async fn s3_store(moto: &common::Moto) -> S3ObjectStore {
    let config = moto.sdk_config().await;
    S3ObjectStore::new(
        &config,
        S3Settings {
            region: common::REGION.into(),
            endpoint_url: Some(moto.endpoint.clone()),
            path_style: true,
        },
    )
    .expect("S3 store")
}

async fn read_all(store: &S3ObjectStore, bucket: &str, key: &str) -> Vec<u8> {
    let (_, stream) = store.get(bucket, key).await.expect("get");
    let chunks: Vec<Bytes> = stream.try_collect().await.expect("read");
    chunks.concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_object_store_round_trips_objects_metadata_and_copies() {
    let moto = common::Moto::start();
    let s3 = s3_store(&moto).await;

    assert!(!s3.bucket_exists("weir-in").await.expect("exists"), "no bucket yet");
    s3.create_bucket("weir-in").await.expect("create");
    s3.create_bucket("weir-in").await.expect("creating an existing bucket succeeds");
    s3.create_bucket("archive").await.expect("create");
    assert!(s3.bucket_exists("weir-in").await.expect("exists"));
    let names: Vec<String> = s3.list_buckets().await.expect("list").into_iter().map(|b| b.name).collect();
    assert_eq!(names, ["archive", "weir-in"]);

    let key = "raw/ขาย 2024, \"q\".csv";
    let meta = BTreeMap::from([("reason".to_string(), "schema".to_string())]);
    let put = s3.put("weir-in", key, Bytes::from_static(b"a,b\n1,2\n"), meta.clone()).await.expect("put");
    assert_eq!(put.etag.len(), 32, "an MD5 ETag without quotes: {}", put.etag);
    let head = s3.head("weir-in", key).await.expect("head");
    assert_eq!((head.size, head.etag.as_str(), &head.metadata), (8, put.etag.as_str(), &meta));
    assert_eq!(read_all(&s3, "weir-in", key).await, b"a,b\n1,2\n");

    // Another client sees the same object, metadata and ETag.
    let aws = std::env::var("WEIR_TEST_AWS")
        .unwrap_or_else(|_| common::workspace().join(".venv/bin/aws").display().to_string());
    let out = std::process::Command::new(&aws)
        .args(["--endpoint-url", &moto.endpoint, "--region", common::REGION, "s3api", "head-object"])
        .args(["--bucket", "weir-in", "--key", key])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap_or_else(|e| panic!("running {aws}: {e}"));
    assert!(out.status.success(), "aws s3api head-object: {}", String::from_utf8_lossy(&out.stderr));
    let head_json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(head_json["Metadata"]["reason"], "schema");
    assert_eq!(head_json["ETag"].as_str().map(|e| e.trim_matches('"')), Some(put.etag.as_str()));

    // Files: a small one in one PUT, a big one (over 16 MiB) in parts; the file is consumed.
    let dir = tempfile::tempdir().expect("tempdir");
    let small = dir.path().join("small");
    std::fs::write(&small, b"hello").expect("write");
    let info = s3.put_file("weir-in", "raw/small.txt", &small, BTreeMap::new()).await.expect("put_file");
    assert_eq!(info.size, 5);
    assert!(!small.exists(), "put_file takes the file");
    let big = dir.path().join("big");
    let big_data: Vec<u8> = (0..17 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&big, &big_data).expect("write");
    let info = s3.put_file("weir-in", "raw/big.bin", &big, meta.clone()).await.expect("multipart put_file");
    assert_eq!(info.size, big_data.len() as u64);
    assert!(info.etag.contains('-'), "a multipart ETag: {}", info.etag);
    assert_eq!(info.metadata, meta, "metadata kept on a multipart upload");
    assert!(read_all(&s3, "weir-in", "raw/big.bin").await == big_data, "the big object reads back whole");

    // Listing is by string prefix, not by folder.
    s3.put("weir-in", "raw/sales-1.csv", Bytes::from_static(b"x"), BTreeMap::new()).await.expect("put");
    s3.put("weir-in", "rawer/x.csv", Bytes::from_static(b"x"), BTreeMap::new()).await.expect("put");
    let keys = |v: Vec<weir_ports::ObjectInfo>| v.into_iter().map(|o| o.key).collect::<Vec<_>>();
    assert_eq!(keys(s3.list("weir-in", "raw/sa").await.expect("list")), ["raw/sales-1.csv"]);
    assert_eq!(keys(s3.list("weir-in", "raw").await.expect("list")).len(), 5);
    assert_eq!(keys(s3.list("weir-in", "raw/").await.expect("list")).len(), 4);
    assert!(s3.list("no-such-bucket", "").await.expect_err("missing bucket").is_not_found());

    // Server-side copies across buckets, keeping or replacing the metadata.
    let kept = s3.copy("weir-in", key, "archive", "a/kept.csv", None).await.expect("copy");
    assert_eq!((kept.size, &kept.metadata), (8, &meta));
    let new_meta = BTreeMap::from([("weir-error".to_string(), "bad header".to_string())]);
    let replaced =
        s3.copy("weir-in", key, "archive", "failed/x.csv", Some(new_meta.clone())).await.expect("copy");
    assert_eq!(replaced.metadata, new_meta);
    assert_eq!(read_all(&s3, "archive", "failed/x.csv").await, b"a,b\n1,2\n");
    assert!(s3
        .copy("weir-in", "raw/none", "archive", "x", None)
        .await
        .expect_err("copy a missing key")
        .is_not_found());

    // An object S3 cannot serve (in GLACIER): a short error with S3's code, no XML.
    let frozen = dir.path().join("frozen");
    std::fs::write(&frozen, b"cold").expect("write");
    let out = std::process::Command::new(&aws)
        .args(["--endpoint-url", &moto.endpoint, "--region", common::REGION, "s3", "cp"])
        .args([frozen.to_str().expect("path"), "s3://weir-in/raw/frozen.csv", "--storage-class", "GLACIER"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .expect("aws s3 cp");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = match s3.get("weir-in", "raw/frozen.csv").await {
        Ok(_) => panic!("a GLACIER object cannot be read"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(text.contains("InvalidObjectState") && !text.contains("<"), "{text}");
    assert_eq!(err.class(), weir_core::ErrorClass::Transient, "restoring the object makes it readable");

    s3.delete("weir-in", key).await.expect("delete");
    s3.delete("weir-in", key).await.expect("deleting a missing object succeeds");
    assert!(s3.head("weir-in", key).await.expect_err("deleted").is_not_found());
    assert!(s3.get("weir-in", "raw/../x").await.is_err(), "a key that escapes is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_job_store_creates_its_tables_once_and_passes_the_job_store_conformance_suite() {
    let moto = common::Moto::start();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let created = ensure_tables(&client, "weir-jobs", Some("weir-records")).await.expect("tables");
    assert_eq!(created, [("weir-jobs".to_string(), true), ("weir-records".to_string(), true)]);
    let again = ensure_tables(&client, "weir-jobs", Some("weir-records")).await.expect("tables again");
    assert_eq!(again, [("weir-jobs".to_string(), false), ("weir-records".to_string(), false)]);

    // Each case on a fresh table; the keys' and claims' items are not jobs to list or count
    // (the suite's listing case holds the store to exact counts).
    let n = std::sync::atomic::AtomicUsize::new(0);
    weir_ports::conformance::jobs::run_all(
        || {
            let (client, table) =
                (client.clone(), format!("jobs-{}", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
            async move {
                ensure_tables(&client, &table, None).await.expect("table");
                let store: std::sync::Arc<dyn JobStore> =
                    std::sync::Arc::new(DynamoJobStore::new(client, table));
                (store.clone(), store)
            }
        },
        Duration::from_secs(2),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_records_sink_writes_batches_of_25_and_upserts() {
    let moto = common::Moto::start();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    ensure_tables(&client, "jobs", Some("records")).await.expect("tables");
    let sink = DynamoRecordsSink::new(client.clone(), "records");
    let pk = "CSV#in/raw/sales.csv";
    let mut items: Vec<RecordItem> = (1..=60)
        .map(|i| RecordItem {
            pk: pk.into(),
            sk: format!("ROW#{i:06}"),
            item: serde_json::json!({"order_id": format!("o{i}"), "quantity": i, "price": 2.5, "ok": true}),
        })
        .collect();
    // The same key twice in one call: the last one wins.
    items.push(RecordItem {
        pk: pk.into(),
        sk: "ROW#000001".into(),
        item: serde_json::json!({"order_id": "o1", "quantity": 100, "price": 2.5, "ok": false}),
    });
    sink.put_batch(&items).await.expect("put_batch");
    sink.put_batch(&items).await.expect("put_batch again");
    let rows = sink.query(pk, 1000).await.expect("query");
    assert_eq!(rows.len(), 60, "one item per (pk, sk)");
    assert_eq!(rows[0].sk, "ROW#000001");
    assert_eq!(rows[0].item["quantity"], 100);
    assert_eq!(rows[0].item["ok"], false);
    assert_eq!(rows[59].sk, "ROW#000060");
    assert_eq!(rows[59].item["price"], 2.5);
    assert_eq!(sink.query(pk, 7).await.expect("query").len(), 7);

    // The AWS CLI reads the seed's item shape.
    let item = client
        .get_item()
        .table_name("records")
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("ROW#000002".into()))
        .send()
        .await
        .expect("get_item")
        .item
        .expect("the item");
    assert_eq!(item["quantity"].as_n().ok().map(String::as_str), Some("2"));
    assert_eq!(item["order_id"].as_s().ok().map(String::as_str), Some("o2"));
}

#[tokio::test]
async fn unprocessed_items_are_retried_with_backoff() {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    let requests: Vec<WriteRequest> = (0..25)
        .map(|i| {
            let put = PutRequest::builder()
                .item("pk", aws_sdk_dynamodb::types::AttributeValue::S(i.to_string()))
                .build()
                .expect("put");
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    // DynamoDB under throttling: the first call processes 5, the second 10, the third the rest.
    let mut calls = Vec::new();
    let start = std::time::Instant::now();
    let attempts = write_with_retries(requests, Duration::from_millis(20), |batch| {
        calls.push(batch.len());
        let keep = match calls.len() {
            1 => 20,
            2 => 10,
            _ => 0,
        };
        let left: Vec<WriteRequest> = batch.into_iter().take(keep).collect();
        async move { Ok(left) }
    })
    .await
    .expect("written");
    assert_eq!(attempts, 3);
    assert_eq!(calls, [25, 20, 10], "only the unprocessed items are sent again");
    assert!(start.elapsed() >= Duration::from_millis(60), "backed off 20 ms then 40 ms");

    // Never processed: gives up with an error after its attempts.
    let one = vec![WriteRequest::builder().build()];
    let err = write_with_retries(one, Duration::from_millis(1), |batch| async move { Ok(batch) })
        .await
        .expect_err("gives up");
    assert!(err.to_string().contains("unprocessed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_notifier_publishes_with_attributes_to_an_sqs_subscription() {
    let moto = common::Moto::start();
    let config = moto.sdk_config().await;
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let (arn, created) = weir_aws::sns::ensure_topic(&sns, "weir-success").await.expect("topic");
    assert!(created);
    let (arn2, created) = weir_aws::sns::ensure_topic(&sns, "weir-success").await.expect("topic again");
    assert_eq!((arn2.as_str(), created), (arn.as_str(), false));
    let url = sqs.create_queue().queue_name("inbox").send().await.expect("queue").queue_url.expect("url");
    let qarn = weir_aws::sqs::queue_arn(&sqs, &url).await.expect("arn");
    sns.subscribe()
        .topic_arn(&arn)
        .protocol("sqs")
        .endpoint(&qarn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .expect("subscribe");

    let notifier = SnsNotifier::new(sns.clone(), BTreeMap::from([("success".to_string(), arn.clone())]));
    let long_subject = format!("weir: sales.csv succeeded — {}", "x".repeat(200));
    let n = Notification {
        html: None,
        topic: "success".into(),
        subject: long_subject,
        text: "sales.csv: 10 rows, 9 valid".into(),
        attributes: BTreeMap::from([
            ("status".to_string(), "succeeded".to_string()),
            ("pipeline".to_string(), "sales".to_string()),
        ]),
        payload: serde_json::json!({"job_id": "j-1", "valid_rows": 9}),
    };
    notifier.publish(&n).await.expect("publish with an over-long, non-ASCII subject");
    let got = sqs
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(5)
        .message_attribute_names("All")
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default();
    assert_eq!(got.len(), 1, "the SQS subscription got the notification");
    let body: serde_json::Value = serde_json::from_str(got[0].body().unwrap_or_default()).expect("JSON body");
    assert_eq!(body["payload"]["valid_rows"], 9, "SQS subscribers get the structured payload: {body}");
    assert_eq!(body["text"], "sales.csv: 10 rows, 9 valid");
    let attrs = got[0].message_attributes().expect("attributes");
    assert_eq!(attrs["status"].string_value(), Some("succeeded"));
    assert_eq!(attrs["pipeline"].string_value(), Some("sales"));

    assert_eq!(weir_aws::sns::sns_subject(&"é".repeat(150)).len(), 100);
    assert!(notifier.publish(&Notification { topic: "nope".into(), ..n }).await.is_err(), "unknown topic");
}

/// The suites every object store and records sink passes, on S3 and DynamoDB (moto).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_and_dynamodb_pass_the_object_store_and_records_sink_conformance_suites() {
    let moto = common::Moto::start();
    let s3 = std::sync::Arc::new(s3_store(&moto).await);
    weir_ports::conformance::objects::run_all(|| {
        let s3 = s3.clone();
        async move {
            // Fresh, empty buckets for each case.
            for b in weir_ports::conformance::objects::BUCKETS {
                s3.create_bucket(b).await.expect("bucket");
                for o in s3.list(b, "").await.expect("list") {
                    s3.delete(b, &o.key).await.expect("delete");
                }
            }
            s3 as std::sync::Arc<dyn ObjectStore>
        }
    })
    .await;
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    ensure_tables(&client, "conformance-jobs", Some("conformance-records")).await.expect("tables");
    weir_ports::conformance::records::run_all(std::sync::Arc::new(DynamoRecordsSink::new(
        client,
        "conformance-records",
    )))
    .await;
}
