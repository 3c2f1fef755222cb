//! The embedded queue: SQS standard-queue semantics, with its dead-letter queue, in one SQLite file.
//!
//! `weir run` needs a durable queue between the S3 endpoint (which sends an event per upload)
//! and the workers, and CLI commands in other processes (`weir put`, `weir dlq replay`) use the
//! same file. All the state lives in the `messages` table — nothing that matters for correctness
//! is kept in memory — so any number of [`SqliteQueue`]s, in any number of processes, can share
//! one file:
//!
//! - a message row is in the main queue (`queue = 0`) or the DLQ (`queue = 1`);
//! - `visible_at` (ms since the epoch) is when it may next be received;
//! - `receive_count` and `receipt_handle` change on every receive; the handle is
//!   `<message id>:<uuid v4>`, so a delete with an old handle can tell "already deleted" (fine)
//!   from "received again since" (an error);
//! - `enqueued_at` is when it entered its current queue; retention counts from there.
//!
//! A receive is one `IMMEDIATE` transaction: drop expired messages, pick visible rows by
//! `visible_at` then insertion order, move those that were already received
//! `max_receive_count` times to the DLQ instead of returning them (SQS redrive), and give the
//! rest a new handle and `visible_at = now + visibility timeout`. Long polling waits for an
//! in-process send ([`tokio::sync::Notify`]) and polls the file every 25 ms for sends from other
//! processes and for visibility timeouts that run out; an idle poll is one indexed read, which
//! takes no write lock.
//!
//! Differences from SQS, all deliberate: ordering is by `visible_at` then send order (SQS
//! promises none); DLQ retention counts from when the message was dead-lettered (SQS counts from
//! the original send); a replayed message gets a fresh retention period; `max_receive_count = 0`
//! disables redrive.

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::Notify;
use weir_ports::{DeadLetter, Message, PortError, Queue, QueueSettings, QueueStats};

use super::{datetime, ms, now_ms, sql, Db, Durability, SqliteFile};

/// How often a waiting receive looks at the file for messages it was not told about.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// SQS's limits, kept so that code written against the embedded queue also works on SQS.
const MAX_BATCH: usize = 10;
const MAX_BODY_BYTES: usize = 256 * 1024;
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

const MAIN: i64 = 0;
const DLQ: i64 = 1;

const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL,
        queue INTEGER NOT NULL,
        visible_at INTEGER NOT NULL,
        receive_count INTEGER NOT NULL DEFAULT 0,
        receipt_handle TEXT,
        sent_at INTEGER NOT NULL,
        enqueued_at INTEGER NOT NULL,
        dead_lettered_at INTEGER
    );
    CREATE INDEX messages_ready ON messages (queue, visible_at, seq);
    CREATE INDEX messages_age ON messages (queue, enqueued_at);
",
    "
    ALTER TABLE messages ADD COLUMN tag TEXT;
    CREATE INDEX messages_tag ON messages (tag) WHERE tag IS NOT NULL;
",
];

/// A durable SQS-like queue with a DLQ, stored in one SQLite file. Cheap to clone; clones share
/// the connection and wake each other's long polls at once.
#[derive(Clone)]
pub struct SqliteQueue {
    db: Db,
    settings: QueueSettings,
    /// Woken by sends (and by anything else that makes a message visible) in this process.
    arrivals: Arc<Notify>,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("path", &self.db.path())
            .field("settings", &self.settings)
            .finish()
    }
}

impl SqliteQueue {
    /// Opens the queue stored at `path`, creating the file and its schema if needed. The
    /// settings apply to this handle's operations; processes sharing a file should use the
    /// same settings.
    pub fn open(path: &std::path::Path, settings: QueueSettings) -> Result<SqliteQueue, PortError> {
        let db = Db::open(path, "queue", MIGRATIONS)?;
        Ok(SqliteQueue { db, settings, arrivals: Arc::new(Notify::new()) })
    }

    /// The queue in a file that other stores share (see [`SqliteFile`]).
    pub fn in_file(file: &SqliteFile, settings: QueueSettings) -> Result<SqliteQueue, PortError> {
        file.db.migrate("queue", MIGRATIONS)?;
        Ok(SqliteQueue { db: file.db.clone(), settings, arrivals: Arc::new(Notify::new()) })
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    /// One receive attempt, without waiting.
    async fn try_receive(&self, max: usize) -> Result<Vec<Message>, PortError> {
        // The cheap check first: an idle poll must not take the write lock, which other
        // processes' sends and deletes need.
        let has_visible = self.db.lookup("checking for visible messages", |c| {
            c.prepare_cached("SELECT EXISTS (SELECT 1 FROM messages WHERE queue = 0 AND visible_at <= ?1)")
                .and_then(|mut st| st.query_row([now_ms()], |r| r.get::<_, bool>(0)))
                .map_err(sql("checking for visible messages"))
        })?;
        if !has_visible {
            return Ok(Vec::new());
        }
        let settings = self.settings;
        // Deferred: a receive lost to a power cut only makes the message visible again sooner
        // (and undercounts one receive), which at-least-once delivery allows.
        self.db.write_with(Durability::Deferred, "receiving", move |c| receive_now(c, max, &settings)).await
    }
}

/// Parses `<message id>:<nonce>`.
fn split_handle(handle: &str) -> Result<(String, String), PortError> {
    match handle.split_once(':') {
        Some((id, nonce)) if !id.is_empty() && !nonce.is_empty() => Ok((id.to_owned(), handle.to_owned())),
        _ => Err(PortError::Invalid(format!("malformed receipt handle {handle:?}"))),
    }
}

fn new_handle(message_id: &str) -> String {
    format!("{message_id}:{}", uuid::Uuid::new_v4().simple())
}

/// Deletes messages older than their queue's retention.
fn purge_expired(c: &Connection, now: i64, settings: &QueueSettings) -> Result<(), PortError> {
    let mut st = c
        .prepare_cached("DELETE FROM messages WHERE queue = ?1 AND enqueued_at < ?2")
        .map_err(sql("purging expired messages"))?;
    let dropped = st
        .execute(params![MAIN, now.saturating_sub(ms(settings.retention))])
        .map_err(sql("purging"))?
        + st.execute(params![DLQ, now.saturating_sub(ms(settings.dlq_retention))]).map_err(sql("purging"))?;
    if dropped > 0 {
        tracing::info!(dropped, "queue dropped messages past their retention period");
    }
    Ok(())
}

/// Why a handle did not match: the message is gone (`None`) or was received again (`Some`).
fn current_handle(c: &Connection, message_id: &str) -> Result<Option<Option<String>>, PortError> {
    c.prepare_cached("SELECT receipt_handle FROM messages WHERE message_id = ?1")
        .and_then(|mut st| st.query_row([message_id], |r| r.get::<_, Option<String>>(0)).optional())
        .map_err(sql("looking up a message"))
}

fn stale(message_id: &str) -> PortError {
    PortError::Invalid(format!(
        "stale receipt handle: message {message_id} was received again (or dead-lettered) since"
    ))
}

fn receive_now(c: &Connection, max: usize, settings: &QueueSettings) -> Result<Vec<Message>, PortError> {
    let now = now_ms();
    purge_expired(c, now, settings)?;
    // At least 1 ms, so a message received in this call is not visible to the next pick.
    let visible_at = now.saturating_add(ms(settings.visibility_timeout).max(1));
    let max_receives = i64::from(settings.max_receive_count);
    let mut select = c
        .prepare_cached(
            "SELECT seq, message_id, body, receive_count, sent_at FROM messages
             WHERE queue = 0 AND visible_at <= ?1 ORDER BY visible_at, seq LIMIT ?2",
        )
        .map_err(sql("selecting visible messages"))?;
    let mut redrive = c
        .prepare_cached(
            "UPDATE messages SET queue = 1, receipt_handle = NULL, enqueued_at = ?2, dead_lettered_at = ?2
             WHERE seq = ?1",
        )
        .map_err(sql("preparing redrive"))?;
    let mut mark = c
        .prepare_cached(
            "UPDATE messages SET receive_count = receive_count + 1, receipt_handle = ?2, visible_at = ?3
             WHERE seq = ?1",
        )
        .map_err(sql("preparing receive"))?;
    let mut out = Vec::with_capacity(max);
    // Each round either returns rows or moves them to the DLQ, so the loop ends.
    while out.len() < max {
        let rows = select
            .query_map(params![now, (max - out.len()) as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql("selecting visible messages"))?;
        if rows.is_empty() {
            break;
        }
        for (seq, message_id, body, receive_count, sent_at) in rows {
            if max_receives > 0 && receive_count >= max_receives {
                redrive.execute(params![seq, now]).map_err(sql("moving a message to the DLQ"))?;
                tracing::warn!(message_id, receive_count, "message moved to the dead-letter queue");
                continue;
            }
            let handle = new_handle(&message_id);
            mark.execute(params![seq, handle, visible_at]).map_err(sql("marking a message received"))?;
            out.push(Message {
                message_id,
                receipt_handle: handle,
                body,
                receive_count: u32::try_from(receive_count + 1).unwrap_or(u32::MAX),
                sent_at: datetime(sent_at),
            });
        }
    }
    Ok(out)
}

fn insert(c: &Connection, bodies: &[String]) -> Result<Vec<String>, PortError> {
    bodies.iter().map(|body| insert_one(c, body, None)).collect()
}

fn insert_one(c: &Connection, body: &str, tag: Option<&str>) -> Result<String, PortError> {
    let id = uuid::Uuid::new_v4().to_string();
    c.prepare_cached(
        "INSERT INTO messages (message_id, body, queue, visible_at, receive_count, sent_at, enqueued_at, tag)
         VALUES (?1, ?2, 0, ?3, 0, ?3, ?3, ?4)",
    )
    .and_then(|mut st| st.execute(params![id, body, now_ms(), tag]))
    .map_err(sql("inserting a message"))?;
    Ok(id)
}

fn check_body(body: &str) -> Result<(), PortError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(PortError::Invalid(format!(
            "message body of {} bytes exceeds the {MAX_BODY_BYTES}-byte limit",
            body.len()
        )));
    }
    Ok(())
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send(&self, body: &str) -> Result<String, PortError> {
        check_body(body)?;
        let bodies = vec![body.to_owned()];
        let mut ids = self.db.write("sending", move |c| insert(c, &bodies)).await?;
        self.arrivals.notify_waiters();
        ids.pop().ok_or_else(|| PortError::Invalid("send returned no id".into()))
    }

    async fn send_tagged(
        &self,
        body: &str,
        tag: &str,
        unless_queued: bool,
    ) -> Result<Option<String>, PortError> {
        check_body(body)?;
        let (body, tag) = (body.to_owned(), tag.to_owned());
        let id = self
            .db
            .write("sending", move |c| {
                if unless_queued {
                    let queued = c
                        .prepare_cached("SELECT EXISTS (SELECT 1 FROM messages WHERE tag = ?1 AND queue = 0)")
                        .and_then(|mut st| st.query_row([&tag], |r| r.get::<_, bool>(0)))
                        .map_err(sql("looking for a tagged message"))?;
                    if queued {
                        return Ok(None);
                    }
                }
                insert_one(c, &body, Some(&tag)).map(Some)
            })
            .await?;
        if id.is_some() {
            self.arrivals.notify_waiters();
        }
        Ok(id)
    }

    async fn send_batch(&self, bodies: &[String]) -> Result<Vec<String>, PortError> {
        if bodies.len() > MAX_BATCH {
            return Err(PortError::Invalid(format!(
                "a batch holds at most {MAX_BATCH} messages, not {}",
                bodies.len()
            )));
        }
        if bodies.is_empty() {
            return Ok(Vec::new());
        }
        bodies.iter().try_for_each(|b| check_body(b))?;
        let bodies = bodies.to_vec();
        let ids = self.db.write("sending a batch", move |c| insert(c, &bodies)).await?;
        self.arrivals.notify_waiters();
        Ok(ids)
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, PortError> {
        if !(1..=MAX_BATCH).contains(&max) {
            return Err(PortError::Invalid(format!("receive asks for 1..={MAX_BATCH} messages, not {max}")));
        }
        let deadline = Instant::now() + wait;
        loop {
            // Registered before looking, so a send between the look and the wait still wakes us.
            let mut arrived = pin!(self.arrivals.notified());
            arrived.as_mut().enable();
            let got = self.try_receive(max).await?;
            let now = Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            tokio::select! {
                _ = arrived => {}
                _ = tokio::time::sleep((deadline - now).min(POLL_INTERVAL)) => {}
            }
        }
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), PortError> {
        let (message_id, handle) = split_handle(receipt_handle)?;
        self.db
            .write("deleting", move |c| {
                let deleted = c
                    .prepare_cached("DELETE FROM messages WHERE message_id = ?1 AND receipt_handle = ?2")
                    .and_then(|mut st| st.execute(params![message_id, handle]))
                    .map_err(sql("deleting a message"))?;
                if deleted > 0 {
                    return Ok(());
                }
                match current_handle(c, &message_id)? {
                    None => Ok(()), // already deleted (or expired): deleting again succeeds
                    Some(_) => Err(stale(&message_id)),
                }
            })
            .await
    }

    async fn change_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<(), PortError> {
        if timeout > MAX_VISIBILITY {
            return Err(PortError::Invalid(format!(
                "visibility timeout {timeout:?} exceeds the maximum of {MAX_VISIBILITY:?}"
            )));
        }
        let (message_id, handle) = split_handle(receipt_handle)?;
        // Deferred like a receive: losing it only changes when the message is seen again.
        self.db
            .write_with(Durability::Deferred, "changing visibility", move |c| {
                let visible_at = now_ms().saturating_add(ms(timeout));
                let changed = c
                    .prepare_cached(
                        "UPDATE messages SET visible_at = ?3
                         WHERE message_id = ?1 AND receipt_handle = ?2 AND queue = 0",
                    )
                    .and_then(|mut st| st.execute(params![message_id, handle, visible_at]))
                    .map_err(sql("changing visibility"))?;
                if changed > 0 {
                    return Ok(());
                }
                match current_handle(c, &message_id)? {
                    None => Err(PortError::NotFound(format!("message {message_id}"))),
                    Some(_) => Err(stale(&message_id)),
                }
            })
            .await?;
        if timeout.is_zero() {
            self.arrivals.notify_waiters();
        }
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats, PortError> {
        let settings = self.settings;
        self.db
            .read("reading queue stats", move |c| {
                let now = now_ms();
                let main_cutoff = now.saturating_sub(ms(settings.retention));
                let dlq_cutoff = now.saturating_sub(ms(settings.dlq_retention));
                // Expired rows not yet purged (a receive purges them) are not counted.
                c.query_row(
                    "SELECT
                         COALESCE(SUM(queue = 0 AND enqueued_at >= ?2 AND visible_at <= ?1), 0),
                         COALESCE(SUM(queue = 0 AND enqueued_at >= ?2 AND visible_at > ?1 AND receive_count > 0), 0),
                         COALESCE(SUM(queue = 0 AND enqueued_at >= ?2 AND visible_at > ?1 AND receive_count = 0), 0),
                         COALESCE(SUM(queue = 1 AND enqueued_at >= ?3), 0),
                         MIN(CASE WHEN queue = 0 AND enqueued_at >= ?2 THEN enqueued_at END)
                     FROM messages",
                    params![now, main_cutoff, dlq_cutoff],
                    |r| {
                        let oldest: Option<i64> = r.get(4)?;
                        Ok(QueueStats {
                            visible: r.get::<_, i64>(0)?.max(0) as u64,
                            in_flight: r.get::<_, i64>(1)?.max(0) as u64,
                            delayed: r.get::<_, i64>(2)?.max(0) as u64,
                            dead_letters: r.get::<_, i64>(3)?.max(0) as u64,
                            oldest_age: oldest
                                .map(|t| Duration::from_millis(now.saturating_sub(t).max(0) as u64)),
                        })
                    },
                )
                .map_err(sql("reading queue stats"))
            })
            .await
    }

    async fn dead_letter(&self, receipt_handle: &str) -> Result<(), PortError> {
        let (message_id, handle) = split_handle(receipt_handle)?;
        self.db
            .write("dead-lettering", move |c| {
                let now = now_ms();
                let moved = c
                    .prepare_cached(
                        "UPDATE messages SET queue = 1, receipt_handle = NULL, dead_lettered_at = ?3, enqueued_at = ?3
                         WHERE message_id = ?1 AND receipt_handle = ?2 AND queue = 0",
                    )
                    .and_then(|mut st| st.execute(params![message_id, handle, now]))
                    .map_err(sql("dead-lettering a message"))?;
                if moved > 0 {
                    return Ok(());
                }
                match current_handle(c, &message_id)? {
                    None => Err(PortError::NotFound(format!("message {message_id}"))),
                    Some(_) => Err(stale(&message_id)),
                }
            })
            .await
    }

    /// `limit` 0 lists every dead letter.
    async fn dlq_list(&self, limit: usize) -> Result<Vec<DeadLetter>, PortError> {
        let settings = self.settings;
        let limit = if limit == 0 { -1 } else { i64::try_from(limit).unwrap_or(i64::MAX) };
        self.db
            .read("listing dead letters", move |c| {
                let cutoff = now_ms().saturating_sub(ms(settings.dlq_retention));
                let mut st = c
                    .prepare_cached(
                        "SELECT message_id, body, receive_count, sent_at, dead_lettered_at FROM messages
                         WHERE queue = 1 AND enqueued_at >= ?1 ORDER BY enqueued_at, seq LIMIT ?2",
                    )
                    .map_err(sql("listing dead letters"))?;
                let rows = st
                    .query_map(params![cutoff, limit], |r| {
                        Ok(DeadLetter {
                            message_id: r.get(0)?,
                            body: r.get(1)?,
                            receive_count: u32::try_from(r.get::<_, i64>(2)?).unwrap_or(u32::MAX),
                            sent_at: datetime(r.get(3)?),
                            dead_lettered_at: datetime(r.get::<_, Option<i64>>(4)?.unwrap_or_default()),
                        })
                    })
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(sql("listing dead letters"))?;
                Ok(rows)
            })
            .await
    }

    async fn dlq_replay(&self, ids: Option<&[String]>) -> Result<usize, PortError> {
        let settings = self.settings;
        let ids = ids.map(<[String]>::to_vec);
        let moved = self
            .db
            .write("replaying dead letters", move |c| {
                let now = now_ms();
                purge_expired(c, now, &settings)?;
                const REPLAY: &str =
                    "UPDATE messages SET queue = 0, receive_count = 0, receipt_handle = NULL,
                         visible_at = ?1, enqueued_at = ?1, dead_lettered_at = NULL WHERE queue = 1";
                match ids {
                    None => c.execute(REPLAY, [now]).map_err(sql("replaying dead letters")),
                    Some(ids) => {
                        let mut st = c
                            .prepare_cached(&format!("{REPLAY} AND message_id = ?2"))
                            .map_err(sql("replaying dead letters"))?;
                        let mut moved = 0;
                        for id in &ids {
                            moved += st.execute(params![now, id]).map_err(sql("replaying a dead letter"))?;
                        }
                        Ok(moved)
                    }
                }
            })
            .await?;
        if moved > 0 {
            self.arrivals.notify_waiters();
        }
        Ok(moved)
    }

    async fn dlq_purge(&self) -> Result<usize, PortError> {
        let settings = self.settings;
        self.db
            .write("purging the DLQ", move |c| {
                purge_expired(c, now_ms(), &settings)?;
                c.execute("DELETE FROM messages WHERE queue = 1", []).map_err(sql("purging the DLQ"))
            })
            .await
    }
}
