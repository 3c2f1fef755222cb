//! The report's figures as data. Serialized as they are, they are the report's JSON twin
//! (`daily_report.json`); [`crate::render_html`] and [`crate::render_text`] only lay them out.
//!
//! Which jobs count for a day: the files **received** that day (jobs created between 00:00 and
//! 24:00 UTC), each with the outcome it has when the report is made — so a file received at
//! 23:59 and finished at 00:01 counts on the day it arrived, once. The hourly throughput chart
//! is the other view, from the job store's counters: files **finished** in each hour.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Version of the JSON layout; bumped when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// A daily report: the day, the day before, and how the headline figures moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub date: NaiveDate,
    pub previous_date: NaiveDate,
    /// The pipeline the report is restricted to, if any.
    pub pipeline: Option<String>,
    pub generated_at: DateTime<Utc>,
    pub day: DayFigures,
    pub previous: DayFigures,
    pub headline: Headline,
    /// Where the report's figures are partial (a cap reached, a source not available).
    pub notes: Vec<String>,
}

/// The headline figures of the day with the day before's and the change.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Headline {
    pub received: Delta,
    pub succeeded: Delta,
    pub rejected: Delta,
    pub failed: Delta,
    /// Percent of finished files that succeeded.
    pub success_rate: Delta,
    pub rows_valid: Delta,
    pub rows_invalid: Delta,
    pub duration_p50_ms: Delta,
    pub duration_p99_ms: Delta,
    pub dead_letters: Delta,
}

/// One figure on both days. `change` is `value - previous`; `change_percent` is the change
/// relative to `previous` (absent when either is absent or `previous` is 0).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Delta {
    pub value: Option<f64>,
    pub previous: Option<f64>,
    pub change: Option<f64>,
    pub change_percent: Option<f64>,
}

impl Delta {
    pub fn of(value: Option<f64>, previous: Option<f64>) -> Delta {
        let change = value.zip(previous).map(|(v, p)| round2(v - p));
        let change_percent =
            value.zip(previous).filter(|(_, p)| *p != 0.0).map(|(v, p)| round2((v - p) * 100.0 / p));
        Delta { value, previous, change, change_percent }
    }

    pub fn counts(value: u64, previous: u64) -> Delta {
        Delta::of(Some(value as f64), Some(previous as f64))
    }
}

/// Rounds to two decimals (the precision of every rate in the report).
pub fn round2(v: f64) -> f64 {
    weir_core::summary::round_to(v, 2)
}

/// Files by the outcome they have now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Outcomes {
    pub received: u64,
    pub succeeded: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Queued or running when the report was made.
    pub in_progress: u64,
    /// Not work (a test event, a duplicate upload) or an older version superseded by a newer.
    pub skipped: u64,
}

impl Outcomes {
    /// Files that ended succeeded, rejected or failed.
    pub fn finished(&self) -> u64 {
        self.succeeded + self.rejected + self.failed
    }

    /// Percent of finished files that succeeded, two decimals; `None` if none finished.
    pub fn success_rate(&self) -> Option<f64> {
        let finished = self.finished();
        (finished > 0).then(|| round2(self.succeeded as f64 * 100.0 / finished as f64))
    }
}

/// Data rows of the day's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rows {
    pub total: u64,
    pub valid: u64,
    pub invalid: u64,
}

/// Job durations (ms) of the day's finished files: nearest-rank percentiles over every one
/// read.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Durations {
    pub count: u64,
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub max_ms: Option<u64>,
}

/// A file the report points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub job_id: String,
    pub bucket: String,
    pub key: String,
    pub pipeline: Option<String>,
    pub status: String,
    pub size: u64,
    pub duration_ms: Option<u64>,
}

/// The figures of one group of files (a pipeline, or a source prefix).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupFigures {
    pub name: String,
    pub files: Outcomes,
    pub success_rate: Option<f64>,
    pub rows: Rows,
    pub bytes: u64,
}

/// Why files were refused, or rows invalid: one reason, how often, and a few files it hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub reason: String,
    /// Files (rejections) or rows (row errors).
    pub count: u64,
    /// Files with this reason (rejections), or invalid rows on this field (row errors).
    pub files: u64,
    /// Up to [`crate::Limits::examples`] of the files.
    pub examples: Vec<FileRef>,
}

/// A pipeline's configured group-by aggregates summed over the day's succeeded files (the
/// sales pipeline: revenue and quantity per product).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Aggregate {
    pub pipeline: String,
    /// The group-by field (`product`).
    pub by: String,
    /// Largest first by the first field the pipeline's `group_by` names, then by name; at most
    /// [`crate::Limits::groups`], the rest summed in `other`.
    pub groups: Vec<GroupSum>,
    pub other: Option<GroupSum>,
    /// Files whose summaries were summed.
    pub files: u64,
}

/// One group's rows and field sums.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupSum {
    pub value: String,
    pub rows: u64,
    /// Field → sum over the day.
    pub sums: BTreeMap<String, f64>,
}

/// Sums of a pipeline's numeric fields over its succeeded files (`revenue`, `quantity`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NumericTotals {
    pub pipeline: String,
    pub files: u64,
    /// Field → (valid values, sum).
    pub fields: BTreeMap<String, FieldTotal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct FieldTotal {
    pub count: u64,
    pub sum: f64,
}

/// A message that reached the dead-letter queue that day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterRef {
    pub message_id: String,
    pub dead_lettered_at: DateTime<Utc>,
    pub receive_count: u32,
    /// `bucket/key` of the S3 event in the message, when it holds one.
    pub object: Option<String>,
}

/// An alarm's change of state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmChange {
    pub at: DateTime<Utc>,
    pub alarm: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// Files finished in one hour (job store counters) and received in it (job records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Hour {
    /// 0-23, UTC.
    pub hour: u32,
    pub received: u64,
    pub succeeded: u64,
    pub rejected: u64,
    pub failed: u64,
    pub rows_valid: u64,
    pub rows_invalid: u64,
}

/// Everything the report says about one day.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DayFigures {
    pub date: NaiveDate,
    pub files: Outcomes,
    pub success_rate: Option<f64>,
    pub rows: Rows,
    pub bytes_received: u64,
    pub durations: Durations,
    pub pipelines: Vec<GroupFigures>,
    /// By `bucket/first/folders/` of the source key (at most [`crate::Limits::prefixes`]).
    pub prefixes: Vec<GroupFigures>,
    /// Rejected and failed files by their error, most frequent first.
    pub rejection_reasons: Vec<Reason>,
    /// Invalid rows by the field that failed (from the summaries), most frequent first.
    pub row_errors: Vec<Reason>,
    pub aggregates: Vec<Aggregate>,
    pub totals: Vec<NumericTotals>,
    pub slowest: Vec<FileRef>,
    pub largest: Vec<FileRef>,
    /// Dead letters of the day (all of them counted, the first few listed).
    pub dead_letters: u64,
    pub dead_letter_examples: Vec<DeadLetterRef>,
    pub alarm_changes: Vec<AlarmChange>,
    /// 24 entries, hour 0 first.
    pub hourly: Vec<Hour>,
    /// Job records read, and summaries read, for these figures.
    pub jobs_read: u64,
    pub summaries_read: u64,
}
