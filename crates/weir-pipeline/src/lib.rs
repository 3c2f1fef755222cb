//! The pipeline: what happens to a file, written against the ports only.
//!
//! * [`ingest`] — an object arrives: store it, emit the S3-shaped event to the queue for every
//!   matching source, and record the job as `queued`.
//! * [`tasks`] — the named workflow tasks (`weir:validate-schema`, `weir:transform`,
//!   `weir:move-to-failed`, `weir:archive`, `weir:notify`, and `weir:process-image` for image
//!   pipelines) that take and return JSON state.
//! * [`engine`] — runs one queue message: parse the event, find or create the job, run the
//!   pipeline's workflow, record the outcome, and say what to do with the message.
//! * [`worker`] — the receive loop with bounded concurrency and graceful shutdown.
//! * [`workflow`] — which state machine a pipeline runs, and how its resources map to tasks.
//! * [`dlq`] — one alert per message that reaches the dead-letter queue.
//! * [`reconcile`] — events for objects already in a bucket (after a crash, or a backfill).
//! * [`report`] — the daily report: computed, written to the reports bucket, published.
//! * [`schedule`] — work on a clock (`[[schedule]]`), fired once per due time.
//! * [`retention`] — old objects and records removed in small batches, never what a job needs.
//! * [`provenance`] — the source every written object records in its metadata.
//! * [`one_shot`] — `weir process`: the same transform on a local file, no queue, no store.
//!
//! Which backend is behind the ports (folders and SQLite, or AWS) is decided by the binary.

pub mod check;
pub mod checkpoint;
pub mod dlq;
pub mod engine;
pub mod faults;
pub mod ingest;
pub mod messages;
pub mod one_shot;
pub mod provenance;
pub mod reconcile;
pub mod report;
pub mod retention;
pub mod schedule;
pub mod state;
pub mod tasks;
pub mod worker;
pub mod workflow;

pub use engine::{Disposition, Engine, EngineError};
/// The ports the pipeline runs on (defined with them, in `weir-ports`).
pub use weir_ports::Ports;
pub use worker::Worker;

/// The workflow every data pipeline runs unless it names its own.
pub const DEFAULT_WORKFLOW: &str = include_str!("default_workflow.asl.json");

/// The workflow every image pipeline runs unless it names its own.
pub const DEFAULT_IMAGE_WORKFLOW: &str = include_str!("default_image_workflow.asl.json");
