//! Hand-written JSON output: the per-row serializer is the hottest code after parsing.
//!
//! Keys are escaped once per file (`,"order_id":`), numbers go through `itoa`/`ryu`, strings are
//! copied whole when no byte needs escaping (the usual case) and escaped byte by byte otherwise.
//! Input is already known to be UTF-8, so only `"`, `\\` and control characters are escaped.
//! [`OutBuf`] collects output and hands it to the writer in large chunks; [`RowWriter`] writes
//! one row object and [`NdjsonSink`] one row per line.

use std::io::{self, Write};

use super::{Kind, Layout, RowRef, Sink, Value};
use crate::error::ProcessError;
use crate::expr::Num;
use crate::formats::csv::{eq_mask, lt_mask};
use crate::schema::types::write_decimal;

/// Serializes a row of a [`Layout`] as one JSON object (no newline).
pub(crate) struct RowWriter {
    /// `,"name":` per file column (empty for columns not written), and its decimal scale.
    file_keys: Vec<(Vec<u8>, u8)>,
    /// Defaults of the file columns, as JSON.
    defaults: Vec<Vec<u8>>,
    /// `,"name":null` (or the default) for every missing schema column, all together.
    missing: Vec<u8>,
    derived_keys: Vec<Vec<u8>>,
}

impl RowWriter {
    pub fn new(layout: &Layout) -> RowWriter {
        let keyed = |name: &str| {
            let mut k = vec![b','];
            k.extend_from_slice(&key(name));
            k
        };
        let mut cols = layout.columns.iter();
        let mut file_keys = Vec::new();
        let mut defaults = Vec::new();
        for &written in &layout.written {
            if written {
                let c = cols.next().expect("a column per written file column");
                let scale = match c.kind {
                    Kind::Decimal { scale, .. } => scale,
                    _ => 0,
                };
                file_keys.push((keyed(&c.name), scale));
                defaults.push(c.default.as_ref().map(|d| d.json.clone()).unwrap_or_else(|| b"null".to_vec()));
            } else {
                file_keys.push((Vec::new(), 0));
                defaults.push(Vec::new());
            }
        }
        let mut missing = Vec::new();
        for c in cols.by_ref().take(layout.missing) {
            missing.extend_from_slice(&keyed(&c.name));
            match &c.default {
                Some(d) => missing.extend_from_slice(&d.json),
                None => missing.extend_from_slice(b"null"),
            }
        }
        let derived_keys = cols.map(|c| keyed(&c.name)).collect();
        RowWriter { file_keys, defaults, missing, derived_keys }
    }

    #[inline]
    pub fn write(&self, out: &mut Vec<u8>, row: &RowRef<'_>) {
        let start = out.len();
        for (i, value) in row.values.iter().enumerate() {
            let (key, scale) = &self.file_keys[i];
            if key.is_empty() {
                continue;
            }
            put(out, key);
            match *value {
                Value::Null => out.extend_from_slice(b"null"),
                Value::Int(v) => write_i64(out, v),
                Value::Float(v) => write_f64(out, v),
                Value::Bool(true) => out.extend_from_slice(b"true"),
                Value::Bool(false) => out.extend_from_slice(b"false"),
                Value::Text(s, e) | Value::Date(_, s, e) | Value::DateTime(_, s, e) => {
                    write_str(out, &row.buf[s..e])
                }
                Value::Number(_, s, e) => put(out, &row.buf[s..e]),
                Value::Decimal(v) => write_decimal(out, v, *scale),
                Value::Default => out.extend_from_slice(&self.defaults[i]),
            }
        }
        out.extend_from_slice(&self.missing);
        for (j, key) in self.derived_keys.iter().enumerate() {
            put(out, key);
            match row.derived[j] {
                Num::Null => out.extend_from_slice(b"null"),
                Num::Int(v) => write_i64(out, v),
                Num::Float(v) => write_f64(out, v),
                Num::Str => write_str(out, &row.derived_text[j]),
            }
        }
        out.extend_from_slice(row.extra);
        if out.len() == start {
            out.push(b'{');
        } else {
            out[start] = b'{';
        }
        out.push(b'}');
    }
}

/// One JSON object per line.
pub(crate) struct NdjsonSink<W: Write> {
    out: OutBuf<W>,
    rows: RowWriter,
}

impl<W: Write> NdjsonSink<W> {
    pub fn new(writer: W, layout: &Layout) -> Self {
        NdjsonSink { out: OutBuf::new(writer), rows: RowWriter::new(layout) }
    }

    pub fn into_inner(self) -> io::Result<W> {
        self.out.into_inner()
    }
}

impl<W: Write> Sink for NdjsonSink<W> {
    #[inline]
    fn row(&mut self, row: &RowRef<'_>) -> io::Result<()> {
        self.rows.write(&mut self.out.buf, row);
        self.out.buf.push(b'\n');
        self.out.line_done()
    }

    fn finish(&mut self, _total: u64, _valid: u64) -> Result<(), ProcessError> {
        Ok(self.out.flush()?)
    }
}

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
    out.push(b'"');
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

/// `"name":` with the name escaped.
pub(crate) fn key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 3);
    write_str(&mut k, name.as_bytes());
    k.push(b':');
    k
}

/// An output buffer flushed to its writer whenever it passes [`OutBuf::CHUNK`] bytes.
pub(crate) struct OutBuf<W: Write> {
    pub buf: Vec<u8>,
    writer: W,
}

impl<W: Write> OutBuf<W> {
    pub const CHUNK: usize = 64 << 10;

    pub fn new(writer: W) -> Self {
        // Starts small and grows to a chunk as lines arrive: small files stay small allocations.
        OutBuf { buf: Vec::with_capacity(8 << 10), writer }
    }

    /// Call after each complete line.
    #[inline]
    pub fn line_done(&mut self) -> io::Result<()> {
        if self.buf.len() >= Self::CHUNK {
            self.writer.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    pub fn into_inner(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.writer)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.write_all(&self.buf)?;
        self.buf.clear();
        self.writer.flush()
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
        assert_eq!(out, b"-42 12.0 39.98 null");
        assert_eq!(key("a\"b"), b"\"a\\\"b\":");
    }

    #[test]
    fn flushes_in_chunks() {
        let mut sink = Vec::new();
        let mut o = OutBuf::new(&mut sink);
        o.buf.extend_from_slice(&[b'x'; 100]);
        o.line_done().unwrap();
        o.buf.extend_from_slice(&vec![b'y'; OutBuf::<Vec<u8>>::CHUNK]);
        o.line_done().unwrap();
        assert!(o.buf.is_empty());
        o.buf.push(b'z');
        o.flush().unwrap();
        assert_eq!(sink.len(), 101 + OutBuf::<Vec<u8>>::CHUNK);
    }
}
