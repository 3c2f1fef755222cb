//! Workflows as Amazon States Language (ASL) state machines, run in process.
//!
//! A file's pipeline is a state machine like the Step Functions definition in the AWS design
//! (`ValidateSchema → CheckValidation → TransformData → …`). This crate parses a definition,
//! checks it, and runs it, calling each `Task` state's `Resource` through the [`Task`] trait; it
//! knows nothing of buckets, queues or CSV. The state passed between tasks is JSON and carries
//! keys and counts, never rows.
//!
//! Supported: every state type (`Task`, `Choice`, `Pass`, `Wait`, `Succeed`, `Fail`,
//! `Parallel`, `Map`), every Choice operator, `InputPath`/`Parameters`/`ResultSelector`/
//! `ResultPath`/`OutputPath` with JSONPath and the context object, the intrinsic functions,
//! `Retry`/`Catch` with the predefined error names, `TimeoutSeconds` and `HeartbeatSeconds`.
//! Not supported: JSONata states and variables (`Assign`), distributed Map (`ItemReader`,
//! `ItemBatcher`, `ResultWriter`); a definition using them is refused at load. Unlike the
//! spec's 60 s, a Task without `TimeoutSeconds` has no time limit (as on Step Functions): the
//! pipeline's tasks stream files of any size.
//!
//! Modules: [`definition`] (parsing and load-time checks), [`path`] (JSONPath), `payload`
//! (payload templates), `intrinsics`, `choice` (Choice rules), [`retry`] (Retry and Catch),
//! `context` (options, checkpoints, the context object), `interpreter` (running),
//! `resolver` (resource aliases).

mod choice;
mod context;
pub mod definition;
mod interpreter;
mod intrinsics;
pub mod path;
mod payload;
mod resolver;
pub mod retry;

use std::sync::Arc;

pub use context::{Checkpoint, Completed, Resume, RunOptions};
pub use definition::{DefinitionError, StateMachine};
pub use interpreter::{run, run_with, Execution, Outcome};
pub use payload::apply_template;
pub use resolver::{MappedResolver, PassThrough, ResourceAliases, PASS_THROUGH};
pub use retry::errors;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Notify;
use weir_core::ErrorClass;

/// A unit of work a `Task` state names in its `Resource`.
#[async_trait]
pub trait Task: Send + Sync {
    /// Takes the state's effective input (after `InputPath` and `Parameters`) and returns the
    /// task's result.
    async fn run(&self, input: Value) -> Result<Value, TaskError>;

    /// Like [`Task::run`], with the call's details: who is calling, and a way to send
    /// heartbeats (needed when the state has `HeartbeatSeconds`). By default, calls `run`.
    async fn invoke(&self, input: Value, call: &TaskCall) -> Result<Value, TaskError> {
        let _ = call;
        self.run(input).await
    }
}

/// One call of a task by a `Task` state.
#[derive(Debug, Clone)]
pub struct TaskCall {
    /// `$$.Execution.Id`.
    pub execution_id: String,
    /// The calling state's name.
    pub state: String,
    /// How many times the state was retried before this call.
    pub retry_count: u32,
    /// The context object as the state sees it.
    pub context: Value,
    beats: Arc<Notify>,
}

impl TaskCall {
    /// Tells the interpreter the task is alive: a state with `HeartbeatSeconds` fails with
    /// `States.HeartbeatTimeout` when that long passes without one.
    pub fn heartbeat(&self) {
        self.beats.notify_one();
    }
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
