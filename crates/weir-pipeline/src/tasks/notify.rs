//! `weir:notify`: tell the subscribers what happened to the file.
//!
//! A state with a `failed_key` is a rejection (topic `alerts`); otherwise a success (topic
//! `success`). A delivery failure is recorded in the state and logged but does not fail the job:
//! the file has been processed either way. Each job's notification is claimed in the job store
//! before it is sent, so a workflow re-run after a later failure does not notify twice.

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
