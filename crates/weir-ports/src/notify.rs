//! The notifier port: publish a message to a topic; the adapter fans it out to subscribers.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::PortError;

#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// `success`, `alerts`, or a configured topic.
    pub topic: String,
    /// At most 100 characters (SNS's limit).
    pub subject: String,
    /// The human-readable message.
    pub text: String,
    /// Filterable attributes (`status`, `pipeline`, `job_id`), like SNS message attributes.
    pub attributes: BTreeMap<String, String>,
    /// The same facts as structured data.
    pub payload: serde_json::Value,
    /// A whole HTML document for human readers (a daily report): email sends it as the HTML
    /// part beside `text`; `None` lets the email sender lay `text` out itself. Webhooks and SNS
    /// never carry it (they get `text` and `payload`).
    pub html: Option<String>,
}

impl Notification {
    /// Truncates a subject to SNS's 100 characters on a character boundary.
    pub fn clamp_subject(subject: &str) -> String {
        subject.chars().take(100).collect()
    }
}

/// Deliveries by outcome, for notifiers that deliver later (an outbox).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Stored and not yet delivered (including those waiting for a retry).
    pub pending: u64,
    pub delivered: u64,
    /// Given up after the last attempt.
    pub failed: u64,
}

#[async_trait]
pub trait Notifier: Send + Sync {
    async fn publish(&self, notification: &Notification) -> Result<(), PortError>;

    /// Whether publishing the same message twice (the same `id` attribute) delivers it once, as
    /// a notifier with an outbox does. The pipeline then publishes again whenever it cannot
    /// tell that an earlier attempt did (at least once into the notifier, once out of it);
    /// otherwise it claims a message in the job store before publishing it (at most once).
    fn idempotent(&self) -> bool {
        false
    }

    /// Counts of deliveries, when this notifier keeps them (`None`: it delivers as it publishes).
    async fn delivery_stats(&self) -> Result<Option<DeliveryStats>, PortError> {
        Ok(None)
    }

    /// Removes up to `limit` stored deliveries that ended (delivered, or given up) before
    /// `before_ms`, keeping [`Notifier::delivery_stats`]' counts as they were; with `dry_run`,
    /// removes nothing and counts every one that would go. Notifiers that keep nothing have
    /// nothing to remove.
    async fn expire_delivered(&self, before_ms: i64, limit: usize, dry_run: bool) -> Result<u64, PortError> {
        let _ = (before_ms, limit, dry_run);
        Ok(0)
    }
}
