//! Retention on AWS, against moto: `weir setup aws` writes the `[[retention.rule]]`s as S3
//! lifecycle rules (read back with the AWS CLI, the same after a second run) and turns on
//! DynamoDB TTL on the jobs table; a done job's item carries the expiry, a running one none.

mod common;

use std::time::Duration;

use weir_aws::setup::ensure_all;
use weir_core::config::AwsConfig;
use weir_core::schedule_config::RetentionRule;
use weir_core::{Config, Job, JobStatus};
use weir_ports::{Begin, JobStore};

fn aws_cli(moto: &common::Moto, args: &[&str]) -> serde_json::Value {
    let aws = std::env::var("WEIR_TEST_AWS")
        .unwrap_or_else(|_| common::workspace().join(".venv/bin/aws").display().to_string());
    let out = std::process::Command::new(&aws)
        .args(["--endpoint-url", &moto.endpoint, "--region", common::REGION, "--output", "json"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap_or_else(|e| panic!("running {aws}: {e}"));
    assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

fn config() -> Config {
    let mut config = Config::bundled();
    config.aws = Some(AwsConfig::default());
    config.retention.jobs.retention_days = Some(90);
    config.retention.rules = vec![
        RetentionRule {
            bucket: "weir-input".into(),
            prefix: "failed/".into(),
            expire_after_days: Some(30),
            transition_after_days: None,
            storage_class: None,
        },
        RetentionRule {
            bucket: "weir-archive".into(),
            prefix: String::new(),
            expire_after_days: Some(365),
            transition_after_days: Some(30),
            storage_class: Some("GLACIER".into()),
        },
    ];
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_writes_lifecycle_rules_and_ttl_and_done_jobs_carry_their_expiry() {
    let moto = common::Moto::start();
    let sdk = moto.sdk_config().await;
    let config = config();
    let aws = config.aws.clone().expect("set above");
    let first = ensure_all(&config, &aws, &sdk, Some(&moto.endpoint)).await.expect("setup");
    let ttl_item = first.iter().find(|i| i.kind == "table ttl").expect("a TTL step");
    assert!(ttl_item.created(), "{ttl_item}");
    let second = ensure_all(&config, &aws, &sdk, Some(&moto.endpoint)).await.expect("setup again");
    assert!(
        second.iter().all(|i| !i.created()),
        "{:?}",
        second.iter().map(ToString::to_string).collect::<Vec<_>>()
    );

    let rules = |bucket: &str| {
        aws_cli(&moto, &["s3api", "get-bucket-lifecycle-configuration", "--bucket", bucket])["Rules"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let input = rules("weir-input");
    let failed =
        input.iter().find(|r| r["ID"] == "weir-retention-0-failed_").unwrap_or_else(|| panic!("{input:#?}"));
    assert_eq!(failed["Expiration"]["Days"], 30, "{failed:#?}");
    let prefix = failed["Filter"]["Prefix"].as_str().or(failed["Prefix"].as_str());
    assert_eq!(prefix, Some("failed/"), "{failed:#?}");
    assert_eq!(input.len(), 2, "the noncurrent-version rule and the retention rule, once: {input:#?}");
    let archive = rules("weir-archive");
    let glacier =
        archive.iter().find(|r| r["ID"] == "weir-retention-0-").unwrap_or_else(|| panic!("{archive:#?}"));
    assert_eq!(glacier["Expiration"]["Days"], 365);
    assert_eq!(glacier["Transitions"][0]["Days"], 30);
    assert_eq!(glacier["Transitions"][0]["StorageClass"], "GLACIER");
    assert_eq!(rules("weir-output").len(), 1, "no retention rule names the output bucket");

    let ttl = aws_cli(&moto, &["dynamodb", "describe-time-to-live", "--table-name", "weir-jobs"]);
    assert_eq!(ttl["TimeToLiveDescription"]["TimeToLiveStatus"], "ENABLED", "{ttl:#?}");
    assert_eq!(ttl["TimeToLiveDescription"]["AttributeName"], "expires_at");

    // A done job's item expires 90 days after it finished; run again, it no longer does.
    let store = weir_aws::DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&sdk), "weir-jobs")
        .with_retention_days(Some(90));
    let job = Job::queued("weir-input", "raw/a.csv", "e1", 1, Some("sales"));
    let Begin::Started(mut run) = store.begin(&job, "sales", "r1", Duration::from_secs(60)).await.unwrap()
    else {
        panic!("starts")
    };
    let expires_at = || {
        let item = aws_cli(
            &moto,
            &[
                "dynamodb",
                "get-item",
                "--table-name",
                "weir-jobs",
                "--key",
                &serde_json::json!({"pk": {"S": format!("JOB#{}", job.job_id)}, "sk": {"S": "META"}})
                    .to_string(),
            ],
        );
        item["Item"]["expires_at"]["N"].as_str().map(|n| n.parse::<i64>().unwrap())
    };
    assert_eq!(expires_at(), None, "a running job never expires");
    run.finish(JobStatus::Succeeded, None);
    store.finish_run(&run, "r1").await.unwrap();
    let finished = run.finished_at.unwrap();
    assert_eq!(expires_at(), Some((finished + chrono::Duration::days(90)).timestamp()));
    run.start_attempt("sales");
    store.save(&run).await.unwrap();
    assert_eq!(expires_at(), None, "running again took the expiry away");
}
