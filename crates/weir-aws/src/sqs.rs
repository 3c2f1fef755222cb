//! The queue port on Amazon SQS: a main queue and its dead-letter queue.
//!
//! SQS already has the semantics the port describes (the port was modelled on it): visibility
//! timeout, receive count, long polling, batches of 10 and redrive to a DLQ after
//! `maxReceiveCount` receives, which SQS does itself. What SQS does not have, this adapter adds:
//!
//! - **Stable message ids across the DLQ.** An explicit [`Queue::dead_letter`] is a send to the
//!   DLQ and a delete, and a replay is a send back to the main queue; both make a new SQS
//!   message. The original id travels in the `weir.message_id` message attribute and is reported
//!   as the message id, so a replayed message is still the message the operator saw.
//! - **Stale receipt handles.** SQS may accept a delete with an old receipt handle and delete
//!   the message (moto always does). The adapter remembers the handles it issued and refuses
//!   one that a later receive in this process superseded, as the embedded queue does. Across
//!   processes only SQS decides.
//! - **Peeking the DLQ.** SQS cannot list a queue without receiving from it: [`Queue::dlq_list`]
//!   receives the dead letters with a short visibility timeout and makes them visible again.
//!
//! What only SQS decides (and the conformance suite therefore does not hold it to): real SQS
//! stats are approximate; there is no age of the oldest message in the SQS API (it is the
//! CloudWatch metric `ApproximateAgeOfOldestMessage`), so `oldest_age` is `None`; retention is
//! at least 60 s; a standard queue may rarely deliver a message twice.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use chrono::{DateTime, TimeZone, Utc};
use weir_ports::{DeadLetter, Message, PortError, Queue, QueueSettings, QueueStats};

use crate::client::port_error;

/// The message attribute that carries a message's original id through the DLQ and back.
pub const ID_ATTR: &str = "weir.message_id";
/// The receive count a message had when it was dead-lettered explicitly.
const COUNT_ATTR: &str = "weir.receive_count";
/// When a message was dead-lettered explicitly (RFC 3339).
const DEAD_AT_ATTR: &str = "weir.dead_lettered_at";
/// When the original message was sent (RFC 3339), kept through the DLQ and replays.
pub const SENT_AT_ATTR: &str = "weir.sent_at";
/// How long [`Queue::dlq_list`] hides the dead letters it reads.
const PEEK_VISIBILITY: i32 = 30;
/// Receipts older than SQS's longest visibility timeout can no longer be used.
const RECEIPT_MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// The names of the two queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsQueueNames {
    pub queue: String,
    pub dlq: String,
}

/// What a receive of this process handed out, by receipt handle.
#[derive(Debug, Clone)]
struct Receipt {
    sqs_id: String,
    message: Message,
    attributes: HashMap<String, MessageAttributeValue>,
    at: Instant,
}

#[derive(Debug, Default)]
struct Receipts {
    by_handle: HashMap<String, Receipt>,
    /// The newest handle of each SQS message received here.
    latest: HashMap<String, String>,
}

impl Receipts {
    fn insert(&mut self, r: Receipt) {
        if self.by_handle.len() >= 10_000 {
            self.by_handle.retain(|_, r| r.at.elapsed() < RECEIPT_MAX_AGE);
            let live: std::collections::HashSet<&String> = self.by_handle.keys().collect();
            self.latest.retain(|_, h| live.contains(h));
        }
        if let Some(old) = self.latest.insert(r.sqs_id.clone(), r.message.receipt_handle.clone()) {
            self.by_handle.remove(&old);
        }
        self.by_handle.insert(r.message.receipt_handle.clone(), r);
    }

    fn forget(&mut self, handle: &str) -> Option<Receipt> {
        let r = self.by_handle.remove(handle)?;
        if self.latest.get(&r.sqs_id).is_some_and(|h| h == handle) {
            self.latest.remove(&r.sqs_id);
        }
        Some(r)
    }
}

/// A main queue and its DLQ on SQS.
#[derive(Debug)]
pub struct SqsQueue {
    client: Client,
    url: String,
    dlq_url: String,
    settings: QueueSettings,
    receipts: Mutex<Receipts>,
    /// Handles superseded by a later receive here, kept for a while to refuse them.
    superseded: Mutex<HashMap<String, Instant>>,
}

impl SqsQueue {
    /// Opens existing queues by name (`weir setup aws` creates them).
    pub async fn open(
        client: Client,
        names: &SqsQueueNames,
        settings: QueueSettings,
    ) -> Result<SqsQueue, PortError> {
        let url = queue_url(&client, &names.queue).await?;
        let dlq_url = queue_url(&client, &names.dlq).await?;
        Ok(SqsQueue::from_urls(client, url, dlq_url, settings))
    }

    /// Creates the DLQ and the main queue with its redrive policy (or updates their attributes
    /// to `settings`), then opens them. Returns whether each queue was created.
    pub async fn create(
        client: Client,
        names: &SqsQueueNames,
        settings: QueueSettings,
    ) -> Result<(SqsQueue, bool, bool), PortError> {
        let (dlq_url, dlq_created) = ensure_queue(&client, &names.dlq, dlq_attributes(&settings)).await?;
        let dlq_arn = queue_arn(&client, &dlq_url).await?;
        let (url, created) =
            ensure_queue(&client, &names.queue, main_attributes(&settings, &dlq_arn)).await?;
        Ok((SqsQueue::from_urls(client, url, dlq_url, settings), created, dlq_created))
    }

    pub fn from_urls(client: Client, url: String, dlq_url: String, settings: QueueSettings) -> SqsQueue {
        SqsQueue {
            client,
            url,
            dlq_url,
            settings,
            receipts: Mutex::new(Receipts::default()),
            superseded: Mutex::new(HashMap::new()),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn dlq_url(&self) -> &str {
        &self.dlq_url
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Receives raw SQS messages from `url`.
    async fn receive_raw(
        &self,
        url: &str,
        max: usize,
        wait_secs: i32,
        visibility: Option<i32>,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>, PortError> {
        let mut req = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max as i32)
            .wait_time_seconds(wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All");
        if let Some(v) = visibility {
            req = req.visibility_timeout(v);
        }
        let out = req.send().await.map_err(|e| port_error("receiving from SQS", e))?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Sends a copy of a received message to the DLQ with its original id, receive count and
    /// send time, without deleting it: for consumers that delete the original themselves (the
    /// Lambda SQS event source deletes what the function reports as done).
    pub async fn send_to_dlq(&self, message: &Message) -> Result<(), PortError> {
        self.send_to_dlq_with(message, HashMap::new()).await
    }

    async fn send_to_dlq_with(
        &self,
        message: &Message,
        mut attrs: HashMap<String, MessageAttributeValue>,
    ) -> Result<(), PortError> {
        attrs.insert(ID_ATTR.into(), string_attr(&message.message_id));
        attrs.insert(COUNT_ATTR.into(), string_attr(message.receive_count.to_string()));
        attrs.insert(DEAD_AT_ATTR.into(), string_attr(Utc::now().to_rfc3339()));
        attrs.insert(SENT_AT_ATTR.into(), string_attr(message.sent_at.to_rfc3339()));
        self.client
            .send_message()
            .queue_url(&self.dlq_url)
            .message_body(&message.body)
            .set_message_attributes(Some(attrs))
            .send()
            .await
            .map_err(|e| port_error("sending to the DLQ", e))?;
        Ok(())
    }

    fn check_handle(&self, handle: &str) -> Result<(), PortError> {
        let superseded = self.superseded.lock().unwrap_or_else(|e| e.into_inner());
        if superseded.contains_key(handle) {
            return Err(PortError::NotFound(
                "receipt handle: the message was received again since (a stale handle)".into(),
            ));
        }
        Ok(())
    }

    fn remember(&self, r: Receipt) {
        let mut receipts = self.receipts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = receipts.latest.get(&r.sqs_id).cloned() {
            let mut superseded = self.superseded.lock().unwrap_or_else(|e| e.into_inner());
            if superseded.len() >= 10_000 {
                superseded.retain(|_, at| at.elapsed() < RECEIPT_MAX_AGE);
            }
            superseded.insert(old, Instant::now());
        }
        receipts.insert(r);
    }

    /// Reads up to `limit` dead letters without consuming them: received with a short
    /// visibility timeout, then made visible again. Returns the raw messages (still hidden)
    /// so a caller can act on them before they are released.
    async fn peek_dlq(&self, limit: usize) -> Result<Vec<aws_sdk_sqs::types::Message>, PortError> {
        let expected = self.attributes(&self.dlq_url).await?.0 as usize;
        let mut got: Vec<aws_sdk_sqs::types::Message> = Vec::new();
        let mut waited = false;
        while got.len() < limit {
            let want = (limit - got.len()).min(10);
            // Short polls sample a subset of SQS's servers: once they come back empty before the
            // expected count, one long poll asks them all.
            let wait = if got.len() < expected && waited { 1 } else { 0 };
            let batch = self.receive_raw(&self.dlq_url, want, wait, Some(PEEK_VISIBILITY)).await?;
            if batch.is_empty() {
                if waited || got.len() >= expected {
                    break;
                }
                waited = true;
                continue;
            }
            got.extend(batch);
        }
        Ok(got)
    }

    /// Makes hidden DLQ messages visible again.
    async fn release(&self, url: &str, handles: &[String]) -> Result<(), PortError> {
        for chunk in handles.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(h)
                        .visibility_timeout(0)
                        .build()
                        .map_err(|e| PortError::Invalid(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.client
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| port_error("releasing peeked dead letters", e))?;
        }
        Ok(())
    }

    async fn delete_raw(&self, url: &str, handle: &str) -> Result<(), PortError> {
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(handle)
            .send()
            .await
            .map_err(|e| port_error("deleting an SQS message", e))?;
        Ok(())
    }

    /// (visible, not visible, delayed) of one queue.
    async fn attributes(&self, url: &str) -> Result<(u64, u64, u64), PortError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| port_error("reading SQS queue attributes", e))?;
        let attrs = out.attributes.unwrap_or_default();
        let n = |name: QueueAttributeName| attrs.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0u64);
        Ok((
            n(QueueAttributeName::ApproximateNumberOfMessages),
            n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            n(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        ))
    }
}

fn string_attr(v: impl Into<String>) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(v).build().expect("data_type is set")
}

fn attr<'a>(m: &'a aws_sdk_sqs::types::Message, name: &str) -> Option<&'a str> {
    m.message_attributes.as_ref()?.get(name)?.string_value()
}

fn sys_attr(m: &aws_sdk_sqs::types::Message, name: MessageSystemAttributeName) -> Option<&str> {
    m.attributes.as_ref()?.get(&name).map(String::as_str)
}

fn millis(v: Option<&str>) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(v?.parse().ok()?).single()
}

fn rfc3339(v: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v?).ok().map(|t| t.with_timezone(&Utc))
}

/// The port's view of an SQS message: its original id and send time if it carries them.
fn to_message(m: &aws_sdk_sqs::types::Message) -> Result<Message, PortError> {
    let sqs_id = m.message_id.clone().unwrap_or_default();
    Ok(Message {
        message_id: attr(m, ID_ATTR).map(str::to_string).unwrap_or(sqs_id),
        receipt_handle: m.receipt_handle.clone().ok_or_else(|| {
            PortError::unavailable("receiving from SQS", "a message without a receipt handle")
        })?,
        body: m.body.clone().unwrap_or_default(),
        receive_count: sys_attr(m, MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        sent_at: rfc3339(attr(m, SENT_AT_ATTR))
            .or_else(|| millis(sys_attr(m, MessageSystemAttributeName::SentTimestamp)))
            .unwrap_or_else(Utc::now),
    })
}

/// Whole seconds for SQS, rounded up (a wait of 300 ms waits a second, not zero).
fn whole_secs(d: Duration, max: u64) -> i32 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.min(max) as i32
}

fn dlq_attributes(s: &QueueSettings) -> Vec<(QueueAttributeName, String)> {
    vec![(
        QueueAttributeName::MessageRetentionPeriod,
        s.dlq_retention.as_secs().clamp(60, 1_209_600).to_string(),
    )]
}

fn main_attributes(s: &QueueSettings, dlq_arn: &str) -> Vec<(QueueAttributeName, String)> {
    vec![
        (QueueAttributeName::VisibilityTimeout, s.visibility_timeout.as_secs().min(43_200).to_string()),
        (QueueAttributeName::MessageRetentionPeriod, s.retention.as_secs().clamp(60, 1_209_600).to_string()),
        (QueueAttributeName::ReceiveMessageWaitTimeSeconds, "20".to_string()),
        (
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": s.max_receive_count})
                .to_string(),
        ),
    ]
}

/// The URL of a queue by name.
pub async fn queue_url(client: &Client, name: &str) -> Result<String, PortError> {
    let out = client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| port_error(&format!("looking up SQS queue {name}"), e))?;
    out.queue_url.ok_or_else(|| PortError::NotFound(format!("SQS queue {name}")))
}

/// The ARN of a queue.
pub async fn queue_arn(client: &Client, url: &str) -> Result<String, PortError> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| port_error("reading a queue ARN", e))?;
    out.attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| PortError::unavailable("reading a queue ARN", "SQS returned no QueueArn"))
}

/// Creates the queue with `attributes`, or sets them on the existing one. Returns the URL and
/// whether the queue was created.
pub async fn ensure_queue(
    client: &Client,
    name: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> Result<(String, bool), PortError> {
    match queue_url(client, name).await {
        Ok(url) => {
            client
                .set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attributes.into_iter().collect()))
                .send()
                .await
                .map_err(|e| port_error(&format!("updating SQS queue {name}"), e))?;
            Ok((url, false))
        }
        Err(e) if e.is_not_found() => {
            let out = client
                .create_queue()
                .queue_name(name)
                .set_attributes(Some(attributes.into_iter().collect()))
                .send()
                .await
                .map_err(|e| port_error(&format!("creating SQS queue {name}"), e))?;
            let url =
                out.queue_url.ok_or_else(|| PortError::unavailable("creating a queue", "no QueueUrl"))?;
            Ok((url, true))
        }
        Err(e) => Err(e),
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, body: &str) -> Result<String, PortError> {
        let out = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| port_error("sending to SQS", e))?;
        out.message_id.ok_or_else(|| PortError::unavailable("sending to SQS", "no MessageId in the answer"))
    }

    async fn send_batch(&self, bodies: &[String]) -> Result<Vec<String>, PortError> {
        if bodies.len() > 10 {
            return Err(PortError::Invalid(format!(
                "a batch holds at most 10 messages, not {}",
                bodies.len()
            )));
        }
        if bodies.is_empty() {
            return Ok(Vec::new());
        }
        let entries = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(b)
                    .build()
                    .map_err(|e| PortError::Invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| port_error("sending a batch to SQS", e))?;
        if let Some(f) = out.failed.first() {
            return Err(PortError::unavailable(
                "sending a batch to SQS",
                format!("entry {} failed: {} {}", f.id, f.code, f.message.as_deref().unwrap_or("")),
            ));
        }
        let mut ids = vec![String::new(); bodies.len()];
        for s in &out.successful {
            if let Some(slot) = s.id.parse::<usize>().ok().and_then(|i| ids.get_mut(i)) {
                *slot = s.message_id.clone();
            }
        }
        if ids.iter().any(String::is_empty) {
            return Err(PortError::unavailable("sending a batch to SQS", "an entry has no MessageId"));
        }
        Ok(ids)
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, PortError> {
        if !(1..=10).contains(&max) {
            return Err(PortError::Invalid(format!("receive takes 1 to 10 messages, not {max}")));
        }
        let raw = self.receive_raw(&self.url, max, whole_secs(wait, 20), None).await?;
        let mut out = Vec::with_capacity(raw.len());
        for m in &raw {
            let message = to_message(m)?;
            self.remember(Receipt {
                sqs_id: m.message_id.clone().unwrap_or_default(),
                message: message.clone(),
                attributes: m.message_attributes.clone().unwrap_or_default(),
                at: Instant::now(),
            });
            out.push(message);
        }
        Ok(out)
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), PortError> {
        self.check_handle(receipt_handle)?;
        self.delete_raw(&self.url, receipt_handle).await?;
        self.receipts.lock().unwrap_or_else(|e| e.into_inner()).forget(receipt_handle);
        Ok(())
    }

    async fn change_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<(), PortError> {
        self.check_handle(receipt_handle)?;
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(whole_secs(timeout, 43_200))
            .send()
            .await
            .map_err(|e| port_error("changing an SQS message's visibility", e))?;
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats, PortError> {
        let (visible, in_flight, delayed) = self.attributes(&self.url).await?;
        let (dlq_visible, dlq_hidden, _) = self.attributes(&self.dlq_url).await?;
        Ok(QueueStats {
            visible,
            in_flight,
            delayed,
            dead_letters: dlq_visible + dlq_hidden,
            oldest_age: None,
        })
    }

    async fn dead_letter(&self, receipt_handle: &str) -> Result<(), PortError> {
        self.check_handle(receipt_handle)?;
        let r = self
            .receipts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_handle
            .get(receipt_handle)
            .cloned()
            .ok_or_else(|| {
                PortError::NotFound(
                    "receipt handle: not received by this process, or already deleted or dead-lettered"
                        .into(),
                )
            })?;
        self.send_to_dlq_with(&r.message, r.attributes.clone()).await?;
        // Sent before deleted: a crash between the two leaves a copy in both queues, never none.
        self.delete_raw(&self.url, receipt_handle).await?;
        self.receipts.lock().unwrap_or_else(|e| e.into_inner()).forget(receipt_handle);
        Ok(())
    }

    async fn dlq_list(&self, limit: usize) -> Result<Vec<DeadLetter>, PortError> {
        // 0: all of them, as the embedded queue reads it.
        let raw = self.peek_dlq(if limit == 0 { usize::MAX } else { limit }).await?;
        let handles: Vec<String> = raw.iter().filter_map(|m| m.receipt_handle.clone()).collect();
        let listed: Vec<DeadLetter> = raw
            .iter()
            .map(|m| {
                let sent_at = rfc3339(attr(m, SENT_AT_ATTR))
                    .or_else(|| millis(sys_attr(m, MessageSystemAttributeName::SentTimestamp)))
                    .unwrap_or_else(Utc::now);
                DeadLetter {
                    message_id: attr(m, ID_ATTR)
                        .map(str::to_string)
                        .unwrap_or_else(|| m.message_id.clone().unwrap_or_default()),
                    body: m.body.clone().unwrap_or_default(),
                    // Redriven by SQS: it took max_receive_count receives to get here.
                    receive_count: attr(m, COUNT_ATTR)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(self.settings.max_receive_count),
                    sent_at,
                    // SQS does not stamp the move; the first receive from the DLQ is the
                    // closest it tells.
                    dead_lettered_at: rfc3339(attr(m, DEAD_AT_ATTR))
                        .or_else(|| {
                            millis(sys_attr(m, MessageSystemAttributeName::ApproximateFirstReceiveTimestamp))
                        })
                        .unwrap_or_else(Utc::now)
                        .max(sent_at),
                }
            })
            .collect();
        self.release(&self.dlq_url, &handles).await?;
        let mut listed = listed;
        listed.sort_by_key(|d| d.dead_lettered_at);
        Ok(listed)
    }

    async fn dlq_replay(&self, ids: Option<&[String]>) -> Result<usize, PortError> {
        let raw = self.peek_dlq(usize::MAX).await?;
        let mut moved = 0;
        let mut keep = Vec::new();
        for m in &raw {
            let handle = m.receipt_handle.clone().unwrap_or_default();
            let id = attr(m, ID_ATTR)
                .map(str::to_string)
                .unwrap_or_else(|| m.message_id.clone().unwrap_or_default());
            if ids.is_some_and(|ids| !ids.contains(&id)) {
                keep.push(handle);
                continue;
            }
            let sent_at = rfc3339(attr(m, SENT_AT_ATTR))
                .or_else(|| millis(sys_attr(m, MessageSystemAttributeName::SentTimestamp)))
                .unwrap_or_else(Utc::now);
            let mut attrs = m.message_attributes.clone().unwrap_or_default();
            attrs.remove(COUNT_ATTR);
            attrs.remove(DEAD_AT_ATTR);
            attrs.insert(ID_ATTR.into(), string_attr(id));
            attrs.insert(SENT_AT_ATTR.into(), string_attr(sent_at.to_rfc3339()));
            self.client
                .send_message()
                .queue_url(&self.url)
                .message_body(m.body.clone().unwrap_or_default())
                .set_message_attributes(Some(attrs))
                .send()
                .await
                .map_err(|e| port_error("replaying a dead letter", e))?;
            self.delete_raw(&self.dlq_url, &handle).await?;
            moved += 1;
        }
        self.release(&self.dlq_url, &keep).await?;
        Ok(moved)
    }

    async fn dlq_purge(&self) -> Result<usize, PortError> {
        // Receive and delete rather than PurgeQueue: SQS allows one purge a minute and does not
        // say how many messages it dropped.
        let raw = self.peek_dlq(usize::MAX).await?;
        for m in &raw {
            self.delete_raw(&self.dlq_url, m.receipt_handle.as_deref().unwrap_or_default()).await?;
        }
        Ok(raw.len())
    }
}
