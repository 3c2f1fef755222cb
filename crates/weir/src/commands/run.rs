//! `weir run`: the workers of the embedded pipeline, until Ctrl-C or SIGTERM.

use std::time::Duration;

use anyhow::Result;
use tokio_util::sync::CancellationToken;
use weir_pipeline::Worker;

use crate::cli::{Global, RunArgs};
use crate::setup;

pub async fn run(global: &Global, args: RunArgs) -> Result<u8> {
    let (loaded, engine) = setup::engine(global).await?;
    let config = engine.config();
    let concurrency = args.concurrency.unwrap_or(config.worker.concurrency);
    tracing::info!(
        data_dir = %loaded.data_dir.display(), config = %loaded.source, concurrency,
        input = %config.buckets.input, "weir is running; upload with `weir put FILE` (Ctrl-C stops)"
    );
    let grace = Duration::from_secs(config.worker.shutdown_grace_secs);
    let worker = Worker::new(engine.clone(), concurrency, grace);
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        super::shutdown_signal().await;
        tracing::info!("shutdown requested");
        trigger.cancel();
    });
    worker.run(shutdown).await;
    tracing::info!("stopped");
    Ok(0)
}
