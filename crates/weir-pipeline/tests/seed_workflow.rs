//! The AWS design's Step Functions definition (`ProcessCSVWorkflow`, as the workshop wrote
//! it) run by the embedded pipeline, unchanged apart from `[pipeline.workflow] resources`.

mod common;

use std::path::PathBuf;

use common::{samples, Harness};
use weir_core::{Config, JobStatus};

fn seed_config() -> Config {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../weir-workflow/tests/fixtures/process_csv_workflow.asl.json");
    let mut config = Config::bundled();
    let workflow = &mut config.pipelines[0].workflow;
    workflow.file = Some(file);
    let arn = |f: &str| format!("arn:aws:lambda:ap-southeast-1:[ACCOUNT-ID]:function:{f}");
    workflow.resources = [
        (arn("parse-csv"), "weir:pass"),
        (arn("validate-schema"), "weir:validate-schema"),
        (arn("transform-data"), "weir:transform"),
        (arn("move-to-failed"), "weir:move-to-failed"),
        (arn("send-notification"), "weir:notify"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect();
    config
}

fn path(job: &weir_core::Job) -> Vec<&str> {
    job.steps.iter().map(|s| s.state.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_workflow_processes_a_good_file() {
    let h = Harness::start(seed_config()).await;
    let job = h.run("raw/sales.csv", std::fs::read(samples().join("sales.csv")).unwrap()).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(
        path(&job),
        [
            "ParseCSV",
            "ValidateSchema",
            "CheckValidation",
            "TransformData",
            "SendSuccessNotification",
            "ProcessingComplete"
        ]
    );
    assert!(job.valid_rows > 0);
    assert!(h.exists("weir-output", "processed/weir-input/raw/sales.csv.ndjson"));
    let notes = h.notes.0.lock().unwrap().clone();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].topic, "success");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_workflow_rejects_a_bad_header() {
    let h = Harness::start(seed_config()).await;
    let job = h.run("raw/bad_schema.csv", std::fs::read(samples().join("bad_schema.csv")).unwrap()).await;
    assert_eq!(job.status, JobStatus::Rejected, "{job:?}");
    assert_eq!(
        path(&job),
        [
            "ParseCSV",
            "ValidateSchema",
            "CheckValidation",
            "MoveToFailed",
            "SendFailureNotification",
            "ValidationFailed"
        ]
    );
    assert!(!h.exists("weir-input", "raw/bad_schema.csv"), "moved to failed/");
    let notes = h.notes.0.lock().unwrap().clone();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].topic, "alerts");
    h.stop().await;
}

#[test]
fn an_unmapped_lambda_is_refused_at_start() {
    let mut config = seed_config();
    config.pipelines[0].workflow.resources.clear();
    let problem = weir_pipeline::workflow::load(&config.pipelines[0]).unwrap_err().to_string();
    assert!(problem.contains("/States/ParseCSV/Resource: no task"), "{problem}");
}
