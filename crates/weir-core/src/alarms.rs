//! Alarm rules and their evaluation, in the shape of the seeds' CloudWatch alarms.
//!
//! A rule names a metric, a statistic (`Average`, `Sum`, `Minimum`, `Maximum`, `SampleCount`,
//! or a percentile such as `p99`), a period, how many periods are evaluated, a threshold and a
//! comparison. [`evaluate`] turns the datapoints of a metric into a state: `ALARM` when every
//! evaluated period breaches, `OK` when not, `INSUFFICIENT_DATA` when a period has no datapoint.
//! [`AlarmTracker`] remembers each rule's state and reports transitions, which the server sends
//! to the `alerts` topic.
//!
//! This module is pure (no clock, no I/O) so that the rules can be tested on exact datapoints;
//! sampling the metrics and publishing transitions happen where the stores are.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One alarm rule (CloudWatch `PutMetricAlarm`'s fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmRule {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A metric the server samples: see [`metrics`].
    pub metric: String,
    pub statistic: Statistic,
    pub period_secs: u64,
    pub evaluation_periods: u32,
    pub threshold: f64,
    pub comparison: Comparison,
}

/// The metrics rules may name, sampled by the server.
pub mod metrics {
    /// Messages in the dead-letter queue.
    pub const DLQ_MESSAGES: &str = "dlq_messages";
    /// Messages waiting in the queue (visible).
    pub const QUEUE_MESSAGES: &str = "queue_messages";
    /// Percent of the jobs finished in the period that were rejected or failed.
    pub const ERROR_RATE_PERCENT: &str = "error_rate_percent";
    /// Duration of each job finished in the period.
    pub const JOB_DURATION_SECONDS: &str = "job_duration_seconds";
    /// Seconds since the last successful job, while files arrive (0 when none arrived since).
    pub const STALE_SECONDS: &str = "stale_seconds";

    /// Every metric a rule may name.
    pub const ALL: [&str; 5] =
        [DLQ_MESSAGES, QUEUE_MESSAGES, ERROR_RATE_PERCENT, JOB_DURATION_SECONDS, STALE_SECONDS];
}

/// How the datapoints of one period become one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    Average,
    Sum,
    Minimum,
    Maximum,
    SampleCount,
    /// `p99` → 99.0.
    Percentile(f64),
}

impl Statistic {
    /// The statistic of a non-empty set of values.
    pub fn apply(self, values: &[f64]) -> Option<f64> {
        let weighted: Vec<(f64, u64)> = values.iter().map(|&v| (v, 1)).collect();
        self.apply_weighted(&weighted)
    }

    /// The statistic of values that each stand for `weight` observations (a histogram bucket:
    /// its value, how many jobs fell in it); `None` without observations.
    pub fn apply_weighted(self, values: &[(f64, u64)]) -> Option<f64> {
        let n: u64 = values.iter().map(|(_, w)| w).sum();
        if n == 0 {
            return None;
        }
        let weighted_sum: f64 = values.iter().map(|(v, w)| v * *w as f64).sum();
        let present = values.iter().filter(|(_, w)| *w > 0).map(|(v, _)| *v);
        Some(match self {
            Statistic::Average => weighted_sum / n as f64,
            Statistic::Sum => weighted_sum,
            Statistic::Minimum => present.fold(f64::INFINITY, f64::min),
            Statistic::Maximum => present.fold(f64::NEG_INFINITY, f64::max),
            Statistic::SampleCount => n as f64,
            Statistic::Percentile(p) => {
                // Nearest rank over the observations.
                let mut sorted: Vec<(f64, u64)> = values.iter().copied().filter(|(_, w)| *w > 0).collect();
                sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
                let rank = ((p / 100.0) * n as f64).ceil().clamp(1.0, n as f64) as u64;
                let mut seen = 0;
                sorted
                    .iter()
                    .find(|(_, w)| {
                        seen += w;
                        seen >= rank
                    })?
                    .0
            }
        })
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statistic::Average => f.write_str("Average"),
            Statistic::Sum => f.write_str("Sum"),
            Statistic::Minimum => f.write_str("Minimum"),
            Statistic::Maximum => f.write_str("Maximum"),
            Statistic::SampleCount => f.write_str("SampleCount"),
            Statistic::Percentile(p) => write!(f, "p{p}"),
        }
    }
}

impl std::str::FromStr for Statistic {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "Average" => Statistic::Average,
            "Sum" => Statistic::Sum,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            "SampleCount" => Statistic::SampleCount,
            p => match p.strip_prefix('p').and_then(|n| n.parse::<f64>().ok()) {
                Some(n) if n > 0.0 && n <= 100.0 => Statistic::Percentile(n),
                _ => {
                    return Err(format!(
                        "statistic {s:?}: Average, Sum, Minimum, Maximum, SampleCount or pNN (p99)"
                    ))
                }
            },
        })
    }
}

impl Serialize for Statistic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Statistic {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    GreaterThanOrEqualToThreshold,
    GreaterThanThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

impl Comparison {
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => value >= threshold,
            Comparison::GreaterThanThreshold => value > threshold,
            Comparison::LessThanThreshold => value < threshold,
            Comparison::LessThanOrEqualToThreshold => value <= threshold,
        }
    }

    /// `>=`, `>`, `<`, `<=`.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => ">=",
            Comparison::GreaterThanThreshold => ">",
            Comparison::LessThanThreshold => "<",
            Comparison::LessThanOrEqualToThreshold => "<=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// One sample of a metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Datapoint {
    pub at_ms: i64,
    pub value: f64,
    /// How many observations the value stands for (1 for a sample; a histogram bucket's count).
    pub weight: u64,
}

impl Datapoint {
    /// One observation.
    pub fn at(at_ms: i64, value: f64) -> Datapoint {
        Datapoint { at_ms, value, weight: 1 }
    }
}

/// A rule's state and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub state: AlarmState,
    pub reason: String,
    /// The statistic of each evaluated period, oldest first (`None`: no datapoint).
    pub values: Vec<Option<f64>>,
}

/// The rule's state at `now_ms` from the datapoints of its metric: the last
/// `evaluation_periods` whole periods ending at `now_ms`.
pub fn evaluate(rule: &AlarmRule, datapoints: &[Datapoint], now_ms: i64) -> Evaluation {
    let period = i64::try_from(rule.period_secs.max(1)).unwrap_or(i64::MAX / 4).saturating_mul(1000);
    let n = rule.evaluation_periods.max(1) as i64;
    let values: Vec<Option<f64>> = (0..n)
        .rev()
        .map(|i| {
            let end = now_ms - i * period;
            let start = end - period;
            let in_period: Vec<(f64, u64)> = datapoints
                .iter()
                .filter(|d| d.at_ms > start && d.at_ms <= end)
                .map(|d| (d.value, d.weight))
                .collect();
            rule.statistic.apply_weighted(&in_period)
        })
        .collect();
    let shown = |v: &Option<f64>| v.map_or("-".to_string(), |v| v.to_string());
    let list = values.iter().map(shown).collect::<Vec<_>>().join(", ");
    let what = format!(
        "{} {} over {} period(s) of {} s [{list}] {} {}",
        rule.statistic,
        rule.metric,
        n,
        rule.period_secs,
        rule.comparison.symbol(),
        rule.threshold
    );
    let state = if values.iter().any(Option::is_none) {
        AlarmState::InsufficientData
    } else if values.iter().flatten().all(|v| rule.comparison.breaches(*v, rule.threshold)) {
        AlarmState::Alarm
    } else {
        AlarmState::Ok
    };
    let reason = match state {
        AlarmState::InsufficientData => format!("not enough data: {what}"),
        AlarmState::Alarm => format!("threshold crossed: {what}"),
        AlarmState::Ok => format!("within threshold: {what}"),
    };
    Evaluation { state, reason, values }
}

/// The built-in rules (the issue's defaults).
pub fn default_rules() -> Vec<AlarmRule> {
    let rule = |name: &str,
                description: &str,
                metric: &str,
                statistic,
                period_secs,
                evaluation_periods,
                threshold,
                comparison| {
        AlarmRule {
            name: name.into(),
            description: description.into(),
            metric: metric.into(),
            statistic,
            period_secs,
            evaluation_periods,
            threshold,
            comparison,
        }
    };
    vec![
        rule(
            "dlq-not-empty",
            "The dead-letter queue has messages",
            metrics::DLQ_MESSAGES,
            Statistic::Maximum,
            60,
            1,
            1.0,
            Comparison::GreaterThanOrEqualToThreshold,
        ),
        rule(
            "queue-backlog",
            "More than 100 messages waiting for 15 minutes",
            metrics::QUEUE_MESSAGES,
            Statistic::Minimum,
            300,
            3,
            100.0,
            Comparison::GreaterThanThreshold,
        ),
        rule(
            "error-rate",
            "More than 1 % of the finished files were rejected or failed",
            metrics::ERROR_RATE_PERCENT,
            Statistic::Average,
            300,
            1,
            1.0,
            Comparison::GreaterThanThreshold,
        ),
        rule(
            "slow-jobs",
            "p99 job duration above 30 s",
            metrics::JOB_DURATION_SECONDS,
            Statistic::Percentile(99.0),
            300,
            1,
            30.0,
            Comparison::GreaterThanThreshold,
        ),
        rule(
            "stale-data",
            "No successful job for an hour while files arrive",
            metrics::STALE_SECONDS,
            Statistic::Maximum,
            300,
            1,
            3600.0,
            Comparison::GreaterThanOrEqualToThreshold,
        ),
    ]
}

/// A change of a rule's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub alarm: String,
    pub from: AlarmState,
    pub to: AlarmState,
    pub reason: String,
}

/// Each rule's current state; rules start in `INSUFFICIENT_DATA`, as in CloudWatch.
#[derive(Debug, Clone, Default)]
pub struct AlarmTracker {
    states: BTreeMap<String, (AlarmState, String)>,
}

impl AlarmTracker {
    /// Records an evaluation; returns the transition if the state changed.
    pub fn update(&mut self, rule: &AlarmRule, evaluation: &Evaluation) -> Option<Transition> {
        let entry = self
            .states
            .entry(rule.name.clone())
            .or_insert((AlarmState::InsufficientData, "not evaluated yet".into()));
        let from = entry.0;
        *entry = (evaluation.state, evaluation.reason.clone());
        (from != evaluation.state).then(|| Transition {
            alarm: rule.name.clone(),
            from,
            to: evaluation.state,
            reason: evaluation.reason.clone(),
        })
    }

    /// The state and reason of a rule.
    pub fn state(&self, name: &str) -> (AlarmState, &str) {
        self.states.get(name).map_or((AlarmState::InsufficientData, "not evaluated yet"), |(s, r)| (*s, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(values: &[(i64, f64)]) -> Vec<Datapoint> {
        values.iter().map(|&(s, value)| Datapoint::at(s * 1000, value)).collect()
    }

    #[test]
    fn statistics() {
        let v = [3.0, 1.0, 2.0, 10.0];
        assert_eq!(Statistic::Average.apply(&v), Some(4.0));
        assert_eq!(Statistic::Sum.apply(&v), Some(16.0));
        assert_eq!(Statistic::Minimum.apply(&v), Some(1.0));
        assert_eq!(Statistic::Maximum.apply(&v), Some(10.0));
        assert_eq!(Statistic::SampleCount.apply(&v), Some(4.0));
        assert_eq!(Statistic::Percentile(50.0).apply(&v), Some(2.0));
        assert_eq!(Statistic::Percentile(99.0).apply(&v), Some(10.0));
        assert_eq!(Statistic::Average.apply(&[]), None);
        assert_eq!("p99".parse::<Statistic>(), Ok(Statistic::Percentile(99.0)));
        assert!("p0".parse::<Statistic>().is_err() && "Median".parse::<Statistic>().is_err());
    }

    #[test]
    fn dlq_rule_goes_to_alarm_and_back_with_transitions() {
        let rules = default_rules();
        let dlq = &rules[0];
        let mut tracker = AlarmTracker::default();
        let e = evaluate(dlq, &[], 60_000);
        assert_eq!(e.state, AlarmState::InsufficientData);
        assert_eq!(tracker.update(dlq, &e), None);

        let e = evaluate(dlq, &points(&[(10, 0.0), (40, 2.0)]), 60_000);
        assert_eq!(e.state, AlarmState::Alarm, "{}", e.reason);
        let t = tracker.update(dlq, &e).unwrap();
        assert_eq!((t.from, t.to), (AlarmState::InsufficientData, AlarmState::Alarm));
        assert!(t.reason.contains("Maximum dlq_messages") && t.reason.contains(">= 1"), "{}", t.reason);

        let e = evaluate(dlq, &points(&[(40, 2.0), (70, 0.0), (100, 0.0)]), 120_000);
        assert_eq!(e.state, AlarmState::Ok, "{}", e.reason);
        assert_eq!(tracker.update(dlq, &e).unwrap().to, AlarmState::Ok);
        assert_eq!(tracker.state("dlq-not-empty").0, AlarmState::Ok);
    }

    #[test]
    fn every_evaluated_period_must_breach() {
        let backlog = &default_rules()[1];
        let now = 900;
        let high = points(&[(100, 150.0), (400, 200.0), (700, 101.0)]);
        assert_eq!(evaluate(backlog, &high, now * 1000).state, AlarmState::Alarm);
        let dip = points(&[(100, 150.0), (400, 50.0), (700, 101.0)]);
        assert_eq!(evaluate(backlog, &dip, now * 1000).state, AlarmState::Ok);
        let gap = points(&[(100, 150.0), (700, 101.0)]);
        let e = evaluate(backlog, &gap, now * 1000);
        assert_eq!(e.state, AlarmState::InsufficientData);
        assert_eq!(e.values, vec![Some(150.0), None, Some(101.0)]);
    }

    #[test]
    fn rules_parse_from_toml() {
        #[derive(Deserialize)]
        struct Doc {
            alarms: Vec<AlarmRule>,
        }
        let doc: Doc = toml::from_str(
            r#"
            [[alarms]]
            name = "slow"
            metric = "job_duration_seconds"
            statistic = "p95"
            period_secs = 60
            evaluation_periods = 2
            threshold = 5.0
            comparison = "GreaterThanThreshold"
            "#,
        )
        .unwrap();
        assert_eq!(doc.alarms[0].statistic, Statistic::Percentile(95.0));
        let json = serde_json::to_value(&default_rules()[3]).unwrap();
        assert_eq!(json["statistic"], "p99");
    }
}
