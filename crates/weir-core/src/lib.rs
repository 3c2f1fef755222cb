//! Domain types shared by every part of weir.
//!
//! This crate is the vocabulary of the product: the S3 event notification as AWS sends it, the job
//! record and its states, the pipeline configuration (sources, schema, derived fields, summary),
//! the summary a job produces, the rules for object keys and the error classes that decide
//! whether a failure is retried. It performs no I/O and depends on no other crate of ours, so
//! every adapter and every tool can share it.

pub mod alarms;
pub mod aws_config;
pub mod backoff;
pub mod config;
pub mod error;
pub mod event;
pub mod html;
pub mod image;
pub mod image_config;
pub mod job;
pub mod key_template;
pub mod keys;
pub mod notify_config;
pub mod output_layout;
pub mod private_file;
pub mod problem;
pub mod report_config;
pub mod rows;
pub mod schedule;
pub mod schedule_config;
pub mod secret;
pub mod sink_config;
pub mod stats;
pub mod summary;

pub use backoff::Backoff;
pub use config::{Config, PipelineConfig};
pub use error::ErrorClass;
pub use event::{S3Event, S3EventRecord};
pub use job::{Job, JobId, JobStatus};
pub use problem::Problem;
pub use secret::SecretValue;
pub use summary::Summary;

/// The `Server` header of every answer of weir's own S3 endpoint (S3 says `AmazonS3`): how
/// `weir setup aws` tells that an endpoint it was pointed at is weir, not AWS.
pub const WEIR_S3_SERVER: &str = "weir";
