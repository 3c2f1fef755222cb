//! The `[aws]` section of `weir.toml`: where `weir worker`, `weir setup aws` and `weir-lambda`
//! find the pipeline's AWS resources.
//!
//! Its presence switches the backend: with `[aws]` the buckets are S3 buckets (the names in
//! `[buckets]`), the queue is SQS, jobs and records live in DynamoDB and notifications go to
//! SNS. Without it weir stays embedded. Names only; credentials come from the standard AWS chain
//! (environment, profile, instance or task role), never from this file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::problem::Problem;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsConfig {
    /// The region of every resource.
    pub region: String,
    /// Another endpoint for every service (LocalStack, moto, a VPC endpoint); `--endpoint-url`
    /// and `AWS_ENDPOINT_URL` also set it.
    pub endpoint_url: Option<String>,
    /// Path-style S3 addressing (`endpoint/bucket/key`), for S3-compatible endpoints.
    pub path_style: bool,
    /// The SQS queue S3 sends the bucket notifications to.
    pub queue: String,
    /// Its dead-letter queue (SQS redrives to it after `queue.max_receive_count` receives).
    pub dlq: String,
    /// The DynamoDB table of jobs (and of the once-only claims).
    pub jobs_table: String,
    /// The DynamoDB table valid records are loaded into; none: records are not loaded.
    pub records_table: Option<String>,
    /// weir topic (`success`, `alerts`, ...) → SNS topic name.
    pub topics: BTreeMap<String, String>,
    /// How often `weir worker` sends its metrics to CloudWatch (one batched `PutMetricData`
    /// per interval, and one at shutdown).
    pub metrics_interval_secs: u64,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            region: "us-east-1".into(),
            endpoint_url: None,
            path_style: false,
            queue: "weir-events".into(),
            dlq: "weir-events-dlq".into(),
            jobs_table: "weir-jobs".into(),
            records_table: None,
            topics: BTreeMap::from([
                ("success".to_string(), "weir-success".to_string()),
                ("alerts".to_string(), "weir-alerts".to_string()),
            ]),
            metrics_interval_secs: 60,
        }
    }
}

impl AwsConfig {
    /// Problems that can be seen in the text, each naming its field.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.region.trim().is_empty() {
            problems.push(Problem::new("aws.region", "must not be empty"));
        }
        for (field, name) in [("aws.queue", &self.queue), ("aws.dlq", &self.dlq)] {
            let ok = !name.is_empty()
                && name.len() <= 80
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                problems.push(Problem::new(
                    field.to_string(),
                    format!("{name:?} is not an SQS queue name (1-80 of A-Z a-z 0-9 - _)"),
                ));
            }
        }
        if !(1..=86_400).contains(&self.metrics_interval_secs) {
            problems.push(Problem::new("aws.metrics_interval_secs", "must be between 1 and 86400"));
        }
        if self.queue == self.dlq {
            problems.push(Problem::new("aws.dlq", "must differ from aws.queue"));
        }
        let tables = std::iter::once(("aws.jobs_table", &self.jobs_table))
            .chain(self.records_table.iter().map(|t| ("aws.records_table", t)));
        for (field, name) in tables {
            let ok = (3..=255).contains(&name.len())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
            if !ok {
                problems.push(Problem::new(
                    field.to_string(),
                    format!("{name:?} is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ - .)"),
                ));
            }
        }
        for (topic, name) in &self.topics {
            let ok = !name.is_empty()
                && name.len() <= 256
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                problems.push(Problem::new(
                    format!("aws.topics.{topic}"),
                    format!("{name:?} is not an SNS topic name"),
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn the_example_aws_config_is_valid() {
        let config = Config::from_toml(include_str!("../../../deploy/aws/weir.toml")).expect("parses");
        assert_eq!(config.validate(), Vec::<crate::Problem>::new());
        let aws = config.aws.expect("has [aws]");
        assert_eq!((aws.queue.as_str(), aws.dlq.as_str()), ("weir-events", "weir-events-dlq"));
        assert_eq!(aws.records_table.as_deref(), Some("weir-records"));
        assert_eq!(aws.topics.len(), 2);
    }

    #[test]
    fn bad_names_are_reported_by_field() {
        let config =
            Config::from_toml("[aws]\nqueue = \"a b\"\ndlq = \"a b\"\njobs_table = \"x\"\n").expect("parses");
        let problems = config.validate();
        assert!(problems.iter().any(|p| p.to_string().starts_with("aws.queue:")), "{problems:?}");
        assert!(problems.iter().any(|p| p.to_string().starts_with("aws.dlq: must differ")), "{problems:?}");
        assert!(problems.iter().any(|p| p.to_string().starts_with("aws.jobs_table:")), "{problems:?}");
    }
}
