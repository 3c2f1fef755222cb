//! `weir reprocess`: events for objects already in a bucket, paced, resumable, with progress.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use weir_core::JobStatus;
use weir_pipeline::reconcile::{self, Reprocess};

use crate::cli::{Global, ReprocessArgs};
use crate::config;

pub async fn run(global: &Global, args: ReprocessArgs) -> Result<u8> {
    let loaded = config::load(global)?;
    let engine = crate::backend::engine(&loaded, None).await?;
    let bucket = args.bucket.clone().unwrap_or_else(|| engine.config().buckets.input.clone());
    let status = match &args.status {
        Some(s) => Some(JobStatus::parse(s).with_context(|| format!("unknown status {s:?}"))?),
        None => None,
    };
    // One checkpoint per (bucket, prefix), so an interrupted run continues where it stopped.
    let dir = loaded.data_dir.join(".reprocess");
    std::fs::create_dir_all(&dir)?;
    let name: String = format!("{bucket}/{}", args.prefix)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let checkpoint = dir.join(name);
    if args.restart {
        let _ = std::fs::remove_file(&checkpoint);
    } else if checkpoint.exists() {
        eprintln!(
            "continuing an interrupted run (after {}); --restart starts over",
            std::fs::read_to_string(&checkpoint)?.trim()
        );
    }
    let r = Reprocess {
        bucket,
        prefix: args.prefix.clone(),
        status,
        force: args.force,
        rate: args.rate,
        checkpoint: Some(checkpoint),
    };
    // Counted in a first pass over the listing's pages, for the bar; the run lists them again.
    let total = reconcile::count(&engine, &r).await?;
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta} {msg}")
            .expect("valid template"),
    );
    let tally = reconcile::run(&engine, &r, |o| {
        bar.set_message(o.key.clone());
        bar.inc(1);
    })
    .await?;
    bar.finish_and_clear();
    outln!(
        "sent {} event(s); skipped {} in flight, {} finished (use --force to re-run), {} by status, {} with no pipeline",
        tally.sent, tally.skipped_in_flight, tally.skipped_finished, tally.skipped_status, tally.skipped_no_pipeline
    )?;
    Ok(0)
}
