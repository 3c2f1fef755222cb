//! The format of a file from its first bytes: JSON or NDJSON (by the first character and the
//! name), else CSV with the delimiter whose rows agree on a field count, the quote, whether the
//! first row is a header, and the encoding (UTF-8 when the bytes are, else Latin-1).

use std::path::Path;

use weir_core::config::FormatKind;

use crate::column::ColumnStats;
use crate::input::{CsvRecords, Next};
use crate::Format;

/// Bytes looked at to sniff.
pub const HEAD_BYTES: usize = 256 << 10;
/// Rows of the head compared to choose a delimiter and a header.
const SNIFF_ROWS: usize = 200;
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// The format of one file, from the start of its (decompressed) content.
pub fn format(path: &Path, head: &[u8]) -> Result<Format, String> {
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let name = ["gz", "gzip", "zst", "zstd"]
        .iter()
        .find_map(|c| name.strip_suffix(&format!(".{c}")))
        .map(str::to_string)
        .unwrap_or(name);
    let encoding = match std::str::from_utf8(head) {
        Ok(_) => "utf-8",
        // A multi-byte character cut by the end of the head is still UTF-8.
        Err(e) if e.error_len().is_none() => "utf-8",
        Err(_) => "latin-1",
    };
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let first = body.iter().copied().find(|b| !b.is_ascii_whitespace());
    let mut format = Format {
        kind: FormatKind::Csv,
        delimiter: ',',
        quote: '"',
        has_header: true,
        encoding: encoding.to_string(),
        decimal_separator: '.',
        compression: "none".into(),
    };
    if name.ends_with(".ndjson") || name.ends_with(".jsonl") {
        format.kind = FormatKind::Ndjson;
        return Ok(format);
    }
    match first {
        Some(b'[') => {
            format.kind = FormatKind::Json;
            return Ok(format);
        }
        Some(b'{') => {
            // Objects one per line are NDJSON; one (pretty-printed) object is JSON.
            let lines = body
                .split(|&b| b == b'\n')
                .filter(|l| !l.trim_ascii().is_empty())
                .take(3)
                .collect::<Vec<_>>();
            format.kind = if lines.len() > 1
                && lines.iter().all(|l| l.trim_ascii().starts_with(b"{") && l.trim_ascii().ends_with(b"}"))
            {
                FormatKind::Ndjson
            } else {
                FormatKind::Json
            };
            return Ok(format);
        }
        None => return Err("the file is empty".into()),
        Some(_) => {}
    }
    if name.ends_with(".json") {
        return Err("named .json but does not start with `[` or `{`".into());
    }
    // The head may end inside a row: leave the last, unfinished line out.
    let complete = match body.iter().rposition(|&b| b == b'\n') {
        Some(p) if head.len() >= HEAD_BYTES => &body[..=p],
        _ => body,
    };
    let mut best: Option<(u8, usize, usize)> = None; // delimiter, agreeing rows, fields
    for d in DELIMITERS {
        let rows = rows(complete, d);
        if rows.is_empty() {
            continue;
        }
        let width = rows[0].len();
        let agreeing = rows.iter().filter(|r| r.len() == width).count();
        if width < 2 {
            continue;
        }
        // Most rows agreeing, then the most fields.
        let better = match best {
            None => true,
            Some((_, a, w)) => (agreeing, width) > (a, w),
        };
        if better {
            best = Some((d, agreeing, width));
        }
    }
    if let Some((d, _, _)) = best {
        format.delimiter = d as char;
    } else if name.ends_with(".tsv") {
        format.delimiter = '\t';
    }
    format.has_header = has_header(&rows(complete, format.delimiter as u8));
    Ok(format)
}

fn rows(data: &[u8], delimiter: u8) -> Vec<Vec<Vec<u8>>> {
    let mut records = CsvRecords::new(data, delimiter, b'"');
    let mut rows = Vec::new();
    while rows.len() < SNIFF_ROWS {
        match records.next_record() {
            Ok(Next::Record) => {
                if records.field_count() == 1 && records.field(0).is_empty() {
                    continue;
                }
                rows.push((0..records.field_count()).map(|i| records.field(i).to_vec()).collect());
            }
            Ok(Next::Skipped) => {}
            Ok(Next::End) | Err(_) => break,
        }
    }
    rows
}

/// Whether the first row names the columns: it does unless some column's other values are all
/// of a type (a number, a date, ...) that its first value is not, or the first row repeats a
/// name or leaves one empty while the other rows are all text.
fn has_header(rows: &[Vec<Vec<u8>>]) -> bool {
    let Some((first, rest)) = rows.split_first() else { return true };
    if rest.is_empty() {
        return true;
    }
    let mut typed_column = false;
    for (i, name) in first.iter().enumerate() {
        let mut budget = usize::MAX;
        let mut body = ColumnStats::new("");
        for r in rest {
            if let Some(v) = r.get(i) {
                body.see(&String::from_utf8_lossy(v), &mut budget);
            }
        }
        let ty = body.verdict(crate::column::DecimalSeparator::Point).ty;
        if ty == weir_core::config::ColumnType::String || ty == weir_core::config::ColumnType::Enum {
            continue;
        }
        typed_column = true;
        let mut head = body.clone();
        head.see(&String::from_utf8_lossy(name), &mut budget);
        let with_first = head.verdict(crate::column::DecimalSeparator::Point).ty;
        if matches!(with_first, weir_core::config::ColumnType::String | weir_core::config::ColumnType::Enum) {
            return true; // The first value is text in a column of numbers, dates, ...: a name.
        }
    }
    // Every typed column's first value fits its type: data, not names.
    !typed_column
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff(name: &str, data: &str) -> Format {
        format(Path::new(name), data.as_bytes()).unwrap()
    }

    #[test]
    fn delimiters_headers_and_kinds() {
        let f = sniff("a.csv", "id,name,price\n1,A,2.5\n2,\"B, b\",3\n");
        assert_eq!((f.kind, f.delimiter, f.has_header), (FormatKind::Csv, ',', true));
        let f = sniff("a.csv", "id;amount;note\n1;2,50;a, b\n2;3,00;c\n");
        assert_eq!(f.delimiter, ';');
        let f = sniff("a.txt", "id\tname\n1\tx\n");
        assert_eq!(f.delimiter, '\t');
        let f = sniff("a.csv", "1,A,2.5\n2,B,3\n");
        assert!(!f.has_header, "numbers in the first row are data");
        assert_eq!(sniff("a.json", "[{\"a\":1}]").kind, FormatKind::Json);
        assert_eq!(sniff("a.json", "{\"a\":1}\n{\"a\":2}\n").kind, FormatKind::Ndjson);
        assert_eq!(sniff("a.json", "{\n \"a\": 1\n}\n").kind, FormatKind::Json);
        assert_eq!(sniff("a.ndjson.gz", "{\"a\":1}").kind, FormatKind::Ndjson);
        let latin1 = format(Path::new("a.csv"), b"name,city\nJos\xe9,M\xfcnchen\n").unwrap();
        assert_eq!(latin1.encoding, "latin-1");
        assert_eq!(sniff("a.csv", "name\nJosé\n").encoding, "utf-8");
        assert!(format(Path::new("a.csv"), b"  \n").is_err());
    }
}
