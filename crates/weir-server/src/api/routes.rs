//! The API's handlers.
//!
//! Each handler reads its input by hand (the body as bytes, the query through a rejection-aware
//! extractor), so that every malformed request gets the JSON error body and a documented status
//! rather than a framework's plain-text rejection.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use weir_core::keys::validate_key;
use weir_core::{Job, JobId, JobStatus};
use weir_pipeline::ingest as pipeline_ingest;
use weir_ports::{JobFilter, Metadata};

use super::ingest;
use crate::http_error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Jobs per page when `limit` is not given, and the most a page may hold.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` / `ready`, or `unavailable`.
    pub status: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Liveness: the process answers. No authentication.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into(), problems: vec![] })
}

/// Readiness: the queue, the job store and the input bucket answer. No authentication.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "ready", body = Health),
    (status = 503, description = "a backend is not ready", body = Health),
))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let ports = &state.ctx.ports;
    let mut problems = Vec::new();
    if let Err(e) = ports.queue.stats().await {
        tracing::warn!(error = %e, "readiness: the queue does not answer");
        problems.push("queue".to_string());
    }
    if let Err(e) = ports.jobs.counts().await {
        tracing::warn!(error = %e, "readiness: the job store does not answer");
        problems.push("job store".to_string());
    }
    match ports.objects.bucket_exists(&state.ctx.config.buckets.input).await {
        Ok(true) => {}
        Ok(false) => problems.push("input bucket missing".to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the object store does not answer");
            problems.push("object store".to_string());
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, Json(Health { status: "ready".into(), problems }))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "unavailable".into(), problems }))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IngestQuery {
    /// Send the records to this pipeline [default: a pipeline on the input bucket that takes
    /// JSON, else one that takes CSV]
    pub pipeline: Option<String>,
}

/// The seed's direct-invocation payload.
#[derive(Debug, ToSchema)]
pub struct IngestPayload {
    /// The records, one object each.
    #[schema(min_items = 1)]
    pub data: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ingested {
    pub job_id: String,
    pub pipeline: String,
    pub bucket: String,
    pub key: String,
    pub records: usize,
    /// `ndjson`, `json` or `csv`: how the records were stored for the pipeline.
    pub stored_as: String,
    pub status: String,
}

/// Ingest records: `{"data": [{...}, ...]}`, `[{...}, ...]` or NDJSON. They are stored as one
/// object in the input bucket (converted to CSV for a CSV pipeline) and processed as a job; without
/// `pipeline`, the first pipeline whose required columns the first record has takes them.
#[utoipa::path(post, path = "/v1/ingest", tag = "ingest", params(IngestQuery),
    request_body(description = "`{\"data\": [{...}, ...]}`, `[{...}, ...]`, or NDJSON (one object per line)", content(
        (IngestPayload = "application/json"),
        (String = "application/x-ndjson"),
    )),
    responses(
        (status = 202, description = "stored and queued", body = Ingested),
        (status = 400, description = "not a payload of records", body = ErrorBody),
        (status = 401, description = "no bearer token", body = ErrorBody),
        (status = 403, description = "wrong bearer token", body = ErrorBody),
        (status = 413, description = "body over the limit", body = ErrorBody),
        (status = 422, description = "no pipeline takes records", body = ErrorBody),
        (status = 503, description = "a backend is unavailable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn ingest(
    State(state): State<AppState>,
    query: Result<Query<IngestQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Ingested>), ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let body = body.map_err(|e| body_error(e, &state))?;
    let config = &state.ctx.config;
    let id = uuid::Uuid::new_v4().simple().to_string();
    // Without `?pipeline=`, the records' first fields choose it: a look at the first record,
    // off the async threads (the body may be large).
    let fields = match query.pipeline {
        Some(_) => Vec::new(),
        None => {
            let body = body.clone();
            tokio::task::spawn_blocking(move || ingest::first_fields(&body)).await.map_err(|e| {
                ApiError::from(weir_ports::PortError::unavailable("ingest", std::io::Error::other(e)))
            })?
        }
    };
    let target = ingest::target(config, query.pipeline.as_deref(), &id, &fields)?;
    // Parsing and writing are CPU work: on a blocking thread, straight into a file the store
    // then takes (a rename on the embedded store).
    let ports = &state.ctx.ports;
    let scratch = ports.objects.local_scratch().unwrap_or_else(|| state.ctx.data_dir.join(".tmp"));
    let path = scratch.join(format!("ingest-{id}"));
    let (encoding, max) = (target.encoding, config.server.max_object_bytes);
    let written = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(path.parent().expect("a folder")).map_err(|e| {
                ApiError::from(weir_ports::PortError::unavailable("the ingest scratch folder", e))
            })?;
            let result = ingest::store(&body, encoding, &path, max);
            if result.is_err() {
                let _ = std::fs::remove_file(&path);
            }
            result
        })
        .await
        .map_err(|e| {
            ApiError::from(weir_ports::PortError::unavailable("ingest", std::io::Error::other(e)))
        })??
    };
    let metadata = Metadata::from([("weir-source".to_string(), "api-ingest".to_string())]);
    let stored = ports.objects.put_file(&target.bucket, &target.key, &path, metadata).await;
    let _ = std::fs::remove_file(&path);
    let info = stored?;
    let job = pipeline_ingest::object_created(ports, config, &info, "Put").await?;
    let job = job.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_pipeline",
            format!("no pipeline took {}", info.key),
        )
    })?;
    let stored_as = match target.encoding {
        ingest::Encoding::Ndjson => "ndjson",
        ingest::Encoding::JsonArray => "json",
        ingest::Encoding::Csv { .. } => "csv",
    };
    let out = Ingested {
        job_id: job.job_id.to_string(),
        pipeline: target.pipeline.name.clone(),
        bucket: info.bucket,
        key: info.key,
        records: written.records,
        stored_as: stored_as.into(),
        status: job.status.to_string(),
    };
    Ok((StatusCode::ACCEPTED, Json(out)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stored {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
    /// The queued job, if a pipeline takes the key.
    pub job_id: Option<String>,
}

/// Upload a file into the input bucket under `key` (e.g. `raw/sales.csv`); a pipeline whose
/// source matches the key processes it.
#[utoipa::path(put, path = "/v1/files/{key}", tag = "files",
    params(("key" = String, Path, description = "object key in the input bucket, e.g. raw/sales.csv")),
    request_body(content = Vec<u8>, description = "the file's bytes (may be empty)", content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "stored (and queued if a pipeline takes it)", body = Stored),
        (status = 400, description = "a key that is not allowed", body = ErrorBody),
        (status = 401, description = "no bearer token", body = ErrorBody),
        (status = 403, description = "wrong bearer token", body = ErrorBody),
        (status = 404, description = "no key given", body = ErrorBody),
        (status = 413, description = "body over the limit", body = ErrorBody),
        (status = 503, description = "a backend is unavailable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn put_file(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Stored>), ApiError> {
    validate_key(&key).map_err(|e| ApiError::bad_request("invalid_key", e.to_string()))?;
    let body = body.map_err(|e| body_error(e, &state))?;
    let config = &state.ctx.config;
    let (info, job) = pipeline_ingest::put_object(
        &state.ctx.ports,
        config,
        &config.buckets.input,
        &key,
        body,
        Metadata::new(),
    )
    .await?;
    let out = Stored {
        bucket: info.bucket,
        key: info.key,
        size: info.size,
        etag: info.etag,
        job_id: job.map(|j| j.job_id.to_string()),
    };
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// Only jobs in this status.
    #[param(inline)]
    pub status: Option<StatusParam>,
    /// Jobs per page (1-1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusParam {
    Queued,
    Running,
    Succeeded,
    Rejected,
    Failed,
    Skipped,
    Superseded,
}

impl StatusParam {
    fn status(self) -> JobStatus {
        match self {
            StatusParam::Queued => JobStatus::Queued,
            StatusParam::Running => JobStatus::Running,
            StatusParam::Succeeded => JobStatus::Succeeded,
            StatusParam::Rejected => JobStatus::Rejected,
            StatusParam::Failed => JobStatus::Failed,
            StatusParam::Skipped => JobStatus::Skipped,
            StatusParam::Superseded => JobStatus::Superseded,
        }
    }
}

/// A job record as the job store keeps it (fields may be added over time).
#[derive(Debug, Serialize, ToSchema)]
pub struct JobDoc {
    pub job_id: String,
    pub pipeline: Option<String>,
    /// queued, running, succeeded, rejected, failed, skipped or superseded
    pub status: String,
    pub source_bucket: String,
    pub source_key: String,
    pub source_etag: String,
    pub source_size: u64,
    pub total_rows: u64,
    pub valid_rows: u64,
    pub invalid_rows: u64,
    /// Output objects by role: results, summary, errors, archive, failed; an image job's
    /// thumbnail_<size> and metadata.
    pub output_keys: std::collections::BTreeMap<String, String>,
    pub attempts: u32,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
    /// The workflow states the job went through.
    pub steps: Vec<serde_json::Value>,
    /// An image job's picture: `format`, `mode`, `width`, `height`, `display_width`,
    /// `display_height`, `file_size`, `animated`, `exif` (make, model, orientation, dates,
    /// `has_gps`) and `thumbnails` (name, width, height, bytes, key in the output bucket).
    #[schema(value_type = Option<Object>)]
    pub image: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    /// Newest first.
    #[schema(value_type = Vec<JobDoc>)]
    pub jobs: Vec<Job>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Jobs, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", params(JobsQuery),
    responses(
        (status = 200, description = "a page of jobs", body = JobPage),
        (status = 400, description = "a bad status, limit or cursor", body = ErrorBody),
        (status = 401, description = "no bearer token", body = ErrorBody),
        (status = 403, description = "wrong bearer token", body = ErrorBody),
        (status = 503, description = "a backend is unavailable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_jobs(
    State(state): State<AppState>,
    query: Result<Query<JobsQuery>, QueryRejection>,
) -> Result<Json<JobPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request("invalid_request", format!("limit must be 1-{MAX_LIMIT}")));
    }
    let status = query.status.map(StatusParam::status);
    let cursor = query.cursor.as_deref().map(Cursor::decode).transpose()?;
    let (jobs, more) = page(&state, status, limit, cursor.as_ref()).await?;
    let next_cursor = if more { jobs.last().map(|j| Cursor::after(j).encode()) } else { None };
    Ok(Json(JobPage { jobs, next_cursor }))
}

/// Where the previous page ended: the last job's creation time and id.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    created_at: DateTime<Utc>,
    job_id: String,
}

impl Cursor {
    fn after(job: &Job) -> Cursor {
        Cursor { created_at: job.created_at, job_id: job.job_id.0.clone() }
    }

    fn encode(&self) -> String {
        hex::encode(serde_json::to_vec(self).expect("cursor serializes"))
    }

    fn decode(s: &str) -> Result<Cursor, ApiError> {
        hex::decode(s).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(|| {
            ApiError::bad_request("invalid_request", "the cursor is not one this API gave out")
        })
    }
}

/// One page after `cursor`. The job store lists newest first without offsets, so the page is
/// found by reading ahead until the cursor's job turns up (a window that doubles as needed);
/// if that job is gone, the page starts at the first job created before it.
async fn page(
    state: &AppState,
    status: Option<JobStatus>,
    limit: usize,
    cursor: Option<&Cursor>,
) -> Result<(Vec<Job>, bool), ApiError> {
    let jobs_store = &state.ctx.ports.jobs;
    let mut window = limit + 1 + if cursor.is_some() { 256 } else { 0 };
    loop {
        #[allow(clippy::needless_update, reason = "the filter may gain fields; they keep their defaults")]
        let filter = JobFilter { status, limit: window, ..Default::default() };
        let jobs = jobs_store.list(&filter).await?;
        let complete = jobs.len() < window;
        let start = match cursor {
            None => Some(0),
            Some(c) => match jobs.iter().position(|j| j.job_id.0 == c.job_id) {
                Some(i) => Some(i + 1),
                None if complete || window >= 1 << 20 => {
                    Some(jobs.iter().position(|j| j.created_at < c.created_at).unwrap_or(jobs.len()))
                }
                None => None,
            },
        };
        if let Some(start) = start {
            if start + limit < jobs.len() || complete || window >= 1 << 20 {
                let more = jobs.len() > start + limit;
                return Ok((jobs.into_iter().skip(start).take(limit).collect(), more));
            }
        }
        window *= 2;
    }
}

/// One job: counts, outputs, error and the workflow steps it took.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "job id, e.g. j-0123456789abcdef01234567")),
    responses(
        (status = 200, description = "the job", body = JobDoc),
        (status = 401, description = "no bearer token", body = ErrorBody),
        (status = 403, description = "wrong bearer token", body = ErrorBody),
        (status = 404, description = "no such job", body = ErrorBody),
        (status = 503, description = "a backend is unavailable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_job(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Job>, ApiError> {
    match state.ctx.ports.jobs.get(&JobId(id.clone())).await? {
        Some(job) => Ok(Json(job)),
        None => Err(ApiError::not_found(format!("job {id:?} not found"))),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DlqQuery {
    /// At most this many (1-1000, default 100), oldest first.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterView {
    pub message_id: String,
    /// The message as it was queued (an S3 event notification).
    pub body: String,
    pub receive_count: u32,
    #[schema(value_type = String, format = DateTime)]
    pub sent_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub dead_lettered_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetters {
    pub dead_letters: Vec<DeadLetterView>,
}

/// Messages in the dead-letter queue, oldest first.
#[utoipa::path(get, path = "/v1/dlq", tag = "dlq", params(DlqQuery),
    responses(
        (status = 200, description = "dead letters", body = DeadLetters),
        (status = 400, description = "a bad limit", body = ErrorBody),
        (status = 401, description = "no bearer token", body = ErrorBody),
        (status = 403, description = "wrong bearer token", body = ErrorBody),
        (status = 503, description = "a backend is unavailable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_dlq(
    State(state): State<AppState>,
    query: Result<Query<DlqQuery>, QueryRejection>,
) -> Result<Json<DeadLetters>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request("invalid_request", format!("limit must be 1-{MAX_LIMIT}")));
    }
    let letters = state.ctx.ports.queue.dlq_list(limit).await?;
    let dead_letters = letters
        .into_iter()
        .map(|d| DeadLetterView {
            message_id: d.message_id,
            body: d.body,
            receive_count: d.receive_count,
            sent_at: d.sent_at,
            dead_lettered_at: d.dead_lettered_at,
        })
        .collect();
    Ok(Json(DeadLetters { dead_letters }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Message ids to move back to the main queue.
    pub ids: Option<Vec<String>>,
    /// Move every dead letter back.
    pub all: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    pub replayed: usize,
}

/// Move dead letters back to the main queue (`{"ids": [...]}` or `{"all": true}`), after the
/// cause is fixed.
#[utoipa::path(post, path = "/v1/dlq/replay", tag = "dlq", request_body = ReplayRequest,
    responses(
        (status = 200, description = "how many moved", body = Replayed),
        (status = 400, description = "neither ids nor all", body = ErrorBody),
        (status = 401, description = "no bearer token", body = ErrorBody),
        (status = 403, description = "wrong bearer token", body = ErrorBody),
        (status = 413, description = "body over the limit", body = ErrorBody),
        (status = 503, description = "a backend is unavailable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn replay_dlq(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Replayed>, ApiError> {
    let body = body.map_err(|e| body_error(e, &state))?;
    let request: ReplayRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!("expected {{\"ids\": [...]}} or {{\"all\": true}}: {e}"),
        )
    })?;
    let replayed = match (request.ids, request.all) {
        (Some(ids), None | Some(false)) => state.ctx.ports.queue.dlq_replay(Some(&ids)).await?,
        (None, Some(true)) => state.ctx.ports.queue.dlq_replay(None).await?,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "give either `ids` (a list of message ids) or `\"all\": true`",
            ))
        }
    };
    Ok(Json(Replayed { replayed }))
}

/// Any path the API does not have.
fn body_error(e: BytesRejection, state: &AppState) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(state.ctx.config.server.max_api_body_bytes)
    } else {
        ApiError::bad_request("invalid_request", e.body_text())
    }
}
