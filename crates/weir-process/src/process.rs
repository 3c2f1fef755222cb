//! The one pass: header check, then per record validate → derive → write → summarise.
//!
//! After the header is matched, the plan is *bound* to the file: each file column gets its
//! type, its rules and the slot where its typed value goes, and the output [`Layout`] is fixed,
//! so the row loop is a straight walk over fields with no name lookups. Valid rows go to the
//! configured [`Sink`]; invalid rows are described (all their problems, the original values) in
//! the error report up to the configured maximum and counted always. JSON input goes through
//! the same loop: its reader lays each object out as one field per schema column.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use weir_core::config::{ColumnType, FormatKind, OutputFormat};
use weir_core::Summary;

use crate::error::ProcessError;
use crate::expr::{Num, Row};
use crate::formats::csv::CsvReader;
use crate::formats::json::JsonReader;
use crate::formats::{self, Next, Record, Source};
use crate::header::HeaderCheck;
use crate::output::json::JsonDocSink;
use crate::output::ndjson::{self, NdjsonSink, OutBuf};
use crate::output::parquet::ParquetSink;
use crate::output::{self, Layout, RowRef, Sink, Value};
use crate::plan::Plan;
use crate::schema::types::{self, quoted, DecimalError, FloatError, IntError};
use crate::schema::unique::{fingerprint, UniqueColumn};
use crate::schema::{Key, Owned};
use crate::summary::Accumulator;

/// What a pass may know besides the bytes.
#[derive(Default, Clone, Copy)]
pub struct Options<'a> {
    /// The file's name or key: picks gzip/zstd by its suffix, and is the JSON document
    /// output's `source_file`.
    pub source_name: Option<&'a str>,
    /// Called with the number of input bytes read (after decompression) after each refill.
    pub progress: Option<&'a dyn Fn(u64)>,
    /// The input's size in bytes, when known: a small input is read with a small buffer.
    pub size_hint: Option<u64>,
}

/// Reads just the header record and compares it with the schema (the `validate-schema` task).
/// Without a header (`format.has_header = false`) the schema's columns are the file's; a JSON
/// file is checked to start like JSON, its fields are checked row by row.
pub fn check_header<R: Read>(plan: &Plan, input: R) -> Result<HeaderCheck, ProcessError> {
    check_header_named(plan, input, None)
}

/// [`check_header`] for a file whose name (for a `.gz`/`.zst` suffix) is known.
pub fn check_header_named<R: Read>(
    plan: &Plan,
    input: R,
    name: Option<&str>,
) -> Result<HeaderCheck, ProcessError> {
    check_header_with(plan, input, &Options { source_name: name, ..Options::default() })
}

/// [`check_header`] with what else is known of the input (its name, its size).
pub fn check_header_with<R: Read>(
    plan: &Plan,
    input: R,
    options: &Options<'_>,
) -> Result<HeaderCheck, ProcessError> {
    let input = formats::open(plan, input, options.source_name)?;
    let buffer = formats::initial_buffer(options.size_hint);
    match plan.input.kind {
        FormatKind::Csv => {
            let mut reader = CsvReader::with_buffer(
                input,
                plan.delimiter,
                plan.quote,
                plan.max_record_bytes,
                None,
                buffer,
            );
            Ok(read_header(plan, &mut reader)?.0)
        }
        FormatKind::Json | FormatKind::Ndjson => {
            JsonReader::with_buffer(input, plan, None, buffer).check_start()?;
            let names: Vec<String> = plan.columns.iter().map(|c| c.name.clone()).collect();
            Ok(HeaderCheck::new(plan, &names))
        }
    }
}

/// Processes a whole stream: valid rows to `results` in the pipeline's output format, one
/// NDJSON line per invalid row (up to `summary.max_errors_in_report`) to `errors`, and the
/// summary as the result. `progress` is called with the number of input bytes read after every
/// buffer refill.
///
/// Returns [`ProcessError::HeaderMismatch`] before writing anything if the header is refused,
/// and [`ProcessError::TooManyInvalid`] after the pass when `validation.max_invalid_ratio` is
/// exceeded (the outputs are then incomplete and must be discarded).
pub fn process<R: Read, W: Write + Send, E: Write>(
    plan: &Plan,
    input: R,
    results: W,
    errors: E,
    progress: Option<&dyn Fn(u64)>,
) -> Result<Summary, ProcessError> {
    process_with(plan, input, results, errors, &Options { progress, ..Options::default() })
}

/// [`process`] with the file's name and other [`Options`].
pub fn process_with<R: Read, W: Write + Send, E: Write>(
    plan: &Plan,
    input: R,
    results: W,
    errors: E,
    options: &Options<'_>,
) -> Result<Summary, ProcessError> {
    let budget = OutputBudget::new(plan.max_output_bytes);
    let (results, errors) = (budget.writer(results), budget.writer(errors));
    process_within(plan, input, results, errors, options).map_err(|e| budget.explain(e))
}

fn process_within<R: Read, W: Write + Send, E: Write>(
    plan: &Plan,
    input: R,
    results: W,
    errors: E,
    options: &Options<'_>,
) -> Result<Summary, ProcessError> {
    if crate::parallel::applies(plan, options) {
        return crate::parallel::process(plan, input, results, errors, options);
    }
    let input = formats::open(plan, input, options.source_name)?;
    let buffer = formats::initial_buffer(options.size_hint);
    match plan.input.kind {
        FormatKind::Csv => {
            let (delimiter, quote, max) = (plan.delimiter, plan.quote, plan.max_record_bytes);
            let mut reader = CsvReader::with_buffer(input, delimiter, quote, max, options.progress, buffer);
            let (check, originals) = read_header(plan, &mut reader)?;
            run(plan, check, originals, reader, results, errors, options)
        }
        FormatKind::Json | FormatKind::Ndjson => {
            let names: Vec<String> = plan.columns.iter().map(|c| c.name.clone()).collect();
            let check = HeaderCheck::new(plan, &names);
            let reader = JsonReader::with_buffer(input, plan, options.progress, buffer);
            run(plan, check, names, reader, results, errors, options)
        }
    }
}

fn run<S: Source, W: Write + Send, E: Write>(
    plan: &Plan,
    check: HeaderCheck,
    originals: Vec<String>,
    source: S,
    results: W,
    errors: E,
    options: &Options<'_>,
) -> Result<Summary, ProcessError> {
    if !check.is_valid() {
        return Err(ProcessError::HeaderMismatch(check));
    }
    let binding = Binding::new(plan, &check, originals);
    let layout = binding.layout(plan);
    match plan.output {
        OutputFormat::Ndjson => drive(plan, binding, source, NdjsonSink::new(results, &layout), errors),
        OutputFormat::Json => {
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            let sink = JsonDocSink::new(results, &layout, options.source_name.unwrap_or(""), &now);
            drive(plan, binding, source, sink, errors)
        }
        OutputFormat::Parquet => {
            let sink = ParquetSink::new(results, &layout, plan.row_group_rows)?;
            drive(plan, binding, source, sink, errors)
        }
    }
}

/// The row loop over any source into any sink.
fn drive<S: Source, K: Sink, E: Write>(
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

/// What a pass may write in all (`output.max_bytes`), shared by the results and the error
/// report: a small file can describe a huge one (a compressed one, above all).
struct OutputBudget {
    left: Arc<AtomicU64>,
    exceeded: Arc<AtomicBool>,
    limit: u64,
}

impl OutputBudget {
    fn new(limit: u64) -> OutputBudget {
        OutputBudget { left: Arc::new(AtomicU64::new(limit)), exceeded: Arc::default(), limit }
    }

    fn writer<W: Write>(&self, inner: W) -> Budgeted<W> {
        Budgeted { inner, left: self.left.clone(), exceeded: self.exceeded.clone() }
    }

    /// The error a failed pass reports: over the budget, whatever a writer made of that.
    fn explain(&self, e: ProcessError) -> ProcessError {
        if self.exceeded.load(Ordering::Relaxed) {
            ProcessError::OutputTooLarge { limit: self.limit }
        } else {
            e
        }
    }
}

struct Budgeted<W> {
    inner: W,
    left: Arc<AtomicU64>,
    exceeded: Arc<AtomicBool>,
}

impl<W: Write> Write for Budgeted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len() as u64;
        let taken = self.left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(n));
        if taken.is_err() {
            self.exceeded.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("over output.max_bytes"));
        }
        let written = self.inner.write(buf)?;
        // Give back what the writer did not take.
        self.left.fetch_add(n - written as u64, Ordering::Relaxed);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The field name of problems with a whole row (wrong field count, too large, not JSON).
pub(crate) const ROW: &str = "(row)";

/// Fields other than the schema's columns shown in the error report's `values` (a row of 100,000
/// fields is described by its schema columns and the first few others).
const MAX_EXTRA_REPORTED: usize = 16;

/// Longest value (in characters) quoted in the error report's `values`.
const MAX_REPORTED_VALUE: usize = 1024;

pub(crate) fn read_header<R: Read>(
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
    Typed(ColumnType),
    /// A column the schema does not know, kept as a string.
    Extra,
    /// A column the schema does not know, dropped (`unknown_columns = "drop"`).
    Dropped,
}

#[derive(Debug, Clone)]
struct Col {
    name: String,
    original: String,
    kind: Kind,
    /// Schema column index (= value slot); `None` for unknown columns.
    schema: Option<usize>,
    /// Empty values are refused (and the reason when they are).
    not_null: Option<&'static str>,
    /// The column has rules beyond its type.
    checked: bool,
}

/// The plan bound to one file's header.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    cols: Vec<Col>,
    /// File column of each schema column.
    pub file_column: Vec<Option<usize>>,
}

impl Binding {
    pub fn new(plan: &Plan, check: &HeaderCheck, originals: Vec<String>) -> Binding {
        let mut file_column = vec![None; plan.columns.len()];
        let cols = check
            .columns
            .iter()
            .zip(originals)
            .enumerate()
            .map(|(i, (name, original))| {
                let schema = plan.columns.iter().position(|c| &c.name == name);
                let (kind, not_null) = match schema {
                    Some(s) => {
                        file_column[s] = Some(i);
                        let c = &plan.columns[s];
                        let not_null = match (c.nullable, c.required) {
                            (true, _) => None,
                            (false, true) => Some("required field is empty"),
                            (false, false) => Some("field is empty and the column is not nullable"),
                        };
                        (Kind::Typed(c.ty), not_null)
                    }
                    None if plan.keep_unknown => (Kind::Extra, None),
                    None => (Kind::Dropped, None),
                };
                let checked = schema.is_some_and(|s| plan.columns[s].checks.is_some());
                Col { name: name.clone(), original, kind, schema, not_null, checked }
            })
            .collect();
        Binding { cols, file_column }
    }

    pub fn layout(&self, plan: &Plan) -> Layout {
        let mut columns = Vec::new();
        let mut written = Vec::new();
        for c in &self.cols {
            let w = c.kind != Kind::Dropped;
            written.push(w);
            if !w {
                continue;
            }
            let (kind, default) = match c.schema {
                Some(s) => {
                    let spec = &plan.columns[s];
                    (output::Kind::of(spec.ty, spec.precision, spec.scale), spec.default.clone())
                }
                None => (output::Kind::Text, None),
            };
            columns.push(output::Column { name: c.name.clone(), kind, default });
        }
        let file_columns = columns.len();
        for (s, spec) in plan.columns.iter().enumerate() {
            if self.file_column[s].is_none() {
                columns.push(output::Column {
                    name: spec.name.clone(),
                    kind: output::Kind::of(spec.ty, spec.precision, spec.scale),
                    default: spec.default.clone(),
                });
            }
        }
        let missing = columns.len() - file_columns;
        for d in &plan.derived {
            columns.push(output::Column {
                name: d.name.clone(),
                kind: output::Kind::of_expr(d.expr.ty),
                default: None,
            });
        }
        Layout { columns, written, missing }
    }
}

/// The value an expression sees for a default.
fn owned_num(v: &Owned) -> Num {
    match v {
        Owned::Int(i) => Num::Int(*i),
        Owned::Float(f) => Num::Float(*f),
        Owned::Decimal(_) | Owned::Bool(_) => Num::Null,
        Owned::Text(_) | Owned::Date(..) | Owned::DateTime(..) => Num::Str,
    }
}

fn owned_text(v: &Owned) -> &[u8] {
    match v {
        Owned::Text(s) | Owned::Date(_, s) | Owned::DateTime(_, s) => s.as_bytes(),
        _ => b"",
    }
}

/// One file's pass state: the row loop's working memory, the summary and the outputs.
pub(crate) struct Pass<'p, K: Sink, E: Write> {
    plan: &'p Plan,
    binding: Binding,
    pub acc: Accumulator,
    /// Typed values by slot (schema columns, then derived fields) for expressions and stats.
    slots: Vec<Num>,
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
    pub total: u64,
    pub valid: u64,
    pub reported: u64,
    /// Bytes of the descriptions written to the error report so far.
    reported_bytes: u64,
    /// Whether every field of the row is kept by the summary's categorical counts etc.
    needs_summary_text: bool,
}

impl<'p, K: Sink, E: Write> Pass<'p, K, E> {
    pub fn new(plan: &'p Plan, binding: Binding, sink: K, err: OutBuf<E>) -> Self {
        let mut slots = vec![Num::Null; plan.slot_count()];
        for (s, spec) in plan.columns.iter().enumerate() {
            if binding.file_column[s].is_none() {
                slots[s] = spec.default.as_ref().map_or(Num::Null, |d| owned_num(&d.value));
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
            total: 0,
            valid: 0,
            reported: 0,
            reported_bytes: 0,
            needs_summary_text: !plan.unique_summary.is_empty() || !plan.range_summary.is_empty(),
            binding,
        }
    }

    #[inline]
    pub fn record(&mut self, next: Next<'_>) -> Result<(), ProcessError> {
        self.total += 1;
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
        self.check_ratio()?;
        self.sink.finish(self.total, self.valid)?;
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
        Ok(acc.finish(self.total, self.valid, self.reported))
    }

    /// The sink, the error report, the partial summary and the counts (total, valid, reported),
    /// for the parallel driver to merge.
    pub fn into_parts(self) -> (K, OutBuf<E>, Accumulator, u64, u64, u64) {
        (self.sink, self.err, self.acc, self.total, self.valid, self.reported)
    }

    pub fn check_ratio(&self) -> Result<(), ProcessError> {
        if let Some(max) = self.plan.max_invalid_ratio {
            let invalid = self.total - self.valid;
            if self.total > 0 && invalid as f64 / self.total as f64 > max {
                return Err(ProcessError::TooManyInvalid { invalid, total: self.total, max_ratio: max });
            }
        }
        Ok(())
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
            let Kind::Typed(ty) = col.kind else {
                if col.kind == Kind::Extra {
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
                    self.slots[s] = owned_num(&d.value);
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
                self.slots[s] = Num::Null;
                continue;
            }
            // `t` starts this far into the field.
            let lead = t.as_ptr() as usize - raw.as_ptr() as usize;
            let (ts, te) = (f.start + lead, f.start + lead + t.len());
            self.trimmed[i] = (ts, te);
            let value = match ty {
                ColumnType::String => {
                    self.slots[s] = Num::Str;
                    Value::Text(f.start, f.end)
                }
                ColumnType::Integer => match types::parse_i64(t) {
                    Ok(v) => {
                        self.slots[s] = Num::Int(v);
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
                        self.slots[s] = Num::Float(v);
                        if json {
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
                            let f = v as f64 / 10f64.powi(spec.scale as i32);
                            self.slots[s] = Num::Float(f);
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
                            self.slots[s] = Num::Str;
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
                            self.slots[s] = Num::Str;
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
                        self.slots[s] = Num::Str;
                        Value::Text(ts, te)
                    } else {
                        let reason = format!("not a valid email address: {}", quoted(raw));
                        self.problems.push((col.name.clone(), reason));
                        continue;
                    }
                }
                ColumnType::Enum => {
                    self.slots[s] = Num::Str;
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
                    if v == Num::Str {
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
            values: &self.values,
            buf: rec.buf,
            derived: &self.slots[first_derived..],
            derived_text: &self.derived_text,
            extra: rec.extra(),
        })?;
        self.valid += 1;
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
        let default = || self.plan.columns[slot].default.as_ref().map_or(&b""[..], |d| owned_text(&d.value));
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
                    Num::Float(v) => Some(Key::Num(v)),
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
        if self.reported < self.plan.max_errors as u64 && self.reported_bytes < self.plan.max_error_bytes {
            let start = self.err.buf.len();
            self.describe(line, rec);
            let len = (self.err.buf.len() - start) as u64;
            if self.reported_bytes + len > self.plan.max_error_bytes {
                // The report is full: this row and the rest are counted, not described.
                self.err.buf.truncate(start);
                self.reported_bytes = self.plan.max_error_bytes;
            } else {
                self.reported += 1;
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
                    Some(col) => ndjson::write_str(out, col.original.as_bytes()),
                    None => ndjson::write_str(out, format!("(field {})", i + 1).as_bytes()),
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
                        ndjson::write_str(out, short.as_bytes());
                    }
                    None => ndjson::write_str(out, text.as_bytes()),
                }
            }
            // Fields past the ones the reader keeps are counted, never stored.
            omitted += rec.field_count.saturating_sub(rec.fields.len()) as u64;
        }
        out.push(b'}');
        if omitted > 0 {
            out.extend_from_slice(b",\"values_omitted\":");
            ndjson::write_u64(out, omitted);
        }
        out.extend_from_slice(b"}\n");
    }
}
