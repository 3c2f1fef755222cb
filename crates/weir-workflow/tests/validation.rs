//! Load-time checks (what `weir check` shows): each problem with the JSON pointer of its place.

use serde_json::{json, Value};
use weir_workflow::StateMachine;

fn problems(definition: Value) -> Vec<String> {
    StateMachine::from_value(&definition)
        .expect_err("the definition should be refused")
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Each `(pointer, words)`: a problem at that pointer that says those words.
fn has(problems: &[String], expected: &[(&str, &str)]) {
    let missing: Vec<_> = expected
        .iter()
        .filter(|(pointer, words)| {
            !problems.iter().any(|p| p.starts_with(&format!("{pointer}: ")) && p.contains(words))
        })
        .collect();
    assert!(missing.is_empty(), "no problem for {missing:?} in:\n{}", problems.join("\n"));
}

#[test]
fn transitions() {
    let p = problems(json!({"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "r", "Next": "Nowhere"},
        "B": {"Type": "Pass"},
        "C": {"Type": "Pass", "Next": "A", "End": true},
        "D": {"Type": "Succeed"}}}));
    has(
        &p,
        &[
            ("/States/A/Next", "no state named \"Nowhere\""),
            ("/States/B", "needs Next or \"End\": true"),
            ("/States/C", "has both Next and \"End\": true"),
            ("/States/D", "unreachable from StartAt"),
        ],
    );
    let p = problems(json!({"StartAt": "Missing", "States": {"A": {"Type": "Succeed"}}}));
    has(&p, &[("/StartAt", "no state named \"Missing\"")]);
}

#[test]
fn bad_paths() {
    let p = problems(json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "InputPath": "input", "OutputPath": "$.[", "ResultPath": "$.a[*]", "Next": "B"},
        "B": {"Type": "Pass", "ResultPath": "$$.x", "Parameters": {"p.$": "$.."}, "Next": "C"},
        "C": {"Type": "Wait", "SecondsPath": "$..n", "End": true}}}));
    has(
        &p,
        &[
            ("/States/A/InputPath", "must start with '$'"),
            ("/States/A/OutputPath", "not a valid path"),
            ("/States/A/ResultPath", "a reference path must name one node"),
            ("/States/B/ResultPath", "context object"),
            ("/States/B/Parameters/p.$", "not a valid path"),
            ("/States/C/SecondsPath", "reference path"),
        ],
    );
}

#[test]
fn choices() {
    let p = problems(json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": []},
        "D": {"Type": "Choice", "Choices": [{"Variable": "$.x", "Next": "C"}, {"Not": {"Variable": "$.x", "IsNull": true, "Next": "C"}, "Next": "C"}]}}}));
    has(
        &p,
        &[
            ("/States/C/Choices", "at least one rule"),
            ("/States/D/Choices/0", "needs a comparison operator"),
            ("/States/D/Choices/1/Not/Next", "only top-level Choice rules have a Next"),
        ],
    );
}

#[test]
fn retry_and_catch() {
    let p = problems(json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "r", "Next": "E",
              "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"], "MaxAttempts": "3", "BackoffRate": 0.5}],
              "Catch": [{"ErrorEquals": ["States.ALL", "X"], "Next": "E"}, {"ErrorEquals": "X", "Next": 7}]},
        "U": {"Type": "Task", "Resource": "r", "End": true, "Retry": {"ErrorEquals": ["X"]}, "Catch": "E"},
        "E": {"Type": "Succeed"}}}));
    has(
        &p,
        &[
            ("/States/T/Retry/0/ErrorEquals", "States.ALL must be in the last retrier"),
            ("/States/T/Retry/1/MaxAttempts", "non-negative integer"),
            ("/States/T/Retry/1/BackoffRate", "≥ 1.0"),
            ("/States/T/Catch/0/ErrorEquals", "States.ALL must appear alone"),
            ("/States/T/Catch/1/ErrorEquals", "non-empty array"),
            ("/States/T/Catch/1/Next", "must be a state name"),
            ("/States/U/Retry", "must be an array of retriers"),
            ("/States/U/Catch", "must be an array of catchers"),
        ],
    );
}

#[test]
fn fields_and_types() {
    let p = problems(json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "r", "Next": "W", "TimeoutSeconds": 10, "HeartbeatSeconds": 20, "Resultpath": "$.x"},
        "W": {"Type": "Wait", "Seconds": 1, "Timestamp": "2016-03-14T01:59:00Z", "Next": "J"},
        "J": {"Type": "Pass", "Assign": {"x": 1}, "Next": "M"},
        "M": {"Type": "Map", "ItemReader": {}, "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}, "Next": "X"},
        "X": {"Type": "Parallel", "Branches": [], "Next": "Y"},
        "Y": {"Type": "Sleep"}}}));
    has(
        &p,
        &[
            ("/States/T/Resultpath", "is not a field of a Task state"),
            ("/States/T/HeartbeatSeconds", "smaller than TimeoutSeconds"),
            ("/States/W", "exactly one of Seconds, SecondsPath, Timestamp, TimestampPath"),
            ("/States/J/Assign", "not supported"),
            ("/States/M/ItemReader", "not supported"),
            ("/States/X/Branches", "non-empty array of branches"),
            ("/States/Y/Type", "unknown state type \"Sleep\""),
        ],
    );
}

#[test]
fn pointers_escape_slashes_and_tildes() {
    let p = problems(json!({"StartAt": "a/b", "States": {"a/b": {"Type": "Pass", "Next": "c~d"}}}));
    has(&p, &[("/States/a~1b/Next", "no state named \"c~d\"")]);
}

#[test]
fn not_json() {
    let err = StateMachine::from_json("{").unwrap_err();
    assert!(err.problems[0].to_string().starts_with("/: not a JSON state machine definition"), "{err}");
}
