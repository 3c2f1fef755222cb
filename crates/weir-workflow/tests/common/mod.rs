//! Mock tasks and helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::time::Instant;
use weir_workflow::{StateMachine, Task, TaskError, TaskResolver};

pub fn machine(definition: Value) -> StateMachine {
    StateMachine::from_value(&definition).unwrap_or_else(|e| panic!("{e}"))
}

/// Resolves resources from a table of tasks.
#[derive(Default, Clone)]
pub struct Tasks(HashMap<String, Arc<dyn Task>>);

impl Tasks {
    pub fn new() -> Self {
        Tasks::default()
    }

    pub fn with(mut self, resource: &str, task: impl Task + 'static) -> Self {
        self.0.insert(resource.into(), Arc::new(task));
        self
    }

    pub fn with_arc(mut self, resource: &str, task: Arc<dyn Task>) -> Self {
        self.0.insert(resource.into(), task);
        self
    }
}

impl TaskResolver for Tasks {
    fn resolve(&self, resource: &str) -> Option<&dyn Task> {
        self.0.get(resource).map(|t| t.as_ref())
    }
}

/// A task from a function of its input.
pub struct Func<F>(pub F);

#[async_trait]
impl<F> Task for Func<F>
where
    F: Fn(Value) -> Result<Value, TaskError> + Send + Sync,
{
    async fn run(&self, input: Value) -> Result<Value, TaskError> {
        (self.0)(input)
    }
}

/// Fails with the scripted errors first, then succeeds with `ok(input)`; records each call.
pub struct Script {
    errors: Mutex<VecDeque<TaskError>>,
    ok: Box<dyn Fn(Value) -> Value + Send + Sync>,
    pub calls: Mutex<Vec<(Instant, Value)>>,
}

impl Script {
    pub fn new(errors: Vec<TaskError>, ok: impl Fn(Value) -> Value + Send + Sync + 'static) -> Arc<Script> {
        Arc::new(Script {
            errors: Mutex::new(errors.into()),
            ok: Box::new(ok),
            calls: Mutex::new(Vec::new()),
        })
    }

    pub fn call_count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// The waits between successive calls, in whole seconds (with paused time these are exact).
    pub fn gaps(&self) -> Vec<u64> {
        let calls = self.calls.lock().unwrap();
        calls.windows(2).map(|w| (w[1].0 - w[0].0).as_secs_f64().round() as u64).collect()
    }
}

#[async_trait]
impl Task for Script {
    async fn run(&self, input: Value) -> Result<Value, TaskError> {
        self.calls.lock().unwrap().push((Instant::now(), input.clone()));
        match self.errors.lock().unwrap().pop_front() {
            Some(e) => Err(e),
            None => Ok((self.ok)(input)),
        }
    }
}

/// Sleeps, counting how many calls run at once.
pub struct Slow {
    pub delay: Duration,
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
}

impl Slow {
    pub fn new(delay: Duration) -> Arc<Slow> {
        Arc::new(Slow { delay, running: AtomicUsize::new(0), max_running: AtomicUsize::new(0) })
    }
}

#[async_trait]
impl Task for Slow {
    async fn run(&self, input: Value) -> Result<Value, TaskError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(input)
    }
}

pub fn failed_with(outcome: &weir_workflow::Outcome) -> Option<&str> {
    match outcome {
        weir_workflow::Outcome::Failed { error, .. } => Some(error),
        weir_workflow::Outcome::Succeeded => None,
    }
}

pub fn path(steps: &[weir_core::job::StepRecord]) -> Vec<&str> {
    steps.iter().map(|s| s.state.as_str()).collect()
}
