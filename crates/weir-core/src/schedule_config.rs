//! `[[schedule]]` and `[retention]` in `weir.toml`: work that runs on a clock rather than on an
//! upload, and how long objects and weir's own records are kept.
//!
//! ```toml
//! [[schedule]]
//! name = "daily-report"
//! expression = "cron(0 8 * * ? *)"   # EventBridge syntax
//! time_zone = "Europe/Berlin"        # IANA name; default UTC
//! work = "daily_report"              # or "reprocess" (with prefix, bucket) or "retention_sweep"
//!
//! [retention.jobs]
//! retention_days = 90                # finished job records
//!
//! [[retention.rule]]
//! bucket = "weir-input"
//! prefix = "failed/"
//! expire_after_days = 30
//! ```
//!
//! Days are read as signed numbers so that `weir check` can say which setting is negative,
//! rather than the TOML reader refusing the file without a path.

use serde::{Deserialize, Serialize};

use crate::keys::validate_bucket;
use crate::problem::Problem;
use crate::schedule::{parse_zone, Schedule, Tz};

/// One `[[schedule]]`: a name, when, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Names the schedule's durable record (its last run): renaming a schedule starts it afresh.
    pub name: String,
    /// `rate(1 day)`, `cron(0 8 * * ? *)`, as EventBridge writes them.
    pub expression: String,
    /// The IANA time zone a `cron()`'s times are in (`Europe/Berlin`); default UTC. Not on AWS,
    /// where the SAM template's EventBridge rules run in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    pub work: WorkKind,
    /// `daily_report`: the pipeline reported on (default: every pipeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// `reprocess`: the key prefix whose objects get events again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `reprocess`: the bucket (default: the input bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
}

/// What a schedule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    /// The daily report (`reports/YYYY-MM-DD/daily_report.html`).
    DailyReport,
    /// Events again for the objects under a prefix that have no finished job (a backfill).
    Reprocess,
    /// One pass of the retention rules.
    RetentionSweep,
}

impl WorkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkKind::DailyReport => "daily_report",
            WorkKind::Reprocess => "reprocess",
            WorkKind::RetentionSweep => "retention_sweep",
        }
    }
}

impl ScheduleConfig {
    /// The parsed expression in its time zone (`weir check` has vouched for both in a checked
    /// config).
    pub fn schedule(&self) -> Result<Schedule, crate::schedule::ScheduleError> {
        Ok(self.expression.parse::<Schedule>()?.in_zone(self.zone()?))
    }

    /// The time zone: `time_zone`, else UTC.
    pub fn zone(&self) -> Result<Tz, crate::schedule::ScheduleError> {
        self.time_zone.as_deref().map_or(Ok(Tz::UTC), parse_zone)
    }

    fn validate(&self, at: &str, pipelines: &[String], on_aws: bool) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !name_ok(&self.name) {
            problems.push(Problem::new(
                format!("{at}.name"),
                format!("{:?}: use 1-64 letters, digits and - _ .", self.name),
            ));
        }
        if let Err(e) = self.expression.parse::<Schedule>() {
            problems.push(Problem::new(format!("{at}.expression"), e.to_string()));
        }
        match self.zone() {
            Err(e) => problems.push(Problem::new(format!("{at}.time_zone"), e.to_string())),
            Ok(zone) if on_aws && !is_utc(zone) => problems.push(Problem::new(
                format!("{at}.time_zone"),
                format!(
                    "{}: on AWS this schedule is also an EventBridge rule (the SAM template's weir-{}), and \
                     rules run in UTC; leave time_zone out and write the expression's times in UTC",
                    zone.name(),
                    self.name
                ),
            )),
            Ok(_) => {}
        }
        let stray = |field: &str, set: bool, problems: &mut Vec<Problem>| {
            if set {
                problems.push(Problem::new(
                    format!("{at}.{field}"),
                    format!("{field} does not apply to work = \"{}\"", self.work.as_str()),
                ));
            }
        };
        match self.work {
            WorkKind::DailyReport => {
                stray("prefix", self.prefix.is_some(), &mut problems);
                stray("bucket", self.bucket.is_some(), &mut problems);
                if let Some(p) = &self.pipeline {
                    if !pipelines.contains(p) {
                        problems
                            .push(Problem::new(format!("{at}.pipeline"), format!("no pipeline named {p:?}")));
                    }
                }
            }
            WorkKind::Reprocess => {
                stray("pipeline", self.pipeline.is_some(), &mut problems);
                if self.prefix.is_none() {
                    problems.push(Problem::new(
                        format!("{at}.prefix"),
                        "reprocess needs the key prefix to send events for, e.g. prefix = \"raw/\"",
                    ));
                }
                if let Some(b) = &self.bucket {
                    if let Err(e) = validate_bucket(b) {
                        problems.push(Problem::new(format!("{at}.bucket"), e));
                    }
                }
            }
            WorkKind::RetentionSweep => {
                stray("pipeline", self.pipeline.is_some(), &mut problems);
                stray("prefix", self.prefix.is_some(), &mut problems);
                stray("bucket", self.bucket.is_some(), &mut problems);
            }
        }
        problems
    }
}

/// Whether a zone is UTC by another name (its offset is 0 all year, for ever).
fn is_utc(zone: Tz) -> bool {
    matches!(
        zone,
        Tz::UTC
            | Tz::Etc__UTC
            | Tz::Etc__UCT
            | Tz::Etc__Universal
            | Tz::Etc__Zulu
            | Tz::UCT
            | Tz::Universal
            | Tz::Zulu
            | Tz::Etc__GMT
            | Tz::GMT
    )
}

fn name_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `[retention]`: object rules per bucket and prefix, and how long weir keeps its own records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// How often `weir run` sweeps (seconds); 0: only by a `retention_sweep` schedule or `weir gc`.
    pub sweep_interval_secs: u64,
    /// Objects or records looked at per step of a sweep; uploads and jobs go on between steps.
    pub batch_size: usize,
    /// Finished job records (succeeded, rejected, skipped, superseded). On AWS: DynamoDB TTL.
    pub jobs: StateRetention,
    /// Delivered (and given-up) notifications in the outbox.
    pub notifications: StateRetention,
    /// The daily reports' history.
    pub reports: StateRetention,
    #[serde(rename = "rule", skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RetentionRule>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            sweep_interval_secs: 3600,
            batch_size: 100,
            jobs: StateRetention::default(),
            notifications: StateRetention::default(),
            reports: StateRetention::default(),
            rules: Vec::new(),
        }
    }
}

/// How long one kind of weir's records is kept; unset: for ever.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateRetention {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<i64>,
}

/// One `[[retention.rule]]`: objects under `prefix` in `bucket` expire (are deleted) after
/// `expire_after_days`; on AWS they can move to `storage_class` after `transition_after_days`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after_days: Option<i64>,
    /// AWS only (an S3 lifecycle transition); the embedded store has one storage class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_after_days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
}

/// The storage classes an S3 lifecycle transition takes.
pub const STORAGE_CLASSES: [&str; 6] =
    ["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"];

fn days_problem(at: String, days: Option<i64>) -> Option<Problem> {
    match days {
        Some(d) if d < 0 => {
            Some(Problem::new(at, format!("{d} is negative; retention is a number of days, at least 1")))
        }
        Some(0) => Some(Problem::new(at, "0 days would remove everything at once; at least 1")),
        Some(d) if d > 100 * 365 => {
            Some(Problem::new(at, format!("{d} days is over 100 years; leave it unset to keep for ever")))
        }
        _ => None,
    }
}

impl RetentionConfig {
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.batch_size == 0 || self.batch_size > 1000 {
            problems.push(Problem::new("retention.batch_size", "must be 1-1000"));
        }
        for (kind, r) in
            [("jobs", &self.jobs), ("notifications", &self.notifications), ("reports", &self.reports)]
        {
            problems.extend(days_problem(format!("retention.{kind}.retention_days"), r.retention_days));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("retention.rule[{i}]");
            if let Err(e) = validate_bucket(&rule.bucket) {
                problems.push(Problem::new(format!("{at}.bucket"), e));
            }
            problems.extend(days_problem(format!("{at}.expire_after_days"), rule.expire_after_days));
            problems.extend(days_problem(format!("{at}.transition_after_days"), rule.transition_after_days));
            match (&rule.storage_class, rule.transition_after_days) {
                (Some(c), _) if !STORAGE_CLASSES.contains(&c.as_str()) => problems.push(Problem::new(
                    format!("{at}.storage_class"),
                    format!("{c:?} is not one of {}", STORAGE_CLASSES.join(", ")),
                )),
                (Some(_), None) => problems.push(Problem::new(
                    format!("{at}.transition_after_days"),
                    "storage_class needs transition_after_days (when objects move)",
                )),
                (None, Some(_)) => problems.push(Problem::new(
                    format!("{at}.storage_class"),
                    "transition_after_days needs a storage_class to move to, e.g. \"GLACIER\"",
                )),
                _ => {}
            }
            if let (Some(t), Some(e)) = (rule.transition_after_days, rule.expire_after_days) {
                if t > 0 && e > 0 && t >= e {
                    problems.push(Problem::new(
                        format!("{at}.transition_after_days"),
                        format!("{t} is not before expire_after_days ({e}): the objects would be gone first"),
                    ));
                }
            }
            if rule.expire_after_days.is_none() && rule.transition_after_days.is_none() {
                problems.push(Problem::new(&at, "a rule needs expire_after_days or transition_after_days"));
            }
        }
        problems
    }

    /// Whether anything is ever removed.
    pub fn is_empty(&self) -> bool {
        self.jobs.retention_days.is_none()
            && self.notifications.retention_days.is_none()
            && self.reports.retention_days.is_none()
            && self.rules.iter().all(|r| r.expire_after_days.is_none())
    }
}

/// The problems of the `[[schedule]]`s: each one's own, and names used twice. `on_aws`: the
/// config has an `[aws]` section, whose schedules are EventBridge rules too (UTC only).
pub fn validate_schedules(schedules: &[ScheduleConfig], pipelines: &[String], on_aws: bool) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, s) in schedules.iter().enumerate() {
        let at = format!("schedule[{i}] ({})", s.name);
        if !names.insert(s.name.as_str()) {
            problems.push(Problem::new(format!("{at}.name"), "duplicate schedule name"));
        }
        problems.extend(s.validate(&at, pipelines, on_aws));
    }
    problems
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn problems(toml: &str) -> Vec<String> {
        let config = Config::from_toml(toml).unwrap_or_else(|e| panic!("{e}"));
        config.validate().into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_bad_expression_or_a_negative_retention_is_named_by_its_path() {
        let found = problems(
            r#"
            [[schedule]]
            name = "report"
            expression = "cron(0 25 * * ? *)"
            work = "daily_report"

            [[schedule]]
            name = "report"
            expression = "rate(1 days)"
            work = "reprocess"

            [retention.jobs]
            retention_days = -3

            [[retention.rule]]
            bucket = "weir-input"
            prefix = "failed/"
            expire_after_days = -1
            "#,
        );
        let want = [
            "schedule[0] (report).expression: hours: 25 is outside 0-23",
            "schedule[1] (report).name: duplicate schedule name",
            "schedule[1] (report).expression: rate(1 days): write rate(1 day), as EventBridge requires",
            "schedule[1] (report).prefix: reprocess needs the key prefix",
            "retention.jobs.retention_days: -3 is negative",
            "retention.rule[0].expire_after_days: -1 is negative",
        ];
        for w in want {
            assert!(found.iter().any(|f| f.starts_with(w)), "no {w:?} in {found:#?}");
        }
        assert_eq!(found.len(), want.len(), "{found:#?}");
    }

    #[test]
    fn transitions_need_a_class_before_the_expiry_and_zones_are_iana_names() {
        let found = problems(
            r#"
            [[schedule]]
            name = "sweep"
            expression = "rate(1 hour)"
            time_zone = "Europe/Parris"
            work = "retention_sweep"
            prefix = "raw/"

            [[schedule]]
            name = "report"
            expression = "cron(30 2 * * ? *)"
            time_zone = "Europe/Paris"
            work = "daily_report"

            [[retention.rule]]
            bucket = "weir-archive"
            transition_after_days = 400
            expire_after_days = 365
            storage_class = "COLD"
            "#,
        );
        for w in [
            "schedule[0] (sweep).time_zone: \"Europe/Parris\" is not a time zone of the IANA tz database",
            "schedule[0] (sweep).prefix: prefix does not apply",
            "retention.rule[0].storage_class: \"COLD\" is not one of",
            "retention.rule[0].transition_after_days: 400 is not before expire_after_days (365)",
        ] {
            assert!(found.iter().any(|f| f.starts_with(w)), "no {w:?} in {found:#?}");
        }
        assert_eq!(found.len(), 4, "Europe/Paris is a time zone: {found:#?}");
    }

    #[test]
    fn on_aws_a_schedule_is_an_eventbridge_rule_and_takes_utc_only() {
        let schedules = r#"
            [[schedule]]
            name = "report"
            expression = "cron(0 8 * * ? *)"
            time_zone = "America/New_York"
            work = "daily_report"

            [[schedule]]
            name = "sweep"
            expression = "rate(1 day)"
            time_zone = "Etc/UTC"
            work = "retention_sweep"
        "#;
        assert_eq!(problems(schedules), Vec::<String>::new(), "embedded: any zone");
        let found = problems(&format!("{schedules}\n[aws]\nregion = \"us-east-1\"\n"));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("schedule[0] (report).time_zone: America/New_York: on AWS this schedule is also an EventBridge rule (the SAM template's weir-report), and rules run in UTC"),
            "{found:#?}"
        );
    }

    #[test]
    fn good_schedules_and_rules_pass() {
        let found = problems(
            r#"
            [[pipeline]]
            name = "sales"

            [[schedule]]
            name = "daily-report"
            expression = "cron(0 8 * * ? *)"
            work = "daily_report"
            pipeline = "sales"

            [[schedule]]
            name = "backfill"
            expression = "rate(15 minutes)"
            work = "reprocess"
            prefix = "raw/"

            [retention.notifications]
            retention_days = 30

            [[retention.rule]]
            bucket = "weir-archive"
            transition_after_days = 30
            storage_class = "GLACIER"
            expire_after_days = 365
            "#,
        );
        assert!(found.is_empty(), "{found:#?}");
    }
}
