//! The HTTP API (default `127.0.0.1:8080`): ingest, files, jobs, dead letters, health.
//!
//! * [`routes`](mod@routes) — the handlers;
//! * [`ingest`] — records in a request body → an object a pipeline takes;
//! * [`images`] — an image job's thumbnails;
//! * [`metrics`] — `GET /metrics`, Prometheus text computed from the stores;
//! * [`overview`] — the JSON the dashboard draws (time series, queue, alarms, error previews);
//! * [`reports`] — the daily reports' history and documents;
//! * [`openapi`] — the OpenAPI 3 document generated from the handlers.
//!
//! Auth ([`crate::auth`]), the shared state ([`crate::state`]) and the error bodies
//! ([`crate::http_error`]) are the dashboard's too; [`crate::router`] puts both together
//! under the listener's limits.

pub mod images;
pub mod ingest;
pub mod metrics;
pub mod openapi;
pub mod overview;
pub mod reports;
pub mod routes;

use axum::extract::State;
use axum::http::header;
use axum::routing::{get, post, put};
use axum::Router;

use crate::auth;
use crate::state::AppState;

/// The API's routes: health and the OpenAPI document open, the rest behind [`auth::require_token`].
pub fn routes(state: &AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/v1/ingest", post(routes::ingest))
        .route("/v1/files/{*key}", put(routes::put_file))
        .route("/v1/jobs", get(routes::list_jobs))
        .route("/v1/jobs/{id}", get(routes::get_job))
        .route("/v1/jobs/{id}/errors", get(overview::error_preview))
        .route("/v1/jobs/{id}/summary", get(overview::job_summary))
        .route("/v1/jobs/{id}/thumbnail", get(images::job_thumbnail))
        .route("/v1/overview", get(overview::overview))
        .route("/v1/reports", get(reports::list))
        .route("/v1/reports/{date}", get(reports::get_json))
        .route("/v1/reports/{date}/html", get(reports::get_html))
        .route("/v1/dlq", get(routes::list_dlq))
        .route("/v1/dlq/replay", post(routes::replay_dlq))
        .route("/metrics", get(metrics::metrics))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/openapi.json", get(serve_openapi))
        .merge(protected)
}

async fn serve_openapi(State(state): State<AppState>) -> ([(header::HeaderName, &'static str); 1], String) {
    ([(header::CONTENT_TYPE, "application/json")], state.openapi.as_str().to_owned())
}
