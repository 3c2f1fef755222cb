//! Conformance: the ASL specification's error-handling examples (Retry and Catch).
//!
//! Time is paused: waits advance the clock instantly, so the gaps between attempts are exact.

mod common;

use std::time::Duration;

use async_trait::async_trait;
use common::{failed_with, machine, path, Script, Tasks};
use serde_json::{json, Value};
use weir_workflow::{run, Outcome, Task, TaskError};

/// A task that takes ten seconds, so a TimeoutSeconds of 1 fails it with States.Timeout.
struct TenSeconds(std::sync::Arc<Script>);

#[async_trait]
impl Task for TenSeconds {
    async fn run(&self, input: Value) -> Result<Value, TaskError> {
        let _ = self.0.run(input.clone()).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok(input)
    }
}

fn err(name: &str) -> TaskError {
    TaskError::permanent(name, format!("{name} happened"))
}

async fn timing_out(retry: Value) -> (Vec<u64>, weir_workflow::Execution) {
    let calls = Script::new(vec![], |v| v);
    let tasks = Tasks::new().with("X", TenSeconds(calls.clone()));
    let m = machine(json!({"StartAt": "X", "States": {"X": {
        "Type": "Task", "Resource": "X", "TimeoutSeconds": 1, "Retry": retry, "End": true}}}));
    let ex = run(&m, &tasks, json!({})).await;
    (calls.gaps(), ex)
}

#[tokio::test(start_paused = true)]
async fn two_retries_after_three_and_six_seconds() {
    // IntervalSeconds 3, MaxAttempts 2, BackoffRate 2.0: waits of 3 and 6 seconds (each
    // attempt also takes its 1 s timeout).
    let (gaps, ex) = timing_out(json!([{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 3, "MaxAttempts": 2, "BackoffRate": 2.0}])).await;
    assert_eq!(gaps, [1 + 3, 1 + 6]);
    assert_eq!(failed_with(&ex.outcome), Some("States.Timeout"));
    assert_eq!(ex.steps[0].retries, 2);
}

#[tokio::test(start_paused = true)]
async fn max_delay_caps_the_second_wait_at_four_seconds() {
    let (gaps, _) =
        timing_out(json!([{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 3, "MaxAttempts": 2,
                                       "BackoffRate": 2.0, "MaxDelaySeconds": 4}]))
        .await;
    assert_eq!(gaps, [1 + 3, 1 + 4]);
}

#[tokio::test(start_paused = true)]
async fn jitter_full_waits_at_most_the_interval() {
    let (gaps, _) =
        timing_out(json!([{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 2, "MaxAttempts": 2,
                                       "BackoffRate": 2.0, "JitterStrategy": "FULL"}]))
        .await;
    assert_eq!(gaps.len(), 2);
    assert!(gaps[0] <= 1 + 2 && gaps[1] <= 1 + 4, "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_everything_but_timeouts() {
    let retry =
        json!([{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 0}, {"ErrorEquals": ["States.ALL"]}]);
    let (gaps, ex) = timing_out(retry.clone()).await;
    assert!(gaps.is_empty(), "a timeout is never retried");
    assert_eq!(failed_with(&ex.outcome), Some("States.Timeout"));

    // Any other error: the defaults (IntervalSeconds 1, MaxAttempts 3, BackoffRate 2.0).
    let task = Script::new(vec![err("E"), err("E"), err("E"), err("E")], |v| v);
    let tasks = Tasks::new().with_arc("X", task.clone());
    let m = machine(
        json!({"StartAt": "X", "States": {"X": {"Type": "Task", "Resource": "X", "Retry": retry, "End": true}}}),
    );
    let ex = run(&m, &tasks, json!({})).await;
    assert_eq!(task.gaps(), [1, 2, 4]);
    assert_eq!(failed_with(&ex.outcome), Some("E"));
}

#[tokio::test(start_paused = true)]
async fn complex_retry_scenario() {
    // Fails with ErrorA, ErrorB, ErrorC, ErrorB: waits of 1 and 2 seconds (first retrier), 5
    // (second), then the first retrier is spent and the Catch sends the machine to Z.
    let task = Script::new(vec![err("ErrorA"), err("ErrorB"), err("ErrorC"), err("ErrorB")], |v| v);
    let tasks = Tasks::new().with_arc("arn:aws:states:us-east-1:123456789012:task:X", task.clone());
    let m = machine(json!({"StartAt": "X", "States": {
        "X": {
            "Type": "Task",
            "Resource": "arn:aws:states:us-east-1:123456789012:task:X",
            "Next": "Y",
            "Retry": [
                {"ErrorEquals": ["ErrorA", "ErrorB"], "IntervalSeconds": 1, "BackoffRate": 2, "MaxAttempts": 2},
                {"ErrorEquals": ["ErrorC"], "IntervalSeconds": 5}
            ],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Z"}]
        },
        "Y": {"Type": "Succeed"},
        "Z": {"Type": "Pass", "End": true}
    }}));
    let ex = run(&m, &tasks, json!({"in": 1})).await;
    assert_eq!(task.gaps(), [1, 2, 5]);
    assert_eq!(path(&ex.steps), ["X", "Z"]);
    assert_eq!(ex.steps[0].outcome, "ErrorB");
    assert_eq!(ex.steps[0].retries, 3);
    assert_eq!(ex.outcome, Outcome::Succeeded);
    // Without a ResultPath the catcher's output is the Error Output alone.
    assert_eq!(ex.output, json!({"Error": "ErrorB", "Cause": "ErrorB happened"}));
}

#[tokio::test]
async fn catcher_example() {
    // A java.lang.Exception goes to RecoveryState with the Error Output in "error-info";
    // anything else to EndMachine with the Error Output as its whole input.
    let m = machine(json!({"StartAt": "X", "States": {
        "X": {
            "Type": "Task", "Resource": "X", "Next": "Done",
            "Catch": [
                {"ErrorEquals": ["java.lang.Exception"], "ResultPath": "$.error-info", "Next": "RecoveryState"},
                {"ErrorEquals": ["States.ALL"], "Next": "EndMachine"}
            ]
        },
        "Done": {"Type": "Succeed"},
        "RecoveryState": {"Type": "Pass", "End": true},
        "EndMachine": {"Type": "Pass", "End": true}
    }}));
    let input = json!({"order": 42});
    let tasks = Tasks::new().with_arc("X", Script::new(vec![err("java.lang.Exception")], |v| v));
    let ex = run(&m, &tasks, input.clone()).await;
    assert_eq!(path(&ex.steps), ["X", "RecoveryState"]);
    assert_eq!(
        ex.output,
        json!({"order": 42, "error-info": {"Error": "java.lang.Exception", "Cause": "java.lang.Exception happened"}})
    );

    let tasks = Tasks::new().with_arc("X", Script::new(vec![err("Other")], |v| v));
    let ex = run(&m, &tasks, input).await;
    assert_eq!(path(&ex.steps), ["X", "EndMachine"]);
    assert_eq!(ex.output, json!({"Error": "Other", "Cause": "Other happened"}));
}

#[tokio::test]
async fn predefined_error_names_in_catchers() {
    let m = |catch: Value| {
        machine(json!({"StartAt": "X", "States": {
            "X": {"Type": "Task", "Resource": "X", "TimeoutSeconds": 5, "Catch": catch, "Next": "Done"},
            "Done": {"Type": "Succeed"}, "Caught": {"Type": "Pass", "End": true}}}))
    };
    // States.TaskFailed matches a task's own errors...
    let tasks = Tasks::new().with_arc("X", Script::new(vec![err("Weir.Unavailable")], |v| v));
    let ex =
        run(&m(json!([{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}])), &tasks, json!({})).await;
    assert_eq!(path(&ex.steps), ["X", "Caught"]);
    // ...but States.ALL does not catch States.Runtime (here: a resource nobody provides).
    let ex =
        run(&m(json!([{"ErrorEquals": ["States.ALL"], "Next": "Caught"}])), &Tasks::new(), json!({})).await;
    assert_eq!(failed_with(&ex.outcome), Some("States.Runtime"));
}

#[tokio::test(start_paused = true)]
async fn task_failed_does_not_match_timeouts() {
    let calls = Script::new(vec![], |v| v);
    let tasks = Tasks::new().with("X", TenSeconds(calls));
    let m = machine(json!({"StartAt": "X", "States": {
        "X": {"Type": "Task", "Resource": "X", "TimeoutSeconds": 1, "Next": "Done",
              "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Done"}, {"ErrorEquals": ["States.Timeout"], "Next": "Late"}]},
        "Done": {"Type": "Succeed"}, "Late": {"Type": "Pass", "End": true}}}));
    let ex = run(&m, &tasks, json!({})).await;
    assert_eq!(path(&ex.steps), ["X", "Late"]);
}
