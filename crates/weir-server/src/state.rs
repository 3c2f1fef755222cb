//! What every HTTP handler (API and dashboard) shares: the stores and config, the OpenAPI
//! document, the alarm monitor, the overview cache and the sign-in limiter. A leaf module, so
//! `api`, `dashboard` and `auth` depend on it and not on each other.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;

use crate::alarms::AlarmMonitor;
use crate::auth::sign_in_limit::SignInLimiter;
use crate::Context;

/// The last computed overview (window in minutes, when, JSON).
pub type OverviewCache = Arc<Mutex<Option<(u32, Instant, Bytes)>>>;

#[derive(Clone)]
pub struct AppState {
    pub ctx: Context,
    /// The OpenAPI document, generated once.
    pub openapi: Arc<String>,
    /// The running alarm monitor, for live alarm states and queue history (else `alarms.json`).
    pub monitor: Option<Arc<AlarmMonitor>>,
    pub overview_cache: OverviewCache,
    /// Failed dashboard sign-ins per client.
    pub sign_in_limit: Arc<SignInLimiter>,
}

impl AppState {
    pub fn new(ctx: &Context, monitor: Option<Arc<AlarmMonitor>>, openapi: String) -> AppState {
        AppState {
            ctx: ctx.clone(),
            openapi: Arc::new(openapi),
            monitor,
            overview_cache: Default::default(),
            sign_in_limit: Default::default(),
        }
    }
}
