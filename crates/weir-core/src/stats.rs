//! Job statistics whose cost does not grow with history.
//!
//! A job store keeps, as jobs are written, counters per minute (files by pipeline and status,
//! rows, bytes, a duration histogram) and each status's current count. `/metrics`, the
//! dashboard's overview and the alarms read those, so answering takes the same time after a
//! thousand jobs or a million, and the figures are exact rather than sampled.
//!
//! What counts: a job adds to the minute it *finished* in each time it reaches a terminal
//! status with a new `finished_at` (a re-run after a DLQ replay counts again: it is another
//! outcome), and to the minute it was *created* in as a file received.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Job, JobStatus};

/// Upper bounds in milliseconds of the job duration histogram's buckets (Prometheus' `le`);
/// one more bucket counts what is longer than the last.
pub const DURATION_BUCKETS_MS: [u64; 19] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000,
    900_000, 3_600_000,
];

/// The minute (since the Unix epoch) a time falls in.
pub fn minute_of(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

/// What a set of finished jobs adds up to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub files: u64,
    pub rows_valid: u64,
    pub rows_invalid: u64,
    pub bytes: u64,
    /// Jobs with a duration (all but skipped and superseded ones) and their durations' sum.
    pub timed: u64,
    pub duration_ms_sum: u64,
    /// Jobs per [`DURATION_BUCKETS_MS`] bucket (not cumulative), the last for longer ones.
    pub duration_buckets: Vec<u64>,
    /// Rows committed to a warehouse table (`[pipeline.sinks]`).
    #[serde(default)]
    pub rows_loaded: u64,
    /// Jobs whose warehouse load failed (a row the database refused, or retries exhausted).
    #[serde(default)]
    pub load_failures: u64,
}

impl Tally {
    /// The tally of one finished job.
    pub fn of(job: &Job) -> Tally {
        let mut t = Tally {
            files: 1,
            rows_valid: job.valid_rows,
            rows_invalid: job.invalid_rows,
            bytes: job.source_size,
            ..Tally::default()
        };
        if let Some(load) = &job.warehouse {
            t.rows_loaded = load.rows;
            t.load_failures = u64::from(load.error.is_some());
        }
        let timed = !matches!(job.status, JobStatus::Skipped | JobStatus::Superseded);
        if let (true, Some(ms)) = (timed, job.duration_ms) {
            t.timed = 1;
            t.duration_ms_sum = ms;
            t.duration_buckets = vec![0; DURATION_BUCKETS_MS.len() + 1];
            t.duration_buckets[bucket_of(ms)] = 1;
        }
        t
    }

    pub fn add(&mut self, other: &Tally) {
        self.files += other.files;
        self.rows_valid += other.rows_valid;
        self.rows_invalid += other.rows_invalid;
        self.bytes += other.bytes;
        self.timed += other.timed;
        self.duration_ms_sum += other.duration_ms_sum;
        self.rows_loaded += other.rows_loaded;
        self.load_failures += other.load_failures;
        if self.duration_buckets.len() < other.duration_buckets.len() {
            self.duration_buckets.resize(other.duration_buckets.len(), 0);
        }
        for (a, b) in self.duration_buckets.iter_mut().zip(&other.duration_buckets) {
            *a += b;
        }
    }

    /// The `q`-th percentile (0-100) of the durations, interpolated within its bucket; `None`
    /// without timed jobs. Exact to the bucket: within a factor of 2.5 of the truth at worst,
    /// usually much closer.
    pub fn percentile_ms(&self, q: f64) -> Option<f64> {
        if self.timed == 0 {
            return None;
        }
        let rank = (q / 100.0 * self.timed as f64).ceil().max(1.0);
        let mut seen = 0.0;
        for (i, &n) in self.duration_buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if seen + n as f64 >= rank {
                let low = if i == 0 { 0 } else { DURATION_BUCKETS_MS[i - 1] } as f64;
                let high =
                    DURATION_BUCKETS_MS.get(i).copied().unwrap_or(2 * DURATION_BUCKETS_MS[i - 1]) as f64;
                return Some(low + (high - low) * ((rank - seen) / n as f64));
            }
            seen += n as f64;
        }
        None
    }
}

fn bucket_of(ms: u64) -> usize {
    DURATION_BUCKETS_MS.iter().position(|&le| ms <= le).unwrap_or(DURATION_BUCKETS_MS.len())
}

/// One minute's finished jobs of one pipeline in one status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinuteTally {
    pub minute: i64,
    pub pipeline: String,
    pub status: JobStatus,
    pub tally: Tally,
}

/// Files received (jobs created) in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteReceived {
    pub minute: i64,
    pub files: u64,
    pub bytes: u64,
}

/// Everything counted since the store began.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobTotals {
    /// Finished outcomes by (pipeline, status).
    pub finished: BTreeMap<(String, JobStatus), Tally>,
    pub received_files: u64,
    pub received_bytes: u64,
    /// Jobs in each status now.
    pub current: BTreeMap<JobStatus, u64>,
}

/// A window of the per-minute series, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub finished: Vec<MinuteTally>,
    pub received: Vec<MinuteReceived>,
}

impl Series {
    /// Everything that finished in minutes `[from, to)`, over every pipeline, for `status`
    /// (`None`: every status).
    pub fn sum(&self, from: i64, to: i64, status: Option<JobStatus>) -> Tally {
        let mut t = Tally::default();
        for m in &self.finished {
            if (from..to).contains(&m.minute) && status.is_none_or(|s| s == m.status) {
                t.add(&m.tally);
            }
        }
        t
    }
}

/// What writing `new` over `old` (the record before, if any) adds to the counters: a new
/// terminal outcome, and whether the job is new (received). Every store calls this with the
/// records it writes, so they count alike.
pub fn change(old: Option<&Job>, new: &Job) -> (Option<MinuteTally>, bool) {
    change_from(old.map(|o| (o.status, o.finished_at)), &Counted::of(new))
}

/// What the counters need of a job record: taken from the job before a write, so a store's
/// writer gets these few fields rather than a copy of the whole record.
#[derive(Debug, Clone, PartialEq)]
pub struct Counted {
    pub pipeline: Option<String>,
    pub status: JobStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub source_size: u64,
    /// The job's tally if this write is its outcome.
    pub tally: Tally,
}

impl Counted {
    pub fn of(job: &Job) -> Counted {
        Counted {
            pipeline: job.pipeline.clone(),
            status: job.status,
            created_at: job.created_at,
            finished_at: job.finished_at,
            source_size: job.source_size,
            tally: Tally::of(job),
        }
    }
}

/// [`change`] given only what it reads of the record before: its status and finish time (a
/// store that keeps these in columns need not decode the old record). Finish times are
/// compared to the millisecond, the precision a store keeps them at.
pub fn change_from(
    old: Option<(JobStatus, Option<DateTime<Utc>>)>,
    new: &Counted,
) -> (Option<MinuteTally>, bool) {
    let received = old.is_none();
    let outcome = new.status.is_terminal()
        && new.finished_at.is_some()
        && old.is_none_or(|(status, finished_at)| {
            !status.is_terminal() || millis(finished_at) != millis(new.finished_at)
        });
    let finished = outcome.then(|| MinuteTally {
        minute: minute_of(new.finished_at.expect("checked")),
        pipeline: new.pipeline.clone().unwrap_or_default(),
        status: new.status,
        tally: new.tally.clone(),
    });
    (finished, received)
}

fn millis(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(ms: u64) -> Job {
        let mut j = Job::queued("b", "k", "e", 10, Some("sales"));
        j.finish(JobStatus::Succeeded, None);
        j.duration_ms = Some(ms);
        j
    }

    #[test]
    fn percentiles_fall_in_the_right_bucket() {
        let mut t = Tally::default();
        for ms in 1..=100 {
            t.add(&Tally::of(&finished(ms)));
        }
        let p50 = t.percentile_ms(50.0).unwrap();
        assert!((20.0..=50.0).contains(&p50), "{p50}");
        let p99 = t.percentile_ms(99.0).unwrap();
        assert!((50.0..=100.0).contains(&p99), "{p99}");
        assert_eq!(Tally::default().percentile_ms(50.0), None);
        assert_eq!(t.files, 100);
        assert_eq!(t.duration_ms_sum, 5050);
    }

    #[test]
    fn a_new_outcome_counts_once_and_a_new_record_is_received() {
        let queued = Job::queued("b", "k", "e", 10, Some("sales"));
        assert_eq!(change(None, &queued), (None, true));
        let mut done = queued.clone();
        done.finish(JobStatus::Succeeded, None);
        let (outcome, received) = change(Some(&queued), &done);
        assert!(outcome.is_some() && !received);
        assert_eq!(change(Some(&done), &done), (None, false), "saving the same outcome again");
        let mut rerun = done.clone();
        rerun.finish(JobStatus::Succeeded, None);
        rerun.finished_at = Some(done.finished_at.unwrap() + chrono::Duration::seconds(1));
        assert!(change(Some(&done), &rerun).0.is_some(), "a re-run is another outcome");
    }
}
