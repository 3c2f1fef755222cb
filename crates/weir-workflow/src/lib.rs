//! Workflows as Amazon States Language (ASL) state machines, run in process.
//!
//! A file's pipeline is a state machine like the Step Functions definition in the AWS design
//! (`ValidateSchema → CheckValidation → TransformData → …`). This crate parses a definition,
//! checks it, and runs it, calling each `Task` state's `Resource` through the [`Task`] trait; it
//! knows nothing of buckets, queues or CSV. The state passed between tasks is JSON and carries
//! keys and counts, never rows.
//!
//! Supported so far: `Task`, `Choice` (boolean, string and numeric comparisons, `And`/`Or`/`Not`,
//! `IsPresent`), `Pass`, `Succeed`, `Fail`; `Next`/`End`; `Catch` with `ErrorEquals` and
//! `ResultPath`; `ResultPath` and `OutputPath` on Task and Pass; `States.ALL`.

mod definition;
mod interpreter;
mod path;

pub use definition::{DefinitionError, StateMachine};
pub use interpreter::{run, Execution, Outcome};

use async_trait::async_trait;
use serde_json::Value;
use weir_core::ErrorClass;

/// A unit of work a `Task` state names in its `Resource`.
#[async_trait]
pub trait Task: Send + Sync {
    /// Takes the state (after `InputPath`) and returns the task's result.
    async fn run(&self, input: Value) -> Result<Value, TaskError>;
}

/// Finds the task for a `Resource` string (`weir:transform`, a mapped Lambda ARN, ...).
pub trait TaskResolver: Send + Sync {
    fn resolve(&self, resource: &str) -> Option<&dyn Task>;
}

/// A task's failure, as ASL sees it: an error name that `Catch` and `Retry` match on, a cause
/// for people, and the class that decides whether the message is retried if nothing catches it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskError {
    /// e.g. `Weir.InvalidInput`, `Weir.Unavailable`, `States.TaskFailed`.
    pub error: String,
    pub cause: String,
    pub class: ErrorClass,
}

impl TaskError {
    pub fn permanent(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskError { error: error.into(), cause: cause.into(), class: ErrorClass::Permanent }
    }

    pub fn transient(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskError { error: error.into(), cause: cause.into(), class: ErrorClass::Transient }
    }
}
