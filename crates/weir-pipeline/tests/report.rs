//! The daily report on the embedded backend (SQLite job store, folders, the SQLite queue and
//! outbox): a day of jobs seeded with known outcomes, some the day before and one a second
//! after midnight, gives exact figures and day-over-day changes; the report reaches a real SMTP
//! server on loopback as an HTML email with a plain-text part, and a webhook as a link with the
//! headline figures.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_core::config::{NotifyConfig, SmtpSecurity, SubscriptionConfig, SubscriptionKind, WebhookFormat};
use weir_core::event::{S3Event, S3EventRecord};
use weir_core::summary::{GroupStats, NumericStats};
use weir_core::{Config, Job, JobStatus, Summary};
use weir_pipeline::report::{
    list_reports, read_report, run_daily, AlarmChange, DailyOptions, ReportDocument,
};
use weir_ports::{Metadata, Ports};

fn at(date: NaiveDate, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(h, m, s).unwrap())
}

/// One seeded job: what the store would hold after the pipeline ran it.
struct Seed {
    key: &'static str,
    pipeline: &'static str,
    status: JobStatus,
    created: DateTime<Utc>,
    duration_ms: u64,
    size: u64,
    rows: (u64, u64),
    error: Option<&'static str>,
    summary: Option<Summary>,
}

fn stats(sum: f64, count: u64) -> NumericStats {
    NumericStats { count, min: 0.0, max: sum, sum, avg: sum / count.max(1) as f64 }
}

/// A sales summary: per product (rows, revenue, quantity), and rows invalid on `quantity`.
fn sales_summary(products: &[(&str, u64, f64, f64)], invalid_quantity: u64) -> Summary {
    let mut groups = BTreeMap::new();
    let (mut rows, mut revenue) = (0, 0.0);
    for (p, count, rev, qty) in products {
        rows += count;
        revenue += rev;
        groups.insert(
            p.to_string(),
            GroupStats {
                count: *count,
                fields: BTreeMap::from([
                    ("revenue".into(), stats(*rev, *count)),
                    ("quantity".into(), stats(*qty, *count)),
                ]),
            },
        );
    }
    let mut s = Summary {
        total_rows: rows + invalid_quantity,
        valid_rows: rows,
        invalid_rows: invalid_quantity,
        ..Summary::default()
    };
    s.group_by.insert("product".into(), groups);
    s.numeric.insert("revenue".into(), stats(revenue, rows));
    if invalid_quantity > 0 {
        s.errors_by_field.insert("quantity".into(), invalid_quantity);
    }
    s
}

async fn seed(ports: &Ports, config: &Config, seeds: Vec<Seed>) {
    ports.objects.create_bucket(&config.buckets.output).await.unwrap();
    for s in seeds {
        let bucket = "weir-input";
        let mut job = Job::queued(bucket, s.key, &format!("etag-{}", s.key), s.size, Some(s.pipeline));
        job.created_at = s.created;
        job.status = s.status;
        (job.valid_rows, job.invalid_rows) = s.rows;
        job.total_rows = s.rows.0 + s.rows.1;
        job.error = s.error.map(str::to_owned);
        job.attempts = 1;
        if s.status.is_terminal() {
            job.started_at = Some(s.created);
            job.finished_at = Some(s.created + chrono::Duration::milliseconds(s.duration_ms as i64));
            job.duration_ms = Some(s.duration_ms);
        }
        if let Some(summary) = &s.summary {
            let key = weir_core::keys::OutputKeys::for_source(bucket, s.key, "ndjson").summary;
            ports
                .objects
                .put(
                    &config.buckets.output,
                    &key,
                    Bytes::from(serde_json::to_vec(summary).unwrap()),
                    Metadata::new(),
                )
                .await
                .unwrap();
            job.output_keys.insert("summary".into(), key);
        }
        ports.jobs.save(&job).await.unwrap();
    }
}

/// A message for `key` in the dead-letter queue; returns the day it was dead-lettered on.
async fn dead_letter(ports: &Ports, key: &str) -> NaiveDate {
    let record =
        S3EventRecord::object_created("ObjectCreated:Put", "weir-input", key, 100, "e", 1, Utc::now());
    ports.queue.send(&S3Event::single(record).to_json()).await.unwrap();
    let got = ports.queue.receive(1, Duration::from_secs(5)).await.unwrap();
    ports.queue.dead_letter(&got[0].receipt_handle).await.unwrap();
    ports.queue.dlq_list(10).await.unwrap()[0].dead_lettered_at.date_naive()
}

fn j<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, p| match p.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => &v[p],
    })
}

#[track_caller]
fn eq(v: &Value, path: &str, want: Value) {
    assert_eq!(j(v, path), &want, "{path} in {}", serde_json::to_string_pretty(v).unwrap());
}

/// The day the test reports on: the day its dead letter is dead-lettered on (today, UTC), so
/// the queue's own clock can put it in the day.
async fn seeded_day(ports: &Ports, config: &Config) -> NaiveDate {
    let day = dead_letter(ports, "raw/x.csv").await;
    let before = day.pred_opt().unwrap();
    let after = day.succ_opt().unwrap();
    let xss = "retries exhausted: <script>alert(1)</script>";
    let schema = "header does not match the schema: missing column price";
    let seeds = vec![
        // The day.
        Seed {
            key: "raw/a.csv",
            pipeline: "sales",
            status: JobStatus::Succeeded,
            created: at(day, 1, 10, 0),
            duration_ms: 120,
            size: 1000,
            rows: (10, 0),
            error: None,
            summary: Some(sales_summary(&[("A", 6, 60.0, 6.0), ("B", 4, 40.0, 8.0)], 0)),
        },
        Seed {
            key: "raw/b.csv",
            pipeline: "sales",
            status: JobStatus::Succeeded,
            created: at(day, 1, 20, 0),
            duration_ms: 80,
            size: 3000,
            rows: (4, 1),
            error: None,
            summary: Some(sales_summary(&[("A", 4, 40.5, 4.0)], 1)),
        },
        Seed {
            key: "raw/2031/c.csv",
            pipeline: "sales",
            status: JobStatus::Succeeded,
            created: at(day, 13, 0, 0),
            duration_ms: 400,
            size: 500,
            rows: (2, 0),
            error: None,
            summary: Some(sales_summary(&[("C", 2, 7.0, 1.0)], 0)),
        },
        Seed {
            key: "raw/bad.csv",
            pipeline: "sales",
            status: JobStatus::Rejected,
            created: at(day, 13, 30, 0),
            duration_ms: 10,
            size: 200,
            rows: (0, 0),
            error: Some(schema),
            summary: None,
        },
        Seed {
            key: "raw/bad2.csv",
            pipeline: "sales",
            status: JobStatus::Rejected,
            created: at(day, 14, 0, 0),
            duration_ms: 12,
            size: 250,
            rows: (0, 0),
            error: Some(schema),
            summary: None,
        },
        Seed {
            key: "raw/x.csv",
            pipeline: "sales",
            status: JobStatus::Failed,
            created: at(day, 15, 0, 0),
            duration_ms: 5000,
            size: 100,
            rows: (0, 0),
            error: Some(xss),
            summary: None,
        },
        Seed {
            key: "images/p.jpg",
            pipeline: "images",
            status: JobStatus::Succeeded,
            created: at(day, 9, 0, 0),
            duration_ms: 300,
            size: 9000,
            rows: (0, 0),
            error: None,
            summary: None,
        },
        Seed {
            key: "raw/late.csv",
            pipeline: "sales",
            status: JobStatus::Queued,
            created: at(day, 23, 59, 59),
            duration_ms: 0,
            size: 10,
            rows: (0, 0),
            error: None,
            summary: None,
        },
        // The day after: not in the report.
        Seed {
            key: "raw/next.csv",
            pipeline: "sales",
            status: JobStatus::Succeeded,
            created: at(after, 0, 0, 0),
            duration_ms: 1,
            size: 1,
            rows: (99, 0),
            error: None,
            summary: None,
        },
        // The day before; y3 was received before midnight and finished after it.
        Seed {
            key: "raw/y1.csv",
            pipeline: "sales",
            status: JobStatus::Succeeded,
            created: at(before, 10, 0, 0),
            duration_ms: 100,
            size: 700,
            rows: (3, 0),
            error: None,
            summary: Some(sales_summary(&[("A", 3, 30.0, 3.0)], 0)),
        },
        Seed {
            key: "raw/y2.csv",
            pipeline: "sales",
            status: JobStatus::Rejected,
            created: at(before, 11, 0, 0),
            duration_ms: 20,
            size: 70,
            rows: (0, 0),
            error: Some(schema),
            summary: None,
        },
        Seed {
            key: "raw/y3.csv",
            pipeline: "sales",
            status: JobStatus::Succeeded,
            created: at(before, 23, 59, 0),
            duration_ms: 90_000,
            size: 70,
            rows: (2, 0),
            error: None,
            summary: None,
        },
    ];
    seed(ports, config, seeds).await;
    day
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_day_gives_exact_figures_and_day_over_day_changes() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::bundled();
    let ports = weir_backends::open_embedded(
        &config,
        dir.path(),
        weir_backends::local_secrets(std::time::Duration::from_secs(300)),
    )
    .unwrap();
    let day = seeded_day(&ports, &config).await;
    let alarms = vec![
        AlarmChange {
            at: at(day, 15, 1, 0),
            alarm: "error-rate".into(),
            from: "OK".into(),
            to: "ALARM".into(),
            reason: "3 of 3 <b>datapoints</b>".into(),
        },
        AlarmChange {
            at: at(day.pred_opt().unwrap(), 3, 0, 0),
            alarm: "dlq".into(),
            from: "OK".into(),
            to: "ALARM".into(),
            reason: "yesterday".into(),
        },
    ];
    let options = DailyOptions { alarm_changes: Some(alarms), ..DailyOptions::default() };
    let record = run_daily(&ports, &config, day, &options).await.unwrap();
    assert_eq!(record.html_key, format!("reports/{day}/daily_report.html"));
    assert_eq!(record.bucket, "weir-output");
    assert_eq!(record.published_to, ["alerts"]);

    let json =
        read_report(&ports, &config, day, None, ReportDocument::Json).await.unwrap().expect("the JSON twin");
    let r: Value = serde_json::from_slice(&json).unwrap();
    eq(&r, "date", Value::from(day.to_string()));
    // Files received on the day (late.csv at 23:59:59 in, next.csv at 00:00:00 the next day out).
    eq(
        &r,
        "day.files",
        serde_json::json!({"received": 8, "succeeded": 4, "rejected": 2, "failed": 1, "in_progress": 1, "skipped": 0}),
    );
    eq(&r, "day.success_rate", Value::from(57.14));
    eq(&r, "day.rows", serde_json::json!({"total": 17, "valid": 16, "invalid": 1}));
    eq(&r, "day.bytes_received", Value::from(14_060));
    // Durations of the 7 finished: 10 12 80 120 300 400 5000.
    eq(&r, "day.durations", serde_json::json!({"count": 7, "p50_ms": 120, "p99_ms": 5000, "max_ms": 5000}));
    eq(
        &r,
        "previous.files",
        serde_json::json!({"received": 3, "succeeded": 2, "rejected": 1, "failed": 0, "in_progress": 0, "skipped": 0}),
    );
    eq(&r, "previous.success_rate", Value::from(66.67));
    // Day over day.
    eq(
        &r,
        "headline.received",
        serde_json::json!({"value": 8.0, "previous": 3.0, "change": 5.0, "change_percent": 166.67}),
    );
    eq(
        &r,
        "headline.succeeded",
        serde_json::json!({"value": 4.0, "previous": 2.0, "change": 2.0, "change_percent": 100.0}),
    );
    eq(
        &r,
        "headline.failed",
        serde_json::json!({"value": 1.0, "previous": 0.0, "change": 1.0, "change_percent": null}),
    );
    eq(
        &r,
        "headline.success_rate",
        serde_json::json!({"value": 57.14, "previous": 66.67, "change": -9.53, "change_percent": -14.29}),
    );
    eq(
        &r,
        "headline.rows_valid",
        serde_json::json!({"value": 16.0, "previous": 5.0, "change": 11.0, "change_percent": 220.0}),
    );
    eq(
        &r,
        "headline.duration_p99_ms",
        serde_json::json!({"value": 5000.0, "previous": 90000.0, "change": -85000.0, "change_percent": -94.44}),
    );
    eq(
        &r,
        "headline.dead_letters",
        serde_json::json!({"value": 1.0, "previous": 0.0, "change": 1.0, "change_percent": null}),
    );
    // Per pipeline and per prefix.
    eq(&r, "day.pipelines.0.name", Value::from("sales"));
    eq(&r, "day.pipelines.0.files.received", Value::from(7));
    eq(&r, "day.pipelines.0.success_rate", Value::from(50.0));
    eq(
        &r,
        "day.pipelines.1",
        serde_json::json!({"name": "images", "files": {"received": 1, "succeeded": 1, "rejected": 0, "failed": 0, "in_progress": 0, "skipped": 0}, "success_rate": 100.0, "rows": {"total": 0, "valid": 0, "invalid": 0}, "bytes": 9000}),
    );
    let prefixes: Vec<(String, u64)> = r["day"]["prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["files"]["received"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        prefixes,
        [
            ("weir-input/raw/".to_string(), 6),
            ("weir-input/images/".into(), 1),
            ("weir-input/raw/2031/".into(), 1)
        ]
    );
    // Reasons with their examples, most frequent first.
    eq(
        &r,
        "day.rejection_reasons.0.reason",
        Value::from("header does not match the schema: missing column price"),
    );
    eq(&r, "day.rejection_reasons.0.count", Value::from(2));
    let examples: Vec<&str> = r["day"]["rejection_reasons"][0]["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(examples, ["raw/bad.csv", "raw/bad2.csv"]);
    eq(&r, "day.rejection_reasons.1.count", Value::from(1));
    eq(&r, "day.row_errors.0.reason", Value::from("quantity"));
    eq(&r, "day.row_errors.0.count", Value::from(1));
    eq(&r, "day.row_errors.0.examples.0.key", Value::from("raw/b.csv"));
    // The business aggregates summed over the day's three succeeded sales files.
    eq(&r, "day.aggregates.0.pipeline", Value::from("sales"));
    eq(&r, "day.aggregates.0.files", Value::from(3));
    eq(
        &r,
        "day.aggregates.0.groups",
        serde_json::json!([
            {"value": "A", "rows": 10, "sums": {"quantity": 10.0, "revenue": 100.5}},
            {"value": "B", "rows": 4, "sums": {"quantity": 8.0, "revenue": 40.0}},
            {"value": "C", "rows": 2, "sums": {"quantity": 1.0, "revenue": 7.0}},
        ]),
    );
    eq(&r, "day.totals.0.fields.revenue", serde_json::json!({"count": 16, "sum": 147.5}));
    eq(
        &r,
        "previous.aggregates.0.groups",
        serde_json::json!([{"value": "A", "rows": 3, "sums": {"quantity": 3.0, "revenue": 30.0}}]),
    );
    // Slowest and largest.
    let keys = |list: &str| -> Vec<String> {
        r["day"][list]
            .as_array()
            .unwrap()
            .iter()
            .take(3)
            .map(|f| f["key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(keys("slowest"), ["raw/x.csv", "raw/2031/c.csv", "images/p.jpg"]);
    assert_eq!(keys("largest"), ["images/p.jpg", "raw/b.csv", "raw/a.csv"]);
    // Dead letters and alarm changes of the day.
    eq(&r, "day.dead_letters", Value::from(1));
    eq(&r, "day.dead_letter_examples.0.object", Value::from("weir-input/raw/x.csv"));
    eq(&r, "day.alarm_changes.0.alarm", Value::from("error-rate"));
    eq(&r, "previous.alarm_changes.0.alarm", Value::from("dlq"));
    // Hourly: finished per hour from the counters (y3 finished at 00:01:29), received from the records.
    let hour = |h: usize| r["day"]["hourly"][h].clone();
    assert_eq!(
        hour(0),
        serde_json::json!({"hour": 0, "received": 0, "succeeded": 1, "rejected": 0, "failed": 0, "rows_valid": 2, "rows_invalid": 0})
    );
    assert_eq!(
        hour(1),
        serde_json::json!({"hour": 1, "received": 2, "succeeded": 2, "rejected": 0, "failed": 0, "rows_valid": 14, "rows_invalid": 1})
    );
    assert_eq!(
        hour(13),
        serde_json::json!({"hour": 13, "received": 2, "succeeded": 1, "rejected": 1, "failed": 0, "rows_valid": 2, "rows_invalid": 0})
    );
    assert_eq!(hour(23)["received"], 1);
    eq(&r, "day.jobs_read", Value::from(8));
    eq(&r, "day.summaries_read", Value::from(3));
    eq(&r, "notes", serde_json::json!([]));

    // The HTML says the same, with every text from outside escaped.
    let html = String::from_utf8(
        read_report(&ports, &config, day, None, ReportDocument::Html).await.unwrap().unwrap(),
    )
    .unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !html.to_lowercase().contains("<script"),
        "an unescaped reason"
    );
    assert!(html.contains("3 of 3 &lt;b&gt;datapoints&lt;/b&gt;"));
    assert!(html.contains(r#"data-figure="received""#) && html.contains(">57.14%<"));
    for external in ["http://", "https://", "src=", "@import", "url("] {
        let allowed = html.matches("http://www.w3.org/2000/svg").count();
        let found = html.matches(external).count();
        assert!(found == 0 || (external == "http://" && found == allowed), "{external} in the report");
    }

    // One pipeline only: its own folder, its own figures.
    let only = DailyOptions { pipeline: Some("images".into()), quiet: true, ..DailyOptions::default() };
    let record = run_daily(&ports, &config, day, &only).await.unwrap();
    assert_eq!(record.json_key, format!("reports/{day}/images/daily_report.json"));
    assert_eq!(record.headline.received.value, Some(1.0));
    assert_eq!(record.headline.dead_letters.value, Some(0.0), "the dead letter is the sales pipeline's");
    assert!(record.published_to.is_empty());
    let unknown = DailyOptions { pipeline: Some("nope".into()), ..DailyOptions::default() };
    assert!(run_daily(&ports, &config, day, &unknown).await.is_err());

    // The history lists both, newest first, and not the jobs' summaries under reports/.
    let listed = list_reports(&ports, &config, 10).await.unwrap();
    let names: Vec<(String, Option<String>)> =
        listed.iter().map(|e| (e.date.to_string(), e.pipeline.clone())).collect();
    assert_eq!(names, [(day.to_string(), None), (day.to_string(), Some("images".into()))]);
}

/// The report's caps hold: a day bigger than `max_jobs` is reported from its first jobs, and
/// says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_past_the_caps_is_reported_from_its_first_jobs_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::bundled();
    config.report.max_jobs = 3;
    config.report.max_summaries = 1;
    let ports = weir_backends::open_embedded(
        &config,
        dir.path(),
        weir_backends::local_secrets(std::time::Duration::from_secs(300)),
    )
    .unwrap();
    let day = seeded_day(&ports, &config).await;
    let quiet = DailyOptions { quiet: true, ..DailyOptions::default() };
    run_daily(&ports, &config, day, &quiet).await.unwrap();
    let json = read_report(&ports, &config, day, None, ReportDocument::Json).await.unwrap().unwrap();
    let r: Value = serde_json::from_slice(&json).unwrap();
    eq(&r, "day.jobs_read", Value::from(3));
    eq(&r, "day.summaries_read", Value::from(1));
    let notes = r["notes"].to_string();
    assert!(notes.contains("report.max_jobs") && notes.contains("report.max_summaries"), "{notes}");
}

// ---- email and webhook ----

fn python() -> String {
    std::env::var("WEIR_TEST_PYTHON")
        .unwrap_or_else(|_| format!("{}/../../.venv/bin/python", env!("CARGO_MANIFEST_DIR")))
}

const SMTP_SERVER: &str = r#"
import email, email.policy, json, sys
from aiosmtpd.controller import Controller
class Handler:
    async def handle_DATA(self, server, session, envelope):
        m = email.message_from_bytes(envelope.content, policy=email.policy.default)
        print(json.dumps({
            "rcpt_tos": envelope.rcpt_tos, "subject": m["subject"], "type": m.get_content_type(),
            "parts": [p.get_content_type() for p in m.iter_parts()],
            "text": m.get_body(("plain",)).get_content(), "html": m.get_body(("html",)).get_content(),
        }), flush=True)
        return "250 OK"
c = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("READY", flush=True)
sys.stdin.read()
c.stop()
"#;

/// Kills the SMTP server when the test ends, however it ends.
struct Smtp(std::process::Child);

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Accepts one HTTP POST and sends its JSON body to the channel.
async fn one_webhook(listener: tokio::net::TcpListener) -> Value {
    let (mut sock, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before a whole request");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0);
        if buf.len() >= end + 4 + len {
            sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            return serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_is_emailed_with_both_parts_and_posted_to_a_webhook_as_a_link() {
    let py = python();
    let probe = Command::new(&py).args(["-c", "import aiosmtpd"]).output();
    assert!(
        matches!(&probe, Ok(o) if o.status.success()),
        "Python aiosmtpd is missing ({py}): run scripts/test, which installs it into .venv, or set WEIR_TEST_PYTHON"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Smtp(
        Command::new(&py)
            .args(["-c", SMTP_SERVER, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "READY");
    let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", hook.local_addr().unwrap());
    let webhook = tokio::spawn(one_webhook(hook));

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::bundled();
    config.report.link_base_url = Some("https://weir.example.com/".into());
    config.notify = NotifyConfig {
        subscriptions: vec![
            SubscriptionConfig {
                kind: SubscriptionKind::Email,
                host: Some("127.0.0.1".into()),
                port: Some(port),
                security: SmtpSecurity::None,
                from: Some("weir <weir@example.com>".into()),
                to: vec!["data-team@example.com".into()],
                ..SubscriptionConfig::log("alerts")
            },
            SubscriptionConfig {
                kind: SubscriptionKind::Webhook,
                url: Some(hook_url.into()),
                format: WebhookFormat::Json,
                ..SubscriptionConfig::log("alerts")
            },
        ],
        max_attempts: 3,
        retry_initial_ms: 100,
        retry_max_ms: 200,
    };
    let ports = weir_backends::open_embedded(
        &config,
        dir.path(),
        weir_backends::local_secrets(std::time::Duration::from_secs(300)),
    )
    .unwrap();
    let day = seeded_day(&ports, &config).await;
    let record = run_daily(&ports, &config, day, &DailyOptions::default()).await.unwrap();
    assert_eq!(record.link, format!("https://weir.example.com/#/reports/{day}"));

    let line = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || lines.next().unwrap().unwrap()),
    )
    .await
    .expect("no email within 60 s")
    .unwrap();
    let mail: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(mail["rcpt_tos"], serde_json::json!(["data-team@example.com"]));
    assert_eq!(mail["type"], "multipart/alternative");
    assert_eq!(mail["parts"], serde_json::json!(["text/plain", "text/html"]));
    let subject = mail["subject"].as_str().unwrap();
    assert!(
        subject
            .starts_with(&format!("weir daily report {day}: 8 received, 4 succeeded, 2 rejected, 1 failed")),
        "{subject}"
    );
    let text = mail["text"].as_str().unwrap().replace("\r\n", "\n");
    assert!(text.contains("Files received     8 (+5, +166.67% vs 3)"), "{text}");
    assert!(text.contains("Success rate       57.14% (-9.53%, -14.29% vs 66.67%)"), "{text}");
    assert!(text.contains(&format!("The whole report: https://weir.example.com/#/reports/{day}")), "{text}");
    let html = mail["html"].as_str().unwrap();
    let stored = read_report(&ports, &config, day, None, ReportDocument::Html).await.unwrap().unwrap();
    assert_eq!(
        html.replace("\r\n", "\n").trim_end(),
        String::from_utf8(stored).unwrap().trim_end(),
        "the email's HTML is the report"
    );

    let posted = tokio::time::timeout(Duration::from_secs(60), webhook)
        .await
        .expect("no webhook within 60 s")
        .unwrap();
    assert_eq!(posted["topic"], "alerts");
    assert_eq!(posted["attributes"]["status"], "report");
    assert_eq!(posted["payload"]["link"], format!("https://weir.example.com/#/reports/{day}"));
    assert_eq!(posted["payload"]["headline"]["received"]["value"], 8.0);
    assert_eq!(posted["payload"]["headline"]["received"]["change"], 5.0);
    assert!(posted.get("html").is_none(), "a webhook gets the link, not the document");
}
