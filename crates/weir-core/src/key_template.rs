//! Output keys from templates: where a pipeline writes a source's results, summary, error
//! report, archived copy and `failed/` copy, as the user lays them out.
//!
//! A template is text with placeholders, each about the source object of the job:
//!
//! | placeholder | value for `s3://weir-input/raw/2024/sales.csv.gz` |
//! | --- | --- |
//! | `{bucket}` | the source's bucket: `weir-input` |
//! | `{key}` | the source's whole key: `raw/2024/sales.csv.gz` |
//! | `{dir}` | the key's folder, without the trailing `/`: `raw/2024` (empty at the bucket's root) |
//! | `{name}` | the key's last segment: `sales.csv.gz` |
//! | `{stem}` | the name without a compression suffix and then its extension: `sales` |
//! | `{yyyy}` `{mm}` `{dd}` | the job's creation date in UTC (the first event of this version) |
//! | `{job_id}` | the job's id (`j-` and 24 hex digits, from bucket, key and ETag) |
//!
//! After the placeholders are filled, empty segments are dropped (`out/{dir}/{name}` for a key
//! at the bucket's root is `out/name`), and the key must be one S3 accepts (at most 1024 bytes;
//! [`crate::keys::validate_key`]): a source whose key would be longer fails with that reason.
//!
//! The values are fixed for one version of one object, so a redelivered event writes the same
//! keys. A date or `{job_id}` in a template makes a new version of the source write new
//! objects beside the old version's, where the default keys replace them.
//!
//! [`KeyTemplate::identifies`] says whether two different sources of one pipeline can ever get
//! the same key from a template; `Config::validate` refuses the ones that could, and templates
//! of different outputs that could meet (see [`could_overlap`]) or land under a watched input
//! prefix.

use std::fmt;

use chrono::NaiveDate;

use crate::config::COMPRESSED_SUFFIXES;
use crate::keys::{validate_key, KeyError};

/// A value a template can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    Bucket,
    Key,
    Dir,
    Name,
    Stem,
    Yyyy,
    Mm,
    Dd,
    JobId,
}

impl Placeholder {
    pub const ALL: [Placeholder; 9] = [
        Placeholder::Bucket,
        Placeholder::Key,
        Placeholder::Dir,
        Placeholder::Name,
        Placeholder::Stem,
        Placeholder::Yyyy,
        Placeholder::Mm,
        Placeholder::Dd,
        Placeholder::JobId,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Placeholder::Bucket => "bucket",
            Placeholder::Key => "key",
            Placeholder::Dir => "dir",
            Placeholder::Name => "name",
            Placeholder::Stem => "stem",
            Placeholder::Yyyy => "yyyy",
            Placeholder::Mm => "mm",
            Placeholder::Dd => "dd",
            Placeholder::JobId => "job_id",
        }
    }

    /// Whether the value has the same length for every source of one pipeline (the bucket is
    /// the pipeline's; dates and job ids have a fixed width).
    fn fixed_width(self) -> bool {
        matches!(
            self,
            Placeholder::Bucket | Placeholder::Yyyy | Placeholder::Mm | Placeholder::Dd | Placeholder::JobId
        )
    }
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Value(Placeholder),
}

/// What is wrong with a template's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the template is empty")]
    Empty,
    #[error("unknown placeholder {{{name}}}; the placeholders are {known}", known = known())]
    Unknown { name: String },
    #[error("a '{{' is not closed by a '}}' (placeholders are written {{key}})")]
    Unclosed,
    #[error("a '}}' has no '{{' before it")]
    Unopened,
    #[error("the template starts with '/': keys are relative to their bucket")]
    Absolute,
    #[error("the template has a '..' or '.' segment, which could escape the bucket")]
    DotSegment,
    #[error("the template contains a backslash or a control character")]
    BadChar,
}

fn known() -> String {
    Placeholder::ALL.iter().map(|p| format!("{{{}}}", p.name())).collect::<Vec<_>>().join(", ")
}

/// Why a template may make two different sources of a pipeline write one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotIdentifying {
    /// Nothing in it tells the sources apart (only dates, the bucket, `{stem}`, `{name}`...).
    NoIdentifier,
    /// `{key}` or `{dir}/{name}` is there, but a value of varying length comes before it or
    /// after it, so where the key starts or ends in the result is not fixed.
    Ambiguous(Placeholder),
}

impl fmt::Display for NotIdentifying {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotIdentifying::NoIdentifier => f.write_str(
                "it could give two different sources the same key: it needs {key}, {job_id} or {dir}/{name} \
                 ({name} alone is the same for raw/a/x.csv and raw/b/x.csv, {stem} for x.csv and x.json, \
                 and a date is shared by every file of the day)",
            ),
            NotIdentifying::Ambiguous(p) => write!(
                f,
                "{{{}}} around the source's key makes where the key starts or ends in the result depend on \
                 the file, so two sources could get the same key: keep only text, {{bucket}} and dates \
                 around {{key}} (or {{dir}}/{{name}}), or add {{job_id}}",
                p.name()
            ),
        }
    }
}

/// The facts about one job's source that fill a template.
#[derive(Debug, Clone, Copy)]
pub struct SourceFacts<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub job_id: &'a str,
    /// The job's creation date, UTC.
    pub date: NaiveDate,
}

/// A parsed key template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    text: String,
    pieces: Vec<Piece>,
}

impl fmt::Display for KeyTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl KeyTemplate {
    pub fn parse(text: &str) -> Result<KeyTemplate, TemplateError> {
        if text.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        if text.starts_with('/') {
            return Err(TemplateError::Absolute);
        }
        if text.chars().any(|c| c == '\\' || c.is_control()) {
            return Err(TemplateError::BadChar);
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let open = rest.find('{');
            let close = rest.find('}');
            match (open, close) {
                (_, Some(c)) if open.is_none_or(|o| c < o) => return Err(TemplateError::Unopened),
                (None, None) => {
                    pieces.push(Piece::Text(rest.to_owned()));
                    break;
                }
                (Some(o), _) => {
                    if o > 0 {
                        pieces.push(Piece::Text(rest[..o].to_owned()));
                    }
                    let Some(len) = rest[o..].find('}') else { return Err(TemplateError::Unclosed) };
                    let name = &rest[o + 1..o + len];
                    let p = Placeholder::ALL
                        .into_iter()
                        .find(|p| p.name() == name)
                        .ok_or_else(|| TemplateError::Unknown { name: name.to_owned() })?;
                    pieces.push(Piece::Value(p));
                    rest = &rest[o + len + 1..];
                }
                (None, Some(_)) => unreachable!("handled by the first arm"),
            }
        }
        // A segment of only dots in the text itself (a value next to the dots makes a name).
        let shape: String = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                Piece::Value(_) => "x",
            })
            .collect();
        let literal_dots = shape.split('/').any(|s| s == "." || s == "..");
        if literal_dots {
            return Err(TemplateError::DotSegment);
        }
        Ok(KeyTemplate { text: text.to_owned(), pieces })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    pub fn uses(&self, p: Placeholder) -> bool {
        self.pieces.contains(&Piece::Value(p))
    }

    /// The key for one source: placeholders filled, empty segments dropped, checked as a key.
    pub fn render(&self, facts: &SourceFacts<'_>) -> Result<String, KeyError> {
        let (dir, name) = match facts.key.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => ("", facts.key),
        };
        let mut out = String::with_capacity(self.text.len() + facts.key.len() + facts.bucket.len());
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Value(p) => match p {
                    Placeholder::Bucket => out.push_str(facts.bucket),
                    Placeholder::Key => out.push_str(facts.key),
                    Placeholder::Dir => out.push_str(dir),
                    Placeholder::Name => out.push_str(name),
                    Placeholder::Stem => out.push_str(stem(name)),
                    Placeholder::Yyyy => out.push_str(&facts.date.format("%Y").to_string()),
                    Placeholder::Mm => out.push_str(&facts.date.format("%m").to_string()),
                    Placeholder::Dd => out.push_str(&facts.date.format("%d").to_string()),
                    Placeholder::JobId => out.push_str(facts.job_id),
                },
            }
        }
        let key = if out.contains("//") || out.starts_with('/') || out.ends_with('/') {
            out.split('/').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("/")
        } else {
            out
        };
        validate_key(&key)?;
        Ok(key)
    }

    /// Whether two different sources of one pipeline (one bucket) always get different keys:
    /// the template has `{job_id}` (one per source version), or the source's key (`{key}`, or
    /// `{dir}/{name}`, the same once an empty `{dir}` is dropped) with nothing of varying length
    /// before or after it, so the key can be read back from the result.
    pub fn identifies(&self) -> Result<(), NotIdentifying> {
        if self.uses(Placeholder::JobId) {
            return Ok(());
        }
        let pieces = &self.pieces;
        let at = (0..pieces.len()).find_map(|i| match &pieces[i] {
            Piece::Value(Placeholder::Key) => Some((i, i + 1)),
            Piece::Value(Placeholder::Dir)
                if pieces.get(i + 1) == Some(&Piece::Text("/".into()))
                    && pieces.get(i + 2) == Some(&Piece::Value(Placeholder::Name)) =>
            {
                Some((i, i + 3))
            }
            _ => None,
        });
        let Some((start, end)) = at else { return Err(NotIdentifying::NoIdentifier) };
        for piece in pieces[..start].iter().chain(&pieces[end..]) {
            if let Piece::Value(p) = piece {
                if !p.fixed_width() {
                    return Err(NotIdentifying::Ambiguous(*p));
                }
            }
        }
        Ok(())
    }

    /// The text every key from this template starts with, `{bucket}` read as `bucket`.
    pub fn fixed_start(&self, bucket: &str) -> String {
        self.start_for_source(bucket, "")
    }

    /// [`KeyTemplate::fixed_start`] for sources whose keys all start with `key_prefix` (a
    /// source filter's prefix): a `{key}` where the fixed text stops adds it.
    pub fn start_for_source(&self, bucket: &str, key_prefix: &str) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Value(Placeholder::Bucket) => out.push_str(bucket),
                Piece::Value(Placeholder::Key) => {
                    out.push_str(key_prefix);
                    break;
                }
                Piece::Value(_) => break,
            }
        }
        collapse(out.trim_start_matches('/'))
    }

    /// The text every key from this template ends with, `{bucket}` read as `bucket`.
    pub fn fixed_end(&self, bucket: &str) -> String {
        self.end_for_source(bucket, "")
    }

    /// [`KeyTemplate::fixed_end`] for sources whose keys all end with `key_suffix`: a `{key}`
    /// where the fixed text stops adds it.
    pub fn end_for_source(&self, bucket: &str, key_suffix: &str) -> String {
        let mut parts = Vec::new();
        for piece in self.pieces.iter().rev() {
            match piece {
                Piece::Text(t) => parts.push(t.as_str()),
                Piece::Value(Placeholder::Bucket) => parts.push(bucket),
                Piece::Value(Placeholder::Key) => {
                    parts.push(key_suffix);
                    break;
                }
                Piece::Value(_) => break,
            }
        }
        parts.reverse();
        // Empty segments are dropped: a trailing '/' is not kept and a run of them is one.
        collapse(parts.concat().trim_end_matches('/'))
    }
}

/// `text` with runs of '/' merged into one, as rendering does.
fn collapse(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    out
}

/// A file name without a compression suffix (`.gz`, `.zst`, ...) and then without its last
/// extension: `sales.csv.gz` → `sales`, `sales.csv` → `sales`, `README` → `README`, `.env` →
/// `.env`.
pub fn stem(name: &str) -> &str {
    let lower = name.to_ascii_lowercase();
    let name = COMPRESSED_SUFFIXES
        .iter()
        .find(|c| lower.ends_with(*c) && name.len() > c.len())
        .map_or(name, |c| &name[..name.len() - c.len()]);
    match name.rfind('.') {
        Some(0) | None => name,
        Some(dot) => &name[..dot],
    }
}

/// Whether keys with fixed start `start_a` and fixed end `end_a` could be keys with `start_b`,
/// `end_b`: both starts are compatible (one begins the other) and both ends are (one ends the
/// other). When they could not, the two sets of keys are disjoint.
pub fn could_overlap(start_a: &str, end_a: &str, start_b: &str, end_b: &str) -> bool {
    let starts = start_a.starts_with(start_b) || start_b.starts_with(start_a);
    let ends = end_a.ends_with(end_b) || end_b.ends_with(end_a);
    starts && ends
}

/// Whether some key from a template with fixed start `start` and fixed end `end` could match a
/// source filter (prefix, and suffix optionally followed by a compression suffix in any case).
pub fn could_match_source(start: &str, end: &str, prefix: &str, suffix: &str) -> bool {
    let starts = start.starts_with(prefix) || prefix.starts_with(start);
    if !starts {
        return false;
    }
    let end = end.to_ascii_lowercase();
    let suffix = suffix.to_ascii_lowercase();
    std::iter::once(String::new()).chain(COMPRESSED_SUFFIXES.iter().map(|c| c.to_string())).any(|c| {
        let s = format!("{suffix}{c}");
        end.ends_with(&s) || s.ends_with(&end)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(bucket: &'a str, key: &'a str) -> SourceFacts<'a> {
        SourceFacts {
            bucket,
            key,
            job_id: "j-0123456789abcdef01234567",
            date: NaiveDate::from_ymd_opt(2026, 3, 7).unwrap(),
        }
    }

    fn render(t: &str, key: &str) -> String {
        KeyTemplate::parse(t).unwrap().render(&facts("weir-input", key)).unwrap()
    }

    #[test]
    fn every_placeholder_means_what_the_docs_say() {
        let key = "raw/2024/sales.csv.gz";
        let all = "{bucket}|{key}|{dir}|{name}|{stem}|{yyyy}-{mm}-{dd}|{job_id}";
        assert_eq!(
            render(all, key),
            "weir-input|raw/2024/sales.csv.gz|raw/2024|sales.csv.gz|sales|2026-03-07|j-0123456789abcdef01234567"
        );
        assert_eq!(render("out/{dir}/{name}", "x.csv"), "out/x.csv");
        assert_eq!(render("out/{dir}/{stem}.parquet", "a/b/x.csv"), "out/a/b/x.parquet");
        assert_eq!(stem("README"), "README");
        assert_eq!(stem(".env"), ".env");
        assert_eq!(stem("x.tar.zst"), "x");
        assert_eq!(stem("data.json"), "data");
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        assert_eq!(
            KeyTemplate::parse("out/{file}.json"),
            Err(TemplateError::Unknown { name: "file".into() })
        );
        assert!(TemplateError::Unknown { name: "file".into() }.to_string().contains("{key}, {dir}"));
        assert_eq!(KeyTemplate::parse("out/{key"), Err(TemplateError::Unclosed));
        assert_eq!(KeyTemplate::parse("out/key}"), Err(TemplateError::Unopened));
        assert_eq!(KeyTemplate::parse("/out/{key}"), Err(TemplateError::Absolute));
        assert_eq!(KeyTemplate::parse("../{key}"), Err(TemplateError::DotSegment));
        assert_eq!(KeyTemplate::parse(""), Err(TemplateError::Empty));
    }

    #[test]
    fn a_key_too_long_for_s3_is_an_error_not_a_panic() {
        let long = format!("raw/{}/x.csv", ["d"; 200].join("/"));
        let t = KeyTemplate::parse("processed/{yyyy}/{mm}/{dd}/{bucket}/{key}.summary.json").unwrap();
        let e = t.render(&facts("weir-input", &format!("{long}{}", "/y".repeat(300)))).unwrap_err();
        assert!(matches!(e, KeyError::TooLong(n) if n > 1024), "{e:?}");
    }

    #[test]
    fn which_templates_tell_sources_apart() {
        let ok = |t: &str| KeyTemplate::parse(t).unwrap().identifies();
        for good in [
            "processed/{bucket}/{key}.ndjson",
            "processed/{yyyy}/{mm}/{dd}/{dir}/{name}.summary.json",
            "out/{stem}-{job_id}.parquet",
            "{key}",
            "failed-data/{yyyy}{mm}{dd}/{key}",
        ] {
            assert_eq!(ok(good), Ok(()), "{good}");
        }
        for none in
            ["out/{stem}.json", "out/{name}", "{yyyy}/{mm}/{dd}/report.json", "{dir}/{stem}.x", "{bucket}"]
        {
            assert_eq!(ok(none), Err(NotIdentifying::NoIdentifier), "{none}");
        }
        assert_eq!(ok("{dir}-{key}"), Err(NotIdentifying::Ambiguous(Placeholder::Dir)));
        assert_eq!(ok("{key}.{stem}"), Err(NotIdentifying::Ambiguous(Placeholder::Stem)));
        assert_eq!(ok("{dir}{name}"), Err(NotIdentifying::NoIdentifier));
        // The collisions the refusals are about.
        assert_eq!(render("out/{stem}.json", "raw/a.csv"), render("out/{stem}.json", "raw/a.json"));
        assert_eq!(render("out/{name}", "raw/a/x.csv"), render("out/{name}", "raw/b/x.csv"));
    }

    #[test]
    fn overlap_and_loops_by_fixed_text() {
        let t = KeyTemplate::parse("processed/{bucket}/{key}.ndjson").unwrap();
        assert_eq!(t.fixed_start("in"), "processed/in/");
        assert_eq!(t.fixed_end("in"), ".ndjson");
        let r = KeyTemplate::parse("reports/{key}.summary.json").unwrap();
        assert!(!could_overlap(
            &t.fixed_start("in"),
            &t.fixed_end("in"),
            &r.fixed_start("in"),
            &r.fixed_end("in")
        ));
        assert!(could_overlap("out/", ".json", "out/", ".summary.json"));
        assert!(!could_overlap("out/", ".ndjson", "out/", ".parquet"));
        assert!(could_match_source("", "", "raw/", ".csv"));
        assert!(!could_match_source("processed-data/", "", "raw-data/", ".csv"));
        assert!(!could_match_source("", ".ndjson", "raw/", ".csv"));
        assert!(could_match_source("raw/", ".CSV.GZ", "raw/", ".csv"));
    }
}
