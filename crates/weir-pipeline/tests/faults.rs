//! Fault injection: every port call of a clean run, failed in turn, before or after doing its
//! work; after recovery the invariants must hold.
//!
//! * every upload ends in exactly one terminal state, the one a clean run gives;
//! * outputs (results, summaries, error reports, thumbnails, image metadata, archived and failed
//!   sources) are byte for byte those of a clean run;
//! * the records sink holds each row once;
//! * exactly one notification per job with an idempotent notifier (the outbox of `weir run`),
//!   at most one with any other;
//! * the queue is empty and the DLQ holds exactly the poison messages.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{fast_config, samples, Harness, Recorder};
use weir_core::{Job, JobStatus};
use weir_pipeline::faults::{self, Fault, FaultPlan};
use weir_pipeline::Ports;
use weir_ports::{JobStore, Notification, RecordsSink};

/// When to fail: the k-th call of an operation (once armed), before or after its work.
#[derive(Default)]
struct Faults {
    armed: AtomicBool,
    targets: Mutex<Vec<(&'static str, usize, bool)>>,
    counts: Mutex<BTreeMap<&'static str, usize>>,
    /// Keys whose object reads always fail (poison).
    poison: Mutex<Vec<String>>,
}

impl Faults {
    fn new(target: Option<(&'static str, usize, bool)>) -> Arc<Faults> {
        Self::all(target.into_iter().collect())
    }

    fn all(targets: Vec<(&'static str, usize, bool)>) -> Arc<Faults> {
        let f = Faults::default();
        *f.targets.lock().unwrap() = targets;
        Arc::new(f)
    }

    /// Counts a call of `op`; returns whether this call fails, and when (`Some(after)`).
    fn plan(&self, op: &'static str) -> Option<bool> {
        if !self.armed.load(Ordering::SeqCst) {
            return None;
        }
        let mut counts = self.counts.lock().unwrap();
        let n = counts.entry(op).or_default();
        *n += 1;
        let n = *n;
        self.targets.lock().unwrap().iter().find(|(t, k, _)| *t == op && *k == n).map(|(_, _, after)| *after)
    }
}

impl FaultPlan for Faults {
    fn decide(&self, op: &'static str, detail: &str) -> Option<Fault> {
        if op == "objects.get" && self.poison.lock().unwrap().iter().any(|p| p == detail) {
            return Some(Fault::Before);
        }
        self.plan(op).map(|after| if after { Fault::After } else { Fault::Before })
    }
}

fn wrap(ports: Ports, f: Arc<Faults>) -> Ports {
    faults::wrap(ports, f)
}

/// The uploads, by key: the data samples, a picture and a file posing as one.
const FILES: [(&str, JobStatus); 5] = [
    ("raw/sales.csv", JobStatus::Succeeded),
    ("raw/bad_schema.csv", JobStatus::Rejected),
    ("raw/bad_rows.csv", JobStatus::Succeeded),
    ("images/photo.jpg", JobStatus::Succeeded),
    ("images/lying.jpg", JobStatus::Rejected),
];

fn content(key: &str) -> Vec<u8> {
    match key {
        "images/photo.jpg" => {
            weir_image::fixtures::jpeg(640, 480, Some(&weir_image::fixtures::camera_exif(6, true)))
        }
        "images/lying.jpg" => std::fs::read(samples().join("sales.csv")).unwrap(),
        _ => std::fs::read(samples().join(key.trim_start_matches("raw/"))).unwrap(),
    }
}

/// Everything a run leaves in the buckets, by path (failed/ dates normalised), with contents.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for bucket in ["weir-input", "weir-output", "weir-archive"] {
        walk(&dir.join(bucket), &mut |p| {
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let rel = regex_free_date(&rel);
            out.insert(rel, std::fs::read(p).unwrap());
        });
    }
    out
}

fn regex_free_date(path: &str) -> String {
    // weir-input/failed/YYYY/MM/DD/... → weir-input/failed/DATE/...
    match path.strip_prefix("weir-input/failed/") {
        Some(rest) if rest.len() > 11 => format!("weir-input/failed/DATE/{}", &rest[11..]),
        _ => path.to_owned(),
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, f);
        } else {
            f(&p);
        }
    }
}

struct RunResult {
    jobs: Vec<Job>,
    files: BTreeMap<String, Vec<u8>>,
    records: usize,
    notes: Vec<Notification>,
    counts: BTreeMap<&'static str, usize>,
    dead: usize,
}

async fn run_once(target: Option<(&'static str, usize, bool)>, idempotent_notifier: bool) -> RunResult {
    let faults = Faults::new(target);
    faults.armed.store(true, Ordering::SeqCst);
    let f = faults.clone();
    let notes = Recorder(Default::default(), idempotent_notifier);
    let h = Harness::start_with_notifier(fast_config(), notes, move |p| wrap(p, f)).await;
    let mut ids = Vec::new();
    for (key, _) in FILES {
        ids.push(h.upload(key, content(key)).await.job_id);
    }
    let mut jobs = Vec::new();
    for id in &ids {
        jobs.push(h.wait(id).await);
    }
    // Let a message whose delete was failed come back and be settled.
    let stats = common::eventually(&format!("{target:?}: the queue to drain"), || async {
        let s = h.engine.ports().queue.stats().await.unwrap();
        (s.visible + s.in_flight == 0).then_some(s)
    })
    .await;
    let records = h.records.query("CSV#weir-input/raw/sales.csv", 0).await.unwrap().len()
        + h.records.query("CSV#weir-input/raw/bad_rows.csv", 0).await.unwrap().len();
    let result = RunResult {
        jobs,
        files: snapshot(h.dir.path()),
        records,
        notes: h.notes.0.lock().unwrap().clone(),
        counts: faults.counts.lock().unwrap().clone(),
        dead: stats.dead_letters as usize,
    };
    h.stop().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_point_recovers_to_the_clean_result() {
    let clean = run_once(None, true).await;
    for (job, (_, status)) in clean.jobs.iter().zip(FILES) {
        assert_eq!(job.status, status);
    }
    let calls: usize = clean.counts.values().sum();
    assert!(calls > 20, "a clean run makes many port calls: {:?}", clean.counts);
    let mut iterations = 0;
    for (&op, &count) in &clean.counts {
        for k in 1..=count {
            for after in [false, true] {
                let r = run_once(Some((op, k, after)), true).await;
                iterations += 1;
                let ctx = format!(
                    "failing call {k} of {op} {}",
                    if after { "after its work" } else { "before its work" }
                );
                for (job, (name, status)) in r.jobs.iter().zip(FILES) {
                    assert_eq!(job.status, status, "{ctx}: {name}: {job:?}");
                    assert!(job.attempts <= 3, "{ctx}: {name} took {} attempts", job.attempts);
                }
                let paths = |f: &BTreeMap<String, Vec<u8>>| f.keys().cloned().collect::<Vec<_>>();
                assert_eq!(paths(&r.files), paths(&clean.files), "{ctx}: the same objects");
                for (path, content) in &clean.files {
                    assert!(r.files[path] == *content, "{ctx}: {path} differs from the clean run");
                }
                assert_eq!(r.records, clean.records, "{ctx}: the records sink holds each row once");
                let per_job = notifications_per_job(&r.notes);
                assert!(
                    per_job.len() == FILES.len() && per_job.values().all(|&n| n == 1),
                    "{ctx}: exactly one notification per job: {per_job:?}"
                );
                assert_eq!(r.dead, 0, "{ctx}: nothing is poison here, the DLQ must stay empty");
            }
        }
    }
    eprintln!("fault injection: {iterations} runs, every call of a clean run failed before and after its work: {:?}", clean.counts);
}

fn notifications_per_job(notes: &[Notification]) -> BTreeMap<String, usize> {
    let mut per_job: BTreeMap<String, usize> = BTreeMap::new();
    for n in notes {
        *per_job.entry(n.attributes.get("job_id").cloned().unwrap_or_default()).or_default() += 1;
    }
    per_job
}

/// A notifier that cannot tell a repeated message (SNS, a bare webhook) gets each job's
/// message at most once: it is claimed in the job store before it is published, so a failed
/// publish, or a lost acknowledgement of the claim, drops it rather than sending it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_that_is_not_idempotent_is_told_at_most_once() {
    let clean = run_once(None, false).await;
    assert_eq!(notifications_per_job(&clean.notes).len(), FILES.len(), "a clean run notifies every job");
    for op in ["notifier.publish", "jobs.claim_once"] {
        for k in 1..=clean.counts[op] {
            for after in [false, true] {
                let r = run_once(Some((op, k, after)), false).await;
                let ctx = format!("failing call {k} of {op} (after its work: {after})");
                let per_job = notifications_per_job(&r.notes);
                assert!(per_job.values().all(|&n| n == 1), "{ctx}: at most one per job: {per_job:?}");
                assert!(FILES.len() - per_job.len() <= 1, "{ctx}: only the failed one is lost: {per_job:?}");
                for (job, (name, status)) in r.jobs.iter().zip(FILES) {
                    assert_eq!(job.status, status, "{ctx}: {name}: {job:?}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_file_is_dead_lettered_after_max_receives_and_alerted_once() {
    let faults = Faults::new(None);
    faults.poison.lock().unwrap().push("raw/poison.csv".into());
    let f = faults.clone();
    let h = Harness::start_with(fast_config(), move |p| wrap(p, f)).await;
    let poison = h.upload("raw/poison.csv", std::fs::read(samples().join("sales.csv")).unwrap()).await;
    let good = h.run("raw/sales.csv", std::fs::read(samples().join("sales.csv")).unwrap()).await;
    assert_eq!(good.status, JobStatus::Succeeded);
    let failed = h.wait(&poison.job_id).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.attempts, 3, "{failed:?}");
    assert!(failed.error.as_deref().unwrap().contains("retries exhausted"), "{:?}", failed.error);
    // One alert for the failed job: sent by the run that gave up, and by the DLQ scanner once
    // the queue has redriven the message (the same message under the same id, claimed once).
    let alerts = || -> Vec<Notification> {
        h.notes.0.lock().unwrap().iter().filter(|n| n.topic == "alerts").cloned().collect()
    };
    let dead = common::eventually("the poison message in the DLQ", || async {
        let dead = h.engine.ports().queue.dlq_list(0).await.unwrap();
        (!dead.is_empty()).then_some(dead)
    })
    .await;
    assert_eq!(dead.len(), 1, "the DLQ holds exactly the poison message");
    let alert = common::eventually("the failure alert", || async { alerts().into_iter().next() }).await;
    assert_eq!(alert.attributes["status"], "failed");
    assert_eq!(alert.payload["event"], "job_failed");
    assert_eq!(alert.payload["source_key"], "raw/poison.csv");
    assert_eq!(alert.payload["dead_lettered"], true);
    assert!(alert.payload["reason"].as_str().unwrap().contains("poison"), "{}", alert.payload);
    // More scans send nothing more.
    for _ in 0..3 {
        assert_eq!(weir_pipeline::dlq::scan_once(&h.engine).await.unwrap(), 0, "a scan alerted again");
    }
    assert_eq!(
        alerts().len(),
        1,
        "one alert per failed job, however often the DLQ is scanned: {:?}",
        alerts()
    );

    // Fix the cause and replay: the job resumes and ends in one terminal state.
    faults.poison.lock().unwrap().clear();
    assert_eq!(h.engine.ports().queue.dlq_replay(None).await.unwrap(), 1);
    let done = common::eventually("the replayed job to succeed", || async {
        let j = h.jobs.get(&poison.job_id).await.unwrap().unwrap();
        (j.status == JobStatus::Succeeded).then_some(j)
    })
    .await;
    assert_eq!(done.attempts, 4);
    assert!(h.engine.ports().queue.dlq_list(0).await.unwrap().is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_go_straight_to_the_dlq_with_an_alert() {
    let h = Harness::start(fast_config()).await;
    h.engine.ports().queue.send("this is not an event").await.unwrap();
    let dead = common::eventually("the dead letter", || async {
        let dead = h.engine.ports().queue.dlq_list(0).await.unwrap();
        (!dead.is_empty()).then_some(dead)
    })
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].receive_count, 1, "dead-lettered at the first receive, not retried");
    let notes = common::eventually("the dead-letter alert", || async {
        let notes = h.notes.0.lock().unwrap().clone();
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    assert_eq!(notes.len(), 1);
    assert!(notes[0].payload["last_error"].as_str().unwrap().contains("not an S3 event"));
    h.stop().await;
}

/// Two faults in a row, which no single-fault run makes (the soak benchmark found it): a move
/// whose answer is lost although it happened, then a failed look at where the source went. The
/// retry must find the move done, not call the source missing and fail the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_move_then_a_failed_lookup_is_retried_and_succeeds() {
    // sales.csv alone: head 1 checks the source before the outputs are stored, head 2 looks at
    // the archive when the retry finds the source gone.
    let faults = Faults::all(vec![("objects.move", 1, true), ("objects.head", 2, false)]);
    faults.armed.store(true, Ordering::SeqCst);
    let f = faults.clone();
    let h =
        Harness::start_with_notifier(fast_config(), Recorder(Default::default(), true), move |p| wrap(p, f))
            .await;
    let id = h.upload("raw/sales.csv", std::fs::read(samples().join("sales.csv")).unwrap()).await.job_id;
    let job = h.wait(&id).await;
    let counts = faults.counts.lock().unwrap().clone();
    assert!(counts["objects.head"] >= 3, "both faults were reached: {counts:?}");
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert!(h.dir.path().join("weir-archive/raw/sales.csv").is_file());
    assert!(!h.dir.path().join("weir-input/raw/sales.csv").exists());
    h.stop().await;
}

/// A move whose answer is lost although it happened, with one of the job store's writes failing
/// as well (the soak at a 5 % failure rate found it): whichever write fails, the retry must
/// resume at the move and find it done, not start over, find the source gone and fail the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_move_and_a_failed_job_write_are_retried_and_succeed() {
    // The run's writes: the checkpoint after the transform (save_run), the retry's record and
    // the outcome (finish_run).
    for (write, k) in
        [("jobs.save_run", 1), ("jobs.save_run", 2), ("jobs.finish_run", 1), ("jobs.finish_run", 2)]
    {
        let faults = Faults::all(vec![("objects.move", 1, true), (write, k, false)]);
        faults.armed.store(true, Ordering::SeqCst);
        let f = faults.clone();
        let h = Harness::start_with_notifier(fast_config(), Recorder(Default::default(), true), move |p| {
            wrap(p, f)
        })
        .await;
        let id = h.upload("raw/sales.csv", std::fs::read(samples().join("sales.csv")).unwrap()).await.job_id;
        let job = h.wait(&id).await;
        let counts = faults.counts.lock().unwrap().clone();
        assert!(counts[write] >= k, "{write} {k}: both faults were reached: {counts:?}");
        assert_eq!(job.status, JobStatus::Succeeded, "{write} {k}: {job:?}");
        assert!(h.dir.path().join("weir-archive/raw/sales.csv").is_file());
        h.stop().await;
    }
}

/// A run killed after it moved a rejected file to `failed/` and before it could record it (the
/// checkpoint and the retry's record both lost, as with kill -9): the next run starts over,
/// finds no source, and must recognise its own move — ending `rejected` with the reason and a
/// rejection notice, not `failed: source missing` (the chaos run found that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_after_moving_a_rejected_file_resumes_as_rejected() {
    let faults = Faults::all(vec![("jobs.save_run", 1, false), ("jobs.finish_run", 1, false)]);
    faults.armed.store(true, Ordering::SeqCst);
    let f = faults.clone();
    let h =
        Harness::start_with_notifier(fast_config(), Recorder(Default::default(), true), move |p| wrap(p, f))
            .await;
    let id =
        h.upload("raw/bad_schema.csv", std::fs::read(samples().join("bad_schema.csv")).unwrap()).await.job_id;
    let job = h.wait(&id).await;
    let counts = faults.counts.lock().unwrap().clone();
    assert!(counts["jobs.finish_run"] >= 2, "the first run's records were lost: {counts:?}");
    assert_eq!(job.status, JobStatus::Rejected, "{job:?}");
    assert!(
        job.error.as_deref().unwrap_or_default().contains("missing"),
        "the original reason: {:?}",
        job.error
    );
    assert!(job.attempts >= 2, "{job:?}");
    let notes = h.notes.0.lock().unwrap().clone();
    let rejections: Vec<_> =
        notes.iter().filter(|n| n.attributes.get("status").is_some_and(|s| s == "rejected")).collect();
    assert_eq!(rejections.len(), 1, "one rejection notice: {notes:?}");
    assert!(
        !rejections[0].payload["missing_columns"].as_array().unwrap().is_empty(),
        "the notice names the missing columns: {}",
        rejections[0].payload
    );
    h.stop().await;
}

/// Every delete of a message fails while set: workers that finish a job and die before
/// acknowledging its message, again and again.
struct DeletesFail(AtomicBool);

impl FaultPlan for DeletesFail {
    fn decide(&self, op: &'static str, _detail: &str) -> Option<Fault> {
        (op == "queue.delete" && self.0.load(Ordering::SeqCst)).then_some(Fault::Before)
    }
}

/// A message whose job finished, but whose receivers kept failing to delete it, runs out of
/// receives: the work is done, so the scanner alerts nobody and sends it back to be
/// acknowledged, and the DLQ holds only what needs a person (the kill -9 test met this).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_of_a_finished_job_is_acknowledged_without_an_alert() {
    let deletes_fail = Arc::new(DeletesFail(true.into()));
    let plan = deletes_fail.clone();
    let h = Harness::start_with(fast_config(), move |p| faults::wrap(p, plan)).await;
    let queue = h.raw.queue.clone();
    let job = h.upload("raw/sales.csv", std::fs::read(samples().join("sales.csv")).unwrap()).await;
    let done = h.wait(&job.job_id).await;
    assert_eq!(done.status, JobStatus::Succeeded);
    common::eventually("the message to run out of receives", || async {
        (queue.stats().await.unwrap().dead_letters == 1).then_some(())
    })
    .await;
    deletes_fail.0.store(false, Ordering::SeqCst);
    common::eventually("the dead letter acknowledged", || async {
        let s = queue.stats().await.unwrap();
        (s.dead_letters + s.visible + s.in_flight == 0).then_some(())
    })
    .await;
    assert_eq!(weir_pipeline::dlq::scan_once(&h.engine).await.unwrap(), 0, "nobody to alert");
    assert_eq!(h.jobs.get(&job.job_id).await.unwrap().unwrap(), done, "the job is as it finished");
    let notes = h.notes.0.lock().unwrap().clone();
    assert_eq!(notes.len(), 1, "the success notice only: {notes:#?}");
    assert_eq!(notes[0].attributes["status"], "succeeded");
}
