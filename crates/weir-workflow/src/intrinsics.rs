//! Intrinsic functions (`States.Format(...)`, `States.StringToJson(...)`, ...).
//!
//! A payload template field ending in `.$` whose value does not start with `$` is an
//! intrinsic call. Calls are parsed when the definition is loaded (a proper little grammar:
//! nested calls, `'quoted'` strings with `\` escapes, numbers, `true`/`false`/`null`, and
//! paths as arguments), so a typo or a wrong argument count is a load error; evaluation errors
//! (a path that finds nothing, a bad type) are `States.IntrinsicFailure` at run time.

use std::fmt::Write as _;

use md5::Md5;
use serde_json::{Number, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::path::{kind_of, JsonPath};

/// A parsed intrinsic function call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// A `'...'` literal: `raw` keeps the escapes (States.Format needs to tell `\{` from `{`).
    Str {
        raw: String,
        value: String,
    },
    Literal(Value),
    Path(JsonPath),
    Call(Call),
}

/// Names, with the argument counts they accept.
const FUNCTIONS: &[(&str, usize, usize)] = &[
    ("States.Format", 1, usize::MAX),
    ("States.StringToJson", 1, 1),
    ("States.JsonToString", 1, 1),
    ("States.Array", 0, usize::MAX),
    ("States.ArrayPartition", 2, 2),
    ("States.ArrayContains", 2, 2),
    ("States.ArrayRange", 3, 3),
    ("States.ArrayGetItem", 2, 2),
    ("States.ArrayLength", 1, 1),
    ("States.ArrayUnique", 1, 1),
    ("States.Base64Encode", 1, 1),
    ("States.Base64Decode", 1, 1),
    ("States.Hash", 2, 2),
    ("States.JsonMerge", 3, 3),
    ("States.MathRandom", 2, 3),
    ("States.MathAdd", 2, 2),
    ("States.StringSplit", 2, 2),
    ("States.UUID", 0, 0),
];

/// Whether `text` looks like an intrinsic call rather than a path: `Name(`.
pub fn looks_like_call(text: &str) -> bool {
    let t = text.trim_start();
    t.find('(')
        .is_some_and(|i| i > 0 && t[..i].chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_'))
}

impl Call {
    /// Parses one call, e.g. `States.Format('Hello {}', $.name)`.
    pub fn parse(text: &str) -> Result<Call, String> {
        let mut p = Parser { s: text.as_bytes(), text, pos: 0 };
        p.ws();
        let call = p.call()?;
        p.ws();
        if p.pos != p.s.len() {
            return Err(format!("unexpected text after the call at offset {}", p.pos));
        }
        Ok(call)
    }

    /// Evaluates the call against the template's input and the context object.
    pub fn eval(&self, input: &Value, context: &Value) -> Result<Value, String> {
        let mut args = Vec::with_capacity(self.args.len());
        for arg in &self.args {
            args.push(match arg {
                Arg::Str { value, .. } => Value::String(value.clone()),
                Arg::Literal(v) => v.clone(),
                Arg::Path(p) => {
                    p.resolve_in(input, context).ok_or_else(|| format!("path {p} matched nothing"))?
                }
                Arg::Call(c) => c.eval(input, context)?,
            });
        }
        let name = self.name.as_str();
        let raw_template = match &self.args.first() {
            Some(Arg::Str { raw, .. }) => Some(raw.as_str()),
            _ => None,
        };
        apply(name, raw_template, args).map_err(|e| format!("{name}: {e}"))
    }
}

fn apply(name: &str, raw_template: Option<&str>, args: Vec<Value>) -> Result<Value, String> {
    match name {
        "States.Format" => {
            let template = match raw_template {
                Some(raw) => raw.to_owned(),
                None => match &args[0] {
                    Value::String(s) => s.clone(),
                    other => return Err(format!("the template must be a string, not {}", kind_of(other))),
                },
            };
            format(&template, &args[1..])
        }
        "States.StringToJson" => match &args[0] {
            Value::String(s) => serde_json::from_str(s).map_err(|e| format!("not JSON: {e}")),
            other => Err(format!("expects a string, not {}", kind_of(other))),
        },
        "States.JsonToString" => Ok(Value::String(args[0].to_string())),
        "States.Array" => Ok(Value::Array(args)),
        "States.ArrayPartition" => {
            let items = array(&args[0])?;
            let size = int(&args[1])?;
            if size <= 0 {
                return Err("the chunk size must be positive".into());
            }
            Ok(Value::Array(items.chunks(size as usize).map(|c| Value::Array(c.to_vec())).collect()))
        }
        "States.ArrayContains" => Ok(Value::Bool(array(&args[0])?.contains(&args[1]))),
        "States.ArrayRange" => {
            let (start, end, step) = (int(&args[0])?, int(&args[1])?, int(&args[2])?);
            if step == 0 {
                return Err("the step cannot be 0".into());
            }
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i <= end) || (step < 0 && i >= end) {
                if out.len() == 1000 {
                    return Err("more than 1000 elements".into());
                }
                out.push(Value::from(i));
                i += step;
            }
            Ok(Value::Array(out))
        }
        "States.ArrayGetItem" => {
            let items = array(&args[0])?;
            let i = int(&args[1])?;
            usize::try_from(i)
                .ok()
                .and_then(|i| items.get(i))
                .cloned()
                .ok_or_else(|| format!("index {i} is outside the array (length {})", items.len()))
        }
        "States.ArrayLength" => Ok(Value::from(array(&args[0])?.len())),
        "States.ArrayUnique" => {
            let mut out: Vec<Value> = Vec::new();
            for v in array(&args[0])? {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        "States.Base64Encode" => Ok(Value::String(base64_encode(string(&args[0])?.as_bytes()))),
        "States.Base64Decode" => {
            let bytes = base64_decode(string(&args[0])?)?;
            String::from_utf8(bytes).map(Value::String).map_err(|_| "the data is not UTF-8 text".to_string())
        }
        "States.Hash" => {
            let data = match &args[0] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let algorithm = string(&args[1])?;
            let digest = match algorithm {
                "MD5" => Md5::digest(data.as_bytes()).to_vec(),
                "SHA-1" => Sha1::digest(data.as_bytes()).to_vec(),
                "SHA-256" => Sha256::digest(data.as_bytes()).to_vec(),
                "SHA-384" => Sha384::digest(data.as_bytes()).to_vec(),
                "SHA-512" => Sha512::digest(data.as_bytes()).to_vec(),
                other => {
                    return Err(format!(
                        "unknown algorithm {other:?} (MD5, SHA-1, SHA-256, SHA-384, SHA-512)"
                    ))
                }
            };
            Ok(Value::String(digest.iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })))
        }
        "States.JsonMerge" => {
            let (Value::Object(a), Value::Object(b)) = (&args[0], &args[1]) else {
                return Err("expects two objects".into());
            };
            if args[2] != Value::Bool(false) {
                return Err("only shallow merging (false) is supported".into());
            }
            let mut merged = a.clone();
            merged.extend(b.clone());
            Ok(Value::Object(merged))
        }
        "States.MathRandom" => {
            let (start, end) = (int(&args[0])?, int(&args[1])?);
            if end <= start {
                return Err("the end must be greater than the start".into());
            }
            let n = match args.get(2) {
                Some(seed) => fastrand::Rng::with_seed(int(seed)? as u64).i64(start..end),
                None => fastrand::i64(start..end),
            };
            Ok(Value::from(n))
        }
        "States.MathAdd" => {
            let (a, b) = (int(&args[0])?, int(&args[1])?);
            a.checked_add(b).map(Value::from).ok_or_else(|| "overflow".to_string())
        }
        "States.StringSplit" => {
            let (s, sep) = (string(&args[0])?, string(&args[1])?);
            if sep.is_empty() {
                return Err("the delimiter cannot be empty".into());
            }
            Ok(Value::Array(s.split(sep).map(|p| Value::String(p.to_owned())).collect()))
        }
        "States.UUID" => Ok(Value::String(uuid::Uuid::new_v4().to_string())),
        _ => unreachable!("names are checked at parse time"),
    }
}

fn array(v: &Value) -> Result<&Vec<Value>, String> {
    v.as_array().ok_or_else(|| format!("expects an array, not {}", kind_of(v)))
}

fn string(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| format!("expects a string, not {}", kind_of(v)))
}

fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64))
            .ok_or_else(|| format!("expects an integer, not {n}")),
        other => Err(format!("expects an integer, not {}", kind_of(other))),
    }
}

/// `States.Format`: each `{}` takes the next argument; `\{`, `\}`, `\'` and `\\` are literal.
fn format(template: &str, args: &[Value]) -> Result<Value, String> {
    let mut out = String::new();
    let mut next = args.iter();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('{' | '}' | '\'' | '\\')) => out.push(e),
                Some(e) => return Err(format!("'\\{e}' is not an escape (only \\' \\{{ \\}} \\\\)")),
                None => return Err("the template ends with an open escape '\\'".into()),
            },
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                match next.next() {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => {
                        out.push_str(&v.to_string())
                    }
                    Some(v) => return Err(format!("cannot put {} into a string", kind_of(v))),
                    None => return Err("more {} than arguments".into()),
                }
            }
            c => out.push(c),
        }
    }
    if next.next().is_some() {
        return Err("more arguments than {}".into());
    }
    Ok(Value::String(out))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let v = B64.iter().position(|&b| b == c).ok_or_else(|| format!("{:?} is not base64", c as char))?;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn call(&mut self) -> Result<Call, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_') {
            self.pos += 1;
        }
        let name = &self.text[start..self.pos];
        if name.is_empty() {
            return Err(format!("expected a function name at offset {start}"));
        }
        let Some(&(_, min, max)) = FUNCTIONS.iter().find(|(n, ..)| *n == name) else {
            return Err(format!("unknown intrinsic function {name:?}"));
        };
        self.ws();
        if self.peek() != Some(b'(') {
            return Err(format!("expected '(' after {name}"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.ws();
        if self.peek() == Some(b')') {
            self.pos += 1;
        } else {
            loop {
                self.ws();
                args.push(self.arg()?);
                self.ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(format!("expected ',' or ')' at offset {} in {name}", self.pos)),
                }
            }
        }
        if args.len() < min || args.len() > max {
            let want = match (min, max) {
                (a, b) if a == b => format!("{a}"),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return Err(format!("{name} takes {want} argument(s), not {}", args.len()));
        }
        if name == "States.JsonToString" && !matches!(args[0], Arg::Path(_)) {
            return Err("States.JsonToString takes a path".into());
        }
        Ok(Call { name: name.to_owned(), args })
    }

    fn arg(&mut self) -> Result<Arg, String> {
        match self.peek() {
            Some(b'\'') => {
                self.pos += 1;
                let start = self.pos;
                let mut value = String::new();
                loop {
                    let Some(c) = self.text[self.pos..].chars().next() else {
                        return Err("unterminated string argument".into());
                    };
                    match c {
                        '\\' => {
                            let e = self.text[self.pos + 1..].chars().next();
                            match e {
                                Some(e @ ('\'' | '{' | '}' | '\\')) => value.push(e),
                                Some(e) => {
                                    return Err(format!("'\\{e}' is not an escape (only \\' \\{{ \\}} \\\\)"))
                                }
                                None => return Err("open escape '\\' at the end".into()),
                            }
                            self.pos += 2;
                        }
                        '\'' => {
                            let raw = self.text[start..self.pos].to_owned();
                            self.pos += 1;
                            return Ok(Arg::Str { raw, value });
                        }
                        c => {
                            value.push(c);
                            self.pos += c.len_utf8();
                        }
                    }
                }
            }
            Some(b'$') => {
                // A path runs to the next ',' or ')' outside brackets and quotes.
                let start = self.pos;
                let (mut depth, mut quote) = (0, None);
                while let Some(c) = self.peek() {
                    match (quote, c) {
                        (Some(q), c) if c == q => quote = None,
                        (Some(_), b'\\') => self.pos += 1,
                        (Some(_), _) => {}
                        (None, b'\'' | b'"') => quote = Some(c),
                        (None, b'\\') => self.pos += 1,
                        (None, b'[' | b'(') => depth += 1,
                        (None, b']') => depth -= 1,
                        (None, b')') if depth > 0 => depth -= 1,
                        (None, b',' | b')') if depth == 0 => break,
                        _ => {}
                    }
                    self.pos += 1;
                }
                let text = self.text[start..self.pos.min(self.s.len())].trim_end();
                JsonPath::parse(text).map(Arg::Path).map_err(|e| e.to_string())
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let start = self.pos;
                self.pos += 1;
                while self.peek().is_some_and(|c| c.is_ascii_digit() || b".eE+-".contains(&c)) {
                    self.pos += 1;
                }
                let text = &self.text[start..self.pos];
                serde_json::from_str::<Number>(text)
                    .map(|n| Arg::Literal(Value::Number(n)))
                    .map_err(|_| format!("{text:?} is not a number"))
            }
            _ => {
                for (word, v) in
                    [("null", Value::Null), ("true", Value::Bool(true)), ("false", Value::Bool(false))]
                {
                    let end = self.pos + word.len();
                    if self.text[self.pos..].starts_with(word)
                        && !self.s.get(end).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.')
                    {
                        self.pos = end;
                        return Ok(Arg::Literal(v));
                    }
                }
                self.call().map(Arg::Call)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn eval(call: &str, input: Value) -> Result<Value, String> {
        Call::parse(call)?.eval(&input, &json!({"DayOfWeek": "TUESDAY"}))
    }

    #[test]
    fn parses_nested_calls_strings_and_paths() {
        assert_eq!(
            eval(
                "States.Format('Welcome to {} {}\\'s playlist.', $.firstName, $.lastName)",
                json!({"firstName": "Ada", "lastName": "L"})
            ),
            Ok(json!("Welcome to Ada L's playlist."))
        );
        assert_eq!(
            eval(
                "States.Array(States.MathAdd($.a, -1), 'x, y', null, true, 1.5, $$.DayOfWeek)",
                json!({"a": 3})
            ),
            Ok(json!([2, "x, y", null, true, 1.5, "TUESDAY"]))
        );
        assert_eq!(eval("States.Format('\\{\\} {}', $.a[0])", json!({"a": [7]})), Ok(json!("{} 7")));
        assert_eq!(eval("States.ArrayLength($.a[?(@ > 1)])", json!({"a": [1, 2, 3]})), Ok(json!(2)));
    }

    #[test]
    fn load_errors() {
        for bad in [
            "States.Nope(1)",
            "States.Format()",
            "States.UUID(1)",
            "States.Format('x'",
            "States.Format('a\\n')",
            "States.Array(1 2)",
            "States.JsonToString('x')",
            "States.Array($.a[)",
        ] {
            assert!(Call::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn runtime_failures() {
        assert!(eval("States.Format('{} {}', 1)", json!({})).is_err());
        assert!(eval("States.Format('{}', $.o)", json!({"o": {}})).is_err());
        assert!(eval("States.StringToJson($.s)", json!({"s": "{"})).is_err());
        assert!(eval("States.ArrayGetItem($.a, 5)", json!({"a": [1]})).is_err());
        assert!(eval("States.MathAdd($.missing, 1)", json!({})).is_err());
    }

    #[test]
    fn base64_round_trips() {
        for s in ["", "f", "fo", "foo", "Data to encode", "日本"] {
            assert_eq!(base64_decode(&base64_encode(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode(b"Data to encode"), "RGF0YSB0byBlbmNvZGU=");
    }

    #[test]
    fn looks_like_call_tells_calls_from_paths() {
        assert!(looks_like_call("States.Format('x')"));
        assert!(!looks_like_call("$.a"));
        assert!(!looks_like_call("hello"));
    }
}
