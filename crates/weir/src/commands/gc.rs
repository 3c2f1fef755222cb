//! `weir gc`: one retention sweep now (`weir run` sweeps every `retention.sweep_interval_secs`);
//! `--dry-run` prints what would go and deletes nothing.

use anyhow::Result;
use chrono::Utc;
use weir_pipeline::retention::{self, Mode};

use crate::cli::{GcArgs, Global};
use crate::config;

pub async fn run(global: &Global, args: GcArgs) -> Result<u8> {
    let loaded = config::load(global)?;
    if loaded.config.retention.is_empty() && retention::kept_inputs_interval(&loaded.config).is_none() {
        outln!(
            "nothing to do: {} sets no retention (see [retention] in weir init's weir.toml) and no source.keep_input_minutes",
            loaded.source
        )?;
        return Ok(0);
    }
    let ports = crate::backend::ports(&loaded, None).await?;
    let mode = if args.dry_run { Mode::DryRun } else { Mode::Apply };
    let verb = if args.dry_run { "would expire" } else { "expired" };
    // The sweep goes on when standard output closes (its deletions are the point); the error ends weir after it.
    let mut unprinted = Ok(());
    let report = retention::sweep(&loaded.config, &ports, Utc::now(), mode, |item| {
        if unprinted.is_ok() {
            unprinted = outln!("{verb} {item}");
        }
    })
    .await?;
    unprinted?;
    outln!(
        "{verb}: {} objects, {} job records, {} notifications; {} old objects kept because a job still needs them",
        report.objects, report.jobs, report.notifications, report.kept_in_use
    )?;
    Ok(0)
}
