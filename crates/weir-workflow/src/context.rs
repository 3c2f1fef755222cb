//! What an execution knows about itself: the caller's options and the context object.
//!
//! The caller names the execution (the pipeline uses the job id), may resume it from a
//! state it had completed before a crash, and may be told after every completed state so it
//! can persist that point. `$$` paths read the context object built here:
//! `$$.Execution.{Id,Name,Input,StartTime}`, `$$.StateMachine.{Id,Name}`,
//! `$$.State.{Name,EnteredTime,RetryCount}` and, inside a Map, `$$.Map.Item.{Index,Value}`.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use weir_core::job::StepRecord;

use crate::TaskError;

/// Told after each top-level state completes, so an execution can be resumed there.
#[async_trait]
pub trait Checkpoint: Send + Sync {
    /// A state completed (or its error was caught). An error stops the execution with that
    /// error: without its checkpoint, a crash would run the state again.
    async fn completed(&self, point: Completed<'_>) -> Result<(), TaskError>;
}

/// A completed top-level state, as a [`Checkpoint`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Completed<'a> {
    pub state: &'a str,
    /// The state's output: the input of `next`.
    pub output: &'a Value,
    /// The state that runs next (resume there); `None`: the execution ended.
    pub next: Option<&'a str>,
    /// The history records of this state (its own, then its branches' or iterations'), to
    /// persist with the checkpoint so a resumed job keeps its whole path.
    pub steps: &'a [StepRecord],
}

/// Where to start a resumed execution: the state a checkpoint named as `next`, with the
/// output of the state before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resume {
    pub state: String,
    pub input: Value,
}

/// How to run one execution. `RunOptions::default()` gives a fresh random id.
#[derive(Clone)]
pub struct RunOptions {
    /// `$$.Execution.Id`.
    pub execution_id: String,
    /// `$$.Execution.Name`.
    pub execution_name: String,
    /// `$$.StateMachine.Id`.
    pub state_machine_id: String,
    /// `$$.StateMachine.Name`.
    pub state_machine_name: String,
    /// `$$.Execution.StartTime`; now if unset. A resumed execution passes the original.
    pub start_time: Option<DateTime<Utc>>,
    /// `$$.Execution.Input` when resuming (the original input); defaults to the input given.
    pub execution_input: Option<Value>,
    /// Start at this state with this input instead of at `StartAt`.
    pub resume: Option<Resume>,
    pub checkpoint: Option<Arc<dyn Checkpoint>>,
    /// Transitions after which an execution is stopped as a runaway loop (per branch).
    pub max_transitions: usize,
    /// Longest JSON text kept for a step's input and output in the history.
    pub history_value_bytes: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        RunOptions {
            execution_id: id.clone(),
            execution_name: id,
            state_machine_id: String::new(),
            state_machine_name: String::new(),
            start_time: None,
            execution_input: None,
            resume: None,
            checkpoint: None,
            max_transitions: 10_000,
            history_value_bytes: 2048,
        }
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("execution_id", &self.execution_id)
            .field("execution_name", &self.execution_name)
            .field("state_machine_id", &self.state_machine_id)
            .field("resume", &self.resume.as_ref().map(|r| &r.state))
            .field("checkpoint", &self.checkpoint.is_some())
            .finish()
    }
}

impl RunOptions {
    /// Options for an execution with this id (also its name).
    pub fn new(execution_id: impl Into<String>) -> Self {
        let id = execution_id.into();
        RunOptions { execution_name: id.clone(), execution_id: id, ..RunOptions::default() }
    }

    pub fn state_machine(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.state_machine_id = id.into();
        self.state_machine_name = name.into();
        self
    }

    /// Resume at `state` (the `next` of the last checkpoint) with `input` (its `output`).
    pub fn resume_from(mut self, state: impl Into<String>, input: Value) -> Self {
        self.resume = Some(Resume { state: state.into(), input });
        self
    }

    pub fn checkpoint(mut self, checkpoint: Arc<dyn Checkpoint>) -> Self {
        self.checkpoint = Some(checkpoint);
        self
    }
}

/// RFC 3339 with milliseconds and `Z`, as Step Functions writes times.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The context object of an execution, updated as it goes.
#[derive(Debug, Clone)]
pub struct ContextObject(pub Value);

impl ContextObject {
    pub fn new(options: &RunOptions, input: &Value, start: DateTime<Utc>) -> Self {
        ContextObject(json!({
            "Execution": {
                "Id": options.execution_id,
                "Name": options.execution_name,
                "Input": options.execution_input.as_ref().unwrap_or(input),
                "StartTime": timestamp(start),
            },
            "StateMachine": {"Id": options.state_machine_id, "Name": options.state_machine_name},
            "State": {},
        }))
    }

    /// The context as a state sees it on entry.
    pub fn enter(&mut self, state: &str, entered: DateTime<Utc>) {
        self.0["State"] = json!({"Name": state, "EnteredTime": timestamp(entered), "RetryCount": 0});
    }

    pub fn set_retry_count(&mut self, n: u32) {
        self.0["State"]["RetryCount"] = json!(n);
    }

    /// The context of one Map iteration.
    pub fn for_item(&self, index: usize, value: &Value) -> ContextObject {
        let mut c = self.clone();
        c.0["Map"] = json!({"Item": {"Index": index, "Value": value}});
        c
    }
}
