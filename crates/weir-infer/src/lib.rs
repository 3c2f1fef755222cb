//! A weir pipeline inferred from sample files (`weir init --from`, `weir infer`).
//!
//! [`infer`] reads CSV, JSON or NDJSON files (gzip'ed, zstd'ed or plain) as streams: it sniffs
//! the format, the delimiter, the header and the text encoding from the first bytes, then reads
//! the records (a sample of [`Options::max_rows`], or every one) and keeps per column only
//! bounded evidence ([`column`]): which weir types every value still fits, a capped count of
//! distinct values, a few short values and an example. The result maps onto weir's own schema
//! types ([`weir_core::config::ColumnType`]) with weir's own parsing rules, so the pipeline it
//! renders ([`render::config_toml`]) accepts every row it was inferred from.

pub mod column;
pub mod input;
pub mod render;
pub mod sniff;

use std::path::{Path, PathBuf};

use serde::Serialize;
use weir_core::config::{normalize_field_name, ColumnType, FormatKind};

use crate::column::{ColumnStats, DecimalSeparator};
use crate::input::{CsvRecords, JsonElements, JsonValue, Next};

/// Why a file could not be inferred from.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error("{0}")]
    Files(String),
}

/// How much to read.
#[derive(Debug, Clone)]
pub struct Options {
    /// Records read per file; `None` reads every record (a full pass).
    pub max_rows: Option<u64>,
    /// Distinct values remembered over all columns (as 8-byte hashes); past it, "at least".
    pub distinct_budget: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_rows: Some(100_000), distinct_budget: 1_000_000 }
    }
}

/// The format the files share, as `[pipeline.format]` says it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Format {
    #[serde(rename = "type")]
    pub kind: FormatKind,
    pub delimiter: char,
    pub quote: char,
    pub has_header: bool,
    /// `utf-8` or `latin-1` (WHATWG: windows-1252).
    pub encoding: String,
    /// `.` or `,` (a `;`-delimited file with decimal commas).
    pub decimal_separator: char,
    /// `none`, `gzip` or `zstd` (of the first file; weir finds it by name or magic bytes).
    pub compression: String,
}

/// One column as inferred.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    /// The name weir gives the field (the header normalized: trimmed, lowercase, spaces as `_`).
    pub name: String,
    /// As the file wrote it.
    pub header: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<u8>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Other formats every value fits too (day/month order the sample cannot tell).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_fits: Vec<String>,
    /// Never empty or missing in the rows read.
    pub required: bool,
    pub nullable: bool,
    pub empty: u64,
    pub distinct: usize,
    /// `distinct` is a lower bound (the count stopped at the budget).
    pub distinct_is_lower_bound: bool,
    pub example: Option<String>,
    pub max_chars: usize,
}

/// What the files showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inference {
    pub files: Vec<String>,
    pub format: Format,
    /// Records read (over all files).
    pub rows: u64,
    /// Whether a file had more records than were read (`Options::max_rows`).
    pub sampled: bool,
    /// Records weir would count invalid whatever the schema (too large, not an object).
    pub skipped_rows: u64,
    pub columns: Vec<Column>,
    /// Things the user should know (ambiguous formats, names weir folds together, ...).
    pub notes: Vec<String>,
}

/// Columns at most: a wider file keeps its first ones and says so.
pub const MAX_COLUMNS: usize = input::MAX_FIELDS;

/// Infers one pipeline from files of one kind.
pub fn infer(paths: &[PathBuf], options: &Options) -> Result<Inference, InferError> {
    let Some(first) = paths.first() else {
        return Err(InferError::Files("no files to infer from".into()));
    };
    let (head, compression) = input::head(first, sniff::HEAD_BYTES)
        .map_err(|e| InferError::Io { path: first.clone(), source: e })?;
    let mut format = sniff::format(first, &head)
        .map_err(|m| InferError::Unreadable { path: first.clone(), message: m })?;
    format.compression = match compression {
        input::Compression::None => "none",
        input::Compression::Gzip => "gzip",
        input::Compression::Zstd => "zstd",
    }
    .to_string();
    let mut state = State {
        columns: Vec::new(),
        rows: 0,
        skipped: 0,
        sampled: false,
        budget: options.distinct_budget,
        notes: Vec::new(),
        latin1: format.encoding != "utf-8",
        width_noted: false,
        ragged: 0,
    };
    for path in paths {
        if path != first {
            let (head, _) = input::head(path, sniff::HEAD_BYTES)
                .map_err(|e| InferError::Io { path: path.clone(), source: e })?;
            let other = sniff::format(path, &head)
                .map_err(|m| InferError::Unreadable { path: path.clone(), message: m })?;
            let json = |k: FormatKind| k != FormatKind::Csv;
            if json(other.kind) != json(format.kind)
                || (other.kind == FormatKind::Csv && other.delimiter != format.delimiter)
            {
                return Err(InferError::Files(format!(
                    "{} and {} are not of one kind (one pipeline reads one format); infer them separately",
                    first.display(),
                    path.display()
                )));
            }
            if other.encoding != "utf-8" {
                state.latin1 = true;
            }
        }
        let read = match format.kind {
            FormatKind::Csv => state.read_csv(path, &format, options),
            FormatKind::Json | FormatKind::Ndjson => state.read_json(path, options),
        };
        read.map_err(|e| InferError::Io { path: path.clone(), source: e })?;
    }
    if state.latin1 {
        format.encoding = "latin-1".into();
    }
    if format.kind == FormatKind::Csv
        && format.delimiter != ','
        && state.columns.iter().any(ColumnStats::wants_decimal_comma)
    {
        format.decimal_separator = ',';
    }
    let sep = if format.decimal_separator == ',' { DecimalSeparator::Comma } else { DecimalSeparator::Point };
    let mut columns = Vec::new();
    let mut seen_names: Vec<String> = Vec::new();
    for (i, stats) in state.columns.iter().enumerate() {
        let verdict = stats.verdict(sep);
        let mut name = normalize_field_name(&stats.header);
        if name.is_empty() {
            name = format!("column_{}", i + 1);
        }
        if let Some(other) = seen_names.iter().position(|n| *n == name) {
            state.notes.push(format!(
                "columns {:?} and {:?} are both `{name}` to weir (names are compared trimmed, lowercase, spaces as _): \
                 a file with both is rejected; rename one",
                state.columns[other].header, stats.header
            ));
        }
        seen_names.push(name.clone());
        let empty = state.rows.saturating_sub(stats.non_empty);
        if !verdict.also_fits.is_empty() {
            state.notes.push(format!(
                "{name}: every value also fits {} — check the day/month order",
                verdict.also_fits.join(", ")
            ));
        }
        columns.push(Column {
            name,
            header: stats.header.clone(),
            ty: verdict.ty,
            format: verdict.format,
            scale: verdict.scale,
            precision: verdict.precision,
            values: verdict.values,
            also_fits: verdict.also_fits,
            required: state.rows > 0 && empty == 0,
            nullable: empty > 0,
            empty,
            distinct: stats.distinct(),
            distinct_is_lower_bound: stats.distinct_capped,
            example: stats.example.clone(),
            max_chars: stats.max_chars,
        });
    }
    if state.ragged > 0 {
        state.notes.push(format!(
            "{} rows have more or fewer fields than the header: weir counts them invalid whatever the schema",
            render::count(state.ragged)
        ));
    }
    if state.skipped > 0 {
        state.notes.push(format!(
            "{} records weir cannot read whatever the schema (larger than {} MiB, or not a JSON object) were skipped",
            render::count(state.skipped),
            input::MAX_RECORD_BYTES >> 20
        ));
    }
    if state.rows == 0 {
        state.notes.push("no data rows: every column is a nullable string".into());
    }
    Ok(Inference {
        files: paths.iter().map(|p| p.display().to_string()).collect(),
        format,
        rows: state.rows,
        sampled: state.sampled,
        skipped_rows: state.skipped,
        columns,
        notes: state.notes,
    })
}

/// The evidence gathered over all files.
struct State {
    columns: Vec<ColumnStats>,
    rows: u64,
    skipped: u64,
    sampled: bool,
    budget: usize,
    notes: Vec<String>,
    latin1: bool,
    width_noted: bool,
    /// CSV rows with more or fewer fields than the header (weir counts them invalid).
    ragged: u64,
}

impl State {
    fn column(&mut self, header: &str) -> Option<usize> {
        if let Some(i) = self.columns.iter().position(|c| c.header == header) {
            return Some(i);
        }
        if self.columns.len() >= MAX_COLUMNS {
            if !self.width_noted {
                self.width_noted = true;
                self.notes.push(format!("more than {MAX_COLUMNS} columns: only the first are described"));
            }
            return None;
        }
        self.columns.push(ColumnStats::new(header));
        Some(self.columns.len() - 1)
    }

    /// Text of a field in the file's encoding; a UTF-8 file with a bad byte is Latin-1 after all.
    fn text<'a>(&mut self, raw: &'a [u8]) -> std::borrow::Cow<'a, str> {
        if !self.latin1 {
            match std::str::from_utf8(raw) {
                Ok(s) => return std::borrow::Cow::Borrowed(s),
                Err(_) => {
                    self.latin1 = true;
                    self.notes
                        .push("a byte that is not UTF-8 after the sniffed start: read as latin-1".into());
                }
            }
        }
        let (text, _, _) = encoding_rs::WINDOWS_1252.decode(raw);
        text
    }

    fn read_csv(&mut self, path: &Path, format: &Format, options: &Options) -> std::io::Result<()> {
        let (reader, _) = input::open(path)?;
        let mut records = CsvRecords::new(reader, format.delimiter as u8, format.quote as u8);
        // Which column each field position feeds (headers of several files are matched by name).
        let mut positions: Vec<Option<usize>> = Vec::new();
        let mut first = true;
        let mut read = 0u64;
        loop {
            if options.max_rows.is_some_and(|m| read >= m) {
                if records.next_record()? != Next::End {
                    self.sampled = true;
                }
                return Ok(());
            }
            match records.next_record()? {
                Next::End => return Ok(()),
                Next::Skipped => {
                    self.skipped += 1;
                    read += 1;
                    continue;
                }
                Next::Record => {}
            }
            if records.field_count() == 1 && records.field(0).is_empty() {
                continue; // A blank line.
            }
            if first {
                first = false;
                let mut names: Vec<String> = (0..records.field_count())
                    .map(|i| {
                        let raw = records.field(i);
                        let raw = if i == 0 { raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw) } else { raw };
                        self.text(raw).into_owned()
                    })
                    .collect();
                if !format.has_header {
                    names = (1..=names.len()).map(|i| format!("column_{i}")).collect();
                }
                positions = names.iter().map(|n| self.column(n)).collect();
                if format.has_header {
                    continue;
                }
            }
            read += 1;
            self.rows += 1;
            if records.field_count() != positions.len() {
                self.ragged += 1;
            }
            for (i, position) in positions.iter().enumerate().take(records.field_count()) {
                if let Some(c) = *position {
                    let raw = records.field(i);
                    if raw.is_empty() {
                        continue;
                    }
                    let text = self.text(raw).into_owned();
                    self.columns[c].see(&text, &mut self.budget);
                }
            }
        }
    }

    fn read_json(&mut self, path: &Path, options: &Options) -> std::io::Result<()> {
        let (reader, _) = input::open(path)?;
        let mut elements = JsonElements::new(reader);
        let mut fields = Vec::new();
        let mut read = 0u64;
        loop {
            if options.max_rows.is_some_and(|m| read >= m) {
                if elements.next_element(&mut fields)? != Next::End {
                    self.sampled = true;
                }
                return Ok(());
            }
            match elements.next_element(&mut fields)? {
                Next::End => return Ok(()),
                Next::Skipped => {
                    self.skipped += 1;
                    read += 1;
                    continue;
                }
                Next::Record => {}
            }
            read += 1;
            self.rows += 1;
            for (path, value) in fields.drain(..) {
                let Some(c) = self.column(&path) else { continue };
                match value {
                    JsonValue::Null => {}
                    JsonValue::Text(t) | JsonValue::Literal(t) => self.columns[c].see(&t, &mut self.budget),
                    JsonValue::Nested(t) => self.columns[c].see_nested(&t, &mut self.budget),
                }
            }
        }
    }
}
