//! Hand-written JSON output: the per-row serializer is the hottest code after parsing.
//!
//! Keys are escaped once per file (`,"order_id":`), numbers go through `itoa`/`ryu`, strings are
//! copied whole when no byte needs escaping (the usual case) and escaped byte by byte otherwise.
//! Input is already known to be UTF-8, so only `"`, `\` and control characters are escaped.
//! [`OutBuf`] collects output and hands it to the writer in large chunks.

use std::io::{self, Write};

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

/// Appends `s` as a JSON string, quotes included.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let e = ESCAPE[b as usize];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        if e == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.extend_from_slice(&[b'\\', e]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

#[inline]
pub(crate) fn write_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

#[inline]
pub(crate) fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// A finite float (callers guarantee finiteness; a non-finite one is written as `null`).
#[inline]
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
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
        OutBuf { buf: Vec::with_capacity(Self::CHUNK * 2), writer }
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

    pub fn finish(mut self) -> io::Result<()> {
        self.writer.write_all(&self.buf)?;
        self.buf.clear();
        self.writer.flush()
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
        o.finish().unwrap();
        assert_eq!(sink.len(), 101 + OutBuf::<Vec<u8>>::CHUNK);
    }
}
