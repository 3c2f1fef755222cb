//! Payload templates: the `Parameters`, `ResultSelector` and `ItemSelector` fields.
//!
//! A template is JSON copied as is, except that a field whose name ends in `.$` is renamed
//! without the suffix and its value replaced: a path (`$.x`) by what it selects in the
//! template's input, a context path (`$$.Execution.Id`) by what it selects in the context
//! object, anything else by the result of the intrinsic function it calls. Templates are
//! compiled at load, so their paths and calls are checked once.

use serde_json::{Map, Value};

use crate::intrinsics::Call;
use crate::path::JsonPath;

/// A compiled payload template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Node);

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Literal(Value),
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    Path(JsonPath),
    Call(Call),
}

/// Why a template could not be applied; the error name is the ASL one to raise.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    /// `States.ParameterPathFailure`: a path selected nothing.
    #[error("{field}: path {path} selected nothing")]
    Path { field: String, path: String },
    /// `States.IntrinsicFailure`: a function failed.
    #[error("{field}: {problem}")]
    Intrinsic { field: String, problem: String },
}

impl TemplateError {
    pub fn error_name(&self) -> &'static str {
        match self {
            TemplateError::Path { .. } => "States.ParameterPathFailure",
            TemplateError::Intrinsic { .. } => "States.IntrinsicFailure",
        }
    }
}

impl Template {
    /// Compiles a template; problems are `(relative JSON pointer, message)`.
    pub fn compile(value: &Value) -> Result<Template, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let node = compile(value, "", &mut problems);
        if problems.is_empty() {
            Ok(Template(node))
        } else {
            Err(problems)
        }
    }

    /// Builds the payload from `input` and the context object.
    pub fn apply(&self, input: &Value, context: &Value) -> Result<Value, TemplateError> {
        apply(&self.0, input, context, "")
    }
}

/// Applies a template given as JSON (compiling it first): a convenience for callers and tests.
pub fn apply_template(template: &Value, input: &Value, context: &Value) -> Result<Value, String> {
    let t = Template::compile(template)
        .map_err(|p| p.into_iter().map(|(at, m)| format!("{at}: {m}")).collect::<Vec<_>>().join("; "))?;
    t.apply(input, context).map_err(|e| format!("{}: {e}", e.error_name()))
}

fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn compile(value: &Value, at: &str, problems: &mut Vec<(String, String)>) -> Node {
    match value {
        Value::Object(map) => {
            let mut fields = Vec::with_capacity(map.len());
            let mut names = std::collections::BTreeSet::new();
            for (key, v) in map {
                let here = format!("{at}/{}", escape_pointer(key));
                let (name, node) = match key.strip_suffix(".$") {
                    Some(name) => {
                        match v {
                            Value::String(text) => (name, compile_dynamic(text, &here, problems)),
                            _ => {
                                problems.push((here, "a field ending in \".$\" needs a path or an intrinsic function (a string)".into()));
                                continue;
                            }
                        }
                    }
                    None => (key.as_str(), compile(v, &here, problems)),
                };
                if !names.insert(name.to_owned()) {
                    problems.push((here, format!("field {name:?} appears twice once \".$\" is stripped")));
                }
                fields.push((name.to_owned(), node));
            }
            Node::Object(fields)
        }
        Value::Array(items) => Node::Array(
            items.iter().enumerate().map(|(i, v)| compile(v, &format!("{at}/{i}"), problems)).collect(),
        ),
        other => Node::Literal(other.clone()),
    }
}

fn compile_dynamic(text: &str, at: &str, problems: &mut Vec<(String, String)>) -> Node {
    let result = if text.starts_with('$') {
        JsonPath::parse(text).map(Node::Path).map_err(|e| e.to_string())
    } else {
        Call::parse(text).map(Node::Call)
    };
    result.unwrap_or_else(|e| {
        problems.push((at.to_owned(), e));
        Node::Literal(Value::Null)
    })
}

fn apply(node: &Node, input: &Value, context: &Value, at: &str) -> Result<Value, TemplateError> {
    Ok(match node {
        Node::Literal(v) => v.clone(),
        Node::Object(fields) => {
            let mut out = Map::new();
            for (name, n) in fields {
                out.insert(name.clone(), apply(n, input, context, &format!("{at}/{name}"))?);
            }
            Value::Object(out)
        }
        Node::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, n)| apply(n, input, context, &format!("{at}/{i}")))
                .collect::<Result<_, _>>()?,
        ),
        Node::Path(p) => p
            .resolve_in(input, context)
            .ok_or_else(|| TemplateError::Path { field: at.to_owned(), path: p.to_string() })?,
        Node::Call(c) => c
            .eval(input, context)
            .map_err(|problem| TemplateError::Intrinsic { field: at.to_owned(), problem })?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nested_fields_arrays_and_context() {
        let t = json!({"a.$": "$.x", "lit": {"b.$": "$$.Execution.Id", "c": [1, {"d.$": "$.y[0]"}]}});
        let out =
            apply_template(&t, &json!({"x": 1, "y": [9]}), &json!({"Execution": {"Id": "e1"}})).unwrap();
        assert_eq!(out, json!({"a": 1, "lit": {"b": "e1", "c": [1, {"d": 9}]}}));
    }

    #[test]
    fn failures_name_the_field() {
        let t = Template::compile(&json!({"p": {"a.$": "$.missing"}})).unwrap();
        let e = t.apply(&json!({}), &json!({})).unwrap_err();
        assert_eq!(e.error_name(), "States.ParameterPathFailure");
        assert_eq!(e.to_string(), "/p/a: path $.missing selected nothing");
        let problems =
            Template::compile(&json!({"a.$": "nope", "b.$": 3, "c.$": "$.x", "c": 1})).unwrap_err();
        let pointers: Vec<_> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(pointers, ["/a.$", "/b.$", "/c.$"]);
    }
}
