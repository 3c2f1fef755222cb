//! The row loop: per record validate → derive → write → summarise, in one pass.
//!
//! A [`Pass`] holds one file's working memory, bound to its header ([`Binding`]). Each record's
//! fields are typed into value slots and checked against their rules; derived fields are computed
//! from the slots; a valid row goes to the configured [`Sink`] and into the summary's
//! [`Accumulator`]; an invalid row is described (all its problems, the original values) in the
//! error report up to the configured maximum, and counted always. The loop allocates nothing for
//! a valid row of the common types. [`run`] drives it over a whole file; the parallel driver runs
//! one [`Pass`] per piece and merges their [`PassParts`].

use std::io::Write;

use weir_core::config::ColumnType;
use weir_core::Summary;

use crate::binding::{Binding, Role};
use crate::error::ProcessError;
use crate::expr::Row;
use crate::formats::{Next, Record, Source};
use crate::json_text;
use crate::output::{OutBuf, RowRef, Sink, Value};
use crate::plan::Plan;
use crate::schema::types::{self, quoted, DecimalError, FloatError, IntError};
use crate::schema::unique::{fingerprint, UniqueColumn};
use crate::schema::Key;
use crate::slot::SlotValue;
use crate::summary::{Accumulator, RowCounts};

/// The row loop over any source into any sink: the whole pass of one file.
pub(crate) fn run<S: Source, K: Sink, E: Write>(
    plan: &Plan,
    binding: Binding,
    mut source: S,
    sink: K,
    errors: E,
) -> Result<Summary, ProcessError> {
    let mut pass = Pass::new(plan, binding, sink, OutBuf::new(errors));
    while let Some(next) = source.next_record()? {
        pass.record(next)?;
    }
    pass.finish()
}

/// The field name of problems with a whole row (wrong field count, too large, not JSON).
const ROW: &str = "(row)";

/// Fields other than the schema's columns shown in the error report's `values` (a row of 100,000
/// fields is described by its schema columns and the first few others).
const MAX_EXTRA_REPORTED: usize = 16;

/// Longest value (in characters) quoted in the error report's `values`.
const MAX_REPORTED_VALUE: usize = 1024;

/// What a [`Pass`] made: its outputs, its part of the summary and its counts.
pub(crate) struct PassParts<K, E: Write> {
    pub sink: K,
    pub errors: OutBuf<E>,
    pub acc: Accumulator,
    pub counts: RowCounts,
}

/// [`ProcessError::TooFewRows`] when the file has fewer data rows than `validation.min_rows`,
/// and [`ProcessError::TooManyInvalid`] when more of its rows are invalid than
/// `validation.max_invalid_ratio` allows.
pub(crate) fn check_row_counts(plan: &Plan, counts: RowCounts) -> Result<(), ProcessError> {
    let (invalid, total) = (counts.invalid(), counts.total);
    if total < plan.min_rows {
        return Err(ProcessError::TooFewRows { rows: total, min_rows: plan.min_rows });
    }
    let max = plan.max_invalid_ratio;
    if total > 0 && invalid as f64 / total as f64 > max {
        return Err(ProcessError::TooManyInvalid { invalid, total, max_ratio: max });
    }
    Ok(())
}

/// One file's pass state: the row loop's working memory, the summary and the outputs.
pub(crate) struct Pass<'p, K: Sink, E: Write> {
    plan: &'p Plan,
    binding: Binding,
    acc: Accumulator,
    /// Typed values by slot (schema columns, then derived fields) for expressions and stats.
    slots: Vec<SlotValue>,
    /// Text of text-typed derived fields.
    derived_text: Vec<Vec<u8>>,
    scratch: Vec<u8>,
    /// Typed values by file column, for output.
    values: Vec<Value>,
    /// Trimmed text of each file column of the current row.
    trimmed: Vec<(usize, usize)>,
    /// Problems of the current row: field name, reason.
    problems: Vec<(String, String)>,
    /// `(file column, schema column, set)` of each `unique` column the file has.
    uniques: Vec<(usize, usize, UniqueColumn)>,
    sink: K,
    err: OutBuf<E>,
    counts: RowCounts,
    /// Bytes of the descriptions written to the error report so far.
    reported_bytes: u64,
    /// Whether every field of the row is kept by the summary's categorical counts etc.
    needs_summary_text: bool,
}

impl<'p, K: Sink, E: Write> Pass<'p, K, E> {
    pub fn new(plan: &'p Plan, binding: Binding, sink: K, err: OutBuf<E>) -> Self {
        let mut slots = vec![SlotValue::Null; plan.slot_count()];
        for (s, spec) in plan.columns.iter().enumerate() {
            if binding.file_column[s].is_none() {
                slots[s] = spec.default.as_ref().map_or(SlotValue::Null, |d| d.slot_value(spec.scale));
            }
        }
        let uniques = plan
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.unique)
            .filter_map(|(s, _)| {
                binding.file_column[s].map(|f| (f, s, UniqueColumn::new(plan.max_unique_values)))
            })
            .collect();
        let n = binding.cols.len();
        Pass {
            plan,
            acc: Accumulator::new(plan, &binding.file_column),
            slots,
            derived_text: vec![Vec::new(); plan.derived.len()],
            scratch: Vec::new(),
            values: vec![Value::Null; n],
            trimmed: vec![(0, 0); n],
            problems: Vec::new(),
            uniques,
            sink,
            err,
            counts: RowCounts::default(),
            reported_bytes: 0,
            needs_summary_text: !plan.unique_summary.is_empty() || !plan.range_summary.is_empty(),
            binding,
        }
    }

    #[inline]
    pub fn record(&mut self, next: Next<'_>) -> Result<(), ProcessError> {
        self.counts.total += 1;
        match next {
            Next::Record(rec) => self.row(&rec),
            Next::Oversized { line, bytes } => {
                let reason = format!("record is {bytes} bytes; the limit is {}", self.plan.max_record_bytes);
                self.problems.push((ROW.into(), reason));
                self.invalid(line, None)
            }
        }
    }

    /// Completes the outputs; the summary, or the error that rejects the whole file.
    pub fn finish(mut self) -> Result<Summary, ProcessError> {
        check_row_counts(self.plan, self.counts)?;
        self.sink.finish(self.counts.total, self.counts.valid)?;
        self.err.flush()?;
        let mut acc = self.acc;
        for (_, s, u) in &self.uniques {
            if let Some(line) = u.full_since {
                acc.warnings.push(format!(
                    "columns.{}: more than summary.max_unique_values ({}) distinct values; from line {line} on, only repeats of values seen before it were caught",
                    self.plan.columns[*s].name, self.plan.max_unique_values
                ));
            }
        }
        Ok(acc.finish(self.counts))
    }

    /// What the pass made so far, for the parallel driver to write and merge (it checks the
    /// ratio of invalid rows of the whole file itself).
    pub fn into_parts(self) -> PassParts<K, E> {
        PassParts { sink: self.sink, errors: self.err, acc: self.acc, counts: self.counts }
    }

    #[inline]
    fn row(&mut self, rec: &Record<'_>) -> Result<(), ProcessError> {
        if let Some(why) = rec.malformed() {
            self.problems.push((ROW.into(), why.to_string()));
            return self.invalid(rec.line, Some(rec));
        }
        let ncols = self.binding.cols.len();
        if rec.field_count != ncols {
            let reason = format!("expected {ncols} fields, found {}", rec.field_count);
            self.problems.push((ROW.into(), reason));
            return self.invalid(rec.line, Some(rec));
        }
        let plan = self.plan;
        for (i, col) in self.binding.cols.iter().enumerate() {
            let Role::Typed(ty) = col.role else {
                if col.role == Role::Extra {
                    let f = rec.fields[i];
                    let empty = types::trim(&rec.buf[f.start..f.end]).is_empty();
                    self.values[i] = if empty { Value::Null } else { Value::Text(f.start, f.end) };
                }
                continue;
            };
            let s = col.schema.unwrap_or_default();
            let f = rec.fields[i];
            let raw = &rec.buf[f.start..f.end];
            if !rec.utf8_errors.is_empty() {
                if let Some(&(_, offset)) = rec.utf8_errors.iter().find(|e| e.0 == i) {
                    let reason = format!("not valid UTF-8 at byte offset {offset} of the file");
                    self.problems.push((col.name.clone(), reason));
                    continue;
                }
            }
            let t = types::trim(raw);
            if t.is_empty() {
                let spec = &plan.columns[s];
                if let Some(d) = &spec.default {
                    self.values[i] = Value::Default;
                    self.slots[s] = d.slot_value(spec.scale);
                    continue;
                }
                if let Some(why) = col.not_null {
                    let why = match (rec.absent(i), why) {
                        // JSON: say what the object had.
                        (true, "required field is empty") => "required field is missing or null",
                        (true, _) => "field is missing or null and the column is not nullable",
                        _ => why,
                    };
                    self.problems.push((col.name.clone(), why.into()));
                }
                self.values[i] = Value::Null;
                self.slots[s] = SlotValue::Null;
                continue;
            }
            // `t` starts this far into the field.
            let lead = t.as_ptr() as usize - raw.as_ptr() as usize;
            let (ts, te) = (f.start + lead, f.start + lead + t.len());
            self.trimmed[i] = (ts, te);
            // A decimal comma (`format.decimal_separator = ","`) read as the point it stands for.
            let mut pointed = [0u8; 64];
            let comma = plan.decimal_comma
                && matches!(ty, ColumnType::Float | ColumnType::Decimal)
                && t.len() <= pointed.len()
                && memchr::memchr(b',', t).is_some();
            let t = if comma {
                for (p, &b) in pointed.iter_mut().zip(t) {
                    *p = if b == b',' { b'.' } else { b };
                }
                &pointed[..t.len()]
            } else {
                t
            };
            let value = match ty {
                ColumnType::String => {
                    self.slots[s] = SlotValue::Text;
                    Value::Text(f.start, f.end)
                }
                ColumnType::Integer => match types::parse_i64(t) {
                    Ok(v) => {
                        self.slots[s] = SlotValue::Int(v);
                        Value::Int(v)
                    }
                    Err(e) => {
                        let what = match e {
                            IntError::NotInteger => "not an integer",
                            IntError::OutOfRange => "integer out of range",
                        };
                        self.problems.push((col.name.clone(), format!("{what}: {}", quoted(raw))));
                        continue;
                    }
                },
                ColumnType::Float => match types::parse_f64(t) {
                    Ok((v, json)) => {
                        self.slots[s] = SlotValue::Float(v);
                        if json && !comma {
                            // Already a JSON number: copied as written.
                            Value::Number(v, ts, te)
                        } else {
                            Value::Float(v)
                        }
                    }
                    Err(e) => {
                        let what = match e {
                            FloatError::NotNumber => "not a number",
                            FloatError::NotFinite => "not a finite number",
                        };
                        self.problems.push((col.name.clone(), format!("{what}: {}", quoted(raw))));
                        continue;
                    }
                },
                ColumnType::Decimal => {
                    let spec = &plan.columns[s];
                    match types::parse_decimal(t, spec.precision, spec.scale) {
                        Ok(v) => {
                            self.slots[s] = SlotValue::Float(types::decimal_to_f64(v, spec.scale));
                            Value::Decimal(v)
                        }
                        Err(e) => {
                            let reason = match e {
                                DecimalError::NotDecimal => format!("not a decimal number: {}", quoted(raw)),
                                DecimalError::Scale => {
                                    format!(
                                        "more than {} digits after the point: {}",
                                        spec.scale,
                                        quoted(raw)
                                    )
                                }
                                DecimalError::Precision => format!(
                                    "more than {} digits before the point: {}",
                                    spec.precision - spec.scale,
                                    quoted(raw)
                                ),
                            };
                            self.problems.push((col.name.clone(), reason));
                            continue;
                        }
                    }
                }
                ColumnType::Boolean => match types::parse_bool(t) {
                    Some(b) => Value::Bool(b),
                    None => {
                        let reason =
                            format!("not a boolean (expected true/false, 1/0 or yes/no): {}", quoted(raw));
                        self.problems.push((col.name.clone(), reason));
                        continue;
                    }
                },
                ColumnType::Date => {
                    let format = &plan.columns[s].date;
                    match format.parse_packed(t) {
                        Some(date) => {
                            self.slots[s] = SlotValue::Text;
                            Value::Date(date, ts, te)
                        }
                        None => {
                            let reason =
                                format!("not a valid date (expected {}): {}", format.pattern(), quoted(raw));
                            self.problems.push((col.name.clone(), reason));
                            continue;
                        }
                    }
                }
                ColumnType::Datetime => {
                    let format = &plan.columns[s].datetime;
                    match format.parse(t) {
                        Some(micros) => {
                            self.slots[s] = SlotValue::Text;
                            Value::DateTime(micros, ts, te)
                        }
                        None => {
                            let reason = format!(
                                "not a valid datetime (expected {}): {}",
                                format.pattern(),
                                quoted(raw)
                            );
                            self.problems.push((col.name.clone(), reason));
                            continue;
                        }
                    }
                }
                ColumnType::Email => {
                    if types::is_email(t) {
                        self.slots[s] = SlotValue::Text;
                        Value::Text(ts, te)
                    } else {
                        let reason = format!("not a valid email address: {}", quoted(raw));
                        self.problems.push((col.name.clone(), reason));
                        continue;
                    }
                }
                ColumnType::Enum => {
                    self.slots[s] = SlotValue::Text;
                    Value::Text(ts, te)
                }
            };
            if col.checked {
                let checks = plan.columns[s].checks.as_deref().expect("checked columns have checks");
                let key = match value {
                    Value::Int(v) => Some(Key::Num(v as f64)),
                    Value::Float(v) | Value::Number(v, ..) => Some(Key::Num(v)),
                    Value::Decimal(_) => self.slots[s].as_f64().map(Key::Num),
                    Value::Date(d, ..) => Some(Key::Time(d as i64)),
                    Value::DateTime(t, ..) => Some(Key::Time(t)),
                    _ => None,
                };
                if let Some(reason) = checks.check(t, key) {
                    self.problems.push((col.name.clone(), reason));
                    continue;
                }
            }
            self.values[i] = value;
        }
        if !self.problems.is_empty() {
            return self.invalid(rec.line, Some(rec));
        }
        if !self.uniques.is_empty() && !self.check_unique(rec) {
            return self.invalid(rec.line, Some(rec));
        }
        let first_derived = plan.columns.len();
        for (j, d) in plan.derived.iter().enumerate() {
            let mut out = std::mem::take(&mut self.scratch);
            let result = {
                let text = |slot: usize| self.slot_text(rec.buf, slot);
                d.expr.eval(&Row { slots: &self.slots, text: &text }, &mut out)
            };
            match result {
                Ok(v) => {
                    self.slots[first_derived + j] = v;
                    if v == SlotValue::Text {
                        std::mem::swap(&mut self.derived_text[j], &mut out);
                    }
                    self.scratch = out;
                }
                Err(e) => {
                    self.scratch = out;
                    self.problems.push((d.name.clone(), format!("derived field `{}`: {e}", d.name)));
                    return self.invalid(rec.line, Some(rec));
                }
            }
        }
        self.sink.row(&RowRef {
            line: rec.line,
            values: &self.values,
            buf: rec.buf,
            derived: &self.slots[first_derived..],
            derived_text: &self.derived_text,
            extra: rec.extra(),
        })?;
        self.counts.valid += 1;
        let (values, trimmed) = (&self.values, &self.trimmed);
        self.acc.add(&self.slots, |i| {
            if matches!(values[i], Value::Null | Value::Default) {
                return &[];
            }
            let (s, e) = trimmed[i];
            &rec.buf[s..e]
        });
        if self.needs_summary_text {
            self.summary_text(rec);
        }
        Ok(())
    }

    /// The text of a slot for expressions (a text column's value, a derived field's).
    fn slot_text<'a>(&'a self, buf: &'a [u8], slot: usize) -> &'a [u8] {
        let ncols = self.plan.columns.len();
        if slot >= ncols {
            return &self.derived_text[slot - ncols];
        }
        let default = || self.plan.columns[slot].default.as_ref().map_or(&b""[..], |d| d.text());
        match self.binding.file_column[slot] {
            None => default(),
            Some(f) => match self.values[f] {
                Value::Text(s, e) | Value::Date(_, s, e) | Value::DateTime(_, s, e) => &buf[s..e],
                Value::Default => default(),
                _ => b"",
            },
        }
    }

    /// Checks the row's `unique` columns and remembers their values if all pass.
    #[cold]
    fn check_unique(&mut self, rec: &Record<'_>) -> bool {
        let mut fps = Vec::with_capacity(self.uniques.len());
        for (k, (f, s, set)) in self.uniques.iter().enumerate() {
            let fp = match self.values[*f] {
                Value::Null => continue,
                Value::Int(v) => fingerprint(&v.to_le_bytes()),
                Value::Decimal(v) => fingerprint(&v.to_le_bytes()),
                Value::Float(v) | Value::Number(v, ..) => fingerprint(&v.to_bits().to_le_bytes()),
                Value::Date(d, ..) => fingerprint(&d.to_le_bytes()),
                Value::DateTime(t, ..) => fingerprint(&t.to_le_bytes()),
                Value::Bool(b) => fingerprint(&[b as u8]),
                Value::Default => {
                    fingerprint(self.plan.columns[*s].default.as_ref().map_or(&b""[..], |d| &d.json))
                }
                Value::Text(..) => {
                    let (a, b) = self.trimmed[*f];
                    fingerprint(&rec.buf[a..b])
                }
            };
            if let Some(line) = set.first_line(fp) {
                let shown = match self.values[*f] {
                    Value::Default => "(the default)".to_string(),
                    _ => {
                        let (a, b) = self.trimmed[*f];
                        quoted(&rec.buf[a..b])
                    }
                };
                let reason = format!("duplicate value {shown} (first on line {line})");
                self.problems.push((self.binding.cols[*f].name.clone(), reason));
            }
            fps.push((k, fp));
        }
        if !self.problems.is_empty() {
            return false;
        }
        for (k, fp) in fps {
            self.uniques[k].2.insert(fp, rec.line);
        }
        true
    }

    /// `summary.unique` and `summary.range` of a valid row.
    #[cold]
    fn summary_text(&mut self, rec: &Record<'_>) {
        let plan = self.plan;
        for (_, c, counter) in &mut self.acc.unique {
            let Some(f) = self.binding.file_column[*c] else { continue };
            let text: &[u8] = match self.values[f] {
                Value::Null => continue,
                Value::Default => plan.columns[*c].default.as_ref().map_or(&b""[..], |d| &d.json),
                _ => {
                    let (s, e) = self.trimmed[f];
                    &rec.buf[s..e]
                }
            };
            counter.add(text);
        }
        for (_, c, range) in &mut self.acc.ranges {
            let Some(f) = self.binding.file_column[*c] else { continue };
            let key = match self.values[f] {
                Value::Null | Value::Default | Value::Bool(_) => continue,
                Value::Int(v) => Some(Key::Num(v as f64)),
                Value::Float(v) | Value::Number(v, ..) => Some(Key::Num(v)),
                Value::Decimal(_) => match self.slots[*c] {
                    SlotValue::Float(v) => Some(Key::Num(v)),
                    _ => None,
                },
                Value::Date(d, ..) => Some(Key::Time(d as i64)),
                Value::DateTime(t, ..) => Some(Key::Time(t)),
                Value::Text(..) => None,
            };
            let (s, e) = self.trimmed[f];
            range.add(key, &rec.buf[s..e]);
        }
    }

    /// Counts the current row's problems and describes the row in the error report.
    #[cold]
    fn invalid(&mut self, line: u64, rec: Option<&Record<'_>>) -> Result<(), ProcessError> {
        for (i, (field, _)) in self.problems.iter().enumerate() {
            if !self.problems[..i].iter().any(|(f, _)| f == field) {
                self.acc.error_in(field);
            }
        }
        if self.counts.reported < self.plan.max_errors as u64
            && self.reported_bytes < self.plan.max_error_bytes
        {
            let start = self.err.buf.len();
            self.describe(line, rec);
            let len = (self.err.buf.len() - start) as u64;
            if self.reported_bytes + len > self.plan.max_error_bytes {
                // The report is full: this row and the rest are counted, not described.
                self.err.buf.truncate(start);
                self.reported_bytes = self.plan.max_error_bytes;
            } else {
                self.counts.reported += 1;
                self.reported_bytes += len;
                self.err.line_done()?;
            }
        }
        self.problems.clear();
        Ok(())
    }

    /// Appends the row's description (one NDJSON line) to the error report's buffer.
    fn describe(&mut self, line: u64, rec: Option<&Record<'_>>) {
        let out = &mut self.err.buf;
        out.extend_from_slice(b"{\"line\":");
        json_text::write_u64(out, line);
        let (field, reason) = &self.problems[0];
        out.extend_from_slice(b",\"field\":");
        json_text::write_str(out, field.as_bytes());
        out.extend_from_slice(b",\"reason\":");
        json_text::write_str(out, reason.as_bytes());
        out.extend_from_slice(b",\"errors\":[");
        for (i, (field, reason)) in self.problems.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"{\"field\":" } else { b",{\"field\":" });
            json_text::write_str(out, field.as_bytes());
            out.extend_from_slice(b",\"reason\":");
            json_text::write_str(out, reason.as_bytes());
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"values\":{");
        let mut omitted = 0u64;
        if let Some(rec) = rec.filter(|r| r.malformed().is_none()) {
            // The schema's columns, and the first few others: a row of 100,000 fields is not
            // copied whole into the report.
            let (mut first, mut extra) = (true, 0);
            for i in 0..rec.fields.len() {
                let schema = self.binding.cols.get(i).is_some_and(|c| c.schema.is_some());
                if !schema {
                    if extra == MAX_EXTRA_REPORTED {
                        omitted += 1;
                        continue;
                    }
                    extra += 1;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                match self.binding.cols.get(i) {
                    Some(col) => json_text::write_str(out, col.original.as_bytes()),
                    None => json_text::write_str(out, format!("(field {})", i + 1).as_bytes()),
                }
                out.push(b':');
                if rec.absent(i) {
                    out.extend_from_slice(b"null");
                    continue;
                }
                let text = String::from_utf8_lossy(rec.field(i));
                match text.char_indices().nth(MAX_REPORTED_VALUE) {
                    Some((cut, _)) => {
                        let mut short = text[..cut].to_string();
                        short.push('…');
                        json_text::write_str(out, short.as_bytes());
                    }
                    None => json_text::write_str(out, text.as_bytes()),
                }
            }
            // Fields past the ones the reader keeps are counted, never stored.
            omitted += rec.field_count.saturating_sub(rec.fields.len()) as u64;
        }
        out.push(b'}');
        if omitted > 0 {
            out.extend_from_slice(b",\"values_omitted\":");
            json_text::write_u64(out, omitted);
        }
        out.extend_from_slice(b"}\n");
    }
}
