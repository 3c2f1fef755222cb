//! The pipeline on the in-memory ports (`weir_ports::memory`): the same engine and workflow as
//! on folders and SQLite, with nothing on disk but the scratch folder, for tests that are about
//! the pipeline's logic rather than a backend.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use weir_core::{Config, JobStatus};
use weir_pipeline::{ingest, Engine, Worker};
use weir_ports::{memory, Metadata, QueueSettings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_samples_run_end_to_end_on_in_memory_ports() {
    let config = Config::bundled();
    let buckets =
        [config.buckets.input.as_str(), config.buckets.output.as_str(), config.buckets.archive.as_str()];
    let (ports, notes) = memory::ports(&buckets, QueueSettings::from(&config.queue));
    let scratch = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::new(config.clone(), ports.clone(), scratch.path().to_owned()).unwrap());
    let stop = CancellationToken::new();
    let worker = tokio::spawn({
        let (engine, stop) = (engine.clone(), stop.clone());
        async move { Worker::new(engine, 4, Duration::from_secs(5)).run(stop).await }
    });
    let samples = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples");
    let mut jobs = Vec::new();
    for (name, status) in [
        ("sales.csv", JobStatus::Succeeded),
        ("bad_rows.csv", JobStatus::Succeeded),
        ("bad_schema.csv", JobStatus::Rejected),
    ] {
        let data = Bytes::from(std::fs::read(samples.join(name)).unwrap());
        let key = format!("raw/{name}");
        let (_, job) =
            ingest::put_object(&ports, &config, "weir-input", &key, data, Metadata::new()).await.unwrap();
        jobs.push((job.unwrap().job_id, status));
    }
    for (id, status) in &jobs {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let job = loop {
            match ports.jobs.get(id).await.unwrap() {
                Some(j) if j.status.is_terminal() => break j,
                _ => assert!(std::time::Instant::now() < deadline, "job {id} did not finish"),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(job.status, *status, "{job:?}");
    }
    let archived: Vec<String> =
        ports.objects.list("weir-archive", "").await.unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(archived, ["raw/bad_rows.csv", "raw/sales.csv"]);
    assert!(ports.objects.head("weir-input", "raw/bad_schema.csv").await.unwrap_err().is_not_found());
    let failed = ports.objects.list("weir-input", "failed/").await.unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        ports.objects.head("weir-output", "processed/weir-input/raw/sales.csv.ndjson").await.unwrap().size
            > 0
    );
    assert_eq!(notes.published().len(), 3, "one notification per job");
    stop.cancel();
    worker.await.unwrap();
}
