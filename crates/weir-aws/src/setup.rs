//! `weir setup aws`: creates, or verifies and brings up to date, every AWS resource a weir
//! configuration names, so that the same command is safe to run again.
//!
//! The order follows the dependencies: the DLQ before the main queue (its redrive policy names
//! the DLQ's ARN), the main queue and its policy (which lets S3 send to it) before the bucket
//! notifications that point at it. Buckets get versioning, a public access block and a lifecycle
//! (noncurrent versions and stalled multipart uploads expire); each input bucket gets one
//! `ObjectCreated:*` queue notification per pipeline, filtered by the pipeline's prefix and
//! suffix. Then the SNS topics and the DynamoDB tables. Each step reports whether it created the
//! resource or found it.

use aws_config::SdkConfig;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketVersioningStatus, Event,
    ExpirationStatus, FilterRule, FilterRuleName, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, NotificationConfiguration, NotificationConfigurationFilter,
    PublicAccessBlockConfiguration, QueueConfiguration, S3KeyFilter, Transition, TransitionStorageClass,
    VersioningConfiguration,
};
use aws_sdk_sqs::types::QueueAttributeName;
use weir_core::config::AwsConfig;
use weir_core::schedule_config::RetentionRule;
use weir_core::Config;
use weir_ports::{ObjectStore, PortError, QueueSettings};

use crate::client::port_error;
use crate::{S3ObjectStore, S3Settings, SqsQueue, SqsQueueNames};

/// One resource and what setup did with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupItem {
    /// `bucket`, `queue`, `queue policy`, `notification`, `topic`, `table`.
    pub kind: &'static str,
    pub name: String,
    /// Created now (false: it existed, and was verified or updated).
    pub created: bool,
    pub detail: String,
}

impl std::fmt::Display for SetupItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.created { "created" } else { "exists " };
        write!(f, "{what}  {:<13} {}", self.kind, self.name)?;
        if !self.detail.is_empty() {
            write!(f, "  ({})", self.detail)?;
        }
        Ok(())
    }
}

fn invalid(e: impl std::fmt::Display) -> PortError {
    PortError::Invalid(e.to_string())
}

/// A pipeline's event filter: (pipeline name, key prefix, key suffix).
type Filter = (String, String, String);

/// The buckets events come from, with the pipelines' filters.
fn sources(config: &Config) -> Vec<(String, Vec<Filter>)> {
    let mut out: Vec<(String, Vec<Filter>)> = Vec::new();
    for p in &config.pipelines {
        let bucket = p.source.bucket.clone().unwrap_or_else(|| config.buckets.input.clone());
        let filter = (p.name.clone(), p.source.prefix.clone(), p.source.suffix.clone());
        match out.iter_mut().find(|(b, _)| *b == bucket) {
            Some((_, filters)) => filters.push(filter),
            None => out.push((bucket, vec![filter])),
        }
    }
    out
}

/// The S3 settings of an `[aws]` section, with the endpoint actually in force.
pub fn s3_settings(aws: &AwsConfig, endpoint_url: Option<&str>) -> S3Settings {
    S3Settings {
        region: aws.region.clone(),
        endpoint_url: endpoint_url.map(str::to_string),
        path_style: aws.path_style || endpoint_url.is_some(),
    }
}

/// Creates or verifies everything; returns what it did, in order.
pub async fn ensure_all(
    config: &Config,
    aws: &AwsConfig,
    sdk: &SdkConfig,
    endpoint_url: Option<&str>,
) -> Result<Vec<SetupItem>, PortError> {
    let mut items = Vec::new();
    let s3 = S3ObjectStore::new(sdk, s3_settings(aws, endpoint_url))?;
    let sqs = aws_sdk_sqs::Client::new(sdk);

    // Buckets.
    let mut buckets =
        vec![config.buckets.input.clone(), config.buckets.output.clone(), config.buckets.archive.clone()];
    for (b, _) in sources(config) {
        if !buckets.contains(&b) {
            buckets.push(b);
        }
    }
    for bucket in &buckets {
        let existed = s3.bucket_exists(bucket).await?;
        s3.create_bucket(bucket).await?;
        let rules: Vec<&RetentionRule> =
            config.retention.rules.iter().filter(|r| &r.bucket == bucket).collect();
        configure_bucket(s3.sdk(), bucket, &rules).await?;
        let mut detail = "versioning, public access block, lifecycle".to_string();
        if !rules.is_empty() {
            detail.push_str(&format!(" with {} retention rule(s)", rules.len()));
        }
        items.push(SetupItem { kind: "bucket", name: bucket.clone(), created: !existed, detail });
    }

    // Queues, with the redrive policy; then the policy that lets S3 send to the main queue.
    let names = SqsQueueNames { queue: aws.queue.clone(), dlq: aws.dlq.clone() };
    // The policy as it was before this run (read first: updating a queue's other attributes
    // drops its policy on moto).
    let old_policy = match crate::sqs::queue_url(&sqs, &aws.queue).await {
        Ok(url) => sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::Policy)
            .send()
            .await
            .map_err(|e| port_error("reading the queue policy", e))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::Policy)),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    let settings = QueueSettings::from(&config.queue);
    let (queue, created, dlq_created) = SqsQueue::create(sqs.clone(), &names, settings).await?;
    items.push(SetupItem {
        kind: "queue",
        name: aws.dlq.clone(),
        created: dlq_created,
        detail: format!("dead-letter queue, retention {} s", config.queue.dlq_retention_secs),
    });
    items.push(SetupItem {
        kind: "queue",
        name: aws.queue.clone(),
        created,
        detail: format!(
            "visibility {} s, redrive to {} after {} receives",
            config.queue.visibility_timeout_secs, aws.dlq, config.queue.max_receive_count
        ),
    });
    let queue_arn = crate::sqs::queue_arn(&sqs, queue.url()).await?;
    let source_arns: Vec<String> = sources(config).iter().map(|(b, _)| format!("arn:aws:s3:::{b}")).collect();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "weir-s3-events",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnLike": {"aws:SourceArn": source_arns}},
        }],
    });
    sqs.set_queue_attributes()
        .queue_url(queue.url())
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .map_err(|e| port_error("setting the queue policy", e))?;
    items.push(SetupItem {
        kind: "queue policy",
        name: aws.queue.clone(),
        created: old_policy.is_none_or(|p| p.is_empty()),
        detail: "s3.amazonaws.com may send events from the input buckets".into(),
    });

    // Bucket notifications: one queue configuration per pipeline.
    for (bucket, filters) in sources(config) {
        let existing = match s3.sdk().get_bucket_notification_configuration().bucket(&bucket).send().await {
            Ok(c) => c,
            // moto answers a bucket without notifications with an empty element of another name,
            // which the SDK refuses to parse: a 200 answer that does not parse is "none".
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 200) => {
                aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput::builder()
                    .build()
            }
            Err(e) => return Err(port_error(&format!("reading the notification configuration of {bucket}"), e)),
        };
        let had = existing.queue_configurations().iter().any(|q| q.queue_arn() == queue_arn);
        let mut notification = NotificationConfiguration::builder();
        for (pipeline, prefix, suffix) in &filters {
            let mut key = S3KeyFilter::builder();
            if !prefix.is_empty() {
                key = key
                    .filter_rules(FilterRule::builder().name(FilterRuleName::Prefix).value(prefix).build());
            }
            if !suffix.is_empty() {
                key = key
                    .filter_rules(FilterRule::builder().name(FilterRuleName::Suffix).value(suffix).build());
            }
            notification = notification.queue_configurations(
                QueueConfiguration::builder()
                    .id(format!("weir-{pipeline}"))
                    .queue_arn(&queue_arn)
                    .events(Event::from("s3:ObjectCreated:*"))
                    .filter(NotificationConfigurationFilter::builder().key(key.build()).build())
                    .build()
                    .map_err(invalid)?,
            );
        }
        // Other targets the bucket notifies (topics, Lambda functions) are kept.
        let notification = notification
            .set_topic_configurations(existing.topic_configurations.clone())
            .set_lambda_function_configurations(existing.lambda_function_configurations.clone())
            .build();
        s3.sdk()
            .put_bucket_notification_configuration()
            .bucket(&bucket)
            .notification_configuration(notification)
            .send()
            .await
            .map_err(|e| port_error(&format!("setting the notification configuration of {bucket}"), e))?;
        let described: Vec<String> =
            filters.iter().map(|(p, pre, suf)| format!("{p}: {pre}*{suf}")).collect();
        items.push(SetupItem {
            kind: "notification",
            name: bucket.clone(),
            created: !had,
            detail: format!("ObjectCreated:* → {} ({})", aws.queue, described.join(", ")),
        });
    }

    // Topics.
    let sns = aws_sdk_sns::Client::new(sdk);
    for name in aws.topics.values() {
        let (_, created) = crate::sns::ensure_topic(&sns, name).await?;
        items.push(SetupItem { kind: "topic", name: name.clone(), created, detail: String::new() });
    }

    // Tables.
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    for (name, created) in
        crate::dynamo::ensure_tables(&dynamo, &aws.jobs_table, aws.records_table.as_deref()).await?
    {
        let detail = if name == aws.jobs_table {
            format!("pk/sk, GSI {}, PITR", crate::dynamo::DATE_INDEX)
        } else {
            "pk/sk records, PITR".to_string()
        };
        items.push(SetupItem { kind: "table", name, created, detail });
    }
    if config.retention.jobs.retention_days.is_some() {
        let enabled_now = crate::dynamo::ensure_ttl(&dynamo, &aws.jobs_table).await?;
        items.push(SetupItem {
            kind: "table ttl",
            name: aws.jobs_table.clone(),
            created: enabled_now,
            detail: format!(
                "{} on finished jobs, {} days after they finished",
                crate::dynamo::TTL_ATTRIBUTE,
                config.retention.jobs.retention_days.unwrap_or_default()
            ),
        });
    }
    Ok(items)
}

/// The S3 lifecycle rule of a `[[retention.rule]]` (its id names the bucket's rule number and
/// prefix, so running setup again writes the same rules).
fn lifecycle_rule(i: usize, r: &RetentionRule) -> Result<LifecycleRule, PortError> {
    let mut rule = LifecycleRule::builder()
        .id(format!("weir-retention-{i}-{}", r.prefix.replace('/', "_"))
            .chars()
            .take(255)
            .collect::<String>())
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix(&r.prefix).build());
    if let Some(days) = r.expire_after_days {
        rule = rule.expiration(LifecycleExpiration::builder().days(days as i32).build());
    }
    if let (Some(days), Some(class)) = (r.transition_after_days, &r.storage_class) {
        rule = rule.transitions(
            Transition::builder()
                .days(days as i32)
                .storage_class(TransitionStorageClass::from(class.as_str()))
                .build(),
        );
    }
    rule.build().map_err(invalid)
}

async fn configure_bucket(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    retention: &[&RetentionRule],
) -> Result<(), PortError> {
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
        )
        .send()
        .await
        .map_err(|e| port_error(&format!("enabling versioning on {bucket}"), e))?;
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(|e| port_error(&format!("blocking public access to {bucket}"), e))?;
    let rule = LifecycleRule::builder()
        .id("weir-expire-noncurrent")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(30).build())
        .abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder().days_after_initiation(7).build(),
        )
        .build()
        .map_err(invalid)?;
    let mut lifecycle = BucketLifecycleConfiguration::builder().rules(rule);
    for (i, r) in retention.iter().enumerate() {
        lifecycle = lifecycle.rules(lifecycle_rule(i, r)?);
    }
    // The whole configuration is written each time: the same rules again, so setup is idempotent.
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(lifecycle.build().map_err(invalid)?)
        .send()
        .await
        .map_err(|e| port_error(&format!("setting the lifecycle of {bucket}"), e))?;
    Ok(())
}
