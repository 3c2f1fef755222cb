//! The ports of weir: what the pipeline needs from the world, as traits.
//!
//! The pipeline code is written against these traits only, so it never knows whether it runs
//! embedded (folders and SQLite) or on AWS (S3, SQS, DynamoDB, SNS). Each port has one module;
//! [`conformance`] holds the test suites that every adapter of a port must pass, so that the
//! embedded and the AWS adapters behave the same where it matters.

pub mod conformance;
pub mod error;
pub mod jobs;
pub mod notify;
pub mod objects;
pub mod queue;
pub mod records;

pub use error::PortError;
pub use jobs::{plan_begin, Begin, BeginPlan, JobFilter, JobStore, Lease, SourceKey};
pub use notify::{DeliveryStats, Notification, Notifier};
pub use objects::{BucketInfo, ByteStream, Metadata, ObjectInfo, ObjectStore, PutBody, PutItem};
pub use queue::{DeadLetter, Message, Queue, QueueSettings, QueueStats};
pub use records::{RecordItem, RecordsSink};
