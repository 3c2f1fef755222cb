//! Writes a deterministic sales CSV in the bundled schema, for benchmarks.
//!
//! `cargo run --release -p weir-process --example gen_sales -- ROWS OUT.csv [BAD_PERCENT]`
//! (default 3 % bad rows: non-numeric or fractional quantities, empty names, impossible dates).

use std::io::{BufWriter, Write};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rows: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let path = args.get(2).map(String::as_str).unwrap_or("/tmp/sales_2m.csv");
    let bad_percent: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let products = [("Widget", "19.99"), ("Gadget", "49.50"), ("Gizmo", "7.25"), ("Doohickey", "12.00")];
    let names = ["สมชาย ใจดี", "Alice Smith", "\"Doe, John\"", "Bob Lee", "Carol King", "วิชัย มั่นคง"];
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    writeln!(out, "order_id,customer_name,product,quantity,price,date")?;
    for i in 1..=rows {
        let r = rnd();
        let (product, price) = products[(r % 4) as usize];
        let name = names[((r >> 8) % names.len() as u64) as usize];
        let qty = 1 + (r >> 16) % 20;
        let (month, day) = (1 + (r >> 24) % 12, 1 + (r >> 32) % 28);
        if (r >> 40) % 100 < bad_percent {
            match (r >> 48) % 4 {
                0 => writeln!(out, "ORD-{i:07},{name},{product},two,{price},2024-{month:02}-{day:02}")?,
                1 => writeln!(out, "ORD-{i:07},,{product},{qty},{price},2024-{month:02}-{day:02}")?,
                2 => writeln!(out, "ORD-{i:07},{name},{product},{qty},{price},2024-02-30")?,
                _ => writeln!(out, "ORD-{i:07},{name},{product},1.5,{price},2024-{month:02}-{day:02}")?,
            }
        } else {
            writeln!(out, "ORD-{i:07},{name},{product},{qty},{price},2024-{month:02}-{day:02}")?;
        }
    }
    out.flush()
}
