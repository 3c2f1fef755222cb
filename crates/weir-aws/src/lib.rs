//! weir on AWS: the scale-out adapters of the ports in `weir-ports`.
//!
//! The embedded adapters (`weir-backends`) keep weir on one machine; these put the same pipeline
//! on AWS, where any number of `weir worker` processes or Lambda invocations share the work:
//! the queue is SQS (redrive done by SQS itself), objects live in S3, jobs and records in
//! DynamoDB, and notifications go out through SNS. Every adapter takes an SDK client built from
//! one [`client::load`]ed configuration, so an endpoint (moto in the tests) applies to all.

pub mod client;
pub mod cloudwatch;
pub mod dynamo;
mod dynamo_stats;
pub mod metrics;
pub mod s3;
pub mod secrets;
pub mod sns;
pub mod sqs;
pub mod subscriptions;

pub use client::AwsSettings;
pub use dynamo::{DynamoJobStore, DynamoRecordsSink};
pub use s3::{S3ObjectStore, S3Settings};
pub use secrets::{SecretsManagerOnFirstUse, SecretsManagerSource};
pub use sns::SnsNotifier;
pub use sqs::{SqsQueue, SqsQueueNames};

pub mod setup;

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_core::config::AwsConfig;
use weir_core::Config;
use weir_ports::{PortError, Ports, QueueSettings, RecordsSink};

/// The endpoint in force, one precedence for every caller: the command line's `--endpoint-url`
/// (`flag`), else the config's `aws.endpoint_url`, else `AWS_ENDPOINT_URL`. `None`: AWS itself.
pub fn endpoint(aws: &AwsConfig, flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string)
        .or_else(|| aws.endpoint_url.clone())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|e| !e.is_empty())
}

/// Opens the adapters for the resources `aws` names (which `weir setup aws` created): fails if
/// a queue or topic is missing rather than creating it.
pub async fn open(
    config: &Config,
    aws: &AwsConfig,
    sdk: &aws_config::SdkConfig,
    endpoint_url: Option<&str>,
) -> Result<Ports, PortError> {
    Ok(open_with_queue(config, aws, sdk, endpoint_url).await?.0)
}

/// [`open`], and the SQS queue as its own type: the Lambda handler sends poison messages to the
/// DLQ itself ([`SqsQueue::send_to_dlq`]), as Lambda's poller, not weir, received them.
pub async fn open_with_queue(
    config: &Config,
    aws: &AwsConfig,
    sdk: &aws_config::SdkConfig,
    endpoint_url: Option<&str>,
) -> Result<(Ports, Arc<SqsQueue>), PortError> {
    let objects = S3ObjectStore::new(sdk, setup::s3_settings(aws, endpoint_url))?;
    let names = SqsQueueNames { queue: aws.queue.clone(), dlq: aws.dlq.clone() };
    let queue =
        SqsQueue::open(aws_sdk_sqs::Client::new(sdk), &names, QueueSettings::from(&config.queue)).await?;
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let jobs = DynamoJobStore::new(dynamo.clone(), aws.jobs_table.clone())
        .with_retention_days(config.retention.jobs.retention_days);
    let records = aws
        .records_table
        .as_ref()
        .map(|t| Arc::new(DynamoRecordsSink::new(dynamo.clone(), t.clone())) as Arc<dyn RecordsSink>);
    let sns = aws_sdk_sns::Client::new(sdk);
    let mut topics = BTreeMap::new();
    for (topic, name) in &aws.topics {
        let arn = sns::find_topic(&sns, name)
            .await?
            .ok_or_else(|| PortError::NotFound(format!("SNS topic {name} (run `weir setup aws`)")))?;
        topics.insert(topic.clone(), arn);
    }
    let sqs = Arc::new(queue);
    let ports = Ports {
        objects: Arc::new(objects),
        queue: sqs.clone(),
        jobs: Arc::new(jobs),
        records,
        notifier: Arc::new(SnsNotifier::new(sns, topics)),
        warehouses: Default::default(),
    };
    Ok((ports, sqs))
}
