//! The Lambda handler's metrics: a batch of a good and a bad-schema file (moto's S3
//! notifications, received as Lambda's event source mapping does) turns into CloudWatch embedded
//! metric format lines, each checked against the format's specification (the `_aws` metadata
//! with an epoch-milliseconds `Timestamp` and `CloudWatchMetrics` directives whose dimensions
//! and metrics name members of the document), and adding up to the batch's files and rows.

mod lambda;

use std::io::Write;
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::SqsEvent;
use lambda::Aws;
use serde_json::Value;

/// What the handler writes, kept for the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// CloudWatch's units (`StandardUnit`).
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks one document against the EMF specification; panics saying what is wrong.
fn validate_emf(doc: &Value, now_ms: i64) {
    let root = doc.as_object().unwrap_or_else(|| panic!("not an object: {doc}"));
    let aws = root.get("_aws").and_then(Value::as_object).unwrap_or_else(|| panic!("no _aws: {doc}"));
    let ts = aws.get("Timestamp").and_then(Value::as_i64).unwrap_or_else(|| panic!("Timestamp: {doc}"));
    assert!((now_ms - 60_000..=now_ms + 1_000).contains(&ts), "Timestamp in ms of now: {doc}");
    let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).expect("CloudWatchMetrics");
    assert!(!directives.is_empty(), "{doc}");
    for d in directives {
        let ns = d["Namespace"].as_str().unwrap_or_else(|| panic!("Namespace: {doc}"));
        assert!(!ns.is_empty() && ns.len() <= 255 && ns == "weir", "{doc}");
        let sets = d["Dimensions"].as_array().unwrap_or_else(|| panic!("Dimensions: {doc}"));
        for set in sets {
            let set = set.as_array().unwrap_or_else(|| panic!("a dimension set is an array: {doc}"));
            assert!(set.len() <= 30, "{doc}");
            for key in set {
                let key = key.as_str().unwrap_or_else(|| panic!("dimension names are strings: {doc}"));
                assert!(
                    root.get(key).is_some_and(Value::is_string),
                    "dimension {key} is a string member: {doc}"
                );
            }
        }
        let metrics = d["Metrics"].as_array().unwrap_or_else(|| panic!("Metrics: {doc}"));
        assert!(!metrics.is_empty() && metrics.len() <= 100, "{doc}");
        for m in metrics {
            let name = m["Name"].as_str().unwrap_or_else(|| panic!("Name: {doc}"));
            assert!(!name.is_empty() && name.len() <= 255, "{doc}");
            let value = root.get(name).unwrap_or_else(|| panic!("metric {name} is a member: {doc}"));
            assert!(value.is_number(), "{name} is a number: {doc}");
            if let Some(unit) = m.get("Unit") {
                assert!(UNITS.contains(&unit.as_str().unwrap_or("")), "{name}'s unit: {doc}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_writes_valid_embedded_metric_format_lines() {
    let env = Aws::start().await;
    let config = Aws::bundled_config();
    let aws = config.aws.clone().expect("set above");
    env.ensure(&config).await;
    let captured = Captured::default();
    let metrics = Arc::new(weir_aws::metrics::EmfMetrics::new(Box::new(captured.clone())));
    let handler = weir_lambda::Handler::open_with_metrics(
        config.clone(),
        &env.sdk,
        Some(&env.moto.endpoint),
        env.dir.path().join("tmp"),
        metrics,
    )
    .await
    .expect("handler");

    env.upload(&[("sales.csv", "raw/sales.csv", "STANDARD"), ("bad_schema.csv", "raw/bad.csv", "STANDARD")]);
    // The two object events (and S3's test event).
    let records = env.receive(&aws.queue, |r| lambda::object_events(r) >= 2).await;
    let event: SqsEvent = serde_json::from_value(serde_json::json!({ "Records": records })).expect("event");
    let answer = serde_json::to_value(handler.handle(event).await).expect("JSON");
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));

    let now = chrono::Utc::now().timestamp_millis();
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).expect("UTF-8");
    let docs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a line that is not JSON ({e}): {l}")))
        .collect();
    for doc in &docs {
        validate_emf(doc, now);
        assert_eq!(doc["pipeline"], "sales", "{doc}");
    }
    // What the lines add up to, per metric and dimension value.
    let total = |metric: &str, dim: Option<(&str, &str)>| -> f64 {
        docs.iter().filter(|d| dim.is_none_or(|(k, v)| d[k] == v)).filter_map(|d| d[metric].as_f64()).sum()
    };
    assert_eq!(total("files_received_total", None), 2.0);
    assert_eq!(total("files_total", Some(("status", "succeeded"))), 1.0);
    assert_eq!(total("files_total", Some(("status", "rejected"))), 1.0);
    assert_eq!(total("rows_total", Some(("result", "valid"))), 8.0);
    assert_eq!(total("error_rate_percent", None), 100.0, "one of two finished jobs was rejected");
    let durations: Vec<&Value> = docs.iter().filter(|d| d.get("job_duration_seconds").is_some()).collect();
    assert_eq!(durations.len(), 2);
    for d in durations {
        let directive = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Dimensions"], serde_json::json!([["pipeline"], []]), "{d}");
        assert!(directive["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .any(|m| m["Name"] == "job_duration_seconds" && m["Unit"] == "Seconds"));
    }
}
