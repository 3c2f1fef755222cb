//! weir's network face: the S3-compatible endpoint and the HTTP API, secure by default.
//!
//! `weir run` calls [`start`] with the same [`Ports`] its workers use, so an upload's event lands
//! in the very queue the workers long-poll and wakes them at once.
//!
//! * [`s3`] — the S3 endpoint (default `127.0.0.1:9000`) on `s3s`, over the object-store port;
//! * [`api`] — the HTTP API (default `127.0.0.1:8080`) on axum, with its OpenAPI document;
//! * [`dashboard`] — the web page at `/` on the API's listener;
//! * [`router`] — the API and the dashboard composed on one listener, over the shared
//!   [`state`], with [`auth`] (bearer token, session cookie, sign-in limits) and the JSON
//!   error bodies of [`http_error`];
//! * [`alarms`] — the alarm monitor beside the API: rules evaluated every 10 s, transitions to
//!   the `alerts` topic;
//! * [`credentials`] — the S3 key pair and the API token: from the environment, the config, or
//!   a 0600 file created on first start;
//! * [`listen`] — the accept loop both share: connection limit, timeouts, TLS, graceful stop.
//!
//! Both listen on loopback unless configured otherwise, and warn when they listen elsewhere
//! without TLS.

pub mod alarms;
pub mod api;
pub mod auth;
pub mod credentials;
pub mod dashboard;
mod error;
pub mod http_error;
pub mod listen;
pub mod router;
pub mod s3;
pub mod state;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weir_core::Config;
use weir_pipeline::Ports;

pub use credentials::Credentials;
pub use error::ServerError;

/// What the servers run on.
#[derive(Clone)]
pub struct Context {
    pub ports: Ports,
    pub config: Arc<Config>,
    pub data_dir: PathBuf,
    pub credentials: Arc<Credentials>,
}

/// The servers, once listening.
pub struct Running {
    /// Where the S3 endpoint listens, if enabled.
    pub s3_addr: Option<SocketAddr>,
    /// Where the HTTP API listens, if enabled.
    pub api_addr: Option<SocketAddr>,
    pub tls: bool,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Waits until both servers have stopped (after the shutdown token is cancelled).
    pub async fn stopped(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Binds both listeners (so a port in use is an error now, not later) and serves them until
/// `shutdown` is cancelled.
pub async fn start(ctx: Context, shutdown: CancellationToken) -> Result<Running, ServerError> {
    let server = &ctx.config.server;
    let tls = match (&server.tls_cert, &server.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    let limits = listen::Limits {
        max_connections: server.max_connections,
        header_timeout: Duration::from_secs(server.idle_timeout_secs),
        shutdown_grace: Duration::from_secs(10),
    };
    let mut tasks = Vec::new();
    let mut s3_addr = None;
    let mut api_addr = None;
    if !server.s3_listen.is_empty() {
        let listener = listen::bind("S3 endpoint", &server.s3_listen, tls.is_some()).await?;
        s3_addr = listener.local_addr().ok();
        let service = s3::build(&ctx)?;
        s3::spawn_sweeper(&ctx, shutdown.clone());
        let (limits, tls, stop) = (limits.clone(), tls.clone(), shutdown.clone());
        tasks.push(tokio::spawn(listen::serve("S3 endpoint", listener, service, limits, tls, stop)));
    }
    if !server.api_listen.is_empty() {
        let listener = listen::bind("HTTP API", &server.api_listen, tls.is_some()).await?;
        api_addr = listener.local_addr().ok();
        let monitor = alarms::spawn(&ctx, shutdown.clone());
        let service = hyper_util::service::TowerToHyperService::new(router::router(&ctx, Some(monitor)));
        let (limits, tls, stop) = (limits.clone(), tls.clone(), shutdown.clone());
        tasks.push(tokio::spawn(listen::serve("HTTP API", listener, service, limits, tls, stop)));
    }
    Ok(Running { s3_addr, api_addr, tls: tls.is_some(), tasks })
}
