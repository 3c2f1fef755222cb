//! The schema language of `weir.toml` compiled into column specs the row loop can apply fast.
//!
//! A `[[pipeline.columns]]` entry is a type (`types`: how a field's text becomes a value), plus
//! optional rules: nullability, `min`/`max`, `min_length`/`max_length`, `regex`, `values` for
//! enums, `unique` (`unique`: bounded memory) and a `default`. Everything that can be wrong in
//! the configuration is found here, once, with its location (`columns[3].regex: ...`); columns
//! without rules carry no [`Checks`] at all, so the common case costs one branch per field.

pub(crate) mod types;
pub(crate) mod unique;

type FxHashSet<T> = std::collections::HashSet<T, rustc_hash::FxBuildHasher>;
use weir_core::config::{normalize_field_name, ColumnConfig, ColumnType, Scalar};
use weir_core::Problem;

use self::types::{quoted, DateFormat, DateTimeFormat};
use crate::json_text;
use crate::slot::SlotValue;

/// Digits of a decimal column unless configured.
const DEFAULT_PRECISION: u8 = 18;
const DEFAULT_SCALE: u8 = 2;

#[derive(Debug, Clone)]
pub(crate) struct ColumnSpec {
    /// Normalized; for JSON input a dotted path (`user.id`).
    pub name: String,
    pub ty: ColumnType,
    pub required: bool,
    pub nullable: bool,
    pub date: DateFormat,
    pub datetime: DateTimeFormat,
    pub precision: u8,
    pub scale: u8,
    pub checks: Option<Box<Checks>>,
    pub unique: bool,
    pub default: Option<ColumnDefault>,
}

/// A value that can be ordered against a bound.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub(crate) enum Key {
    Num(f64),
    /// Packed dates (`types::pack_date`) or microseconds (datetimes).
    Time(i64),
}

/// Rules beyond the type.
#[derive(Debug, Clone, Default)]
pub(crate) struct Checks {
    pub min: Option<(Key, String)>,
    pub max: Option<(Key, String)>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub regex: Option<regex::Regex>,
    /// Allowed values of an enum, and as configured (for messages).
    pub values: FxHashSet<Box<[u8]>>,
    pub values_list: Vec<String>,
}

impl Checks {
    /// The reason a typed, non-empty value breaks a rule. `key` is its order key, if it has one.
    pub fn check(&self, text: &[u8], key: Option<Key>) -> Option<String> {
        if let Some(k) = key {
            if let Some((min, shown)) = &self.min {
                if k < *min {
                    return Some(format!("{} is less than the minimum {shown}", quoted(text)));
                }
            }
            if let Some((max, shown)) = &self.max {
                if k > *max {
                    return Some(format!("{} is more than the maximum {shown}", quoted(text)));
                }
            }
        }
        if self.min_length.is_some() || self.max_length.is_some() {
            let n = std::str::from_utf8(text).map_or(text.len(), |s| s.chars().count());
            if let Some(min) = self.min_length {
                if n < min {
                    return Some(format!("{} is {n} characters; the minimum is {min}", quoted(text)));
                }
            }
            if let Some(max) = self.max_length {
                if n > max {
                    return Some(format!("{} is {n} characters; the maximum is {max}", quoted(text)));
                }
            }
        }
        if !self.values.is_empty() && !self.values.contains(text) {
            let list: Vec<&str> = self.values_list.iter().take(10).map(String::as_str).collect();
            let more = if self.values_list.len() > 10 { ", ..." } else { "" };
            return Some(format!("{} is not one of {}{more}", quoted(text), list.join(", ")));
        }
        if let Some(re) = &self.regex {
            if !std::str::from_utf8(text).is_ok_and(|s| re.is_match(s)) {
                return Some(format!("{} does not match the pattern {}", quoted(text), re.as_str()));
            }
        }
        None
    }
}

/// A column's `default`, parsed once: its JSON text, its value for expressions and Parquet.
#[derive(Debug, Clone)]
pub(crate) struct ColumnDefault {
    pub json: Vec<u8>,
    pub value: DefaultValue,
}

impl ColumnDefault {
    /// What the default is in its slot, for expressions and numeric stats: what a field with
    /// the same text would be (`scale` is the column's, for a decimal).
    pub fn slot_value(&self, scale: u8) -> SlotValue {
        match self.value {
            DefaultValue::Int(i) => SlotValue::Int(i),
            DefaultValue::Float(f) => SlotValue::Float(f),
            DefaultValue::Decimal(v) => SlotValue::Float(types::decimal_to_f64(v, scale)),
            DefaultValue::Bool(_) => SlotValue::Null,
            DefaultValue::Text(_) | DefaultValue::Date(..) | DefaultValue::DateTime(..) => SlotValue::Text,
        }
    }

    /// The default's text, for text expressions (empty for numbers and booleans).
    pub fn text(&self) -> &[u8] {
        match &self.value {
            DefaultValue::Text(s) | DefaultValue::Date(_, s) | DefaultValue::DateTime(_, s) => s.as_bytes(),
            _ => b"",
        }
    }
}

/// A default's typed value (with the text as configured, for the text types).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DefaultValue {
    Int(i64),
    Float(f64),
    Decimal(i128),
    Bool(bool),
    Text(String),
    Date(i32, String),
    DateTime(i64, String),
}

impl ColumnSpec {
    /// Compiles one column; problems are pushed with `at` (`columns[3]`) as their location.
    pub fn compile(c: &ColumnConfig, at: &str, problems: &mut Vec<Problem>) -> ColumnSpec {
        let name = normalize_field_name(&c.name);
        let ty = c.ty;
        let mut date = DateFormat::Iso;
        let mut datetime = DateTimeFormat::Rfc3339;
        match (ty, c.format.as_deref()) {
            (ColumnType::Date, f) => match DateFormat::new(f) {
                Ok(d) => date = d,
                Err(e) => problems.push(Problem::new(format!("{at}.format"), e.to_string())),
            },
            (ColumnType::Datetime, f) => match DateTimeFormat::new(f) {
                Ok(d) => datetime = d,
                Err(e) => problems.push(Problem::new(format!("{at}.format"), e.to_string())),
            },
            (_, Some(_)) => problems
                .push(Problem::new(format!("{at}.format"), "only date and datetime columns take a format")),
            (_, None) => {}
        }
        let (mut precision, mut scale) = (DEFAULT_PRECISION, DEFAULT_SCALE);
        if ty == ColumnType::Decimal {
            precision = c.precision.unwrap_or(DEFAULT_PRECISION);
            scale = c.scale.unwrap_or(DEFAULT_SCALE.min(precision));
            if !(1..=38).contains(&precision) {
                problems.push(Problem::new(format!("{at}.precision"), "must be 1 to 38"));
                precision = DEFAULT_PRECISION;
            }
            if scale > precision {
                problems.push(Problem::new(
                    format!("{at}.scale"),
                    format!("must not exceed the precision ({precision})"),
                ));
                scale = 0;
            }
        } else {
            for (what, v) in [("precision", c.precision), ("scale", c.scale)] {
                if v.is_some() {
                    problems.push(Problem::new(
                        format!("{at}.{what}"),
                        format!("only decimal columns take a {what}"),
                    ));
                }
            }
        }
        let mut spec = ColumnSpec {
            name,
            ty,
            required: c.required,
            nullable: c.is_nullable(),
            date,
            datetime,
            precision,
            scale,
            checks: None,
            unique: c.unique,
            default: None,
        };

        let mut checks = Checks::default();
        let ordered = matches!(
            ty,
            ColumnType::Integer
                | ColumnType::Float
                | ColumnType::Decimal
                | ColumnType::Date
                | ColumnType::Datetime
        );
        for (what, bound, slot) in [("min", &c.min, &mut checks.min), ("max", &c.max, &mut checks.max)] {
            let Some(b) = bound else { continue };
            if !ordered {
                problems.push(Problem::new(format!("{at}.{what}"), format!("only integer, float, decimal, date and datetime columns take a {what} (use {what}_length for text)")));
                continue;
            }
            match spec.bound_key(b) {
                Ok(k) => *slot = Some((k, b.to_string())),
                Err(e) => problems.push(Problem::new(format!("{at}.{what}"), e.to_string())),
            }
        }
        if let (Some((lo, _)), Some((hi, _))) = (&checks.min, &checks.max) {
            if lo > hi {
                problems.push(Problem::new(at.to_string(), "min is greater than max"));
            }
        }
        let textual = matches!(ty, ColumnType::String | ColumnType::Email | ColumnType::Enum);
        for (what, v) in [("min_length", c.min_length), ("max_length", c.max_length)] {
            if v.is_some() && !textual {
                problems.push(Problem::new(
                    format!("{at}.{what}"),
                    format!("only string, email and enum columns take a {what}"),
                ));
            }
        }
        if let (Some(lo), Some(hi)) = (c.min_length, c.max_length) {
            if lo > hi {
                problems.push(Problem::new(at.to_string(), "min_length is greater than max_length"));
            }
        }
        checks.min_length = c.min_length;
        checks.max_length = c.max_length;
        if let Some(pattern) = &c.regex {
            // The whole value must match.
            match regex::RegexBuilder::new(&format!("^(?:{pattern})$")).size_limit(1 << 20).build() {
                Ok(re) => checks.regex = Some(re),
                Err(e) => {
                    let e = e.to_string().lines().last().unwrap_or_default().trim().to_string();
                    problems.push(Problem::new(
                        format!("{at}.regex"),
                        format!("invalid pattern {pattern:?}: {e}"),
                    ));
                }
            }
        }
        match (ty, c.values.is_empty()) {
            (ColumnType::Enum, true) => {
                problems.push(Problem::new(format!("{at}.values"), "an enum column needs its values"))
            }
            (ColumnType::Enum, false) => {
                checks.values = c.values.iter().map(|v| v.as_bytes().into()).collect();
                checks.values_list = c.values.clone();
            }
            (_, false) => {
                problems.push(Problem::new(format!("{at}.values"), "only enum columns take values"))
            }
            (_, true) => {}
        }
        let has_checks = checks.min.is_some()
            || checks.max.is_some()
            || checks.min_length.is_some()
            || checks.max_length.is_some()
            || checks.regex.is_some()
            || !checks.values.is_empty();
        if has_checks {
            spec.checks = Some(Box::new(checks));
        }
        if let Some(d) = &c.default {
            match spec.parse_default(d) {
                Ok(v) => spec.default = Some(v),
                Err(e) => problems.push(Problem::new(format!("{at}.default"), e.to_string())),
            }
        }
        spec
    }

    /// The order key of a bound written in the configuration.
    fn bound_key(&self, b: &Scalar) -> Result<Key, String> {
        match (self.ty, b) {
            (ColumnType::Integer | ColumnType::Float | ColumnType::Decimal, Scalar::Int(i)) => {
                Ok(Key::Num(*i as f64))
            }
            (ColumnType::Integer | ColumnType::Float | ColumnType::Decimal, Scalar::Float(f))
                if f.is_finite() =>
            {
                Ok(Key::Num(*f))
            }
            (ColumnType::Date, Scalar::Text(t)) => {
                self.date.parse_packed(t.as_bytes()).map(|d| Key::Time(d as i64)).ok_or_else(|| {
                    format!("{t:?} is not a date in the column's format ({})", self.date.pattern())
                })
            }
            (ColumnType::Datetime, Scalar::Text(t)) => {
                self.datetime.parse(t.as_bytes()).map(Key::Time).ok_or_else(|| {
                    format!("{t:?} is not a datetime in the column's format ({})", self.datetime.pattern())
                })
            }
            (ty, b) => Err(format!("{b} is not a valid bound for this {} column", ty.name())),
        }
    }

    /// Parses a configured default as this column's type.
    fn parse_default(&self, d: &Scalar) -> Result<ColumnDefault, String> {
        let text = d.to_string();
        let t = text.as_bytes();
        let bad = || format!("{} is not a valid {}", quoted(t), self.ty.name());
        let mut json = Vec::new();
        let value = match self.ty {
            ColumnType::Integer => DefaultValue::Int(types::parse_i64(t).map_err(|_| bad())?),
            ColumnType::Float => DefaultValue::Float(types::parse_f64(t).map_err(|_| bad())?.0),
            ColumnType::Decimal => {
                DefaultValue::Decimal(types::parse_decimal(t, self.precision, self.scale).map_err(|_| bad())?)
            }
            ColumnType::Boolean => DefaultValue::Bool(match d {
                Scalar::Bool(b) => *b,
                _ => types::parse_bool(t).ok_or_else(bad)?,
            }),
            ColumnType::Date => DefaultValue::Date(self.date.parse(t).ok_or_else(bad)?, text.clone()),
            ColumnType::Datetime => {
                DefaultValue::DateTime(self.datetime.parse(t).ok_or_else(bad)?, text.clone())
            }
            ColumnType::Email if !types::is_email(t) => return Err(bad()),
            ColumnType::String | ColumnType::Email | ColumnType::Enum => DefaultValue::Text(text.clone()),
        };
        if let (Some(c), ColumnType::Enum) = (&self.checks, self.ty) {
            if !c.values.contains(t) {
                return Err(format!("{} is not one of the enum's values", quoted(t)));
            }
        }
        match &value {
            DefaultValue::Int(i) => json_text::write_i64(&mut json, *i),
            DefaultValue::Float(f) => json_text::write_f64(&mut json, *f),
            DefaultValue::Decimal(v) => json_text::write_decimal(&mut json, *v, self.scale),
            DefaultValue::Bool(b) => json.extend_from_slice(if *b { b"true" } else { b"false" }),
            DefaultValue::Text(s) | DefaultValue::Date(_, s) | DefaultValue::DateTime(_, s) => {
                json_text::write_str(&mut json, s.as_bytes())
            }
        }
        Ok(ColumnDefault { json, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(c: ColumnConfig) -> Result<ColumnSpec, Vec<String>> {
        let mut problems = Vec::new();
        let spec = ColumnSpec::compile(&c, "columns[0]", &mut problems);
        if problems.is_empty() {
            Ok(spec)
        } else {
            Err(problems.iter().map(ToString::to_string).collect())
        }
    }

    #[test]
    fn every_configuration_problem_has_its_location() {
        let mut c = ColumnConfig::new("x", ColumnType::String);
        c.regex = Some("([a-z".into());
        c.min = Some(Scalar::Int(1));
        c.values = vec!["a".into()];
        c.precision = Some(3);
        c.format = Some("%Y".into());
        let p = compile(c).unwrap_err();
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(p[0].starts_with("columns[0].format: only date"), "{p:?}");
        assert!(p[1].starts_with("columns[0].precision"), "{p:?}");
        assert!(p[2].starts_with("columns[0].min: only integer"), "{p:?}");
        assert!(p[3].starts_with("columns[0].regex: invalid pattern \"([a-z\""), "{p:?}");
        assert!(p[4].starts_with("columns[0].values: only enum"), "{p:?}");

        let mut c = ColumnConfig::new("n", ColumnType::Integer);
        c.min = Some(Scalar::Text("a".into()));
        c.max_length = Some(3);
        c.default = Some(Scalar::Text("x".into()));
        let p = compile(c).unwrap_err();
        assert_eq!(
            p,
            vec![
                "columns[0].min: a is not a valid bound for this integer column",
                "columns[0].max_length: only string, email and enum columns take a max_length",
                "columns[0].default: \"x\" is not a valid integer",
            ]
        );
        let mut c = ColumnConfig::new("e", ColumnType::Enum);
        assert_eq!(
            compile(c.clone()).unwrap_err(),
            vec!["columns[0].values: an enum column needs its values"]
        );
        c.values = vec!["a".into()];
        c.default = Some(Scalar::Text("b".into()));
        assert_eq!(
            compile(c).unwrap_err(),
            vec!["columns[0].default: \"b\" is not one of the enum's values"]
        );
        let mut c = ColumnConfig::new("d", ColumnType::Date);
        c.min = Some(Scalar::Text("2024-02-30".into()));
        assert!(compile(c).unwrap_err()[0].contains("is not a date"));
    }

    #[test]
    fn checks_say_why() {
        let mut c = ColumnConfig::new("code", ColumnType::String);
        c.regex = Some("[A-Z]{3}-\\d+".into());
        c.min_length = Some(5);
        c.max_length = Some(8);
        let s = compile(c).unwrap();
        let ch = s.checks.as_ref().unwrap();
        assert_eq!(ch.check(b"ABC-12", None), None);
        assert_eq!(
            ch.check(b"ABC-1x", None).unwrap(),
            "\"ABC-1x\" does not match the pattern ^(?:[A-Z]{3}-\\d+)$"
        );
        assert_eq!(
            ch.check(b"xABC-12", None).unwrap(),
            "\"xABC-12\" does not match the pattern ^(?:[A-Z]{3}-\\d+)$"
        );
        assert_eq!(ch.check(b"AB-1", None).unwrap(), "\"AB-1\" is 4 characters; the minimum is 5");
        assert_eq!(
            ch.check(b"ABC-123456", None).unwrap(),
            "\"ABC-123456\" is 10 characters; the maximum is 8"
        );
        let mut c = ColumnConfig::new("q", ColumnType::Integer);
        c.min = Some(Scalar::Int(1));
        c.max = Some(Scalar::Float(99.5));
        let s = compile(c).unwrap();
        let ch = s.checks.as_ref().unwrap();
        assert_eq!(ch.check(b"0", Some(Key::Num(0.0))).unwrap(), "\"0\" is less than the minimum 1");
        assert_eq!(ch.check(b"100", Some(Key::Num(100.0))).unwrap(), "\"100\" is more than the maximum 99.5");
        assert_eq!(ch.check(b"5", Some(Key::Num(5.0))), None);
    }

    #[test]
    fn defaults_are_typed() {
        let mut c = ColumnConfig::new("d", ColumnType::Decimal);
        c.default = Some(Scalar::Float(1.5));
        let s = compile(c).unwrap();
        let d = s.default.unwrap();
        assert_eq!((d.json.as_slice(), d.value), (&b"1.50"[..], DefaultValue::Decimal(150)));
        let mut c = ColumnConfig::new("b", ColumnType::Boolean);
        c.default = Some(Scalar::Bool(true));
        assert_eq!(compile(c).unwrap().default.unwrap().json, b"true");
        let mut c = ColumnConfig::new("s", ColumnType::String);
        c.default = Some(Scalar::Text("n/a".into()));
        assert_eq!(compile(c).unwrap().default.unwrap().json, b"\"n/a\"");
    }
}
