//! An [`Inference`] as a weir.toml (the bundled config with the inferred pipeline in place of
//! the sample ones), as a table for people, or as JSON for scripts.

use std::fmt::Write as _;
use std::path::Path;

use weir_core::config::{ColumnType, FormatKind, DEFAULT_CONFIG_TOML};

use crate::{Column, Inference};

/// Where the bundled config's pipelines start and its notifications begin: the inferred
/// pipeline replaces what lies between.
const PIPELINES_START: &str = "# One [[pipeline]] per kind of file.";
const PIPELINES_END: &str = "# Who hears about jobs.";
const COLUMN_DOCS_START: &str = "# Columns: type is";

/// The source a set of sample files suggests: `raw/` plus the start their names share (up to
/// the first digit, cut at a separator: `sales_2024-01.csv`, `sales_2024-02.csv` → `raw/sales_`),
/// the suffix of their kind, and a pipeline name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub prefix: String,
    pub suffix: String,
}

pub fn source(files: &[String], kind: FormatKind) -> Source {
    let names: Vec<String> = files
        .iter()
        .map(|f| Path::new(f).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
        .map(|n| {
            let lower = n.to_ascii_lowercase();
            match [".gz", ".gzip", ".zst", ".zstd"].iter().find(|c| lower.ends_with(*c)) {
                Some(c) => n[..n.len() - c.len()].to_string(),
                None => n,
            }
        })
        .collect();
    let ext = |n: &str| n.rfind('.').map(|p| n[p..].to_string()).unwrap_or_default();
    let suffix = match names.first().map(|n| ext(n)) {
        Some(e) if !e.is_empty() && names.iter().all(|n| ext(n) == e) => e,
        _ => match kind {
            FormatKind::Csv => ".csv".into(),
            FormatKind::Json => ".json".into(),
            FormatKind::Ndjson => ".ndjson".into(),
        },
    };
    let stems: Vec<&str> = names.iter().map(|n| n.strip_suffix(suffix.as_str()).unwrap_or(n)).collect();
    let mut common = stems.first().copied().unwrap_or("").to_string();
    for s in &stems[1..] {
        let n = common.chars().zip(s.chars()).take_while(|(a, b)| a == b).count();
        common = common.chars().take(n).collect();
    }
    // Up to the first digit (dates, sequence numbers vary), then back to a separator.
    let before_digit: String = common.chars().take_while(|c| !c.is_ascii_digit()).collect();
    let varies = before_digit.len() < common.len() || stems.len() > 1;
    let name_prefix = if varies {
        match before_digit.rfind(['_', '-', '.', ' ']) {
            Some(p) => before_digit[..=p].to_string(),
            None if stems.len() > 1 => before_digit.clone(),
            None => String::new(),
        }
    } else {
        String::new()
    };
    let base = match (name_prefix.is_empty(), stems.len()) {
        (false, _) => name_prefix.as_str(),
        (true, 1) => stems[0],
        (true, _) => "data",
    };
    let mut name: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect::<String>()
        .trim_matches('_')
        .to_string();
    if name.is_empty() {
        name = "data".into();
    }
    Source { name, prefix: format!("raw/{name_prefix}"), suffix }
}

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7F => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Thousands separated: `10,000`.
// `is_multiple_of` is newer than the workspace's rust-version (1.85).
#[allow(clippy::manual_is_multiple_of)]
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn distinct(c: &Column) -> String {
    if c.distinct_is_lower_bound {
        format!("{}+", count(c.distinct as u64))
    } else {
        count(c.distinct as u64)
    }
}

/// What a column's comment says was seen: `# 10,000 rows: 0 empty, 3 distinct; e.g. "x"`.
fn seen(inf: &Inference, c: &Column) -> String {
    let rows = if inf.sampled {
        format!("{} rows read", count(inf.rows))
    } else {
        format!("{} rows", count(inf.rows))
    };
    let mut s = format!("# {rows}: {} empty, {} distinct", count(c.empty), distinct(c));
    if let Some(e) = &c.example {
        let _ = write!(s, "; e.g. {}", quote(e));
    }
    if c.header != c.name {
        let _ = write!(s, " (header {})", quote(&c.header));
    }
    s
}

/// The pipeline's TOML: `[[pipeline]]` with its source, format, columns, summary and output.
pub fn pipeline_toml(inf: &Inference, source: &Source) -> String {
    let mut t = String::new();
    let f = &inf.format;
    let _ = writeln!(t, "[[pipeline]]\nname = {}\n", quote(&source.name));
    let _ = writeln!(t, "[pipeline.source]");
    let _ = writeln!(t, "prefix = {}", quote(&source.prefix));
    let _ =
        writeln!(t, "suffix = {}   # also takes {1}.gz and {1}.zst", quote(&source.suffix), source.suffix);
    let _ = writeln!(t, "\n[pipeline.format]");
    let kind = match f.kind {
        FormatKind::Csv => "csv",
        FormatKind::Json => "json",
        FormatKind::Ndjson => "ndjson",
    };
    let _ = writeln!(t, "type = {}", quote(kind));
    if f.kind == FormatKind::Csv {
        let _ = writeln!(t, "delimiter = {}", quote(&f.delimiter.to_string()));
        let _ = writeln!(t, "quote = {}", quote(&f.quote.to_string()));
        let _ = writeln!(t, "has_header = {}", f.has_header);
    }
    let _ = writeln!(t, "encoding = {}", quote(&f.encoding));
    if f.decimal_separator != '.' {
        let _ = writeln!(
            t,
            "decimal_separator = {}   # 12,50 is twelve and a half",
            quote(&f.decimal_separator.to_string())
        );
    }
    t.push('\n');
    if let Some(docs) = column_docs() {
        t.push_str(docs);
        t.push('\n');
    }
    let mut categorical = Vec::new();
    let mut ranges = Vec::new();
    for c in &inf.columns {
        let _ = writeln!(t, "{}", seen(inf, c));
        if !c.also_fits.is_empty() {
            let _ =
                writeln!(t, "# every value also fits {}: check the day/month order", c.also_fits.join(", "));
        }
        let _ = writeln!(t, "[[pipeline.columns]]");
        let _ = writeln!(t, "name = {}", quote(&c.name));
        let _ = writeln!(t, "type = {}", quote(c.ty.name()));
        if let Some(format) = &c.format {
            let _ = writeln!(t, "format = {}", quote(format));
        }
        if let Some(p) = c.precision {
            let _ = writeln!(t, "precision = {p}");
        }
        if let Some(s) = c.scale {
            let _ = writeln!(t, "scale = {s}");
        }
        if !c.values.is_empty() {
            let values: Vec<String> = c.values.iter().map(|v| quote(v)).collect();
            let _ = writeln!(t, "values = [{}]", values.join(", "));
            categorical.push(quote(&c.name));
        }
        if c.required {
            let _ = writeln!(t, "required = true");
        }
        t.push('\n');
        if matches!(c.ty, ColumnType::Date | ColumnType::Datetime) {
            ranges.push(quote(&c.name));
        }
    }
    let _ = writeln!(t, "[pipeline.summary]");
    if !categorical.is_empty() {
        let _ = writeln!(t, "categorical = [{}]   # value counts (top 10)", categorical.join(", "));
    }
    if !ranges.is_empty() {
        let _ = writeln!(t, "range = [{}]   # smallest and largest value", ranges.join(", "));
    }
    let _ = writeln!(t, "\n[pipeline.output]");
    let _ = writeln!(t, "format = \"ndjson\"   # or \"json\" (one document) or \"parquet\" (typed columns)");
    t
}

/// The bundled config's notes on column types and rules.
fn column_docs() -> Option<&'static str> {
    let start = DEFAULT_CONFIG_TOML.find(COLUMN_DOCS_START)?;
    let end = start + DEFAULT_CONFIG_TOML[start..].find("[[pipeline.columns]]")?;
    Some(&DEFAULT_CONFIG_TOML[start..end])
}

/// A whole weir.toml: the bundled config's settings and notes, with the inferred pipeline in
/// place of its sample pipelines.
pub fn config_toml(inf: &Inference, source: &Source) -> String {
    let start =
        DEFAULT_CONFIG_TOML.find(PIPELINES_START).expect("the bundled config has its pipelines marker");
    let end =
        DEFAULT_CONFIG_TOML.find(PIPELINES_END).expect("the bundled config has its notifications marker");
    let preamble = &DEFAULT_CONFIG_TOML[..start];
    let preamble = preamble.split_once('\n').map_or(preamble, |(_, rest)| rest);
    let mut t = String::new();
    let files: Vec<String> = inf
        .files
        .iter()
        .map(|f| Path::new(f).file_name().map_or(f.clone(), |n| n.to_string_lossy().into_owned()))
        .collect();
    let _ = writeln!(t, "# weir configuration, inferred by `weir init --from` from {}.", files.join(", "));
    let read = if inf.sampled {
        format!("the first {} rows of each file (`--full` reads every row)", count(inf.rows))
    } else {
        format!("{} rows", count(inf.rows))
    };
    let _ = writeln!(t, "# Types fit every value of {read}; check them before real data arrives.");
    for note in &inf.notes {
        let _ = writeln!(t, "# Note: {note}");
    }
    t.push_str(preamble);
    t.push_str(PIPELINES_START);
    t.push_str(" An object goes to the first pipeline whose source matches.\n");
    t.push_str(&pipeline_toml(inf, source));
    t.push('\n');
    t.push_str(&DEFAULT_CONFIG_TOML[end..]);
    t
}

fn type_text(c: &Column) -> String {
    match (c.ty, &c.format, c.scale) {
        (ColumnType::Decimal, _, Some(s)) => format!("decimal (scale {s})"),
        (ColumnType::Date | ColumnType::Datetime, Some(f), _) => format!("{} ({f})", c.ty.name()),
        (ColumnType::Datetime, None, _) => "datetime (RFC 3339)".into(),
        (ColumnType::Enum, _, _) => match c.values.join("|") {
            values if values.chars().count() <= 30 => format!("enum ({values})"),
            _ => format!("enum ({} values)", c.values.len()),
        },
        (ty, _, _) => ty.name().to_string(),
    }
}

/// A table for people: column, type, nullable, example, distinct.
pub fn table(inf: &Inference) -> String {
    let mut rows: Vec<[String; 5]> =
        vec![["column".into(), "type".into(), "nullable".into(), "example".into(), "distinct".into()]];
    for c in &inf.columns {
        let example = c.example.as_deref().map(|e| {
            if e.chars().count() > 30 {
                format!("{}…", e.chars().take(29).collect::<String>())
            } else {
                e.to_string()
            }
        });
        rows.push([
            c.name.clone(),
            type_text(c),
            if c.nullable { format!("yes ({} empty)", count(c.empty)) } else { "no".into() },
            example.unwrap_or_default(),
            distinct(c),
        ]);
    }
    let widths: Vec<usize> =
        (0..5).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    let f = &inf.format;
    let kind = match f.kind {
        FormatKind::Csv => format!(
            "csv, delimiter {}, {}",
            quote(&f.delimiter.to_string()),
            if f.has_header { "header" } else { "no header" }
        ),
        FormatKind::Json => "json".into(),
        FormatKind::Ndjson => "ndjson".into(),
    };
    let _ = writeln!(
        out,
        "{}: {kind}, {}{}{}, {} rows{}",
        inf.files.join(", "),
        f.encoding,
        if f.decimal_separator == ',' { ", decimal comma" } else { "" },
        if f.compression != "none" { format!(", {}", f.compression) } else { String::new() },
        count(inf.rows),
        if inf.sampled { " read (a sample; --full reads all)" } else { "" }
    );
    for r in &rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    for note in &inf.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sources_from_file_names() {
        let s = source(&files(&["in/sales_2024-01.csv", "sales_2024-02.csv.gz"]), FormatKind::Csv);
        assert_eq!(s, Source { name: "sales".into(), prefix: "raw/sales_".into(), suffix: ".csv".into() });
        let s = source(&files(&["sample-data.csv"]), FormatKind::Csv);
        assert_eq!(s, Source { name: "sample_data".into(), prefix: "raw/".into(), suffix: ".csv".into() });
        let s = source(&files(&["events-20240101.json"]), FormatKind::Json);
        assert_eq!(s, Source { name: "events".into(), prefix: "raw/events-".into(), suffix: ".json".into() });
        let s = source(&files(&["a.csv", "b.csv"]), FormatKind::Csv);
        assert_eq!((s.prefix.as_str(), s.name.as_str()), ("raw/", "data"));
        assert_eq!(source(&files(&["dump"]), FormatKind::Ndjson).suffix, ".ndjson");
    }

    #[test]
    fn quoting_and_counts() {
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(count(10_000), "10,000");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
