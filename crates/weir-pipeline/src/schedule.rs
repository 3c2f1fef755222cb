//! Work on a clock: the `[[schedule]]`s of the config, fired once per due time.
//!
//! Each schedule has a durable record in the job store ([`weir_ports::ScheduleMark`]): the time
//! it was first seen (its anchor) and the due time it last fired for. A look at the clock
//! ([`Scheduler::tick`]) finds, per schedule, the latest due time at or before now that comes
//! after the last one fired (counted from the anchor if it never fired) and claims it
//! ([`weir_ports::JobStore::claim_schedule`], atomic, only forward): so
//!
//! - several `weir run`s (or `weir worker`s, or weir-lambda invoked by EventBridge) sharing one
//!   store fire a due time once: one claim wins;
//! - a restart does not fire it again, and a `rate()` keeps counting from where it was;
//! - times missed while weir was down are caught up once at the next look, not once each.
//!
//! The work runs after the claim: at most once per due time (a crash during it is not
//! retried; the next due time runs as usual).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use weir_core::schedule::{Schedule, ScheduleError, Tz};
use weir_core::schedule_config::{ScheduleConfig, WorkKind};
use weir_ports::{JobStore, PortError};

use crate::Engine;

/// What a schedule runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduledWork {
    /// The daily report of `pipeline` (every pipeline when `None`).
    ///
    /// A firing at a due time reports on the day before it ([`crate::report::run_daily`]).
    DailyReport { pipeline: Option<String> },
    /// Events for the objects under `prefix` in `bucket` that have no finished job.
    Reprocess { bucket: String, prefix: String },
    /// One pass of the retention rules ([`crate::retention::sweep`]).
    RetentionSweep,
}

impl ScheduledWork {
    /// The work a configured schedule names.
    pub fn of(config: &weir_core::Config, s: &ScheduleConfig) -> ScheduledWork {
        match s.work {
            WorkKind::DailyReport => ScheduledWork::DailyReport { pipeline: s.pipeline.clone() },
            WorkKind::Reprocess => ScheduledWork::Reprocess {
                bucket: s.bucket.clone().unwrap_or_else(|| config.buckets.input.clone()),
                prefix: s.prefix.clone().unwrap_or_default(),
            },
            WorkKind::RetentionSweep => ScheduledWork::RetentionSweep,
        }
    }
}

/// Runs one firing's work; returns what it did, in a line.
///
/// `alarm_history` is the data dir whose alarm history an embedded report lists (`None` on
/// AWS, where the report says it cannot tell).
pub async fn run_work(
    engine: &Engine,
    work: &ScheduledWork,
    due: DateTime<Utc>,
    alarm_history: Option<&Path>,
) -> Result<String, PortError> {
    match work {
        ScheduledWork::DailyReport { pipeline } => {
            use crate::report::{read_alarm_history, run_daily, DailyOptions, ReportRunError};
            let day = due.date_naive() - chrono::Days::new(1);
            let alarm_changes = match alarm_history.map(read_alarm_history) {
                Some(Ok(changes)) => Some(changes),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the alarm history could not be read; the report leaves it out");
                    None
                }
                None => None,
            };
            let options = DailyOptions { pipeline: pipeline.clone(), alarm_changes, quiet: false };
            // run_daily's future is not provably Send (rustc's higher-ranked lifetimes in its
            // stream combinators), and the scheduler is a spawned task: the report runs on a
            // blocking thread, on this runtime.
            let (ports, config) = (engine.ports().clone(), engine.config().clone());
            let handle = tokio::runtime::Handle::current();
            let outcome = tokio::task::spawn_blocking(move || {
                handle.block_on(async { run_daily(&ports, &config, day, &options).await })
            })
            .await
            .map_err(|e| PortError::unavailable("the daily report's thread", e))?;
            match outcome {
                Ok(r) => Ok(format!("daily report of {day}: {}/{} ({})", r.bucket, r.html_key, r.link)),
                // A store that failed is worth the next look; anything else would fail again.
                Err(ReportRunError::Store { source, .. }) => Err(source),
                Err(e) => Ok(format!("daily report of {day} failed: {e}")),
            }
        }
        ScheduledWork::Reprocess { bucket, prefix } => {
            use crate::reconcile::{run, Reprocess};
            let r = Reprocess {
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                status: None,
                force: false,
                rate: 100,
                checkpoint: None,
            };
            let tally = run(engine, &r, |_| {}).await?;
            Ok(format!(
                "reprocess {bucket}/{prefix}: {} sent, {} finished already, {} in flight",
                tally.sent, tally.skipped_finished, tally.skipped_in_flight
            ))
        }
        ScheduledWork::RetentionSweep => {
            let mode = crate::retention::Mode::Apply;
            let r =
                crate::retention::sweep(engine.config(), engine.ports(), Utc::now(), mode, |_| {}).await?;
            Ok(format!(
                "retention: {} objects, {} job records, {} notifications expired ({} kept in use)",
                r.objects, r.jobs, r.notifications, r.kept_in_use
            ))
        }
    }
}

/// The latest due time of `schedule` that is after `after` and at or before `now`.
pub fn latest_due(schedule: &Schedule, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Schedule::Rate(interval) = schedule {
        let step = interval.num_milliseconds().max(1);
        let n = (now - after).num_milliseconds().div_euclid(step);
        return (n >= 1).then(|| after + chrono::Duration::milliseconds(n * step));
    }
    // A cron: step through its times (bounded; a long outage of a minutely cron starts closer).
    let mut from = after;
    if now - after > chrono::Duration::days(400) {
        from = now - chrono::Duration::days(400);
    }
    let mut latest = None;
    for _ in 0..1_000_000 {
        match schedule.next_after(from) {
            Some(t) if t <= now => {
                latest = Some(t);
                from = t;
            }
            _ => break,
        }
    }
    latest
}

/// One schedule as the scheduler runs it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub config: ScheduleConfig,
    /// The expression, in the schedule's time zone.
    pub schedule: Schedule,
    pub zone: Tz,
}

/// A firing: which schedule, for which due time, and what its work said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub name: String,
    pub due: DateTime<Utc>,
    pub outcome: String,
}

/// A schedule's state, as `weir schedules` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleStatus {
    pub name: String,
    pub expression: String,
    pub work: &'static str,
    /// The time zone the expression's times are in (UTC unless `time_zone` says otherwise).
    pub zone: Tz,
    pub next: Option<DateTime<Utc>>,
    pub last_due: Option<DateTime<Utc>>,
    pub fired_at: Option<DateTime<Utc>>,
}

/// The configured schedules, parsed (a config that passed `weir check` parses), and the daily
/// report at `report.daily_report_time_utc` unless a schedule already runs it.
pub fn planned(config: &weir_core::Config) -> Result<Vec<Planned>, ScheduleError> {
    config
        .schedules
        .iter()
        .cloned()
        .chain(daily_report_at_report_time(config))
        .map(|s| Ok(Planned { schedule: s.schedule()?, zone: s.zone()?, config: s }))
        .collect()
}

/// The name of the daily report's schedule when only `report.daily_report_time_utc` asks for it.
pub const DAILY_REPORT: &str = "daily-report";

/// `[report] daily_report_time_utc = "HH:MM"` (the seed's setting, 08:00 by default) as a
/// schedule, `cron(MM HH * * ? *)`, for a config whose `[[schedule]]`s run no daily report (and
/// have none named [`DAILY_REPORT`]).
pub fn daily_report_at_report_time(config: &weir_core::Config) -> Option<ScheduleConfig> {
    let taken = config.schedules.iter().any(|s| s.work == WorkKind::DailyReport || s.name == DAILY_REPORT);
    let (hour, minute) = config.report.daily_time()?;
    (!taken).then(|| ScheduleConfig {
        name: DAILY_REPORT.into(),
        expression: format!("cron({minute} {hour} * * ? *)"),
        time_zone: None,
        work: WorkKind::DailyReport,
        pipeline: None,
        prefix: None,
        bucket: None,
    })
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Where a schedule counts from: the due time it last fired for, else its anchor.
async fn baseline(
    jobs: &dyn JobStore,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, weir_ports::ScheduleMark), PortError> {
    let mark = jobs.schedule_mark(name, now.timestamp_millis()).await?;
    Ok((at(mark.last_due_ms.unwrap_or(mark.anchor_ms)), mark))
}

/// Each schedule's next and last run, as of `now` (records a schedule first seen now).
pub async fn status(
    jobs: &dyn JobStore,
    schedules: &[Planned],
    now: DateTime<Utc>,
) -> Result<Vec<ScheduleStatus>, PortError> {
    let mut out = Vec::new();
    for p in schedules {
        let (from, mark) = baseline(jobs, &p.config.name, now).await?;
        // A time missed while nothing ran is due at once; otherwise the next after now.
        let next = latest_due(&p.schedule, from, now).or_else(|| match p.schedule {
            Schedule::Rate(_) => p.schedule.next_after(from),
            Schedule::Cron(_) => p.schedule.next_after(from.max(now)),
        });
        out.push(ScheduleStatus {
            name: p.config.name.clone(),
            expression: p.config.expression.clone(),
            work: p.config.work.as_str(),
            zone: p.zone,
            next,
            last_due: mark.last_due_ms.map(at),
            fired_at: mark.fired_at_ms.map(at),
        });
    }
    Ok(out)
}

/// The schedules of one engine.
pub struct Scheduler {
    engine: Arc<Engine>,
    schedules: Vec<Planned>,
    alarm_history: Option<PathBuf>,
}

/// The longest the scheduler sleeps between two looks at the clock (and at the store, where
/// another process may have fired a schedule).
const MAX_SLEEP: Duration = Duration::from_secs(30);

impl Scheduler {
    pub fn new(engine: Arc<Engine>) -> Result<Scheduler, ScheduleError> {
        let schedules = planned(engine.config())?;
        Ok(Scheduler { engine, schedules, alarm_history: None })
    }

    /// The data dir whose alarm history the daily report lists (embedded weir).
    pub fn with_alarm_history(mut self, data_dir: PathBuf) -> Scheduler {
        self.alarm_history = Some(data_dir);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.schedules.is_empty()
    }

    /// One look at the clock, `now`: every schedule with a due time it has not fired for fires
    /// once (for the latest such time), if this process wins the claim. Returns what fired
    /// here. A schedule whose work fails is logged and counts as fired.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Vec<Fired>, PortError> {
        let jobs = self.engine.ports().jobs.as_ref();
        let mut fired = Vec::new();
        for p in &self.schedules {
            let name = &p.config.name;
            let (from, _) = baseline(jobs, name, now).await?;
            let Some(due) = latest_due(&p.schedule, from, now) else { continue };
            if !jobs.claim_schedule(name, due.timestamp_millis()).await? {
                continue;
            }
            let work = ScheduledWork::of(self.engine.config(), &p.config);
            tracing::info!(schedule = %name, due = %due, work = p.config.work.as_str(), "schedule fired");
            let outcome = match run_work(&self.engine, &work, due, self.alarm_history.as_deref()).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    tracing::warn!(schedule = %name, due = %due, error = %e, "scheduled work failed");
                    format!("failed: {e}")
                }
            };
            tracing::info!(schedule = %name, due = %due, outcome = %outcome, "scheduled work done");
            fired.push(Fired { name: name.clone(), due, outcome });
        }
        Ok(fired)
    }

    /// The earliest next due time after `now` over every schedule, from the store's records.
    async fn next_due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let status = status(self.engine.ports().jobs.as_ref(), &self.schedules, now).await.ok()?;
        status.into_iter().filter_map(|s| s.next).min()
    }

    /// Looks at the clock until `shutdown`: at start (catching up what was missed), then at
    /// each next due time (and every 30 s at least).
    pub async fn run(self, shutdown: CancellationToken) {
        if self.is_empty() {
            return;
        }
        let mut first_look = true;
        loop {
            match self.tick(Utc::now()).await {
                // The first look is where times missed while weir was down are caught up.
                Ok(fired) if first_look => {
                    first_look = false;
                    tracing::info!(
                        schedules = self.schedules.len(),
                        fired = fired.len(),
                        "schedules: first look at the clock done"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "schedules: the job store is unavailable; will look again")
                }
            }
            let now = Utc::now();
            let wait = self
                .next_due(now)
                .await
                .and_then(|t| (t - now).to_std().ok())
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(200), MAX_SLEEP);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// The schedule an EventBridge rule stands for, by its name: the rule ARN's last part is the
/// schedule's name, or `weir-` followed by it (as the SAM template names them).
pub fn schedule_for_rule<'a>(config: &'a weir_core::Config, rule_arn: &str) -> Option<&'a ScheduleConfig> {
    let rule = rule_arn.rsplit('/').next().unwrap_or(rule_arn);
    config.schedules.iter().find(|s| s.name == rule || rule.strip_prefix("weir-") == Some(s.name.as_str()))
}

/// Runs the schedule a scheduled event names, for its due `time`, unless that time was fired
/// already (EventBridge delivers at least once; a worker's scheduler may have fired it).
pub async fn fire(
    engine: &Engine,
    schedule: &ScheduleConfig,
    time: DateTime<Utc>,
) -> Result<Option<Fired>, PortError> {
    let jobs = engine.ports().jobs.as_ref();
    jobs.schedule_mark(&schedule.name, time.timestamp_millis()).await?;
    if !jobs.claim_schedule(&schedule.name, time.timestamp_millis()).await? {
        return Ok(None);
    }
    let work = ScheduledWork::of(engine.config(), schedule);
    let outcome = run_work(engine, &work, time, None).await?;
    Ok(Some(Fired { name: schedule.name.clone(), due: time, outcome }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_time_is_a_schedule_unless_one_runs_the_report() {
        let mut config = weir_core::Config::bundled();
        config.schedules.clear();
        config.report.daily_report_time_utc = "07:30".into();
        let all = planned(&config).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].config.name.as_str(), all[0].config.expression.as_str()),
            (DAILY_REPORT, "cron(30 7 * * ? *)")
        );
        let due = latest_due(
            &all[0].schedule,
            "2026-03-01T00:00:00Z".parse().unwrap(),
            "2026-03-02T07:31:00Z".parse().unwrap(),
        );
        assert_eq!(due, Some("2026-03-02T07:30:00Z".parse().unwrap()));

        config.schedules.push(ScheduleConfig {
            name: "morning".into(),
            expression: "cron(0 6 * * ? *)".into(),
            time_zone: None,
            work: WorkKind::DailyReport,
            pipeline: Some("sales".into()),
            prefix: None,
            bucket: None,
        });
        let all = planned(&config).unwrap();
        assert_eq!(all.iter().map(|p| p.config.name.as_str()).collect::<Vec<_>>(), ["morning"]);
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_zoned_schedule_catches_up_once_for_its_latest_local_time() {
        let mut config = weir_core::Config::bundled();
        config.schedules = vec![ScheduleConfig {
            name: "berlin".into(),
            expression: "cron(30 2 * * ? *)".into(),
            time_zone: Some("Europe/Berlin".into()),
            work: WorkKind::RetentionSweep,
            pipeline: None,
            prefix: None,
            bucket: None,
        }];
        let all = planned(&config).unwrap();
        assert_eq!(all[0].zone.name(), "Europe/Berlin");
        // Down from the 27th to after the spring change: the shifted 02:30 of the 29th, once.
        assert_eq!(
            latest_due(&all[0].schedule, t("2026-03-27T00:00:00Z"), t("2026-03-29T02:00:00Z")),
            Some(t("2026-03-29T01:30:00Z"))
        );
        // The repeated 02:30 of 25 October fired the first time: not again the second.
        assert_eq!(latest_due(&all[0].schedule, t("2026-10-25T00:30:00Z"), t("2026-10-25T01:45:00Z")), None);
        config.schedules[0].time_zone = Some("Mars/Olympus_Mons".into());
        assert!(planned(&config)
            .unwrap_err()
            .to_string()
            .contains("\"Mars/Olympus_Mons\" is not a time zone"));
    }

    #[test]
    fn the_latest_missed_time_is_the_one_that_fires() {
        let rate: Schedule = "rate(1 hour)".parse().unwrap();
        assert_eq!(latest_due(&rate, t("2026-01-01T00:00:00Z"), t("2026-01-01T00:59:59Z")), None);
        assert_eq!(
            latest_due(&rate, t("2026-01-01T00:00:00Z"), t("2026-01-01T05:30:00Z")),
            Some(t("2026-01-01T05:00:00Z")),
            "five missed hours fire once, for the last, on the anchor's grid"
        );
        let cron: Schedule = "cron(0 8 * * ? *)".parse().unwrap();
        assert_eq!(
            latest_due(&cron, t("2026-01-01T08:00:00Z"), t("2026-01-04T09:00:00Z")),
            Some(t("2026-01-04T08:00:00Z"))
        );
        assert_eq!(latest_due(&cron, t("2026-01-04T08:00:00Z"), t("2026-01-04T09:00:00Z")), None);
        let minutely: Schedule = "cron(* * * * ? *)".parse().unwrap();
        assert_eq!(
            latest_due(&minutely, t("2020-01-01T00:00:00Z"), t("2026-01-04T09:00:30Z")),
            Some(t("2026-01-04T09:00:00Z")),
            "a long outage is bounded and still ends on the latest time"
        );
    }
}
