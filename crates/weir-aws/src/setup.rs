//! `weir setup aws`: creates, or verifies and brings up to date, every AWS resource a weir
//! configuration names, so that the same command is safe to run again.
//!
//! The order follows the dependencies: the DLQ before the main queue (its redrive policy names
//! the DLQ's ARN), the main queue and its policy (which lets S3 send to it) before the bucket
//! notifications that point at it. Buckets get versioning, a public access block and a lifecycle
//! (noncurrent versions and stalled multipart uploads expire); each input bucket gets one
//! `ObjectCreated:*` queue notification per pipeline, filtered by the pipeline's prefix and
//! suffix. Then the SNS topics and their subscriptions from `[[notify.subscriptions]]` (see
//! [`crate::subscriptions`]), the DynamoDB tables, a CloudWatch alarm per `[alarms]` rule
//! (alarms setup made for rules since removed are deleted) and the dashboard. Each step reports
//! whether it created, updated or found the resource; [`plan_all`] reports the same without
//! changing anything (`weir setup aws --dry-run`).

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

/// What setup did (or, in a dry run, would do) with a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It did not exist and was created.
    Created,
    /// It existed and was verified (settings written again, unchanged in meaning).
    Exists,
    /// It existed with other settings, which were replaced by the config's.
    Updated,
    /// setup had made it and the config no longer has it: deleted.
    Removed,
}

impl Change {
    /// The verb of a line: `created`, or `would create` in a dry run.
    pub fn verb(self, dry_run: bool) -> &'static str {
        match (self, dry_run) {
            (Change::Created, false) => "created",
            (Change::Created, true) => "would create",
            (Change::Exists, _) => "exists",
            (Change::Updated, false) => "updated",
            (Change::Updated, true) => "would update",
            (Change::Removed, false) => "removed",
            (Change::Removed, true) => "would remove",
        }
    }
}

/// One resource and what setup did with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupItem {
    /// `bucket`, `queue`, `queue policy`, `notification`, `topic`, `subscription`, `table`,
    /// `table ttl`, `alarm`, `dashboard`.
    pub kind: &'static str,
    pub name: String,
    pub change: Change,
    pub detail: String,
}

impl SetupItem {
    /// Created now (or, in a dry run, would be).
    pub fn created(&self) -> bool {
        self.change == Change::Created
    }

    /// The item's line, with the verb of a run or of a dry run.
    pub fn line(&self, dry_run: bool) -> String {
        let width = if dry_run { 12 } else { 7 };
        let mut line = format!("{:<width$}  {:<13} {}", self.change.verb(dry_run), self.kind, self.name);
        if !self.detail.is_empty() {
            line.push_str(&format!("  ({})", self.detail));
        }
        line
    }
}

impl std::fmt::Display for SetupItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line(false))
    }
}

fn change(created: bool) -> Change {
    if created {
        Change::Created
    } else {
        Change::Exists
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
    run(config, aws, sdk, endpoint_url, false).await
}

/// What [`ensure_all`] would do, without changing anything (`weir setup aws --dry-run`).
pub async fn plan_all(
    config: &Config,
    aws: &AwsConfig,
    sdk: &SdkConfig,
    endpoint_url: Option<&str>,
) -> Result<Vec<SetupItem>, PortError> {
    run(config, aws, sdk, endpoint_url, true).await
}

/// Refuses to set up against weir's own S3 endpoint: the endpoint given (flag, `aws.endpoint_url`)
/// or the one the SDK would take from `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL` (which
/// `weir credentials` exports) answers with `Server: weir`. An endpoint that does not answer is
/// left to the setup's own calls to report.
pub async fn refuse_weir_endpoint(endpoint_url: Option<&str>) -> Result<(), PortError> {
    let mut candidates: Vec<String> = endpoint_url.map(str::to_owned).into_iter().collect();
    for var in ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"] {
        if let Some(url) = std::env::var(var).ok().filter(|u| !u.is_empty()) {
            if !candidates.contains(&url) {
                candidates.push(url);
            }
        }
    }
    if candidates.is_empty() {
        return Ok(());
    }
    crate::client::install_crypto();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| PortError::unavailable("making an HTTP client to look at the endpoint", e))?;
    for url in candidates {
        let Ok(answer) = client.get(&url).send().await else { continue };
        let server = answer.headers().get(reqwest::header::SERVER).and_then(|v| v.to_str().ok());
        if server == Some(weir_core::WEIR_S3_SERVER) {
            return Err(PortError::Invalid(format!(
                "{url} is weir's own S3 endpoint (a `weir run`), not AWS: `weir setup aws` creates AWS resources, so nothing was created. Unset AWS_ENDPOINT_URL_S3/AWS_ENDPOINT_URL (set by `eval \"$(weir credentials)\"`) or pass the AWS (or LocalStack/moto) endpoint with --endpoint-url"
            )));
        }
    }
    Ok(())
}

async fn run(
    config: &Config,
    aws: &AwsConfig,
    sdk: &SdkConfig,
    endpoint_url: Option<&str>,
    dry_run: bool,
) -> Result<Vec<SetupItem>, PortError> {
    refuse_weir_endpoint(endpoint_url).await?;
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
    let mut missing_buckets = Vec::new();
    for bucket in &buckets {
        let existed = s3.bucket_exists(bucket).await?;
        let rules: Vec<&RetentionRule> =
            config.retention.rules.iter().filter(|r| &r.bucket == bucket).collect();
        if !dry_run {
            s3.create_bucket(bucket).await?;
            configure_bucket(s3.sdk(), bucket, &rules).await?;
        } else if !existed {
            missing_buckets.push(bucket.clone());
        }
        let mut detail = "versioning, public access block, lifecycle".to_string();
        if !rules.is_empty() {
            detail.push_str(&format!(" with {} retention rule(s)", rules.len()));
        }
        items.push(SetupItem { kind: "bucket", name: bucket.clone(), change: change(!existed), detail });
    }

    // Queues, with the redrive policy; then the policy that lets S3 send to the main queue.
    let names = SqsQueueNames { queue: aws.queue.clone(), dlq: aws.dlq.clone() };
    // The policy as it was before this run (read first: updating a queue's other attributes
    // drops its policy on moto).
    let existing_queue = match crate::sqs::queue_url(&sqs, &aws.queue).await {
        Ok(url) => Some(url),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    let old_policy = match &existing_queue {
        Some(url) => sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::Policy)
            .send()
            .await
            .map_err(|e| port_error("reading the queue policy", e))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::Policy)),
        None => None,
    };
    let (queue_url, created, dlq_created) = if dry_run {
        let dlq_exists = match crate::sqs::queue_url(&sqs, &aws.dlq).await {
            Ok(_) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => return Err(e),
        };
        (existing_queue.clone(), existing_queue.is_none(), !dlq_exists)
    } else {
        let settings = QueueSettings::from(&config.queue);
        let (queue, created, dlq_created) = SqsQueue::create(sqs.clone(), &names, settings).await?;
        (Some(queue.url().to_string()), created, dlq_created)
    };
    items.push(SetupItem {
        kind: "queue",
        name: aws.dlq.clone(),
        change: change(dlq_created),
        detail: format!("dead-letter queue, retention {} s", config.queue.dlq_retention_secs),
    });
    items.push(SetupItem {
        kind: "queue",
        name: aws.queue.clone(),
        change: change(created),
        detail: format!(
            "visibility {} s, redrive to {} after {} receives",
            config.queue.visibility_timeout_secs, aws.dlq, config.queue.max_receive_count
        ),
    });
    let queue_arn = match &queue_url {
        Some(url) => Some(crate::sqs::queue_arn(&sqs, url).await?),
        None => None,
    };
    if let (false, Some(url), Some(arn)) = (dry_run, &queue_url, &queue_arn) {
        let source_arns: Vec<String> =
            sources(config).iter().map(|(b, _)| format!("arn:aws:s3:::{b}")).collect();
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "weir-s3-events",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnLike": {"aws:SourceArn": source_arns}},
            }],
        });
        sqs.set_queue_attributes()
            .queue_url(url)
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .send()
            .await
            .map_err(|e| port_error("setting the queue policy", e))?;
    }
    items.push(SetupItem {
        kind: "queue policy",
        name: aws.queue.clone(),
        change: change(old_policy.is_none_or(|p| p.is_empty())),
        detail: "s3.amazonaws.com may send events from the input buckets".into(),
    });

    // Bucket notifications: one queue configuration per pipeline.
    for (bucket, filters) in sources(config) {
        let described: Vec<String> =
            filters.iter().map(|(p, pre, suf)| format!("{p}: {pre}*{suf}")).collect();
        let detail = format!("ObjectCreated:* → {} ({})", aws.queue, described.join(", "));
        let (Some(queue_arn), false) = (&queue_arn, missing_buckets.contains(&bucket)) else {
            // Dry run, and the queue or the bucket is still to be made.
            items.push(SetupItem {
                kind: "notification",
                name: bucket.clone(),
                change: Change::Created,
                detail,
            });
            continue;
        };
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
        if !dry_run {
            let mut notification = NotificationConfiguration::builder();
            for (pipeline, prefix, suffix) in &filters {
                let mut key = S3KeyFilter::builder();
                if !prefix.is_empty() {
                    key = key.filter_rules(
                        FilterRule::builder().name(FilterRuleName::Prefix).value(prefix).build(),
                    );
                }
                if !suffix.is_empty() {
                    key = key.filter_rules(
                        FilterRule::builder().name(FilterRuleName::Suffix).value(suffix).build(),
                    );
                }
                notification = notification.queue_configurations(
                    QueueConfiguration::builder()
                        .id(format!("weir-{pipeline}"))
                        .queue_arn(queue_arn)
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
        }
        items.push(SetupItem { kind: "notification", name: bucket.clone(), change: change(!had), detail });
    }

    // Topics.
    let sns = aws_sdk_sns::Client::new(sdk);
    let mut topic_arns = std::collections::BTreeMap::new();
    for (topic, name) in &aws.topics {
        let (arn, created) = if dry_run {
            let arn = crate::sns::find_topic(&sns, name).await?;
            let created = arn.is_none();
            (arn, created)
        } else {
            let (arn, created) = crate::sns::ensure_topic(&sns, name).await?;
            (Some(arn), created)
        };
        if let Some(arn) = arn {
            topic_arns.insert(topic.clone(), arn);
        }
        items.push(SetupItem {
            kind: "topic",
            name: name.clone(),
            change: change(created),
            detail: String::new(),
        });
    }

    // Subscriptions from `[[notify.subscriptions]]`.
    items.extend(crate::subscriptions::ensure_subscriptions(&sns, config, aws, &topic_arns, dry_run).await?);

    // Tables.
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let tables = if dry_run {
        let mut out = Vec::new();
        for name in std::iter::once(&aws.jobs_table).chain(aws.records_table.as_ref()) {
            out.push((name.clone(), !crate::dynamo::table_exists(&dynamo, name).await?));
        }
        out
    } else {
        crate::dynamo::ensure_tables(&dynamo, &aws.jobs_table, aws.records_table.as_deref()).await?
    };
    let jobs_table_created = tables.first().is_some_and(|(_, created)| *created);
    for (name, created) in tables {
        let detail = if name == aws.jobs_table {
            format!("pk/sk, GSI {}, PITR", crate::dynamo::DATE_INDEX)
        } else {
            "pk/sk records, PITR".to_string()
        };
        items.push(SetupItem { kind: "table", name, change: change(created), detail });
    }
    if config.retention.jobs.retention_days.is_some() {
        let enabled_now = if dry_run {
            jobs_table_created || !crate::dynamo::ttl_enabled(&dynamo, &aws.jobs_table).await?
        } else {
            crate::dynamo::ensure_ttl(&dynamo, &aws.jobs_table).await?
        };
        items.push(SetupItem {
            kind: "table ttl",
            name: aws.jobs_table.clone(),
            change: change(enabled_now),
            detail: format!(
                "{} on finished jobs, {} days after they finished",
                crate::dynamo::TTL_ATTRIBUTE,
                config.retention.jobs.retention_days.unwrap_or_default()
            ),
        });
    }

    // Alarms from the `[alarms]` rules, and the dashboard.
    let cloudwatch = aws_sdk_cloudwatch::Client::new(sdk);
    items.extend(
        ensure_alarms_and_dashboard(
            &cloudwatch,
            config,
            aws,
            topic_arns.get("alerts").map(String::as_str),
            dry_run,
        )
        .await?,
    );
    Ok(items)
}

/// Writes an alarm per `[alarms]` rule (the alerts topic as action), deletes the alarms setup
/// made earlier for rules the config no longer has, and writes the dashboard.
async fn ensure_alarms_and_dashboard(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    config: &Config,
    aws: &AwsConfig,
    alerts_topic_arn: Option<&str>,
    dry_run: bool,
) -> Result<Vec<SetupItem>, PortError> {
    use crate::cloudwatch as cw;
    let mut items = Vec::new();
    let specs = cw::alarm_specs(&config.alarms.rules(), aws, alerts_topic_arn);
    let existing = cw::managed_alarms(cloudwatch, aws).await?;
    // A rule's alarm may exist without weir's tag (made by hand, or by the SAM template): it is
    // then overwritten, and tagged, but reported as existing.
    let untagged: Vec<String> = if specs.iter().all(|s| existing.contains_key(&s.name)) {
        Vec::new()
    } else {
        cw::alarms_with_prefix(cloudwatch, &format!("{}-", aws.queue))
            .await?
            .iter()
            .filter_map(|a| a.alarm_name().map(str::to_string))
            .collect()
    };
    for spec in &specs {
        let change = match existing.get(&spec.name) {
            Some(alarm) if cw::alarm_matches(alarm, spec) => Change::Exists,
            Some(_) => Change::Updated,
            None if untagged.contains(&spec.name) => Change::Updated,
            None => Change::Created,
        };
        if !dry_run {
            cw::put_alarm(cloudwatch, spec, &aws.queue).await?;
        }
        let action = match alerts_topic_arn {
            Some(_) => format!("→ {}", aws.topics.get("alerts").map_or("alerts", String::as_str)),
            None => "no alerts topic: no action".to_string(),
        };
        items.push(SetupItem {
            kind: "alarm",
            name: spec.name.clone(),
            change,
            detail: format!(
                "{} {} {} {} over {}×{} s, {action}",
                spec.rule.statistic,
                spec.rule.metric,
                spec.rule.comparison.symbol(),
                spec.rule.threshold,
                spec.rule.evaluation_periods,
                spec.rule.period_secs
            ),
        });
    }
    let stale: Vec<String> =
        existing.keys().filter(|name| !specs.iter().any(|s| &s.name == *name)).cloned().collect();
    if !dry_run {
        cw::delete_alarms(cloudwatch, &stale).await?;
    }
    for name in stale {
        items.push(SetupItem {
            kind: "alarm",
            name,
            change: Change::Removed,
            detail: "its rule is no longer in the config".into(),
        });
    }

    let dashboard = cw::dashboard_name(aws);
    let before = cw::get_dashboard(cloudwatch, &dashboard).await?;
    let arns: Vec<String> = if dry_run {
        existing.values().filter_map(|a| a.alarm_arn().map(str::to_string)).collect()
    } else {
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        cw::alarms_with_prefix(cloudwatch, &format!("{}-", aws.queue))
            .await?
            .into_iter()
            .filter(|a| a.alarm_name().is_some_and(|n| names.contains(&n)))
            .filter_map(|a| a.alarm_arn().map(str::to_string))
            .collect()
    };
    let body = cw::dashboard_body(aws, &arns);
    let change = match &before {
        None => Change::Created,
        Some(old) if same_json(old, &body) => Change::Exists,
        Some(_) => Change::Updated,
    };
    if !dry_run && change != Change::Exists {
        cw::put_dashboard(cloudwatch, &dashboard, &body).await?;
    }
    items.push(SetupItem {
        kind: "dashboard",
        name: dashboard,
        change,
        detail: "files by status, rows, job duration p50/p99, queue and DLQ depth, deliveries, alarms".into(),
    });
    Ok(items)
}

fn same_json(a: &str, b: &str) -> bool {
    match (serde_json::from_str::<serde_json::Value>(a), serde_json::from_str::<serde_json::Value>(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
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
