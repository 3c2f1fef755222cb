//! `POST /v1/ingest`: records in a request body become an object in the input bucket.
//!
//! The body is the seed's direct-invocation payload (`{"data": [{...}, ...]}`) or NDJSON (one
//! object per line). The object goes where a pipeline will take it: the first pipeline on the
//! input bucket whose source suffix is a JSON form (`.ndjson`, `.jsonl`: stored as NDJSON;
//! `.json`: a JSON array) gets the records as they came; failing that, the first `.csv` pipeline
//! gets them as CSV, with the union of the records' keys (in first-seen order) as the header and
//! the pipeline's delimiter, so a CSV-only pipeline (the bundled sales one) can still take
//! records posted as JSON. The key is `<source prefix>ingest/<uuid><suffix>`.

use serde_json::{Map, Value};
use weir_core::{Config, PipelineConfig};

use super::error::ApiError;

pub type Record = Map<String, Value>;

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

/// Parses the body: a JSON object with a `data` array of objects, or NDJSON.
pub fn parse(body: &[u8]) -> Result<Vec<Record>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| invalid(format!("the body is not UTF-8: {e}")))?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(invalid("the body is empty: send {\"data\": [ {...}, ... ]} or NDJSON"));
    }
    // One JSON document with `data`: the direct-invocation payload.
    if let Ok(Value::Object(mut doc)) = serde_json::from_str::<Value>(text) {
        if let Some(data) = doc.remove("data") {
            let Value::Array(items) = data else { return Err(invalid("`data` must be an array of objects")) };
            if items.is_empty() {
                return Err(invalid("`data` is empty: there is nothing to ingest"));
            }
            return items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Object(m) => Ok(m),
                    _ => Err(invalid(format!("data[{i}] is not an object"))),
                })
                .collect();
        }
        if !doc.is_empty() && !text.trim().contains('\n') {
            // A single object on one line is one NDJSON record.
            return Ok(vec![doc]);
        }
        return Err(invalid("a JSON body must have a `data` array of objects"));
    }
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) => records.push(m),
            Ok(_) => return Err(invalid(format!("line {}: not a JSON object", i + 1))),
            Err(e) => return Err(invalid(format!("line {}: not JSON ({e})", i + 1))),
        }
    }
    if records.is_empty() {
        return Err(invalid("no records in the body"));
    }
    Ok(records)
}

/// Picks the pipeline (the named one, or as described in the module docs) and the key.
pub fn target<'a>(config: &'a Config, pipeline: Option<&str>, id: &str) -> Result<Target<'a>, ApiError> {
    let input = &config.buckets.input;
    let on_input = |p: &&PipelineConfig| p.source.bucket.as_deref().unwrap_or(input) == input;
    let encoding_of = |p: &PipelineConfig| match p.source.suffix.as_str() {
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
                    format!(
                        "pipeline {name:?} takes `{}` files, which records cannot be written as",
                        p.source.suffix
                    ),
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
            candidates
                .iter()
                .find(|(_, e)| !matches!(e, Encoding::Csv { .. }))
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

/// Writes the records in the target's encoding.
pub fn encode(records: &[Record], encoding: Encoding) -> Result<Vec<u8>, ApiError> {
    match encoding {
        Encoding::Ndjson => {
            let mut out = Vec::new();
            for r in records {
                serde_json::to_writer(&mut out, r).expect("JSON values serialize");
                out.push(b'\n');
            }
            Ok(out)
        }
        Encoding::JsonArray => Ok(serde_json::to_vec(records).expect("JSON values serialize")),
        Encoding::Csv { delimiter, quote } => {
            let mut header: Vec<&str> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for r in records {
                for k in r.keys() {
                    if seen.insert(k.as_str()) {
                        header.push(k);
                    }
                }
            }
            let mut w = csv::WriterBuilder::new().delimiter(delimiter).quote(quote).from_writer(Vec::new());
            let csv_err = |e: csv::Error| invalid(format!("the records cannot be written as CSV: {e}"));
            w.write_record(&header).map_err(csv_err)?;
            for r in records {
                w.write_record(header.iter().map(|k| cell(r.get(*k)))).map_err(csv_err)?;
            }
            w.into_inner().map_err(|e| invalid(format!("the records cannot be written as CSV: {e}")))
        }
    }
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => other.to_string(),
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_payload", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_payload_shapes() {
        let a = parse(br#"{"data": [{"a": 1}, {"b": "x"}]}"#).unwrap();
        assert_eq!(a.len(), 2);
        let b = parse(b"{\"a\": 1}\n\n{\"a\": 2}\n").unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(parse(b"{\"a\": 1}").unwrap().len(), 1);
        for bad in [&b""[..], b"[1,2]", br#"{"data": []}"#, br#"{"data": [1]}"#, b"{\"a\":1}\nnope", b"\xff"]
        {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_bundled_csv_pipeline_gets_csv_with_the_union_of_keys() {
        let config = Config::bundled();
        let t = target(&config, None, "abc").unwrap();
        assert_eq!((t.bucket.as_str(), t.key.as_str()), ("weir-input", "raw/ingest/abc.csv"));
        assert!(config.pipeline_for(&t.bucket, &t.key).is_some());
        let records = parse(br#"{"data": [{"a": 1, "b": "x,y"}, {"c": true, "a": null}]}"#).unwrap();
        let csv = String::from_utf8(encode(&records, t.encoding).unwrap()).unwrap();
        assert_eq!(csv, "a,b,c\n1,\"x,y\",\n,,true\n");
        assert!(target(&config, Some("nope"), "abc").is_err());
    }

    #[test]
    fn a_json_pipeline_is_preferred() {
        let mut config = Config::bundled();
        let mut json = config.pipelines[0].clone();
        json.name = "events".into();
        json.source.suffix = ".ndjson".into();
        config.pipelines.push(json);
        let t = target(&config, None, "abc").unwrap();
        assert_eq!((t.pipeline.name.as_str(), t.encoding), ("events", Encoding::Ndjson));
        let records = parse(b"{\"a\":1}\n").unwrap();
        assert_eq!(encode(&records, t.encoding).unwrap(), b"{\"a\":1}\n");
    }
}
