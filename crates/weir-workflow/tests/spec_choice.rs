//! Conformance: the ASL specification's Choice examples.

mod common;

use common::{failed_with, machine, path, Tasks};
use serde_json::{json, Value};
use weir_workflow::{run, Outcome};

fn dispatch_event() -> weir_workflow::StateMachine {
    // The spec's "DispatchEvent" Choice state, each target a Pass state that ends.
    let end = json!({"Type": "Pass", "End": true});
    machine(json!({
        "StartAt": "DispatchEvent",
        "States": {
            "DispatchEvent": {
                "Type": "Choice",
                "Choices": [
                    {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
                    {
                        "And": [
                            {"Variable": "$.value", "IsPresent": true},
                            {"Variable": "$.value", "IsNumeric": true},
                            {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                            {"Variable": "$.value", "NumericLessThan": 30}
                        ],
                        "Next": "ValueInTwenties"
                    },
                    {"Variable": "$.rating", "NumericGreaterThanPath": "$.auditThreshold", "Next": "StartAudit"}
                ],
                "Default": "RecordEvent"
            },
            "Public": end, "ValueInTwenties": end, "StartAudit": end, "RecordEvent": end
        }
    }))
}

async fn dispatch(input: Value) -> String {
    let ex = run(&dispatch_event(), &Tasks::new(), input).await;
    assert_eq!(ex.outcome, Outcome::Succeeded);
    ex.steps[1].state.clone()
}

#[tokio::test]
async fn dispatch_event_example() {
    // The spec: input {"type": "Private", "value": 22} goes to "ValueInTwenties".
    assert_eq!(dispatch(json!({"type": "Private", "value": 22})).await, "ValueInTwenties");
    // And the other rules of the same state.
    assert_eq!(dispatch(json!({"type": "Public", "value": 22})).await, "Public");
    assert_eq!(
        dispatch(json!({"type": "Private", "value": 35, "rating": 9, "auditThreshold": 5})).await,
        "StartAudit"
    );
    assert_eq!(dispatch(json!({"type": "Private", "rating": 1, "auditThreshold": 5})).await, "RecordEvent");
    assert_eq!(
        dispatch(json!({"type": "Private", "value": "22", "rating": 1, "auditThreshold": 5})).await,
        "RecordEvent"
    );
}

#[tokio::test]
async fn string_matches_examples() {
    // `foo*.log` matches `foo23.log`, `*.log` matches `zebra.log`, `foo*.*` matches
    // `foobar.zebra`; `\\*` is a literal star.
    for (pattern, value, matches) in [
        ("foo*.log", "foo23.log", true),
        ("*.log", "zebra.log", true),
        ("foo*.*", "foobar.zebra", true),
        ("foo*.log", "foo23.txt", false),
        ("log\\*", "log*", true),
        ("log\\*", "logs", false),
    ] {
        let m = machine(json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "StringMatches": pattern, "Next": "Yes"}], "Default": "No"},
            "Yes": {"Type": "Succeed"}, "No": {"Type": "Succeed"}}}));
        let ex = run(&m, &Tasks::new(), json!({"v": value})).await;
        assert_eq!(ex.steps[1].state, if matches { "Yes" } else { "No" }, "{pattern} vs {value}");
    }
}

#[tokio::test]
async fn no_match_without_default_is_states_no_choice_matched() {
    let m = machine(json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "BooleanEquals": true, "Next": "Yes"}]},
        "Yes": {"Type": "Succeed"}}}));
    let ex = run(&m, &Tasks::new(), json!({"v": false})).await;
    assert_eq!(failed_with(&ex.outcome), Some("States.NoChoiceMatched"));
    assert_eq!(path(&ex.steps), ["C"]);
}

#[tokio::test]
async fn a_missing_variable_is_a_runtime_error_but_is_present_is_not() {
    let m = machine(json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [
            {"Variable": "$.absent", "IsPresent": true, "Next": "Yes"},
            {"Variable": "$.absent", "StringEquals": "x", "Next": "Yes"}], "Default": "Yes"},
        "Yes": {"Type": "Succeed"}}}));
    let ex = run(&m, &Tasks::new(), json!({})).await;
    assert_eq!(failed_with(&ex.outcome), Some("States.Runtime"));
}

#[tokio::test]
async fn choice_uses_input_path_and_passes_its_output_path() {
    let m = machine(json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "InputPath": "$.inner", "OutputPath": "$.keep",
              "Choices": [{"Or": [{"Variable": "$.n", "NumericEquals": 1}, {"Variable": "$.n", "NumericEquals": 2}], "Next": "Yes"}],
              "Default": "No"},
        "Yes": {"Type": "Pass", "End": true}, "No": {"Type": "Fail", "Error": "No"}}}));
    let ex = run(&m, &Tasks::new(), json!({"inner": {"n": 2, "keep": {"k": true}}})).await;
    assert_eq!(ex.outcome, Outcome::Succeeded);
    assert_eq!(ex.output, json!({"k": true}));
}
