//! Where valid rows go: NDJSON (default), one JSON document, or Parquet.
//!
//! The row loop types each field once into a [`Value`] (ranges into the record's buffer, no
//! copies) and hands a [`RowRef`] to a [`Sink`]. The [`Layout`] is fixed per file when the header
//! is bound: which file columns are written and as what, the optional schema columns the file
//! lacks (null or their default), then the derived fields. Each sink turns that into its own
//! format: `ndjson` serializes straight into a buffer, `json` wraps the same rows in the seed's
//! document, `parquet` fills typed columns and writes bounded row groups. [`OutBuf`] is
//! the chunked buffer in front of every text writer (results and the error report).

pub(crate) mod json;
pub(crate) mod ndjson;
pub(crate) mod parquet;
pub(crate) mod rows;

use std::io::{self, Write};

use weir_core::config::ColumnType;

use crate::error::ProcessError;
use crate::schema::ColumnDefault;
use crate::slot::{SlotType, SlotValue};

/// A typed field of the current row, ready to write.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Written as a JSON string: the field's content from `start` to `end`.
    Text(usize, usize),
    /// A float whose text (`start..end`) is already a JSON number, copied as written.
    Number(f64, usize, usize),
    /// A decimal as its value times `10^scale`.
    Decimal(i128),
    /// A packed date (`schema::types::pack_date`), and the text as written.
    Date(u32, usize, usize),
    /// Microseconds since the epoch (UTC), and the text as written.
    DateTime(i64, usize, usize),
    /// The column's configured default.
    Default,
}

/// The type of an output column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Text,
    Int,
    Float,
    Bool,
    Decimal { precision: u8, scale: u8 },
    Date,
    DateTime,
}

impl Kind {
    pub fn of(ty: ColumnType, precision: u8, scale: u8) -> Kind {
        match ty {
            ColumnType::String | ColumnType::Email | ColumnType::Enum => Kind::Text,
            ColumnType::Integer => Kind::Int,
            ColumnType::Float => Kind::Float,
            ColumnType::Decimal => Kind::Decimal { precision, scale },
            ColumnType::Boolean => Kind::Bool,
            ColumnType::Date => Kind::Date,
            ColumnType::Datetime => Kind::DateTime,
        }
    }

    pub fn of_expr(ty: SlotType) -> Kind {
        match ty {
            SlotType::Int => Kind::Int,
            SlotType::Float => Kind::Float,
            SlotType::Text => Kind::Text,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub name: String,
    pub kind: Kind,
    pub default: Option<ColumnDefault>,
}

/// The output columns of one file, in order: written file columns, missing schema columns,
/// derived fields.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layout {
    pub columns: Vec<Column>,
    /// For each file column, whether it is written (dropped unknown columns are not).
    pub written: Vec<bool>,
    /// After the written file columns: how many are missing schema columns; derived fields
    /// follow.
    pub missing: usize,
}

/// One valid row as the sinks see it.
pub(crate) struct RowRef<'a> {
    /// The line the row starts on in the file (the header is line 1).
    pub line: u64,
    /// Per file column (only `written` ones are read).
    pub values: &'a [Value],
    pub buf: &'a [u8],
    /// Derived values, and the text of text-typed ones.
    pub derived: &'a [SlotValue],
    pub derived_text: &'a [Vec<u8>],
    /// JSON input: unknown keys as `,"key":value` pairs.
    pub extra: &'a [u8],
}

/// A results writer.
pub(crate) trait Sink {
    fn row(&mut self, row: &RowRef<'_>) -> io::Result<()>;
    /// Completes the output once every row is in.
    fn finish(&mut self, total: u64, valid: u64) -> Result<(), ProcessError>;
}

/// Every valid row to several sinks: several result formats from one pass.
pub(crate) struct FanOut<'w>(pub Vec<Box<dyn Sink + 'w>>);

impl Sink for FanOut<'_> {
    fn row(&mut self, row: &RowRef<'_>) -> io::Result<()> {
        for sink in &mut self.0 {
            sink.row(row)?;
        }
        Ok(())
    }

    fn finish(&mut self, total: u64, valid: u64) -> Result<(), ProcessError> {
        for sink in &mut self.0 {
            sink.finish(total, valid)?;
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
