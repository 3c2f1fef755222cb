//! The transform's load into the pipeline's warehouse table (`[pipeline.sinks]`).
//!
//! The load is opened before the pass (a database that is down fails the attempt before any
//! work), fed batch by batch while the pass runs, and committed by the transform after the
//! check that the source was not replaced meanwhile and before the outputs are stored. So a
//! retry of any part reloads the file, which replaces its own rows: each valid row is in the
//! table once. The transform's completion is checkpointed with the load's count, so a job
//! resumed after it does not load again.
//!
//! The database refusing a row fails the file: the row's position in the load is turned back
//! into its line in the source by running the pass again up to it (only then: keeping every
//! row's line for the whole load would make memory grow with the file).

use std::cell::Cell;
use std::io::{self, Read};

use serde_json::Value;
use weir_core::job::WarehouseLoad;
use weir_core::rows::RowBatch;
use weir_ports::{LoadError, LoadTarget, WarehouseInfo, WarehouseTx};
use weir_process::{Options, Plan};
use weir_workflow::TaskError;

use super::TaskContext;
use crate::state::JobInput;

/// A row the database refused: the file fails, and it is not retried.
pub const LOAD_REFUSED: &str = "Weir.LoadRefused";
/// The load could not happen now: retried with backoff, dead-lettered after the last receive.
pub const WAREHOUSE_UNAVAILABLE: &str = "Weir.WarehouseUnavailable";

/// Why the pass stopped, when it was the load that stopped it.
pub(super) const LOAD_STOPPED: &str = "the warehouse load stopped";

/// One job's load in progress, and where it goes.
pub(super) struct Load {
    pub tx: Box<dyn WarehouseTx>,
    pub info: WarehouseInfo,
}

/// Opens the job's load if the pipeline has a warehouse.
pub(super) async fn begin(ctx: &TaskContext, input: &JobInput) -> Result<Option<Load>, TaskError> {
    let Some(warehouse) = ctx.ports.warehouses.get(&ctx.pipeline.name) else { return Ok(None) };
    let info = warehouse.info();
    let target = LoadTarget {
        job_id: input.job_id.clone(),
        source_bucket: input.source_bucket.clone(),
        source_key: input.source_key.clone(),
    };
    match warehouse.begin(&target).await {
        Ok(tx) => Ok(Some(Load { tx, info })),
        Err(e) => Err(unavailable_or_refused(e, &info, input, None)),
    }
}

/// A load failure as the workflow sees it. `line` is the refused row's line in the source,
/// when it is known.
pub(super) fn unavailable_or_refused(
    e: LoadError,
    info: &WarehouseInfo,
    input: &JobInput,
    line: Option<u64>,
) -> TaskError {
    let (bucket, key) = (&input.source_bucket, &input.source_key);
    match e {
        LoadError::Refused { reason, .. } => {
            let at = line.map_or(String::new(), |l| format!(" line {l}"));
            TaskError::permanent(
                LOAD_REFUSED,
                format!(
                    "{bucket}/{key}{at}: {reason}; nothing of the file was loaded into {} at {}",
                    info.table, info.target
                ),
            )
        }
        LoadError::Port(e) => TaskError::transient(
            WAREHOUSE_UNAVAILABLE,
            format!("loading {bucket}/{key} into {} ({}): {e}", info.table, info.sink),
        ),
    }
}

/// The line in the source of the `n`-th valid row (1-based), found by running the pass over
/// `input` again up to that row.
pub(super) fn line_of_row(plan: &Plan, input: impl Read, name: &str, n: u64) -> Option<u64> {
    let (seen, found) = (Cell::new(0u64), Cell::new(None));
    let emit = |batch: RowBatch| {
        let len = batch.len() as u64;
        if seen.get() + len >= n && n > seen.get() {
            found.set(Some(batch.row((n - seen.get() - 1) as usize).line));
            return Err(io::Error::other("found"));
        }
        seen.set(seen.get() + len);
        Ok(Some(batch))
    };
    let options = Options { source_name: Some(name), rows: Some(&emit), ..Options::default() };
    let _ = weir_process::process_with(plan, input, io::sink(), io::sink(), &options);
    found.get()
}

/// The job state's record of a committed load.
pub(super) fn record(info: &WarehouseInfo, rows: u64) -> Value {
    serde_json::to_value(WarehouseLoad {
        sink: info.sink.clone(),
        target: info.target.clone(),
        table: info.table.clone(),
        rows,
        mode: info.mode.clone(),
        error: None,
    })
    .expect("a load record serializes")
}

/// Feeds batches from the pass to the load until the pass ends or the load fails (then the
/// receiver is dropped with this future's state, and the pass stops at its next batch). Each
/// written batch goes back to the pass through `spent` to be filled again, unless the pass
/// already has enough of them (then it is dropped): a load of any length cycles through a few
/// batches, and their memory stays with the pass's thread.
pub(super) async fn feed(
    tx: &mut dyn WarehouseTx,
    mut rows: tokio::sync::mpsc::Receiver<RowBatch>,
    spent: std::sync::mpsc::SyncSender<RowBatch>,
) -> Result<(), LoadError> {
    while let Some(batch) = rows.recv().await {
        tx.write(&batch).await?;
        let _ = spent.try_send(batch);
    }
    Ok(())
}
