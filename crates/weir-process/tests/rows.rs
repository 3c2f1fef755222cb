//! Valid rows as typed cells for a warehouse load (`Options::rows`): one cell per schema column
//! and derived field in schema order whatever the file's order, the row's line in the file,
//! and the row's JSON exactly as the NDJSON results have it.

use std::cell::RefCell;

use weir_core::config::{ColumnConfig, ColumnType, PipelineConfig, Scalar};
use weir_core::rows::{Cell, CellType, RowBatch};
use weir_process::{process_with, Options, Plan};

fn pipeline() -> PipelineConfig {
    let mut p = weir_core::Config::bundled().pipelines.remove(0);
    let mut amount = ColumnConfig::new("amount", ColumnType::Decimal);
    amount.precision = Some(10);
    amount.scale = Some(2);
    amount.default = Some(Scalar::Text("1.50".into()));
    p.columns.push(amount);
    p.columns.push(ColumnConfig::new("note", ColumnType::String));
    let mut at = ColumnConfig::new("at", ColumnType::Datetime);
    at.nullable = Some(true);
    p.columns.push(at);
    p
}

/// Runs the pass, returning the results text and every batch the row function got.
fn run(p: &PipelineConfig, csv: &str) -> (String, Vec<RowBatch>) {
    let plan = Plan::compile(p).unwrap();
    let batches = RefCell::new(Vec::new());
    let emit = |b: RowBatch| {
        batches.borrow_mut().push(b);
        Ok(None)
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let options = Options { rows: Some(&emit), ..Options::default() };
    process_with(&plan, csv.as_bytes(), &mut out, &mut err, &options).unwrap();
    (String::from_utf8(out).unwrap(), batches.into_inner())
}

#[test]
fn cells_follow_the_schema_and_json_is_the_results_line() {
    let p = pipeline();
    let columns = Plan::compile(&p).unwrap().table_columns();
    let names: Vec<_> = columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "order_id",
            "customer_name",
            "product",
            "quantity",
            "price",
            "date",
            "amount",
            "note",
            "at",
            "revenue"
        ]
    );
    assert_eq!(columns[6].ty, CellType::Decimal { precision: 10, scale: 2 });
    assert_eq!(
        (columns[5].ty, columns[8].ty, columns[9].ty),
        (CellType::Date, CellType::DateTime, CellType::Float)
    );

    // Columns in another order, `note` missing, an invalid row (line 3) and a quoted newline.
    let csv = "date,product,customer_name,order_id,quantity,price,amount,at\n\
               2024-01-15,Widget,สมชาย,A1,2,19.99,12.30,2024-01-15T10:00:00Z\n\
               2024-01-15,Widget,Bob,A2,x,19.99,,\n\
               2024-01-16,\"Giz\nmo\",Ann,A3,3,7.25,,\n";
    let (results, batches) = run(&p, csv);
    assert_eq!(batches.len(), 1);
    let rows: Vec<_> = batches[0].rows().collect();
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 4]);
    let first = &rows[0];
    assert_eq!(first.text(&first.cells[0]), b"A1");
    assert_eq!(first.text(&first.cells[1]), "สมชาย".as_bytes());
    assert_eq!(first.cells[3], Cell::Int(2));
    assert_eq!(first.cells[4], Cell::Float(19.99));
    assert_eq!(first.cells[5], Cell::Date(19737)); // 2024-01-15
    assert_eq!(first.cells[6], Cell::Decimal(1230));
    assert_eq!(first.cells[7], Cell::Null); // not in the file, no default
    assert_eq!(first.cells[8], Cell::DateTime(1_705_312_800_000_000));
    assert!(matches!(first.cells[9], Cell::Float(r) if (r - 39.98).abs() < 1e-9));
    let second = &rows[1];
    assert_eq!(second.text(&second.cells[2]), b"Giz\nmo");
    assert_eq!(second.cells[6], Cell::Decimal(150)); // empty: the default
    assert_eq!(second.cells[8], Cell::Null);
    let lines: Vec<&str> = results.lines().collect();
    assert_eq!(lines.len(), 2);
    for (row, line) in rows.iter().zip(lines) {
        assert_eq!(std::str::from_utf8(row.json).unwrap(), line);
    }
}

#[test]
fn rows_come_in_bounded_batches_in_file_order_even_with_threads() {
    let mut p = weir_core::Config::bundled().pipelines.remove(0);
    p.output.threads = 4; // ignored with a row function: one thread keeps the order
    let mut csv = String::from("order_id,customer_name,product,quantity,price,date\n");
    for i in 0..5000 {
        csv.push_str(&format!("O{i},c,p,{},1.5,2024-01-01\n", i % 7));
    }
    let (_, batches) = run(&p, &csv);
    assert!(batches.len() >= 5 && batches.iter().all(|b| b.len() <= 1024), "{}", batches.len());
    let lines: Vec<u64> = batches.iter().flat_map(|b| b.rows().map(|r| r.line).collect::<Vec<_>>()).collect();
    assert_eq!(lines, (2..5002).collect::<Vec<u64>>());
}

#[test]
fn a_batch_given_back_is_filled_again_with_only_new_rows() {
    let p = weir_core::Config::bundled().pipelines.remove(0);
    let plan = Plan::compile(&p).unwrap();
    let mut csv = String::from("order_id,customer_name,product,quantity,price,date\n");
    for i in 0..3500 {
        csv.push_str(&format!("O{i},c,p,{},1.5,2024-01-01\n", i % 7));
    }
    // The function keeps what it needs of each batch and gives the batch back, except the
    // second time, when it gives back one of another width (which the pass must not fill).
    let (lines, ids, calls) = (RefCell::new(Vec::new()), RefCell::new(Vec::new()), RefCell::new(0));
    let emit = |b: RowBatch| {
        *calls.borrow_mut() += 1;
        for r in b.rows() {
            lines.borrow_mut().push(r.line);
            ids.borrow_mut().push(String::from_utf8(r.text(&r.cells[0]).to_vec()).unwrap());
        }
        Ok(Some(if *calls.borrow() == 2 { RowBatch::new(1) } else { b }))
    };
    let options = Options { rows: Some(&emit), ..Options::default() };
    process_with(&plan, csv.as_bytes(), Vec::new(), Vec::new(), &options).unwrap();
    assert_eq!(*calls.borrow(), 4);
    assert_eq!(*lines.borrow(), (2..3502).collect::<Vec<u64>>());
    assert_eq!(*ids.borrow(), (0..3500).map(|i| format!("O{i}")).collect::<Vec<_>>());
}

#[test]
fn an_error_from_the_row_function_stops_the_pass() {
    let p = weir_core::Config::bundled().pipelines.remove(0);
    let plan = Plan::compile(&p).unwrap();
    let emit = |_: RowBatch| Err(std::io::Error::other("the database went away"));
    let options = Options { rows: Some(&emit), ..Options::default() };
    let csv = "order_id,customer_name,product,quantity,price,date\nA,b,c,1,2,2024-01-01\n";
    let e = process_with(&plan, csv.as_bytes(), Vec::new(), Vec::new(), &options).unwrap_err();
    assert!(e.to_string().contains("the database went away"), "{e}");
}

#[test]
fn json_text_cells_are_unescaped() {
    let mut p = weir_core::Config::bundled().pipelines.remove(0);
    p.format.kind = weir_core::config::FormatKind::Ndjson;
    let line = r#"{"order_id":"A\"1\u00e9","customer_name":"c","product":"p","quantity":2,"price":1.5,"date":"2024-01-01"}"#;
    let (results, batches) = run(&p, &format!("{line}\n"));
    let row = batches[0].row(0);
    assert_eq!(row.text(&row.cells[0]), "A\"1é".as_bytes());
    assert_eq!(std::str::from_utf8(row.json).unwrap(), results.trim_end());
}
