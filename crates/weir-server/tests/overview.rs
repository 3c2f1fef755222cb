//! `GET /v1/overview` on a real API listener over a real SQLite job store: jobs land in the time
//! bucket they finished in, jobs outside the window only count in the totals, percentiles come
//! from the counters' duration histogram, and the dashboard's session cookie reads it like the token.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use weir_backends::{LocalObjectStore, SqliteJobStore, SqliteQueue, TopicNotifier};
use weir_core::{Config, Job, JobStatus};
use weir_pipeline::Ports;
use weir_ports::{JobStore, ObjectStore, QueueSettings};
use weir_server::auth::issue_session;
use weir_server::{Context, Credentials};

/// (status line, body).
fn get(addr: SocketAddr, path: &str, header: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{header}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

fn job(now: DateTime<Utc>, key: &str, status: JobStatus, finished_ago_min: i64, duration_ms: u64) -> Job {
    let mut j = Job::queued("weir-input", key, "e", 10, Some("sales"));
    let finished = now - chrono::Duration::minutes(finished_ago_min);
    j.status = status;
    j.created_at = finished - chrono::Duration::milliseconds(duration_ms as i64 + 5);
    j.valid_rows = 3;
    j.invalid_rows = 1;
    if status.is_terminal() {
        j.finished_at = Some(finished);
        j.duration_ms = Some(duration_ms);
    }
    if matches!(status, JobStatus::Rejected | JobStatus::Failed) {
        j.error = Some(format!("{key} went wrong"));
    }
    j
}

/// The series point whose bucket holds `t`.
fn point_at(o: &Value, t: DateTime<Utc>) -> &Value {
    let width = chrono::Duration::seconds(o["bucket_seconds"].as_i64().unwrap());
    o["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            let start: DateTime<Utc> = p["start"].as_str().unwrap().parse().unwrap();
            start <= t && t < start + width
        })
        .unwrap_or_else(|| panic!("no bucket holds {t}: {o}"))
}

fn sum(o: &Value, field: &str) -> u64 {
    o["series"].as_array().unwrap().iter().map(|p| p[field].as_u64().unwrap()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_buckets_jobs_by_when_they_finished() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::bundled();
    config.server.s3_listen = String::new();
    config.server.api_listen = "127.0.0.1:0".into();
    let objects = LocalObjectStore::open(dir.path()).unwrap();
    objects.create_bucket(&config.buckets.input).await.unwrap();
    let jobs = Arc::new(SqliteJobStore::open(&dir.path().join("jobs.db")).unwrap());
    let now = Utc::now();
    let fixtures = [
        job(now, "raw/old-failure.csv", JobStatus::Failed, 120, 900),
        job(now, "raw/a.csv", JobStatus::Succeeded, 30, 100),
        job(now, "raw/b.csv", JobStatus::Rejected, 5, 400),
        job(now, "raw/c.csv", JobStatus::Succeeded, 5, 200),
        job(now, "raw/d.csv", JobStatus::Running, 0, 0),
    ];
    for j in &fixtures {
        jobs.save(j).await.unwrap();
    }
    let ports = Ports {
        objects: Arc::new(objects),
        queue: Arc::new(
            SqliteQueue::open(&dir.path().join("queue.db"), QueueSettings::from(&config.queue)).unwrap(),
        ),
        jobs,
        records: None,
        notifier: Arc::new(TopicNotifier::from_config(
            &config.notify,
            weir_backends::local_secrets(std::time::Duration::from_secs(300)),
        )),
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
    let bearer = format!("Authorization: Bearer {token}");
    let read = move |path: &'static str, header: String| {
        tokio::task::spawn_blocking(move || {
            let (status, body) = get(api, path, &header);
            assert!(status.contains("200"), "{path}: {status} {body}");
            serde_json::from_str::<Value>(&body).unwrap()
        })
    };

    let o = read("/v1/overview", bearer.clone()).await.unwrap();
    assert_eq!((o["window_minutes"].as_u64(), o["bucket_seconds"].as_u64()), (Some(60), Some(60)));
    assert_eq!(o["series"].as_array().unwrap().len(), 60);
    // In the hour: a, b, c finished; the failure two hours ago only counts in the totals.
    assert_eq!((sum(&o, "succeeded"), sum(&o, "rejected"), sum(&o, "failed")), (2, 1, 0), "{o}");
    assert_eq!(sum(&o, "rows_invalid"), 3);
    let a = point_at(&o, fixtures[1].finished_at.unwrap());
    assert_eq!((a["succeeded"].as_u64(), a["p50_ms"].as_u64()), (Some(1), Some(100)), "{a}");
    let bc = point_at(&o, fixtures[2].finished_at.unwrap());
    assert_eq!(bc, point_at(&o, fixtures[3].finished_at.unwrap()), "b and c finished in the same minute");
    assert_eq!((bc["rejected"].as_u64(), bc["succeeded"].as_u64()), (Some(1), Some(1)));
    // Percentiles come from the counters' histogram: exact to its bucket (400 ms is in 200-500).
    assert_eq!((bc["p50_ms"].as_u64(), bc["p99_ms"].as_u64()), (Some(200), Some(500)));
    let latency = &o["latency"];
    assert_eq!((latency["samples"].as_u64(), latency["p50_ms"].as_u64()), (Some(3), Some(200)));
    assert_eq!((latency["p99_ms"].as_u64(), latency["max_ms"].as_u64()), (Some(500), Some(500)));
    for (status, n) in [("succeeded", 2), ("rejected", 1), ("failed", 1), ("running", 1)] {
        assert_eq!(o["totals"][status], n, "{status}: {}", o["totals"]);
    }
    // Newest first; failures with their reasons, the old one included.
    let recent: Vec<&str> =
        o["recent_jobs"].as_array().unwrap().iter().map(|j| j["source_key"].as_str().unwrap()).collect();
    assert_eq!(recent, ["raw/d.csv", "raw/c.csv", "raw/b.csv", "raw/a.csv", "raw/old-failure.csv"]);
    let failed: Vec<(&str, &str)> = o["failed_jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["source_key"].as_str().unwrap(), j["error"].as_str().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [("raw/b.csv", "raw/b.csv went wrong"), ("raw/old-failure.csv", "raw/old-failure.csv went wrong")]
    );
    assert!(o.get("jobs_sampled").is_none() && o.get("truncated").is_none(), "counters, not a sample");
    assert!(o["alarms"].as_array().unwrap().iter().all(|a| a["state"].is_string()), "{o}");

    // A three-hour window sees the old failure; the session cookie reads like the token.
    let session = issue_session(&token, chrono::Utc::now().timestamp() + 600);
    let cookie = format!("Cookie: theme=dark; weir_session={session}");
    let wide = read("/v1/overview?minutes=180", cookie).await.unwrap();
    assert_eq!((wide["bucket_seconds"].as_u64(), sum(&wide, "failed")), (Some(180), 1), "{wide}");
    let (status, _) =
        tokio::task::spawn_blocking(move || get(api, "/v1/overview", "Cookie: weir_session=nope"))
            .await
            .unwrap();
    assert!(status.contains("403"), "{status}");

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(15), running.stopped()).await.expect("servers stop");
}
