//! The alarm monitor: samples the pipeline's metrics, evaluates the alarm rules
//! ([`weir_core::alarms`]) and sends every state change to the `alerts` topic.
//!
//! It runs beside the API in `weir run` because that is where the stores are open. Job metrics
//! (error rate, job duration, stale data) come from the job store's per-minute counters
//! ([`weir_core::stats`]): each completed minute gives one datapoint per metric (durations as
//! the histogram's buckets, each weighted by its count), so a tick reads a few rows whatever
//! the store holds. Queue and DLQ depth are sampled at each tick. Samples live in memory (a
//! restart reads the rules' window of minutes again from the counters); the current states are
//! written to `<data dir>/alarms.json` after each evaluation so that `weir alarms` and the
//! dashboard can show them without asking the server.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use weir_core::alarms::{evaluate, metrics, AlarmRule, AlarmState, AlarmTracker, Datapoint, Transition};
use weir_core::stats::{MinuteTally, Tally, DURATION_BUCKETS_MS};
use weir_core::JobStatus;
use weir_pipeline::report::AlarmChange;
use weir_ports::{Notification, PortError};

use crate::Context;

/// How often the monitor samples and evaluates.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// How far back the stale-data metric looks for the last success.
const STALE_LOOKBACK_MINUTES: i64 = 24 * 60;

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
    /// Minutes before this one have been read from the counters.
    sampled_until_minute: Option<i64>,
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
        let keep_secs =
            self.rules.iter().map(|r| r.period_secs * u64::from(r.evaluation_periods)).max().unwrap_or(0);
        let keep_ms = i64::try_from(keep_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2);
        let since = self.lock().sampled_until_minute;
        let (sampled, until) = sample(ctx, since, now_ms, keep_ms).await?;
        let transitions = {
            let mut inner = self.lock();
            inner.sampled_until_minute = Some(until);
            let oldest = now_ms - keep_ms - 60_000;
            for (metric, points) in sampled {
                let series = inner.samples.entry(metric).or_default();
                series.extend(points);
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
        if !transitions.is_empty() {
            let at = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
            if let Err(e) = append_history(&ctx.data_dir, at, &transitions) {
                tracing::warn!(error = %e, "could not write the alarm history");
            }
        }
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
            html: None,
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

/// The datapoints of one tick, by metric, and the minute up to which the counters were read:
/// queue and DLQ depth now; per completed minute since `since_minute` (or, at the first tick,
/// over the rules' window) the error rate and the duration histogram; the stale-data age.
async fn sample(
    ctx: &Context,
    since_minute: Option<i64>,
    now_ms: i64,
    keep_ms: i64,
) -> Result<(Vec<(&'static str, Vec<Datapoint>)>, i64), PortError> {
    let ports = &ctx.ports;
    let queue = ports.queue.stats().await?;
    let mut out = vec![
        (metrics::DLQ_MESSAGES, vec![Datapoint::at(now_ms, queue.dead_letters as f64)]),
        (metrics::QUEUE_MESSAGES, vec![Datapoint::at(now_ms, queue.visible as f64)]),
    ];
    let now_minute = now_ms.div_euclid(60_000);
    let from = since_minute.unwrap_or(now_minute - keep_ms / 60_000 - 1).min(now_minute);
    // The whole look-back once (it holds the minutes to sample), then only the new minutes.
    let lookback = now_minute - STALE_LOOKBACK_MINUTES;
    let series = ports.jobs.series(lookback.min(from), now_minute + 1).await?;
    let (mut errors, mut durations) = (Vec::new(), Vec::new());
    for minute in from..now_minute {
        let end_ms = (minute + 1) * 60_000;
        let work: Vec<&MinuteTally> = series
            .finished
            .iter()
            .filter(|m| m.minute == minute)
            .filter(|m| matches!(m.status, JobStatus::Succeeded | JobStatus::Rejected | JobStatus::Failed))
            .collect();
        let finished: u64 = work.iter().map(|m| m.tally.files).sum();
        if finished == 0 {
            continue;
        }
        let failed: u64 =
            work.iter().filter(|m| m.status != JobStatus::Succeeded).map(|m| m.tally.files).sum();
        errors.push(Datapoint::at(end_ms, 100.0 * failed as f64 / finished as f64));
        let mut histogram = Tally::default();
        work.iter().for_each(|m| histogram.add(&m.tally));
        for (i, &count) in histogram.duration_buckets.iter().enumerate().filter(|(_, c)| **c > 0) {
            durations.push(Datapoint { at_ms: end_ms, value: bucket_seconds(i), weight: count });
        }
    }
    out.push((metrics::ERROR_RATE_PERCENT, errors));
    out.push((metrics::JOB_DURATION_SECONDS, durations));
    // Stale data: how long since the last success, while files arrived after it.
    let last_success = series
        .finished
        .iter()
        .filter(|m| m.status == JobStatus::Succeeded && m.tally.files > 0)
        .map(|m| m.minute)
        .max();
    let first_arrival_after = series
        .received
        .iter()
        .filter(|r| r.files > 0 && last_success.is_none_or(|s| r.minute > s))
        .map(|r| r.minute)
        .min();
    let stale = match (last_success, first_arrival_after) {
        (Some(s), Some(_)) => (now_ms - (s + 1) * 60_000) as f64 / 1000.0,
        (None, Some(a)) => (now_ms - a * 60_000) as f64 / 1000.0,
        (_, None) => 0.0,
    };
    out.push((metrics::STALE_SECONDS, vec![Datapoint::at(now_ms, stale.max(0.0))]));
    Ok((out, now_minute))
}

/// The duration a histogram bucket stands for, in seconds: its upper bound (the last, open
/// bucket: twice the last bound), so a percentile errs on the slow side.
fn bucket_seconds(i: usize) -> f64 {
    let le =
        DURATION_BUCKETS_MS.get(i).copied().unwrap_or(2 * DURATION_BUCKETS_MS[DURATION_BUCKETS_MS.len() - 1]);
    le as f64 / 1000.0
}

fn write_states(path: &Path, states: &[AlarmStatus]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(states).map_err(std::io::Error::other)?)?;
    std::fs::rename(tmp, path)
}

/// The alarm history of a data dir: the last [`HISTORY_KEEP`] changes of state, oldest first,
/// as the daily report lists them.
pub const HISTORY_FILE: &str = weir_pipeline::report::ALARM_HISTORY_FILE;
pub const HISTORY_KEEP: usize = 1_000;

/// Appends changes of state to the history, keeping the last [`HISTORY_KEEP`]. One process
/// evaluates alarms per data dir (`weir run` holds its lock), so read-modify-write is safe.
fn append_history(
    data_dir: &Path,
    at: chrono::DateTime<chrono::Utc>,
    transitions: &[Transition],
) -> std::io::Result<()> {
    let mut history = read_history(data_dir)?;
    // As for the alerts: an alarm that starts out fine is not news.
    let news =
        transitions.iter().filter(|t| !(t.from == AlarmState::InsufficientData && t.to == AlarmState::Ok));
    history.extend(news.map(|t| AlarmChange {
        at,
        alarm: t.alarm.clone(),
        from: t.from.as_str().to_owned(),
        to: t.to.as_str().to_owned(),
        reason: t.reason.clone(),
    }));
    let drop = history.len().saturating_sub(HISTORY_KEEP);
    history.drain(..drop);
    let path = data_dir.join(HISTORY_FILE);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&history).map_err(std::io::Error::other)?)?;
    std::fs::rename(tmp, path)
}

/// The alarm history `weir run` wrote in a data dir (empty before the first change).
pub fn read_history(data_dir: &Path) -> std::io::Result<Vec<AlarmChange>> {
    weir_pipeline::report::read_alarm_history(data_dir)
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
