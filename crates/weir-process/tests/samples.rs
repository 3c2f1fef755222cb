//! The bundled sample files with the bundled sales pipeline, checked against numbers computed
//! here independently from the raw CSV with the `csv` crate.

use std::collections::BTreeMap;

use serde_json::Value;
use weir_core::summary::round_to;
use weir_process::{check_header, process, Plan, ProcessError};

fn samples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples")
}

fn plan() -> Plan {
    Plan::compile(&weir_core::Config::bundled().pipelines[0]).unwrap()
}

/// A number as written in an NDJSON line, parsed with std (serde_json's default float parsing
/// is not always correctly rounded).
fn number(line: &str, key: &str) -> f64 {
    let at = line.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    let end = line[at..].find([',', '}']).unwrap();
    line[at..at + end].parse().unwrap()
}

fn run(file: &str) -> (Result<weir_core::Summary, ProcessError>, Vec<Value>, Vec<Value>) {
    let data = std::fs::read(samples().join(file)).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let r = process(&plan(), &data[..], &mut out, &mut err, None);
    let lines = |b: &[u8]| -> Vec<Value> {
        String::from_utf8(b.to_vec()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    (r, lines(&out), lines(&err))
}

#[test]
fn sales_summary_matches_an_independent_computation() {
    // Independent: plain csv crate, std parsing.
    let mut rdr = csv::Reader::from_path(samples().join("sales.csv")).unwrap();
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let q: i64 = rec[3].parse().unwrap();
        let p: f64 = rec[4].parse().unwrap();
        rows.push((rec[0].to_string(), rec[1].to_string(), rec[2].to_string(), q, p, rec[5].to_string()));
    }
    assert_eq!(rows.len(), 8);
    let revenue: Vec<f64> = rows.iter().map(|r| r.3 as f64 * r.4).collect();
    let mut per_product: BTreeMap<String, (u64, f64, i64)> = BTreeMap::new();
    for (r, rev) in rows.iter().zip(&revenue) {
        let e = per_product.entry(r.2.clone()).or_default();
        e.0 += 1;
        e.1 += rev;
        e.2 += r.3;
    }

    let (summary, out, err) = run("sales.csv");
    let s = summary.unwrap();
    assert_eq!((s.total_rows, s.valid_rows, s.invalid_rows, s.success_rate), (8, 8, 0, 100.0));
    assert!(err.is_empty());
    assert_eq!(s.errors_reported, 0);
    assert!(s.errors_by_field.is_empty());

    let rev = &s.numeric["revenue"];
    assert_eq!(rev.count, 8);
    assert_eq!(rev.sum, round_to(revenue.iter().sum::<f64>(), 9));
    assert_eq!(rev.min, revenue.iter().cloned().fold(f64::INFINITY, f64::min));
    assert_eq!(rev.max, revenue.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
    let qty = &s.numeric["quantity"];
    assert_eq!(qty.sum, rows.iter().map(|r| r.3).sum::<i64>() as f64);
    assert_eq!((qty.min, qty.max), (1.0, 10.0));
    assert_eq!(s.numeric["price"].sum, round_to(rows.iter().map(|r| r.4).sum::<f64>(), 9));
    assert_eq!(s.numeric.keys().collect::<Vec<_>>(), ["price", "quantity", "revenue"]);

    let products = &s.categorical["product"];
    assert_eq!(products.distinct, per_product.len() as u64);
    assert!(!products.distinct_capped);
    let top: Vec<(&str, u64)> = products.top.iter().map(|v| (v.value.as_str(), v.count)).collect();
    assert_eq!(top, [("Widget", 3), ("Gadget", 2), ("Gizmo", 2), ("Doohickey", 1)]);

    let groups = &s.group_by["product"];
    assert_eq!(groups.len(), per_product.len());
    for (product, (count, rev_sum, qty_sum)) in &per_product {
        let g = &groups[product];
        assert_eq!(g.count, *count, "{product}");
        assert_eq!(g.fields["revenue"].sum, round_to(*rev_sum, 9), "{product}");
        assert_eq!(g.fields["quantity"].sum, *qty_sum as f64, "{product}");
    }

    // The results: one object per row, normalized keys in file order, then revenue.
    assert_eq!(out.len(), 8);
    for (row, r) in out.iter().zip(&rows) {
        assert_eq!(row.as_object().unwrap().len(), 7);
        assert_eq!(row["order_id"], r.0.as_str());
        assert_eq!(row["customer_name"], r.1.as_str());
        assert_eq!(row["quantity"].as_i64(), Some(r.3));
        assert_eq!(row["date"], r.5.as_str());
    }
    assert_eq!(out[0]["customer_name"], "สมชาย ใจดี");
    // Key order (serde_json's map sorts keys, so look at the text).
    let data = std::fs::read(samples().join("sales.csv")).unwrap();
    let mut text = Vec::new();
    process(&plan(), &data[..], &mut text, std::io::sink(), None).unwrap();
    let text = String::from_utf8(text).unwrap();
    for (line, (r, rev)) in text.lines().zip(rows.iter().zip(&revenue)) {
        assert_eq!(number(line, "price"), r.4);
        assert_eq!(number(line, "revenue"), *rev);
    }
    let first = text.lines().next().unwrap().to_string();
    assert_eq!(
        first,
        r#"{"order_id":"ORD-001","customer_name":"สมชาย ใจดี","product":"Widget","quantity":2,"price":19.99,"date":"2024-01-15","revenue":39.98}"#
    );
    assert_eq!(out[3]["customer_name"], "Doe, John");
}

#[test]
fn bad_rows_are_reported_with_line_field_and_reason() {
    let (summary, out, err) = run("bad_rows.csv");
    let s = summary.unwrap();
    // Four of nine rows invalid: under the default validation.max_invalid_ratio (0.5).
    assert_eq!((s.total_rows, s.valid_rows, s.invalid_rows), (9, 5, 4));
    assert_eq!(s.success_rate, 55.56);
    assert_eq!(
        out.iter().map(|r| r["order_id"].as_str().unwrap()).collect::<Vec<_>>(),
        ["ORD-101", "ORD-104", "ORD-107", "ORD-108", "ORD-109"]
    );
    assert_eq!(out[1]["revenue"].as_f64(), Some(3.0 * 7.25)); // exact in binary
    let got: Vec<(u64, &str, &str)> = err
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["field"].as_str().unwrap(), e["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (3, "quantity", "not an integer: \"two\""),
            (4, "customer_name", "required field is empty"),
            (6, "quantity", "not an integer: \"1.5\""),
            (7, "date", "not a valid date (expected %Y-%m-%d): \"2024-02-30\""),
        ]
    );
    assert_eq!(err[0]["values"]["quantity"], "two");
    assert_eq!(err[0]["values"]["order_id"], "ORD-102");
    assert_eq!(err[0]["errors"].as_array().unwrap().len(), 1);
    assert_eq!(s.errors_reported, 4);
    let by_field: Vec<(&str, u64)> = s.errors_by_field.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(by_field, [("customer_name", 1), ("date", 1), ("quantity", 2)]);
    assert_eq!(s.numeric["revenue"].sum, round_to(2.0 * 19.99 + 3.0 * 7.25 + 19.99 + 49.50 + 7.25, 9));
}

#[test]
fn bad_schema_is_rejected_before_anything_is_written() {
    let (summary, out, err) = run("bad_schema.csv");
    match summary {
        Err(ProcessError::HeaderMismatch(h)) => {
            assert_eq!(h.missing, ["order_id"]);
            assert_eq!(h.reason(), "missing required columns: order_id");
        }
        other => panic!("{other:?}"),
    }
    assert!(out.is_empty() && err.is_empty());
    let file = std::fs::File::open(samples().join("bad_schema.csv")).unwrap();
    let h = check_header(&plan(), file).unwrap();
    assert!(!h.is_valid());
    assert_eq!(h.columns, ["customer_name", "product", "quantity", "price", "date"]);
    let file = std::fs::File::open(samples().join("sales.csv")).unwrap();
    assert!(check_header(&plan(), file).unwrap().is_valid());
}
