//! The queue port: a standard queue with the semantics of Amazon SQS and its dead-letter queue.
//!
//! At-least-once delivery; a received message is invisible for the visibility timeout and comes
//! back if it is not deleted; each receive counts; a message received `max_receive_count` times
//! without being deleted is moved to the DLQ on its next receive (SQS redrive); long polling
//! returns as soon as a message is available; messages older than the retention period are
//! dropped.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::PortError;

/// Queue attributes, fixed when the queue is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    pub visibility_timeout: Duration,
    pub max_receive_count: u32,
    pub retention: Duration,
    pub dlq_retention: Duration,
}

impl From<&weir_core::config::QueueConfig> for QueueSettings {
    fn from(c: &weir_core::config::QueueConfig) -> Self {
        QueueSettings {
            visibility_timeout: Duration::from_secs(c.visibility_timeout_secs),
            max_receive_count: c.max_receive_count,
            retention: Duration::from_secs(c.retention_secs),
            dlq_retention: Duration::from_secs(c.dlq_retention_secs),
        }
    }
}

/// A received message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub message_id: String,
    /// Names this receive; delete and change-visibility need it. A later receive of the same
    /// message gets a new handle and the old one stops working.
    pub receipt_handle: String,
    pub body: String,
    /// Receives so far, this one included (SQS `ApproximateReceiveCount`).
    pub receive_count: u32,
    pub sent_at: DateTime<Utc>,
}

/// A message in the dead-letter queue.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
    pub sent_at: DateTime<Utc>,
    pub dead_lettered_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QueueStats {
    /// Messages that can be received now.
    pub visible: u64,
    /// Received and not yet deleted or visible again.
    pub in_flight: u64,
    /// Sent with a delay or waiting for a backoff to pass.
    pub delayed: u64,
    pub dead_letters: u64,
    /// Age of the oldest message in the main queue.
    pub oldest_age: Option<Duration>,
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends one message; returns its id. Durable when this returns.
    async fn send(&self, body: &str) -> Result<String, PortError>;

    /// Sends a message tagged with `tag` (the object version it is about, say). With
    /// `unless_queued`, nothing is sent while a message with that tag is still on the queue
    /// (visible, in flight or delayed): `None` then. A queue that cannot tell (SQS) sends
    /// anyway; weir's own reconcile, the one user, runs on the embedded queue.
    async fn send_tagged(
        &self,
        body: &str,
        tag: &str,
        unless_queued: bool,
    ) -> Result<Option<String>, PortError> {
        let _ = (tag, unless_queued);
        self.send(body).await.map(Some)
    }

    /// Sends up to 10 messages at once; returns their ids in order.
    async fn send_batch(&self, bodies: &[String]) -> Result<Vec<String>, PortError>;

    /// Receives up to `max` (1..=10) messages, waiting up to `wait` for the first one to arrive.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, PortError>;

    /// Deletes a received message. A stale handle (the message was received again since) is an
    /// error; deleting an already deleted message succeeds.
    async fn delete(&self, receipt_handle: &str) -> Result<(), PortError>;

    /// Makes a received message visible again after `timeout` (zero: at once).
    async fn change_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<(), PortError>;

    async fn stats(&self) -> Result<QueueStats, PortError>;

    /// Moves a received message to the DLQ now, without waiting for its receives to run out:
    /// for messages that can never succeed (a body that is not an event). On SQS this is a
    /// send to the DLQ and a delete.
    async fn dead_letter(&self, receipt_handle: &str) -> Result<(), PortError>;

    /// Dead letters, oldest first.
    async fn dlq_list(&self, limit: usize) -> Result<Vec<DeadLetter>, PortError>;

    /// Moves the given dead letters (all of them if `ids` is `None`) back to the main queue
    /// with a fresh receive count. Returns how many moved.
    async fn dlq_replay(&self, ids: Option<&[String]>) -> Result<usize, PortError>;

    /// Deletes every dead letter. Returns how many.
    async fn dlq_purge(&self) -> Result<usize, PortError>;
}
