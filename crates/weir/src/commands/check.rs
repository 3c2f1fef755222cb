//! `weir check`: validate the configuration and every pipeline's schema and workflow, printing
//! every problem on its own line with its location (`pipeline[0].columns[3].regex: ...`).

use anyhow::Result;
use weir_process::Plan;

use crate::cli::Global;
use crate::config;

pub fn run(global: &Global) -> Result<u8> {
    let loaded = config::load(global)?;
    let mut problems = Vec::new();
    for (i, p) in loaded.config.pipelines.iter().enumerate() {
        if let Err(e) = Plan::compile(p) {
            problems.extend(e.problems.iter().map(|problem| format!("pipeline[{i}].{problem}")));
        }
        if let Err(e) = weir_pipeline::workflow::load(p) {
            problems.push(format!("pipeline[{i}] ({}): {e}", p.name));
        }
    }
    if problems.is_empty() {
        println!("{}: ok ({} pipeline(s))", loaded.source, loaded.config.pipelines.len());
        Ok(0)
    } else {
        println!("{}: {} problem(s)", loaded.source, problems.len());
        for p in problems {
            println!("  {p}");
        }
        Ok(1)
    }
}
