//! `POST /v1/ingest`: records in a request body become an object in the input bucket.
//!
//! The body is the seed's direct-invocation payload (`{"data": [{...}, ...]}`), a JSON array of
//! records, or NDJSON (one object per line). The object goes where a pipeline will take it (the
//! one named by `?pipeline=`, else the first that fits, see [`target`]): a pipeline whose source
//! suffix is a JSON form (`.ndjson`, `.jsonl`: stored as NDJSON; `.json`: a JSON array) gets the
//! records as they came; a `.csv` pipeline gets them as CSV, with the union of the records' keys
//! (in first-seen order) as the header and the pipeline's delimiter, so a CSV-only pipeline (the
//! bundled sales one) can still take records posted as JSON. The key is
//! `<source prefix>ingest/<uuid><suffix>`.
//!
//! Bounded whatever the body holds: records are parsed one at a time (their values kept as the
//! JSON text they arrived as, never built into trees), on a blocking thread, and written straight
//! to a scratch file the store then takes. A record may have at most [`MAX_FIELDS`] fields, and
//! so may all of them together (a CSV gets one column per field, so 20,000 records with a key
//! each made 400 MB); the stored object counts against `server.max_object_bytes`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer as _;
use serde_json::value::RawValue;
use weir_core::{Config, PipelineConfig};

use crate::http_error::ApiError;

/// Fields one record may have, and distinct fields all records together may have: a CSV
/// pipeline gets one column per distinct field, so this bounds the stored file to
/// records × this many cells.
pub const MAX_FIELDS: usize = 1024;

/// How the records are written for the chosen pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Ndjson,
    JsonArray,
    Csv { delimiter: u8, quote: u8 },
}

#[derive(Debug)]
pub struct Target<'a> {
    pub pipeline: &'a PipelineConfig,
    pub bucket: String,
    pub key: String,
    pub encoding: Encoding,
}

/// One record: its fields in the order sent, each value as the JSON text it was sent as
/// (borrowed from the body: a record costs a few words per field, whatever its values hold).
#[derive(Debug)]
pub struct Record<'a> {
    pub fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'de> serde::Deserialize<'de> for Record<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RecordVisitor)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Record<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record<'de>, A::Error> {
        let mut fields = Vec::new();
        while let Some(Key(name)) = map.next_key()? {
            if fields.len() == MAX_FIELDS {
                return Err(de::Error::custom(format!("a record has more than {MAX_FIELDS} fields")));
            }
            fields.push((name, map.next_value::<&RawValue>()?));
        }
        Ok(Record { fields })
    }
}

/// A key, borrowed from the body unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Calls `each` with every record of the body, one at a time: the `data` array of the
/// direct-invocation payload (`{"data": [...]}`), a JSON array, or NDJSON (one object per line). Returns how
/// many there were; the first malformed record (or an error of `each`) ends it.
pub fn for_each_record<'a>(
    body: &'a [u8],
    mut each: impl FnMut(Record<'a>) -> Result<(), ApiError>,
) -> Result<usize, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| invalid(format!("the body is not UTF-8: {e}")))?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid("the body is empty: send {\"data\": [ {...}, ... ]}, [ {...}, ... ] or NDJSON"));
    }
    // One JSON document: the payload with `data`, or a single record on one line.
    if is_one_document(trimmed) {
        let mut failed = None;
        let mut de = serde_json::Deserializer::from_str(trimmed);
        let seed = PayloadSeed { each: &mut each, failed: &mut failed, count: 0 };
        match de.deserialize_any(seed) {
            Ok(Payload::Data(0)) => return Err(invalid("`data` is empty: there is nothing to ingest")),
            Ok(Payload::Array(0)) => return Err(invalid("the array is empty: there is nothing to ingest")),
            Ok(Payload::Data(n) | Payload::Array(n)) => return Ok(n),
            Ok(Payload::NoData) if !trimmed.contains('\n') => {
                let record = serde_json::from_str::<Record>(trimmed).map_err(|e| invalid(e.to_string()))?;
                each(record)?;
                return Ok(1);
            }
            Ok(Payload::NoData) => return Err(invalid("a JSON body must have a `data` array of objects")),
            Err(e) => return Err(failed.unwrap_or_else(|| invalid(e.to_string()))),
        }
    }
    let mut count = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(record) => each(record)?,
            Err(e) if e.is_data() && e.to_string().contains("more than") => {
                return Err(invalid(format!("line {}: {e}", i + 1)))
            }
            Err(e) if e.is_data() => return Err(invalid(format!("line {}: not a JSON object", i + 1))),
            Err(e) => return Err(invalid(format!("line {}: not JSON ({e})", i + 1))),
        }
        count += 1;
    }
    if count == 0 {
        return Err(invalid("no records in the body"));
    }
    Ok(count)
}

/// Whether `text` is exactly one JSON value (skipped over, not built).
fn is_one_document(text: &str) -> bool {
    let mut de = serde_json::Deserializer::from_str(text);
    serde::Deserialize::deserialize(&mut de).map(|IgnoredAny| ()).is_ok() && de.end().is_ok()
}

enum Payload {
    /// The document had `data`, with this many records.
    Data(usize),
    /// The document was an array of this many records.
    Array(usize),
    /// An object without `data`.
    NoData,
}

/// The top-level document: hands each element of `data` (or of the array) to `each` as it is
/// parsed.
struct PayloadSeed<'e, F> {
    each: &'e mut F,
    failed: &'e mut Option<ApiError>,
    count: usize,
}

impl<'de, F: FnMut(Record<'de>) -> Result<(), ApiError>> DeserializeSeed<'de> for PayloadSeed<'_, F> {
    type Value = Payload;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Payload, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(Record<'de>) -> Result<(), ApiError>> Visitor<'de> for PayloadSeed<'_, F> {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with a `data` array of objects, or an array of objects")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Payload, A::Error> {
        let mut data = None;
        while let Some(Key(name)) = map.next_key()? {
            if name == "data" && data.is_none() {
                let elements = ElementsSeed {
                    each: &mut *self.each,
                    failed: &mut *self.failed,
                    count: &mut self.count,
                    name: "data",
                };
                map.next_value_seed(elements)?;
                data = Some(self.count);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(data.map_or(Payload::NoData, Payload::Data))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, seq: A) -> Result<Payload, A::Error> {
        let elements = ElementsSeed {
            each: &mut *self.each,
            failed: &mut *self.failed,
            count: &mut self.count,
            name: "",
        };
        elements.visit_seq(seq)?;
        Ok(Payload::Array(self.count))
    }
}

struct ElementsSeed<'e, F> {
    each: &'e mut F,
    failed: &'e mut Option<ApiError>,
    count: &'e mut usize,
    /// How errors name the array: `data` (`data[3] is not an object`) or nothing (`[3] ...`).
    name: &'static str,
}

impl<'de, F: FnMut(Record<'de>) -> Result<(), ApiError>> DeserializeSeed<'de> for ElementsSeed<'_, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(Record<'de>) -> Result<(), ApiError>> Visitor<'de> for ElementsSeed<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let i = *self.count;
            let record = match seq.next_element::<Record>() {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(()),
                Err(e) => {
                    let text = e.to_string();
                    let name = self.name;
                    *self.failed = Some(if text.contains("more than") {
                        invalid(format!("{name}[{i}]: {text}"))
                    } else {
                        invalid(format!("{name}[{i}] is not an object"))
                    });
                    return Err(e);
                }
            };
            if let Err(e) = (self.each)(record) {
                *self.failed = Some(e);
                return Err(de::Error::custom("stopped"));
            }
            *self.count += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.not_an_array()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_an_array()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_an_array()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_an_array()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_an_array()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_an_array()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_an_array()
    }
}

impl<F> ElementsSeed<'_, F> {
    fn not_an_array<E: de::Error>(self) -> Result<(), E> {
        *self.failed = Some(invalid("`data` must be an array of objects"));
        Err(E::custom("not an array"))
    }
}

/// The field names of the body's first record; none when the body holds no record ([`store`]
/// then says why). Stops parsing after the first record.
pub fn first_fields(body: &[u8]) -> Vec<String> {
    let mut first = None;
    let _ = for_each_record(body, |r| {
        first = Some(r.fields.iter().map(|(name, _)| name.to_string()).collect());
        Err(invalid("only the first record was wanted"))
    });
    first.unwrap_or_default()
}

/// Picks the pipeline and the key: the pipeline named, or else, among the pipelines on the input
/// bucket that take records (a JSON form or CSV), the first whose required columns are all fields
/// of the first record (`fields`; a dotted column `user.id` needs `user`); when none fits, the
/// first that takes a JSON form, then the first CSV one (its job then names the missing column).
pub fn target<'a>(
    config: &'a Config,
    pipeline: Option<&str>,
    id: &str,
    fields: &[String],
) -> Result<Target<'a>, ApiError> {
    let input = &config.buckets.input;
    let on_input = |p: &&PipelineConfig| p.source.bucket.as_deref().unwrap_or(input) == input;
    let encoding_of = |p: &PipelineConfig| match p.source.suffix.as_str() {
        _ if p.kind == weir_core::config::PipelineKind::Image => None,
        ".ndjson" | ".jsonl" => Some(Encoding::Ndjson),
        ".json" => Some(Encoding::JsonArray),
        ".csv" | ".tsv" | ".txt" => Some(Encoding::Csv {
            delimiter: u8::try_from(p.format.delimiter).unwrap_or(b','),
            quote: u8::try_from(p.format.quote).unwrap_or(b'"'),
        }),
        _ => None,
    };
    let chosen = match pipeline {
        Some(name) => {
            let p = config.pipelines.iter().find(|p| p.name == name).ok_or_else(|| {
                ApiError::bad_request("no_pipeline", format!("there is no pipeline named {name:?}"))
            })?;
            let enc = encoding_of(p).ok_or_else(|| {
                ApiError::bad_request(
                    "no_pipeline",
                    match p.kind {
                        weir_core::config::PipelineKind::Image => {
                            format!("pipeline {name:?} takes pictures, which records cannot be written as")
                        }
                        weir_core::config::PipelineKind::Data => format!(
                            "pipeline {name:?} takes `{}` files, which records cannot be written as",
                            p.source.suffix
                        ),
                    },
                )
            })?;
            (p, enc)
        }
        None => {
            let candidates: Vec<_> = config
                .pipelines
                .iter()
                .filter(on_input)
                .filter_map(|p| encoding_of(p).map(|e| (p, e)))
                .collect();
            let has = |name: &str| {
                let top = name.split('.').next().unwrap_or(name);
                fields.iter().any(|f| f == name || f == top)
            };
            let fits = |p: &PipelineConfig| p.columns.iter().filter(|c| c.required).all(|c| has(&c.name));
            candidates
                .iter()
                .find(|(p, _)| fits(p))
                .or_else(|| candidates.iter().find(|(_, e)| !matches!(e, Encoding::Csv { .. })))
                .or_else(|| candidates.first())
                .copied()
                .ok_or_else(|| {
                    ApiError::new(
                        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                        "no_pipeline",
                        "no pipeline on the input bucket takes .ndjson, .json or .csv files",
                    )
                })?
        }
    };
    let (p, encoding) = chosen;
    Ok(Target {
        pipeline: p,
        bucket: p.source.bucket.clone().unwrap_or_else(|| input.clone()),
        key: format!("{}ingest/{id}{}", p.source.prefix, p.source.suffix),
        encoding,
    })
}

/// The distinct field names of the records so far, at most [`MAX_FIELDS`]: every kept unknown
/// field becomes a column of the job, whatever the encoding.
#[derive(Default)]
struct DistinctFields(std::collections::HashSet<String>);

impl DistinctFields {
    fn add(&mut self, r: &Record<'_>) -> Result<(), ApiError> {
        for (name, _) in &r.fields {
            if !self.0.contains(name.as_ref()) {
                if self.0.len() == MAX_FIELDS {
                    return Err(invalid(format!(
                        "the records have more than {MAX_FIELDS} distinct fields; a pipeline gets one column per field"
                    )));
                }
                self.0.insert(name.to_string());
            }
        }
        Ok(())
    }
}

/// What [`store`] wrote.
#[derive(Debug)]
pub struct Written {
    pub records: usize,
    pub bytes: u64,
}

/// Writes the body's records to `path` in the target's encoding, at most `max_bytes` of them
/// (413 beyond). Synchronous: run it on a blocking thread. Reads the body twice for CSV (the
/// header is every field seen, so it is known only at the end) and holds one record at a time.
pub fn store(body: &[u8], encoding: Encoding, path: &Path, max_bytes: u64) -> Result<Written, ApiError> {
    let file = std::fs::File::create(path).map_err(io_error)?;
    let mut out = Capped { inner: std::io::BufWriter::new(file), written: 0, max: max_bytes };
    let mut fields = DistinctFields::default();
    let records = match encoding {
        Encoding::Ndjson => for_each_record(body, |r| {
            fields.add(&r)?;
            write_object(&mut out, &r)?;
            out.write_all(b"\n").map_err(|e| out.error(e))
        })?,
        Encoding::JsonArray => {
            out.write_all(b"[").map_err(|e| out.error(e))?;
            let n = for_each_record(body, |r| {
                fields.add(&r)?;
                if out.written > 1 {
                    out.write_all(b",").map_err(|e| out.error(e))?;
                }
                write_object(&mut out, &r)
            })?;
            out.write_all(b"]").map_err(|e| out.error(e))?;
            n
        }
        Encoding::Csv { delimiter, quote } => {
            let mut header: Vec<String> = Vec::new();
            let mut index: HashMap<String, usize> = HashMap::new();
            let n = for_each_record(body, |r| {
                for (name, _) in &r.fields {
                    if !index.contains_key(name.as_ref()) {
                        if header.len() == MAX_FIELDS {
                            return Err(invalid(format!(
                                "the records have more than {MAX_FIELDS} distinct fields; a CSV pipeline gets one column per field"
                            )));
                        }
                        index.insert(name.to_string(), header.len());
                        header.push(name.to_string());
                    }
                }
                Ok(())
            })?;
            // Every row has a separator per column: refuse before writing what cannot fit.
            if (n as u64).saturating_mul(header.len() as u64) > max_bytes {
                return Err(too_large_stored(max_bytes));
            }
            let mut w = csv::WriterBuilder::new().delimiter(delimiter).quote(quote).from_writer(&mut out);
            let csv_err = |e: csv::Error| match e.into_kind() {
                csv::ErrorKind::Io(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                    too_large_stored(max_bytes)
                }
                other => invalid(format!("the records cannot be written as CSV: {other:?}")),
            };
            w.write_record(&header).map_err(csv_err)?;
            let mut cells: Vec<Option<&RawValue>> = vec![None; header.len()];
            for_each_record(body, |r| {
                cells.iter_mut().for_each(|c| *c = None);
                for (name, value) in &r.fields {
                    let i = index[name.as_ref()];
                    cells[i].get_or_insert(*value);
                }
                w.write_record(cells.iter().map(|c| cell(*c))).map_err(csv_err)
            })?;
            w.flush().map_err(io_error)?;
            drop(w);
            n
        }
    };
    out.inner.flush().map_err(io_error)?;
    Ok(Written { records, bytes: out.written })
}

/// A record as a JSON object: its fields as they were sent.
fn write_object(out: &mut Capped<impl Write>, r: &Record<'_>) -> Result<(), ApiError> {
    let mut line = Vec::with_capacity(64);
    line.push(b'{');
    for (i, (name, value)) in r.fields.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        serde_json::to_writer(&mut line, name.as_ref()).expect("a string serializes");
        line.push(b':');
        line.extend_from_slice(value.get().as_bytes());
    }
    line.push(b'}');
    out.write_all(&line).map_err(|e| out.error(e))
}

/// A CSV cell: strings unquoted, `null` and missing fields empty, anything else as its JSON.
fn cell(v: Option<&RawValue>) -> Cow<'_, [u8]> {
    match v.map(RawValue::get) {
        None | Some("null") => Cow::Borrowed(b""),
        Some(s) if s.starts_with('"') => match serde_json::from_str::<Cow<str>>(s) {
            Ok(Cow::Borrowed(t)) => Cow::Borrowed(t.as_bytes()),
            Ok(Cow::Owned(t)) => Cow::Owned(t.into_bytes()),
            Err(_) => Cow::Borrowed(s.as_bytes()),
        },
        Some(s) => Cow::Borrowed(s.as_bytes()),
    }
}

/// A writer that fails (with `FileTooLarge`) past `max` bytes.
struct Capped<W> {
    inner: W,
    written: u64,
    max: u64,
}

impl<W: Write> Capped<W> {
    fn error(&self, e: std::io::Error) -> ApiError {
        if e.kind() == std::io::ErrorKind::FileTooLarge {
            too_large_stored(self.max)
        } else {
            io_error(e)
        }
    }
}

impl<W: Write> Write for Capped<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written + buf.len() as u64 > self.max {
            return Err(std::io::Error::new(std::io::ErrorKind::FileTooLarge, "over max_object_bytes"));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn too_large_stored(max: u64) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the records as the pipeline takes them would be larger than server.max_object_bytes ({max} bytes)"),
    )
}

fn io_error(e: std::io::Error) -> ApiError {
    tracing::error!(error = %e, "writing ingested records");
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the records could not be stored; retry",
    )
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_payload", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(body: &[u8]) -> Result<usize, ApiError> {
        for_each_record(body, |_| Ok(()))
    }

    fn stored(body: &[u8], encoding: Encoding, max: u64) -> Result<String, ApiError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        store(body, encoding, &path, max)?;
        Ok(std::fs::read_to_string(path).unwrap())
    }

    const CSV: Encoding = Encoding::Csv { delimiter: b',', quote: b'"' };

    #[test]
    fn reads_both_payload_shapes() {
        assert_eq!(count(br#"{"data": [{"a": 1}, {"b": "x"}]}"#).unwrap(), 2);
        assert_eq!(count(br#"{"other": 1, "data": [{"a": 1}]}"#).unwrap(), 1);
        assert_eq!(count(b"{\"a\": 1}\n\n{\"a\": 2}\n").unwrap(), 2);
        assert_eq!(count(b"{\"a\": 1}").unwrap(), 1);
        assert_eq!(count(br#"[{"a": 1}, {"b": "x"}, {}]"#).unwrap(), 3);
        for bad in [
            &b""[..],
            b"[]",
            b"[1,2]",
            br#"{"data": []}"#,
            br#"{"data": [1]}"#,
            br#"{"data": 5}"#,
            b"{\"a\":1}\nnope",
            b"\xff",
        ] {
            assert!(count(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    fn fields(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_first_record_chooses_among_the_bundled_pipelines() {
        let config = Config::bundled();
        // The seed's payload (004) fits the bundled NDJSON pipeline...
        let seed = br#"{"data": [{"id": 1, "value": "test"}]}"#;
        assert_eq!(first_fields(seed), fields(&["id", "value"]));
        let t = target(&config, None, "abc", &first_fields(seed)).unwrap();
        assert_eq!((t.pipeline.name.as_str(), t.encoding), ("records", Encoding::Ndjson));
        assert_eq!(t.key, "records/ingest/abc.ndjson");
        assert!(config.pipeline_for(&t.bucket, &t.key).is_some_and(|p| p.name == "records"));
        // ...sales records the sales one, whatever the shape of the body.
        let sales = "order_id,customer_name,product,quantity,price,date";
        for body in [
            format!(
                "[{{{}}}]",
                sales.split(',').map(|f| format!("\"{f}\": 1")).collect::<Vec<_>>().join(",")
            ),
            format!(
                "{{{}}}\n",
                sales.split(',').map(|f| format!("\"{f}\": 1")).collect::<Vec<_>>().join(",")
            ),
        ] {
            let t = target(&config, None, "abc", &first_fields(body.as_bytes())).unwrap();
            assert_eq!(t.pipeline.name, "sales", "{body}");
        }
        // Fitting nothing, records go to the first pipeline that takes JSON as they came.
        assert_eq!(target(&config, None, "abc", &fields(&["x"])).unwrap().pipeline.name, "records");
        assert!(first_fields(b"not json").is_empty());
    }

    #[test]
    fn the_bundled_csv_pipeline_gets_csv_with_the_union_of_keys() {
        let config = Config::bundled();
        let t = target(&config, Some("sales"), "abc", &[]).unwrap();
        assert_eq!((t.bucket.as_str(), t.key.as_str()), ("weir-input", "raw/ingest/abc.csv"));
        assert!(config.pipeline_for(&t.bucket, &t.key).is_some());
        let body = br#"{"data": [{"a": 1, "b": "x,y"}, {"c": true, "a": null, "d": {"n": [1, 2]}}]}"#;
        assert_eq!(
            stored(body, t.encoding, 1 << 20).unwrap(),
            "a,b,c,d\n1,\"x,y\",,\n,,true,\"{\"\"n\"\": [1, 2]}\"\n"
        );
        assert!(target(&config, Some("nope"), "abc", &[]).is_err());
        // The bundled image pipeline takes pictures, not records.
        let e = target(&config, Some("images"), "abc", &[]).err().unwrap();
        assert!(format!("{e:?}").contains("takes pictures"), "{e:?}");
    }

    #[test]
    fn a_json_pipeline_is_preferred_when_none_fits() {
        let mut config = Config::bundled();
        config.pipelines.retain(|p| p.name != "records");
        let mut json = config.pipelines[0].clone();
        json.name = "events".into();
        json.source.suffix = ".ndjson".into();
        config.pipelines.push(json);
        let t = target(&config, None, "abc", &fields(&["a"])).unwrap();
        assert_eq!((t.pipeline.name.as_str(), t.encoding), ("events", Encoding::Ndjson));
        assert_eq!(
            stored(b"{\"a\":1}\n{\"b\\u0041\": \"x\"}\n", t.encoding, 1 << 20).unwrap(),
            "{\"a\":1}\n{\"bA\":\"x\"}\n"
        );
        assert_eq!(
            stored(br#"{"data": [{"a":1},{"a":2}]}"#, Encoding::JsonArray, 1 << 20).unwrap(),
            r#"[{"a":1},{"a":2}]"#
        );
    }

    /// The probe of issue #14: records with a distinct key each made a CSV of records × keys.
    #[test]
    fn fields_and_size_are_capped() {
        let wide: String = (0..=MAX_FIELDS).map(|i| format!("{{\"k{i}\": 1}}\n")).collect();
        for encoding in [CSV, Encoding::Ndjson, Encoding::JsonArray] {
            let e = stored(wide.as_bytes(), encoding, 1 << 30).unwrap_err();
            assert!(format!("{e:?}").contains("distinct fields"), "{encoding:?}: {e:?}");
        }
        let one: String =
            format!("{{{}}}", (0..=MAX_FIELDS).map(|i| format!("\"k{i}\": 1")).collect::<Vec<_>>().join(","));
        assert!(format!("{:?}", count(one.as_bytes()).unwrap_err()).contains("more than 1024 fields"));
        // Under the field cap, the stored size still counts against the object limit.
        let rows: String = (0..1000).map(|i| format!("{{\"a\": \"{i:0>50}\"}}\n")).collect();
        assert!(
            format!("{:?}", stored(rows.as_bytes(), CSV, 10_000).unwrap_err()).contains("payload_too_large")
        );
        assert!(format!("{:?}", stored(rows.as_bytes(), Encoding::Ndjson, 10_000).unwrap_err())
            .contains("payload_too_large"));
    }
}
