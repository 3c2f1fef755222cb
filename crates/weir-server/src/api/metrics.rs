//! `GET /metrics`: the pipeline's state in the Prometheus text format (version 0.0.4).
//!
//! Everything is read from the stores when scraped (the job store's counters, which it keeps as
//! jobs are written ([`weir_core::stats`]), depths from the queue, deliveries from the
//! notification outbox, alarm states from `alarms.json`), so the numbers are the same whichever
//! process serves them, survive restarts, are exact, and cost the same to read after a million
//! jobs as after ten. The encoder is a few lines: the format is simple and a metrics crate
//! would cost more to build than it saves.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use weir_core::alarms::AlarmState;
use weir_core::stats::{JobTotals, Tally, DURATION_BUCKETS_MS};
use weir_core::JobStatus;
use weir_ports::{DeliveryStats, QueueStats};

use crate::alarms::AlarmStatus;
use crate::http_error::ApiError;
use crate::state::AppState;

/// The facts one scrape reports.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot {
    /// Jobs in each status now.
    pub jobs: BTreeMap<JobStatus, u64>,
    /// Files received since the store began.
    pub received: u64,
    pub bytes: u64,
    /// Outcomes since the store began, by status.
    pub finished: BTreeMap<JobStatus, u64>,
    /// Rows, bytes and the duration histogram of every outcome.
    pub outcomes: Tally,
    pub queue: QueueStats,
    pub notifications: Option<DeliveryStats>,
    /// As the alarm monitor last wrote them.
    pub alarms: Vec<AlarmStatus>,
    /// What retention removed since the store began: objects, jobs (records), notifications.
    pub expired: BTreeMap<&'static str, u64>,
}

impl Snapshot {
    /// The snapshot of a job store's totals.
    pub fn of(totals: &JobTotals) -> Snapshot {
        let mut snap = Snapshot {
            jobs: totals.current.clone(),
            received: totals.received_files,
            bytes: totals.received_bytes,
            ..Snapshot::default()
        };
        for ((_, status), tally) in &totals.finished {
            *snap.finished.entry(*status).or_default() += tally.files;
            snap.outcomes.add(tally);
        }
        snap
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        family(&mut out, "weir_files_received_total", "counter", "Files (jobs) received.");
        let _ = writeln!(out, "weir_files_received_total {}", self.received);
        family(&mut out, "weir_files_total", "counter", "Files that reached a final status, by status.");
        for s in [
            JobStatus::Succeeded,
            JobStatus::Rejected,
            JobStatus::Failed,
            JobStatus::Skipped,
            JobStatus::Superseded,
        ] {
            let n = self.finished.get(&s).copied().unwrap_or(0);
            let _ = writeln!(out, "weir_files_total{{status=\"{}\"}} {n}", s.as_str());
        }
        family(&mut out, "weir_jobs", "gauge", "Jobs not finished yet, by status.");
        for s in [JobStatus::Queued, JobStatus::Running] {
            let _ = writeln!(out, "weir_jobs{{status=\"{}\"}} {}", s.as_str(), self.count(s));
        }
        family(&mut out, "weir_rows_total", "counter", "Rows read, by result of validation.");
        let _ = writeln!(out, "weir_rows_total{{result=\"valid\"}} {}", self.outcomes.rows_valid);
        let _ = writeln!(out, "weir_rows_total{{result=\"invalid\"}} {}", self.outcomes.rows_invalid);
        family(
            &mut out,
            "weir_warehouse_rows_loaded_total",
            "counter",
            "Rows committed to warehouse tables ([pipeline.sinks]).",
        );
        let _ = writeln!(out, "weir_warehouse_rows_loaded_total {}", self.outcomes.rows_loaded);
        family(
            &mut out,
            "weir_warehouse_load_failures_total",
            "counter",
            "Jobs whose warehouse load failed: a row the database refused, or retries exhausted.",
        );
        let _ = writeln!(out, "weir_warehouse_load_failures_total {}", self.outcomes.load_failures);
        family(&mut out, "weir_received_bytes_total", "counter", "Bytes of the files received.");
        let _ = writeln!(out, "weir_received_bytes_total {}", self.bytes);
        family(
            &mut out,
            "weir_job_duration_seconds",
            "histogram",
            "Time from start to end of finished jobs.",
        );
        let mut cumulative = 0;
        for (i, le_ms) in DURATION_BUCKETS_MS.iter().enumerate() {
            cumulative += self.outcomes.duration_buckets.get(i).copied().unwrap_or(0);
            let le = *le_ms as f64 / 1000.0;
            let _ = writeln!(out, "weir_job_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let d = &self.outcomes;
        let _ = writeln!(out, "weir_job_duration_seconds_bucket{{le=\"+Inf\"}} {}", d.timed);
        let _ = writeln!(out, "weir_job_duration_seconds_sum {}", d.duration_ms_sum as f64 / 1000.0);
        let _ = writeln!(out, "weir_job_duration_seconds_count {}", d.timed);
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
        family(&mut out, "weir_expired_total", "counter", "What retention removed, by kind.");
        for kind in ["objects", "jobs", "notifications"] {
            let n = self.expired.get(kind).copied().unwrap_or(0);
            let _ = writeln!(out, "weir_expired_total{{kind=\"{kind}\"}} {n}");
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
pub async fn snapshot(state: &AppState) -> Result<Snapshot, ApiError> {
    let ports = &state.ctx.ports;
    let mut snap = Snapshot::of(&ports.jobs.totals().await?);
    snap.queue = ports.queue.stats().await?;
    snap.notifications = ports.notifier.delivery_stats().await?;
    snap.alarms = crate::alarms::read_states(&state.ctx.data_dir).unwrap_or_default();
    let counters = ports.jobs.counters().await?;
    use weir_pipeline::retention::{EXPIRED_JOBS, EXPIRED_NOTIFICATIONS, EXPIRED_OBJECTS};
    for (kind, counter) in
        [("objects", EXPIRED_OBJECTS), ("jobs", EXPIRED_JOBS), ("notifications", EXPIRED_NOTIFICATIONS)]
    {
        snap.expired.insert(kind, counters.get(counter).copied().unwrap_or(0));
    }
    Ok(snap)
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    description = "Prometheus text exposition (version 0.0.4): files, rows, bytes, job durations, queue and DLQ depth, notification deliveries, alarm states.",
    responses(
        (status = 200, description = "the metrics", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 401, description = "no bearer token", body = crate::http_error::ErrorBody),
        (status = 403, description = "wrong bearer token", body = crate::http_error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let text = snapshot(&state).await?.encode();
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters_and_a_cumulative_histogram() {
        let finished = |status, ms: &[u64], valid| {
            let mut t = Tally::default();
            for &d in ms {
                let mut j = weir_core::Job::queued("b", "k", "e", 100, Some("sales"));
                j.finish(status, None);
                (j.duration_ms, j.valid_rows, j.invalid_rows) = (Some(d), valid, 1);
                // Each succeeded job loaded its valid rows; the rejected one's load failed.
                j.warehouse = Some(weir_core::job::WarehouseLoad {
                    rows: valid,
                    error: (status != JobStatus::Succeeded).then(|| "refused".to_string()),
                    ..Default::default()
                });
                t.add(&Tally::of(&j));
            }
            t
        };
        let totals = JobTotals {
            finished: BTreeMap::from([
                (("sales".into(), JobStatus::Succeeded), finished(JobStatus::Succeeded, &[200, 40_000], 5)),
                (("sales".into(), JobStatus::Rejected), finished(JobStatus::Rejected, &[3], 0)),
            ]),
            received_files: 4,
            received_bytes: 400,
            current: BTreeMap::from([
                (JobStatus::Succeeded, 2),
                (JobStatus::Rejected, 1),
                (JobStatus::Running, 1),
            ]),
        };
        let s = Snapshot {
            notifications: Some(DeliveryStats { pending: 1, delivered: 3, failed: 1 }),
            alarms: vec![AlarmStatus {
                name: "dlq-not-empty".into(),
                description: String::new(),
                state: AlarmState::Alarm,
                reason: String::new(),
            }],
            ..Snapshot::of(&totals)
        };
        let text = s.encode();
        for line in [
            "weir_files_received_total 4",
            "weir_files_total{status=\"succeeded\"} 2",
            "weir_files_total{status=\"failed\"} 0",
            "weir_jobs{status=\"running\"} 1",
            "weir_rows_total{result=\"valid\"} 10",
            "weir_rows_total{result=\"invalid\"} 3",
            "weir_received_bytes_total 400",
            "weir_warehouse_rows_loaded_total 10",
            "weir_warehouse_load_failures_total 1",
            "weir_job_duration_seconds_bucket{le=\"0.002\"} 0",
            "weir_job_duration_seconds_bucket{le=\"0.005\"} 1",
            "weir_job_duration_seconds_bucket{le=\"0.2\"} 2",
            "weir_job_duration_seconds_bucket{le=\"60\"} 3",
            "weir_job_duration_seconds_bucket{le=\"+Inf\"} 3",
            "weir_job_duration_seconds_sum 40.203",
            "weir_job_duration_seconds_count 3",
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
