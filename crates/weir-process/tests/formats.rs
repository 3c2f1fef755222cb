//! Every input and output format end to end: CSV options, JSON/NDJSON with nested fields and the
//! event summary, gzip and zstd (also through the pipeline's suffix rules), other encodings, the
//! JSON document and the NDJSON output; and a malformed case per format.

use std::io::{Read, Write};

use serde_json::{json, Value};
use weir_core::config::{
    ColumnConfig, ColumnType, Compression, FormatKind, OutputFormat, PipelineConfig, UnknownColumns,
};
use weir_core::{ErrorClass, Summary};
use weir_process::{check_header, check_header_named, process, process_with, Options, Plan, ProcessError};

/// The bundled sales pipeline accepting any share of invalid rows and files without rows: these
/// tests are about how each format reads; the file-level rules are tested in bad_input.rs.
fn sales() -> PipelineConfig {
    let mut cfg = weir_core::Config::bundled().pipelines.remove(0);
    cfg.validation.max_invalid_ratio = 1.0;
    cfg.validation.min_rows = 0;
    cfg
}

struct Out {
    summary: Summary,
    results: Vec<u8>,
    errors: Vec<Value>,
}

impl Out {
    fn rows(&self) -> Vec<Value> {
        String::from_utf8(self.results.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn run_named(cfg: &PipelineConfig, data: &[u8], name: Option<&str>) -> Result<Out, ProcessError> {
    let plan = Plan::compile(cfg).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let summary =
        process_with(&plan, data, &mut out, &mut err, &Options { source_name: name, ..Options::default() })?;
    let errors = String::from_utf8(err).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    Ok(Out { summary, results: out, errors })
}

fn run(cfg: &PipelineConfig, data: &[u8]) -> Result<Out, ProcessError> {
    run_named(cfg, data, None)
}

/// The event files the seed's JSON handler summarised: counts per type, unique users, time range.
fn events() -> PipelineConfig {
    let mut p = sales();
    p.format.kind = FormatKind::Json;
    p.source.suffix = ".json".into();
    let mut id = ColumnConfig::new("event_id", ColumnType::String);
    id.required = true;
    let mut ty = ColumnConfig::new("type", ColumnType::Enum);
    ty.values = vec!["click".into(), "view".into(), "buy".into()];
    ty.required = true;
    let user = ColumnConfig::new("user.id", ColumnType::String);
    let mut ts = ColumnConfig::new("timestamp", ColumnType::Datetime);
    ts.required = true;
    let amount = ColumnConfig::new("amount", ColumnType::Decimal);
    p.columns = vec![id, ty, user, ts, amount];
    p.derived = vec![weir_core::config::DerivedConfig {
        name: "label".into(),
        expr: "concat(upper(type), ':', coalesce(user.id, 'anonymous'))".into(),
    }];
    p.summary = Default::default();
    p.summary.categorical = vec!["type".into()];
    p.summary.unique = vec!["user.id".into()];
    p.summary.range = vec!["timestamp".into()];
    p
}

const EVENTS: &str = r#"[
  {"event_id": "e1", "type": "click", "user": {"id": "u1", "plan": "pro"}, "timestamp": "2024-01-15T10:00:00Z"},
  {"event_id": "e2", "type": "view", "user": {"id": "u2"}, "timestamp": "2024-01-15T09:00:00+07:00", "amount": 12.5},
  {"event_id": "e3", "type": "click", "user": {"id": "u1"}, "timestamp": "2024-01-16T00:00:00Z", "ua": {"os": "linux"}},
  {"event_id": "e4", "type": "jump", "user": {"id": "u3"}, "timestamp": "2024-01-17T00:00:00Z"},
  {"event_id": "e5", "type": "buy", "timestamp": "2024-02-30T00:00:00Z"},
  {"event_id": "e6", "type": "buy", "user": null, "timestamp": "2024-01-14T23:59:59Z", "amount": "3"}
]"#;

#[test]
fn json_array_of_events_with_nested_fields_and_the_event_summary() {
    let o = run(&events(), EVENTS.as_bytes()).unwrap();
    let s = &o.summary;
    assert_eq!((s.total_rows, s.valid_rows, s.invalid_rows), (6, 4, 2));
    let rows = o.rows();
    assert_eq!(
        rows[0],
        json!({"event_id": "e1", "type": "click", "user.id": "u1", "timestamp": "2024-01-15T10:00:00Z",
               "amount": null, "label": "CLICK:u1", "user.plan": "pro"})
    );
    assert_eq!(rows[1]["amount"], json!(12.5));
    assert_eq!(rows[2]["ua"], json!({"os": "linux"}));
    assert_eq!(rows[3]["label"], "BUY:anonymous");
    assert_eq!(rows[3]["amount"], json!(3.0));
    // Counts per type, unique users, the time range (chronological, not textual: 09:00+07:00
    // is the earliest of the 15th).
    let top = &s.categorical["type"].top;
    assert_eq!((top[0].value.as_str(), top[0].count), ("click", 2));
    assert_eq!(s.unique["user.id"].count, 2);
    assert!(s.unique["user.id"].exact);
    assert_eq!(s.ranges["timestamp"].min.as_deref(), Some("2024-01-14T23:59:59Z"));
    assert_eq!(s.ranges["timestamp"].max.as_deref(), Some("2024-01-16T00:00:00Z"));
    let reasons: Vec<(u64, &str, &str)> = o
        .errors
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["field"].as_str().unwrap(), e["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (5, "type", "\"jump\" is not one of click, view, buy"),
            (
                6,
                "timestamp",
                "not a valid datetime (expected RFC 3339, e.g. 2024-01-15T10:30:00Z): \"2024-02-30T00:00:00Z\""
            ),
        ]
    );
    assert_eq!(o.errors[1]["values"]["user.id"], Value::Null);
}

#[test]
fn ndjson_and_a_single_object_read_the_same_way() {
    let mut cfg = events();
    cfg.format.kind = FormatKind::Ndjson;
    let ndjson = "{\"event_id\":\"e1\",\"type\":\"view\",\"timestamp\":\"2024-01-01T00:00:00Z\"}\r\n\n{\"event_id\":\"e2\",\"type\":\"buy\",\"timestamp\":\"2024-01-02T00:00:00Z\",\"user\":{\"id\":7}}\n";
    let o = run(&cfg, ndjson.as_bytes()).unwrap();
    assert_eq!(o.summary.valid_rows, 2);
    assert_eq!(o.rows()[1]["user.id"], "7");
    let single = r#"{"event_id":"e1","type":"view","timestamp":"2024-01-01T00:00:00Z"}"#;
    assert_eq!(run(&cfg, single.as_bytes()).unwrap().summary.valid_rows, 1);
    // A required key that is missing or null is a specific row error.
    let o = run(&cfg, br#"{"type":"view","timestamp":"2024-01-01T00:00:00Z","event_id":null}"#).unwrap();
    assert_eq!(o.errors[0]["field"], "event_id");
    assert_eq!(o.errors[0]["reason"], "required field is missing or null");
    let o = run(&cfg, br#"{"type":"view","timestamp":"2024-01-01T00:00:00Z","event_id":""}"#).unwrap();
    assert_eq!(o.errors[0]["reason"], "required field is empty");
}

#[test]
fn json_files_that_are_not_json_are_rejected_before_any_row() {
    let plan = Plan::compile(&events()).unwrap();
    let e = check_header(&plan, &b"order_id,product\n1,2\n"[..]).unwrap_err();
    assert_eq!(e.to_string(), "invalid JSON at byte offset 0: expected `{` or `[` to start JSON, found `o`");
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert!(check_header(&plan, &b"  [ ]"[..]).unwrap().is_valid());
    assert!(matches!(check_header(&plan, &b"  "[..]), Err(ProcessError::Empty)));
    let e = run(&events(), br#"[{"event_id":"e1"} {"event_id":"e2"}]"#).err().unwrap();
    assert_eq!(
        e.to_string(),
        "invalid JSON at byte offset 19: expected `,` or `]` between array elements, found `{`"
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_and_zstd_inputs_by_magic_bytes_and_suffix() {
    let csv = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sales.csv")).unwrap();
    let plain = run(&sales(), &csv).unwrap();
    let gz = gzip(&csv);
    let o = run_named(&sales(), &gz, Some("raw/sales.csv.gz")).unwrap();
    assert_eq!(o.results, plain.results);
    assert_eq!(o.summary, plain.summary);
    assert_eq!(run(&sales(), &gz).unwrap().results, plain.results, "by magic bytes alone");
    let plan = Plan::compile(&sales()).unwrap();
    assert!(check_header_named(&plan, &gz[..], Some("sales.csv.gz")).unwrap().is_valid());
    // zstd, compressed by the system's zstd when present, else a checked-in frame.
    let zst = std::process::Command::new("zstd")
        .args(["-q", "-c", concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sales.csv")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| o.stdout);
    if let Some(zst) = zst {
        let o = run_named(&sales(), &zst, Some("sales.csv.zst")).unwrap();
        assert_eq!(o.results, plain.results);
    }
    let frame: &[u8] = &[
        0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0x41, 0x00, 0x00, 0x61, 0x2c, 0x62, 0x0a, 0x31, 0x2c, 0x32, 0x0a,
        0x35, 0xe7, 0xca, 0xce,
    ];
    let mut cfg = sales();
    cfg.columns.clear();
    cfg.derived.clear();
    cfg.summary = Default::default();
    assert_eq!(String::from_utf8(run(&cfg, frame).unwrap().results).unwrap(), "{\"a\":\"1\",\"b\":\"2\"}\n");
    // The pipeline's source filter takes compressed names of its suffix.
    let source = &sales().source;
    assert!(
        source.matches("raw/sales.csv.gz") && source.matches("raw/x.csv.zst") && source.matches("raw/a.csv")
    );
    assert!(!source.matches("raw/sales.gz") && !source.matches("raw/sales.csv.bz2"));
}

#[test]
fn a_decompression_bomb_is_refused_with_bounded_output() {
    // 1 GiB of zeros is about 1 MB of gzip; the limit stops it after 10 MB.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(b"a,b\n").unwrap();
    let zeros = vec![b'0'; 1 << 20];
    for _ in 0..1024 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 2 << 20, "{}", bomb.len());
    let mut cfg = sales();
    cfg.columns.clear();
    cfg.derived.clear();
    cfg.summary = Default::default();
    cfg.format.max_record_bytes = 1 << 20;
    cfg.format.max_decompressed_bytes = Some(10 << 20);
    let plan = Plan::compile(&cfg).unwrap();
    let mut out = Vec::new();
    let e = process(&plan, &bomb[..], &mut out, std::io::sink(), None).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert!(e.to_string().contains("more than 10485760 bytes (format.max_decompressed_bytes"), "{e}");
    assert!(e.to_string().contains("compressed bytes"), "the figures: {e}");
    // Unset, the ceiling is the source's own size limit.
    let mut cfg = sales();
    cfg.source.max_size_bytes = 5 << 20;
    cfg.columns.clear();
    cfg.derived.clear();
    cfg.summary = Default::default();
    cfg.format.max_record_bytes = 1 << 20;
    let plan = Plan::compile(&cfg).unwrap();
    let e = process(&plan, &bomb[..], std::io::sink(), std::io::sink(), None).unwrap_err();
    assert!(e.to_string().contains("more than 5242880 bytes"), "{e}");
    // Corrupt compressed data is permanent too.
    let e = run_named(&sales(), b"\x1f\x8b\x08\x00garbage", Some("x.csv.gz")).err().unwrap();
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
    assert!(e.to_string().starts_with("unreadable input: gzip stream is corrupt"), "{e}");
    let mut cfg = sales();
    cfg.format.compression = Compression::None;
    let e = run(&cfg, &gzip(b"order_id\n")).err().unwrap();
    assert!(e.to_string().contains("not valid UTF-8"), "{e}");
}

#[test]
fn latin1_and_windows_1252_when_configured_else_utf8_errors_name_the_offset() {
    let data =
        b"order_id,customer_name,product,quantity,price,date\nA,Jos\xe9 \x80,Widget,1,2.5,2024-01-01\n";
    let mut cfg = sales();
    cfg.format.encoding = "windows-1252".into();
    let o = run(&cfg, data).unwrap();
    assert_eq!(o.rows()[0]["customer_name"], "José €");
    cfg.format.encoding = "latin-1".into();
    assert_eq!(run(&cfg, data).unwrap().rows()[0]["customer_name"], "José €");
    let o = run(&sales(), data).unwrap();
    assert_eq!(o.summary.invalid_rows, 1);
    assert_eq!(o.errors[0]["reason"], "not valid UTF-8 at byte offset 56 of the file");
    assert_eq!(data[56], 0xe9);
    cfg.format.encoding = "ebcdic-ish".into();
    let problems = Plan::compile(&cfg).unwrap_err().problems;
    assert!(problems[0].to_string().starts_with("format.encoding: unknown encoding"), "{problems:?}");
}

#[test]
fn csv_options_tab_semicolon_quote_and_headerless() {
    let mut cfg = sales();
    cfg.format.delimiter = ';';
    cfg.format.quote = '\'';
    let data =
        "\u{feff}order_id;customer_name;product;quantity;price;date\r\nA;'Doe; ''J''';W;2;1.5;2024-01-01\r\n";
    let o = run(&cfg, data.as_bytes()).unwrap();
    assert_eq!(o.rows()[0]["customer_name"], "Doe; 'J'");
    cfg.format.delimiter = '\t';
    cfg.format.has_header = false;
    let o = run(&cfg, b"A\tAnn\tW\t2\t1.5\t2024-01-01\n").unwrap();
    assert_eq!(o.rows()[0]["order_id"], "A");
    assert_eq!(o.rows()[0]["revenue"], 3.0);
}

#[test]
fn the_json_document_output_is_the_seeds_shape() {
    let mut cfg = sales();
    cfg.output.format = OutputFormat::Json;
    let csv = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/bad_rows.csv")).unwrap();
    let o = run_named(&cfg, &csv, Some("raw/bad_rows.csv")).unwrap();
    let doc: Value = serde_json::from_slice(&o.results).unwrap();
    assert_eq!(doc["source_file"], "raw/bad_rows.csv");
    assert!(doc["processed_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(doc["total_records"], o.summary.total_rows);
    assert_eq!(doc["valid_records"], o.summary.valid_rows);
    assert_eq!(doc["invalid_records"], o.summary.invalid_rows);
    assert_eq!(doc["data"].as_array().unwrap().len() as u64, o.summary.valid_rows);
    let mut nd = sales();
    nd.output.format = OutputFormat::Ndjson;
    assert_eq!(doc["data"].as_array().unwrap(), &run(&nd, &csv).unwrap().rows());
    // No rows: an empty array.
    let o = run(&cfg, b"order_id,customer_name,product,quantity,price,date\n").unwrap();
    let doc: Value = serde_json::from_slice(&o.results).unwrap();
    assert_eq!(doc["data"], json!([]));
    assert_eq!(doc["total_records"], 0);
}

#[test]
fn unknown_columns_kept_or_dropped_in_csv_and_json() {
    let mut cfg = sales();
    cfg.validation.unknown_columns = UnknownColumns::Drop;
    let data = b"order_id,Note,customer_name,product,quantity,price,date\nA,hi,Ann,W,2,1.5,2024-01-01\n";
    let o = run(&cfg, data).unwrap();
    let row = &o.rows()[0];
    assert!(row.get("note").is_none());
    assert!(o.results.starts_with(b"{\"order_id\":\"A\",\"customer_name\""));
    let mut ev = events();
    ev.validation.unknown_columns = UnknownColumns::Drop;
    let o = run(&ev, EVENTS.as_bytes()).unwrap();
    assert!(o.rows()[2].get("ua").is_none() && o.rows()[0].get("user.plan").is_none());
}

#[test]
fn overflowing_numbers_impossible_dates_and_nan_in_json() {
    let mut cfg = sales();
    cfg.format.kind = FormatKind::Json;
    let data = r#"[
{"order_id":"A","customer_name":"Ann","product":"W","quantity":99999999999999999999,"price":1,"date":"2024-01-01"},
{"order_id":"B","customer_name":"Bob","product":"W","quantity":1,"price":"NaN","date":"2024-01-01"},
{"order_id":"C","customer_name":"Cy","product":"W","quantity":1,"price":1e999,"date":"2024-01-01"},
{"order_id":"D","customer_name":"Di","product":"W","quantity":1,"price":"-inf","date":"2024-02-30"},
{"order_id":"E","customer_name":"Ed","product":"W","quantity":1.5,"price":2,"date":"2024-01-01"},
{"order_id":"F","customer_name":"Fy","product":"W","quantity":"3","price":2,"date":"2024-01-01"}
]"#;
    let o = run(&cfg, data.as_bytes()).unwrap();
    let got: Vec<(u64, String)> = o
        .errors
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["reason"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, "integer out of range: \"99999999999999999999\"".to_string()),
            (3, "not a finite number: \"NaN\"".to_string()),
            (4, "not a finite number: \"1e999\"".to_string()),
            (5, "not a finite number: \"-inf\"".to_string()),
            (6, "not an integer: \"1.5\"".to_string()),
        ]
    );
    assert_eq!(o.errors[3]["errors"][1]["reason"], "not a valid date (expected %Y-%m-%d): \"2024-02-30\"");
    assert_eq!(o.rows()[0]["quantity"], 3);
}

#[test]
fn deeply_nested_json_is_one_invalid_row() {
    let mut data = br#"[{"event_id":"e0","type":"view","timestamp":"2024-01-01T00:00:00Z","x":"#.to_vec();
    data.extend(std::iter::repeat_n(b'[', 1_000_000));
    data.extend(std::iter::repeat_n(b']', 1_000_000));
    data.extend_from_slice(br#"},{"event_id":"e1","type":"view","timestamp":"2024-01-01T00:00:00Z"}]"#);
    let mut cfg = events();
    cfg.format.max_record_bytes = 4 << 20;
    let o = run(&cfg, &data).unwrap();
    assert_eq!((o.summary.total_rows, o.summary.valid_rows), (2, 1));
    let reason = o.errors[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("invalid JSON: nested more than 127 levels at byte offset"), "{reason}");
}

/// A reader of `[{"event_id": "xxxx…` that is `len` bytes long, produced lazily.
struct HugeLine {
    head: &'static [u8],
    len: u64,
    pos: u64,
    tail: &'static [u8],
}

impl Read for HugeLine {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let total = self.len + self.head.len() as u64 + self.tail.len() as u64;
        let mut n = 0;
        while n < buf.len() && self.pos < total {
            let p = self.pos;
            if p < self.head.len() as u64 {
                buf[n] = self.head[p as usize];
                n += 1;
                self.pos += 1;
            } else if p < self.head.len() as u64 + self.len {
                let k = (buf.len() - n).min((self.head.len() as u64 + self.len - p) as usize);
                buf[n..n + k].fill(b'x');
                n += k;
                self.pos += k as u64;
            } else {
                buf[n] = self.tail[(p - self.head.len() as u64 - self.len) as usize];
                n += 1;
                self.pos += 1;
            }
        }
        Ok(n)
    }
}

#[test]
fn a_1_gb_single_line_json_is_streamed_not_loaded() {
    let input = HugeLine {
        head: br#"[{"event_id":""#,
        len: 1 << 30,
        pos: 0,
        tail: br#"","type":"view","timestamp":"2024-01-01T00:00:00Z"},{"event_id":"e2","type":"view","timestamp":"2024-01-01T00:00:00Z"}]"#,
    };
    let plan = Plan::compile(&events()).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let s = process(&plan, input, &mut out, &mut err, None).unwrap();
    assert_eq!((s.total_rows, s.valid_rows), (2, 1));
    let e: Value = serde_json::from_slice(err.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(e["reason"], format!("record is {} bytes; the limit is {}", (1u64 << 30) + 64, 16 << 20));
}

/// Issue #14: a file whose outputs outgrow it (here by rows, as a decompressed one would) is
/// rejected once results and error report pass `output.max_bytes`, with the figure.
#[test]
fn outputs_past_their_limit_reject_the_file() {
    let mut data = b"order_id,customer_name,product,quantity,price,date\n".to_vec();
    for i in 0..20_000 {
        data.extend_from_slice(format!("O{i},Customer,Widget,1,1.5,2024-01-01\n").as_bytes());
        data.extend_from_slice(format!("X{i},Customer,Widget,bad,1.5,2024-01-01\n").as_bytes());
    }
    for threads in [1, 2] {
        let mut cfg = sales();
        cfg.output.threads = threads;
        cfg.output.max_bytes = Some(100_000);
        let plan = Plan::compile(&cfg).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let e = process(&plan, &data[..], &mut out, &mut err, None).unwrap_err();
        assert_eq!(e.class(), ErrorClass::Permanent);
        assert!(e.to_string().contains("pass 100000 bytes (output.max_bytes"), "{e}");
        assert!(out.len() + err.len() <= 100_000, "{threads}: {} + {}", out.len(), err.len());
        // Unset, it is four times the source limit.
        let mut cfg = sales();
        cfg.output.threads = threads;
        cfg.source.max_size_bytes = 100_000;
        let plan = Plan::compile(&cfg).unwrap();
        let e = process(&plan, &data[..], std::io::sink(), std::io::sink(), None).unwrap_err();
        assert!(e.to_string().contains("pass 400000 bytes"), "{e}");
    }
}
