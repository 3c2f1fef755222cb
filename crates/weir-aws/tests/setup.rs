//! `weir_aws::setup::ensure_all` against moto, twice: the first run creates every resource, the
//! second finds them all; then S3 itself (moto's bucket notifications) delivers an upload made
//! with the AWS CLI to the queue, and only for keys that match the pipeline's filter.

mod common;

use std::time::Duration;

use weir_aws::setup::ensure_all;
use weir_core::config::AwsConfig;
use weir_core::Config;

fn aws_cli(moto: &common::Moto, args: &[&str]) -> String {
    let aws = std::env::var("WEIR_TEST_AWS")
        .unwrap_or_else(|_| common::workspace().join(".venv/bin/aws").display().to_string());
    let out = std::process::Command::new(&aws)
        .args(["--endpoint-url", &moto.endpoint, "--region", common::REGION])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap_or_else(|e| panic!("running {aws}: {e}"));
    assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_creates_everything_then_finds_it_and_s3_notifies_the_queue() {
    let moto = common::Moto::start();
    let sdk = moto.sdk_config().await;
    let mut config = Config::bundled();
    config.aws = Some(AwsConfig { records_table: Some("weir-records".into()), ..AwsConfig::default() });
    let aws = config.aws.clone().expect("set above");

    let first = ensure_all(&config, &aws, &sdk, Some(&moto.endpoint)).await.expect("setup");
    let printed: Vec<String> = first.iter().map(ToString::to_string).collect();
    assert!(
        first.iter().all(|i| i.created()),
        "a fresh account: everything created:\n{}",
        printed.join("\n")
    );
    let kinds: Vec<&str> = first.iter().map(|i| i.kind).collect();
    assert_eq!(
        kinds,
        [
            "bucket",
            "bucket",
            "bucket",
            "queue",
            "queue",
            "queue policy",
            "notification",
            "topic",
            "topic",
            "table",
            "table",
            "alarm",
            "alarm",
            "alarm",
            "alarm",
            "alarm",
            "dashboard"
        ]
    );
    let second = ensure_all(&config, &aws, &sdk, Some(&moto.endpoint)).await.expect("setup again");
    let printed: Vec<String> = second.iter().map(ToString::to_string).collect();
    assert!(second.iter().all(|i| !i.created()), "the second run finds everything:\n{}", printed.join("\n"));
    assert_eq!(second.len(), first.len());

    // What other clients see.
    let versioning = aws_cli(&moto, &["s3api", "get-bucket-versioning", "--bucket", "weir-input"]);
    assert!(versioning.contains("Enabled"), "{versioning}");
    let backups = aws_cli(&moto, &["dynamodb", "describe-continuous-backups", "--table-name", "weir-jobs"]);
    assert!(backups.contains("\"PointInTimeRecoveryStatus\": \"ENABLED\""), "{backups}");
    let notification =
        aws_cli(&moto, &["s3api", "get-bucket-notification-configuration", "--bucket", "weir-input"]);
    assert!(notification.contains("weir-events") && notification.contains("raw/"), "{notification}");
    let redrive = aws_cli(
        &moto,
        &[
            "sqs",
            "get-queue-attributes",
            "--queue-url",
            &format!("{}/123456789012/weir-events", moto.endpoint),
            "--attribute-names",
            "All",
        ],
    );
    assert!(redrive.contains("weir-events-dlq") && redrive.contains("maxReceiveCount"), "{redrive}");

    // S3 sends ObjectCreated events for matching keys only.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("sales.csv");
    std::fs::write(&file, "order_id,product\n1,a\n").expect("write");
    aws_cli(&moto, &["s3", "cp", &file.display().to_string(), "s3://weir-input/raw/sales.csv"]);
    aws_cli(&moto, &["s3", "cp", &file.display().to_string(), "s3://weir-input/other/sales.csv"]);
    let ports = weir_aws::open(&config, &aws, &sdk, Some(&moto.endpoint)).await.expect("open the ports");
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        for m in ports.queue.receive(10, Duration::from_secs(1)).await.expect("receive") {
            ports.queue.delete(&m.receipt_handle).await.expect("delete");
            got.push(m.body);
        }
        if !got.is_empty() {
            // Give a wrong second event the chance to arrive.
            got.extend(
                ports
                    .queue
                    .receive(10, Duration::from_secs(1))
                    .await
                    .expect("receive")
                    .into_iter()
                    .map(|m| m.body),
            );
            break;
        }
    }
    // S3 (and moto) also send an s3:TestEvent when notifications are saved; keys are URL-encoded.
    let keys: Vec<String> = got
        .iter()
        .filter_map(|b| match weir_core::event::QueueEvent::parse(b).expect("an S3 event") {
            weir_core::event::QueueEvent::Records(e) => Some(e.records[0].key().expect("key")),
            _ => None,
        })
        .collect();
    assert_eq!(keys, ["raw/sales.csv"], "events: {got:?}");
    assert!(ports.objects.bucket_exists("weir-archive").await.expect("exists"));
}
