//! `weir process FILE`: one file, now, no server. Exit 0 succeeded, 2 rejected, 1 failed.

use anyhow::{Context, Result};
use weir_pipeline::one_shot::{process_file, OneShot};

use crate::cli::{Global, ProcessArgs};
use crate::setup;

pub fn run(global: &Global, args: ProcessArgs) -> Result<u8> {
    let loaded = setup::load(global)?;
    let pipelines = &loaded.config.pipelines;
    let pipeline = match &args.pipeline {
        Some(name) => pipelines
            .iter()
            .find(|p| &p.name == name)
            .with_context(|| format!("no pipeline named {name:?}"))?,
        None => {
            let name = args.file.to_string_lossy();
            pipelines
                .iter()
                .find(|p| name.ends_with(&p.source.suffix))
                .or(pipelines.first())
                .context("the configuration has no pipeline")?
        }
    };
    let outcome = process_file(pipeline, &args.file, &args.out)?;
    match &outcome {
        OneShot::Succeeded { summary, outputs } => {
            println!("{}", serde_json::to_string_pretty(summary)?);
            for o in outputs {
                eprintln!("wrote {}", o.display());
            }
        }
        OneShot::Rejected { reason } => eprintln!("rejected: {reason}"),
    }
    Ok(outcome.exit_code() as u8)
}
