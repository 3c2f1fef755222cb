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
use weir_ports::{Metadata, Notification, Notifier, PortError, QueueSettings};

/// Keeps every notification for the test to read.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Notification>>);

#[async_trait]
impl Notifier for Recorder {
    async fn publish(&self, n: &Notification) -> Result<(), PortError> {
        self.0.lock().unwrap().push(n.clone());
        Ok(())
    }
}

pub struct Harness {
    pub dir: TempDir,
    pub engine: Arc<Engine>,
    pub notes: Arc<Recorder>,
    pub records: Arc<SqliteRecordsSink>,
    shutdown: CancellationToken,
    worker: Option<tokio::task::JoinHandle<()>>,
}

pub fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples")
}

impl Harness {
    pub async fn start(config: Config) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = QueueSettings::from(&config.queue);
        settings.visibility_timeout = Duration::from_secs(5);
        let notes = Arc::new(Recorder::default());
        let records = Arc::new(SqliteRecordsSink::open(&dir.path().join("records.db")).unwrap());
        let ports = Ports {
            objects: Arc::new(LocalObjectStore::open(dir.path()).unwrap()),
            queue: Arc::new(SqliteQueue::open(&dir.path().join("queue.db"), settings).unwrap()),
            jobs: Arc::new(SqliteJobStore::open(&dir.path().join("jobs.db")).unwrap()),
            records: Some(records.clone()),
            notifier: notes.clone(),
        };
        let engine = Arc::new(Engine::new(config, ports, dir.path().join(".tmp")).unwrap());
        engine.ensure_buckets().await.unwrap();
        let shutdown = CancellationToken::new();
        let worker = Worker::new(engine.clone(), 2, Duration::from_secs(5));
        let token = shutdown.clone();
        let worker = Some(tokio::spawn(async move { worker.run(token).await }));
        Harness { dir, engine, notes, records, shutdown, worker }
    }

    pub async fn upload(&self, key: &str, data: impl Into<Bytes>) -> Job {
        let bucket = self.engine.config().buckets.input.clone();
        let (_, job) = ingest::put_object(
            self.engine.ports(),
            self.engine.config(),
            &bucket,
            key,
            data.into(),
            Metadata::new(),
        )
        .await
        .unwrap();
        job.expect("a pipeline takes this key")
    }

    pub async fn wait(&self, id: &JobId) -> Job {
        for _ in 0..400 {
            if let Some(j) = self.engine.ports().jobs.get(id).await.unwrap() {
                if j.status.is_terminal() {
                    return j;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("job {id} did not finish in 10 s");
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
        self.shutdown.cancel();
        if let Some(w) = self.worker.take() {
            w.await.unwrap();
        }
    }
}
