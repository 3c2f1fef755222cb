//! The Lambda handler driven with a real SQS batch: moto's S3 notifications and a hand-sent
//! message land in a moto queue, the test receives them as Lambda's event source mapping does and
//! hands them over in the Lambda SQS event shape; the answer's batchItemFailures must name
//! exactly the message that has to come back. The bundled config's image pipeline takes a
//! photo and a CSV posing as one in the same batch: thumbnails in S3 for the one, `failed/`
//! with the reason for the other, neither retried.
//! The sales pipeline loads a PostgreSQL table too (a server the test starts): the handler
//! wires the warehouse as `weir worker` does.

#[path = "../../weir-aws/tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use weir_core::config::AwsConfig;
use weir_core::{Config, JobId, JobStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reports_only_the_messages_to_retry() {
    let moto = common::Moto::start();
    let sdk = moto.sdk_config().await;
    let mut config = Config::bundled();
    config.aws = Some(AwsConfig::default());
    config.worker.retry_base_ms = 100;
    // The valid rows go to a PostgreSQL table as well, as they do under weir run.
    let pg = weir_postgres::testing::TestServer::start();
    config.pipelines[0].sinks.postgres = Some(weir_core::config::PostgresSinkConfig {
        url: Some(pg.url().into()),
        table: Some("sales".into()),
        ..Default::default()
    });
    let columns = weir_process::Plan::compile(&config.pipelines[0]).expect("plan").table_columns();
    let sink = config.pipelines[0].sinks.postgres.as_ref().expect("set above");
    weir_postgres::PostgresWarehouse::new("sales", sink, &columns)
        .expect("sink")
        .setup()
        .await
        .expect("table");
    let aws = config.aws.clone().expect("set above");
    weir_aws::setup::ensure_all(&config, &aws, &sdk, Some(&moto.endpoint)).await.expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    let handler =
        weir_lambda::Handler::open(config.clone(), &sdk, Some(&moto.endpoint), dir.path().join("tmp"))
            .await
            .expect("handler");

    // The work: a sales file (S3 notifies the queue), a file S3 keeps in GLACIER (unreadable:
    // a transient failure), a photo and a CSV named .jpg for the image pipeline, and a message
    // that is not an event at all.
    let samples = common::workspace().join("samples");
    let aws_cli = std::env::var("WEIR_TEST_AWS")
        .unwrap_or_else(|_| common::workspace().join(".venv/bin/aws").display().to_string());
    for (file, key, class) in [
        ("sales.csv", "raw/sales.csv", "STANDARD"),
        ("bad_rows.csv", "raw/cold.csv", "GLACIER"),
        ("photo.jpg", "images/photo.jpg", "STANDARD"),
        ("sales.csv", "images/lying.jpg", "STANDARD"),
    ] {
        let out = std::process::Command::new(&aws_cli)
            .args(["--endpoint-url", &moto.endpoint, "--region", common::REGION, "s3", "cp"])
            .arg(samples.join(file))
            .args([&format!("s3://weir-input/{key}"), "--storage-class", class])
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .output()
            .expect("aws s3 cp");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = weir_aws::sqs::queue_url(&sqs, &aws.queue).await.expect("queue url");
    let arn = weir_aws::sqs::queue_arn(&sqs, &url).await.expect("queue arn");
    sqs.send_message().queue_url(&url).message_body("not an event").send().await.expect("send");

    // Receive the batch as the event source mapping does: the S3 test event, four object events
    // and the stray message.
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while records.len() < 6 {
        assert!(Instant::now() < deadline, "only {} of 6 messages arrived", records.len());
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive");
        for m in out.messages.unwrap_or_default() {
            let attributes: serde_json::Map<String, serde_json::Value> = m
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), serde_json::Value::String(v)))
                .collect();
            records.push(serde_json::json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "md5OfBody": m.md5_of_body,
                "attributes": attributes,
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": common::REGION,
            }));
        }
    }
    let cold_id = records
        .iter()
        .find(|r| r["body"].as_str().is_some_and(|b| b.contains("cold.csv")))
        .and_then(|r| r["messageId"].as_str())
        .expect("the cold file's event")
        .to_string();
    let event: SqsEvent = serde_json::from_value(serde_json::json!({ "Records": records }))
        .expect("the Lambda SQS event shape");

    let response = handler.handle(event).await;
    let answer = serde_json::to_value(&response).expect("JSON");
    assert_eq!(
        answer,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": cold_id}]}),
        "only the unreadable file comes back"
    );

    // What the others became: the sales job succeeded, the stray message is in the DLQ (Lambda
    // deletes both from the main queue as they were not reported).
    let ports = weir_aws::open(&config, &aws, &sdk, Some(&moto.endpoint)).await.expect("ports");
    let etag = ports.objects.head("weir-archive", "raw/sales.csv").await.expect("archived").etag;
    let job = ports.jobs.get(&JobId::for_object("weir-input", "raw/sales.csv", &etag)).await.expect("get");
    let job = job.expect("the sales job");
    assert_eq!(job.status, JobStatus::Succeeded);
    let loaded = job.warehouse.as_ref().map(|w| w.rows);
    assert_eq!(loaded, Some(job.valid_rows));
    assert_eq!(
        pg.psql("SELECT count(*) FROM sales WHERE weir_source_key = 'raw/sales.csv'"),
        job.valid_rows.to_string()
    );

    // The photo: thumbnails and metadata in S3, the picture on the job record.
    let etag = ports.objects.head("weir-archive", "images/photo.jpg").await.expect("archived").etag;
    let job = ports.jobs.get(&JobId::for_object("weir-input", "images/photo.jpg", &etag)).await.expect("get");
    let job = job.expect("the photo's job");
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let image = job.image.expect("the picture on the record (DynamoDB)");
    assert_eq!((image.display_width, image.display_height, image.thumbnails.len()), (1200, 900, 3));
    for t in &image.thumbnails {
        let stored = ports.objects.head("weir-output", &t.key).await.expect("a thumbnail in S3");
        assert_eq!(stored.size, t.bytes, "{}", t.key);
    }
    ports.objects.head("weir-output", "metadata/weir-input/images/photo.jpg.json").await.expect("metadata");
    // The CSV posing as a picture: under failed/ with its reason in the object's metadata.
    let failed = ports.objects.list("weir-input", "failed/").await.expect("list failed/");
    let lying =
        failed.iter().find(|o| o.key.ends_with("images/lying.jpg")).expect("the lying file in failed/");
    let head = ports.objects.head("weir-input", &lying.key).await.expect("head");
    assert!(head.metadata["reason"].contains("not a picture weir reads"), "{:?}", head.metadata);

    let dead = ports.queue.dlq_list(10).await.expect("dlq");
    assert_eq!(dead.iter().map(|d| d.body.as_str()).collect::<Vec<_>>(), ["not an event"]);
}
