//! Valid rows as typed cells for a warehouse load, beside whatever the results are written as.
//!
//! [`RowTap`] wraps the results sink: each valid row goes to it unchanged, and into a
//! [`RowBatch`] with one cell per table column (the schema's columns in order, then the derived
//! fields, whatever order the file has them in), its line in the file and the row as the JSON
//! object the NDJSON results hold. Full batches (a thousand rows, or a megabyte of text) are
//! handed to the caller's function, which may block: that is how a slow database slows the
//! pass instead of the rows piling up in memory. The function may give back a batch it is done
//! with, which is emptied and filled again: a long load then cycles through a few batches
//! instead of allocating (and growing, and page-faulting in) a new one per thousand rows, and
//! a batch is never freed on one thread while the pass allocates on another.

use std::io;

use weir_core::rows::{Cell, RowBatch};

use super::ndjson::RowWriter;
use super::{Layout, RowRef, Sink, Value};
use crate::binding::Binding;
use crate::error::ProcessError;
use crate::plan::Plan;
use crate::schema::types::packed_days;
use crate::schema::{ColumnDefault, DefaultValue};
use crate::slot::SlotValue;

/// Rows per batch at most.
const BATCH_ROWS: usize = 1024;
/// Text bytes per batch before it is handed on.
const BATCH_BYTES: usize = 1 << 20;

/// Where a table column's value comes from in the current file.
enum From {
    /// A file column (its index), with the schema column's default.
    File(usize, Option<DefaultValue>),
    /// A schema column the file lacks: its default, or null.
    Missing(Option<DefaultValue>),
    /// A derived field (its index).
    Derived(usize),
}

/// The function that takes each full batch of rows, and may give back an earlier batch it is
/// done with (emptied and filled again; one of another width is dropped).
pub type EmitRows<'a> = &'a dyn Fn(RowBatch) -> io::Result<Option<RowBatch>>;

pub(crate) struct RowTap<'a, K: Sink> {
    inner: K,
    emit: EmitRows<'a>,
    from: Vec<From>,
    batch: RowBatch,
    json: RowWriter,
    line: Vec<u8>,
}

impl<'a, K: Sink> RowTap<'a, K> {
    pub fn new(inner: K, plan: &Plan, binding: &Binding, layout: &Layout, emit: EmitRows<'a>) -> Self {
        let default = |d: &Option<ColumnDefault>| d.as_ref().map(|d| d.value.clone());
        let mut from: Vec<From> = plan
            .columns
            .iter()
            .zip(&binding.file_column)
            .map(|(spec, file)| match file {
                Some(i) => From::File(*i, default(&spec.default)),
                None => From::Missing(default(&spec.default)),
            })
            .collect();
        from.extend((0..plan.derived.len()).map(From::Derived));
        let width = from.len();
        RowTap {
            inner,
            emit,
            from,
            batch: RowBatch::new(width),
            json: RowWriter::new(layout),
            line: Vec::new(),
        }
    }

    fn hand_on(&mut self) -> io::Result<()> {
        let width = self.from.len();
        let full = std::mem::replace(&mut self.batch, RowBatch::new(width));
        if let Some(mut spent) = (self.emit)(full)? {
            if spent.width() == width {
                spent.clear();
                self.batch = spent;
            }
        }
        Ok(())
    }
}

fn push_default(batch: &mut RowBatch, d: &Option<DefaultValue>) {
    match d {
        None => batch.push_cell(Cell::Null),
        Some(DefaultValue::Int(i)) => batch.push_cell(Cell::Int(*i)),
        Some(DefaultValue::Float(f)) => batch.push_cell(Cell::Float(*f)),
        Some(DefaultValue::Decimal(v)) => batch.push_cell(Cell::Decimal(*v)),
        Some(DefaultValue::Bool(b)) => batch.push_cell(Cell::Bool(*b)),
        Some(DefaultValue::Text(s)) => batch.push_text(s.as_bytes()),
        Some(DefaultValue::Date(days, _)) => batch.push_cell(Cell::Date(*days)),
        Some(DefaultValue::DateTime(micros, _)) => batch.push_cell(Cell::DateTime(*micros)),
    }
}

impl<K: Sink> Sink for RowTap<'_, K> {
    fn row(&mut self, row: &RowRef<'_>) -> io::Result<()> {
        self.inner.row(row)?;
        let batch = &mut self.batch;
        for from in &self.from {
            match from {
                From::File(i, default) => match row.values[*i] {
                    Value::Null => batch.push_cell(Cell::Null),
                    Value::Int(v) => batch.push_cell(Cell::Int(v)),
                    Value::Float(v) | Value::Number(v, ..) => batch.push_cell(Cell::Float(v)),
                    Value::Bool(b) => batch.push_cell(Cell::Bool(b)),
                    Value::Text(s, e) => batch.push_text(&row.buf[s..e]),
                    Value::Decimal(v) => batch.push_cell(Cell::Decimal(v)),
                    Value::Date(packed, ..) => batch.push_cell(Cell::Date(packed_days(packed))),
                    Value::DateTime(micros, ..) => batch.push_cell(Cell::DateTime(micros)),
                    Value::Default => push_default(batch, default),
                },
                From::Missing(default) => push_default(batch, default),
                From::Derived(j) => match row.derived[*j] {
                    SlotValue::Null => batch.push_cell(Cell::Null),
                    SlotValue::Int(v) => batch.push_cell(Cell::Int(v)),
                    SlotValue::Float(v) => batch.push_cell(Cell::Float(v)),
                    SlotValue::Text => batch.push_text(&row.derived_text[*j]),
                },
            }
        }
        self.line.clear();
        self.json.write(&mut self.line, row);
        batch.end_row(row.line, &self.line);
        if batch.len() >= BATCH_ROWS || batch.text_bytes() >= BATCH_BYTES {
            self.hand_on()?;
        }
        Ok(())
    }

    fn finish(&mut self, total: u64, valid: u64) -> Result<(), ProcessError> {
        self.inner.finish(total, valid)?;
        if !self.batch.is_empty() {
            self.hand_on()?;
        }
        Ok(())
    }
}
