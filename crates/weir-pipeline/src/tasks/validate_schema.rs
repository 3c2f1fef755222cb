//! `weir:validate-schema`: read the header and compare it with the pipeline's columns.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};
use weir_workflow::{Task, TaskError};

use super::transform::open_source;
use super::{errors, job_input, merge, TaskContext};
use crate::state::fields;

pub struct ValidateSchema(pub Arc<TaskContext>);

#[async_trait]
impl Task for ValidateSchema {
    async fn run(&self, state: Value) -> Result<Value, TaskError> {
        let input = job_input(&state)?;
        let reader = open_source(&self.0, &input).await?;
        let plan = self.0.plan.clone();
        let check = tokio::task::spawn_blocking(move || weir_process::check_header(&plan, reader))
            .await
            .map_err(|e| TaskError::transient(errors::UNAVAILABLE, format!("header check crashed: {e}")))?;
        let check = check.map_err(|e| super::transform::process_error(e, &input))?;
        let valid = check.is_valid();
        let mut out = json!({
            fields::SCHEMA_VALID: valid,
            fields::MISSING_COLUMNS: check.missing,
            "columns": check.columns,
        });
        if !valid {
            out[fields::REASON] = json!(check.reason());
        }
        Ok(merge(state, out))
    }
}
