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

#[tokio::test]
async fn leases_keep_a_second_owner_out_until_they_expire_or_are_released() {
    let dir = tempfile::tempdir().unwrap();
    let store = weir_backends::SqliteJobStore::open(&dir.path().join("jobs.db")).unwrap();
    let other_process = weir_backends::SqliteJobStore::open(&dir.path().join("jobs.db")).unwrap();
    let job = weir_core::Job::queued("b", "raw/l.csv", "e", 1, None);
    let ttl = std::time::Duration::from_millis(300);
    assert!(
        store.acquire_lease(&job, "w1", ttl).await.unwrap(),
        "first owner gets it (and the record is created)"
    );
    assert!(store.get(&job.job_id).await.unwrap().is_some());
    assert!(!other_process.acquire_lease(&job, "w2", ttl).await.unwrap(), "held by w1");
    assert!(store.acquire_lease(&job, "w1", ttl).await.unwrap(), "the owner renews");
    // Saving the record does not drop the lease.
    store.save(&job).await.unwrap();
    assert!(!other_process.acquire_lease(&job, "w2", ttl).await.unwrap());
    tokio::time::sleep(ttl + std::time::Duration::from_millis(50)).await;
    assert!(other_process.acquire_lease(&job, "w2", ttl).await.unwrap(), "expired leases can be taken");
    other_process.release_lease(&job.job_id, "w1").await.unwrap(); // not the owner: no effect
    assert!(!store.acquire_lease(&job, "w1", ttl).await.unwrap());
    other_process.release_lease(&job.job_id, "w2").await.unwrap();
    assert!(store.acquire_lease(&job, "w1", ttl).await.unwrap(), "released leases can be taken at once");
}

#[tokio::test]
async fn claims_are_granted_once_across_handles() {
    let dir = tempfile::tempdir().unwrap();
    let a = weir_backends::SqliteJobStore::open(&dir.path().join("jobs.db")).unwrap();
    let b = weir_backends::SqliteJobStore::open(&dir.path().join("jobs.db")).unwrap();
    assert!(a.claim_once("dlq-alert:m1").await.unwrap());
    assert!(!b.claim_once("dlq-alert:m1").await.unwrap());
    assert!(b.claim_once("dlq-alert:m2").await.unwrap());
}

/// A job store that keeps `JobStore::begin`'s default implementation (lease, read, save), to
/// hold it to the same behaviour as the SQLite store's single-write override.
struct DefaultBegin(weir_backends::SqliteJobStore);

#[async_trait::async_trait]
impl JobStore for DefaultBegin {
    async fn create(&self, job: &weir_core::Job) -> Result<bool, weir_ports::PortError> {
        self.0.create(job).await
    }
    async fn get(&self, id: &weir_core::JobId) -> Result<Option<weir_core::Job>, weir_ports::PortError> {
        self.0.get(id).await
    }
    async fn save(&self, job: &weir_core::Job) -> Result<(), weir_ports::PortError> {
        self.0.save(job).await
    }
    async fn list(&self, f: &JobFilter) -> Result<Vec<weir_core::Job>, weir_ports::PortError> {
        self.0.list(f).await
    }
    async fn counts(&self) -> Result<BTreeMap<JobStatus, u64>, weir_ports::PortError> {
        self.0.counts().await
    }
    async fn acquire_lease(
        &self,
        job: &weir_core::Job,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, weir_ports::PortError> {
        self.0.acquire_lease(job, owner, ttl).await
    }
    async fn release_lease(&self, id: &weir_core::JobId, owner: &str) -> Result<(), weir_ports::PortError> {
        self.0.release_lease(id, owner).await
    }
    async fn claim_once(&self, key: &str) -> Result<bool, weir_ports::PortError> {
        self.0.claim_once(key).await
    }
}

async fn begin_starts_runs_refuses_and_reports_finished_jobs(store: &dyn JobStore) {
    use weir_ports::Begin;
    let job = weir_core::Job::queued("b", "raw/begin.csv", "e1", 10, None);
    let ttl = std::time::Duration::from_millis(300);
    let Begin::Started(started) = store.begin(&job, "sales", "w1", ttl).await.unwrap() else {
        panic!("a new job starts")
    };
    assert_eq!(
        (started.status, started.attempts, started.pipeline.as_deref()),
        (JobStatus::Running, 1, Some("sales"))
    );
    assert!(started.started_at.is_some() && started.error.is_none());
    assert_eq!(store.get(&job.job_id).await.unwrap().unwrap(), started, "the record says running");
    assert_eq!(store.begin(&job, "sales", "w2", ttl).await.unwrap(), Begin::Busy, "w1 holds the lease");
    let Begin::Started(again) = store.begin(&job, "sales", "w1", ttl).await.unwrap() else {
        panic!("the owner may begin again")
    };
    assert_eq!(again.attempts, 2);
    tokio::time::sleep(ttl + std::time::Duration::from_millis(50)).await;
    let Begin::Started(taken) = store.begin(&job, "sales", "w2", ttl).await.unwrap() else {
        panic!("an expired lease is taken over")
    };
    assert_eq!(taken.attempts, 3);

    // Failed (retries exhausted) runs again; any other terminal status is finished.
    let mut failed = taken.clone();
    failed.finish(JobStatus::Failed, Some("boom".into()));
    store.save(&failed).await.unwrap();
    assert!(
        matches!(store.begin(&job, "sales", "w1", ttl).await.unwrap(), Begin::Started(j) if j.attempts == 4)
    );
    let mut done = store.get(&job.job_id).await.unwrap().unwrap();
    done.finish(JobStatus::Succeeded, None);
    store.save(&done).await.unwrap();
    assert_eq!(store.begin(&job, "sales", "w2", ttl).await.unwrap(), Begin::Finished(done.clone()));
    assert_eq!(store.get(&job.job_id).await.unwrap().unwrap(), done, "a finished job is left as it was");
    assert!(store.acquire_lease(&job, "w3", ttl).await.unwrap(), "and no lease was taken on it");
}

#[tokio::test]
async fn begin_in_one_write_behaves_as_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = weir_backends::SqliteJobStore::open(&dir.path().join("one.db")).unwrap();
    begin_starts_runs_refuses_and_reports_finished_jobs(&sqlite).await;
    let default = DefaultBegin(weir_backends::SqliteJobStore::open(&dir.path().join("default.db")).unwrap());
    begin_starts_runs_refuses_and_reports_finished_jobs(&default).await;
}
