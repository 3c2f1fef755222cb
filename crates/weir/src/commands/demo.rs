//! `weir demo`: the whole embedded pipeline on a temporary data dir, with the bundled samples.

use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use weir_core::Job;
use weir_pipeline::{ingest, Engine, Worker};
use weir_ports::Metadata;

use super::init::{IMAGE_SAMPLES, SAMPLES};
use super::jobs::table;
use crate::cli::{DemoArgs, Global};
use crate::{backend, config};

pub async fn run(global: &Global, args: DemoArgs) -> Result<u8> {
    let temp =
        tempfile::Builder::new().prefix("weir-demo-").tempdir().context("creating a temporary data dir")?;
    let mut global_for_demo = crate::cli::Global {
        data_dir: Some(temp.path().to_owned()),
        config: global.config.clone(),
        verbose: global.verbose,
    };
    if global.data_dir.is_some() {
        global_for_demo.data_dir = global.data_dir.clone();
    }
    let loaded = config::load(&global_for_demo)?;
    let engine = backend::engine(&loaded, None).await?;
    outln!("weir demo: data dir {} ({})", loaded.data_dir.display(), loaded.source)?;

    let shutdown = CancellationToken::new();
    let worker = Worker::new(engine.clone(), engine.config().worker.concurrency, Duration::from_secs(5));
    let worker_shutdown = shutdown.clone();
    let worker_task = tokio::spawn(async move { worker.run(worker_shutdown).await });

    let mut jobs = Vec::new();
    let uploads = SAMPLES
        .iter()
        .map(|(name, content)| (format!("raw/{name}"), content.as_bytes()))
        .chain(IMAGE_SAMPLES.iter().map(|(name, content)| (format!("images/{name}"), *content)));
    for (key, content) in uploads {
        let (_, job) = ingest::put_object(
            engine.ports(),
            engine.config(),
            &engine.config().buckets.input,
            &key,
            Bytes::from_static(content),
            Metadata::new(),
        )
        .await?;
        if let Some(job) = job {
            outln!("uploaded {key} -> job {}", job.job_id)?;
            jobs.push(job);
        }
    }
    let finished = wait(&engine, &jobs).await?;
    outln!("\n{}", table(&finished))?;
    outln!("outputs are in {}", loaded.data_dir.join(&engine.config().buckets.output).display())?;

    if !args.exit {
        let after_stop = if global.data_dir.is_some() {
            "Ctrl-C stops (the data dir is kept)."
        } else {
            "Ctrl-C stops (the temporary data dir is then removed)."
        };
        outln!("\nweir is still running on this data dir; try in another terminal:\n  weir --data-dir {} put samples/sales.csv --wait\n  weir --data-dir {} jobs\n{after_stop}", loaded.data_dir.display(), loaded.data_dir.display())?;
        super::shutdown_signal().await;
    }
    shutdown.cancel();
    worker_task.await.context("worker stopped abnormally")?;
    Ok(0)
}

async fn wait(engine: &Engine, jobs: &[Job]) -> Result<Vec<Job>> {
    for _ in 0..600 {
        let mut current = Vec::new();
        for j in jobs {
            current.push(engine.ports().jobs.get(&j.job_id).await?.unwrap_or_else(|| j.clone()));
        }
        if current.iter().all(|j| j.status.is_terminal()) {
            return Ok(current);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the sample jobs did not finish within 30 s")
}
