//! Versions of one key and runs of one job: the newest version wins, one run per key at a
//! time, duplicates are recognised, and a run that lost its lease says and writes nothing.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, fast_config, put_event, samples, Harness, Recorder};
use weir_core::{Job, JobId, JobStatus};
use weir_pipeline::faults::{self, Fault, FaultPlan};
use weir_pipeline::{Engine, Ports, Worker};
use weir_ports::{JobStore, Metadata};

fn sales(tag: &str, rows: usize) -> String {
    let mut s = String::from("order_id,customer_name,product,quantity,price,date\n");
    for r in 0..rows {
        s.push_str(&format!("{tag}-{r},Name {r},P{},{},1.25,2024-03-01\n", r % 3, r % 5 + 1));
    }
    s
}

/// The order ids in a job's results, as stored.
async fn result_ids(h: &Harness, key: &str) -> Vec<String> {
    let text = String::from_utf8(h.read("weir-output", &format!("processed/weir-input/{key}.ndjson")).await)
        .unwrap();
    text.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["order_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Uploads of a second version right after the first, for many keys at once: every second
/// version is processed, and each key's outputs and archive are its second version's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_versions_of_a_key_end_with_the_newest() {
    let h = Harness::start_full(fast_config(), Recorder(Default::default(), true), |p| p, 8).await;
    let mut pairs = Vec::new();
    for i in 0..40 {
        let key = format!("raw/pair-{i}.csv");
        let v1 = h.upload(&key, sales(&format!("A{i}"), 3 + i % 4)).await;
        let v2 = h.upload(&key, sales(&format!("B{i}"), 2 + i % 3)).await;
        pairs.push((key, v1, v2));
    }
    for (key, v1, v2) in &pairs {
        let (j1, j2) = (h.wait(&v1.job_id).await, h.wait(&v2.job_id).await);
        assert!(
            matches!(j1.status, JobStatus::Succeeded | JobStatus::Superseded),
            "{key}: the first version is processed or superseded, not {:?}",
            j1
        );
        assert_eq!(j2.status, JobStatus::Succeeded, "{key}: the newest version is processed: {j2:?}");
        let tag = key.trim_start_matches("raw/pair-").trim_end_matches(".csv");
        let ids = result_ids(&h, key).await;
        assert!(
            !ids.is_empty() && ids.iter().all(|id| id.starts_with(&format!("B{tag}-"))),
            "{key}: {ids:?}"
        );
        let archived = String::from_utf8(h.read("weir-archive", key).await).unwrap();
        assert!(archived.contains(&format!("B{tag}-0")), "{key}: the archive holds the newest version");
        assert!(!h.exists("weir-input", key), "{key}: nothing left in the input");
    }
    h.stop().await;
}

/// With `source.archive = "copy"`, versions of a key uploaded back to back for many keys at
/// once end as with `move` (the newest processed, its outputs and archive copy the newest's),
/// but the input keeps the newest version; the same content uploaded twice at once is one job,
/// and once more after it finished no job at all (no `skipped` record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_archive_by_copy_the_newest_version_wins_and_stays_and_re_uploads_make_no_job() {
    let mut config = fast_config();
    config.pipelines[0].source.archive = weir_core::config::ArchiveMode::Copy;
    let h = Harness::start_full(config, Recorder(Default::default(), true), |p| p, 8).await;
    let mut pairs = Vec::new();
    for i in 0..20 {
        let key = format!("raw/kept-{i}.csv");
        let v1 = h.upload(&key, sales(&format!("A{i}"), 3 + i % 4)).await;
        let v2 = h.upload(&key, sales(&format!("B{i}"), 2 + i % 3)).await;
        pairs.push((key, v1, v2));
    }
    let same =
        [h.upload("raw/twice.csv", sales("T", 4)).await, h.upload("raw/twice.csv", sales("T", 4)).await];
    assert_eq!(same[0].job_id, same[1].job_id, "the same content is the same job");
    for (key, v1, v2) in &pairs {
        let (j1, j2) = (h.wait(&v1.job_id).await, h.wait(&v2.job_id).await);
        assert!(matches!(j1.status, JobStatus::Succeeded | JobStatus::Superseded), "{key}: {j1:?}");
        assert_eq!(j2.status, JobStatus::Succeeded, "{key}: the newest version is processed: {j2:?}");
        let tag = key.trim_start_matches("raw/kept-").trim_end_matches(".csv");
        let ids = result_ids(&h, key).await;
        assert!(
            !ids.is_empty() && ids.iter().all(|id| id.starts_with(&format!("B{tag}-"))),
            "{key}: {ids:?}"
        );
        for bucket in ["weir-archive", "weir-input"] {
            let text = String::from_utf8(h.read(bucket, key).await).unwrap();
            assert!(text.contains(&format!("B{tag}-0")), "{key}: {bucket} holds the newest version");
        }
    }
    let twice = h.wait(&same[0].job_id).await;
    assert_eq!((twice.status, twice.attempts), (JobStatus::Succeeded, 1), "{twice:?}");
    // Once more, after the job: nothing to do, and no record of it.
    h.upload("raw/twice.csv", sales("T", 4)).await;
    h.run("raw/after.csv", sales("Z", 1)).await;
    eventually("the queue to drain", || async {
        let q = h.raw.queue.stats().await.unwrap();
        (q.visible + q.in_flight + q.delayed == 0).then_some(())
    })
    .await;
    let all = h.jobs.list(&weir_ports::JobFilter { status: None, limit: 1000 }).await.unwrap();
    let of_twice: Vec<&Job> = all.iter().filter(|j| j.source_key == "raw/twice.csv").collect();
    assert_eq!(of_twice.len(), 1, "one job for one content, however often uploaded: {of_twice:?}");
    assert!(all.iter().all(|j| j.status != JobStatus::Skipped), "no duplicate records");
    assert!(h.exists("weir-input", "raw/twice.csv"));
    // A restart's reconcile finds the kept inputs done: nothing is queued again.
    let queued = weir_pipeline::reconcile::on_start(&h.engine, Duration::ZERO).await.unwrap();
    assert_eq!(queued, 0, "kept inputs are not waiting files");
    h.stop().await;
}

/// An older version's event that comes late — after the newer version finished, or while the
/// key already holds the newer one — never writes over the newer version's outputs: the older
/// job is superseded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_event_of_an_older_version_is_superseded_and_writes_nothing() {
    let h = Harness::start_with_notifier(fast_config(), Recorder(Default::default(), true), |p| p).await;
    let objects = &h.raw.objects;
    let key = "raw/late.csv";
    let v1 = objects.put("weir-input", key, sales("OLD", 4).into(), Metadata::new()).await.unwrap();
    let v2 = objects.put("weir-input", key, sales("NEW", 2).into(), Metadata::new()).await.unwrap();
    // The newer version's event first, then the older one's, with the older sequencer.
    h.raw.queue.send(&put_event(key, &v2.etag, v2.size, 20)).await.unwrap();
    let newer = h.wait(&JobId::for_object("weir-input", key, &v2.etag)).await;
    assert_eq!(newer.status, JobStatus::Succeeded);
    let outputs_before = result_ids(&h, key).await;
    h.raw.queue.send(&put_event(key, &v1.etag, v1.size, 10)).await.unwrap();
    let older = h.wait(&JobId::for_object("weir-input", key, &v1.etag)).await;
    assert_eq!(older.status, JobStatus::Superseded, "{older:?}");
    assert_eq!(older.attempts, 0, "it never ran");
    assert_eq!(result_ids(&h, key).await, outputs_before, "the newer outputs are untouched");
    assert!(String::from_utf8(h.read("weir-archive", key).await).unwrap().contains("NEW-0"));

    // An older version whose event comes first, when the key already holds a newer upload: it
    // finds another version under the key and is superseded without writing anything.
    let key = "raw/replaced.csv";
    let v1 = objects.put("weir-input", key, sales("OLD", 4).into(), Metadata::new()).await.unwrap();
    let v2 = objects.put("weir-input", key, sales("NEW", 2).into(), Metadata::new()).await.unwrap();
    h.raw.queue.send(&put_event(key, &v1.etag, v1.size, 30)).await.unwrap();
    let older = h.wait(&JobId::for_object("weir-input", key, &v1.etag)).await;
    assert_eq!(older.status, JobStatus::Superseded, "{older:?}");
    assert!(older.error.as_deref().unwrap().contains("newer upload"), "{:?}", older.error);
    assert!(!h.exists("weir-output", &format!("processed/weir-input/{key}.ndjson")), "nothing written");
    assert_eq!(objects.head("weir-input", key).await.unwrap().etag, v2.etag, "the newer upload is kept");
    h.raw.queue.send(&put_event(key, &v2.etag, v2.size, 31)).await.unwrap();
    assert_eq!(h.wait(&JobId::for_object("weir-input", key, &v2.etag)).await.status, JobStatus::Succeeded);
    assert!(result_ids(&h, key).await.iter().all(|id| id.starts_with("NEW-")));
    // Superseded jobs send nothing; the two succeeded ones one message each.
    let notes = h.notes.0.lock().unwrap().clone();
    assert_eq!(notes.len(), 2, "{notes:#?}");
    h.stop().await;
}

/// Content uploaded again after its job finished is a duplicate: moved to the archive beside
/// the first copy, recorded as a skipped job that says why, and not processed or announced
/// again. The same content after *other* content is the key's newest version and runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_re_upload_is_archived_as_a_duplicate() {
    let h = Harness::start_with_notifier(fast_config(), Recorder(Default::default(), true), |p| p).await;
    let key = "raw/again.csv";
    let first = h.run(key, sales("A", 3)).await;
    assert_eq!(first.status, JobStatus::Succeeded);
    let again = h.upload(key, sales("A", 3)).await;
    assert_eq!(again.job_id, first.job_id, "the same content is the same job");
    let duplicate = eventually("the duplicate's record", || async {
        let all =
            h.jobs.list(&weir_ports::JobFilter { status: Some(JobStatus::Skipped), limit: 0 }).await.unwrap();
        all.into_iter().find(|j| j.source_key == key)
    })
    .await;
    assert!(duplicate.error.as_deref().unwrap().contains(&first.job_id.to_string()), "{duplicate:?}");
    assert_eq!(
        duplicate.output_keys.get("duplicate").map(String::as_str),
        Some("weir-archive/raw/again.csv")
    );
    assert!(!h.exists("weir-input", key), "the duplicate left the input");
    assert_eq!(h.jobs.get(&first.job_id).await.unwrap().unwrap(), first, "the first job is unchanged");
    let notes = h.notes.0.lock().unwrap().len();
    assert_eq!(notes, 1, "one notification: the duplicate is not announced");

    // Other content, then the first content once more: that is the newest version, so it runs.
    assert_eq!(h.run(key, sales("B", 2)).await.status, JobStatus::Succeeded);
    let rerun = h.upload(key, sales("A", 3)).await;
    let rerun = eventually("the re-run", || async {
        let j = h.jobs.get(&rerun.job_id).await.unwrap().unwrap();
        (j.status == JobStatus::Succeeded && j.attempts == 2).then_some(j)
    })
    .await;
    assert_eq!(rerun.job_id, first.job_id);
    assert!(result_ids(&h, key).await.iter().all(|id| id.starts_with("A-")), "A's rows are the newest");
    h.stop().await;
}

/// Two messages for one job at once in one process (a redelivery, or reconcile's event beside
/// the original): the job runs once. The lease is per run, not per process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_messages_for_one_job_in_one_process_run_it_once() {
    let h = Harness::start_full(fast_config(), Recorder(Default::default(), false), |p| p, 8).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        let key = format!("raw/twice-{i}.csv");
        let info =
            h.raw.objects.put("weir-input", &key, sales("T", 2000).into(), Metadata::new()).await.unwrap();
        let body = put_event(&key, &info.etag, info.size, 100 + i);
        h.raw.queue.send_batch(&[body.clone(), body]).await.unwrap();
        ids.push(JobId::for_object("weir-input", &key, &info.etag));
    }
    for id in &ids {
        let job = h.wait(id).await;
        assert_eq!((job.status, job.attempts), (JobStatus::Succeeded, 1), "ran once: {job:?}");
    }
    eventually("an empty queue", || async {
        let s = h.raw.queue.stats().await.unwrap();
        (s.visible + s.in_flight == 0).then_some(())
    })
    .await;
    let notes = h.notes.0.lock().unwrap().len();
    assert_eq!(notes, 10, "one notification per job");
    h.stop().await;
}

/// An event that was sent but whose job record was never written (the process died in
/// between): reconcile at start finds the object without a job, and sends nothing while that
/// event is still on the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_does_not_queue_what_the_queue_already_holds() {
    let mut h = Harness::start(fast_config()).await;
    h.stop_worker().await;
    let key = "raw/queued.csv";
    let info = h.raw.objects.put("weir-input", key, sales("Q", 2).into(), Metadata::new()).await.unwrap();
    let id = JobId::for_object("weir-input", key, &info.etag);
    h.raw.queue.send_tagged(&put_event(key, &info.etag, info.size, 5), &id.0, false).await.unwrap();
    assert_eq!(weir_pipeline::reconcile::on_start(&h.engine, Duration::ZERO).await.unwrap(), 0);
    assert_eq!(h.raw.queue.stats().await.unwrap().visible, 1, "one event, not two");
    // An object whose event was lost is queued, once.
    h.raw.objects.put("weir-input", "raw/lost.csv", sales("L", 2).into(), Metadata::new()).await.unwrap();
    // Not while it is fresh: its uploader may be about to send its event.
    let settle = Duration::from_secs(60);
    assert_eq!(weir_pipeline::reconcile::on_start(&h.engine, settle).await.unwrap(), 0, "too fresh");
    assert_eq!(weir_pipeline::reconcile::on_start(&h.engine, Duration::ZERO).await.unwrap(), 1);
    assert_eq!(
        weir_pipeline::reconcile::on_start(&h.engine, Duration::ZERO).await.unwrap(),
        0,
        "and only once"
    );
    assert_eq!(h.raw.queue.stats().await.unwrap().visible, 2);
}

/// Pauses every port call of one engine while set, blocking its thread: with the engine on a
/// runtime of its own, that is a process stopped with SIGSTOP.
struct Pause {
    stopped: AtomicBool,
    /// Stop at the first read of a source (right after the run took its lease).
    armed: AtomicBool,
    /// Calls made after the pause ended.
    after: AtomicUsize,
}

impl FaultPlan for Pause {
    fn decide(&self, op: &'static str, _detail: &str) -> Option<Fault> {
        if op == "objects.get" && self.armed.swap(false, Ordering::SeqCst) {
            self.stopped.store(true, Ordering::SeqCst);
        }
        while self.stopped.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if op.starts_with("jobs.") {
            self.after.fetch_add(1, Ordering::SeqCst);
        }
        None
    }
}

/// A worker paused past its lease (SIGSTOP longer than the visibility timeout) while another
/// takes the job over and finishes it: when it wakes, it neither rewrites the job's record nor
/// notifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_lost_its_lease_writes_and_says_nothing() {
    let mut h = Harness::start_with_notifier(fast_config(), Recorder(Default::default(), true), |p| p).await;
    h.stop_worker().await;
    // A second engine on the same stores, on a runtime (a thread) of its own, paused at will.
    let pause = Arc::new(Pause { stopped: false.into(), armed: true.into(), after: 0.into() });
    let (plan, ports, config) = (pause.clone(), h.raw.clone(), h.engine.config().clone());
    let scratch = h.dir.path().join(".tmp");
    let stop = tokio_util::sync::CancellationToken::new();
    let stop_paused = stop.clone();
    let paused = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let ports: Ports = faults::wrap(ports, plan);
            let engine = Arc::new(Engine::new(config, ports, scratch).unwrap());
            Worker::new(engine, 1, Duration::ZERO).run(stop_paused).await;
        });
    });
    let job = h.upload("raw/paused.csv", std::fs::read(samples().join("sales.csv")).unwrap()).await;
    eventually("the paused engine to take the job", || async {
        pause.stopped.load(Ordering::SeqCst).then_some(())
    })
    .await;
    // Another worker (this runtime's) gets the message once its visibility lapses, and finishes it.
    let engine =
        Arc::new(Engine::new(h.engine.config().clone(), h.raw.clone(), h.dir.path().join(".tmp")).unwrap());
    let stop_other = tokio_util::sync::CancellationToken::new();
    let other = tokio::spawn({
        let (engine, stop) = (engine.clone(), stop_other.clone());
        async move { Worker::new(engine, 2, Duration::from_secs(5)).run(stop).await }
    });
    let done: Job = eventually("the other worker to finish the job", || async {
        h.jobs.get(&job.job_id).await.unwrap().filter(|j| j.status == JobStatus::Succeeded)
    })
    .await;
    assert_eq!(done.attempts, 2, "the second run finished it: {done:?}");
    // Wake the paused one and let it try to go on.
    pause.stopped.store(false, Ordering::SeqCst);
    eventually("the woken engine to try to write", || async {
        (pause.after.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    eventually("the woken engine to settle", || async {
        let s = h.raw.queue.stats().await.unwrap();
        (s.visible + s.in_flight == 0).then_some(())
    })
    .await;
    stop.cancel();
    stop_other.cancel();
    paused.join().unwrap();
    other.await.unwrap();
    assert_eq!(h.jobs.get(&job.job_id).await.unwrap().unwrap(), done, "the record is the finisher's");
    let notes = h.notes.0.lock().unwrap().clone();
    assert_eq!(notes.len(), 1, "one notification, the finisher's: {notes:#?}");
    assert_eq!(notes[0].attributes["status"], "succeeded");
}

/// Holds the first `jobs.get` (reconcile's look at the job of an object it listed) until let go.
struct GateAtJobLookup {
    reached: AtomicBool,
    open: AtomicBool,
}

impl FaultPlan for GateAtJobLookup {
    fn decide(&self, op: &'static str, _detail: &str) -> Option<Fault> {
        if op == "jobs.get" && !self.reached.swap(true, Ordering::SeqCst) {
            // A gate, not a timing: it opens when the test says so (or the test fails).
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while !self.open.load(Ordering::SeqCst) {
                assert!(std::time::Instant::now() < deadline, "the gate at jobs.get was never opened");
                std::thread::park_timeout(Duration::from_millis(5));
            }
        }
        None
    }
}

/// Reconcile lists an object whose job is still running; the job archives it and finishes
/// before reconcile reads the job. The listing is stale: there is no leftover copy, so nothing
/// is announced again and no duplicate record appears (a `weir run` killed and restarted while
/// files arrive met exactly this).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_with_a_listing_older_than_the_jobs_move_announces_nothing() {
    let mut h = Harness::start(fast_config()).await;
    h.stop_worker().await;
    let key = "raw/moving.csv";
    let job = h.upload(key, sales("M", 3)).await;
    // Reconcile on an engine of its own (a thread: the gate blocks it), held after its listing.
    let gate = Arc::new(GateAtJobLookup { reached: false.into(), open: false.into() });
    let (plan, ports, config) = (gate.clone(), h.raw.clone(), h.engine.config().clone());
    let scratch = h.dir.path().join(".tmp");
    let reconcile = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let engine = Engine::new(config, faults::wrap(ports, plan), scratch).unwrap();
            weir_pipeline::reconcile::on_start(&engine, Duration::ZERO).await.unwrap()
        })
    });
    eventually("reconcile to list the object", || async {
        gate.reached.load(Ordering::SeqCst).then_some(())
    })
    .await;
    // Meanwhile a worker runs the job: it archives the source and finishes.
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn({
        let (engine, stop) = (h.engine.clone(), stop.clone());
        async move { Worker::new(engine, 1, Duration::ZERO).run(stop).await }
    });
    let done = h.wait(&job.job_id).await;
    assert_eq!(done.status, JobStatus::Succeeded);
    assert!(!h.exists("weir-input", key), "archived");
    gate.open.store(true, Ordering::SeqCst);
    assert_eq!(reconcile.join().unwrap(), 0, "the listed object was moved by its job: nothing to announce");
    eventually("the queue to drain", || async {
        let s = h.raw.queue.stats().await.unwrap();
        (s.visible + s.in_flight == 0).then_some(())
    })
    .await;
    stop.cancel();
    worker.await.unwrap();
    let records = h.jobs.list(&weir_ports::JobFilter { status: None, limit: 100 }).await.unwrap();
    let of_key: Vec<_> = records.iter().filter(|j| j.source_key == key).map(|j| j.status).collect();
    assert_eq!(of_key, [JobStatus::Succeeded], "one job, no duplicate record");
}
