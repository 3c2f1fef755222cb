//! `GET /metrics` on a real API listener: Prometheus text from the stores, behind the token.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weir_backends::{LocalObjectStore, OutboxNotifier, SqliteJobStore, SqliteQueue};
use weir_core::{Config, Job, JobStatus};
use weir_pipeline::Ports;
use weir_ports::{JobStore, ObjectStore, Queue, QueueSettings};
use weir_server::{Context, Credentials};

fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_jobs_rows_durations_and_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::bundled();
    config.server.s3_listen = String::new();
    config.server.api_listen = "127.0.0.1:0".into();
    let objects = LocalObjectStore::open(dir.path()).unwrap();
    objects.create_bucket(&config.buckets.input).await.unwrap();
    let jobs = Arc::new(SqliteJobStore::open(&dir.path().join("jobs.db")).unwrap());
    let queue = Arc::new(
        SqliteQueue::open(&dir.path().join("queue.db"), QueueSettings::from(&config.queue)).unwrap(),
    );
    for (i, (status, ms)) in
        [(JobStatus::Succeeded, 200), (JobStatus::Rejected, 40_000), (JobStatus::Running, 0)]
            .into_iter()
            .enumerate()
    {
        let mut job = Job::queued("weir-input", &format!("raw/{i}.csv"), "e", 100, Some("sales"));
        if status.is_terminal() {
            job.finish(status, None);
        } else {
            job.status = status;
        }
        job.valid_rows = 5;
        job.invalid_rows = 1;
        job.duration_ms = status.is_terminal().then_some(ms);
        jobs.save(&job).await.unwrap();
    }
    queue.send("{}").await.unwrap();
    let ports = Ports {
        objects: Arc::new(objects),
        queue,
        jobs,
        records: None,
        notifier: Arc::new(
            OutboxNotifier::open(
                &dir.path().join("outbox.db"),
                &config.notify,
                weir_backends::local_secrets(std::time::Duration::from_secs(300)),
            )
            .unwrap(),
        ),
        warehouses: Default::default(),
    };
    let credentials = Credentials::resolve(&config.server, dir.path(), |_| None).unwrap();
    let token = credentials.api_token.expose().to_owned();
    let ctx = Context {
        ports,
        config: Arc::new(config),
        data_dir: dir.path().to_owned(),
        credentials: Arc::new(credentials),
    };
    let stop = CancellationToken::new();
    let running = weir_server::start(ctx, stop.clone()).await.unwrap();
    let api = running.api_addr.unwrap();

    let denied = tokio::task::spawn_blocking(move || get(api, "/metrics", None)).await.unwrap();
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
    let out = tokio::task::spawn_blocking(move || get(api, "/metrics", Some(&token))).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{out}");
    for line in [
        "weir_files_received_total 3",
        "weir_files_total{status=\"succeeded\"} 1",
        "weir_files_total{status=\"rejected\"} 1",
        "weir_jobs{status=\"running\"} 1",
        "weir_rows_total{result=\"valid\"} 10",
        "weir_rows_total{result=\"invalid\"} 2",
        "weir_received_bytes_total 300",
        "weir_job_duration_seconds_bucket{le=\"0.2\"} 1",
        "weir_job_duration_seconds_bucket{le=\"0.1\"} 0",
        "weir_job_duration_seconds_bucket{le=\"60\"} 2",
        "weir_job_duration_seconds_count 2",
        "weir_queue_messages{state=\"visible\"} 1",
        "weir_dlq_messages 0",
        "weir_notification_deliveries_total{result=\"delivered\"} 0",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(15), running.stopped()).await.expect("servers stop");
}
