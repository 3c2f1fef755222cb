//! Parsing and checking a state machine definition.
//!
//! Problems are reported all at once, each with the JSON pointer of the place it is about
//! (`/States/Transform/Next`), so `weir check` can show them like a compiler would.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use crate::path;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid state machine:\n  {}", .problems.join("\n  "))]
pub struct DefinitionError {
    pub problems: Vec<String>,
}

/// A checked state machine.
#[derive(Debug, Clone, PartialEq)]
pub struct StateMachine {
    pub comment: Option<String>,
    pub start_at: String,
    pub states: BTreeMap<String, State>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Task {
        resource: String,
        transition: Transition,
        catch: Vec<Catcher>,
        result_path: ResultPath,
        output_path: Option<String>,
    },
    Choice {
        choices: Vec<ChoiceRule>,
        default: Option<String>,
    },
    Pass {
        result: Option<Value>,
        transition: Transition,
        result_path: ResultPath,
        output_path: Option<String>,
    },
    Succeed,
    Fail {
        error: String,
        cause: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Next(String),
    End,
}

/// Where a state's result goes: replace the input (`$`, the default), a field, or nowhere
/// (`null`: keep the input).
#[derive(Debug, Clone, PartialEq)]
pub enum ResultPath {
    Path(String),
    Discard,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    pub result_path: ResultPath,
}

/// A Choice rule: a condition and, at the top level, the state to go to.
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceRule {
    pub condition: Condition,
    pub next: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Compare { variable: String, op: CompareOp, value: Value },
    IsPresent { variable: String, expected: bool },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CompareOp {
    BooleanEquals,
    StringEquals,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
}

impl CompareOp {
    const ALL: [(&'static str, CompareOp); 7] = [
        ("BooleanEquals", CompareOp::BooleanEquals),
        ("StringEquals", CompareOp::StringEquals),
        ("NumericEquals", CompareOp::NumericEquals),
        ("NumericLessThan", CompareOp::NumericLessThan),
        ("NumericGreaterThan", CompareOp::NumericGreaterThan),
        ("NumericLessThanEquals", CompareOp::NumericLessThanEquals),
        ("NumericGreaterThanEquals", CompareOp::NumericGreaterThanEquals),
    ];
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawMachine {
    comment: Option<String>,
    start_at: String,
    states: BTreeMap<String, Value>,
}

impl StateMachine {
    pub fn from_json(text: &str) -> Result<StateMachine, DefinitionError> {
        let raw: RawMachine = serde_json::from_str(text).map_err(|e| DefinitionError {
            problems: vec![format!("/: not a state machine definition: {e}")],
        })?;
        let mut problems = Vec::new();
        let mut states = BTreeMap::new();
        for (name, value) in &raw.states {
            if let Some(state) = parse_state(name, value, &mut problems) {
                states.insert(name.clone(), state);
            }
        }
        let machine = StateMachine { comment: raw.comment, start_at: raw.start_at, states };
        machine.check_graph(&mut problems);
        if problems.is_empty() {
            Ok(machine)
        } else {
            Err(DefinitionError { problems })
        }
    }

    fn successors(state: &State) -> Vec<&str> {
        match state {
            State::Task { transition, catch, .. } => {
                let mut v: Vec<&str> = catch.iter().map(|c| c.next.as_str()).collect();
                if let Transition::Next(n) = transition {
                    v.push(n);
                }
                v
            }
            State::Pass { transition: Transition::Next(n), .. } => vec![n],
            State::Choice { choices, default } => {
                choices.iter().map(|c| c.next.as_str()).chain(default.as_deref()).collect()
            }
            _ => Vec::new(),
        }
    }

    fn check_graph(&self, problems: &mut Vec<String>) {
        if !self.states.contains_key(&self.start_at) {
            problems.push(format!("/StartAt: no state named {:?}", self.start_at));
            return;
        }
        for (name, state) in &self.states {
            for next in Self::successors(state) {
                if !self.states.contains_key(next) {
                    problems.push(format!("/States/{name}: transition to unknown state {next:?}"));
                }
            }
        }
        let mut seen = BTreeSet::new();
        let mut stack = vec![self.start_at.as_str()];
        while let Some(s) = stack.pop() {
            if seen.insert(s) {
                if let Some(state) = self.states.get(s) {
                    stack.extend(Self::successors(state));
                }
            }
        }
        for name in self.states.keys() {
            if !seen.contains(name.as_str()) {
                problems.push(format!("/States/{name}: unreachable from StartAt"));
            }
        }
    }
}

fn parse_state(name: &str, v: &Value, problems: &mut Vec<String>) -> Option<State> {
    let at = format!("/States/{name}");
    let ty = v.get("Type").and_then(Value::as_str);
    let state = match ty {
        Some("Task") => {
            let Some(resource) = v.get("Resource").and_then(Value::as_str) else {
                problems.push(format!("{at}/Resource: a Task needs a Resource"));
                return None;
            };
            State::Task {
                resource: resource.into(),
                transition: transition(&at, v, problems)?,
                catch: catchers(&at, v, problems),
                result_path: result_path(&at, v, problems),
                output_path: output_path(&at, v, problems),
            }
        }
        Some("Pass") => State::Pass {
            result: v.get("Result").cloned(),
            transition: transition(&at, v, problems)?,
            result_path: result_path(&at, v, problems),
            output_path: output_path(&at, v, problems),
        },
        Some("Choice") => {
            let rules = v.get("Choices").and_then(Value::as_array).cloned().unwrap_or_default();
            if rules.is_empty() {
                problems.push(format!("{at}/Choices: a Choice needs at least one rule"));
            }
            let mut choices = Vec::new();
            for (i, rule) in rules.iter().enumerate() {
                let rat = format!("{at}/Choices/{i}");
                let Some(next) = rule.get("Next").and_then(Value::as_str) else {
                    problems.push(format!("{rat}/Next: a Choice rule needs a Next"));
                    continue;
                };
                if let Some(condition) = condition(&rat, rule, problems) {
                    choices.push(ChoiceRule { condition, next: next.into() });
                }
            }
            State::Choice { choices, default: v.get("Default").and_then(Value::as_str).map(Into::into) }
        }
        Some("Succeed") => State::Succeed,
        Some("Fail") => State::Fail {
            error: v.get("Error").and_then(Value::as_str).unwrap_or("States.Fail").into(),
            cause: v.get("Cause").and_then(Value::as_str).unwrap_or_default().into(),
        },
        Some(other) => {
            problems.push(format!("{at}/Type: unsupported state type {other:?}"));
            return None;
        }
        None => {
            problems.push(format!("{at}/Type: missing"));
            return None;
        }
    };
    Some(state)
}

fn transition(at: &str, v: &Value, problems: &mut Vec<String>) -> Option<Transition> {
    match (v.get("Next").and_then(Value::as_str), v.get("End").and_then(Value::as_bool)) {
        (Some(n), None | Some(false)) => Some(Transition::Next(n.into())),
        (None, Some(true)) => Some(Transition::End),
        (Some(_), Some(true)) => {
            problems.push(format!("{at}: has both Next and End"));
            None
        }
        (None, _) => {
            problems.push(format!("{at}: needs Next or \"End\": true"));
            None
        }
    }
}

fn check_path(at: &str, p: &str, problems: &mut Vec<String>) {
    if path::parse(p).is_none() {
        problems.push(format!("{at}: {p:?} is not a reference path (it must start with '$')"));
    }
}

fn result_path(at: &str, v: &Value, problems: &mut Vec<String>) -> ResultPath {
    match v.get("ResultPath") {
        None => ResultPath::Path("$".into()),
        Some(Value::Null) => ResultPath::Discard,
        Some(Value::String(p)) => {
            check_path(&format!("{at}/ResultPath"), p, problems);
            ResultPath::Path(p.clone())
        }
        Some(_) => {
            problems.push(format!("{at}/ResultPath: must be a string or null"));
            ResultPath::Discard
        }
    }
}

fn output_path(at: &str, v: &Value, problems: &mut Vec<String>) -> Option<String> {
    let p = v.get("OutputPath")?.as_str()?.to_owned();
    check_path(&format!("{at}/OutputPath"), &p, problems);
    Some(p)
}

fn catchers(at: &str, v: &Value, problems: &mut Vec<String>) -> Vec<Catcher> {
    let mut out = Vec::new();
    for (i, c) in v.get("Catch").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let cat = format!("{at}/Catch/{i}");
        let errors: Vec<String> = c
            .get("ErrorEquals")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(Into::into).collect())
            .unwrap_or_default();
        if errors.is_empty() {
            problems.push(format!("{cat}/ErrorEquals: needs at least one error name"));
        }
        let Some(next) = c.get("Next").and_then(Value::as_str) else {
            problems.push(format!("{cat}/Next: a catcher needs a Next"));
            continue;
        };
        out.push(Catcher {
            error_equals: errors,
            next: next.into(),
            result_path: result_path(&cat, c, problems),
        });
    }
    out
}

fn condition(at: &str, rule: &Value, problems: &mut Vec<String>) -> Option<Condition> {
    let list = |key: &str, problems: &mut Vec<String>| -> Option<Vec<Condition>> {
        let items = rule.get(key)?.as_array()?;
        Some(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, r)| condition(&format!("{at}/{key}/{i}"), r, problems))
                .collect(),
        )
    };
    if let Some(c) = list("And", problems) {
        return Some(Condition::And(c));
    }
    if let Some(c) = list("Or", problems) {
        return Some(Condition::Or(c));
    }
    if let Some(inner) = rule.get("Not") {
        return condition(&format!("{at}/Not"), inner, problems).map(|c| Condition::Not(Box::new(c)));
    }
    let Some(variable) = rule.get("Variable").and_then(Value::as_str) else {
        problems.push(format!("{at}/Variable: a comparison needs a Variable"));
        return None;
    };
    check_path(&format!("{at}/Variable"), variable, problems);
    if let Some(expected) = rule.get("IsPresent").and_then(Value::as_bool) {
        return Some(Condition::IsPresent { variable: variable.into(), expected });
    }
    for (name, op) in CompareOp::ALL {
        if let Some(value) = rule.get(name) {
            return Some(Condition::Compare { variable: variable.into(), op, value: value.clone() });
        }
    }
    problems.push(format!("{at}: no supported comparison operator"));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_problem_with_its_pointer() {
        let err = StateMachine::from_json(
            r#"{"StartAt":"A","States":{
                "A":{"Type":"Task","Resource":"x","Next":"Nope"},
                "B":{"Type":"Pass"},
                "C":{"Type":"Choice","Choices":[]},
                "D":{"Type":"Task","Resource":"x","End":true,"ResultPath":"oops"}}}"#,
        )
        .unwrap_err();
        let all = err.problems.join("\n");
        assert!(all.contains("/States/A: transition to unknown state \"Nope\""), "{all}");
        assert!(all.contains("/States/B: needs Next"), "{all}");
        assert!(all.contains("/States/C/Choices: a Choice needs at least one rule"), "{all}");
        assert!(all.contains("/States/D/ResultPath"), "{all}");
        assert!(all.contains("/States/D: unreachable"), "{all}");
    }

    #[test]
    fn unknown_start() {
        let err = StateMachine::from_json(r#"{"StartAt":"X","States":{}}"#).unwrap_err();
        assert_eq!(err.problems, vec!["/StartAt: no state named \"X\""]);
    }
}
