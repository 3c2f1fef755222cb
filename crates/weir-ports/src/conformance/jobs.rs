//! The job store conformance suite: what every [`JobStore`] adapter (SQLite embedded, DynamoDB
//! on AWS) must do the same way.
//!
//! An adapter's test calls [`run_all`] with a function that opens a *fresh, empty* store and
//! returns two handles on it (as two processes would hold), and how long the cases' leases
//! last: short for a local store, longer for a remote one whose calls take tens of
//! milliseconds on a loaded machine. The cases wait for a lease to lapse where they must.
//!
//! Failures panic with `job store conformance <case>: <what went wrong>`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use weir_core::job::{sequencer_order, StepRecord};
use weir_core::{Job, JobId, JobStatus};

use crate::{Begin, JobFilter, JobStore, PortError};

/// Two handles on one fresh store.
pub type Handles = (Arc<dyn JobStore>, Arc<dyn JobStore>);

/// Runs every case, each on a fresh store from `open`.
pub async fn run_all<F, Fut>(open: F, lease: Duration)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Handles>,
{
    records_round_trip(open().await).await;
    listing_and_counting(open().await).await;
    a_window_of_jobs_page_by_page(open().await).await;
    claims_are_granted_once(open().await).await;
    one_run_per_key_at_a_time(open().await, lease).await;
    a_run_that_lost_its_lease_writes_nothing(open().await, lease).await;
    finished_failed_and_abandoned_runs(open().await, lease).await;
    versions_of_one_key(open().await, lease).await;
    counters_are_exact(open().await, lease).await;
    schedules_fire_once_per_due_time(open().await).await;
    finished_records_expire_and_lifetime_counters_stay(open().await, lease).await;
}

fn fail(case: &str, what: impl std::fmt::Display) -> ! {
    panic!("job store conformance {case}: {what}")
}

fn job(key: &str, etag: &str, seq: &str) -> Job {
    let mut j = Job::queued("weir-input", key, etag, 10, Some("sales"));
    j.sequencer = sequencer_order(seq);
    j
}

async fn started(case: &str, store: &dyn JobStore, job: &Job, run: &str, lease: Duration) -> Job {
    match store.begin(job, "sales", run, lease).await {
        Ok(Begin::Started(j)) => j,
        other => fail(case, format!("{run} should start {}: {other:?}", job.source_key)),
    }
}

/// Everything a job holds comes back as it was written, whatever its text holds.
pub async fn records_round_trip((store, other): Handles) {
    let case = "records_round_trip";
    if store.get(&JobId("j-missing".into())).await.unwrap_or_else(|e| fail(case, e)).is_some() {
        fail(case, "a missing job was found");
    }
    let mut j = job("raw/ขาย 2024.csv", "\"abc123\"", "0A");
    if !store.create(&j).await.unwrap_or_else(|e| fail(case, e)) {
        fail(case, "the first create did not insert");
    }
    let mut changed = j.clone();
    changed.status = JobStatus::Running;
    if store.create(&changed).await.unwrap_or_else(|e| fail(case, e)) {
        fail(case, "a second create inserted");
    }
    let err =
        "Weir.Unavailable: GET 403: <?xml version=\"1.0\"?>\n<Error><Code>InvalidObjectState</Code></Error>";
    j.error = Some(format!("attempt 1 failed, will retry: {err}"));
    j.started_at = Some(Utc::now());
    (j.total_rows, j.valid_rows, j.invalid_rows, j.attempts) = (10, 8, 2, 2);
    j.output_keys = BTreeMap::from([("results".to_string(), "processed/raw/x.ndjson".to_string())]);
    j.steps = vec![StepRecord {
        state: "ValidateSchema".into(),
        outcome: "Weir.Unavailable".into(),
        error: Some(err.into()),
        input: Some("{\"job_id\":\"j\"}".into()),
        ..Default::default()
    }];
    store.save(&j).await.unwrap_or_else(|e| fail(case, e));
    let read = other.get(&j.job_id).await.unwrap_or_else(|e| fail(case, e));
    if read.as_ref() != Some(&j) {
        fail(case, format!("read back {read:#?}\nwritten {j:#?}"));
    }
    let fresh = job("raw/saved.csv", "e", "");
    store.save(&fresh).await.unwrap_or_else(|e| fail(case, e));
    if other.get(&fresh.job_id).await.unwrap_or_else(|e| fail(case, e)).is_none() {
        fail(case, "save did not insert a missing record");
    }
}

/// Newest first, by status, at most the limit; counts per status.
pub async fn listing_and_counting((store, _): Handles) {
    let case = "listing_and_counting";
    for (i, status) in [JobStatus::Succeeded, JobStatus::Queued, JobStatus::Queued].into_iter().enumerate() {
        let mut j = job(&format!("raw/{i}.csv"), "e", "");
        j.status = status;
        j.created_at = Utc::now() - chrono::Duration::minutes(10 - i as i64);
        store.save(&j).await.unwrap_or_else(|e| fail(case, e));
    }
    let listed: Vec<String> = store
        .list(&JobFilter::default())
        .await
        .unwrap_or_else(|e| fail(case, e))
        .into_iter()
        .map(|j| j.source_key)
        .collect();
    if listed != ["raw/2.csv", "raw/1.csv", "raw/0.csv"] {
        fail(case, format!("listed {listed:?}, not newest first"));
    }
    let queued = store
        .list(&JobFilter { status: Some(JobStatus::Queued), limit: 1 })
        .await
        .unwrap_or_else(|e| fail(case, e));
    if queued.len() != 1 || queued[0].source_key != "raw/2.csv" {
        fail(case, format!("the newest queued job, one: {queued:?}"));
    }
    let counts = store.counts().await.unwrap_or_else(|e| fail(case, e));
    if counts != BTreeMap::from([(JobStatus::Queued, 2), (JobStatus::Succeeded, 1)]) {
        fail(case, format!("counts {counts:?}"));
    }
}

/// The jobs created in a window spanning midnight, oldest first, page by page: none missed,
/// none twice, none from outside the window, ties on the creation time kept apart.
pub async fn a_window_of_jobs_page_by_page((store, other): Handles) {
    let case = "a_window_of_jobs_page_by_page";
    let midnight = chrono::NaiveDate::from_ymd_opt(2031, 3, 9)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or_else(|| fail(case, "a date"));
    let (from, to) = (midnight - chrono::Duration::hours(2), midnight + chrono::Duration::hours(2));
    // Minutes from midnight; three jobs share a time.
    let minutes = [-180, -120, -119, -1, 0, 0, 0, 1, 60, 119, 120, 300];
    let mut want = Vec::new();
    for (i, m) in minutes.iter().enumerate() {
        let mut j = job(&format!("raw/w{i}.csv"), "e", "");
        j.created_at = midnight + chrono::Duration::minutes(*m);
        if j.created_at >= from && j.created_at < to {
            want.push(j.source_key.clone());
        }
        store.create(&j).await.unwrap_or_else(|e| fail(case, e));
    }
    for limit in [1, 2, 4, 100] {
        let (mut got, mut token, mut pages) = (Vec::new(), None::<String>, 0);
        loop {
            let page = other
                .list_created(from, to, token.as_deref(), limit)
                .await
                .unwrap_or_else(|e| fail(case, format!("page {pages} of {limit}: {e}")));
            if page.jobs.len() > limit {
                fail(case, format!("a page of {} jobs, limit {limit}", page.jobs.len()));
            }
            got.extend(page.jobs.into_iter().map(|j| (j.created_at, j.source_key)));
            pages += 1;
            match page.next {
                Some(t) if pages < 50 => token = Some(t),
                Some(_) => fail(case, "more than 50 pages"),
                None => break,
            }
        }
        if got.windows(2).any(|w| w[0].0 > w[1].0) {
            fail(case, format!("limit {limit}: not oldest first: {got:?}"));
        }
        let mut keys: Vec<String> = got.into_iter().map(|(_, k)| k).collect();
        keys.sort();
        let mut expected = want.clone();
        expected.sort();
        if keys != expected {
            fail(case, format!("limit {limit}: listed {keys:?}, expected {expected:?}"));
        }
    }
    if other.list_created(from, to, Some("not a token"), 10).await.is_ok() {
        fail(case, "a made-up page token was taken");
    }
}

/// A key is claimed once, across handles.
pub async fn claims_are_granted_once((a, b): Handles) {
    let case = "claims_are_granted_once";
    let claims = [
        a.claim_once("dlq-alert:m1").await,
        b.claim_once("dlq-alert:m1").await,
        b.claim_once("dlq-alert:m2").await,
    ];
    let got: Vec<bool> = claims.into_iter().map(|c| c.unwrap_or_else(|e| fail(case, e))).collect();
    if got != [true, false, true] {
        fail(case, format!("claims {got:?}"));
    }
}

/// A second run of the same job, or a run of another version of the key, waits while the
/// first holds the key; the holder renews; a lapsed lease is taken over; the key is free again
/// once the run finishes.
pub async fn one_run_per_key_at_a_time((a, b): Handles, lease: Duration) {
    let case = "one_run_per_key_at_a_time";
    let v1 = job("raw/k.csv", "e1", "10");
    let first = started(case, a.as_ref(), &v1, "run-1", lease).await;
    if (first.status, first.attempts, first.pipeline.as_deref()) != (JobStatus::Running, 1, Some("sales")) {
        fail(case, format!("a started job is running, attempt 1, pipeline set: {first:?}"));
    }
    if b.get(&v1.job_id).await.unwrap_or_else(|e| fail(case, e)).as_ref() != Some(&first) {
        fail(case, "the record does not say running");
    }
    match b.begin(&v1, "sales", "run-2", lease).await {
        Ok(Begin::Busy) => {}
        other => fail(case, format!("the same job began while run-1 holds the key: {other:?}")),
    }
    let other_key = job("raw/other.csv", "e1", "10");
    started(case, b.as_ref(), &other_key, "run-3", lease).await;
    // Renewing keeps the key past the first expiry.
    tokio::time::sleep(lease / 2).await;
    if !a.renew(&v1.source_bucket, &v1.source_key, "run-1", lease).await.unwrap_or_else(|e| fail(case, e)) {
        fail(case, "the holder could not renew");
    }
    if b.renew(&v1.source_bucket, &v1.source_key, "run-2", lease).await.unwrap_or_else(|e| fail(case, e)) {
        fail(case, "another run renewed a lease it does not hold");
    }
    tokio::time::sleep(lease * 3 / 4).await;
    if !matches!(b.begin(&v1, "sales", "run-2", lease).await, Ok(Begin::Busy)) {
        fail(case, "a renewed lease lapsed early");
    }
    // Finishing the run gives the key up at once.
    let mut done = first.clone();
    done.status = JobStatus::Queued;
    a.finish_run(&done, "run-1").await.unwrap_or_else(|e| fail(case, e));
    let again = started(case, b.as_ref(), &v1, "run-2", lease).await;
    if again.attempts != 2 {
        fail(case, format!("the second run is attempt 2, not {}", again.attempts));
    }
    // Left to lapse, the lease is taken over.
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let mut taken = started(case, a.as_ref(), &v1, "run-4", lease).await;
    if taken.attempts != 3 {
        fail(case, format!("the run after a lapse is attempt 3, not {}", taken.attempts));
    }
    // A newer version of the key waits for the run that holds it, then starts.
    let v2 = job("raw/k.csv", "e2", "11");
    match b.begin(&v2, "sales", "run-5", lease).await {
        Ok(Begin::Busy) => {}
        other => fail(case, format!("another version began while run-4 holds the key: {other:?}")),
    }
    taken.finish(JobStatus::Succeeded, None);
    a.finish_run(&taken, "run-4").await.unwrap_or_else(|e| fail(case, e));
    started(case, b.as_ref(), &v2, "run-5", lease).await;
}

/// A run's writes are fenced on its lease: once another run holds the key, the first one's
/// saves, finish and renewals fail and change nothing.
pub async fn a_run_that_lost_its_lease_writes_nothing((a, b): Handles, lease: Duration) {
    let case = "a_run_that_lost_its_lease_writes_nothing";
    let v1 = job("raw/fenced.csv", "e1", "10");
    let paused = started(case, a.as_ref(), &v1, "run-paused", lease).await;
    a.save_run(&paused, "run-paused").await.unwrap_or_else(|e| fail(case, format!("a holder's save: {e}")));
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let taker = started(case, b.as_ref(), &v1, "run-taker", lease).await;
    let mut late = paused.clone();
    late.finish(JobStatus::Succeeded, None);
    for (what, result) in [
        ("save_run", a.save_run(&late, "run-paused").await),
        ("finish_run", a.finish_run(&late, "run-paused").await),
    ] {
        if !matches!(result, Err(PortError::Conflict(_))) {
            fail(case, format!("{what} by a run that lost its lease: {result:?}"));
        }
    }
    if a.renew(&v1.source_bucket, &v1.source_key, "run-paused", lease).await.unwrap_or_else(|e| fail(case, e))
    {
        fail(case, "a run that lost its lease renewed it");
    }
    if b.get(&v1.job_id).await.unwrap_or_else(|e| fail(case, e)).as_ref() != Some(&taker) {
        fail(case, "the record was changed by a run that lost its lease");
    }
    let mut finished = taker.clone();
    finished.finish(JobStatus::Succeeded, None);
    b.finish_run(&finished, "run-taker").await.unwrap_or_else(|e| fail(case, e));
    if a.get(&v1.job_id).await.unwrap_or_else(|e| fail(case, e)).map(|j| j.status)
        != Some(JobStatus::Succeeded)
    {
        fail(case, "the holder's finish was not recorded");
    }
}

/// Finished jobs are not begun again; failed ones (retries exhausted) are; an abandoned run
/// (shutdown) puts its job back to queued and frees the key at once.
pub async fn finished_failed_and_abandoned_runs((a, b): Handles, lease: Duration) {
    let case = "finished_failed_and_abandoned_runs";
    let v1 = job("raw/done.csv", "e1", "10");
    let run = started(case, a.as_ref(), &v1, "run-1", lease).await;
    a.abandon_run(&run, "run-1").await.unwrap_or_else(|e| fail(case, e));
    let after = b.get(&v1.job_id).await.unwrap_or_else(|e| fail(case, e));
    if after.as_ref().map(|j| j.status) != Some(JobStatus::Queued) {
        fail(case, format!("an abandoned run's job is queued again: {after:?}"));
    }
    let mut failed = started(case, b.as_ref(), &v1, "run-2", lease).await;
    failed.finish(JobStatus::Failed, Some("boom".into()));
    b.finish_run(&failed, "run-2").await.unwrap_or_else(|e| fail(case, e));
    let mut done = started(case, a.as_ref(), &v1, "run-3", lease).await;
    if done.attempts != 3 {
        fail(case, format!("a failed job runs again as attempt 3, not {}", done.attempts));
    }
    done.finish(JobStatus::Succeeded, None);
    a.finish_run(&done, "run-3").await.unwrap_or_else(|e| fail(case, e));
    match b.begin(&v1, "sales", "run-4", lease).await {
        Ok(Begin::Finished(j)) if j == done => {}
        other => fail(case, format!("a redelivery of a finished job: {other:?}")),
    }
    if b.get(&v1.job_id).await.unwrap_or_else(|e| fail(case, e)).as_ref() != Some(&done) {
        fail(case, "a finished job was changed by a redelivery");
    }
}

/// The newest version of a key wins: an older one's event that comes late is superseded (or
/// finished, if it was), the same content again is a duplicate, and content processed before
/// then replaced runs again when it is uploaded once more.
pub async fn versions_of_one_key((a, b): Handles, lease: Duration) {
    let case = "versions_of_one_key";
    let (v1, v2) = (job("raw/v.csv", "e1", "0010"), job("raw/v.csv", "e2", "11"));
    let mut newer = started(case, a.as_ref(), &v2, "run-2", lease).await;
    newer.finish(JobStatus::Succeeded, None);
    a.finish_run(&newer, "run-2").await.unwrap_or_else(|e| fail(case, e));
    let superseded = match b.begin(&v1, "sales", "run-1", lease).await {
        Ok(Begin::Superseded(j)) => j,
        other => fail(case, format!("an older version's late event: {other:?}")),
    };
    let stored = a.get(&v1.job_id).await.unwrap_or_else(|e| fail(case, e));
    if stored.as_ref() != Some(&superseded) || superseded.status != JobStatus::Superseded {
        fail(case, format!("the older version is recorded superseded: {stored:?}"));
    }
    let key = a.source_key("weir-input", "raw/v.csv").await.unwrap_or_else(|e| fail(case, e));
    if key.as_ref().and_then(|k| k.newest_job.as_ref()) != Some(&v2.job_id) {
        fail(case, format!("the key's newest job is v2's: {key:?}"));
    }
    // v2's content uploaded again: a duplicate, and its redelivery too; v2 is left as it was.
    let v2_again = job("raw/v.csv", "e2", "12");
    for _ in 0..2 {
        match b.begin(&v2_again, "sales", "run-3", lease).await {
            Ok(Begin::Duplicate(j)) if j == newer => {}
            other => fail(case, format!("the newest content uploaded again: {other:?}")),
        }
    }
    // v1's content uploaded again after v2: the newest version now, so it runs.
    let v1_again = job("raw/v.csv", "e1", "13");
    let rerun = started(case, a.as_ref(), &v1_again, "run-4", lease).await;
    if rerun.sequencer != v1_again.sequencer || rerun.attempts != 1 {
        fail(case, format!("the re-run carries the new event's sequencer: {rerun:?}"));
    }
}

/// The counters: files received, each outcome once (a re-run is another outcome; saving the
/// same outcome again is not), each status's count now, and the per-minute series that sum to
/// the totals.
pub async fn counters_are_exact((a, b): Handles, lease: Duration) {
    let case = "counters_are_exact";
    let jobs: Vec<Job> = (0..4).map(|i| job(&format!("raw/c{i}.csv"), "e", "")).collect();
    for j in &jobs {
        a.create(j).await.unwrap_or_else(|e| fail(case, e));
    }
    // Two succeed, one fails, one stays queued; the first is saved again as it was.
    let mut ended = Vec::new();
    for (i, status) in [(0, JobStatus::Succeeded), (1, JobStatus::Succeeded), (2, JobStatus::Failed)] {
        let mut run = started(case, a.as_ref(), &jobs[i], &format!("run-{i}"), lease).await;
        run.valid_rows = 10 + i as u64;
        run.invalid_rows = 1;
        // Each job's warehouse load: the succeeded ones' rows, the failed one's failure.
        run.warehouse = Some(weir_core::job::WarehouseLoad {
            rows: if status == JobStatus::Succeeded { run.valid_rows } else { 0 },
            error: (status == JobStatus::Failed).then(|| "database down".to_string()),
            ..Default::default()
        });
        run.finish(status, None);
        a.finish_run(&run, &format!("run-{i}")).await.unwrap_or_else(|e| fail(case, e));
        ended.push(run);
    }
    b.save(&ended[0]).await.unwrap_or_else(|e| fail(case, e));
    // The failed one runs again (a DLQ replay) and is rejected: one more outcome.
    let mut rerun = started(case, b.as_ref(), &jobs[2], "run-again", lease).await;
    rerun.finish(JobStatus::Rejected, Some("bad header".into()));
    b.finish_run(&rerun, "run-again").await.unwrap_or_else(|e| fail(case, e));

    let totals = a.totals().await.unwrap_or_else(|e| fail(case, e));
    let files = |status| totals.finished.get(&("sales".to_string(), status)).map_or(0, |t| t.files);
    let got = (files(JobStatus::Succeeded), files(JobStatus::Rejected), files(JobStatus::Failed));
    if got != (2, 1, 1) {
        fail(case, format!("outcomes (succeeded, rejected, failed) {got:?}, not (2, 1, 1): {totals:?}"));
    }
    let valid = totals.finished.get(&("sales".to_string(), JobStatus::Succeeded)).map_or(0, |t| t.rows_valid);
    // 10 + 11 valid rows in the two succeeded jobs.
    if valid != 21 || totals.received_files != 4 || totals.received_bytes != 40 {
        fail(
            case,
            format!(
                "rows {valid} (21), received {} files (4), {} bytes (40)",
                totals.received_files, totals.received_bytes
            ),
        );
    }
    let loads: (u64, u64) =
        totals.finished.values().fold((0, 0), |(r, f), t| (r + t.rows_loaded, f + t.load_failures));
    if loads != (21, 1) {
        fail(case, format!("warehouse (rows loaded, load failures) {loads:?}, not (21, 1): {totals:?}"));
    }
    let want = BTreeMap::from([(JobStatus::Queued, 1), (JobStatus::Succeeded, 2), (JobStatus::Rejected, 1)]);
    if totals.current != want || b.counts().await.unwrap_or_else(|e| fail(case, e)) != want {
        fail(case, format!("jobs per status now {:?}, not {want:?}", totals.current));
    }
    let now = weir_core::stats::minute_of(Utc::now());
    let series = b.series(now - 5, now + 2).await.unwrap_or_else(|e| fail(case, e));
    let sum = series.sum(now - 5, now + 2, None);
    let received: u64 = series.received.iter().map(|r| r.files).sum();
    if sum.files != 4 || sum.timed != 4 || received != 4 {
        fail(
            case,
            format!(
                "the last minutes hold {} outcomes ({} timed) and {received} received, not 4, 4, 4",
                sum.files, sum.timed
            ),
        );
    }
    if !b.series(now - 60, now - 10).await.unwrap_or_else(|e| fail(case, e)).finished.is_empty() {
        fail(case, "outcomes in minutes where nothing finished");
    }
}

/// A schedule's anchor is the first one written; each due time is claimed once, across
/// handles, and never one older than the last.
pub async fn schedules_fire_once_per_due_time((a, b): Handles) {
    let case = "schedules_fire_once_per_due_time";
    let first = a.schedule_mark("daily", 1_000).await.unwrap_or_else(|e| fail(case, e));
    let second = b.schedule_mark("daily", 2_000).await.unwrap_or_else(|e| fail(case, e));
    if first.anchor_ms != 1_000 || second != first || first.last_due_ms.is_some() {
        fail(case, format!("marks {first:?} then {second:?}: the first anchor must stay"));
    }
    let claims = [
        a.claim_schedule("daily", 5_000).await,
        b.claim_schedule("daily", 5_000).await,
        b.claim_schedule("daily", 4_000).await,
        a.claim_schedule("other", 4_000).await,
        b.claim_schedule("daily", 6_000).await,
    ];
    let got: Vec<bool> = claims.into_iter().map(|c| c.unwrap_or_else(|e| fail(case, e))).collect();
    if got != [true, false, false, true, true] {
        fail(case, format!("claims {got:?}, not [true, false, false, true, true]"));
    }
    let mark = a.schedule_mark("daily", 9_000).await.unwrap_or_else(|e| fail(case, e));
    if mark.anchor_ms != 1_000 || mark.last_due_ms != Some(6_000) || mark.fired_at_ms.is_none() {
        fail(case, format!("after the claims: {mark:?}"));
    }
}

/// Finished jobs older than the cutoff are listed in pages and deleted; a job that is not done,
/// or that ran again, stays; the lifetime counters do not move, the status counts do.
pub async fn finished_records_expire_and_lifetime_counters_stay((a, b): Handles, lease: Duration) {
    let case = "finished_records_expire_and_lifetime_counters_stay";
    let old = Utc::now() - chrono::Duration::days(10);
    let mut ids = Vec::new();
    for (i, status) in [JobStatus::Succeeded, JobStatus::Rejected, JobStatus::Failed, JobStatus::Succeeded]
        .into_iter()
        .enumerate()
    {
        let j = job(&format!("raw/old{i}.csv"), "e", "");
        a.create(&j).await.unwrap_or_else(|e| fail(case, e));
        let mut run = started(case, a.as_ref(), &j, &format!("old-{i}"), lease).await;
        run.finish(status, None);
        if i < 3 {
            run.finished_at = Some(old);
        }
        a.finish_run(&run, &format!("old-{i}")).await.unwrap_or_else(|e| fail(case, e));
        ids.push(run.job_id.clone());
    }
    let queued = job("raw/waiting.csv", "e", "");
    a.create(&queued).await.unwrap_or_else(|e| fail(case, e));
    let before_totals = a.totals().await.unwrap_or_else(|e| fail(case, e));
    let cutoff = (Utc::now() - chrono::Duration::days(1)).timestamp_millis();

    // Done and old: the succeeded and the rejected one (failed is not done: a replay reruns it).
    let mut want: Vec<JobId> = vec![ids[0].clone(), ids[1].clone()];
    want.sort();
    let page = b.finished_before(cutoff, None, 1).await.unwrap_or_else(|e| fail(case, e));
    if page.jobs != want[..1] || !page.more {
        fail(case, format!("first page {page:?}, not [{}] with more", want[0]));
    }
    let rest = b.finished_before(cutoff, page.jobs.last(), 10).await.unwrap_or_else(|e| fail(case, e));
    if rest.jobs != want[1..] || rest.more {
        fail(case, format!("second page {rest:?}, not [{}] and no more", want[1]));
    }
    // Asking for every id deletes only the two: the others are recent, failed or missing.
    let mut asked = ids.clone();
    asked.push(JobId("j-missing".into()));
    let deleted = b.delete_finished(&asked, cutoff).await.unwrap_or_else(|e| fail(case, e));
    if deleted != 2 {
        fail(case, format!("{deleted} deleted, not 2"));
    }
    for (i, id) in ids.iter().enumerate() {
        let found = a.get(id).await.unwrap_or_else(|e| fail(case, e)).is_some();
        if found != (i >= 2) {
            fail(case, format!("job {i} found: {found}"));
        }
    }
    let after = a.totals().await.unwrap_or_else(|e| fail(case, e));
    if after.finished != before_totals.finished
        || after.received_files != before_totals.received_files
        || after.received_bytes != before_totals.received_bytes
    {
        fail(case, format!("lifetime counters moved: {before_totals:?} → {after:?}"));
    }
    let want_now =
        BTreeMap::from([(JobStatus::Queued, 1), (JobStatus::Succeeded, 1), (JobStatus::Failed, 1)]);
    if after.current != want_now {
        fail(case, format!("jobs per status now {:?}, not {want_now:?}", after.current));
    }
    // A new upload of a deleted job's content is a job again (its key record went with it).
    let again = job("raw/old0.csv", "e", "");
    if !matches!(b.begin(&again, "sales", "again", lease).await, Ok(Begin::Started(_))) {
        fail(case, "the content of an expired job did not start again");
    }

    a.add_to_counter("expired_objects", 3).await.unwrap_or_else(|e| fail(case, e));
    b.add_to_counter("expired_objects", 4).await.unwrap_or_else(|e| fail(case, e));
    let counters = a.counters().await.unwrap_or_else(|e| fail(case, e));
    if counters.get("expired_objects") != Some(&7) {
        fail(case, format!("counters {counters:?}"));
    }
}
