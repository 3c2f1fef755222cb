//! The seed's JSON document: `{source_file, processed_at, total_records, valid_records,
//! invalid_records, data}`, streamed.
//!
//! The seed built the whole document in memory; here rows are written into `data` as they come
//! and the counts, known only at the end, follow it (JSON objects are unordered, so readers see
//! the same document). Memory stays that of the NDJSON writer.

use std::io::Write;

use super::ndjson::RowWriter;
use super::{Layout, OutBuf, RowRef, Sink};
use crate::error::ProcessError;
use crate::json_text::{write_str, write_u64};

pub(crate) struct JsonDocSink<W: Write> {
    out: OutBuf<W>,
    rows: RowWriter,
    first: bool,
}

impl<W: Write> JsonDocSink<W> {
    /// `processed_at` is an RFC 3339 UTC timestamp (`2024-01-15T10:30:00.123Z`).
    pub fn new(writer: W, layout: &Layout, source_file: &str, processed_at: &str) -> Self {
        let mut out = OutBuf::new(writer);
        out.buf.extend_from_slice(b"{\"source_file\":");
        write_str(&mut out.buf, source_file.as_bytes());
        out.buf.extend_from_slice(b",\"processed_at\":");
        write_str(&mut out.buf, processed_at.as_bytes());
        out.buf.extend_from_slice(b",\"data\":[");
        JsonDocSink { out, rows: RowWriter::new(layout), first: true }
    }
}

impl<W: Write> Sink for JsonDocSink<W> {
    #[inline]
    fn row(&mut self, row: &RowRef<'_>) -> std::io::Result<()> {
        self.out.buf.extend_from_slice(if self.first { b"\n" } else { b",\n" });
        self.first = false;
        self.rows.write(&mut self.out.buf, row);
        self.out.line_done()
    }

    fn finish(&mut self, total: u64, valid: u64) -> Result<(), ProcessError> {
        let b = &mut self.out.buf;
        b.extend_from_slice(if self.first { b"]" } else { b"\n]" });
        for (key, n) in
            [("total_records", total), ("valid_records", valid), ("invalid_records", total - valid)]
        {
            b.extend_from_slice(b",\"");
            b.extend_from_slice(key.as_bytes());
            b.extend_from_slice(b"\":");
            write_u64(b, n);
        }
        b.extend_from_slice(b"}\n");
        Ok(self.out.flush()?)
    }
}
