//! Computing a [`Report`] from the ports.
//!
//! For each of the two days: the job records created that day, a page at a time
//! ([`JobStore::list_created`]); the summary object of each job that has one (read a few at a
//! time, each at most [`Limits::max_summary_bytes`]); the job store's per-minute counters of the
//! day for the hourly chart; the dead-letter queue. Memory is bounded by the limits, not by
//! the day: top lists are kept at their length, distinct reasons, prefixes and groups are
//! capped, and only the durations (8 bytes a job, at most [`Limits::max_jobs`]) are kept whole
//! for exact percentiles.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use futures::{StreamExt, TryStreamExt};
use weir_core::event::QueueEvent;
use weir_core::{Config, Job, JobStatus, Summary};
use weir_ports::{JobStore, ObjectStore, PortError, Queue};

use crate::model::*;

/// Why a report could not be made (a store did not answer).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{what}: {source}")]
    Store {
        what: &'static str,
        #[source]
        source: PortError,
    },
    #[error("the date {0} has no day before it")]
    BadDate(NaiveDate),
}

fn store(what: &'static str) -> impl FnOnce(PortError) -> ReportError {
    move |source| ReportError::Store { what, source }
}

/// Every bound on what a report reads and keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Job records read per day.
    pub max_jobs: u64,
    /// Summary objects read per day.
    pub max_summaries: u64,
    /// A summary object larger than this is skipped (and counted in the notes).
    pub max_summary_bytes: u64,
    /// Summaries read at once.
    pub summary_concurrency: usize,
    /// Job records per page.
    pub page: usize,
    /// Entries of each top list (reasons, slowest, largest, pipelines' groups shown).
    pub top: usize,
    /// Example files per reason.
    pub examples: usize,
    /// Distinct rejection reasons and row-error fields tracked; more are counted as "other".
    pub distinct_reasons: usize,
    /// Source prefixes tracked.
    pub prefixes: usize,
    /// Groups per aggregate tracked (the report shows [`Limits::top`] and sums the rest).
    pub groups: usize,
    /// Dead letters looked at.
    pub dead_letters: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_jobs: 1_000_000,
            max_summaries: 20_000,
            max_summary_bytes: 4 << 20,
            summary_concurrency: 16,
            page: 500,
            top: 10,
            examples: 3,
            distinct_reasons: 1_000,
            prefixes: 100,
            groups: 10_000,
            dead_letters: 1_000,
        }
    }
}

impl Limits {
    /// The defaults with the caps of the `[report]` section.
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            max_jobs: config.report.max_jobs,
            max_summaries: config.report.max_summaries,
            ..Limits::default()
        }
    }
}

/// Where a report's figures come from.
pub struct DailyInputs<'a> {
    pub config: &'a Config,
    pub jobs: &'a dyn JobStore,
    pub objects: &'a dyn ObjectStore,
    pub queue: &'a dyn Queue,
    /// The alarms' changes of state around the days (any order; the day's are picked), or
    /// `None` where the backend keeps no such history.
    pub alarm_changes: Option<&'a [AlarmChange]>,
    pub limits: Limits,
}

/// The report of `date` (UTC), restricted to `pipeline` if given, as of `now`.
pub async fn daily(
    inputs: &DailyInputs<'_>,
    date: NaiveDate,
    pipeline: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Report, ReportError> {
    let previous_date = date.pred_opt().ok_or(ReportError::BadDate(date))?;
    let mut notes = Vec::new();
    let day = day_figures(inputs, date, pipeline, &mut notes).await?;
    let previous = day_figures(inputs, previous_date, pipeline, &mut notes).await?;
    if inputs.alarm_changes.is_none() {
        notes.push("Alarm changes are not recorded on this backend (see CloudWatch on AWS).".into());
    }
    let headline = headline(&day, &previous);
    Ok(Report {
        schema_version: SCHEMA_VERSION,
        date,
        previous_date,
        pipeline: pipeline.map(str::to_owned),
        generated_at: now,
        day,
        previous,
        headline,
        notes,
    })
}

fn headline(day: &DayFigures, before: &DayFigures) -> Headline {
    let f = |v: Option<u64>| v.map(|v| v as f64);
    Headline {
        received: Delta::counts(day.files.received, before.files.received),
        succeeded: Delta::counts(day.files.succeeded, before.files.succeeded),
        rejected: Delta::counts(day.files.rejected, before.files.rejected),
        failed: Delta::counts(day.files.failed, before.files.failed),
        success_rate: Delta::of(day.success_rate, before.success_rate),
        rows_valid: Delta::counts(day.rows.valid, before.rows.valid),
        rows_invalid: Delta::counts(day.rows.invalid, before.rows.invalid),
        duration_p50_ms: Delta::of(f(day.durations.p50_ms), f(before.durations.p50_ms)),
        duration_p99_ms: Delta::of(f(day.durations.p99_ms), f(before.durations.p99_ms)),
        dead_letters: Delta::counts(day.dead_letters, before.dead_letters),
    }
}

/// Midnight (UTC) starting `date`.
pub fn day_start(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

async fn day_figures(
    inputs: &DailyInputs<'_>,
    date: NaiveDate,
    pipeline: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<DayFigures, ReportError> {
    let limits = inputs.limits;
    let (from, to) = (day_start(date), day_start(date) + Duration::days(1));
    let mut acc = Accumulator::new(date, limits, inputs.config);
    let mut token: Option<String> = None;
    let mut capped = false;
    loop {
        let page = inputs
            .jobs
            .list_created(from, to, token.as_deref(), limits.page)
            .await
            .map_err(store("listing the day's jobs"))?;
        let jobs: Vec<Job> = page
            .jobs
            .into_iter()
            .filter(|j| pipeline.is_none_or(|p| j.pipeline.as_deref() == Some(p)))
            .collect();
        let mut wanted = Vec::new();
        for job in &jobs {
            if acc.jobs_read >= limits.max_jobs {
                capped = true;
                break;
            }
            acc.add_job(job);
            if let Some(key) = job.output_keys.get("summary").filter(|_| has_summary_worth_reading(job)) {
                if acc.summaries_wanted < limits.max_summaries {
                    acc.summaries_wanted += 1;
                    wanted.push((job, key.clone()));
                } else {
                    acc.summaries_skipped += 1;
                }
            }
        }
        let bucket = inputs.config.buckets.output.as_str();
        let read: Vec<_> = futures::stream::iter(wanted)
            .map(|(job, key)| async move {
                let summary = read_summary(inputs.objects, bucket, &key, limits.max_summary_bytes).await;
                (job, summary)
            })
            .buffered(limits.summary_concurrency.max(1))
            .collect()
            .await;
        for (job, summary) in read {
            match summary {
                Ok(Some(s)) => acc.add_summary(job, &s),
                Ok(None) => acc.summaries_unreadable += 1,
                Err(e) if e.is_not_found() => acc.summaries_unreadable += 1,
                Err(e) => return Err(store("reading a job's summary")(e)),
            }
        }
        match page.next {
            Some(t) if !capped => token = Some(t),
            _ => break,
        }
    }
    if capped {
        notes.push(format!(
            "{date}: only the first {} jobs of the day were read (report.max_jobs); the figures from job records cover those.",
            limits.max_jobs
        ));
    }
    if acc.summaries_skipped > 0 {
        notes.push(format!(
            "{date}: business aggregates and row errors are summed over {} files' summaries; {} more were not read (report.max_summaries).",
            acc.summaries_read, acc.summaries_skipped
        ));
    }
    if acc.summaries_unreadable > 0 {
        notes.push(format!(
            "{date}: {} summaries could not be read (removed, larger than {} bytes, or not a summary) and are left out of the aggregates.",
            acc.summaries_unreadable, limits.max_summary_bytes
        ));
    }
    // The hourly throughput, from the counters of the day's minutes.
    let first_minute = from.timestamp().div_euclid(60);
    let series = inputs
        .jobs
        .series(first_minute, first_minute + 24 * 60)
        .await
        .map_err(store("reading the job counters"))?;
    for m in series.finished.iter().filter(|m| pipeline.is_none_or(|p| m.pipeline == p)) {
        let Some(hour) = usize::try_from((m.minute - first_minute) / 60).ok().filter(|h| *h < 24) else {
            continue;
        };
        let h = &mut acc.hourly[hour];
        match m.status {
            JobStatus::Succeeded => h.succeeded += m.tally.files,
            JobStatus::Rejected => h.rejected += m.tally.files,
            JobStatus::Failed => h.failed += m.tally.files,
            _ => continue,
        }
        h.rows_valid += m.tally.rows_valid;
        h.rows_invalid += m.tally.rows_invalid;
    }
    // Dead letters of the day.
    let letters = inputs.queue.dlq_list(limits.dead_letters).await.map_err(store("listing dead letters"))?;
    if letters.len() >= limits.dead_letters {
        notes.push(format!(
            "{date}: the dead-letter queue holds more than {} messages; only the oldest were looked at.",
            limits.dead_letters
        ));
    }
    for letter in letters.iter().filter(|l| l.dead_lettered_at >= from && l.dead_lettered_at < to) {
        let object = event_object(&letter.body);
        if let Some(p) = pipeline {
            let of_pipeline = object
                .as_ref()
                .and_then(|(b, k)| inputs.config.pipeline_for(b, k))
                .is_some_and(|c| c.name == p);
            if !of_pipeline {
                continue;
            }
        }
        acc.dead_letters += 1;
        if acc.dead_letter_examples.len() < limits.top {
            acc.dead_letter_examples.push(DeadLetterRef {
                message_id: letter.message_id.clone(),
                dead_lettered_at: letter.dead_lettered_at,
                receive_count: letter.receive_count,
                object: object.map(|(b, k)| format!("{b}/{k}")),
            });
        }
    }
    if let Some(changes) = inputs.alarm_changes {
        let mut of_day: Vec<AlarmChange> =
            changes.iter().filter(|c| c.at >= from && c.at < to).cloned().collect();
        of_day.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.alarm.cmp(&b.alarm)));
        acc.alarm_changes = of_day;
    }
    Ok(acc.finish())
}

/// Whether a job's summary adds anything: aggregates of a succeeded file, or its row errors.
fn has_summary_worth_reading(job: &Job) -> bool {
    job.status == JobStatus::Succeeded || job.invalid_rows > 0
}

/// The bucket and key of the (first) S3 event in a queue message.
fn event_object(body: &str) -> Option<(String, String)> {
    match QueueEvent::parse(body).ok()? {
        QueueEvent::Records(e) => {
            let r = e.records.first()?;
            Some((r.s3.bucket.name.clone(), r.key().ok()?))
        }
        QueueEvent::TestEvent => None,
    }
}

/// A summary object, if it is one and not larger than `max_bytes`.
async fn read_summary(
    objects: &dyn ObjectStore,
    bucket: &str,
    key: &str,
    max_bytes: u64,
) -> Result<Option<Summary>, PortError> {
    let (info, mut stream) = objects.get(bucket, key).await?;
    if info.size > max_bytes {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(info.size as usize);
    while let Some(chunk) = stream.try_next().await? {
        if (bytes.len() + chunk.len()) as u64 > max_bytes {
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(serde_json::from_slice(&bytes).ok())
}

/// The folder a source key is in, with its bucket: `weir-input/raw/2024/`.
fn prefix_of(bucket: &str, key: &str) -> String {
    match key.rfind('/') {
        Some(i) => format!("{bucket}/{}", &key[..=i]),
        None => format!("{bucket}/"),
    }
}

/// A reason as the report shows it: one line, at most 300 characters.
fn reason_text(error: Option<&str>) -> String {
    let one_line: String = error
        .unwrap_or("(no reason recorded)")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    one_line.trim().to_owned()
}

const OTHER: &str = "(other)";

fn file_ref(job: &Job) -> FileRef {
    FileRef {
        job_id: job.job_id.0.clone(),
        bucket: job.source_bucket.clone(),
        key: job.source_key.clone(),
        pipeline: job.pipeline.clone(),
        status: job.status.as_str().to_owned(),
        size: job.source_size,
        duration_ms: job.duration_ms,
    }
}

#[derive(Default)]
struct Group {
    files: Outcomes,
    rows: Rows,
    bytes: u64,
}

impl Group {
    fn add(&mut self, job: &Job) {
        count_outcome(&mut self.files, job.status);
        self.rows.total += job.total_rows;
        self.rows.valid += job.valid_rows;
        self.rows.invalid += job.invalid_rows;
        self.bytes += job.source_size;
    }

    fn figures(self, name: String) -> GroupFigures {
        GroupFigures {
            name,
            success_rate: self.files.success_rate(),
            files: self.files,
            rows: self.rows,
            bytes: self.bytes,
        }
    }
}

fn count_outcome(o: &mut Outcomes, status: JobStatus) {
    o.received += 1;
    match status {
        JobStatus::Succeeded => o.succeeded += 1,
        JobStatus::Rejected => o.rejected += 1,
        JobStatus::Failed => o.failed += 1,
        JobStatus::Queued | JobStatus::Running => o.in_progress += 1,
        JobStatus::Skipped | JobStatus::Superseded => o.skipped += 1,
    }
}

#[derive(Default)]
struct ReasonTally {
    count: u64,
    files: u64,
    examples: Vec<FileRef>,
}

/// One day's running figures.
struct Accumulator {
    limits: Limits,
    date: NaiveDate,
    all: Group,
    durations: Vec<u64>,
    pipelines: BTreeMap<String, Group>,
    prefixes: BTreeMap<String, Group>,
    rejections: HashMap<String, ReasonTally>,
    row_errors: HashMap<String, ReasonTally>,
    /// (pipeline, group-by field) → value → sums, and the files summed.
    aggregates: BTreeMap<(String, String), (BTreeMap<String, GroupSum>, u64)>,
    /// (pipeline, group-by field) → the field its groups are ordered by: the first the
    /// pipeline's `group_by` names (revenue, for the sales pipeline).
    order_by: BTreeMap<(String, String), String>,
    totals: BTreeMap<String, NumericTotals>,
    slowest: Vec<FileRef>,
    largest: Vec<FileRef>,
    hourly: Vec<Hour>,
    dead_letters: u64,
    dead_letter_examples: Vec<DeadLetterRef>,
    alarm_changes: Vec<AlarmChange>,
    jobs_read: u64,
    summaries_wanted: u64,
    summaries_read: u64,
    summaries_skipped: u64,
    summaries_unreadable: u64,
}

impl Accumulator {
    fn new(date: NaiveDate, limits: Limits, config: &Config) -> Accumulator {
        let order_by = config
            .pipelines
            .iter()
            .flat_map(|p| {
                p.summary
                    .group_by
                    .iter()
                    .filter_map(|g| Some(((p.name.clone(), g.by.clone()), g.fields.first()?.clone())))
            })
            .collect();
        Accumulator {
            order_by,
            limits,
            date,
            all: Group::default(),
            durations: Vec::new(),
            pipelines: BTreeMap::new(),
            prefixes: BTreeMap::new(),
            rejections: HashMap::new(),
            row_errors: HashMap::new(),
            aggregates: BTreeMap::new(),
            totals: BTreeMap::new(),
            slowest: Vec::new(),
            largest: Vec::new(),
            hourly: (0..24).map(|hour| Hour { hour, ..Hour::default() }).collect(),
            dead_letters: 0,
            dead_letter_examples: Vec::new(),
            alarm_changes: Vec::new(),
            jobs_read: 0,
            summaries_wanted: 0,
            summaries_read: 0,
            summaries_skipped: 0,
            summaries_unreadable: 0,
        }
    }

    fn add_job(&mut self, job: &Job) {
        self.jobs_read += 1;
        self.all.add(job);
        self.hourly[job.created_at.hour() as usize].received += 1;
        let pipeline = job.pipeline.clone().unwrap_or_else(|| "(none)".into());
        self.pipelines.entry(pipeline).or_default().add(job);
        let prefix = prefix_of(&job.source_bucket, &job.source_key);
        let cap = self.limits.prefixes;
        let slot = if self.prefixes.contains_key(&prefix) || self.prefixes.len() < cap {
            prefix
        } else {
            OTHER.to_string()
        };
        self.prefixes.entry(slot).or_default().add(job);
        let finished = matches!(job.status, JobStatus::Succeeded | JobStatus::Rejected | JobStatus::Failed);
        if finished {
            if let Some(ms) = job.duration_ms {
                self.durations.push(ms);
                keep_top(&mut self.slowest, file_ref(job), self.limits.top, |f| {
                    (f.duration_ms.unwrap_or(0), std::cmp::Reverse(f.key.clone()))
                });
            }
        }
        if job.status != JobStatus::Skipped && job.status != JobStatus::Superseded {
            keep_top(&mut self.largest, file_ref(job), self.limits.top, |f| {
                (f.size, std::cmp::Reverse(f.key.clone()))
            });
        }
        if matches!(job.status, JobStatus::Rejected | JobStatus::Failed) {
            let reason = reason_text(job.error.as_deref());
            let cap = self.limits.distinct_reasons;
            let slot = if self.rejections.contains_key(&reason) || self.rejections.len() < cap {
                reason
            } else {
                OTHER.to_string()
            };
            let t = self.rejections.entry(slot).or_default();
            t.count += 1;
            t.files += 1;
            if t.examples.len() < self.limits.examples {
                t.examples.push(file_ref(job));
            }
        }
    }

    fn add_summary(&mut self, job: &Job, summary: &Summary) {
        self.summaries_read += 1;
        let cap = self.limits.distinct_reasons;
        for (field, rows) in &summary.errors_by_field {
            let slot = if self.row_errors.contains_key(field) || self.row_errors.len() < cap {
                field.clone()
            } else {
                OTHER.to_string()
            };
            let t = self.row_errors.entry(slot).or_default();
            t.count += rows;
            t.files += 1;
            if t.examples.len() < self.limits.examples {
                t.examples.push(file_ref(job));
            }
        }
        if job.status != JobStatus::Succeeded {
            return;
        }
        let pipeline = job.pipeline.clone().unwrap_or_else(|| "(none)".into());
        for (by, groups) in &summary.group_by {
            let (sums, files) = self.aggregates.entry((pipeline.clone(), by.clone())).or_default();
            *files += 1;
            for (value, stats) in groups {
                let slot = if sums.contains_key(value) || sums.len() < self.limits.groups {
                    value.clone()
                } else {
                    OTHER.to_string()
                };
                let g = sums
                    .entry(slot.clone())
                    .or_insert_with(|| GroupSum { value: slot, ..GroupSum::default() });
                g.rows += stats.count;
                for (field, s) in &stats.fields {
                    *g.sums.entry(field.clone()).or_default() += s.sum;
                }
            }
        }
        if !summary.numeric.is_empty() {
            let t = self
                .totals
                .entry(pipeline.clone())
                .or_insert_with(|| NumericTotals { pipeline, ..NumericTotals::default() });
            t.files += 1;
            for (field, s) in &summary.numeric {
                let f = t.fields.entry(field.clone()).or_default();
                f.count += s.count;
                f.sum += s.sum;
            }
        }
    }

    fn finish(mut self) -> DayFigures {
        let top = self.limits.top;
        self.durations.sort_unstable();
        let rank = |q: f64| -> Option<u64> {
            let n = self.durations.len();
            (n > 0).then(|| self.durations[((q / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1])
        };
        let durations = Durations {
            count: self.durations.len() as u64,
            p50_ms: rank(50.0),
            p99_ms: rank(99.0),
            max_ms: self.durations.last().copied(),
        };
        let mut pipelines: Vec<GroupFigures> =
            self.pipelines.into_iter().map(|(name, g)| g.figures(name)).collect();
        pipelines.sort_by(|a, b| b.files.received.cmp(&a.files.received).then_with(|| a.name.cmp(&b.name)));
        let mut prefixes: Vec<GroupFigures> =
            self.prefixes.into_iter().map(|(name, g)| g.figures(name)).collect();
        prefixes.sort_by(|a, b| b.files.received.cmp(&a.files.received).then_with(|| a.name.cmp(&b.name)));
        let reasons = |m: HashMap<String, ReasonTally>| {
            let mut v: Vec<Reason> = m
                .into_iter()
                .map(|(reason, t)| Reason { reason, count: t.count, files: t.files, examples: t.examples })
                .collect();
            v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
            v.truncate(top);
            v
        };
        let order_by = self.order_by;
        let aggregates = self
            .aggregates
            .into_iter()
            .map(|((pipeline, by), (sums, files))| {
                let mut groups: Vec<GroupSum> = sums.into_values().map(round_sums).collect();
                let first_field = order_by
                    .get(&(pipeline.clone(), by.clone()))
                    .cloned()
                    .or_else(|| groups.iter().flat_map(|g| g.sums.keys()).min().cloned());
                let weight =
                    |g: &GroupSum| first_field.as_ref().and_then(|f| g.sums.get(f)).copied().unwrap_or(0.0);
                groups.sort_by(|a, b| {
                    weight(b)
                        .total_cmp(&weight(a))
                        .then(b.rows.cmp(&a.rows))
                        .then_with(|| a.value.cmp(&b.value))
                });
                let other = (groups.len() > top).then(|| {
                    let mut rest = GroupSum { value: OTHER.into(), ..GroupSum::default() };
                    for g in groups.drain(top..) {
                        rest.rows += g.rows;
                        for (f, s) in g.sums {
                            *rest.sums.entry(f).or_default() += s;
                        }
                    }
                    round_sums(rest)
                });
                Aggregate { pipeline, by, groups, other, files }
            })
            .collect();
        let totals = self
            .totals
            .into_values()
            .map(|mut t| {
                for f in t.fields.values_mut() {
                    f.sum = weir_core::summary::round_to(f.sum, 6);
                }
                t
            })
            .collect();
        DayFigures {
            date: self.date,
            success_rate: self.all.files.success_rate(),
            files: self.all.files,
            rows: self.all.rows,
            bytes_received: self.all.bytes,
            durations,
            pipelines,
            prefixes,
            rejection_reasons: reasons(self.rejections),
            row_errors: reasons(self.row_errors),
            aggregates,
            totals,
            slowest: self.slowest,
            largest: self.largest,
            dead_letters: self.dead_letters,
            dead_letter_examples: self.dead_letter_examples,
            alarm_changes: self.alarm_changes,
            hourly: self.hourly,
            jobs_read: self.jobs_read,
            summaries_read: self.summaries_read,
        }
    }
}

/// Sums rounded to 6 decimals (floating sums of prices would otherwise show 1e-13 noise).
fn round_sums(mut g: GroupSum) -> GroupSum {
    for v in g.sums.values_mut() {
        *v = weir_core::summary::round_to(*v, 6);
    }
    g
}

/// Keeps `list` the `n` largest by `key`, largest first.
fn keep_top<K: Ord>(list: &mut Vec<FileRef>, item: FileRef, n: usize, key: impl Fn(&FileRef) -> K) {
    if list.len() == n && list.last().is_some_and(|last| key(last) >= key(&item)) {
        return;
    }
    let at = list.partition_point(|f| key(f) >= key(&item));
    list.insert(at, item);
    list.truncate(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(key: &str, ms: u64) -> FileRef {
        FileRef {
            job_id: key.into(),
            bucket: "b".into(),
            key: key.into(),
            pipeline: None,
            status: "succeeded".into(),
            size: ms,
            duration_ms: Some(ms),
        }
    }

    #[test]
    fn top_lists_keep_the_largest_in_order() {
        let mut top = Vec::new();
        for (k, ms) in [("a", 5), ("b", 9), ("c", 1), ("d", 7), ("e", 9)] {
            keep_top(&mut top, f(k, ms), 3, |f| (f.size, std::cmp::Reverse(f.key.clone())));
        }
        let keys: Vec<&str> = top.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["b", "e", "d"]);
    }

    #[test]
    fn prefixes_and_reasons() {
        assert_eq!(prefix_of("in", "raw/2024/a.csv"), "in/raw/2024/");
        assert_eq!(prefix_of("in", "a.csv"), "in/");
        assert_eq!(reason_text(Some("bad\nheader")), "bad header");
        assert_eq!(reason_text(None), "(no reason recorded)");
    }
}
