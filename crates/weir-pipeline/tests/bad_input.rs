//! Every kind of bad input gets a specific error, loses nothing, and leaves the worker up.

mod common;

use common::Harness;
use weir_core::event::{S3Event, S3EventRecord};
use weir_core::{Config, JobId, JobStatus};

const HEADER: &str = "order_id,customer_name,product,quantity,price,date\n";

async fn harness() -> Harness {
    Harness::start(Config::bundled()).await
}

/// After each bad input the worker still processes a good file.
async fn worker_still_up(h: &Harness) {
    let job = h.run("raw/after.csv", format!("{HEADER}A,Ann,Widget,1,2.5,2024-01-01\n")).await;
    assert_eq!(job.status, JobStatus::Succeeded, "the worker must survive bad input: {job:?}");
}

fn error_report(report: &serde_json::Value) -> Vec<(u64, String, String)> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_file_is_rejected() {
    let h = harness().await;
    let job = h.run("raw/empty.csv", "").await;
    assert_eq!(job.status, JobStatus::Rejected);
    let err = job.error.unwrap();
    assert!(err.contains("raw/empty.csv") && err.contains("empty"), "{err}");
    worker_still_up(&h).await;
    h.stop().await;
}

/// A header and no rows is not a silent success: `validation.min_rows` (default 1) rejects it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_only_is_rejected_with_the_reason() {
    let h = harness().await;
    let job = h.run("raw/header.csv", HEADER).await;
    assert_eq!(job.status, JobStatus::Rejected, "{job:?}");
    assert_eq!((job.total_rows, job.valid_rows, job.invalid_rows), (0, 0, 0));
    let err = job.error.unwrap();
    assert!(
        err.ends_with("the file has no data rows (validation.min_rows is 1); nothing to process"),
        "{err}"
    );
    assert!(job.output_keys.contains_key("failed"), "moved to failed/: {:?}", job.output_keys);
    let alert = common::eventually("the rejection alert", || async {
        h.notes.0.lock().unwrap().iter().find(|n| n.topic == "alerts").cloned()
    })
    .await;
    assert!(alert.text.contains("no data rows"), "{}", alert.text);
    worker_still_up(&h).await;
    h.stop().await;
}

/// Most rows invalid: the default `validation.max_invalid_ratio` (0.5) rejects the file; with
/// some rows invalid it succeeds and the success notification counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mostly_invalid_file_is_rejected_and_some_invalid_rows_are_counted_in_the_notification() {
    let h = harness().await;
    let (good, bad) = ("G,Ann,Widget,1,2.5,2024-01-01\n", "B,Bob,Widget,two,2.5,2024-01-01\n");
    let job = h.run("raw/mostly-bad.csv", format!("{HEADER}{good}{bad}{bad}")).await;
    assert_eq!(job.status, JobStatus::Rejected, "{job:?}");
    let err = job.error.unwrap();
    assert!(
        err.ends_with(
            "2 of 3 rows are invalid (66.67 %), more than validation.max_invalid_ratio allows (50.00 %)"
        ),
        "{err}"
    );
    assert!(!h.exists("weir-output", "processed/weir-input/raw/mostly-bad.csv.ndjson"), "no results");
    let job = h.run("raw/some-bad.csv", format!("{HEADER}{good}{good}{bad}")).await;
    assert_eq!((job.status, job.valid_rows, job.invalid_rows), (JobStatus::Succeeded, 2, 1));
    let success = common::eventually("the success notification", || async {
        h.notes.0.lock().unwrap().iter().find(|n| n.topic == "success").cloned()
    })
    .await;
    assert_eq!(success.subject, "✅ weir: some-bad.csv processed (2 rows; 1 row invalid)");
    assert!(success.text.contains("1 row invalid: left out of the results"), "{}", success.text);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_utf8_bytes_make_an_invalid_row_naming_the_offset() {
    let h = harness().await;
    let mut data = HEADER.as_bytes().to_vec();
    data.extend_from_slice(b"A,Ann,Widget,1,2.5,2024-01-01\nB,B\xff\xfeb,Widget,1,2.5,2024-01-01\n");
    let job = h.run("raw/latin.csv", data).await;
    assert_eq!((job.status, job.valid_rows, job.invalid_rows), (JobStatus::Succeeded, 1, 1));
    let report = h.json("weir-output", "errors/weir-input/raw/latin.csv.errors.json").await;
    let errors = error_report(&report);
    assert_eq!(errors[0].0, 3);
    assert_eq!(errors[0].1, "customer_name");
    assert!(errors[0].2.contains("UTF-8") && errors[0].2.contains("offset"), "{}", errors[0].2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ragged_rows_are_invalid_rows() {
    let h = harness().await;
    let data = format!(
        "{HEADER}A,Ann,Widget,1,2.5,2024-01-01,extra\nB,Bob,Widget,1\nC,Cy,Widget,1,2.5,2024-01-01\nD,Di,Widget,1,2.5,2024-01-01\n"
    );
    let job = h.run("raw/ragged.csv", data).await;
    assert_eq!((job.valid_rows, job.invalid_rows), (2, 2));
    let report = h.json("weir-output", "errors/weir-input/raw/ragged.csv.errors.json").await;
    let errors = error_report(&report);
    assert_eq!(errors[0].0, 2);
    assert!(errors[0].2.contains("expected 6 fields, found 7"), "{}", errors[0].2);
    assert_eq!(errors[1].0, 3);
    assert!(errors[1].2.contains("found 4"), "{}", errors[1].2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unterminated_quote_is_rejected_naming_the_line() {
    let h = harness().await;
    let data = format!("{HEADER}A,Ann,Widget,1,2.5,2024-01-01\nB,\"Bob,Widget,1,2.5,2024-01-01\n");
    let job = h.run("raw/quote.csv", data).await;
    assert_eq!(job.status, JobStatus::Rejected, "{job:?}");
    let err = job.error.unwrap();
    assert!(err.contains("quote") && err.contains("line 3"), "{err}");
    assert!(job.output_keys.contains_key("failed"));
    worker_still_up(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_field_is_an_invalid_row_and_later_rows_still_count() {
    let h = harness().await;
    let mut data = HEADER.as_bytes().to_vec();
    data.extend_from_slice(b"A,");
    data.extend(std::iter::repeat_n(b'x', 50 << 20));
    data.extend_from_slice(b",Widget,1,2.5,2024-01-01\nB,Bob,Widget,1,2.5,2024-01-01\n");
    let job = h.run("raw/huge.csv", data).await;
    assert_eq!((job.status, job.valid_rows, job.invalid_rows), (JobStatus::Succeeded, 1, 1), "{job:?}");
    let report = h.json("weir-output", "errors/weir-input/raw/huge.csv.errors.json").await;
    let errors = error_report(&report);
    assert_eq!(errors[0].0, 2);
    assert!(errors[0].2.contains("limit"), "{}", errors[0].2);
    worker_still_up(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_column_names_are_rejected() {
    let h = harness().await;
    let data =
        "order_id,customer_name,product,quantity,price,date,Product\nA,Ann,Widget,1,2.5,2024-01-01,W\n";
    let job = h.run("raw/dupes.csv", data).await;
    assert_eq!(job.status, JobStatus::Rejected);
    let err = job.error.unwrap();
    assert!(err.contains("duplicate") && err.contains("product"), "{err}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_escape_the_bucket_are_refused() {
    let h = harness().await;
    for key in ["raw/../../etc/passwd.csv", "/raw/abs.csv"] {
        let put = h
            .engine
            .ports()
            .objects
            .put("weir-input", key, bytes::Bytes::from_static(b"x"), Default::default())
            .await;
        assert!(put.is_err(), "{key} must not be stored");
        // An event naming such a key (from elsewhere) ends as a refused job.
        let rec = S3EventRecord::object_created("Put", "weir-input", key, 1, "e", 1, chrono::Utc::now());
        h.engine.ports().queue.send(&S3Event::single(rec).to_json()).await.unwrap();
        let job = h.wait(&JobId::for_object("weir-input", key, "e")).await;
        assert_eq!(job.status, JobStatus::Rejected, "{key}");
        assert!(job.error.as_deref().unwrap().contains("refused object key"), "{:?}", job.error);
    }
    assert!(!h.dir.path().join("etc").exists());
    worker_still_up(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_deleted_before_processing_fails_the_job_clearly() {
    let h = harness().await;
    let rec =
        S3EventRecord::object_created("Put", "weir-input", "raw/ghost.csv", 10, "abc", 1, chrono::Utc::now());
    h.engine.ports().queue.send(&S3Event::single(rec).to_json()).await.unwrap();
    let job = h.wait(&JobId::for_object("weir-input", "raw/ghost.csv", "abc")).await;
    assert_eq!(job.status, JobStatus::Failed);
    let err = job.error.unwrap();
    assert!(err.contains("raw/ghost.csv") && err.contains("no longer exists"), "{err}");
    worker_still_up(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_and_test_events_do_not_stop_the_worker() {
    let h = harness().await;
    let q = &h.engine.ports().queue;
    for body in
        ["not json", "{}", r#"{"Records":[{"nope":1}]}"#, r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#]
    {
        q.send(body).await.unwrap();
    }
    worker_still_up(&h).await;
    // Every malformed message is settled (dead-lettered or, the test event, deleted).
    common::eventually("the malformed messages to be settled", || async {
        let stats = q.stats().await.unwrap();
        (stats.visible + stats.in_flight == 0 && stats.dead_letters == 3).then_some(())
    })
    .await;
    let jobs = h.engine.ports().jobs.list(&Default::default()).await.unwrap();
    assert_eq!(jobs.len(), 1, "malformed messages make no jobs");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_no_pipeline_takes_make_no_job_on_upload_and_a_skipped_job_from_events() {
    let h = harness().await;
    let (_, job) = weir_pipeline::ingest::put_object(
        h.engine.ports(),
        h.engine.config(),
        "weir-input",
        "notes/readme.txt",
        bytes::Bytes::from_static(b"hi"),
        Default::default(),
    )
    .await
    .unwrap();
    assert!(job.is_none());
    let rec = S3EventRecord::object_created(
        "Put",
        "weir-input",
        "notes/readme.txt",
        2,
        "e2",
        1,
        chrono::Utc::now(),
    );
    h.engine.ports().queue.send(&S3Event::single(rec).to_json()).await.unwrap();
    let job = h.wait(&JobId::for_object("weir-input", "notes/readme.txt", "e2")).await;
    assert_eq!(job.status, JobStatus::Skipped);
    h.stop().await;
}

/// A job that fails for a reason that is not the file's fault — here the output bucket is
/// gone — is retried, dead-lettered when its receives run out, and alerted on with its reason;
/// the source stays where it was. (It used to end `failed: Weir.SourceMissing` at once, with no
/// retry and no alert.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_output_bucket_is_retried_dead_lettered_and_alerted() {
    let h = Harness::start(common::fast_config()).await;
    std::fs::remove_dir_all(h.dir.path().join("weir-output")).unwrap();
    let job = h.upload("raw/nowhere.csv", format!("{HEADER}A,Ann,Widget,1,2.5,2024-01-01\n")).await;
    let job = h.wait(&job.job_id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    assert_eq!(job.attempts, 3, "retried until the receives ran out: {job:?}");
    let error = job.error.clone().unwrap();
    assert!(error.contains("weir-output") && error.contains("does not exist"), "{error}");
    assert!(!error.contains("SourceMissing"), "{error}");
    assert!(h.exists("weir-input", "raw/nowhere.csv"), "the source is kept");
    let dead = common::eventually("the message in the DLQ", || async {
        let dead = h.engine.ports().queue.dlq_list(0).await.unwrap();
        (!dead.is_empty()).then_some(dead)
    })
    .await;
    assert_eq!(dead.len(), 1);
    let alert = common::eventually("the failure alert", || async {
        h.notes.0.lock().unwrap().iter().find(|n| n.topic == "alerts").cloned()
    })
    .await;
    assert_eq!(alert.payload["job_id"], job.job_id.0.as_str());
    assert!(alert.payload["reason"].as_str().unwrap().contains("weir-output"), "{}", alert.payload);
    h.stop().await;
}

/// A job whose source vanished before it could be read fails for good, and says so on the
/// alerts topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_is_alerted_with_its_reason() {
    let h = harness().await;
    let rec =
        S3EventRecord::object_created("Put", "weir-input", "raw/gone.csv", 10, "abc", 1, chrono::Utc::now());
    h.engine.ports().queue.send(&S3Event::single(rec).to_json()).await.unwrap();
    let job = h.wait(&JobId::for_object("weir-input", "raw/gone.csv", "abc")).await;
    assert_eq!(job.status, JobStatus::Failed);
    let alert = common::eventually("the failure alert", || async {
        h.notes
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|n| n.attributes.get("status").is_some_and(|s| s == "failed"))
            .cloned()
    })
    .await;
    assert_eq!(alert.topic, "alerts");
    assert!(alert.payload["reason"].as_str().unwrap().contains("no longer exists"), "{}", alert.payload);
    assert_eq!(alert.payload["dead_lettered"], false);
    h.stop().await;
}
