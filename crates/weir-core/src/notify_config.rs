//! The `[notify]` section: topics' subscriptions (log, email, webhook), their attribute filters and
//! how deliveries are retried.
//!
//! It lives apart from [`crate::config`] because it is the one part of the configuration that the
//! notification adapters read field by field; `config` re-exports it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::problem::Problem;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    pub subscriptions: Vec<SubscriptionConfig>,
    /// Attempts per email/webhook delivery before it is recorded as failed.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled after each failure up to `retry_max_ms`.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            subscriptions: vec![SubscriptionConfig::log("success"), SubscriptionConfig::log("alerts")],
            max_attempts: 8,
            retry_initial_ms: 2_000,
            retry_max_ms: 300_000,
        }
    }
}

impl NotifyConfig {
    /// Every problem with the subscriptions, each naming its subscription.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.max_attempts == 0 {
            problems.push(Problem::new("notify.max_attempts", "must be at least 1"));
        }
        for (i, s) in self.subscriptions.iter().enumerate() {
            let at = format!("notify.subscriptions[{i}] ({} {:?})", s.topic, s.kind);
            match s.kind {
                SubscriptionKind::Log => {}
                SubscriptionKind::Email => {
                    if s.host.as_deref().unwrap_or("").is_empty() {
                        problems.push(Problem::new(at.to_string(), "email needs `host`"));
                    }
                    if s.from.as_deref().unwrap_or("").is_empty() {
                        problems.push(Problem::new(at.to_string(), "email needs `from`"));
                    }
                    if s.to.is_empty() {
                        problems
                            .push(Problem::new(at.to_string(), "email needs at least one address in `to`"));
                    }
                    if s.ca_file.is_some() && s.security == SmtpSecurity::None {
                        problems.push(Problem::new(
                            at.to_string(),
                            "`ca_file` needs `security = \"starttls\"` or `\"tls\"`: with `none` nothing is encrypted",
                        ));
                    }
                }
                SubscriptionKind::Webhook => match s.url.as_deref() {
                    Some(u) if u.starts_with("http://") || u.starts_with("https://") => {}
                    _ => problems
                        .push(Problem::new(at.to_string(), "webhook needs an http:// or https:// `url`")),
                },
            }
        }
        problems
    }
}

/// One subscriber of one topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    pub topic: String,
    #[serde(rename = "type")]
    pub kind: SubscriptionKind,
    /// SNS filter-policy style: every named attribute must be present with one of the listed
    /// values (`filter = { status = ["rejected", "failed"], pipeline = ["sales"] }`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub filter: BTreeMap<String, Vec<String>>,
    // email
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Default: 25 for `none`, 587 for `starttls`, 465 for `tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: SmtpSecurity,
    /// A PEM file of CA certificates trusted besides the public roots, for a relay whose
    /// certificate a private CA signed (`starttls` and `tls` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// SMTP login; `WEIR_SMTP_USERNAME`/`WEIR_SMTP_PASSWORD` when not set here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    // webhook
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default)]
    pub format: WebhookFormat,
}

impl SubscriptionConfig {
    /// A log subscription of `topic`.
    pub fn log(topic: &str) -> Self {
        SubscriptionConfig {
            topic: topic.into(),
            kind: SubscriptionKind::Log,
            filter: BTreeMap::new(),
            host: None,
            port: None,
            security: SmtpSecurity::default(),
            ca_file: None,
            username: None,
            password: None,
            from: None,
            to: Vec::new(),
            url: None,
            format: WebhookFormat::default(),
        }
    }

    /// Whether a message with these attributes passes the filter (an empty filter passes all).
    pub fn accepts(&self, attributes: &BTreeMap<String, String>) -> bool {
        self.filter.iter().all(|(name, allowed)| attributes.get(name).is_some_and(|v| allowed.contains(v)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionKind {
    /// One structured JSON line per message on the log.
    Log,
    /// An email over SMTP (text and HTML bodies).
    Email,
    /// A JSON POST of the message.
    Webhook,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP (loopback relays, tests).
    None,
    /// Plain connection upgraded with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// `{"topic", "subject", "text", "attributes", "payload"}`.
    #[default]
    Json,
    /// Slack-compatible `{"text": ...}`.
    Slack,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_email_and_webhook_with_filters() {
        let c: NotifyConfig = toml::from_str(
            r#"
            max_attempts = 3
            [[subscriptions]]
            topic = "alerts"
            type = "email"
            host = "127.0.0.1"
            port = 2525
            security = "none"
            from = "weir@example.com"
            to = ["ops@example.com"]
            filter = { status = ["rejected", "failed"], pipeline = ["sales"] }
            [[subscriptions]]
            topic = "success"
            type = "webhook"
            url = "http://127.0.0.1:9/hook"
            format = "slack"
            "#,
        )
        .unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let email = &c.subscriptions[0];
        assert_eq!(email.security, SmtpSecurity::None);
        let attrs =
            |s: &str, p: &str| BTreeMap::from([("status".into(), s.into()), ("pipeline".into(), p.into())]);
        assert!(email.accepts(&attrs("rejected", "sales")));
        assert!(!email.accepts(&attrs("succeeded", "sales")));
        assert!(!email.accepts(&attrs("failed", "other")));
        assert!(!email.accepts(&BTreeMap::new()));
        assert_eq!(c.subscriptions[1].format, WebhookFormat::Slack);
        assert!(c.subscriptions[1].accepts(&BTreeMap::new()));
    }

    #[test]
    fn reports_incomplete_subscriptions() {
        let c: NotifyConfig =
            toml::from_str("[[subscriptions]]\ntopic = \"alerts\"\ntype = \"email\"\n").unwrap();
        assert_eq!(c.validate().len(), 3);
    }
}
