//! `weir:archive`: move (or, with `source.archive = "copy"`, copy) the processed source to the
//! archive bucket, under the same key unless the pipeline's `output.archive_key` template says
//! otherwise.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};
use weir_workflow::{Task, TaskError};

use super::{job_input, merge, settle_source, TaskContext};
use crate::provenance::Provenance;
use crate::state::fields;

pub struct Archive(pub Arc<TaskContext>);

#[async_trait]
impl Task for Archive {
    async fn run(&self, state: Value) -> Result<Value, TaskError> {
        let input = job_input(&state)?;
        let bucket = self.0.config.buckets.archive.clone();
        let metadata =
            Provenance::of_job(&input).metadata([("archived_at", chrono::Utc::now().to_rfc3339())]);
        let key = super::source_destination(&self.0, &input, |t| &t.archive)?;
        settle_source(&self.0, &input, &bucket, &key, metadata).await?;
        Ok(merge(state, json!({ fields::ARCHIVE_KEY: format!("{bucket}/{key}") })))
    }
}
