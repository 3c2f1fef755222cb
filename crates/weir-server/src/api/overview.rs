//! The JSON the dashboard draws: `GET /v1/overview` (throughput, errors and latency over time,
//! queue and DLQ depth, alarms, recent and failed jobs in one response), and for a job's page
//! `GET /v1/jobs/{id}/errors` (the first rows of its error report) and
//! `GET /v1/jobs/{id}/summary` (its summary document).
//!
//! Both are ordinary API endpoints (bearer token or the dashboard's session cookie, in the
//! OpenAPI document), so a script can read what the page shows.
//!
//! The time series are the job store's per-minute counters ([`weir_core::stats`]) over the
//! window, a point per minute up to an hour and per several minutes beyond (at most
//! [`POINTS`]): exact, and as quick to read after a million jobs as after ten. Durations are
//! percentiles of the counters' histogram (exact to its bucket). One computed overview is
//! reused for [`CACHE_FOR`], so many open dashboards cost the store one read per second. Queue
//! and DLQ depth over time come from the alarm monitor's samples (every 10 s, the last 15
//! minutes), their current values from the queue itself.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, TimeZone, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use weir_core::alarms::metrics as alarm_metrics;
use weir_core::stats::{Tally, DURATION_BUCKETS_MS};
use weir_core::{Job, JobId, JobStatus};
use weir_ports::JobFilter;

use crate::http_error::{ApiError, ErrorBody};
use crate::state::AppState;

/// How long one computed overview is served again.
pub const CACHE_FOR: Duration = Duration::from_secs(1);
/// Points in each time series, at most.
pub const POINTS: i64 = 60;
/// Jobs in the recent and failed lists.
const LIST_LEN: usize = 25;
/// The most of an error report read for a preview.
pub const PREVIEW_BYTES: u64 = 256 * 1024;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OverviewQuery {
    /// The time window in minutes (5-1440, default 60); the series have 60 points over it.
    #[param(minimum = 5, maximum = 1440)]
    pub minutes: Option<u32>,
}

/// Everything the dashboard shows, at one moment.
#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    pub generated_at: String,
    pub window_minutes: u32,
    /// Width of one point of [`Overview::series`].
    pub bucket_seconds: u64,
    /// Jobs by status since the store began: the finished outcomes from the lifetime counters,
    /// and the jobs queued or running now (see [`totals_by_status`]).
    pub totals: BTreeMap<String, u64>,
    /// Finished jobs, errors, rows and job duration per bucket, oldest first.
    pub series: Vec<SeriesPoint>,
    /// Job duration over the whole window.
    pub latency: Latency,
    pub queue: QueueNow,
    /// Queue and DLQ depth as the alarm monitor sampled them (every 10 s, the last 15 min).
    pub queue_history: Vec<QueuePoint>,
    /// As the alarm monitor last evaluated them.
    pub alarms: Vec<AlarmView>,
    /// The newest jobs.
    pub recent_jobs: Vec<JobSummary>,
    /// The newest rejected and failed jobs, with their reasons.
    pub failed_jobs: Vec<JobSummary>,
}

#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// Start of the bucket (RFC 3339).
    pub start: String,
    /// Jobs created (files received) in the bucket.
    pub received: u64,
    /// Jobs that finished in the bucket, by final status.
    pub succeeded: u64,
    pub rejected: u64,
    pub failed: u64,
    pub skipped: u64,
    pub rows_valid: u64,
    pub rows_invalid: u64,
    /// Job duration percentiles of the jobs that finished in the bucket.
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Latency {
    /// Jobs with a duration that finished in the window.
    pub samples: u64,
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    /// The upper bound of the slowest job's histogram bucket.
    pub max_ms: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueNow {
    pub visible: u64,
    pub delayed: u64,
    pub in_flight: u64,
    pub dead_letters: u64,
    pub oldest_age_seconds: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueuePoint {
    pub at: String,
    pub visible: f64,
    pub dead_letters: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlarmView {
    pub name: String,
    pub description: String,
    /// OK, ALARM or INSUFFICIENT_DATA
    pub state: String,
    pub reason: String,
}

/// A job without its workflow history: what a list row needs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobSummary {
    pub job_id: String,
    pub pipeline: Option<String>,
    pub status: String,
    pub source_bucket: String,
    pub source_key: String,
    pub source_size: u64,
    pub total_rows: u64,
    pub valid_rows: u64,
    pub invalid_rows: u64,
    pub attempts: u32,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
}

impl From<&Job> for JobSummary {
    fn from(j: &Job) -> JobSummary {
        JobSummary {
            job_id: j.job_id.0.clone(),
            pipeline: j.pipeline.clone(),
            status: j.status.as_str().to_owned(),
            source_bucket: j.source_bucket.clone(),
            source_key: j.source_key.clone(),
            source_size: j.source_size,
            total_rows: j.total_rows,
            valid_rows: j.valid_rows,
            invalid_rows: j.invalid_rows,
            attempts: j.attempts,
            created_at: rfc3339(j.created_at),
            finished_at: j.finished_at.map(rfc3339),
            duration_ms: j.duration_ms,
            error: j.error.clone(),
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The dashboard's data: throughput, errors and latency over time, queue and DLQ depth, alarm
/// states, recent and failed jobs.
#[utoipa::path(get, path = "/v1/overview", tag = "dashboard", params(OverviewQuery),
    responses(
        (status = 200, description = "the overview", body = Overview),
        (status = 400, description = "a bad window", body = ErrorBody),
        (status = 401, description = "no bearer token or session", body = ErrorBody),
        (status = 403, description = "wrong bearer token or session", body = ErrorBody),
        (status = 503, description = "a backend is unavailable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn overview(
    State(state): State<AppState>,
    query: Result<Query<OverviewQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let minutes = query.minutes.unwrap_or(60);
    if !(5..=1440).contains(&minutes) {
        return Err(ApiError::bad_request("invalid_request", "minutes must be 5-1440"));
    }
    let cached = {
        let cache = state.overview_cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.as_ref().filter(|(m, at, _)| *m == minutes && at.elapsed() < CACHE_FOR).map(|c| c.2.clone())
    };
    let body = match cached {
        Some(body) => body,
        None => {
            let body = Bytes::from(serde_json::to_vec(&compute(&state, minutes).await?).expect("serializes"));
            *state.overview_cache.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((minutes, Instant::now(), body.clone()));
            body
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body))
}

async fn compute(state: &AppState, minutes: u32) -> Result<Overview, ApiError> {
    let ports = &state.ctx.ports;
    let now = Utc::now();
    let step = (i64::from(minutes) + POINTS - 1) / POINTS;
    let points = (i64::from(minutes) + step - 1) / step;
    // The current minute (still filling) is the last point's.
    let end = weir_core::stats::minute_of(now) + 1;
    let start = end - points * step;
    let counted = ports.jobs.series(start, end).await?;
    let mut series: Vec<SeriesPoint> = (0..points)
        .map(|i| SeriesPoint {
            start: Utc.timestamp_opt((start + i * step) * 60, 0).single().map(rfc3339).unwrap_or_default(),
            ..SeriesPoint::default()
        })
        .collect();
    let mut timed = vec![Tally::default(); series.len()];
    let slot = |minute: i64| ((minute - start) / step) as usize;
    for r in &counted.received {
        series[slot(r.minute)].received += r.files;
    }
    for m in &counted.finished {
        let (p, t) = (&mut series[slot(m.minute)], &m.tally);
        match m.status {
            JobStatus::Succeeded => p.succeeded += t.files,
            JobStatus::Rejected => p.rejected += t.files,
            JobStatus::Failed => p.failed += t.files,
            _ => p.skipped += t.files,
        }
        p.rows_valid += t.rows_valid;
        p.rows_invalid += t.rows_invalid;
        timed[slot(m.minute)].add(t);
    }
    let ms = |v: Option<f64>| v.map(|v| v.round() as u64);
    for (p, t) in series.iter_mut().zip(&timed) {
        p.p50_ms = ms(t.percentile_ms(50.0));
        p.p99_ms = ms(t.percentile_ms(99.0));
    }
    let mut window = Tally::default();
    timed.iter().for_each(|t| window.add(t));
    let slowest = window.duration_buckets.iter().rposition(|&n| n > 0);
    let latency = Latency {
        samples: window.timed,
        p50_ms: ms(window.percentile_ms(50.0)),
        p99_ms: ms(window.percentile_ms(99.0)),
        max_ms: slowest.map(|i| DURATION_BUCKETS_MS.get(i).copied().unwrap_or(u64::MAX)),
    };

    let q = ports.queue.stats().await?;
    let queue = QueueNow {
        visible: q.visible,
        delayed: q.delayed,
        in_flight: q.in_flight,
        dead_letters: q.dead_letters,
        oldest_age_seconds: q.oldest_age.map(|d| d.as_secs_f64()),
    };
    let (queue_history, alarms) = match &state.monitor {
        Some(m) => {
            let visible = m.history(alarm_metrics::QUEUE_MESSAGES);
            let dead = m.history(alarm_metrics::DLQ_MESSAGES);
            let history = visible
                .iter()
                .map(|v| QueuePoint {
                    at: Utc.timestamp_millis_opt(v.at_ms).single().map(rfc3339).unwrap_or_default(),
                    visible: v.value,
                    dead_letters: dead.iter().find(|d| d.at_ms == v.at_ms).map_or(0.0, |d| d.value),
                })
                .collect();
            (history, m.states())
        }
        None => (Vec::new(), crate::alarms::read_states(&state.ctx.data_dir).unwrap_or_default()),
    };
    let alarms = alarms
        .into_iter()
        .map(|a| AlarmView {
            name: a.name,
            description: a.description,
            state: a.state.as_str().to_owned(),
            reason: a.reason,
        })
        .collect();

    let recent = ports.jobs.list(&JobFilter { status: None, limit: LIST_LEN }).await?;
    let mut failed = Vec::new();
    for status in [JobStatus::Failed, JobStatus::Rejected] {
        failed.extend(ports.jobs.list(&JobFilter { status: Some(status), limit: LIST_LEN }).await?);
    }
    failed.sort_by_key(|j| std::cmp::Reverse(j.created_at));
    failed.truncate(LIST_LEN);

    Ok(Overview {
        generated_at: rfc3339(now),
        window_minutes: minutes,
        bucket_seconds: (step * 60) as u64,
        totals: totals_by_status(&ports.jobs.totals().await?),
        series,
        latency,
        queue,
        queue_history,
        alarms,
        recent_jobs: recent.iter().map(JobSummary::from).collect(),
        failed_jobs: failed.iter().map(JobSummary::from).collect(),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// At most this many rows of the report (1-500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

/// The first rows of a job's error report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorPreview {
    pub job_id: String,
    /// Where the report is; absent when the job has no error report.
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The report's size in bytes, if it exists.
    pub size: Option<u64>,
    /// Invalid rows as the report describes them: line, field, reason, values.
    pub errors: Vec<Value>,
    /// True when `errors` holds every row the report has.
    pub complete: bool,
}

/// A preview of a job's error report: its first rows (line, field, reason, original values),
/// read from the output bucket up to 256 KiB.
#[utoipa::path(get, path = "/v1/jobs/{id}/errors", tag = "jobs",
    params(("id" = String, Path, description = "job id"), PreviewQuery),
    responses(
        (status = 200, description = "the preview (empty when the job has no error report)", body = ErrorPreview),
        (status = 400, description = "a bad limit", body = ErrorBody),
        (status = 401, description = "no bearer token or session", body = ErrorBody),
        (status = 403, description = "wrong bearer token or session", body = ErrorBody),
        (status = 404, description = "no such job", body = ErrorBody),
        (status = 503, description = "a backend is unavailable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn error_preview(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<PreviewQuery>, QueryRejection>,
) -> Result<Json<ErrorPreview>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("invalid_request", "limit must be 1-500"));
    }
    let ports = &state.ctx.ports;
    let job = ports
        .jobs
        .get(&JobId(id.clone()))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id:?} not found")))?;
    let mut out =
        ErrorPreview { job_id: id, bucket: None, key: None, size: None, errors: Vec::new(), complete: true };
    let Some(key) = job.output_keys.get("errors") else { return Ok(Json(out)) };
    let bucket = state.ctx.config.buckets.output.clone();
    let (info, stream) = match ports.objects.get_range(&bucket, key, 0..PREVIEW_BYTES).await {
        Ok(found) => found,
        Err(e) if e.is_not_found() => {
            (out.bucket, out.key, out.complete) = (Some(bucket), Some(key.clone()), false);
            return Ok(Json(out));
        }
        Err(e) => return Err(e.into()),
    };
    let chunks: Vec<Bytes> = stream.try_collect().await.map_err(ApiError::from)?;
    let head = chunks.concat();
    let (errors, complete) = preview_rows(&head, limit);
    out.bucket = Some(bucket);
    out.key = Some(key.clone());
    out.size = Some(info.size);
    out.errors = errors;
    out.complete = complete;
    Ok(Json(out))
}

/// A job's summary document, if it has one and it is small enough to show.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryDoc {
    pub job_id: String,
    /// Where the summary is; absent when the job has none (yet).
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub size: Option<u64>,
    /// The summary (`total_rows`, `valid_rows`, `success_rate`, `numeric`, `categorical`,
    /// `group_by`, ...); absent when it is missing or larger than 256 KiB.
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Value>,
}

/// A job's summary: row counts, numeric statistics, top values and group-by aggregates, read from
/// the output bucket (up to 256 KiB).
#[utoipa::path(get, path = "/v1/jobs/{id}/summary", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses(
        (status = 200, description = "the summary (empty when the job has none)", body = SummaryDoc),
        (status = 401, description = "no bearer token or session", body = ErrorBody),
        (status = 403, description = "wrong bearer token or session", body = ErrorBody),
        (status = 404, description = "no such job", body = ErrorBody),
        (status = 503, description = "a backend is unavailable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn job_summary(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SummaryDoc>, ApiError> {
    let ports = &state.ctx.ports;
    let job = ports
        .jobs
        .get(&JobId(id.clone()))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id:?} not found")))?;
    let mut out = SummaryDoc { job_id: id, bucket: None, key: None, size: None, summary: None };
    let Some(key) = job.output_keys.get("summary") else { return Ok(Json(out)) };
    let bucket = state.ctx.config.buckets.output.clone();
    out.bucket = Some(bucket.clone());
    out.key = Some(key.clone());
    let (info, stream) = match ports.objects.get_range(&bucket, key, 0..PREVIEW_BYTES).await {
        Ok(found) => found,
        Err(e) if e.is_not_found() => return Ok(Json(out)),
        Err(e) => return Err(e.into()),
    };
    out.size = Some(info.size);
    if info.size <= PREVIEW_BYTES {
        let chunks: Vec<Bytes> = stream.try_collect().await.map_err(ApiError::from)?;
        out.summary = serde_json::from_slice(&chunks.concat()).ok();
    }
    Ok(Json(out))
}

/// Up to `limit` elements of the top-level `errors` array of a report that may be cut short at
/// any byte, and whether they are all of them. Elements are parsed one at a time, so a cut
/// element is left out rather than failing the preview.
pub fn preview_rows(doc: &[u8], limit: usize) -> (Vec<Value>, bool) {
    let mut p = Cursor { b: doc, i: 0 };
    let mut rows = Vec::new();
    if !p.eat(b'{') {
        return (rows, false);
    }
    loop {
        if p.eat(b'}') {
            return (rows, true); // no `errors`: nothing to show, and that is all of it
        }
        p.eat(b',');
        let Some(key) = p.value::<String>() else { return (rows, false) };
        if !p.eat(b':') {
            return (rows, false);
        }
        if key != "errors" {
            if p.value::<serde::de::IgnoredAny>().is_none() {
                return (rows, false);
            }
            continue;
        }
        if !p.eat(b'[') {
            return (rows, false);
        }
        loop {
            if p.eat(b']') {
                return (rows, true);
            }
            p.eat(b',');
            if rows.len() == limit {
                return (rows, false);
            }
            match p.value::<Value>() {
                Some(v) => rows.push(v),
                None => return (rows, false),
            }
        }
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    /// Skips whitespace, then `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
        let hit = self.b.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    /// One JSON value, or `None` if the bytes end inside it or it is not one.
    fn value<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
        let mut it = serde_json::Deserializer::from_slice(&self.b[self.i..]).into_iter::<T>();
        let v = it.next()?.ok()?;
        self.i += it.byte_offset();
        Some(v)
    }
}

/// The dashboard's figures by status: each final status from the lifetime counters of
/// outcomes, which expiring job records (retention's `weir gc` on the data dir, DynamoDB's TTL
/// on AWS, which weir never hears of) leaves as they were; `queued` and `running` from the
/// jobs in those statuses now, which no retention removes (only done jobs expire).
pub fn totals_by_status(totals: &weir_core::stats::JobTotals) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for ((_, status), tally) in &totals.finished {
        *out.entry(status.as_str().to_owned()).or_default() += tally.files;
    }
    for status in [JobStatus::Queued, JobStatus::Running] {
        if let Some(n) = totals.current.get(&status).filter(|n| **n > 0) {
            out.insert(status.as_str().to_owned(), *n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(n: usize) -> Vec<u8> {
        let errors: Vec<Value> = (0..n)
            .map(|i| serde_json::json!({"line": i + 2, "field": "quantity", "reason": "not an integer", "values": {"quantity": "x"}}))
            .collect();
        let doc = serde_json::json!({"source": "weir-input/raw/a.csv", "total_rows": n, "errors": errors, "truncated": false});
        serde_json::to_vec_pretty(&doc).unwrap()
    }

    #[test]
    fn previews_a_whole_report() {
        let (rows, complete) = preview_rows(&report(3), 50);
        assert_eq!(rows.len(), 3);
        assert!(complete);
        assert_eq!(rows[2]["line"], 4);
    }

    #[test]
    fn stops_at_the_limit() {
        let (rows, complete) = preview_rows(&report(10), 4);
        assert_eq!(rows.len(), 4);
        assert!(!complete);
        let (rows, complete) = preview_rows(&report(4), 4);
        assert_eq!((rows.len(), complete), (4, true));
    }

    #[test]
    fn a_report_cut_at_any_byte_gives_the_whole_rows_before_the_cut() {
        let doc = report(5);
        let whole = preview_rows(&doc, 50).0;
        for cut in 0..doc.len() {
            let (rows, complete) = preview_rows(&doc[..cut], 50);
            assert!(!complete || rows.len() == 5, "cut at {cut}");
            assert_eq!(rows[..], whole[..rows.len()], "cut at {cut}");
        }
    }

    #[test]
    fn not_a_report_is_an_empty_preview() {
        assert_eq!(preview_rows(b"[1,2]", 5), (vec![], false));
        assert_eq!(preview_rows(b"{}", 5), (vec![], true));
        assert_eq!(preview_rows(b"{\"errors\": 3}", 5), (vec![], false));
    }
}
