//! Row values in PostgreSQL's binary formats, for `COPY ... (FORMAT binary)`.
//!
//! tokio-postgres frames the COPY stream (`binary_copy`); each value is written here through
//! its `ToSql` trait. The formats are PostgreSQL's `*send`/`*recv` ones: big-endian integers
//! and floats, dates as days and timestamps as microseconds since 2000-01-01, `numeric` as
//! base-10000 digits, `jsonb` as a version byte and the JSON text. weir's cells are already
//! typed and scaled, so no value goes through a string on its way.

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// Days from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01T00:00:00Z to 2000-01-01T00:00:00Z.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// One value of a row, as the table's column type has it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PgValue<'a> {
    Null,
    /// `bigint`.
    Int8(i64),
    /// `double precision`.
    Float8(f64),
    Bool(bool),
    /// `text`: UTF-8 bytes.
    Text(&'a [u8]),
    /// `numeric`: the value times `10^scale`.
    Numeric {
        scaled: i128,
        scale: u8,
    },
    /// `date`: days since 1970-01-01.
    Date(i32),
    /// `timestamptz`: microseconds since 1970-01-01T00:00:00Z.
    Timestamptz(i64),
    /// `jsonb`: JSON text.
    Jsonb(&'a [u8]),
}

impl ToSql for PgValue<'_> {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match *self {
            PgValue::Null => return Ok(IsNull::Yes),
            PgValue::Int8(v) => out.put_i64(v),
            PgValue::Float8(v) => out.put_f64(v),
            PgValue::Bool(v) => out.put_u8(u8::from(v)),
            PgValue::Text(t) => out.put_slice(t),
            PgValue::Numeric { scaled, scale } => numeric(scaled, scale, out),
            PgValue::Date(days) => out.put_i32(days.checked_sub(PG_EPOCH_DAYS).ok_or("date out of range")?),
            PgValue::Timestamptz(micros) => {
                out.put_i64(micros.checked_sub(PG_EPOCH_MICROS).ok_or("timestamp out of range")?)
            }
            PgValue::Jsonb(text) => {
                out.put_u8(1);
                out.put_slice(text);
            }
        }
        Ok(IsNull::No)
    }

    /// The table's types are checked against the pipeline's before a load
    /// ([`crate::table`]), and the COPY's column types are those.
    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// `numeric`'s binary form: digit count, weight (of the first digit, in base-10000 places),
/// sign, display scale, then the base-10000 digits. `scaled` is the value times `10^scale`.
/// Written without allocating: it runs once per decimal value of every row.
fn numeric(scaled: i128, scale: u8, out: &mut BytesMut) {
    /// An i128 has at most 39 decimal digits: 10 base-10000 digits before the point.
    const INT_MAX: usize = 10;
    /// A scale of at most 255 is at most 64 base-10000 digits after the point.
    const FRAC_MAX: usize = 64;
    let negative = scaled < 0;
    let magnitude = scaled.unsigned_abs();
    // 10^scale overflows u128 past 38: no i128 has a digit that far up, so it is all fraction.
    let (mut int, frac) = match 10u128.checked_pow(u32::from(scale)) {
        Some(pow) => (magnitude / pow, magnitude % pow),
        None => (0, magnitude),
    };
    // Base-10000 digits, most significant first: the integer part's, then the fraction's
    // (left-aligned to whole digits, so the last may hold trailing zeros).
    let mut digits = [0i16; INT_MAX + FRAC_MAX];
    let mut int_groups = [0i16; INT_MAX];
    let mut n_int = 0;
    while int > 0 {
        int_groups[n_int] = (int % 10_000) as i16;
        int /= 10_000;
        n_int += 1;
    }
    for (d, g) in digits.iter_mut().zip(int_groups[..n_int].iter().rev()) {
        *d = *g;
    }
    let frac_digits = usize::from(scale).div_ceil(4);
    let pad = (frac_digits * 4 - usize::from(scale)) as u32;
    // The fraction times 10^pad, taken apart from its last digit up; a fraction too long for
    // u128 once padded has its digits found before the padding instead.
    let mut frac = frac;
    let mut pos = n_int + frac_digits;
    let mut shift = pad;
    while pos > n_int {
        pos -= 1;
        let (digit, rest) = if shift > 0 {
            let p = 10u128.pow(4 - shift);
            let d = (frac % p) as i16 * 10i16.pow(shift);
            shift = 0;
            (d, frac / p)
        } else {
            ((frac % 10_000) as i16, frac / 10_000)
        };
        digits[pos] = digit;
        frac = rest;
    }
    let all = &digits[..n_int + frac_digits];
    let mut weight = n_int as i16 - 1;
    // No leading or trailing zero digits (PostgreSQL's own form; the weight says where they were).
    let leading = all.iter().take_while(|d| **d == 0).count();
    weight -= leading as i16;
    let trailing = all[leading..].iter().rev().take_while(|d| **d == 0).count();
    let kept = &all[leading..all.len() - trailing];
    if kept.is_empty() {
        weight = 0;
    }
    out.put_i16(kept.len() as i16);
    out.put_i16(weight);
    out.put_u16(if negative && !kept.is_empty() { 0x4000 } else { 0 });
    out.put_u16(u16::from(scale));
    for d in kept {
        out.put_i16(*d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_words(scaled: i128, scale: u8) -> Vec<i16> {
        let mut out = BytesMut::new();
        numeric(scaled, scale, &mut out);
        out.chunks(2).map(|c| i16::from_be_bytes([c[0], c[1]])).collect()
    }

    #[test]
    fn numerics_are_base_10000_digits() {
        // ndigits, weight, sign, dscale, digits...
        assert_eq!(numeric_words(1230, 2), [2, 0, 0, 2, 12, 3000]); // 12.30
        assert_eq!(numeric_words(-5, 2), [1, -1, 0x4000, 2, 500]); // -0.05
        assert_eq!(numeric_words(0, 2), [0, 0, 0, 2]);
        assert_eq!(numeric_words(1_234_567_891_234, 4), [4, 2, 0, 4, 1, 2345, 6789, 1234]); // 123456789.1234
        assert_eq!(numeric_words(100_000_000, 0), [1, 2, 0, 0, 1]); // 1e8
        assert_eq!(numeric_words(1, 5), [1, -2, 0, 5, 1000]); // 0.00001
        assert_eq!(numeric_words(123_456, 3), [2, 0, 0, 3, 123, 4560]); // 123.456
        assert_eq!(numeric_words(i128::MAX, 0).len(), 4 + 10);
        assert_eq!(numeric_words(-1, 40), [1, -10, 0x4000, 40, 1]); // -1e-40
    }
}
