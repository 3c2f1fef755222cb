//! The schema language, feature by feature, through a whole pass: each type, each rule, row-level
//! options, derived text and numbers, and the configuration errors `weir check` prints.

use serde_json::{json, Value};
use weir_core::config::{ColumnConfig, ColumnType, DerivedConfig, PipelineConfig, Scalar};
use weir_core::{ErrorClass, Summary};
use weir_process::{process, Plan, ProcessError};

fn base(columns: Vec<ColumnConfig>) -> PipelineConfig {
    let mut p = weir_core::Config::bundled().pipelines.remove(0);
    p.columns = columns;
    p.derived.clear();
    p.summary = Default::default();
    // These tests are about each rule's row outcome (many rows break a rule on purpose); the
    // file-level share of invalid rows has its own test below.
    p.validation.max_invalid_ratio = 1.0;
    p
}

struct Out {
    summary: Summary,
    rows: Vec<Value>,
    /// `(line, field, reason)`
    errors: Vec<(u64, String, String)>,
}

fn run(cfg: &PipelineConfig, data: &str) -> Result<Out, ProcessError> {
    let plan = Plan::compile(cfg).unwrap_or_else(|e| panic!("{e}"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let summary = process(&plan, data.as_bytes(), &mut out, &mut err, None)?;
    let parse = |b: Vec<u8>| -> Vec<Value> {
        String::from_utf8(b).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let errors = parse(err)
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    Ok(Out { summary, rows: parse(out), errors })
}

fn e(line: u64, field: &str, reason: &str) -> (u64, String, String) {
    (line, field.into(), reason.into())
}

fn col(name: &str, ty: ColumnType, f: impl FnOnce(&mut ColumnConfig)) -> ColumnConfig {
    let mut c = ColumnConfig::new(name, ty);
    f(&mut c);
    c
}

#[test]
fn decimals_are_exact_with_precision_and_scale() {
    let cfg = base(vec![col("amount", ColumnType::Decimal, |c| {
        c.precision = Some(6);
        c.scale = Some(2);
    })]);
    let o = run(&cfg, "amount\n19.99\n-0.5\n7\n1.234\n123456.7\nabc\n1.50\n").unwrap();
    assert_eq!(
        o.rows,
        vec![
            json!({"amount": 19.99}),
            json!({"amount": -0.5}),
            json!({"amount": 7.0}),
            json!({"amount": 1.5})
        ]
    );
    assert_eq!(
        o.errors,
        vec![
            e(5, "amount", "more than 2 digits after the point: \"1.234\""),
            e(6, "amount", "more than 4 digits before the point: \"123456.7\""),
            e(7, "amount", "not a decimal number: \"abc\""),
        ]
    );
    assert_eq!(o.summary.numeric["amount"].sum, 27.99);
}

#[test]
fn datetimes_with_the_default_and_a_configured_format() {
    let cfg = base(vec![
        col("at", ColumnType::Datetime, |_| {}),
        col("local", ColumnType::Datetime, |c| c.format = Some("%d/%m/%Y %H:%M".into())),
        col("day", ColumnType::Date, |c| c.format = Some("%d.%m.%Y".into())),
    ]);
    let o = run(
        &cfg,
        "at,local,day\n2024-01-15T10:30:00Z,15/01/2024 10:30,29.02.2024\n2024-01-15 10:30:00,31/02/2024 10:30,30.02.2024\n",
    )
    .unwrap();
    assert_eq!(
        o.rows,
        vec![json!({"at": "2024-01-15T10:30:00Z", "local": "15/01/2024 10:30", "day": "29.02.2024"})]
    );
    assert_eq!(
        o.errors,
        vec![e(3, "local", "not a valid datetime (expected %d/%m/%Y %H:%M): \"31/02/2024 10:30\"")]
    );
}

#[test]
fn enums_booleans_and_emails() {
    let cfg = base(vec![
        col("status", ColumnType::Enum, |c| c.values = vec!["new".into(), "paid".into()]),
        col("ok", ColumnType::Boolean, |_| {}),
        col("mail", ColumnType::Email, |_| {}),
    ]);
    let o = run(&cfg, "status,ok,mail\npaid,Yes,a@b.co\nPAID,no,a@b.co\nnew,maybe,a@b\n").unwrap();
    assert_eq!(o.rows, vec![json!({"status": "paid", "ok": true, "mail": "a@b.co"})]);
    assert_eq!(
        o.errors,
        vec![
            e(3, "status", "\"PAID\" is not one of new, paid"),
            e(4, "ok", "not a boolean (expected true/false, 1/0 or yes/no): \"maybe\""),
        ]
    );
}

#[test]
fn required_nullable_and_defaults() {
    let cfg = base(vec![
        col("id", ColumnType::String, |c| c.required = true),
        // In the header, may be empty.
        col("note", ColumnType::String, |c| {
            c.required = true;
            c.nullable = Some(true);
        }),
        // May be absent from the header, never empty when present.
        col("code", ColumnType::String, |c| c.nullable = Some(false)),
        col("qty", ColumnType::Integer, |c| c.default = Some(Scalar::Int(1))),
        // Absent from the file: its default on every row.
        col("currency", ColumnType::String, |c| c.default = Some(Scalar::Text("THB".into()))),
    ]);
    let o = run(&cfg, "id,note,code,qty\na,,x,\n,,x,2\nc,n,,3\n").unwrap();
    assert_eq!(o.rows, vec![json!({"id": "a", "note": null, "code": "x", "qty": 1, "currency": "THB"})]);
    assert_eq!(
        o.errors,
        vec![
            e(3, "id", "required field is empty"),
            e(4, "code", "field is empty and the column is not nullable"),
        ]
    );
    let e = run(&cfg, "note,code\n,x\n").err().unwrap();
    assert_eq!(e.to_string(), "header does not match the schema: missing required columns: id");
}

#[test]
fn min_max_on_numbers_and_dates_and_lengths_and_regex() {
    let cfg = base(vec![
        col("qty", ColumnType::Integer, |c| {
            c.min = Some(Scalar::Int(1));
            c.max = Some(Scalar::Int(100));
        }),
        col("price", ColumnType::Float, |c| c.min = Some(Scalar::Float(0.01))),
        col("day", ColumnType::Date, |c| c.min = Some(Scalar::Text("2024-01-01".into()))),
        col("sku", ColumnType::String, |c| {
            c.regex = Some(r"[A-Z]{3}-\d{2,}".into());
            c.max_length = Some(8);
        }),
        col("name", ColumnType::String, |c| c.min_length = Some(2)),
    ]);
    let data = "qty,price,day,sku,name\n\
                5,1.5,2024-06-01,ABC-12,Ann\n\
                0,1.5,2024-06-01,ABC-12,Ann\n\
                101,0,2023-12-31,abc-12,A\n\
                5,1,2024-06-01,ABC-123456,Ann\n\
                5,1,2024-06-01,ABC-1,Ann\n\
                5,1,2024-06-01, ABC-12 ,สม\n";
    let o = run(&cfg, data).unwrap();
    assert_eq!(o.summary.valid_rows, 2);
    assert_eq!(
        o.errors,
        vec![
            e(3, "qty", "\"0\" is less than the minimum 1"),
            e(4, "qty", "\"101\" is more than the maximum 100"),
            e(5, "sku", "\"ABC-123456\" is 10 characters; the maximum is 8"),
            e(6, "sku", "\"ABC-1\" does not match the pattern ^(?:[A-Z]{3}-\\d{2,})$"),
        ]
    );
    // Every problem of a row is in the report, not just the first.
    let plan = Plan::compile(&cfg).unwrap();
    let mut err = Vec::new();
    process(&plan, data.as_bytes(), std::io::sink(), &mut err, None).unwrap();
    let second: Value = serde_json::from_slice(err.split(|&b| b == b'\n').nth(1).unwrap()).unwrap();
    let fields: Vec<&str> =
        second["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["qty", "price", "day", "sku", "name"]);
}

#[test]
fn unique_columns_catch_duplicates_with_the_first_line() {
    let cfg = base(vec![
        col("id", ColumnType::Integer, |c| c.unique = true),
        col("email", ColumnType::Email, |c| c.unique = true),
    ]);
    let o = run(&cfg, "id,email\n1,a@x.io\n01,b@x.io\n2,a@x.io\nx,c@x.io\n3,c@x.io\n4,\n5,\n").unwrap();
    assert_eq!(o.summary.valid_rows, 4);
    assert_eq!(
        o.errors,
        vec![
            e(3, "id", "duplicate value \"01\" (first on line 2)"),
            e(4, "email", "duplicate value \"a@x.io\" (first on line 2)"),
            e(5, "id", "not an integer: \"x\""),
        ]
    );
    // The invalid row 5 did not claim c@x.io: row 6 is valid.
    assert_eq!(o.rows[1], json!({"id": 3, "email": "c@x.io"}));
    assert!(o.summary.warnings.is_empty());
}

#[test]
fn unique_past_its_cap_is_a_warning_not_a_memory_blowup() {
    let mut cfg = base(vec![col("id", ColumnType::String, |c| c.unique = true)]);
    cfg.summary.max_unique_values = 3;
    let o = run(&cfg, "id\na\nb\nc\nd\na\nd\n").unwrap();
    assert_eq!(o.errors, vec![e(6, "id", "duplicate value \"a\" (first on line 2)")]);
    assert_eq!(o.summary.valid_rows, 5, "d's repeat is not seen past the cap");
    assert_eq!(
        o.summary.warnings,
        vec!["columns.id: more than summary.max_unique_values (3) distinct values; from line 5 on, only repeats of values seen before it were caught"]
    );
}

#[test]
fn too_many_invalid_rows_reject_the_file() {
    let mut cfg = base(vec![col("n", ColumnType::Integer, |_| {})]);
    cfg.validation.max_invalid_ratio = 0.25;
    assert_eq!(run(&cfg, "n\n1\n2\n3\nx\n").unwrap().summary.invalid_rows, 1);
    let err = run(&cfg, "n\n1\n2\nx\ny\n").err().unwrap();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert_eq!(
        err.to_string(),
        "2 of 4 rows are invalid (50.00 %), more than validation.max_invalid_ratio allows (25.00 %)"
    );
}

#[test]
fn derived_text_and_arithmetic() {
    let mut cfg = base(vec![
        col("first", ColumnType::String, |_| {}),
        col("last", ColumnType::String, |_| {}),
        col("qty", ColumnType::Integer, |_| {}),
        col("price", ColumnType::Decimal, |_| {}),
        col("day", ColumnType::Date, |_| {}),
    ]);
    for (name, expr) in [
        ("full", "concat(trim(first), ' ', upper(last))"),
        ("initials", "concat(substr(first, 1, 1), substr(last, 1, 1))"),
        ("name_len", "length(trim(first))"),
        ("total", "round(qty * price * 1.07, 2)"),
        ("year", "substr(day, 1, 4)"),
        ("who", "coalesce(lower(last), 'unknown')"),
    ] {
        cfg.derived.push(DerivedConfig { name: name.into(), expr: expr.into() });
    }
    let o =
        run(&cfg, "first,last,qty,price,day\n ann ,lee,3,9.99,2024-05-01\nbob,,1,1,2024-01-01\n").unwrap();
    assert_eq!(
        o.rows[0],
        json!({"first": " ann ", "last": "lee", "qty": 3, "price": 9.99, "day": "2024-05-01",
               "full": "ann LEE", "initials": " l", "name_len": 3, "total": 32.07, "year": "2024", "who": "lee"})
    );
    assert_eq!(o.rows[1]["full"], "bob ");
    assert_eq!(o.rows[1]["who"], "unknown");
    assert_eq!(o.summary.numeric["total"].count, 2);
    assert!(!o.summary.numeric.contains_key("full"));
}

#[test]
fn group_by_aggregates_count_sum_min_max_avg() {
    let mut cfg =
        base(vec![col("product", ColumnType::String, |_| {}), col("qty", ColumnType::Integer, |_| {})]);
    cfg.summary.group_by = vec![weir_core::config::GroupByConfig {
        by: "product".into(),
        fields: vec!["qty".into()],
        max_groups: 10,
    }];
    let o = run(&cfg, "product,qty\nW,1\nG,5\nW,3\n,2\n").unwrap();
    let g = &o.summary.group_by["product"];
    let w = &g["W"];
    assert_eq!(
        (w.count, w.fields["qty"].sum, w.fields["qty"].min, w.fields["qty"].max, w.fields["qty"].avg),
        (2, 4.0, 1.0, 3.0, 2.0)
    );
    assert_eq!(g["(null)"].count, 1);
}

#[test]
fn configuration_problems_are_all_reported_with_their_path() {
    let mut cfg = base(vec![
        col("a", ColumnType::Integer, |c| c.regex = Some("(".into())),
        col("b", ColumnType::Enum, |_| {}),
        col("c", ColumnType::Decimal, |c| c.precision = Some(40)),
        col("d", ColumnType::Date, |c| c.max = Some(Scalar::Int(3))),
        col("e", ColumnType::String, |c| c.default = Some(Scalar::Int(3))),
    ]);
    cfg.derived.push(DerivedConfig { name: "x".into(), expr: "upper(a)".into() });
    cfg.summary.unique = vec!["zz".into()];
    cfg.summary.range = vec!["yy".into()];
    let problems = Plan::compile(&cfg).unwrap_err().problems;
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "columns[0].regex",
            "columns[1].values",
            "columns[2].precision",
            "columns[3].max",
            "derived[0].expr",
            "summary.unique[0]",
            "summary.range[0]",
        ],
        "{problems:#?}"
    );
}

#[test]
fn a_decimal_default_is_a_number_to_expressions_and_stats() {
    let mut cfg = base(vec![
        col("qty", ColumnType::Integer, |_| {}),
        col("price", ColumnType::Decimal, |c| c.default = Some(Scalar::Text("1.50".into()))),
    ]);
    cfg.derived.push(DerivedConfig { name: "total".into(), expr: "qty * price".into() });
    let o = run(&cfg, "qty,price\n2,\n2,3.00\n").unwrap();
    assert_eq!(
        o.rows,
        vec![json!({"qty": 2, "price": 1.5, "total": 3.0}), json!({"qty": 2, "price": 3.0, "total": 6.0})]
    );
    let price = &o.summary.numeric["price"];
    assert_eq!((price.count, price.sum, price.min), (2, 4.5, 1.5));
    assert_eq!(o.summary.numeric["total"].sum, 9.0);
}
