//! `weir setup aws` and `weir worker`: the pipeline on AWS.
//!
//! `setup aws` creates or verifies the resources an `[aws]` section names (with the CloudWatch
//! alarms of the `[alarms]` rules and the dashboard) and prints what it did, so it can run on
//! every deploy; `--dry-run` prints what it would do. `worker` runs only the receive loop of the embedded
//! `weir run` — no S3 endpoint, no HTTP API — against SQS, so any number of processes on any
//! number of machines share one queue; S3 itself sends the events. Its metrics go to
//! CloudWatch in one batched call per `aws.metrics_interval_secs`, and once more at shutdown.

use std::time::Duration;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;
use weir_aws::setup::Change;
use weir_pipeline::Worker;

use crate::cli::{Global, SetupAwsArgs, WorkerArgs};
use crate::{backend, config};

pub async fn setup_aws(global: &Global, args: SetupAwsArgs) -> Result<u8> {
    let loaded = config::load(global)?;
    let section = backend::aws_section(&loaded)?;
    let (sdk, endpoint) = backend::aws_sdk(&section, args.endpoint_url.as_deref()).await;
    // Before anything is created: not into a `weir run`'s data dir by mistake.
    if let Err(e) = weir_aws::setup::refuse_weir_endpoint(endpoint.as_deref()).await {
        match e {
            weir_ports::PortError::Invalid(why) => anyhow::bail!("{why}"),
            other => return Err(other.into()),
        }
    }
    if args.dry_run {
        let items = weir_aws::setup::plan_all(&loaded.config, &section, &sdk, endpoint.as_deref())
            .await
            .context("reading the AWS resources")?;
        for item in &items {
            outln!("{}", item.line(true))?;
        }
        let changes = items.iter().filter(|i| i.change != Change::Exists).count();
        outln!("dry run: {changes} change(s) to make, nothing changed")?;
        return Ok(0);
    }
    let items = weir_aws::setup::ensure_all(&loaded.config, &section, &sdk, endpoint.as_deref())
        .await
        .context("setting up the AWS resources")?;
    for item in &items {
        outln!("{item}")?;
    }
    let count = |c: Change| items.iter().filter(|i| i.change == c).count();
    let created = count(Change::Created);
    let removed = count(Change::Removed);
    let mut summary = format!("{created} created, {} already there", items.len() - created - removed);
    if removed > 0 {
        summary.push_str(&format!(", {removed} removed"));
    }
    outln!("{summary}")?;
    Ok(0)
}

pub async fn worker(global: &Global, args: WorkerArgs) -> Result<u8> {
    let mut loaded = config::load(global)?;
    if let Some(endpoint) = &args.endpoint_url {
        loaded.secrets = crate::secrets::for_config(&loaded.config, Some(endpoint));
    }
    let section = backend::aws_section(&loaded)?;
    // Metrics: counted as jobs run, sent to CloudWatch in batches by a task of their own.
    let (sdk, _) = backend::aws_sdk(&section, args.endpoint_url.as_deref()).await;
    let metrics = weir_aws::metrics::CloudWatchMetrics::new(&sdk);
    let engine = backend::worker_engine(&loaded, args.endpoint_url.as_deref(), metrics.clone()).await?;
    let config = engine.config();
    let concurrency = args.concurrency.unwrap_or(config.worker.concurrency);
    tracing::info!(
        config = %loaded.source, concurrency, queue = %section.queue, region = %section.region,
        "weir worker is running (Ctrl-C stops)"
    );
    let grace = Duration::from_secs(config.worker.shutdown_grace_secs);
    let worker = Worker::new(engine.clone(), concurrency, grace);
    let shutdown = CancellationToken::new();
    // Schedules fire once per due time however many workers (and EventBridge invocations of
    // weir-lambda) share the jobs table; S3 lifecycle rules and DynamoDB TTL do the retention.
    let scheduler = weir_pipeline::schedule::Scheduler::new(engine.clone())?;
    if !scheduler.is_empty() {
        tokio::spawn(scheduler.run(shutdown.clone()));
    }
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        super::shutdown_signal().await;
        tracing::info!("shutdown requested");
        trigger.cancel();
    });
    let stopped = CancellationToken::new();
    let sender = tokio::spawn(
        metrics.run(Duration::from_secs(section.metrics_interval_secs), stopped.clone().cancelled_owned()),
    );
    worker.run(shutdown).await;
    // The last metrics, the jobs that finished during the shutdown included.
    stopped.cancel();
    let _ = sender.await;
    tracing::info!("stopped");
    Ok(0)
}
