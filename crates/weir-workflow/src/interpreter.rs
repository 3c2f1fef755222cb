//! Running a state machine: one state after another until `Succeed`, `Fail` or `End`.

use std::time::Instant;

use chrono::Utc;
use serde_json::{json, Value};
use weir_core::job::StepRecord;
use weir_core::ErrorClass;

use crate::definition::{CompareOp, Condition, ResultPath, State, Transition};
use crate::{path, StateMachine, TaskError, TaskResolver};

/// Transitions after which an execution is stopped as a runaway loop.
const MAX_TRANSITIONS: usize = 1000;

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

/// The result of one run: its outcome, the final state, and the path it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub outcome: Outcome,
    pub output: Value,
    pub steps: Vec<StepRecord>,
}

/// Runs `machine` on `input`, resolving Task resources through `tasks`.
pub async fn run(machine: &StateMachine, tasks: &dyn TaskResolver, input: Value) -> Execution {
    let mut steps = Vec::new();
    let mut state_name = machine.start_at.clone();
    let mut data = input;
    for _ in 0..MAX_TRANSITIONS {
        let state = machine.states.get(&state_name).expect("checked at load: transitions name real states");
        let entered_at = Utc::now();
        let started = Instant::now();
        let step = |outcome: &str, error: Option<String>| StepRecord {
            state: state_name.clone(),
            entered_at,
            duration_ms: started.elapsed().as_millis() as u64,
            outcome: outcome.into(),
            error,
        };
        let next = match state {
            State::Succeed => {
                steps.push(step("ok", None));
                return Execution { outcome: Outcome::Succeeded, output: data, steps };
            }
            State::Fail { error, cause } => {
                steps.push(step(error, Some(cause.clone())));
                let outcome = Outcome::Failed {
                    error: error.clone(),
                    cause: cause.clone(),
                    class: ErrorClass::Permanent,
                };
                return Execution { outcome, output: data, steps };
            }
            State::Pass { result, transition, result_path, output_path } => {
                let result = result.clone().unwrap_or_else(|| data.clone());
                match apply_paths(data, result, result_path, output_path.as_deref()) {
                    Ok(d) => data = d,
                    Err(e) => return runtime_failure(steps, step("States.Runtime", Some(e.clone())), e),
                }
                steps.push(step("ok", None));
                transition.clone()
            }
            State::Choice { choices, default } => {
                let chosen =
                    choices.iter().find(|rule| evaluate(&rule.condition, &data)).map(|r| r.next.clone());
                match chosen.or_else(|| default.clone()) {
                    Some(n) => {
                        steps.push(step("ok", None));
                        Transition::Next(n)
                    }
                    None => {
                        let cause =
                            format!("no Choice rule matched in state {state_name:?} and it has no Default");
                        return runtime_failure(
                            steps,
                            step("States.NoChoiceMatched", Some(cause.clone())),
                            cause,
                        );
                    }
                }
            }
            State::Task { resource, transition, catch, result_path, output_path } => {
                let result = match tasks.resolve(resource) {
                    Some(task) => task.run(data.clone()).await,
                    None => Err(TaskError::permanent(
                        "States.Runtime",
                        format!("no task registered for resource {resource:?}"),
                    )),
                };
                match result {
                    Ok(result) => {
                        match apply_paths(data.clone(), result, result_path, output_path.as_deref()) {
                            Ok(d) => {
                                data = d;
                                steps.push(step("ok", None));
                                transition.clone()
                            }
                            Err(e) => {
                                return runtime_failure(steps, step("States.Runtime", Some(e.clone())), e)
                            }
                        }
                    }
                    Err(err) => {
                        steps.push(step(&err.error, Some(err.cause.clone())));
                        let catcher = catch
                            .iter()
                            .find(|c| c.error_equals.iter().any(|e| e == &err.error || e == "States.ALL"));
                        match catcher {
                            Some(c) => {
                                let info = json!({"Error": err.error, "Cause": err.cause});
                                data = match apply_paths(data, info, &c.result_path, None) {
                                    Ok(d) => d,
                                    Err(e) => {
                                        return runtime_failure(
                                            steps,
                                            step("States.Runtime", Some(e.clone())),
                                            e,
                                        )
                                    }
                                };
                                Transition::Next(c.next.clone())
                            }
                            None => {
                                let outcome =
                                    Outcome::Failed { error: err.error, cause: err.cause, class: err.class };
                                return Execution { outcome, output: data, steps };
                            }
                        }
                    }
                }
            }
        };
        match next {
            Transition::Next(n) => state_name = n,
            Transition::End => return Execution { outcome: Outcome::Succeeded, output: data, steps },
        }
    }
    let cause = format!("more than {MAX_TRANSITIONS} transitions: the workflow loops");
    Execution {
        outcome: Outcome::Failed { error: "States.Runtime".into(), cause, class: ErrorClass::Permanent },
        output: data,
        steps,
    }
}

fn runtime_failure(mut steps: Vec<StepRecord>, step: StepRecord, cause: String) -> Execution {
    let error = step.outcome.clone();
    steps.push(step);
    Execution {
        outcome: Outcome::Failed { error, cause, class: ErrorClass::Permanent },
        output: Value::Null,
        steps,
    }
}

fn apply_paths(
    input: Value,
    result: Value,
    result_path: &ResultPath,
    output_path: Option<&str>,
) -> Result<Value, String> {
    let combined = match result_path {
        ResultPath::Discard => input,
        ResultPath::Path(p) => path::set(input, p, result)?,
    };
    match output_path {
        None => Ok(combined),
        Some(p) => {
            path::get(&combined, p).cloned().ok_or_else(|| format!("OutputPath {p:?} matched nothing"))
        }
    }
}

fn evaluate(condition: &Condition, data: &Value) -> bool {
    match condition {
        Condition::And(all) => all.iter().all(|c| evaluate(c, data)),
        Condition::Or(any) => any.iter().any(|c| evaluate(c, data)),
        Condition::Not(c) => !evaluate(c, data),
        Condition::IsPresent { variable, expected } => path::get(data, variable).is_some() == *expected,
        Condition::Compare { variable, op, value } => {
            let Some(actual) = path::get(data, variable) else { return false };
            match op {
                CompareOp::BooleanEquals => actual.as_bool().is_some() && actual.as_bool() == value.as_bool(),
                CompareOp::StringEquals => actual.as_str().is_some() && actual.as_str() == value.as_str(),
                _ => {
                    let (Some(a), Some(b)) = (actual.as_f64(), value.as_f64()) else { return false };
                    match op {
                        CompareOp::NumericEquals => a == b,
                        CompareOp::NumericLessThan => a < b,
                        CompareOp::NumericGreaterThan => a > b,
                        CompareOp::NumericLessThanEquals => a <= b,
                        CompareOp::NumericGreaterThanEquals => a >= b,
                        CompareOp::BooleanEquals | CompareOp::StringEquals => unreachable!("handled above"),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::Task;

    struct Fixed(Result<Value, TaskError>);

    #[async_trait]
    impl Task for Fixed {
        async fn run(&self, _input: Value) -> Result<Value, TaskError> {
            self.0.clone()
        }
    }

    struct Merge(Value);

    #[async_trait]
    impl Task for Merge {
        async fn run(&self, mut input: Value) -> Result<Value, TaskError> {
            for (k, v) in self.0.as_object().unwrap() {
                input[k] = v.clone();
            }
            Ok(input)
        }
    }

    struct Tasks(HashMap<&'static str, Box<dyn Task>>);

    impl TaskResolver for Tasks {
        fn resolve(&self, resource: &str) -> Option<&dyn Task> {
            self.0.get(resource).map(|t| t.as_ref())
        }
    }

    const MACHINE: &str = r#"{"StartAt":"Validate","States":{
        "Validate":{"Type":"Task","Resource":"validate","Next":"Check",
                    "Catch":[{"ErrorEquals":["Weir.InvalidInput"],"ResultPath":"$.error","Next":"Reject"}]},
        "Check":{"Type":"Choice","Choices":[
            {"Variable":"$.schema_valid","BooleanEquals":true,"Next":"Done"},
            {"And":[{"Variable":"$.rows","NumericGreaterThan":5},{"Not":{"Variable":"$.x","IsPresent":true}}],"Next":"Done"}],
          "Default":"Reject"},
        "Reject":{"Type":"Fail","Error":"Weir.Rejected","Cause":"schema"},
        "Done":{"Type":"Pass","Result":{"ok":true},"ResultPath":"$.pass","End":true}}}"#;

    async fn run_with(validate: Box<dyn Task>) -> Execution {
        let m = StateMachine::from_json(MACHINE).unwrap();
        run(&m, &Tasks(HashMap::from([("validate", validate)])), json!({"job": 1})).await
    }

    #[tokio::test]
    async fn happy_path_records_every_step() {
        let ex = run_with(Box::new(Merge(json!({"schema_valid": true})))).await;
        assert_eq!(ex.outcome, Outcome::Succeeded);
        assert_eq!(ex.output, json!({"job": 1, "schema_valid": true, "pass": {"ok": true}}));
        let names: Vec<_> = ex.steps.iter().map(|s| s.state.as_str()).collect();
        assert_eq!(names, ["Validate", "Check", "Done"]);
    }

    #[tokio::test]
    async fn choice_compound_rules_and_default() {
        let ex = run_with(Box::new(Merge(json!({"schema_valid": false, "rows": 9})))).await;
        assert_eq!(ex.outcome, Outcome::Succeeded);
        let ex = run_with(Box::new(Merge(json!({"schema_valid": false, "rows": 9, "x": 1})))).await;
        assert!(matches!(ex.outcome, Outcome::Failed { ref error, .. } if error == "Weir.Rejected"));
    }

    #[tokio::test]
    async fn catch_routes_named_errors_with_result_path() {
        let ex = run_with(Box::new(Fixed(Err(TaskError::permanent("Weir.InvalidInput", "bad quote"))))).await;
        assert!(matches!(ex.outcome, Outcome::Failed { ref error, .. } if error == "Weir.Rejected"));
        assert_eq!(ex.output["error"], json!({"Error": "Weir.InvalidInput", "Cause": "bad quote"}));
        assert_eq!(ex.steps[0].outcome, "Weir.InvalidInput");
    }

    #[tokio::test]
    async fn uncaught_transient_errors_fail_with_their_class() {
        let ex = run_with(Box::new(Fixed(Err(TaskError::transient("Weir.Unavailable", "disk"))))).await;
        assert_eq!(
            ex.outcome,
            Outcome::Failed {
                error: "Weir.Unavailable".into(),
                cause: "disk".into(),
                class: ErrorClass::Transient
            }
        );
    }
}
