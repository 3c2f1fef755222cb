//! Every kind of bad input gets a specific outcome: a permanent error for a bad file, an exact
//! line/field/reason for a bad row, and processing carries on after bad rows.

use serde_json::Value;
use weir_core::config::{ColumnConfig, ColumnType, DerivedConfig, GroupByConfig, PipelineConfig};
use weir_core::{ErrorClass, Summary};
use weir_process::{check_header, process, Plan, ProcessError};

const HEADER: &str = "order_id,customer_name,product,quantity,price,date\n";

/// The bundled sales pipeline as shipped (by default a file needs a data row and at most half
/// of its rows invalid).
fn bundled_sales() -> PipelineConfig {
    weir_core::Config::bundled().pipelines.remove(0)
}

/// The bundled sales pipeline accepting any share of invalid rows and files without rows: the
/// tests using it are about each row's outcome; the file-level rules have their own tests.
fn sales() -> PipelineConfig {
    let mut cfg = bundled_sales();
    cfg.validation.max_invalid_ratio = 1.0;
    cfg.validation.min_rows = 0;
    cfg
}

struct Out {
    summary: Summary,
    rows: Vec<Value>,
    errors: Vec<Value>,
}

fn try_run(cfg: &PipelineConfig, data: &[u8]) -> Result<Out, ProcessError> {
    let plan = Plan::compile(cfg).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let summary = process(&plan, data, &mut out, &mut err, None)?;
    let lines = |b: Vec<u8>| -> Vec<Value> {
        String::from_utf8(b).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    Ok(Out { summary, rows: lines(out), errors: lines(err) })
}

fn run(data: &[u8]) -> Out {
    try_run(&sales(), data).unwrap()
}

/// `(line, field, reason)` of each reported invalid row.
fn reasons(o: &Out) -> Vec<(u64, String, String)> {
    o.errors
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn r(line: u64, field: &str, reason: &str) -> (u64, String, String) {
    (line, field.to_string(), reason.to_string())
}

#[test]
fn empty_file_is_a_permanent_error() {
    for data in [&b""[..], b"\n\n", b"\xEF\xBB\xBF"] {
        let e = try_run(&sales(), data).err().unwrap();
        assert_eq!(e.to_string(), "file is empty: expected a header line");
        assert_eq!(e.class(), ErrorClass::Permanent);
    }
    let plan = Plan::compile(&sales()).unwrap();
    assert!(matches!(check_header(&plan, &b""[..]), Err(ProcessError::Empty)));
}

#[test]
fn header_only_is_rejected_by_default_and_zero_rows_with_min_rows_0() {
    for threads in [1, 2] {
        let mut cfg = bundled_sales();
        cfg.output.threads = threads;
        let e = try_run(&cfg, HEADER.as_bytes()).err().unwrap();
        assert!(matches!(e, ProcessError::TooFewRows { rows: 0, min_rows: 1 }), "{e:?}");
        assert_eq!(e.to_string(), "the file has no data rows (validation.min_rows is 1); nothing to process");
        assert_eq!(e.class(), ErrorClass::Permanent);
        cfg.validation.min_rows = 3;
        let two = format!("{HEADER}A,Ann,W,1,1.0,2024-01-01\nB,Bob,W,1,1.0,2024-01-01\n");
        let e = try_run(&cfg, two.as_bytes()).err().unwrap();
        assert_eq!(
            e.to_string(),
            "the file has only 2 data rows (validation.min_rows is 3); nothing to process"
        );
    }
    let o = run(HEADER.as_bytes());
    assert_eq!((o.summary.total_rows, o.summary.valid_rows, o.summary.success_rate), (0, 0, 100.0));
    assert!(o.rows.is_empty() && o.errors.is_empty());
    assert_eq!(o.summary.numeric["revenue"].count, 0);
}

#[test]
fn a_mostly_invalid_file_is_rejected_by_default_and_half_invalid_is_not() {
    let good = "G,Ann,W,1,1.0,2024-01-01\n";
    let bad = "B,Bob,W,many,1.0,2024-01-01\n";
    for threads in [1, 2] {
        let mut cfg = bundled_sales();
        cfg.output.threads = threads;
        let mostly_bad = format!("{HEADER}{good}{bad}{bad}");
        let e = try_run(&cfg, mostly_bad.as_bytes()).err().unwrap();
        assert_eq!(
            e.to_string(),
            "2 of 3 rows are invalid (66.67 %), more than validation.max_invalid_ratio allows (50.00 %)"
        );
        assert_eq!(e.class(), ErrorClass::Permanent);
        let half = format!("{HEADER}{good}{bad}");
        let o = try_run(&cfg, half.as_bytes()).unwrap();
        assert_eq!((o.summary.valid_rows, o.summary.invalid_rows), (1, 1), "{threads} thread(s)");
        cfg.validation.max_invalid_ratio = 1.0;
        let all_bad = format!("{HEADER}{bad}{bad}");
        assert_eq!(try_run(&cfg, all_bad.as_bytes()).unwrap().summary.invalid_rows, 2);
    }
}

#[test]
fn non_utf8_bytes_make_an_invalid_row_with_the_file_offset() {
    let mut data = HEADER.as_bytes().to_vec();
    data.extend_from_slice(
        b"ORD-1,Caf\xE9 Bob,Widget,2,1.50,2024-01-01\nORD-2,Ann,Widget,1,1.50,2024-01-01\n",
    );
    let offset = data.iter().position(|&b| b == 0xE9).unwrap();
    let o = run(&data);
    assert_eq!(
        reasons(&o),
        [r(2, "customer_name", &format!("not valid UTF-8 at byte offset {offset} of the file"))]
    );
    assert_eq!(o.errors[0]["values"]["customer_name"], "Caf\u{FFFD} Bob");
    assert_eq!(o.summary.valid_rows, 1);

    let e = try_run(&sales(), b"order_id,\xFFname\n").err().unwrap();
    assert_eq!(e.to_string(), "header is not valid UTF-8 at byte offset 9 of the file");
    assert_eq!(e.class(), ErrorClass::Permanent);
}

#[test]
fn ragged_rows_are_invalid() {
    let data = format!(
        "{HEADER}ORD-1,Ann,Widget,2,1.5,2024-01-01,extra\nORD-2,Bob,Widget\nORD-3,Cy,Gizmo,1,2.0,2024-01-02\n"
    );
    let o = run(data.as_bytes());
    assert_eq!(
        reasons(&o),
        [r(2, "(row)", "expected 6 fields, found 7"), r(3, "(row)", "expected 6 fields, found 3")]
    );
    assert_eq!(o.errors[0]["values"]["(field 7)"], "extra");
    assert_eq!(o.errors[1]["values"].as_object().unwrap().len(), 3);
    assert_eq!(o.summary.errors_by_field["(row)"], 2);
    assert_eq!((o.summary.total_rows, o.summary.valid_rows), (3, 1));

    // A million delimiters: counted exactly, described by the first few fields.
    let mut data = HEADER.as_bytes().to_vec();
    data.extend(std::iter::repeat_n(b',', 1_000_000));
    data.extend_from_slice(b"\nORD-3,Cy,Gizmo,1,2.0,2024-01-02\n");
    let o = run(&data);
    assert_eq!(reasons(&o), [r(2, "(row)", "expected 6 fields, found 1000001")]);
    assert_eq!(o.errors[0]["values"].as_object().unwrap().len(), 6 + 16);
    assert_eq!(o.summary.valid_rows, 1);
}

#[test]
fn unterminated_quote_names_the_line_it_opened_on() {
    let data = format!("{HEADER}ORD-1,Ann,Widget,2,1.5,2024-01-01\nORD-2,\"Bob\nstill,open");
    let e = try_run(&sales(), data.as_bytes()).err().unwrap();
    assert!(matches!(e, ProcessError::UnterminatedQuote { line: 3 }), "{e:?}");
    assert_eq!(e.to_string(), "unterminated quoted field: the quote opened on line 3 is never closed");
    assert_eq!(e.class(), ErrorClass::Permanent);
    // The brief's minimal case.
    let e = try_run(&sales(), format!("{HEADER}a,\"b").as_bytes()).err().unwrap();
    assert!(matches!(e, ProcessError::UnterminatedQuote { line: 2 }));
}

#[test]
fn a_50_mb_field_is_an_invalid_row_and_later_rows_still_validate() {
    let mut data = format!("{HEADER}ORD-1,Ann,Widget,2,1.5,2024-01-01\nORD-2,").into_bytes();
    data.extend(std::iter::repeat_n(b'x', 50 << 20));
    data.extend_from_slice(
        b",Widget,1,1.0,2024-01-01\nORD-3,Cy,Gizmo,two,2.0,2024-01-02\nORD-4,Di,Gizmo,3,2.0,2024-01-02\n",
    );
    let o = run(&data);
    let bytes = (50 << 20) + "ORD-2,".len() + ",Widget,1,1.0,2024-01-01".len();
    assert_eq!(
        reasons(&o),
        [
            r(3, "(row)", &format!("record is {bytes} bytes; the limit is {}", 16 << 20)),
            r(4, "quantity", "not an integer: \"two\""),
        ]
    );
    assert_eq!((o.summary.total_rows, o.summary.valid_rows), (4, 2));
    assert_eq!(o.rows[1]["order_id"], "ORD-4");
}

#[test]
fn duplicate_column_names_are_a_header_mismatch() {
    let data = "order_id,customer_name,product,quantity,price,date,Product \nx,y,z,1,1,2024-01-01,q\n";
    match try_run(&sales(), data.as_bytes()) {
        Err(e @ ProcessError::HeaderMismatch(_)) => {
            assert_eq!(e.to_string(), "header does not match the schema: duplicate column names: product");
            assert_eq!(e.class(), ErrorClass::Permanent);
        }
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn crlf_and_bom_just_work() {
    let data = "\u{FEFF}Order ID,Customer Name,Product,Quantity,Price,Date\r\nORD-1,Ann,Widget,2,1.5,2024-01-01\r\nORD-2,\"Bob\r\nLee\",Widget,x,1.5,2024-01-01\r\nORD-3,Cy,Gizmo,1,2.0,2024-01-02\r\n";
    let o = run(data.as_bytes());
    assert_eq!((o.summary.total_rows, o.summary.valid_rows), (3, 2));
    assert_eq!(o.rows[0]["order_id"], "ORD-1");
    assert_eq!(o.rows[0]["date"], "2024-01-01");
    assert_eq!(reasons(&o), [r(3, "quantity", "not an integer: \"x\"")]);
    assert_eq!(o.errors[0]["values"]["Customer Name"], "Bob\r\nLee");
    assert_eq!(o.errors[0]["values"]["Order ID"], "ORD-2");
}

#[test]
fn every_type_has_a_specific_reason() {
    let mut cfg = sales();
    cfg.columns.push(ColumnConfig::new("active", ColumnType::Boolean));
    cfg.columns.push(ColumnConfig::new("email", ColumnType::Email));
    let data = format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        "order_id,customer_name,product,quantity,price,date,active,email",
        "A,Ann,W,99999999999999999999,1,2024-01-01,yes,a@b.co",
        "B,Bob,W,1,NaN,2024-01-01,no,a@b.co",
        "C,Cy,W,1,abc,2023-02-29,TRUE,a@b.co",
        "D,Di,W,1,inf,2024-01-01,maybe,a@b.co",
        "E,Ed,W,1,1,2024-01-01,0,not-an-email",
        "F,,W,,,,,",
        "G,Gil,W, 3 ,1e2,2024-02-29,,",
        "H,Hu,W,-1,-0.5,2024-12-31,1,x.y+z@mail.example.org",
    );
    let o = try_run(&cfg, data.as_bytes()).unwrap();
    assert_eq!(
        reasons(&o),
        [
            r(2, "quantity", "integer out of range: \"99999999999999999999\""),
            r(3, "price", "not a finite number: \"NaN\""),
            r(4, "price", "not a number: \"abc\""),
            r(5, "price", "not a finite number: \"inf\""),
            r(6, "email", "not a valid email address: \"not-an-email\""),
            r(7, "customer_name", "required field is empty"),
        ]
    );
    let errs: Vec<(&str, &str)> = o.errors[2]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errs,
        [
            ("price", "not a number: \"abc\""),
            ("date", "not a valid date (expected %Y-%m-%d): \"2023-02-29\"")
        ]
    );
    assert_eq!(
        o.errors[3]["errors"][1]["reason"],
        "not a boolean (expected true/false, 1/0 or yes/no): \"maybe\""
    );
    assert_eq!(o.errors[5]["errors"].as_array().unwrap().len(), 4);
    // Valid rows are typed; empty optional fields are null.
    assert_eq!(o.rows.len(), 2);
    assert_eq!(o.rows[0]["quantity"], 3);
    assert_eq!(o.rows[0]["price"], 100.0);
    assert_eq!(o.rows[0]["active"], Value::Null);
    assert_eq!(o.rows[0]["email"], Value::Null);
    assert_eq!(o.rows[1]["active"], true);
    assert_eq!(o.rows[1]["revenue"], 0.5);
    let by_field: Vec<(&str, u64)> =
        o.summary.errors_by_field.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        by_field,
        [("active", 1), ("customer_name", 1), ("date", 2), ("email", 1), ("price", 4), ("quantity", 2)]
    );
}

#[test]
fn derived_field_errors_and_integer_results() {
    let mut cfg = sales();
    cfg.derived.push(DerivedConfig { name: "unit_share".into(), expr: "price / (quantity - 2)".into() });
    cfg.derived.push(DerivedConfig { name: "double_qty".into(), expr: "quantity * 2".into() });
    let data = format!(
        "{HEADER}A,Ann,W,2,1.5,2024-01-01\nB,Bob,W,4,1.5,2024-01-01\nC,Cy,W,4611686018427387904,1,2024-01-01\n"
    );
    let o = try_run(&cfg, data.as_bytes()).unwrap();
    assert_eq!(
        reasons(&o),
        [
            r(2, "unit_share", "derived field `unit_share`: division by zero"),
            r(4, "double_qty", "derived field `double_qty`: integer overflow"),
        ]
    );
    assert_eq!(o.rows.len(), 1);
    assert_eq!(o.rows[0]["unit_share"], 0.75);
    assert_eq!(o.rows[0]["double_qty"], 8);
    assert!(o.rows[0]["double_qty"].is_i64());
    assert_eq!(o.summary.numeric["double_qty"].sum, 8.0);
}

#[test]
fn optional_columns_may_be_missing_and_unknown_columns_are_kept() {
    let mut cfg = sales();
    cfg.columns[5].required = false; // date
    let data =
        "product,order_id,Customer Name,quantity,price,Note\nW,A,Ann,2,1.5,hello \"x\"\nW,B,Bob,1,2.5,\n";
    let o = try_run(&cfg, data.as_bytes()).unwrap();
    assert_eq!(o.summary.valid_rows, 2);
    assert_eq!(o.rows[0]["note"], "hello \"x\"");
    assert_eq!(o.rows[0]["date"], Value::Null);
    assert_eq!(o.rows[1]["note"], Value::Null);
    assert_eq!(o.rows[0]["revenue"], 3.0);
    let plan = Plan::compile(&cfg).unwrap();
    let mut text = Vec::new();
    process(&plan, data.as_bytes(), &mut text, std::io::sink(), None).unwrap();
    let first = String::from_utf8(text).unwrap().lines().next().unwrap().to_string();
    assert_eq!(
        first,
        r#"{"product":"W","order_id":"A","customer_name":"Ann","quantity":2,"price":1.5,"note":"hello \"x\"","date":null,"revenue":3.0}"#
    );
}

#[test]
fn caps_on_distinct_values_groups_and_reported_errors() {
    let mut cfg = sales();
    cfg.summary.max_distinct = 2;
    cfg.summary.top_n = 1;
    cfg.summary.max_errors_in_report = 2;
    cfg.summary.group_by =
        vec![GroupByConfig { by: "product".into(), fields: vec!["quantity".into()], max_groups: 2 }];
    let mut data = HEADER.to_string();
    for (i, p) in ["A", "B", "B", "C", "D", "A", "B"].iter().enumerate() {
        data.push_str(&format!("O{i},N,{p},{},1.0,2024-01-01\n", i + 1));
    }
    for i in 0..5 {
        data.push_str(&format!("X{i},N,A,bad,1.0,2024-01-01\n"));
    }
    let o = try_run(&cfg, data.as_bytes()).unwrap();
    let c = &o.summary.categorical["product"];
    assert_eq!((c.distinct, c.distinct_capped), (2, true));
    assert_eq!(c.top.len(), 1);
    assert_eq!((c.top[0].value.as_str(), c.top[0].count), ("B", 3));
    let g = &o.summary.group_by["product"];
    assert_eq!(g.keys().collect::<Vec<_>>(), ["(other)", "A", "B"]);
    assert_eq!(g["(other)"].count, 2);
    assert_eq!(g["(other)"].fields["quantity"].sum, 4.0 + 5.0);
    assert_eq!(g["A"].fields["quantity"].sum, 1.0 + 6.0);
    assert_eq!(g["A"].fields["quantity"].avg, 3.5);
    assert_eq!(o.errors.len(), 2);
    assert_eq!(o.summary.errors_reported, 2);
    assert_eq!(o.summary.invalid_rows, 5);
    assert_eq!(o.summary.errors_by_field["quantity"], 5);
}

#[test]
fn progress_reports_bytes_read() {
    let plan = Plan::compile(&sales()).unwrap();
    let mut data = HEADER.to_string();
    for i in 0..20_000 {
        data.push_str(&format!("O{i},Name,Widget,{},1.25,2024-01-01\n", i % 7));
    }
    let seen = std::cell::Cell::new(0u64);
    let calls = std::cell::Cell::new(0u32);
    let cb = |n: u64| {
        assert!(n >= seen.get());
        seen.set(n);
        calls.set(calls.get() + 1);
    };
    let s = process(&plan, data.as_bytes(), std::io::sink(), std::io::sink(), Some(&cb)).unwrap();
    assert_eq!(s.valid_rows, 20_000);
    assert_eq!(seen.get(), data.len() as u64);
    assert!(calls.get() >= 3);
}

#[test]
fn write_errors_are_transient() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "disk gone"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let plan = Plan::compile(&sales()).unwrap();
    let data = format!("{HEADER}A,Ann,W,2,1.5,2024-01-01\n");
    let e = process(&plan, data.as_bytes(), Broken, std::io::sink(), None).unwrap_err();
    assert!(matches!(e, ProcessError::Io(_)));
    assert_eq!(e.class(), ErrorClass::Transient);
}

#[test]
fn other_delimiters_date_formats_and_headerless_files() {
    let mut cfg = sales();
    cfg.format.delimiter = ';';
    cfg.format.has_header = false;
    cfg.columns[5].format = Some("%d/%m/%Y".into());
    let data = "A;Ann;W;2;1.5;29/02/2024\nB;Bob;W;2;1.5;30/02/2024\n";
    let o = try_run(&cfg, data.as_bytes()).unwrap();
    assert_eq!(o.summary.valid_rows, 1);
    assert_eq!(o.rows[0]["date"], "29/02/2024");
    assert_eq!(reasons(&o), [r(2, "date", "not a valid date (expected %d/%m/%Y): \"30/02/2024\"")]);
    // No header expected: an empty file is simply empty.
    assert_eq!(try_run(&cfg, b"").unwrap().summary.total_rows, 0);
}

/// `format.decimal_separator = ","`: `12,50` is twelve and a half in float and decimal columns
/// (written to the results with a point), a `.` still reads, and anything else is still no number.
#[test]
fn decimal_commas_read_as_points_when_configured() {
    let mut cfg = sales();
    cfg.format.delimiter = ';';
    cfg.format.decimal_separator = ',';
    cfg.columns[4].ty = ColumnType::Decimal;
    cfg.columns[4].scale = Some(2);
    cfg.columns.push(ColumnConfig::new("weight", ColumnType::Float));
    let data = "order_id;customer_name;product;quantity;price;date;weight\n\
                A;Ann;W;2;12,50;2024-01-02;1,5\n\
                B;Bob;W;1;3.25;2024-01-02;2\n\
                C;Cid;W;1;1,2,3;2024-01-02;x\n";
    let o = try_run(&cfg, data.as_bytes()).unwrap();
    assert_eq!((o.summary.valid_rows, o.summary.invalid_rows), (2, 1));
    assert_eq!((o.rows[0]["price"].as_f64(), o.rows[0]["weight"].as_f64()), (Some(12.5), Some(1.5)));
    assert_eq!(o.rows[0]["revenue"].as_f64(), Some(25.0));
    assert_eq!(o.rows[1]["price"].as_f64(), Some(3.25));
    assert_eq!(reasons(&o)[0].1, "price");
    // Without the setting a decimal comma is not a number.
    cfg.format.decimal_separator = '.';
    assert_eq!(try_run(&cfg, data.as_bytes()).unwrap().summary.valid_rows, 1);
    cfg.format.decimal_separator = 'x';
    let e = Plan::compile(&cfg).unwrap_err();
    assert!(e.to_string().contains("format.decimal_separator"), "{e}");
}

/// Issue #14: a CSV of 100,006 columns copied every field of each invalid row into the report.
#[test]
fn a_wide_invalid_row_is_described_by_its_schema_columns_and_a_few_others() {
    let extra = 100_000;
    let mut data = HEADER.trim_end().to_string();
    for i in 0..extra {
        data.push_str(&format!(",c{i}"));
    }
    data.push('\n');
    for i in 0..3 {
        data.push_str(&format!("W{i},Wide,Widget,not-a-number,1.0,2024-01-01{}\n", ",v".repeat(extra)));
    }
    let o = run(data.as_bytes());
    assert_eq!((o.summary.invalid_rows, o.errors.len()), (3, 3));
    let e = &o.errors[0];
    let values = e["values"].as_object().unwrap();
    assert_eq!(values.len(), 6 + 16, "the schema's 6 columns and 16 others: {e}");
    assert_eq!(values["quantity"], "not-a-number");
    assert_eq!(e["values_omitted"], extra - 16);
    assert!(serde_json::to_string(e).unwrap().len() < 2_000);
}

#[test]
fn the_error_report_stops_at_its_byte_limit_and_counts_the_rest() {
    for threads in [1, 2] {
        let mut cfg = sales();
        cfg.output.threads = threads;
        cfg.summary.max_error_report_bytes = 10_000;
        let mut data = HEADER.to_string();
        for i in 0..20_000 {
            data.push_str(&format!("X{i},N,A,bad,1.0,2024-01-01\n"));
        }
        let plan = Plan::compile(&cfg).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let summary = process(&plan, data.as_bytes(), &mut out, &mut err, None).unwrap();
        assert!(err.len() <= 10_000 && err.len() > 9_000, "{threads} thread(s): {} bytes", err.len());
        assert!(err.ends_with(b"\n"), "whole lines only");
        let lines = err.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!((summary.errors_reported, summary.invalid_rows), (lines, 20_000), "{threads} thread(s)");
    }
}
