//! Which state machine a pipeline runs, and what its task resources mean.
//!
//! A pipeline runs the built-in workflow unless `[pipeline.workflow] file` names an Amazon
//! States Language definition (such as the AWS design's `ProcessCSVWorkflow`); its
//! `resources` table maps the Lambda ARNs such a definition names to weir's tasks. Loading
//! checks the definition and that every Task resource ends at a task weir has, so `weir check`
//! and the engine refuse the same mistakes, each with its JSON pointer.

use std::path::PathBuf;

use weir_core::config::PipelineKind;
use weir_core::{PipelineConfig, Problem};
use weir_workflow::{DefinitionError, ResourceAliases, StateMachine, PASS_THROUGH};

use crate::tasks::PipelineTasks;
use crate::{DEFAULT_IMAGE_WORKFLOW, DEFAULT_WORKFLOW};

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("workflow file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("workflow {origin}: {source}")]
    Definition { origin: String, source: DefinitionError },
}

impl WorkflowError {
    /// The problems, located within the pipeline: `workflow.file` when it cannot be read, else
    /// each with its JSON pointer in the definition (`workflow (flow.json)/States/Load/Next`).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            WorkflowError::Read { path, source } => {
                vec![Problem::new("workflow.file", format!("{}: {source}", path.display()))]
            }
            WorkflowError::Definition { origin, source } => {
                let section = match origin.starts_with('(') {
                    true => format!("workflow {origin}"),
                    false => format!("workflow ({origin})"),
                };
                source.problems.iter().cloned().map(|p| p.under(&section)).collect()
            }
        }
    }
}

/// The pipeline's checked state machine and its resource aliases.
pub fn load(pipeline: &PipelineConfig) -> Result<(StateMachine, ResourceAliases), WorkflowError> {
    let (origin, text) = match &pipeline.workflow.file {
        None if pipeline.kind == PipelineKind::Image => {
            ("(built-in, images)".to_string(), DEFAULT_IMAGE_WORKFLOW.to_string())
        }
        None => ("(built-in)".to_string(), DEFAULT_WORKFLOW.to_string()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|source| WorkflowError::Read { path: path.clone(), source })?;
            (path.display().to_string(), text)
        }
    };
    let definition = |source| WorkflowError::Definition { origin: origin.clone(), source };
    let machine = StateMachine::from_json(&text).map_err(definition)?;
    let aliases = ResourceAliases::new(pipeline.workflow.resources.clone());
    machine
        .check_resources(|r| {
            let target = aliases.target(r);
            target == PASS_THROUGH || PipelineTasks::RESOURCES.contains(&target)
        })
        .map_err(definition)?;
    Ok((machine, aliases))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(workflow: &str) -> PipelineConfig {
        let text = format!("[[pipeline]]\nname = \"p\"\n[pipeline.workflow]\n{workflow}");
        weir_core::Config::from_toml(&text).unwrap().pipelines.remove(0)
    }

    #[test]
    fn the_built_in_workflow_loads() {
        let (machine, _) = load(&pipeline("")).unwrap();
        assert_eq!(machine.start_at, "ValidateSchema");
    }

    #[test]
    fn a_file_with_lambda_arns_needs_its_resources_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("flow.asl.json");
        std::fs::write(
            &file,
            r#"{"StartAt":"Parse","States":{
                "Parse":{"Type":"Task","Resource":"arn:aws:lambda:eu-west-1:1:function:parse-csv","Next":"Check"},
                "Check":{"Type":"Task","Resource":"arn:aws:lambda:eu-west-1:1:function:validate-schema","End":true}}}"#,
        )
        .unwrap();
        let file = file.display().to_string().replace('\\', "\\\\");
        let err = load(&pipeline(&format!("file = \"{file}\""))).unwrap_err().to_string();
        assert!(err.contains("/States/Check/Resource: no task"), "{err}");
        assert!(err.contains("/States/Parse/Resource: no task"), "{err}");
        let mapped = format!(
            "file = \"{file}\"\n[pipeline.workflow.resources]\n\"arn:aws:lambda:*:function:parse-csv\" = \"weir:pass\"\n\
             \"arn:aws:lambda:eu-west-1:1:function:validate-schema\" = \"weir:validate-schema\"\n"
        );
        let (machine, aliases) = load(&pipeline(&mapped)).unwrap();
        assert_eq!(machine.start_at, "Parse");
        assert_eq!(aliases.target("arn:aws:lambda:us-east-1:2:function:parse-csv"), "weir:pass");
    }

    #[test]
    fn an_image_pipeline_runs_the_built_in_image_workflow() {
        let images = weir_core::Config::bundled().pipelines.remove(1);
        let (machine, _) = load(&images).unwrap();
        assert_eq!(machine.start_at, "ProcessImage");
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = load(&pipeline("file = \"/nonexistent/flow.json\"")).unwrap_err().to_string();
        assert!(err.starts_with("workflow file /nonexistent/flow.json:"), "{err}");
    }
}
