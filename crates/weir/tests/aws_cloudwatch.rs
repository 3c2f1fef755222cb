//! CloudWatch from `weir setup aws`, against a moto server this test starts, read back with the
//! AWS CLI: a dry run changes nothing; setup makes one alarm per `[alarms]` rule (the alerts
//! topic as action, tagged as weir's) and the dashboard, and a second run finds them all;
//! `weir alarms` shows the states CloudWatch holds; a changed rule is updated, a removed rule's
//! alarm is deleted, and an alarm weir did not make is left alone.

mod common;

use common::{aws_cli, json_lines, ok, start_moto, weir_on_moto, AWS_ENV};
use serde_json::Value;

const CUSTOM_RULE: &str = r#"
[[alarms.rule]]
name = "slow-p90"
description = "p90 job duration above 10 s"
metric = "job_duration_seconds"
statistic = "p90"
period_secs = 120
evaluation_periods = 2
threshold = 10.0
comparison = "GreaterThanThreshold"
"#;

fn alarms(endpoint: &str) -> Vec<Value> {
    aws_cli(endpoint, &["cloudwatch", "describe-alarms"])["MetricAlarms"].as_array().expect("alarms").clone()
}

fn names(alarms: &[Value]) -> Vec<String> {
    let mut names: Vec<String> =
        alarms.iter().map(|a| a["AlarmName"].as_str().expect("name").to_string()).collect();
    names.sort();
    names
}

fn alarm<'a>(alarms: &'a [Value], name: &str) -> &'a Value {
    alarms.iter().find(|a| a["AlarmName"] == name).unwrap_or_else(|| panic!("no alarm {name}"))
}

#[test]
fn setup_makes_the_alarms_and_dashboard_once_and_removes_what_the_config_dropped() {
    let (_moto, endpoint) = start_moto();
    let dir = tempfile::tempdir().expect("tempdir");
    let example = std::fs::read_to_string(common::repo().join("deploy/aws/weir.toml")).expect("example");
    let config = dir.path().join("aws.toml");
    std::fs::write(&config, format!("{example}\n{CUSTOM_RULE}")).expect("config");

    // A dry run on an empty account says what it would make and makes nothing.
    let text = ok(&weir_on_moto(&config, &endpoint, &["setup", "aws", "--dry-run"]));
    assert!(text.contains("would create  alarm         weir-events-dlq-not-empty"), "{text}");
    assert!(text.contains("would create  dashboard     weir-events"), "{text}");
    assert!(text.contains("would create  bucket        example-weir-input"), "{text}");
    assert!(text.contains("nothing changed"), "{text}");
    assert!(alarms(&endpoint).is_empty());
    let buckets = aws_cli(&endpoint, &["s3api", "list-buckets"]);
    assert_eq!(buckets["Buckets"].as_array().map_or(0, Vec::len), 0, "{buckets}");

    // Twice: everything made once.
    let first = ok(&weir_on_moto(&config, &endpoint, &["setup", "aws"]));
    assert!(first.contains("created  alarm         weir-events-slow-p90"), "{first}");
    let second = ok(&weir_on_moto(&config, &endpoint, &["setup", "aws"]));
    assert!(second.contains("0 created, 19 already there"), "{second}");
    assert!(!second.contains("updated"), "the second run changes nothing:\n{second}");

    let all = alarms(&endpoint);
    let expected = [
        "weir-events-dlq-not-empty",
        "weir-events-error-rate",
        "weir-events-queue-backlog",
        "weir-events-slow-jobs",
        "weir-events-slow-p90",
        "weir-events-stale-data",
    ];
    assert_eq!(names(&all), expected);
    let alerts_arn = "arn:aws:sns:us-east-1:123456789012:weir-alerts";
    for a in &all {
        assert_eq!(a["AlarmActions"], serde_json::json!([alerts_arn]), "{a}");
        let tags = aws_cli(
            &endpoint,
            &["cloudwatch", "list-tags-for-resource", "--resource-arn", a["AlarmArn"].as_str().expect("arn")],
        );
        assert_eq!(tags["Tags"], serde_json::json!([{"Key": "weir:queue", "Value": "weir-events"}]), "{a}");
    }
    let dlq = alarm(&all, "weir-events-dlq-not-empty");
    assert_eq!(
        (&dlq["Namespace"], &dlq["MetricName"], &dlq["Statistic"], &dlq["Threshold"]),
        (&"AWS/SQS".into(), &"ApproximateNumberOfMessagesVisible".into(), &"Maximum".into(), &1.0.into())
    );
    assert_eq!(dlq["Dimensions"], serde_json::json!([{"Name": "QueueName", "Value": "weir-events-dlq"}]));
    assert_eq!(dlq["ComparisonOperator"], "GreaterThanOrEqualToThreshold");
    let errors = alarm(&all, "weir-events-error-rate");
    assert_eq!((&errors["Namespace"], &errors["MetricName"]), (&"weir".into(), &"error_rate_percent".into()));
    let p90 = alarm(&all, "weir-events-slow-p90");
    assert_eq!(
        (&p90["MetricName"], &p90["ExtendedStatistic"], &p90["Period"], &p90["EvaluationPeriods"]),
        (&"job_duration_seconds".into(), &"p90".into(), &120.into(), &2.into())
    );
    let stale = alarm(&all, "weir-events-stale-data");
    let queries = stale["Metrics"].as_array().expect("metric math");
    assert!(
        queries.iter().any(|q| q["Expression"].as_str().is_some_and(|e| e.contains("IF(")))
            && queries.iter().any(|q| q["MetricStat"]["Metric"]["MetricName"] == "files_received_total"),
        "{stale}"
    );

    let dashboards = aws_cli(&endpoint, &["cloudwatch", "list-dashboards"]);
    assert_eq!(dashboards["DashboardEntries"].as_array().map(Vec::len), Some(1), "{dashboards}");
    let dashboard = aws_cli(&endpoint, &["cloudwatch", "get-dashboard", "--dashboard-name", "weir-events"]);
    let body: Value = serde_json::from_str(dashboard["DashboardBody"].as_str().expect("body")).expect("JSON");
    let widgets = body["widgets"].as_array().expect("widgets");
    let titles: Vec<&str> = widgets.iter().filter_map(|w| w["properties"]["title"].as_str()).collect();
    assert_eq!(
        titles,
        [
            "Files by status",
            "Rows",
            "Job duration (s)",
            "Queue and DLQ depth",
            "Notification deliveries",
            "Alarms"
        ]
    );
    let arns: Vec<&str> = all.iter().filter_map(|a| a["AlarmArn"].as_str()).collect();
    let shown = widgets[5]["properties"]["alarms"].as_array().expect("alarm widget");
    assert_eq!(shown.len(), arns.len());
    assert!(shown.iter().all(|a| arns.contains(&a.as_str().unwrap_or(""))), "{shown:?}");

    // `weir alarms` reads the states from CloudWatch.
    aws_cli(
        &endpoint,
        &[
            "cloudwatch",
            "set-alarm-state",
            "--alarm-name",
            "weir-events-dlq-not-empty",
            "--state-value",
            "ALARM",
            "--state-reason",
            "Threshold Crossed: 1 datapoint [3.0] was >= 1.0",
        ],
    );
    let states = json_lines(&weir_on_moto(&config, &endpoint, &["alarms", "--json"]));
    assert_eq!(states.len(), 6, "{states:?}");
    let dlq_state = states.iter().find(|s| s["name"] == "dlq-not-empty").expect("dlq rule");
    assert_eq!(dlq_state["state"], "ALARM");
    assert_eq!(dlq_state["reason"], "Threshold Crossed: 1 datapoint [3.0] was >= 1.0");
    // moto marks a new alarm OK, unchecked (it never evaluates alarms).
    assert!(
        states
            .iter()
            .filter(|s| s["name"] != "dlq-not-empty")
            .all(|s| s["state"] == "OK" && s["reason"] == "Unchecked: Initial alarm creation"),
        "{states:?}"
    );
    let table = ok(&weir_on_moto(&config, &endpoint, &["alarms"]));
    assert!(table.lines().any(|l| l.starts_with("dlq-not-empty") && l.contains("ALARM")), "{table}");

    // An alarm of the user's own, with weir's prefix but not its tag, is never touched.
    aws_cli(
        &endpoint,
        &[
            "cloudwatch",
            "put-metric-alarm",
            "--alarm-name",
            "weir-events-mine",
            "--namespace",
            "Mine",
            "--metric-name",
            "Things",
            "--statistic",
            "Sum",
            "--period",
            "60",
            "--evaluation-periods",
            "1",
            "--threshold",
            "1",
            "--comparison-operator",
            "GreaterThanThreshold",
        ],
    );

    // The custom rule removed and a default changed: the dry run says so and changes nothing...
    let changed = example.clone()
        + r#"
[[alarms.rule]]
name = "error-rate-strict"
metric = "error_rate_percent"
statistic = "Average"
period_secs = 60
evaluation_periods = 1
threshold = 0.5
comparison = "GreaterThanThreshold"
"#;
    std::fs::write(&config, &changed).expect("config");
    let plan = ok(&weir_on_moto(&config, &endpoint, &["setup", "aws", "--dry-run"]));
    assert!(plan.contains("would remove  alarm         weir-events-slow-p90"), "{plan}");
    assert!(plan.contains("would create  alarm         weir-events-error-rate-strict"), "{plan}");
    assert!(plan.contains("would update  dashboard     weir-events"), "{plan}");
    assert!(!plan.contains("weir-events-mine"), "{plan}");
    assert_eq!(names(&alarms(&endpoint)).len(), 7, "a dry run deletes nothing");
    // ...and the run does it.
    let text = ok(&weir_on_moto(&config, &endpoint, &["setup", "aws"]));
    assert!(text.contains("removed  alarm         weir-events-slow-p90"), "{text}");
    assert!(text.contains("1 created, 18 already there, 1 removed"), "{text}");
    let after = names(&alarms(&endpoint));
    assert!(!after.contains(&"weir-events-slow-p90".to_string()), "{after:?}");
    assert!(after.contains(&"weir-events-mine".to_string()), "{after:?}");
    assert!(after.contains(&"weir-events-error-rate-strict".to_string()), "{after:?}");
    assert_eq!(after.len(), 7, "{after:?}");
    let dashboard = aws_cli(&endpoint, &["cloudwatch", "get-dashboard", "--dashboard-name", "weir-events"]);
    let body: Value = serde_json::from_str(dashboard["DashboardBody"].as_str().expect("body")).expect("JSON");
    let shown = body["widgets"][5]["properties"]["alarms"].as_array().expect("alarm widget").clone();
    assert_eq!(shown.len(), 6, "weir's six alarms, not the user's: {shown:?}");
    assert!(shown.iter().all(|a| !a.as_str().unwrap_or("").ends_with(":weir-events-slow-p90")));

    // A rule changed in place is updated.
    std::fs::write(&config, changed.replace("threshold = 0.5", "threshold = 2.0")).expect("config");
    let text = ok(&weir_on_moto(&config, &endpoint, &["setup", "aws"]));
    assert!(text.contains("updated  alarm         weir-events-error-rate-strict"), "{text}");
    let strict = alarms(&endpoint);
    assert_eq!(alarm(&strict, "weir-events-error-rate-strict")["Threshold"], 2.0);
}

/// The Sum (or another statistic) of a metric in moto's CloudWatch over the last hour.
fn statistic(endpoint: &str, metric: &str, dimensions: &[(&str, &str)], stat: &str) -> Option<f64> {
    let now = chrono::Utc::now();
    let start = (now - chrono::Duration::hours(1)).to_rfc3339();
    let end = (now + chrono::Duration::hours(1)).to_rfc3339();
    let dims: Vec<String> = dimensions.iter().map(|(n, v)| format!("Name={n},Value={v}")).collect();
    let mut args = vec![
        "cloudwatch",
        "get-metric-statistics",
        "--namespace",
        "weir",
        "--metric-name",
        metric,
        "--start-time",
        &start,
        "--end-time",
        &end,
        "--period",
        "7200",
        "--statistics",
        stat,
    ];
    if !dims.is_empty() {
        args.push("--dimensions");
        args.extend(dims.iter().map(String::as_str));
    }
    let out = aws_cli(endpoint, &args);
    let points = out["Datapoints"].as_array().expect("datapoints");
    assert!(points.len() <= 1, "one period: {out}");
    points.first().and_then(|p| p[stat].as_f64())
}

#[test]
fn two_workers_send_their_metrics_to_cloudwatch_in_batches() {
    let (_moto, endpoint) = start_moto();
    let dir = tempfile::tempdir().expect("tempdir");
    let example = std::fs::read_to_string(common::repo().join("deploy/aws/weir.toml")).expect("example");
    // Sent only at shutdown: the test can count the calls.
    let text = example.replace("metrics_interval_secs = 60 ", "metrics_interval_secs = 3600 ");
    assert_ne!(text, example, "the example's metrics interval changed; update this test");
    let config = dir.path().join("aws.toml");
    std::fs::write(&config, text).expect("config");
    ok(&weir_on_moto(&config, &endpoint, &["setup", "aws"]));

    let workers: Vec<(common::Proc, std::path::PathBuf)> = ["w1", "w2"]
        .iter()
        .map(|name| {
            let log = dir.path().join(format!("{name}.log"));
            let file = std::fs::File::create(&log).expect("log");
            let proc = common::Proc::spawn(
                common::weir()
                    .arg("--config")
                    .arg(&config)
                    .arg("--data-dir")
                    .arg(dir.path().join(name))
                    .args(["worker", "--endpoint-url", &endpoint, "--concurrency", "2"])
                    .env("WEIR_LOG", "weir=info,weir_aws=info")
                    .envs(AWS_ENV)
                    .stdout(file.try_clone().expect("log"))
                    .stderr(file),
            );
            (proc, log)
        })
        .collect();

    let samples = common::samples();
    let files = [
        ("sales.csv", "raw/a.csv"),
        ("sales.csv", "raw/b.csv"),
        ("sales.csv", "raw/c.csv"),
        ("bad_schema.csv", "raw/bad.csv"),
    ];
    for (file, key) in files {
        let dest = format!("s3://example-weir-input/{key}");
        aws_cli(&endpoint, &["s3", "cp", "--quiet", samples.join(file).to_str().expect("path"), &dest]);
    }
    common::until("the four jobs to finish", std::time::Duration::from_secs(90), || {
        let scan = aws_cli(&endpoint, &["dynamodb", "scan", "--table-name", "weir-jobs"]);
        let done = scan["Items"]
            .as_array()?
            .iter()
            .filter_map(|i| i["job"]["S"].as_str())
            .filter_map(|j| serde_json::from_str::<Value>(j).ok())
            .filter(|j| j["source_key"].as_str().is_some_and(|k| k.starts_with("raw/")))
            .filter(|j| j["status"] == "succeeded" || j["status"] == "rejected")
            .count();
        (done == 4).then_some(())
    });
    // No metric before the interval: the workers send at shutdown.
    assert_eq!(
        statistic(&endpoint, "files_total", &[("status", "succeeded")], "Sum"),
        None,
        "nothing sent yet"
    );
    let mut sends = 0;
    for (mut proc, log) in workers {
        assert!(proc.terminate(std::time::Duration::from_secs(30)).success());
        let text = std::fs::read_to_string(&log).expect("log");
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("metrics sent to CloudWatch")).collect();
        assert!(lines.len() <= 1, "one send at shutdown at most:\n{text}");
        assert!(lines.iter().all(|l| l.contains("\"calls\":1")), "one call per send:\n{text}");
        sends += lines.len();
    }
    assert!(sends >= 1, "some worker sent metrics");

    // moto answers with every series whose dimensions include the asked ones (CloudWatch: the
    // series with exactly those), so a roll-up is what moto gives less the pipeline's series.
    let sum = |metric: &str, dims: &[(&str, &str)]| statistic(&endpoint, metric, dims, "Sum").unwrap_or(0.0);
    let rollup = |metric: &str, dim: &[(&str, &str)]| {
        let with_pipeline: Vec<(&str, &str)> =
            [("pipeline", "sales")].into_iter().chain(dim.iter().copied()).collect();
        (sum(metric, dim) - sum(metric, &with_pipeline), sum(metric, &with_pipeline))
    };
    assert_eq!(rollup("files_total", &[("status", "succeeded")]), (3.0, 3.0));
    assert_eq!(rollup("files_total", &[("status", "rejected")]), (1.0, 1.0));
    assert_eq!(rollup("files_received_total", &[]), (4.0, 4.0));
    assert_eq!(rollup("rows_total", &[("result", "valid")]), (24.0, 24.0));
    assert_eq!(rollup("rows_total", &[("result", "invalid")]), (0.0, 0.0));
    let sales = [("pipeline", "sales")];
    assert_eq!(statistic(&endpoint, "error_rate_percent", &sales, "Average"), Some(25.0));
    assert_eq!(statistic(&endpoint, "job_duration_seconds", &sales, "SampleCount"), Some(4.0));
    assert_eq!(
        statistic(&endpoint, "job_duration_seconds", &[], "SampleCount"),
        Some(8.0),
        "and the roll-up's 4"
    );

    let listed = aws_cli(&endpoint, &["cloudwatch", "list-metrics", "--namespace", "weir"]);
    let metrics = listed["Metrics"].as_array().expect("metrics");
    for name in
        ["files_total", "files_received_total", "rows_total", "job_duration_seconds", "error_rate_percent"]
    {
        assert!(
            metrics.iter().any(|m| m["MetricName"] == name
                && m["Dimensions"].as_array().is_some_and(|d| d.iter().any(|d| d["Name"] == "pipeline"))),
            "{name} with the pipeline dimension: {listed}"
        );
    }
}
