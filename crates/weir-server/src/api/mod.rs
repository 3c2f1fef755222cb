//! The HTTP API (default `127.0.0.1:8080`): ingest, files, jobs, dead letters, health.
//!
//! * [`routes`] — the handlers;
//! * [`ingest`] — records in a request body → an object a pipeline takes;
//! * [`auth`] — the bearer token (or, for reads, the dashboard's session cookie), compared in
//!   constant time;
//! * [`metrics`] — `GET /metrics`, Prometheus text computed from the stores;
//! * [`overview`] — the JSON the dashboard draws (time series, queue, alarms, error previews);
//! * [`openapi`] — the OpenAPI 3 document generated from the handlers;
//! * [`error`] — JSON error bodies.
//!
//! Limits: request bodies up to `server.max_api_body_bytes` (413 beyond), with no pause longer
//! than `server.idle_timeout_secs` between their pieces, requests up to
//! `server.request_timeout_secs` (408 beyond).

pub mod auth;
pub mod error;
pub mod ingest;
pub mod metrics;
pub mod openapi;
pub mod overview;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::routing::{get, post, put};
use axum::Router;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::alarms::AlarmMonitor;
use crate::Context;

#[derive(Clone)]
pub struct ApiState {
    pub ctx: Context,
    openapi: Arc<String>,
    /// The running alarm monitor, for live alarm states and queue history (else `alarms.json`).
    pub monitor: Option<Arc<AlarmMonitor>>,
    pub overview_cache: overview::OverviewCache,
    /// Failed dashboard sign-ins per client.
    pub sign_in_limit: Arc<crate::dashboard::sign_in_limit::SignInLimiter>,
}

/// The API's routes (and the dashboard's) with auth, body limit and timeout.
pub fn router(ctx: &Context, monitor: Option<Arc<AlarmMonitor>>) -> Router {
    let server = &ctx.config.server;
    let state = ApiState {
        ctx: ctx.clone(),
        openapi: Arc::new(openapi::document()),
        monitor,
        overview_cache: Default::default(),
        sign_in_limit: Default::default(),
    };
    let idle = Duration::from_secs(server.idle_timeout_secs);
    let body_limit = usize::try_from(server.max_api_body_bytes).unwrap_or(usize::MAX);
    let protected = Router::new()
        .route("/v1/ingest", post(routes::ingest))
        .route("/v1/files/{*key}", put(routes::put_file))
        .route("/v1/jobs", get(routes::list_jobs))
        .route("/v1/jobs/{id}", get(routes::get_job))
        .route("/v1/jobs/{id}/errors", get(overview::error_preview))
        .route("/v1/jobs/{id}/summary", get(overview::job_summary))
        .route("/v1/overview", get(overview::overview))
        .route("/v1/dlq", get(routes::list_dlq))
        .route("/v1/dlq/replay", post(routes::replay_dlq))
        .route("/metrics", get(metrics::metrics))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/openapi.json", get(serve_openapi))
        .merge(protected)
        .merge(crate::dashboard::routes(idle))
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyTimeoutLayer::new(idle))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(server.request_timeout_secs),
        ))
        .with_state(state)
}

async fn serve_openapi(
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> ([(header::HeaderName, &'static str); 1], String) {
    ([(header::CONTENT_TYPE, "application/json")], state.openapi.as_str().to_owned())
}
