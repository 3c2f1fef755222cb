//! Every state type, the spec's Parallel and Map examples, timeouts and heartbeats, the
//! context object, the execution history, and checkpoints with resume.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{failed_with, machine, path, Func, Script, Slow, Tasks};
use serde_json::{json, Value};
use weir_workflow::{
    run, run_with, Checkpoint, Completed, MappedResolver, Outcome, PassThrough, RunOptions, Task, TaskCall,
    TaskError,
};

#[tokio::test]
async fn task_with_every_io_field_in_order() {
    // InputPath → Parameters → task → ResultSelector → ResultPath → OutputPath.
    let seen = Script::new(vec![], |v| json!({"echo": v, "extra": 1}));
    let tasks = Tasks::new().with_arc("T", seen.clone());
    let m = machine(json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "T",
        "InputPath": "$.in",
        "Parameters": {"x.$": "$.x", "fixed": "f"},
        "ResultSelector": {"got.$": "$.echo.x"},
        "ResultPath": "$.in.result",
        "OutputPath": "$.in",
        "End": true}}}));
    let ex = run(&m, &tasks, json!({"in": {"x": 5}, "other": true})).await;
    assert_eq!(seen.calls.lock().unwrap()[0].1, json!({"x": 5, "fixed": "f"}));
    assert_eq!(ex.output, json!({"x": 5, "result": {"got": 5}}));
}

#[tokio::test]
async fn pass_state_example() {
    // The spec's "No-op" Pass state.
    let m = machine(json!({"StartAt": "No-op", "States": {
        "No-op": {"Type": "Pass", "Result": {"x-datum": 0.381018, "y-datum": 622.2269926397355},
                  "ResultPath": "$.coords", "Next": "End"},
        "End": {"Type": "Succeed"}}}));
    let ex = run(&m, &Tasks::new(), json!({"georefOf": "Home"})).await;
    assert_eq!(
        ex.output,
        json!({"georefOf": "Home", "coords": {"x-datum": 0.381018, "y-datum": 622.2269926397355}})
    );
    // Without Result, Parameters shapes the output.
    let m = machine(
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"a.$": "$.b"}, "End": true}}}),
    );
    assert_eq!(run(&m, &Tasks::new(), json!({"b": 2})).await.output, json!({"a": 2}));
}

#[tokio::test]
async fn succeed_and_fail() {
    let m = machine(
        json!({"StartAt": "S", "States": {"S": {"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}}}),
    );
    let ex = run(&m, &Tasks::new(), json!({"a": {"b": 1}})).await;
    assert_eq!((ex.outcome, ex.output), (Outcome::Succeeded, json!(1)));

    let m = machine(
        json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "ErrorA", "Cause": "Kaiju attack"}}}),
    );
    let ex = run(&m, &Tasks::new(), json!({})).await;
    assert_eq!(
        ex.outcome,
        Outcome::Failed {
            error: "ErrorA".into(),
            cause: "Kaiju attack".into(),
            class: weir_core::ErrorClass::Permanent
        }
    );

    // ErrorPath and CausePath: a reference path or an intrinsic function.
    let m = machine(json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.Error",
        "CausePath": "States.Format('{} failed: {}', $.what, $.Cause)"}}}));
    let ex = run(&m, &Tasks::new(), json!({"Error": "Weir.Bad", "Cause": "oops", "what": "load"})).await;
    let Outcome::Failed { error, cause, .. } = ex.outcome else { panic!("succeeded") };
    assert_eq!((error.as_str(), cause.as_str()), ("Weir.Bad", "load failed: oops"));
}

async fn waited(state: Value, input: Value) -> Duration {
    let m = machine(json!({"StartAt": "W", "States": {"W": state}}));
    let start = tokio::time::Instant::now();
    let ex = run(&m, &Tasks::new(), input.clone()).await;
    assert_eq!(ex.outcome, Outcome::Succeeded, "{:?}", ex.steps);
    assert_eq!(ex.output, input);
    start.elapsed()
}

#[tokio::test(start_paused = true)]
async fn wait_state_in_all_four_forms() {
    let secs = |d: Duration| d.as_secs_f64().round() as u64;
    assert_eq!(secs(waited(json!({"Type": "Wait", "Seconds": 10, "End": true}), json!({})).await), 10);
    assert_eq!(
        secs(waited(json!({"Type": "Wait", "SecondsPath": "$.s", "End": true}), json!({"s": 7})).await),
        7
    );
    let in_an_hour = (chrono::Utc::now() + chrono::Duration::seconds(3600))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let d = secs(waited(json!({"Type": "Wait", "Timestamp": in_an_hour, "End": true}), json!({})).await);
    assert!((3590..=3600).contains(&d), "{d}");
    let d = secs(
        waited(
            json!({"Type": "Wait", "TimestampPath": "$.expirydate", "End": true}),
            json!({"expirydate": in_an_hour}),
        )
        .await,
    );
    assert!((3590..=3600).contains(&d), "{d}");
    // A time in the past does not wait.
    let d =
        waited(json!({"Type": "Wait", "Timestamp": "2016-03-14T01:59:00Z", "End": true}), json!({})).await;
    assert_eq!(secs(d), 0);
    // A SecondsPath that is not a number is a runtime error.
    let m = machine(
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.s", "End": true}}}),
    );
    assert_eq!(failed_with(&run(&m, &Tasks::new(), json!({"s": "x"})).await.outcome), Some("States.Runtime"));
}

#[tokio::test]
async fn parallel_example_fun_with_math() {
    // The spec: given [3, 2], Add gives 5, Subtract gives 1, and the Parallel state [5, 1].
    let tasks = Tasks::new()
        .with(
            "arn:aws:states:::task:Add",
            Func(|v: Value| Ok(json!(v[0].as_i64().unwrap() + v[1].as_i64().unwrap()))),
        )
        .with(
            "arn:aws:states:::task:Subtract",
            Func(|v: Value| Ok(json!(v[0].as_i64().unwrap() - v[1].as_i64().unwrap()))),
        );
    let m = machine(json!({"StartAt": "FunWithMath", "States": {
        "FunWithMath": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Add", "States": {"Add": {"Type": "Task", "Resource": "arn:aws:states:::task:Add", "End": true}}},
                {"StartAt": "Subtract", "States": {"Subtract": {"Type": "Task", "Resource": "arn:aws:states:::task:Subtract", "End": true}}}
            ],
            "Next": "NextState"
        },
        "NextState": {"Type": "Succeed"}}}));
    let ex = run(&m, &tasks, json!([3, 2])).await;
    assert_eq!(ex.outcome, Outcome::Succeeded);
    assert_eq!(ex.output, json!([5, 1]));
    assert_eq!(path(&ex.steps), ["FunWithMath", "FunWithMath/0/Add", "FunWithMath/1/Subtract", "NextState"]);
}

#[tokio::test(start_paused = true)]
async fn parallel_branches_run_together_and_one_failure_fails_the_state() {
    let slow = Slow::new(Duration::from_secs(5));
    let tasks = Tasks::new()
        .with_arc("slow", slow.clone())
        .with_arc("bad", Script::new(vec![TaskError::permanent("Boom", "branch broke")], |v| v));
    let branch = |r: &str, name: &str| json!({"StartAt": name, "States": {name: {"Type": "Task", "Resource": r, "End": true}}});
    let m = machine(json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Branches": [branch("slow", "A"), branch("slow", "B"), branch("slow", "C")],
              "ResultSelector": {"first.$": "$[0]"}, "End": true}}}));
    let start = tokio::time::Instant::now();
    let ex = run(&m, &tasks, json!({"k": 1})).await;
    assert_eq!(start.elapsed().as_secs(), 5, "the branches ran at the same time");
    assert_eq!(slow.max_running.load(Ordering::SeqCst), 3);
    assert_eq!(ex.output, json!({"first": {"k": 1}}));

    let m = machine(json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Branches": [branch("slow", "A"), branch("bad", "B")], "Next": "Done",
              "Catch": [{"ErrorEquals": ["States.BranchFailed"], "ResultPath": "$.err", "Next": "Handled"}]},
        "Done": {"Type": "Succeed"}, "Handled": {"Type": "Pass", "End": true}}}));
    let start = tokio::time::Instant::now();
    let ex = run(&m, &tasks, json!({})).await;
    assert_eq!(start.elapsed().as_secs(), 0, "the slow branch was stopped");
    assert_eq!(path(&ex.steps), ["P", "P/1/B", "Handled"]);
    assert_eq!(ex.output, json!({"err": {"Error": "Boom", "Cause": "branch broke"}}));
}

fn ship_val() -> Arc<Script> {
    Script::new(vec![], |v| json!({"ok": true, "checked": v}))
}

#[tokio::test]
async fn map_example_ship_val() {
    // The spec's "Validate-All" Map state, with ItemSelector.
    let input = json!({
        "ship-date": "2016-03-14T01:59:00Z",
        "detail": {
            "delivery-partner": "UQS",
            "shipped": [
                {"prod": "R31", "dest-code": 9511, "quantity": 1344},
                {"prod": "S39", "dest-code": 9511, "quantity": 40},
                {"prod": "R31", "dest-code": 9833, "quantity": 12},
                {"prod": "R40", "dest-code": 9860, "quantity": 887},
                {"prod": "R40", "dest-code": 9511, "quantity": 1220}
            ]
        }
    });
    let val = ship_val();
    let tasks = Tasks::new().with_arc("arn:aws:lambda:us-east-1:123456789012:function:ship-val", val.clone());
    let m = machine(json!({"StartAt": "Validate-All", "States": {"Validate-All": {
        "Type": "Map",
        "InputPath": "$.detail",
        "ItemsPath": "$.shipped",
        "MaxConcurrency": 0,
        "ItemSelector": {"parcel.$": "$$.Map.Item.Value", "courier.$": "$.delivery-partner", "index.$": "$$.Map.Item.Index"},
        "ItemProcessor": {"StartAt": "Validate", "States": {"Validate": {
            "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:ship-val", "End": true}}},
        "ResultPath": "$.detail.shipped",
        "End": true}}}));
    let ex = run(&m, &tasks, input.clone()).await;
    assert_eq!(ex.outcome, Outcome::Succeeded);
    let shipped = input["detail"]["shipped"].as_array().unwrap();
    // One iteration's raw input, as the spec shows it (plus the index).
    let mut calls: Vec<Value> = val.calls.lock().unwrap().iter().map(|c| c.1.clone()).collect();
    calls.sort_by_key(|c| c["index"].as_u64());
    assert_eq!(
        calls[0],
        json!({"parcel": {"prod": "R31", "dest-code": 9511, "quantity": 1344}, "courier": "UQS", "index": 0})
    );
    // The output is the input with detail.shipped replaced by the results, in order.
    let results = ex.output["detail"]["shipped"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["checked"]["parcel"], shipped[i]);
    }
    assert_eq!(ex.output["ship-date"], input["ship-date"]);
    assert_eq!(ex.output["detail"]["delivery-partner"], "UQS");

    // Without ItemSelector (the spec's first form), each iteration gets the element itself.
    let val = ship_val();
    let tasks = Tasks::new().with_arc("ship-val", val.clone());
    let m = machine(json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "InputPath": "$.detail", "ItemsPath": "$.shipped",
        "Iterator": {"StartAt": "V", "States": {"V": {"Type": "Task", "Resource": "ship-val", "End": true}}},
        "ResultPath": "$.detail.shipped", "End": true}}}));
    run(&m, &tasks, input).await;
    assert!(val
        .calls
        .lock()
        .unwrap()
        .iter()
        .any(|c| c.1 == json!({"prod": "R31", "dest-code": 9511, "quantity": 1344})));
}

#[tokio::test(start_paused = true)]
async fn map_max_concurrency() {
    for (limit, expected_max, expected_secs) in [(1, 1, 60), (3, 3, 20), (0, 6, 10)] {
        let slow = Slow::new(Duration::from_secs(10));
        let tasks = Tasks::new().with_arc("slow", slow.clone());
        let m = machine(json!({"StartAt": "M", "States": {"M": {
            "Type": "Map", "MaxConcurrency": limit,
            "ItemProcessor": {"StartAt": "S", "States": {"S": {"Type": "Task", "Resource": "slow", "End": true}}},
            "End": true}}}));
        let start = tokio::time::Instant::now();
        let ex = run(&m, &tasks, json!([0, 1, 2, 3, 4, 5])).await;
        assert_eq!(ex.output, json!([0, 1, 2, 3, 4, 5]), "results keep the input order");
        assert_eq!(slow.max_running.load(Ordering::SeqCst), expected_max, "MaxConcurrency {limit}");
        assert_eq!(start.elapsed().as_secs(), expected_secs, "MaxConcurrency {limit}");
    }
}

#[tokio::test]
async fn map_failures_and_tolerance() {
    let odd_fails = || {
        Func(|v: Value| {
            if v.as_i64().unwrap() % 2 == 1 {
                Err(TaskError::permanent("Odd", format!("{v} is odd")))
            } else {
                Ok(v)
            }
        })
    };
    let def = |extra: Value| {
        let mut state = json!({"Type": "Map", "ItemProcessor": {"StartAt": "S", "States": {"S": {"Type": "Task", "Resource": "f", "End": true}}}, "End": true});
        state.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        machine(json!({"StartAt": "M", "States": {"M": state}}))
    };
    let tasks = Tasks::new().with("f", odd_fails());
    let ex = run(&def(json!({})), &tasks, json!([0, 1, 2])).await;
    assert_eq!(failed_with(&ex.outcome), Some("Odd"));
    let ex = run(&def(json!({"ToleratedFailureCount": 1})), &tasks, json!([0, 1, 2])).await;
    assert_eq!(ex.output, json!([0, {"Error": "Odd", "Cause": "1 is odd"}, 2]));
    let ex = run(&def(json!({"ToleratedFailurePercentage": 40})), &tasks, json!([0, 1, 2, 3])).await;
    assert_eq!(failed_with(&ex.outcome), Some("States.ExceedToleratedFailureThreshold"));
    // ItemsPath must select an array.
    let ex = run(&def(json!({"ItemsPath": "$.items"})), &tasks, json!({"items": 3})).await;
    assert_eq!(failed_with(&ex.outcome), Some("States.Runtime"));
}

/// Sends a heartbeat every `every`, `beats` times, then finishes.
struct Beating {
    every: Duration,
    beats: u32,
}

#[async_trait]
impl Task for Beating {
    async fn run(&self, input: Value) -> Result<Value, TaskError> {
        Ok(input)
    }

    async fn invoke(&self, _input: Value, call: &TaskCall) -> Result<Value, TaskError> {
        for _ in 0..self.beats {
            tokio::time::sleep(self.every).await;
            call.heartbeat();
        }
        Ok(json!({"state": call.state, "execution": call.execution_id}))
    }
}

#[tokio::test(start_paused = true)]
async fn timeouts_and_heartbeats() {
    let m = machine(json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "t", "TimeoutSeconds": 100, "HeartbeatSeconds": 10, "End": true}}}));
    // Heartbeats every 5 s for 50 s: alive, and under the 100 s limit.
    let tasks = Tasks::new().with("t", Beating { every: Duration::from_secs(5), beats: 10 });
    let ex = run_with(&m, &tasks, json!({}), RunOptions::new("ex-9")).await;
    assert_eq!(ex.outcome, Outcome::Succeeded);
    assert_eq!(ex.output, json!({"state": "T", "execution": "ex-9"}));
    // Beats 15 s apart miss the 10 s heartbeat.
    let tasks = Tasks::new().with("t", Beating { every: Duration::from_secs(15), beats: 3 });
    let ex = run(&m, &tasks, json!({})).await;
    assert_eq!(failed_with(&ex.outcome), Some("States.HeartbeatTimeout"));
    assert!(matches!(ex.outcome, Outcome::Failed { class: weir_core::ErrorClass::Transient, .. }));
    // Beating forever is stopped by TimeoutSeconds.
    let tasks = Tasks::new().with("t", Beating { every: Duration::from_secs(5), beats: 1000 });
    let start = tokio::time::Instant::now();
    let ex = run(&m, &tasks, json!({})).await;
    assert_eq!(failed_with(&ex.outcome), Some("States.Timeout"));
    assert_eq!(start.elapsed().as_secs(), 100);
    // TimeoutSecondsPath reads the limit from the input.
    let m = machine(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "t", "TimeoutSecondsPath": "$.limit", "End": true}}}),
    );
    let ex = run(&m, &tasks, json!({"limit": 7})).await;
    assert_eq!(failed_with(&ex.outcome), Some("States.Timeout"));
}

#[tokio::test(start_paused = true)]
async fn machine_timeout_seconds() {
    let m = machine(json!({"StartAt": "W", "TimeoutSeconds": 30, "States": {
        "W": {"Type": "Wait", "Seconds": 20, "Next": "W2"},
        "W2": {"Type": "Wait", "Seconds": 20, "End": true}}}));
    let ex = run(&m, &Tasks::new(), json!({})).await;
    assert_eq!(failed_with(&ex.outcome), Some("States.Timeout"));
    assert_eq!(path(&ex.steps), ["W", "W2"]);
}

#[tokio::test]
async fn context_object() {
    let m = machine(json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true, "Parameters": {
        "id.$": "$$.Execution.Id", "name.$": "$$.Execution.Name", "input.$": "$$.Execution.Input",
        "start.$": "$$.Execution.StartTime", "state.$": "$$.State.Name", "entered.$": "$$.State.EnteredTime",
        "retries.$": "$$.State.RetryCount", "machine.$": "$$.StateMachine.Id"}}}}));
    let mut options = RunOptions::new("job-1").state_machine("sales", "ProcessCSVWorkflow");
    options.execution_name = "execution-job-1".into();
    let ex = run_with(&m, &Tasks::new(), json!({"k": "v"}), options).await;
    let out = ex.output;
    assert_eq!(out["id"], "job-1");
    assert_eq!(out["name"], "execution-job-1");
    assert_eq!(out["input"], json!({"k": "v"}));
    assert_eq!(out["state"], "P");
    assert_eq!(out["retries"], 0);
    assert_eq!(out["machine"], "sales");
    for t in ["start", "entered"] {
        let s = out[t].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.ends_with('Z'), "{t}: {s}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_count_is_in_the_context() {
    let task = Script::new(vec![TaskError::transient("Flaky", "try again")], |v| v);
    let tasks = Tasks::new().with_arc("t", task.clone());
    let m = machine(json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "t", "End": true,
        "Parameters": {"n.$": "$$.State.RetryCount"}, "Retry": [{"ErrorEquals": ["Flaky"]}]}}}));
    run(&m, &tasks, json!({})).await;
    let calls: Vec<Value> = task.calls.lock().unwrap().iter().map(|c| c.1.clone()).collect();
    assert_eq!(calls, [json!({"n": 0}), json!({"n": 1})]);
}

#[tokio::test]
async fn history_keeps_truncated_input_and_output() {
    let big = "x".repeat(10_000);
    let m = machine(json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Result": {"big": big}, "ResultPath": "$.b", "Next": "B"},
        "B": {"Type": "Pass", "OutputPath": "$.small", "End": true}}}));
    let ex = run(&m, &Tasks::new(), json!({"small": 1})).await;
    let a = &ex.steps[0];
    assert_eq!((a.state.as_str(), a.outcome.as_str()), ("A", "ok"));
    assert_eq!(a.input.as_deref(), Some(r#"{"small":1}"#));
    let out = a.output.as_deref().unwrap();
    assert!(out.len() < 2100 && out.ends_with("… (truncated)"), "{}", out.len());
    assert_eq!(ex.steps[1].output.as_deref(), Some("1"));
    assert_eq!(ex.steps[1].input, None, "B's input is A's output, recorded once");
    // A state that passes its input on records no output of its own.
    let m = machine(json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Result": 2, "ResultPath": "$.n", "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 2, "Next": "D"}]},
        "D": {"Type": "Succeed"}}}));
    let passed = run(&m, &Tasks::new(), json!({})).await;
    let outputs: Vec<_> = passed.steps.iter().map(|s| (s.state.as_str(), s.output.as_deref())).collect();
    assert_eq!(outputs, [("A", Some(r#"{"n":2}"#)), ("C", None), ("D", None)]);
    // The record serialises without the empty fields.
    let text = serde_json::to_string(&ex.steps[1]).unwrap();
    assert!(!text.contains("retries") && !text.contains("error"), "{text}");
}

#[derive(Default)]
struct Saved(Mutex<Vec<(String, Value, Option<String>)>>);

#[async_trait]
impl Checkpoint for Saved {
    async fn completed(&self, point: Completed<'_>) -> Result<(), TaskError> {
        assert_eq!(point.steps[0].state, point.state);
        self.0.lock().unwrap().push((point.state.into(), point.output.clone(), point.next.map(Into::into)));
        Ok(())
    }
}

#[tokio::test]
async fn checkpoints_and_resume_skip_completed_states() {
    let m = machine(json!({"StartAt": "One", "States": {
        "One": {"Type": "Task", "Resource": "one", "ResultPath": "$.one", "Next": "Two"},
        "Two": {"Type": "Task", "Resource": "two", "ResultPath": "$.two", "Next": "Three"},
        "Three": {"Type": "Task", "Resource": "three", "ResultPath": "$.three", "End": true}}}));
    let one = Script::new(vec![], |_| json!(1));
    let two = Script::new(vec![], |_| json!(2));
    // The first run crashes in Three (a transient failure stands in for the crash).
    let three = Script::new(vec![TaskError::transient("Crash", "killed")], |_| json!(3));
    let tasks = Tasks::new()
        .with_arc("one", one.clone())
        .with_arc("two", two.clone())
        .with_arc("three", three.clone());
    let saved = Arc::new(Saved::default());
    let ex = run_with(&m, &tasks, json!({"job": "j"}), RunOptions::new("j").checkpoint(saved.clone())).await;
    assert_eq!(failed_with(&ex.outcome), Some("Crash"));
    let points = saved.0.lock().unwrap().clone();
    assert_eq!(points.len(), 2);
    let (last_state, last_output, next) = points.last().unwrap().clone();
    assert_eq!((last_state.as_str(), next.as_deref()), ("Two", Some("Three")));
    assert_eq!(last_output, json!({"job": "j", "one": 1, "two": 2}));

    // Redelivery: resume at Three with Two's output. One and Two do not run again.
    let options = RunOptions::new("j").checkpoint(saved.clone()).resume_from(next.unwrap(), last_output);
    let ex = run_with(&m, &tasks, json!({"job": "j"}), options).await;
    assert_eq!(ex.outcome, Outcome::Succeeded);
    assert_eq!(ex.output, json!({"job": "j", "one": 1, "two": 2, "three": 3}));
    assert_eq!((one.call_count(), two.call_count(), three.call_count()), (1, 1, 2));
    assert_eq!(path(&ex.steps), ["Three"]);
    assert_eq!(saved.0.lock().unwrap().last().unwrap().2, None, "the end is checkpointed too");

    // Resuming at a state the workflow does not have fails plainly.
    let ex = run_with(&m, &tasks, json!({}), RunOptions::new("j").resume_from("Gone", json!({}))).await;
    assert_eq!(failed_with(&ex.outcome), Some("States.Runtime"));
}

struct Refusing;

#[async_trait]
impl Checkpoint for Refusing {
    async fn completed(&self, _: Completed<'_>) -> Result<(), TaskError> {
        Err(TaskError::transient("Weir.Unavailable", "job store down"))
    }
}

#[tokio::test]
async fn a_failed_checkpoint_stops_the_execution() {
    let two = Script::new(vec![], |v| v);
    let tasks = Tasks::new().with("one", PassThrough).with_arc("two", two.clone());
    let m = machine(json!({"StartAt": "One", "States": {
        "One": {"Type": "Task", "Resource": "one", "Next": "Two"},
        "Two": {"Type": "Task", "Resource": "two", "End": true}}}));
    let ex = run_with(&m, &tasks, json!({}), RunOptions::new("j").checkpoint(Arc::new(Refusing))).await;
    assert!(
        matches!(ex.outcome, Outcome::Failed { ref error, class: weir_core::ErrorClass::Transient, .. } if error == "Weir.Unavailable")
    );
    assert_eq!(two.call_count(), 0);
}

#[tokio::test]
async fn mapped_resolver_runs_lambda_arns_as_weir_tasks() {
    let tasks = Tasks::new().with("weir:double", Func(|v: Value| Ok(json!(v.as_i64().unwrap() * 2))));
    let resolver = MappedResolver::new(
        tasks,
        [("arn:aws:lambda:eu-west-1:123:function:double".to_string(), "weir:double".to_string())],
    );
    let m = machine(json!({"StartAt": "D", "States": {
        "D": {"Type": "Task", "Resource": "arn:aws:lambda:eu-west-1:123:function:double", "Next": "E"},
        "E": {"Type": "Task", "Resource": "weir:double", "End": true}}}));
    assert_eq!(run(&m, &resolver, json!(3)).await.output, json!(12));
}

#[tokio::test]
async fn runaway_loops_stop() {
    let m = machine(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}}),
    );
    let mut options = RunOptions::new("loop");
    options.max_transitions = 50;
    let ex = run_with(&m, &Tasks::new(), json!({}), options).await;
    assert_eq!(failed_with(&ex.outcome), Some("States.Runtime"));
    assert_eq!(ex.steps.len(), 50);
}
