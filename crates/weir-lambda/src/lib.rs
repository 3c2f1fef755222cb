//! weir on AWS Lambda: the handler for the SQS event source.
//!
//! Lambda's event source mapping receives from the queue and hands the function a batch; the
//! function runs each message through the same engine `weir worker` uses and answers with the
//! messages that must come back (`batchItemFailures`, with `ReportBatchItemFailures` on the
//! mapping). Lambda deletes the others. The engine's dispositions map onto that:
//!
//! - done (succeeded, rejected, skipped, failed for good): not reported, so Lambda deletes it;
//! - retry later: its visibility is set to the engine's backoff, and it is reported, so SQS
//!   delivers it again then (and redrives it to the DLQ after `maxReceiveCount`);
//! - not an event at all: a copy goes to the DLQ now and it is not reported (if the copy cannot
//!   be sent, it is reported instead, so nothing is lost).
//!
//! The same function is the target of EventBridge schedules: a `Scheduled Event` (the payload
//! EventBridge sends for a `rate()`/`cron()` rule) names its rule in `resources`, and the rule's
//! name is a `[[schedule]]`'s (or `weir-` and it, as the SAM template names them). The handler
//! runs that schedule's work for the event's `time`, once: the firing is claimed in the jobs
//! table as `weir worker`'s scheduler claims it, so a repeated delivery or a worker that fired
//! the same time already does not run it twice.
//!
//! At cold start the secret settings of the config (a PostgreSQL sink's `url = { secret =
//! "arn:...", key = "url" }`) are read from Secrets Manager with the function's role, by the
//! same [`weir_ports::Secrets::resolve`] `weir worker` starts with; one that cannot be read fails
//! the cold start, naming the setting.
//!
//! The function keeps its engine between invocations, as Lambda keeps the process warm. Its
//! metrics (files by status, rows, job duration, error rate) are CloudWatch embedded metric
//! format lines on stdout: CloudWatch Logs turns them into metrics in the `weir` namespace, with
//! no API call.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, TimeZone, Utc};
use weir_core::Config;
use weir_pipeline::{Disposition, Engine};
use weir_ports::Message;

/// The engine and the queue a handler needs.
#[derive(Clone)]
pub struct Handler {
    engine: Arc<Engine>,
    queue: Arc<weir_aws::SqsQueue>,
}

impl Handler {
    /// Opens the AWS resources the configuration's `[aws]` section names; the metrics go to
    /// stdout in CloudWatch's embedded metric format.
    pub async fn open(
        config: Config,
        sdk: &aws_config::SdkConfig,
        endpoint_url: Option<&str>,
        scratch: std::path::PathBuf,
    ) -> Result<Handler> {
        let metrics = Arc::new(weir_aws::metrics::EmfMetrics::stdout());
        Handler::open_with_metrics(config, sdk, endpoint_url, scratch, metrics).await
    }

    /// [`Handler::open`], with the metrics going to `metrics`.
    pub async fn open_with_metrics(
        config: Config,
        sdk: &aws_config::SdkConfig,
        endpoint_url: Option<&str>,
        scratch: std::path::PathBuf,
        metrics: Arc<dyn weir_ports::JobMetrics>,
    ) -> Result<Handler> {
        let aws = config.aws.clone().context("the configuration has no [aws] section")?;
        let config = resolve_secrets(&config, sdk).await?;
        let (mut ports, queue) = weir_aws::open_with_queue(&config, &aws, sdk, endpoint_url)
            .await
            .context("opening the AWS resources")?;
        ports.warehouses = weir_postgres::open_all(&config, |p| {
            weir_process::Plan::compile(p).map(|plan| plan.table_columns())
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let engine = Arc::new(Engine::new(config, ports, scratch)?.with_metrics(metrics));
        Ok(Handler { engine, queue })
    }

    /// From the environment of a Lambda function: the configuration file in `WEIR_CONFIG`
    /// (default `weir.toml` beside the binary in `LAMBDA_TASK_ROOT`), the endpoint as every weir
    /// command finds it ([`weir_aws::endpoint`]: the config's, else `AWS_ENDPOINT_URL`), scratch
    /// space in `/tmp`.
    pub async fn from_env() -> Result<Handler> {
        let path = std::env::var("WEIR_CONFIG").unwrap_or_else(|_| {
            let root = std::env::var("LAMBDA_TASK_ROOT").unwrap_or_else(|_| ".".into());
            format!("{root}/weir.toml")
        });
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let config = Config::from_toml(&text).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        let problems = weir_pipeline::check::problems(&config);
        anyhow::ensure!(
            problems.is_empty(),
            "{path} has problems:\n{}",
            weir_core::problem::lines(&problems)
        );
        let aws = config.aws.clone().context("the configuration has no [aws] section")?;
        let endpoint = weir_aws::endpoint(&aws, None);
        let sdk = weir_aws::client::load(&weir_aws::AwsSettings {
            region: Some(aws.region.clone()),
            endpoint_url: endpoint.clone(),
        })
        .await;
        Handler::open(config, &sdk, endpoint.as_deref(), std::env::temp_dir().join("weir")).await
    }

    /// Handles one batch; the response names the messages SQS must deliver again.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            let sqs_id = record.message_id.clone().unwrap_or_default();
            let Some(message) = to_message(record) else {
                tracing::error!(message_id = %sqs_id, "a record without a receipt handle; reporting it");
                response.add_failure(sqs_id);
                continue;
            };
            match self.engine.handle_message(&message).await {
                Disposition::Delete => {}
                Disposition::Retry { after } => {
                    self.back_off(&message, after).await;
                    response.add_failure(sqs_id);
                }
                Disposition::DeadLetter => {
                    if let Err(e) = self.queue.send_to_dlq(&message).await {
                        tracing::error!(message_id = %sqs_id, error = %e, "could not dead-letter; reporting it");
                        response.add_failure(sqs_id);
                    }
                }
            }
        }
        response
    }

    async fn back_off(&self, message: &Message, after: Duration) {
        if let Err(e) = self.engine.ports().queue.change_visibility(&message.receipt_handle, after).await {
            tracing::warn!(message_id = %message.message_id, error = %e, "could not set the retry delay");
        }
    }
}

/// An EventBridge scheduled event (`"detail-type": "Scheduled Event"`, `"source": "aws.events"`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ScheduledEvent {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    /// The time the rule was due.
    pub time: DateTime<Utc>,
    /// The rule's ARN.
    #[serde(default)]
    pub resources: Vec<String>,
}

/// What the function was invoked with.
#[derive(Debug, Clone)]
pub enum Invocation {
    Sqs(SqsEvent),
    Scheduled(ScheduledEvent),
}

impl Invocation {
    /// Tells an SQS batch (`Records`) from an EventBridge scheduled event (`detail-type`).
    pub fn parse(payload: serde_json::Value) -> Result<Invocation> {
        if payload.get("detail-type").is_some() {
            let event: ScheduledEvent =
                serde_json::from_value(payload).context("reading the EventBridge event")?;
            anyhow::ensure!(
                event.detail_type == "Scheduled Event",
                "an EventBridge event of type {:?}: weir-lambda takes scheduled events",
                event.detail_type
            );
            return Ok(Invocation::Scheduled(event));
        }
        anyhow::ensure!(
            payload.get("Records").is_some(),
            "neither an SQS batch (Records) nor an EventBridge scheduled event (detail-type)"
        );
        Ok(Invocation::Sqs(serde_json::from_value(payload).context("reading the SQS batch")?))
    }
}

impl Handler {
    /// Any invocation: an SQS batch answers with its batch item failures, a scheduled event
    /// with what its schedule did (`{"schedule", "due", "fired", "outcome"}`).
    pub async fn invoke(&self, payload: serde_json::Value) -> Result<serde_json::Value> {
        match Invocation::parse(payload)? {
            Invocation::Sqs(batch) => Ok(serde_json::to_value(self.handle(batch).await)?),
            Invocation::Scheduled(event) => self.handle_scheduled(&event).await,
        }
    }

    /// Runs the schedule the event's rule stands for, unless its time fired already. An error
    /// (a rule no `[[schedule]]` names, work that failed) fails the invocation, so EventBridge's
    /// retry policy and the function's error alarm see it.
    pub async fn handle_scheduled(&self, event: &ScheduledEvent) -> Result<serde_json::Value> {
        let rule = event.resources.first().map(String::as_str).unwrap_or_default();
        let config = self.engine.config();
        let schedule = weir_pipeline::schedule::schedule_for_rule(config, rule).with_context(|| {
            let names: Vec<&str> = config.schedules.iter().map(|s| s.name.as_str()).collect();
            format!("the rule {rule:?} is none of the configured schedules {names:?}")
        })?;
        let fired = weir_pipeline::schedule::fire(&self.engine, schedule, event.time)
            .await
            .with_context(|| format!("schedule {}", schedule.name))?;
        tracing::info!(schedule = %schedule.name, due = %event.time, fired = fired.is_some(), "scheduled event");
        Ok(serde_json::json!({
            "schedule": schedule.name,
            "due": event.time.to_rfc3339(),
            "fired": fired.is_some(),
            "outcome": fired.map(|f| f.outcome),
        }))
    }
}
/// The config with its secret settings read, as `weir worker` reads them at start
/// ([`weir_ports::Secrets::resolve`]): `{ secret = ... }` from Secrets Manager with the function's
/// role, now, at cold start; a secret that cannot be read fails the cold start with its setting's
/// path and the reason, never the value.
async fn resolve_secrets(config: &Config, sdk: &aws_config::SdkConfig) -> Result<Config> {
    let secrets = weir_ports::Secrets::new(
        Arc::new(NoSecretFiles),
        Some(Arc::new(weir_aws::SecretsManagerSource::new(sdk))),
        Duration::from_secs(config.secrets.refresh_secs.max(1)),
    );
    secrets.resolve(config).await.map_err(|problems| {
        anyhow::anyhow!(
            "the configuration has secrets weir cannot read:\n{}",
            weir_core::problem::lines(&problems)
        )
    })
}

/// `{ file = ... }` on Lambda: refused, as a function has no file private to it to read one from.
struct NoSecretFiles;

#[async_trait::async_trait]
impl weir_ports::SecretSource for NoSecretFiles {
    async fn read(&self, id: &str) -> Result<String, weir_ports::SecretError> {
        Err(weir_ports::SecretError::Unreadable(format!(
            "the file {id}: weir-lambda reads no secret files (a function's package is no private \
             file); put the value in Secrets Manager and write {{ secret = \"arn:...\" }}"
        )))
    }
}

/// The port's message for a Lambda SQS record (the original id if the DLQ replayed it).
pub fn to_message(record: &SqsMessage) -> Option<Message> {
    let sent_at = record
        .message_attributes
        .get(weir_aws::sqs::SENT_AT_ATTR)
        .and_then(|a| a.string_value.as_deref())
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok().map(|t| t.with_timezone(&Utc)))
        .or_else(|| {
            let ms = record.attributes.get("SentTimestamp")?.parse().ok()?;
            Utc.timestamp_millis_opt(ms).single()
        })
        .unwrap_or_else(Utc::now);
    Some(Message {
        message_id: record
            .message_attributes
            .get(weir_aws::sqs::ID_ATTR)
            .and_then(|a| a.string_value.clone())
            .or_else(|| record.message_id.clone())
            .unwrap_or_default(),
        receipt_handle: record.receipt_handle.clone()?,
        body: record.body.clone().unwrap_or_default(),
        receive_count: record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        sent_at,
    })
}
