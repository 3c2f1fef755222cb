//! The dashboard: a web page at `/` on the API's listener that shows the pipeline live.
//!
//! Why here and like this: operators want to see throughput, errors, queue depth, alarms and
//! failed files without a Grafana to set up, and `weir run` has to work on a machine with no
//! network. So the page is plain HTML, CSS and JavaScript modules compiled into the binary
//! (`include_str!`, no build step, nothing fetched from elsewhere: the Content-Security-Policy
//! allows only this origin), and it reads the same JSON API as any client (`/v1/overview`,
//! `/v1/jobs/{id}`, `/v1/jobs/{id}/errors`). It polls every 2 seconds rather than holding a
//! server-sent-events stream: the job store is the truth and other processes (`weir worker`,
//! Lambda) write to it, so the server has no event of its own to push; and a poll is an ordinary
//! bounded request under the API's timeout and connection limits.
//!
//! Signing in: the page and its assets are public (they hold no data). The data needs the API
//! token, given once either in the page's form (`POST /session`) or as `/?token=...` (a link
//! `weir run` can print); the server answers with the session cookie (HttpOnly, SameSite=Strict,
//! Secure under TLS; see [`crate::auth`]) and a redirect to `/`, so the token leaves the
//! address bar and the history. `GET /session` tells the page whether it is signed in without
//! an error status (the console stays clean); `POST /logout` ends the session.
//!
//! Signing in is the one thing here anyone may send a body to, so `POST /session` takes at most
//! [`SIGN_IN_MAX_BYTES`] and must arrive within the idle timeout; failed sign-ins are limited per
//! client ([`crate::auth::sign_in_limit`]); a session lasts `server.session_ttl_secs`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use serde::{Deserialize, Serialize};
use tower_http::timeout::TimeoutLayer;

use crate::auth::{issue_session, session_cookie, session_valid, token_matches, SESSION_COOKIE};
use crate::http_error::ApiError;
use crate::listen::PeerAddr;
use crate::state::AppState;

/// The largest sign-in form: a token is tens of bytes.
pub const SIGN_IN_MAX_BYTES: usize = 4 << 10;

/// The page's files: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8", include_str!("assets/app.js")),
    ("charts.js", "text/javascript; charset=utf-8", include_str!("assets/charts.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("assets/style.css")),
    ("favicon.svg", "image/svg+xml", include_str!("assets/favicon.svg")),
];

const INDEX: &str = include_str!("assets/index.html");

/// Only this origin, no inline script or style, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's routes (public: the page, its assets and the session endpoints); a sign-in
/// must arrive within `idle`.
pub fn routes(idle: Duration) -> Router<AppState> {
    let sign_in = post(sign_in)
        .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(SIGN_IN_MAX_BYTES))
        .layer::<_, std::convert::Infallible>(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            idle,
        ));
    Router::new()
        .route("/", get(index))
        .route("/session", get(session_state).merge(sign_in))
        .route("/logout", post(sign_out))
        .route("/assets/{name}", get(asset))
}

/// Headers every dashboard response carries.
fn hardened(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// The client's address, as the listener saw it.
type Peer = Option<Extension<PeerAddr>>;

fn ip(peer: Peer) -> Option<IpAddr> {
    peer.map(|Extension(PeerAddr(addr))| addr.ip())
}

/// `GET /`: the page; with `?token=` it signs in and redirects to the bare `/`.
async fn index(
    State(state): State<AppState>,
    peer: Peer,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    if let Ok(Query(q)) = query {
        if let Some(token) = q.get("token") {
            return signed_in_or_not(&state, ip(peer), token);
        }
    }
    hardened(
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], INDEX)
            .into_response(),
    )
}

#[derive(Debug, Deserialize)]
struct SignIn {
    token: String,
}

/// `POST /session` (form field `token`): signs in and redirects to `/`.
async fn sign_in(
    State(state): State<AppState>,
    peer: Peer,
    form: Result<Form<SignIn>, FormRejection>,
) -> Response {
    match form {
        Ok(Form(f)) => signed_in_or_not(&state, ip(peer), f.token.trim()),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::too_large(SIGN_IN_MAX_BYTES as u64).into_response()
        }
        Err(_) => redirect("/?login=failed", None),
    }
}

/// A redirect to `/` with the session cookie if `token` is the API token, else to the sign-in
/// form with a message; 429 for a client with too many failed sign-ins.
fn signed_in_or_not(state: &AppState, client: Option<IpAddr>, token: &str) -> Response {
    if let Err(wait) = state.sign_in_limit.check(client) {
        let mut resp = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_sign_ins",
            format!("too many failed sign-ins from this address; try again in {} s", wait.as_secs()),
        )
        .into_response();
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
        return hardened(resp);
    }
    let expected = state.ctx.credentials.api_token.expose();
    if token_matches(token, expected) {
        let server = &state.ctx.config.server;
        let secure = if server.tls_cert.is_some() { "; Secure" } else { "" };
        let ttl = server.session_ttl_secs;
        let expires = chrono::Utc::now().timestamp().saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
        let cookie = format!(
            "{SESSION_COOKIE}={}; Path=/; Max-Age={ttl}; HttpOnly; SameSite=Strict{secure}",
            issue_session(expected, expires)
        );
        redirect("/", Some(cookie))
    } else {
        state.sign_in_limit.failed(client);
        tracing::warn!(client = ?client, "dashboard sign-in with a wrong token");
        redirect("/?login=failed", None)
    }
}

/// `POST /logout`: forgets the session cookie.
async fn sign_out(State(state): State<AppState>) -> Response {
    let secure = if state.ctx.config.server.tls_cert.is_some() { "; Secure" } else { "" };
    redirect("/", Some(format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")))
}

fn redirect(to: &'static str, cookie: Option<String>) -> Response {
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, to), (header::CACHE_CONTROL, "no-store")])
        .into_response();
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    hardened(resp)
}

#[derive(Debug, Serialize)]
struct SessionState {
    authenticated: bool,
}

/// `GET /session`: whether the request carries a valid session cookie.
async fn session_state(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = state.ctx.credentials.api_token.expose();
    let now = chrono::Utc::now().timestamp();
    let authenticated = session_cookie(&headers).is_some_and(|s| session_valid(token, s, now));
    ([(header::CACHE_CONTROL, "no-store")], Json(SessionState { authenticated })).into_response()
}

/// `GET /assets/{name}`.
async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => hardened(
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *body)
                .into_response(),
        ),
        None => crate::http_error::not_found().await.into_response(),
    }
}
