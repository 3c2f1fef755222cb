//! Criterion benches of the hot loops: CSV parsing, field typing, JSON string output, and the
//! whole pass (CSV → NDJSON, and JSON → NDJSON) on an in-memory sales file.
//!
//! `cargo bench -p weir-process --bench hot_loops` (add `-- --quick` for a short run).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use weir_core::config::FormatKind;
use weir_process::{bench, process, Plan};

/// A deterministic sales CSV of `rows` rows, about 56 bytes each.
fn sales_csv(rows: usize) -> Vec<u8> {
    let mut out = b"order_id,customer_name,product,quantity,price,date\n".to_vec();
    let names = ["Alice Smith", "\"Doe, John\"", "สมชาย ใจดี", "Bob Lee"];
    let products = [("Widget", "19.99"), ("Gadget", "49.50"), ("Gizmo", "7.25")];
    for i in 0..rows {
        let (p, price) = products[i % 3];
        out.extend_from_slice(
            format!(
                "ORD-{i:07},{},{p},{},{price},2024-{:02}-{:02}\n",
                names[i % 4],
                1 + i % 20,
                1 + i % 12,
                1 + i % 28
            )
            .as_bytes(),
        );
    }
    out
}

fn sales_ndjson(rows: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..rows {
        out.extend_from_slice(
            format!(
                "{{\"order_id\":\"ORD-{i:07}\",\"customer_name\":\"Alice\",\"product\":\"Widget\",\"quantity\":{},\"price\":19.99,\"date\":\"2024-01-{:02}\"}}\n",
                1 + i % 20,
                1 + i % 28
            )
            .as_bytes(),
        );
    }
    out
}

fn hot_loops(c: &mut Criterion) {
    let csv = sales_csv(100_000);
    let mut g = c.benchmark_group("csv");
    g.throughput(Throughput::Bytes(csv.len() as u64));
    g.bench_function("parse", |b| b.iter(|| bench::bench_parse(black_box(&csv))));
    let plan = Plan::compile(&weir_core::Config::bundled().pipelines[0]).unwrap();
    let mut out = Vec::with_capacity(csv.len() * 2);
    g.bench_function("process_to_ndjson", |b| {
        b.iter(|| {
            out.clear();
            process(&plan, black_box(&csv[..]), &mut out, std::io::sink(), None).unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("fields");
    g.throughput(Throughput::Elements(1));
    g.bench_function("validate_sales_row", |b| {
        b.iter(|| {
            bench::bench_validate(
                black_box(b"17"),
                black_box(b"19.99"),
                black_box(b"2024-02-29"),
                black_box(b"a.b@example.co.uk"),
            )
        })
    });
    let values: Vec<&[u8]> = vec![b"ORD-0000001", "สมชาย ใจดี".as_bytes(), b"Doe, \"John\"", b"Widget"];
    let mut buf = Vec::with_capacity(256);
    g.bench_function(BenchmarkId::new("serialize", "4 strings"), |b| {
        b.iter(|| {
            buf.clear();
            bench::bench_write_str(black_box(&values), &mut buf);
        })
    });
    g.finish();

    let json = sales_ndjson(50_000);
    let mut cfg = weir_core::Config::bundled().pipelines.remove(0);
    cfg.format.kind = FormatKind::Ndjson;
    let plan = Plan::compile(&cfg).unwrap();
    let mut g = c.benchmark_group("json");
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("process_ndjson_to_ndjson", |b| {
        b.iter(|| {
            out.clear();
            process(&plan, black_box(&json[..]), &mut out, std::io::sink(), None).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, hot_loops);
criterion_main!(benches);
