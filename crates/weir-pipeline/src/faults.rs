//! Fault injection: wrappers around every port that fail chosen calls.
//!
//! The failure-point tests and the soak benchmark use these to prove the pipeline's
//! invariants (one terminal state per upload, outputs as a clean run's, no duplicates) under
//! store errors. A [`FaultPlan`] decides, call by call, whether to fail before the work, after
//! it (the work happened but the caller sees an error: a crash or a lost acknowledgement), or
//! not at all. Queue receives and read-only listings are not faulted: an idle worker makes a
//! varying number of them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use weir_core::{Job, JobId, JobStatus};
use weir_ports::{
    Begin, ByteStream, DeadLetter, JobFilter, JobStore, Message, Metadata, Notification, Notifier,
    ObjectInfo, ObjectPage, ObjectStore, PortError, Queue, QueueStats, RecordItem, RecordsSink, SourceKey,
};

use crate::Ports;

/// When a call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Before the work: nothing happened.
    Before,
    /// After the work: it happened, but the caller is told it failed.
    After,
}

/// Decides the fate of each port call, named like `objects.put` or `jobs.save`.
pub trait FaultPlan: Send + Sync {
    fn decide(&self, op: &'static str, detail: &str) -> Option<Fault>;
}

macro_rules! faulty {
    ($plan:expr, $op:literal, $detail:expr, $call:expr) => {{
        match $plan.decide($op, $detail) {
            Some(Fault::Before) => {
                return Err(PortError::unavailable(concat!("injected failure before ", $op), "fault"))
            }
            Some(Fault::After) => {
                let _ = $call;
                return Err(PortError::unavailable(concat!("injected failure after ", $op), "fault"));
            }
            None => $call,
        }
    }};
}

/// Wraps every port of `ports` with `plan`.
pub fn wrap(ports: Ports, plan: Arc<dyn FaultPlan>) -> Ports {
    Ports {
        objects: Arc::new(FaultyObjects(ports.objects, plan.clone())),
        queue: Arc::new(FaultyQueue(ports.queue, plan.clone())),
        jobs: Arc::new(FaultyJobs(ports.jobs, plan.clone())),
        records: ports.records.map(|r| Arc::new(FaultyRecords(r, plan.clone())) as Arc<dyn RecordsSink>),
        notifier: Arc::new(FaultyNotifier(ports.notifier, plan)),
        warehouses: ports.warehouses,
    }
}

struct FaultyObjects(Arc<dyn ObjectStore>, Arc<dyn FaultPlan>);
struct FaultyQueue(Arc<dyn Queue>, Arc<dyn FaultPlan>);
struct FaultyJobs(Arc<dyn JobStore>, Arc<dyn FaultPlan>);
struct FaultyRecords(Arc<dyn RecordsSink>, Arc<dyn FaultPlan>);
struct FaultyNotifier(Arc<dyn Notifier>, Arc<dyn FaultPlan>);

/// `put_all` and `move_object` keep their default implementations, which call `put`, `copy`
/// and `delete` through this wrapper: each object stored or moved is a failure point of its own.
#[async_trait]
impl ObjectStore for FaultyObjects {
    async fn create_bucket(&self, b: &str) -> Result<(), PortError> {
        self.0.create_bucket(b).await
    }
    fn local_scratch(&self) -> Option<std::path::PathBuf> {
        self.0.local_scratch()
    }
    async fn head(&self, b: &str, k: &str) -> Result<ObjectInfo, PortError> {
        faulty!(self.1, "objects.head", "", self.0.head(b, k).await)
    }
    async fn get(&self, b: &str, k: &str) -> Result<(ObjectInfo, ByteStream), PortError> {
        faulty!(self.1, "objects.get", k, self.0.get(b, k).await)
    }
    async fn put(&self, b: &str, k: &str, d: Bytes, m: Metadata) -> Result<ObjectInfo, PortError> {
        faulty!(self.1, "objects.put", k, self.0.put(b, k, d, m).await)
    }
    async fn put_file(&self, b: &str, k: &str, p: &Path, m: Metadata) -> Result<ObjectInfo, PortError> {
        faulty!(self.1, "objects.put_file", k, self.0.put_file(b, k, p, m).await)
    }
    async fn copy(
        &self,
        fb: &str,
        fk: &str,
        tb: &str,
        tk: &str,
        m: Option<Metadata>,
    ) -> Result<ObjectInfo, PortError> {
        faulty!(self.1, "objects.copy", "", self.0.copy(fb, fk, tb, tk, m).await)
    }
    async fn delete(&self, b: &str, k: &str) -> Result<(), PortError> {
        faulty!(self.1, "objects.delete", "", self.0.delete(b, k).await)
    }
    async fn delete_version(&self, b: &str, k: &str, etag: &str) -> Result<bool, PortError> {
        faulty!(self.1, "objects.delete_version", "", self.0.delete_version(b, k, etag).await)
    }
    async fn move_object(
        &self,
        fb: &str,
        fk: &str,
        tb: &str,
        tk: &str,
        m: Option<Metadata>,
        if_match: Option<&str>,
    ) -> Result<ObjectInfo, PortError> {
        faulty!(self.1, "objects.move", "", self.0.move_object(fb, fk, tb, tk, m, if_match).await)
    }
    async fn list_page(
        &self,
        b: &str,
        p: &str,
        after: Option<&str>,
        max_keys: usize,
    ) -> Result<ObjectPage, PortError> {
        faulty!(self.1, "objects.list", "", self.0.list_page(b, p, after, max_keys).await)
    }
}

#[async_trait]
impl Queue for FaultyQueue {
    async fn send(&self, body: &str) -> Result<String, PortError> {
        faulty!(self.1, "queue.send", "", self.0.send(body).await)
    }
    async fn send_batch(&self, bodies: &[String]) -> Result<Vec<String>, PortError> {
        faulty!(self.1, "queue.send_batch", "", self.0.send_batch(bodies).await)
    }
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, PortError> {
        // Receives are not counted: an idle worker polls a varying number of times.
        self.0.receive(max, wait).await
    }
    async fn delete(&self, h: &str) -> Result<(), PortError> {
        faulty!(self.1, "queue.delete", "", self.0.delete(h).await)
    }
    async fn change_visibility(&self, h: &str, t: Duration) -> Result<(), PortError> {
        faulty!(self.1, "queue.change_visibility", "", self.0.change_visibility(h, t).await)
    }
    async fn dead_letter(&self, h: &str) -> Result<(), PortError> {
        faulty!(self.1, "queue.dead_letter", "", self.0.dead_letter(h).await)
    }
    async fn stats(&self) -> Result<QueueStats, PortError> {
        self.0.stats().await
    }
    async fn dlq_list(&self, limit: usize) -> Result<Vec<DeadLetter>, PortError> {
        self.0.dlq_list(limit).await
    }
    async fn dlq_replay(&self, ids: Option<&[String]>) -> Result<usize, PortError> {
        self.0.dlq_replay(ids).await
    }
    async fn dlq_purge(&self) -> Result<usize, PortError> {
        self.0.dlq_purge().await
    }
}

#[async_trait]
impl JobStore for FaultyJobs {
    async fn create(&self, job: &Job) -> Result<bool, PortError> {
        faulty!(self.1, "jobs.create", "", self.0.create(job).await)
    }
    async fn get(&self, id: &JobId) -> Result<Option<Job>, PortError> {
        faulty!(self.1, "jobs.get", "", self.0.get(id).await)
    }
    async fn save(&self, job: &Job) -> Result<(), PortError> {
        faulty!(self.1, "jobs.save", "", self.0.save(job).await)
    }
    async fn list(&self, f: &JobFilter) -> Result<Vec<Job>, PortError> {
        self.0.list(f).await
    }
    async fn list_created(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        page_token: Option<&str>,
        limit: usize,
    ) -> Result<weir_ports::JobPage, PortError> {
        self.0.list_created(from, to, page_token, limit).await
    }
    async fn counts(&self) -> Result<BTreeMap<JobStatus, u64>, PortError> {
        self.0.counts().await
    }
    async fn totals(&self) -> Result<weir_core::stats::JobTotals, PortError> {
        self.0.totals().await
    }
    async fn series(&self, from: i64, to: i64) -> Result<weir_core::stats::Series, PortError> {
        self.0.series(from, to).await
    }
    async fn begin(&self, job: &Job, pipeline: &str, run: &str, ttl: Duration) -> Result<Begin, PortError> {
        faulty!(self.1, "jobs.begin", "", self.0.begin(job, pipeline, run, ttl).await)
    }
    async fn renew(&self, bucket: &str, key: &str, run: &str, ttl: Duration) -> Result<bool, PortError> {
        faulty!(self.1, "jobs.renew", "", self.0.renew(bucket, key, run, ttl).await)
    }
    async fn save_run(&self, job: &Job, run: &str) -> Result<(), PortError> {
        faulty!(self.1, "jobs.save_run", "", self.0.save_run(job, run).await)
    }
    async fn finish_run(&self, job: &Job, run: &str) -> Result<(), PortError> {
        faulty!(self.1, "jobs.finish_run", "", self.0.finish_run(job, run).await)
    }
    async fn source_key(&self, bucket: &str, key: &str) -> Result<Option<SourceKey>, PortError> {
        faulty!(self.1, "jobs.source_key", "", self.0.source_key(bucket, key).await)
    }
    async fn claim_once(&self, key: &str) -> Result<bool, PortError> {
        faulty!(self.1, "jobs.claim_once", "", self.0.claim_once(key).await)
    }
    async fn schedule_mark(&self, name: &str, anchor_ms: i64) -> Result<weir_ports::ScheduleMark, PortError> {
        self.0.schedule_mark(name, anchor_ms).await
    }
    async fn claim_schedule(&self, name: &str, due_ms: i64) -> Result<bool, PortError> {
        self.0.claim_schedule(name, due_ms).await
    }
    async fn finished_before(
        &self,
        before_ms: i64,
        after: Option<&JobId>,
        limit: usize,
    ) -> Result<weir_ports::ExpiredJobs, PortError> {
        self.0.finished_before(before_ms, after, limit).await
    }
    async fn delete_finished(&self, ids: &[JobId], before_ms: i64) -> Result<u64, PortError> {
        self.0.delete_finished(ids, before_ms).await
    }
    async fn add_to_counter(&self, name: &str, by: u64) -> Result<(), PortError> {
        self.0.add_to_counter(name, by).await
    }
    async fn counters(&self) -> Result<std::collections::BTreeMap<String, u64>, PortError> {
        self.0.counters().await
    }
}

#[async_trait]
impl RecordsSink for FaultyRecords {
    async fn put_batch(&self, items: &[RecordItem]) -> Result<(), PortError> {
        faulty!(self.1, "records.put_batch", "", self.0.put_batch(items).await)
    }
    async fn query(&self, pk: &str, limit: usize) -> Result<Vec<RecordItem>, PortError> {
        self.0.query(pk, limit).await
    }
}

#[async_trait]
impl Notifier for FaultyNotifier {
    async fn publish(&self, n: &Notification) -> Result<(), PortError> {
        faulty!(self.1, "notifier.publish", "", self.0.publish(n).await)
    }
    fn idempotent(&self) -> bool {
        self.0.idempotent()
    }
}
