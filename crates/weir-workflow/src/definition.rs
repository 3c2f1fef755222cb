//! Parsing and checking a state machine definition.
//!
//! A definition is checked completely when it is loaded (`weir check` and the engine both
//! load it), so a running execution never meets a malformed state. Problems are reported all
//! at once, each with the JSON pointer of the place it is about (`/States/Transform/Next`), as
//! a compiler would: unknown or missing fields, wrong types, bad paths and templates, retriers
//! and catchers out of order, transitions to unknown states, unreachable states.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};
use weir_core::Problem;

use crate::choice::{parse_timestamp, Condition};
use crate::intrinsics::{looks_like_call, Call};
use crate::path::JsonPath;
use crate::payload::Template;
use crate::retry::{parse_catch, parse_retry, Catcher, Retrier};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid state machine:\n{}", weir_core::problem::lines(.problems))]
pub struct DefinitionError {
    /// Located by JSON pointer, in document order.
    pub problems: Vec<Problem>,
}

/// A checked state machine (also the shape of a Parallel branch and a Map's item processor).
#[derive(Debug, Clone, PartialEq)]
pub struct StateMachine {
    pub comment: Option<String>,
    pub start_at: String,
    pub states: BTreeMap<String, State>,
    /// The whole execution's time limit (`States.Timeout` past it).
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub kind: StateKind,
    pub comment: Option<String>,
    /// `None` is `"InputPath": null` (the effective input is `{}`); the default is `$`.
    pub input_path: Option<JsonPath>,
    /// `None` is `"OutputPath": null` (the output is `{}`); the default is `$`.
    pub output_path: Option<JsonPath>,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    /// `None` is `"ResultPath": null` (the result is discarded); the default is `$`.
    pub result_path: Option<JsonPath>,
    /// `None` for Choice, Succeed and Fail, which have no `Next`/`End`.
    pub transition: Option<Transition>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StateKind {
    Task { resource: String, timeout: Option<Seconds>, heartbeat: Option<Seconds> },
    Pass { result: Option<Value> },
    Choice { choices: Vec<ChoiceRule>, default: Option<String> },
    Wait(Wait),
    Succeed,
    Fail { error: Option<Dynamic>, cause: Option<Dynamic> },
    Parallel { branches: Vec<StateMachine> },
    Map(Box<MapState>),
}

impl StateKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            StateKind::Task { .. } => "Task",
            StateKind::Pass { .. } => "Pass",
            StateKind::Choice { .. } => "Choice",
            StateKind::Wait(_) => "Wait",
            StateKind::Succeed => "Succeed",
            StateKind::Fail { .. } => "Fail",
            StateKind::Parallel { .. } => "Parallel",
            StateKind::Map(_) => "Map",
        }
    }
}

/// A number of seconds given directly or by a reference path into the effective input.
#[derive(Debug, Clone, PartialEq)]
pub enum Seconds {
    Fixed(u64),
    Path(JsonPath),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Wait {
    Seconds(u64),
    SecondsPath(JsonPath),
    Timestamp(DateTime<FixedOffset>),
    TimestampPath(JsonPath),
}

/// A Fail state's `Error`/`Cause`: a literal, a reference path, or an intrinsic call.
#[derive(Debug, Clone, PartialEq)]
pub enum Dynamic {
    Literal(String),
    Path(JsonPath),
    Call(Call),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MapState {
    pub processor: StateMachine,
    pub items_path: JsonPath,
    pub item_selector: Option<Template>,
    pub max_concurrency: Concurrency,
    pub tolerated_failure_count: Option<u64>,
    pub tolerated_failure_percentage: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Concurrency {
    /// 0: no limit.
    Fixed(u64),
    Path(JsonPath),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Next(String),
    End,
}

/// A top-level Choice rule: a condition and the state to go to.
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceRule {
    pub condition: Condition,
    pub next: String,
}

impl StateMachine {
    pub fn from_json(text: &str) -> Result<StateMachine, DefinitionError> {
        let value: Value = serde_json::from_str(text).map_err(|e| DefinitionError {
            problems: vec![Problem::new("/", format!("not a JSON state machine definition: {e}"))],
        })?;
        StateMachine::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<StateMachine, DefinitionError> {
        let mut cx = Cx { problems: Vec::new(), names: BTreeMap::new() };
        let machine = parse_machine("", value, Level::Top, &mut cx);
        match machine {
            Some(m) if cx.problems.is_empty() => Ok(m),
            _ => {
                let mut problems: Vec<Problem> =
                    cx.problems.into_iter().map(|(at, m)| Problem::new(display_ptr(&at), m)).collect();
                problems.dedup();
                Err(DefinitionError { problems })
            }
        }
    }

    /// Every Task `Resource` with the JSON pointer of its field, nested branches included.
    pub fn task_resources(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.collect_resources("", &mut out);
        out
    }

    fn collect_resources(&self, at: &str, out: &mut Vec<(String, String)>) {
        for (name, state) in &self.states {
            let here = format!("{at}/States/{}", escape(name));
            match &state.kind {
                StateKind::Task { resource, .. } => out.push((format!("{here}/Resource"), resource.clone())),
                StateKind::Parallel { branches } => {
                    for (i, b) in branches.iter().enumerate() {
                        b.collect_resources(&format!("{here}/Branches/{i}"), out);
                    }
                }
                StateKind::Map(m) => m.processor.collect_resources(&format!("{here}/ItemProcessor"), out),
                _ => {}
            }
        }
    }

    /// Checks that every Task resource is one `known` accepts (`weir check` passes the
    /// built-in task names and the configured aliases).
    pub fn check_resources(&self, known: impl Fn(&str) -> bool) -> Result<(), DefinitionError> {
        let problems: Vec<Problem> = self
            .task_resources()
            .into_iter()
            .filter(|(_, r)| !known(r))
            .map(|(at, r)| {
                Problem::new(
                    at,
                    format!("no task for resource {r:?} (not a built-in task nor a mapped resource)"),
                )
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DefinitionError { problems })
        }
    }
}

impl State {
    /// The states this one can go to next.
    pub fn successors(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        if let Some(Transition::Next(n)) = &self.transition {
            out.push(n);
        }
        if let StateKind::Choice { choices, default } = &self.kind {
            out.extend(choices.iter().map(|c| c.next.as_str()));
            out.extend(default.as_deref());
        }
        out.extend(self.catch.iter().map(|c| c.next.as_str()));
        out
    }
}

type Problems = Vec<(String, String)>;

struct Cx {
    problems: Problems,
    /// Every state name in the definition and where it is: names are unique machine-wide.
    names: BTreeMap<String, String>,
}

impl Cx {
    fn problem(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.problems.push((at.into(), message.into()));
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Top,
    Branch,
    Processor,
}

fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn display_ptr(at: &str) -> &str {
    if at.is_empty() {
        "/"
    } else {
        at
    }
}

fn parse_machine(at: &str, value: &Value, level: Level, cx: &mut Cx) -> Option<StateMachine> {
    let Some(obj) = value.as_object() else {
        cx.problem(display_ptr(at), "a state machine must be a JSON object");
        return None;
    };
    let allowed: &[&str] = match level {
        Level::Top => &["Comment", "StartAt", "States", "Version", "TimeoutSeconds", "QueryLanguage"],
        Level::Branch => &["Comment", "StartAt", "States"],
        Level::Processor => &["Comment", "StartAt", "States", "ProcessorConfig"],
    };
    unknown_fields(at, obj, allowed, cx);
    if let Some(q) = obj.get("QueryLanguage") {
        if q.as_str() != Some("JSONPath") {
            cx.problem(format!("{at}/QueryLanguage"), "only \"JSONPath\" is supported");
        }
    }
    let comment = opt_string(at, obj, "Comment", cx);
    let timeout_seconds = positive_int(at, obj, "TimeoutSeconds", cx);
    let start_at = match obj.get("StartAt") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            cx.problem(format!("{at}/StartAt"), "must be a state name (a string)");
            None
        }
        None => {
            cx.problem(format!("{at}/StartAt"), "required: the name of the first state");
            None
        }
    };
    let Some(states_obj) = obj.get("States").and_then(Value::as_object) else {
        cx.problem(format!("{at}/States"), "required: an object of states");
        return None;
    };
    let mut states = BTreeMap::new();
    for (name, v) in states_obj {
        let here = format!("{at}/States/{}", escape(name));
        if name.chars().count() > 80 {
            cx.problem(&here, "a state name must be at most 80 characters");
        }
        if let Some(other) = cx.names.insert(name.clone(), here.clone()) {
            cx.problem(&here, format!("state name {name:?} is already used at {other}"));
        }
        if let Some(state) = parse_state(&here, v, cx) {
            states.insert(name.clone(), state);
        }
    }
    let start_at = start_at?;
    let machine = StateMachine { comment, start_at, states, timeout_seconds };
    check_graph(at, &machine, states_obj, cx);
    Some(machine)
}

fn check_graph(at: &str, machine: &StateMachine, raw: &Map<String, Value>, cx: &mut Cx) {
    if !raw.contains_key(&machine.start_at) {
        cx.problem(format!("{at}/StartAt"), format!("no state named {:?}", machine.start_at));
        return;
    }
    for (name, state) in &machine.states {
        let here = format!("{at}/States/{}", escape(name));
        let mut check = |field: String, next: &str| {
            if !raw.contains_key(next) {
                let scope = if at.is_empty() { "" } else { " in this branch" };
                cx.problem(format!("{here}/{field}"), format!("no state named {next:?}{scope}"));
            }
        };
        if let Some(Transition::Next(n)) = &state.transition {
            check("Next".into(), n);
        }
        if let StateKind::Choice { choices, default } = &state.kind {
            for (i, c) in choices.iter().enumerate() {
                check(format!("Choices/{i}/Next"), &c.next);
            }
            if let Some(d) = default {
                check("Default".into(), d);
            }
        }
        for (i, c) in state.catch.iter().enumerate() {
            check(format!("Catch/{i}/Next"), &c.next);
        }
    }
    let mut seen = BTreeSet::new();
    let mut stack = vec![machine.start_at.as_str()];
    while let Some(s) = stack.pop() {
        if seen.insert(s) {
            if let Some(state) = machine.states.get(s) {
                stack.extend(state.successors());
            }
        }
    }
    for name in machine.states.keys() {
        if !seen.contains(name.as_str()) {
            cx.problem(format!("{at}/States/{}", escape(name)), "unreachable from StartAt");
        }
    }
}

const IO: [&str; 2] = ["InputPath", "OutputPath"];

fn parse_state(at: &str, v: &Value, cx: &mut Cx) -> Option<State> {
    let Some(obj) = v.as_object() else {
        cx.problem(at, "a state must be a JSON object");
        return None;
    };
    let ty = match obj.get("Type") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => {
            cx.problem(format!("{at}/Type"), "must be a string");
            return None;
        }
        None => {
            cx.problem(
                format!("{at}/Type"),
                "required (Task, Choice, Pass, Wait, Succeed, Fail, Parallel or Map)",
            );
            return None;
        }
    };
    let mut allowed: Vec<&str> = vec!["Type", "Comment"];
    let extra: &[&str] = match ty {
        "Task" => &[
            "Resource",
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Credentials",
        ],
        "Pass" => &["Next", "End", "InputPath", "OutputPath", "Parameters", "ResultPath", "Result"],
        "Choice" => &["Choices", "Default", "InputPath", "OutputPath"],
        "Wait" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Seconds",
            "SecondsPath",
            "Timestamp",
            "TimestampPath",
        ],
        "Succeed" => &["InputPath", "OutputPath"],
        "Fail" => &["Error", "ErrorPath", "Cause", "CausePath"],
        "Parallel" => &[
            "Branches",
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
        ],
        "Map" => &[
            "ItemProcessor",
            "Iterator",
            "ItemsPath",
            "ItemSelector",
            "Parameters",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ToleratedFailureCount",
            "ToleratedFailurePercentage",
            "Label",
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
        ],
        other => {
            cx.problem(
                format!("{at}/Type"),
                format!(
                    "unknown state type {other:?} (Task, Choice, Pass, Wait, Succeed, Fail, Parallel or Map)"
                ),
            );
            return None;
        }
    };
    allowed.extend(extra);
    for k in obj.keys() {
        if allowed.contains(&k.as_str()) {
            continue;
        }
        let why = match k.as_str() {
            "Assign" | "Arguments" | "Output" | "Items" | "QueryLanguage" => {
                "is not supported: weir runs JSONPath states (no variables, no JSONata)".to_string()
            }
            "ItemReader" | "ItemBatcher" | "ResultWriter" => "is not supported (inline Map only)".to_string(),
            "Next" | "End" if matches!(ty, "Choice" | "Succeed" | "Fail") => {
                format!("a {ty} state has no {k} (it is not a state that ends or moves on by itself)")
            }
            _ => format!("is not a field of a {ty} state"),
        };
        cx.problem(format!("{at}/{k}"), format!("{k:?} {why}"));
    }

    let has = |k: &str| allowed.contains(&k);
    let comment = opt_string(at, obj, "Comment", cx);
    let input_path = if has(IO[0]) { data_path(at, obj, "InputPath", cx) } else { root() };
    let output_path = if has(IO[1]) { data_path(at, obj, "OutputPath", cx) } else { root() };
    let parameters =
        if has("Parameters") && ty != "Map" { template(at, obj, "Parameters", cx) } else { None };
    let result_selector = if has("ResultSelector") { template(at, obj, "ResultSelector", cx) } else { None };
    let result_path = if has("ResultPath") { result_path(at, obj, cx) } else { root() };
    let transition = if has("Next") { transition(at, obj, cx) } else { None };
    let (retry, catch) = if has("Retry") { retry_catch(at, obj, cx) } else { (Vec::new(), Vec::new()) };

    let kind = match ty {
        "Task" => {
            let resource = match obj.get("Resource") {
                Some(Value::String(r)) => r.clone(),
                Some(_) => {
                    cx.problem(format!("{at}/Resource"), "must be a string (a URI naming the task)");
                    String::new()
                }
                None => {
                    cx.problem(
                        format!("{at}/Resource"),
                        "required: the task to run (e.g. \"weir:transform\")",
                    );
                    String::new()
                }
            };
            let timeout = seconds(at, obj, "TimeoutSeconds", cx);
            let heartbeat = seconds(at, obj, "HeartbeatSeconds", cx);
            if let (Some(Seconds::Fixed(t)), Some(Seconds::Fixed(h))) = (&timeout, &heartbeat) {
                if h >= t {
                    cx.problem(format!("{at}/HeartbeatSeconds"), "must be smaller than TimeoutSeconds");
                }
            }
            StateKind::Task { resource, timeout, heartbeat }
        }
        "Pass" => StateKind::Pass { result: obj.get("Result").cloned() },
        "Choice" => {
            let mut choices = Vec::new();
            match obj.get("Choices") {
                Some(Value::Array(rules)) if !rules.is_empty() => {
                    for (i, rule) in rules.iter().enumerate() {
                        let here = format!("{at}/Choices/{i}");
                        let next = match rule.get("Next") {
                            Some(Value::String(n)) => Some(n.clone()),
                            _ => {
                                cx.problem(
                                    format!("{here}/Next"),
                                    "a top-level Choice rule needs a Next (a state name)",
                                );
                                None
                            }
                        };
                        let condition = Condition::parse(&here, rule, &mut cx.problems);
                        if let (Some(condition), Some(next)) = (condition, next) {
                            choices.push(ChoiceRule { condition, next });
                        }
                    }
                }
                _ => cx
                    .problem(format!("{at}/Choices"), "a Choice needs at least one rule (a non-empty array)"),
            }
            let default = match obj.get("Default") {
                None => None,
                Some(Value::String(d)) => Some(d.clone()),
                Some(_) => {
                    cx.problem(format!("{at}/Default"), "must be a state name (a string)");
                    None
                }
            };
            StateKind::Choice { choices, default }
        }
        "Wait" => {
            let given: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
                .into_iter()
                .filter(|k| obj.contains_key(*k))
                .collect();
            if given.len() != 1 {
                cx.problem(at, "a Wait needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath");
                return None;
            }
            let key = given[0];
            let v = &obj[key];
            let here = format!("{at}/{key}");
            let wait = match key {
                "Seconds" => {
                    v.as_u64().map(Wait::Seconds).ok_or("must be a non-negative integer".to_string())
                }
                "Timestamp" => v
                    .as_str()
                    .and_then(parse_timestamp)
                    .map(Wait::Timestamp)
                    .ok_or("must be an RFC 3339 timestamp such as \"2016-03-14T01:59:00Z\"".to_string()),
                "SecondsPath" => ref_path(v).map(Wait::SecondsPath),
                _ => ref_path(v).map(Wait::TimestampPath),
            };
            match wait {
                Ok(w) => StateKind::Wait(w),
                Err(m) => {
                    cx.problem(here, m);
                    return None;
                }
            }
        }
        "Succeed" => StateKind::Succeed,
        "Fail" => {
            StateKind::Fail { error: dynamic(at, obj, "Error", cx), cause: dynamic(at, obj, "Cause", cx) }
        }
        "Parallel" => {
            let mut branches = Vec::new();
            match obj.get("Branches") {
                Some(Value::Array(items)) if !items.is_empty() => {
                    for (i, b) in items.iter().enumerate() {
                        branches.extend(parse_machine(&format!("{at}/Branches/{i}"), b, Level::Branch, cx));
                    }
                }
                _ => cx.problem(format!("{at}/Branches"), "a Parallel needs a non-empty array of branches"),
            }
            StateKind::Parallel { branches }
        }
        "Map" => {
            let (key, processor) = match (obj.get("ItemProcessor"), obj.get("Iterator")) {
                (Some(p), None) => ("ItemProcessor", p),
                (None, Some(p)) => ("Iterator", p),
                (Some(_), Some(_)) => {
                    cx.problem(at, "a Map has ItemProcessor or (deprecated) Iterator, not both");
                    return None;
                }
                (None, None) => {
                    cx.problem(
                        format!("{at}/ItemProcessor"),
                        "required: the state machine run for each item",
                    );
                    return None;
                }
            };
            let processor = parse_machine(&format!("{at}/{key}"), processor, Level::Processor, cx);
            let items_path = match obj.get("ItemsPath") {
                None => root().expect("root"),
                Some(v) => ref_path(v).unwrap_or_else(|m| {
                    cx.problem(format!("{at}/ItemsPath"), m);
                    root().expect("root")
                }),
            };
            let item_selector = match (obj.contains_key("ItemSelector"), obj.contains_key("Parameters")) {
                (true, true) => {
                    cx.problem(at, "a Map has ItemSelector or (deprecated) Parameters, not both");
                    None
                }
                (true, false) => template(at, obj, "ItemSelector", cx),
                (false, true) => template(at, obj, "Parameters", cx),
                (false, false) => None,
            };
            let max_concurrency = match (obj.get("MaxConcurrency"), obj.get("MaxConcurrencyPath")) {
                (Some(_), Some(_)) => {
                    cx.problem(at, "a Map has MaxConcurrency or MaxConcurrencyPath, not both");
                    Concurrency::Fixed(0)
                }
                (Some(v), None) => Concurrency::Fixed(v.as_u64().unwrap_or_else(|| {
                    cx.problem(
                        format!("{at}/MaxConcurrency"),
                        "must be a non-negative integer (0: no limit)",
                    );
                    0
                })),
                (None, Some(v)) => ref_path(v).map(Concurrency::Path).unwrap_or_else(|m| {
                    cx.problem(format!("{at}/MaxConcurrencyPath"), m);
                    Concurrency::Fixed(0)
                }),
                (None, None) => Concurrency::Fixed(0),
            };
            let tolerated_failure_count = obj.get("ToleratedFailureCount").and_then(|v| {
                let n = v.as_u64();
                if n.is_none() {
                    cx.problem(format!("{at}/ToleratedFailureCount"), "must be a non-negative integer");
                }
                n
            });
            let tolerated_failure_percentage = obj.get("ToleratedFailurePercentage").and_then(|v| {
                let p = v.as_f64().filter(|p| (0.0..=100.0).contains(p));
                if p.is_none() {
                    cx.problem(format!("{at}/ToleratedFailurePercentage"), "must be a number from 0 to 100");
                }
                p
            });
            StateKind::Map(Box::new(MapState {
                processor: processor?,
                items_path,
                item_selector,
                max_concurrency,
                tolerated_failure_count,
                tolerated_failure_percentage,
            }))
        }
        _ => unreachable!("checked above"),
    };
    Some(State {
        kind,
        comment,
        input_path,
        output_path,
        parameters,
        result_selector,
        result_path,
        transition,
        retry,
        catch,
    })
}

fn root() -> Option<JsonPath> {
    Some(JsonPath::parse("$").expect("valid"))
}

fn ref_path(v: &Value) -> Result<JsonPath, String> {
    let s = v.as_str().ok_or("must be a reference path (a string)")?;
    JsonPath::parse_reference(s).map_err(|e| e.to_string())
}

fn unknown_fields(at: &str, obj: &Map<String, Value>, allowed: &[&str], cx: &mut Cx) {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            cx.problem(format!("{at}/{k}"), format!("unknown field {k:?}"));
        }
    }
}

fn opt_string(at: &str, obj: &Map<String, Value>, key: &str, cx: &mut Cx) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) => Some(s.clone()),
        _ => {
            cx.problem(format!("{at}/{key}"), "must be a string");
            None
        }
    }
}

fn positive_int(at: &str, obj: &Map<String, Value>, key: &str, cx: &mut Cx) -> Option<u64> {
    let v = obj.get(key)?;
    let n = v.as_u64().filter(|n| *n > 0);
    if n.is_none() {
        cx.problem(format!("{at}/{key}"), "must be a positive integer");
    }
    n
}

fn seconds(at: &str, obj: &Map<String, Value>, key: &str, cx: &mut Cx) -> Option<Seconds> {
    let path_key = format!("{key}Path");
    match (obj.get(key), obj.get(&path_key)) {
        (Some(_), Some(_)) => {
            cx.problem(at, format!("has both {key} and {path_key}"));
            None
        }
        (Some(_), None) => positive_int(at, obj, key, cx).map(Seconds::Fixed),
        (None, Some(v)) => match ref_path(v) {
            Ok(p) => Some(Seconds::Path(p)),
            Err(m) => {
                cx.problem(format!("{at}/{path_key}"), m);
                None
            }
        },
        (None, None) => None,
    }
}

fn dynamic(at: &str, obj: &Map<String, Value>, key: &str, cx: &mut Cx) -> Option<Dynamic> {
    let path_key = format!("{key}Path");
    match (obj.get(key), obj.get(&path_key)) {
        (Some(_), Some(_)) => {
            cx.problem(at, format!("has both {key} and {path_key}"));
            None
        }
        (Some(Value::String(s)), None) => Some(Dynamic::Literal(s.clone())),
        (Some(_), None) => {
            cx.problem(format!("{at}/{key}"), "must be a string");
            None
        }
        (None, Some(Value::String(s))) => {
            let r = if looks_like_call(s) {
                Call::parse(s).map(Dynamic::Call)
            } else {
                JsonPath::parse_reference(s).map(Dynamic::Path).map_err(|e| e.to_string())
            };
            r.map_err(|m| cx.problem(format!("{at}/{path_key}"), m)).ok()
        }
        (None, Some(_)) => {
            cx.problem(format!("{at}/{path_key}"), "must be a reference path or an intrinsic function");
            None
        }
        (None, None) => None,
    }
}

/// `InputPath`/`OutputPath`: absent is `$`, `null` is `None`.
fn data_path(at: &str, obj: &Map<String, Value>, key: &str, cx: &mut Cx) -> Option<JsonPath> {
    match obj.get(key) {
        None => root(),
        Some(Value::Null) => None,
        Some(Value::String(p)) => match JsonPath::parse(p) {
            Ok(p) => Some(p),
            Err(e) => {
                cx.problem(format!("{at}/{key}"), e.to_string());
                root()
            }
        },
        Some(_) => {
            cx.problem(format!("{at}/{key}"), "must be a path (a string starting with '$') or null");
            root()
        }
    }
}

fn result_path(at: &str, obj: &Map<String, Value>, cx: &mut Cx) -> Option<JsonPath> {
    let here = format!("{at}/ResultPath");
    match obj.get("ResultPath") {
        None => root(),
        Some(Value::Null) => None,
        Some(Value::String(p)) if p.starts_with("$$") => {
            cx.problem(here, "cannot write into the context object ($$)");
            root()
        }
        Some(Value::String(p)) => JsonPath::parse_reference(p).map(Some).unwrap_or_else(|e| {
            cx.problem(here, e.to_string());
            root()
        }),
        Some(_) => {
            cx.problem(here, "must be a reference path (a string starting with '$') or null");
            root()
        }
    }
}

fn template(at: &str, obj: &Map<String, Value>, key: &str, cx: &mut Cx) -> Option<Template> {
    let v = obj.get(key)?;
    if !v.is_object() {
        cx.problem(format!("{at}/{key}"), "a payload template must be a JSON object");
        return None;
    }
    match Template::compile(v) {
        Ok(t) => Some(t),
        Err(problems) => {
            for (p, m) in problems {
                cx.problem(format!("{at}/{key}{p}"), m);
            }
            None
        }
    }
}

fn transition(at: &str, obj: &Map<String, Value>, cx: &mut Cx) -> Option<Transition> {
    let next = match obj.get("Next") {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => {
            cx.problem(format!("{at}/Next"), "must be a state name (a string)");
            return None;
        }
    };
    let end = match obj.get("End") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            cx.problem(format!("{at}/End"), "must be true or false");
            return None;
        }
    };
    match (next, end) {
        (Some(n), false) => Some(Transition::Next(n)),
        (None, true) => Some(Transition::End),
        (Some(_), true) => {
            cx.problem(at, "has both Next and \"End\": true");
            None
        }
        (None, false) => {
            cx.problem(at, "needs Next or \"End\": true");
            None
        }
    }
}

fn retry_catch(at: &str, obj: &Map<String, Value>, cx: &mut Cx) -> (Vec<Retrier>, Vec<Catcher>) {
    (parse_retry(at, obj.get("Retry"), &mut cx.problems), parse_catch(at, obj.get("Catch"), &mut cx.problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> String {
        StateMachine::from_json(text)
            .unwrap_err()
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn reports_every_problem_with_its_pointer() {
        let all = problems(
            r#"{"StartAt":"A","States":{
                "A":{"Type":"Task","Resource":"x","Next":"Nope"},
                "B":{"Type":"Pass"},
                "C":{"Type":"Choice","Choices":[]},
                "D":{"Type":"Task","Resource":"x","End":true,"ResultPath":"oops"}}}"#,
        );
        assert!(all.contains("/States/A/Next: no state named \"Nope\""), "{all}");
        assert!(all.contains("/States/B: needs Next"), "{all}");
        assert!(all.contains("/States/C/Choices: a Choice needs at least one rule"), "{all}");
        assert!(all.contains("/States/D/ResultPath"), "{all}");
        assert!(all.contains("/States/D: unreachable"), "{all}");
    }

    #[test]
    fn unknown_start() {
        let err = StateMachine::from_json(r#"{"StartAt":"X","States":{}}"#).unwrap_err();
        assert_eq!(err.problems, vec![Problem::new("/StartAt", "no state named \"X\"")]);
    }

    #[test]
    fn field_types_unknown_fields_and_nested_machines() {
        let all = problems(
            r#"{"StartAt":"P","Bogus":1,"States":{
                "P":{"Type":"Parallel","Next":"M","Branches":[{"StartAt":"B1","States":{
                    "B1":{"Type":"Task","Resource":"x","Next":"Outside","TimeoutSeconds":5,"HeartbeatSeconds":5}}}]},
                "M":{"Type":"Map","ItemsPath":"$.a[*]","Iterator":{"StartAt":"I","States":{"I":{"Type":"Pass","End":true}}},
                     "Retry":[{"ErrorEquals":["States.ALL"]},{"ErrorEquals":["X"]}],
                     "Catch":[{"ErrorEquals":["X"],"Next":"F","ResultPath":"$$.x"}],"Next":"W"},
                "W":{"Type":"Wait","Seconds":1,"Timestamp":"2016-03-14T01:59:00Z","Next":"F"},
                "F":{"Type":"Fail","Error":"E","ErrorPath":"$.e","Resulting":1,"Next":"P"},
                "S":{"Type":"Succeed","Parameters":{"a.$":"States.Nope()"}},
                "I":{"Type":"Pass","End":true}}}"#,
        );
        for expected in [
            "/Bogus: unknown field",
            "/States/P/Branches/0/States/B1/Next: no state named \"Outside\" in this branch",
            "/States/P/Branches/0/States/B1/HeartbeatSeconds: must be smaller than TimeoutSeconds",
            "/States/M/ItemsPath: \"$.a[*]\" is not a valid path",
            "/States/M/Retry/0/ErrorEquals: States.ALL must be in the last retrier",
            "/States/M/Catch/0/ResultPath: cannot write into the context object",
            "/States/W: a Wait needs exactly one of",
            "/States/F: has both Error and ErrorPath",
            "/States/F/Resulting: \"Resulting\" is not a field of a Fail state",
            "/States/F/Next: \"Next\" a Fail state has no Next",
            "/States/S/Parameters: \"Parameters\" is not a field of a Succeed state",
            "/States/S: unreachable",
            "/States/M/Iterator/States/I: state name \"I\" is already used at /States/I",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in\n{all}");
        }
    }

    #[test]
    fn templates_and_choice_rules_are_checked_at_load() {
        let all = problems(
            r#"{"StartAt":"T","States":{
                "T":{"Type":"Task","Resource":"x","Parameters":{"n":{"a.$":"States.Format('{}')", "b.$":"$.["}},
                     "ResultSelector":[1],"Next":"C"},
                "C":{"Type":"Choice","Choices":[{"Variable":"$.x","StringEquals":1,"Next":"T"},{"Variable":"$.x","IsNull":true}],"End":true}}}"#,
        );
        for expected in [
            "/States/T/Parameters/n/b.$",
            "/States/T/ResultSelector: a payload template must be a JSON object",
            "/States/C/Choices/0/StringEquals: StringEquals takes a string",
            "/States/C/Choices/1/Next: a top-level Choice rule needs a Next",
            "/States/C/End: \"End\" a Choice state has no End",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in\n{all}");
        }
    }

    #[test]
    fn lists_task_resources_everywhere() {
        let m = StateMachine::from_json(
            r#"{"StartAt":"P","States":{"P":{"Type":"Parallel","End":true,"Branches":[
                {"StartAt":"A","States":{"A":{"Type":"Task","Resource":"weir:a","End":true}}}]}}}"#,
        )
        .unwrap();
        assert_eq!(
            m.task_resources(),
            vec![("/States/P/Branches/0/States/A/Resource".into(), "weir:a".into())]
        );
        let err = m.check_resources(|r| r == "weir:b").unwrap_err();
        assert!(err.problems[0].to_string().starts_with("/States/P/Branches/0/States/A/Resource: no task"));
    }
}
