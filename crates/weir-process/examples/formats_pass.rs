//! One pass writing two result formats against two passes writing one each, for the bench.
//!
//! `cargo run --release -p weir-process --example formats_pass -- IN.csv [OUT_DIR] [REPEAT]`
//!
//! With the bundled sales pipeline: (a) NDJSON alone, (b) Parquet alone, (c) NDJSON and Parquet
//! from one pass (`[[output.also]]`, [`weir_process::process_many`]). Two passes cost (a) + (b);
//! one pass costs (c). Prints the best of REPEAT runs of each, as rows/s.

use std::fs::File;
use std::io::BufWriter;
use std::time::Instant;

use weir_core::config::{AlsoResults, OutputFormat};
use weir_process::{process_many, Options, Plan};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let input = args.get(1).map(String::as_str).unwrap_or("/tmp/sales_2m.csv");
    let dir = args.get(2).map(String::as_str).unwrap_or("/tmp");
    let repeat: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3);
    let base = weir_core::Config::bundled().pipelines.remove(0);
    let plan_of = |formats: &[OutputFormat]| -> Result<Plan, Box<dyn std::error::Error>> {
        let mut p = base.clone();
        p.validation.max_invalid_ratio = 1.0;
        p.output.format = formats[0];
        p.output.also = formats[1..].iter().map(|f| AlsoResults { format: *f, key: None }).collect();
        Ok(Plan::compile(&p)?)
    };
    let run = |formats: &[OutputFormat]| -> Result<(f64, u64), Box<dyn std::error::Error>> {
        let plan = plan_of(formats)?;
        let mut best = f64::MAX;
        let mut rows = 0;
        for _ in 0..repeat {
            let writers = formats
                .iter()
                .map(|f| {
                    Ok(BufWriter::with_capacity(
                        1 << 20,
                        File::create(format!("{dir}/formats_pass.{}", f.extension()))?,
                    ))
                })
                .collect::<std::io::Result<Vec<_>>>()?;
            let start = Instant::now();
            let summary = process_many(
                &plan,
                File::open(input)?,
                writers,
                File::create(format!("{dir}/formats_pass.errors"))?,
                &Options::default(),
            )?;
            best = best.min(start.elapsed().as_secs_f64());
            rows = summary.total_rows;
        }
        Ok((best, rows))
    };
    let (ndjson, rows) = run(&[OutputFormat::Ndjson])?;
    let (parquet, _) = run(&[OutputFormat::Parquet])?;
    let (both, _) = run(&[OutputFormat::Ndjson, OutputFormat::Parquet])?;
    let rate = |secs: f64| rows as f64 / secs / 1e6;
    println!("rows: {rows} (best of {repeat})");
    println!("ndjson alone:                 {ndjson:.3} s  {:.2} M rows/s", rate(ndjson));
    println!("parquet alone:                {parquet:.3} s  {:.2} M rows/s", rate(parquet));
    println!(
        "two passes (ndjson, parquet): {:.3} s  {:.2} M rows/s",
        ndjson + parquet,
        rate(ndjson + parquet)
    );
    println!("one pass, both formats:       {both:.3} s  {:.2} M rows/s", rate(both));
    println!("one pass / two passes:        {:.2} of the time", both / (ndjson + parquet));
    Ok(())
}
