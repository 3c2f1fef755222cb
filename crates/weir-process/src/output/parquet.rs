//! Parquet output with typed columns: what DuckDB, pyarrow, Spark and Athena read directly.
//!
//! Column types come from the schema: integer → INT64, float → DOUBLE, decimal → DECIMAL(p, s),
//! boolean → BOOLEAN, date → DATE, datetime → TIMESTAMP(µs, UTC), text types and columns the
//! schema does not know → UTF8 strings; derived fields by their expression's type. Rows are
//! appended to Arrow builders and handed to the writer every [`BATCH_ROWS`] rows; the writer
//! closes a row group every `output.parquet_row_group_rows` rows, so memory is bounded by one row
//! group whatever the file size. Pages are Snappy-compressed. JSON keys the schema does not name
//! vary per row and have no column: Parquet output keeps the schema's columns and derived fields.

use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::{Kind, Layout, RowRef, Sink, Value};
use crate::error::ProcessError;
use crate::expr::Num;
use crate::schema::types::packed_days;
use crate::schema::Owned;

/// Rows per Arrow batch handed to the writer.
pub(crate) const BATCH_ROWS: usize = 8192;

enum Builder {
    Text(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Decimal(Decimal128Builder),
    Date(Date32Builder),
    DateTime(TimestampMicrosecondBuilder),
}

impl Builder {
    fn new(kind: Kind) -> Builder {
        match kind {
            Kind::Text => Builder::Text(StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16)),
            Kind::Int => Builder::Int(Int64Builder::with_capacity(BATCH_ROWS)),
            Kind::Float => Builder::Float(Float64Builder::with_capacity(BATCH_ROWS)),
            Kind::Bool => Builder::Bool(BooleanBuilder::with_capacity(BATCH_ROWS)),
            Kind::Decimal { precision, scale } => Builder::Decimal(
                Decimal128Builder::with_capacity(BATCH_ROWS)
                    .with_precision_and_scale(precision, scale as i8)
                    .expect("precision and scale were checked when the plan was compiled"),
            ),
            Kind::Date => Builder::Date(Date32Builder::with_capacity(BATCH_ROWS)),
            Kind::DateTime => {
                Builder::DateTime(TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS).with_timezone("UTC"))
            }
        }
    }

    fn data_type(kind: Kind) -> DataType {
        match kind {
            Kind::Text => DataType::Utf8,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Decimal { precision, scale } => DataType::Decimal128(precision, scale as i8),
            Kind::Date => DataType::Date32,
            Kind::DateTime => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }

    fn null(&mut self) {
        match self {
            Builder::Text(b) => b.append_null(),
            Builder::Int(b) => b.append_null(),
            Builder::Float(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Decimal(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::DateTime(b) => b.append_null(),
        }
    }

    fn text(&mut self, t: &[u8]) {
        match self {
            Builder::Text(b) => b.append_value(String::from_utf8_lossy(t)),
            other => other.null(),
        }
    }

    fn owned(&mut self, v: &Owned) {
        match (self, v) {
            (Builder::Int(b), Owned::Int(i)) => b.append_value(*i),
            (Builder::Float(b), Owned::Float(f)) => b.append_value(*f),
            (Builder::Decimal(b), Owned::Decimal(d)) => b.append_value(*d),
            (Builder::Bool(b), Owned::Bool(x)) => b.append_value(*x),
            (Builder::Date(b), Owned::Date(d, _)) => b.append_value(*d),
            (Builder::DateTime(b), Owned::DateTime(t, _)) => b.append_value(*t),
            (Builder::Text(b), Owned::Text(s)) => b.append_value(s),
            (other, _) => other.null(),
        }
    }

    fn value(&mut self, v: Value, buf: &[u8], default: Option<&Owned>) {
        match (self, v) {
            (b, Value::Null) => b.null(),
            (b, Value::Default) => match default {
                Some(d) => b.owned(d),
                None => b.null(),
            },
            (Builder::Int(b), Value::Int(i)) => b.append_value(i),
            (Builder::Float(b), Value::Float(f) | Value::Number(f, ..)) => b.append_value(f),
            (Builder::Float(b), Value::Int(i)) => b.append_value(i as f64),
            (Builder::Bool(b), Value::Bool(x)) => b.append_value(x),
            (Builder::Decimal(b), Value::Decimal(d)) => b.append_value(d),
            (Builder::Date(b), Value::Date(d, ..)) => b.append_value(packed_days(d)),
            (Builder::DateTime(b), Value::DateTime(t, ..)) => b.append_value(t),
            (b @ Builder::Text(_), Value::Text(s, e) | Value::Date(_, s, e) | Value::DateTime(_, s, e)) => {
                b.text(&buf[s..e])
            }
            (b, _) => b.null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Decimal(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::DateTime(b) => Arc::new(b.finish()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Builder::Text(b) => b.len(),
            Builder::Int(b) => b.len(),
            Builder::Float(b) => b.len(),
            Builder::Bool(b) => b.len(),
            Builder::Decimal(b) => b.len(),
            Builder::Date(b) => b.len(),
            Builder::DateTime(b) => b.len(),
        }
    }
}

pub(crate) struct ParquetSink<W: Write + Send> {
    writer: ArrowWriter<W>,
    schema: SchemaRef,
    layout: Layout,
    builders: Vec<Builder>,
    defaults: Vec<Option<Owned>>,
}

impl<W: Write + Send> ParquetSink<W> {
    pub fn new(out: W, layout: &Layout, row_group_rows: usize) -> Result<Self, ProcessError> {
        let fields: Vec<Field> =
            layout.columns.iter().map(|c| Field::new(&c.name, Builder::data_type(c.kind), true)).collect();
        let schema = Arc::new(Schema::new(fields));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(row_group_rows))
            .set_created_by("weir".into())
            .build();
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(parquet_error)?;
        Ok(ParquetSink {
            writer,
            schema,
            builders: layout.columns.iter().map(|c| Builder::new(c.kind)).collect(),
            defaults: layout.columns.iter().map(|c| c.default.as_ref().map(|d| d.value.clone())).collect(),
            layout: layout.clone(),
        })
    }

    fn flush_batch(&mut self) -> Result<(), ProcessError> {
        if self.builders.first().is_none_or(|b| b.len() == 0) {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| parquet_error(e.into()))?;
        self.writer.write(&batch).map_err(parquet_error)
    }
}

/// Parquet write errors are I/O errors of the output (transient unless the data is at fault).
fn parquet_error(e: parquet::errors::ParquetError) -> ProcessError {
    match e {
        parquet::errors::ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
            Ok(io) => ProcessError::Io(*io),
            Err(other) => ProcessError::Io(std::io::Error::other(other.to_string())),
        },
        other => ProcessError::Io(std::io::Error::other(format!("parquet: {other}"))),
    }
}

impl<W: Write + Send> Sink for ParquetSink<W> {
    fn row(&mut self, row: &RowRef<'_>) -> std::io::Result<()> {
        let mut c = 0;
        for (i, v) in row.values.iter().enumerate() {
            if !self.layout.written[i] {
                continue;
            }
            self.builders[c].value(*v, row.buf, self.defaults[c].as_ref());
            c += 1;
        }
        for _ in 0..self.layout.missing {
            match &self.defaults[c] {
                Some(d) => self.builders[c].owned(&d.clone()),
                None => self.builders[c].null(),
            }
            c += 1;
        }
        for (j, d) in row.derived.iter().enumerate() {
            let b = &mut self.builders[c + j];
            match (b, *d) {
                (b, Num::Null) => b.null(),
                (Builder::Int(b), Num::Int(v)) => b.append_value(v),
                (Builder::Float(b), Num::Float(v)) => b.append_value(v),
                (b @ Builder::Text(_), Num::Str) => b.text(&row.derived_text[j]),
                (b, _) => b.null(),
            }
        }
        if self.builders.first().is_some_and(|b| b.len() >= BATCH_ROWS) {
            self.flush_batch().map_err(|e| match e {
                ProcessError::Io(io) => io,
                other => std::io::Error::other(other.to_string()),
            })?;
        }
        Ok(())
    }

    fn finish(&mut self, _total: u64, _valid: u64) -> Result<(), ProcessError> {
        self.flush_batch()?;
        self.writer.finish().map_err(parquet_error)?;
        self.writer.inner_mut().flush()?;
        Ok(())
    }
}
