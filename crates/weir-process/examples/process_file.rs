//! Runs `process` on a file with the bundled sales pipeline and prints rows/s, for benchmarks.
//!
//! `cargo run --release -p weir-process --example process_file -- IN.csv [OUT_DIR] [THREADS]`

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let input = args.get(1).map(String::as_str).unwrap_or("/tmp/sales_2m.csv");
    let dir = args.get(2).map(String::as_str).unwrap_or("/tmp");
    let mut pipeline = weir_core::Config::bundled().pipelines.remove(0);
    pipeline.output.threads = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let plan = weir_process::Plan::compile(&pipeline)?;
    let start = Instant::now();
    let summary = weir_process::process(
        &plan,
        std::fs::File::open(input)?,
        std::fs::File::create(format!("{dir}/results.ndjson"))?,
        std::fs::File::create(format!("{dir}/errors.ndjson"))?,
        None,
    )?;
    let secs = start.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(input)?.len() as f64;
    eprintln!(
        "{} rows ({} valid) in {:.3} s: {:.2} M rows/s, {:.0} MB/s",
        summary.total_rows,
        summary.valid_rows,
        secs,
        summary.total_rows as f64 / secs / 1e6,
        bytes / secs / 1e6
    );
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
