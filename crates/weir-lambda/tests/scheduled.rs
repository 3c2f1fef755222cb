//! The Lambda handler given a real EventBridge scheduled event payload (as EventBridge sends it
//! for the SAM template's `Schedule` rule `weir-<name>`) runs that schedule's work against moto:
//! here the retention sweep, which removes the job record that finished 40 days ago and keeps
//! the recent one. The same event delivered again does not run it twice.

mod lambda;

use std::time::Duration;

use lambda::Aws;
use weir_core::schedule_config::{ScheduleConfig, WorkKind};
use weir_core::{Job, JobStatus};
use weir_ports::{Begin, JobStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_event_runs_its_schedules_work_once() {
    let env = Aws::start().await;
    let sdk = &env.sdk;
    let mut config = Aws::bundled_config();
    config.retention.jobs.retention_days = Some(30);
    config.schedules = vec![ScheduleConfig {
        name: "retention-sweep".into(),
        expression: "rate(1 day)".into(),
        time_zone: None,
        work: WorkKind::RetentionSweep,
        pipeline: None,
        prefix: None,
        bucket: None,
    }];
    env.ensure(&config).await;
    let handler = env.handler(&config).await.expect("handler");

    let store = weir_aws::DynamoJobStore::new(aws_sdk_dynamodb::Client::new(sdk), "weir-jobs");
    let mut ids = Vec::new();
    for (key, days_ago) in [("raw/old.csv", 40), ("raw/recent.csv", 2)] {
        let job = Job::queued("weir-input", key, "e1", 1, Some("sales"));
        let Begin::Started(mut run) = store.begin(&job, "sales", key, Duration::from_secs(60)).await.unwrap()
        else {
            panic!("{key} starts")
        };
        run.finish(JobStatus::Succeeded, None);
        run.finished_at = Some(chrono::Utc::now() - chrono::Duration::days(days_ago));
        store.finish_run(&run, key).await.unwrap();
        ids.push(run.job_id);
    }

    let event = serde_json::json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-03-04T08:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/weir-retention-sweep"],
        "detail": {}
    });
    let answer = handler.invoke(event.clone()).await.expect("the scheduled event");
    assert_eq!(answer["schedule"], "retention-sweep", "{answer}");
    assert_eq!(answer["fired"], true, "{answer}");
    assert!(answer["outcome"].as_str().unwrap().contains("1 job records"), "{answer}");
    assert!(store.get(&ids[0]).await.unwrap().is_none(), "the 40-day-old record is still there");
    assert!(store.get(&ids[1]).await.unwrap().is_some(), "the recent record went");
    assert_eq!(store.counters().await.unwrap().get("expired_jobs"), Some(&1));

    let again = handler.invoke(event).await.expect("the same event again");
    assert_eq!(again["fired"], false, "{again}");

    // A rule that names no schedule fails the invocation (EventBridge retries, the alarm sees it).
    let stray = serde_json::json!({
        "detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-03-04T08:00:00Z",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/someone-elses"], "detail": {}
    });
    let err = handler.invoke(stray).await.expect_err("an unknown rule");
    assert!(format!("{err:#}").contains("someone-elses"), "{err:#}");
}
