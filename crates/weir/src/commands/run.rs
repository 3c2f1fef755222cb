//! `weir run`: the workers of the embedded pipeline, the S3 endpoint and the HTTP API, until
//! Ctrl-C or SIGTERM. The servers share the workers' ports (one queue), so an upload wakes a
//! worker's long poll at once.

use std::time::Duration;

use anyhow::Result;
use tokio_util::sync::CancellationToken;
use weir_pipeline::Worker;

use crate::cli::{Global, RunArgs};
use crate::config;

pub async fn run(global: &Global, args: RunArgs) -> Result<u8> {
    let loaded = config::load(global)?;
    std::fs::create_dir_all(&loaded.data_dir)?;
    // Held until weir run ends (see weir_backends::data_dir).
    let _run_lock = weir_backends::DataDirLock::acquire(&loaded.data_dir)?;
    let loaded = config::load(global)?;
    let engine = crate::backend::engine(&loaded, None).await?;
    let config = engine.config();
    let concurrency = args.concurrency.unwrap_or(config.worker.concurrency);
    tracing::info!(
        data_dir = %loaded.data_dir.display(), config = %loaded.source, concurrency,
        takes = %takes(config), "weir is running; upload with `weir put FILE` (Ctrl-C stops)"
    );
    if config.worker.reconcile_on_start {
        use weir_pipeline::reconcile::{on_start, SETTLE};
        let queued = on_start(&engine, SETTLE).await?;
        if queued > 0 {
            tracing::info!(queued, "queued objects that were waiting without a job");
        }
        // Once more for what was written in the moments before the start.
        let engine = engine.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SETTLE).await;
            match on_start(&engine, SETTLE).await {
                Ok(0) => {}
                Ok(queued) => tracing::info!(queued, "queued objects that were waiting without a job"),
                Err(e) => tracing::warn!(error = %e, "looking for objects waiting without a job"),
            }
        });
    }
    let grace = Duration::from_secs(config.worker.shutdown_grace_secs);
    let worker = Worker::new(engine.clone(), concurrency, grace);
    let shutdown = CancellationToken::new();
    let servers = super::serve::start(&loaded, &engine, &args, shutdown.clone()).await?;
    spawn_clock_work(&engine, &shutdown, &loaded.data_dir)?;
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        super::shutdown_signal().await;
        tracing::info!("shutdown requested");
        trigger.cancel();
    });
    tokio::join!(worker.run(shutdown), servers.stopped());
    tracing::info!("stopped");
    Ok(0)
}

/// The schedules, the retention sweeper every `retention.sweep_interval_secs` (the first a
/// minute after start, out of the way of the start's reconcile), and the removal of inputs
/// kept past `source.keep_input_minutes`, until `shutdown`.
pub fn spawn_clock_work(
    engine: &std::sync::Arc<weir_pipeline::Engine>,
    shutdown: &CancellationToken,
    data_dir: &std::path::Path,
) -> Result<()> {
    let scheduler =
        weir_pipeline::schedule::Scheduler::new(engine.clone())?.with_alarm_history(data_dir.to_path_buf());
    if !scheduler.is_empty() {
        tokio::spawn(scheduler.run(shutdown.clone()));
    }
    if let Some(every) = weir_pipeline::retention::kept_inputs_interval(engine.config()) {
        // `archive = "copy"` sources' kept inputs, on their own (shorter) clock.
        let (engine, shutdown) = (engine.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let mode = weir_pipeline::retention::Mode::Apply;
                let now = chrono::Utc::now();
                match weir_pipeline::retention::expire_kept_inputs(
                    engine.config(),
                    engine.ports(),
                    now,
                    mode,
                    |_| {},
                )
                .await
                {
                    Ok(r) if r.objects > 0 => {
                        tracing::info!(objects = r.objects, "removed kept inputs past keep_input_minutes")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "removing kept inputs failed; will try again"),
                }
            }
        });
    }
    let retention = &engine.config().retention;
    if retention.sweep_interval_secs > 0 && !retention.is_empty() {
        let (engine, shutdown) = (engine.clone(), shutdown.clone());
        let every = Duration::from_secs(retention.sweep_interval_secs);
        tokio::spawn(async move {
            let mut wait = Duration::from_secs(60).min(every);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = every;
                let mode = weir_pipeline::retention::Mode::Apply;
                match weir_pipeline::retention::sweep(
                    engine.config(),
                    engine.ports(),
                    chrono::Utc::now(),
                    mode,
                    |_| {},
                )
                .await
                {
                    Ok(r) if r.objects + r.jobs + r.notifications > 0 => tracing::info!(
                        objects = r.objects,
                        jobs = r.jobs,
                        notifications = r.notifications,
                        kept_in_use = r.kept_in_use,
                        "retention sweep"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "retention sweep failed; will try again"),
                }
            }
        });
    }
    Ok(())
}

/// Where uploads make jobs, for the start-up line: `weir-input/raw/*.csv (sales), ...`.
fn takes(config: &weir_core::Config) -> String {
    config
        .pipelines
        .iter()
        .map(|p| {
            let bucket = p.source.bucket.as_deref().unwrap_or(&config.buckets.input);
            let name =
                if p.source.suffix.is_empty() { String::new() } else { format!("*{}", p.source.suffix) };
            format!("{bucket}/{}{name} ({})", p.source.prefix, p.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}
