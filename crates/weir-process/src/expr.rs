//! Derived-field expressions: `quantity * price`, `(a + b) / 2`, `concat(upper(city), "-", id)`.
//!
//! Parsed once by a small recursive-descent parser when the plan is compiled, with every problem
//! reported by position, and evaluated per row over a tree whose leaves are value slots. Each
//! expression has a type fixed at compile time: integer when every operand is an integer and
//! only `+ - *` (and unary minus) are used, evaluated with checked `i64` arithmetic; float for
//! other arithmetic; text for string functions. A null operand (an empty optional field) makes
//! an arithmetic result null; `concat` reads null as the empty string, `coalesce` skips it.
//!
//! Functions: `concat(x, ...)`, `upper(s)`, `lower(s)`, `trim(s)`, `length(s)` (characters),
//! `substr(s, start[, len])` (1-based, characters), `coalesce(x, ...)`, `round(n[, digits])`,
//! `abs(n)`. Text literals are written in double or single quotes.

use std::fmt;

use crate::json_text::{write_f64, write_i64};
use crate::slot::{SlotType, SlotValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Concat,
    Upper,
    Lower,
    Trim,
    Length,
    Substr,
    Coalesce,
    Round,
    Abs,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Int(i64),
    Float(f64),
    Text(Box<[u8]>),
    Slot(usize),
    Neg(Box<Node>),
    Bin(Op, Box<Node>, Box<Node>),
    /// A function, its arguments and their types.
    Call(Func, Vec<(Node, SlotType)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EvalError {
    DivisionByZero,
    Overflow,
    NotFinite,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EvalError::DivisionByZero => "division by zero",
            EvalError::Overflow => "integer overflow",
            EvalError::NotFinite => "result is not a finite number",
        })
    }
}

/// A compiled expression and its type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expr {
    pub root: Node,
    pub ty: SlotType,
}

/// What the parser needs to know about a name: its slot and type.
pub(crate) trait Scope {
    fn lookup(&self, name: &str) -> Result<(usize, SlotType), String>;
}

/// The row an expression is evaluated over: typed slots, and the text of text slots.
pub(crate) struct Row<'a> {
    pub slots: &'a [SlotValue],
    pub text: &'a dyn Fn(usize) -> &'a [u8],
}

impl Expr {
    pub fn parse(text: &str, scope: &dyn Scope) -> Result<Expr, String> {
        let mut p = Parser { s: text.as_bytes(), i: 0, scope };
        p.skip_ws();
        if p.i == p.s.len() {
            return Err("empty expression".into());
        }
        let (root, ty) = p.expr(0)?;
        p.skip_ws();
        if p.i < p.s.len() {
            return Err(format!("unexpected `{}` at position {}", p.rest_token(), p.i + 1));
        }
        Ok(Expr { root, ty })
    }

    /// Evaluates a numeric expression (a text one evaluates to `SlotValue::Text` with `out` filled).
    #[inline]
    pub fn eval(&self, row: &Row<'_>, out: &mut Vec<u8>) -> Result<SlotValue, EvalError> {
        match self.ty {
            SlotType::Int => Ok(eval_int(&self.root, row)?.map_or(SlotValue::Null, SlotValue::Int)),
            SlotType::Float => match eval_float(&self.root, row)? {
                None => Ok(SlotValue::Null),
                Some(v) if v.is_finite() => Ok(SlotValue::Float(v)),
                Some(_) => Err(EvalError::NotFinite),
            },
            SlotType::Text => {
                out.clear();
                Ok(if eval_str(&self.root, row, out)? { SlotValue::Text } else { SlotValue::Null })
            }
        }
    }
}

fn eval_int(n: &Node, row: &Row<'_>) -> Result<Option<i64>, EvalError> {
    Ok(match n {
        Node::Int(v) => Some(*v),
        Node::Slot(s) => match row.slots[*s] {
            SlotValue::Int(v) => Some(v),
            _ => None,
        },
        Node::Neg(a) => match eval_int(a, row)? {
            Some(v) => Some(v.checked_neg().ok_or(EvalError::Overflow)?),
            None => None,
        },
        Node::Bin(op, a, b) => {
            let (Some(x), Some(y)) = (eval_int(a, row)?, eval_int(b, row)?) else { return Ok(None) };
            let r = match op {
                Op::Add => x.checked_add(y),
                Op::Sub => x.checked_sub(y),
                Op::Mul => x.checked_mul(y),
                Op::Div => unreachable!("division makes an expression float"),
            };
            Some(r.ok_or(EvalError::Overflow)?)
        }
        Node::Call(Func::Length, args) => {
            let mut buf = Vec::new();
            if !eval_str(&args[0].0, row, &mut buf)? {
                return Ok(None);
            }
            Some(std::str::from_utf8(&buf).map_or(buf.len(), |s| s.chars().count()) as i64)
        }
        Node::Call(Func::Abs, args) => match eval_int(&args[0].0, row)? {
            Some(v) => Some(v.checked_abs().ok_or(EvalError::Overflow)?),
            None => None,
        },
        Node::Call(Func::Round, args) => eval_int(&args[0].0, row)?,
        Node::Call(Func::Coalesce, args) => {
            for (a, _) in args {
                if let Some(v) = eval_int(a, row)? {
                    return Ok(Some(v));
                }
            }
            None
        }
        Node::Float(_) | Node::Text(_) | Node::Call(..) => unreachable!("typed at compile time"),
    })
}

#[inline]
fn eval_float(n: &Node, row: &Row<'_>) -> Result<Option<f64>, EvalError> {
    let slots = row.slots;
    match n {
        Node::Slot(s) => return Ok(slots[*s].as_f64()),
        Node::Bin(op, a, b) => {
            if let (Node::Slot(x), Node::Slot(y)) = (&**a, &**b) {
                let (Some(x), Some(y)) = (slots[*x].as_f64(), slots[*y].as_f64()) else { return Ok(None) };
                return Ok(Some(match op {
                    Op::Add => x + y,
                    Op::Sub => x - y,
                    Op::Mul => x * y,
                    Op::Div if y == 0.0 => return Err(EvalError::DivisionByZero),
                    Op::Div => x / y,
                }));
            }
        }
        _ => {}
    }
    eval_float_tree(n, row)
}

fn eval_float_tree(n: &Node, row: &Row<'_>) -> Result<Option<f64>, EvalError> {
    Ok(match n {
        Node::Int(v) => Some(*v as f64),
        Node::Float(v) => Some(*v),
        Node::Slot(s) => row.slots[*s].as_f64(),
        Node::Neg(a) => eval_float(a, row)?.map(|v| -v),
        Node::Bin(op, a, b) => {
            let (Some(x), Some(y)) = (eval_float(a, row)?, eval_float(b, row)?) else { return Ok(None) };
            Some(match op {
                Op::Add => x + y,
                Op::Sub => x - y,
                Op::Mul => x * y,
                Op::Div if y == 0.0 => return Err(EvalError::DivisionByZero),
                Op::Div => x / y,
            })
        }
        Node::Call(Func::Abs, args) => eval_float(&args[0].0, row)?.map(f64::abs),
        Node::Call(Func::Round, args) => {
            let digits = match args.get(1) {
                Some((Node::Int(d), _)) => *d as i32,
                _ => 0,
            };
            eval_float(&args[0].0, row)?.map(|v| weir_core::summary::round_to(v, digits))
        }
        Node::Call(Func::Coalesce, args) => {
            for (a, _) in args {
                if let Some(v) = eval_float(a, row)? {
                    return Ok(Some(v));
                }
            }
            None
        }
        Node::Call(Func::Length, _) => eval_int(n, row)?.map(|v| v as f64),
        Node::Text(_) | Node::Call(..) => unreachable!("typed at compile time"),
    })
}

/// Appends a text expression's value to `out`; false when it is null.
fn eval_str(n: &Node, row: &Row<'_>, out: &mut Vec<u8>) -> Result<bool, EvalError> {
    match n {
        Node::Text(t) => out.extend_from_slice(t),
        Node::Slot(s) => match row.slots[*s] {
            SlotValue::Null => return Ok(false),
            SlotValue::Text => out.extend_from_slice((row.text)(*s)),
            SlotValue::Int(v) => write_i64(out, v),
            SlotValue::Float(v) => write_f64(out, v),
        },
        Node::Call(f, args) => match f {
            Func::Concat => {
                for (a, ty) in args {
                    append_any(a, *ty, row, out)?;
                }
            }
            Func::Upper | Func::Lower | Func::Trim => {
                let mut inner = Vec::new();
                if !eval_str(&args[0].0, row, &mut inner)? {
                    return Ok(false);
                }
                match f {
                    Func::Trim => out.extend_from_slice(String::from_utf8_lossy(&inner).trim().as_bytes()),
                    _ if inner.is_ascii() => {
                        if *f == Func::Upper {
                            inner.make_ascii_uppercase()
                        } else {
                            inner.make_ascii_lowercase()
                        }
                        out.extend_from_slice(&inner);
                    }
                    _ => {
                        let s = String::from_utf8_lossy(&inner);
                        let t = if *f == Func::Upper { s.to_uppercase() } else { s.to_lowercase() };
                        out.extend_from_slice(t.as_bytes());
                    }
                }
            }
            Func::Substr => {
                let mut inner = Vec::new();
                if !eval_str(&args[0].0, row, &mut inner)? {
                    return Ok(false);
                }
                let (Some(start), len) = (
                    eval_int(&args[1].0, row)?,
                    match args.get(2) {
                        Some((a, _)) => eval_int(a, row)?,
                        None => Some(i64::MAX),
                    },
                ) else {
                    return Ok(false);
                };
                let s = String::from_utf8_lossy(&inner);
                let skip = (start.max(1) - 1) as usize;
                let take = len.unwrap_or(0).max(0) as usize;
                out.extend(s.chars().skip(skip).take(take).collect::<String>().as_bytes());
            }
            Func::Coalesce => {
                for (a, ty) in args {
                    let mark = out.len();
                    if append_any(a, *ty, row, out)? {
                        return Ok(true);
                    }
                    out.truncate(mark);
                }
                return Ok(false);
            }
            Func::Length | Func::Round | Func::Abs => unreachable!("numeric functions"),
        },
        Node::Int(_) | Node::Float(_) | Node::Neg(_) | Node::Bin(..) => unreachable!("typed at compile time"),
    }
    Ok(true)
}

/// Appends any expression as text (numbers formatted); false when it is null.
fn append_any(n: &Node, ty: SlotType, row: &Row<'_>, out: &mut Vec<u8>) -> Result<bool, EvalError> {
    match ty {
        SlotType::Text => eval_str(n, row, out),
        SlotType::Int => Ok(eval_int(n, row)?.map(|v| write_i64(out, v)).is_some()),
        SlotType::Float => match eval_float(n, row)? {
            Some(v) if v.is_finite() => {
                write_f64(out, v);
                Ok(true)
            }
            Some(_) => Err(EvalError::NotFinite),
            None => Ok(false),
        },
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    scope: &'a dyn Scope,
}

const MAX_DEPTH: usize = 64;

fn numeric_operand(ty: SlotType, what: &str) -> Result<(), String> {
    if ty == SlotType::Text {
        return Err(format!("`{what}` needs numbers, not text (use concat() to join text)"));
    }
    Ok(())
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn rest_token(&self) -> String {
        let rest = &self.s[self.i..];
        let n = rest.iter().position(|b| b.is_ascii_whitespace()).unwrap_or(rest.len()).clamp(1, 20);
        String::from_utf8_lossy(&rest[..n.min(rest.len())]).into_owned()
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    /// expr := term (('+' | '-') term)*
    fn expr(&mut self, depth: usize) -> Result<(Node, SlotType), String> {
        if depth > MAX_DEPTH {
            return Err("expression nested too deeply".into());
        }
        let (mut node, mut ty) = self.term(depth)?;
        while let Some(c @ (b'+' | b'-')) = self.peek() {
            self.i += 1;
            let (rhs, rty) = self.term(depth)?;
            numeric_operand(ty, &(c as char).to_string())?;
            numeric_operand(rty, &(c as char).to_string())?;
            let op = if c == b'+' { Op::Add } else { Op::Sub };
            node = Node::Bin(op, Box::new(node), Box::new(rhs));
            ty = if ty == SlotType::Int && rty == SlotType::Int { SlotType::Int } else { SlotType::Float };
        }
        Ok((node, ty))
    }

    /// term := unary (('*' | '/') unary)*
    fn term(&mut self, depth: usize) -> Result<(Node, SlotType), String> {
        let (mut node, mut ty) = self.unary(depth)?;
        while let Some(c @ (b'*' | b'/')) = self.peek() {
            self.i += 1;
            let (rhs, rty) = self.unary(depth)?;
            numeric_operand(ty, &(c as char).to_string())?;
            numeric_operand(rty, &(c as char).to_string())?;
            let op = if c == b'*' { Op::Mul } else { Op::Div };
            ty = if ty == SlotType::Int && rty == SlotType::Int && op == Op::Mul {
                SlotType::Int
            } else {
                SlotType::Float
            };
            node = Node::Bin(op, Box::new(node), Box::new(rhs));
        }
        Ok((node, ty))
    }

    /// unary := '-' unary | '+' unary | primary
    fn unary(&mut self, depth: usize) -> Result<(Node, SlotType), String> {
        if depth > MAX_DEPTH {
            return Err("expression nested too deeply".into());
        }
        match self.peek() {
            Some(b'-') => {
                self.i += 1;
                let (n, ty) = self.unary(depth + 1)?;
                numeric_operand(ty, "-")?;
                Ok((Node::Neg(Box::new(n)), ty))
            }
            Some(b'+') => {
                self.i += 1;
                self.unary(depth + 1)
            }
            _ => self.primary(depth),
        }
    }

    /// primary := number | text | name | name '(' args ')' | '(' expr ')'
    fn primary(&mut self, depth: usize) -> Result<(Node, SlotType), String> {
        let at = self.i + 1;
        match self.peek() {
            None => Err(format!("expected a number, a field or `(` at position {at}, found the end")),
            Some(b'(') => {
                self.i += 1;
                let inner = self.expr(depth + 1)?;
                if self.peek() != Some(b')') {
                    return Err(format!(
                        "expected `)` at position {} to close `(` at position {at}",
                        self.i + 1
                    ));
                }
                self.i += 1;
                Ok(inner)
            }
            Some(q @ (b'"' | b'\'')) => {
                let start = self.i + 1;
                let Some(len) = memchr::memchr(q, &self.s[start..]) else {
                    return Err(format!("text opened at position {at} is never closed"));
                };
                self.i = start + len + 1;
                Ok((Node::Text(self.s[start..start + len].into()), SlotType::Text))
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => self.number(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], b'_' | b'.'))
                {
                    self.i += 1;
                }
                let name =
                    std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default().to_ascii_lowercase();
                if self.peek() == Some(b'(') {
                    return self.call(&name, at, depth);
                }
                let (slot, ty) = self.scope.lookup(&name)?;
                Ok((Node::Slot(slot), ty))
            }
            Some(_) => Err(format!("unexpected `{}` at position {at}", self.rest_token())),
        }
    }

    fn call(&mut self, name: &str, at: usize, depth: usize) -> Result<(Node, SlotType), String> {
        let f = match name {
            "concat" => Func::Concat,
            "upper" => Func::Upper,
            "lower" => Func::Lower,
            "trim" => Func::Trim,
            "length" => Func::Length,
            "substr" => Func::Substr,
            "coalesce" => Func::Coalesce,
            "round" => Func::Round,
            "abs" => Func::Abs,
            other => {
                return Err(format!(
                    "unknown function `{other}` at position {at} (concat, upper, lower, trim, length, substr, coalesce, round, abs)"
                ))
            }
        };
        self.i += 1; // `(`
        let mut args = Vec::new();
        if self.peek() == Some(b')') {
            self.i += 1;
        } else {
            loop {
                args.push(self.expr(depth + 1)?);
                match self.peek() {
                    Some(b',') => self.i += 1,
                    Some(b')') => {
                        self.i += 1;
                        break;
                    }
                    _ => {
                        return Err(format!(
                            "expected `,` or `)` at position {} in the call of {name} at position {at}",
                            self.i + 1
                        ))
                    }
                }
            }
        }
        let wrong = |what: &str| Err(format!("{name}() at position {at} takes {what}"));
        let tys: Vec<SlotType> = args.iter().map(|a| a.1).collect();
        let ty = match f {
            Func::Concat if !args.is_empty() => SlotType::Text,
            Func::Concat => return wrong("at least one argument"),
            Func::Upper | Func::Lower | Func::Trim if tys == [SlotType::Text] => SlotType::Text,
            Func::Upper | Func::Lower | Func::Trim => return wrong("one text argument"),
            Func::Length if tys == [SlotType::Text] => SlotType::Int,
            Func::Length => return wrong("one text argument"),
            Func::Substr
                if (tys.len() == 2 || tys.len() == 3)
                    && tys[0] == SlotType::Text
                    && tys[1..].iter().all(|t| *t == SlotType::Int) =>
            {
                SlotType::Text
            }
            Func::Substr => return wrong("text, an integer start and an optional integer length"),
            Func::Coalesce if !tys.is_empty() && tys.iter().all(|t| *t == SlotType::Text) => SlotType::Text,
            Func::Coalesce if !tys.is_empty() && tys.iter().all(|t| t.is_numeric()) => {
                if tys.iter().all(|t| *t == SlotType::Int) {
                    SlotType::Int
                } else {
                    SlotType::Float
                }
            }
            Func::Coalesce => return wrong("arguments that are all text or all numbers"),
            Func::Abs if tys.len() == 1 && tys[0].is_numeric() => tys[0],
            Func::Abs => return wrong("one number"),
            Func::Round if tys.len() == 1 && tys[0].is_numeric() => tys[0],
            Func::Round
                if tys.len() == 2 && tys[0].is_numeric() && matches!(args[1].0, Node::Int(0..=15)) =>
            {
                if tys[0] == SlotType::Int {
                    SlotType::Int
                } else {
                    SlotType::Float
                }
            }
            Func::Round => return wrong("a number and optionally a literal number of digits (0 to 15)"),
        };
        Ok((Node::Call(f, args), ty))
    }

    fn number(&mut self) -> Result<(Node, SlotType), String> {
        let start = self.i;
        let at = start + 1;
        let mut int = true;
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'0'..=b'9' => {}
                b'.' => int = false,
                b'e' | b'E' => {
                    int = false;
                    if matches!(self.s.get(self.i + 1), Some(b'+' | b'-')) {
                        self.i += 1;
                    }
                }
                _ => break,
            }
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default();
        if int {
            text.parse::<i64>()
                .map(|v| (Node::Int(v), SlotType::Int))
                .map_err(|_| format!("integer literal {text} at position {at} is out of range"))
        } else {
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok((Node::Float(v), SlotType::Float)),
                _ => Err(format!("invalid number `{text}` at position {at}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names;
    impl Scope for Names {
        fn lookup(&self, name: &str) -> Result<(usize, SlotType), String> {
            match name {
                "q" => Ok((0, SlotType::Int)),
                "p" => Ok((1, SlotType::Float)),
                "n" => Ok((2, SlotType::Int)),
                "name" => Ok((3, SlotType::Text)),
                "city" => Ok((4, SlotType::Text)),
                other => Err(format!("unknown field `{other}`")),
            }
        }
    }

    fn text_of(s: usize) -> &'static [u8] {
        match s {
            3 => "  Ann Lee ".as_bytes(),
            _ => "Bangkok ก".as_bytes(),
        }
    }

    fn eval(text: &str, slots: &[SlotValue]) -> Result<SlotValue, EvalError> {
        let mut out = Vec::new();
        let t = |s| -> &[u8] { text_of(s) };
        Expr::parse(text, &Names).unwrap().eval(&Row { slots, text: &t }, &mut out)
    }

    fn eval_text(text: &str, slots: &[SlotValue]) -> Option<String> {
        let mut out = Vec::new();
        let e = Expr::parse(text, &Names).unwrap();
        assert_eq!(e.ty, SlotType::Text);
        let t = |s| -> &[u8] { text_of(s) };
        match e.eval(&Row { slots, text: &t }, &mut out).unwrap() {
            SlotValue::Text => Some(String::from_utf8(out).unwrap()),
            SlotValue::Null => None,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn string_functions() {
        let s = [SlotValue::Int(3), SlotValue::Float(2.5), SlotValue::Null, SlotValue::Text, SlotValue::Text];
        assert_eq!(eval_text("concat(trim(name), '-', q, \"/\", p)", &s).unwrap(), "Ann Lee-3/2.5");
        assert_eq!(eval_text("upper(city)", &s).unwrap(), "BANGKOK ก");
        assert_eq!(eval_text("lower(trim(name))", &s).unwrap(), "ann lee");
        assert_eq!(eval_text("substr(city, 2, 3)", &s).unwrap(), "ang");
        assert_eq!(eval_text("substr(city, 9)", &s).unwrap(), "ก");
        assert_eq!(eval_text("concat(name, n)", &s).unwrap(), "  Ann Lee ");
        assert_eq!(
            eval_text(
                "coalesce(upper(city), 'x')",
                &[SlotValue::Null, SlotValue::Null, SlotValue::Null, SlotValue::Null, SlotValue::Null]
            )
            .unwrap(),
            "x"
        );
        assert_eq!(eval("length(city)", &s), Ok(SlotValue::Int(9)));
        assert_eq!(eval("coalesce(n, q)", &s), Ok(SlotValue::Int(3)));
        assert_eq!(eval("round(p * 1.234, 2)", &s), Ok(SlotValue::Float(3.09)));
        assert_eq!(eval("abs(0 - q)", &s), Ok(SlotValue::Int(3)));
        assert_eq!(eval("abs(-p)", &s), Ok(SlotValue::Float(2.5)));
        assert_eq!(eval("length(city) * 2", &s), Ok(SlotValue::Int(18)));
        let err = |t: &str| Expr::parse(t, &Names).unwrap_err();
        assert_eq!(err("name + 1"), "`+` needs numbers, not text (use concat() to join text)");
        assert_eq!(err("upper(q)"), "upper() at position 1 takes one text argument");
        assert!(err("frob(q)").starts_with("unknown function `frob` at position 1"));
        assert_eq!(err("concat(q"), "expected `,` or `)` at position 9 in the call of concat at position 1");
        assert_eq!(err("concat('x)"), "text opened at position 8 is never closed");
        assert_eq!(
            err("coalesce(q, name)"),
            "coalesce() at position 1 takes arguments that are all text or all numbers"
        );
    }

    #[test]
    fn types_and_precedence() {
        let s = [SlotValue::Int(3), SlotValue::Float(2.5), SlotValue::Null, SlotValue::Text, SlotValue::Text];
        assert_eq!(eval("q * p", &s), Ok(SlotValue::Float(7.5)));
        assert_eq!(eval("q * 2 + 1", &s), Ok(SlotValue::Int(7)));
        assert_eq!(eval("1 + q * 2", &s), Ok(SlotValue::Int(7)));
        assert_eq!(eval("(1 + q) * 2", &s), Ok(SlotValue::Int(8)));
        assert_eq!(eval("-q - -1", &s), Ok(SlotValue::Int(-2)));
        assert_eq!(eval("q / 2", &s), Ok(SlotValue::Float(1.5)));
        assert_eq!(eval("10 - 4 - 3", &s), Ok(SlotValue::Int(3)));
        assert_eq!(eval("12 / 3 / 2", &s), Ok(SlotValue::Float(2.0)));
        assert_eq!(eval("q * 1.5e1", &s), Ok(SlotValue::Float(45.0)));
        assert_eq!(eval("Q*P", &s), Ok(SlotValue::Float(7.5)));
        assert_eq!(eval("q + n", &s), Ok(SlotValue::Null));
        assert_eq!(Expr::parse("q * 2", &Names).unwrap().ty, SlotType::Int);
        assert_eq!(Expr::parse("q / 1", &Names).unwrap().ty, SlotType::Float);
    }

    #[test]
    fn row_errors() {
        let s = [SlotValue::Int(i64::MAX), SlotValue::Float(0.0), SlotValue::Int(0)];
        assert_eq!(eval("q + 1", &s), Err(EvalError::Overflow));
        assert_eq!(eval("q * q", &s), Err(EvalError::Overflow));
        assert_eq!(eval("1 / p", &s), Err(EvalError::DivisionByZero));
        assert_eq!(eval("q / n", &s), Err(EvalError::DivisionByZero));
        assert_eq!(eval("1e300 * 1e300 + p", &s), Err(EvalError::NotFinite));
    }

    #[test]
    fn config_errors_say_where() {
        let err = |t: &str| Expr::parse(t, &Names).unwrap_err();
        assert_eq!(err("quantty * p"), "unknown field `quantty`");
        assert_eq!(err("q *"), "expected a number, a field or `(` at position 4, found the end");
        assert_eq!(err("(q + 1"), "expected `)` at position 7 to close `(` at position 1");
        assert_eq!(err("q p"), "unexpected `p` at position 3");
        assert_eq!(err("q % 2"), "unexpected `%` at position 3");
        assert_eq!(err("  "), "empty expression");
        assert_eq!(
            err("99999999999999999999"),
            "integer literal 99999999999999999999 at position 1 is out of range"
        );
        assert_eq!(err("1.2.3"), "invalid number `1.2.3` at position 1");
        assert!(err(&"(".repeat(200)).contains("too deeply"));
        assert!(err(&"-".repeat(200)).contains("too deeply"));
    }
}
