//! `weir:validate-schema`: read the header and compare it with the pipeline's columns.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};
use weir_workflow::{Task, TaskError};

use weir_process::Options;

use super::transform::{open_source, Source};
use super::{errors, job_input, merge, TaskContext};
use crate::state::fields;

pub struct ValidateSchema(pub Arc<TaskContext>);

#[async_trait]
impl Task for ValidateSchema {
    async fn run(&self, state: Value) -> Result<Value, TaskError> {
        let input = job_input(&state)?;
        let source = match open_source(&self.0, &input).await {
            Err(e) if e.error == errors::SOURCE_MISSING => {
                return match super::move_to_failed::own_rejection(&self.0, &input).await? {
                    Some(rejected) => Ok(merge(state, rejected)),
                    None => Err(e),
                };
            }
            other => other?,
        };
        let check = match source {
            Source::Small(body) => {
                let options = Options {
                    source_name: Some(&input.source_key),
                    size_hint: Some(body.len() as u64),
                    ..Options::default()
                };
                weir_process::check_header_with(&self.0.plan, &body[..], &options)
            }
            Source::Stream(reader) => {
                let plan = self.0.plan.clone();
                let (name, size_hint) = (input.source_key.clone(), Some(input.source_size));
                tokio::task::spawn_blocking(move || {
                    let options = Options { source_name: Some(&name), size_hint, ..Options::default() };
                    weir_process::check_header_with(&plan, reader, &options)
                })
                .await
                .map_err(|e| {
                    TaskError::transient(errors::UNAVAILABLE, format!("header check crashed: {e}"))
                })?
            }
        };
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
