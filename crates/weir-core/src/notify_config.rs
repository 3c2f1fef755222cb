//! The `[notify]` section: topics' subscriptions (log, email, sms, webhook), their attribute
//! filters and how deliveries are retried.
//!
//! It lives apart from [`crate::config`] because it is the one part of the configuration that the
//! notification adapters read field by field; `config` re-exports it.
//!
//! What a subscription means depends on the backend. Embedded, weir delivers email over SMTP
//! and webhooks itself (through the outbox), and `sms` is refused: only SNS sends text messages.
//! On AWS, `weir setup aws` makes each email address, phone number and webhook URL an SNS
//! subscription of the topic's SNS topic, its `filter` an SNS filter policy on the message
//! attributes weir publishes ([`MESSAGE_ATTRIBUTES`]); SNS sends the email itself, so SMTP
//! settings and the Slack format, which only weir's own delivery knows, are refused there.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::problem::Problem;
use crate::secret::SecretValue;

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

/// The message attributes weir's notifications carry (job messages: `id`, `job_id`, `pipeline`,
/// `status`; dead letters: `alert`, `status`; reports: `report`, `date`, `status`, `pipeline`):
/// the names a `filter` can use. On SNS they are the messages' attributes, so filter policies
/// match them.
pub const MESSAGE_ATTRIBUTES: &[&str] = &["alert", "date", "id", "job_id", "pipeline", "report", "status"];

/// SNS's limits on a filter policy: attribute names, and combinations of values.
const SNS_FILTER_MAX_KEYS: usize = 5;
const SNS_FILTER_MAX_COMBINATIONS: usize = 150;
/// Subscriptions weir manages per SNS topic: each is marked by one tag on the topic, and SNS
/// allows 50 tags on a resource.
pub const SNS_MAX_SUBSCRIPTIONS_PER_TOPIC: usize = 45;

/// Whether `n` is a phone number in E.164 form (`+` and 8 to 15 digits), as SNS wants for SMS.
pub fn is_e164(n: &str) -> bool {
    n.strip_prefix('+').is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

impl NotifyConfig {
    /// Every problem with the subscriptions, each naming its subscription. `aws_topics`: on the
    /// AWS backend, its weir topic → SNS topic map (`[aws.topics]`); `None`: embedded.
    pub fn validate(&self, aws_topics: Option<&BTreeMap<String, String>>) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.max_attempts == 0 {
            problems.push(Problem::new("notify.max_attempts", "must be at least 1"));
        }
        // On AWS: (topic, protocol, endpoint) of each SNS subscription, to find duplicates.
        let mut sns_endpoints: Vec<(String, String, String)> = Vec::new();
        for (i, s) in self.subscriptions.iter().enumerate() {
            let at = format!("notify.subscriptions[{i}] ({} {:?})", s.topic, s.kind);
            for (name, secret) in [("password", &s.password), ("url", &s.url)] {
                if let Some(secret) = secret {
                    for p in secret.validate() {
                        problems.push(p.under(&format!("notify.subscriptions[{i}].{name}")));
                    }
                }
            }
            let mut problem = |message: String| problems.push(Problem::new(at.clone(), message));
            match (s.kind, aws_topics.is_some()) {
                (SubscriptionKind::Log, _) => {}
                (SubscriptionKind::Email, false) => {
                    if s.host.as_deref().unwrap_or("").is_empty() {
                        problem("email needs `host`".into());
                    }
                    if s.from.as_deref().unwrap_or("").is_empty() {
                        problem("email needs `from`".into());
                    }
                    if s.to.is_empty() {
                        problem("email needs at least one address in `to`".into());
                    }
                    if s.ca_file.is_some() && s.security == SmtpSecurity::None {
                        problem(
                            "`ca_file` needs `security = \"starttls\"` or `\"tls\"`: with `none` nothing is encrypted"
                                .into(),
                        );
                    }
                }
                (SubscriptionKind::Email, true) => {
                    let smtp: Vec<&str> = [
                        ("host", s.host.is_some()),
                        ("port", s.port.is_some()),
                        ("security", s.security != SmtpSecurity::default()),
                        ("username", s.username.is_some()),
                        ("password", s.password.is_some()),
                        ("from", s.from.is_some()),
                        ("ca_file", s.ca_file.is_some()),
                    ]
                    .into_iter()
                    .filter_map(|(name, set)| set.then_some(name))
                    .collect();
                    if !smtp.is_empty() {
                        problem(format!(
                            "`{}` are SMTP settings of the embedded backend; on AWS, SNS sends the email itself \
                             (each address confirms its subscription first): remove them",
                            smtp.join("`, `")
                        ));
                    }
                    if s.to.is_empty() {
                        problem("email needs at least one address in `to`".into());
                    }
                    for a in s.to.iter().filter(|a| !a.contains('@') || a.contains(char::is_whitespace)) {
                        problem(format!("{a:?} is not an email address"));
                    }
                }
                (SubscriptionKind::Sms, false) => problem(
                    "sms needs SNS, the AWS backend (an [aws] section): embedded weir cannot send text \
                     messages; use email or a webhook here"
                        .into(),
                ),
                (SubscriptionKind::Sms, true) => {
                    if s.to.is_empty() {
                        problem("sms needs at least one phone number in `to`".into());
                    }
                    for n in s.to.iter().filter(|n| !is_e164(n)) {
                        problem(format!("{n:?} is not a phone number in E.164 form (\"+14155550100\")"));
                    }
                }
                (SubscriptionKind::Webhook, on_aws) => {
                    match &s.url {
                        // A reference is checked when it is read, embedded; on AWS, SNS needs the URL itself.
                        Some(SecretValue::Manager(_) | SecretValue::File(_)) if on_aws => problem(
                            "on AWS the webhook's `url` becomes an SNS subscription, which needs the URL as \
                             written: a `secret` or `file` reference cannot be used there"
                                .into(),
                        ),
                        Some(SecretValue::Manager(_) | SecretValue::File(_)) => {}
                        Some(SecretValue::Inline(u))
                            if u.starts_with("http://") || u.starts_with("https://") => {}
                        _ => problem("webhook needs an http:// or https:// `url`".into()),
                    }
                    if on_aws && s.format == WebhookFormat::Slack {
                        problem(
                            "format = \"slack\" needs the embedded backend: on AWS, SNS posts weir's JSON \
                             message (and the endpoint must confirm the subscription first)"
                                .into(),
                        );
                    }
                }
            }
            for (name, values) in &s.filter {
                if !MESSAGE_ATTRIBUTES.contains(&name.as_str()) {
                    problem(format!(
                        "filter on `{name}`: weir's messages have no such attribute (they have {}), so nothing would pass",
                        MESSAGE_ATTRIBUTES.join(", ")
                    ));
                }
                if values.is_empty() {
                    problem(format!("filter on `{name}` lists no value, so nothing would pass"));
                }
            }
            let Some(topics) = aws_topics else { continue };
            if s.kind == SubscriptionKind::Log {
                continue;
            }
            if !topics.contains_key(&s.topic) {
                problem(format!(
                    "on AWS a subscription is one of an SNS topic, and [aws.topics] names none for {:?}",
                    s.topic
                ));
            }
            if s.filter.len() > SNS_FILTER_MAX_KEYS {
                problem(format!("SNS filter policies take at most {SNS_FILTER_MAX_KEYS} attributes"));
            }
            let combinations: usize = s.filter.values().map(|v| v.len().max(1)).product();
            if combinations > SNS_FILTER_MAX_COMBINATIONS {
                problem(format!(
                    "the filter has {combinations} combinations of values; SNS allows {SNS_FILTER_MAX_COMBINATIONS}"
                ));
            }
            for (protocol, endpoint) in s.sns_endpoints() {
                let key = (s.topic.clone(), protocol.to_string(), endpoint.to_string());
                if sns_endpoints.contains(&key) {
                    problem(format!(
                        "{protocol} {endpoint} is subscribed to {:?} twice; SNS keeps one subscription per \
                         endpoint and topic (merge their filters)",
                        s.topic
                    ));
                } else {
                    sns_endpoints.push(key);
                }
            }
        }
        let topics: std::collections::BTreeSet<&String> = sns_endpoints.iter().map(|(t, _, _)| t).collect();
        for topic in topics {
            let count = sns_endpoints.iter().filter(|(t, _, _)| t == topic).count();
            if count > SNS_MAX_SUBSCRIPTIONS_PER_TOPIC {
                problems.push(Problem::new(
                    format!("notify.subscriptions ({topic})"),
                    format!("{count} SNS subscriptions; weir manages at most {SNS_MAX_SUBSCRIPTIONS_PER_TOPIC} per topic"),
                ));
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
    /// A string, `{ secret = "arn:...", key = "..." }` or `{ file = "/run/secrets/x" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    // webhook
    /// A string or a reference to one, as `password`: a webhook's path is often its secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<SecretValue>,
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

    /// The SNS subscriptions this subscription is on AWS, as (protocol, endpoint): one per address
    /// or phone number in `to`, or the webhook's URL (`http` or `https` by its scheme); none for
    /// `log`.
    pub fn sns_endpoints(&self) -> Vec<(&'static str, &str)> {
        match self.kind {
            SubscriptionKind::Log => Vec::new(),
            SubscriptionKind::Email => self.to.iter().map(|a| ("email", a.as_str())).collect(),
            SubscriptionKind::Sms => self.to.iter().map(|n| ("sms", n.as_str())).collect(),
            SubscriptionKind::Webhook => match self.url.as_ref().and_then(SecretValue::inline) {
                Some(u) if u.starts_with("http://") => vec![("http", u)],
                Some(u) => vec![("https", u)],
                None => Vec::new(),
            },
        }
    }

    /// The SNS filter policy of `filter` (`{"status": ["rejected", "failed"]}`), or `None`
    /// without a filter.
    pub fn sns_filter_policy(&self) -> Option<String> {
        (!self.filter.is_empty()).then(|| serde_json::to_string(&self.filter).unwrap_or_default())
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
    /// An email: over SMTP from weir (embedded), or from SNS (AWS).
    Email,
    /// A text message to each phone number in `to`: SNS only (the AWS backend).
    Sms,
    /// A JSON POST of the message (on AWS, an SNS `http`/`https` subscription).
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
        assert!(c.validate(None).is_empty(), "{:?}", c.validate(None));
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
    fn each_backend_refuses_what_it_cannot_deliver() {
        let c: NotifyConfig = toml::from_str(
            r#"
            [[subscriptions]]
            topic = "alerts"
            type = "sms"
            to = ["+14155550100", "0155"]
            filter = { status = ["failed"], colour = ["red"] }
            [[subscriptions]]
            topic = "alerts"
            type = "email"
            host = "smtp.example.com"
            from = "weir@example.com"
            to = ["ops@example.com"]
            [[subscriptions]]
            topic = "success"
            type = "webhook"
            url = "https://hooks.example.com/x"
            format = "slack"
            [[subscriptions]]
            topic = "reports"
            type = "email"
            to = ["ops@example.com"]
            "#,
        )
        .unwrap();
        let messages = |problems: Vec<Problem>| problems.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let embedded = messages(c.validate(None));
        assert!(
            embedded.iter().any(
                |p| p.starts_with("notify.subscriptions[0] (alerts Sms): sms needs SNS, the AWS backend")
            ),
            "{embedded:?}"
        );
        assert!(embedded.iter().any(|p| p.contains("filter on `colour`")), "{embedded:?}");
        // Embedded, email needs its SMTP server; slack is fine.
        assert!(embedded.iter().any(|p| p.starts_with("notify.subscriptions[3]") && p.contains("`host`")));
        assert!(!embedded.iter().any(|p| p.contains("slack")), "{embedded:?}");

        let topics = BTreeMap::from([
            ("alerts".to_string(), "weir-alerts".to_string()),
            ("success".into(), "weir-success".into()),
        ]);
        let aws = messages(c.validate(Some(&topics)));
        assert!(!aws.iter().any(|p| p.contains("needs SNS")), "{aws:?}");
        assert!(aws.iter().any(|p| p.contains("\"0155\" is not a phone number in E.164 form")), "{aws:?}");
        assert!(
            aws.iter().any(|p| p.starts_with("notify.subscriptions[1]")
                && p.contains("`host`, `from` are SMTP settings")),
            "{aws:?}"
        );
        assert!(
            aws.iter().any(|p| p.starts_with("notify.subscriptions[2]") && p.contains("slack")),
            "{aws:?}"
        );
        assert!(
            aws.iter().any(|p| p.starts_with("notify.subscriptions[3]") && p.contains("[aws.topics]")),
            "{aws:?}"
        );
        assert!(
            !aws.iter().any(|p| p.starts_with("notify.subscriptions[3]") && p.contains("`host`")),
            "{aws:?}"
        );

        // One address twice on a topic is one SNS subscription: refused on AWS.
        let twice: NotifyConfig = toml::from_str(
            "[[subscriptions]]\ntopic = \"alerts\"\ntype = \"email\"\nto = [\"a@example.com\"]\n\
             [[subscriptions]]\ntopic = \"alerts\"\ntype = \"email\"\nto = [\"a@example.com\"]\n",
        )
        .unwrap();
        let aws = messages(twice.validate(Some(&topics)));
        assert_eq!(aws.len(), 1, "{aws:?}");
        assert!(aws[0].contains("subscribed to \"alerts\" twice"), "{aws:?}");
    }

    #[test]
    fn reports_incomplete_subscriptions() {
        let c: NotifyConfig =
            toml::from_str("[[subscriptions]]\ntopic = \"alerts\"\ntype = \"email\"\n").unwrap();
        assert_eq!(c.validate(None).len(), 3);
    }
}
