//! Turning one field's bytes into a typed value, or into the reason it is not one.
//!
//! These run once per field per row, so each type has a fast path for the common spelling
//! (plain digits, `19.99`, `YYYY-MM-DD`) that allocates nothing, with general parsing (std's
//! float parser, chrono for other date formats) behind it. Reasons quote the raw value and say
//! what was expected; they are built only for invalid fields.

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// How a `date` column is parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DateFormat {
    /// `%Y-%m-%d` exactly: four-digit year, two-digit month and day, real calendar dates.
    Iso,
    /// Any other chrono format string.
    Chrono(String),
}

impl DateFormat {
    pub fn new(format: Option<&str>) -> Result<DateFormat, String> {
        match format {
            None | Some("%Y-%m-%d") => Ok(DateFormat::Iso),
            Some(f) => {
                if f.is_empty() || StrftimeItems::new(f).any(|i| matches!(i, Item::Error)) {
                    return Err(format!("invalid date format {f:?}"));
                }
                Ok(DateFormat::Chrono(f.to_string()))
            }
        }
    }

    pub fn pattern(&self) -> &str {
        match self {
            DateFormat::Iso => "%Y-%m-%d",
            DateFormat::Chrono(f) => f,
        }
    }

    #[cfg(test)]
    pub fn is_valid(&self, s: &[u8]) -> bool {
        self.parse(s).is_some()
    }

    /// A valid date, packed ([`pack_date`]).
    #[inline]
    pub fn parse_packed(&self, s: &[u8]) -> Option<u32> {
        match self {
            DateFormat::Iso => parse_iso_date(s).map(|(y, m, d)| pack_date(y as i32, m, d)),
            DateFormat::Chrono(f) => {
                use chrono::Datelike;
                let d = NaiveDate::parse_from_str(std::str::from_utf8(s).ok()?, f).ok()?;
                Some(pack_date(d.year(), d.month() as u8, d.day() as u8))
            }
        }
    }

    /// Days since 1970-01-01 of a valid date.
    pub fn parse(&self, s: &[u8]) -> Option<i32> {
        match self {
            DateFormat::Iso => parse_iso_date(s).map(|(y, m, d)| days_from_civil(y as i32, m, d)),
            DateFormat::Chrono(f) => {
                let d = NaiveDate::parse_from_str(std::str::from_utf8(s).ok()?, f).ok()?;
                Some((d - NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days() as i32)
            }
        }
    }
}

/// A date packed as `(year + 2^18) << 9 | month << 5 | day`: ordered as the dates are, and
/// cheaper to make than a day count (which only Parquet output needs, see [`packed_days`]).
#[inline]
pub(crate) fn pack_date(y: i32, m: u8, d: u8) -> u32 {
    (((y + (1 << 18)) as u32) << 9) | ((m as u32) << 5) | d as u32
}

/// Days since 1970-01-01 of a packed date.
pub(crate) fn packed_days(p: u32) -> i32 {
    days_from_civil((p >> 9) as i32 - (1 << 18), ((p >> 5) & 15) as u8, (p & 31) as u8)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i32, m: u8, d: u8) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i32 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// How a `datetime` column is parsed; values become microseconds since the Unix epoch (UTC;
/// a value without an offset is taken as UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DateTimeFormat {
    /// RFC 3339 (`2024-01-15T10:30:00Z`, `+07:00` offsets, fractions), also without an offset
    /// and with a space instead of `T`.
    Rfc3339,
    /// A chrono format string; `zoned` when it has an offset (`%z`, `%:z`).
    Chrono { format: String, zoned: bool },
}

impl DateTimeFormat {
    pub fn new(format: Option<&str>) -> Result<DateTimeFormat, String> {
        match format {
            None | Some("rfc3339") | Some("RFC3339") => Ok(DateTimeFormat::Rfc3339),
            Some(f) => {
                if f.is_empty() || StrftimeItems::new(f).any(|i| matches!(i, Item::Error)) {
                    return Err(format!("invalid datetime format {f:?}"));
                }
                let zoned = f.contains("%z") || f.contains("%:z") || f.contains("%#z");
                Ok(DateTimeFormat::Chrono { format: f.to_string(), zoned })
            }
        }
    }

    pub fn pattern(&self) -> &str {
        match self {
            DateTimeFormat::Rfc3339 => "RFC 3339, e.g. 2024-01-15T10:30:00Z",
            DateTimeFormat::Chrono { format, .. } => format,
        }
    }

    pub fn parse(&self, s: &[u8]) -> Option<i64> {
        let s = std::str::from_utf8(s).ok()?;
        match self {
            DateTimeFormat::Rfc3339 => {
                if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                    return Some(t.timestamp_micros());
                }
                for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
                    if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
                        return Some(t.and_utc().timestamp_micros());
                    }
                }
                None
            }
            DateTimeFormat::Chrono { format, zoned: true } => {
                DateTime::parse_from_str(s, format).ok().map(|t| t.timestamp_micros())
            }
            DateTimeFormat::Chrono { format, zoned: false } => {
                NaiveDateTime::parse_from_str(s, format).ok().map(|t| t.and_utc().timestamp_micros())
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecimalError {
    NotDecimal,
    /// More digits after the point than the scale.
    Scale,
    /// More significant digits than the precision.
    Precision,
}

/// An exact decimal `[+-]digits[.digits]`, as its value times `10^scale`.
pub(crate) fn parse_decimal(s: &[u8], precision: u8, scale: u8) -> Result<i128, DecimalError> {
    let (neg, s) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    let (int, frac) = match memchr::memchr(b'.', s) {
        Some(p) => (&s[..p], &s[p + 1..]),
        None => (s, &s[..0]),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.iter().chain(frac).all(u8::is_ascii_digit)
        || (memchr::memchr(b'.', s).is_some() && frac.is_empty() && int.is_empty())
    {
        return Err(DecimalError::NotDecimal);
    }
    // Trailing zeros after the point do not count against the scale.
    let frac_sig = frac.len() - frac.iter().rev().take_while(|&&b| b == b'0').count();
    if frac_sig > scale as usize {
        return Err(DecimalError::Scale);
    }
    let int = &int[int.iter().take_while(|&&b| b == b'0').count()..];
    if int.len() + scale as usize > precision as usize {
        return Err(DecimalError::Precision);
    }
    let mut v: i128 = 0;
    for &b in int {
        v = v * 10 + (b - b'0') as i128;
    }
    for i in 0..scale as usize {
        v = v * 10 + frac.get(i).map_or(0, |b| (b - b'0') as i128);
    }
    Ok(if neg { -v } else { v })
}

/// A scaled decimal as the float expressions and stats compute with.
#[inline]
pub(crate) fn decimal_to_f64(v: i128, scale: u8) -> f64 {
    v as f64 / 10f64.powi(scale as i32)
}

/// Spaces and tabs around typed values are not part of them.
#[inline]
pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    match (s.first(), s.last()) {
        (Some(b' ' | b'\t'), _) | (_, Some(b' ' | b'\t')) => {}
        _ => return s,
    }
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum IntError {
    NotInteger,
    OutOfRange,
}

/// A decimal integer with an optional sign.
#[inline]
pub(crate) fn parse_i64(s: &[u8]) -> Result<i64, IntError> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(IntError::NotInteger);
    }
    if digits.len() <= 18 {
        let mut v: i64 = 0;
        for &b in digits {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return Err(IntError::NotInteger);
            }
            v = v * 10 + d as i64;
        }
        return Ok(if neg { -v } else { v });
    }
    let mut v: u64 = 0;
    let mut overflow = false;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(IntError::NotInteger);
        }
        match v.checked_mul(10).and_then(|v| v.checked_add(d as u64)) {
            Some(n) => v = n,
            None => overflow = true,
        }
    }
    if overflow {
        return Err(IntError::OutOfRange);
    }
    if neg {
        if v <= i64::MAX as u64 + 1 {
            Ok((v as i64).wrapping_neg())
        } else {
            Err(IntError::OutOfRange)
        }
    } else {
        i64::try_from(v).map_err(|_| IntError::OutOfRange)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FloatError {
    NotNumber,
    NotFinite,
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
    1e19, 1e20, 1e21, 1e22,
];

/// A finite decimal number, and whether its text is already a JSON number with a fraction (so
/// it can be copied to the output as written). `-?digits(.digits)?` with at most 15
/// significant digits takes the exact fast path (Clinger: an exact mantissa divided by an exact
/// power of ten is correctly rounded); anything else goes through std's parser. NaN and
/// infinities are refused.
#[inline]
pub(crate) fn parse_f64(s: &[u8]) -> Result<(f64, bool), FloatError> {
    if let Some(v) = fast_f64(s) {
        return Ok(v);
    }
    let v: f64 = std::str::from_utf8(s).ok().and_then(|t| t.parse().ok()).ok_or(FloatError::NotNumber)?;
    if v.is_finite() {
        Ok((v, false))
    } else {
        Err(FloatError::NotFinite)
    }
}

#[inline]
fn fast_f64(s: &[u8]) -> Option<(f64, bool)> {
    let (neg, s) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut frac_digits = 0usize;
    let mut dot = 0usize;
    for (i, &b) in s.iter().enumerate() {
        let d = b.wrapping_sub(b'0');
        if d <= 9 {
            mantissa = mantissa * 10 + d as u64;
            if dot > 0 {
                frac_digits += 1;
            }
        } else if b == b'.' && dot == 0 && i > 0 && i + 1 < s.len() {
            dot = i;
        } else {
            return None;
        }
    }
    let digits = s.len() - (dot > 0) as usize;
    if digits > 15 {
        return None;
    }
    let v = mantissa as f64 / POW10[frac_digits];
    // JSON allows no leading zero before other integer digits.
    let json = dot > 0 && (s[0] != b'0' || dot == 1);
    Some((if neg { -v } else { v }, json))
}

/// `true/false`, `1/0`, `yes/no`, any case.
#[inline]
pub(crate) fn parse_bool(s: &[u8]) -> Option<bool> {
    if s.len() > 5 {
        return None;
    }
    let mut lower = [0u8; 5];
    for (l, b) in lower.iter_mut().zip(s) {
        *l = b.to_ascii_lowercase();
    }
    match &lower[..s.len()] {
        b"true" | b"1" | b"yes" => Some(true),
        b"false" | b"0" | b"no" => Some(false),
        _ => None,
    }
}

/// `YYYY-MM-DD` with a month of 1–12 and a day that exists in that month of that year.
#[inline]
pub(crate) fn parse_iso_date(s: &[u8]) -> Option<(u16, u8, u8)> {
    if s.len() != 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let d = |i: usize| -> Option<u16> {
        let v = s[i].wrapping_sub(b'0');
        (v <= 9).then_some(v as u16)
    };
    let year = d(0)? * 1000 + d(1)? * 100 + d(2)? * 10 + d(3)?;
    let month = (d(5)? * 10 + d(6)?) as u8;
    let day = (d(8)? * 10 + d(9)?) as u8;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some((year, month, day))
}

// `is_multiple_of` is newer than the workspace's rust-version (1.85).
#[allow(clippy::manual_is_multiple_of)]
fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A pragmatic address check: one `@`, a non-empty local part, a domain with a dot inside it
/// (not first or last, no empty labels), no whitespace or control characters.
pub(crate) fn is_email(s: &[u8]) -> bool {
    if s.len() > 254 || s.iter().any(|&b| b <= b' ' || b == 0x7F) {
        return false;
    }
    let Some(at) = memchr::memchr(b'@', s) else { return false };
    let (local, domain) = (&s[..at], &s[at + 1..]);
    !local.is_empty()
        && !domain.contains(&b'@')
        && domain.contains(&b'.')
        && domain.split(|&b| b == b'.').all(|label| !label.is_empty())
}

/// A raw value for a reason: quoted and escaped like a JSON string, shortened past 100 chars.
pub(crate) fn quoted(s: &[u8]) -> String {
    let text = String::from_utf8_lossy(s);
    let mut out = String::with_capacity(text.len().min(110) + 2);
    out.push('"');
    for (n, c) in text.chars().enumerate() {
        if n == 100 {
            out.push('…');
            break;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Types a sales row's fields: integer, float, ISO date, email (for the criterion benches).
#[doc(hidden)]
pub fn bench_validate(quantity: &[u8], price: &[u8], date: &[u8], email: &[u8]) -> bool {
    parse_i64(quantity).is_ok()
        && parse_f64(price).is_ok()
        && DateFormat::Iso.parse_packed(date).is_some()
        && is_email(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_i64(b"42"), Ok(42));
        assert_eq!(parse_i64(b"-7"), Ok(-7));
        assert_eq!(parse_i64(b"+7"), Ok(7));
        assert_eq!(parse_i64(b"007"), Ok(7));
        assert_eq!(parse_i64(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), Err(IntError::OutOfRange));
        assert_eq!(parse_i64(b"-9223372036854775809"), Err(IntError::OutOfRange));
        assert_eq!(parse_i64(b"99999999999999999999999"), Err(IntError::OutOfRange));
        for bad in [&b"1.5"[..], b"two", b"", b"-", b"1e3", b" 1", b"12345678901234567890x"] {
            assert_eq!(parse_i64(bad), Err(IntError::NotInteger), "{:?}", bad);
        }
    }

    #[test]
    fn floats() {
        for (s, v, json) in [
            ("19.99", 19.99, true),
            ("12.00", 12.0, true),
            ("-0.5", -0.5, true),
            ("7", 7.0, false),
            ("1e3", 1000.0, false),
            (".5", 0.5, false),
            ("007.5", 7.5, false),
            ("0.1", 0.1, true),
            ("+1.5", 1.5, false),
            ("123456789.123456", 123456789.123456, true),
            ("1234567891.123456", 1234567891.123456, false),
            ("12345678.1234567", 12345678.1234567, true),
        ] {
            assert_eq!(parse_f64(s.as_bytes()), Ok((v, json)), "{s}");
        }
        for s in ["NaN", "nan", "inf", "-Infinity", "1e999"] {
            assert_eq!(parse_f64(s.as_bytes()), Err(FloatError::NotFinite), "{s}");
        }
        for s in ["", "abc", "1.2.3", "1,5", "--1", "."] {
            assert_eq!(parse_f64(s.as_bytes()), Err(FloatError::NotNumber), "{s}");
        }
        // The fast path agrees with std on a sweep of short decimals.
        for i in 0..20000u64 {
            let s = format!("{}.{:02}", i / 7, i % 100);
            assert_eq!(fast_f64(s.as_bytes()), Some((s.parse::<f64>().unwrap(), true)), "{s}");
        }
    }

    #[test]
    fn booleans() {
        for (s, v) in
            [("true", true), ("FALSE", false), ("Yes", true), ("no", false), ("1", true), ("0", false)]
        {
            assert_eq!(parse_bool(s.as_bytes()), Some(v));
        }
        for s in ["", "2", "truee", "y", "t"] {
            assert_eq!(parse_bool(s.as_bytes()), None);
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_iso_date(b"2024-01-15"), Some((2024, 1, 15)));
        assert_eq!(parse_iso_date(b"2024-02-29"), Some((2024, 2, 29)));
        assert_eq!(parse_iso_date(b"2000-02-29"), Some((2000, 2, 29)));
        for bad in [
            "2024-02-30",
            "2023-02-29",
            "1900-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "2024-1-5",
            "2024/01/05",
            "20240105",
            "2024-01-0x",
        ] {
            assert_eq!(parse_iso_date(bad.as_bytes()), None, "{bad}");
        }
        // Agrees with chrono on every day of a leap and a non-leap year, and on impossible days.
        for y in [1900u16, 2000, 2023, 2024] {
            for m in 1..=12u8 {
                for d in 0..=32u8 {
                    let s = format!("{y:04}-{m:02}-{d:02}");
                    let chrono_ok = NaiveDate::parse_from_str(&s, "%Y-%m-%d").is_ok();
                    assert_eq!(parse_iso_date(s.as_bytes()).is_some(), chrono_ok, "{s}");
                }
            }
        }
        assert_eq!(DateFormat::Iso.parse(b"1970-01-01"), Some(0));
        assert_eq!(DateFormat::Iso.parse(b"2024-03-01"), Some(19783));
        assert_eq!(DateFormat::Iso.parse(b"1969-12-31"), Some(-1));
        for s in ["1969-12-31", "2024-02-29", "0001-01-01", "9999-12-31"] {
            let p = DateFormat::Iso.parse_packed(s.as_bytes()).unwrap();
            assert_eq!(packed_days(p), DateFormat::Iso.parse(s.as_bytes()).unwrap(), "{s}");
        }
        let p = |s: &str| DateFormat::Iso.parse_packed(s.as_bytes()).unwrap();
        assert!(p("2023-12-31") < p("2024-01-01") && p("2024-01-31") < p("2024-02-01"));
        let f = DateFormat::new(Some("%d/%m/%Y")).unwrap();
        assert_eq!(f.parse(b"01/03/2024"), Some(19783));
        assert!(f.is_valid(b"29/02/2024"));
        assert!(!f.is_valid(b"30/02/2024"));
        assert!(DateFormat::new(Some("%Q")).is_err());
        assert_eq!(DateFormat::new(Some("%Y-%m-%d")), Ok(DateFormat::Iso));
    }

    #[test]
    fn datetimes() {
        let f = DateTimeFormat::new(None).unwrap();
        assert_eq!(f.parse(b"1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(f.parse(b"1970-01-01T07:00:00+07:00"), Some(0));
        assert_eq!(f.parse(b"1970-01-01 00:00:00.5"), Some(500_000));
        assert_eq!(f.parse(b"2024-02-30T00:00:00Z"), None);
        assert_eq!(f.parse(b"2024-01-01"), None);
        let f = DateTimeFormat::new(Some("%d/%m/%Y %H:%M")).unwrap();
        assert_eq!(f.parse(b"01/01/1970 00:01"), Some(60_000_000));
        assert!(DateTimeFormat::new(Some("%Q")).is_err());
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal(b"19.99", 18, 2), Ok(1999));
        assert_eq!(parse_decimal(b"-0.5", 18, 2), Ok(-50));
        assert_eq!(parse_decimal(b"7", 18, 2), Ok(700));
        assert_eq!(parse_decimal(b"1.250", 18, 2), Ok(125));
        assert_eq!(parse_decimal(b".5", 18, 2), Ok(50));
        assert_eq!(parse_decimal(b"1.234", 18, 2), Err(DecimalError::Scale));
        assert_eq!(parse_decimal(b"12345", 5, 2), Err(DecimalError::Precision));
        assert_eq!(parse_decimal(b"00123.4", 5, 2), Ok(12340));
        for bad in [&b""[..], b".", b"1e3", b"NaN", b"1.2.3", b"--1", b"1,5"] {
            assert_eq!(parse_decimal(bad, 18, 2), Err(DecimalError::NotDecimal), "{bad:?}");
        }
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@example.co.uk", "x@sub.example.org"] {
            assert!(is_email(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "", "a", "@b.co", "a@b", "a@@b.co", "a@b@c.co", "a b@c.co", "a@.co", "a@b.", "a@b..co", "a@b.co ",
        ] {
            assert!(!is_email(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn quoting_and_trimming() {
        assert_eq!(quoted(b"two"), "\"two\"");
        assert_eq!(quoted(b"a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(quoted(&[b'x'; 150]).chars().count(), 103);
        assert_eq!(trim(b" \t5 "), b"5");
        assert_eq!(trim(b"   "), b"");
    }
}
