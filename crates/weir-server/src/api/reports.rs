//! The daily reports' history: `GET /v1/reports` (newest first), `GET /v1/reports/{date}` (the
//! report's JSON twin) and `GET /v1/reports/{date}/html` (the document, for the dashboard's
//! links). They read what `weir report daily` (or the scheduler) wrote to the reports bucket
//! ([`weir_pipeline::report`]); nothing is computed here.
//!
//! The HTML is served with a Content-Security-Policy that allows no script and no fetch: the
//! report needs neither, and a report is HTML built from object keys and reasons that came
//! from outside.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use weir_pipeline::report::{list_reports, read_report, ReportDocument, ReportRunError};

use crate::http_error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The most reports one listing returns.
pub const MAX_LIST: usize = 366;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many (1 to 366) [default: 30]
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// The report of this pipeline only (as `weir report daily --pipeline` wrote it)
    pub pipeline: Option<String>,
}

/// One report of the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportView {
    /// The day (UTC) the report is about, `YYYY-MM-DD`.
    pub date: String,
    pub pipeline: Option<String>,
    pub bucket: String,
    pub html_key: String,
    pub json_key: String,
    /// When it was written (RFC 3339).
    pub written_at: String,
    /// Where the API serves the document.
    pub html_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReportList {
    pub reports: Vec<ReportView>,
}

fn store_error(e: ReportRunError) -> ApiError {
    match e {
        ReportRunError::Store { source, .. } => source.into(),
        other => ApiError::bad_request("invalid_request", other.to_string()),
    }
}

fn parse_date(date: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(date, "%Y-%m-%d").ok().filter(|_| date.len() == 10).ok_or_else(|| {
        ApiError::bad_request("invalid_request", format!("{date:?} is not a date as YYYY-MM-DD"))
    })
}

fn html_url(date: NaiveDate, pipeline: Option<&str>) -> String {
    match pipeline {
        Some(p) => format!("/v1/reports/{date}/html?pipeline={p}"),
        None => format!("/v1/reports/{date}/html"),
    }
}

/// The daily reports written, newest first.
#[utoipa::path(get, path = "/v1/reports", tag = "reports", params(ListQuery),
    responses(
        (status = 200, description = "the reports, newest date first", body = ReportList),
        (status = 400, description = "a bad limit", body = ErrorBody),
        (status = 401, description = "no bearer token or session", body = ErrorBody),
        (status = 403, description = "wrong bearer token or session", body = ErrorBody),
        (status = 503, description = "a backend is unavailable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ReportList>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let limit = query.limit.unwrap_or(30);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(ApiError::bad_request("invalid_request", format!("limit must be 1 to {MAX_LIST}")));
    }
    let entries = list_reports(&state.ctx.ports, &state.ctx.config, limit).await.map_err(store_error)?;
    let reports = entries
        .into_iter()
        .map(|e| ReportView {
            html_url: html_url(e.date, e.pipeline.as_deref()),
            date: e.date.to_string(),
            pipeline: e.pipeline,
            bucket: e.bucket,
            html_key: e.html_key,
            json_key: e.json_key,
            written_at: e.written_at.to_rfc3339(),
        })
        .collect();
    Ok(Json(ReportList { reports }))
}

async fn document(
    state: &AppState,
    date: &str,
    query: Result<Query<ReportQuery>, QueryRejection>,
    which: ReportDocument,
) -> Result<Vec<u8>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let date = parse_date(date)?;
    let pipeline = query.pipeline.as_deref().filter(|p| !p.is_empty());
    read_report(&state.ctx.ports, &state.ctx.config, date, pipeline, which)
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no daily report of {date} (weir report daily --date {date} writes one)"
            ))
        })
}

/// A daily report's figures (its JSON twin, as written).
#[utoipa::path(get, path = "/v1/reports/{date}", tag = "reports",
    params(("date" = String, Path, description = "the day, YYYY-MM-DD"), ReportQuery),
    responses(
        (status = 200, description = "the report's figures", body = Object),
        (status = 400, description = "a bad date or query", body = ErrorBody),
        (status = 401, description = "no bearer token or session", body = ErrorBody),
        (status = 403, description = "wrong bearer token or session", body = ErrorBody),
        (status = 404, description = "no report of that day", body = ErrorBody),
        (status = 503, description = "a backend is unavailable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_json(
    State(state): State<AppState>,
    Path(date): Path<String>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let body = document(&state, &date, query, ReportDocument::Json).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], Bytes::from(body)))
}

/// A daily report's HTML document.
#[utoipa::path(get, path = "/v1/reports/{date}/html", tag = "reports",
    params(("date" = String, Path, description = "the day, YYYY-MM-DD"), ReportQuery),
    responses(
        (status = 200, description = "the report", content((String = "text/html"))),
        (status = 400, description = "a bad date or query", body = ErrorBody),
        (status = 401, description = "no bearer token or session", body = ErrorBody),
        (status = 403, description = "wrong bearer token or session", body = ErrorBody),
        (status = 404, description = "no report of that day", body = ErrorBody),
        (status = 503, description = "a backend is unavailable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_html(
    State(state): State<AppState>,
    Path(date): Path<String>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let body = document(&state, &date, query, ReportDocument::Html).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
            (header::CACHE_CONTROL, "private, no-cache"),
        ],
        Bytes::from(body),
    ))
}
