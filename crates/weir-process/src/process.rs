//! The one pass: header check, then per record validate → derive → write → summarise.
//!
//! After the header is matched, the plan is *bound* to the file: each file column gets its
//! escaped output key, its type and the slot where its typed value goes, so the row loop is a
//! straight walk over fields with no name lookups. Valid rows are serialised into a reused
//! buffer flushed in 64 KiB chunks; invalid rows are described (all their problems, the
//! original values) in the error report up to the configured maximum and counted always.

use std::io::{Read, Write};

use weir_core::config::ColumnType;
use weir_core::Summary;

use crate::error::ProcessError;
use crate::expr::Num;
use crate::header::HeaderCheck;
use crate::ndjson::{self, OutBuf};
use crate::plan::Plan;
use crate::reader::{CsvReader, Next, Record};
use crate::summary::Accumulator;
use crate::validate::{self, quoted, FloatError, IntError};

/// Reads just the header record and compares it with the schema (the `validate-schema` task).
/// Without a header (`format.has_header = false`) the schema's columns are the file's.
pub fn check_header<R: Read>(plan: &Plan, input: R) -> Result<HeaderCheck, ProcessError> {
    let mut reader = CsvReader::new(input, plan.delimiter, plan.quote, plan.max_record_bytes, None);
    Ok(read_header(plan, &mut reader)?.0)
}

/// Processes a whole CSV stream: valid rows as NDJSON to `results`, one NDJSON line per invalid
/// row (up to `summary.max_errors_in_report`) to `errors`, and the summary as the result.
/// `progress` is called with the number of input bytes read after every buffer refill.
///
/// Returns [`ProcessError::HeaderMismatch`] before writing anything if the header is refused.
pub fn process<R: Read, W: Write, E: Write>(
    plan: &Plan,
    input: R,
    results: W,
    errors: E,
    progress: Option<&dyn Fn(u64)>,
) -> Result<Summary, ProcessError> {
    let mut reader = CsvReader::new(input, plan.delimiter, plan.quote, plan.max_record_bytes, progress);
    let (check, originals) = read_header(plan, &mut reader)?;
    if !check.is_valid() {
        return Err(ProcessError::HeaderMismatch(check));
    }
    let binding = Binding::new(plan, &check, originals);
    let mut run = Run {
        plan,
        acc: Accumulator::new(plan, &binding.file_column),
        binding,
        slots: vec![Num::Null; plan.slot_count()],
        values: Vec::new(),
        problems: Vec::new(),
        out: OutBuf::new(results),
        err: OutBuf::new(errors),
        total: 0,
        valid: 0,
        reported: 0,
    };
    run.values.resize(run.binding.cols.len(), Value::Null);
    while let Some(next) = reader.next_record()? {
        run.total += 1;
        match next {
            Next::Record(rec) => run.row(&rec)?,
            Next::Oversized { line, bytes } => {
                let reason = format!("record is {bytes} bytes; the limit is {}", plan.max_record_bytes);
                run.problems.push((ROW.into(), reason));
                run.invalid(line, None)?;
            }
        }
    }
    let Run { acc, out, err, total, valid, reported, .. } = run;
    out.finish()?;
    err.finish()?;
    Ok(acc.finish(total, valid, reported))
}

/// The field name of problems with a whole row (wrong field count, too large).
const ROW: &str = "(row)";

/// Fields beyond the header's count shown in the error report's `values`.
const MAX_EXTRA_REPORTED: usize = 16;

/// Longest value (in characters) quoted in the error report's `values`.
const MAX_REPORTED_VALUE: usize = 1024;

fn read_header<R: Read>(
    plan: &Plan,
    reader: &mut CsvReader<'_, R>,
) -> Result<(HeaderCheck, Vec<String>), ProcessError> {
    let names: Vec<String> = if plan.has_header {
        match reader.next_record()? {
            None => return Err(ProcessError::Empty),
            Some(Next::Oversized { .. }) => {
                return Err(ProcessError::HeaderTooLarge { limit: plan.max_record_bytes })
            }
            Some(Next::Record(rec)) => {
                if let Some(&(_, offset)) = rec.utf8_errors.first() {
                    return Err(ProcessError::HeaderEncoding { offset });
                }
                (0..rec.fields.len()).map(|i| String::from_utf8_lossy(rec.field(i)).into_owned()).collect()
            }
        }
    } else {
        plan.columns.iter().map(|c| c.name.clone()).collect()
    };
    Ok((HeaderCheck::new(plan, &names), names))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    String,
    Integer,
    Float,
    Boolean,
    Date,
    Email,
    /// A column the schema does not know: kept as a string.
    Extra,
}

struct Col {
    /// `{"name":` for the first column, `,"name":` after.
    key: Vec<u8>,
    name: String,
    original: String,
    kind: Kind,
    /// Schema column index (= value slot); `None` for extra columns.
    schema: Option<usize>,
    required: bool,
}

/// The plan bound to one file's header.
struct Binding {
    cols: Vec<Col>,
    /// File column of each schema column.
    file_column: Vec<Option<usize>>,
    /// `,"name":null` for each optional schema column the file lacks, then `,"derived":` keys.
    missing: Vec<u8>,
    derived_keys: Vec<Vec<u8>>,
}

impl Binding {
    fn new(plan: &Plan, check: &HeaderCheck, originals: Vec<String>) -> Binding {
        let mut file_column = vec![None; plan.columns.len()];
        let cols = check
            .columns
            .iter()
            .zip(originals)
            .enumerate()
            .map(|(i, (name, original))| {
                let schema = plan.columns.iter().position(|c| &c.name == name);
                let (kind, required) = match schema {
                    Some(s) => {
                        file_column[s] = Some(i);
                        let c = &plan.columns[s];
                        let kind = match c.ty {
                            ColumnType::String => Kind::String,
                            ColumnType::Integer => Kind::Integer,
                            ColumnType::Float => Kind::Float,
                            ColumnType::Boolean => Kind::Boolean,
                            ColumnType::Date => Kind::Date,
                            ColumnType::Email => Kind::Email,
                        };
                        (kind, c.required)
                    }
                    None => (Kind::Extra, false),
                };
                let mut key = vec![if i == 0 { b'{' } else { b',' }];
                key.extend_from_slice(&ndjson::key(name));
                Col { key, name: name.clone(), original, kind, schema, required }
            })
            .collect();
        let mut missing = Vec::new();
        for (s, c) in plan.columns.iter().enumerate() {
            if file_column[s].is_none() {
                missing.push(b',');
                missing.extend_from_slice(&ndjson::key(&c.name));
                missing.extend_from_slice(b"null");
            }
        }
        let derived_keys = plan
            .derived
            .iter()
            .map(|d| {
                let mut k = vec![b','];
                k.extend_from_slice(&ndjson::key(&d.name));
                k
            })
            .collect();
        Binding { cols, file_column, missing, derived_keys }
    }
}

/// A typed field of the current row, ready to write.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Written as a JSON string: the field's content from `start` to `end`.
    Text(usize, usize),
    /// Written as it is: a field whose text is a valid JSON number.
    Number(usize, usize),
}

struct Run<'p, W: Write, E: Write> {
    plan: &'p Plan,
    binding: Binding,
    acc: Accumulator,
    /// Typed values by slot (schema columns, then derived fields) for expressions and stats.
    slots: Vec<Num>,
    /// Typed values by file column, for output.
    values: Vec<Value>,
    /// Problems of the current row: field name, reason.
    problems: Vec<(String, String)>,
    out: OutBuf<W>,
    err: OutBuf<E>,
    total: u64,
    valid: u64,
    reported: u64,
}

impl<W: Write, E: Write> Run<'_, W, E> {
    #[inline]
    fn row(&mut self, rec: &Record<'_>) -> Result<(), ProcessError> {
        let ncols = self.binding.cols.len();
        if rec.field_count != ncols {
            let reason = format!("expected {ncols} fields, found {}", rec.field_count);
            self.problems.push((ROW.into(), reason));
            return self.invalid(rec.line, Some(rec));
        }
        for (i, col) in self.binding.cols.iter().enumerate() {
            let f = rec.fields[i];
            let raw = &rec.buf[f.start..f.end];
            if !rec.utf8_errors.is_empty() {
                if let Some(&(_, offset)) = rec.utf8_errors.iter().find(|e| e.0 == i) {
                    let reason = format!("not valid UTF-8 at byte offset {offset} of the file");
                    self.problems.push((col.name.clone(), reason));
                    continue;
                }
            }
            let t = validate::trim(raw);
            if t.is_empty() {
                if col.required {
                    self.problems.push((col.name.clone(), "required field is empty".into()));
                }
                self.values[i] = Value::Null;
                if let Some(s) = col.schema {
                    self.slots[s] = Num::Null;
                }
                continue;
            }
            // `t` starts this far into the field.
            let lead = t.as_ptr() as usize - raw.as_ptr() as usize;
            let (ts, te) = (f.start + lead, f.start + lead + t.len());
            let text = Value::Text(ts, te);
            let value = match col.kind {
                Kind::String | Kind::Extra => Value::Text(f.start, f.end),
                Kind::Integer => match validate::parse_i64(t) {
                    Ok(v) => {
                        self.slots[col.schema.unwrap_or_default()] = Num::Int(v);
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
                Kind::Float => match validate::parse_f64(t) {
                    Ok((v, json)) => {
                        self.slots[col.schema.unwrap_or_default()] = Num::Float(v);
                        if json {
                            // Already a JSON number: copied as written.
                            Value::Number(ts, te)
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
                Kind::Boolean => match validate::parse_bool(t) {
                    Some(b) => Value::Bool(b),
                    None => {
                        let reason =
                            format!("not a boolean (expected true/false, 1/0 or yes/no): {}", quoted(raw));
                        self.problems.push((col.name.clone(), reason));
                        continue;
                    }
                },
                Kind::Date => {
                    let format = &self.plan.columns[col.schema.unwrap_or_default()].date;
                    if format.is_valid(t) {
                        text
                    } else {
                        let reason =
                            format!("not a valid date (expected {}): {}", format.pattern(), quoted(raw));
                        self.problems.push((col.name.clone(), reason));
                        continue;
                    }
                }
                Kind::Email => {
                    if validate::is_email(t) {
                        text
                    } else {
                        let reason = format!("not a valid email address: {}", quoted(raw));
                        self.problems.push((col.name.clone(), reason));
                        continue;
                    }
                }
            };
            self.values[i] = value;
        }
        if !self.problems.is_empty() {
            return self.invalid(rec.line, Some(rec));
        }
        let first_derived = self.plan.columns.len();
        for (j, d) in self.plan.derived.iter().enumerate() {
            match d.expr.eval(&self.slots) {
                Ok(v) => self.slots[first_derived + j] = v,
                Err(e) => {
                    self.problems.push((d.name.clone(), format!("derived field `{}`: {e}", d.name)));
                    return self.invalid(rec.line, Some(rec));
                }
            }
        }
        self.write_row(rec)?;
        self.valid += 1;
        self.acc.add(&self.slots, |i| {
            let f = rec.fields[i];
            validate::trim(&rec.buf[f.start..f.end])
        });
        Ok(())
    }

    #[inline]
    fn write_row(&mut self, rec: &Record<'_>) -> Result<(), ProcessError> {
        let out = &mut self.out.buf;
        for (col, value) in self.binding.cols.iter().zip(&self.values) {
            ndjson::put(out, &col.key);
            match *value {
                Value::Null => out.extend_from_slice(b"null"),
                Value::Int(v) => ndjson::write_i64(out, v),
                Value::Float(v) => ndjson::write_f64(out, v),
                Value::Bool(true) => out.extend_from_slice(b"true"),
                Value::Bool(false) => out.extend_from_slice(b"false"),
                Value::Text(s, e) => ndjson::write_str(out, &rec.buf[s..e]),
                Value::Number(s, e) => ndjson::put(out, &rec.buf[s..e]),
            }
        }
        out.extend_from_slice(&self.binding.missing);
        let first_derived = self.plan.columns.len();
        for (j, key) in self.binding.derived_keys.iter().enumerate() {
            ndjson::put(out, key);
            match self.slots[first_derived + j] {
                Num::Null => out.extend_from_slice(b"null"),
                Num::Int(v) => ndjson::write_i64(out, v),
                Num::Float(v) => ndjson::write_f64(out, v),
            }
        }
        out.extend_from_slice(b"}\n");
        self.out.line_done()?;
        Ok(())
    }

    /// Counts the current row's problems and describes the row in the error report.
    #[cold]
    fn invalid(&mut self, line: u64, rec: Option<&Record<'_>>) -> Result<(), ProcessError> {
        for (i, (field, _)) in self.problems.iter().enumerate() {
            if !self.problems[..i].iter().any(|(f, _)| f == field) {
                self.acc.error_in(field);
            }
        }
        if self.reported < self.plan.max_errors as u64 {
            self.reported += 1;
            let out = &mut self.err.buf;
            out.extend_from_slice(b"{\"line\":");
            ndjson::write_u64(out, line);
            let (field, reason) = &self.problems[0];
            out.extend_from_slice(b",\"field\":");
            ndjson::write_str(out, field.as_bytes());
            out.extend_from_slice(b",\"reason\":");
            ndjson::write_str(out, reason.as_bytes());
            out.extend_from_slice(b",\"errors\":[");
            for (i, (field, reason)) in self.problems.iter().enumerate() {
                out.extend_from_slice(if i == 0 { b"{\"field\":" } else { b",{\"field\":" });
                ndjson::write_str(out, field.as_bytes());
                out.extend_from_slice(b",\"reason\":");
                ndjson::write_str(out, reason.as_bytes());
                out.push(b'}');
            }
            out.extend_from_slice(b"],\"values\":{");
            if let Some(rec) = rec {
                // A row with thousands of extra fields is described by its first few.
                let shown = rec.fields.len().min(self.binding.cols.len() + MAX_EXTRA_REPORTED);
                for i in 0..shown {
                    if i > 0 {
                        out.push(b',');
                    }
                    match self.binding.cols.get(i) {
                        Some(col) => ndjson::write_str(out, col.original.as_bytes()),
                        None => ndjson::write_str(out, format!("(field {})", i + 1).as_bytes()),
                    }
                    out.push(b':');
                    let text = String::from_utf8_lossy(rec.field(i));
                    match text.char_indices().nth(MAX_REPORTED_VALUE) {
                        Some((cut, _)) => {
                            let mut short = text[..cut].to_string();
                            short.push('…');
                            ndjson::write_str(out, short.as_bytes());
                        }
                        None => ndjson::write_str(out, text.as_bytes()),
                    }
                }
            }
            out.extend_from_slice(b"}}\n");
            self.err.line_done()?;
        }
        self.problems.clear();
        Ok(())
    }
}
