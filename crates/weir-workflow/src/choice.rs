//! Choice rules: the conditions a `Choice` state tests, parsed and evaluated.
//!
//! Every comparison operator of the spec is here (`String…`, `Numeric…`, `Boolean…`,
//! `Timestamp…` with `Equals`/`LessThan`/`GreaterThan`/`…Equals`, each also as `…Path`
//! comparing with another value of the input), the type tests (`IsPresent`, `IsNull`,
//! `IsNumeric`, `IsString`, `IsBoolean`, `IsTimestamp`), `StringMatches` with `*` wildcards,
//! and `And`/`Or`/`Not`. Values of the wrong type make a comparison false; a `Variable` that
//! selects nothing is a `States.Runtime` error, except for `IsPresent`, as the spec says.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

use crate::path::JsonPath;

/// A boolean or data-test expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Test { variable: JsonPath, test: Test },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `<Kind><Op>`: compare with a literal.
    Compare {
        kind: Kind,
        op: Op,
        value: Value,
    },
    /// `<Kind><Op>Path`: compare with the value another path selects.
    ComparePath {
        kind: Kind,
        op: Op,
        path: JsonPath,
    },
    StringMatches(Pattern),
    IsPresent(bool),
    IsNull(bool),
    IsNumeric(bool),
    IsString(bool),
    IsBoolean(bool),
    IsTimestamp(bool),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    String,
    Numeric,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Equals,
    LessThan,
    GreaterThan,
    LessThanEquals,
    GreaterThanEquals,
}

const KINDS: [(&str, Kind); 4] = [
    ("String", Kind::String),
    ("Numeric", Kind::Numeric),
    ("Boolean", Kind::Boolean),
    ("Timestamp", Kind::Timestamp),
];
const OPS: [(&str, Op); 5] = [
    ("Equals", Op::Equals),
    ("LessThanEquals", Op::LessThanEquals),
    ("GreaterThanEquals", Op::GreaterThanEquals),
    ("LessThan", Op::LessThan),
    ("GreaterThan", Op::GreaterThan),
];
const TYPE_TESTS: [&str; 6] = ["IsPresent", "IsNull", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"];

/// A `StringMatches` pattern: literal pieces separated by `*` wildcards.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    /// `parts.len() - 1` wildcards sit between the parts.
    parts: Vec<String>,
}

impl Pattern {
    /// Parses a pattern: `*` matches any run of characters, `\*` and `\\` are literal; any other
    /// backslash is an error (the spec's "open escape").
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let mut parts = vec![String::new()];
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '*' => parts.push(String::new()),
                '\\' => match chars.next() {
                    Some(e @ ('*' | '\\')) => parts.last_mut().expect("never empty").push(e),
                    Some(e) => return Err(format!("'\\{e}' is not an escape (only \\* and \\\\)")),
                    None => return Err("the pattern ends with an open escape '\\'".into()),
                },
                c => parts.last_mut().expect("never empty").push(c),
            }
        }
        Ok(Pattern { parts })
    }

    pub fn matches(&self, s: &str) -> bool {
        let (first, rest) = self.parts.split_first().expect("never empty");
        let Some(mut s) = s.strip_prefix(first.as_str()) else { return false };
        let Some((last, middle)) = rest.split_last() else { return s.is_empty() };
        for part in middle {
            match s.find(part.as_str()) {
                Some(i) => s = &s[i + part.len()..],
                None => return false,
            }
        }
        s.len() >= last.len() && s.ends_with(last.as_str())
    }
}

/// Parses an RFC 3339 timestamp as ASL wants it: an uppercase `T`, and `Z` or an offset.
pub fn parse_timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    if s.len() < 11 || s.as_bytes()[10] != b'T' || s.ends_with('z') {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}

/// A runtime failure of a rule: `States.Runtime`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ChoiceError(pub String);

impl Condition {
    /// Parses a rule object (without its `Next`); problems are `(pointer, message)`.
    pub fn parse(at: &str, rule: &Value, problems: &mut Vec<(String, String)>) -> Option<Condition> {
        let Some(obj) = rule.as_object() else {
            problems.push((at.to_owned(), "a Choice rule must be an object".into()));
            return None;
        };
        for key in ["And", "Or"] {
            if let Some(list) = obj.get(key) {
                extra_fields(at, obj, &[key, "Next", "Comment"], problems);
                let Some(items) = list.as_array().filter(|a| !a.is_empty()) else {
                    problems.push((format!("{at}/{key}"), "must be a non-empty array of rules".into()));
                    return None;
                };
                let mut conds = Vec::new();
                for (i, r) in items.iter().enumerate() {
                    let here = format!("{at}/{key}/{i}");
                    no_next(&here, r, problems);
                    conds.extend(Condition::parse(&here, r, problems));
                }
                return Some(if key == "And" { Condition::And(conds) } else { Condition::Or(conds) });
            }
        }
        if let Some(inner) = obj.get("Not") {
            extra_fields(at, obj, &["Not", "Next", "Comment"], problems);
            let here = format!("{at}/Not");
            no_next(&here, inner, problems);
            return Condition::parse(&here, inner, problems).map(|c| Condition::Not(Box::new(c)));
        }
        let variable = match obj.get("Variable") {
            Some(Value::String(v)) => match JsonPath::parse(v) {
                Ok(p) => Some(p),
                Err(e) => {
                    problems.push((format!("{at}/Variable"), e.to_string()));
                    None
                }
            },
            Some(_) => {
                problems.push((format!("{at}/Variable"), "must be a path (a string)".into()));
                None
            }
            None => {
                problems.push((
                    at.to_owned(),
                    "a rule needs And, Or, Not, or a Variable and a comparison".into(),
                ));
                None
            }
        };
        let operators: Vec<&String> =
            obj.keys().filter(|k| !matches!(k.as_str(), "Variable" | "Next" | "Comment")).collect();
        let [op_name] = operators.as_slice() else {
            if operators.is_empty() {
                problems.push((at.to_owned(), "a data-test rule needs a comparison operator".into()));
            } else {
                problems.push((
                    at.to_owned(),
                    format!("a rule takes exactly one comparison operator, found {operators:?}"),
                ));
            }
            return None;
        };
        let here = format!("{at}/{op_name}");
        let value = &obj[op_name.as_str()];
        let test = parse_test(op_name, value).map_err(|m| problems.push((here, m))).ok()?;
        Some(Condition::Test { variable: variable?, test })
    }

    /// Evaluates the rule against the state's effective input (and the context object, for
    /// `$$` paths).
    pub fn evaluate(&self, input: &Value, context: &Value) -> Result<bool, ChoiceError> {
        match self {
            Condition::And(all) => {
                for c in all {
                    if !c.evaluate(input, context)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Condition::Or(any) => {
                for c in any {
                    if c.evaluate(input, context)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Condition::Not(c) => Ok(!c.evaluate(input, context)?),
            Condition::Test { variable, test } => {
                let actual = variable.resolve_in(input, context);
                if let Test::IsPresent(expected) = test {
                    return Ok(actual.is_some() == *expected);
                }
                let Some(actual) = actual else {
                    return Err(ChoiceError(format!(
                        "Invalid path {variable}: the Choice rule's Variable selects nothing in the input"
                    )));
                };
                Ok(match test {
                    Test::IsPresent(_) => unreachable!("handled above"),
                    Test::IsNull(e) => actual.is_null() == *e,
                    Test::IsNumeric(e) => actual.is_number() == *e,
                    Test::IsString(e) => actual.is_string() == *e,
                    Test::IsBoolean(e) => actual.is_boolean() == *e,
                    Test::IsTimestamp(e) => actual.as_str().and_then(parse_timestamp).is_some() == *e,
                    Test::StringMatches(p) => actual.as_str().is_some_and(|s| p.matches(s)),
                    Test::Compare { kind, op, value } => compare(*kind, *op, &actual, value),
                    Test::ComparePath { kind, op, path } => {
                        let other = path.resolve_in(input, context).ok_or_else(|| {
                            ChoiceError(format!(
                                "Invalid path {path}: the Choice rule's path selects nothing"
                            ))
                        })?;
                        compare(*kind, *op, &actual, &other)
                    }
                })
            }
        }
    }
}

fn extra_fields(at: &str, obj: &Map<String, Value>, allowed: &[&str], problems: &mut Vec<(String, String)>) {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            problems.push((format!("{at}/{k}"), format!("unexpected field {k:?} in a boolean rule")));
        }
    }
}

fn no_next(at: &str, rule: &Value, problems: &mut Vec<(String, String)>) {
    if rule.get("Next").is_some() {
        problems.push((format!("{at}/Next"), "only top-level Choice rules have a Next".into()));
    }
}

fn parse_test(name: &str, value: &Value) -> Result<Test, String> {
    if TYPE_TESTS.contains(&name) {
        let b = value.as_bool().ok_or_else(|| format!("{name} takes true or false"))?;
        return Ok(match name {
            "IsPresent" => Test::IsPresent(b),
            "IsNull" => Test::IsNull(b),
            "IsNumeric" => Test::IsNumeric(b),
            "IsString" => Test::IsString(b),
            "IsBoolean" => Test::IsBoolean(b),
            _ => Test::IsTimestamp(b),
        });
    }
    if name == "StringMatches" {
        let s = value.as_str().ok_or("StringMatches takes a string")?;
        return Pattern::parse(s).map(Test::StringMatches);
    }
    for (kind_name, kind) in KINDS {
        let Some(rest) = name.strip_prefix(kind_name) else { continue };
        let (op_name, is_path) = match rest.strip_suffix("Path") {
            Some(op) => (op, true),
            None => (rest, false),
        };
        let Some(&(_, op)) = OPS.iter().find(|(n, _)| *n == op_name) else { break };
        if kind == Kind::Boolean && op != Op::Equals {
            break;
        }
        if is_path {
            let p = value.as_str().ok_or_else(|| format!("{name} takes a path (a string)"))?;
            return JsonPath::parse(p)
                .map(|path| Test::ComparePath { kind, op, path })
                .map_err(|e| e.to_string());
        }
        let ok = match kind {
            Kind::String => value.is_string(),
            Kind::Numeric => value.is_number(),
            Kind::Boolean => value.is_boolean(),
            Kind::Timestamp => value.as_str().and_then(parse_timestamp).is_some(),
        };
        if !ok {
            let want = match kind {
                Kind::String => "a string",
                Kind::Numeric => "a number",
                Kind::Boolean => "true or false",
                Kind::Timestamp => "an RFC 3339 timestamp such as \"2016-03-14T01:59:00Z\"",
            };
            return Err(format!("{name} takes {want}"));
        }
        return Ok(Test::Compare { kind, op, value: value.clone() });
    }
    Err(format!("unknown comparison operator {name:?}"))
}

fn compare(kind: Kind, op: Op, a: &Value, b: &Value) -> bool {
    let ord = match kind {
        Kind::String => match (a, b) {
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            _ => None,
        },
        Kind::Numeric => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) if a.is_finite() && b.is_finite() => a.partial_cmp(&b),
            _ => None,
        },
        Kind::Boolean => match (a, b) {
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        },
        Kind::Timestamp => {
            match (a.as_str().and_then(parse_timestamp), b.as_str().and_then(parse_timestamp)) {
                (Some(a), Some(b)) => Some(a.cmp(&b)),
                _ => None,
            }
        }
    };
    let Some(ord) = ord else { return false };
    match op {
        Op::Equals => ord == Ordering::Equal,
        Op::LessThan => ord == Ordering::Less,
        Op::GreaterThan => ord == Ordering::Greater,
        Op::LessThanEquals => ord != Ordering::Greater,
        Op::GreaterThanEquals => ord != Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(v: Value) -> Condition {
        let mut problems = Vec::new();
        let c = Condition::parse("", &v, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        c.unwrap()
    }

    fn eval(v: Value, input: Value) -> bool {
        rule(v).evaluate(&input, &json!({})).unwrap()
    }

    #[test]
    fn string_matches_from_the_spec() {
        let m = |p: &str, s: &str| Pattern::parse(p).unwrap().matches(s);
        assert!(m("foo*.log", "foo23.log"));
        assert!(m("*.log", "zebra.log"));
        assert!(m("foo*.*", "foobar.zebra"));
        assert!(!m("foo*.log", "foo23.txt"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("a\\\\b", "a\\b"));
        assert!(m("*", ""));
        assert!(m("a*a", "aa"));
        assert!(!m("a*a", "a"));
        assert!(Pattern::parse("a\\b").is_err());
        assert!(Pattern::parse("a\\").is_err());
    }

    #[test]
    fn every_operator() {
        let input = json!({"s": "b", "n": 5, "t": true, "ts": "2016-03-14T01:59:00Z", "z": null,
                           "other_s": "c", "other_n": 5, "other_ts": "2016-03-14T02:59:00+01:00"});
        for (op, value, expected) in [
            ("StringEquals", json!("b"), true),
            ("StringLessThan", json!("c"), true),
            ("StringGreaterThan", json!("a"), true),
            ("StringLessThanEquals", json!("b"), true),
            ("StringGreaterThanEquals", json!("c"), false),
        ] {
            assert_eq!(eval(json!({"Variable": "$.s", op: value}), input.clone()), expected, "{op}");
        }
        for (op, value, expected) in [
            ("NumericEquals", json!(5.0), true),
            ("NumericLessThan", json!(5), false),
            ("NumericGreaterThan", json!(4.5), true),
            ("NumericLessThanEquals", json!(5), true),
            ("NumericGreaterThanEquals", json!(6), false),
        ] {
            assert_eq!(eval(json!({"Variable": "$.n", op: value}), input.clone()), expected, "{op}");
        }
        for (op, value, expected) in [
            ("TimestampEquals", "2016-03-14T01:59:00Z", true),
            ("TimestampLessThan", "2016-03-14T02:00:00Z", true),
            ("TimestampGreaterThan", "2016-03-14T02:00:00Z", false),
            ("TimestampLessThanEquals", "2016-03-14T01:59:00Z", true),
            ("TimestampGreaterThanEquals", "2017-01-01T00:00:00Z", false),
        ] {
            assert_eq!(eval(json!({"Variable": "$.ts", op: value}), input.clone()), expected, "{op}");
        }
        assert!(eval(json!({"Variable": "$.t", "BooleanEquals": true}), input.clone()));
        assert!(eval(json!({"Variable": "$.t", "BooleanEqualsPath": "$.t"}), input.clone()));
        assert!(eval(json!({"Variable": "$.s", "StringLessThanPath": "$.other_s"}), input.clone()));
        assert!(eval(json!({"Variable": "$.s", "StringEqualsPath": "$.s"}), input.clone()));
        assert!(eval(json!({"Variable": "$.n", "NumericEqualsPath": "$.other_n"}), input.clone()));
        assert!(eval(json!({"Variable": "$.n", "NumericGreaterThanEqualsPath": "$.other_n"}), input.clone()));
        assert!(!eval(json!({"Variable": "$.n", "NumericLessThanPath": "$.other_n"}), input.clone()));
        assert!(!eval(json!({"Variable": "$.n", "NumericGreaterThanPath": "$.other_n"}), input.clone()));
        assert!(eval(json!({"Variable": "$.n", "NumericLessThanEqualsPath": "$.other_n"}), input.clone()));
        assert!(eval(json!({"Variable": "$.ts", "TimestampEqualsPath": "$.other_ts"}), input.clone()));
        assert!(!eval(json!({"Variable": "$.ts", "TimestampLessThanPath": "$.other_ts"}), input.clone()));
        assert!(!eval(json!({"Variable": "$.ts", "TimestampGreaterThanPath": "$.other_ts"}), input.clone()));
        assert!(eval(
            json!({"Variable": "$.ts", "TimestampLessThanEqualsPath": "$.other_ts"}),
            input.clone()
        ));
        assert!(eval(
            json!({"Variable": "$.ts", "TimestampGreaterThanEqualsPath": "$.other_ts"}),
            input.clone()
        ));
        assert!(eval(json!({"Variable": "$.s", "StringGreaterThanPath": "$.ts"}), input.clone()));
        assert!(eval(json!({"Variable": "$.s", "StringGreaterThanEqualsPath": "$.s"}), input.clone()));
        assert!(eval(json!({"Variable": "$.s", "StringLessThanEqualsPath": "$.s"}), input.clone()));
        // Wrong types compare false.
        assert!(!eval(json!({"Variable": "$.s", "NumericEquals": 1}), input.clone()));
        assert!(!eval(json!({"Variable": "$.n", "StringEquals": "5"}), input.clone()));
        assert!(!eval(json!({"Variable": "$.s", "TimestampEquals": "2016-03-14T01:59:00Z"}), input.clone()));
        // Type tests.
        assert!(eval(json!({"Variable": "$.z", "IsNull": true}), input.clone()));
        assert!(eval(json!({"Variable": "$.n", "IsNumeric": true}), input.clone()));
        assert!(eval(json!({"Variable": "$.s", "IsString": true}), input.clone()));
        assert!(eval(json!({"Variable": "$.t", "IsBoolean": true}), input.clone()));
        assert!(eval(json!({"Variable": "$.ts", "IsTimestamp": true}), input.clone()));
        assert!(eval(json!({"Variable": "$.s", "IsTimestamp": false}), input.clone()));
        assert!(eval(json!({"Variable": "$.nope", "IsPresent": false}), input.clone()));
        assert!(eval(json!({"Variable": "$.s", "StringMatches": "*"}), input.clone()));
    }

    #[test]
    fn missing_variables_are_runtime_errors_except_for_is_present() {
        let c = rule(json!({"Variable": "$.nope", "StringEquals": "x"}));
        assert!(c.evaluate(&json!({}), &json!({})).is_err());
        let c = rule(
            json!({"And": [{"Variable": "$.v", "IsPresent": true}, {"Variable": "$.v", "NumericEquals": 1}]}),
        );
        assert_eq!(c.evaluate(&json!({}), &json!({})), Ok(false));
    }

    #[test]
    fn bad_rules_are_reported_where_they_are() {
        let mut problems = Vec::new();
        for (i, r) in [
            json!({"Variable": "$.a"}),
            json!({"Variable": "$.a", "StringEquals": 1}),
            json!({"Variable": "$.a", "NumericEquals": 1, "IsNull": true}),
            json!({"Variable": "a", "IsNull": true}),
            json!({"And": [{"Variable": "$.a", "IsNull": true, "Next": "X"}]}),
            json!({"Or": []}),
            json!({"Variable": "$.a", "BooleanLessThan": true}),
            json!({"Variable": "$.a", "TimestampEquals": "2016-03-14 01:59:00Z"}),
            json!({"Variable": "$.a", "StringMatches": "a\\b"}),
        ]
        .iter()
        .enumerate()
        {
            let before = problems.len();
            Condition::parse(&format!("/{i}"), r, &mut problems);
            assert!(problems.len() > before, "rule {i} accepted");
        }
        assert_eq!(problems[0].0, "/0");
        assert_eq!(problems[1].0, "/1/StringEquals");
        assert_eq!(problems[3].0, "/3/Variable");
        assert_eq!(problems[4].0, "/4/And/0/Next");
    }
}
