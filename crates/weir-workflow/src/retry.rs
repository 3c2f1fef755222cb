//! Error handling: `Retry` (retriers with backoff) and `Catch` (fallback transitions).
//!
//! A state that reports an error first goes through its retriers in order: the first whose
//! `ErrorEquals` matches decides, and retries if it has attempts left (each retrier counts
//! its own, for the one visit of the state). When no retrier retries, the catchers are
//! scanned in order and the first match picks the next state. The predefined names follow
//! the spec: `States.ALL` matches everything, `States.TaskFailed` everything but
//! `States.Timeout`, and `States.Runtime` errors are never retried nor caught.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::path::JsonPath;

/// Predefined error names (the spec's appendix A).
pub mod errors {
    pub const ALL: &str = "States.ALL";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const PERMISSIONS: &str = "States.Permissions";
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
    pub const RUNTIME: &str = "States.Runtime";
}

/// How a retry interval is randomised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    None,
    /// A uniformly random delay between 0 and the computed interval.
    Full,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: u64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<u64>,
    pub jitter: Jitter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    /// Where the error output goes in the state's raw input; `None` is `"ResultPath": null`.
    pub result_path: Option<JsonPath>,
}

/// Whether an error named `error` matches `ErrorEquals`. `from_branch` says the error came
/// out of a Parallel branch or a Map iteration (matched by `States.BranchFailed`).
pub fn matches(error_equals: &[String], error: &str, from_branch: bool) -> bool {
    if error == errors::RUNTIME {
        return false;
    }
    let timeout = error == errors::TIMEOUT || error == errors::HEARTBEAT_TIMEOUT;
    error_equals.iter().any(|e| match e.as_str() {
        errors::ALL => true,
        errors::TASK_FAILED => !timeout,
        errors::TIMEOUT => timeout,
        errors::BRANCH_FAILED => from_branch || error == errors::BRANCH_FAILED,
        name => name == error,
    })
}

impl Retrier {
    /// The wait before retry number `attempt` (0 for the first retry) under this retrier,
    /// before jitter: `IntervalSeconds × BackoffRate^attempt`, capped by `MaxDelaySeconds`.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let secs = self.interval_seconds as f64 * self.backoff_rate.powi(attempt as i32);
        let secs = match self.max_delay_seconds {
            Some(max) => secs.min(max as f64),
            None => secs,
        };
        Duration::from_secs_f64(secs.min(366.0 * 86_400.0))
    }

    /// The wait with this retrier's jitter applied.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.base_delay(attempt);
        match self.jitter {
            Jitter::None => base,
            Jitter::Full => base.mul_f64(fastrand::f64()),
        }
    }
}

/// Retry state for one visit of a state: attempts used per retrier.
#[derive(Debug, Default)]
pub struct RetryCounters {
    used: Vec<u32>,
    pub total: u32,
}

impl RetryCounters {
    /// Decides whether to retry `error`: the wait before the retry, or `None` (the first
    /// matching retrier is out of attempts, or none matches).
    pub fn next_delay(&mut self, retriers: &[Retrier], error: &str, from_branch: bool) -> Option<Duration> {
        if self.used.len() < retriers.len() {
            self.used.resize(retriers.len(), 0);
        }
        let i = retriers.iter().position(|r| matches(&r.error_equals, error, from_branch))?;
        let attempt = self.used[i];
        if attempt >= retriers[i].max_attempts {
            return None;
        }
        self.used[i] += 1;
        self.total += 1;
        Some(retriers[i].delay(attempt))
    }
}

/// The first catcher for `error`, if any.
pub fn find_catcher<'c>(catchers: &'c [Catcher], error: &str, from_branch: bool) -> Option<&'c Catcher> {
    catchers.iter().find(|c| matches(&c.error_equals, error, from_branch))
}

type Problems = Vec<(String, String)>;

fn error_equals(at: &str, obj: &Map<String, Value>, last: bool, problems: &mut Problems) -> Vec<String> {
    let here = format!("{at}/ErrorEquals");
    let Some(list) = obj.get("ErrorEquals") else {
        problems.push((here, "required: a non-empty array of error names".into()));
        return Vec::new();
    };
    let names: Option<Vec<String>> =
        list.as_array().map(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or(None);
    let Some(names) = names.filter(|n| !n.is_empty()) else {
        problems.push((here, "must be a non-empty array of error names (strings)".into()));
        return Vec::new();
    };
    if names.iter().any(|n| n == errors::ALL) {
        if names.len() > 1 {
            problems.push((here.clone(), "States.ALL must appear alone".into()));
        }
        if !last {
            problems.push((here, "States.ALL must be in the last retrier or catcher".into()));
        }
    }
    names
}

fn positive_int(
    at: &str,
    obj: &Map<String, Value>,
    key: &str,
    zero_ok: bool,
    problems: &mut Problems,
) -> Option<u64> {
    let v = obj.get(key)?;
    match v.as_u64() {
        Some(n) if n > 0 || zero_ok => Some(n),
        _ => {
            let what = if zero_ok { "a non-negative integer" } else { "a positive integer" };
            problems.push((format!("{at}/{key}"), format!("must be {what}")));
            None
        }
    }
}

fn unknown_fields(at: &str, obj: &Map<String, Value>, allowed: &[&str], problems: &mut Problems) {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            problems.push((format!("{at}/{k}"), format!("unknown field {k:?}")));
        }
    }
}

/// Parses a state's `Retry` array (`at` is the state's pointer).
pub fn parse_retry(at: &str, value: Option<&Value>, problems: &mut Problems) -> Vec<Retrier> {
    let Some(value) = value else { return Vec::new() };
    let Some(items) = value.as_array() else {
        problems.push((format!("{at}/Retry"), "must be an array of retriers".into()));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let here = format!("{at}/Retry/{i}");
        let Some(obj) = item.as_object() else {
            problems.push((here, "a retrier must be an object".into()));
            continue;
        };
        unknown_fields(
            &here,
            obj,
            &[
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            ],
            problems,
        );
        let error_equals = error_equals(&here, obj, i + 1 == items.len(), problems);
        let interval_seconds = positive_int(&here, obj, "IntervalSeconds", false, problems).unwrap_or(1);
        let max_attempts = positive_int(&here, obj, "MaxAttempts", true, problems).unwrap_or(3);
        let max_delay_seconds = positive_int(&here, obj, "MaxDelaySeconds", false, problems);
        let backoff_rate = match obj.get("BackoffRate") {
            None => 2.0,
            Some(v) => match v.as_f64() {
                Some(r) if r >= 1.0 => r,
                _ => {
                    problems.push((format!("{here}/BackoffRate"), "must be a number ≥ 1.0".into()));
                    2.0
                }
            },
        };
        let jitter = match obj.get("JitterStrategy").map(|v| v.as_str()) {
            None | Some(Some("NONE")) => Jitter::None,
            Some(Some("FULL")) => Jitter::Full,
            Some(_) => {
                problems.push((format!("{here}/JitterStrategy"), "must be \"FULL\" or \"NONE\"".into()));
                Jitter::None
            }
        };
        out.push(Retrier {
            error_equals,
            interval_seconds,
            max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
            backoff_rate,
            max_delay_seconds,
            jitter,
        });
    }
    out
}

/// Parses a state's `Catch` array (`at` is the state's pointer).
pub fn parse_catch(at: &str, value: Option<&Value>, problems: &mut Problems) -> Vec<Catcher> {
    let Some(value) = value else { return Vec::new() };
    let Some(items) = value.as_array() else {
        problems.push((format!("{at}/Catch"), "must be an array of catchers".into()));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let here = format!("{at}/Catch/{i}");
        let Some(obj) = item.as_object() else {
            problems.push((here, "a catcher must be an object".into()));
            continue;
        };
        unknown_fields(&here, obj, &["ErrorEquals", "Next", "ResultPath", "Comment"], problems);
        let error_equals = error_equals(&here, obj, i + 1 == items.len(), problems);
        let next = match obj.get("Next") {
            Some(Value::String(n)) => n.clone(),
            Some(_) => {
                problems.push((format!("{here}/Next"), "must be a state name (a string)".into()));
                continue;
            }
            None => {
                problems.push((format!("{here}/Next"), "required: the state to go to".into()));
                continue;
            }
        };
        let result_path = match obj.get("ResultPath") {
            None => Some(JsonPath::parse("$").expect("valid")),
            Some(Value::Null) => None,
            Some(Value::String(p)) if p.starts_with("$$") => {
                problems
                    .push((format!("{here}/ResultPath"), "cannot write into the context object ($$)".into()));
                None
            }
            Some(Value::String(p)) => match JsonPath::parse_reference(p) {
                Ok(p) => Some(p),
                Err(e) => {
                    problems.push((format!("{here}/ResultPath"), e.to_string()));
                    None
                }
            },
            Some(_) => {
                problems.push((format!("{here}/ResultPath"), "must be a reference path or null".into()));
                None
            }
        };
        out.push(Catcher { error_equals, next, result_path });
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn retriers(v: Value) -> Vec<Retrier> {
        let mut problems = Vec::new();
        let r = parse_retry("", Some(&v), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        r
    }

    #[test]
    fn predefined_names() {
        let all = vec!["States.ALL".to_string()];
        let failed = vec!["States.TaskFailed".to_string()];
        let timeout = vec!["States.Timeout".to_string()];
        assert!(matches(&all, "Anything", false));
        assert!(!matches(&all, "States.Runtime", false));
        assert!(matches(&failed, "Weir.Unavailable", false));
        assert!(!matches(&failed, "States.Timeout", false));
        assert!(matches(&timeout, "States.HeartbeatTimeout", false));
        assert!(matches(&["States.BranchFailed".to_string()], "X", true));
        assert!(!matches(&["States.BranchFailed".to_string()], "X", false));
    }

    #[test]
    fn backoff_and_cap_from_the_spec() {
        let r = retriers(
            json!([{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 3, "MaxAttempts": 2, "BackoffRate": 2.0}]),
        );
        let mut c = RetryCounters::default();
        assert_eq!(c.next_delay(&r, "States.Timeout", false), Some(Duration::from_secs(3)));
        assert_eq!(c.next_delay(&r, "States.Timeout", false), Some(Duration::from_secs(6)));
        assert_eq!(c.next_delay(&r, "States.Timeout", false), None);
        let r = retriers(
            json!([{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 3, "MaxAttempts": 2, "BackoffRate": 2.0, "MaxDelaySeconds": 4}]),
        );
        let mut c = RetryCounters::default();
        assert_eq!(c.next_delay(&r, "States.Timeout", false), Some(Duration::from_secs(3)));
        assert_eq!(c.next_delay(&r, "States.Timeout", false), Some(Duration::from_secs(4)));
    }

    #[test]
    fn full_jitter_stays_under_the_interval() {
        let r = retriers(json!([{"ErrorEquals": ["E"], "IntervalSeconds": 2, "JitterStrategy": "FULL"}]));
        for attempt in 0..3 {
            assert!(r[0].delay(attempt) <= r[0].base_delay(attempt));
        }
    }

    #[test]
    fn field_problems() {
        let mut problems = Vec::new();
        parse_retry(
            "/S",
            Some(&json!([
                {"ErrorEquals": ["States.ALL"]},
                {"ErrorEquals": [], "IntervalSeconds": 0, "MaxAttempts": -1, "BackoffRate": 0.5, "JitterStrategy": "SOME", "Bogus": 1}
            ])),
            &mut problems,
        );
        let pointers: Vec<_> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/S/Retry/0/ErrorEquals",
                "/S/Retry/1/Bogus",
                "/S/Retry/1/ErrorEquals",
                "/S/Retry/1/IntervalSeconds",
                "/S/Retry/1/MaxAttempts",
                "/S/Retry/1/BackoffRate",
                "/S/Retry/1/JitterStrategy"
            ]
        );
        let mut problems = Vec::new();
        parse_catch(
            "/S",
            Some(&json!([{"ErrorEquals": ["A"]}, {"ErrorEquals": "A", "Next": 1}])),
            &mut problems,
        );
        let pointers: Vec<_> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(pointers, ["/S/Catch/0/Next", "/S/Catch/1/ErrorEquals", "/S/Catch/1/Next"]);
    }
}
