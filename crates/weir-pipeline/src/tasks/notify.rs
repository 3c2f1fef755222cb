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

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};
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
        let notifier = &self.0.ports.notifier;
        if notifier.idempotent() {
            notifier.publish(&notification).await.map_err(|e| {
                TaskError::transient(
                    super::errors::UNAVAILABLE,
                    format!("storing the notification for delivery: {e}"),
                )
            })?;
            return Ok(merge(
                state,
                json!({ fields::NOTIFICATION: {"status": "sent", "topic": notification.topic} }),
            ));
        }
        let kind = if state.get(fields::FAILED_KEY).is_some() { "rejected" } else { "succeeded" };
        let claim = format!("notify:{}:{kind}", input.job_id);
        let first = self
            .0
            .ports
            .jobs
            .claim_once(&claim)
            .await
            .map_err(|e| super::port_error(e, "claiming the notification"))?;
        if !first {
            return Ok(merge(
                state,
                json!({ fields::NOTIFICATION: {"status": "already_sent", "topic": notification.topic} }),
            ));
        }
        let status = match self.0.ports.notifier.publish(&notification).await {
            Ok(()) => json!({"status": "sent", "topic": notification.topic}),
            Err(e) => {
                tracing::warn!(job_id = %input.job_id, error = %e, "notification failed; the job is not affected");
                json!({"status": "failed", "topic": notification.topic, "error": e.to_string()})
            }
        };
        Ok(merge(state, json!({ fields::NOTIFICATION: status })))
    }
}
