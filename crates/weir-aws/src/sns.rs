//! The notifier port on Amazon SNS: weir's topics (`success`, `alerts`, ...) map to SNS topics,
//! and SNS fans each message out to its subscriptions (email, SQS, Lambda, HTTPS).
//!
//! Messages are published with `MessageStructure=json`: email and other human-facing protocols
//! get the text (`default`), SQS and Lambda subscribers get the structured payload as JSON. The
//! notification's attributes become SNS message attributes, so subscriptions can use SNS filter
//! policies on `status` or `pipeline`. SNS limits: a subject of at most 100 printable ASCII
//! characters without line breaks (the subject is cleaned and cut to fit), at most 10 message
//! attributes, 256 KiB per message.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;
use weir_ports::{Notification, Notifier, PortError};

use crate::client::port_error;

/// SNS's limit on message attributes.
const MAX_ATTRIBUTES: usize = 10;

/// Publishes to SNS topics by weir topic name.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    /// weir topic → SNS topic ARN.
    topics: BTreeMap<String, String>,
}

impl SnsNotifier {
    pub fn new(client: Client, topics: BTreeMap<String, String>) -> SnsNotifier {
        SnsNotifier { client, topics }
    }

    pub fn topic_arn(&self, topic: &str) -> Option<&str> {
        self.topics.get(topic).map(String::as_str)
    }
}

/// Creates the topic if missing (CreateTopic is idempotent) and returns its ARN and whether it
/// existed before.
pub async fn ensure_topic(client: &Client, name: &str) -> Result<(String, bool), PortError> {
    let existed = find_topic(client, name).await?.is_some();
    let out = client
        .create_topic()
        .name(name)
        .send()
        .await
        .map_err(|e| port_error(&format!("creating SNS topic {name}"), e))?;
    let arn = out.topic_arn.ok_or_else(|| PortError::unavailable("creating a topic", "no TopicArn"))?;
    Ok((arn, !existed))
}

/// The ARN of the topic named `name`, if it exists.
pub async fn find_topic(client: &Client, name: &str) -> Result<Option<String>, PortError> {
    let mut token: Option<String> = None;
    loop {
        let out = client
            .list_topics()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| port_error("listing SNS topics", e))?;
        for t in out.topics.unwrap_or_default() {
            if let Some(arn) = t.topic_arn {
                if arn.rsplit(':').next() == Some(name) {
                    return Ok(Some(arn));
                }
            }
        }
        match out.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(None),
        }
    }
}

/// A subject SNS accepts: printable ASCII, no line breaks, at most 100 characters, not empty.
pub fn sns_subject(subject: &str) -> String {
    let cleaned: String = subject
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else if c.is_control() {
                ' '
            } else {
                '?'
            }
        })
        .collect();
    let cleaned = Notification::clamp_subject(cleaned.trim());
    if cleaned.is_empty() {
        "weir".to_string()
    } else {
        cleaned
    }
}

/// An attribute name SNS accepts (letters, digits, `_`, `-`, `.`).
fn attribute_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "_-.".contains(c) { c } else { '_' }).collect()
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn publish(&self, n: &Notification) -> Result<(), PortError> {
        let arn = self
            .topics
            .get(&n.topic)
            .ok_or_else(|| PortError::Invalid(format!("no SNS topic configured for topic {:?}", n.topic)))?;
        let payload = serde_json::json!({
            "subject": n.subject,
            "text": n.text,
            "attributes": n.attributes,
            "payload": n.payload,
        })
        .to_string();
        let message = serde_json::json!({
            "default": n.text,
            "email": n.text,
            "sqs": payload,
            "lambda": payload,
            "http": payload,
            "https": payload,
        })
        .to_string();
        let mut req = self
            .client
            .publish()
            .topic_arn(arn)
            .subject(sns_subject(&n.subject))
            .message_structure("json")
            .message(message);
        for (k, v) in n.attributes.iter().filter(|(_, v)| !v.is_empty()).take(MAX_ATTRIBUTES) {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| PortError::Invalid(e.to_string()))?;
            req = req.message_attributes(attribute_name(k), value);
        }
        req.send().await.map_err(|e| port_error(&format!("publishing to SNS topic {}", n.topic), e))?;
        Ok(())
    }
}
