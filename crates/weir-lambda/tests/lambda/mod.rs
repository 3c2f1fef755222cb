//! What the weir-lambda tests share: a moto server with the bundled config's AWS resources made,
//! uploads with the AWS CLI (so S3 notifies the queue), and a batch received from the queue as
//! Lambda's event source mapping receives it, in the Lambda SQS event's record shape.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_core::config::AwsConfig;
use weir_core::Config;

#[path = "../../../weir-aws/tests/common/mod.rs"]
pub mod common;

/// moto with the AWS resources of a config made (`weir setup aws`'s `ensure_all`), and scratch
/// space for a handler.
pub struct Aws {
    pub moto: common::Moto,
    pub sdk: aws_config::SdkConfig,
    pub dir: tempfile::TempDir,
}

impl Aws {
    /// moto started, nothing made yet.
    pub async fn start() -> Aws {
        let moto = common::Moto::start();
        let sdk = moto.sdk_config().await;
        Aws { moto, sdk, dir: tempfile::tempdir().expect("tempdir") }
    }

    /// The bundled config on the AWS backend (the default `[aws]` names).
    pub fn bundled_config() -> Config {
        let mut config = Config::bundled();
        config.aws = Some(AwsConfig::default());
        config
    }

    /// Makes the AWS resources `config` names.
    pub async fn ensure(&self, config: &Config) {
        let aws = config.aws.clone().expect("an [aws] section");
        weir_aws::setup::ensure_all(config, &aws, &self.sdk, Some(&self.moto.endpoint)).await.expect("setup");
    }

    /// The handler for `config` (its secrets read, as at a cold start).
    pub async fn handler(&self, config: &Config) -> anyhow::Result<weir_lambda::Handler> {
        weir_lambda::Handler::open(
            config.clone(),
            &self.sdk,
            Some(&self.moto.endpoint),
            self.dir.path().join("tmp"),
        )
        .await
    }

    /// The AWS CLI against moto, with moto's credentials; its stdout (fails the test on an error).
    pub fn aws_cli(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(aws_cli())
            .args(["--endpoint-url", &self.moto.endpoint, "--region", common::REGION, "--output", "json"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("the AWS CLI");
        assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `aws s3 cp` of each sample file to `s3://weir-input/<key>` in its storage class.
    pub fn upload(&self, files: &[(&str, &str, &str)]) {
        let samples = common::workspace().join("samples");
        for (file, key, class) in files {
            let from = samples.join(file).display().to_string();
            self.aws_cli(&["s3", "cp", &from, &format!("s3://weir-input/{key}"), "--storage-class", class]);
        }
    }

    /// Messages of `queue` received as the event source mapping does, as Lambda SQS records,
    /// until `enough` says so (within 20 s).
    pub async fn receive(&self, queue: &str, enough: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let url = weir_aws::sqs::queue_url(&sqs, queue).await.expect("queue url");
        let arn = weir_aws::sqs::queue_arn(&sqs, &url).await.expect("queue arn");
        let mut records = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !enough(&records) {
            assert!(Instant::now() < deadline, "the messages did not arrive: {records:?}");
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
                let attributes: serde_json::Map<String, Value> = m
                    .attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_string(), Value::String(v)))
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
        records
    }
}

/// How many of `records` are S3 object-created events.
pub fn object_events(records: &[Value]) -> usize {
    records.iter().filter(|r| r["body"].as_str().is_some_and(|b| b.contains("ObjectCreated"))).count()
}

/// The AWS CLI: `WEIR_TEST_AWS` (set by `scripts/test`), else the workspace's `.venv`.
fn aws_cli() -> PathBuf {
    std::env::var_os("WEIR_TEST_AWS")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::workspace().join(".venv/bin/aws"))
}
