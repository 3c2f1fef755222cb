//! `weir:move-to-failed`: move a rejected source to `failed/YYYY/MM/DD/<key>` in its bucket,
//! with the reason and the job id in its metadata.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::DateTime;
use serde_json::{json, Value};
use weir_core::keys::failed_key;
use weir_ports::Metadata;
use weir_workflow::{Task, TaskError};

use super::{job_input, merge, move_object, TaskContext};
use crate::state::fields;

pub struct MoveToFailed(pub Arc<TaskContext>);

/// Why the file was rejected, from what earlier states left in the state.
pub fn rejection_reason(state: &Value) -> String {
    if let Some(r) = state.get(fields::REASON).and_then(Value::as_str) {
        return r.to_owned();
    }
    if let Some(cause) = state.get(fields::ERROR).and_then(|e| e.get("Cause")).and_then(Value::as_str) {
        return cause.to_owned();
    }
    "rejected by the workflow".to_owned()
}

#[async_trait]
impl Task for MoveToFailed {
    async fn run(&self, state: Value) -> Result<Value, TaskError> {
        let input = job_input(&state)?;
        let reason = rejection_reason(&state);
        let date = DateTime::parse_from_rfc3339(&input.created_at)
            .map(|d| d.date_naive())
            .unwrap_or_else(|_| chrono::Utc::now().date_naive());
        let key = failed_key(&input.source_key, date);
        let metadata = Metadata::from([
            ("job_id".to_string(), input.job_id.clone()),
            ("reason".to_string(), reason.clone()),
            ("source_key".to_string(), input.source_key.clone()),
            ("failed_at".to_string(), chrono::Utc::now().to_rfc3339()),
        ]);
        move_object(&self.0, &input, &input.source_bucket, &key, metadata).await?;
        Ok(merge(state, json!({ fields::FAILED_KEY: key, fields::REASON: reason })))
    }
}
