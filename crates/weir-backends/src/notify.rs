//! Notifier adapters that need nothing but this process: the log subscriber and the fan-out.
//!
//! [`TopicNotifier`] is what the pipeline talks to: it holds the configured subscriptions and
//! hands each published message to every subscriber of its topic, the way an SNS topic does.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use weir_core::config::{NotifyConfig, SubscriptionKind};
use weir_ports::{Notification, Notifier, PortError, Secrets};

use crate::deliver::{EmailSender, WebhookSender};

/// Writes each message as one structured JSON log line (target `weir::notify`).
#[derive(Debug, Default, Clone)]
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn publish(&self, n: &Notification) -> Result<(), PortError> {
        let attributes = serde_json::to_string(&n.attributes).unwrap_or_default();
        tracing::info!(
            target: "weir::notify",
            topic = %n.topic,
            subject = %n.subject,
            attributes = %attributes,
            payload = %n.payload,
            text = %n.text,
            "notification"
        );
        Ok(())
    }
}

/// Topics and their subscribers, each with its attribute filter (empty: every message).
#[derive(Clone, Default)]
pub struct TopicNotifier {
    subscriptions: Vec<(String, Filter, Arc<dyn Notifier>)>,
}

/// A subscription's attribute filter: each named attribute must have one of the listed values.
type Filter = BTreeMap<String, Vec<String>>;

impl TopicNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// The subscriptions named in the config with their filters, each sent to once with no
    /// retries; `weir run` uses [`crate::OutboxNotifier`] instead, which retries and survives a
    /// restart (on AWS, SNS delivers).
    pub fn from_config(config: &NotifyConfig, secrets: Arc<Secrets>) -> Self {
        let mut t = TopicNotifier::new();
        for sub in &config.subscriptions {
            let notifier: Arc<dyn Notifier> = match sub.kind {
                SubscriptionKind::Log => Arc::new(LogNotifier),
                SubscriptionKind::Email => match EmailSender::from_config(sub, secrets.clone()) {
                    Ok(s) => Arc::new(s),
                    Err(e) => {
                        tracing::warn!(topic = %sub.topic, error = %e, "email subscription skipped");
                        continue;
                    }
                },
                SubscriptionKind::Sms => {
                    tracing::warn!(topic = %sub.topic, "sms subscription skipped: it needs SNS, the AWS backend");
                    continue;
                }
                SubscriptionKind::Webhook => match WebhookSender::from_config(sub, secrets.clone()) {
                    Ok(s) => Arc::new(s),
                    Err(e) => {
                        tracing::warn!(topic = %sub.topic, error = %e, "webhook subscription skipped");
                        continue;
                    }
                },
            };
            t.subscriptions.push((sub.topic.clone(), sub.filter.clone(), notifier));
        }
        t
    }

    /// Adds a subscriber of every message of `topic`.
    pub fn subscribe(&mut self, topic: &str, notifier: Arc<dyn Notifier>) {
        self.subscriptions.push((topic.to_owned(), BTreeMap::new(), notifier));
    }
}

#[async_trait]
impl Notifier for TopicNotifier {
    /// Delivers to every subscriber of the topic; the first failure is returned after all
    /// subscribers have been tried.
    async fn publish(&self, n: &Notification) -> Result<(), PortError> {
        let mut first_error = None;
        for (topic, filter, sub) in &self.subscriptions {
            let passes = filter
                .iter()
                .all(|(name, allowed)| n.attributes.get(name).is_some_and(|v| allowed.contains(v)));
            if topic == &n.topic && passes {
                if let Err(e) = sub.publish(n).await {
                    tracing::warn!(topic = %n.topic, error = %e, "notification delivery failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    #[async_trait]
    impl Notifier for Recorder {
        async fn publish(&self, n: &Notification) -> Result<(), PortError> {
            self.0.lock().unwrap().push(n.subject.clone());
            Ok(())
        }
    }

    #[tokio::test]
    async fn fans_out_by_topic() {
        let a = Arc::new(Recorder::default());
        let b = Arc::new(Recorder::default());
        let mut t = TopicNotifier::new();
        t.subscribe("success", a.clone());
        t.subscribe("alerts", b.clone());
        t.subscribe("success", b.clone());
        let n = Notification {
            html: None,
            topic: "success".into(),
            subject: "done".into(),
            text: String::new(),
            attributes: Default::default(),
            payload: serde_json::Value::Null,
        };
        t.publish(&n).await.unwrap();
        assert_eq!(*a.0.lock().unwrap(), vec!["done"]);
        assert_eq!(*b.0.lock().unwrap(), vec!["done"]);
    }
}
