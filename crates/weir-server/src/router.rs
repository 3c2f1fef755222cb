//! The API's listener serves two things, composed here: the JSON API ([`crate::api`]) and the
//! dashboard ([`crate::dashboard`]), over one [`AppState`], with the limits every request on
//! that listener gets: request bodies up to `server.max_api_body_bytes` (413 beyond), no pause
//! longer than `server.idle_timeout_secs` between their pieces, whole requests within
//! `server.request_timeout_secs` (408 beyond).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::alarms::AlarmMonitor;
use crate::state::AppState;
use crate::{api, dashboard, http_error, Context};

/// Every route of the API's listener.
pub fn router(ctx: &Context, monitor: Option<Arc<AlarmMonitor>>) -> Router {
    let server = &ctx.config.server;
    let state = AppState::new(ctx, monitor, api::openapi::document());
    let idle = Duration::from_secs(server.idle_timeout_secs);
    let body_limit = usize::try_from(server.max_api_body_bytes).unwrap_or(usize::MAX);
    Router::new()
        .merge(api::routes(&state))
        .merge(dashboard::routes(idle))
        .fallback(http_error::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyTimeoutLayer::new(idle))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(server.request_timeout_secs),
        ))
        .with_state(state)
}
