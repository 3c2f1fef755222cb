//! Running a state machine: one state after another until `Succeed`, `Fail` or `End`.
//!
//! Each state's data flows as the spec orders it: `InputPath`, then `Parameters` (the
//! effective input), the work (a task, branches, iterations, a wait), then `ResultSelector`,
//! `ResultPath` (merging the result into the raw input) and `OutputPath`. Errors a state
//! reports go through its `Retry` policy, then its `Catch`. Every state visited leaves a
//! [`StepRecord`] (input and output truncated), Parallel branches and Map iterations included
//! (named `Parent/<branch or index>/State`). After each top-level state the caller's
//! [`Checkpoint`](crate::Checkpoint) is told, so a crashed execution can resume where it was.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use serde_json::{json, Map, Value};
use tokio::sync::Notify;
use tokio::time::Instant;
use weir_core::job::StepRecord;
use weir_core::ErrorClass;

use crate::context::{Completed, ContextObject, RunOptions};
use crate::definition::{Concurrency, Dynamic, MapState, Seconds, State, StateKind, Transition, Wait};
use crate::path::{kind_of, JsonPath};
use crate::payload::Template;
use crate::retry::{errors, find_catcher, RetryCounters};
use crate::{StateMachine, TaskCall, TaskError, TaskResolver};

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded,
    /// A `Fail` state was reached, or an error nothing caught.
    Failed {
        error: String,
        cause: String,
        class: ErrorClass,
    },
}

/// The result of one run: its outcome, the final data, and the path it took. On failure
/// `output` is the input of the state that failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub outcome: Outcome,
    pub output: Value,
    pub steps: Vec<StepRecord>,
}

/// Runs `machine` on `input`, resolving Task resources through `tasks`, with a random
/// execution id. See [`run_with`].
pub async fn run(machine: &StateMachine, tasks: &dyn TaskResolver, input: Value) -> Execution {
    run_with(machine, tasks, input, RunOptions::default()).await
}

/// Runs `machine`: from `StartAt` on `input`, or from `options.resume` (then `input` is still
/// the execution's original input, `$$.Execution.Input`).
pub async fn run_with(
    machine: &StateMachine,
    tasks: &dyn TaskResolver,
    input: Value,
    options: RunOptions,
) -> Execution {
    let start = options.start_time.unwrap_or_else(Utc::now);
    let ctx = ContextObject::new(&options, &input, start);
    let (first, data) = match &options.resume {
        None => (machine.start_at.clone(), input),
        Some(r) if machine.states.contains_key(&r.state) => (r.state.clone(), r.input.clone()),
        Some(r) => {
            let cause = format!("cannot resume at {:?}: the workflow has no such state", r.state);
            return Execution {
                outcome: Outcome::Failed {
                    error: errors::RUNTIME.into(),
                    cause,
                    class: ErrorClass::Permanent,
                },
                output: r.input.clone(),
                steps: Vec::new(),
            };
        }
    };
    let runner = Runner { tasks, options: &options };
    let deadline = machine.timeout_seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let run = runner.run_machine(machine, String::new(), first, data, ctx, deadline, true).await;
    let outcome = match run.result {
        Ok(()) => Outcome::Succeeded,
        Err(f) => Outcome::Failed { error: f.error, cause: f.cause, class: f.class },
    };
    Execution { outcome, output: run.output, steps: run.steps }
}

/// An error a state reported.
#[derive(Debug, Clone)]
struct Failure {
    error: String,
    cause: String,
    class: ErrorClass,
    /// Came out of a Parallel branch or a Map iteration (`States.BranchFailed` matches it).
    from_branch: bool,
    /// The work itself failed (a task, a branch, an iteration), so `Retry` applies; data
    /// errors (a path that selects nothing) would only fail again and go straight to `Catch`.
    retryable: bool,
}

impl Failure {
    fn new(error: &str, cause: impl Into<String>) -> Failure {
        Failure {
            error: error.into(),
            cause: cause.into(),
            class: ErrorClass::Permanent,
            from_branch: false,
            retryable: false,
        }
    }

    fn task(e: TaskError) -> Failure {
        Failure { error: e.error, cause: e.cause, class: e.class, from_branch: false, retryable: true }
    }

    fn timeout(error: &str, cause: String) -> Failure {
        Failure { class: ErrorClass::Transient, retryable: true, ..Failure::new(error, cause) }
    }

    fn error_output(&self) -> Value {
        json!({"Error": self.error, "Cause": self.cause})
    }
}

/// How a state ended when it did not fail.
enum Step {
    Next(String, Value),
    End(Value),
    /// An error was caught: go to `next` with `output`.
    Caught {
        failure: Failure,
        next: String,
        output: Value,
    },
}

struct MachineRun {
    result: Result<(), Failure>,
    output: Value,
    steps: Vec<StepRecord>,
}

struct Runner<'a> {
    tasks: &'a dyn TaskResolver,
    options: &'a RunOptions,
}

/// `v` as JSON text, cut after `max` bytes (on a character boundary) with a `…` marker.
/// Serialisation stops at the limit, so a large state costs no more than a small one.
fn truncated(v: &Value, max: usize) -> String {
    struct Bounded {
        buf: Vec<u8>,
        max: usize,
    }
    impl std::io::Write for Bounded {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            let room = self.max + 4 - self.buf.len().min(self.max + 4);
            self.buf.extend_from_slice(&data[..data.len().min(room)]);
            if data.len() > room {
                return Err(std::io::Error::other("full"));
            }
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = Bounded { buf: Vec::with_capacity(256), max };
    let complete = serde_json::to_writer(&mut w, v).is_ok() && w.buf.len() <= max;
    let mut cut = w.buf.len().min(max);
    // Back off to a character boundary (a UTF-8 continuation byte is 0b10xx_xxxx).
    while cut > 0 && cut < w.buf.len() && (w.buf[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    w.buf.truncate(cut);
    let mut s = String::from_utf8(w.buf).expect("serde_json writes UTF-8, cut on a boundary");
    if !complete {
        s.push_str("… (truncated)");
    }
    s
}

fn select(path: &Option<JsonPath>, data: &Value, ctx: &ContextObject, field: &str) -> Result<Value, Failure> {
    match path {
        None => Ok(Value::Object(Map::new())),
        Some(p) if p.is_root() && !p.is_context() => Ok(data.clone()),
        Some(p) => p.resolve_in(data, &ctx.0).ok_or_else(|| {
            Failure::new(errors::RUNTIME, format!("Invalid path {p} in {field}: it selects nothing"))
        }),
    }
}

fn apply_template(t: &Option<Template>, input: Value, ctx: &ContextObject) -> Result<Value, Failure> {
    match t {
        None => Ok(input),
        Some(t) => t.apply(&input, &ctx.0).map_err(|e| Failure::new(e.error_name(), e.to_string())),
    }
}

fn place_result(path: &Option<JsonPath>, raw: &Value, result: Value) -> Result<Value, Failure> {
    match path {
        None => Ok(raw.clone()),
        Some(p) => {
            p.set(raw.clone(), result).map_err(|cause| Failure::new(errors::RESULT_PATH_MATCH_FAILURE, cause))
        }
    }
}

impl Runner<'_> {
    #[allow(clippy::too_many_arguments)]
    fn run_machine<'s>(
        &'s self,
        machine: &'s StateMachine,
        prefix: String,
        first: String,
        input: Value,
        mut ctx: ContextObject,
        deadline: Option<Instant>,
        top: bool,
    ) -> BoxFuture<'s, MachineRun> {
        async move {
            let mut steps = Vec::new();
            let mut name = first;
            let mut data = input;
            let max_bytes = self.options.history_value_bytes;
            for _ in 0..self.options.max_transitions {
                let state = &machine.states[&name];
                let entered_at = Utc::now();
                let started = Instant::now();
                ctx.enter(&name, entered_at);
                // Every state after the first gets the output of the one before, which its
                // record holds already.
                let input = steps.is_empty().then(|| truncated(&data, max_bytes));
                let mut record = StepRecord {
                    state: format!("{prefix}{name}"),
                    entered_at,
                    input,
                    ..StepRecord::default()
                };
                let mut children = Vec::new();
                let work = self.run_state(&name, state, &data, &mut ctx, &mut record, &mut children, &prefix);
                let result = match deadline {
                    None => work.await,
                    Some(d) => match tokio::time::timeout_at(d, work).await {
                        Ok(r) => r,
                        Err(_) => Err(Failure::timeout(
                            errors::TIMEOUT,
                            format!("the execution ran longer than its TimeoutSeconds ({name} was running)"),
                        )),
                    },
                };
                record.duration_ms = started.elapsed().as_millis() as u64;
                let (next, output) = match result {
                    Ok(Step::Next(next, output)) => (Some(next), output),
                    Ok(Step::End(output)) => (None, output),
                    Ok(Step::Caught { failure, next, output }) => {
                        record.error = Some(failure.cause);
                        record.outcome = failure.error;
                        (Some(next), output)
                    }
                    Err(f) => {
                        record.outcome = f.error.clone();
                        record.error = Some(f.cause.clone());
                        steps.push(record);
                        steps.extend(children);
                        return MachineRun { result: Err(f), output: data, steps };
                    }
                };
                if record.outcome.is_empty() {
                    record.outcome = "ok".into();
                }
                // A state that hands its input on unchanged (a Choice, a Succeed) records no
                // output: its input is the output of the state before, recorded already.
                if record.outcome != "ok" || output != data {
                    record.output = Some(truncated(&output, max_bytes));
                }
                let first_new = steps.len();
                steps.push(record);
                steps.extend(children);
                if top {
                    if let Some(cp) = &self.options.checkpoint {
                        let point = Completed {
                            state: &name,
                            output: &output,
                            next: next.as_deref(),
                            steps: &steps[first_new..],
                        };
                        if let Err(e) = cp.completed(point).await {
                            return MachineRun { result: Err(Failure::task(e)), output, steps };
                        }
                    }
                }
                match next {
                    Some(n) => {
                        name = n;
                        data = output;
                    }
                    None => return MachineRun { result: Ok(()), output, steps },
                }
            }
            let cause = format!("more than {} transitions: the workflow loops", self.options.max_transitions);
            MachineRun { result: Err(Failure::new(errors::RUNTIME, cause)), output: data, steps }
        }
        .boxed()
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_state(
        &self,
        name: &str,
        state: &State,
        raw: &Value,
        ctx: &mut ContextObject,
        record: &mut StepRecord,
        children: &mut Vec<StepRecord>,
        prefix: &str,
    ) -> Result<Step, Failure> {
        let transition = |output: Value| match &state.transition {
            Some(Transition::Next(n)) => Step::Next(n.clone(), output),
            Some(Transition::End) | None => Step::End(output),
        };
        match &state.kind {
            StateKind::Pass { result } => {
                let input = select(&state.input_path, raw, ctx, "InputPath")?;
                let effective = apply_template(&state.parameters, input, ctx)?;
                let result = result.clone().unwrap_or(effective);
                let combined = place_result(&state.result_path, raw, result)?;
                Ok(transition(select(&state.output_path, &combined, ctx, "OutputPath")?))
            }
            StateKind::Succeed => {
                let input = select(&state.input_path, raw, ctx, "InputPath")?;
                Ok(Step::End(select(&state.output_path, &input, ctx, "OutputPath")?))
            }
            StateKind::Fail { error, cause } => {
                let resolve = |d: &Option<Dynamic>, field: &str| -> Result<Option<String>, Failure> {
                    let v = match d {
                        None => return Ok(None),
                        Some(Dynamic::Literal(s)) => return Ok(Some(s.clone())),
                        Some(Dynamic::Path(p)) => p.resolve_in(raw, &ctx.0).ok_or_else(|| {
                            Failure::new(errors::RUNTIME, format!("{field} {p} selects nothing"))
                        })?,
                        Some(Dynamic::Call(c)) => {
                            c.eval(raw, &ctx.0).map_err(|e| Failure::new(errors::INTRINSIC_FAILURE, e))?
                        }
                    };
                    match v {
                        Value::String(s) => Ok(Some(s)),
                        other => Err(Failure::new(
                            errors::RUNTIME,
                            format!("{field} must give a string, not {}", kind_of(&other)),
                        )),
                    }
                };
                let error = resolve(error, "ErrorPath")?.unwrap_or_else(|| "States.Fail".into());
                let cause = resolve(cause, "CausePath")?.unwrap_or_default();
                Err(Failure::new(&error, cause))
            }
            StateKind::Choice { choices, default } => {
                let input = select(&state.input_path, raw, ctx, "InputPath")?;
                let mut chosen = None;
                for rule in choices {
                    if rule
                        .condition
                        .evaluate(&input, &ctx.0)
                        .map_err(|e| Failure::new(errors::RUNTIME, e.0))?
                    {
                        chosen = Some(rule.next.clone());
                        break;
                    }
                }
                let Some(next) = chosen.or_else(|| default.clone()) else {
                    return Err(Failure::new(
                        errors::NO_CHOICE_MATCHED,
                        format!("no Choice rule matched in state {name:?} and it has no Default"),
                    ));
                };
                Ok(Step::Next(next, select(&state.output_path, &input, ctx, "OutputPath")?))
            }
            StateKind::Wait(wait) => {
                let input = select(&state.input_path, raw, ctx, "InputPath")?;
                let duration = match wait {
                    Wait::Seconds(s) => Duration::from_secs(*s),
                    Wait::SecondsPath(p) => Duration::from_secs(
                        p.resolve_in(&input, &ctx.0).and_then(|v| v.as_u64()).ok_or_else(|| {
                            Failure::new(
                                errors::RUNTIME,
                                format!("SecondsPath {p} must select a non-negative integer"),
                            )
                        })?,
                    ),
                    Wait::Timestamp(t) => (t.with_timezone(&Utc) - Utc::now()).to_std().unwrap_or_default(),
                    Wait::TimestampPath(p) => {
                        let t = p
                            .resolve_in(&input, &ctx.0)
                            .and_then(|v| v.as_str().and_then(crate::choice::parse_timestamp))
                            .ok_or_else(|| {
                                Failure::new(
                                    errors::RUNTIME,
                                    format!("TimestampPath {p} must select a timestamp"),
                                )
                            })?;
                        (t.with_timezone(&Utc) - Utc::now()).to_std().unwrap_or_default()
                    }
                };
                tokio::time::sleep(duration).await;
                Ok(transition(select(&state.output_path, &input, ctx, "OutputPath")?))
            }
            StateKind::Task { .. } | StateKind::Parallel { .. } | StateKind::Map(_) => {
                let mut counters = RetryCounters::default();
                loop {
                    let attempt = self.attempt(name, state, raw, ctx, children, prefix).await;
                    let failure = match attempt {
                        Ok(output) => return Ok(transition(output)),
                        Err(f) => f,
                    };
                    if failure.retryable {
                        if let Some(delay) =
                            counters.next_delay(&state.retry, &failure.error, failure.from_branch)
                        {
                            record.retries = counters.total;
                            ctx.set_retry_count(counters.total);
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                    }
                    let Some(catcher) = find_catcher(&state.catch, &failure.error, failure.from_branch)
                    else {
                        return Err(failure);
                    };
                    let output = match &catcher.result_path {
                        None => raw.clone(),
                        Some(p) => p
                            .set(raw.clone(), failure.error_output())
                            .map_err(|cause| Failure::new(errors::RESULT_PATH_MATCH_FAILURE, cause))?,
                    };
                    return Ok(Step::Caught { failure, next: catcher.next.clone(), output });
                }
            }
        }
    }

    /// One attempt of a Task, Parallel or Map state: its output, or the error it reported.
    async fn attempt(
        &self,
        name: &str,
        state: &State,
        raw: &Value,
        ctx: &ContextObject,
        children: &mut Vec<StepRecord>,
        prefix: &str,
    ) -> Result<Value, Failure> {
        let input = select(&state.input_path, raw, ctx, "InputPath")?;
        let result = match &state.kind {
            StateKind::Task { resource, timeout, heartbeat } => {
                let seconds = |s: &Option<Seconds>, field: &str| -> Result<Option<Duration>, Failure> {
                    match s {
                        None => Ok(None),
                        Some(Seconds::Fixed(n)) => Ok(Some(Duration::from_secs(*n))),
                        Some(Seconds::Path(p)) => match p.resolve_in(&input, &ctx.0).and_then(|v| v.as_u64())
                        {
                            Some(n) if n > 0 => Ok(Some(Duration::from_secs(n))),
                            _ => Err(Failure::new(
                                errors::RUNTIME,
                                format!("{field} {p} must select a positive integer"),
                            )),
                        },
                    }
                };
                let timeout = seconds(timeout, "TimeoutSecondsPath")?;
                let heartbeat = seconds(heartbeat, "HeartbeatSecondsPath")?;
                let effective = apply_template(&state.parameters, input, ctx)?;
                let Some(task) = self.tasks.resolve(resource) else {
                    return Err(Failure::new(
                        errors::RUNTIME,
                        format!("no task registered for resource {resource:?}"),
                    ));
                };
                let call = TaskCall {
                    execution_id: self.options.execution_id.clone(),
                    state: name.to_owned(),
                    retry_count: ctx.0["State"]["RetryCount"].as_u64().unwrap_or(0) as u32,
                    context: ctx.0.clone(),
                    beats: Arc::new(Notify::new()),
                };
                let beats = call.beats.clone();
                let work = async {
                    let run = task.invoke(effective, &call);
                    match heartbeat {
                        None => run.await.map_err(Failure::task),
                        Some(hb) => {
                            let watchdog =
                                async { while tokio::time::timeout(hb, beats.notified()).await.is_ok() {} };
                            tokio::select! {
                                r = run => r.map_err(Failure::task),
                                () = watchdog => Err(Failure::timeout(
                                    errors::HEARTBEAT_TIMEOUT,
                                    format!("no heartbeat from the task for {}s (HeartbeatSeconds)", hb.as_secs()),
                                )),
                            }
                        }
                    }
                };
                match timeout {
                    None => work.await?,
                    Some(t) => tokio::time::timeout(t, work).await.map_err(|_| {
                        Failure::timeout(
                            errors::TIMEOUT,
                            format!("the task ran longer than {}s (TimeoutSeconds)", t.as_secs()),
                        )
                    })??,
                }
            }
            StateKind::Parallel { branches } => {
                let effective = apply_template(&state.parameters, input, ctx)?;
                self.parallel(name, branches, effective, ctx, children, prefix).await?
            }
            StateKind::Map(map) => self.map(name, map, input, ctx, children, prefix).await?,
            _ => unreachable!("only Task, Parallel and Map make attempts"),
        };
        let result = apply_template(&state.result_selector, result, ctx)?;
        let combined = place_result(&state.result_path, raw, result)?;
        select(&state.output_path, &combined, ctx, "OutputPath")
    }

    async fn parallel(
        &self,
        name: &str,
        branches: &[StateMachine],
        input: Value,
        ctx: &ContextObject,
        children: &mut Vec<StepRecord>,
        prefix: &str,
    ) -> Result<Value, Failure> {
        let mut running: FuturesUnordered<_> = branches
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let sub = self.run_machine(
                    b,
                    format!("{prefix}{name}/{i}/"),
                    b.start_at.clone(),
                    input.clone(),
                    ctx.clone(),
                    None,
                    false,
                );
                sub.map(move |r| (i, r))
            })
            .collect();
        let mut results = vec![Value::Null; branches.len()];
        let mut steps: Vec<(usize, Vec<StepRecord>)> = Vec::new();
        let mut failed = None;
        while let Some((i, run)) = running.next().await {
            steps.push((i, run.steps));
            match run.result {
                Ok(()) => results[i] = run.output,
                Err(f) => {
                    // One branch failed: the others are stopped (dropped) and the state fails.
                    failed = Some(Failure { from_branch: true, retryable: true, ..f });
                    break;
                }
            }
        }
        drop(running);
        steps.sort_by_key(|(i, _)| *i);
        children.extend(steps.into_iter().flat_map(|(_, s)| s));
        match failed {
            Some(f) => Err(f),
            None => Ok(Value::Array(results)),
        }
    }

    async fn map(
        &self,
        name: &str,
        map: &MapState,
        input: Value,
        ctx: &ContextObject,
        children: &mut Vec<StepRecord>,
        prefix: &str,
    ) -> Result<Value, Failure> {
        let items = match map.items_path.resolve_in(&input, &ctx.0) {
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(Failure::new(
                    errors::RUNTIME,
                    format!("ItemsPath {} must select an array, not {}", map.items_path, kind_of(&other)),
                ))
            }
            None => {
                return Err(Failure::new(
                    errors::RUNTIME,
                    format!("ItemsPath {} selects nothing", map.items_path),
                ))
            }
        };
        let limit = match &map.max_concurrency {
            Concurrency::Fixed(n) => *n,
            Concurrency::Path(p) => {
                p.resolve_in(&input, &ctx.0).and_then(|v| v.as_u64()).ok_or_else(|| {
                    Failure::new(
                        errors::RUNTIME,
                        format!("MaxConcurrencyPath {p} must select a non-negative integer"),
                    )
                })?
            }
        };
        let total = items.len();
        let limit = if limit == 0 { total.max(1) } else { limit as usize };
        let mut iteration_inputs = Vec::with_capacity(total);
        for (i, item) in items.into_iter().enumerate() {
            iteration_inputs.push(match &map.item_selector {
                None => item,
                Some(t) => t
                    .apply(&input, &ctx.for_item(i, &item).0)
                    .map_err(|e| Failure::new(e.error_name(), e.to_string()))?,
            });
        }
        let processor = &map.processor;
        let mut iterations = futures::stream::iter(iteration_inputs.into_iter().enumerate())
            .map(|(i, item)| {
                self.run_machine(
                    processor,
                    format!("{prefix}{name}/{i}/"),
                    processor.start_at.clone(),
                    item,
                    ctx.clone(),
                    None,
                    false,
                )
            })
            .buffered(limit);
        let tolerance_set =
            map.tolerated_failure_count.is_some() || map.tolerated_failure_percentage.is_some();
        let tolerated = |failures: usize| {
            let by_count = map.tolerated_failure_count.is_none_or(|n| failures as u64 <= n);
            let by_share = map
                .tolerated_failure_percentage
                .is_none_or(|p| total == 0 || failures as f64 * 100.0 / total as f64 <= p);
            tolerance_set && by_count && by_share
        };
        let mut results = Vec::with_capacity(total);
        let mut failures = 0;
        while let Some(run) = iterations.next().await {
            children.extend(run.steps);
            match run.result {
                Ok(()) => results.push(run.output),
                Err(f) => {
                    failures += 1;
                    if tolerated(failures) {
                        results.push(f.error_output());
                        continue;
                    }
                    // Stop the iterations still running (dropped with the stream).
                    return Err(if tolerance_set {
                        Failure::new(
                            errors::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                            format!(
                                "{failures} of {total} iterations failed; the last: {}: {}",
                                f.error, f.cause
                            ),
                        )
                    } else {
                        Failure { from_branch: true, retryable: true, ..f }
                    });
                }
            }
        }
        Ok(Value::Array(results))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_values_are_truncated_on_char_boundaries() {
        let v = json!({"k": "é".repeat(3000)});
        let s = truncated(&v, 2048);
        assert!(s.len() <= 2048 + "… (truncated)".len(), "{}", s.len());
        assert!(s.ends_with("… (truncated)"));
        assert!(s.starts_with(r#"{"k":"ééé"#));
        let exact = json!("x".repeat(2046));
        assert_eq!(truncated(&exact, 2048).len(), 2048, "two quotes and 2046 x fit");
        assert_eq!(truncated(&json!({"a": 1}), 2048), r#"{"a":1}"#);
    }
}
