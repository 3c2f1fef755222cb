//! `weir:move-to-failed`: move (or, with `source.archive = "copy"`, copy) a rejected source to
//! `failed/YYYY/MM/DD/<key>` in its bucket (or where the pipeline's `output.failed_key` template
//! says), with the reason and the job id in its metadata.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};
use weir_workflow::{Task, TaskError};

use super::{job_input, merge, port_error, settle_source, TaskContext};
use crate::messages;
use crate::provenance::{text_from_metadata, text_to_metadata, Provenance};
use crate::state::{fields, JobInput};

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
        let key = failed_key_of(&self.0, &input)?;
        let missing = messages::strings(&state, fields::MISSING_COLUMNS);
        let metadata = Provenance::of_job(&input).metadata([
            ("reason", text_to_metadata(&reason)),
            (
                "missing_columns",
                text_to_metadata(&serde_json::to_string(&missing).expect("strings serialize")),
            ),
            ("failed_at", chrono::Utc::now().to_rfc3339()),
        ]);
        settle_source(&self.0, &input, &input.source_bucket, &key, metadata).await?;
        Ok(merge(state, json!({ fields::FAILED_KEY: key, fields::REASON: reason })))
    }
}

/// Where the job's rejected source goes: `failed/<the job's creation date>/<key>` by default.
fn failed_key_of(ctx: &TaskContext, input: &JobInput) -> Result<String, TaskError> {
    super::source_destination(ctx, input, |t| &t.failed)
}

/// The rejection this job already made, if its source is under `failed/` with this job's id on
/// it: the state fields the header check would have given (not valid, the reason, the missing
/// columns). A run killed after the move and before it was recorded resumes from the start
/// without its source, and must end as the rejection it was, not as a missing source.
pub(super) async fn own_rejection(ctx: &TaskContext, input: &JobInput) -> Result<Option<Value>, TaskError> {
    let key = failed_key_of(ctx, input)?;
    let found = match ctx.ports.objects.head(&input.source_bucket, &key).await {
        Ok(found) => found,
        Err(weir_ports::PortError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(port_error(e, &format!("looking for {}/{key}", input.source_bucket))),
    };
    let ours = found.metadata.get("job_id") == Some(&input.job_id)
        && (input.source_etag.is_empty() || found.etag.trim_matches('"') == input.source_etag);
    if !ours {
        return Ok(None);
    }
    let missing: Vec<String> = found
        .metadata
        .get("missing_columns")
        .and_then(|m| serde_json::from_str(&text_from_metadata(m)).ok())
        .unwrap_or_default();
    let reason = found
        .metadata
        .get("reason")
        .map_or_else(|| "rejected by the workflow".into(), |r| text_from_metadata(r));
    tracing::info!(job_id = %input.job_id, key = %key, "the source is already in failed/ from an earlier attempt of this job");
    Ok(Some(json!({
        fields::SCHEMA_VALID: false,
        fields::MISSING_COLUMNS: missing,
        fields::REASON: reason,
    })))
}
