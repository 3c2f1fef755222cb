//! Parquet output with typed columns: what DuckDB, pyarrow, Spark and Athena read directly.
//!
//! Column types come from the schema: integer → INT64, float → DOUBLE, decimal → DECIMAL(p, s)
//! (on INT64 up to 18 digits, else a 16-byte fixed-length array), boolean → BOOLEAN, date → DATE,
//! datetime → TIMESTAMP(µs, UTC), text types and columns the schema does not know → UTF8 strings;
//! derived fields by their expression's type. Every column is optional (nullable).
//!
//! This writes with the `parquet` crate's column writers directly rather than through Arrow:
//! the Arrow writer would add the arrow-* crates to every build (about three more minutes of
//! compiling on two cores) for nothing weir needs. Values are buffered per column, with their
//! definition levels, and each `output.parquet_row_group_rows` rows become one row group, so
//! memory is bounded by one row group whatever the file size. Pages are Snappy-compressed. JSON
//! keys the schema does not name vary per row and have no column: Parquet output keeps the
//! schema's columns and derived fields.

use std::io::Write;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::{ByteArray, FixedLenByteArray};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use super::{Kind, Layout, RowRef, Sink, Value};
use crate::error::ProcessError;
use crate::schema::types::packed_days;
use crate::schema::DefaultValue;
use crate::slot::SlotValue;

/// One column's values of the current row group (nulls only in `levels`).
enum Values {
    Int64(Vec<i64>),
    Int32(Vec<i32>),
    Double(Vec<f64>),
    Bool(Vec<bool>),
    Bytes(Vec<ByteArray>),
    Fixed(Vec<FixedLenByteArray>),
}

struct Column {
    kind: Kind,
    values: Values,
    /// Definition levels: 1 for a value, 0 for null.
    levels: Vec<i16>,
}

impl Column {
    fn new(kind: Kind) -> Column {
        let values = match kind {
            Kind::Text => Values::Bytes(Vec::new()),
            Kind::Int | Kind::DateTime => Values::Int64(Vec::new()),
            Kind::Decimal { precision, .. } if precision <= 18 => Values::Int64(Vec::new()),
            Kind::Decimal { .. } => Values::Fixed(Vec::new()),
            Kind::Float => Values::Double(Vec::new()),
            Kind::Bool => Values::Bool(Vec::new()),
            Kind::Date => Values::Int32(Vec::new()),
        };
        Column { kind, values, levels: Vec::new() }
    }

    fn schema(name: &str, kind: Kind) -> Result<Type, parquet::errors::ParquetError> {
        let (physical, logical) = match kind {
            Kind::Text => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
            Kind::Int => (Physical::INT64, None),
            Kind::Float => (Physical::DOUBLE, None),
            Kind::Bool => (Physical::BOOLEAN, None),
            Kind::Date => (Physical::INT32, Some(LogicalType::Date)),
            Kind::DateTime => (Physical::INT64, Some(LogicalType::timestamp(true, TimeUnit::MICROS))),
            Kind::Decimal { precision, scale } => {
                let physical = if precision <= 18 { Physical::INT64 } else { Physical::FIXED_LEN_BYTE_ARRAY };
                (physical, Some(LogicalType::decimal(scale as i32, precision as i32)))
            }
        };
        let mut b = Type::primitive_type_builder(name, physical)
            .with_repetition(Repetition::OPTIONAL)
            .with_logical_type(logical);
        if let Kind::Decimal { precision, scale } = kind {
            b = b.with_precision(precision as i32).with_scale(scale as i32);
            if precision > 18 {
                b = b.with_length(16);
            }
        }
        b.build()
    }

    #[inline]
    fn null(&mut self) {
        self.levels.push(0);
    }

    #[inline]
    fn int(&mut self, v: i64) {
        match &mut self.values {
            Values::Int64(x) => x.push(v),
            Values::Double(x) => x.push(v as f64),
            _ => return self.null(),
        }
        self.levels.push(1);
    }

    #[inline]
    fn float(&mut self, v: f64) {
        match &mut self.values {
            Values::Double(x) => x.push(v),
            _ => return self.null(),
        }
        self.levels.push(1);
    }

    #[inline]
    fn text(&mut self, t: &[u8]) {
        match &mut self.values {
            Values::Bytes(x) => x.push(ByteArray::from(t.to_vec())),
            _ => return self.null(),
        }
        self.levels.push(1);
    }

    #[inline]
    fn decimal(&mut self, v: i128) {
        match &mut self.values {
            Values::Int64(x) => x.push(v as i64),
            Values::Fixed(x) => x.push(FixedLenByteArray::from(v.to_be_bytes().to_vec())),
            _ => return self.null(),
        }
        self.levels.push(1);
    }

    fn default_value(&mut self, v: &DefaultValue) {
        match (v, self.kind) {
            (DefaultValue::Int(i), _) => self.int(*i),
            (DefaultValue::Float(f), _) => self.float(*f),
            (DefaultValue::Decimal(d), _) => self.decimal(*d),
            (DefaultValue::Bool(b), _) => self.bool(*b),
            (DefaultValue::Date(d, _), Kind::Date) => self.date(*d),
            (DefaultValue::DateTime(t, _), Kind::DateTime) => self.int(*t),
            (DefaultValue::Text(s) | DefaultValue::Date(_, s) | DefaultValue::DateTime(_, s), _) => {
                self.text(s.as_bytes())
            }
        }
    }

    fn bool(&mut self, b: bool) {
        match &mut self.values {
            Values::Bool(x) => x.push(b),
            _ => return self.null(),
        }
        self.levels.push(1);
    }

    fn date(&mut self, days: i32) {
        match &mut self.values {
            Values::Int32(x) => x.push(days),
            _ => return self.null(),
        }
        self.levels.push(1);
    }

    #[inline]
    fn value(&mut self, v: Value, buf: &[u8], default: Option<&DefaultValue>) {
        match (v, self.kind) {
            (Value::Null, _) => self.null(),
            (Value::Default, _) => match default {
                Some(d) => self.default_value(d),
                None => self.null(),
            },
            (Value::Int(i), _) => self.int(i),
            (Value::Float(f) | Value::Number(f, ..), _) => self.float(f),
            (Value::Bool(b), _) => self.bool(b),
            (Value::Decimal(d), _) => self.decimal(d),
            (Value::Date(d, ..), Kind::Date) => self.date(packed_days(d)),
            (Value::DateTime(t, ..), Kind::DateTime) => self.int(t),
            (Value::Text(s, e) | Value::Date(_, s, e) | Value::DateTime(_, s, e), _) => self.text(&buf[s..e]),
        }
    }

    /// Writes the buffered values into the row group's next column and empties the buffers.
    fn write(&mut self, w: &mut ColumnWriter<'_>) -> Result<(), parquet::errors::ParquetError> {
        let levels = Some(&self.levels[..]);
        match (&mut self.values, w) {
            (Values::Int64(v), ColumnWriter::Int64ColumnWriter(w)) => {
                w.write_batch(v, levels, None)?;
                v.clear();
            }
            (Values::Int32(v), ColumnWriter::Int32ColumnWriter(w)) => {
                w.write_batch(v, levels, None)?;
                v.clear();
            }
            (Values::Double(v), ColumnWriter::DoubleColumnWriter(w)) => {
                w.write_batch(v, levels, None)?;
                v.clear();
            }
            (Values::Bool(v), ColumnWriter::BoolColumnWriter(w)) => {
                w.write_batch(v, levels, None)?;
                v.clear();
            }
            (Values::Bytes(v), ColumnWriter::ByteArrayColumnWriter(w)) => {
                w.write_batch(v, levels, None)?;
                v.clear();
            }
            (Values::Fixed(v), ColumnWriter::FixedLenByteArrayColumnWriter(w)) => {
                w.write_batch(v, levels, None)?;
                v.clear();
            }
            _ => unreachable!("buffers are made from the same kinds as the schema"),
        }
        self.levels.clear();
        Ok(())
    }
}

pub(crate) struct ParquetSink<W: Write + Send> {
    writer: Option<SerializedFileWriter<W>>,
    layout: Layout,
    columns: Vec<Column>,
    defaults: Vec<Option<DefaultValue>>,
    rows: usize,
    row_group_rows: usize,
}

impl<W: Write + Send> ParquetSink<W> {
    pub fn new(out: W, layout: &Layout, row_group_rows: usize) -> Result<Self, ProcessError> {
        let fields = layout
            .columns
            .iter()
            .map(|c| Column::schema(&c.name, c.kind).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(parquet_error)?;
        let schema = Type::group_type_builder("weir").with_fields(fields).build().map_err(parquet_error)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by("weir".into())
            .build();
        let writer =
            SerializedFileWriter::new(out, Arc::new(schema), Arc::new(props)).map_err(parquet_error)?;
        Ok(ParquetSink {
            writer: Some(writer),
            columns: layout.columns.iter().map(|c| Column::new(c.kind)).collect(),
            defaults: layout.columns.iter().map(|c| c.default.as_ref().map(|d| d.value.clone())).collect(),
            layout: layout.clone(),
            rows: 0,
            row_group_rows,
        })
    }

    /// Writes the buffered rows as one row group.
    fn flush_row_group(&mut self) -> Result<(), ProcessError> {
        if self.rows == 0 {
            return Ok(());
        }
        let writer = self.writer.as_mut().expect("open until finished");
        let mut group = writer.next_row_group().map_err(parquet_error)?;
        for column in &mut self.columns {
            let mut w = group.next_column().map_err(parquet_error)?.expect("a writer per schema column");
            column.write(w.untyped()).map_err(parquet_error)?;
            w.close().map_err(parquet_error)?;
        }
        group.close().map_err(parquet_error)?;
        self.rows = 0;
        Ok(())
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
            self.columns[c].value(*v, row.buf, self.defaults[c].as_ref());
            c += 1;
        }
        for _ in 0..self.layout.missing {
            match self.defaults[c].clone() {
                Some(d) => self.columns[c].default_value(&d),
                None => self.columns[c].null(),
            }
            c += 1;
        }
        for (j, d) in row.derived.iter().enumerate() {
            let column = &mut self.columns[c + j];
            match *d {
                SlotValue::Null => column.null(),
                SlotValue::Int(v) => column.int(v),
                SlotValue::Float(v) => column.float(v),
                SlotValue::Text => column.text(&row.derived_text[j]),
            }
        }
        self.rows += 1;
        if self.rows >= self.row_group_rows {
            self.flush_row_group().map_err(|e| match e {
                ProcessError::Io(io) => io,
                other => std::io::Error::other(other.to_string()),
            })?;
        }
        Ok(())
    }

    fn finish(&mut self, _total: u64, _valid: u64) -> Result<(), ProcessError> {
        self.flush_row_group()?;
        if let Some(mut writer) = self.writer.take() {
            writer.finish().map_err(parquet_error)?;
            writer.inner_mut().flush()?;
        }
        Ok(())
    }
}
