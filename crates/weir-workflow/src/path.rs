//! The JSONPath subset ASL reference paths use: `$`, `$.a.b`, `$.a[0]`.

use serde_json::{Map, Value};

/// One step of a reference path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Field(String),
    Index(usize),
}

/// Parses a reference path; `None` if it is not one.
pub(crate) fn parse(path: &str) -> Option<Vec<Step>> {
    let rest = path.strip_prefix('$')?;
    let mut steps = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut name = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '.' || c == '[' {
                        break;
                    }
                    name.push(c);
                    chars.next();
                }
                if name.is_empty() {
                    return None;
                }
                steps.push(Step::Field(name));
            }
            '[' => {
                let mut digits = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    digits.push(c);
                }
                steps.push(Step::Index(digits.parse().ok()?));
            }
            _ => return None,
        }
    }
    Some(steps)
}

pub(crate) fn get<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = value;
    for step in parse(path)? {
        cur = match step {
            Step::Field(f) => cur.get(&f)?,
            Step::Index(i) => cur.get(i)?,
        };
    }
    Some(cur)
}

/// Puts `result` into `input` at `path` (ASL `ResultPath`), creating objects on the way.
pub(crate) fn set(mut input: Value, path: &str, result: Value) -> Result<Value, String> {
    let steps = parse(path).ok_or_else(|| format!("invalid ResultPath {path:?}"))?;
    if steps.is_empty() {
        return Ok(result);
    }
    let mut cur = &mut input;
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        match step {
            Step::Field(f) => {
                if !cur.is_object() {
                    *cur = Value::Object(Map::new());
                }
                let obj = cur.as_object_mut().expect("made an object");
                if last {
                    obj.insert(f.clone(), result);
                    return Ok(input);
                }
                cur = obj.entry(f.clone()).or_insert(Value::Object(Map::new()));
            }
            Step::Index(_) => return Err(format!("ResultPath {path:?}: array indexes are not supported")),
        }
    }
    unreachable!("the loop returns at the last step")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn gets_and_sets() {
        let v = json!({"a": {"b": [1, {"c": true}]}});
        assert_eq!(get(&v, "$.a.b[1].c"), Some(&json!(true)));
        assert_eq!(get(&v, "$"), Some(&v));
        assert_eq!(get(&v, "$.x"), None);
        assert_eq!(
            set(json!({"a": 1}), "$.err.info", json!("x")).unwrap(),
            json!({"a": 1, "err": {"info": "x"}})
        );
        assert_eq!(set(json!({"a": 1}), "$", json!(2)).unwrap(), json!(2));
        assert!(parse("a.b").is_none());
    }
}
