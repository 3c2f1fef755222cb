//! What one column's values showed, and the weir type that fits every one of them.
//!
//! Each non-empty value (trimmed of spaces and tabs, as weir trims typed values) is tested
//! against every type still possible, with weir's own rules: integers and decimals with an
//! optional sign, floats as Rust parses them, booleans `true/false/yes/no/1/0`, dates and
//! datetimes through chrono with the formats below, emails with weir's check. A type that one
//! value breaks is dropped for good, so the verdict fits every value read. Memory is bounded:
//! distinct values are counted as hashes up to a cap (then "at least"), and only a few short
//! values are kept (for enums and the example).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use weir_core::config::ColumnType;

/// Date formats tried, in order of preference when several fit (day-first before month-first).
pub const DATE_FORMATS: [&str; 6] = ["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y"];
/// Datetime formats tried; `rfc3339` is weir's default (also without an offset, `T` or space).
pub const DATETIME_FORMATS: [&str; 9] = [
    "rfc3339",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
];
/// An enum has at most this many values.
pub const ENUM_MAX_VALUES: usize = 10;
/// Enum values longer than this make the column a string.
const ENUM_MAX_VALUE_CHARS: usize = 64;
/// The example shown is cut at this many characters.
const EXAMPLE_CHARS: usize = 40;

/// Evidence for one reading of numbers: as written (`.` decimals) or with `,` read as `.`.
#[derive(Debug, Clone)]
struct Numbers {
    decimal: bool,
    float: bool,
    /// Digits after the separator: `None` until a value has a fraction.
    scale: Option<u8>,
    scale_mixed: bool,
    int_digits: u8,
}

impl Numbers {
    fn new() -> Self {
        Numbers { decimal: true, float: true, scale: None, scale_mixed: false, int_digits: 0 }
    }

    fn see(&mut self, t: &str) {
        if self.decimal {
            match decimal_shape(t) {
                Some((int, frac)) => {
                    self.int_digits = self.int_digits.max(int.min(255) as u8);
                    if frac > 0 {
                        match self.scale {
                            None => self.scale = Some(frac.min(255) as u8),
                            Some(s) if s as usize != frac => self.scale_mixed = true,
                            Some(_) => {}
                        }
                    }
                }
                None => self.decimal = false,
            }
        }
        if self.float && !t.parse::<f64>().is_ok_and(f64::is_finite) {
            self.float = false;
        }
    }
}

/// `[+-]digits[.digits]` (or `.digits`): the digits before and after the point.
fn decimal_shape(t: &str) -> Option<(usize, usize)> {
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if (int.is_empty() && frac.is_empty())
        || (t.contains('.') && frac.is_empty())
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let significant_int = int.trim_start_matches('0').len();
    Some((significant_int, frac.len()))
}

/// One column's evidence.
#[derive(Debug, Clone)]
pub struct ColumnStats {
    /// As the file has it (CSV header, JSON dotted path).
    pub header: String,
    pub non_empty: u64,
    integer: bool,
    leading_zero: bool,
    plain: Numbers,
    comma: Numbers,
    /// Whether any value had a `,` (so only the comma reading makes it a number).
    saw_comma: bool,
    boolean: bool,
    boolean_word: bool,
    email: bool,
    nested: bool,
    dates: u16,
    datetimes: u16,
    distinct: HashSet<u64>,
    pub distinct_capped: bool,
    /// Distinct values in first-seen order, while there are few and short ones.
    values: Vec<String>,
    values_overflow: bool,
    pub example: Option<String>,
    pub max_chars: usize,
}

/// Which decimal separator the file's numbers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalSeparator {
    Point,
    Comma,
}

/// The type a column gets, with its type's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub ty: ColumnType,
    pub format: Option<String>,
    pub scale: Option<u8>,
    pub precision: Option<u8>,
    pub values: Vec<String>,
    /// Other formats that fit every value too (an ambiguous day/month order).
    pub also_fits: Vec<String>,
}

impl ColumnStats {
    pub fn new(header: &str) -> Self {
        ColumnStats {
            header: header.to_string(),
            non_empty: 0,
            integer: true,
            leading_zero: false,
            plain: Numbers::new(),
            comma: Numbers::new(),
            saw_comma: false,
            boolean: true,
            boolean_word: false,
            email: true,
            nested: false,
            dates: (1 << DATE_FORMATS.len()) - 1,
            datetimes: (1 << DATETIME_FORMATS.len()) - 1,
            distinct: HashSet::new(),
            distinct_capped: false,
            values: Vec::new(),
            values_overflow: false,
            example: None,
            max_chars: 0,
        }
    }

    pub fn distinct(&self) -> usize {
        self.distinct.len()
    }

    /// An object or array value (JSON): the column can only be a string.
    pub fn see_nested(&mut self, text: &str, distinct_budget: &mut usize) {
        self.nested = true;
        self.see(text, distinct_budget);
    }

    /// One value; empty ones are not passed here. `distinct_budget` is shared by all columns
    /// and bounds the hashes kept.
    pub fn see(&mut self, raw: &str, distinct_budget: &mut usize) {
        let t = raw.trim_matches([' ', '\t']);
        if t.is_empty() {
            return;
        }
        self.non_empty += 1;
        let chars = t.chars().count();
        self.max_chars = self.max_chars.max(chars);
        if self.example.is_none() {
            self.example = Some(if chars > EXAMPLE_CHARS {
                format!("{}…", t.chars().take(EXAMPLE_CHARS).collect::<String>())
            } else {
                t.to_string()
            });
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        t.hash(&mut h);
        let hash = h.finish();
        if !self.distinct_capped && !self.distinct.contains(&hash) {
            if *distinct_budget == 0 {
                self.distinct_capped = true;
            } else {
                *distinct_budget -= 1;
                self.distinct.insert(hash);
                if !self.values_overflow {
                    if self.values.len() < ENUM_MAX_VALUES && chars <= ENUM_MAX_VALUE_CHARS {
                        self.values.push(t.to_string());
                    } else {
                        self.values_overflow = true;
                    }
                }
            }
        }
        if self.nested {
            return;
        }
        if self.integer {
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || t.parse::<i64>().is_err() {
                self.integer = false;
            } else if digits.len() > 1 && digits.starts_with('0') {
                self.leading_zero = true;
            }
        }
        self.plain.see(t);
        if t.contains(',') {
            self.saw_comma = true;
            self.comma.see(&t.replace(',', "."));
        } else {
            self.comma.see(t);
        }
        if self.boolean {
            match t.to_ascii_lowercase().as_str() {
                "true" | "false" | "yes" | "no" => self.boolean_word = true,
                "1" | "0" => {}
                _ => self.boolean = false,
            }
        }
        if self.email && !is_email(t) {
            self.email = false;
        }
        if self.dates != 0 {
            for (i, f) in DATE_FORMATS.iter().enumerate() {
                if self.dates & (1 << i) != 0 && !date_fits(t, f) {
                    self.dates &= !(1 << i);
                }
            }
        }
        if self.datetimes != 0 {
            for (i, f) in DATETIME_FORMATS.iter().enumerate() {
                if self.datetimes & (1 << i) != 0 && !datetime_fits(t, f) {
                    self.datetimes &= !(1 << i);
                }
            }
        }
    }

    /// Whether the column's values are numbers only when `,` is read as the decimal point.
    pub fn wants_decimal_comma(&self) -> bool {
        self.non_empty > 0
            && !self.nested
            && self.saw_comma
            && !self.integer
            && (self.comma.decimal || self.comma.float)
            && !(self.plain.decimal || self.plain.float)
    }

    /// The type that fits every value seen, with the file's decimal separator.
    pub fn verdict(&self, sep: DecimalSeparator) -> Verdict {
        let mut v = Verdict {
            ty: ColumnType::String,
            format: None,
            scale: None,
            precision: None,
            values: Vec::new(),
            also_fits: Vec::new(),
        };
        if self.non_empty == 0 || self.nested {
            return v;
        }
        let numbers = match sep {
            DecimalSeparator::Point => &self.plain,
            DecimalSeparator::Comma => &self.comma,
        };
        if self.boolean && self.boolean_word {
            v.ty = ColumnType::Boolean;
        } else if self.integer && !self.leading_zero {
            v.ty = ColumnType::Integer;
        } else if self.integer {
            // Leading zeros (codes, ZIPs) would be lost as a number.
        } else if numbers.decimal
            && numbers.scale.is_some()
            && !numbers.scale_mixed
            && !self.leading_zero_int()
        {
            let scale = numbers.scale.unwrap_or(0);
            v.ty = ColumnType::Decimal;
            v.scale = Some(scale);
            let needed = numbers.int_digits as usize + scale as usize;
            if needed > 18 {
                v.precision = Some(needed.min(38) as u8);
            }
            if needed > 38 {
                v.ty = ColumnType::Float;
                v.scale = None;
                v.precision = None;
            }
        } else if numbers.float && !self.leading_zero_int() {
            v.ty = ColumnType::Float;
        } else if self.datetimes != 0 {
            let fits = fitting(&DATETIME_FORMATS, self.datetimes);
            v.ty = ColumnType::Datetime;
            v.format = (fits[0] != "rfc3339").then(|| fits[0].to_string());
            v.also_fits = fits[1..].iter().map(|s| s.to_string()).collect();
        } else if self.dates != 0 {
            let fits = fitting(&DATE_FORMATS, self.dates);
            v.ty = ColumnType::Date;
            v.format = Some(fits[0].to_string());
            v.also_fits = fits[1..].iter().map(|s| s.to_string()).collect();
        } else if self.email {
            v.ty = ColumnType::Email;
        } else if !self.values_overflow
            && !self.distinct_capped
            && self.values.len() <= ENUM_MAX_VALUES
            && self.non_empty >= 10
            && self.non_empty >= 2 * self.values.len() as u64
        {
            v.ty = ColumnType::Enum;
            v.values = self.values.clone();
            v.values.sort();
        }
        v
    }

    /// Integers-with-fraction such as `007.5`: kept as text like integers with leading zeros.
    fn leading_zero_int(&self) -> bool {
        self.leading_zero
    }
}

fn fitting(formats: &[&'static str], mask: u16) -> Vec<&'static str> {
    formats.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, f)| *f).collect()
}

/// weir's `date` check: `%Y-%m-%d` strictly (10 characters), other formats through chrono.
fn date_fits(t: &str, format: &str) -> bool {
    if format == "%Y-%m-%d" {
        return t.len() == 10 && t.as_bytes()[4] == b'-' && NaiveDate::parse_from_str(t, format).is_ok();
    }
    NaiveDate::parse_from_str(t, format).is_ok()
}

/// weir's `datetime` check (`rfc3339` also takes no offset, and a space for `T`).
fn datetime_fits(t: &str, format: &str) -> bool {
    if format == "rfc3339" {
        return DateTime::parse_from_rfc3339(t).is_ok()
            || ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .any(|f| NaiveDateTime::parse_from_str(t, f).is_ok());
    }
    NaiveDateTime::parse_from_str(t, format).is_ok()
}

/// weir's email check: one `@`, a non-empty local part, a dotted domain without empty labels,
/// no whitespace or control characters.
fn is_email(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() > 254 || b.iter().any(|&c| c <= b' ' || c == 0x7F) {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(values: &[&str], sep: DecimalSeparator) -> Verdict {
        let mut c = ColumnStats::new("x");
        let mut budget = 1000;
        for v in values {
            c.see(v, &mut budget);
        }
        c.verdict(sep)
    }

    fn ty(values: &[&str]) -> ColumnType {
        verdict(values, DecimalSeparator::Point).ty
    }

    #[test]
    fn each_type_from_its_values() {
        assert_eq!(ty(&["1", "-2", "+30"]), ColumnType::Integer);
        assert_eq!(ty(&["007", "12"]), ColumnType::String, "leading zeros stay text");
        assert_eq!(ty(&["1.5", "2.25"]), ColumnType::Float);
        assert_eq!(ty(&["1e3", "2"]), ColumnType::Float);
        let d = verdict(&["29.99", "5", "100.50"], DecimalSeparator::Point);
        assert_eq!((d.ty, d.scale), (ColumnType::Decimal, Some(2)));
        assert_eq!(ty(&["true", "no", "1"]), ColumnType::Boolean);
        assert_eq!(ty(&["0", "1"]), ColumnType::Integer, "0/1 alone stays a number");
        assert_eq!(ty(&["a@b.co", "x.y@example.org"]), ColumnType::Email);
        assert_eq!(ty(&["a@b.co", "nobody"]), ColumnType::String);
        let d = verdict(&["2024-01-15", "2024-02-29"], DecimalSeparator::Point);
        assert_eq!((d.ty, d.format.as_deref()), (ColumnType::Date, Some("%Y-%m-%d")));
        let d = verdict(&["15/01/2024", "01/02/2024"], DecimalSeparator::Point);
        assert_eq!((d.ty, d.format.as_deref()), (ColumnType::Date, Some("%d/%m/%Y")));
        let d = verdict(&["01/15/2024", "02/01/2024"], DecimalSeparator::Point);
        assert_eq!((d.ty, d.format.as_deref()), (ColumnType::Date, Some("%m/%d/%Y")));
        let d = verdict(&["01/02/2024"], DecimalSeparator::Point);
        assert_eq!(d.also_fits, vec!["%m/%d/%Y"]);
        let d = verdict(&["2026-01-03T10:00:00Z", "2026-01-03 10:05:00"], DecimalSeparator::Point);
        assert_eq!((d.ty, d.format), (ColumnType::Datetime, None));
        let d = verdict(&["31/12/2024 23:59"], DecimalSeparator::Point);
        assert_eq!((d.ty, d.format.as_deref()), (ColumnType::Datetime, Some("%d/%m/%Y %H:%M")));
        assert_eq!(ty(&["2024-02-30"]), ColumnType::String, "not a real day");
    }

    #[test]
    fn enums_need_few_values_seen_often() {
        let many: Vec<&str> = ["a", "b", "c"].iter().cycle().take(30).copied().collect();
        let v = verdict(&many, DecimalSeparator::Point);
        assert_eq!((v.ty, v.values), (ColumnType::Enum, vec!["a".to_string(), "b".into(), "c".into()]));
        assert_eq!(ty(&["a", "b", "c"]), ColumnType::String, "three rows say too little");
        let names: Vec<String> = (0..30).map(|i| format!("n{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(ty(&names), ColumnType::String);
    }

    #[test]
    fn decimal_commas_only_with_the_comma_reading() {
        let mut c = ColumnStats::new("amount");
        let mut budget = 100;
        for v in ["1,50", "20,00", "3"] {
            c.see(v, &mut budget);
        }
        assert!(c.wants_decimal_comma());
        assert_eq!(c.verdict(DecimalSeparator::Point).ty, ColumnType::String);
        let v = c.verdict(DecimalSeparator::Comma);
        assert_eq!((v.ty, v.scale), (ColumnType::Decimal, Some(2)));
    }

    #[test]
    fn distinct_values_are_bounded_by_the_budget() {
        let mut c = ColumnStats::new("id");
        let mut budget = 5;
        for i in 0..100 {
            c.see(&i.to_string(), &mut budget);
        }
        assert_eq!((c.distinct(), c.distinct_capped, budget), (5, true, 0));
        assert_eq!(c.verdict(DecimalSeparator::Point).ty, ColumnType::Integer);
    }
}
