//! The embedded pipeline end to end: samples, outputs, notifications, idempotency.

mod common;

use std::collections::BTreeMap;

use common::{samples, Harness};
use weir_core::event::{S3Event, S3EventRecord};
use weir_core::{Config, JobStatus};
use weir_ports::RecordsSink;

/// Expected figures for the sales sample, computed straight from the CSV.
struct Expected {
    rows: u64,
    revenue: f64,
    quantity: f64,
    per_product: BTreeMap<String, (u64, f64, f64)>,
}

fn expected_sales() -> Expected {
    let mut r = csv::Reader::from_path(samples().join("sales.csv")).unwrap();
    let mut e = Expected { rows: 0, revenue: 0.0, quantity: 0.0, per_product: BTreeMap::new() };
    for rec in r.records() {
        let rec = rec.unwrap();
        let q: f64 = rec[3].parse().unwrap();
        let p: f64 = rec[4].parse().unwrap();
        e.rows += 1;
        e.revenue += q * p;
        e.quantity += q;
        let g = e.per_product.entry(rec[2].to_string()).or_default();
        g.0 += 1;
        g.1 += q * p;
        g.2 += q;
    }
    e
}

fn close(a: &serde_json::Value, b: f64) -> bool {
    (a.as_f64().unwrap_or(f64::NAN) - b).abs() < 1e-6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_sample_succeeds_with_exact_summary_outputs_archive_and_notification() {
    let h = Harness::start(Config::bundled()).await;
    let data = std::fs::read(samples().join("sales.csv")).unwrap();
    let job = h.run("raw/sales.csv", data.clone()).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let e = expected_sales();
    assert_eq!((job.total_rows, job.valid_rows, job.invalid_rows), (e.rows, e.rows, 0));
    assert_eq!(job.attempts, 1);

    // Summary.
    let summary = h.json("weir-output", "reports/weir-input/raw/sales.csv.summary.json").await;
    assert_eq!(summary["total_rows"], e.rows);
    assert_eq!(summary["success_rate"], 100.0);
    assert!(close(&summary["numeric"]["revenue"]["sum"], e.revenue), "{}", summary["numeric"]["revenue"]);
    assert!(close(&summary["numeric"]["quantity"]["sum"], e.quantity));
    assert_eq!(summary["source"]["key"], "raw/sales.csv");
    for (product, (count, revenue, quantity)) in &e.per_product {
        let g = &summary["group_by"]["product"][product];
        assert_eq!(g["count"], *count, "{product}");
        assert!(close(&g["revenue"]["sum"], *revenue), "{product}: {g}");
        assert!(close(&g["quantity"]["sum"], *quantity), "{product}: {g}");
    }
    let top = summary["categorical"]["product"]["top"].as_array().unwrap();
    assert_eq!(top[0]["value"], "Widget");
    assert_eq!(top[0]["count"], 3);

    // Results: one cleaned, typed line per row, revenue derived, Thai and quoted commas intact.
    let results =
        String::from_utf8(h.read("weir-output", "processed/weir-input/raw/sales.csv.ndjson").await).unwrap();
    let rows: Vec<serde_json::Value> = results.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len() as u64, e.rows);
    assert_eq!(rows[0]["customer_name"], "สมชาย ใจดี");
    assert_eq!(rows[0]["quantity"], 2);
    assert!(close(&rows[0]["revenue"], 2.0 * 19.99));
    assert_eq!(rows[3]["customer_name"], "Doe, John");
    assert!(!h.exists("weir-output", "errors/weir-input/raw/sales.csv.errors.json"));

    // The source moved to the archive, byte for byte.
    assert!(!h.exists("weir-input", "raw/sales.csv"));
    assert_eq!(h.read("weir-archive", "raw/sales.csv").await, data);

    // Records sink: one item per row under the source's pk.
    let items = h.records.query("CSV#weir-input/raw/sales.csv", 100).await.unwrap();
    assert_eq!(items.len() as u64, e.rows);
    assert_eq!(items[0].sk, "ROW#000001");

    // Success notification with the seed's facts.
    let notes = h.notes.0.lock().unwrap().clone();
    assert_eq!(notes.len(), 1);
    let n = &notes[0];
    assert_eq!(n.topic, "success");
    assert!(n.text.contains("sales.csv") && n.text.contains(&job.job_id.to_string()), "{}", n.text);
    assert!(n.text.contains(&format!("Total revenue: {:.2}", e.revenue)), "{}", n.text);
    assert!(n.text.contains("processed/weir-input/raw/sales.csv.ndjson"));
    assert_eq!(n.attributes["status"], "succeeded");

    // The workflow path is on the job.
    let path: Vec<_> = job.steps.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(
        path,
        [
            "ValidateSchema",
            "CheckValidation",
            "TransformData",
            "ArchiveSource",
            "SendSuccessNotification",
            "ProcessingComplete"
        ]
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schema_is_rejected_moved_to_failed_with_reason_and_alerted() {
    let h = Harness::start(Config::bundled()).await;
    let job = h.run("raw/bad_schema.csv", std::fs::read(samples().join("bad_schema.csv")).unwrap()).await;
    assert_eq!(job.status, JobStatus::Rejected);
    assert!(job.error.as_deref().unwrap().contains("order_id"), "{:?}", job.error);
    let failed = job.output_keys["failed"].strip_prefix("weir-input/").unwrap().to_string();
    assert!(failed.starts_with("failed/") && failed.ends_with("/raw/bad_schema.csv"), "{failed}");
    assert!(!h.exists("weir-input", "raw/bad_schema.csv"));
    let info = h.engine.ports().objects.head("weir-input", &failed).await.unwrap();
    assert_eq!(info.metadata["job_id"], job.job_id.to_string());
    assert!(info.metadata["reason"].contains("order_id"));
    assert!(!h.exists("weir-output", "processed/weir-input/raw/bad_schema.csv.ndjson"));
    let notes = h.notes.0.lock().unwrap().clone();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].topic, "alerts");
    assert!(notes[0].text.contains("order_id") && notes[0].text.contains(&failed), "{}", notes[0].text);
    assert_eq!(notes[0].payload["missing_columns"], serde_json::json!(["order_id"]));
    let path: Vec<_> = job.steps.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(
        path,
        ["ValidateSchema", "CheckValidation", "MoveToFailed", "SendFailureNotification", "ValidationFailed"]
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_reported_with_line_field_reason_and_values() {
    let h = Harness::start(Config::bundled()).await;
    let job = h.run("raw/bad_rows.csv", std::fs::read(samples().join("bad_rows.csv")).unwrap()).await;
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!((job.total_rows, job.valid_rows, job.invalid_rows), (9, 5, 4));
    let report = h.json("weir-output", "errors/weir-input/raw/bad_rows.csv.errors.json").await;
    assert_eq!(report["invalid_rows"], 4);
    let errors = report["errors"].as_array().unwrap();
    let by_line: BTreeMap<u64, &serde_json::Value> =
        errors.iter().map(|e| (e["line"].as_u64().unwrap(), e)).collect();
    assert_eq!(by_line.keys().copied().collect::<Vec<_>>(), vec![3, 4, 6, 7]);
    assert_eq!(by_line[&3]["field"], "quantity");
    assert!(by_line[&3]["reason"].as_str().unwrap().contains("two"));
    assert_eq!(by_line[&3]["values"]["quantity"], "two");
    assert_eq!(by_line[&4]["field"], "customer_name");
    assert_eq!(by_line[&6]["field"], "quantity");
    assert_eq!(by_line[&7]["field"], "date");
    assert!(by_line[&7]["reason"].as_str().unwrap().contains("2024-02-30"));
    assert_eq!(job.output_keys["errors"], "errors/weir-input/raw/bad_rows.csv.errors.json");
    let summary = h.json("weir-output", "reports/weir-input/raw/bad_rows.csv.summary.json").await;
    assert_eq!(summary["success_rate"], 55.56);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_events_make_one_job_and_one_set_of_outputs() {
    let h = Harness::start(Config::bundled()).await;
    let data = std::fs::read(samples().join("sales.csv")).unwrap();
    let job = h.run("raw/sales.csv", data.clone()).await;
    assert_eq!(job.status, JobStatus::Succeeded);
    // The same event again (S3 delivers at least once).
    let rec = S3EventRecord::object_created(
        "Put",
        "weir-input",
        "raw/sales.csv",
        data.len() as u64,
        &job.source_etag,
        1,
        chrono::Utc::now(),
    );
    h.engine.ports().queue.send(&S3Event::single(rec).to_json()).await.unwrap();
    common::eventually("the redelivered event to be settled", || async {
        let s = h.engine.ports().queue.stats().await.unwrap();
        (s.visible + s.in_flight == 0).then_some(())
    })
    .await;
    let again = h.engine.ports().jobs.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(again.attempts, 1, "a finished job is not run again");
    assert_eq!(again.status, JobStatus::Succeeded);
    let all = h.engine.ports().jobs.list(&Default::default()).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(h.notes.0.lock().unwrap().len(), 1, "no second notification");
    assert_eq!(h.engine.ports().queue.stats().await.unwrap().visible, 0);

    // A new upload of the same key with new content is a new job.
    let mut changed = data.clone();
    changed.extend_from_slice(b"ORD-009,Eve,Widget,1,19.99,2024-01-19\n");
    let second = h.run("raw/sales.csv", changed).await;
    assert_ne!(second.job_id, job.job_id);
    assert_eq!(second.valid_rows, job.valid_rows + 1);
    h.stop().await;
}
