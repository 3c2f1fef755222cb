//! `GET /metrics`: the pipeline's state in the Prometheus text format (version 0.0.4).
//!
//! Everything is computed from the stores when scraped (job counts and totals from the job
//! store, depths from the queue, deliveries from the notification outbox, alarm states from
//! `alarms.json`), so the numbers are the same whichever process serves them and survive
//! restarts, and the pipeline carries no instrumentation of its own. The encoder is a few lines: the format is simple and a metrics
//! crate would cost more to build than it saves.
//!
//! Totals are computed by reading every job; a store with millions of jobs wants an aggregate
//! query in the job store port instead (a follow-up).

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use weir_core::alarms::AlarmState;
use weir_core::JobStatus;
use weir_ports::{DeliveryStats, JobFilter, QueueStats};

use super::error::ApiError;
use super::ApiState;
use crate::alarms::AlarmStatus;

/// Upper bounds (seconds) of the job duration histogram's buckets.
pub const DURATION_BUCKETS: [f64; 12] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// The facts one scrape reports.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot {
    pub jobs: BTreeMap<JobStatus, u64>,
    pub rows_valid: u64,
    pub rows_invalid: u64,
    pub bytes: u64,
    /// Cumulative counts per bucket of [`DURATION_BUCKETS`], then the sum and count.
    pub duration_buckets: [u64; 12],
    pub duration_sum_secs: f64,
    pub duration_count: u64,
    pub queue: QueueStats,
    pub notifications: Option<DeliveryStats>,
    /// As the alarm monitor last wrote them.
    pub alarms: Vec<AlarmStatus>,
}

impl Snapshot {
    /// Adds one finished job's duration to the histogram.
    pub fn observe(&mut self, secs: f64) {
        for (i, le) in DURATION_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.duration_buckets[i] += 1;
            }
        }
        self.duration_sum_secs += secs;
        self.duration_count += 1;
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        family(&mut out, "weir_files_received_total", "counter", "Files (jobs) received.");
        let received: u64 = self.jobs.values().sum();
        let _ = writeln!(out, "weir_files_received_total {received}");
        family(&mut out, "weir_files_total", "counter", "Files that reached a final status, by status.");
        for s in [
            JobStatus::Succeeded,
            JobStatus::Rejected,
            JobStatus::Failed,
            JobStatus::Skipped,
            JobStatus::Superseded,
        ] {
            let _ = writeln!(out, "weir_files_total{{status=\"{}\"}} {}", s.as_str(), self.count(s));
        }
        family(&mut out, "weir_jobs", "gauge", "Jobs not finished yet, by status.");
        for s in [JobStatus::Queued, JobStatus::Running] {
            let _ = writeln!(out, "weir_jobs{{status=\"{}\"}} {}", s.as_str(), self.count(s));
        }
        family(&mut out, "weir_rows_total", "counter", "Rows read, by result of validation.");
        let _ = writeln!(out, "weir_rows_total{{result=\"valid\"}} {}", self.rows_valid);
        let _ = writeln!(out, "weir_rows_total{{result=\"invalid\"}} {}", self.rows_invalid);
        family(&mut out, "weir_received_bytes_total", "counter", "Bytes of the files received.");
        let _ = writeln!(out, "weir_received_bytes_total {}", self.bytes);
        family(
            &mut out,
            "weir_job_duration_seconds",
            "histogram",
            "Time from start to end of finished jobs.",
        );
        for (le, n) in DURATION_BUCKETS.iter().zip(self.duration_buckets) {
            let _ = writeln!(out, "weir_job_duration_seconds_bucket{{le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "weir_job_duration_seconds_bucket{{le=\"+Inf\"}} {}", self.duration_count);
        let _ = writeln!(out, "weir_job_duration_seconds_sum {}", self.duration_sum_secs);
        let _ = writeln!(out, "weir_job_duration_seconds_count {}", self.duration_count);
        family(&mut out, "weir_queue_messages", "gauge", "Messages waiting in the queue, by state.");
        let _ = writeln!(out, "weir_queue_messages{{state=\"visible\"}} {}", self.queue.visible);
        let _ = writeln!(out, "weir_queue_messages{{state=\"delayed\"}} {}", self.queue.delayed);
        family(
            &mut out,
            "weir_queue_messages_in_flight",
            "gauge",
            "Messages received by a worker and not yet deleted.",
        );
        let _ = writeln!(out, "weir_queue_messages_in_flight {}", self.queue.in_flight);
        family(&mut out, "weir_dlq_messages", "gauge", "Messages in the dead-letter queue.");
        let _ = writeln!(out, "weir_dlq_messages {}", self.queue.dead_letters);
        family(
            &mut out,
            "weir_queue_oldest_message_age_seconds",
            "gauge",
            "Age of the oldest message in the queue.",
        );
        let age = self.queue.oldest_age.map_or(0.0, |d| d.as_secs_f64());
        let _ = writeln!(out, "weir_queue_oldest_message_age_seconds {age}");
        if let Some(n) = self.notifications {
            family(
                &mut out,
                "weir_notification_deliveries_total",
                "counter",
                "Email/webhook deliveries, by outcome.",
            );
            let _ =
                writeln!(out, "weir_notification_deliveries_total{{result=\"delivered\"}} {}", n.delivered);
            let _ = writeln!(out, "weir_notification_deliveries_total{{result=\"failed\"}} {}", n.failed);
            family(
                &mut out,
                "weir_notifications_pending",
                "gauge",
                "Email/webhook deliveries waiting or being retried.",
            );
            let _ = writeln!(out, "weir_notifications_pending {}", n.pending);
        }
        if !self.alarms.is_empty() {
            family(
                &mut out,
                "weir_alarm_state",
                "gauge",
                "1 for each alarm's current state, 0 for the others.",
            );
            for a in &self.alarms {
                for state in [AlarmState::Ok, AlarmState::Alarm, AlarmState::InsufficientData] {
                    let v = u8::from(a.state == state);
                    let _ = writeln!(
                        out,
                        "weir_alarm_state{{alarm=\"{}\",state=\"{}\"}} {v}",
                        label_value(&a.name),
                        state.as_str()
                    );
                }
            }
        }
        out
    }

    fn count(&self, s: JobStatus) -> u64 {
        self.jobs.get(&s).copied().unwrap_or(0)
    }
}

/// A label value as the exposition format writes it: backslash, double quote and newline
/// escaped. Alarm names come from `alarms.json` (and `weir check` restricts them), but what a
/// label holds must never be able to end the line it is on.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The `# HELP` and `# TYPE` lines of a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Reads the stores.
pub async fn snapshot(state: &ApiState) -> Result<Snapshot, ApiError> {
    let ports = &state.ctx.ports;
    let mut snap = Snapshot { jobs: ports.jobs.counts().await?, ..Snapshot::default() };
    for job in ports.jobs.list(&JobFilter { status: None, limit: usize::MAX }).await? {
        snap.rows_valid += job.valid_rows;
        snap.rows_invalid += job.invalid_rows;
        snap.bytes += job.source_size;
        if let (true, Some(ms)) = (job.status.is_terminal(), job.duration_ms) {
            snap.observe(ms as f64 / 1000.0);
        }
    }
    snap.queue = ports.queue.stats().await?;
    snap.notifications = ports.notifier.delivery_stats().await?;
    snap.alarms = crate::alarms::read_states(&state.ctx.data_dir).unwrap_or_default();
    Ok(snap)
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    description = "Prometheus text exposition (version 0.0.4): files, rows, bytes, job durations, queue and DLQ depth, notification deliveries, alarm states.",
    responses(
        (status = 200, description = "the metrics", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 401, description = "no bearer token", body = super::error::ErrorBody),
        (status = 403, description = "wrong bearer token", body = super::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn metrics(State(state): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    let text = snapshot(&state).await?.encode();
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters_and_a_cumulative_histogram() {
        let mut s = Snapshot {
            jobs: BTreeMap::from([
                (JobStatus::Succeeded, 2),
                (JobStatus::Rejected, 1),
                (JobStatus::Running, 1),
            ]),
            rows_valid: 10,
            rows_invalid: 2,
            notifications: Some(DeliveryStats { pending: 1, delivered: 3, failed: 1 }),
            alarms: vec![AlarmStatus {
                name: "dlq-not-empty".into(),
                description: String::new(),
                state: AlarmState::Alarm,
                reason: String::new(),
            }],
            ..Snapshot::default()
        };
        s.observe(0.2);
        s.observe(40.0);
        let text = s.encode();
        for line in [
            "weir_files_received_total 4",
            "weir_files_total{status=\"succeeded\"} 2",
            "weir_files_total{status=\"failed\"} 0",
            "weir_jobs{status=\"running\"} 1",
            "weir_rows_total{result=\"invalid\"} 2",
            "weir_job_duration_seconds_bucket{le=\"0.1\"} 0",
            "weir_job_duration_seconds_bucket{le=\"0.25\"} 1",
            "weir_job_duration_seconds_bucket{le=\"60\"} 2",
            "weir_job_duration_seconds_bucket{le=\"+Inf\"} 2",
            "weir_job_duration_seconds_count 2",
            "weir_notification_deliveries_total{result=\"failed\"} 1",
            "# TYPE weir_job_duration_seconds histogram",
            "weir_alarm_state{alarm=\"dlq-not-empty\",state=\"ALARM\"} 1",
            "weir_alarm_state{alarm=\"dlq-not-empty\",state=\"OK\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    /// Issue #14: an alarm named `x"} 1` + newline + a fake sample injected that sample.
    #[test]
    fn label_values_cannot_end_their_line() {
        let name = "x\"} 1\nweir_files_total{status=\"succeeded\"} 999999\\";
        let s = Snapshot {
            alarms: vec![AlarmStatus {
                name: name.into(),
                description: String::new(),
                state: AlarmState::Ok,
                reason: String::new(),
            }],
            ..Snapshot::default()
        };
        let text = s.encode();
        assert!(
            !text.lines().any(|l| l.starts_with("weir_files_total{status=\"succeeded\"} 999999")),
            "{text}"
        );
        let expected = r#"weir_alarm_state{alarm="x\"} 1\nweir_files_total{status=\"succeeded\"} 999999\\",state="OK"} 1"#;
        assert!(text.lines().any(|l| l == expected), "{text}");
    }
}
