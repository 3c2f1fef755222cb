//! The crate's entry points: check a header, or process a whole file.
//!
//! [`process_with`] opens the input (decompressed, transcoded), picks the reader for the format,
//! reads and binds the header, picks the sink for the output format and runs the row loop
//! (`crate::pass`); a file that can be split between threads goes to `crate::parallel` instead.
//! [`check_header_with`] stops after the header, for the `validate-schema` step.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use weir_core::config::{FormatKind, OutputFormat};
use weir_core::Summary;

use crate::binding::{read_header, Binding};
use crate::error::ProcessError;
use crate::formats::csv::CsvReader;
use crate::formats::json::JsonReader;
use crate::formats::{self, Source};
use crate::header::HeaderCheck;
use crate::output::json::JsonDocSink;
use crate::output::ndjson::NdjsonSink;
use crate::output::parquet::ParquetSink;
use crate::output::rows::{EmitRows, RowTap};
use crate::output::{FanOut, Layout, Sink};
use crate::pass;
use crate::plan::Plan;

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
    /// Takes the valid rows as typed cells, a batch at a time, besides the results (a warehouse
    /// load, see [`crate::Plan::table_columns`]); an error it returns stops the pass. A pass
    /// with it runs on one thread.
    pub rows: Option<EmitRows<'a>>,
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
    let buffer = formats::refill::initial_buffer(options.size_hint);
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

/// [`process`] with the file's name and other [`Options`]. The results are written in the
/// plan's first format ([`Plan::output_format`]); [`process_many`] writes every format.
pub fn process_with<R: Read, W: Write + Send, E: Write>(
    plan: &Plan,
    input: R,
    results: W,
    errors: E,
    options: &Options<'_>,
) -> Result<Summary, ProcessError> {
    let budget = OutputBudget::new(plan.max_output_bytes);
    let (results, errors) = (vec![budget.writer(results)], budget.writer(errors));
    process_within(plan, input, results, errors, options).map_err(|e| budget.explain(e))
}

/// [`process_with`] into every result format of the plan ([`Plan::output_formats`]), one
/// writer each in that order: the rows are read, validated and summarised once, and each valid
/// row goes to every format's writer as it is read. `output.max_bytes` bounds all the results
/// and the error report together. `results` must have one writer per format.
pub fn process_many<R: Read, W: Write + Send, E: Write>(
    plan: &Plan,
    input: R,
    results: Vec<W>,
    errors: E,
    options: &Options<'_>,
) -> Result<Summary, ProcessError> {
    if results.len() != plan.outputs.len() {
        return Err(ProcessError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} result writers for {} output formats", results.len(), plan.outputs.len()),
        )));
    }
    let budget = OutputBudget::new(plan.max_output_bytes);
    let results = results.into_iter().map(|w| budget.writer(w)).collect();
    let errors = budget.writer(errors);
    process_within(plan, input, results, errors, options).map_err(|e| budget.explain(e))
}

fn process_within<R: Read, W: Write + Send, E: Write>(
    plan: &Plan,
    input: R,
    mut results: Vec<W>,
    errors: E,
    options: &Options<'_>,
) -> Result<Summary, ProcessError> {
    if results.len() == 1 && options.rows.is_none() && crate::parallel::applies(plan) {
        let results = results.pop().expect("one writer");
        return crate::parallel::process(plan, input, results, errors, options.source_name, options.progress);
    }
    let input = formats::open(plan, input, options.source_name)?;
    let buffer = formats::refill::initial_buffer(options.size_hint);
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
    mut results: Vec<W>,
    errors: E,
    options: &Options<'_>,
) -> Result<Summary, ProcessError> {
    if !check.is_valid() {
        return Err(ProcessError::HeaderMismatch(check));
    }
    let binding = Binding::new(plan, &check, originals);
    let layout = binding.layout(plan);
    if results.len() > 1 {
        // Several formats: each row to every sink, through one dynamic call per sink.
        let mut sinks: Vec<Box<dyn Sink + '_>> = Vec::with_capacity(results.len());
        for (format, writer) in plan.outputs.iter().zip(results) {
            sinks.push(sink_for(plan, *format, writer, &layout, options)?);
        }
        return drive(plan, binding, &layout, source, FanOut(sinks), errors, options);
    }
    let results = results.pop().expect("a writer for the results");
    match plan.output {
        OutputFormat::Ndjson => {
            drive(plan, binding, &layout, source, NdjsonSink::new(results, &layout), errors, options)
        }
        OutputFormat::Json => {
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            let sink = JsonDocSink::new(results, &layout, options.source_name.unwrap_or(""), &now);
            drive(plan, binding, &layout, source, sink, errors, options)
        }
        OutputFormat::Parquet => {
            let sink = ParquetSink::new(results, &layout, plan.row_group_rows)?;
            drive(plan, binding, &layout, source, sink, errors, options)
        }
    }
}

/// The sink of one result format, boxed (for [`FanOut`]).
fn sink_for<'w, W: Write + Send + 'w>(
    plan: &Plan,
    format: OutputFormat,
    writer: W,
    layout: &Layout,
    options: &Options<'_>,
) -> Result<Box<dyn Sink + 'w>, ProcessError> {
    Ok(match format {
        OutputFormat::Ndjson => Box::new(NdjsonSink::new(writer, layout)),
        OutputFormat::Json => {
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            Box::new(JsonDocSink::new(writer, layout, options.source_name.unwrap_or(""), &now))
        }
        OutputFormat::Parquet => Box::new(ParquetSink::new(writer, layout, plan.row_group_rows)?),
    })
}

/// The row loop into `sink`, and into the caller's row function too if it has one.
fn drive<S: Source, K: Sink, E: Write>(
    plan: &Plan,
    binding: Binding,
    layout: &Layout,
    source: S,
    sink: K,
    errors: E,
    options: &Options<'_>,
) -> Result<Summary, ProcessError> {
    match options.rows {
        Some(emit) => {
            let tap = RowTap::new(sink, plan, &binding, layout, emit);
            pass::run(plan, binding, source, tap, errors)
        }
        None => pass::run(plan, binding, source, sink, errors),
    }
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
