//! weir on AWS: the scale-out adapters of the ports in `weir-ports`.
//!
//! The embedded adapters (`weir-backends`) keep weir on one machine; these put the same pipeline
//! on AWS, where any number of `weir worker` processes or Lambda invocations share the work:
//! the queue is SQS (redrive done by SQS itself), objects live in S3, jobs and records in
//! DynamoDB, and notifications go out through SNS. Every adapter takes an SDK client built from
//! one [`client::load`]ed configuration, so an endpoint (moto in the tests) applies to all.

pub mod client;
pub mod dynamo;
pub mod s3;
pub mod sns;
pub mod sqs;

pub use client::AwsSettings;
pub use dynamo::{DynamoJobStore, DynamoRecordsSink};
pub use s3::{S3ObjectStore, S3Settings};
pub use sns::SnsNotifier;
pub use sqs::{SqsQueue, SqsQueueNames};
