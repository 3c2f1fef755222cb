//! Valid rows as typed values, in batches: what the processing core hands a warehouse loader.
//!
//! A warehouse table has one typed column per schema column and derived field
//! ([`TableColumn`]); each valid row fills them with [`Cell`]s and carries its line in the
//! source file and the whole cleaned row as JSON text (the table's `data` column). A
//! [`RowBatch`] keeps the text of many rows in one buffer, so a batch of a thousand rows is a
//! handful of allocations, not thousands: at millions of rows a second, an allocation per value
//! would cost more than the load.

use serde::{Deserialize, Serialize};

use crate::config::ColumnType;

/// The type of a warehouse column: the schema's column types, as far as a table sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum CellType {
    /// `string`, `email`, `enum`, and text-valued derived fields.
    Text,
    Int,
    Float,
    Bool,
    /// An exact decimal with `precision` significant digits, `scale` after the point.
    Decimal {
        precision: u8,
        scale: u8,
    },
    Date,
    /// A point in time (UTC).
    DateTime,
}

impl CellType {
    /// The cell type of a schema column (`precision`/`scale` as its decimal has them).
    pub fn of(ty: ColumnType, precision: u8, scale: u8) -> CellType {
        match ty {
            ColumnType::String | ColumnType::Email | ColumnType::Enum => CellType::Text,
            ColumnType::Integer => CellType::Int,
            ColumnType::Float => CellType::Float,
            ColumnType::Decimal => CellType::Decimal { precision, scale },
            ColumnType::Boolean => CellType::Bool,
            ColumnType::Date => CellType::Date,
            ColumnType::Datetime => CellType::DateTime,
        }
    }
}

impl std::fmt::Display for CellType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CellType::Text => f.write_str("text"),
            CellType::Int => f.write_str("integer"),
            CellType::Float => f.write_str("float"),
            CellType::Bool => f.write_str("boolean"),
            CellType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            CellType::Date => f.write_str("date"),
            CellType::DateTime => f.write_str("datetime"),
        }
    }
}

/// A typed column of a warehouse table: a schema column or a derived field, by its output
/// name (trimmed, lowercased, spaces as `_`, as the results have it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableColumn {
    pub name: String,
    pub ty: CellType,
}

/// One value of a row. Text lives in the batch's buffer ([`RowBatch::text`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    /// UTF-8 bytes `start..end` of the batch's buffer.
    Text {
        start: usize,
        end: usize,
    },
    /// The value times `10^scale` (the column's scale).
    Decimal(i128),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01T00:00:00Z.
    DateTime(i64),
}

/// Rows of one file, in file order: per row its line in the source file, one [`Cell`] per
/// table column, and the row as a JSON object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowBatch {
    width: usize,
    cells: Vec<Cell>,
    lines: Vec<u64>,
    /// Each row's JSON text in `bytes`.
    json: Vec<(usize, usize)>,
    bytes: Vec<u8>,
}

/// One row of a batch.
#[derive(Debug, Clone, Copy)]
pub struct RowView<'a> {
    /// The line the row starts on in the source file (the header is line 1).
    pub line: u64,
    pub cells: &'a [Cell],
    /// The row as one JSON object (the `data` column), UTF-8.
    pub json: &'a [u8],
    batch: &'a RowBatch,
}

impl<'a> RowView<'a> {
    /// The bytes of a text cell (empty for any other cell).
    pub fn text(&self, cell: &Cell) -> &'a [u8] {
        self.batch.text(cell)
    }
}

impl RowBatch {
    /// An empty batch for rows of `width` cells.
    pub fn new(width: usize) -> RowBatch {
        RowBatch { width, ..RowBatch::default() }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Bytes of text held (values and JSON), to cut batches by size.
    pub fn text_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Adds a cell of the row being built.
    #[inline]
    pub fn push_cell(&mut self, cell: Cell) {
        self.cells.push(cell);
    }

    /// Adds a text cell of the row being built, copying its bytes.
    #[inline]
    pub fn push_text(&mut self, text: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(text);
        self.cells.push(Cell::Text { start, end: self.bytes.len() });
    }

    /// Ends the row being built: exactly [`RowBatch::width`] cells must have been pushed since
    /// the last row.
    #[inline]
    pub fn end_row(&mut self, line: u64, json: &[u8]) {
        debug_assert_eq!(self.cells.len(), (self.lines.len() + 1) * self.width, "cells per row");
        let start = self.bytes.len();
        self.bytes.extend_from_slice(json);
        self.json.push((start, self.bytes.len()));
        self.lines.push(line);
    }

    /// A whole row at once.
    pub fn push_row(&mut self, line: u64, cells: &[Cell], texts: &[&[u8]], json: &[u8]) {
        let mut texts = texts.iter();
        for cell in cells {
            match cell {
                Cell::Text { .. } => self.push_text(texts.next().expect("a text per text cell")),
                other => self.push_cell(*other),
            }
        }
        self.end_row(line, json);
    }

    /// The bytes of a text cell of this batch (empty for any other cell).
    pub fn text(&self, cell: &Cell) -> &[u8] {
        match *cell {
            Cell::Text { start, end } => &self.bytes[start..end],
            _ => &[],
        }
    }

    pub fn row(&self, i: usize) -> RowView<'_> {
        let (start, end) = self.json[i];
        RowView {
            line: self.lines[i],
            cells: &self.cells[i * self.width..(i + 1) * self.width],
            json: &self.bytes[start..end],
            batch: self,
        }
    }

    pub fn rows(&self) -> impl Iterator<Item = RowView<'_>> {
        (0..self.len()).map(|i| self.row(i))
    }

    /// Empties the batch, keeping its allocations.
    pub fn clear(&mut self) {
        self.cells.clear();
        self.lines.clear();
        self.json.clear();
        self.bytes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_cells_text_and_json() {
        let mut b = RowBatch::new(3);
        b.push_cell(Cell::Int(7));
        b.push_text("ก \"x\"".as_bytes());
        b.push_cell(Cell::Null);
        b.end_row(2, br#"{"n":7}"#);
        b.push_row(
            5,
            &[Cell::Int(8), Cell::Text { start: 0, end: 0 }, Cell::Decimal(1250)],
            &[b"pen"],
            b"{}",
        );
        assert_eq!(b.len(), 2);
        let rows: Vec<_> = b.rows().collect();
        assert_eq!((rows[0].line, rows[1].line), (2, 5));
        assert_eq!(rows[0].text(&rows[0].cells[1]), "ก \"x\"".as_bytes());
        assert_eq!(rows[0].json, br#"{"n":7}"#);
        assert_eq!(rows[1].text(&rows[1].cells[1]), b"pen");
        assert_eq!(rows[1].cells[2], Cell::Decimal(1250));
        b.clear();
        assert!(b.is_empty() && b.text_bytes() == 0);
    }
}
