//! The ports of weir: what the pipeline needs from the world, as traits.
//!
//! The pipeline code is written against these traits only, so it never knows whether it runs
//! embedded (folders and SQLite) or on AWS (S3, SQS, DynamoDB, SNS). Each port has one module;
//! `conformance` (feature `conformance`) holds the test suites that every adapter of a port
//! must pass, so that the embedded and the AWS adapters behave the same where it matters, and
//! `memory` (feature `memory`) adapters that keep everything in memory, for fast tests.

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod jobs;
#[cfg(feature = "memory")]
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod objects;
pub mod queue;
pub mod records;
pub mod secrets;
pub mod warehouse;

use std::sync::Arc;

pub use error::PortError;
pub use jobs::{
    plan_begin, Begin, BeginPlan, ExpiredJobs, JobFilter, JobPage, JobStore, Lease, ScheduleMark, SourceKey,
};
pub use metrics::JobMetrics;
pub use notify::{DeliveryStats, Notification, Notifier};
pub use objects::{
    clamp_page, BucketInfo, ByteStream, Metadata, ObjectInfo, ObjectPage, ObjectPages, ObjectStore, PutBody,
    PutItem, MAX_PAGE_KEYS,
};
pub use queue::{DeadLetter, Message, Queue, QueueSettings, QueueStats};
pub use records::{RecordItem, RecordsSink};
pub use secrets::{SecretError, SecretSource, Secrets};
pub use warehouse::{LoadError, LoadTarget, Warehouse, WarehouseInfo, WarehouseTx, Warehouses};

/// The adapters a pipeline runs on: one of each port (the records sink and the warehouses are
/// optional). Each adapter crate offers one constructor that returns this
/// (`weir_backends::open_embedded`, `weir_aws::open`); the binary chooses between them in one
/// place.
#[derive(Clone)]
pub struct Ports {
    pub objects: Arc<dyn ObjectStore>,
    pub queue: Arc<dyn Queue>,
    pub jobs: Arc<dyn JobStore>,
    pub records: Option<Arc<dyn RecordsSink>>,
    pub notifier: Arc<dyn Notifier>,
    /// Warehouse tables by pipeline (`[pipeline.sinks]`): chosen by configuration, the same on
    /// every backend, so the binary adds them to whichever ports it opened.
    pub warehouses: Warehouses,
}
