//! The seed's Step Functions state machine (`ProcessCSVWorkflow`, fixtures copied unchanged
//! from the workshop), run with its Lambda ARNs mapped to weir task names and mock tasks.

mod common;

use std::sync::Arc;

use common::{failed_with, path, Func, Script, Tasks};
use serde_json::{json, Value};
use weir_workflow::{run, MappedResolver, Outcome, StateMachine, TaskError, PASS_THROUGH};

const WEEK4: &str = include_str!("fixtures/process_csv_workflow.asl.json");
const WEEK3: &str = include_str!("fixtures/process_csv_workflow_week3.asl.json");

fn aliases() -> Vec<(String, String)> {
    let arn = |f: &str| format!("arn:aws:lambda:ap-southeast-1:[ACCOUNT-ID]:function:{f}");
    vec![
        // A pattern works too (any region and account); weir:pass is the built-in pass-through:
        // weir's streaming transform does the parsing.
        ("arn:aws:lambda:*:function:parse-csv".into(), PASS_THROUGH.into()),
        (arn("validate-schema"), "weir:validate-schema".into()),
        (arn("transform-data"), "weir:transform".into()),
        (arn("move-to-failed"), "weir:move-to-failed".into()),
        (arn("send-notification"), "weir:notify".into()),
    ]
}

struct Mocks {
    transform: Arc<Script>,
    notify: Arc<Script>,
    resolver: MappedResolver<Tasks>,
}

fn mocks(transform_errors: Vec<TaskError>) -> Mocks {
    let transform = Script::new(transform_errors, |mut v: Value| {
        v["valid_rows"] = json!(8);
        v["output_key"] = json!("processed/sales.csv.ndjson");
        v
    });
    let notify = Script::new(vec![], |mut v: Value| {
        v["notified"] = json!(true);
        v
    });
    let tasks = Tasks::new()
        .with(
            "weir:validate-schema",
            Func(|mut v: Value| {
                let valid = !v["source_key"].as_str().unwrap_or_default().contains("bad_schema");
                v["schema_valid"] = json!(valid);
                Ok(v)
            }),
        )
        .with_arc("weir:transform", transform.clone())
        .with(
            "weir:move-to-failed",
            Func(|mut v: Value| {
                v["failed_key"] = json!(format!("failed/{}", v["source_key"].as_str().unwrap()));
                Ok(v)
            }),
        )
        .with_arc("weir:notify", notify.clone());
    Mocks { transform, notify, resolver: MappedResolver::new(tasks, aliases()) }
}

fn input(key: &str) -> Value {
    // The seed's test input ("STEP 5 — ทดสอบ State Machine").
    json!({
        "job_id": "test-job-001",
        "source_bucket": "pipeline-raw-demo",
        "source_key": key,
        "destination_bucket": "pipeline-processed-demo",
        "submitted_at": "2024-01-15T10:00:00"
    })
}

fn seed() -> StateMachine {
    StateMachine::from_json(WEEK4).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_seed_loads_and_every_resource_is_mapped() {
    let m = seed();
    assert_eq!(m.start_at, "ParseCSV");
    let mocks = mocks(vec![]);
    m.check_resources(|r| mocks.resolver.target(r).starts_with("weir:")).unwrap();
    assert_eq!(
        mocks.resolver.target("arn:aws:lambda:ap-southeast-1:[ACCOUNT-ID]:function:parse-csv"),
        PASS_THROUGH
    );
    // Without the mapping, weir check would name every unmapped Lambda.
    let err = m.check_resources(|r| r.starts_with("weir:")).unwrap_err();
    assert_eq!(err.problems.len(), 6, "{err}");
    assert!(err.problems.iter().any(|p| p.to_string().starts_with("/States/ParseCSV/Resource: no task")));
}

#[tokio::test]
async fn happy_path() {
    let mocks = mocks(vec![]);
    let ex = run(&seed(), &mocks.resolver, input("uploads/sample_sales.csv")).await;
    assert_eq!(ex.outcome, Outcome::Succeeded);
    assert_eq!(
        path(&ex.steps),
        [
            "ParseCSV",
            "ValidateSchema",
            "CheckValidation",
            "TransformData",
            "SendSuccessNotification",
            "ProcessingComplete"
        ]
    );
    assert!(ex.steps.iter().all(|s| s.outcome == "ok"));
    assert_eq!(ex.output["valid_rows"], 8);
    assert_eq!(ex.output["notified"], true);
    assert_eq!(ex.output["job_id"], "test-job-001");
}

#[tokio::test]
async fn schema_failure_path() {
    let mocks = mocks(vec![]);
    let ex = run(&seed(), &mocks.resolver, input("uploads/bad_schema.csv")).await;
    assert_eq!(failed_with(&ex.outcome), Some("ValidationFailed"));
    assert!(matches!(&ex.outcome, Outcome::Failed { cause, .. } if cause == "Schema validation failed"));
    assert_eq!(
        path(&ex.steps),
        [
            "ParseCSV",
            "ValidateSchema",
            "CheckValidation",
            "MoveToFailed",
            "SendFailureNotification",
            "ValidationFailed"
        ]
    );
    assert_eq!(ex.output["failed_key"], "failed/uploads/bad_schema.csv");
    assert_eq!(mocks.transform.call_count(), 0);
    assert_eq!(mocks.notify.call_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn transient_failure_recovered_by_retry() {
    // TransformData retries States.ALL twice, 5 s then 10 s apart.
    let mocks = mocks(vec![TaskError::transient("Weir.Unavailable", "disk busy")]);
    let ex = run(&seed(), &mocks.resolver, input("uploads/sample_sales.csv")).await;
    assert_eq!(ex.outcome, Outcome::Succeeded);
    assert_eq!(mocks.transform.gaps(), [5]);
    let transform = ex.steps.iter().find(|s| s.state == "TransformData").unwrap();
    assert_eq!((transform.outcome.as_str(), transform.retries), ("ok", 1));
    assert_eq!(path(&ex.steps).last(), Some(&"ProcessingComplete"));
}

#[tokio::test(start_paused = true)]
async fn exhausted_retry_is_caught() {
    let errors = vec![TaskError::transient("Weir.Unavailable", "disk gone"); 3];
    let mocks = mocks(errors);
    let ex = run(&seed(), &mocks.resolver, input("uploads/sample_sales.csv")).await;
    assert_eq!(mocks.transform.gaps(), [5, 10], "MaxAttempts 2 with BackoffRate 2");
    assert_eq!(
        path(&ex.steps),
        ["ParseCSV", "ValidateSchema", "CheckValidation", "TransformData", "HandleError"]
    );
    let transform = &ex.steps[3];
    assert_eq!((transform.outcome.as_str(), transform.retries), ("Weir.Unavailable", 2));
    assert_eq!(failed_with(&ex.outcome), Some("ProcessingError"));
    // The Catch put the error into $.error of the state's input.
    assert_eq!(ex.output["error"], json!({"Error": "Weir.Unavailable", "Cause": "disk gone"}));
    assert_eq!(ex.output["job_id"], "test-job-001");
}

#[tokio::test]
async fn week3_definition_runs_too() {
    let m = StateMachine::from_json(WEEK3).unwrap_or_else(|e| panic!("{e}"));
    let mocks = mocks(vec![]);
    let ex = run(&m, &mocks.resolver, input("uploads/sample_sales.csv")).await;
    assert_eq!(ex.outcome, Outcome::Succeeded);
    assert_eq!(
        path(&ex.steps),
        ["ParseCSV", "ValidateSchema", "CheckValidation", "TransformData", "ProcessingComplete"]
    );
    let ex = run(&m, &mocks.resolver, input("uploads/bad_schema.csv")).await;
    assert_eq!(failed_with(&ex.outcome), Some("ValidationFailed"));
}
