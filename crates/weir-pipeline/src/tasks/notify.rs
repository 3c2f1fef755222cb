//! `weir:notify`: tell the subscribers what happened to the file.
//!
//! A state with a `failed_key` is a rejection (topic `alerts`); otherwise a success (topic
//! `success`). How a repeated run of this state (a job retried after a crash or a failure) is
//! kept from notifying twice depends on the notifier:
//!
//! - an idempotent notifier (the outbox of `weir run`) stores a message once per `id`, so the
//!   task publishes every time it runs, and a failure to store it is transient: the job is
//!   retried until the message is in. At least once in, exactly once out.
//! - any other notifier: the message is claimed in the job store first, and a delivery failure
//!   is recorded in the state and logged but does not fail the job (at most once).
//!
//! Either way, a run publishes only while it holds the job's lease: a worker that was paused
//! past its lease and woke after another run finished the job says nothing.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};
use weir_core::image::ImageSummary;
use weir_core::Summary;
use weir_workflow::{Task, TaskError};

use super::move_to_failed::rejection_reason;
use super::{job_input, merge, TaskContext};
use crate::messages;
use crate::state::fields;

pub struct Notify(pub Arc<TaskContext>);

#[async_trait]
impl Task for Notify {
    async fn run(&self, state: Value) -> Result<Value, TaskError> {
        let input = job_input(&state)?;
        let notification = if let Some(failed_key) = state.get(fields::FAILED_KEY).and_then(Value::as_str) {
            let missing = messages::strings(&state, fields::MISSING_COLUMNS);
            messages::rejected(
                &input.job_id,
                &input.pipeline,
                &input.source_key,
                &rejection_reason(&state),
                &missing,
                failed_key,
            )
        } else if let Some(image) =
            state.get(fields::IMAGE).and_then(|i| serde_json::from_value::<ImageSummary>(i.clone()).ok())
        {
            messages::image_success(&input.job_id, &input.pipeline, &input.source_key, &image)
        } else {
            let summary: Summary = state
                .get(fields::SUMMARY)
                .cloned()
                .and_then(|s| serde_json::from_value(s).ok())
                .unwrap_or_default();
            let total = self
                .0
                .pipeline
                .summary
                .total
                .as_deref()
                .and_then(|f| summary.numeric.get(f).map(|s| (f, s.sum)));
            let output_key = state[fields::OUTPUT_KEYS]["results"].as_str().unwrap_or("n/a").to_owned();
            messages::success(&input.job_id, &input.pipeline, &input.source_key, &summary, total, &output_key)
        };
        // A run that lost its lease (another run took the job over) must not speak for it.
        if !input.run.is_empty()
            && !holds_lease(&self.0.ports, &input.source_bucket, &input.source_key, &input.run).await?
        {
            return Err(TaskError::transient(
                super::errors::UNAVAILABLE,
                format!(
                    "run {} no longer holds {}/{}: another run finishes the job",
                    input.run, input.source_bucket, input.source_key
                ),
            ));
        }
        let published = publish_once(&self.0.ports, &notification).await.map_err(|e| {
            TaskError::transient(
                super::errors::UNAVAILABLE,
                format!("storing the notification for delivery: {e}"),
            )
        })?;
        let status = match published {
            Published::Sent => json!({"status": "sent", "topic": notification.topic}),
            Published::AlreadySent => json!({"status": "already_sent", "topic": notification.topic}),
            Published::Failed(error) => {
                tracing::warn!(job_id = %input.job_id, error = %error, "notification failed; the job is not affected");
                json!({"status": "failed", "topic": notification.topic, "error": error})
            }
        };
        Ok(merge(state, json!({ fields::NOTIFICATION: status })))
    }
}

/// What [`publish_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    Sent,
    /// Claimed by an earlier publish (non-idempotent notifiers only).
    AlreadySent,
    /// Claimed, then the delivery failed: not tried again (non-idempotent notifiers only).
    Failed(String),
}

/// Publishes a job's message once per outcome, named by its `id` attribute. An idempotent
/// notifier (the outbox of `weir run`) stores an id once, so the message is published every
/// time (at least once in, exactly once out) and a failure is the caller's to retry. Any other
/// notifier is claimed in the job store first (at most once); a failed claim is the caller's to
/// retry, a failed delivery after it is [`Published::Failed`].
pub async fn publish_once(
    ports: &crate::Ports,
    n: &weir_ports::Notification,
) -> Result<Published, weir_ports::PortError> {
    if ports.notifier.idempotent() {
        ports.notifier.publish(n).await?;
        return Ok(Published::Sent);
    }
    let claim = n.attributes.get("id").cloned().unwrap_or_else(|| format!("notify:{}", uuid::Uuid::new_v4()));
    if !ports.jobs.claim_once(&claim).await? {
        return Ok(Published::AlreadySent);
    }
    Ok(match ports.notifier.publish(n).await {
        Ok(()) => Published::Sent,
        Err(e) => Published::Failed(e.to_string()),
    })
}

/// Whether `run` still holds the lease on the source key (a read: a run that holds it needs no
/// renewal to speak, only to know that nobody else took over).
pub async fn holds_lease(
    ports: &crate::Ports,
    bucket: &str,
    key: &str,
    run: &str,
) -> Result<bool, TaskError> {
    let record = ports
        .jobs
        .source_key(bucket, key)
        .await
        .map_err(|e| super::port_error(e, "checking the job's lease before notifying"))?;
    Ok(record.and_then(|k| k.lease).is_some_and(|l| l.run == run))
}
