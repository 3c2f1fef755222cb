//! Derived-field expressions: `quantity * price`, `(a + b) / 2`, `-discount`.
//!
//! Parsed once by a small recursive-descent parser when the plan is compiled, with every problem
//! reported by position, and evaluated per row over a tree whose leaves are value slots. The
//! result type is fixed at compile time: integer when every operand is an integer and only
//! `+ - *` (and unary minus) are used, evaluated with checked `i64` arithmetic; float otherwise.
//! A null operand (an empty optional field) makes the result null.

use std::fmt;

/// A value of the current row as an expression sees it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) enum Num {
    #[default]
    Null,
    Int(i64),
    Float(f64),
}

impl Num {
    #[inline]
    pub fn as_f64(self) -> Option<f64> {
        match self {
            Num::Null => None,
            Num::Int(i) => Some(i as f64),
            Num::Float(f) => Some(f),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Int(i64),
    Float(f64),
    Slot(usize),
    Neg(Box<Node>),
    Bin(Op, Box<Node>, Box<Node>),
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

/// A compiled expression and whether it yields integers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expr {
    pub root: Node,
    pub integer: bool,
}

/// What the parser needs to know about a name: its slot and whether it holds integers.
pub(crate) trait Scope {
    fn lookup(&self, name: &str) -> Result<(usize, bool), String>;
}

impl Expr {
    pub fn parse(text: &str, scope: &dyn Scope) -> Result<Expr, String> {
        let mut p = Parser { s: text.as_bytes(), i: 0, scope };
        p.skip_ws();
        if p.i == p.s.len() {
            return Err("empty expression".into());
        }
        let (root, integer) = p.expr(0)?;
        p.skip_ws();
        if p.i < p.s.len() {
            return Err(format!("unexpected `{}` at position {}", p.rest_token(), p.i + 1));
        }
        Ok(Expr { root, integer })
    }

    #[inline]
    pub fn eval(&self, slots: &[Num]) -> Result<Num, EvalError> {
        if self.integer {
            Ok(eval_int(&self.root, slots)?.map_or(Num::Null, Num::Int))
        } else {
            match eval_float(&self.root, slots)? {
                None => Ok(Num::Null),
                Some(v) if v.is_finite() => Ok(Num::Float(v)),
                Some(_) => Err(EvalError::NotFinite),
            }
        }
    }
}

fn eval_int(n: &Node, slots: &[Num]) -> Result<Option<i64>, EvalError> {
    Ok(match n {
        Node::Int(v) => Some(*v),
        Node::Slot(s) => match slots[*s] {
            Num::Int(v) => Some(v),
            _ => None,
        },
        Node::Neg(a) => match eval_int(a, slots)? {
            Some(v) => Some(v.checked_neg().ok_or(EvalError::Overflow)?),
            None => None,
        },
        Node::Bin(op, a, b) => {
            let (Some(x), Some(y)) = (eval_int(a, slots)?, eval_int(b, slots)?) else { return Ok(None) };
            let r = match op {
                Op::Add => x.checked_add(y),
                Op::Sub => x.checked_sub(y),
                Op::Mul => x.checked_mul(y),
                Op::Div => unreachable!("division makes an expression float"),
            };
            Some(r.ok_or(EvalError::Overflow)?)
        }
        Node::Float(_) => unreachable!("a float literal makes an expression float"),
    })
}

#[inline]
fn eval_float(n: &Node, slots: &[Num]) -> Result<Option<f64>, EvalError> {
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
    eval_float_tree(n, slots)
}

fn eval_float_tree(n: &Node, slots: &[Num]) -> Result<Option<f64>, EvalError> {
    Ok(match n {
        Node::Int(v) => Some(*v as f64),
        Node::Float(v) => Some(*v),
        Node::Slot(s) => slots[*s].as_f64(),
        Node::Neg(a) => eval_float(a, slots)?.map(|v| -v),
        Node::Bin(op, a, b) => {
            let (Some(x), Some(y)) = (eval_float(a, slots)?, eval_float(b, slots)?) else { return Ok(None) };
            Some(match op {
                Op::Add => x + y,
                Op::Sub => x - y,
                Op::Mul => x * y,
                Op::Div if y == 0.0 => return Err(EvalError::DivisionByZero),
                Op::Div => x / y,
            })
        }
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    scope: &'a dyn Scope,
}

const MAX_DEPTH: usize = 64;

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
    fn expr(&mut self, depth: usize) -> Result<(Node, bool), String> {
        if depth > MAX_DEPTH {
            return Err("expression nested too deeply".into());
        }
        let (mut node, mut int) = self.term(depth)?;
        while let Some(c @ (b'+' | b'-')) = self.peek() {
            self.i += 1;
            let (rhs, rint) = self.term(depth)?;
            let op = if c == b'+' { Op::Add } else { Op::Sub };
            node = Node::Bin(op, Box::new(node), Box::new(rhs));
            int &= rint;
        }
        Ok((node, int))
    }

    /// term := unary (('*' | '/') unary)*
    fn term(&mut self, depth: usize) -> Result<(Node, bool), String> {
        let (mut node, mut int) = self.unary(depth)?;
        while let Some(c @ (b'*' | b'/')) = self.peek() {
            self.i += 1;
            let (rhs, rint) = self.unary(depth)?;
            let op = if c == b'*' { Op::Mul } else { Op::Div };
            int &= rint && op == Op::Mul;
            node = Node::Bin(op, Box::new(node), Box::new(rhs));
        }
        Ok((node, int))
    }

    /// unary := '-' unary | '+' unary | primary
    fn unary(&mut self, depth: usize) -> Result<(Node, bool), String> {
        if depth > MAX_DEPTH {
            return Err("expression nested too deeply".into());
        }
        match self.peek() {
            Some(b'-') => {
                self.i += 1;
                let (n, int) = self.unary(depth + 1)?;
                Ok((Node::Neg(Box::new(n)), int))
            }
            Some(b'+') => {
                self.i += 1;
                self.unary(depth + 1)
            }
            _ => self.primary(depth),
        }
    }

    /// primary := number | name | '(' expr ')'
    fn primary(&mut self, depth: usize) -> Result<(Node, bool), String> {
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
            Some(c) if c.is_ascii_digit() || c == b'.' => self.number(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
                {
                    self.i += 1;
                }
                let name = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default();
                let (slot, int) = self.scope.lookup(&name.to_ascii_lowercase())?;
                Ok((Node::Slot(slot), int))
            }
            Some(_) => Err(format!("unexpected `{}` at position {at}", self.rest_token())),
        }
    }

    fn number(&mut self) -> Result<(Node, bool), String> {
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
                .map(|v| (Node::Int(v), true))
                .map_err(|_| format!("integer literal {text} at position {at} is out of range"))
        } else {
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok((Node::Float(v), false)),
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
        fn lookup(&self, name: &str) -> Result<(usize, bool), String> {
            match name {
                "q" => Ok((0, true)),
                "p" => Ok((1, false)),
                "n" => Ok((2, true)),
                "name" => Err("field `name` is string, not numeric".into()),
                other => Err(format!("unknown field `{other}`")),
            }
        }
    }

    fn eval(text: &str, slots: &[Num]) -> Result<Num, EvalError> {
        Expr::parse(text, &Names).unwrap().eval(slots)
    }

    #[test]
    fn types_and_precedence() {
        let s = [Num::Int(3), Num::Float(2.5), Num::Null];
        assert_eq!(eval("q * p", &s), Ok(Num::Float(7.5)));
        assert_eq!(eval("q * 2 + 1", &s), Ok(Num::Int(7)));
        assert_eq!(eval("1 + q * 2", &s), Ok(Num::Int(7)));
        assert_eq!(eval("(1 + q) * 2", &s), Ok(Num::Int(8)));
        assert_eq!(eval("-q - -1", &s), Ok(Num::Int(-2)));
        assert_eq!(eval("q / 2", &s), Ok(Num::Float(1.5)));
        assert_eq!(eval("10 - 4 - 3", &s), Ok(Num::Int(3)));
        assert_eq!(eval("12 / 3 / 2", &s), Ok(Num::Float(2.0)));
        assert_eq!(eval("q * 1.5e1", &s), Ok(Num::Float(45.0)));
        assert_eq!(eval("Q*P", &s), Ok(Num::Float(7.5)));
        assert_eq!(eval("q + n", &s), Ok(Num::Null));
        assert!(Expr::parse("q * 2", &Names).unwrap().integer);
        assert!(!Expr::parse("q / 1", &Names).unwrap().integer);
    }

    #[test]
    fn row_errors() {
        let s = [Num::Int(i64::MAX), Num::Float(0.0), Num::Int(0)];
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
        assert_eq!(err("name + 1"), "field `name` is string, not numeric");
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
