//! `weir process FILE`: one file, now, no server. Exit 0 succeeded, 2 rejected, 1 failed.
//!
//! On a terminal, a progress bar (bytes read, rate, time left) is drawn on stderr while the file
//! is processed; piped or redirected, nothing but the summary and the written paths is printed.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use weir_core::config::COMPRESSED_SUFFIXES;
use weir_pipeline::one_shot::{pipeline_for_file, process_file_with_progress, OneShot};

use crate::cli::{Global, ProcessArgs};
use crate::config;

pub fn run(global: &Global, args: ProcessArgs) -> Result<u8> {
    let loaded = config::load(global)?;
    let pipelines = &loaded.config.pipelines;
    let pipeline = match &args.pipeline {
        Some(name) => pipelines
            .iter()
            .find(|p| &p.name == name)
            .with_context(|| format!("no pipeline named {name:?}"))?,
        None => pipeline_for_file(pipelines, &args.file).context("the configuration has no pipeline")?,
    };
    let bar = progress_bar(&args.file);
    let progress = |bytes: u64| bar.set_position(bytes);
    let outcome = process_file_with_progress(pipeline, &args.file, &args.out, Some(&progress));
    bar.finish_and_clear();
    let outcome = outcome?;
    match &outcome {
        OneShot::Succeeded { summary, outputs } => {
            outln!("{}", serde_json::to_string_pretty(summary)?)?;
            for o in outputs {
                eprintln!("wrote {}", o.display());
            }
        }
        OneShot::Image { image, outputs } => {
            outln!("{}", serde_json::to_string_pretty(image)?)?;
            for o in outputs {
                eprintln!("wrote {}", o.display());
            }
        }
        OneShot::Rejected { reason } => eprintln!("rejected: {reason}"),
    }
    Ok(outcome.exit_code() as u8)
}

/// A bar over the file's size, or a byte counter for a compressed file (whose inflated size is
/// unknown); hidden unless stderr is a terminal.
fn progress_bar(file: &std::path::Path) -> ProgressBar {
    let name = file.to_string_lossy().to_ascii_lowercase();
    let compressed = COMPRESSED_SUFFIXES.iter().any(|s| name.ends_with(s));
    let size = std::fs::metadata(file).map(|m| m.len()).ok().filter(|_| !compressed);
    let bar = ProgressBar::with_draw_target(size, ProgressDrawTarget::stderr());
    let template = if size.is_some() {
        "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}"
    } else {
        "{spinner} {bytes} read (inflated) {binary_bytes_per_sec}"
    };
    bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
    bar
}
