//! Outputs where the user wants them: key templates per output, and several result formats
//! from one pass, end to end through the embedded pipeline. Parquet is read back by pyarrow
//! (from the `.venv` that `scripts/test` installs, or `WEIR_TEST_PYTHON`).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use common::{fast_config, samples, Harness};
use serde_json::Value;
use weir_core::config::{AlsoResults, OutputFormat};
use weir_core::JobStatus;
use weir_pipeline::faults::{Fault, FaultPlan};

fn python() -> PathBuf {
    let python = std::env::var_os("WEIR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python")));
    let ok = Command::new(&python).args(["-c", "import pyarrow.parquet"]).status().is_ok_and(|s| s.success());
    assert!(ok, "{} cannot import pyarrow: run scripts/test or set WEIR_TEST_PYTHON", python.display());
    python
}

/// The rows of a Parquet file as JSON objects, by pyarrow.
fn parquet_rows(path: &std::path::Path) -> Vec<Value> {
    let script = "import json,sys\nimport pyarrow.parquet as pq\n\
                  rows=pq.read_table(sys.argv[1]).to_pylist()\n\
                  print(json.dumps([{k:(v.isoformat() if hasattr(v,'isoformat') else v) for k,v in r.items()} for r in rows]))";
    let out = Command::new(python()).args(["-c", script]).arg(path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A sales CSV of `n` rows, every tenth one invalid (`quantity` not a number).
fn sales(n: usize) -> String {
    let mut csv = String::from("order_id,customer_name,product,quantity,price,date\n");
    for i in 0..n {
        let qty = if i % 10 == 9 { "many".to_string() } else { (1 + i % 5).to_string() };
        csv.push_str(&format!(
            "O{i},Customer {i},P{},{qty},{}.25,2024-03-{:02}\n",
            i % 3,
            i % 40,
            1 + i % 28
        ));
    }
    csv
}

/// NDJSON and Parquet from one pass, for a small file (in memory) and a large one (streamed):
/// the same valid rows in both, both listed in the summary and in the job's output keys, the
/// records sink loaded from the NDJSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_and_parquet_from_one_pass_hold_the_same_rows() {
    let mut config = fast_config();
    config.pipelines[0].output.also = vec![AlsoResults {
        format: OutputFormat::Parquet,
        key: Some("curated/{yyyy}/{mm}/{dd}/{stem}-{job_id}.parquet".into()),
    }];
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    let h = Harness::start(config).await;
    for (key, rows) in [("raw/small.csv", 20), ("raw/large.csv", 3000)] {
        let job = h.run(key, sales(rows)).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
        let valid = rows - rows / 10;
        assert_eq!(job.valid_rows, valid as u64);
        let ndjson_key = &job.output_keys["results"];
        assert_eq!(ndjson_key, &format!("processed/weir-input/{key}.ndjson"));
        let parquet_key = &job.output_keys["results.parquet"];
        let stem = key.trim_start_matches("raw/").trim_end_matches(".csv");
        let date = job.created_at.format("%Y/%m/%d");
        assert_eq!(parquet_key, &format!("curated/{date}/{stem}-{}.parquet", job.job_id));

        let ndjson: Vec<Value> = String::from_utf8(h.read("weir-output", ndjson_key).await)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let parquet = parquet_rows(&h.dir.path().join("weir-output").join(parquet_key));
        assert_eq!(ndjson.len(), valid);
        assert_eq!(parquet.len(), valid);
        for (a, b) in ndjson.iter().zip(&parquet) {
            for field in ["order_id", "customer_name", "product", "quantity", "date"] {
                assert_eq!(a[field], b[field], "{field} of {a} and {b}");
            }
            let (pa, pb) = (a["price"].as_f64().unwrap(), b["price"].as_f64().unwrap());
            assert!((pa - pb).abs() < 1e-9, "{a} {b}");
        }

        let summary = h.json("weir-output", &job.output_keys["summary"]).await;
        let listed: Vec<(&str, &str)> = summary["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["format"].as_str().unwrap(), r["key"].as_str().unwrap()))
            .collect();
        assert_eq!(listed, [("ndjson", ndjson_key.as_str()), ("parquet", parquet_key.as_str())]);
        assert_eq!(summary["valid_rows"], valid);
    }
    h.stop().await;
}

/// Seed 003's layout: one bucket, sources under `raw-data/`, processed ones moved to
/// `processed-data/`, rejected ones to `failed-data/`, outputs under `results/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bucket_with_raw_processed_and_failed_folders() {
    let mut config = fast_config();
    config.buckets.input = "pipeline-data".into();
    config.buckets.output = "pipeline-data".into();
    config.buckets.archive = "pipeline-data".into();
    config.pipelines.truncate(1);
    let p = &mut config.pipelines[0];
    p.source.prefix = "raw-data/".into();
    p.output.results_key = Some("results/{dir}/{name}.ndjson".into());
    p.output.summary_key = Some("results/{dir}/{name}.summary.json".into());
    p.output.errors_key = Some("results/{dir}/{name}.errors.json".into());
    p.output.archive_key = Some("processed-data/{key}".into());
    p.output.failed_key = Some("failed-data/{yyyy}-{mm}-{dd}/{key}".into());
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    let h = Harness::start(config).await;

    let good = h.run("raw-data/orders.csv", std::fs::read(samples().join("sales.csv")).unwrap()).await;
    assert_eq!(good.status, JobStatus::Succeeded, "{good:?}");
    assert_eq!(good.output_keys["results"], "results/raw-data/orders.csv.ndjson");
    assert_eq!(good.output_keys["archive"], "pipeline-data/processed-data/raw-data/orders.csv");
    assert!(h.exists("pipeline-data", "results/raw-data/orders.csv.summary.json"));
    assert!(h.exists("pipeline-data", "processed-data/raw-data/orders.csv"));
    assert!(!h.exists("pipeline-data", "raw-data/orders.csv"));

    let bad = h.run("raw-data/broken.csv", std::fs::read(samples().join("bad_schema.csv")).unwrap()).await;
    assert_eq!(bad.status, JobStatus::Rejected, "{bad:?}");
    let failed = format!("failed-data/{}/raw-data/broken.csv", bad.created_at.format("%Y-%m-%d"));
    assert_eq!(bad.output_keys["failed"], format!("pipeline-data/{failed}"));
    assert!(h.exists("pipeline-data", &failed));
    // Nothing weir wrote into the bucket became a job of its own.
    let jobs = h.engine.ports().jobs.list(&Default::default()).await.unwrap();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    h.stop().await;
}

/// A source whose templated key would pass S3's 1024 bytes fails with that reason (not a
/// panic), and other files go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_too_long_for_s3_is_that_files_error() {
    let mut config = fast_config();
    let deep = ["a-rather-long-folder-name-for-archiving"; 24].join("/");
    config.pipelines[0].output.results_key = Some(format!("{deep}/{{key}}.ndjson"));
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    let h = Harness::start(config).await;
    let long = format!("raw/{}.csv", "n".repeat(150));
    let job = h.run(&long, std::fs::read(samples().join("sales.csv")).unwrap()).await;
    assert_ne!(job.status, JobStatus::Succeeded);
    let error = job.error.clone().unwrap_or_default();
    assert!(error.contains("no output key can be made") && error.contains("1024"), "{job:?}");
    let ok = h.run("raw/short.csv", std::fs::read(samples().join("sales.csv")).unwrap()).await;
    assert_eq!(ok.status, JobStatus::Succeeded, "{ok:?}");
    h.stop().await;
}

/// Fails every store of a Parquet result.
struct ParquetStoreFails;

impl FaultPlan for ParquetStoreFails {
    fn decide(&self, op: &'static str, detail: &str) -> Option<Fault> {
        (op.starts_with("objects.put") && detail.ends_with(".parquet")).then_some(Fault::Before)
    }
}

/// When one format's result cannot be stored, the job fails as a whole: retried, then
/// dead-lettered as `failed`, with no summary written (the summary is stored last, and is what
/// says a job's outputs are complete).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_format_failing_fails_the_job_and_writes_no_summary() {
    let mut config = fast_config();
    config.pipelines[0].output.also = vec![AlsoResults { format: OutputFormat::Parquet, key: None }];
    let h =
        Harness::start_with(config, |ports| weir_pipeline::faults::wrap(ports, Arc::new(ParquetStoreFails)))
            .await;
    let job = h.run("raw/s.csv", sales(50)).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    assert!(job.attempts >= 2, "{job:?}");
    assert!(!h.exists("weir-output", "reports/weir-input/raw/s.csv.summary.json"));
    assert!(!h.exists("weir-output", "processed/weir-input/raw/s.csv.parquet"));
    assert!(!job.output_keys.contains_key("archive"), "{job:?}");
    h.stop().await;
}
