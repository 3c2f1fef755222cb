//! NDJSON output: one JSON object per valid row, the per-row serializer being the hottest code
//! after parsing.
//!
//! Keys are escaped once per file (`,"order_id":`); values go through [`crate::json_text`].
//! [`RowWriter`] writes one row object (the JSON-document sink uses it too) and [`NdjsonSink`]
//! one row per line, into an [`OutBuf`] that hands the writer large chunks.

use std::io::{self, Write};

use super::{Kind, Layout, OutBuf, RowRef, Sink, Value};
use crate::error::ProcessError;
use crate::json_text::{object_key, put, write_decimal, write_f64, write_i64, write_str};
use crate::slot::SlotValue;

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
            k.extend_from_slice(&object_key(name));
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
                SlotValue::Null => out.extend_from_slice(b"null"),
                SlotValue::Int(v) => write_i64(out, v),
                SlotValue::Float(v) => write_f64(out, v),
                SlotValue::Text => write_str(out, &row.derived_text[j]),
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
