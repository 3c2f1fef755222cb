//! The Lambda handler driven with a real SQS batch: moto's S3 notifications and a hand-sent
//! message land in a moto queue, the test receives them as Lambda's event source mapping does and
//! hands them over in the Lambda SQS event shape; the answer's batchItemFailures must name
//! exactly the message that has to come back. The bundled config's image pipeline takes a
//! photo and a CSV posing as one in the same batch: thumbnails in S3 for the one, `failed/`
//! with the reason for the other, neither retried.
//! The sales pipeline loads a PostgreSQL table too (a server the test starts): the handler
//! wires the warehouse as `weir worker` does.

mod lambda;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda::Aws;
use weir_core::{JobId, JobStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reports_only_the_messages_to_retry() {
    let env = Aws::start().await;
    let sdk = &env.sdk;
    let mut config = Aws::bundled_config();
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
    env.ensure(&config).await;
    let handler = env.handler(&config).await.expect("handler");

    // The work: a sales file (S3 notifies the queue), a file S3 keeps in GLACIER (unreadable:
    // a transient failure), a photo and a CSV named .jpg for the image pipeline, and a message
    // that is not an event at all.
    env.upload(&[
        ("sales.csv", "raw/sales.csv", "STANDARD"),
        ("bad_rows.csv", "raw/cold.csv", "GLACIER"),
        ("photo.jpg", "images/photo.jpg", "STANDARD"),
        ("sales.csv", "images/lying.jpg", "STANDARD"),
    ]);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let url = weir_aws::sqs::queue_url(&sqs, &aws.queue).await.expect("queue url");
    sqs.send_message().queue_url(&url).message_body("not an event").send().await.expect("send");

    // Receive the batch as the event source mapping does: the S3 test event, four object events
    // and the stray message.
    let records = env.receive(&aws.queue, |r| r.len() >= 6).await;
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
    let ports = weir_aws::open(&config, &aws, sdk, Some(&env.moto.endpoint)).await.expect("ports");
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
