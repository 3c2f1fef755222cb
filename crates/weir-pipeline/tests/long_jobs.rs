//! A job that takes longer than the visibility timeout is not handed to a second worker: the
//! worker extends the message's visibility (and its job lease) while it works.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::{fast_config, samples, Harness};
use weir_core::JobStatus;
use weir_pipeline::Ports;
use weir_ports::{
    ByteStream, DeadLetter, Message, Metadata, ObjectInfo, ObjectPage, ObjectStore, PortError, Queue,
    QueueStats,
};

/// Reads take `delay` before they start.
struct SlowReads(Arc<dyn ObjectStore>, Duration);

#[async_trait]
impl ObjectStore for SlowReads {
    async fn create_bucket(&self, b: &str) -> Result<(), PortError> {
        self.0.create_bucket(b).await
    }
    fn local_scratch(&self) -> Option<std::path::PathBuf> {
        self.0.local_scratch()
    }
    async fn head(&self, b: &str, k: &str) -> Result<ObjectInfo, PortError> {
        self.0.head(b, k).await
    }
    async fn get(&self, b: &str, k: &str) -> Result<(ObjectInfo, ByteStream), PortError> {
        tokio::time::sleep(self.1).await;
        self.0.get(b, k).await
    }
    async fn put(&self, b: &str, k: &str, d: Bytes, m: Metadata) -> Result<ObjectInfo, PortError> {
        self.0.put(b, k, d, m).await
    }
    async fn put_file(&self, b: &str, k: &str, p: &Path, m: Metadata) -> Result<ObjectInfo, PortError> {
        self.0.put_file(b, k, p, m).await
    }
    async fn copy(
        &self,
        fb: &str,
        fk: &str,
        tb: &str,
        tk: &str,
        m: Option<Metadata>,
    ) -> Result<ObjectInfo, PortError> {
        self.0.copy(fb, fk, tb, tk, m).await
    }
    async fn delete(&self, b: &str, k: &str) -> Result<(), PortError> {
        self.0.delete(b, k).await
    }
    async fn delete_version(&self, b: &str, k: &str, e: &str) -> Result<bool, PortError> {
        self.0.delete_version(b, k, e).await
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
        self.0.move_object(fb, fk, tb, tk, m, if_match).await
    }
    async fn list_page(
        &self,
        b: &str,
        p: &str,
        after: Option<&str>,
        max_keys: usize,
    ) -> Result<ObjectPage, PortError> {
        self.0.list_page(b, p, after, max_keys).await
    }
}

/// Remembers the highest receive count seen per message.
struct Receives(Arc<dyn Queue>, Arc<Mutex<BTreeMap<String, u32>>>);

#[async_trait]
impl Queue for Receives {
    async fn send(&self, body: &str) -> Result<String, PortError> {
        self.0.send(body).await
    }
    async fn send_batch(&self, bodies: &[String]) -> Result<Vec<String>, PortError> {
        self.0.send_batch(bodies).await
    }
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, PortError> {
        let got = self.0.receive(max, wait).await?;
        let mut seen = self.1.lock().unwrap();
        for m in &got {
            let c = seen.entry(m.message_id.clone()).or_default();
            *c = (*c).max(m.receive_count);
        }
        Ok(got)
    }
    async fn delete(&self, h: &str) -> Result<(), PortError> {
        self.0.delete(h).await
    }
    async fn change_visibility(&self, h: &str, t: Duration) -> Result<(), PortError> {
        self.0.change_visibility(h, t).await
    }
    async fn dead_letter(&self, h: &str) -> Result<(), PortError> {
        self.0.dead_letter(h).await
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_longer_than_the_visibility_timeout_runs_once() {
    let mut config = fast_config();
    config.queue.visibility_timeout_secs = 1;
    let seen = Arc::new(Mutex::new(BTreeMap::new()));
    let s = seen.clone();
    // Each of the two reads (header check, transform) takes 1.5 s: 3 s in all, three timeouts.
    let h = Harness::start_with(config, move |p: Ports| Ports {
        objects: Arc::new(SlowReads(p.objects, Duration::from_millis(1500))),
        queue: Arc::new(Receives(p.queue, s)),
        ..p
    })
    .await;
    let job = h.run("raw/sales.csv", std::fs::read(samples().join("sales.csv")).unwrap()).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.attempts, 1, "no second worker ran it");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(seen.values().all(|&c| c == 1), "the message was never received again: {seen:?}");
    h.stop().await;
}
