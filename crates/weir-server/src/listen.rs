//! Serving one listener: bounded connections, header timeouts, optional TLS, graceful stop.
//!
//! Both endpoints are served by this loop rather than a framework's `serve`, so that the limits
//! the issue asks for are in one place: at most `max_connections` open connections (further
//! clients wait in the kernel's accept backlog), a request's headers must arrive within the idle
//! timeout (slow-loris), and on shutdown no new connection is taken while requests in flight
//! get a grace period to finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::tls::TlsAcceptor;
use crate::ServerError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// For a request's headers (and the TLS handshake).
    pub header_timeout: Duration,
    /// How long requests in flight may run on after shutdown is asked for.
    pub shutdown_grace: Duration,
}

/// Binds `addr` and warns if it is reachable from other machines without TLS.
pub async fn bind(name: &str, addr: &str, tls: bool) -> Result<TcpListener, ServerError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr: addr.to_owned(), source })?;
    let local =
        listener.local_addr().map_err(|source| ServerError::Bind { addr: addr.to_owned(), source })?;
    if !local.ip().is_loopback() && !tls {
        tracing::warn!(
            %local,
            "the {name} listens beyond loopback without TLS: credentials and data cross the network in the clear; set server.tls_cert and server.tls_key"
        );
    }
    Ok(listener)
}

/// Serves connections from `listener` until `shutdown`, then drains. Returns when every
/// connection is closed (or the grace period is over).
pub async fn serve<S, B>(
    name: &'static str,
    listener: TcpListener,
    service: S,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let tracker = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => p.expect("semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "{name}: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let limits = limits.clone();
        let tls = tls.clone();
        let stop = shutdown.clone();
        tracker.spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(TokioIo::new(stream), service, &limits, stop, peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => {
                            connection(TokioIo::new(tls_stream), service, &limits, stop, peer).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "{name}: TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "{name}: TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(limits.shutdown_grace, tracker.wait()).await.is_err() {
        tracing::warn!("{name}: connections still open after the grace period; closing them");
    }
}

async fn connection<I, S, B>(io: I, service: S, limits: &Limits, stop: CancellationToken, peer: SocketAddr)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let service = WithPeer { inner: service, peer };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Where a request came from: the connection's peer address, in every request's extensions
/// (for limits per client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Adds [`PeerAddr`] to each request of a connection, and closes the connection after an error
/// answer to a request that came with a body.
///
/// The body of a refused request is usually not read (that is the point of refusing early).
/// With `Expect: 100-continue` the client then never sends it, yet hyper keeps the connection
/// and takes the first bytes of the client's next request for the rest of that body: the next
/// request arrives cut (`ET /...` for `GET /...`) and is refused too. boto3 asks for
/// 100-continue on every upload, so an upload refused early (a wrong upload id, an unsigned
/// form) garbled the request after it. An error with `Connection: close` ends the connection
/// instead, and the client opens a new one.
struct WithPeer<S> {
    inner: S,
    peer: SocketAddr,
}

impl<S, B> Service<Request<Incoming>> for WithPeer<S>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<B>, S::Error>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(PeerAddr(self.peer));
        let has_body = !req.body().is_end_stream();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let mut resp = answer.await?;
            if has_body && (resp.status().is_client_error() || resp.status().is_server_error()) {
                resp.headers_mut()
                    .insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
            }
            Ok(resp)
        })
    }
}
