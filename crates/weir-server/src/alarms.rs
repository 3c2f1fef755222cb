//! The alarm monitor: samples the pipeline's metrics, evaluates the alarm rules
//! ([`weir_core::alarms`]) and sends every state change to the `alerts` topic.
//!
//! It runs beside the API in `weir run` because that is where the stores are open and the
//! metrics are computed. Samples live in memory (a restart starts every alarm again in
//! `INSUFFICIENT_DATA`, as a new CloudWatch alarm does); the current states are written to
//! `<data dir>/alarms.json` after each evaluation so that `weir alarms` and the dashboard can
//! show them without asking the server.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use weir_core::alarms::{evaluate, metrics, AlarmRule, AlarmState, AlarmTracker, Datapoint, Transition};
use weir_core::JobStatus;
use weir_ports::{JobFilter, Notification, PortError};

use crate::Context;

/// How often the monitor samples and evaluates.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// How many of the newest jobs a tick reads.
const RECENT_JOBS: usize = 10_000;

/// One rule's state, as written to `alarms.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmStatus {
    pub name: String,
    pub description: String,
    pub state: AlarmState,
    pub reason: String,
}

#[derive(Default)]
struct Inner {
    samples: BTreeMap<&'static str, Vec<Datapoint>>,
    tracker: AlarmTracker,
    last_tick_ms: Option<i64>,
}

/// Rules, their samples and their states.
pub struct AlarmMonitor {
    rules: Vec<AlarmRule>,
    inner: Mutex<Inner>,
}

impl AlarmMonitor {
    pub fn new(rules: Vec<AlarmRule>) -> Self {
        AlarmMonitor { rules, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Samples the stores at `now_ms`, evaluates every rule, publishes the transitions to the
    /// `alerts` topic (except INSUFFICIENT_DATA → OK) (a publish failure is logged, never fatal) and writes `alarms.json`.
    pub async fn tick(&self, ctx: &Context, now_ms: i64) -> Result<Vec<Transition>, PortError> {
        let since = self.lock().last_tick_ms;
        let sampled = sample(ctx, since, now_ms).await?;
        let transitions = {
            let mut inner = self.lock();
            inner.last_tick_ms = Some(now_ms);
            let keep =
                self.rules.iter().map(|r| r.period_secs * u64::from(r.evaluation_periods)).max().unwrap_or(0);
            let oldest = now_ms - i64::try_from(keep.saturating_mul(1000)).unwrap_or(i64::MAX / 2) - 1000;
            for (metric, values) in sampled {
                let series = inner.samples.entry(metric).or_default();
                series.extend(values.into_iter().map(|value| Datapoint { at_ms: now_ms, value }));
                series.retain(|d| d.at_ms >= oldest);
            }
            let mut transitions = Vec::new();
            for rule in &self.rules {
                let points = inner.samples.get(rule.metric.as_str()).map_or(&[][..], |v| v.as_slice());
                let evaluation = evaluate(rule, points, now_ms);
                transitions.extend(inner.tracker.update(rule, &evaluation));
            }
            transitions
        };
        for t in &transitions {
            tracing::info!(alarm = %t.alarm, from = t.from.as_str(), to = t.to.as_str(), reason = %t.reason, "alarm state changed");
            // An alarm that starts out fine is not news (every start would mail each rule).
            if t.from == AlarmState::InsufficientData && t.to == AlarmState::Ok {
                continue;
            }
            let n = self.notification(t);
            if let Err(e) = ctx.ports.notifier.publish(&n).await {
                tracing::warn!(alarm = %t.alarm, error = %e, "could not publish the alarm transition");
            }
        }
        if let Err(e) = write_states(&ctx.data_dir.join("alarms.json"), &self.states()) {
            tracing::warn!(error = %e, "could not write alarms.json");
        }
        Ok(transitions)
    }

    /// The samples of one metric still kept (the longest rule's window), oldest first: the
    /// dashboard draws queue and DLQ depth from them.
    pub fn history(&self, metric: &str) -> Vec<Datapoint> {
        self.lock().samples.get(metric).cloned().unwrap_or_default()
    }

    /// Every rule with its state and reason.
    pub fn states(&self) -> Vec<AlarmStatus> {
        let inner = self.lock();
        self.rules
            .iter()
            .map(|r| {
                let (state, reason) = inner.tracker.state(&r.name);
                AlarmStatus {
                    name: r.name.clone(),
                    description: r.description.clone(),
                    state,
                    reason: reason.to_owned(),
                }
            })
            .collect()
    }

    fn notification(&self, t: &Transition) -> Notification {
        let description =
            self.rules.iter().find(|r| r.name == t.alarm).map(|r| r.description.as_str()).unwrap_or("");
        let subject = format!("{}: \"{}\" — {}", t.to.as_str(), t.alarm, description);
        let text = format!(
            "Alarm: {}\nDescription: {}\nState: {} (was {})\nReason: {}",
            t.alarm,
            description,
            t.to.as_str(),
            t.from.as_str(),
            t.reason
        );
        Notification {
            topic: "alerts".into(),
            subject: Notification::clamp_subject(&subject),
            text,
            attributes: BTreeMap::from([
                ("status".into(), "alarm".into()),
                ("alarm".into(), t.alarm.clone()),
                ("state".into(), t.to.as_str().into()),
            ]),
            payload: serde_json::json!({
                "alarm": t.alarm, "from": t.from, "to": t.to, "reason": t.reason,
            }),
        }
    }
}

/// The datapoints of one tick, by metric.
async fn sample(
    ctx: &Context,
    since_ms: Option<i64>,
    now_ms: i64,
) -> Result<Vec<(&'static str, Vec<f64>)>, PortError> {
    let ports = &ctx.ports;
    let queue = ports.queue.stats().await?;
    // The newest jobs (by creation) hold every job that finished since the last tick in practice;
    // reading all of them every 10 s would not scale with the job store.
    let jobs = ports.jobs.list(&JobFilter { status: None, limit: RECENT_JOBS }).await?;
    let finished_now = |j: &&weir_core::Job| {
        j.finished_at
            .map(|t| t.timestamp_millis())
            .is_some_and(|t| t <= now_ms && since_ms.is_none_or(|s| t > s))
    };
    let finished: Vec<&weir_core::Job> = jobs
        .iter()
        .filter(|j| j.status.is_terminal() && !matches!(j.status, JobStatus::Skipped | JobStatus::Superseded))
        .filter(finished_now)
        .collect();
    let mut out = vec![
        (metrics::DLQ_MESSAGES, vec![queue.dead_letters as f64]),
        (metrics::QUEUE_MESSAGES, vec![queue.visible as f64]),
    ];
    if !finished.is_empty() {
        let errors =
            finished.iter().filter(|j| matches!(j.status, JobStatus::Rejected | JobStatus::Failed)).count();
        out.push((metrics::ERROR_RATE_PERCENT, vec![100.0 * errors as f64 / finished.len() as f64]));
        let durations = finished.iter().filter_map(|j| j.duration_ms).map(|ms| ms as f64 / 1000.0).collect();
        out.push((metrics::JOB_DURATION_SECONDS, durations));
    }
    let last_success = jobs
        .iter()
        .filter(|j| j.status == JobStatus::Succeeded)
        .filter_map(|j| j.finished_at.map(|t| t.timestamp_millis()))
        .max();
    let first_arrival_after = jobs
        .iter()
        .map(|j| j.created_at.timestamp_millis())
        .filter(|t| last_success.is_none_or(|s| *t > s))
        .min();
    let stale = match (last_success, first_arrival_after) {
        (Some(s), Some(_)) => (now_ms - s) as f64 / 1000.0,
        (None, Some(a)) => (now_ms - a) as f64 / 1000.0,
        (_, None) => 0.0,
    };
    out.push((metrics::STALE_SECONDS, vec![stale.max(0.0)]));
    Ok(out)
}

fn write_states(path: &Path, states: &[AlarmStatus]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(states).map_err(std::io::Error::other)?)?;
    std::fs::rename(tmp, path)
}

/// The states `weir run` last wrote in a data dir (empty when it has not evaluated yet).
pub fn read_states(data_dir: &Path) -> std::io::Result<Vec<AlarmStatus>> {
    match std::fs::read(data_dir.join("alarms.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Evaluates the configured rules (`[alarms]` in weir.toml) every [`INTERVAL`] until `stop`.
pub fn spawn(ctx: &Context, stop: CancellationToken) -> Arc<AlarmMonitor> {
    let monitor = Arc::new(AlarmMonitor::new(ctx.config.alarms.rules()));
    let (m, ctx) = (monitor.clone(), ctx.clone());
    tokio::spawn(async move {
        let mut every = tokio::time::interval(INTERVAL);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            if let Err(e) = m.tick(&ctx, chrono::Utc::now().timestamp_millis()).await {
                tracing::warn!(error = %e, "alarm evaluation skipped: a store did not answer");
            }
        }
    });
    monitor
}
