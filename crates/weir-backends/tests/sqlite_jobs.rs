//! The SQLite job store: idempotent create, full round trip, listing and counting.

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone, Utc};
use weir_backends::SqliteJobStore;
use weir_core::job::StepRecord;
use weir_core::{Job, JobId, JobStatus};
use weir_ports::{JobFilter, JobStore};

fn job(key: &str, status: JobStatus, created_secs: i64) -> Job {
    let mut j = Job::queued("weir-input", key, "\"etag\"", 10, Some("sales"));
    j.status = status;
    j.created_at = Utc.timestamp_opt(1_700_000_000 + created_secs, 0).single().expect("time");
    j
}

#[tokio::test]
async fn create_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteJobStore::open(&dir.path().join("jobs.db")).expect("open");
    let mut j = job("raw/a.csv", JobStatus::Queued, 0);
    assert!(store.create(&j).await.expect("create"), "first create inserts");
    j.status = JobStatus::Running;
    assert!(!store.create(&j).await.expect("create again"), "second create is a no-op");
    let stored = store.get(&j.job_id).await.expect("get").expect("exists");
    assert_eq!(stored.status, JobStatus::Queued, "a repeated create does not overwrite");
}

#[tokio::test]
async fn save_and_get_round_trip_a_full_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jobs.db");
    let store = SqliteJobStore::open(&path).expect("open");
    assert_eq!(store.get(&JobId("j-missing".into())).await.expect("get"), None);

    let mut j = Job::queued("weir-input", "raw/ขาย 2024.csv", "\"abc123\"", 1234, Some("sales"));
    j.started_at = Some(Utc::now());
    j.total_rows = 10;
    j.valid_rows = 8;
    j.invalid_rows = 2;
    j.attempts = 2;
    j.output_keys = BTreeMap::from([
        ("results".to_string(), "processed/raw/x.ndjson".to_string()),
        ("summary".to_string(), "reports/raw/x.summary.json".to_string()),
    ]);
    j.steps = vec![
        StepRecord {
            state: "ValidateSchema".into(),
            entered_at: Utc::now(),
            duration_ms: 3,
            outcome: "ok".into(),
            error: None,
            ..Default::default()
        },
        StepRecord {
            state: "TransformData".into(),
            entered_at: Utc::now(),
            duration_ms: 12,
            outcome: "States.TaskFailed".into(),
            error: Some("disk full".into()),
            retries: 2,
            ..Default::default()
        },
    ];
    j.finish(JobStatus::Succeeded, Some("note".into()));
    store.save(&j).await.expect("save inserts");
    assert_eq!(store.get(&j.job_id).await.expect("get"), Some(j.clone()));

    j.attempts = 3;
    j.status = JobStatus::Failed;
    store.save(&j).await.expect("save updates");
    // Another handle (another process) sees the update.
    let other = SqliteJobStore::open(&path).expect("second handle");
    assert_eq!(other.get(&j.job_id).await.expect("get"), Some(j.clone()));
    assert_eq!(other.counts().await.expect("counts"), BTreeMap::from([(JobStatus::Failed, 1)]));
}

#[tokio::test]
async fn list_filters_orders_and_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteJobStore::open(&dir.path().join("jobs.db")).expect("open");
    let statuses = [JobStatus::Succeeded, JobStatus::Rejected, JobStatus::Queued];
    // Created out of order, to check that the order is by creation time.
    for i in [3, 0, 4, 1, 5, 2] {
        store.create(&job(&format!("raw/{i}.csv"), statuses[i as usize % 3], i)).await.expect("create");
    }
    let keys = |jobs: Vec<Job>| jobs.into_iter().map(|j| j.source_key).collect::<Vec<_>>();

    let all = store.list(&JobFilter::default()).await.expect("list");
    assert_eq!(keys(all), ["raw/5.csv", "raw/4.csv", "raw/3.csv", "raw/2.csv", "raw/1.csv", "raw/0.csv"]);
    let two = store.list(&JobFilter { status: None, limit: 2 }).await.expect("list");
    assert_eq!(keys(two), ["raw/5.csv", "raw/4.csv"]);
    let ok = store.list(&JobFilter { status: Some(JobStatus::Succeeded), limit: 0 }).await.expect("list");
    assert_eq!(keys(ok), ["raw/3.csv", "raw/0.csv"]);
    let rejected =
        store.list(&JobFilter { status: Some(JobStatus::Rejected), limit: 1 }).await.expect("list");
    assert_eq!(keys(rejected), ["raw/4.csv"]);
    let none = store.list(&JobFilter { status: Some(JobStatus::Skipped), limit: 0 }).await.expect("list");
    assert!(none.is_empty());

    // A status change moves a job between filters; its place in time stays.
    let mut j =
        store.get(&job("raw/0.csv", JobStatus::Queued, 0).job_id).await.expect("get").expect("exists");
    j.status = JobStatus::Failed;
    store.save(&j).await.expect("save");
    assert_eq!(
        store.counts().await.expect("counts"),
        BTreeMap::from([
            (JobStatus::Queued, 2),
            (JobStatus::Succeeded, 1),
            (JobStatus::Rejected, 2),
            (JobStatus::Failed, 1)
        ])
    );
}

#[tokio::test]
async fn limit_zero_means_one_hundred() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteJobStore::open(&dir.path().join("jobs.db")).expect("open");
    let jobs: Vec<_> = (0..105).map(|i| job(&format!("raw/{i}.csv"), JobStatus::Succeeded, i)).collect();
    // Concurrent creates share transactions (group commit) and all land.
    let mut tasks = Vec::new();
    for j in jobs {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.create(&j).await }));
    }
    for t in tasks {
        assert!(t.await.expect("task").expect("create"));
    }
    let listed = store.list(&JobFilter::default()).await.expect("list");
    assert_eq!(listed.len(), 100);
    assert_eq!(listed[0].created_at - listed[99].created_at, Duration::seconds(99), "the newest hundred");
    assert_eq!(store.counts().await.expect("counts"), BTreeMap::from([(JobStatus::Succeeded, 105)]));
}

/// The suite every job store passes, on a file of its own and in the file the queue shares
/// (as `weir run` opens it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_job_store_passes_the_job_store_conformance_suite() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    let lease = std::time::Duration::from_millis(400);
    weir_ports::conformance::jobs::run_all(
        || {
            let path = dir.path().join(format!("own-{}.db", n.fetch_add(1, Ordering::SeqCst)));
            async move {
                let a: Arc<dyn JobStore> = Arc::new(SqliteJobStore::open(&path).unwrap());
                let b: Arc<dyn JobStore> = Arc::new(SqliteJobStore::open(&path).unwrap());
                (a, b)
            }
        },
        lease,
    )
    .await;
    weir_ports::conformance::jobs::run_all(
        || {
            let path = dir.path().join(format!("shared-{}.db", n.fetch_add(1, Ordering::SeqCst)));
            async move {
                let open = || {
                    let file = weir_backends::SqliteFile::open(&path).unwrap();
                    Arc::new(SqliteJobStore::in_file(&file).unwrap()) as Arc<dyn JobStore>
                };
                (open(), open())
            }
        },
        lease,
    )
    .await;
}

/// A data dir from before the counters: the migration fills them from the jobs there are, so
/// `/metrics` and the overview start exact after an upgrade.
#[tokio::test]
async fn the_counters_migration_fills_them_from_the_jobs_there_are() {
    use weir_core::stats::minute_of;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let store = SqliteJobStore::open(&path).unwrap();
    let mut expected_rows = 0;
    for (i, status) in [JobStatus::Succeeded, JobStatus::Succeeded, JobStatus::Rejected, JobStatus::Queued]
        .into_iter()
        .enumerate()
    {
        let mut j = Job::queued("weir-input", &format!("raw/m{i}.csv"), "e", 100, Some("sales"));
        j.valid_rows = 5;
        if status.is_terminal() {
            j.finish(status, None);
            j.duration_ms = Some(40);
            expected_rows += if status == JobStatus::Succeeded { 5 } else { 0 };
        }
        store.save(&j).await.unwrap();
    }
    let before = store.totals().await.unwrap();
    drop(store);
    // Back to the schema before the counters.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "DROP INDEX jobs_finished; DROP TABLE schedules; DROP TABLE counters;
         DROP TABLE stats_finished; DROP TABLE stats_total; DROP TABLE stats_received; DROP TABLE status_counts;
         ALTER TABLE jobs DROP COLUMN finished_ms;
         UPDATE weir_schema SET version = 3 WHERE component = 'jobs';",
    )
    .unwrap();
    drop(c);
    let store = SqliteJobStore::open(&path).unwrap();
    let after = store.totals().await.unwrap();
    assert_eq!(after, before, "the counters rebuilt from the jobs are the ones kept as they were written");
    let succeeded = &after.finished[&("sales".to_string(), JobStatus::Succeeded)];
    assert_eq!((succeeded.files, succeeded.rows_valid, succeeded.timed), (2, expected_rows, 2));
    assert_eq!(after.received_files, 4);
    let now = minute_of(chrono::Utc::now());
    let series = store.series(now - 2, now + 2).await.unwrap();
    assert_eq!(series.sum(now - 2, now + 2, None).files, 3);
    let p50 = series.sum(now - 2, now + 2, None).percentile_ms(50.0).unwrap();
    assert!((20.0..=50.0).contains(&p50), "40 ms is in the (20, 50] ms bucket: {p50}");
}
