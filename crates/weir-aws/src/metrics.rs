//! weir's metrics into CloudWatch, two ways (the names and units in [`crate::cloudwatch::names`]):
//!
//! - [`CloudWatchMetrics`], for `weir worker`: each file and job only adds to counters in
//!   memory; a background task sends them every `aws.metrics_interval_secs` (and once more at
//!   shutdown) in batched `PutMetricData` calls, never one call per file. A failed send is
//!   logged and its data dropped: a job never waits for, or fails because of, a metric.
//! - [`EmfMetrics`], for `weir-lambda`: each file and job becomes CloudWatch embedded metric
//!   format lines on the function's log (stdout), which CloudWatch turns into the same metrics
//!   with no API call at all.
//!
//! Both report each metric with the `pipeline` dimension and without it (the roll-up the
//! alarms and the dashboard read). Only jobs that did work (succeeded, rejected, failed) count
//! towards `error_rate_percent` and `job_duration_seconds`, as embedded.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_cloudwatch::Client;
use serde_json::{json, Map, Value};
use weir_core::{Job, JobStatus};
use weir_ports::{JobMetrics, PortError};

use crate::client::port_error;
use crate::cloudwatch::{names, NAMESPACE, PIPELINE_DIMENSION};

/// Datums per `PutMetricData` call (CloudWatch takes up to 1000; each call stays far below its
/// 1 MB request limit).
const DATUMS_PER_CALL: usize = 150;
/// Distinct values per datum's `Values` (CloudWatch's limit).
const VALUES_PER_DATUM: usize = 150;

/// Whether the job did work (its duration and outcome count for the error rate and latency).
fn did_work(job: &Job) -> bool {
    matches!(job.status, JobStatus::Succeeded | JobStatus::Rejected | JobStatus::Failed)
}

fn is_error(job: &Job) -> bool {
    matches!(job.status, JobStatus::Rejected | JobStatus::Failed)
}

fn duration_seconds(job: &Job) -> f64 {
    job.duration_ms.unwrap_or_default() as f64 / 1000.0
}

/// A duration in ms kept to three significant digits, so that a busy interval has at most a
/// few thousand distinct values (CloudWatch keeps about that precision for percentiles).
fn coarse_ms(ms: u64) -> u64 {
    let mut scale = 1;
    while ms / scale >= 1000 {
        scale *= 10;
    }
    ms / scale * scale
}

/// One series: metric name, pipeline (`None`: the roll-up), one more dimension.
type SeriesKey = (&'static str, Option<String>, Option<(&'static str, &'static str)>);

/// What has been counted since the last send.
#[derive(Debug, Default)]
struct Pending {
    /// Count metrics: their sums.
    counts: BTreeMap<SeriesKey, f64>,
    /// Value metrics (durations, error rate): value → how many times, per series.
    values: BTreeMap<SeriesKey, BTreeMap<u64, f64>>,
}

impl Pending {
    fn count(
        &mut self,
        name: &'static str,
        pipeline: Option<&str>,
        dim: Option<(&'static str, &'static str)>,
        n: f64,
    ) {
        for p in [pipeline.map(str::to_string), None].into_iter().collect::<std::collections::BTreeSet<_>>() {
            *self.counts.entry((name, p, dim)).or_default() += n;
        }
    }

    /// `value` in thousandths (a duration in ms stands for seconds; a percent is ×1000 too).
    fn value(&mut self, name: &'static str, pipeline: Option<&str>, thousandths: u64) {
        for p in [pipeline.map(str::to_string), None].into_iter().collect::<std::collections::BTreeSet<_>>() {
            *self.values.entry((name, p, None)).or_default().entry(thousandths).or_default() += 1.0;
        }
    }

    fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.values.is_empty()
    }
}

/// Unit of a metric.
fn unit(name: &str) -> StandardUnit {
    match name {
        names::JOB_DURATION => StandardUnit::Seconds,
        names::ERROR_RATE => StandardUnit::Percent,
        _ => StandardUnit::Count,
    }
}

/// Batches weir's metrics for CloudWatch `PutMetricData`.
#[derive(Debug)]
pub struct CloudWatchMetrics {
    client: Client,
    pending: Mutex<Pending>,
}

impl CloudWatchMetrics {
    pub fn new(sdk: &aws_config::SdkConfig) -> Arc<CloudWatchMetrics> {
        Arc::new(CloudWatchMetrics { client: Client::new(sdk), pending: Mutex::default() })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends what was counted since the last send, in as few calls as the limits allow; returns
    /// (datums, calls). On failure the data of this send is dropped.
    pub async fn flush(&self) -> Result<(usize, usize), PortError> {
        let pending = std::mem::take(&mut *self.pending());
        if pending.is_empty() {
            return Ok((0, 0));
        }
        let now = DateTime::from(SystemTime::now());
        let dimensions = |(_, pipeline, dim): &SeriesKey| {
            let mut out = Vec::new();
            if let Some(p) = pipeline {
                out.push(Dimension::builder().name(PIPELINE_DIMENSION).value(p).build());
            }
            if let Some((n, v)) = dim {
                out.push(Dimension::builder().name(*n).value(*v).build());
            }
            out
        };
        let mut datums = Vec::new();
        for (key, sum) in &pending.counts {
            datums.push(
                MetricDatum::builder()
                    .metric_name(key.0)
                    .set_dimensions(Some(dimensions(key)))
                    .timestamp(now)
                    .value(*sum)
                    .unit(unit(key.0))
                    .build(),
            );
        }
        for (key, values) in &pending.values {
            let pairs: Vec<(f64, f64)> = values.iter().map(|(v, n)| (*v as f64 / 1000.0, *n)).collect();
            for chunk in pairs.chunks(VALUES_PER_DATUM) {
                datums.push(
                    MetricDatum::builder()
                        .metric_name(key.0)
                        .set_dimensions(Some(dimensions(key)))
                        .timestamp(now)
                        .set_values(Some(chunk.iter().map(|(v, _)| *v).collect()))
                        .set_counts(Some(chunk.iter().map(|(_, n)| *n).collect()))
                        .unit(unit(key.0))
                        .build(),
                );
            }
        }
        let mut calls = 0;
        for batch in datums.chunks(DATUMS_PER_CALL) {
            self.client
                .put_metric_data()
                .namespace(NAMESPACE)
                .set_metric_data(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| port_error("sending metrics to CloudWatch", e))?;
            calls += 1;
        }
        Ok((datums.len(), calls))
    }

    /// Sends every `interval` until `stop` resolves, then once more.
    pub async fn run(self: Arc<Self>, interval: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let last = tokio::select! {
                _ = tick.tick() => false,
                () = &mut stop => true,
            };
            match self.flush().await {
                Ok((0, _)) => {}
                Ok((datums, calls)) => tracing::info!(datums, calls, "metrics sent to CloudWatch"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not send metrics to CloudWatch; this interval's are dropped")
                }
            }
            if last {
                return;
            }
        }
    }
}

impl JobMetrics for CloudWatchMetrics {
    fn received(&self, job: &Job) {
        self.pending().count(names::FILES_RECEIVED, job.pipeline.as_deref(), None, 1.0);
    }

    fn finished(&self, job: &Job) {
        let pipeline = job.pipeline.as_deref();
        let mut p = self.pending();
        p.count(names::FILES, pipeline, Some(("status", job.status.as_str())), 1.0);
        if job.valid_rows > 0 || job.invalid_rows > 0 {
            p.count(names::ROWS, pipeline, Some(("result", "valid")), job.valid_rows as f64);
            p.count(names::ROWS, pipeline, Some(("result", "invalid")), job.invalid_rows as f64);
        }
        if did_work(job) {
            p.value(names::JOB_DURATION, pipeline, coarse_ms(job.duration_ms.unwrap_or_default()));
            p.value(names::ERROR_RATE, pipeline, if is_error(job) { 100_000 } else { 0 });
        }
    }
}

/// Writes embedded-metric-format documents, one a line, to a writer (stdout in Lambda).
pub struct EmfMetrics {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for EmfMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmfMetrics")
    }
}

impl EmfMetrics {
    pub fn new(out: Box<dyn Write + Send>) -> EmfMetrics {
        EmfMetrics { out: Mutex::new(out) }
    }

    /// On standard output (Lambda sends it to CloudWatch Logs, which extracts the metrics).
    pub fn stdout() -> EmfMetrics {
        EmfMetrics::new(Box::new(std::io::stdout()))
    }

    fn write(&self, doc: &Value) {
        let mut line = doc.to_string();
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // One write per document, so lines of other writers never cut into it.
        if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "could not write a metrics line");
        }
    }
}

/// One EMF document: `metrics` (name, value) under the dimension `extra` (besides `pipeline`,
/// and the roll-up without it).
pub fn emf_document(
    pipeline: Option<&str>,
    extra: Option<(&str, &str)>,
    metrics: &[(&str, Value)],
    timestamp_ms: i64,
) -> Value {
    let mut with_pipeline: Vec<&str> = Vec::new();
    let mut members = Map::new();
    if let Some(p) = pipeline {
        with_pipeline.push(PIPELINE_DIMENSION);
        members.insert(PIPELINE_DIMENSION.into(), json!(p));
    }
    let mut rollup: Vec<&str> = Vec::new();
    if let Some((name, value)) = extra {
        with_pipeline.push(name);
        rollup.push(name);
        members.insert(name.into(), json!(value));
    }
    let mut dimension_sets = vec![with_pipeline.clone()];
    if pipeline.is_some() {
        dimension_sets.push(rollup);
    }
    let definitions: Vec<Value> =
        metrics.iter().map(|(name, _)| json!({"Name": name, "Unit": unit(name).as_str()})).collect();
    for (name, value) in metrics {
        members.insert((*name).into(), value.clone());
    }
    members.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
            "Namespace": NAMESPACE, "Dimensions": dimension_sets, "Metrics": definitions}]}),
    );
    Value::Object(members)
}

impl JobMetrics for EmfMetrics {
    fn received(&self, job: &Job) {
        let now = chrono::Utc::now().timestamp_millis();
        self.write(&emf_document(job.pipeline.as_deref(), None, &[(names::FILES_RECEIVED, json!(1))], now));
    }

    fn finished(&self, job: &Job) {
        let now = chrono::Utc::now().timestamp_millis();
        let pipeline = job.pipeline.as_deref();
        self.write(&emf_document(
            pipeline,
            Some(("status", job.status.as_str())),
            &[(names::FILES, json!(1))],
            now,
        ));
        if job.valid_rows > 0 || job.invalid_rows > 0 {
            for (result, n) in [("valid", job.valid_rows), ("invalid", job.invalid_rows)] {
                self.write(&emf_document(
                    pipeline,
                    Some(("result", result)),
                    &[(names::ROWS, json!(n))],
                    now,
                ));
            }
        }
        if did_work(job) {
            let rate = if is_error(job) { 100 } else { 0 };
            self.write(&emf_document(
                pipeline,
                None,
                &[(names::JOB_DURATION, json!(duration_seconds(job))), (names::ERROR_RATE, json!(rate))],
                now,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CloudWatch out of reach: recording never waits or fails, a send fails and drops its
    /// data (memory stays bounded), and the sender still stops when asked.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_cloudwatch_costs_the_jobs_nothing() {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let sdk = crate::client::loader(&crate::AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(format!("http://127.0.0.1:{port}")),
        })
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("k", "s", None, None, "test"))
        .load()
        .await;
        let metrics = CloudWatchMetrics::new(&sdk);
        let mut job = Job::queued("in", "raw/a.csv", "etag", 10, Some("sales"));
        job.finish(JobStatus::Succeeded, None);
        let started = std::time::Instant::now();
        for _ in 0..10_000 {
            metrics.received(&job);
            metrics.finished(&job);
        }
        assert!(started.elapsed() < Duration::from_secs(2), "recording is in memory only");
        assert!(metrics.flush().await.is_err(), "nothing listens there");
        assert_eq!(
            metrics.flush().await.expect("nothing left to send"),
            (0, 0),
            "the failed send's data is dropped"
        );
        metrics.finished(&job);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let sender = tokio::spawn(metrics.clone().run(Duration::from_secs(3600), async {
            let _ = stop_rx.await;
        }));
        stop_tx.send(()).expect("sender running");
        tokio::time::timeout(Duration::from_secs(60), sender).await.expect("stops").expect("no panic");
    }

    #[test]
    fn durations_keep_three_significant_digits() {
        assert_eq!(coarse_ms(7), 7);
        assert_eq!(coarse_ms(999), 999);
        assert_eq!(coarse_ms(1234), 1230);
        assert_eq!(coarse_ms(98_765), 98_700);
    }

    #[test]
    fn counts_go_to_the_pipeline_and_the_rollup() {
        let mut p = Pending::default();
        p.count(names::FILES, Some("sales"), Some(("status", "succeeded")), 1.0);
        p.count(names::FILES, Some("images"), Some(("status", "succeeded")), 1.0);
        p.count(names::FILES, None, Some(("status", "skipped")), 1.0);
        assert_eq!(p.counts[&(names::FILES, None, Some(("status", "succeeded")))], 2.0);
        assert_eq!(p.counts[&(names::FILES, Some("sales".into()), Some(("status", "succeeded")))], 1.0);
        assert_eq!(p.counts[&(names::FILES, None, Some(("status", "skipped")))], 1.0, "counted once");
    }
}
