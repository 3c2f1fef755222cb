//! A real embedded pipeline in a temporary folder, for end-to-end tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use weir_backends::{LocalObjectStore, SqliteJobStore, SqliteQueue, SqliteRecordsSink};
use weir_core::{Config, Job, JobId};
use weir_pipeline::{ingest, Engine, Ports, Worker};
use weir_ports::{JobStore, Metadata, Notification, Notifier, PortError, QueueSettings};

/// Keeps notifications for the test to read. When idempotent (the second field) it keeps one
/// per `id` attribute, which is what the outbox `weir run` publishes to promises (weir-backends'
/// tests/outbox.rs holds the real one to it); otherwise it keeps every publish.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Notification>>, pub bool);

#[async_trait]
impl Notifier for Recorder {
    async fn publish(&self, n: &Notification) -> Result<(), PortError> {
        let mut notes = self.0.lock().unwrap();
        let id = n.attributes.get("id");
        if !(self.1 && id.is_some() && notes.iter().any(|m| m.attributes.get("id") == id)) {
            notes.push(n.clone());
        }
        Ok(())
    }

    fn idempotent(&self) -> bool {
        self.1
    }
}

/// The S3 event of a Put of `key` into weir-input, as a queue message body.
pub fn put_event(key: &str, etag: &str, size: u64, sequencer: u64) -> String {
    weir_core::event::S3Event::single(weir_core::event::S3EventRecord::object_created(
        "Put",
        "weir-input",
        key,
        size,
        etag,
        sequencer,
        chrono::Utc::now(),
    ))
    .to_json()
}

/// Polls `check` until it gives a value, for at most 60 s: tests wait for conditions, never
/// for a fixed time (the suite runs on a loaded 2-core machine).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub struct Harness {
    pub dir: TempDir,
    pub engine: Arc<Engine>,
    pub notes: Arc<Recorder>,
    pub records: Arc<SqliteRecordsSink>,
    /// The job store without any wrapper, for the test's own reads.
    pub jobs: Arc<SqliteJobStore>,
    /// The ports before any wrapper: uploads go through these.
    pub raw: Ports,
    shutdown: CancellationToken,
    worker: Option<tokio::task::JoinHandle<()>>,
}

/// The bundled config with test-speed timings: short visibility, fast retries and DLQ scans.
pub fn fast_config() -> Config {
    let mut c = Config::bundled();
    c.queue.visibility_timeout_secs = 2;
    c.worker.retry_base_ms = 20;
    c.worker.retry_max_secs = 1;
    c.worker.dlq_scan_secs = 1;
    c
}

pub fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples")
}

impl Harness {
    pub async fn start(config: Config) -> Harness {
        Harness::start_with(config, |ports| ports).await
    }

    /// Starts with the ports passed through `wrap` (e.g. a fault-injecting wrapper).
    pub async fn start_with(config: Config, wrap: impl FnOnce(Ports) -> Ports) -> Harness {
        Harness::start_with_notifier(config, Recorder::default(), wrap).await
    }

    /// Starts with `notes` as the notifier and the ports passed through `wrap`.
    pub async fn start_with_notifier(
        config: Config,
        notes: Recorder,
        wrap: impl FnOnce(Ports) -> Ports,
    ) -> Harness {
        Harness::start_full(config, notes, wrap, 2).await
    }

    /// [`Harness::start_with_notifier`] with a worker running `concurrency` jobs at once.
    pub async fn start_full(
        config: Config,
        notes: Recorder,
        wrap: impl FnOnce(Ports) -> Ports,
        concurrency: usize,
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let settings = QueueSettings::from(&config.queue);
        let notes = Arc::new(notes);
        let records = Arc::new(SqliteRecordsSink::open(&dir.path().join("records.db")).unwrap());
        // As `weir run` opens them: queue and job store in one file.
        let state = weir_backends::SqliteFile::open(&dir.path().join("weir.db")).unwrap();
        let jobs = Arc::new(SqliteJobStore::in_file(&state).unwrap());
        let ports = Ports {
            objects: Arc::new(LocalObjectStore::open(dir.path()).unwrap()),
            queue: Arc::new(SqliteQueue::in_file(&state, settings).unwrap()),
            jobs: jobs.clone(),
            records: Some(records.clone()),
            notifier: notes.clone(),
            warehouses: Default::default(),
        };
        let raw = ports.clone();
        let ports = wrap(ports);
        let engine = Arc::new(Engine::new(config, ports, dir.path().join(".tmp")).unwrap());
        engine.ensure_buckets().await.unwrap();
        let shutdown = CancellationToken::new();
        let worker = Worker::new(engine.clone(), concurrency, Duration::from_secs(5));
        let token = shutdown.clone();
        let worker = Some(tokio::spawn(async move { worker.run(token).await }));
        Harness { dir, engine, notes, records, jobs, raw, shutdown, worker }
    }

    pub async fn upload(&self, key: &str, data: impl Into<Bytes>) -> Job {
        let bucket = self.engine.config().buckets.input.clone();
        let (_, job) =
            ingest::put_object(&self.raw, self.engine.config(), &bucket, key, data.into(), Metadata::new())
                .await
                .unwrap();
        job.expect("a pipeline takes this key")
    }

    pub async fn wait(&self, id: &JobId) -> Job {
        eventually(&format!("job {id} to finish"), || async {
            self.jobs.get(id).await.unwrap().filter(|j| j.status.is_terminal())
        })
        .await
    }

    pub async fn run(&self, key: &str, data: impl Into<Bytes>) -> Job {
        let job = self.upload(key, data).await;
        self.wait(&job.job_id).await
    }

    pub async fn read(&self, bucket: &str, key: &str) -> Vec<u8> {
        let path = self.dir.path().join(bucket).join(key);
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    pub async fn json(&self, bucket: &str, key: &str) -> serde_json::Value {
        serde_json::from_slice(&self.read(bucket, key).await).unwrap()
    }

    pub fn exists(&self, bucket: &str, key: &str) -> bool {
        self.dir.path().join(bucket).join(key).exists()
    }

    pub async fn stop(mut self) {
        self.stop_worker().await;
    }

    /// Stops the worker, keeping the stores for the test to use.
    pub async fn stop_worker(&mut self) {
        self.shutdown.cancel();
        if let Some(w) = self.worker.take() {
            w.await.unwrap();
        }
    }
}
