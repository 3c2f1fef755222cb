//! Parquet output is read back by pyarrow (from the `.venv` that `scripts/test` installs): every
//! column has the schema's type, the values are the NDJSON output's, and a file larger than a
//! row group is split into several. Without Python and pyarrow this test fails, saying how to
//! get them; it never passes silently.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use weir_core::config::{ColumnConfig, ColumnType, DerivedConfig, OutputFormat, PipelineConfig, Scalar};
use weir_process::{process, Plan};

fn python() -> PathBuf {
    let python = std::env::var_os("WEIR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python")));
    let ok = Command::new(&python).args(["-c", "import pyarrow.parquet"]).status().is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import pyarrow: run scripts/test (it installs pyarrow into .venv) or set WEIR_TEST_PYTHON to a Python with pyarrow",
        python.display()
    );
    python
}

const READ_BACK: &str = r#"
import json, sys
import pyarrow.parquet as pq
f = pq.ParquetFile(sys.argv[1])
t = f.read()
print(json.dumps({
    "types": {field.name: str(field.type) for field in t.schema},
    "row_groups": f.metadata.num_row_groups,
    "rows": [{k: (v.isoformat() if hasattr(v, "isoformat") else (str(v) if type(v).__name__ == "Decimal" else v))
              for k, v in r.items()} for r in t.slice(0, 3).to_pylist()],
    "num_rows": t.num_rows,
}))
"#;

fn pipeline() -> PipelineConfig {
    let mut p = weir_core::Config::bundled().pipelines.remove(0);
    p.output.format = OutputFormat::Parquet;
    p.output.parquet_row_group_rows = 1000;
    let mut amount = ColumnConfig::new("amount", ColumnType::Decimal);
    amount.precision = Some(10);
    amount.scale = Some(2);
    amount.default = Some(Scalar::Text("0".into()));
    p.columns.push(amount);
    let mut big = ColumnConfig::new("big", ColumnType::Decimal);
    big.precision = Some(30);
    big.scale = Some(4);
    p.columns.push(big);
    p.columns.push(ColumnConfig::new("paid", ColumnType::Boolean));
    p.columns.push(ColumnConfig::new("at", ColumnType::Datetime));
    p.columns.push(ColumnConfig::new("channel", ColumnType::String));
    p.derived
        .push(DerivedConfig { name: "label".into(), expr: "concat(upper(product), '#', quantity)".into() });
    p.derived.push(DerivedConfig { name: "double_qty".into(), expr: "quantity * 2".into() });
    p
}

#[test]
fn pyarrow_reads_typed_parquet_back() {
    let python = python();
    let mut csv =
        String::from("order_id,customer_name,product,quantity,price,date,amount,big,paid,at,note\n");
    for i in 0..2500 {
        let amount = if i % 10 == 0 { String::new() } else { format!("{}.{:02}", i, i % 100) };
        csv.push_str(&format!(
            "O{i},\"Doe, J{i}\",Widget,{},{}.5,2024-01-{:02},{amount},-12345678901234567890.{i},{},2024-01-15T10:00:{:02}Z,n{i}\n",
            1 + i % 7,
            i % 50,
            1 + i % 28,
            if i % 2 == 0 { "yes" } else { "false" },
            i % 60,
        ));
    }
    csv.push_str("bad,row,Widget,x,1,2024-01-01,1,1,yes,2024-01-15T10:00:00Z,n\n");
    let plan = Plan::compile(&pipeline()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.parquet");
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut errors = Vec::new();
    let summary = process(&plan, csv.as_bytes(), file, &mut errors, None).unwrap();
    let first_error = String::from_utf8_lossy(&errors[..errors.len().min(400)]).into_owned();
    assert_eq!((summary.valid_rows, summary.invalid_rows), (2500, 1), "{first_error}");

    let out = Command::new(&python).args(["-c", READ_BACK]).arg(&path).output().unwrap();
    assert!(out.status.success(), "pyarrow failed: {}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["num_rows"], 2500);
    assert_eq!(got["row_groups"], 3, "1000-row groups");
    let types = &got["types"];
    for (column, ty) in [
        ("order_id", "string"),
        ("quantity", "int64"),
        ("price", "double"),
        ("date", "date32[day]"),
        ("amount", "decimal128(10, 2)"),
        ("big", "decimal128(30, 4)"),
        ("paid", "bool"),
        ("at", "timestamp[us, tz=UTC]"),
        ("note", "string"),
        ("channel", "string"),
        ("revenue", "double"),
        ("label", "string"),
        ("double_qty", "int64"),
    ] {
        assert_eq!(types[column], ty, "{column}: {types}");
    }
    let first = &got["rows"][0];
    assert_eq!(first["order_id"], "O0");
    assert_eq!(first["customer_name"], "Doe, J0");
    assert_eq!(first["quantity"], 1);
    assert_eq!(first["price"], 0.5);
    assert_eq!(first["date"], "2024-01-01");
    assert_eq!(first["amount"], "0.00", "empty: the default");
    assert_eq!(first["paid"], true);
    assert_eq!(first["big"], "-12345678901234567890.0000");
    assert_eq!(first["at"], "2024-01-15T10:00:00+00:00");
    assert_eq!(first["channel"], Value::Null, "a schema column the file lacks");
    assert_eq!(first["revenue"], 0.5);
    assert_eq!(first["label"], "WIDGET#1");
    let second = &got["rows"][1];
    assert_eq!(second["amount"], "1.01");
    assert_eq!(second["paid"], false);
    assert_eq!(second["big"], "-12345678901234567890.1000");
    assert_eq!(second["double_qty"], 4);
}
