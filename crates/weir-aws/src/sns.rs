//! The notifier port on Amazon SNS: weir's topics (`success`, `alerts`, ...) map to SNS topics,
//! and SNS fans each message out to its subscriptions (email, SQS, Lambda, HTTPS).
//!
//! Messages are published with `MessageStructure=json`: email and other human-facing protocols
//! get the text (`default`), SQS and Lambda subscribers get the structured payload as JSON. The
//! notification's attributes become SNS message attributes, so subscriptions can use SNS filter
//! policies on `status` or `pipeline`. SNS limits: a subject of at most 100 printable ASCII
//! characters without line breaks (the subject is cleaned and cut to fit: weir's status signs
//! become words, `✅` → `[OK]`, accented Latin letters lose their accents, anything else is `?`;
//! the UTF-8 subject as written is in the JSON payload's `subject`), at most 10 message
//! attributes, 256 KiB per message. The subscriptions `weir setup aws` makes from the config are
//! in [`crate::subscriptions`].

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
/// weir's status signs become words and accented Latin letters their base letter, so the subject
/// still reads (`✅ weir: café.csv processed` → `[OK] weir: cafe.csv processed`).
pub fn sns_subject(subject: &str) -> String {
    let mut cleaned = String::with_capacity(subject.len());
    for c in subject.chars() {
        match c {
            _ if c.is_ascii() && !c.is_ascii_control() => cleaned.push(c),
            _ if c.is_control() => cleaned.push(' '),
            '✅' | '✔' => cleaned.push_str("[OK]"),
            '❌' | '✖' => cleaned.push_str("[FAILED]"),
            '🚨' => cleaned.push_str("[ALERT]"),
            '⚠' => cleaned.push_str("[WARNING]"),
            // Variation selectors and zero-width joiners that follow an emoji.
            '\u{FE0E}' | '\u{FE0F}' | '\u{200D}' => {}
            _ => cleaned.push(latin_base(c).unwrap_or('?')),
        }
    }
    let cleaned = Notification::clamp_subject(cleaned.trim());
    if cleaned.is_empty() {
        "weir".to_string()
    } else {
        cleaned
    }
}

/// The base letter of an accented Latin-1 letter (`é` → `e`).
fn latin_base(c: char) -> Option<char> {
    const FROM: &str = "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöøùúûüýÿ";
    const TO: &str = "AAAAAACEEEEIIIINOOOOOOUUUUYaaaaaaceeeeiiiinoooooouuuuyy";
    FROM.chars().position(|f| f == c).and_then(|i| TO.chars().nth(i))
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
        // The embedded webhook's JSON body, so a webhook reads the same message on either backend.
        let payload = serde_json::json!({
            "topic": n.topic,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_keep_their_meaning_in_ascii() {
        assert_eq!(
            sns_subject("✅ weir: café.csv processed (8 rows)"),
            "[OK] weir: cafe.csv processed (8 rows)"
        );
        assert_eq!(sns_subject("❌ weir: x.csv rejected"), "[FAILED] weir: x.csv rejected");
        assert_eq!(sns_subject("⚠\u{FE0F} alarm"), "[WARNING] alarm");
        assert_eq!(sns_subject("🚨 weir: dead letter\nin queue"), "[ALERT] weir: dead letter in queue");
        assert_eq!(sns_subject("ไทย.csv"), "???.csv");
        assert_eq!(sns_subject("🎉"), "?");
        assert_eq!(sns_subject("\u{FE0F}"), "weir");
        assert!(sns_subject(&"✅".repeat(60)).len() <= 100);
    }
}
