//! `weir report daily` and `weir report list`: the daily report on demand, and its history.
//!
//! On the embedded backend the report includes the alarm changes `weir run` recorded in the
//! data dir, and the command waits (a while) for the outbox to send the report's emails and
//! webhooks, so that a report made while `weir run` is stopped still goes out.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use weir_pipeline::report::{list_reports, run_daily, DailyOptions};

use crate::cli::{Global, ReportCommand, ReportDailyArgs, ReportListArgs};
use crate::{backend, config};

/// How long `weir report daily` waits for the report's deliveries.
const DELIVERY_WAIT: Duration = Duration::from_secs(60);

pub async fn run(global: &Global, cmd: ReportCommand) -> Result<u8> {
    match cmd {
        ReportCommand::Daily(args) => daily(global, args).await,
        ReportCommand::List(args) => list(global, args).await,
    }
}

async fn daily(global: &Global, args: ReportDailyArgs) -> Result<u8> {
    let loaded = config::load(global)?;
    let ports = backend::ports(&loaded, args.endpoint_url.as_deref()).await?;
    let date = args.date.unwrap_or_else(|| chrono::Utc::now().date_naive() - chrono::Duration::days(1));
    let alarm_changes = match loaded.config.aws {
        Some(_) => None,
        None => Some(weir_server::alarms::read_history(&loaded.data_dir).with_context(|| {
            format!("reading {}", loaded.data_dir.join(weir_server::alarms::HISTORY_FILE).display())
        })?),
    };
    let options = DailyOptions { pipeline: args.pipeline.clone(), alarm_changes, quiet: args.no_notify };
    let record = run_daily(&ports, &loaded.config, date, &options)
        .await
        .with_context(|| format!("making the daily report of {date}"))?;
    if args.json {
        outln!("{}", serde_json::to_string(&record)?)?;
    } else {
        let h = &record.headline;
        outln!("{}/{}", record.bucket, record.html_key)?;
        outln!("{}/{}", record.bucket, record.json_key)?;
        outln!(
            "{date}: {} received, {} succeeded, {} rejected, {} failed",
            h.received.value.unwrap_or(0.0),
            h.succeeded.value.unwrap_or(0.0),
            h.rejected.value.unwrap_or(0.0),
            h.failed.value.unwrap_or(0.0)
        )?;
        if !record.published_to.is_empty() {
            outln!("published to: {}", record.published_to.join(", "))?;
        }
    }
    if !record.published_to.is_empty() {
        wait_for_deliveries(&ports).await?;
    }
    Ok(0)
}

/// Waits until the notifier has nothing pending (an outbox), at most [`DELIVERY_WAIT`].
async fn wait_for_deliveries(ports: &weir_ports::Ports) -> Result<()> {
    let start = Instant::now();
    loop {
        let Some(stats) = ports.notifier.delivery_stats().await? else { return Ok(()) };
        if stats.pending == 0 {
            return Ok(());
        }
        if start.elapsed() > DELIVERY_WAIT {
            eprintln!(
                "{} deliveries still pending after {} s; `weir run` (or the next weir command) sends them",
                stats.pending,
                DELIVERY_WAIT.as_secs()
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn list(global: &Global, args: ReportListArgs) -> Result<u8> {
    let loaded = config::load(global)?;
    let ports = backend::ports(&loaded, args.endpoint_url.as_deref()).await?;
    let entries = list_reports(&ports, &loaded.config, args.limit.max(1)).await?;
    if args.json {
        for e in &entries {
            outln!("{}", serde_json::to_string(e)?)?;
        }
        return Ok(0);
    }
    if entries.is_empty() {
        outln!("no reports yet (weir report daily writes one)")?;
        return Ok(0);
    }
    outln!("{:<12} {:<16} {:<22} HTML", "DATE", "PIPELINE", "WRITTEN (UTC)")?;
    for e in &entries {
        outln!(
            "{:<12} {:<16} {:<22} {}/{}",
            e.date,
            e.pipeline.as_deref().unwrap_or("all"),
            e.written_at.format("%Y-%m-%d %H:%M:%S"),
            e.bucket,
            e.html_key
        )?;
    }
    Ok(0)
}
