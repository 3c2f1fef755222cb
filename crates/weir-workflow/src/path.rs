//! JSONPath as the States Language uses it.
//!
//! ASL has two kinds of path. A *Path* (`InputPath`, `OutputPath`, a `.$` field of a payload
//! template, a Choice `Variable`) may select many nodes (`$.a[*].b`, `$.a[0,1]`, `$.a[-3:]`,
//! `$..id`, `$.a[?(@.n > 1)]`); the matches are then gathered into an array. A *Reference
//! Path* (`ResultPath`, `ItemsPath`, `SecondsPath`, ...) names exactly one node, and only those
//! can be written to. A path starting with `$$` reads the context object instead of the state.
//!
//! Paths are parsed once when a definition is loaded, so a bad one is a load error with its
//! JSON pointer, and running one is a walk over the value.

use std::fmt;

use serde_json::{Map, Value};

/// A parse error in a path, with what was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path:?} is not a valid path: {problem}")]
pub struct PathError {
    pub path: String,
    pub problem: String,
}

/// A parsed path.
#[derive(Clone, PartialEq)]
pub struct JsonPath {
    text: String,
    /// `$$...`: applies to the context object.
    context: bool,
    segments: Vec<Segment>,
}

impl fmt::Debug for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonPath({:?})", self.text)
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Child(Selector),
    /// `..`: the selector applied to every descendant (and the node itself).
    Descendant(Selector),
}

#[derive(Debug, Clone, PartialEq)]
enum Selector {
    Name(String),
    Index(i64),
    Wildcard,
    Slice { start: Option<i64>, end: Option<i64>, step: i64 },
    Union(Vec<Selector>),
    Filter(Filter),
}

/// A filter expression `?(...)`: comparisons of `@`-relative paths with literals, joined by
/// `&&` and `||`, with `!` and parentheses.
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Exists(Vec<Segment>),
    Compare(Operand, CmpOp, Operand),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Current(Vec<Segment>),
    Literal(Value),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl JsonPath {
    /// Parses a Path (`$...` or `$$...`).
    pub fn parse(text: &str) -> Result<JsonPath, PathError> {
        let err = |problem: &str| PathError { path: text.to_owned(), problem: problem.to_owned() };
        let (context, rest) = match text.strip_prefix("$$") {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('$').ok_or_else(|| err("it must start with '$'"))?),
        };
        let mut p = Parser { chars: rest.chars().collect(), pos: 0 };
        let segments = p.segments(false).map_err(|e| err(&e))?;
        if p.pos < p.chars.len() {
            return Err(err(&format!("unexpected {:?}", p.chars[p.pos])));
        }
        Ok(JsonPath { text: text.to_owned(), context, segments })
    }

    /// Parses a Reference Path: one that names a single node.
    pub fn parse_reference(text: &str) -> Result<JsonPath, PathError> {
        let path = JsonPath::parse(text)?;
        if !path.is_reference() {
            return Err(PathError {
                path: text.to_owned(),
                problem:
                    "a reference path must name one node (no '*', '..', ',', ':', '?' or negative index)"
                        .into(),
            });
        }
        Ok(path)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the path reads the context object (`$$...`).
    pub fn is_context(&self) -> bool {
        self.context
    }

    /// Whether the path is `$` itself.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// Whether the path names at most one node (a Reference Path).
    pub fn is_reference(&self) -> bool {
        self.segments.iter().all(|s| {
            matches!(s, Segment::Child(Selector::Name(_)))
                || matches!(s, Segment::Child(Selector::Index(i)) if *i >= 0)
        })
    }

    /// Every node the path matches in `root`, in document order.
    pub fn select<'v>(&self, root: &'v Value) -> Vec<&'v Value> {
        select_segments(&self.segments, root)
    }

    /// The path's value as ASL defines it: for a reference path the one node (`None` if it is
    /// absent), otherwise the array of all matches.
    pub fn resolve(&self, root: &Value) -> Option<Value> {
        if self.is_reference() {
            self.select(root).into_iter().next().cloned()
        } else {
            Some(Value::Array(self.select(root).into_iter().cloned().collect()))
        }
    }

    /// Resolves against the state (`$...`) or the context object (`$$...`).
    pub fn resolve_in(&self, input: &Value, context: &Value) -> Option<Value> {
        self.resolve(if self.context { context } else { input })
    }

    /// Puts `value` at this reference path inside `target` (ASL `ResultPath`), creating the
    /// objects on the way. Fails if a node on the way is neither absent nor an object (or an
    /// array, for an index that exists).
    pub fn set(&self, target: Value, value: Value) -> Result<Value, String> {
        let mut target = target;
        let mut slot = &mut target;
        for segment in &self.segments {
            slot = match segment {
                Segment::Child(Selector::Name(name)) => match slot {
                    Value::Object(map) => map.entry(name.clone()).or_insert(Value::Null),
                    Value::Null => {
                        *slot = Value::Object(Map::new());
                        slot.as_object_mut().expect("just made").entry(name.clone()).or_insert(Value::Null)
                    }
                    other => {
                        return Err(format!("{}: cannot set field {name:?} in {}", self.text, kind_of(other)))
                    }
                },
                Segment::Child(Selector::Index(i)) => {
                    let len = slot.as_array().map(Vec::len);
                    let i = usize::try_from(*i).ok().filter(|i| len.is_some_and(|l| *i < l));
                    match (slot, i) {
                        (Value::Array(items), Some(i)) => &mut items[i],
                        (other, _) => {
                            return Err(format!(
                                "{}: no element [{}] in {}{}",
                                self.text,
                                segment_index(segment),
                                kind_of(other),
                                len.map(|l| format!(" of length {l}")).unwrap_or_default()
                            ))
                        }
                    }
                }
                _ => return Err(format!("{} is not a reference path", self.text)),
            };
        }
        *slot = value;
        Ok(target)
    }
}

fn segment_index(s: &Segment) -> i64 {
    match s {
        Segment::Child(Selector::Index(i)) => *i,
        _ => 0,
    }
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn select_segments<'v>(segments: &[Segment], root: &'v Value) -> Vec<&'v Value> {
    let mut current = vec![root];
    for segment in segments {
        let mut next = Vec::new();
        for node in current {
            match segment {
                Segment::Child(sel) => apply(sel, node, &mut next),
                Segment::Descendant(sel) => {
                    let mut all = Vec::new();
                    descendants(node, &mut all);
                    for n in all {
                        apply(sel, n, &mut next);
                    }
                }
            }
        }
        current = next;
    }
    current
}

fn descendants<'v>(node: &'v Value, out: &mut Vec<&'v Value>) {
    out.push(node);
    match node {
        Value::Array(items) => items.iter().for_each(|v| descendants(v, out)),
        Value::Object(map) => map.values().for_each(|v| descendants(v, out)),
        _ => {}
    }
}

fn apply<'v>(sel: &Selector, node: &'v Value, out: &mut Vec<&'v Value>) {
    match sel {
        Selector::Name(name) => out.extend(node.get(name)),
        Selector::Index(i) => {
            if let Value::Array(items) = node {
                let len = items.len() as i64;
                let i = if *i < 0 { len + i } else { *i };
                if (0..len).contains(&i) {
                    out.push(&items[i as usize]);
                }
            }
        }
        Selector::Wildcard => match node {
            Value::Array(items) => out.extend(items),
            Value::Object(map) => out.extend(map.values()),
            _ => {}
        },
        Selector::Slice { start, end, step } => {
            if let Value::Array(items) = node {
                slice(items, *start, *end, *step, out);
            }
        }
        Selector::Union(sels) => sels.iter().for_each(|s| apply(s, node, out)),
        Selector::Filter(f) => match node {
            Value::Array(items) => out.extend(items.iter().filter(|v| f.matches(v))),
            Value::Object(map) => out.extend(map.values().filter(|v| f.matches(v))),
            _ => {}
        },
    }
}

fn slice<'v>(items: &'v [Value], start: Option<i64>, end: Option<i64>, step: i64, out: &mut Vec<&'v Value>) {
    let len = items.len() as i64;
    let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    if step > 0 {
        let (mut i, end) = (norm(start.unwrap_or(0)), norm(end.unwrap_or(len)));
        while i < end {
            out.push(&items[i as usize]);
            i += step;
        }
    } else if step < 0 {
        let clamp_hi = |i: i64| if i < 0 { len + i } else { i.min(len - 1) };
        let mut i = start.map(clamp_hi).unwrap_or(len - 1);
        let end = end.map(|e| if e < 0 { len + e } else { e }).unwrap_or(-1).max(-1);
        while i > end && i >= 0 {
            out.push(&items[i as usize]);
            i += step;
        }
    }
}

impl Filter {
    fn matches(&self, node: &Value) -> bool {
        match self {
            Filter::Exists(path) => !select_segments(path, node).is_empty(),
            Filter::And(a, b) => a.matches(node) && b.matches(node),
            Filter::Or(a, b) => a.matches(node) || b.matches(node),
            Filter::Not(f) => !f.matches(node),
            Filter::Compare(a, op, b) => {
                let value = |o: &Operand| match o {
                    Operand::Literal(v) => Some(v.clone()),
                    Operand::Current(p) => select_segments(p, node).first().map(|v| (*v).clone()),
                };
                let (Some(a), Some(b)) = (value(a), value(b)) else { return false };
                let ord = match (&a, &b) {
                    (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()),
                    (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
                    _ => None,
                };
                match op {
                    CmpOp::Eq => a == b || ord == Some(std::cmp::Ordering::Equal),
                    CmpOp::Ne => !(a == b || ord == Some(std::cmp::Ordering::Equal)),
                    CmpOp::Lt => ord == Some(std::cmp::Ordering::Less),
                    CmpOp::Le => matches!(ord, Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)),
                    CmpOp::Gt => ord == Some(std::cmp::Ordering::Greater),
                    CmpOp::Ge => {
                        matches!(ord, Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal))
                    }
                }
            }
        }
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Segments until the end, or (inside a filter) until a character that ends an operand.
    fn segments(&mut self, in_filter: bool) -> Result<Vec<Segment>, String> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some('.') if self.peek_at(1) == Some('.') => {
                    self.pos += 2;
                    let sel = if self.peek() == Some('[') {
                        self.pos += 1;
                        self.bracket()?
                    } else {
                        self.dot_name(in_filter)?
                    };
                    out.push(Segment::Descendant(sel));
                }
                Some('.') => {
                    self.pos += 1;
                    out.push(Segment::Child(self.dot_name(in_filter)?));
                }
                Some('[') => {
                    self.pos += 1;
                    out.push(Segment::Child(self.bracket()?));
                }
                None => return Ok(out),
                Some(_) if in_filter => return Ok(out),
                Some(c) => return Err(format!("unexpected {c:?}")),
            }
        }
    }

    /// A name after `.`: any characters up to an unescaped `.` or `[`; `\` escapes one character.
    fn dot_name(&mut self, in_filter: bool) -> Result<Selector, String> {
        if self.eat('*') {
            return Ok(Selector::Wildcard);
        }
        let mut name = String::new();
        while let Some(c) = self.peek() {
            match c {
                '.' | '[' => break,
                c if in_filter && (c.is_whitespace() || "=!<>&|)".contains(c)) => break,
                '\\' => {
                    self.pos += 1;
                    name.push(self.peek().ok_or("a '\\' at the end escapes nothing")?);
                    self.pos += 1;
                }
                c => {
                    name.push(c);
                    self.pos += 1;
                }
            }
        }
        if name.is_empty() {
            return Err("a '.' must be followed by a field name".into());
        }
        Ok(Selector::Name(name))
    }

    /// The inside of `[...]`, the `[` already taken.
    fn bracket(&mut self) -> Result<Selector, String> {
        self.skip_ws();
        let sel = if self.eat('*') {
            Selector::Wildcard
        } else if self.eat('?') {
            self.skip_ws();
            if !self.eat('(') {
                return Err("a filter is written [?(...)]".into());
            }
            let f = self.filter_or()?;
            self.skip_ws();
            if !self.eat(')') {
                return Err("unclosed filter: expected ')'".into());
            }
            Selector::Filter(f)
        } else {
            let mut parts = vec![self.bracket_item()?];
            self.skip_ws();
            while self.eat(',') {
                self.skip_ws();
                parts.push(self.bracket_item()?);
                self.skip_ws();
            }
            if parts.len() == 1 {
                parts.pop().expect("one")
            } else {
                Selector::Union(parts)
            }
        };
        self.skip_ws();
        if !self.eat(']') {
            return Err("expected ']'".into());
        }
        Ok(sel)
    }

    fn bracket_item(&mut self) -> Result<Selector, String> {
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                Ok(Selector::Name(self.quoted(q)?))
            }
            _ => {
                let start = self.int()?;
                self.skip_ws();
                if !self.eat(':') {
                    return start.map(Selector::Index).ok_or_else(|| "expected an index or a name".into());
                }
                self.skip_ws();
                let end = self.int()?;
                self.skip_ws();
                let step = if self.eat(':') {
                    self.skip_ws();
                    self.int()?.unwrap_or(1)
                } else {
                    1
                };
                if step == 0 {
                    return Err("a slice step cannot be 0".into());
                }
                Ok(Selector::Slice { start, end, step })
            }
        }
    }

    fn int(&mut self) -> Result<Option<i64>, String> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| format!("{text:?} is not an index"))
    }

    /// A quoted string, the opening quote taken; `\` escapes the next character.
    fn quoted(&mut self, quote: char) -> Result<String, String> {
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated string".into()),
                Some('\\') => {
                    self.pos += 1;
                    s.push(self.peek().ok_or("unterminated string")?);
                    self.pos += 1;
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn filter_or(&mut self) -> Result<Filter, String> {
        let mut left = self.filter_and()?;
        loop {
            self.skip_ws();
            if self.peek() == Some('|') && self.peek_at(1) == Some('|') {
                self.pos += 2;
                left = Filter::Or(Box::new(left), Box::new(self.filter_and()?));
            } else {
                return Ok(left);
            }
        }
    }

    fn filter_and(&mut self) -> Result<Filter, String> {
        let mut left = self.filter_unary()?;
        loop {
            self.skip_ws();
            if self.peek() == Some('&') && self.peek_at(1) == Some('&') {
                self.pos += 2;
                left = Filter::And(Box::new(left), Box::new(self.filter_unary()?));
            } else {
                return Ok(left);
            }
        }
    }

    fn filter_unary(&mut self) -> Result<Filter, String> {
        self.skip_ws();
        if self.peek() == Some('!') && self.peek_at(1) != Some('=') {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.filter_unary()?)));
        }
        if self.eat('(') {
            let f = self.filter_or()?;
            self.skip_ws();
            if !self.eat(')') {
                return Err("expected ')'".into());
            }
            return Ok(f);
        }
        let left = self.operand()?;
        self.skip_ws();
        let op = match (self.peek(), self.peek_at(1)) {
            (Some('='), Some('=')) => Some((CmpOp::Eq, 2)),
            (Some('!'), Some('=')) => Some((CmpOp::Ne, 2)),
            (Some('<'), Some('=')) => Some((CmpOp::Le, 2)),
            (Some('>'), Some('=')) => Some((CmpOp::Ge, 2)),
            (Some('<'), _) => Some((CmpOp::Lt, 1)),
            (Some('>'), _) => Some((CmpOp::Gt, 1)),
            _ => None,
        };
        match (op, left) {
            (Some((op, n)), left) => {
                self.pos += n;
                self.skip_ws();
                Ok(Filter::Compare(left, op, self.operand()?))
            }
            (None, Operand::Current(path)) => Ok(Filter::Exists(path)),
            (None, Operand::Literal(_)) => Err("a filter needs a comparison or an @ path".into()),
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        self.skip_ws();
        match self.peek() {
            Some('@') => {
                self.pos += 1;
                Ok(Operand::Current(self.segments(true)?))
            }
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                Ok(Operand::Literal(Value::String(self.quoted(q)?)))
            }
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || "-+.eE".contains(c)) {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                serde_json::from_str::<Value>(&word)
                    .ok()
                    .filter(|v| !v.is_object() && !v.is_array())
                    .map(Operand::Literal)
                    .ok_or_else(|| format!("{word:?} is not a literal in a filter"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn get(v: &Value, p: &str) -> Option<Value> {
        JsonPath::parse(p).unwrap().resolve(v)
    }

    #[test]
    fn reference_paths_from_the_spec() {
        let v = json!({"foo": 123, "bar": ["a", "b", "c"], "car": {"cdr": true}});
        assert_eq!(get(&v, "$.foo"), Some(json!(123)));
        assert_eq!(get(&v, "$.bar"), Some(json!(["a", "b", "c"])));
        assert_eq!(get(&v, "$.car.cdr"), Some(json!(true)));
        assert_eq!(get(&v, "$"), Some(v.clone()));
        assert_eq!(get(&v, "$.nope"), None);
        for ok in [
            "$.store.book",
            "$.store\\.book",
            "$.\\stor\\e.boo\\k",
            "$.store.book.title",
            "$.foo.\\.bar",
            "$.foo\\@bar.baz\\[\\[.\\?pretty",
            "$.&Ж中.\u{10346}",
            "$.ledgers.branch[0].pending.count",
            "$.ledgers.branch[0]",
            "$.ledgers[0][22][315].foo",
            "$['store']['book']",
            "$['store'][0]['book']",
        ] {
            assert!(JsonPath::parse_reference(ok).is_ok(), "{ok}");
        }
        let v = json!({"store.book": 1, "foo@bar": {"baz[[": {"?pretty": 2}}});
        assert_eq!(get(&v, "$.store\\.book"), Some(json!(1)));
        assert_eq!(get(&v, "$.foo\\@bar.baz\\[\\[.\\?pretty"), Some(json!(2)));
    }

    #[test]
    fn multi_valued_paths_gather_into_arrays() {
        let v = json!({"a": [1, 2, 3, 4], "vals": [0, 10, 20, 30, 40, 50]});
        assert_eq!(get(&v, "$.a[0,1]"), Some(json!([1, 2])));
        assert_eq!(get(&v, "$.vals[-3:]"), Some(json!([30, 40, 50])));
        assert_eq!(get(&v, "$.vals[1:3]"), Some(json!([10, 20])));
        assert_eq!(get(&v, "$.vals[::2]"), Some(json!([0, 20, 40])));
        assert_eq!(get(&v, "$.vals[::-2]"), Some(json!([50, 30, 10])));
        assert_eq!(get(&v, "$.a[*]"), Some(json!([1, 2, 3, 4])));
        assert_eq!(get(&v, "$.a[-1]"), Some(json!([4])));
        let v = json!({"items": [{"n": 1, "id": "a"}, {"n": 5, "id": "b"}, {"id": "c"}]});
        assert_eq!(get(&v, "$.items[?(@.n > 2)].id"), Some(json!(["b"])));
        assert_eq!(get(&v, "$.items[?(@.n)].id"), Some(json!(["a", "b"])));
        assert_eq!(get(&v, "$.items[?(@.id == 'c' || @.n == 1)].id"), Some(json!(["a", "c"])));
        assert_eq!(get(&v, "$..id"), Some(json!(["a", "b", "c"])));
        assert_eq!(get(&v, "$.items[*].id"), Some(json!(["a", "b", "c"])));
        assert_eq!(get(&v, "$[*][*][*]").map(|v| v.as_array().unwrap().len()), Some(5));
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in ["a.b", "$.", "$[", "$[0", "$['a", "$.a[?(@.x >)]", "$.a[1:2:0]", "$x"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
        assert!(JsonPath::parse_reference("$.a[*]").is_err());
        assert!(JsonPath::parse_reference("$..a").is_err());
        assert!(JsonPath::parse_reference("$.a[0,1]").is_err());
        assert!(JsonPath::parse("$$.Execution.Id").unwrap().is_context());
    }

    #[test]
    fn set_builds_objects_and_refuses_scalars() {
        let set = |v: Value, p: &str, r: Value| JsonPath::parse_reference(p).unwrap().set(v, r);
        let master = json!({"master": {"detail": [1, 2, 3]}});
        assert_eq!(
            set(master.clone(), "$.master.detail", json!(6)).unwrap(),
            json!({"master": {"detail": 6}})
        );
        assert_eq!(
            set(master, "$.master.result.sum", json!(6)).unwrap(),
            json!({"master": {"detail": [1, 2, 3], "result": {"sum": 6}}})
        );
        assert_eq!(set(json!({"a": [1, 2]}), "$.a[1]", json!(9)).unwrap(), json!({"a": [1, 9]}));
        assert_eq!(set(json!(1), "$", json!(2)).unwrap(), json!(2));
        assert!(set(json!("foo"), "$.x", json!(1)).is_err());
        assert!(set(json!({"a": 1}), "$.a.b", json!(1)).is_err());
        assert!(set(json!({"a": []}), "$.a[0]", json!(1)).is_err());
    }
}
