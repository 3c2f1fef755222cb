//! JSON text: the one place values become JSON (strings escaped, integers, floats, decimals),
//! for every writer: the NDJSON and JSON-document outputs, the error report, column defaults,
//! the JSON reader's unknown keys and the expressions' text conversions.
//!
//! This is the hottest code after parsing. Strings are copied whole when no byte needs escaping
//! (the usual case, found eight bytes at a time with [`crate::swar`]) and escaped byte by byte
//! otherwise; input is already known to be UTF-8, so only `"`, `\\` and control characters are
//! escaped. Integers go through `itoa`; floats are the shortest text that reads back to the same
//! value (a fast path for short decimals, else `ryu`).

use crate::swar::{eq_mask, lt_mask};

/// Which bytes need escaping inside a JSON string: 0 = none, else the escape letter, or `u`.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0C] = b'f';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// `out.extend_from_slice(s)` for the short slices output is made of (keys, most values):
/// up to 32 bytes are moved with two overlapping unaligned loads and stores instead of a call
/// to `memcpy`.
#[inline(always)]
pub(crate) fn put(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if !(4..=32).contains(&n) {
        out.extend_from_slice(s);
        return;
    }
    out.reserve(32);
    let len = out.len();
    // SAFETY: `reserve(32)` leaves at least 32 writable bytes after `len` and n <= 32; every
    // load reads inside `s` (offsets 0 and n - width, width <= n); `set_len` covers exactly the
    // n bytes written.
    unsafe {
        let src = s.as_ptr();
        let dst = out.as_mut_ptr().add(len);
        if n >= 16 {
            let a = src.cast::<u128>().read_unaligned();
            let b = src.add(n - 16).cast::<u128>().read_unaligned();
            dst.cast::<u128>().write_unaligned(a);
            dst.add(n - 16).cast::<u128>().write_unaligned(b);
        } else if n >= 8 {
            let a = src.cast::<u64>().read_unaligned();
            let b = src.add(n - 8).cast::<u64>().read_unaligned();
            dst.cast::<u64>().write_unaligned(a);
            dst.add(n - 8).cast::<u64>().write_unaligned(b);
        } else {
            let a = src.cast::<u32>().read_unaligned();
            let b = src.add(n - 4).cast::<u32>().read_unaligned();
            dst.cast::<u32>().write_unaligned(a);
            dst.add(n - 4).cast::<u32>().write_unaligned(b);
        }
        out.set_len(len + n);
    }
}

/// Appends `s` as a JSON string, quotes included.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_escaped(out, s);
    out.push(b'"');
}

/// Appends the inside of a JSON string: `s` with the bytes JSON escapes escaped, no quotes.
#[inline(always)]
pub(crate) fn write_escaped(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    let mut i = 0;
    // Eight bytes at a time while nothing needs escaping.
    while let Some(word) = s.get(i..i + 8) {
        let x = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let m = lt_mask(x, 0x20) | eq_mask(x, b'"') | eq_mask(x, b'\\');
        if m == 0 {
            i += 8;
            continue;
        }
        let p = i + (m.trailing_zeros() / 8) as usize;
        put(out, &s[start..p]);
        escape(out, s[p]);
        start = p + 1;
        i = p + 1;
    }
    for (i, &b) in s.iter().enumerate().skip(i) {
        let e = ESCAPE[b as usize];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        escape(out, b);
        start = i + 1;
    }
    put(out, &s[start..]);
}

#[cold]
fn escape(out: &mut Vec<u8>, b: u8) {
    let e = ESCAPE[b as usize];
    if e == b'u' {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
    } else {
        out.extend_from_slice(&[b'\\', e]);
    }
}

#[inline]
pub(crate) fn write_i64(out: &mut Vec<u8>, v: i64) {
    put(out, itoa::Buffer::new().format(v).as_bytes());
}

#[inline]
pub(crate) fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// A finite float as the shortest text that reads back to it (a non-finite one, which callers
/// never pass, is written as `null`).
#[inline]
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    if !write_short_decimal(out, v) {
        if v.is_finite() {
            out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
        } else {
            out.extend_from_slice(b"null");
        }
    }
}

const POW10: [f64; 5] = [1.0, 10.0, 100.0, 1000.0, 10000.0];
const POW10_U: [u64; 5] = [1, 10, 100, 1000, 10000];

/// The fast path for values such as `39.98` or `990.0`: the fewest fraction digits `k` (up to
/// 4) for which `round(v * 10^k) / 10^k == v`. As the numerator is below 2^53 that decimal text
/// parses back to exactly `v` (one correctly rounded division), so it round-trips like ryu's;
/// values that need more digits go to ryu.
#[inline]
fn write_short_decimal(out: &mut Vec<u8>, v: f64) -> bool {
    let a = v.abs();
    if !(1e-4..1e11).contains(&a) {
        return false;
    }
    for k in 0..POW10.len() {
        // Round half up by truncation (`f64::round` is a libm call on baseline x86-64).
        let d = (a * POW10[k] + 0.5) as u64;
        if d as f64 / POW10[k] == a {
            if v < 0.0 {
                out.push(b'-');
            }
            let mut ib = itoa::Buffer::new();
            put(out, ib.format(d / POW10_U[k]).as_bytes());
            out.push(b'.');
            if k == 0 {
                out.push(b'0');
            } else {
                let frac = d % POW10_U[k];
                let mut fb = itoa::Buffer::new();
                let digits = fb.format(frac).as_bytes();
                out.extend(std::iter::repeat_n(b'0', k - digits.len()));
                out.extend_from_slice(digits);
            }
            return true;
        }
    }
    false
}

/// `"name":` with the name escaped: an object key ready to be followed by its value.
pub(crate) fn object_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 3);
    write_str(&mut k, name.as_bytes());
    k.push(b':');
    k
}

/// Appends a scaled decimal as JSON number text with exactly `scale` fraction digits.
pub(crate) fn write_decimal(out: &mut Vec<u8>, v: i128, scale: u8) {
    if v < 0 {
        out.push(b'-');
    }
    let a = v.unsigned_abs();
    let p = 10u128.pow(scale as u32);
    out.extend_from_slice(itoa::Buffer::new().format(a / p).as_bytes());
    if scale > 0 {
        out.push(b'.');
        let frac = itoa::Buffer::new().format(a % p).as_bytes().to_vec();
        out.extend(std::iter::repeat_n(b'0', scale as usize - frac.len()));
        out.extend_from_slice(&frac);
    }
}

/// Writes each value as a JSON string (for the criterion benches).
#[doc(hidden)]
pub fn bench_write_str(values: &[&[u8]], out: &mut Vec<u8>) {
    for v in values {
        write_str(out, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_serde_json() {
        for s in ["plain", "Doe, John", "สมชาย ใจดี", "q\"uote\\back\nline\ttab\r\u{1}\u{1f}\u{7f}", ""]
        {
            let mut out = Vec::new();
            write_str(&mut out, s.as_bytes());
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn floats_read_back_exactly_and_match_ryu() {
        let mut seed = 7u64;
        for i in 0..200_000u64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let v = match i % 4 {
                0 => (seed % 100_000) as f64 / 100.0 * ((seed >> 20) % 30) as f64,
                1 => f64::from_bits(seed),
                2 => (seed % 1_000_000) as f64 / 10_000.0,
                _ => -((seed % 5000) as f64) * 0.05,
            };
            if !v.is_finite() {
                continue;
            }
            let mut out = Vec::new();
            write_f64(&mut out, v);
            let text = std::str::from_utf8(&out).unwrap();
            assert_eq!(text.parse::<f64>().unwrap(), v, "{text}");
            let r = ryu::Buffer::new().format_finite(v).to_string();
            assert_eq!(text, r, "{v:?}");
        }
    }

    #[test]
    fn escaping_agrees_with_serde_json_everywhere_in_long_strings() {
        let pieces = ["a", "é", "สม", "\"", "\\", "\n", "\u{1}", "\u{1f}", " ", "~", "\u{7f}", "xxxxxxx"];
        let mut seed = 99u64;
        for _ in 0..5000 {
            let mut s = String::new();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            }
            seed = seed.wrapping_add(1);
            let mut out = Vec::new();
            write_str(&mut out, s.as_bytes());
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&s).unwrap());
        }
    }

    #[test]
    fn put_copies_every_length() {
        let src: Vec<u8> = (0..100u8).collect();
        for n in 0..=40 {
            for pre in [0usize, 1, 7] {
                let mut out = vec![9u8; pre];
                put(&mut out, &src[3..3 + n]);
                assert_eq!(&out[pre..], &src[3..3 + n]);
                assert_eq!(out.len(), pre + n);
            }
        }
    }

    #[test]
    fn numbers_and_keys() {
        let mut out = Vec::new();
        write_i64(&mut out, -42);
        out.push(b' ');
        write_f64(&mut out, 12.0);
        out.push(b' ');
        write_f64(&mut out, 39.98);
        out.push(b' ');
        write_f64(&mut out, f64::NAN);
        out.push(b' ');
        write_decimal(&mut out, -1205, 2);
        out.push(b' ');
        write_decimal(&mut out, 7, 3);
        out.push(b' ');
        write_decimal(&mut out, 42, 0);
        assert_eq!(out, b"-42 12.0 39.98 null -12.05 0.007 42");
        assert_eq!(object_key("a\"b"), b"\"a\\\"b\":");
        let mut inside = Vec::new();
        write_escaped(&mut inside, "a\"b\n".as_bytes());
        assert_eq!(inside, b"a\\\"b\\n");
    }
}
