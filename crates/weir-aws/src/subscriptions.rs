//! The `[[notify.subscriptions]]` of an AWS config as SNS subscriptions, made by
//! `weir setup aws`.
//!
//! Each email address and phone number in `to`, and each webhook URL, is one SNS subscription
//! (`email`, `sms`, `http`/`https`) of the SNS topic `[aws.topics]` names for its weir topic,
//! with the subscription's `filter` as its filter policy on the message attributes weir publishes
//! ([`weir_core::config::MESSAGE_ATTRIBUTES`]; see [`crate::sns`]). Webhooks get raw message
//! delivery, so the endpoint receives weir's JSON message as the embedded backend posts it
//! rather than SNS's envelope. `log` subscriptions are no SNS subscription.
//!
//! SNS subscriptions take no tags, so the topic carries them: one tag
//! `weir:subscription:<hash of protocol and endpoint>` per subscription setup made (or found
//! and adopted). A subscription so marked that the config no longer has is removed; any other
//! subscription of the topic (made by hand, or by the SAM template) is left alone. An email or
//! HTTP subscription stays "pending confirmation" until its address follows SNS's link (or the
//! endpoint answers SNS's `SubscriptionConfirmation`): setup says so on its line. SNS cannot
//! delete a pending subscription (it deletes it itself after three days unconfirmed): when the
//! config drops one, setup removes its tag and says so.

use std::collections::BTreeMap;

use aws_sdk_sns::types::Tag;
use aws_sdk_sns::Client;
use sha2::{Digest, Sha256};
use weir_core::config::{AwsConfig, SubscriptionKind};
use weir_core::Config;
use weir_ports::PortError;

use crate::client::port_error;
use crate::setup::{Change, SetupItem};

/// The prefix of the topic tags that mark the subscriptions setup made.
pub const OWNED_TAG_PREFIX: &str = "weir:subscription:";

/// What SNS answers as the ARN of a subscription whose endpoint has not confirmed it.
const PENDING_ARN: &str = "PendingConfirmation";

/// One SNS subscription the config asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct WantedSubscription {
    /// The weir topic (`alerts`).
    pub topic: String,
    /// `email`, `sms`, `http` or `https`.
    pub protocol: &'static str,
    /// The address, phone number or URL.
    pub endpoint: String,
    /// The filter policy (JSON), if the subscription has a filter.
    pub filter_policy: Option<String>,
    /// Raw message delivery (webhooks: weir's JSON message as the body).
    pub raw: bool,
}

impl WantedSubscription {
    fn attributes(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(policy) = &self.filter_policy {
            out.push(("FilterPolicy", policy.clone()));
        }
        if self.raw {
            out.push(("RawMessageDelivery", "true".to_string()));
        }
        out
    }

    /// `status=rejected|failed, pipeline=sales`, or `no filter`.
    fn describe_filter(&self, config: &Config) -> String {
        let filter = config
            .notify
            .subscriptions
            .iter()
            .find(|s| {
                s.topic == self.topic
                    && s.sns_endpoints().iter().any(|(p, e)| *p == self.protocol && *e == self.endpoint)
            })
            .map(|s| &s.filter);
        match filter {
            Some(f) if !f.is_empty() => {
                let parts: Vec<String> = f.iter().map(|(k, v)| format!("{k}={}", v.join("|"))).collect();
                format!("filter {}", parts.join(", "))
            }
            _ => "no filter".to_string(),
        }
    }
}

/// The SNS subscriptions of the config's email, sms and webhook subscriptions, in config order.
pub fn wanted(config: &Config) -> Vec<WantedSubscription> {
    let mut out = Vec::new();
    for s in &config.notify.subscriptions {
        for (protocol, endpoint) in s.sns_endpoints() {
            out.push(WantedSubscription {
                topic: s.topic.clone(),
                protocol,
                endpoint: endpoint.to_string(),
                filter_policy: s.sns_filter_policy(),
                raw: s.kind == SubscriptionKind::Webhook,
            });
        }
    }
    out
}

/// The topic tag that marks the subscription of `protocol` to `endpoint` as setup's: a hash,
/// so that a webhook URL's token is not copied into a tag.
pub fn owner_tag(protocol: &str, endpoint: &str) -> String {
    let digest = Sha256::digest(format!("{protocol}\n{endpoint}").as_bytes());
    format!("{OWNED_TAG_PREFIX}{}", &hex::encode(digest)[..16])
}

/// An endpoint as setup prints it: a URL without its path and query (which may hold a token).
pub fn shown_endpoint(protocol: &str, endpoint: &str) -> String {
    if protocol != "http" && protocol != "https" {
        return endpoint.to_string();
    }
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if rest.len() > authority.len() {
        format!("{protocol}://{host}/…")
    } else {
        format!("{protocol}://{host}")
    }
}

/// A subscription of a topic as SNS lists it.
#[derive(Debug, Clone)]
struct Existing {
    arn: String,
    protocol: String,
    endpoint: String,
}

async fn list_subscriptions(sns: &Client, topic_arn: &str) -> Result<Vec<Existing>, PortError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = sns
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| port_error(&format!("listing the subscriptions of {topic_arn}"), e))?;
        for s in page.subscriptions.unwrap_or_default() {
            out.push(Existing {
                arn: s.subscription_arn.unwrap_or_default(),
                protocol: s.protocol.unwrap_or_default(),
                endpoint: s.endpoint.unwrap_or_default(),
            });
        }
        match page.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(out),
        }
    }
}

async fn owned_tags(sns: &Client, topic_arn: &str) -> Result<Vec<String>, PortError> {
    let out = sns
        .list_tags_for_resource()
        .resource_arn(topic_arn)
        .send()
        .await
        .map_err(|e| port_error(&format!("reading the tags of {topic_arn}"), e))?;
    Ok(out
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.key)
        .filter(|k| k.starts_with(OWNED_TAG_PREFIX))
        .collect())
}

/// A subscription's attributes (`FilterPolicy`, `RawMessageDelivery`, `PendingConfirmation`).
async fn attributes(sns: &Client, arn: &str) -> Result<BTreeMap<String, String>, PortError> {
    let out = sns
        .get_subscription_attributes()
        .subscription_arn(arn)
        .send()
        .await
        .map_err(|e| port_error(&format!("reading the attributes of subscription {arn}"), e))?;
    Ok(out.attributes.unwrap_or_default().into_iter().collect())
}

/// A filter policy as JSON, `None` for none (SNS answers "" or "{}" for a removed one).
fn policy_value(policy: Option<&str>) -> Option<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(policy?).ok()?;
    (value != serde_json::json!({})).then_some(value)
}

/// Subscribes (the ARN comes back even while the subscription is pending confirmation).
async fn subscribe(
    sns: &Client,
    topic_arn: &str,
    wanted: &WantedSubscription,
    with_attributes: bool,
) -> Result<String, PortError> {
    let mut req = sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol(wanted.protocol)
        .endpoint(&wanted.endpoint)
        .return_subscription_arn(true);
    if with_attributes {
        for (name, value) in wanted.attributes() {
            req = req.attributes(name, value);
        }
    }
    let shown = shown_endpoint(wanted.protocol, &wanted.endpoint);
    let out = req
        .send()
        .await
        .map_err(|e| port_error(&format!("subscribing {} {shown} to {topic_arn}", wanted.protocol), e))?;
    out.subscription_arn
        .ok_or_else(|| PortError::unavailable("subscribing", format!("no SubscriptionArn for {shown}")))
}

fn pending_note(protocol: &str, endpoint: &str) -> String {
    match protocol {
        "email" => format!("pending confirmation: {endpoint} must follow the link in the email from SNS"),
        _ => "pending confirmation: the endpoint must answer SNS's SubscriptionConfirmation".to_string(),
    }
}

/// Makes the config's subscriptions on the topics of `topic_arns` (weir topic → ARN; a topic
/// not there does not exist yet, in a dry run) and removes those setup made that the config no
/// longer has.
pub async fn ensure_subscriptions(
    sns: &Client,
    config: &Config,
    aws: &AwsConfig,
    topic_arns: &BTreeMap<String, String>,
    dry_run: bool,
) -> Result<Vec<SetupItem>, PortError> {
    let mut items = Vec::new();
    let all_wanted = wanted(config);
    for (topic, topic_name) in &aws.topics {
        let wanted: Vec<&WantedSubscription> = all_wanted.iter().filter(|w| &w.topic == topic).collect();
        let item = |w: &WantedSubscription, change: Change, note: Option<String>| {
            let mut detail = w.describe_filter(config);
            if w.raw {
                detail.push_str(", raw message delivery");
            }
            if let Some(note) = note {
                detail.push_str(&format!("; {note}"));
            }
            SetupItem {
                kind: "subscription",
                name: format!("{topic_name} {} {}", w.protocol, shown_endpoint(w.protocol, &w.endpoint)),
                change,
                detail,
            }
        };
        let Some(topic_arn) = topic_arns.get(topic) else {
            // Dry run: the topic is still to be made, and so is each of its subscriptions.
            items.extend(wanted.iter().map(|w| item(w, Change::Created, None)));
            continue;
        };
        let existing = list_subscriptions(sns, topic_arn).await?;
        let owned = owned_tags(sns, topic_arn).await?;
        let mut tags_to_add = Vec::new();
        for w in &wanted {
            let tag = owner_tag(w.protocol, &w.endpoint);
            if !owned.contains(&tag) {
                tags_to_add.push(tag);
            }
            let found = existing.iter().find(|e| e.protocol == w.protocol && e.endpoint == w.endpoint);
            let Some(found) = found else {
                let note = if dry_run {
                    None
                } else {
                    let arn = subscribe(sns, topic_arn, w, true).await?;
                    let attrs = attributes(sns, &arn).await?;
                    (attrs.get("PendingConfirmation").map(String::as_str) == Some("true"))
                        .then(|| pending_note(w.protocol, &w.endpoint))
                };
                items.push(item(w, Change::Created, note));
                continue;
            };
            let arn = if found.arn == PENDING_ARN {
                if dry_run {
                    items.push(item(w, Change::Exists, Some(pending_note(w.protocol, &w.endpoint))));
                    continue;
                }
                // Subscribing again gives the pending subscription's ARN (SNS may send the
                // confirmation request again).
                subscribe(sns, topic_arn, w, false).await?
            } else {
                found.arn.clone()
            };
            let attrs = attributes(sns, &arn).await?;
            let policy_differs = policy_value(attrs.get("FilterPolicy").map(String::as_str))
                != policy_value(w.filter_policy.as_deref());
            let raw_differs = attrs.get("RawMessageDelivery").is_some_and(|r| r == "true") != w.raw;
            let change = if policy_differs || raw_differs { Change::Updated } else { Change::Exists };
            if !dry_run && policy_differs {
                let policy = w.filter_policy.clone().unwrap_or_else(|| "{}".to_string());
                set_attribute(sns, &arn, "FilterPolicy", &policy).await?;
            }
            if !dry_run && raw_differs {
                set_attribute(sns, &arn, "RawMessageDelivery", if w.raw { "true" } else { "false" }).await?;
            }
            let pending = attrs.get("PendingConfirmation").map(String::as_str) == Some("true");
            items.push(item(w, change, pending.then(|| pending_note(w.protocol, &w.endpoint))));
        }
        if !dry_run && !tags_to_add.is_empty() {
            let mut req = sns.tag_resource().resource_arn(topic_arn);
            for key in tags_to_add {
                let tag = Tag::builder()
                    .key(key)
                    .value(topic_name)
                    .build()
                    .map_err(|e| PortError::Invalid(format!("tagging {topic_arn}: {e}")))?;
                req = req.tags(tag);
            }
            req.send().await.map_err(|e| port_error(&format!("tagging {topic_arn}"), e))?;
        }

        // What setup made that the config no longer has.
        let wanted_tags: Vec<String> = wanted.iter().map(|w| owner_tag(w.protocol, &w.endpoint)).collect();
        let stale_tags: Vec<&String> = owned.iter().filter(|t| !wanted_tags.contains(t)).collect();
        for e in existing.iter().filter(|e| stale_tags.contains(&&owner_tag(&e.protocol, &e.endpoint))) {
            let mut detail = "no longer in the config".to_string();
            if e.arn == PENDING_ARN {
                detail.push_str(
                    "; pending confirmation, which SNS cannot delete: its mark is removed, and SNS deletes it \
                     after three days unconfirmed",
                );
            } else if !dry_run {
                sns.unsubscribe()
                    .subscription_arn(&e.arn)
                    .send()
                    .await
                    .map_err(|err| port_error(&format!("unsubscribing {}", e.arn), err))?;
            }
            items.push(SetupItem {
                kind: "subscription",
                name: format!("{topic_name} {} {}", e.protocol, shown_endpoint(&e.protocol, &e.endpoint)),
                change: Change::Removed,
                detail,
            });
        }
        if !dry_run && !stale_tags.is_empty() {
            sns.untag_resource()
                .resource_arn(topic_arn)
                .set_tag_keys(Some(stale_tags.into_iter().cloned().collect()))
                .send()
                .await
                .map_err(|e| port_error(&format!("untagging {topic_arn}"), e))?;
        }
    }
    Ok(items)
}

async fn set_attribute(sns: &Client, arn: &str, name: &str, value: &str) -> Result<(), PortError> {
    sns.set_subscription_attributes()
        .subscription_arn(arn)
        .attribute_name(name)
        .attribute_value(value)
        .send()
        .await
        .map_err(|e| port_error(&format!("setting {name} of subscription {arn}"), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_path_and_tags_hold_no_endpoint() {
        assert_eq!(
            shown_endpoint("https", "https://hooks.example.com/services/T0/B0/secret"),
            "https://hooks.example.com/…"
        );
        assert_eq!(shown_endpoint("http", "http://user:pw@127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(shown_endpoint("email", "ops@example.com"), "ops@example.com");
        let tag = owner_tag("https", "https://hooks.example.com/services/T0/B0/secret");
        assert!(tag.starts_with(OWNED_TAG_PREFIX) && !tag.contains("secret") && tag.len() <= 128, "{tag}");
        assert_ne!(tag, owner_tag("http", "https://hooks.example.com/services/T0/B0/secret"));
        assert_eq!(policy_value(Some("{}")), None);
        assert_eq!(policy_value(Some("")), None);
        assert_eq!(
            policy_value(Some(r#"{"status":["failed"]}"#)),
            policy_value(Some(r#"{"status": ["failed"]}"#))
        );
    }
}
