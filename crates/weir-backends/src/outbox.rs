//! The notification outbox: email and webhook deliveries that survive a restart.
//!
//! Sending an email or a webhook can fail or hang for reasons that have nothing to do with the
//! job (the mail relay is down, the chat service is slow), so the pipeline never sends them
//! itself. Publishing to [`OutboxNotifier`] writes one row per matching subscription into
//! `<data dir>/outbox.db` (committed and fsynced, like a queue message) and returns; a delivery
//! loop ([`OutboxNotifier::spawn_delivery`]) sends due rows, marks them delivered, retries
//! failures with exponential backoff and, after `max_attempts`, records the row as failed
//! (counted in [`OutboxStats`]). A publish with an `id` attribute is idempotent: the same message
//! published twice (a job retried after a crash) is stored, and sent, once per subscription.
//!
//! Rows being sent are leased for a while rather than locked, so another process that opened
//! the same outbox (a CLI command) does not send them too, and a process killed mid-send leaves
//! them to be sent again when the lease runs out: delivery is at least once.
//!
//! Log subscriptions cost nothing and cannot fail, so they are written straight away.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};
use weir_core::config::{NotifyConfig, SubscriptionConfig, SubscriptionKind};
use weir_ports::{DeliveryStats, Notification, Notifier, PortError, Secrets};

use crate::deliver::{from_json, to_stored_json, EmailSender, WebhookSender};
use crate::notify::LogNotifier;
use crate::sqlite::{ms, now_ms, sql, Db, Durability};

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        subscription TEXT NOT NULL,
        key TEXT NOT NULL,
        notification TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at INTEGER NOT NULL,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (subscription, key)
    );
    CREATE INDEX outbox_due ON outbox (state, next_at);",
    // Retention: rows that ended are found by when, and what it removed is still counted.
    "CREATE INDEX outbox_ended ON outbox (state, updated_at);
    CREATE TABLE outbox_expired (state TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;",
];

/// How long a row being sent is hidden from other senders.
const LEASE: Duration = Duration::from_secs(120);

/// Rows sent per round.
const BATCH: i64 = 32;

/// How often the delivery loop looks for due rows when nothing wakes it.
const POLL: Duration = Duration::from_millis(500);

/// Deliveries by outcome, over every subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

struct Queued {
    /// Stable across restarts: topic, type and target.
    id: String,
    config: SubscriptionConfig,
    sender: Arc<dyn Notifier>,
}

/// Fans messages out to the configured subscriptions, through the outbox for email and webhooks.
pub struct OutboxNotifier {
    db: Db,
    /// Log subscriptions: written at once (once per message id).
    immediate: Vec<(SubscriptionConfig, Arc<dyn Notifier>)>,
    queued: Vec<Queued>,
    max_attempts: u32,
    retry_initial: Duration,
    retry_max: Duration,
    wake: tokio::sync::Notify,
}

/// The outbox row name of a subscription: its topic, type, target, format and filter, so it stays
/// the same across restarts and differs between subscriptions that could receive different rows.
fn subscription_id(s: &SubscriptionConfig) -> String {
    let target = match s.kind {
        SubscriptionKind::Log => String::new(),
        SubscriptionKind::Email | SubscriptionKind::Sms => s.to.join(","),
        // Where the URL comes from when it is a reference (so a rotated URL keeps the name).
        SubscriptionKind::Webhook => format!(
            "{:?}:{}",
            s.format,
            s.url
                .as_ref()
                .map(|u| u.inline().map(str::to_string).unwrap_or_else(|| u.origin()))
                .unwrap_or_default()
        ),
    };
    let mut id = format!("{}:{:?}:{target}", s.topic, s.kind).to_lowercase();
    if !s.filter.is_empty() {
        id.push_str(&serde_json::to_string(&s.filter).unwrap_or_default());
    }
    id
}

impl OutboxNotifier {
    /// Opens (creating) the outbox file and builds a sender for each subscription.
    /// Secret settings (an SMTP password, a webhook's URL) are read through `secrets` at each
    /// delivery.
    pub fn open(path: &Path, config: &NotifyConfig, secrets: Arc<Secrets>) -> Result<Self, PortError> {
        let db = Db::open(path, "outbox", MIGRATIONS)?;
        let mut immediate: Vec<(SubscriptionConfig, Arc<dyn Notifier>)> = Vec::new();
        let mut queued = Vec::new();
        for s in &config.subscriptions {
            let bad = |e: crate::deliver::SenderError| {
                PortError::unavailable(format!("notify subscription {}", subscription_id(s)), e)
            };
            let sender: Arc<dyn Notifier> = match s.kind {
                SubscriptionKind::Log => {
                    immediate.push((s.clone(), Arc::new(LogNotifier)));
                    continue;
                }
                SubscriptionKind::Email => {
                    Arc::new(EmailSender::from_config(s, secrets.clone()).map_err(bad)?)
                }
                SubscriptionKind::Webhook => {
                    Arc::new(WebhookSender::from_config(s, secrets.clone()).map_err(bad)?)
                }
                // `weir check` refuses it embedded; a config that skipped the check fails here.
                SubscriptionKind::Sms => {
                    return Err(PortError::Invalid(format!(
                        "notify subscription {}: sms needs SNS, the AWS backend",
                        subscription_id(s)
                    )))
                }
            };
            queued.push(Queued { id: subscription_id(s), config: s.clone(), sender });
        }
        Ok(OutboxNotifier {
            db,
            immediate,
            queued,
            max_attempts: config.max_attempts.max(1),
            retry_initial: Duration::from_millis(config.retry_initial_ms),
            retry_max: Duration::from_millis(config.retry_max_ms.max(config.retry_initial_ms)),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Starts the delivery loop on the current runtime, when there is one and anything to deliver.
    pub fn spawn_delivery(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.queued.is_empty() {
            return None;
        }
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let this = self.clone();
        Some(handle.spawn(async move {
            loop {
                match this.deliver_due().await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "notification outbox unavailable"),
                }
                let _ = tokio::time::timeout(POLL, this.wake.notified()).await;
            }
        }))
    }

    /// The wait before the next attempt: exact (no jitter), as `[notify]` documents it.
    fn backoff(&self, attempts: u32) -> Duration {
        weir_core::Backoff::new(self.retry_initial, self.retry_max).exact().delay(attempts)
    }

    /// Sends every due row once (one round, up to a batch); returns how many were attempted.
    pub async fn deliver_due(&self) -> Result<usize, PortError> {
        let ids: Vec<String> = self.queued.iter().map(|q| q.id.clone()).collect();
        let ids = serde_json::to_string(&ids).unwrap_or_default();
        let rows: Vec<(i64, String, String, u32)> = self
            .db
            .write("claiming due notifications", move |c| {
                let now = now_ms();
                let mut stmt = c
                    .prepare_cached(
                        "SELECT id, subscription, notification, attempts FROM outbox
                         WHERE state = 'pending' AND next_at <= ?1
                           AND subscription IN (SELECT value FROM json_each(?2))
                         ORDER BY next_at LIMIT ?3",
                    )
                    .map_err(sql("selecting due notifications"))?;
                let rows = stmt
                    .query_map(params![now, ids, BATCH], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(sql("selecting due notifications"))?;
                for (id, ..) in &rows {
                    c.execute("UPDATE outbox SET next_at = ?1 WHERE id = ?2", params![now + ms(LEASE), id])
                        .map_err(sql("leasing a notification"))?;
                }
                Ok(rows)
            })
            .await?;
        let n = rows.len();
        let sends = rows.into_iter().map(|(id, sub, text, attempts)| async move {
            let Some(q) = self.queued.iter().find(|q| q.id == sub) else { return Ok(()) };
            let notification = from_json(&serde_json::from_str(&text).unwrap_or_default());
            let outcome = q.sender.publish(&notification).await;
            self.record(id, &sub, attempts + 1, outcome).await
        });
        for r in futures::future::join_all(sends).await {
            r?;
        }
        Ok(n)
    }

    async fn record(
        &self,
        id: i64,
        sub: &str,
        attempts: u32,
        outcome: Result<(), PortError>,
    ) -> Result<(), PortError> {
        let (state, next_at, error) = match outcome {
            Ok(()) => ("delivered", 0, None),
            Err(e) if attempts >= self.max_attempts => {
                tracing::warn!(subscription = %crate::deliver::redact_urls(sub), attempts, error = %e, "notification delivery failed for good");
                ("failed", 0, Some(e.to_string()))
            }
            Err(e) => {
                let wait = self.backoff(attempts);
                tracing::info!(subscription = %crate::deliver::redact_urls(sub), attempts, error = %e, retry_in_ms = ms(wait), "notification delivery failed; will retry");
                ("pending", now_ms() + ms(wait), Some(e.to_string()))
            }
        };
        self.db
            .write("recording a notification delivery", move |c| {
                c.execute(
                    "UPDATE outbox SET state = ?1, attempts = ?2, next_at = ?3, last_error = ?4, updated_at = ?5
                     WHERE id = ?6",
                    params![state, attempts, next_at, error, now_ms(), id],
                )
                .map_err(sql("recording a notification delivery"))?;
                Ok(())
            })
            .await
    }

    /// Deliveries by state.
    pub async fn stats(&self) -> Result<OutboxStats, PortError> {
        self.db
            .read("counting notifications", |c| {
                let mut stats = OutboxStats::default();
                let mut stmt = c
                    .prepare_cached("SELECT state, COUNT(*) FROM outbox GROUP BY state")
                    .map_err(sql("counting notifications"))?;
                let mut rows = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(sql("counting notifications"))?;
                // Removed by retention, still counted.
                let mut expired = c
                    .prepare_cached("SELECT state, n FROM outbox_expired")
                    .map_err(sql("counting notifications"))?;
                rows.extend(
                    expired
                        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                        .map_err(sql("counting notifications"))?,
                );
                for (state, n) in rows {
                    let n = n.max(0) as u64;
                    match state.as_str() {
                        "pending" => stats.pending += n,
                        "delivered" => stats.delivered += n,
                        "failed" => stats.failed += n,
                        _ => {}
                    }
                }
                Ok(stats)
            })
            .await
    }

    /// The last error recorded for the row of a subscription and key, if any (for tests and tools).
    pub async fn last_error(&self, key: &str) -> Result<Option<String>, PortError> {
        let key = key.to_owned();
        self.db
            .read("reading a notification", move |c| {
                c.query_row("SELECT last_error FROM outbox WHERE key = ?1 LIMIT 1", [key], |r| r.get(0))
                    .optional()
                    .map(Option::flatten)
                    .map_err(sql("reading a notification"))
            })
            .await
    }
}

/// One pending row per subscription for the message `body` under `key` (once per key).
fn insert_deliveries(
    c: &rusqlite::Connection,
    subs: &[String],
    key: &str,
    body: &str,
    now: i64,
) -> Result<(), PortError> {
    for sub in subs {
        c.execute(
            "INSERT INTO outbox (subscription, key, notification, next_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?4, ?4) ON CONFLICT (subscription, key) DO NOTHING",
            params![sub, key, body, now],
        )
        .map_err(sql("storing a notification"))?;
    }
    Ok(())
}

impl OutboxNotifier {
    /// Stores one row per subscription in `subs` for `n` under `key`.
    async fn store(&self, subs: Vec<String>, key: String, n: &Notification) -> Result<(), PortError> {
        if subs.is_empty() {
            return Ok(());
        }
        let body = to_stored_json(n).to_string();
        self.db
            .write("storing a notification", move |c| insert_deliveries(c, &subs, &key, &body, now_ms()))
            .await?;
        self.wake.notify_one();
        Ok(())
    }
}

#[async_trait]
impl Notifier for OutboxNotifier {
    /// Logs to the log subscribers and stores one row per matching email/webhook subscription;
    /// fails only when the outbox cannot be written.
    async fn publish(&self, n: &Notification) -> Result<(), PortError> {
        let logs: Vec<(String, Arc<dyn Notifier>)> = self
            .immediate
            .iter()
            .filter(|(s, _)| s.topic == n.topic && s.accepts(&n.attributes))
            .map(|(s, log)| (subscription_id(s), log.clone()))
            .collect();
        let subs: Vec<String> = self
            .queued
            .iter()
            .filter(|q| q.config.topic == n.topic && q.config.accepts(&n.attributes))
            .map(|q| q.id.clone())
            .collect();
        if subs.is_empty() && logs.is_empty() {
            return Ok(());
        }
        let Some(key) = n.attributes.get("id").cloned() else {
            // A message without an id cannot be told from a repeat: logged and stored as new.
            for (_, log) in &logs {
                log.publish(n).await?;
            }
            return self.store(subs, uuid::Uuid::new_v4().to_string(), n).await;
        };
        // Log lines are written once per id too: each is recorded as delivered, and written
        // only by the publish that recorded it. A lost record costs a repeated line at worst, so
        // it needs no sync of its own when no delivery is stored with it.
        let log_ids: Vec<String> = logs.iter().map(|(id, _)| id.clone()).collect();
        let durability = if subs.is_empty() { Durability::Deferred } else { Durability::Synced };
        let body = to_stored_json(n).to_string();
        let has_subs = !subs.is_empty();
        let first_logs = self
            .db
            .write_with(durability, "storing a notification", move |c| {
                let now = now_ms();
                let mut first = Vec::new();
                for sub in &log_ids {
                    let inserted = c
                        .execute(
                            "INSERT INTO outbox (subscription, key, notification, state, next_at, created_at, updated_at)
                             VALUES (?1, ?2, '', 'delivered', 0, ?3, ?3) ON CONFLICT (subscription, key) DO NOTHING",
                            params![sub, key, now],
                        )
                        .map_err(sql("recording a log notification"))?;
                    first.push(inserted == 1);
                }
                insert_deliveries(c, &subs, &key, &body, now)?;
                Ok(first)
            })
            .await?;
        for ((_, log), first) in logs.iter().zip(first_logs) {
            if first {
                log.publish(n).await?;
            }
        }
        if has_subs {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The same `id` attribute is stored (or logged) once per subscription.
    fn idempotent(&self) -> bool {
        true
    }

    async fn delivery_stats(&self) -> Result<Option<DeliveryStats>, PortError> {
        let s = self.stats().await?;
        Ok(Some(DeliveryStats { pending: s.pending, delivered: s.delivered, failed: s.failed }))
    }

    /// Rows delivered or given up before `before_ms` go, counted in `outbox_expired` in the same
    /// transaction, so [`OutboxStats`] does not change. A message published again under an
    /// expired row's id is sent again: by then it is older than the retention.
    async fn expire_delivered(&self, before_ms: i64, limit: usize, dry_run: bool) -> Result<u64, PortError> {
        if dry_run {
            return self
                .db
                .read("counting old notifications", move |c| {
                    c.query_row(
                        "SELECT COUNT(*) FROM outbox WHERE state IN ('delivered', 'failed') AND updated_at < ?1",
                        [before_ms],
                        |r| r.get::<_, i64>(0),
                    )
                    .map(|n| n.max(0) as u64)
                    .map_err(sql("counting old notifications"))
                })
                .await;
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .write("expiring old notifications", move |c| {
                let mut gone = c
                    .prepare_cached(
                        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
                             WHERE state IN ('delivered', 'failed') AND updated_at < ?1 LIMIT ?2)
                         RETURNING state",
                    )
                    .and_then(|mut st| {
                        st.query_map(params![before_ms, limit], |r| r.get::<_, String>(0))
                            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    })
                    .map_err(sql("expiring old notifications"))?;
                gone.sort();
                for state in ["delivered", "failed"] {
                    let n = gone.iter().filter(|s| *s == state).count() as i64;
                    if n > 0 {
                        c.execute(
                            "INSERT INTO outbox_expired (state, n) VALUES (?1, ?2)
                             ON CONFLICT (state) DO UPDATE SET n = n + ?2",
                            params![state, n],
                        )
                        .map_err(sql("counting expired notifications"))?;
                    }
                }
                Ok(gone.len() as u64)
            })
            .await
    }
}
