//! Retention on a real embedded data dir: objects of several ages (their file times set back),
//! exactly the expected ones go; a dry run deletes nothing; a running job's source, a source with
//! no job yet and the outputs of a key being run stay, with the default keys and with seed 003's
//! templated one-bucket layout (where reprocessing the archive is tested too); and a sweeper
//! running with the clock two days ahead under a burst of uploads loses none of them.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::Utc;
use common::Harness;
use weir_core::schedule_config::RetentionRule;
use weir_core::{Config, Job, JobStatus};
use weir_pipeline::reconcile::{self, Reprocess};
use weir_pipeline::retention::{self, Expired, Mode, EXPIRED_OBJECTS};
use weir_ports::{Begin, JobStore, Metadata};

fn rule(bucket: &str, prefix: &str, days: i64) -> RetentionRule {
    RetentionRule {
        bucket: bucket.into(),
        prefix: prefix.into(),
        expire_after_days: Some(days),
        transition_after_days: None,
        storage_class: None,
    }
}

/// Stores an object and sets its file's modification time `days` back.
async fn aged(h: &Harness, bucket: &str, key: &str, days: u64) {
    h.raw.objects.put(bucket, key, Bytes::from(format!("{key}\n")), Metadata::new()).await.unwrap();
    let path = h.dir.path().join(bucket).join(key);
    let when = SystemTime::now() - Duration::from_secs(days * 86_400);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
}

fn keys(items: &[Expired]) -> BTreeSet<String> {
    items
        .iter()
        .filter_map(|e| match e {
            Expired::Object { bucket, key, .. } => Some(format!("{bucket}/{key}")),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_the_old_objects_go_and_a_dry_run_deletes_nothing() {
    let mut config = common::fast_config();
    config.retention.rules = vec![
        rule("weir-input", "failed/", 30),
        rule("weir-archive", "", 365),
        rule("weir-output", "processed/", 90),
    ];
    let mut h = Harness::start(config.clone()).await;
    h.stop_worker().await;
    for (bucket, key, days) in [
        ("weir-input", "failed/2025/01/01/raw/a.csv", 40),
        ("weir-input", "failed/2026/01/01/raw/b.csv", 10),
        ("weir-input", "other/c.csv", 400),
        ("weir-archive", "raw/x.csv", 400),
        ("weir-archive", "raw/y.csv", 100),
        ("weir-output", "processed/weir-input/raw/x.csv.ndjson", 100),
        ("weir-output", "reports/weir-input/raw/x.csv.summary.json", 400),
    ] {
        aged(&h, bucket, key, days).await;
    }
    let want: BTreeSet<String> = [
        "weir-input/failed/2025/01/01/raw/a.csv",
        "weir-archive/raw/x.csv",
        "weir-output/processed/weir-input/raw/x.csv.ndjson",
    ]
    .map(String::from)
    .into();
    let all_files = || walk(h.dir.path(), &["weir-input", "weir-archive", "weir-output"]);
    let before = all_files();

    let mut seen = Vec::new();
    let dry =
        retention::sweep(&config, &h.raw, Utc::now(), Mode::DryRun, |e| seen.push(e.clone())).await.unwrap();
    assert_eq!(keys(&seen), want, "what a dry run says would go");
    assert_eq!(dry.objects, 3);
    assert_eq!(all_files(), before, "a dry run deleted something");
    assert!(h.jobs.counters().await.unwrap().is_empty(), "a dry run counted");

    let mut gone = Vec::new();
    let done =
        retention::sweep(&config, &h.raw, Utc::now(), Mode::Apply, |e| gone.push(e.clone())).await.unwrap();
    assert_eq!(keys(&gone), want);
    assert_eq!(done.objects, 3);
    let left: BTreeSet<String> = before.difference(&want).cloned().collect();
    assert_eq!(all_files(), left, "exactly the expected objects went");
    assert_eq!(h.jobs.counters().await.unwrap().get(EXPIRED_OBJECTS), Some(&3));
    // Nothing is left to do.
    let again = retention::sweep(&config, &h.raw, Utc::now(), Mode::Apply, |_| {}).await.unwrap();
    assert_eq!(again.objects, 0);
}

/// Every object file under the buckets, as `bucket/key`.
fn walk(root: &std::path::Path, buckets: &[&str]) -> BTreeSet<String> {
    fn go(dir: &std::path::Path, prefix: &str, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let path = format!("{prefix}/{name}");
            if e.file_type().unwrap().is_dir() {
                go(&e.path(), &path, out);
            } else {
                out.insert(path);
            }
        }
    }
    let mut out = BTreeSet::new();
    for b in buckets {
        go(&root.join(b), b, &mut out);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_of_a_running_or_waiting_job_and_its_outputs_survive() {
    let mut config = common::fast_config();
    config.retention.rules = vec![rule("weir-input", "raw/", 1), rule("weir-output", "processed/", 1)];
    let mut h = Harness::start(config.clone()).await;
    h.stop_worker().await;
    // running.csv: a run holds it; waiting.csv: stored, its event not handled yet (no job);
    // failed.csv: retries exhausted, waiting in the DLQ for a replay; done.csv: its job ended.
    for key in ["raw/running.csv", "raw/waiting.csv", "raw/failed.csv", "raw/done.csv"] {
        aged(&h, "weir-input", key, 5).await;
    }
    aged(&h, "weir-output", "processed/weir-input/raw/running.csv.ndjson", 5).await;
    aged(&h, "weir-output", "processed/weir-input/raw/done.csv.ndjson", 5).await;
    let running = job_of(&h, "raw/running.csv").await;
    let started = h.jobs.begin(&running, "sales", "run-1", Duration::from_secs(600)).await.unwrap();
    assert!(matches!(started, Begin::Started(_)), "{started:?}");
    for (key, status) in [("raw/failed.csv", JobStatus::Failed), ("raw/done.csv", JobStatus::Succeeded)] {
        let mut j = job_of(&h, key).await;
        let Begin::Started(mut j2) = h.jobs.begin(&j, "sales", key, Duration::from_secs(600)).await.unwrap()
        else {
            panic!("{key} starts")
        };
        j2.finish(status, None);
        h.jobs.finish_run(&j2, key).await.unwrap();
        j = j2;
        assert_eq!(h.jobs.get(&j.job_id).await.unwrap().unwrap().status, status);
    }

    let mut gone = Vec::new();
    let report =
        retention::sweep(&config, &h.raw, Utc::now(), Mode::Apply, |e| gone.push(e.clone())).await.unwrap();
    assert_eq!(
        keys(&gone),
        ["weir-input/raw/done.csv", "weir-output/processed/weir-input/raw/done.csv.ndjson"]
            .map(String::from)
            .into(),
    );
    assert_eq!(report.kept_in_use, 4);
    for (bucket, key) in [
        ("weir-input", "raw/running.csv"),
        ("weir-input", "raw/waiting.csv"),
        ("weir-input", "raw/failed.csv"),
        ("weir-output", "processed/weir-input/raw/running.csv.ndjson"),
    ] {
        assert!(h.exists(bucket, key), "{bucket}/{key} was removed");
    }
}

/// The job of the object now under `key` in the input bucket.
async fn job_of(h: &Harness, key: &str) -> Job {
    let info = h.raw.objects.head("weir-input", key).await.unwrap();
    Job::queued("weir-input", key, &info.etag, info.size, Some("sales"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweeper_under_a_burst_of_uploads_loses_no_upload() {
    let mut config: Config = common::fast_config();
    // With the clock two days ahead every upload is "old": only the in-use rules keep them.
    config.retention.rules = vec![rule("weir-input", "raw/", 1)];
    config.retention.batch_size = 10;
    let h = Harness::start_full(config.clone(), common::Recorder::default(), |p| p, 8).await;
    let sample = std::fs::read(common::samples().join("sales.csv")).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let sweeper = {
        let (config, ports, stop) = (config.clone(), h.raw.clone(), stop.clone());
        tokio::spawn(async move {
            let mut total = retention::SweepReport::default();
            while !stop.is_cancelled() {
                let ahead = Utc::now() + chrono::Duration::days(2);
                let r = retention::sweep(&config, &ports, ahead, Mode::Apply, |_| {}).await.unwrap();
                total.objects += r.objects;
                total.kept_in_use += r.kept_in_use;
            }
            total
        })
    };
    let mut jobs = Vec::new();
    for i in 0..150 {
        jobs.push(h.upload(&format!("raw/burst-{i:03}.csv"), sample.clone()).await);
    }
    for j in &jobs {
        let done = h.wait(&j.job_id).await;
        assert_eq!(done.status, JobStatus::Succeeded, "{}: {:?}", j.source_key, done.error);
        let out = format!("processed/weir-input/{}.ndjson", j.source_key);
        assert!(h.exists("weir-output", &out), "{out} missing");
        assert!(h.exists("weir-archive", &j.source_key), "{} not archived", j.source_key);
    }
    stop.cancel();
    let total = sweeper.await.unwrap();
    assert_eq!(total.objects, 0, "the sweeper removed an upload");
    assert!(total.kept_in_use > 0, "the sweeper never saw an upload in flight: the test proved nothing");
    h.stop().await;
}

/// `source.archive = "copy"` keeps each processed input (good and rejected) in place with a copy
/// in the archive (or `failed/`); `keep_input_minutes` later removes the inputs whose job is
/// done, but never one with no job yet, nor a newer version uploaded under a kept key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_inputs_stay_after_their_job_and_go_after_keep_input_minutes_once_done() {
    let mut config = common::fast_config();
    config.pipelines[0].source.archive = weir_core::config::ArchiveMode::Copy;
    config.pipelines[0].source.keep_input_minutes = Some(30);
    let mut h = Harness::start(config.clone()).await;
    let sales = std::fs::read(common::samples().join("sales.csv")).unwrap();
    let good = h.run("raw/kept-good.csv", sales.clone()).await;
    let bad = h.run("raw/kept-bad.csv", "nothing,like,sales\n1,2,3\n").await;
    assert_eq!((good.status, bad.status), (JobStatus::Succeeded, JobStatus::Rejected));
    assert!(h.exists("weir-input", "raw/kept-good.csv") && h.exists("weir-input", "raw/kept-bad.csv"));
    assert!(h.exists("weir-archive", "raw/kept-good.csv"), "the archive holds a copy");
    assert!(good.output_keys.contains_key("archive") && bad.output_keys.contains_key("failed"));
    // An unchanged re-upload is no new job, and stays.
    let again = h.upload("raw/kept-good.csv", sales.clone()).await;
    assert_eq!(again.job_id, good.job_id);
    // A file with no job yet (the worker stopped) is never removed, however old.
    h.stop_worker().await;
    h.raw
        .objects
        .put("weir-input", "raw/kept-waiting.csv", Bytes::from(sales.clone()), Metadata::new())
        .await
        .unwrap();

    let now = Utc::now();
    let mut seen = Vec::new();
    let early = retention::expire_kept_inputs(&config, &h.raw, now, Mode::Apply, |e| seen.push(e.clone()))
        .await
        .unwrap();
    assert_eq!(early.objects, 0, "nothing is 30 minutes old yet: {seen:?}");

    let later = now + chrono::Duration::minutes(31);
    let swept = retention::expire_kept_inputs(&config, &h.raw, later, Mode::Apply, |e| seen.push(e.clone()))
        .await
        .unwrap();
    assert_eq!(
        keys(&seen),
        ["weir-input/raw/kept-bad.csv", "weir-input/raw/kept-good.csv"].map(String::from).into(),
        "exactly the done jobs' inputs go"
    );
    assert_eq!(swept.kept_in_use, 1, "the waiting file is kept");
    assert!(h.exists("weir-input", "raw/kept-waiting.csv"));
    assert!(!h.exists("weir-input", "raw/kept-good.csv") && h.exists("weir-archive", "raw/kept-good.csv"));
    // A sweep does the same (and `weir gc` with it).
    let again = retention::sweep(&config, &h.raw, later, Mode::Apply, |_| {}).await.unwrap();
    assert_eq!((again.objects, again.kept_in_use), (0, 1));
}

/// Seed 003's one-bucket layout: sources in `raw-data/`, outputs in `results/`, processed
/// sources in `processed-data/`, rejected ones in `failed-data/<date>/`, all in
/// `pipeline-data`. No key there follows the default layout; each object's metadata names its
/// source. Reprocessing `processed-data/` (and `failed-data/`) puts each copy back at its
/// source key and runs it again; retention keeps the outputs and archived copy of a key whose
/// newest version is being run, and removes the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templated_keys_in_one_bucket_find_their_source_for_reprocess_and_retention() {
    let mut config = common::fast_config();
    config.buckets.input = "pipeline-data".into();
    config.buckets.output = "pipeline-data".into();
    config.buckets.archive = "pipeline-data".into();
    config.pipelines.truncate(1);
    let p = &mut config.pipelines[0];
    p.source.prefix = "raw-data/".into();
    let o = &mut p.output;
    o.results_key = Some("results/{dir}/{name}.ndjson".into());
    o.summary_key = Some("results/{dir}/{name}.summary.json".into());
    o.errors_key = Some("results/{dir}/{name}.errors.json".into());
    o.archive_key = Some("processed-data/{key}".into());
    o.failed_key = Some("failed-data/{yyyy}-{mm}-{dd}/{key}".into());
    let rules = ["results/", "processed-data/", "failed-data/"];
    config.retention.rules = rules.iter().map(|prefix| rule("pipeline-data", prefix, 1)).collect();
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    let mut h = Harness::start(config.clone()).await;
    let sales = std::fs::read(common::samples().join("sales.csv")).unwrap();
    let good = h.run("raw-data/orders.csv", sales.clone()).await;
    let bad = h.run("raw-data/bad.csv", "nothing,like,sales\n1,2,3\n").await;
    assert_eq!((good.status, bad.status), (JobStatus::Succeeded, JobStatus::Rejected), "{:?}", good.error);
    let day = Utc::now().format("%Y-%m-%d");
    let failed_copy = format!("failed-data/{day}/raw-data/bad.csv");
    let outputs = [
        "results/raw-data/orders.csv.ndjson",
        "results/raw-data/orders.csv.summary.json",
        "processed-data/raw-data/orders.csv",
    ];
    for key in outputs.iter().copied().chain([failed_copy.as_str()]) {
        assert!(h.exists("pipeline-data", key), "{key} was not written");
    }
    assert!(!h.exists("pipeline-data", "raw-data/orders.csv"), "the source was moved");

    // Reprocess from the archive (and from failed-data/), as `weir reprocess --force` does.
    for (prefix, job) in [("processed-data/", &good), ("failed-data/", &bad)] {
        let r = Reprocess {
            bucket: "pipeline-data".into(),
            prefix: prefix.into(),
            status: None,
            force: true,
            rate: 100,
            checkpoint: None,
        };
        let tally = reconcile::run(&h.engine, &r, |_| {}).await.unwrap();
        assert_eq!((tally.sent, tally.skipped_no_pipeline), (1, 0), "{prefix}: {tally:?}");
        let rerun = common::eventually(&format!("{} to run again", job.source_key), || async {
            h.jobs.get(&job.job_id).await.unwrap().filter(|j| j.status.is_terminal() && j.attempts == 2)
        })
        .await;
        assert_eq!(rerun.status, job.status, "{prefix}: {:?}", rerun.error);
    }
    assert!(!h.exists("pipeline-data", "raw-data/orders.csv"), "the restored source went back");
    assert!(h.exists("pipeline-data", "processed-data/raw-data/orders.csv"));
    assert!(h.exists("pipeline-data", &failed_copy));

    // A new version of orders.csv is being run: what its key's runs wrote stays; the rejected
    // copy of bad.csv, whose key nothing runs, goes.
    h.stop_worker().await;
    let newer = h.upload("raw-data/orders.csv", [&sales[..], b"\n"].concat()).await;
    let started = h.jobs.begin(&newer, "sales", "run-2", Duration::from_secs(600)).await.unwrap();
    assert!(matches!(started, Begin::Started(_)), "{started:?}");
    // Five days on (file times set back would lose the metadata the local store keeps on them).
    let later = Utc::now() + chrono::Duration::days(5);
    let mut gone = Vec::new();
    let report =
        retention::sweep(&config, &h.raw, later, Mode::Apply, |e| gone.push(e.clone())).await.unwrap();
    assert_eq!(keys(&gone), [format!("pipeline-data/{failed_copy}")].into());
    assert_eq!(report.kept_in_use, 3);
    for key in outputs {
        assert!(h.exists("pipeline-data", key), "{key} was removed while its key is being run");
    }
}
