//! CloudWatch for weir on AWS: the metric names weir publishes, the alarms `weir setup aws`
//! makes from the `[alarms]` rules, the dashboard, and reading the alarms' states back.
//!
//! Metrics go to the `weir` namespace under the Prometheus metrics' names without their `weir_`
//! prefix (`files_total` by `status`, `rows_total` by `result`, `job_duration_seconds`,
//! `files_received_total`), each once with the `pipeline` dimension and once without it (the
//! roll-up the alarms and the dashboard read), and `error_rate_percent`: 0 or 100 for each
//! finished job, so its `Average` over a period is the percent of the period's finished jobs that
//! were rejected or failed, as the embedded rule means (see [`crate::metrics`]). On AWS, SNS
//! delivers the notifications: their deliveries are SNS's own metrics
//! (`NumberOfNotificationsDelivered`/`Failed`), as queue and DLQ depth are SQS's.
//!
//! Each `[alarms]` rule becomes one `PutMetricAlarm` named `<queue>-<rule>` and tagged
//! [`MANAGED_TAG`] = the queue's name: the queue names the deployment, so two deployments in one
//! account keep their alarms apart, and setup removes only the alarms it tagged for this queue.
//! The queue metrics are SQS's own (`ApproximateNumberOfMessagesVisible` of the queue and the
//! DLQ); `stale_seconds` ("no successful job while files arrive") is metric math over
//! `files_received_total` and `files_total{status=succeeded}` in windows of the rule's threshold.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat, StateValue, Tag,
};
use aws_sdk_cloudwatch::Client;
use serde_json::json;
use weir_core::alarms::{metrics, AlarmRule, AlarmState, Comparison, Statistic};
use weir_core::config::AwsConfig;
use weir_ports::PortError;

use crate::client::port_error;

/// The namespace of weir's own metrics.
pub const NAMESPACE: &str = "weir";
/// The tag on every alarm setup made; its value is the queue (the deployment) it belongs to.
pub const MANAGED_TAG: &str = "weir:queue";

/// Metric names in [`NAMESPACE`] (the Prometheus names without `weir_`).
pub mod names {
    /// Files (jobs) received. Unit Count.
    pub const FILES_RECEIVED: &str = "files_received_total";
    /// Files that reached a final status, dimension `status`. Unit Count.
    pub const FILES: &str = "files_total";
    /// Rows read, dimension `result` (`valid`, `invalid`). Unit Count.
    pub const ROWS: &str = "rows_total";
    /// Duration of each finished job. Unit Seconds.
    pub const JOB_DURATION: &str = "job_duration_seconds";
    /// 0 or 100 per finished job (100: rejected or failed). Unit Percent.
    pub const ERROR_RATE: &str = "error_rate_percent";
}

/// The dimension every metric also carries (besides its roll-up without it).
pub const PIPELINE_DIMENSION: &str = "pipeline";

/// What a rule's alarm watches.
#[derive(Debug, Clone, PartialEq)]
pub enum AlarmMetric {
    /// One metric: namespace, name, dimensions (name, value).
    Single { namespace: String, name: String, dimensions: Vec<(String, String)> },
    /// `stale_seconds`: files received and none succeeded within windows of `window_secs`.
    Stale { window_secs: u64 },
}

/// One CloudWatch alarm as setup writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSpec {
    pub name: String,
    pub rule: AlarmRule,
    pub metric: AlarmMetric,
    /// The alerts topic's ARN (none: the alarm has no action).
    pub action: Option<String>,
}

/// The alarm name of a rule in a deployment.
pub fn alarm_name(aws: &AwsConfig, rule: &str) -> String {
    format!("{}-{rule}", aws.queue)
}

/// The alarms of the config's `[alarms]` rules.
pub fn alarm_specs(rules: &[AlarmRule], aws: &AwsConfig, alerts_topic_arn: Option<&str>) -> Vec<AlarmSpec> {
    rules
        .iter()
        .map(|rule| {
            let sqs = |queue: &str| AlarmMetric::Single {
                namespace: "AWS/SQS".into(),
                name: "ApproximateNumberOfMessagesVisible".into(),
                dimensions: vec![("QueueName".into(), queue.to_string())],
            };
            let weir = |name: &str| AlarmMetric::Single {
                namespace: NAMESPACE.into(),
                name: name.into(),
                dimensions: Vec::new(),
            };
            let metric = match rule.metric.as_str() {
                metrics::DLQ_MESSAGES => sqs(&aws.dlq),
                metrics::QUEUE_MESSAGES => sqs(&aws.queue),
                metrics::ERROR_RATE_PERCENT => weir(names::ERROR_RATE),
                metrics::JOB_DURATION_SECONDS => weir(names::JOB_DURATION),
                // STALE_SECONDS (validation admits no other name).
                _ => AlarmMetric::Stale { window_secs: stale_window(rule.threshold) },
            };
            AlarmSpec {
                name: alarm_name(aws, &rule.name),
                rule: rule.clone(),
                metric,
                action: alerts_topic_arn.map(str::to_string),
            }
        })
        .collect()
}

/// A CloudWatch period (60 s or a multiple of 60 s) at least `secs` long.
fn period_of(secs: u64) -> i32 {
    let minutes = secs.max(1).div_ceil(60).min(i32::MAX as u64 / 60);
    (minutes * 60) as i32
}

/// The window of a `stale_seconds` rule: its threshold in seconds, as a CloudWatch period.
fn stale_window(threshold: f64) -> u64 {
    period_of(threshold.max(1.0).min(i32::MAX as f64) as u64) as u64
}

fn comparison_operator(c: Comparison) -> ComparisonOperator {
    match c {
        Comparison::GreaterThanOrEqualToThreshold => ComparisonOperator::GreaterThanOrEqualToThreshold,
        Comparison::GreaterThanThreshold => ComparisonOperator::GreaterThanThreshold,
        Comparison::LessThanThreshold => ComparisonOperator::LessThanThreshold,
        Comparison::LessThanOrEqualToThreshold => ComparisonOperator::LessThanOrEqualToThreshold,
    }
}

fn sdk_statistic(s: Statistic) -> Option<aws_sdk_cloudwatch::types::Statistic> {
    use aws_sdk_cloudwatch::types::Statistic as S;
    Some(match s {
        Statistic::Average => S::Average,
        Statistic::Sum => S::Sum,
        Statistic::Minimum => S::Minimum,
        Statistic::Maximum => S::Maximum,
        Statistic::SampleCount => S::SampleCount,
        Statistic::Percentile(_) => return None,
    })
}

fn metric_stat(name: &str, dimensions: &[(&str, &str)], period: i32) -> MetricStat {
    let mut metric = Metric::builder().namespace(NAMESPACE).metric_name(name);
    for (n, v) in dimensions {
        metric = metric.dimensions(Dimension::builder().name(*n).value(*v).build());
    }
    MetricStat::builder().metric(metric.build()).period(period).stat("Sum").build()
}

/// Writes (creates or overwrites) one alarm.
pub async fn put_alarm(client: &Client, spec: &AlarmSpec, queue: &str) -> Result<(), PortError> {
    let rule = &spec.rule;
    let tag = Tag::builder().key(MANAGED_TAG).value(queue).build();
    let mut req = client
        .put_metric_alarm()
        .alarm_name(&spec.name)
        .alarm_description(&rule.description)
        .evaluation_periods(rule.evaluation_periods.clamp(1, i32::MAX as u32) as i32)
        .threshold(rule.threshold)
        .comparison_operator(comparison_operator(rule.comparison))
        .treat_missing_data("notBreaching")
        .tags(tag)
        .set_alarm_actions(spec.action.clone().map(|a| vec![a]))
        .set_ok_actions(spec.action.clone().map(|a| vec![a]));
    match &spec.metric {
        AlarmMetric::Single { namespace, name, dimensions } => {
            req = req.namespace(namespace).metric_name(name).period(period_of(rule.period_secs));
            for (n, v) in dimensions {
                req = req.dimensions(Dimension::builder().name(n).value(v).build());
            }
            req = match (sdk_statistic(rule.statistic), rule.statistic) {
                (Some(s), _) => req.statistic(s),
                (None, p) => req.extended_statistic(p.to_string()),
            };
        }
        AlarmMetric::Stale { window_secs } => {
            let period = period_of(*window_secs);
            let value = *window_secs as f64;
            req = req
                .metrics(
                    MetricDataQuery::builder()
                        .id("received")
                        .metric_stat(metric_stat(names::FILES_RECEIVED, &[], period))
                        .return_data(false)
                        .build(),
                )
                .metrics(
                    MetricDataQuery::builder()
                        .id("succeeded")
                        .metric_stat(metric_stat(names::FILES, &[("status", "succeeded")], period))
                        .return_data(false)
                        .build(),
                )
                .metrics(
                    MetricDataQuery::builder()
                        .id("stale")
                        .label("seconds without a successful job while files arrive")
                        .expression(format!(
                            "IF(FILL(received, 0) > 0 AND FILL(succeeded, 0) == 0, {value}, 0)"
                        ))
                        .return_data(true)
                        .build(),
                );
        }
    }
    req.send().await.map_err(|e| port_error(&format!("writing alarm {}", spec.name), e))?;
    Ok(())
}

/// Whether an alarm CloudWatch has already says what `spec` says.
pub fn alarm_matches(existing: &MetricAlarm, spec: &AlarmSpec) -> bool {
    let rule = &spec.rule;
    let actions: Vec<String> = spec.action.iter().cloned().collect();
    let same_metric = match &spec.metric {
        AlarmMetric::Single { namespace, name, .. } => {
            existing.namespace() == Some(namespace.as_str())
                && existing.metric_name() == Some(name.as_str())
                && existing.period() == Some(period_of(rule.period_secs))
                && match sdk_statistic(rule.statistic) {
                    Some(s) => existing.statistic() == Some(&s),
                    None => existing.extended_statistic() == Some(rule.statistic.to_string().as_str()),
                }
        }
        AlarmMetric::Stale { .. } => !existing.metrics().is_empty(),
    };
    same_metric
        && existing.alarm_description().unwrap_or("") == rule.description
        && existing.threshold() == Some(rule.threshold)
        && existing.evaluation_periods() == Some(rule.evaluation_periods as i32)
        && existing.comparison_operator() == Some(&comparison_operator(rule.comparison))
        && existing.alarm_actions() == actions.as_slice()
}

/// The alarms whose names start with `prefix`.
pub async fn alarms_with_prefix(client: &Client, prefix: &str) -> Result<Vec<MetricAlarm>, PortError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| port_error("listing CloudWatch alarms", e))?;
        out.extend(page.metric_alarms().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(out),
        }
    }
}

/// The alarms setup made for the deployment of `aws.queue` (by their tag), by name.
pub async fn managed_alarms(
    client: &Client,
    aws: &AwsConfig,
) -> Result<BTreeMap<String, MetricAlarm>, PortError> {
    let mut out = BTreeMap::new();
    for alarm in alarms_with_prefix(client, &format!("{}-", aws.queue)).await? {
        let (Some(name), Some(arn)) = (alarm.alarm_name(), alarm.alarm_arn()) else { continue };
        let tags = client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| port_error(&format!("reading the tags of alarm {name}"), e))?;
        let ours =
            tags.tags().iter().any(|t| t.key() == Some(MANAGED_TAG) && t.value() == Some(aws.queue.as_str()));
        if ours {
            out.insert(name.to_string(), alarm);
        }
    }
    Ok(out)
}

/// Deletes alarms by name.
pub async fn delete_alarms(client: &Client, names: &[String]) -> Result<(), PortError> {
    // DeleteAlarms takes at most 100 names.
    for chunk in names.chunks(100) {
        client
            .delete_alarms()
            .set_alarm_names(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| port_error("deleting CloudWatch alarms", e))?;
    }
    Ok(())
}

/// The dashboard's name for a deployment: its queue's.
pub fn dashboard_name(aws: &AwsConfig) -> String {
    aws.queue.clone()
}

/// The dashboard: weir's own widgets (files by status, rows valid/invalid, job duration p50 and
/// p99, queue and DLQ depth, notification deliveries, the alarms).
pub fn dashboard_body(aws: &AwsConfig, alarm_arns: &[String]) -> String {
    let region = aws.region.as_str();
    let metric = |title: &str, stat: &str, metrics: serde_json::Value, x: u32, y: u32| {
        json!({"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": {
            "title": title, "region": region, "stat": stat, "period": 60, "view": "timeSeries",
            "metrics": metrics}})
    };
    let by = |name: &str, dim: &str, values: &[&str]| {
        serde_json::Value::Array(
            values.iter().map(|v| json!([NAMESPACE, name, dim, v, {"label": v}])).collect(),
        )
    };
    let mut widgets = vec![
        metric(
            "Files by status",
            "Sum",
            {
                let mut m = by(names::FILES, "status", &["succeeded", "rejected", "failed", "skipped"]);
                if let Some(a) = m.as_array_mut() {
                    a.push(json!([NAMESPACE, names::FILES_RECEIVED, {"label": "received"}]));
                }
                m
            },
            0,
            0,
        ),
        metric("Rows", "Sum", by(names::ROWS, "result", &["valid", "invalid"]), 12, 0),
        metric(
            "Job duration (s)",
            "p50",
            json!([[NAMESPACE, names::JOB_DURATION, {"stat": "p50", "label": "p50"}],
                   [NAMESPACE, names::JOB_DURATION, {"stat": "p99", "label": "p99"}]]),
            0,
            6,
        ),
        metric(
            "Queue and DLQ depth",
            "Maximum",
            json!([["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws.queue, {"label": "queue"}],
                   ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", aws.queue, {"label": "in flight"}],
                   ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws.dlq, {"label": "DLQ"}]]),
            12,
            6,
        ),
        metric(
            "Notification deliveries",
            "Sum",
            serde_json::Value::Array(
                aws.topics
                    .values()
                    .flat_map(|topic| {
                        [("NumberOfNotificationsDelivered", "delivered"), ("NumberOfNotificationsFailed", "failed")]
                            .map(|(m, what)| json!(["AWS/SNS", m, "TopicName", topic, {"label": format!("{topic} {what}")}]))
                    })
                    .collect(),
            ),
            0,
            12,
        ),
    ];
    if !alarm_arns.is_empty() {
        widgets.push(json!({"type": "alarm", "x": 12, "y": 12, "width": 12, "height": 6,
            "properties": {"title": "Alarms", "alarms": alarm_arns}}));
    }
    json!({"widgets": widgets}).to_string()
}

/// The dashboard's current body (`None`: no such dashboard).
pub async fn get_dashboard(client: &Client, name: &str) -> Result<Option<String>, PortError> {
    match client.get_dashboard().dashboard_name(name).send().await {
        Ok(out) => Ok(Some(out.dashboard_body().unwrap_or_default().to_string())),
        Err(e)
            if aws_sdk_cloudwatch::error::ProvideErrorMetadata::code(&e)
                .is_some_and(|c| c.starts_with("ResourceNotFound")) =>
        {
            Ok(None)
        }
        Err(e) => Err(port_error(&format!("reading dashboard {name}"), e)),
    }
}

/// Writes the dashboard.
pub async fn put_dashboard(client: &Client, name: &str, body: &str) -> Result<(), PortError> {
    client
        .put_dashboard()
        .dashboard_name(name)
        .dashboard_body(body)
        .send()
        .await
        .map_err(|e| port_error(&format!("writing dashboard {name}"), e))?;
    Ok(())
}

/// One alarm as CloudWatch last evaluated it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmReading {
    /// The rule's name (the alarm's without the deployment prefix).
    pub rule: String,
    pub alarm: String,
    pub description: String,
    pub state: AlarmState,
    pub reason: String,
}

/// The states of the deployment's alarms, from CloudWatch, in the rules' order; a rule whose
/// alarm does not exist is reported as such.
pub async fn alarm_states(
    sdk: &aws_config::SdkConfig,
    aws: &AwsConfig,
    rules: &[AlarmRule],
) -> Result<Vec<AlarmReading>, PortError> {
    let client = &Client::new(sdk);
    let existing = alarms_with_prefix(client, &format!("{}-", aws.queue)).await?;
    Ok(rules
        .iter()
        .map(|rule| {
            let name = alarm_name(aws, &rule.name);
            let found = existing.iter().find(|a| a.alarm_name() == Some(name.as_str()));
            let (state, reason) = match found {
                Some(a) => (
                    match a.state_value() {
                        Some(StateValue::Alarm) => AlarmState::Alarm,
                        Some(StateValue::Ok) => AlarmState::Ok,
                        _ => AlarmState::InsufficientData,
                    },
                    a.state_reason().unwrap_or("").to_string(),
                ),
                None => (
                    AlarmState::InsufficientData,
                    format!("no CloudWatch alarm {name} (run `weir setup aws`)"),
                ),
            };
            AlarmReading {
                rule: rule.name.clone(),
                alarm: name,
                description: rule.description.clone(),
                state,
                reason,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_core::alarms::default_rules;

    #[test]
    fn the_default_rules_map_onto_cloudwatch_metrics() {
        let aws = AwsConfig::default();
        let specs = alarm_specs(&default_rules(), &aws, Some("arn:aws:sns:us-east-1:1:weir-alerts"));
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "weir-events-dlq-not-empty",
                "weir-events-queue-backlog",
                "weir-events-error-rate",
                "weir-events-slow-jobs",
                "weir-events-stale-data"
            ]
        );
        assert_eq!(
            specs[0].metric,
            AlarmMetric::Single {
                namespace: "AWS/SQS".into(),
                name: "ApproximateNumberOfMessagesVisible".into(),
                dimensions: vec![("QueueName".into(), "weir-events-dlq".into())],
            }
        );
        assert!(matches!(&specs[2].metric, AlarmMetric::Single { name, .. } if name == names::ERROR_RATE));
        assert_eq!(specs[4].metric, AlarmMetric::Stale { window_secs: 3600 });
        assert_eq!(period_of(1), 60);
        assert_eq!(period_of(61), 120);
        assert_eq!(stale_window(3600.0), 3600);
    }

    /// The SAM template's alarms say what weir's default rules say.
    #[test]
    fn the_sam_templates_alarms_are_the_default_rules() {
        let template = include_str!("../../../deploy/aws/template.yaml");
        let aws = AwsConfig::default();
        for spec in alarm_specs(&default_rules(), &aws, None) {
            let start = template
                .find(&format!("AlarmName: {}\n", spec.name))
                .unwrap_or_else(|| panic!("the template has no alarm {}", spec.name));
            let block =
                &template[start..start + template[start..].find("\n\n").unwrap_or(template.len() - start)];
            let rule = &spec.rule;
            let mut lines = vec![
                format!("AlarmDescription: {}", rule.description),
                format!("EvaluationPeriods: {}", rule.evaluation_periods),
                format!("Threshold: {}", rule.threshold),
                format!("ComparisonOperator: {:?}", rule.comparison),
                "AlarmActions: [!Ref AlertsTopic]".to_string(),
            ];
            match &spec.metric {
                AlarmMetric::Single { namespace, name, .. } => {
                    lines.push(format!("Namespace: {namespace}"));
                    lines.push(format!("MetricName: {name}"));
                    lines.push(format!("Period: {}", period_of(rule.period_secs)));
                    lines.push(match sdk_statistic(rule.statistic) {
                        Some(_) => format!("Statistic: {}", rule.statistic),
                        None => format!("ExtendedStatistic: {}", rule.statistic),
                    });
                }
                AlarmMetric::Stale { window_secs } => {
                    lines.push(format!("Period: {window_secs}"));
                    lines.push(format!(
                        "Expression: IF(FILL(received, 0) > 0 AND FILL(succeeded, 0) == 0, {window_secs}, 0)"
                    ));
                }
            }
            for line in lines {
                assert!(block.contains(&line), "{}: the template lacks `{line}`:\n{block}", spec.name);
            }
        }
    }

    #[test]
    fn the_dashboard_has_weirs_widgets() {
        let aws = AwsConfig::default();
        let body: serde_json::Value =
            serde_json::from_str(&dashboard_body(&aws, &["arn:aws:cloudwatch:us-east-1:1:alarm:x".into()]))
                .expect("JSON");
        let titles: Vec<&str> = body["widgets"]
            .as_array()
            .expect("widgets")
            .iter()
            .filter_map(|w| w["properties"]["title"].as_str())
            .collect();
        assert_eq!(
            titles,
            [
                "Files by status",
                "Rows",
                "Job duration (s)",
                "Queue and DLQ depth",
                "Notification deliveries",
                "Alarms"
            ]
        );
    }
}
