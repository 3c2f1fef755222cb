//! Every port in memory, for fast tests: no files, no SQLite, no network. Each adapter passes
//! its port's conformance suite (the `conformance` feature's tests run them), so a pipeline test
//! on these sees the semantics of the real ones; the real ones still have tests of their own.
//!
//! [`ports`] builds the full set.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use weir_core::keys::{validate_bucket, validate_key};
use weir_core::stats::{self, JobTotals, MinuteReceived, MinuteTally, Series, Tally};
use weir_core::{Job, JobId, JobStatus};

use crate::{
    clamp_page, plan_begin, Begin, BucketInfo, ByteStream, DeadLetter, JobFilter, JobStore, LoadError,
    LoadTarget, Message, Metadata, Notification, Notifier, ObjectInfo, ObjectPage, ObjectStore, PortError,
    Ports, Queue, QueueSettings, QueueStats, RecordItem, RecordsSink, SourceKey, Warehouse, WarehouseInfo,
    WarehouseTx,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A full set of in-memory ports with the given buckets and queue settings; the notifier keeps
/// one message per `id` attribute (as the embedded outbox does).
pub fn ports(buckets: &[&str], settings: QueueSettings) -> (Ports, Arc<MemoryNotifier>) {
    let notifier = Arc::new(MemoryNotifier::idempotent());
    let ports = Ports {
        objects: Arc::new(MemoryObjectStore::with_buckets(buckets)),
        queue: Arc::new(MemoryQueue::new(settings)),
        jobs: Arc::new(MemoryJobStore::default()),
        records: Some(Arc::new(MemoryRecords::default())),
        notifier: notifier.clone(),
        warehouses: Default::default(),
    };
    (ports, notifier)
}

// ---- objects ----

#[derive(Debug, Clone)]
struct Object {
    data: Bytes,
    etag: String,
    metadata: Metadata,
    modified: DateTime<Utc>,
}

/// One bucket: when it was made, and its objects by key.
type Bucket = (DateTime<Utc>, BTreeMap<String, Object>);

/// Buckets of objects in a map.
#[derive(Debug, Default)]
pub struct MemoryObjectStore {
    buckets: Mutex<BTreeMap<String, Bucket>>,
}

fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(data))
}

/// Checks a bucket and key as the embedded store does: a key ending in `/` is a folder marker
/// (`csv/`, an empty object S3 accepts), whose folder must be a valid key.
fn checked(bucket: &str, key: &str) -> Result<(), PortError> {
    validate_bucket(bucket).map_err(PortError::Invalid)?;
    let folder = key.strip_suffix('/').unwrap_or(key);
    validate_key(folder).map_err(|e| PortError::Invalid(e.to_string()))
}

/// A folder marker's key ends in `/`; as in the embedded store it holds no bytes (an object
/// with content under such a key could not be told from the folder's objects there).
fn check_marker_body(key: &str, size: usize) -> Result<(), PortError> {
    if key.ends_with('/') && size > 0 {
        return Err(PortError::Invalid(format!(
            "{key:?} ends in `/`, a folder marker: it must be empty (objects go under it, e.g. {key}name.csv)"
        )));
    }
    Ok(())
}

impl MemoryObjectStore {
    pub fn with_buckets(buckets: &[&str]) -> Self {
        let store = MemoryObjectStore::default();
        for b in buckets {
            lock(&store.buckets).insert((*b).to_owned(), (Utc::now(), BTreeMap::new()));
        }
        store
    }

    fn info(bucket: &str, key: &str, o: &Object) -> ObjectInfo {
        ObjectInfo {
            bucket: bucket.into(),
            key: key.into(),
            size: o.data.len() as u64,
            etag: o.etag.clone(),
            last_modified: o.modified,
            metadata: o.metadata.clone(),
        }
    }

    fn with_bucket<T>(
        &self,
        bucket: &str,
        f: impl FnOnce(&mut BTreeMap<String, Object>) -> Result<T, PortError>,
    ) -> Result<T, PortError> {
        let mut buckets = lock(&self.buckets);
        let (_, objects) = buckets.get_mut(bucket).ok_or_else(|| PortError::NoSuchBucket(bucket.into()))?;
        f(objects)
    }

    fn found(&self, bucket: &str, key: &str) -> Result<Object, PortError> {
        checked(bucket, key)?;
        self.with_bucket(bucket, |objects| {
            objects.get(key).cloned().ok_or_else(|| PortError::NotFound(format!("object {bucket}/{key}")))
        })
    }
}

#[async_trait]
impl ObjectStore for MemoryObjectStore {
    async fn create_bucket(&self, bucket: &str) -> Result<(), PortError> {
        validate_bucket(bucket).map_err(PortError::Invalid)?;
        lock(&self.buckets).entry(bucket.to_owned()).or_insert_with(|| (Utc::now(), BTreeMap::new()));
        Ok(())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, PortError> {
        Ok(Self::info(bucket, key, &self.found(bucket, key)?))
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<(ObjectInfo, ByteStream), PortError> {
        let o = self.found(bucket, key)?;
        let data = o.data.clone();
        Ok((Self::info(bucket, key, &o), futures::stream::once(async move { Ok(data) }).boxed()))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        metadata: Metadata,
    ) -> Result<ObjectInfo, PortError> {
        checked(bucket, key)?;
        check_marker_body(key, data.len())?;
        let o = Object { etag: md5_hex(&data), data, metadata, modified: Utc::now() };
        self.with_bucket(bucket, |objects| {
            objects.insert(key.to_owned(), o.clone());
            Ok(Self::info(bucket, key, &o))
        })
    }

    async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        metadata: Metadata,
    ) -> Result<ObjectInfo, PortError> {
        let data = std::fs::read(path)
            .map_err(|e| PortError::unavailable(format!("reading {}", path.display()), e))?;
        let info = self.put(bucket, key, Bytes::from(data), metadata).await?;
        let _ = std::fs::remove_file(path);
        Ok(info)
    }

    async fn copy(
        &self,
        from_bucket: &str,
        from_key: &str,
        to_bucket: &str,
        to_key: &str,
        metadata: Option<Metadata>,
    ) -> Result<ObjectInfo, PortError> {
        checked(to_bucket, to_key)?;
        let mut o = self.found(from_bucket, from_key)?;
        check_marker_body(to_key, o.data.len())?;
        if let Some(m) = metadata {
            o.metadata = m;
        }
        o.modified = Utc::now();
        self.with_bucket(to_bucket, |objects| {
            objects.insert(to_key.to_owned(), o.clone());
            Ok(Self::info(to_bucket, to_key, &o))
        })
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), PortError> {
        checked(bucket, key)?;
        self.with_bucket(bucket, |objects| {
            objects.remove(key);
            Ok(())
        })
    }

    async fn delete_version(&self, bucket: &str, key: &str, etag: &str) -> Result<bool, PortError> {
        checked(bucket, key)?;
        self.with_bucket(bucket, |objects| match objects.get(key) {
            Some(o) if o.etag == etag.trim_matches('"') => Ok(objects.remove(key).is_some()),
            _ => Ok(false),
        })
    }

    /// Atomic: the check, the copy and the removal under one lock.
    async fn move_object(
        &self,
        from_bucket: &str,
        from_key: &str,
        to_bucket: &str,
        to_key: &str,
        metadata: Option<Metadata>,
        if_match: Option<&str>,
    ) -> Result<ObjectInfo, PortError> {
        checked(from_bucket, from_key)?;
        checked(to_bucket, to_key)?;
        let mut buckets = lock(&self.buckets);
        if !buckets.contains_key(to_bucket) {
            return Err(PortError::NoSuchBucket(to_bucket.into()));
        }
        let (_, from) =
            buckets.get_mut(from_bucket).ok_or_else(|| PortError::NoSuchBucket(from_bucket.into()))?;
        if let Some(o) = from.get(from_key) {
            check_marker_body(to_key, o.data.len())?;
        }
        let mut o = match from.get(from_key) {
            Some(o) if if_match.is_none_or(|e| e.trim_matches('"') == o.etag) => {
                from.remove(from_key).expect("there")
            }
            Some(_) => return Err(PortError::NotFound(format!("this version of {from_bucket}/{from_key}"))),
            None => return Err(PortError::NotFound(format!("object {from_bucket}/{from_key}"))),
        };
        if let Some(m) = metadata {
            o.metadata = m;
        }
        let info = Self::info(to_bucket, to_key, &o);
        buckets.get_mut(to_bucket).expect("checked").1.insert(to_key.to_owned(), o);
        Ok(info)
    }

    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        max_keys: usize,
    ) -> Result<ObjectPage, PortError> {
        use std::ops::Bound;
        validate_bucket(bucket).map_err(PortError::Invalid)?;
        let max_keys = clamp_page(max_keys);
        let from = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        self.with_bucket(bucket, |objects| {
            let mut matching = objects
                .range::<str, _>((from, Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, o)| Self::info(bucket, k, o));
            let page: Vec<ObjectInfo> = matching.by_ref().take(max_keys).collect();
            let more = matching.next().is_some();
            let next_after = more.then(|| page.last().map(|o| o.key.clone())).flatten();
            Ok(ObjectPage { objects: page, next_after })
        })
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, PortError> {
        Ok(lock(&self.buckets)
            .iter()
            .map(|(name, (created, _))| BucketInfo { name: name.clone(), created: Some(*created) })
            .collect())
    }

    async fn bucket_exists(&self, bucket: &str) -> Result<bool, PortError> {
        Ok(lock(&self.buckets).contains_key(bucket))
    }
}

// ---- queue ----

#[derive(Debug, Clone)]
struct Queued {
    id: String,
    body: String,
    tag: Option<String>,
    receive_count: u32,
    visible_at: Instant,
    enqueued_at: Instant,
    sent_at: DateTime<Utc>,
    /// The current receive's handle; earlier handles are stale.
    handle: Option<String>,
}

#[derive(Default)]
struct QueueState {
    /// By sequence: the order messages were sent in.
    main: BTreeMap<u64, Queued>,
    dlq: Vec<DeadLetter>,
    next: u64,
    /// Handles given out: handle → sequence (stale ones stay, to tell them from junk).
    handles: HashMap<String, u64>,
}

/// A standard queue with SQS's semantics (visibility, receive counts, redrive, retention).
pub struct MemoryQueue {
    settings: QueueSettings,
    state: Mutex<QueueState>,
    arrivals: tokio::sync::Notify,
}

impl MemoryQueue {
    pub fn new(settings: QueueSettings) -> Self {
        MemoryQueue { settings, state: Mutex::default(), arrivals: tokio::sync::Notify::new() }
    }

    fn push(&self, body: &str, tag: Option<&str>) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let now = Instant::now();
        let mut s = lock(&self.state);
        let seq = s.next;
        s.next += 1;
        s.main.insert(
            seq,
            Queued {
                id: id.clone(),
                body: body.into(),
                tag: tag.map(str::to_owned),
                receive_count: 0,
                visible_at: now,
                enqueued_at: now,
                sent_at: Utc::now(),
                handle: None,
            },
        );
        id
    }

    fn expire(&self, s: &mut QueueState) {
        let now = Instant::now();
        let keep = self.settings.retention;
        s.main.retain(|_, m| now.duration_since(m.enqueued_at) < keep);
    }

    fn try_receive(&self, max: usize) -> Vec<Message> {
        let mut s = lock(&self.state);
        self.expire(&mut s);
        let now = Instant::now();
        let due: Vec<u64> = s.main.iter().filter(|(_, m)| m.visible_at <= now).map(|(seq, _)| *seq).collect();
        let mut out = Vec::new();
        for seq in due {
            if out.len() == max {
                break;
            }
            let m = s.main.get(&seq).expect("listed").clone();
            if m.receive_count >= self.settings.max_receive_count {
                s.main.remove(&seq);
                s.dlq.push(DeadLetter {
                    message_id: m.id,
                    body: m.body,
                    receive_count: m.receive_count,
                    sent_at: m.sent_at,
                    dead_lettered_at: Utc::now(),
                });
                continue;
            }
            let handle = uuid::Uuid::new_v4().to_string();
            s.handles.insert(handle.clone(), seq);
            let m = s.main.get_mut(&seq).expect("listed");
            m.receive_count += 1;
            m.visible_at = now + self.settings.visibility_timeout;
            m.handle = Some(handle.clone());
            out.push(Message {
                message_id: m.id.clone(),
                receipt_handle: handle,
                body: m.body.clone(),
                receive_count: m.receive_count,
                sent_at: m.sent_at,
            });
        }
        out
    }

    /// The sequence of the message whose current handle is `handle`; `Ok(None)` for a handle
    /// of a message that is gone.
    fn current(s: &QueueState, handle: &str) -> Result<Option<u64>, PortError> {
        let seq = *s.handles.get(handle).ok_or_else(|| PortError::Invalid("not a receipt handle".into()))?;
        match s.main.get(&seq) {
            Some(m) if m.handle.as_deref() == Some(handle) => Ok(Some(seq)),
            Some(_) => {
                Err(PortError::NotFound("receipt handle: the message was received again since".into()))
            }
            None => Ok(None),
        }
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, body: &str) -> Result<String, PortError> {
        let id = self.push(body, None);
        self.arrivals.notify_waiters();
        Ok(id)
    }

    async fn send_tagged(
        &self,
        body: &str,
        tag: &str,
        unless_queued: bool,
    ) -> Result<Option<String>, PortError> {
        if unless_queued && lock(&self.state).main.values().any(|m| m.tag.as_deref() == Some(tag)) {
            return Ok(None);
        }
        let id = self.push(body, Some(tag));
        self.arrivals.notify_waiters();
        Ok(Some(id))
    }

    async fn send_batch(&self, bodies: &[String]) -> Result<Vec<String>, PortError> {
        if bodies.len() > 10 {
            return Err(PortError::Invalid(format!(
                "a batch holds at most 10 messages, not {}",
                bodies.len()
            )));
        }
        let ids = bodies.iter().map(|b| self.push(b, None)).collect();
        self.arrivals.notify_waiters();
        Ok(ids)
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, PortError> {
        if !(1..=10).contains(&max) {
            return Err(PortError::Invalid(format!("receive asks for 1..=10 messages, not {max}")));
        }
        let deadline = Instant::now() + wait;
        loop {
            let arrived = self.arrivals.notified();
            let got = self.try_receive(max);
            let left = deadline.saturating_duration_since(Instant::now());
            if !got.is_empty() || left.is_zero() {
                return Ok(got);
            }
            // Woken by a send, or at the next visibility expiry (checked often enough).
            let _ = tokio::time::timeout(left.min(Duration::from_millis(20)), arrived).await;
        }
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), PortError> {
        let mut s = lock(&self.state);
        if let Some(seq) = Self::current(&s, receipt_handle)? {
            s.main.remove(&seq);
        }
        Ok(())
    }

    async fn change_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<(), PortError> {
        let mut s = lock(&self.state);
        let seq = Self::current(&s, receipt_handle)?
            .ok_or_else(|| PortError::NotFound("receipt handle: the message is gone".into()))?;
        s.main.get_mut(&seq).expect("current").visible_at = Instant::now() + timeout;
        drop(s);
        self.arrivals.notify_waiters();
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats, PortError> {
        let mut s = lock(&self.state);
        self.expire(&mut s);
        let now = Instant::now();
        let mut stats = QueueStats { dead_letters: s.dlq.len() as u64, ..QueueStats::default() };
        for m in s.main.values() {
            match (m.visible_at <= now, m.receive_count) {
                (true, _) => stats.visible += 1,
                (false, 0) => stats.delayed += 1,
                (false, _) => stats.in_flight += 1,
            }
        }
        stats.oldest_age = s.main.values().map(|m| now.duration_since(m.enqueued_at)).max();
        Ok(stats)
    }

    async fn dead_letter(&self, receipt_handle: &str) -> Result<(), PortError> {
        let mut s = lock(&self.state);
        let seq = Self::current(&s, receipt_handle)?
            .ok_or_else(|| PortError::NotFound("receipt handle: the message is gone".into()))?;
        let m = s.main.remove(&seq).expect("current");
        s.dlq.push(DeadLetter {
            message_id: m.id,
            body: m.body,
            receive_count: m.receive_count,
            sent_at: m.sent_at,
            dead_lettered_at: Utc::now(),
        });
        Ok(())
    }

    async fn dlq_list(&self, limit: usize) -> Result<Vec<DeadLetter>, PortError> {
        let s = lock(&self.state);
        let limit = if limit == 0 { usize::MAX } else { limit };
        Ok(s.dlq.iter().take(limit).cloned().collect())
    }

    async fn dlq_replay(&self, ids: Option<&[String]>) -> Result<usize, PortError> {
        let moving: Vec<DeadLetter> = {
            let mut s = lock(&self.state);
            let (moving, staying) = std::mem::take(&mut s.dlq)
                .into_iter()
                .partition(|d| ids.is_none_or(|ids| ids.contains(&d.message_id)));
            s.dlq = staying;
            moving
        };
        let n = moving.len();
        let now = Instant::now();
        let mut s = lock(&self.state);
        for d in moving {
            let seq = s.next;
            s.next += 1;
            s.main.insert(
                seq,
                Queued {
                    id: d.message_id,
                    body: d.body,
                    tag: None,
                    receive_count: 0,
                    visible_at: now,
                    enqueued_at: now,
                    sent_at: d.sent_at,
                    handle: None,
                },
            );
        }
        drop(s);
        self.arrivals.notify_waiters();
        Ok(n)
    }

    async fn dlq_purge(&self) -> Result<usize, PortError> {
        Ok(std::mem::take(&mut lock(&self.state).dlq).len())
    }
}

// ---- jobs ----

#[derive(Default)]
struct JobState {
    /// Job → (record, insertion order).
    jobs: HashMap<JobId, (Job, u64)>,
    next: u64,
    sources: HashMap<(String, String), SourceKey>,
    claims: BTreeSet<String>,
    schedules: HashMap<String, crate::ScheduleMark>,
    counters: BTreeMap<String, u64>,
    finished: BTreeMap<(i64, String, JobStatus), Tally>,
    totals: BTreeMap<(String, JobStatus), Tally>,
    received: BTreeMap<i64, (u64, u64)>,
}

impl JobState {
    fn write(&mut self, job: &Job) {
        let (finished, received) = stats::change(self.jobs.get(&job.job_id).map(|(j, _)| j), job);
        if received {
            let r = self.received.entry(stats::minute_of(job.created_at)).or_default();
            (r.0, r.1) = (r.0 + 1, r.1 + job.source_size);
        }
        if let Some(m) = finished {
            self.finished.entry((m.minute, m.pipeline.clone(), m.status)).or_default().add(&m.tally);
            self.totals.entry((m.pipeline, m.status)).or_default().add(&m.tally);
        }
        let next = self.next;
        let entry = self.jobs.entry(job.job_id.clone()).or_insert_with(|| (job.clone(), next));
        entry.0 = job.clone();
        if entry.1 == next {
            self.next += 1;
        }
    }

    fn holds(&self, job: &Job, run: &str) -> bool {
        self.sources
            .get(&(job.source_bucket.clone(), job.source_key.clone()))
            .and_then(|k| k.lease.as_ref())
            .is_some_and(|l| l.run == run)
    }
}

/// Job records and source keys in maps, deciding `begin` with [`plan_begin`] as every store.
#[derive(Default)]
pub struct MemoryJobStore {
    state: Mutex<JobState>,
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn create(&self, job: &Job) -> Result<bool, PortError> {
        let mut s = lock(&self.state);
        if s.jobs.contains_key(&job.job_id) {
            return Ok(false);
        }
        s.write(job);
        Ok(true)
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>, PortError> {
        Ok(lock(&self.state).jobs.get(id).map(|(j, _)| j.clone()))
    }

    async fn save(&self, job: &Job) -> Result<(), PortError> {
        lock(&self.state).write(job);
        Ok(())
    }

    async fn list(&self, filter: &JobFilter) -> Result<Vec<Job>, PortError> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        let s = lock(&self.state);
        let mut all: Vec<&(Job, u64)> =
            s.jobs.values().filter(|(j, _)| filter.status.is_none_or(|st| j.status == st)).collect();
        all.sort_by(|(a, na), (b, nb)| b.created_at.cmp(&a.created_at).then(nb.cmp(na)));
        Ok(all.into_iter().take(limit).map(|(j, _)| j.clone()).collect())
    }

    async fn list_created(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page_token: Option<&str>,
        limit: usize,
    ) -> Result<crate::JobPage, PortError> {
        let limit = if limit == 0 { 100 } else { limit };
        // The token is the last job's (creation time in µs, insertion order).
        let after = match page_token {
            None => None,
            Some(t) => Some(
                t.split_once(':')
                    .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<u64>().ok()?)))
                    .ok_or_else(|| PortError::Invalid(format!("not a page token of this store: {t:?}")))?,
            ),
        };
        let s = lock(&self.state);
        let mut window: Vec<(i64, u64, &Job)> = s
            .jobs
            .values()
            .filter(|(j, _)| j.created_at >= from && j.created_at < to)
            .map(|(j, n)| (j.created_at.timestamp_micros(), *n, j))
            .filter(|(t, n, _)| after.is_none_or(|a| (*t, *n) > a))
            .collect();
        window.sort_by_key(|(t, n, _)| (*t, *n));
        let more = window.len() > limit;
        window.truncate(limit);
        let next = if more { window.last().map(|(t, n, _)| format!("{t}:{n}")) } else { None };
        Ok(crate::JobPage { jobs: window.into_iter().map(|(_, _, j)| j.clone()).collect(), next })
    }

    async fn counts(&self) -> Result<BTreeMap<JobStatus, u64>, PortError> {
        let mut counts = BTreeMap::new();
        for (j, _) in lock(&self.state).jobs.values() {
            *counts.entry(j.status).or_insert(0) += 1;
        }
        Ok(counts)
    }

    async fn totals(&self) -> Result<JobTotals, PortError> {
        let s = lock(&self.state);
        let mut current = BTreeMap::new();
        for (j, _) in s.jobs.values() {
            *current.entry(j.status).or_insert(0) += 1;
        }
        Ok(JobTotals {
            finished: s.totals.clone(),
            received_files: s.received.values().map(|r| r.0).sum(),
            received_bytes: s.received.values().map(|r| r.1).sum(),
            current,
        })
    }

    async fn series(&self, from: i64, to: i64) -> Result<Series, PortError> {
        let s = lock(&self.state);
        let finished = s
            .finished
            .iter()
            .filter(|((minute, _, _), _)| (from..to).contains(minute))
            .map(|((minute, pipeline, status), tally)| MinuteTally {
                minute: *minute,
                pipeline: pipeline.clone(),
                status: *status,
                tally: tally.clone(),
            })
            .collect();
        let received = s
            .received
            .range(from..to)
            .map(|(&minute, &(files, bytes))| MinuteReceived { minute, files, bytes })
            .collect();
        Ok(Series { finished, received })
    }

    async fn begin(&self, job: &Job, pipeline: &str, run: &str, ttl: Duration) -> Result<Begin, PortError> {
        let mut s = lock(&self.state);
        let stored = s.jobs.get(&job.job_id).map(|(j, _)| j.clone());
        if stored.is_none() {
            s.write(job);
        }
        let at = (job.source_bucket.clone(), job.source_key.clone());
        let current = s.sources.get(&at).cloned().unwrap_or_default();
        let plan = plan_begin(stored, job, pipeline, current, run, ttl, now_ms());
        s.sources.insert(at, plan.key);
        if let Some(saved) = &plan.save {
            s.write(saved);
        }
        Ok(plan.outcome)
    }

    async fn renew(&self, bucket: &str, key: &str, run: &str, ttl: Duration) -> Result<bool, PortError> {
        let mut s = lock(&self.state);
        match s.sources.get_mut(&(bucket.to_owned(), key.to_owned())).and_then(|k| k.lease.as_mut()) {
            Some(l) if l.run == run => {
                l.expires_ms = now_ms() + ttl.as_millis() as i64;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn save_run(&self, job: &Job, run: &str) -> Result<(), PortError> {
        let mut s = lock(&self.state);
        if !s.holds(job, run) {
            return Err(PortError::Conflict(format!(
                "run {run} no longer holds {}/{}",
                job.source_bucket, job.source_key
            )));
        }
        s.write(job);
        Ok(())
    }

    async fn finish_run(&self, job: &Job, run: &str) -> Result<(), PortError> {
        let mut s = lock(&self.state);
        if !s.holds(job, run) {
            return Err(PortError::Conflict(format!(
                "run {run} no longer holds {}/{}",
                job.source_bucket, job.source_key
            )));
        }
        s.write(job);
        if let Some(k) = s.sources.get_mut(&(job.source_bucket.clone(), job.source_key.clone())) {
            k.lease = None;
        }
        Ok(())
    }

    async fn source_key(&self, bucket: &str, key: &str) -> Result<Option<SourceKey>, PortError> {
        Ok(lock(&self.state).sources.get(&(bucket.to_owned(), key.to_owned())).cloned())
    }

    async fn claim_once(&self, key: &str) -> Result<bool, PortError> {
        Ok(lock(&self.state).claims.insert(key.to_owned()))
    }

    async fn schedule_mark(&self, name: &str, anchor_ms: i64) -> Result<crate::ScheduleMark, PortError> {
        Ok(*lock(&self.state).schedules.entry(name.to_owned()).or_insert(crate::ScheduleMark {
            anchor_ms,
            last_due_ms: None,
            fired_at_ms: None,
        }))
    }

    async fn claim_schedule(&self, name: &str, due_ms: i64) -> Result<bool, PortError> {
        let mut s = lock(&self.state);
        let mark = s.schedules.entry(name.to_owned()).or_insert(crate::ScheduleMark {
            anchor_ms: due_ms,
            last_due_ms: None,
            fired_at_ms: None,
        });
        if mark.last_due_ms.is_some_and(|last| last >= due_ms) {
            return Ok(false);
        }
        mark.last_due_ms = Some(due_ms);
        mark.fired_at_ms = Some(now_ms());
        Ok(true)
    }

    async fn finished_before(
        &self,
        before_ms: i64,
        after: Option<&JobId>,
        limit: usize,
    ) -> Result<crate::ExpiredJobs, PortError> {
        let s = lock(&self.state);
        let mut ids: Vec<JobId> = s
            .jobs
            .values()
            .filter(|(j, _)| finished_before(j, before_ms) && after.is_none_or(|a| j.job_id > *a))
            .map(|(j, _)| j.job_id.clone())
            .collect();
        ids.sort();
        let more = ids.len() > limit;
        ids.truncate(limit);
        Ok(crate::ExpiredJobs { jobs: ids, more })
    }

    async fn delete_finished(&self, ids: &[JobId], before_ms: i64) -> Result<u64, PortError> {
        let mut s = lock(&self.state);
        let now = now_ms();
        let mut deleted = 0;
        for id in ids {
            let Some((job, _)) = s.jobs.get(id) else { continue };
            if !finished_before(job, before_ms) {
                continue;
            }
            let at = (job.source_bucket.clone(), job.source_key.clone());
            s.jobs.remove(id);
            deleted += 1;
            let unheld = |k: &SourceKey| k.lease.as_ref().is_none_or(|l| l.expires_ms <= now);
            if s.sources.get(&at).is_some_and(|k| k.newest_job.as_ref() == Some(id) && unheld(k)) {
                s.sources.remove(&at);
            }
        }
        Ok(deleted)
    }

    async fn add_to_counter(&self, name: &str, by: u64) -> Result<(), PortError> {
        *lock(&self.state).counters.entry(name.to_owned()).or_default() += by;
        Ok(())
    }

    async fn counters(&self) -> Result<BTreeMap<String, u64>, PortError> {
        Ok(lock(&self.state).counters.clone())
    }
}

/// Whether retention may remove the job: done, and finished before `before_ms`.
fn finished_before(job: &Job, before_ms: i64) -> bool {
    job.is_done() && job.finished_at.is_some_and(|t| t.timestamp_millis() < before_ms)
}

// ---- records ----

/// Items by (pk, sk).
#[derive(Default)]
pub struct MemoryRecords {
    items: Mutex<BTreeMap<(String, String), serde_json::Value>>,
}

#[async_trait]
impl RecordsSink for MemoryRecords {
    async fn put_batch(&self, items: &[RecordItem]) -> Result<(), PortError> {
        let mut all = lock(&self.items);
        for i in items {
            all.insert((i.pk.clone(), i.sk.clone()), i.item.clone());
        }
        Ok(())
    }

    async fn query(&self, pk: &str, limit: usize) -> Result<Vec<RecordItem>, PortError> {
        let limit = if limit == 0 { usize::MAX } else { limit };
        Ok(lock(&self.items)
            .range((pk.to_owned(), String::new())..)
            .take_while(|((p, _), _)| p == pk)
            .take(limit)
            .map(|((pk, sk), item)| RecordItem { pk: pk.clone(), sk: sk.clone(), item: item.clone() })
            .collect())
    }
}

// ---- warehouse ----

/// One row in a [`MemoryWarehouse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseRow {
    pub source_bucket: String,
    pub source_key: String,
    pub job_id: String,
    pub line: u64,
    /// The row as JSON (the table's `data`).
    pub json: String,
}

/// A warehouse table in memory with the port's semantics (a load replaces the version's rows,
/// or the key's in `replace` mode, when it commits; nothing before). It counts the loads it
/// committed, and refuses a row whose JSON contains [`MemoryWarehouse::refuse`]'s text, as a
/// database refuses a row a constraint forbids.
#[derive(Debug, Default)]
pub struct MemoryWarehouse {
    replace: bool,
    refuse: Option<String>,
    rows: Mutex<Vec<WarehouseRow>>,
    commits: std::sync::atomic::AtomicU64,
}

impl MemoryWarehouse {
    /// A table in `replace` mode (`false`: `append`).
    pub fn new(replace: bool) -> MemoryWarehouse {
        MemoryWarehouse { replace, ..MemoryWarehouse::default() }
    }

    /// Refuses rows whose JSON contains `text`.
    pub fn refuse(mut self, text: &str) -> MemoryWarehouse {
        self.refuse = Some(text.to_string());
        self
    }

    pub fn rows(&self) -> Vec<WarehouseRow> {
        lock(&self.rows).clone()
    }

    /// Loads committed so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl Warehouse for Arc<MemoryWarehouse> {
    fn info(&self) -> WarehouseInfo {
        WarehouseInfo {
            sink: "memory".into(),
            target: "memory".into(),
            table: "rows".into(),
            mode: if self.replace { "replace" } else { "append" }.into(),
        }
    }

    async fn begin(&self, target: &LoadTarget) -> Result<Box<dyn WarehouseTx>, LoadError> {
        Ok(Box::new(MemoryTx { table: self.clone(), target: target.clone(), rows: Vec::new() }))
    }
}

struct MemoryTx {
    table: Arc<MemoryWarehouse>,
    target: LoadTarget,
    rows: Vec<WarehouseRow>,
}

#[async_trait]
impl WarehouseTx for MemoryTx {
    async fn write(&mut self, batch: &weir_core::rows::RowBatch) -> Result<(), LoadError> {
        for row in batch.rows() {
            let json = String::from_utf8_lossy(row.json).into_owned();
            if self.table.refuse.as_ref().is_some_and(|r| json.contains(r.as_str())) {
                return Err(LoadError::Refused {
                    row: Some(self.rows.len() as u64 + 1),
                    reason: format!("the row contains {:?}", self.table.refuse.as_deref().unwrap_or("")),
                });
            }
            self.rows.push(WarehouseRow {
                source_bucket: self.target.source_bucket.clone(),
                source_key: self.target.source_key.clone(),
                job_id: self.target.job_id.clone(),
                line: row.line,
                json,
            });
        }
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<u64, LoadError> {
        let mut rows = lock(&self.table.rows);
        let t = &self.target;
        rows.retain(|r| {
            if self.table.replace {
                !(r.source_bucket == t.source_bucket && r.source_key == t.source_key)
            } else {
                r.job_id != t.job_id
            }
        });
        let n = self.rows.len() as u64;
        rows.extend(self.rows);
        self.table.commits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(n)
    }
}

// ---- notifications ----

/// Keeps what is published, for the test to read: one per `id` attribute when idempotent (as
/// the embedded outbox stores them), every publish otherwise.
#[derive(Default)]
pub struct MemoryNotifier {
    idempotent: bool,
    published: Mutex<Vec<Notification>>,
}

impl MemoryNotifier {
    pub fn idempotent() -> Self {
        MemoryNotifier { idempotent: true, published: Mutex::default() }
    }

    pub fn published(&self) -> Vec<Notification> {
        lock(&self.published).clone()
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn publish(&self, n: &Notification) -> Result<(), PortError> {
        let mut all = lock(&self.published);
        let id = n.attributes.get("id");
        if !(self.idempotent && id.is_some() && all.iter().any(|m| m.attributes.get("id") == id)) {
            all.push(n.clone());
        }
        Ok(())
    }

    fn idempotent(&self) -> bool {
        self.idempotent
    }
}

#[cfg(all(test, feature = "conformance"))]
mod tests {
    use super::*;
    use crate::conformance;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_objects_pass_the_object_store_suite() {
        conformance::objects::run_all(|| async {
            Arc::new(MemoryObjectStore::with_buckets(&conformance::objects::BUCKETS)) as Arc<dyn ObjectStore>
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_queue_passes_the_queue_suite() {
        conformance::queue::run_all(|settings| async move {
            Arc::new(MemoryQueue::new(settings)) as Arc<dyn Queue>
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_jobs_pass_the_job_store_suite() {
        conformance::jobs::run_all(
            || async {
                let store: Arc<dyn JobStore> = Arc::new(MemoryJobStore::default());
                (store.clone(), store)
            },
            Duration::from_millis(300),
        )
        .await;
    }

    #[tokio::test]
    async fn memory_records_pass_the_records_suite() {
        conformance::records::run_all(Arc::new(MemoryRecords::default())).await;
    }
}
